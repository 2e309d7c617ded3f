//! `tickscale run --brokers` against a real broker: the SPY day gives the embedded run's
//! decisions with one process and with two in a group; a process killed with SIGKILL and
//! restarted loses and repeats no decision; undecodable messages become dead letters.

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use common::{data, fails, kafka_brokers, kafka_namespace, ok, stderr, stdout, tickscale};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use tickscale::events::{DeadLetter, ScalingDecision};
use tickscale::kafka::KafkaSettings;

const SPY: &str = "market/spy_tick_20131007_trade.zip";

/// Creates the topics of a fresh namespace and produces `file` there.
fn setup(brokers: &str, test: &str, file: &Path) -> KafkaSettings {
    let namespace = kafka_namespace(test);
    let base = ["--brokers", brokers, "--namespace", &namespace];
    ok(&[&["topics", "create"], &base[..]].concat());
    let file = file.to_str().expect("utf-8 path");
    ok(&[&["produce", "--ticks", file], &base[..]].concat());
    KafkaSettings {
        brokers: brokers.to_string(),
        namespace,
        schema_registry: None,
    }
}

fn args<'a>(settings: &'a KafkaSettings, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "run",
        "--brokers",
        &settings.brokers,
        "--namespace",
        &settings.namespace,
    ];
    args.extend_from_slice(extra);
    args
}

/// Returns the decisions of a namespace as sorted JSON lines, repeats dropped, and how many
/// repeats `consume` reported.
fn kafka_decisions(settings: &KafkaSettings) -> (Vec<String>, u64) {
    let output = ok(&[
        "consume",
        "scaling.decisions",
        "--brokers",
        &settings.brokers,
        "--namespace",
        &settings.namespace,
        "--from-beginning",
    ]);
    let mut lines: Vec<String> = stdout(&output).lines().map(str::to_string).collect();
    lines.sort();
    let repeats = stderr(&output)
        .split(" repeat(s) dropped")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    (lines, repeats)
}

/// Returns the embedded run's decisions on `file` as sorted JSON lines.
fn embedded_decisions(file: &Path) -> Vec<String> {
    let state = tempfile::tempdir().expect("tempdir");
    let state = state.path().to_str().expect("utf-8");
    let file = file.to_str().expect("utf-8");
    ok(&[
        "run",
        "--ticks",
        file,
        "--state",
        state,
        "--summary-every",
        "0",
    ]);
    let output = ok(&[
        "consume",
        "scaling.decisions",
        "--from-beginning",
        "--state",
        state,
    ]);
    let mut lines: Vec<String> = stdout(&output).lines().map(str::to_string).collect();
    lines.sort();
    lines
}

fn spawn(args: &[&str]) -> Child {
    tickscale()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tickscale")
}

fn finish(child: Child) -> String {
    let output = child.wait_with_output().expect("wait");
    assert!(
        output.status.success(),
        "a stage process failed:\n{}\n{}",
        stdout(&output),
        stderr(&output)
    );
    stdout(&output)
}

/// Returns the partitions a process's service stage reported holding.
fn partitions_held(report: &str) -> String {
    let line = report
        .lines()
        .find(|l| l.starts_with("service stage"))
        .unwrap_or_else(|| panic!("no service line in:\n{report}"));
    line.split("partitions ")
        .nth(1)
        .and_then(|rest| rest.split('}').next())
        .unwrap_or_default()
        .to_string()
}

#[test]
fn the_spy_day_on_kafka_gives_the_embedded_decisions_with_one_process_and_with_two() {
    let Some(brokers) = kafka_brokers("kafka_run::spy_one_and_two") else {
        return;
    };
    let embedded = embedded_decisions(&data(SPY));
    assert_eq!(embedded.len(), 19_200, "3840 windows, five services");

    let one = setup(&brokers, "spy-one", &data(SPY));
    let report = stdout(&ok(&args(&one, &[])));
    assert!(report.contains("events in 250601"), "{report}");
    let (decisions, _) = kafka_decisions(&one);
    assert_eq!(decisions.len(), embedded.len());
    assert!(decisions == embedded, "one process: decisions differ");

    let two = setup(&brokers, "spy-two", &data(SPY));
    let first = spawn(&args(&two, &["--stages", "market,service"]));
    let second = spawn(&args(&two, &["--stages", "service"]));
    let (first, second) = (finish(first), finish(second));
    let (held_first, held_second) = (partitions_held(&first), partitions_held(&second));
    assert!(
        !held_first.is_empty() && !held_second.is_empty(),
        "both processes should hold partitions: {held_first:?} and {held_second:?}"
    );
    let (decisions, _) = kafka_decisions(&two);
    assert!(decisions == embedded, "two processes: decisions differ");
}

/// Returns how many decisions the namespace holds, repeats dropped.
fn decisions_so_far(settings: &KafkaSettings) -> usize {
    tickscale::kafka::consume::read_all::<ScalingDecision>(settings, "scaling.decisions")
        .map_or(0, |d| d.len())
}

#[test]
fn a_stage_process_killed_mid_stream_and_restarted_loses_and_repeats_no_decision() {
    use std::io::BufRead;
    use std::os::unix::process::ExitStatusExt;

    let Some(brokers) = kafka_brokers("kafka_run::kill_and_restart") else {
        return;
    };
    let embedded = embedded_decisions(&data(SPY));
    let settings = setup(&brokers, "spy-kill", &data(SPY));
    let run = args(&settings, &["--kafka-checkpoint-every", "2000"]);

    // The market stage logs each checkpoint (every 2000 of the 250,601 ticks); the kill comes
    // after the 40th, a third of the way in.
    let mut child = tickscale()
        .args(&run)
        .env("TICKSCALE_LOG", "warn,tickscale=debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tickscale");
    let log = std::io::BufReader::new(child.stderr.take().expect("stderr"));
    let checkpoints = log
        .lines()
        .map_while(Result::ok)
        .filter(|line| line.contains("Market stage checkpoint"))
        .take(40)
        .count();
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("reap");
    assert_eq!(checkpoints, 40, "the run ended before its 40th checkpoint");
    assert_eq!(
        status.signal(),
        Some(9),
        "the run should have died of the kill"
    );
    let before = decisions_so_far(&settings);
    assert!(
        before < embedded.len(),
        "the kill came after the last decision"
    );

    let report = stdout(&ok(&run));
    assert!(report.contains("market stage resumed"), "{report}");
    let (decisions, repeats) = kafka_decisions(&settings);
    assert_eq!(
        decisions.len(),
        embedded.len(),
        "a decision was lost or repeated"
    );
    assert!(
        decisions == embedded,
        "decisions differ from the embedded run"
    );
    eprintln!("{before} decisions before the kill; the reader dropped {repeats} repeats");
}

#[test]
fn undecodable_messages_go_to_the_dead_letter_topic_with_where_they_were_and_the_run_goes_on() {
    let Some(brokers) = kafka_brokers("kafka_run::dead_letters") else {
        return;
    };
    let file = data("market/tardis_trades.csv");
    let settings = setup(&brokers, "bad-input", &file);
    let producer: BaseProducer = settings.client_config().create().expect("producer");
    let ticks = settings.topic("market.ticks");
    let features = settings.topic("features");
    for (topic, payload) in [
        (&ticks, &b"not avro"[..]),
        (&features, &[0xC3, 0x01, 9][..]),
    ] {
        producer
            .send(BaseRecord::to(topic).partition(0).key("x").payload(payload))
            .map_err(|(e, _)| e)
            .expect("queue");
    }
    producer.flush(Duration::from_secs(10)).expect("flush");

    let report = stdout(&ok(&args(&settings, &[])));
    assert!(report.contains("dead letters 1"), "{report}");
    let letters = tickscale::kafka::consume::read_all::<DeadLetter>(&settings, "deadletter")
        .expect("dead letters");
    let from = |topic: &str| letters.iter().find(|l| l.source == topic);
    let bad_tick = from(&ticks).expect("the tick's dead letter");
    assert_eq!(
        (bad_tick.partition, bad_tick.payload.as_slice()),
        (0, &b"not avro"[..])
    );
    assert!(bad_tick.reason.contains("header"), "{}", bad_tick.reason);
    let bad_feature = from(&features).expect("the feature's dead letter");
    assert_eq!(bad_feature.partition, 0);
    assert!(bad_feature.offset >= 0);
    assert!(
        decisions_so_far(&settings) > 0,
        "the run should go on past them"
    );
}

#[test]
fn a_kafka_run_refuses_input_files_and_topics_that_do_not_exist() {
    let Some(brokers) = kafka_brokers("kafka_run::refusals") else {
        return;
    };
    let file = data("market/tardis_trades.csv");
    let file = file.to_str().expect("utf-8");
    let error = fails(&["run", "--brokers", &brokers, "--ticks", file]);
    assert!(error.contains("tickscale produce"), "{error}");
    let namespace = kafka_namespace("missing");
    let error = fails(&["run", "--brokers", &brokers, "--namespace", &namespace]);
    assert!(error.contains("topics create"), "{error}");
}

/// Runs `backtest` with `extra` arguments and returns its JSON report.
fn backtest_json(extra: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("report.json");
    let json_arg = json.to_str().expect("utf-8");
    let base = ["backtest", "--policy", "hpa,balanced", "--json", json_arg];
    ok(&[&base[..], extra].concat());
    serde_json::from_str(&std::fs::read_to_string(&json).expect("read")).expect("json")
}

#[test]
fn a_backtest_of_the_kafka_topics_gives_the_figures_of_the_same_file() {
    let Some(brokers) = kafka_brokers("kafka_run::backtest") else {
        return;
    };
    let file = data(SPY);
    let settings = setup(&brokers, "backtest", &file);
    let kafka = [
        "--brokers",
        brokers.as_str(),
        "--namespace",
        &settings.namespace,
    ];
    let from_kafka = backtest_json(&kafka);
    let from_file = backtest_json(&["--ticks", file.to_str().expect("utf-8")]);
    assert_eq!(from_kafka["events_in"], 250_601);
    assert_eq!(from_kafka["results"], from_file["results"]);

    // The SPY day starts at 13:30 UTC; from 19:00 on, only the last hour is replayed.
    let late = backtest_json(&[&kafka[..], &["--since", "2013-10-07T19:00:00Z"]].concat());
    let late_events = late["events_in"].as_u64().expect("events_in");
    assert!(
        late_events > 0 && late_events < 250_601 / 2,
        "from 19:00 on: {late_events} events"
    );
    assert_ne!(late["results"], from_file["results"]);

    let error = fails(&[&["backtest", "--since", "yesterday"], &kafka[..]].concat());
    assert!(error.contains("RFC 3339"), "{error}");
}
