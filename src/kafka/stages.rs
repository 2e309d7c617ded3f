//! `tickscale run --brokers`: the market stage and the per-service stage on Kafka, in one
//! process or apart.
//!
//! The market stage ([`super::market`]) reads the input topics and writes `features` (each
//! vector carrying its window's regime) and `market.regime`; the service stage
//! ([`super::service`]) reads `features` in a consumer group and writes forecasts, decisions,
//! outcomes and model events. Both are the embedded run's own stage code, so the same input
//! gives the same decisions on either bus.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::pipeline::StageConfig;
use crate::topology::Topology;

use super::market::{self, MarketReport};
use super::service::{self, ServiceReport};
use super::{Error, KafkaSettings};

/// A part of the pipeline that a process can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Stage {
    /// Feature windows and the regime, over every input topic (one per group).
    Market,
    /// Forecast, monitor, decision and actuation, split by service among the group's processes.
    Service,
}

/// What a Kafka run needs to know.
pub struct StagePlan<'a> {
    pub settings: &'a KafkaSettings,
    pub topology: &'a Topology,
    pub config: &'a StageConfig,
    /// Services whose load comes from pod metrics (workload traces) rather than the market.
    pub traced: BTreeSet<String>,
    /// The consumer group; the stages use `GROUP.market` and `GROUP.service`, under the
    /// namespace (`NS.GROUP.service`), so that pipelines sharing a cluster never share a group.
    pub group: String,
    /// Keeps waiting for new input instead of finishing at the end of the topics.
    pub follow: bool,
    /// Input messages between checkpoints.
    pub checkpoint_every: u64,
    /// Set from outside (Ctrl-C) to stop at the next checkpoint.
    pub stop: &'a AtomicBool,
}

impl StagePlan<'_> {
    /// Returns true once a stop was asked for.
    pub(crate) fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// Describes the settings a group's state was made with, so it is never resumed by others.
pub(crate) fn fingerprint(plan: &StagePlan<'_>) -> String {
    format!(
        "{:?} {:?} {:?}",
        plan.config, plan.topology.services, plan.traced
    )
}

/// What the stages of one process did.
#[derive(Debug, Default)]
pub struct Report {
    pub market: Option<MarketReport>,
    pub service: Option<ServiceReport>,
}

/// Runs `stages` of `plan` in this process, each on its own thread, until they finish.
///
/// # Errors
/// The first stage error; the other stage is asked to stop.
pub fn run(plan: &StagePlan<'_>, stages: &BTreeSet<Stage>) -> Result<Report, Error> {
    std::thread::scope(|scope| {
        let market = stages.contains(&Stage::Market).then(|| {
            scope.spawn(|| {
                let result = market::run(plan);
                if result.is_err() {
                    plan.stop.store(true, Ordering::Relaxed);
                }
                result
            })
        });
        let service = match stages.contains(&Stage::Service) {
            true => Some(service::run(plan)),
            false => None,
        };
        if matches!(service, Some(Err(_))) {
            plan.stop.store(true, Ordering::Relaxed);
        }
        let market = match market.map(|handle| handle.join()) {
            None => None,
            Some(Ok(result)) => Some(result?),
            Some(Err(_)) => return Err(Error::Panicked("market stage")),
        };
        Ok(Report {
            market,
            service: service.transpose()?,
        })
    })
}
