//! Reads a topic's events from Kafka, for `tickscale consume` and for tests.
//!
//! Consumes every partition of one topic, from the group's committed offsets or from the
//! beginning. Produces the decoded events, in event-time order within each batch handed to the
//! [`Sink`] (the whole topic is one batch unless following), ties broken by partition and
//! offset, as the embedded `consume` orders them. Keeps, for the session, every (event id, key,
//! payload) seen: delivery is at least once, and a stage that restarts re-produces
//! byte-identical events, so a message seen before is a repeat and is dropped (and counted).
//! The event id is the [`EVENT_ID_HEADER`] header where the producer set one; without it, two
//! equal events are taken as one.
//!
//! Guarantees: without following, it stops once every partition has reported its end
//! (partition EOF). With a group, offsets are committed only after the sink has flushed the
//! events before them, and only over an unbroken run of handled offsets per partition, so a
//! reader that stops early (`--limit`, a closed pipe) sees the rest next time. A message that
//! does not unframe or decode is reported with its place and reason, and skipped.
//!
//! Caveats: the set of seen messages grows with the session (about the size of the messages);
//! following a busy topic for days needs a bound on it. Without a group the consumer starts at
//! the beginning of every partition.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::events::Codec;
use crate::pipeline::Routed;

use super::produce::EVENT_ID_HEADER;
use super::{Framing, KafkaSettings};

/// How long to wait for the cluster's metadata and committed offsets.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);
/// Events gathered before a following reader hands them on, even if more are waiting.
const FOLLOW_BATCH: usize = 1_000;

/// Errors of reading a topic.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error(
        "topic {topic} does not exist on {brokers}: create the topics first with `tickscale \
         topics create --brokers {brokers}`"
    )]
    MissingTopic { topic: String, brokers: String },
    #[error("failed to write the events")]
    Output(#[source] std::io::Error),
    #[error(transparent)]
    Bus(#[from] super::Error),
    #[error("{topic} partition {partition} offset {offset}: {reason}")]
    Undecodable {
        topic: String,
        partition: i32,
        offset: i64,
        reason: String,
    },
}

/// What to read.
#[derive(Debug, Clone, Default)]
pub struct ConsumeOptions {
    /// The consumer group whose offsets are read and committed; None commits nothing.
    pub group: Option<String>,
    /// Starts at the beginning even when the group has committed offsets.
    pub from_beginning: bool,
    /// Keeps waiting for new events at the end of the partitions.
    pub follow: bool,
    /// Stops after handing on this many events.
    pub limit: Option<usize>,
}

/// One decoded event and where it was.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivered<T> {
    pub event: T,
    pub partition: i32,
    pub offset: i64,
}

/// Where the events go.
pub trait Sink<T> {
    /// Writes one event.
    ///
    /// # Errors
    /// A closed pipe ends the reading quietly; other errors end it with the error.
    fn write(&mut self, delivered: &Delivered<T>) -> std::io::Result<()>;

    /// Makes every event written so far reach its reader.
    ///
    /// # Errors
    /// As for [`Sink::write`].
    fn flush(&mut self) -> std::io::Result<()>;
}

/// Something the reader met and dropped, for the caller to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A message already seen this session (the same key and payload).
    Repeat { partition: i32, offset: i64 },
    /// A message that does not unframe or decode.
    Skipped {
        topic: String,
        partition: i32,
        offset: i64,
        reason: String,
    },
}

/// How a read ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumeReport {
    pub written: u64,
    pub repeats: u64,
    pub skipped: u64,
}

/// Returns every event of the topic `topic` (a topology name) from the beginning of every
/// partition to its end, repeats dropped, in (event time, partition, offset) order.
///
/// # Errors
/// Fails when the topic is missing or the cluster cannot be read, and at the first message
/// that does not decode.
pub fn read_all<T: Routed>(settings: &KafkaSettings, topic: &str) -> Result<Vec<T>, Error> {
    struct Collect<T>(Vec<T>);
    impl<T: Clone> Sink<T> for Collect<T> {
        fn write(&mut self, delivered: &Delivered<T>) -> std::io::Result<()> {
            self.0.push(delivered.event.clone());
            Ok(())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    let mut sink = Collect(Vec::new());
    let mut first_skipped = None;
    let mut on_notice = |notice: Notice| {
        if let Notice::Skipped {
            topic,
            partition,
            offset,
            reason,
        } = notice
        {
            first_skipped.get_or_insert(Error::Undecodable {
                topic,
                partition,
                offset,
                reason,
            });
        }
    };
    let options = ConsumeOptions::default();
    consume::<T>(settings, topic, &options, &mut sink, &mut on_notice)?;
    match first_skipped {
        Some(error) => Err(error),
        None => Ok(sink.0),
    }
}

/// Reads the topic `topic` (a topology name) as `options` say, handing events to `sink` and
/// what it drops to `on_notice`.
///
/// # Errors
/// Fails when the topic is missing, the cluster cannot be read, offsets cannot be committed,
/// or the sink fails other than by a closed pipe.
pub fn consume<T: Routed>(
    settings: &KafkaSettings,
    topic: &str,
    options: &ConsumeOptions,
    sink: &mut dyn Sink<T>,
    on_notice: &mut dyn FnMut(Notice),
) -> Result<ConsumeReport, Error> {
    let name = settings.topic(topic);
    let (consumer, partitions) = open(settings, &name, options)?;
    let framings = settings.framings()?;
    let mut reader = Reader {
        name: &name,
        framing: framings.of::<T>(),
        codec: Codec::<T>::new(),
        seen: BTreeSet::new(),
        pending: Vec::new(),
        offsets: BTreeMap::new(),
        report: ConsumeReport::default(),
        closed: false,
    };
    let mut at_end = BTreeSet::new();
    let limit = options.limit.unwrap_or(usize::MAX);

    while (reader.report.written as usize) < limit && !reader.closed {
        // A following reader hands on what it has whenever it catches up, or has plenty.
        let catch_up = match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                at_end.remove(&message.partition());
                reader.take(&message, on_notice);
                reader.pending.len() >= FOLLOW_BATCH
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                at_end.insert(partition);
                if at_end.len() >= partitions && !options.follow {
                    break;
                }
                true
            }
            // librdkafka retries on its own; the error says why reading stands still.
            Some(Err(error)) => {
                tracing::warn!(%error, topic = %name, "Fetch failed.");
                false
            }
            None => true,
        };
        if options.follow && catch_up && !reader.pending.is_empty() {
            reader.hand_on(sink, limit)?;
            commit(&consumer, &name, options, &mut reader.offsets)?;
        }
    }
    reader.hand_on(sink, limit)?;
    commit(&consumer, &name, options, &mut reader.offsets)?;
    Ok(reader.report)
}

/// A client context that leaves partition ends to the poll loop: librdkafka also reports them
/// as errors, which would otherwise be logged as such.
struct Quiet;

impl ClientContext for Quiet {
    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() != Some(RDKafkaErrorCode::PartitionEOF) {
            tracing::warn!(%error, reason, "Kafka client error.");
        }
    }
}

impl ConsumerContext for Quiet {}

/// Opens a consumer on every partition of `name`, at the group's offsets or the beginning,
/// and returns it with the partition count.
fn open(
    settings: &KafkaSettings,
    name: &str,
    options: &ConsumeOptions,
) -> Result<(BaseConsumer<Quiet>, usize), Error> {
    // Without a group nothing is committed; librdkafka still wants a group id.
    let group = options.group.clone().unwrap_or_else(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("tickscale-consume-{}-{nanos}", std::process::id())
    });
    let consumer: BaseConsumer<Quiet> = settings
        .client_config()
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        .create_with_context(Quiet)?;

    let metadata = consumer.fetch_metadata(Some(name), METADATA_TIMEOUT)?;
    let partitions = metadata
        .topics()
        .iter()
        .find(|t| t.name() == name && t.error().is_none())
        .map_or(0, |t| t.partitions().len());
    if partitions == 0 {
        return Err(Error::MissingTopic {
            topic: name.to_string(),
            brokers: settings.brokers.clone(),
        });
    }

    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions as i32 {
        assignment.add_partition_offset(name, partition, Offset::Beginning)?;
    }
    if options.group.is_some() && !options.from_beginning {
        let committed = consumer.committed_offsets(assignment.clone(), METADATA_TIMEOUT)?;
        for element in committed.elements() {
            if let Offset::Offset(at) = element.offset() {
                assignment.set_partition_offset(name, element.partition(), Offset::Offset(at))?;
            }
        }
    }
    consumer.assign(&assignment)?;
    Ok((consumer, partitions))
}

/// Commits, per partition, the offset after the unbroken run of handled messages, and forgets
/// the offsets below it.
fn commit(
    consumer: &BaseConsumer<Quiet>,
    name: &str,
    options: &ConsumeOptions,
    offsets: &mut BTreeMap<i32, BTreeMap<i64, bool>>,
) -> Result<(), Error> {
    if options.group.is_none() {
        return Ok(());
    }
    let mut list = TopicPartitionList::new();
    for (partition, handled) in offsets.iter_mut() {
        let next = handled
            .iter()
            .find(|(_, done)| !**done)
            .map(|(offset, _)| *offset)
            .or_else(|| handled.keys().next_back().map(|last| last + 1));
        if let Some(next) = next {
            list.add_partition_offset(name, *partition, Offset::Offset(next))?;
            handled.retain(|offset, _| *offset >= next);
        }
    }
    if list.count() > 0 {
        consumer.commit(&list, CommitMode::Sync)?;
    }
    Ok(())
}

/// The decoding, dropping and bookkeeping of one read.
struct Reader<'a, T: Routed> {
    name: &'a str,
    framing: &'a Framing,
    codec: Codec<T>,
    /// Every (event id, key, payload) seen, each with its length but the payload.
    seen: BTreeSet<Vec<u8>>,
    pending: Vec<Delivered<T>>,
    /// Per partition, each offset met and whether it has been handled (written or dropped).
    offsets: BTreeMap<i32, BTreeMap<i64, bool>>,
    report: ConsumeReport,
    /// True once the sink's reader went away.
    closed: bool,
}

impl<T: Routed> Reader<'_, T> {
    /// Decodes `message` into the pending events, or drops it and says why.
    fn take<M: Message>(&mut self, message: &M, on_notice: &mut dyn FnMut(Notice)) {
        let (partition, offset) = (message.partition(), message.offset());
        let key = message.key().unwrap_or_default();
        let payload = message.payload().unwrap_or_default();
        let id = message.headers().and_then(|headers| {
            headers
                .iter()
                .find(|h| h.key == EVENT_ID_HEADER)
                .and_then(|h| h.value)
        });
        let id = id.unwrap_or_default();
        let mut identity = Vec::with_capacity(8 + id.len() + key.len() + payload.len());
        identity.extend_from_slice(&(id.len() as u32).to_be_bytes());
        identity.extend_from_slice(id);
        identity.extend_from_slice(&(key.len() as u32).to_be_bytes());
        identity.extend_from_slice(key);
        identity.extend_from_slice(payload);
        let handled = self.offsets.entry(partition).or_default();

        if !self.seen.insert(identity) {
            handled.insert(offset, true);
            self.report.repeats += 1;
            on_notice(Notice::Repeat { partition, offset });
            return;
        }
        let decoded = self
            .framing
            .unframe(payload)
            .map_err(|e| e.to_string())
            .and_then(|mut datum| self.codec.decode(&mut datum).map_err(|e| error_chain(&e)));
        match decoded {
            Ok(event) => {
                handled.insert(offset, false);
                self.pending.push(Delivered {
                    event,
                    partition,
                    offset,
                });
            }
            Err(reason) => {
                handled.insert(offset, true);
                self.report.skipped += 1;
                on_notice(Notice::Skipped {
                    topic: self.name.to_string(),
                    partition,
                    offset,
                    reason,
                });
            }
        }
    }

    /// Writes the pending events in (event time, partition, offset) order, up to `limit` in
    /// all, and marks those that reached the reader as handled.
    fn hand_on(&mut self, sink: &mut dyn Sink<T>, limit: usize) -> Result<(), Error> {
        let mut pending = std::mem::take(&mut self.pending);
        if self.closed {
            return Ok(());
        }
        pending.sort_by_key(|d| (d.event.event_time_us(), d.partition, d.offset));
        let room = limit.saturating_sub(self.report.written as usize);
        let mut written = Vec::new();
        for delivered in pending.iter().take(room) {
            match sink.write(delivered) {
                Ok(()) => written.push((delivered.partition, delivered.offset)),
                Err(error) => return self.stopped(error),
            }
        }
        if let Err(error) = sink.flush() {
            return self.stopped(error);
        }
        for (partition, offset) in written {
            if let Some(done) = self
                .offsets
                .get_mut(&partition)
                .and_then(|h| h.get_mut(&offset))
            {
                *done = true;
            }
            self.report.written += 1;
        }
        Ok(())
    }

    /// A closed pipe ends the read with nothing more marked handled; other errors fail it.
    fn stopped(&mut self, error: std::io::Error) -> Result<(), Error> {
        match error.kind() {
            std::io::ErrorKind::BrokenPipe => {
                self.closed = true;
                self.offsets.clear();
                Ok(())
            }
            _ => Err(Error::Output(error)),
        }
    }
}

/// Returns an error and its causes on one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
