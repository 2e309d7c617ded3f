//! The driver: runs every stage in one process over the embedded log.
//!
//! Consumes the inputs of a run (market files, workload traces, or the built-in generator),
//! merged in event-time order. Produces every event of the pipeline on its topic. Keeps the
//! state of every stage and the input positions in the log, committed atomically with the
//! outputs, so a run killed at any point and started again finishes with the same events, none
//! lost and none twice.

mod outbox;
mod run;
mod sources;
mod stages;

pub use outbox::{append_all, Codecs, Emitted, Encoded, Outbox, Routed};
pub use run::{run, Progress, Report, RunPlan};
pub use sources::{Item, MergedSources, SourceSpec};
pub use stages::{Counters, MarketStage, ServiceStage, StageConfig, Stages};

use std::path::PathBuf;

/// Errors of a run. None is worth retrying as is: each needs a changed input or state folder.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Input(#[from] crate::ingest::Error),
    #[error("failed to start the market generator")]
    Generator(#[from] crate::generator::Error),
    #[error(transparent)]
    Log(#[from] crate::bus::Error),
    #[error("failed to encode an event")]
    Codec(#[from] crate::events::CodecError),
    #[error("failed to read {file} past line {line}: {reason}")]
    Unreadable {
        file: String,
        line: u64,
        reason: String,
    },
    #[error("the checkpoint writer stopped")]
    CommitterStopped,
    #[error("the checkpoint writer panicked")]
    CommitterPanicked,
    #[error("failed to read the checkpoint: {0}")]
    State(String),
    #[error(
        "the state folder {dir} holds a run of other inputs or settings; pass --fresh to discard \
         it, or --state DIR to keep it"
    )]
    OtherRun { dir: PathBuf },
}
