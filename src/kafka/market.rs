//! The market stage on Kafka: reads every input topic, in event-time order across partitions,
//! through the same [`MarketStage`] as the embedded run, and produces feature vectors and
//! regimes.
//!
//! Every partition of every input topic is assigned to this one consumer (the windows need one
//! event-time clock over the whole market), so one market stage runs per group; a second one is
//! a hot standby whose identical output readers drop. Messages are merged by event time: the
//! oldest head among all partitions goes next, once every partition either has a head or has
//! reached its end. On a finished recording that order is fixed; while producers are still
//! writing, a partition that is momentarily caught up does not hold the others back, and events
//! it then receives late go through the windows' allowed lateness, as in a live run.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use crate::events::{
    Bar, DeadLetter, FeatureVector, MarketContext, PodMetrics, QuoteTick, TradeTick,
};
use crate::ingest::SourceEvent;
use crate::pipeline::{Codecs, Counters, MarketStage, Outbox, Routed};

use super::io::{self, Output, Quiet};
use super::stages::{fingerprint, StagePlan};
use super::{snapshot, Error, Framings, KafkaSettings};

/// The input topics, in the order that breaks event-time ties.
const INPUTS: [&str; 5] = [
    TradeTick::TOPIC,
    QuoteTick::TOPIC,
    Bar::TOPIC,
    MarketContext::TOPIC,
    PodMetrics::TOPIC,
];

/// Queued messages beyond which a topic's consumer is not polled (unless one of its partitions
/// has nothing queued and is not at its end).
const QUEUE_LIMIT: usize = 50_000;

/// The market stage's snapshot.
#[derive(Serialize, Deserialize)]
struct Snapshot {
    fingerprint: String,
    /// Per input topic (in [`INPUTS`] order), the next offset to read in each partition.
    offsets: Vec<Vec<i64>>,
    done: bool,
    /// Per partition of `features`, one past the highest offset this stage has delivered
    /// there: when `done`, where the service stages have read everything.
    feature_ends: BTreeMap<i32, i64>,
    stage: MarketStage,
}

/// One input partition: what was fetched and not yet taken, and whether it is caught up.
struct Lane {
    topic: usize,
    partition: i32,
    /// The first offset not covered by the snapshot; earlier messages are skipped. A resumed
    /// stage reads each partition from its start rather than seeking there, because a broker
    /// may answer a fetch that starts inside a record batch with the batches after it only
    /// (tansu 0.6 does), which would lose the rest of that batch.
    resume_at: i64,
    queue: VecDeque<(i64, i64, SourceEvent)>,
    at_end: bool,
}

/// What the market stage did.
#[derive(Debug, Clone, Default)]
pub struct MarketReport {
    pub already_complete: bool,
    pub resumed: bool,
    /// Counted over the whole run, across restarts.
    pub counters: Counters,
}

/// The snapshot key of the market stage of `group`.
pub(crate) fn key(group: &str) -> String {
    format!("market/{group}")
}

/// Returns, once the market stage of `plan`'s group has finished its input, the end of what it
/// wrote to each partition of `features`; None while it has not. `snapshots` are the newest
/// snapshots on the state topic ([`snapshot::load`]).
///
/// # Errors
/// Fails when the market stage's snapshot does not decode.
pub(crate) fn finished_ends(
    plan: &StagePlan<'_>,
    snapshots: &BTreeMap<String, Vec<u8>>,
) -> Result<Option<BTreeMap<i32, i64>>, Error> {
    let key = key(&plan.group);
    let Some(bytes) = snapshots.get(&key) else {
        return Ok(None);
    };
    let state: Snapshot = snapshot::decode(&key, bytes)?;
    Ok(state.done.then_some(state.feature_ends))
}

/// Runs the market stage until its input ends (or, when following, until `stop` is set).
///
/// # Errors
/// Fails when the cluster lacks a topic, the state belongs to other settings, or the broker
/// stops acknowledging.
pub fn run(plan: &StagePlan<'_>) -> Result<MarketReport, Error> {
    let key = key(&plan.group);
    let print = fingerprint(plan);
    let mut state = match snapshot::load(plan.settings, &key)?.get(&key) {
        Some(bytes) => {
            let state: Snapshot = snapshot::decode(&key, bytes)?;
            if state.fingerprint != print {
                return Err(Error::OtherSettings { key });
            }
            state
        }
        None => Snapshot {
            fingerprint: print,
            offsets: Vec::new(),
            done: false,
            feature_ends: BTreeMap::new(),
            stage: MarketStage::new(
                plan.config,
                plan.topology.services.clone(),
                plan.traced.clone(),
            ),
        },
    };
    let resumed = !state.offsets.is_empty();
    tracing::debug!(events = state.stage.counters.events_in, offsets = ?state.offsets, resumed, "Market stage starts.");
    if state.done && !plan.follow {
        return Ok(MarketReport {
            already_complete: true,
            resumed,
            counters: state.stage.counters.clone(),
        });
    }
    let output = Output::new(plan.settings)?;
    let inputs = Inputs::open(plan.settings, &plan.group, &state.offsets)?;
    if state.offsets.is_empty() {
        state.offsets = inputs.fresh_offsets();
    }
    let mut work = Work {
        inputs,
        output,
        outbox: Outbox::new(plan.topology),
        framings: plan.settings.framings()?,
        codecs: Codecs::default(),
        since_checkpoint: 0,
    };
    work.drive(plan, &key, &mut state)?;
    Ok(MarketReport {
        already_complete: false,
        resumed,
        counters: state.stage.counters.clone(),
    })
}

struct Work {
    inputs: Inputs,
    output: Output,
    outbox: Outbox,
    framings: Framings,
    codecs: Codecs,
    since_checkpoint: u64,
}

impl Work {
    fn drive(
        &mut self,
        plan: &StagePlan<'_>,
        key: &str,
        state: &mut Snapshot,
    ) -> Result<(), Error> {
        let mut last_checkpoint = Instant::now();
        loop {
            if plan.stopped() {
                return self.checkpoint(plan, key, state);
            }
            let fetched = self.fetch(&mut state.stage)?;
            while let Some((lane, offset, event)) = self.inputs.next_ready() {
                let (topic, partition) = self.inputs.position(lane);
                state.offsets[topic][partition] = offset + 1;
                state.stage.on_event(&event, false, &mut self.outbox)?;
                self.since_checkpoint += 1;
                if self.since_checkpoint >= plan.checkpoint_every {
                    self.checkpoint(plan, key, state)?;
                    last_checkpoint = Instant::now();
                }
            }
            if self.inputs.all_caught_up() {
                if !plan.follow {
                    state.stage.finish(&mut self.outbox)?;
                    state.done = true;
                    return self.checkpoint(plan, key, state);
                }
                if self.since_checkpoint > 0 && last_checkpoint.elapsed() > Duration::from_secs(1) {
                    self.checkpoint(plan, key, state)?;
                    last_checkpoint = Instant::now();
                }
            }
            if fetched == 0 {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Polls the inputs; a message that does not decode becomes a dead letter.
    fn fetch(&mut self, stage: &mut MarketStage) -> Result<usize, Error> {
        let mut letters = Vec::new();
        let fetched = self
            .inputs
            .fetch(&self.framings, &self.codecs, &mut |letter| {
                letters.push(letter)
            });
        for letter in letters {
            stage.on_dead_letter(&letter, &mut self.outbox)?;
        }
        Ok(fetched)
    }

    /// Sends the outbox, waits for it to be acknowledged, then writes the snapshot and commits
    /// the offsets it covers.
    fn checkpoint(
        &mut self,
        plan: &StagePlan<'_>,
        key: &str,
        state: &mut Snapshot,
    ) -> Result<(), Error> {
        self.output.send_all(self.outbox.take())?;
        self.output.flush()?;
        for (partition, end) in self.output.delivered_ends(FeatureVector::TOPIC) {
            let known = state.feature_ends.entry(partition).or_default();
            *known = (*known).max(end);
        }
        let bytes = snapshot::encode(key, state)?;
        snapshot::save(&self.output, plan.settings, key, &bytes)?;
        self.output.flush()?;
        self.inputs.commit(&state.offsets)?;
        self.since_checkpoint = 0;
        tracing::debug!(
            events = state.stage.counters.events_in,
            offsets = ?state.offsets,
            "Market stage checkpoint."
        );
        Ok(())
    }
}

fn event_time(event: &SourceEvent) -> i64 {
    match event {
        SourceEvent::Trade(t) => t.ts_us,
        SourceEvent::Quote(q) => q.ts_us,
        SourceEvent::Bar(b) => b.ts_us,
        SourceEvent::Context(c) => c.ts_us,
        SourceEvent::Workload(m) => m.ts_us,
    }
}

/// Returns true unless one of `topic`'s lanes holds a long queue while none of them is waiting
/// for data: a bound on memory that cannot stall the merge.
fn worth_polling(lanes: &[Lane], topic: usize) -> bool {
    let mut lanes = lanes.iter().filter(|l| l.topic == topic);
    let waiting = lanes.clone().any(|l| l.queue.is_empty() && !l.at_end);
    waiting || lanes.all(|l| l.queue.len() < QUEUE_LIMIT)
}

fn lane_mut(lanes: &mut [Lane], topic: usize, partition: i32) -> &mut Lane {
    let at = lanes
        .iter()
        .position(|l| l.topic == topic && l.partition == partition);
    match at {
        Some(at) => &mut lanes[at],
        None => unreachable!("messages come only from assigned partitions"),
    }
}

/// One assign-only consumer per input topic (so each partition end names its topic), and a
/// lane per partition.
struct Inputs {
    settings: KafkaSettings,
    consumers: Vec<BaseConsumer<Quiet>>,
    lanes: Vec<Lane>,
}

impl Inputs {
    fn open(settings: &KafkaSettings, group: &str, offsets: &[Vec<i64>]) -> Result<Self, Error> {
        let mut consumers = Vec::new();
        let mut lanes = Vec::new();
        for (index, local) in INPUTS.iter().enumerate() {
            let topic = settings.topic(local);
            let consumer =
                io::consumer(settings, &settings.topic(&format!("{group}.market")), Quiet)?;
            let partitions = io::partitions(&consumer, settings, &topic)?;
            let mut assignment = TopicPartitionList::new();
            for partition in 0..partitions as i32 {
                let resume_at = offsets
                    .get(index)
                    .and_then(|o| o.get(partition as usize))
                    .copied()
                    .unwrap_or(0);
                // Read from the start and skip up to the snapshot: see `Lane::resume_at`.
                assignment.add_partition_offset(&topic, partition, Offset::Beginning)?;
                lanes.push(Lane {
                    topic: index,
                    partition,
                    resume_at,
                    queue: VecDeque::new(),
                    at_end: false,
                });
            }
            consumer.assign(&assignment)?;
            consumers.push(consumer);
        }
        Ok(Self {
            settings: settings.clone(),
            consumers,
            lanes,
        })
    }

    /// The offsets of a fresh start: 0 in every partition.
    fn fresh_offsets(&self) -> Vec<Vec<i64>> {
        let mut offsets: Vec<Vec<i64>> = vec![Vec::new(); INPUTS.len()];
        for lane in &self.lanes {
            offsets[lane.topic].push(0);
        }
        offsets
    }

    /// Returns the topic index and partition of lane `index`.
    fn position(&self, index: usize) -> (usize, usize) {
        let lane = &self.lanes[index];
        (lane.topic, lane.partition as usize)
    }

    /// Polls every input consumer for what it has, decoding into the lanes and handing what
    /// does not decode to `on_bad`; returns how many messages came.
    fn fetch(
        &mut self,
        framings: &Framings,
        codecs: &Codecs,
        on_bad: &mut dyn FnMut(DeadLetter),
    ) -> usize {
        let mut fetched = 0;
        let Self {
            consumers, lanes, ..
        } = self;
        for (topic, consumer) in consumers.iter().enumerate() {
            if !worth_polling(lanes, topic) {
                continue;
            }
            for _ in 0..10_000 {
                let message = match consumer.poll(Duration::ZERO) {
                    None => break,
                    Some(Ok(message)) => message,
                    Some(Err(KafkaError::PartitionEOF(partition))) => {
                        lane_mut(lanes, topic, partition).at_end = true;
                        continue;
                    }
                    Some(Err(error)) => {
                        tracing::warn!(%error, topic = INPUTS[topic], "Kafka consumer error; retrying.");
                        break;
                    }
                };
                fetched += 1;
                let payload = message.payload().unwrap_or_default();
                let lane = lane_mut(lanes, topic, message.partition());
                lane.at_end = false;
                if message.offset() < lane.resume_at {
                    continue;
                }
                match io::decode_source(INPUTS[topic], payload, framings, codecs) {
                    Ok(event) => {
                        let ts = event_time(&event);
                        lane.queue.push_back((ts, message.offset(), event));
                    }
                    Err(reason) => on_bad(io::dead_letter(
                        message.topic(),
                        message.partition(),
                        message.offset(),
                        reason,
                        payload,
                    )),
                }
            }
        }
        fetched
    }

    /// Takes the oldest head among the lanes, once every lane has a head or is caught up.
    fn next_ready(&mut self) -> Option<(usize, i64, SourceEvent)> {
        let mut best: Option<(i64, usize)> = None;
        for (index, lane) in self.lanes.iter().enumerate() {
            match lane.queue.front() {
                Some((ts, ..)) => {
                    if best.is_none_or(|(best_ts, _)| *ts < best_ts) {
                        best = Some((*ts, index));
                    }
                }
                None if lane.at_end => {}
                None => return None,
            }
        }
        let (_, index) = best?;
        let (_, offset, event) = self.lanes[index].queue.pop_front()?;
        Some((index, offset, event))
    }

    fn all_caught_up(&self) -> bool {
        self.lanes.iter().all(|l| l.at_end && l.queue.is_empty())
    }

    /// Commits `offsets` to the group, so lag tools see the market stage's progress.
    fn commit(&self, offsets: &[Vec<i64>]) -> Result<(), Error> {
        for (index, consumer) in self.consumers.iter().enumerate() {
            let topic = self.settings.topic(INPUTS[index]);
            let mut list = TopicPartitionList::new();
            for (partition, offset) in offsets[index].iter().enumerate() {
                list.add_partition_offset(&topic, partition as i32, Offset::Offset(*offset))?;
            }
            consumer.commit(&list, rdkafka::consumer::CommitMode::Sync)?;
        }
        Ok(())
    }
}

/// The input topics of a namespace as one stream in event-time order, read from the start of
/// every partition to its current end: what a backtest replays. A message that does not decode
/// comes out as an error with its topic, partition, offset and reason, and the stream goes on.
pub struct TopicEvents {
    inputs: Inputs,
    framings: Framings,
    codecs: Codecs,
    bad: VecDeque<DeadLetter>,
}

impl TopicEvents {
    /// Opens every input topic of `settings`' namespace.
    ///
    /// # Errors
    /// Fails when a topic is missing or the registry cannot be reached.
    pub fn open(settings: &KafkaSettings) -> Result<Self, Error> {
        Ok(Self {
            inputs: Inputs::open(settings, "tickscale-backtest", &[])?,
            framings: settings.framings()?,
            codecs: Codecs::default(),
            bad: VecDeque::new(),
        })
    }
}

impl Iterator for TopicEvents {
    type Item = Result<SourceEvent, DeadLetter>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(letter) = self.bad.pop_front() {
                return Some(Err(letter));
            }
            if let Some((_, _, event)) = self.inputs.next_ready() {
                return Some(Ok(event));
            }
            if self.inputs.all_caught_up() {
                return None;
            }
            let bad = &mut self.bad;
            let fetched = self
                .inputs
                .fetch(&self.framings, &self.codecs, &mut |letter| {
                    bad.push_back(letter)
                });
            if fetched == 0 {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}
