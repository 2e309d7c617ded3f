//! Events of the decision loop: decisions, their actuation, the outcomes observed, model events
//! and dead letters.

use apache_avro::AvroSchema;
use serde::{Deserialize, Serialize};

/// What the decide stage asked for one service at one time, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "tickscale")]
pub struct ScalingDecision {
    /// Deterministic: `decision/<service>/<ts_us>`.
    pub id: String,
    pub service: String,
    pub ts_us: i64,
    pub current_replicas: i64,
    pub desired_replicas: i64,
    /// `hpa` (reactive), `predictive` or `keda-lag`.
    pub policy: String,
    /// The predictive strategy (`balanced`, `event-driven`, …), `reactive` or `lag`.
    pub strategy: String,
    /// The forecast the decision used, if any.
    pub forecast_id: Option<String>,
    /// The load the forecast provisions for, if any.
    pub forecast_load: Option<f64>,
    /// Load observed in the window just closed.
    pub observed_load: f64,
    /// CPU utilisation the reactive rule saw, in percent.
    pub observed_utilization: f64,
    /// What the reactive (HPA) rule asked for on its own.
    pub reactive_replicas: i64,
    /// What the forecast asked for on its own, if a forecast was used.
    pub predictive_replicas: Option<i64>,
    /// The market regime at decision time.
    pub regime: String,
    /// The rule that set the answer: `hpa`, `forecast`, `fallback-low-confidence`, …
    pub rule: String,
    /// Every bound that changed the answer: `tolerance`, `stabilization`, `min_replicas`, ….
    pub bounds: Vec<String>,
    /// One line for a human.
    pub reason: String,
    /// Recommended CPU request per pod, milli-CPU (p90 of usage plus a margin; 0: none yet).
    pub cpu_request_milli: i64,
    /// Recommended CPU limit per pod, milli-CPU.
    pub cpu_limit_milli: i64,
    /// Lower bound of the request recommendation (p50 plus the margin), milli-CPU.
    pub cpu_lower_milli: i64,
    /// Upper bound of the request recommendation (p95 plus the margin), milli-CPU.
    pub cpu_upper_milli: i64,
}

/// How an actuation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "tickscale")]
pub enum ActuationStatus {
    Applied,
    Unchanged,
    Refused,
    Failed,
}

/// The result of carrying out one decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "tickscale")]
pub struct ActuationOutcome {
    /// Deterministic: `actuation/<decision id>`.
    pub id: String,
    pub decision_id: String,
    pub service: String,
    pub ts_us: i64,
    pub status: ActuationStatus,
    pub from_replicas: i64,
    pub to_replicas: i64,
    pub detail: String,
}

/// What a service went through over one window: load, capacity, backlog, latency, SLO.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "tickscale")]
pub struct ObservedOutcome {
    /// Deterministic: `observed/<service>/<window_start_us>`.
    pub id: String,
    pub service: String,
    pub window_start_us: i64,
    pub window_end_us: i64,
    pub load: f64,
    /// Replicas asked for (ready or starting).
    pub replicas: i64,
    /// Replicas that served load in this window.
    pub ready_replicas: i64,
    /// Load the ready replicas can serve per second.
    pub capacity: f64,
    /// CPU utilisation in percent, capped at 100 as a real pod's would be.
    pub utilization: f64,
    /// Work waiting at the end of the window, in load units.
    pub backlog: f64,
    pub latency_ms: f64,
    pub slo_latency_ms: f64,
    pub slo_violated: bool,
}

/// What kind of model event this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "tickscale")]
pub enum ModelEventKind {
    AccuracyReported,
    DriftDetected,
    DriftCleared,
    ModelPromoted,
    ModelRejected,
}

/// An accuracy figure, a drift alarm, or a change in the model registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "tickscale")]
pub struct ModelEvent {
    /// Deterministic: `model/<kind>/<service>/<ts_us>`.
    pub id: String,
    pub ts_us: i64,
    pub service: String,
    pub kind: ModelEventKind,
    pub model: String,
    pub model_version: i64,
    /// Mean absolute percentage error over the monitor's recent window.
    pub mape: f64,
    /// Mean signed error over the recent window (positive: forecasts too high).
    pub bias: f64,
    /// Forecast/actual pairs behind the figures.
    pub samples: i64,
    pub detail: String,
}

/// Something tickscale could not read, kept whole with where it came from and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "tickscale")]
pub struct DeadLetter {
    /// A file path or a topic name.
    pub source: String,
    /// The partition, for a topic; -1 for a file.
    pub partition: i32,
    /// The offset in the topic, or the 1-based line (or record) number in the file.
    pub offset: i64,
    pub reason: String,
    #[avro(with)]
    #[serde(with = "apache_avro::serde::bytes")]
    pub payload: Vec<u8>,
}
