//! Replays recordings onto Kafka: the inputs of a run, as the market stage would find them.
//!
//! Consumes the same inputs as `tickscale run` (market files in any format, workload traces),
//! merged in event-time order by [`MergedSources`]. Produces each event on its topic, keyed, to
//! the partition the [`Outbox`] computes (Kafka's murmur2 on the key), framed as
//! [`super::wire`] describes, with the event time in ms as the Kafka timestamp. Rows that do not
//! parse become [`DeadLetter`]s on the dead-letter topic; a file that cannot be read on stops
//! the replay with its line and reason, after what came before it is delivered.
//!
//! Guarantees: no key's events are reordered or lost when the broker has trouble. The producer
//! is idempotent (tansu 0.6 grants producer ids) and also keeps one request in flight per
//! connection, so order holds even where a broker does not check sequence numbers; retries are
//! unlimited, and by default so is the time a message may wait, so a broker that goes away only
//! delays the replay (the caller is told). With a delivery timeout, a message that runs out of
//! time stops the replay with an error: producing again is safe, as readers drop repeats.
//!
//! Each message carries its event id in the [`EVENT_ID_HEADER`] header: its place in the merged
//! input, so producing the same inputs again yields the same messages, ids included.
//!
//! Caveats: dead letters carry no event time, so the producer's clock stamps them. Pacing
//! follows the input's event time, and a slow broker only makes the replay later, never faster
//! to catch up.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;

use crate::events::DeadLetter;
use crate::ingest::{RowError, SourceEvent};
use crate::pipeline::{Encoded, Item, MergedSources, Outbox, SourceSpec};
use crate::topology::Topology;

use super::{Framings, KafkaSettings};

/// The Kafka header that carries an event's id: its place in the merged input (u64,
/// big-endian), the same each time the same inputs are produced. Two trades can be identical
/// byte for byte (the recordings carry no trade id), so readers tell a repeat from a second,
/// equal event by this id.
pub const EVENT_ID_HEADER: &str = "tickscale-id";

/// How often the caller hears how far the replay is.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);
/// How long deliveries may stand still before the caller is told.
const STALL_AFTER: Duration = Duration::from_secs(5);
/// How long the first look at the cluster waits before producing anyway.
const METADATA_TIMEOUT: Duration = Duration::from_secs(5);

/// Errors of a replay.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error(transparent)]
    Input(#[from] crate::pipeline::Error),
    #[error("failed to encode an event")]
    Codec(#[from] crate::events::CodecError),
    #[error(
        "{count} message(s) not delivered: {reason}; producing again is safe (readers drop \
         repeats)"
    )]
    Undelivered { count: u64, reason: String },
    #[error(
        "topic {topic} does not exist on {brokers}: create the topics first with `tickscale \
         topics create --brokers {brokers}`"
    )]
    MissingTopic { topic: String, brokers: String },
    #[error("unknown speed `{0}`: expected max, realtime or a factor such as 10x")]
    Speed(String),
    #[error(transparent)]
    Bus(#[from] super::Error),
}

/// How fast to replay, relative to the input's event time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    /// As fast as the broker takes it.
    Max,
    /// `factor` times faster than event time (1 keeps the recorded gaps).
    Times(f64),
}

impl std::str::FromStr for Speed {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        let factor = match text {
            "max" => return Ok(Self::Max),
            "realtime" => 1.0,
            other => other
                .strip_suffix('x')
                .and_then(|n| n.parse::<f64>().ok())
                .ok_or_else(|| Error::Speed(text.to_string()))?,
        };
        match factor.is_finite() && factor > 0.0 {
            true => Ok(Self::Times(factor)),
            false => Err(Error::Speed(text.to_string())),
        }
    }
}

/// What to replay and how.
#[derive(Debug, Clone)]
pub struct ProducePlan {
    pub sources: Vec<SourceSpec>,
    pub speed: Speed,
    /// How long a message may wait for the broker; None waits as long as it takes.
    pub delivery_timeout: Option<Duration>,
}

/// What the replay tells its caller while it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Messages handed to the producer and acknowledged so far, and the latest event time.
    Sent {
        sent: u64,
        delivered: u64,
        ts_us: i64,
    },
    /// The broker has trouble; the replay keeps retrying.
    Trouble(String),
}

/// How a replay ended.
#[derive(Debug, Clone, PartialEq)]
pub struct ProduceReport {
    /// Messages delivered per topology topic (dead letters included under theirs).
    pub per_topic: BTreeMap<&'static str, u64>,
    pub dead_letters: u64,
    pub elapsed: Duration,
}

/// Replays the inputs of `plan` onto the topics of `topology` on the cluster of `settings`.
///
/// # Errors
/// Fails when an input cannot be opened or read on (with its file and line), a topic is
/// missing, or messages could not be delivered within the delivery timeout.
pub fn produce(
    settings: &KafkaSettings,
    topology: &Topology,
    plan: &ProducePlan,
    on_progress: &mut dyn FnMut(Progress),
) -> Result<ProduceReport, Error> {
    let started = Instant::now();
    let sources = MergedSources::open(&plan.sources, &vec![0; plan.sources.len()])?;
    let mut sender = Sender::start(settings, plan, on_progress)?;
    sender.check_topics(topology)?;
    let mut outbox = Outbox::new(topology);
    let mut pace = Pace::new(plan.speed);
    let mut dead_letters = 0;

    for (id, item) in (0u64..).zip(sources) {
        match item {
            Item::Event(event) => {
                sender.wait_until(pace.due(event.ts_us()))?;
                sender.latest_us = event.ts_us();
                push_source(&event, &mut outbox)?;
            }
            Item::Unreadable { source, error } if error.fatal => {
                sender.finish()?;
                return Err(crate::pipeline::Error::Unreadable {
                    file: plan.sources[source].name(),
                    line: error.line,
                    reason: error.reason,
                }
                .into());
            }
            Item::Unreadable { source, error } => {
                dead_letters += 1;
                outbox.push(&dead_letter(&plan.sources[source], error))?;
            }
        }
        for record in outbox.take() {
            sender.send(record, id)?;
        }
    }

    sender.finish()?;
    Ok(ProduceReport {
        per_topic: sender.per_topic,
        dead_letters,
        elapsed: started.elapsed(),
    })
}

fn push_source(event: &SourceEvent, out: &mut Outbox) -> Result<(), crate::pipeline::Error> {
    match event {
        SourceEvent::Trade(t) => out.push(t),
        SourceEvent::Quote(q) => out.push(q),
        SourceEvent::Bar(b) => out.push(b),
        SourceEvent::Context(c) => out.push(c),
        SourceEvent::Workload(m) => out.push(m),
    }
}

/// Builds the dead letter of an unreadable row, as the embedded run does.
fn dead_letter(source: &SourceSpec, error: RowError) -> DeadLetter {
    DeadLetter {
        source: source.name(),
        partition: -1,
        offset: error.line as i64,
        reason: error.reason,
        payload: error.raw,
    }
}

/// When each event is due on the wall clock.
struct Pace {
    speed: Speed,
    start: Option<(i64, Instant)>,
}

impl Pace {
    fn new(speed: Speed) -> Self {
        Self { speed, start: None }
    }

    /// Returns when an event of time `ts_us` is due; the first event is due at once.
    fn due(&mut self, ts_us: i64) -> Option<Instant> {
        let Speed::Times(factor) = self.speed else {
            return None;
        };
        let (first_us, first_at) = *self.start.get_or_insert((ts_us, Instant::now()));
        let gap_s = (ts_us - first_us).max(0) as f64 / 1e6 / factor;
        Some(first_at + Duration::from_secs_f64(gap_s))
    }
}

/// Counts deliveries and remembers the broker's complaints, from librdkafka's threads.
#[derive(Default)]
struct Deliveries {
    delivered: AtomicU64,
    failed: AtomicU64,
    first_failure: Mutex<Option<String>>,
    trouble: Mutex<Option<String>>,
}

impl ClientContext for Deliveries {
    fn error(&self, error: KafkaError, reason: &str) {
        let text = match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::AllBrokersDown)
            | Some(RDKafkaErrorCode::BrokerTransportFailure) => {
                format!("broker unreachable, retrying ({reason})")
            }
            _ => format!("broker trouble, retrying: {error} ({reason})"),
        };
        if let Ok(mut trouble) = self.trouble.lock() {
            *trouble = Some(text);
        }
    }
}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((error, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut first) = self.first_failure.lock() {
                    first.get_or_insert_with(|| error.to_string());
                }
            }
        }
    }
}

/// The producer, what it has sent, and the bookkeeping that reports on it.
struct Sender<'a> {
    producer: BaseProducer<Deliveries>,
    settings: KafkaSettings,
    framings: Framings,
    names: BTreeMap<&'static str, String>,
    per_topic: BTreeMap<&'static str, u64>,
    sent: u64,
    latest_us: i64,
    last_progress: Instant,
    /// The delivered count last seen, and since when it has not moved.
    still: (u64, Instant),
    last_stall_report: Option<Instant>,
    on_progress: &'a mut dyn FnMut(Progress),
}

impl<'a> Sender<'a> {
    fn start(
        settings: &KafkaSettings,
        plan: &ProducePlan,
        on_progress: &'a mut dyn FnMut(Progress),
    ) -> Result<Self, Error> {
        let timeout_ms = plan.delivery_timeout.map_or(0, |t| t.as_millis().max(1));
        let producer = settings
            .client_config()
            .set("enable.idempotence", "true")
            .set("max.in.flight.requests.per.connection", "1")
            .set("message.timeout.ms", timeout_ms.to_string())
            .set("linger.ms", "5")
            .set("batch.num.messages", "10000")
            .create_with_context(Deliveries::default())?;
        Ok(Self {
            producer,
            settings: settings.clone(),
            framings: settings.framings()?,
            names: BTreeMap::new(),
            per_topic: BTreeMap::new(),
            sent: 0,
            latest_us: 0,
            last_progress: Instant::now(),
            still: (0, Instant::now()),
            last_stall_report: None,
            on_progress,
        })
    }

    /// Refuses to start when the cluster answers but lacks a topic the inputs may need; when it
    /// does not answer, says so and goes on (librdkafka keeps trying).
    fn check_topics(&mut self, topology: &Topology) -> Result<(), Error> {
        let metadata = match self
            .producer
            .client()
            .fetch_metadata(None, METADATA_TIMEOUT)
        {
            Ok(metadata) => metadata,
            Err(error) => {
                (self.on_progress)(Progress::Trouble(format!(
                    "broker unreachable, retrying ({error})"
                )));
                return Ok(());
            }
        };
        for topic in &topology.topics {
            let name = self.settings.topic(&topic.name);
            let found = metadata
                .topics()
                .iter()
                .any(|t| t.name() == name && t.error().is_none() && !t.partitions().is_empty());
            if !found {
                return Err(Error::MissingTopic {
                    topic: name,
                    brokers: self.settings.brokers.clone(),
                });
            }
        }
        Ok(())
    }

    /// Hands `record` to the producer with its event id, waiting while its queue is full.
    fn send(&mut self, record: Encoded, id: u64) -> Result<(), Error> {
        let framed = self
            .framings
            .get(schema_of(record.topic))
            .frame(&record.datum);
        let topic = self
            .names
            .entry(record.topic)
            .or_insert_with(|| self.settings.topic(record.topic))
            .clone();
        // Dead letters have no event time (0): the producer's clock stamps them.
        let timestamp = (record.ts_us > 0).then_some(record.ts_us / 1_000);
        let id = id.to_be_bytes();
        loop {
            let headers = OwnedHeaders::new_with_capacity(1).insert(Header {
                key: EVENT_ID_HEADER,
                value: Some(&id),
            });
            let mut message = BaseRecord::to(&topic)
                .partition(record.partition as i32)
                .key(&*record.key)
                .payload(&framed)
                .headers(headers);
            if let Some(ms) = timestamp {
                message = message.timestamp(ms);
            }
            match self.producer.send(message) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    self.poll(Duration::from_millis(50))?;
                }
                Err((error, _)) => return Err(error.into()),
            }
        }
        self.sent += 1;
        *self.per_topic.entry(record.topic).or_insert(0) += 1;
        self.poll(Duration::ZERO)
    }

    /// Serves delivery reports until `due`, when pacing asks to wait.
    fn wait_until(&mut self, due: Option<Instant>) -> Result<(), Error> {
        let Some(due) = due else { return Ok(()) };
        loop {
            let left = due.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            self.poll(left.min(Duration::from_millis(50)))?;
        }
    }

    /// Waits until every message sent is acknowledged.
    fn finish(&mut self) -> Result<(), Error> {
        while self.producer.in_flight_count() > 0 {
            self.poll(Duration::from_millis(100))?;
        }
        self.report(true);
        Ok(())
    }

    /// Serves delivery reports for up to `timeout`, tells the caller how things go, and stops
    /// at the first failed delivery: going on would put later messages ahead of it.
    fn poll(&mut self, timeout: Duration) -> Result<(), Error> {
        self.producer.poll(timeout);
        let context = self.producer.context();
        if let Some((code, reason)) = self.producer.client().fatal_error() {
            return Err(self.undelivered(format!("{code}: {reason}")));
        }
        if context.failed.load(Ordering::Relaxed) > 0 {
            let reason = context
                .first_failure
                .lock()
                .ok()
                .and_then(|first| first.clone())
                .unwrap_or_default();
            return Err(self.undelivered(reason));
        }
        self.report(false);
        Ok(())
    }

    fn undelivered(&self, reason: String) -> Error {
        let delivered = self.producer.context().delivered.load(Ordering::Relaxed);
        if reason.contains("Unknown topic") || reason.contains("UnknownTopic") {
            return Error::MissingTopic {
                topic: reason,
                brokers: self.settings.brokers.clone(),
            };
        }
        Error::Undelivered {
            count: self.sent.saturating_sub(delivered),
            reason,
        }
    }

    /// Passes on the broker's complaints, a stall, and (every [`PROGRESS_EVERY`]) progress.
    fn report(&mut self, force: bool) {
        let context = self.producer.context();
        let trouble = context.trouble.lock().ok().and_then(|mut t| t.take());
        let delivered = context.delivered.load(Ordering::Relaxed);
        let now = Instant::now();
        if delivered != self.still.0 {
            self.still = (delivered, now);
        }
        let stalled = delivered < self.sent && now - self.still.1 >= STALL_AFTER;
        let report_due = self
            .last_stall_report
            .is_none_or(|at| now - at >= STALL_AFTER);
        if let Some(trouble) = trouble {
            (self.on_progress)(Progress::Trouble(trouble));
        } else if stalled && report_due {
            self.last_stall_report = Some(now);
            (self.on_progress)(Progress::Trouble(format!(
                "no delivery for {} s with {} message(s) waiting, retrying",
                (now - self.still.1).as_secs(),
                self.sent - delivered
            )));
        }
        if force || now - self.last_progress >= PROGRESS_EVERY {
            self.last_progress = now;
            (self.on_progress)(Progress::Sent {
                sent: self.sent,
                delivered,
                ts_us: self.latest_us,
            });
        }
    }
}

/// Returns the schema name of a topology topic the pipeline routes to.
fn schema_of(topic: &str) -> &'static str {
    crate::topology::REQUIRED_TOPICS
        .iter()
        .find(|(name, _)| *name == topic)
        .map_or("", |(_, schema)| schema)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speeds_parse_as_max_realtime_or_a_factor() {
        assert_eq!("max".parse::<Speed>().ok(), Some(Speed::Max));
        assert_eq!("realtime".parse::<Speed>().ok(), Some(Speed::Times(1.0)));
        assert_eq!("10x".parse::<Speed>().ok(), Some(Speed::Times(10.0)));
        assert_eq!("0.5x".parse::<Speed>().ok(), Some(Speed::Times(0.5)));
        for bad in ["0x", "-2x", "10", "fast", "infx", "NaNx"] {
            assert!(bad.parse::<Speed>().is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn pacing_at_ten_times_puts_an_event_a_tenth_of_its_gap_later() {
        let mut pace = Pace::new(Speed::Times(10.0));
        let first = pace.due(5_000_000).expect("paced");
        let later = pace.due(7_000_000).expect("paced");
        assert_eq!(later - first, Duration::from_millis(200));
        // An event behind the first (another source's clock) is due at once, not before.
        assert_eq!(pace.due(1_000_000), Some(first));
        assert_eq!(Pace::new(Speed::Max).due(1), None);
    }

    #[test]
    fn every_routed_topic_has_a_schema() {
        assert_eq!(schema_of("market.ticks"), "TradeTick");
        assert_eq!(schema_of("deadletter"), "DeadLetter");
    }
}
