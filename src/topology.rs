//! The declared shape of a deployment: topics and services, loaded from `topology/`.
//!
//! `topology/topics.toml` declares each topic (key, partitions, retention or compaction,
//! schema); `topology/services.toml` declares each service (replica bounds, per-pod capacity,
//! start-up time, SLO). Both are validated at start: a bad file stops with its path, the line,
//! the field and what was expected.

use serde::{Deserialize, Serialize};

/// What drives a service's load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceKind {
    /// Processes every tick: load is the tick rate.
    MarketData,
    /// Re-evaluates signals on ticks, harder when markets move.
    Strategy,
    /// Re-prices exposure on trades and on volatility.
    Risk,
    /// Routes orders that follow trade activity.
    Order,
    /// Books fills and keeps positions.
    Position,
    /// Not tied to markets: takes its load from a workload trace (`--load`).
    General,
}

/// One service as declared in `topology/services.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// The Deployment's name.
    pub name: String,
    /// What drives its load; see the README's load model.
    pub kind: ServiceKind,
    /// Never fewer replicas than this (at least 1).
    pub min_replicas: i64,
    /// Never more replicas than this.
    pub max_replicas: i64,
    /// Load one pod serves per second at 100 % CPU, in the service's load unit.
    pub capacity_per_pod: f64,
    /// Seconds from asking for a pod to its serving traffic.
    pub startup_s: i64,
    /// Latency objective; a window whose latency exceeds it counts as an SLO violation.
    pub slo_latency_ms: f64,
    /// Latency of a request served by an idle pod.
    pub base_latency_ms: f64,
    /// CPU utilisation the HPA aims for, in percent.
    pub target_utilization_percent: f64,
    /// Replicas at the start of a run.
    pub initial_replicas: i64,
}
