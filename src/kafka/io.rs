//! The edges the Kafka stages share: a producer that frames and sends encoded events, consumers
//! set up for manual commits, input decoding, and dead letters for what does not decode.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Message};

use crate::events::{Bar, DeadLetter, MarketContext, PodMetrics, QuoteTick, TradeTick};
use crate::ingest::SourceEvent;
use crate::pipeline::{Codecs, Encoded, Routed};
use crate::topology::REQUIRED_TOPICS;

use super::{Error, Framings, KafkaSettings};

/// How long a checkpoint waits for the broker to acknowledge everything before it gives up.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(120);
/// How long metadata requests wait.
pub(crate) const METADATA_TIMEOUT: Duration = Duration::from_secs(15);

/// Counts failed deliveries, keeps the first reason, and the end of what was delivered to each
/// partition.
#[derive(Default)]
pub(crate) struct Deliveries {
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
    /// Per (topic, partition), one past the highest offset delivered.
    ends: Mutex<BTreeMap<(String, i32), i64>>,
    /// Messages whose delivery report has been recorded, delivered or failed.
    settled: AtomicU64,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(message) => {
                if let Ok(mut ends) = self.ends.lock() {
                    let end = ends
                        .entry((message.topic().to_string(), message.partition()))
                        .or_default();
                    *end = (*end).max(message.offset() + 1);
                }
            }
            Err((error, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut first) = self.first_error.lock() {
                    first.get_or_insert_with(|| error.to_string());
                }
            }
        }
        // Last, so that whoever sees the count also sees what was recorded above.
        self.settled.fetch_add(1, Ordering::Release);
    }
}

/// A consumer context that keeps librdkafka's partition-end notices out of the error log:
/// with `enable.partition.eof` they are expected, and the consumer acts on them itself.
#[derive(Default)]
pub(crate) struct Quiet;

impl ClientContext for Quiet {
    fn error(&self, error: KafkaError, reason: &str) {
        quiet_error(error, reason);
    }
}

impl ConsumerContext for Quiet {}

fn quiet_error(error: KafkaError, reason: &str) {
    let eof = matches!(error, KafkaError::PartitionEOF(_))
        || matches!(&error, KafkaError::Global(RDKafkaErrorCode::PartitionEOF));
    if !eof {
        tracing::warn!(%error, reason, "Kafka client error.");
    }
}

/// Sends framed events to their topics on the cluster.
///
/// The producer is idempotent: the broker drops a retried batch it already has and keeps each
/// partition in send order, so retries during broker trouble neither duplicate nor reorder.
/// Deliveries never time out on their own; [`Output::flush`] bounds the wait.
pub(crate) struct Output {
    producer: ThreadedProducer<Deliveries>,
    settings: KafkaSettings,
    framings: Framings,
    /// Topology topic name to cluster topic name and schema name.
    topics: BTreeMap<&'static str, (String, &'static str)>,
    /// Messages handed to the producer.
    sent: AtomicU64,
}

impl Output {
    /// Connects a producer to the cluster of `settings`.
    ///
    /// # Errors
    /// Fails when the client cannot be created from the settings.
    pub(crate) fn new(settings: &KafkaSettings) -> Result<Self, Error> {
        let producer = settings
            .client_config()
            .set("enable.idempotence", "true")
            .set("message.timeout.ms", "0")
            .set("linger.ms", "5")
            .set("message.max.bytes", "16000000")
            .create_with_context(Deliveries::default())?;
        let topics = REQUIRED_TOPICS
            .iter()
            .map(|(topic, schema)| (*topic, (settings.topic(topic), *schema)))
            .collect();
        Ok(Self {
            producer,
            settings: settings.clone(),
            framings: settings.framings()?,
            topics,
            sent: AtomicU64::new(0),
        })
    }

    /// Frames and queues every record, in order.
    ///
    /// # Errors
    /// Fails when the producer refuses a record for another reason than a full queue.
    pub(crate) fn send_all(&self, records: Vec<Encoded>) -> Result<(), Error> {
        for record in records {
            let Some((topic, schema)) = self.topics.get(record.topic) else {
                unreachable!("the outbox only routes to required topics");
            };
            let payload = self.framings.get(schema).frame(&record.datum);
            self.send(
                topic,
                Some(record.partition as i32),
                &record.key,
                &payload,
                record.ts_us / 1000,
            )?;
        }
        Ok(())
    }

    /// Queues one message, waiting while the local queue is full.
    ///
    /// # Errors
    /// Fails when the producer refuses the message for another reason than a full queue.
    pub(crate) fn send(
        &self,
        topic: &str,
        partition: Option<i32>,
        key: &str,
        payload: &[u8],
        timestamp_ms: i64,
    ) -> Result<(), Error> {
        let mut record = BaseRecord::to(topic)
            .key(key)
            .payload(payload)
            .timestamp(timestamp_ms);
        record.partition = partition;
        loop {
            match self.producer.send(record) {
                Ok(()) => {
                    self.sent.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((error, _)) => return Err(error.into()),
            }
        }
    }

    /// Returns, per partition of the topology topic `topic`, one past the highest offset this
    /// producer has delivered there.
    pub(crate) fn delivered_ends(&self, topic: &str) -> BTreeMap<i32, i64> {
        let Some((name, _)) = self.topics.get(topic) else {
            return BTreeMap::new();
        };
        let ends = self.producer.context().ends.lock();
        ends.map(|ends| {
            ends.iter()
                .filter(|((t, _), _)| t == name)
                .map(|((_, partition), end)| (*partition, *end))
                .collect()
        })
        .unwrap_or_default()
    }

    /// Waits until the broker has acknowledged every queued message.
    ///
    /// # Errors
    /// Fails when a delivery failed or the broker did not answer within two minutes.
    pub(crate) fn flush(&self) -> Result<(), Error> {
        // The producer's own flush polls in steps of 100 ms, which a stage that checkpoints
        // often would wait out every time. The producer's thread serves the delivery reports;
        // this waits until every message sent has had its report recorded.
        let started = Instant::now();
        let sent = self.sent.load(Ordering::Relaxed);
        let deliveries = self.producer.context();
        let unsettled = || sent > deliveries.settled.load(Ordering::Acquire);
        while unsettled() && started.elapsed() < FLUSH_TIMEOUT {
            std::thread::sleep(Duration::from_millis(1));
        }
        if unsettled() {
            return Err(Error::Timeout {
                what: format!(
                    "{} to acknowledge {} messages",
                    self.settings.brokers,
                    self.producer.in_flight_count()
                ),
                seconds: FLUSH_TIMEOUT.as_secs(),
            });
        }
        if deliveries.failed.load(Ordering::Relaxed) > 0 {
            let reason = deliveries
                .first_error
                .lock()
                .ok()
                .and_then(|first| first.clone())
                .unwrap_or_default();
            return Err(Error::Delivery(reason));
        }
        Ok(())
    }
}

/// Returns a consumer in `group` that commits only when told and reports partition ends.
///
/// # Errors
/// Fails when the client cannot be created from the settings.
pub(crate) fn consumer<C: ConsumerContext>(
    settings: &KafkaSettings,
    group: &str,
    context: C,
) -> Result<BaseConsumer<C>, Error> {
    Ok(settings
        .client_config()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        // A member that died hands its partitions over after this long.
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000")
        .set("auto.offset.reset", "earliest")
        .set("fetch.message.max.bytes", "16000000")
        // A fetch at the end of a partition waits this long for new messages before the
        // broker answers empty (librdkafka's default is 500 ms). The stages merge several
        // topics and check for their ends, so every such wait would stall them; 20 ms costs
        // an idle consumer a few more requests a second.
        .set("fetch.wait.max.ms", "20")
        // And after an empty or failed fetch, librdkafka waits 500 ms before the next one,
        // and a second when its local queue is full; both would stall a merge of topics.
        .set("fetch.error.backoff.ms", "20")
        .set("fetch.queue.backoff.ms", "20")
        .create_with_context(context)?)
}

/// Returns how many partitions `topic` has on the cluster.
///
/// # Errors
/// Fails when the topic does not exist there.
pub(crate) fn partitions<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    settings: &KafkaSettings,
    topic: &str,
) -> Result<u32, Error> {
    let metadata = consumer.fetch_metadata(Some(topic), METADATA_TIMEOUT)?;
    let count = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map_or(0, |t| t.partitions().len());
    match count {
        0 => Err(Error::MissingTopic {
            topic: topic.to_string(),
            brokers: settings.brokers.clone(),
        }),
        n => Ok(n as u32),
    }
}

/// Decodes an input message of the topology topic `topic` into the event it carries.
///
/// # Errors
/// Returns the reason when the message does not unframe or decode.
pub(crate) fn decode_source(
    topic: &str,
    payload: &[u8],
    framings: &Framings,
    codecs: &Codecs,
) -> Result<SourceEvent, String> {
    Ok(match topic {
        TradeTick::TOPIC => SourceEvent::Trade(decode(payload, framings, codecs)?),
        QuoteTick::TOPIC => SourceEvent::Quote(decode(payload, framings, codecs)?),
        Bar::TOPIC => SourceEvent::Bar(decode(payload, framings, codecs)?),
        MarketContext::TOPIC => SourceEvent::Context(decode(payload, framings, codecs)?),
        PodMetrics::TOPIC => SourceEvent::Workload(decode(payload, framings, codecs)?),
        other => return Err(format!("{other} is not an input topic")),
    })
}

/// Decodes one message of the event type `T`, checking that nothing follows the datum.
///
/// # Errors
/// Returns the reason when the message does not unframe or decode.
pub(crate) fn decode<T: Routed>(
    payload: &[u8],
    framings: &Framings,
    codecs: &Codecs,
) -> Result<T, String> {
    let mut datum = framings
        .of::<T>()
        .unframe(payload)
        .map_err(|e| e.to_string())?;
    let event = T::codec(codecs).decode(&mut datum).map_err(|e| {
        let cause = std::error::Error::source(&e).map_or(String::new(), |s| format!(": {s}"));
        format!("{e}{cause}")
    })?;
    match datum.is_empty() {
        true => Ok(event),
        false => Err(format!(
            "{} bytes left after the {} datum",
            datum.len(),
            T::NAME
        )),
    }
}

/// Returns the dead letter of a message that did not decode.
pub(crate) fn dead_letter(
    topic: &str,
    partition: i32,
    offset: i64,
    reason: String,
    payload: &[u8],
) -> DeadLetter {
    DeadLetter {
        source: topic.to_string(),
        partition,
        offset,
        reason,
        payload: payload.to_vec(),
    }
}

/// The ordered list of rebalance events a consumer saw, for its owner to act on after a poll.
#[derive(Default)]
pub(crate) struct RebalanceLog {
    events: Mutex<Vec<(bool, Vec<i32>)>>,
}

impl RebalanceLog {
    /// Takes the events since the last call: (assigned, partitions), oldest first.
    pub(crate) fn take(&self) -> Vec<(bool, Vec<i32>)> {
        self.events
            .lock()
            .map(|mut events| std::mem::take(&mut *events))
            .unwrap_or_default()
    }
}

impl ClientContext for RebalanceLog {
    fn error(&self, error: KafkaError, reason: &str) {
        quiet_error(error, reason);
    }
}

impl ConsumerContext for RebalanceLog {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &rdkafka::consumer::Rebalance<'_>) {
        let (assigned, list) = match rebalance {
            rdkafka::consumer::Rebalance::Assign(list) => (true, list),
            rdkafka::consumer::Rebalance::Revoke(list) => (false, list),
            rdkafka::consumer::Rebalance::Error(_) => return,
        };
        let partitions = list.elements().iter().map(|e| e.partition()).collect();
        if let Ok(mut events) = self.events.lock() {
            events.push((assigned, partitions));
        }
    }
}
