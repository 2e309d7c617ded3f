//! Helpers for tests that run the `tickscale` binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn tickscale() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tickscale"))
}

pub fn data(relative: &str) -> PathBuf {
    tickscale::data::shared_data_file(relative)
}

/// Runs `tickscale ARGS` and returns its output, failing the test with stderr when it fails.
pub fn ok(args: &[&str]) -> Output {
    let output = tickscale().args(args).output().expect("start tickscale");
    assert!(
        output.status.success(),
        "tickscale {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Returns the events of `topic` in `state` as parsed JSON objects.
pub fn consume(state: &Path, topic: &str) -> Vec<serde_json::Value> {
    let state = state.to_str().expect("utf-8 path");
    let output = ok(&[
        "consume",
        topic,
        "--from-beginning",
        "--format",
        "json",
        "--state",
        state,
    ]);
    String::from_utf8(output.stdout)
        .expect("utf-8")
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs `tickscale ARGS`, checks that it fails, and returns what it printed on standard error.
pub fn fails(args: &[&str]) -> String {
    let output = tickscale().args(args).output().expect("start tickscale");
    assert!(
        !output.status.success(),
        "tickscale {args:?} should have failed:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
    stderr(&output)
}

/// Returns the Kafka broker the Kafka tests use (`TICKSCALE_KAFKA_BROKERS`, which
/// `scripts/test` sets after starting one). Without it the test says on the terminal that it
/// skips, past the test harness's capture, and returns None; under CI it fails instead.
pub fn kafka_brokers(test: &str) -> Option<String> {
    use std::io::Write as _;
    match std::env::var("TICKSCALE_KAFKA_BROKERS") {
        Ok(brokers) if !brokers.is_empty() => Some(brokers),
        _ if std::env::var_os("CI").is_some() => {
            panic!("{test}: TICKSCALE_KAFKA_BROKERS is not set under CI; run scripts/test")
        }
        _ => {
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: TICKSCALE_KAFKA_BROKERS is not set (scripts/test starts a broker \
                 and sets it)"
            );
            None
        }
    }
}

/// Returns a topic namespace no other test run uses, so tests can share one broker.
pub fn kafka_namespace(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{test}-{}-{nanos}", std::process::id())
}
