//! A run killed with SIGKILL mid-way and started again loses no decision and duplicates none.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use common::{consume, data, ok, tickscale};

#[test]
fn kill_9_mid_run_then_rerun_gives_exactly_the_decisions_of_an_uninterrupted_run() {
    let spy = data("market/spy_tick_20131007_trade.zip");
    let spy = spy.to_str().expect("path");

    let clean = tempfile::tempdir().expect("tempdir");
    ok(&[
        "run",
        "--ticks",
        spy,
        "--state",
        clean.path().to_str().expect("path"),
        "--summary-every",
        "0",
    ]);
    let expected = consume(clean.path(), "scaling.decisions");

    // A summary line per window (3,840 lines for the day) and no reading after 14:00 UTC: the
    // run fills the pipe and blocks there, well after its first checkpoints and well before its
    // end, and is killed while blocked.
    let crashed = tempfile::tempdir().expect("tempdir");
    let state = crashed.path().to_str().expect("path");
    let args = [
        "run",
        "--ticks",
        spy,
        "--state",
        state,
        "--checkpoint-every",
        "5000",
        "--summary-every",
        "15",
    ];
    let mut child = tickscale()
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start run");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let seen = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.starts_with("2013-10-07 14:"));
    assert!(seen.is_some(), "the run ended before the kill");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    drop(lines);

    let partial = consume(crashed.path(), "scaling.decisions");
    assert!(!partial.is_empty(), "no checkpoint landed before the kill");
    assert!(
        partial.len() < expected.len(),
        "the kill should land mid-run"
    );

    let output = ok(&[
        "run",
        "--ticks",
        spy,
        "--state",
        state,
        "--checkpoint-every",
        "5000",
        "--summary-every",
        "0",
    ]);
    assert!(common::stdout(&output).contains("Resumed from the last checkpoint"));
    let resumed = consume(crashed.path(), "scaling.decisions");

    let ids = |ds: &[serde_json::Value]| ds.iter().map(|d| d["id"].to_string()).collect::<Vec<_>>();
    let mut unique = ids(&resumed);
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), resumed.len(), "a decision was written twice");
    assert_eq!(
        resumed.len(),
        expected.len(),
        "a decision was lost or added"
    );
    assert_eq!(resumed, expected, "the resumed run decided differently");
}
