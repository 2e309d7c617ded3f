//! The Kubernetes HPA, rule for rule, as a pure library.
//!
//! **Consumes** a scale target's pods and one metric ([`calculator`]), or a desired count with
//! the HPA's bounds, `behavior` and history ([`normalize`]). **Produces** the replica count the
//! controller would recommend, and then apply, with the rules that shaped it. **Keeps** nothing
//! itself; [`History`] holds a target's past recommendations and scale events for a caller that
//! runs the HPA over time. **Guarantees** the same answer for the same inputs. [`cases`] reads
//! the JSON case format that `tickscale hpa FILE` evaluates.
//!
//! The rules follow the controller's replica calculator and horizontal controller:
//!
//! - Resource utilisation: `utilisation = Σ usage × 100 / Σ requests` over ready pods with a
//!   sample, truncated to a whole percent, `ratio = utilisation / target`.
//! - Pods metrics: `ratio = (Σ usage / n, truncated) / target`. External metrics:
//!   `ratio = value / target` over ready running pods, or `value / (target × current)` for an
//!   average-value target, whose answer is `ceil(value / target)`.
//! - Failed and deleting pods are dropped; pending pods are unready. For CPU only, pods not
//!   ready or inside the CPU initialisation period are unready too. Samples of pods outside the
//!   list never count.
//! - Within `1 − scale_down ≤ ratio ≤ 1 + scale_up` the count is kept. With unready pods on a
//!   scale up, or pods missing samples, the ratio is computed again: unready pods at 0, missing
//!   pods at 0 on a scale up and at `max(100 %, target)` of their request (pods metrics: the
//!   target) on a scale down. If that ratio is within tolerance, or flips the direction, the
//!   count is kept; otherwise it is `ceil(ratio × pods counted)`.
//!
//! # Caveats
//!
//! - Resource metrics are CPU: memory (where readiness does not matter) is not modelled, nor
//!   are container resource metrics or object metrics.
//! - A pod that is not ready counts as never ready since it started. The controller counts the
//!   CPU sample of a pod that was ready and turned unready after the initialisation period;
//!   that case cannot be expressed here. Likewise a ready pod inside the initialisation period
//!   whose sample is fresh is unready here (`cpu_warming`).
//! - One metric per call: with several metrics the controller takes the largest proposal,
//!   which is the caller's to do. Scale-to-zero and the `ScalingActive` conditions are not
//!   modelled; an [`Error`] means "keep the current count", as in the controller.

pub mod calculator;
pub mod cases;
pub mod normalize;

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use calculator::{
    recommend, Hold, Metric, MetricInput, MissingFill, Pod, PodPhase, Recommendation,
};
pub use normalize::{
    legacy_scale_up_limit, normalize, Behavior, Bound, NormalizeInput, Normalized,
    PastRecommendation, PastScaleEvent, PolicyKind, ScalingPolicy, ScalingRules, SelectPolicy,
    DEFAULT_DOWNSCALE_WINDOW_S,
};

/// Why the replica calculator has no answer; the controller then keeps the current count.
/// Retrying with the same inputs gives the same error.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    /// The selector lists no pods.
    #[error("no pods returned by the selector")]
    NoPods,
    /// No ready pod reported a sample.
    #[error("no metrics for the targeted pods (pods might be unready)")]
    NoMetrics,
    /// A pod has no request, so its utilisation is unknown.
    #[error("pod {index} has no request for the resource")]
    MissingRequest { index: usize },
    /// The target is zero or negative.
    #[error("the metric target must be positive")]
    ZeroTarget,
}

/// The per-direction tolerance: no change while `1 - scale_down <= ratio <= 1 + scale_up`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tolerance {
    /// How far above 1 the ratio may go without a scale up.
    pub scale_up: f64,
    /// How far below 1 the ratio may go without a scale down.
    pub scale_down: f64,
}

impl Tolerance {
    /// Returns the same tolerance in both directions (the controller's default is 0.1).
    pub fn both(tolerance: f64) -> Self {
        Self {
            scale_up: tolerance,
            scale_down: tolerance,
        }
    }

    /// Returns true when `ratio` asks for no change.
    pub fn contains(&self, ratio: f64) -> bool {
        1.0 - self.scale_down <= ratio && ratio <= 1.0 + self.scale_up
    }
}

impl Default for Tolerance {
    fn default() -> Self {
        Self::both(0.1)
    }
}

/// One scale target's past recommendations and scale events, in event time (µs), for callers
/// that run the HPA over time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// `(time, recommended replicas)`, oldest first.
    pub recommendations: Vec<(i64, i64)>,
    /// `(time, replicas added or removed)`, oldest first.
    pub scale_events: Vec<(i64, i64)>,
}

impl History {
    /// Returns the recommendations with their ages at `now_us`.
    pub fn recommendations_at(&self, now_us: i64) -> Vec<PastRecommendation> {
        let age = |at: i64| (now_us - at) as f64 / 1e6;
        self.recommendations
            .iter()
            .map(|&(at, replicas)| PastRecommendation {
                replicas,
                age_s: age(at),
            })
            .collect()
    }

    /// Returns the scale events with their ages at `now_us`.
    pub fn scale_events_at(&self, now_us: i64) -> Vec<PastScaleEvent> {
        let age = |at: i64| (now_us - at) as f64 / 1e6;
        self.scale_events
            .iter()
            .map(|&(at, change)| PastScaleEvent {
                change,
                age_s: age(at),
            })
            .collect()
    }

    /// Records a recommendation and, when the count changed, a scale event at `now_us`, and
    /// forgets what is older than `keep_s` seconds.
    pub fn record(&mut self, now_us: i64, recommendation: i64, change: i64, keep_s: i64) {
        let cutoff = now_us.saturating_sub(keep_s.max(0).saturating_mul(1_000_000));
        self.recommendations.retain(|(at, _)| *at >= cutoff);
        self.scale_events.retain(|(at, _)| *at >= cutoff);
        self.recommendations.push((now_us, recommendation));
        if change != 0 {
            self.scale_events.push((now_us, change));
        }
    }
}

#[cfg(test)]
mod tests;
