//! HPA cases in JSON: what `tickscale hpa FILE` reads and evaluates.
//!
//! **Consumes** a JSON array of cases. **Produces** one [`Outcome`] per case, in file order.
//! **Guarantees** that a case with an unknown field, or without a required one, is refused with
//! the file, the case's index (from 0) and name, the field, and its line and column.
//!
//! # The format
//!
//! Each case is an object with a `name` and a `kind`. `expect` (`replicas`, and for resource
//! metrics `utilization_percent`) and `source` (free text) may be left out; every other field
//! below is required (write `null` where a value is absent).
//!
//! `"kind": "metric"` runs the replica calculator:
//!
//! ```json
//! {
//!   "name": "resource scale up", "kind": "metric", "current_replicas": 3,
//!   "tolerance": {"scale_up": 0.1, "scale_down": 0.1},
//!   "metric": {"type": "resource", "target_utilization_percent": 30},
//!   "pods": [{"phase": "Running", "ready": true, "cpu_warming": false, "deleting": false,
//!             "request_milli": 1000, "usage_milli": 500}],
//!   "unmatched_metrics_milli": [],
//!   "expect": {"replicas": 2, "utilization_percent": 50}
//! }
//! ```
//!
//! - `metric.type` is `resource` (CPU utilisation against requests, with
//!   `target_utilization_percent`), `pods` (a per-pod metric averaged, with
//!   `target_average_milli`) or `external` (one value for the whole target: `value_milli`, and
//!   either `target_value_milli` or `target_average_milli`, a target per replica).
//! - `pods[]`: `phase` is `Running`, `Pending` or `Failed`; `ready` is the Ready condition;
//!   `cpu_warming` marks a pod inside the CPU initialisation period; `deleting` a pod being
//!   deleted; `request_milli` and `usage_milli` are the pod's request and sample in milli-units
//!   (`null` when absent: no request, or no sample reported).
//! - `unmatched_metrics_milli` (optional, default `[]`): samples from pods not in `pods`.
//!
//! `"kind": "normalize"` turns a desired count into the applied one:
//!
//! ```json
//! {
//!   "name": "percent 200 per 60 s", "kind": "normalize",
//!   "current_replicas": 10, "desired_replicas": 50, "min_replicas": 1, "max_replicas": 1000,
//!   "behavior": {
//!     "scale_up": {"stabilization_window_s": 0, "select_policy": "Max",
//!                  "policies": [{"type": "Percent", "value": 200, "period_s": 60}]},
//!     "scale_down": {"stabilization_window_s": 300, "select_policy": "Max",
//!                    "policies": [{"type": "Percent", "value": 100, "period_s": 15}]}
//!   },
//!   "recommendations": [{"replicas": 12, "age_s": 30}],
//!   "scale_events": [{"change": 5, "age_s": 45}],
//!   "expect": {"replicas": 30}
//! }
//! ```
//!
//! - `behavior: null` is the legacy path (a 5-minute window keeping the highest
//!   recommendation, the scale-up limit `max(2 × current, 4)`). `select_policy` is `Max`,
//!   `Min` or `Disabled`; a policy's `type` is `Pods` or `Percent`.
//! - `recommendations[]` are earlier recommendations, `scale_events[]` earlier changes
//!   (positive up, negative down), each `age_s` seconds before now.

mod check;
mod read;

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use read::{load, parse};

use super::{
    normalize, recommend, Behavior, Metric, MetricInput, NormalizeInput, PastRecommendation,
    PastScaleEvent, Pod, Tolerance, DEFAULT_DOWNSCALE_WINDOW_S,
};

/// Why a case file cannot be evaluated; none of these is worth retrying without editing it.
#[derive(Debug, Error)]
pub enum Error {
    /// The file could not be read.
    #[error("failed to read case file {file}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// The file is not JSON, or not an array.
    #[error("case file {file} is not a JSON array of cases")]
    Syntax {
        file: String,
        #[source]
        source: serde_json::Error,
    },
    /// One case has an unknown field, lacks one, or has one of the wrong type. `line` and
    /// `column` are where the case starts; `detail` names the field.
    #[error("case {index} ({name:?}) at line {line} column {column} of {file} is not a valid case: {detail}")]
    Case {
        file: String,
        index: usize,
        name: String,
        line: usize,
        column: usize,
        detail: String,
    },
    /// One case's fields do not fit together.
    #[error("case {index} ({name:?}) in {file} is not a valid case: {message}")]
    Invalid {
        file: String,
        index: usize,
        name: String,
        message: String,
    },
}

/// One case.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Case {
    /// The replica calculator.
    Metric(MetricCase),
    /// Normalisation.
    Normalize(NormalizeCase),
}

/// A replica-calculator case.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricCase {
    /// The case's name.
    pub name: String,
    /// The scale target's current replica count.
    pub current_replicas: i64,
    /// The per-direction tolerance.
    pub tolerance: Tolerance,
    /// The metric and its target.
    pub metric: MetricSpec,
    /// The pods.
    pub pods: Vec<Pod>,
    /// Samples from pods not in `pods`.
    #[serde(default)]
    pub unmatched_metrics_milli: Vec<i64>,
    /// The expected answer.
    #[serde(default)]
    pub expect: Option<Expect>,
    /// Where the numbers come from.
    #[serde(default)]
    pub source: Option<String>,
}

/// A metric as the case file writes it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum MetricSpec {
    /// CPU utilisation against requests.
    Resource { target_utilization_percent: i64 },
    /// A per-pod metric, averaged.
    Pods { target_average_milli: i64 },
    /// One value for the whole target, against a value or a per-replica target.
    External {
        value_milli: i64,
        #[serde(default)]
        target_value_milli: Option<i64>,
        #[serde(default)]
        target_average_milli: Option<i64>,
    },
}

impl MetricSpec {
    /// Returns the calculator's metric, or what is wrong with the fields.
    pub(crate) fn to_metric(&self) -> Result<Metric, String> {
        Ok(match *self {
            MetricSpec::Resource {
                target_utilization_percent,
            } => Metric::Resource {
                target_utilization_percent,
            },
            MetricSpec::Pods {
                target_average_milli,
            } => Metric::Pods {
                target_average_milli,
            },
            MetricSpec::External {
                value_milli,
                target_value_milli: Some(target_value_milli),
                target_average_milli: None,
            } => Metric::ExternalValue {
                value_milli,
                target_value_milli,
            },
            MetricSpec::External {
                value_milli,
                target_value_milli: None,
                target_average_milli: Some(target_average_milli),
            } => Metric::ExternalAverageValue {
                value_milli,
                target_average_milli,
            },
            MetricSpec::External { .. } => {
                return Err(
                    "an external metric needs exactly one of `target_value_milli` and \
                            `target_average_milli`"
                        .to_string(),
                )
            }
        })
    }
}

/// A normalisation case.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NormalizeCase {
    /// The case's name.
    pub name: String,
    /// The scale target's current replica count.
    pub current_replicas: i64,
    /// What the metrics asked for.
    pub desired_replicas: i64,
    /// The HPA's `minReplicas`.
    pub min_replicas: i64,
    /// The HPA's `maxReplicas`.
    pub max_replicas: i64,
    /// The HPA's `behavior`, `null` for the legacy path.
    #[serde(deserialize_with = "Option::deserialize")]
    pub behavior: Option<Behavior>,
    /// Earlier recommendations.
    pub recommendations: Vec<PastRecommendation>,
    /// Earlier scale changes.
    pub scale_events: Vec<PastScaleEvent>,
    /// The expected answer.
    #[serde(default)]
    pub expect: Option<Expect>,
    /// Where the numbers come from.
    #[serde(default)]
    pub source: Option<String>,
}

/// A case's expected answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The replica count.
    pub replicas: i64,
    /// For resource metrics: the reported utilisation.
    #[serde(default)]
    pub utilization_percent: Option<i64>,
}

/// What one case evaluates to: one line of `tickscale hpa`'s output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// The case's name.
    pub name: String,
    /// The replica count the controller would recommend (metric) or apply (normalize).
    pub replicas: i64,
    /// For resource metrics: the utilisation the controller reports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub utilization_percent: Option<i64>,
    /// The rules that changed a normalised answer, such as `stabilization`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bounds: Vec<&'static str>,
    /// Why the calculator had no answer (the count is then kept).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Whether the answer matches `expect`, when the case has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matches_expect: Option<bool>,
}

impl Case {
    /// Returns the case's name.
    pub fn name(&self) -> &str {
        match self {
            Case::Metric(c) => &c.name,
            Case::Normalize(c) => &c.name,
        }
    }

    /// Returns the case's expected answer, if it has one.
    pub fn expect(&self) -> Option<Expect> {
        match self {
            Case::Metric(c) => c.expect,
            Case::Normalize(c) => c.expect,
        }
    }

    /// Evaluates the case.
    pub fn evaluate(&self) -> Outcome {
        let mut outcome = match self {
            Case::Metric(c) => evaluate_metric(c),
            Case::Normalize(c) => evaluate_normalize(c),
        };
        outcome.matches_expect = self.expect().map(|e| {
            e.replicas == outcome.replicas
                && e.utilization_percent
                    .is_none_or(|u| Some(u) == outcome.utilization_percent)
        });
        outcome
    }
}

fn evaluate_metric(case: &MetricCase) -> Outcome {
    let mut outcome = Outcome {
        name: case.name.clone(),
        replicas: case.current_replicas,
        utilization_percent: None,
        bounds: Vec::new(),
        error: None,
        matches_expect: None,
    };
    let metric = match case.metric.to_metric() {
        Ok(metric) => metric,
        Err(message) => {
            outcome.error = Some(message);
            return outcome;
        }
    };
    let input = MetricInput {
        current_replicas: case.current_replicas,
        tolerance: case.tolerance,
        metric,
        pods: &case.pods,
        unmatched_metrics_milli: &case.unmatched_metrics_milli,
    };
    match recommend(&input) {
        Ok(r) => {
            outcome.replicas = r.replicas;
            outcome.utilization_percent = r.utilization_percent;
        }
        Err(error) => outcome.error = Some(error.to_string()),
    }
    outcome
}

fn evaluate_normalize(case: &NormalizeCase) -> Outcome {
    let normalized = normalize(&NormalizeInput {
        current: case.current_replicas,
        desired: case.desired_replicas,
        min: case.min_replicas,
        max: case.max_replicas,
        behavior: case.behavior.as_ref(),
        legacy_window_s: DEFAULT_DOWNSCALE_WINDOW_S,
        recommendations: &case.recommendations,
        scale_events: &case.scale_events,
        rate_limits: true,
    });
    Outcome {
        name: case.name.clone(),
        replicas: normalized.replicas,
        utilization_percent: None,
        bounds: normalized.bounds.iter().map(|b| b.as_str()).collect(),
        error: None,
        matches_expect: None,
    }
}
