//! Workload samples: the load a service saw, from a metrics pipeline or a recorded trace.
//!
//! `pods.metrics` carries them, keyed by service. A service whose load comes from a trace
//! (`--load SERVICE=FILE`) takes its load from these instead of from the market model.

use apache_avro::AvroSchema;
use serde::{Deserialize, Serialize};

/// The demand and usage of one service at one time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "tickscale")]
pub struct PodMetrics {
    pub service: String,
    pub ts_us: i64,
    /// Demand in the service's load unit (the unit its per-pod capacity is declared in).
    pub load: f64,
    /// CPU utilisation in percent, when the source reports it.
    pub cpu_percent: Option<f64>,
    /// Memory utilisation in percent, when the source reports it.
    pub memory_percent: Option<f64>,
    /// Where the sample came from: a file name, or `cluster`.
    pub source: String,
}
