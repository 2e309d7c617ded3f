//! Bad input through the binary: clear errors for bad files and state, dead letters for bad
//! rows, and the run goes on.

mod common;

use common::{consume, ok, stderr, stdout, tickscale};

#[test]
fn unreadable_rows_go_to_the_dead_letter_topic_and_the_run_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("trades.csv");
    let mut text = String::from("exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n");
    for i in 0..200 {
        let ts = 1_582_329_602_111_000_i64 + i * 250_000;
        text += &format!("binance-futures,BTCUSDT,{ts},{ts},{i},buy,9682,0.1\n");
        if i == 100 {
            text += "binance-futures,BTCUSDT,oops,1,1,buy,9682,0.1\n";
        }
    }
    std::fs::write(&file, text).expect("write");
    let state = dir.path().join("state");

    let output = ok(&[
        "run",
        "--ticks",
        file.to_str().expect("p"),
        "--state",
        state.to_str().expect("p"),
    ]);
    assert!(
        stdout(&output).contains("events in 200, dead letters 1,"),
        "{}",
        stdout(&output)
    );

    let letters = consume(&state, "deadletter");
    assert_eq!(letters.len(), 1);
    assert_eq!(
        letters[0]["offset"], 103,
        "line 103 holds the bad row: {}",
        letters[0]
    );
    assert!(letters[0]["source"]
        .as_str()
        .expect("source")
        .ends_with("trades.csv"));
    assert!(!letters[0]["reason"].as_str().expect("reason").is_empty());
    assert!(!consume(&state, "scaling.decisions").is_empty());
}

#[test]
fn a_file_of_no_known_format_stops_with_what_was_seen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("mystery.csv");
    std::fs::write(&file, "colour,shape\nred,round\n").expect("write");
    let state = dir.path().join("state");
    let output = tickscale()
        .args([
            "run",
            "--ticks",
            file.to_str().expect("p"),
            "--state",
            state.to_str().expect("p"),
        ])
        .output()
        .expect("start");
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("mystery.csv"), "{message}");
    assert!(message.contains("colour,shape"), "{message}");
}

#[test]
fn a_state_folder_of_another_run_is_refused_until_fresh_is_given() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let state = state.to_str().expect("p");
    ok(&["run", "--state", state, "--summary-every", "0"]);
    let other = tickscale()
        .args([
            "run",
            "--state",
            state,
            "--seed",
            "8",
            "--summary-every",
            "0",
        ])
        .output()
        .expect("start");
    assert!(!other.status.success());
    assert!(stderr(&other).contains("--fresh"), "{}", stderr(&other));
    ok(&[
        "run",
        "--state",
        state,
        "--seed",
        "8",
        "--fresh",
        "--summary-every",
        "0",
    ]);
}

#[test]
fn a_finished_run_started_again_writes_nothing_new() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let arg = state.to_str().expect("p");
    ok(&["run", "--state", arg, "--summary-every", "0"]);
    let before = consume(&state, "scaling.decisions").len();
    let again = ok(&["run", "--state", arg, "--summary-every", "0"]);
    assert!(
        stdout(&again).contains("already finished"),
        "{}",
        stdout(&again)
    );
    assert_eq!(consume(&state, "scaling.decisions").len(), before);
}

#[test]
fn consuming_an_unknown_topic_lists_the_known_ones() {
    let output = tickscale()
        .args(["consume", "scaling.decisionz"])
        .output()
        .expect("start");
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("scaling.decisions"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_load_mapping_for_an_unknown_service_names_the_services() {
    let output = tickscale()
        .args(["run", "--load", "web=x.csv"])
        .output()
        .expect("start");
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("no service `web`") && message.contains("market-data"),
        "{message}"
    );
}
