//! `tickscale explain` on a decision of a built-in run, found through `tickscale consume`.

use std::path::Path;
use std::process::{Command, Output};

fn tickscale(args: &[&str], state: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tickscale"))
        .args(args)
        .arg("--state")
        .arg(state)
        .output()
        .expect("the binary runs")
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn explain_prints_the_chain_of_a_decision_taken_from_consume_and_names_a_missing_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    stdout(&tickscale(
        &["run", "--strategy", "event-driven", "--summary-every", "0"],
        &state,
    ));
    // The 200th decision: the forecaster has warmed up by then.
    let decisions = stdout(&tickscale(
        &[
            "consume",
            "scaling.decisions",
            "--from-beginning",
            "--limit",
            "200",
        ],
        &state,
    ));
    let line = decisions.lines().last().expect("decisions were written");
    let decision: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
    let id = decision["id"].as_str().expect("an id");

    let explained = stdout(&tickscale(&["explain", id], &state));
    assert!(
        explained.starts_with(&format!("decision    {id} (")),
        "{explained}"
    );
    for needle in [
        "policy      predictive, strategy event-driven",
        "  observed  observed/",
        "  forecast  forecast/",
        "  regime    ",
        "reactive    the HPA asks",
        "resources   cpu request",
    ] {
        assert!(explained.contains(needle), "{needle}: {explained}");
    }
    // The final answer and the reason are the decision's own.
    let final_line = format!(
        "final       {} -> {} replicas",
        decision["current_replicas"], decision["desired_replicas"]
    );
    assert!(explained.contains(&final_line), "{explained}");
    let reason = decision["reason"].as_str().expect("a reason");
    assert!(
        explained.contains(&format!("reason      {reason}")),
        "{explained}"
    );
    // The observed window is the one that ended at the decision.
    let ts = decision["ts_us"].as_i64().expect("a time");
    assert!(explained.contains(&format!(
        "observed/{}/",
        decision["service"].as_str().unwrap_or("")
    )));
    assert!(!explained.contains("not found"), "{explained} at {ts}");

    let missing = tickscale(&["explain", "decision/nope/1"], &state);
    assert!(!missing.status.success());
    let message = String::from_utf8_lossy(&missing.stderr);
    assert!(
        message.contains("no decision `decision/nope/1`"),
        "{message}"
    );
    assert!(
        message.contains("tickscale consume scaling.decisions"),
        "{message}"
    );
}
