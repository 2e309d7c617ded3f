//! The embedded log: topics, partitions and offsets in one sled tree, beside the consumer
//! positions and stage state they belong with.
//!
//! Keys (one tree, so one atomic batch covers a whole commit):
//! - `d/<topic>/<partition><base offset>`: a batch of records appended by one transaction;
//! - `e/<topic>/<partition>`: the partition's end offset (the next offset to be written);
//! - `p/<group>/<topic>/<partition>`: a consumer group's position;
//! - `s/<name>`: stage state; `m/<name>`: run metadata.
//!
//! Guarantees: a [`Transaction`] lands whole or not at all, so state never runs ahead of or
//! behind the offsets and outputs it was computed with. After a crash the log reopens at the last
//! transaction that reached sled's own log (sled flushes every 500 ms and on [`EmbeddedLog::flush`]);
//! later work is redone by the caller from the recorded positions.
//!
//! Caveats: one process owns a log at a time (sled locks the folder); retention and compaction
//! from the topology are not enforced on the embedded log yet.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::topology::TopicSpec;

use super::batch;

/// Errors of the embedded log.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to open the log in {dir}: another tickscale process holds it")]
    Locked {
        dir: PathBuf,
        #[source]
        source: sled::Error,
    },
    #[error("{dir} is not a tickscale state folder ({why}); choose another --state folder")]
    NotStateFolder { dir: PathBuf, why: &'static str },
    #[error("failed to use the log in {dir}")]
    Storage {
        dir: PathBuf,
        #[source]
        source: sled::Error,
    },
    #[error("unknown topic `{0}`")]
    UnknownTopic(String),
    #[error("corrupt batch in {topic}/{partition} at offset {offset}")]
    Corrupt {
        topic: String,
        partition: u32,
        offset: u64,
    },
}

/// One record read back from a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub offset: u64,
    pub value: Vec<u8>,
}

/// A durable, partitioned, offset-addressed log in a local folder.
pub struct EmbeddedLog {
    dir: PathBuf,
    db: sled::Db,
    partitions: BTreeMap<String, u32>,
}

impl EmbeddedLog {
    /// Opens (or creates) the log in `dir` with the topics declared in the topology.
    ///
    /// # Errors
    /// Fails when the folder cannot be created or another process holds it.
    pub fn open(dir: &Path, topics: &[TopicSpec]) -> Result<Self, Error> {
        check_folder(dir)?;
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(32 * 1024 * 1024)
            .flush_every_ms(Some(500))
            .use_compression(true)
            .compression_factor(1)
            .open()
            .map_err(|source| match &source {
                sled::Error::Io(io) if io.to_string().contains("lock") => Error::Locked {
                    dir: dir.to_path_buf(),
                    source,
                },
                _ => Error::Storage {
                    dir: dir.to_path_buf(),
                    source,
                },
            })?;
        let partitions = topics
            .iter()
            .map(|t| (t.name.clone(), t.partitions))
            .collect();
        let log = Self {
            dir: dir.to_path_buf(),
            db,
            partitions,
        };
        log.check_marker()?;
        Ok(log)
    }

    /// Marks a new log as tickscale's, and refuses a sled database that is someone else's.
    fn check_marker(&self) -> Result<(), Error> {
        let marker = self.db.get(MARKER_KEY).map_err(|e| self.storage(e))?;
        match marker {
            Some(_) => Ok(()),
            None if self.db.is_empty() => {
                self.db
                    .insert(MARKER_KEY, MARKER_VALUE)
                    .map_err(|e| self.storage(e))?;
                Ok(())
            }
            None => Err(Error::NotStateFolder {
                dir: self.dir.clone(),
                why: "it holds a database that tickscale did not write",
            }),
        }
    }

    /// Removes every record, position and state from the log, keeping the folder and its lock.
    ///
    /// # Errors
    /// Fails on a storage error.
    pub fn clear(&self) -> Result<(), Error> {
        self.db.clear().map_err(|e| self.storage(e))?;
        self.db
            .insert(MARKER_KEY, MARKER_VALUE)
            .map_err(|e| self.storage(e))?;
        self.flush()
    }

    /// Returns the folder the log lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Returns the number of partitions of `topic`.
    ///
    /// # Errors
    /// Fails for a topic the topology does not declare.
    pub fn partitions(&self, topic: &str) -> Result<u32, Error> {
        self.partitions
            .get(topic)
            .copied()
            .ok_or_else(|| Error::UnknownTopic(topic.to_string()))
    }

    /// Returns the next offset that `topic`/`partition` will be written at.
    ///
    /// # Errors
    /// Fails on a storage error.
    pub fn end_offset(&self, topic: &str, partition: u32) -> Result<u64, Error> {
        Ok(self.get_u64(&end_key(topic, partition))?.unwrap_or(0))
    }

    /// Returns up to `max` records of `topic`/`partition` from offset `from` on.
    ///
    /// # Errors
    /// Fails on a storage error or a batch that does not decode.
    pub fn read(
        &self,
        topic: &str,
        partition: u32,
        from: u64,
        max: usize,
    ) -> Result<Vec<Record>, Error> {
        let start = self.batch_start(topic, partition, from)?;
        let prefix = data_prefix(topic, partition);
        let mut out = Vec::new();
        for item in self.db.range(data_key(topic, partition, start)..) {
            let (key, value) = item.map_err(|e| self.storage(e))?;
            if !key.starts_with(&prefix) || out.len() >= max {
                break;
            }
            let base = offset_of(&key, prefix.len());
            let corrupt = || Error::Corrupt {
                topic: topic.into(),
                partition,
                offset: base,
            };
            let records = batch::decode(&value).ok_or_else(corrupt)?;
            for (i, record) in records.into_iter().enumerate() {
                let offset = base + i as u64;
                if offset >= from && out.len() < max {
                    out.push(Record {
                        offset,
                        value: record.to_vec(),
                    });
                }
            }
        }
        Ok(out)
    }

    /// Returns the base offset of the batch holding `offset` (or `offset` when none does).
    fn batch_start(&self, topic: &str, partition: u32, offset: u64) -> Result<u64, Error> {
        let prefix = data_prefix(topic, partition);
        let found = self
            .db
            .range(prefix.clone()..=data_key(topic, partition, offset))
            .next_back();
        match found.transpose().map_err(|e| self.storage(e))? {
            Some((key, _)) if key.starts_with(&prefix) => Ok(offset_of(&key, prefix.len())),
            _ => Ok(offset),
        }
    }

    /// Returns a consumer group's position in `topic`/`partition`, if it has one.
    ///
    /// # Errors
    /// Fails on a storage error.
    pub fn position(&self, group: &str, topic: &str, partition: u32) -> Result<Option<u64>, Error> {
        self.get_u64(&position_key(group, topic, partition))
    }

    /// Returns the stored state named `name`.
    ///
    /// # Errors
    /// Fails on a storage error.
    pub fn state(&self, name: &str) -> Result<Option<Vec<u8>>, Error> {
        let value = self
            .db
            .get(prefixed(b"s/", name))
            .map_err(|e| self.storage(e))?;
        Ok(value.map(|v| v.to_vec()))
    }

    /// Starts a transaction; nothing is visible until [`Transaction::commit`].
    pub fn transaction(&self) -> Transaction<'_> {
        Transaction {
            log: self,
            appends: BTreeMap::new(),
            writes: Vec::new(),
        }
    }

    /// Forces everything committed so far to disk.
    ///
    /// # Errors
    /// Fails on a storage error.
    pub fn flush(&self) -> Result<(), Error> {
        self.db.flush().map(|_| ()).map_err(|e| self.storage(e))
    }

    fn get_u64(&self, key: &[u8]) -> Result<Option<u64>, Error> {
        let value = self.db.get(key).map_err(|e| self.storage(e))?;
        Ok(value
            .and_then(|v| v.as_ref().try_into().ok())
            .map(u64::from_be_bytes))
    }

    fn storage(&self, source: sled::Error) -> Error {
        Error::Storage {
            dir: self.dir.clone(),
            source,
        }
    }
}

/// Appends, positions and state that land together or not at all.
pub struct Transaction<'a> {
    log: &'a EmbeddedLog,
    appends: BTreeMap<String, BTreeMap<u32, Vec<Vec<u8>>>>,
    writes: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Transaction<'_> {
    /// Appends `value` to `topic`, on the partition its `key` maps to.
    ///
    /// # Errors
    /// Fails for a topic the topology does not declare.
    pub fn append(&mut self, topic: &str, key: &str, value: Vec<u8>) -> Result<(), Error> {
        let partition = super::partition_for(key, self.log.partitions(topic)?);
        self.append_to(topic, partition, value)
    }

    /// Appends `value` to `topic`/`partition`.
    ///
    /// # Errors
    /// Fails for a topic the topology does not declare or a partition it does not have.
    pub fn append_to(&mut self, topic: &str, partition: u32, value: Vec<u8>) -> Result<(), Error> {
        if partition >= self.log.partitions(topic)? {
            return Err(Error::UnknownTopic(format!("{topic}/{partition}")));
        }
        // Look up by reference first: appends come in runs on the same few topics.
        let partitions = match self.appends.get_mut(topic) {
            Some(partitions) => partitions,
            None => self.appends.entry(topic.to_string()).or_default(),
        };
        partitions.entry(partition).or_default().push(value);
        Ok(())
    }

    /// Records a consumer group's position (the next offset it will read).
    pub fn set_position(&mut self, group: &str, topic: &str, partition: u32, offset: u64) {
        self.writes.push((
            position_key(group, topic, partition),
            offset.to_be_bytes().to_vec(),
        ));
    }

    /// Stores `value` as the state named `name`.
    pub fn set_state(&mut self, name: &str, value: Vec<u8>) {
        self.writes.push((prefixed(b"s/", name), value));
    }

    /// Returns how many records this transaction appends.
    pub fn appended(&self) -> usize {
        self.appends
            .values()
            .flat_map(|p| p.values())
            .map(Vec::len)
            .sum()
    }

    /// Applies everything atomically.
    ///
    /// # Errors
    /// Fails on a storage error; then nothing was applied.
    pub fn commit(self) -> Result<(), Error> {
        let mut batch = sled::Batch::default();
        for (topic, partitions) in &self.appends {
            for (&partition, records) in partitions {
                let base = self.log.end_offset(topic, partition)?;
                batch.insert(data_key(topic, partition, base), batch::encode(records));
                let end = base + records.len() as u64;
                batch.insert(end_key(topic, partition), end.to_be_bytes().to_vec());
            }
        }
        for (key, value) in self.writes {
            batch.insert(key, value);
        }
        self.log
            .db
            .apply_batch(batch)
            .map_err(|e| self.log.storage(e))
    }
}

const MARKER_KEY: &[u8] = b"m/tickscale";
const MARKER_VALUE: &[u8] = b"embedded log v1";

/// Refuses a path that is a file, or a folder with other things in it than a sled database.
fn check_folder(dir: &Path) -> Result<(), Error> {
    let not_state = |why| Error::NotStateFolder {
        dir: dir.to_path_buf(),
        why,
    };
    if !dir.exists() {
        return Ok(());
    }
    if !dir.is_dir() {
        return Err(not_state("it is not a folder"));
    }
    let entries = std::fs::read_dir(dir).map_err(|_| not_state("it cannot be listed"))?;
    let names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    if !names.is_empty() && !names.iter().any(|n| n == "conf") {
        return Err(not_state("it holds other files"));
    }
    Ok(())
}

fn prefixed(prefix: &[u8], name: &str) -> Vec<u8> {
    [prefix, name.as_bytes()].concat()
}

fn data_prefix(topic: &str, partition: u32) -> Vec<u8> {
    [b"d/", topic.as_bytes(), b"/", &partition.to_be_bytes()].concat()
}

fn data_key(topic: &str, partition: u32, offset: u64) -> Vec<u8> {
    [data_prefix(topic, partition), offset.to_be_bytes().to_vec()].concat()
}

fn offset_of(key: &[u8], prefix_len: usize) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&key[prefix_len..prefix_len + 8]);
    u64::from_be_bytes(bytes)
}

fn end_key(topic: &str, partition: u32) -> Vec<u8> {
    [b"e/", topic.as_bytes(), b"/", &partition.to_be_bytes()].concat()
}

fn position_key(group: &str, topic: &str, partition: u32) -> Vec<u8> {
    [
        b"p/",
        group.as_bytes(),
        b"/",
        topic.as_bytes(),
        b"/",
        &partition.to_be_bytes(),
    ]
    .concat()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::Topology;

    fn open(dir: &Path) -> EmbeddedLog {
        let topology = Topology::builtin().expect("topology");
        EmbeddedLog::open(dir, &topology.topics).expect("open log")
    }

    fn values(records: &[Record]) -> Vec<(u64, String)> {
        records
            .iter()
            .map(|r| (r.offset, String::from_utf8_lossy(&r.value).into_owned()))
            .collect()
    }

    #[test]
    fn records_keep_their_offsets_across_batches_and_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let log = open(dir.path());
            for batch in [["a", "b", "c"].as_slice(), &["d"], &["e", "f"]] {
                let mut tx = log.transaction();
                for v in batch {
                    tx.append("market.regime", "market", v.as_bytes().to_vec())
                        .expect("append");
                }
                tx.commit().expect("commit");
            }
            log.flush().expect("flush");
        }
        let log = open(dir.path());
        assert_eq!(log.end_offset("market.regime", 0).expect("end"), 6);
        let middle = log.read("market.regime", 0, 1, 4).expect("read");
        assert_eq!(
            values(&middle),
            [
                (1, "b".into()),
                (2, "c".into()),
                (3, "d".into()),
                (4, "e".into())
            ]
        );
        assert_eq!(
            values(&log.read("market.regime", 0, 5, 10).expect("read")),
            [(5, "f".into())]
        );
        assert!(log
            .read("market.regime", 0, 6, 10)
            .expect("read")
            .is_empty());
    }

    #[test]
    fn positions_and_state_land_with_the_appends() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = open(dir.path());
        let mut tx = log.transaction();
        tx.append("scaling.decisions", "risk", b"d1".to_vec())
            .expect("append");
        tx.set_position("decide", "load.forecasts", 2, 41);
        tx.set_state("decide", b"{\"n\":1}".to_vec());
        assert_eq!(
            log.state("decide").expect("state"),
            None,
            "nothing is visible before commit"
        );
        tx.commit().expect("commit");

        let partition = crate::bus::partition_for("risk", 6);
        assert_eq!(
            log.end_offset("scaling.decisions", partition).expect("end"),
            1
        );
        assert_eq!(
            log.position("decide", "load.forecasts", 2).expect("pos"),
            Some(41)
        );
        assert_eq!(
            log.state("decide").expect("state"),
            Some(b"{\"n\":1}".to_vec())
        );
    }

    #[test]
    fn a_path_that_is_not_a_folder_is_refused_with_its_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, b"x").expect("write");
        let topology = Topology::builtin().expect("topology");
        let err = EmbeddedLog::open(&file, &topology.topics)
            .err()
            .expect("refused");
        assert!(err.to_string().contains("not-a-dir"), "{err}");
    }

    #[test]
    fn a_folder_holding_other_files_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("notes.txt"), b"precious").expect("write");
        let topology = Topology::builtin().expect("topology");
        let err = EmbeddedLog::open(dir.path(), &topology.topics)
            .err()
            .expect("refused");
        assert!(
            err.to_string().contains("is not a tickscale state folder"),
            "{err}"
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .flatten()
            .collect();
        assert_eq!(names.len(), 1, "nothing was written beside the user's file");
    }

    #[test]
    fn a_sled_database_that_tickscale_did_not_write_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let db = sled::Config::new()
                .path(dir.path())
                .use_compression(true)
                .open()
                .expect("sled");
            db.insert(b"their key", b"their value").expect("insert");
            db.flush().expect("flush");
        }
        let topology = Topology::builtin().expect("topology");
        let err = EmbeddedLog::open(dir.path(), &topology.topics)
            .err()
            .expect("refused");
        assert!(err.to_string().contains("did not write"), "{err}");
    }

    #[test]
    fn clear_empties_the_log_but_keeps_it_usable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = open(dir.path());
        let mut tx = log.transaction();
        tx.append("market.regime", "market", b"x".to_vec())
            .expect("append");
        tx.set_state("pipeline", b"s".to_vec());
        tx.commit().expect("commit");
        log.clear().expect("clear");
        assert_eq!(log.end_offset("market.regime", 0).expect("end"), 0);
        assert_eq!(log.state("pipeline").expect("state"), None);
        drop(log);
        open(dir.path());
    }

    #[test]
    fn unknown_topics_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = open(dir.path());
        let mut tx = log.transaction();
        let err = tx
            .append("no.such.topic", "k", vec![])
            .expect_err("refused");
        assert_eq!(err.to_string(), "unknown topic `no.such.topic`");
    }
}
