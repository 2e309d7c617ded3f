//! Bad input through the binary: clear errors for bad files and state, dead letters for bad
//! rows, and the run goes on.

mod common;

use common::{consume, fails, ok, stdout};

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
    let message = fails(&[
        "run",
        "--ticks",
        file.to_str().expect("p"),
        "--state",
        state.to_str().expect("p"),
    ]);
    assert!(message.contains("mystery.csv"), "{message}");
    assert!(message.contains("colour,shape"), "{message}");
}

#[test]
fn a_state_folder_of_another_run_is_refused_until_fresh_is_given() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let state = state.to_str().expect("p");
    ok(&["run", "--state", state, "--summary-every", "0"]);
    let message = fails(&[
        "run",
        "--state",
        state,
        "--seed",
        "8",
        "--summary-every",
        "0",
    ]);
    assert!(message.contains("--fresh"), "{}", message);
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
    let message = fails(&["consume", "scaling.decisionz"]);
    assert!(message.contains("scaling.decisions"), "{}", message);
}

#[test]
fn a_load_mapping_for_an_unknown_service_names_the_services() {
    let message = fails(&["run", "--load", "web=x.csv"]);
    assert!(
        message.contains("no service `web`") && message.contains("market-data"),
        "{message}"
    );
}

#[test]
fn a_workload_trace_given_as_market_data_and_the_reverse_are_refused() {
    let trace = common::data("workload/bitbrains-vm407-2013-07.csv");
    let trace = trace.to_str().expect("p");
    let message = fails(&["run", "--ticks", trace]);
    assert!(
        message.contains("is a workload trace (bitbrains)"),
        "{}",
        message
    );

    let quotes = common::data("market/tardis_quotes.csv");
    let load = format!("risk={}", quotes.to_str().expect("p"));
    let message = fails(&["run", "--load", &load]);
    assert!(
        message.contains("is market data (tardis-quotes)"),
        "{}",
        message
    );
}

#[test]
fn a_corrupt_archive_stops_the_run_naming_the_file_instead_of_losing_its_rest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut bytes = std::fs::read(common::data("market/spy_tick_20131007_trade.zip")).expect("zip");
    for byte in &mut bytes[400_000..400_064] {
        *byte = !*byte;
    }
    let file = dir.path().join("spy_corrupt.zip");
    std::fs::write(&file, bytes).expect("write");
    let state = dir.path().join("state");
    let message = fails(&[
        "run",
        "--ticks",
        file.to_str().expect("p"),
        "--state",
        state.to_str().expect("p"),
    ]);
    assert!(message.contains("spy_corrupt.zip"), "{message}");
}

#[test]
fn fresh_refuses_a_folder_that_is_not_a_tickscale_state_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("notes.txt"), "precious").expect("write");
    let message = fails(&["run", "--fresh", "--state", dir.path().to_str().expect("p")]);
    assert!(
        message.contains("is not a tickscale state folder"),
        "{}",
        message
    );
    assert!(
        dir.path().join("notes.txt").exists(),
        "the user's file must survive"
    );
}

#[test]
fn a_daily_volatility_index_beside_one_day_of_ticks_adds_no_windows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spy = common::data("market/spy_tick_20131007_trade.zip");
    let vix = common::data("market/vix-daily.csv");
    let state = dir.path().join("state");
    let output = ok(&[
        "run",
        "--ticks",
        spy.to_str().expect("p"),
        vix.to_str().expect("p"),
        "--state",
        state.to_str().expect("p"),
        "--summary-every",
        "0",
    ]);
    let text = stdout(&output);
    assert!(
        text.contains("events in 259836, dead letters 0, windows 3840,"),
        "{text}"
    );
    let features = consume(&state, "features");
    let vix_2013_10_04 = 16.74;
    assert_eq!(
        features[0]["vix"].as_f64(),
        Some(vix_2013_10_04),
        "{}",
        features[0]
    );
}
