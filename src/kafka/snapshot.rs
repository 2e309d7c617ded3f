//! Stage snapshots on the state topic: a stage's state, with the input offsets it covers,
//! under a key naming the stage, its group and its partition.
//!
//! A stage writes a snapshot only after the events it produced up to that point are
//! acknowledged, and commits its group offsets only after the snapshot is: so the committed
//! offsets never pass the newest snapshot, and a stage that restarts anywhere resumes from the
//! snapshot, producing again (identically) what it produced after it. The topic is declared
//! compacted, so only the newest snapshot per key needs to stay; reading them scans the topic.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};

use super::io::{self, Output, Quiet};
use super::{Error, KafkaSettings, STATE_TOPIC};

/// How long a scan of the state topic may take.
const SCAN_TIMEOUT: Duration = Duration::from_secs(60);

/// Returns the newest snapshot of every key that starts with `prefix`.
///
/// # Errors
/// Fails when the state topic is missing or the scan does not reach its end in time.
pub(crate) fn load(
    settings: &KafkaSettings,
    prefix: &str,
) -> Result<BTreeMap<String, Vec<u8>>, Error> {
    let topic = settings.topic(STATE_TOPIC);
    let consumer = io::consumer(settings, "tickscale-state-reader", Quiet)?;
    io::partitions(&consumer, settings, &topic)?;
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(&topic, 0, Offset::Beginning)?;
    consumer.assign(&assignment)?;

    let mut newest = BTreeMap::new();
    let started = Instant::now();
    while started.elapsed() < SCAN_TIMEOUT {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                let key = message.key().map(String::from_utf8_lossy);
                if let Some(key) = key.filter(|k| k.starts_with(prefix)) {
                    let value = message.payload().unwrap_or_default().to_vec();
                    newest.insert(key.into_owned(), value);
                }
            }
            Some(Err(KafkaError::PartitionEOF(_))) => {
                let seconds = started.elapsed().as_secs_f64();
                tracing::debug!(prefix, seconds, keys = newest.len(), "State topic scanned.");
                return Ok(newest);
            }
            Some(Err(error)) => return Err(error.into()),
            None => {}
        }
    }
    Err(Error::Timeout {
        what: format!("the end of {topic}"),
        seconds: SCAN_TIMEOUT.as_secs(),
    })
}

/// Queues a snapshot under `key`; it is durable once `output` flushes.
///
/// # Errors
/// Fails when the producer refuses the message.
pub(crate) fn save(
    output: &Output,
    settings: &KafkaSettings,
    key: &str,
    state: &[u8],
) -> Result<(), Error> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    output.send(&settings.topic(STATE_TOPIC), Some(0), key, state, now_ms)
}

/// Encodes a snapshot.
///
/// # Errors
/// Fails only when the state cannot be serialised, which is a bug.
pub(crate) fn encode<S: serde::Serialize>(key: &str, state: &S) -> Result<Vec<u8>, Error> {
    rmp_serde::to_vec_named(state).map_err(|e| Error::Snapshot {
        key: key.to_string(),
        reason: e.to_string(),
    })
}

/// Decodes a snapshot.
///
/// # Errors
/// Fails when the bytes are not a snapshot of this shape (another version wrote them).
pub(crate) fn decode<S: serde::de::DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<S, Error> {
    rmp_serde::from_slice(bytes).map_err(|e| Error::Snapshot {
        key: key.to_string(),
        reason: e.to_string(),
    })
}
