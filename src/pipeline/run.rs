//! The run loop: read the merged inputs, drive the stages, and checkpoint outputs, stage state
//! and input positions in one atomic commit.
//!
//! Resuming: the checkpoint holds how many records each input had handed out. A restarted run
//! reopens the inputs, skips those records, restores the stages, and carries on; since the
//! stages are deterministic and the checkpoint is atomic, the events after a crash are the ones
//! an uninterrupted run would have written, each exactly once.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::bus::EmbeddedLog;
use crate::events::{DeadLetter, ScalingDecision};
use crate::ingest::RowError;
use crate::topology::{ServiceSpec, Topology};

use super::outbox::{append_all, Encoded, Outbox};
use super::sources::{describe_file, Item, MergedSources, SourceSpec};
use super::stages::{Counters, StageConfig, Stages};
use super::Error;

const STATE_KEY: &str = "pipeline";

/// What to run.
#[derive(Debug, Clone)]
pub struct RunPlan {
    pub sources: Vec<SourceSpec>,
    pub config: StageConfig,
    /// Input events between two checkpoints.
    pub checkpoint_every: u64,
    /// Event-time seconds between two live summaries.
    pub summary_every_s: i64,
}

/// The checkpointed state of a run.
#[derive(Serialize, Deserialize)]
struct RunState {
    fingerprint: String,
    taken: Vec<u64>,
    done: bool,
    stages: Stages,
}

/// What the run loop reports while it goes.
pub enum Progress<'a> {
    /// A live summary at a window's end (event time).
    Summary {
        ts_us: i64,
        regime: &'a str,
        stages: &'a Stages,
    },
    /// A checkpoint landed.
    Checkpoint { counters: Counters },
}

/// How a run ended.
pub struct Report {
    /// True when the state folder already held this run, finished.
    pub already_complete: bool,
    /// True when the run continued from a checkpoint.
    pub resumed: bool,
    pub counters: Counters,
    pub services: Vec<ServiceSpec>,
    pub latest: Vec<Option<ScalingDecision>>,
    pub peak: Vec<(i64, i64)>,
}

/// Runs `plan` on `log`, resuming from its checkpoint when it holds one of the same run.
///
/// The stages run on the calling thread; a second thread encodes each checkpoint's events and
/// commits them with the state, so storing overlaps with computing. At most one checkpoint waits
/// for the committer, which bounds memory.
///
/// # Errors
/// Fails when an input cannot be opened, the log belongs to another run, or storage fails.
pub fn run(
    log: &EmbeddedLog,
    topology: &Topology,
    plan: &RunPlan,
    on_progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Report, Error> {
    let fingerprint = fingerprint(topology, plan);
    let (state, resumed) = match log.state(STATE_KEY)? {
        Some(bytes) => (restore(log, &bytes, &fingerprint)?, true),
        None => (fresh(topology, plan, fingerprint), false),
    };
    if state.done {
        return Ok(report(state, true, true));
    }

    std::thread::scope(|scope| {
        let (to_committer, checkpoints) = std::sync::mpsc::sync_channel::<Checkpoint>(1);
        let committer = scope.spawn(move || commit_all(log, checkpoints));
        let driven = drive(
            state,
            plan,
            Outbox::new(topology),
            &to_committer,
            on_progress,
        );
        drop(to_committer);
        // A committer failure makes `drive` stop at its next send; report the committer's cause.
        let committed = committer.join().unwrap_or(Err(Error::CommitterPanicked));
        let state = match (driven, committed) {
            (_, Err(error)) | (Err(error), Ok(())) => return Err(error),
            (Ok(state), Ok(())) => state,
        };
        log.flush()?;
        on_progress(Progress::Checkpoint {
            counters: state.stages.counters(),
        });
        Ok(report(state, false, resumed))
    })
}

/// One checkpoint on its way to the log: the events since the last one and the state after them.
struct Checkpoint {
    records: Vec<Encoded>,
    state: Vec<u8>,
}

fn commit_all(
    log: &EmbeddedLog,
    checkpoints: std::sync::mpsc::Receiver<Checkpoint>,
) -> Result<(), Error> {
    for checkpoint in checkpoints {
        let mut tx = log.transaction();
        append_all(checkpoint.records, &mut tx)?;
        tx.set_state(STATE_KEY, checkpoint.state);
        tx.commit()?;
    }
    Ok(())
}

/// Reads every input through the stages, sending a checkpoint every `checkpoint_every` items
/// and a last one, marked done, at the end.
fn drive(
    mut state: RunState,
    plan: &RunPlan,
    out: Outbox,
    committer: &std::sync::mpsc::SyncSender<Checkpoint>,
    on_progress: &mut dyn FnMut(Progress<'_>),
) -> Result<RunState, Error> {
    let mut sources = MergedSources::open(&plan.sources, &state.taken)?;
    let mut work = Loop {
        out,
        since_checkpoint: 0,
        next_summary_us: None,
    };
    // Not a `for` loop: the positions are read from `sources` between items.
    #[allow(clippy::while_let_on_iterator)]
    while let Some(item) = sources.next() {
        work.on_item(&mut state.stages, plan, item, on_progress)?;
        if work.since_checkpoint >= plan.checkpoint_every {
            state.taken = sources.taken();
            send(committer, &mut work.out, &state)?;
            work.since_checkpoint = 0;
            on_progress(Progress::Checkpoint {
                counters: state.stages.counters(),
            });
        }
    }

    state.stages.finish(&mut work.out)?;
    state.taken = sources.taken();
    state.done = true;
    send(committer, &mut work.out, &state)?;
    Ok(state)
}

fn send(
    committer: &std::sync::mpsc::SyncSender<Checkpoint>,
    out: &mut Outbox,
    state: &RunState,
) -> Result<(), Error> {
    let bytes = rmp_serde::to_vec_named(state).map_err(|e| Error::State(e.to_string()))?;
    let checkpoint = Checkpoint {
        records: out.take(),
        state: bytes,
    };
    committer
        .send(checkpoint)
        .map_err(|_| Error::CommitterStopped)
}

/// The per-item work of the run loop, with what it carries between items.
struct Loop {
    out: Outbox,
    since_checkpoint: u64,
    next_summary_us: Option<i64>,
}

impl Loop {
    fn on_item(
        &mut self,
        stages: &mut Stages,
        plan: &RunPlan,
        item: Item,
        on_progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<(), Error> {
        self.since_checkpoint += 1;
        let event = match item {
            Item::Event(event) => event,
            // A file that cannot be read on (corrupt, truncated) stops the run: going on would
            // lose its rest. The run resumes from the last checkpoint once the file is fixed.
            Item::Unreadable { source, error } if error.fatal => {
                return Err(Error::Unreadable {
                    file: plan.sources[source].name(),
                    line: error.line,
                    reason: error.reason,
                });
            }
            Item::Unreadable { source, error } => {
                let letter = dead_letter(&plan.sources[source], error);
                return stages.market.on_dead_letter(&letter, &mut self.out);
            }
        };

        for end in stages.on_event(&event, &mut self.out)? {
            let due = *self.next_summary_us.get_or_insert(end);
            if end >= due {
                self.next_summary_us = Some(end + plan.summary_every_s * 1_000_000);
                let regime = latest_regime(stages);
                on_progress(Progress::Summary {
                    ts_us: end,
                    regime: &regime,
                    stages,
                });
            }
        }
        Ok(())
    }
}

fn latest_regime(stages: &Stages) -> String {
    stages
        .service
        .latest
        .iter()
        .flatten()
        .next()
        .map(|d| d.regime.clone())
        .unwrap_or_default()
}

fn dead_letter(source: &SourceSpec, error: RowError) -> DeadLetter {
    DeadLetter {
        source: source.name(),
        partition: -1,
        offset: error.line as i64,
        reason: error.reason,
        payload: error.raw,
    }
}

fn restore(log: &EmbeddedLog, bytes: &[u8], fingerprint: &str) -> Result<RunState, Error> {
    let state: RunState = rmp_serde::from_slice(bytes).map_err(|e| Error::State(e.to_string()))?;
    if state.fingerprint != fingerprint {
        return Err(Error::OtherRun {
            dir: log.dir().to_path_buf(),
        });
    }
    Ok(state)
}

fn fresh(topology: &Topology, plan: &RunPlan, fingerprint: String) -> RunState {
    let traced: BTreeSet<String> = plan
        .sources
        .iter()
        .filter_map(|s| match s {
            SourceSpec::Load { service, .. } => Some(service.clone()),
            _ => None,
        })
        .collect();
    let stages = Stages::new(&plan.config, topology.services.clone(), traced);
    RunState {
        fingerprint,
        taken: vec![0; plan.sources.len()],
        done: false,
        stages,
    }
}

/// Describes the run so that a state folder is only ever resumed by the same run.
fn fingerprint(topology: &Topology, plan: &RunPlan) -> String {
    let sources: Vec<String> = plan
        .sources
        .iter()
        .map(|s| match s {
            SourceSpec::Market { path, format } => {
                format!("market {} {format:?}", describe_file(path))
            }
            SourceSpec::Load {
                service,
                path,
                format,
            } => {
                format!("load {service}={} {format:?}", describe_file(path))
            }
            SourceSpec::Generator(config) => format!("generator {config:?}"),
        })
        .collect();
    format!(
        "{sources:?} {:?} {:?} {:?}",
        plan.config, topology.services, topology.topics
    )
}

fn report(state: RunState, already_complete: bool, resumed: bool) -> Report {
    Report {
        already_complete,
        resumed,
        counters: state.stages.counters(),
        services: state.stages.services().to_vec(),
        latest: state.stages.service.latest.clone(),
        peak: state.stages.service.peak.clone(),
    }
}
