//! `tickscale topics create`, `produce` and `consume --brokers` against a real broker
//! (`TICKSCALE_KAFKA_BROKERS`; `scripts/test` starts one). Each test works in its own namespace.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{data, kafka_brokers, kafka_namespace, ok, stderr, stdout, tickscale};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use tickscale::events::TradeTick;
use tickscale::kafka::KafkaSettings;
use tickscale::topology::Topology;

const HEADER: &str = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount";

/// Returns the broker and a fresh namespace whose topics exist, or None to skip.
fn cluster(test: &str) -> Option<KafkaSettings> {
    let brokers = kafka_brokers(test)?;
    let settings = KafkaSettings {
        brokers,
        namespace: kafka_namespace(test),
        schema_registry: None,
    };
    let topology = Topology::builtin().expect("builtin topology");
    tickscale::kafka::admin::create_topics(&settings, &topology).expect("create topics");
    Some(settings)
}

fn kafka_args(settings: &KafkaSettings) -> Vec<String> {
    vec![
        "--brokers".into(),
        settings.brokers.clone(),
        "--namespace".into(),
        settings.namespace.clone(),
    ]
}

/// Runs `tickscale ARGS` followed by the cluster's arguments, expecting success.
fn ok_on(settings: &KafkaSettings, args: &[&str]) -> std::process::Output {
    let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    all.extend(kafka_args(settings));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    ok(&all)
}

/// Writes a Tardis trade file of `(µs, price)` rows (or raw lines) and returns its path.
fn trades_file(dir: &Path, name: &str, rows: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let mut text = format!("{HEADER}\n");
    for row in rows {
        text.push_str(row);
        text.push('\n');
    }
    std::fs::write(&path, text).expect("write trades");
    path
}

fn trade_row(ts_us: i64, id: u64, price: f64) -> String {
    format!("binance-futures,BTCUSDT,{ts_us},{ts_us},{id},buy,{price},0.5")
}

fn json_lines(output: &std::process::Output) -> Vec<serde_json::Value> {
    stdout(output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

#[test]
fn topics_create_twice_reports_existing_topics_and_one_created_with_other_partitions() {
    let Some(brokers) = kafka_brokers("topics_create") else {
        return;
    };
    let settings = KafkaSettings {
        brokers,
        namespace: kafka_namespace("topics"),
        schema_registry: None,
    };
    // market.bars exists beforehand with 1 partition; the topology declares 3.
    let mut other = Topology::builtin().expect("builtin topology");
    other.topics.retain(|t| t.name == "market.bars");
    other.topics[0].partitions = 1;
    tickscale::kafka::admin::create_topics(&settings, &other).expect("create market.bars");

    let first = stdout(&ok_on(&settings, &["topics", "create"]));
    let bars = format!("{}.market.bars", settings.namespace);
    assert!(
        first.contains(&format!(
            "{bars}: exists but differs: 3 partitions declared, 1 on the cluster"
        )),
        "{first}"
    );
    // The state topic came with the first call.
    assert_eq!(first.matches(": created").count(), 12, "{first}");

    let second = stdout(&ok_on(&settings, &["topics", "create"]));
    assert_eq!(second.lines().count(), 14, "{second}");
    assert_eq!(
        second.matches(": exists as declared").count(),
        13,
        "{second}"
    );
    assert!(second.contains(&format!(
        "{}.tickscale.state: exists as declared",
        settings.namespace
    )));
    assert!(
        second.contains(&format!("{bars}: exists but differs")),
        "{second}"
    );
}

#[test]
fn the_spy_day_read_back_from_kafka_equals_what_the_embedded_run_records() {
    let Some(settings) = cluster("spy_day") else {
        return;
    };
    let spy = data("market/spy_tick_20131007_trade.zip");
    let spy = spy.to_str().expect("utf-8 path");
    let produced = stdout(&ok_on(
        &settings,
        &["produce", "--ticks", spy, "--speed", "max"],
    ));
    assert!(produced.contains("market.ticks 250601"), "{produced}");

    let from_kafka = ok_on(&settings, &["consume", "market.ticks"]);
    let kafka_lines = stdout(&from_kafka);
    assert_eq!(kafka_lines.lines().count(), 250_601);

    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let state = state.to_str().expect("utf-8 path");
    ok(&[
        "run",
        "--ticks",
        spy,
        "--state",
        state,
        "--summary-every",
        "0",
    ]);
    let embedded = ok(&[
        "consume",
        "market.ticks",
        "--from-beginning",
        "--state",
        state,
    ]);
    assert!(
        kafka_lines == stdout(&embedded),
        "the trades read from Kafka differ from the embedded log's"
    );

    // The file's order is event-time order for one symbol: times never go back.
    let times: Vec<i64> = json_lines(&from_kafka)
        .iter()
        .map(|t| t["ts_us"].as_i64().expect("ts_us"))
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn unreadable_rows_become_dead_letters_with_their_file_and_line() {
    let Some(settings) = cluster("dead_letters") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let t0 = 1_582_329_602_000_000;
    let rows = [
        trade_row(t0, 1, 100.0),
        trade_row(t0 + 1_000, 2, 0.0),
        trade_row(t0 + 2_000, 3, 101.0),
        "binance-futures,BTCUSDT,not-a-time,0,4,buy,1,1".to_string(),
    ];
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    let file = trades_file(dir.path(), "bad.csv", &rows);
    let out = stdout(&ok_on(
        &settings,
        &["produce", "--ticks", file.to_str().expect("utf-8")],
    ));
    assert!(out.contains("dead letters 2"), "{out}");

    let letters = json_lines(&ok_on(&settings, &["consume", "deadletter"]));
    let mut lines: Vec<i64> = letters
        .iter()
        .map(|l| l["offset"].as_i64().expect("offset"))
        .collect();
    lines.sort_unstable();
    assert_eq!(lines, vec![3, 5], "{letters:?}");
    for letter in &letters {
        assert!(letter["source"]
            .as_str()
            .expect("source")
            .ends_with("bad.csv"));
    }
    let ticks = json_lines(&ok_on(&settings, &["consume", "market.ticks"]));
    let prices: Vec<f64> = ticks
        .iter()
        .map(|t| t["price"].as_f64().expect("price"))
        .collect();
    assert_eq!(prices, vec![100.0, 101.0]);
}

#[test]
fn a_hundred_times_faster_still_takes_a_hundredth_of_the_recorded_time() {
    let Some(settings) = cluster("speed") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let t0 = 1_582_329_602_000_000;
    // 40 s of event time: at 100x, at least 0.4 s of wall time.
    let rows: Vec<String> = (0..5)
        .map(|i| trade_row(t0 + i * 10_000_000, i as u64, 100.0))
        .collect();
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    let file = trades_file(dir.path(), "slow.csv", &rows);
    let started = Instant::now();
    ok_on(
        &settings,
        &[
            "produce",
            "--ticks",
            file.to_str().expect("utf-8"),
            "--speed",
            "100x",
        ],
    );
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn consume_drops_a_message_produced_twice_and_says_so() {
    let Some(settings) = cluster("repeats") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let t0 = 1_582_329_602_000_000;
    // Two identical trades in the file are two events, not a repeat.
    let rows = [
        trade_row(t0, 1, 100.0),
        trade_row(t0, 1, 100.0),
        trade_row(t0 + 5, 2, 99.0),
    ];
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    let file = trades_file(dir.path(), "twice.csv", &rows);
    let file = file.to_str().expect("utf-8");
    ok_on(&settings, &["produce", "--ticks", file]);
    ok_on(&settings, &["produce", "--ticks", file]);

    let read = ok_on(&settings, &["consume", "market.ticks"]);
    assert_eq!(json_lines(&read).len(), 3);
    assert!(
        stderr(&read).contains("3 repeat(s) dropped"),
        "{}",
        stderr(&read)
    );
    let all: Vec<TradeTick> =
        tickscale::kafka::consume::read_all(&settings, "market.ticks").expect("read_all");
    assert_eq!(all.len(), 3);
}

#[test]
fn an_undecodable_message_is_reported_and_the_next_one_is_printed() {
    let Some(settings) = cluster("undecodable") else {
        return;
    };
    let topic = settings.topic("market.ticks");
    let producer: BaseProducer = settings.client_config().create().expect("producer");
    producer
        .send(
            BaseRecord::to(&topic)
                .partition(2)
                .key("BTCUSDT")
                .payload(&b"not avro"[..]),
        )
        .expect("send raw bytes");
    producer.flush(Duration::from_secs(10)).expect("flush");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = trades_file(
        dir.path(),
        "good.csv",
        &[&trade_row(1_582_329_602_000_000, 1, 100.0)],
    );
    ok_on(
        &settings,
        &["produce", "--ticks", file.to_str().expect("utf-8")],
    );

    let read = ok_on(&settings, &["consume", "market.ticks"]);
    let ticks = json_lines(&read);
    assert_eq!(ticks.len(), 1);
    assert_eq!(ticks[0]["price"].as_f64(), Some(100.0));
    assert!(
        stderr(&read).contains(&format!(
            "skipped {topic} partition 2 offset 0: unknown header"
        )),
        "{}",
        stderr(&read)
    );
}

#[test]
fn avro_output_reads_back_as_the_same_events() {
    let Some(settings) = cluster("avro") else {
        return;
    };
    let trades = data("market/tardis_trades.csv");
    ok_on(
        &settings,
        &["produce", "--ticks", trades.to_str().expect("utf-8")],
    );
    let output = ok_on(&settings, &["consume", "market.ticks", "--format", "avro"]);
    let reader = apache_avro::Reader::new(output.stdout.as_slice()).expect("avro container");
    let from_file: Vec<TradeTick> = reader
        .map(|v| apache_avro::from_value(&v.expect("value")).expect("a trade"))
        .collect();
    let from_kafka: Vec<TradeTick> =
        tickscale::kafka::consume::read_all(&settings, "market.ticks").expect("read_all");
    assert_eq!(from_file.len(), 9_999);
    assert_eq!(from_file, from_kafka);
}

/// Returns a loopback port nothing listens on now.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

#[test]
fn produce_waits_for_a_broker_that_starts_late_and_delivers_everything_in_order() {
    if kafka_brokers("late_broker").is_none() {
        return;
    }
    let port = free_port();
    let settings = KafkaSettings {
        brokers: format!("127.0.0.1:{port}"),
        namespace: kafka_namespace("late"),
        schema_registry: None,
    };
    let trades = data("market/tardis_trades.csv");
    let produce = tickscale()
        .args(["produce", "--ticks", trades.to_str().expect("utf-8")])
        .args(kafka_args(&settings))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start produce");

    // Past the producer's first look at the cluster (5 s), so it is already producing blind.
    std::thread::sleep(Duration::from_secs(7));
    let url = format!("tcp://127.0.0.1:{port}");
    let mut broker = std::process::Command::new("tansu")
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
        ])
        .args(["--storage-engine", "memory://tansu/"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start tansu");
    let created = retry(|| {
        tickscale::kafka::admin::create_topics(&settings, &Topology::builtin().expect("topology"))
    });
    let produced = produce.wait_with_output();
    let read = tickscale::kafka::consume::read_all::<TradeTick>(&settings, "market.ticks");
    let _ = broker.kill();
    let _ = broker.wait();

    created.expect("create topics on the late broker");
    let produced = produced.expect("produce ends");
    assert!(produced.status.success(), "{}", stderr(&produced));
    assert!(
        stderr(&produced).contains("broker unreachable, retrying"),
        "{}",
        stderr(&produced)
    );
    let read = read.expect("read back");
    assert_eq!(read.len(), 9_999);
    let first_lines: Vec<String> = std::fs::read_to_string(&trades)
        .expect("trades")
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).expect("timestamp").to_string())
        .collect();
    let times: Vec<String> = read.iter().map(|t| t.ts_us.to_string()).collect();
    assert_eq!(times, first_lines);
}

fn retry<T, E: std::fmt::Debug>(mut f: impl FnMut() -> Result<T, E>) -> Result<T, E> {
    let mut last = None;
    for _ in 0..50 {
        match f() {
            Ok(value) => return Ok(value),
            Err(error) => last = Some(error),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(last.expect("tried at least once"))
}
