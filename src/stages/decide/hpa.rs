//! The Kubernetes HPA on CPU utilisation: its replica calculator and its normalisation.
//!
//! Follows the controller's `replica_calculator.go` and `horizontal.go` for a single resource
//! metric (CPU utilisation) without a `behavior` section, over the simulated cluster's pods.
//!
//! # Where this is simplified
//!
//! - Pod states are two: ready (serving, reporting CPU) or starting (asked for, not ready).
//!   Starting pods are the HPA's "unready" pods; there is no CPU initialisation period
//!   (`--horizontal-pod-autoscaler-cpu-initialization-period`, 5 min) and no initial readiness
//!   delay (30 s): a pod reports CPU from the first window it is ready in.
//! - There are no missing metrics (every ready pod reports), no failed or deleted pods.
//! - Utilisation is one figure for the service (the window's mean over ready pods), not a
//!   per-pod sum over requests.
//! - Stabilisation windows compare event times with `≥ now − window` (the controller uses
//!   `Before(cutoff)` for the default path and `After(cutoff)` with `behavior`), and only the
//!   `behavior` stabilisation windows are configurable: no scaling policies (pods or percent per
//!   period) yet.
//! - The controller syncs every 15 s; here it runs once per closed window.

use serde::{Deserialize, Serialize};

/// The replica calculator's inputs: what the scale target and its pods report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HpaInput {
    /// Replicas the scale target has (ready or starting).
    pub current: i64,
    /// Replicas that are ready and report CPU.
    pub ready: i64,
    /// Mean CPU utilisation of the ready pods, in percent.
    pub utilization: f64,
    /// Target utilisation, in percent.
    pub target: f64,
    /// Usage ratios within `1 ± tolerance` keep the current count.
    pub tolerance: f64,
}

/// What the replica calculator recommends, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommendation {
    /// Recommended replicas, before normalisation.
    pub replicas: i64,
    /// The usage ratio the answer came from (after counting starting pods, if they counted).
    pub usage_ratio: f64,
    /// True when the tolerance (or the starting-pods rule) kept a count that the ratio alone
    /// would have changed.
    pub held_by_tolerance: bool,
    /// A note for the reason line, when a special case decided.
    pub note: Option<&'static str>,
}

/// Returns `ceil(x)`, forgiving float noise just above a whole number (3 × 1.0000000000000002
/// is 3 pods, not 4).
pub fn ceil_replicas(x: f64) -> i64 {
    (x - 1e-9).ceil().max(0.0) as i64
}

/// Returns the replica calculator's recommendation.
///
/// With no starting pods, or when scaling down: within tolerance keep `current`, else
/// `ceil(ratio × ready)`. When scaling up with starting pods, those pods count as using 0 %, so
/// the ratio is recomputed over `current` pods: `ratio' = ratio × ready / current`. If `ratio'`
/// is within tolerance or no longer above 1, the count is kept; otherwise the answer is
/// `ceil(ratio' × current)` (which equals `ceil(ratio × ready)`), never below `current`.
pub fn recommend(input: HpaInput) -> Recommendation {
    let keep = |usage_ratio, held, note| Recommendation {
        replicas: input.current,
        usage_ratio,
        held_by_tolerance: held,
        note,
    };
    if input.ready <= 0 || input.target <= 0.0 {
        return keep(1.0, false, Some("no ready pods report CPU"));
    }
    let ratio = input.utilization / input.target;
    let starting = (input.current - input.ready).max(0);
    let raw = ceil_replicas(ratio * input.ready as f64);

    if starting == 0 || ratio <= 1.0 {
        if (ratio - 1.0).abs() <= input.tolerance {
            return keep(ratio, raw != input.current, None);
        }
        return Recommendation {
            replicas: raw,
            usage_ratio: ratio,
            held_by_tolerance: false,
            note: None,
        };
    }

    let counted = ratio * input.ready as f64 / input.current as f64;
    if (counted - 1.0).abs() <= input.tolerance || counted < 1.0 {
        return keep(
            counted,
            raw != input.current,
            Some("starting pods count as idle"),
        );
    }
    let replicas = ceil_replicas(counted * input.current as f64).max(input.current);
    Recommendation {
        replicas,
        usage_ratio: counted,
        held_by_tolerance: false,
        note: None,
    }
}

/// Returns the HPA's scale-up limit without `behavior`: `max(2 × current, 4)`.
pub fn scale_up_limit(current: i64) -> i64 {
    (2 * current).max(4)
}

/// Recent recommendations of one scale target, for the stabilisation windows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stabilizer {
    /// `(event time in µs, recommended replicas)`, oldest first.
    pub recommendations: Vec<(i64, i64)>,
}

impl Stabilizer {
    /// Records `desired` at `now_us` and returns the stabilised recommendation.
    ///
    /// Without a scale-up window (`up_s == 0`) this is the controller's default: the highest
    /// recommendation of the last `down_s` seconds, this one included. With a scale-up window it
    /// is the `behavior` form: `current` raised to the lowest recommendation of the last `up_s`
    /// seconds and lowered to the highest of the last `down_s` seconds.
    pub fn stabilize(
        &mut self,
        now_us: i64,
        desired: i64,
        current: i64,
        down_s: i64,
        up_s: i64,
    ) -> i64 {
        let in_window = |window_s: i64| {
            let cutoff = now_us.saturating_sub(window_s.saturating_mul(1_000_000));
            move |(at, _): &&(i64, i64)| *at >= cutoff
        };
        let down = self
            .recommendations
            .iter()
            .filter(in_window(down_s))
            .map(|(_, r)| *r)
            .fold(desired, i64::max);
        let stabilized = if up_s <= 0 {
            down
        } else {
            let up = self
                .recommendations
                .iter()
                .filter(in_window(up_s))
                .map(|(_, r)| *r)
                .fold(desired, i64::min);
            current.max(up).min(down)
        };

        let keep_s = down_s.max(up_s).max(0);
        let cutoff = now_us.saturating_sub(keep_s.saturating_mul(1_000_000));
        self.recommendations.retain(|(at, _)| *at >= cutoff);
        self.recommendations.push((now_us, desired));
        stabilized
    }
}

/// The answer after the replica-count rules, with the rules that changed it.
#[derive(Debug, Clone, PartialEq)]
pub struct Limited {
    /// Replicas after the rules.
    pub replicas: i64,
    /// `scale-up-limit`, `min_replicas`, `max_replicas`: each rule that changed the answer.
    pub bounds: Vec<&'static str>,
}

/// Applies the controller's replica-count rules to a stabilised recommendation: at least
/// `min`, at most `max`, and, when `with_scale_up_limit`, at most [`scale_up_limit`].
pub fn limit(current: i64, desired: i64, min: i64, max: i64, with_scale_up_limit: bool) -> Limited {
    let up_limit = scale_up_limit(current);
    let (ceiling, ceiling_bound) = if with_scale_up_limit && max > up_limit {
        (up_limit, "scale-up-limit")
    } else {
        (max, "max_replicas")
    };
    if desired < min {
        Limited {
            replicas: min,
            bounds: vec!["min_replicas"],
        }
    } else if desired > ceiling {
        Limited {
            replicas: ceiling,
            bounds: vec![ceiling_bound],
        }
    } else {
        Limited {
            replicas: desired,
            bounds: vec![],
        }
    }
}
