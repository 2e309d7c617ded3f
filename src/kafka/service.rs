//! The per-service stage on Kafka: reads `features` in a consumer group, one [`ServiceStage`]
//! per assigned partition, and produces forecasts, decisions, outcomes and model events.
//!
//! Services are the partitioning key of `features`, so each service's windows arrive in order
//! on one partition, and the processes of a group split the services between them. Each
//! partition's stage state is a snapshot on the state topic, with the next offset it covers.
//! On every rebalance a process drops the stages of the partitions it lost; a partition it gets
//! (again) is loaded from its newest snapshot, and messages before the snapshot's offset are
//! skipped. The group commits no offsets: the snapshots are the positions, and a partition is
//! always read from its start, because a broker may answer a fetch that starts inside a record
//! batch with the batches after it only (tansu 0.6 does), which would lose the rest of it.
//!
//! Duplicates: a feature vector for a window its service has already passed (the market stage
//! produced it twice, after a restart) is skipped. What this stage produced after its newest
//! snapshot is produced again, identically, by whichever process resumes the partition; readers
//! drop those repeats by their deterministic ids.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedMessage;
use rdkafka::Message;
use serde::{Deserialize, Serialize};

use crate::events::FeatureVector;
use crate::pipeline::{Codecs, Outbox, Routed, ServiceStage};

use super::io::{self, Output, RebalanceLog};
use super::stages::{fingerprint, StagePlan};
use super::{market, snapshot, Error, Framings};

/// Without input for this long, a run that does not follow asks whether it is finished.
const IDLE_BEFORE_CHECK: Duration = Duration::from_millis(100);
/// How often a finished-looking run asks whether the market stage is done.
const DONE_CHECK_EVERY: Duration = Duration::from_millis(250);

/// How long the unfinished partitions of a finished input may stay where they are before this
/// process rejoins the group: beyond the session timeout, after which a dead member's
/// partitions are free.
const REJOIN_AFTER: Duration = Duration::from_secs(15);

/// One partition's snapshot.
#[derive(Serialize, Deserialize)]
struct Snapshot {
    fingerprint: String,
    /// The next offset of the partition to process.
    next_offset: i64,
    /// Per service, the end of the last window processed.
    last_window: BTreeMap<String, i64>,
    stage: ServiceStage,
}

/// What this process's service stage did.
#[derive(Debug, Clone, Default)]
pub struct ServiceReport {
    /// Decisions made by this process in this run.
    pub decisions: u64,
    /// Every partition this process held at some point.
    pub partitions: BTreeSet<i32>,
    /// Feature vectors skipped because their window had been processed already.
    pub repeats_skipped: u64,
    pub dead_letters: u64,
}

/// The snapshot key of partition `partition` of `group`'s service stage.
fn key(group: &str, partition: i32) -> String {
    format!("service/{group}/{partition}")
}

/// Runs the service stage until the market stage is done and every assigned partition is
/// drained (or, when following, until a stop is asked for).
///
/// # Errors
/// Fails when the cluster lacks a topic, the state belongs to other settings, or the broker
/// stops acknowledging.
pub fn run(plan: &StagePlan<'_>) -> Result<ServiceReport, Error> {
    let topic = plan.settings.topic(FeatureVector::TOPIC);
    let group = plan.settings.topic(&format!("{}.service", plan.group));
    let consumer = io::consumer(plan.settings, &group, RebalanceLog::default())?;
    let partitions = io::partitions(&consumer, plan.settings, &topic)?;
    consumer.subscribe(&[&topic])?;
    let mut work = Work {
        consumer,
        output: Output::new(plan.settings)?,
        outbox: Outbox::new(plan.topology),
        framings: plan.settings.framings()?,
        codecs: Codecs::default(),
        slots: BTreeMap::new(),
        stored: BTreeMap::new(),
        assigned: BTreeSet::new(),
        since_checkpoint: 0,
        report: ServiceReport::default(),
        partitions,
        fingerprint: fingerprint(plan),
    };
    work.drive(plan)?;
    Ok(work.report)
}

struct Slot {
    state: Snapshot,
    dirty: bool,
}

struct Work {
    consumer: BaseConsumer<RebalanceLog>,
    output: Output,
    outbox: Outbox,
    framings: Framings,
    codecs: Codecs,
    slots: BTreeMap<i32, Slot>,
    /// The newest snapshots read at the last assignment, by partition.
    stored: BTreeMap<i32, Vec<u8>>,
    assigned: BTreeSet<i32>,
    since_checkpoint: u64,
    report: ServiceReport,
    /// How many partitions `features` has.
    partitions: u32,
    fingerprint: String,
}

impl Work {
    fn drive(&mut self, plan: &StagePlan<'_>) -> Result<(), Error> {
        let mut last_input = Instant::now();
        let mut last_done_check: Option<Instant> = None;
        let mut stalled: Option<(Vec<i64>, Instant)> = None;
        loop {
            if plan.stopped() {
                return self.checkpoint(plan);
            }
            let polled = self.consumer.poll(Duration::from_millis(100));
            let polled = polled.map(|result| result.map(|m| m.detach()));
            self.on_rebalances(plan)?;
            match polled {
                Some(Ok(message)) => {
                    last_input = Instant::now();
                    self.on_message(plan, &message)?;
                }
                Some(Err(KafkaError::PartitionEOF(_))) => {}
                Some(Err(error)) => tracing::warn!(%error, "Kafka consumer error; retrying."),
                None => {}
            }
            let idle = last_input.elapsed();
            if self.since_checkpoint >= plan.checkpoint_every
                || (self.since_checkpoint > 0 && idle > Duration::from_millis(500))
            {
                self.checkpoint(plan)?;
            }
            if plan.follow || idle < IDLE_BEFORE_CHECK {
                continue;
            }
            if last_done_check.is_some_and(|at| at.elapsed() < DONE_CHECK_EVERY) {
                continue;
            }
            last_done_check = Some(Instant::now());
            // One scan of the state topic answers both questions.
            let snapshots = snapshot::load(plan.settings, "")?;
            let Some(ends) = market::finished_ends(plan, &snapshots)? else {
                continue;
            };
            let positions = self.positions(plan, &snapshots)?;
            let finished = positions.iter().enumerate().all(|(partition, position)| {
                *position >= ends.get(&(partition as i32)).copied().unwrap_or(0)
            });
            if finished {
                return self.checkpoint(plan);
            }
            // A member that died may keep its partitions in the group for as long as the
            // broker takes to notice (some brokers never reassign them until a member
            // rejoins), so a process that sees no progress for a while rejoins.
            match &stalled {
                Some((seen, since)) if *seen == positions => {
                    if since.elapsed() > REJOIN_AFTER {
                        self.rejoin(plan)?;
                        stalled = None;
                    }
                }
                _ => stalled = Some((positions, Instant::now())),
            }
        }
    }

    /// Returns, per partition, how far it has been processed, by this process or (from its
    /// snapshot) by another. Once every position reaches the ends the finished market stage
    /// wrote, the process leaves; not before, so that a partition held by a member that died
    /// is taken over once the group notices.
    fn positions(
        &self,
        plan: &StagePlan<'_>,
        stored: &BTreeMap<String, Vec<u8>>,
    ) -> Result<Vec<i64>, Error> {
        (0..self.partitions as i32)
            .map(|partition| {
                let key = key(&plan.group, partition);
                Ok(match (self.slots.get(&partition), stored.get(&key)) {
                    (Some(slot), _) => slot.state.next_offset,
                    (None, Some(bytes)) => snapshot::decode::<Snapshot>(&key, bytes)?.next_offset,
                    (None, None) => 0,
                })
            })
            .collect()
    }

    /// Leaves the group and joins it again, after saving what this process holds.
    fn rejoin(&mut self, plan: &StagePlan<'_>) -> Result<(), Error> {
        tracing::info!(
            "Partitions left unfinished by another member have not moved; asking the group \
             to reassign them."
        );
        self.checkpoint(plan)?;
        self.consumer.unsubscribe();
        self.consumer
            .subscribe(&[&plan.settings.topic(FeatureVector::TOPIC)])?;
        Ok(())
    }

    /// Acts on what the group changed during the last poll: lost partitions are dropped
    /// unsaved (their next owner resumes from the snapshot), new ones load on first use.
    fn on_rebalances(&mut self, plan: &StagePlan<'_>) -> Result<(), Error> {
        for (assigned, partitions) in self.consumer.context().take() {
            for partition in &partitions {
                self.slots.remove(partition);
                match assigned {
                    true => self.assigned.insert(*partition),
                    false => self.assigned.remove(partition),
                };
            }
            if assigned {
                self.report.partitions.extend(&partitions);
                let prefix = format!("service/{}/", plan.group);
                self.stored = snapshot::load(plan.settings, &prefix)?
                    .into_iter()
                    .filter_map(|(key, bytes)| {
                        let partition = key.strip_prefix(&prefix)?.parse().ok()?;
                        Some((partition, bytes))
                    })
                    .collect();
                tracing::info!(?partitions, "Service stage assigned partitions.");
            }
        }
        Ok(())
    }

    fn on_message(&mut self, plan: &StagePlan<'_>, message: &OwnedMessage) -> Result<(), Error> {
        let partition = message.partition();
        self.slot(plan, partition)?;
        let Some(slot) = self.slots.get_mut(&partition) else {
            unreachable!("loaded above");
        };
        if message.offset() < slot.state.next_offset {
            return Ok(());
        }
        slot.state.next_offset = message.offset() + 1;
        slot.dirty = true;
        self.since_checkpoint += 1;

        let payload = message.payload().unwrap_or_default();
        let feature = match io::decode::<FeatureVector>(payload, &self.framings, &self.codecs) {
            Ok(feature) => feature,
            Err(reason) => {
                let letter = io::dead_letter(
                    message.topic(),
                    partition,
                    message.offset(),
                    reason,
                    payload,
                );
                self.report.dead_letters += 1;
                return Ok(self.outbox.push(&letter)?);
            }
        };
        let last = slot.state.last_window.get(&feature.service).copied();
        if last.is_some_and(|end| feature.window_end_us <= end) {
            self.report.repeats_skipped += 1;
            return Ok(());
        }
        slot.state
            .last_window
            .insert(feature.service.clone(), feature.window_end_us);
        if slot.state.stage.on_feature(&feature, &mut self.outbox)? {
            self.report.decisions += 1;
        }
        Ok(())
    }

    /// Loads the stage of `partition` from its snapshot, unless it is loaded already.
    fn slot(&mut self, plan: &StagePlan<'_>, partition: i32) -> Result<(), Error> {
        if !self.slots.contains_key(&partition) {
            let state = match self.stored.get(&partition) {
                Some(bytes) => {
                    let key = key(&plan.group, partition);
                    let state: Snapshot = snapshot::decode(&key, bytes)?;
                    if state.fingerprint != self.fingerprint {
                        return Err(Error::OtherSettings { key });
                    }
                    state
                }
                None => Snapshot {
                    fingerprint: self.fingerprint.clone(),
                    next_offset: 0,
                    last_window: BTreeMap::new(),
                    stage: ServiceStage::new(plan.config, plan.topology.services.clone()),
                },
            };
            self.slots.insert(
                partition,
                Slot {
                    state,
                    dirty: false,
                },
            );
        }
        Ok(())
    }

    /// Sends the outbox and waits for it, then saves the changed partitions' snapshots.
    fn checkpoint(&mut self, plan: &StagePlan<'_>) -> Result<(), Error> {
        self.output.send_all(self.outbox.take())?;
        self.output.flush()?;
        for (partition, slot) in &mut self.slots {
            if !slot.dirty {
                continue;
            }
            let key = key(&plan.group, *partition);
            let bytes = snapshot::encode(&key, &slot.state)?;
            snapshot::save(&self.output, plan.settings, &key, &bytes)?;
            slot.dirty = false;
        }
        self.output.flush()?;
        self.since_checkpoint = 0;
        Ok(())
    }
}
