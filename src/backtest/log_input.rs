//! The input topics of a recorded embedded log, read back as one stream in event-time order.
//!
//! **Consumes** the five input topics (`market.ticks`, `market.quotes`, `market.bars`,
//! `market.context`, `pods.metrics`) of a state folder that `tickscale run` wrote, every
//! partition from offset 0. **Produces** [`SourceEvent`]s, merged across partitions by event
//! time (ties go to the topic listed first, then the lower partition). **Keeps** one cursor per
//! partition with a chunk of decoded records, so memory stays bounded whatever the log's size.
//! **Guarantees**: the same log gives the same stream. Within a partition, records come in
//! offset order, as a consumer reads them.

use std::collections::{BTreeSet, VecDeque};
use std::path::Path;

use crate::bus::EmbeddedLog;
use crate::events::{Bar, Codec, MarketContext, PodMetrics, QuoteTick, TradeTick};
use crate::ingest::SourceEvent;
use crate::pipeline::Routed;
use crate::topology::TopicSpec;

use super::Error;

/// Records decoded per read of one partition.
const CHUNK: usize = 4096;

/// The input topics, in the order ties are broken.
pub const INPUT_TOPICS: [&str; 5] = [
    TradeTick::TOPIC,
    QuoteTick::TOPIC,
    Bar::TOPIC,
    MarketContext::TOPIC,
    PodMetrics::TOPIC,
];

/// One codec per input topic.
#[derive(Default)]
struct Decoders {
    trade: Codec<TradeTick>,
    quote: Codec<QuoteTick>,
    bar: Codec<Bar>,
    context: Codec<MarketContext>,
    metrics: Codec<PodMetrics>,
}

impl Decoders {
    fn decode(
        &self,
        topic: usize,
        mut bytes: &[u8],
    ) -> Result<SourceEvent, crate::events::CodecError> {
        let input = &mut bytes;
        Ok(match topic {
            0 => SourceEvent::Trade(self.trade.decode(input)?),
            1 => SourceEvent::Quote(self.quote.decode(input)?),
            2 => SourceEvent::Bar(self.bar.decode(input)?),
            3 => SourceEvent::Context(self.context.decode(input)?),
            _ => SourceEvent::Workload(self.metrics.decode(input)?),
        })
    }
}

/// One partition being read.
struct Cursor {
    topic: usize,
    partition: u32,
    next_offset: u64,
    end_offset: u64,
    ready: VecDeque<SourceEvent>,
}

/// The input topics of one log, merged in event-time order.
pub struct LogEvents {
    log: EmbeddedLog,
    decoders: Decoders,
    cursors: Vec<Cursor>,
    total: u64,
}

impl LogEvents {
    /// Opens the log in `dir` (which must exist) with the topics of `topics`.
    ///
    /// # Errors
    /// Fails when the folder is missing, is not a tickscale log, or is locked by a running
    /// process.
    pub fn open(dir: &Path, topics: &[TopicSpec]) -> Result<Self, Error> {
        if !dir.is_dir() {
            return Err(Error::NoLog(dir.to_path_buf()));
        }
        let log = EmbeddedLog::open(dir, topics)?;
        let mut cursors = Vec::new();
        let mut total = 0;
        for (topic, name) in INPUT_TOPICS.iter().enumerate() {
            for partition in 0..log.partitions(name)? {
                let end_offset = log.end_offset(name, partition)?;
                total += end_offset;
                cursors.push(Cursor {
                    topic,
                    partition,
                    next_offset: 0,
                    end_offset,
                    ready: VecDeque::new(),
                });
            }
        }
        Ok(Self {
            log,
            decoders: Decoders::default(),
            cursors,
            total,
        })
    }

    /// Returns how many input records the log holds.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Returns the services whose load the log's workload samples carry, and the interval of
    /// its first bar, if any (reads `pods.metrics` through once).
    ///
    /// # Errors
    /// Fails on a storage error or a record that does not decode.
    pub fn inputs_seen(&self) -> Result<(BTreeSet<String>, Option<i64>), Error> {
        let mut traced = BTreeSet::new();
        let mut bar_interval = None;
        for cursor in &self.cursors {
            let name = INPUT_TOPICS[cursor.topic];
            let wanted = match cursor.topic {
                2 => 1,
                4 => cursor.end_offset,
                _ => continue,
            };
            let mut from = 0;
            while from < wanted {
                let records = self.log.read(name, cursor.partition, from, CHUNK)?;
                let Some(last) = records.last() else { break };
                from = last.offset + 1;
                for record in records.iter().take(wanted as usize) {
                    match self.decode(cursor.topic, record)? {
                        SourceEvent::Workload(m) => {
                            traced.insert(m.service);
                        }
                        SourceEvent::Bar(b) => bar_interval = bar_interval.max(Some(b.interval_s)),
                        _ => {}
                    }
                }
            }
        }
        Ok((traced, bar_interval))
    }

    fn decode(&self, topic: usize, record: &crate::bus::Record) -> Result<SourceEvent, Error> {
        self.decoders
            .decode(topic, &record.value)
            .map_err(|source| Error::Decode {
                topic: INPUT_TOPICS[topic],
                offset: record.offset,
                source,
            })
    }

    /// Refills a cursor's chunk when it ran dry and records remain.
    fn refill(&mut self, index: usize) -> Result<(), Error> {
        let cursor = &self.cursors[index];
        if !cursor.ready.is_empty() || cursor.next_offset >= cursor.end_offset {
            return Ok(());
        }
        let (topic, partition, from) = (cursor.topic, cursor.partition, cursor.next_offset);
        let records = self.log.read(INPUT_TOPICS[topic], partition, from, CHUNK)?;
        let mut decoded = VecDeque::with_capacity(records.len());
        for record in &records {
            decoded.push_back(self.decode(topic, record)?);
        }
        let cursor = &mut self.cursors[index];
        cursor.next_offset = records.last().map_or(cursor.end_offset, |r| r.offset + 1);
        cursor.ready = decoded;
        Ok(())
    }

    /// Returns the next event in event-time order, or `None` at the end of every partition.
    ///
    /// # Errors
    /// Fails on a storage error or a record that does not decode.
    pub fn next_event(&mut self) -> Result<Option<SourceEvent>, Error> {
        for index in 0..self.cursors.len() {
            self.refill(index)?;
        }
        let earliest = self
            .cursors
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.ready.front().map(|e| (e.ts_us(), i)))
            .min();
        Ok(earliest.and_then(|(_, i)| self.cursors[i].ready.pop_front()))
    }
}

impl Iterator for LogEvents {
    type Item = Result<SourceEvent, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_event().transpose()
    }
}
