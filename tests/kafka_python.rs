//! A Kafka client outside tickscale (Python's confluent-kafka and fastavro, through
//! examples/read_decisions.py) reads the scaling decisions tickscale frames and produces.

mod common;

use std::collections::BTreeSet;
use std::future::Future;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use common::{data, kafka_brokers, kafka_namespace, ok};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _};
use tickscale::events::{Event as _, ScalingDecision};
use tickscale::kafka::{Framing, Framings, KafkaSettings};
use tickscale::pipeline::{Outbox, Routed as _};
use tickscale::topology::Topology;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/read_decisions.py");

/// Returns true when python3 can import the script's libraries; otherwise says on the terminal
/// that `test` skips, past the harness's capture, or fails under CI.
fn python_ready(test: &str) -> bool {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import confluent_kafka, fastavro"])
        .output();
    let reason = match probe {
        Ok(output) if output.status.success() => return true,
        Ok(output) => String::from_utf8_lossy(&output.stderr).trim().to_string(),
        Err(error) => format!("python3 does not start: {error}"),
    };
    if std::env::var_os("CI").is_some() {
        panic!("{test}: python3 lacks confluent_kafka or fastavro under CI: {reason}");
    }
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: python3 lacks confluent_kafka or fastavro ({reason}); \
         `pip install confluent-kafka fastavro`"
    );
    false
}

/// Runs a future to completion on this thread (rdkafka's admin calls are futures).
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        match future.as_mut().poll(&mut context) {
            Poll::Ready(output) => return output,
            Poll::Pending => std::thread::park_timeout(Duration::from_millis(50)),
        }
    }
}

/// Returns real decisions: the embedded pipeline's on the Tardis BTC trades, the first `count`.
fn real_decisions(state: &Path, count: usize) -> Vec<ScalingDecision> {
    let trades = data("market/tardis_trades.csv");
    let state_arg = state.to_str().expect("utf-8 path");
    ok(&[
        "run",
        "--ticks",
        trades.to_str().expect("utf-8 path"),
        "--state",
        state_arg,
    ]);
    common::consume(state, ScalingDecision::TOPIC)
        .into_iter()
        .take(count)
        .map(|json| serde_json::from_value(json).expect("a decision"))
        .collect()
}

fn create_decision_topic(settings: &KafkaSettings) {
    let admin: AdminClient<DefaultClientContext> =
        settings.client_config().create().expect("admin client");
    let topology = Topology::builtin().expect("built-in topology");
    let partitions = topology
        .topic(ScalingDecision::TOPIC)
        .expect("declared")
        .partitions;
    let name = settings.topic(ScalingDecision::TOPIC);
    let topic = NewTopic::new(&name, partitions as i32, TopicReplication::Fixed(1));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = block_on(admin.create_topics([&topic], &options)).expect("create topics");
    for result in results {
        result.unwrap_or_else(|(topic, code)| panic!("creating {topic}: {code}"));
    }
}

/// Produces `decisions` on their topic, each at the partition and key the outbox gives it,
/// framed by `framing`; returns the partitions used.
fn produce(settings: &KafkaSettings, framing: &Framing, decisions: &[ScalingDecision]) -> Vec<u32> {
    let mut outbox = Outbox::new(&Topology::builtin().expect("built-in topology"));
    for decision in decisions {
        outbox.push(decision).expect("encodes");
    }
    let producer: BaseProducer = settings.client_config().create().expect("producer");
    let mut partitions = Vec::new();
    for record in outbox.take() {
        let topic = settings.topic(record.topic);
        let payload = framing.frame(&record.datum);
        let message = BaseRecord::to(&topic)
            .partition(record.partition as i32)
            .key(record.key.as_bytes())
            .payload(&payload)
            .timestamp(record.ts_us / 1000);
        producer.send(message).map_err(|(e, _)| e).expect("queued");
        partitions.push(record.partition);
    }
    producer.flush(Duration::from_secs(20)).expect("delivered");
    partitions
}

fn read_decisions(brokers: &str, namespace: &str, extra: &[&str]) -> Output {
    let mut command = std::process::Command::new("python3");
    command.args([SCRIPT, "--brokers", brokers, "--namespace", namespace]);
    command.args(extra).output().expect("start python3")
}

fn decoded(output: &Output) -> Vec<ScalingDecision> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

fn by_id(mut decisions: Vec<ScalingDecision>) -> Vec<ScalingDecision> {
    decisions.sort_by(|a, b| a.id.cmp(&b.id));
    decisions
}

#[test]
fn python_reads_back_every_decision_tickscale_produced_once_each() {
    let test = "python_reads_back_every_decision_tickscale_produced_once_each";
    let Some(brokers) = kafka_brokers(test) else {
        return;
    };
    if !python_ready(test) {
        return;
    }
    let state = tempfile::tempdir().expect("temp dir");
    let decisions = real_decisions(&state.path().join("state"), 12);
    assert_eq!(
        decisions.len(),
        12,
        "the Tardis run decides at least 12 times"
    );

    let settings = KafkaSettings {
        brokers: brokers.clone(),
        namespace: kafka_namespace("python-decisions"),
        schema_registry: None,
    };
    create_decision_topic(&settings);
    // The fourth decision goes out twice, as after a stage restarted from its snapshot.
    let mut sent = decisions.clone();
    sent.push(decisions[3].clone());
    let framings = Framings::single_object();
    let partitions = produce(&settings, framings.of::<ScalingDecision>(), &sent);
    let used: BTreeSet<u32> = partitions.into_iter().collect();
    assert!(used.len() > 1, "the decisions span partitions: {used:?}");

    let output = read_decisions(&brokers, &settings.namespace, &[]);
    assert!(output.status.success(), "{}", common::stderr(&output));
    let read = decoded(&output);
    assert_eq!(read.len(), decisions.len(), "the repeat is dropped");
    assert_eq!(by_id(read), by_id(decisions));
}

/// Serves `GET /schemas/ids/{id}` with the decision schema's JSON on loopback, as a schema
/// registry would for that id (and 404 for any other); returns its URL.
fn registry_serving_decisions(id: u32) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let schema = serde_json::to_string(ScalingDecision::schema()).expect("schema json");
    let body = serde_json::json!({ "schema": schema }).to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.expect("accept");
            let mut line = String::new();
            BufReader::new(&stream)
                .read_line(&mut line)
                .expect("request");
            let (status, answer) = match line.starts_with(&format!("GET /schemas/ids/{id} ")) {
                true => ("200 OK", body.clone()),
                false => ("404 Not Found", r#"{"error_code":40403}"#.to_string()),
            };
            let reply = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{answer}",
                answer.len()
            );
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    url
}

#[test]
fn python_reads_registry_framed_decisions_only_when_given_the_registry() {
    let test = "python_reads_registry_framed_decisions_only_when_given_the_registry";
    let Some(brokers) = kafka_brokers(test) else {
        return;
    };
    if !python_ready(test) {
        return;
    }
    let state = tempfile::tempdir().expect("temp dir");
    let decisions = real_decisions(&state.path().join("state"), 3);
    let settings = KafkaSettings {
        brokers: brokers.clone(),
        namespace: kafka_namespace("python-registry"),
        schema_registry: None,
    };
    create_decision_topic(&settings);
    let mut framings = Framings::single_object();
    framings.use_registry_id(ScalingDecision::NAME, 41);
    produce(&settings, framings.of::<ScalingDecision>(), &decisions);

    let registry = registry_serving_decisions(41);
    let output = read_decisions(
        &brokers,
        &settings.namespace,
        &["--schema-registry", &registry],
    );
    assert!(output.status.success(), "{}", common::stderr(&output));
    assert_eq!(by_id(decoded(&output)), by_id(decisions.clone()));

    // Without the registry the script cannot trust the id, and says so for every message.
    let output = read_decisions(&brokers, &settings.namespace, &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(decoded(&output).is_empty());
    let refusals = common::stderr(&output)
        .matches("needs --schema-registry")
        .count();
    assert_eq!(refusals, decisions.len(), "{}", common::stderr(&output));
}

/// Returns the schema registry the registry test uses (`TICKSCALE_SCHEMA_REGISTRY`), or says on
/// the terminal that `test` skips. No registry runs in CI, so this never fails for its absence.
fn schema_registry(test: &str) -> Option<String> {
    match std::env::var("TICKSCALE_SCHEMA_REGISTRY") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: TICKSCALE_SCHEMA_REGISTRY is not set (the URL of a Confluent \
                 schema registry, such as Karapace)"
            );
            None
        }
    }
}

#[test]
fn python_reads_decisions_framed_with_the_ids_a_real_registry_gave() {
    let test = "python_reads_decisions_framed_with_the_ids_a_real_registry_gave";
    let Some(brokers) = kafka_brokers(test) else {
        return;
    };
    let Some(registry) = schema_registry(test) else {
        return;
    };
    if !python_ready(test) {
        return;
    }
    let state = tempfile::tempdir().expect("temp dir");
    let decisions = real_decisions(&state.path().join("state"), 4);
    let settings = KafkaSettings {
        brokers: brokers.clone(),
        namespace: kafka_namespace("python-real-registry"),
        schema_registry: None,
    };
    create_decision_topic(&settings);
    let framings = tickscale::kafka::registry::framings(&registry, &settings).expect("registers");
    let framing = framings.of::<ScalingDecision>();
    assert_eq!(framing.header()[0], 0, "registry framing");
    produce(&settings, framing, &decisions);

    let output = read_decisions(
        &brokers,
        &settings.namespace,
        &["--schema-registry", &registry],
    );
    assert!(output.status.success(), "{}", common::stderr(&output));
    assert_eq!(by_id(decoded(&output)), by_id(decisions));
}
