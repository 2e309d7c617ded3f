//! Normalisation: from the count the metrics ask for to the count that is applied.
//!
//! Without `behavior` (the legacy path): the highest recommendation of the downscale
//! stabilisation window (5 minutes by default, ages up to and including the window), the
//! scale-up limit `max(2 × current, 4)`, then `[min, max]`. With `behavior`: the current count
//! raised to the lowest recommendation of the scale-up window and lowered to the highest of the
//! scale-down window (ages strictly inside each window), then the rate policies of the
//! direction, each netting the scale events of its period, combined by the select policy, then
//! `[min, max]`.

use serde::{Deserialize, Serialize};

/// The controller's default downscale stabilisation window, in seconds.
pub const DEFAULT_DOWNSCALE_WINDOW_S: f64 = 300.0;

/// An HPA's `behavior`: the scaling rules of each direction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Behavior {
    /// Rules for scaling up.
    pub scale_up: ScalingRules,
    /// Rules for scaling down.
    pub scale_down: ScalingRules,
}

impl Default for Behavior {
    /// Returns the controller's defaults: up without a window, by the larger of 4 pods or
    /// 100 % per 15 s; down over a 300 s window, by up to 100 % per 15 s.
    fn default() -> Self {
        let policy = |kind, value| ScalingPolicy {
            kind,
            value,
            period_s: 15,
        };
        Self {
            scale_up: ScalingRules {
                stabilization_window_s: 0,
                select_policy: SelectPolicy::Max,
                policies: vec![
                    policy(PolicyKind::Pods, 4),
                    policy(PolicyKind::Percent, 100),
                ],
            },
            scale_down: ScalingRules {
                stabilization_window_s: 300,
                select_policy: SelectPolicy::Max,
                policies: vec![policy(PolicyKind::Percent, 100)],
            },
        }
    }
}

/// The scaling rules of one direction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScalingRules {
    /// Seconds of past recommendations the stabilisation looks at.
    pub stabilization_window_s: i64,
    /// How the policies combine.
    pub select_policy: SelectPolicy,
    /// The rate policies.
    pub policies: Vec<ScalingPolicy>,
}

/// How the rate policies of one direction combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SelectPolicy {
    /// The policy that allows the largest change.
    Max,
    /// The policy that allows the smallest change.
    Min,
    /// No scaling in this direction.
    Disabled,
}

/// One rate policy: at most `value` pods, or `value` percent, per `period_s` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScalingPolicy {
    /// Pods or percent.
    #[serde(rename = "type")]
    pub kind: PolicyKind,
    /// Pods, or percent of the count at the start of the period.
    pub value: i64,
    /// The period, in seconds.
    pub period_s: i64,
}

/// What a rate policy's value counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PolicyKind {
    /// A number of pods.
    Pods,
    /// A percentage of the count at the start of the period.
    Percent,
}

/// An earlier recommendation (before normalisation).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PastRecommendation {
    /// The replicas recommended.
    pub replicas: i64,
    /// Seconds before now.
    pub age_s: f64,
}

/// An earlier scale change.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PastScaleEvent {
    /// Replicas added (positive) or removed (negative).
    pub change: i64,
    /// Seconds before now.
    pub age_s: f64,
}

/// A rule that changed the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Bound {
    /// The scale target has 0 replicas and `min > 0`: the HPA leaves it alone.
    ScalingDisabled,
    /// A stabilisation window held the recommendation.
    Stabilization,
    /// The legacy `max(2 × current, 4)` limit or the scale-up rate policies.
    ScaleUpLimit,
    /// The scale-down rate policies.
    ScaleDownLimit,
    /// `min_replicas`.
    MinReplicas,
    /// `max_replicas`.
    MaxReplicas,
}

impl Bound {
    /// Returns the bound's name as decisions write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Bound::ScalingDisabled => "scaling-disabled",
            Bound::Stabilization => "stabilization",
            Bound::ScaleUpLimit => "scale-up-limit",
            Bound::ScaleDownLimit => "scale-down-limit",
            Bound::MinReplicas => "min_replicas",
            Bound::MaxReplicas => "max_replicas",
        }
    }
}

/// What normalisation needs.
#[derive(Debug, Clone, Copy)]
pub struct NormalizeInput<'a> {
    /// The scale target's current replica count.
    pub current: i64,
    /// What the metrics asked for (the largest over the metrics).
    pub desired: i64,
    /// The HPA's `minReplicas`.
    pub min: i64,
    /// The HPA's `maxReplicas`.
    pub max: i64,
    /// `None` for the legacy path.
    pub behavior: Option<&'a Behavior>,
    /// The legacy downscale window (the controller's flag), in seconds.
    pub legacy_window_s: f64,
    /// Earlier recommendations, for the stabilisation windows.
    pub recommendations: &'a [PastRecommendation],
    /// Earlier scale changes, for the rate policies.
    pub scale_events: &'a [PastScaleEvent],
    /// False skips the scale-up limit and rate policies (min and max still apply).
    pub rate_limits: bool,
}

/// The normalised answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    /// The replica count to apply.
    pub replicas: i64,
    /// The recommendation after stabilisation, before rates and bounds.
    pub stabilized: i64,
    /// The rules that changed the answer, in the order they applied.
    pub bounds: Vec<Bound>,
    /// True when the current count was outside `[min, max]` (or scaling is disabled): the
    /// answer came from that alone, the metrics were not looked at and the controller records
    /// no recommendation.
    pub range_corrected: bool,
}

/// Returns the count to apply for `input`.
pub fn normalize(input: &NormalizeInput) -> Normalized {
    let corrected = |replicas, bound| Normalized {
        replicas,
        stabilized: replicas,
        bounds: vec![bound],
        range_corrected: true,
    };
    if input.current == 0 && input.min != 0 {
        return corrected(0, Bound::ScalingDisabled);
    }
    if input.current > input.max {
        return corrected(input.max, Bound::MaxReplicas);
    }
    if input.current < input.min {
        return corrected(input.min, Bound::MinReplicas);
    }

    let stabilized = match input.behavior {
        None => stabilize_legacy(input),
        Some(behavior) => stabilize_with_behavior(input, behavior),
    };
    let mut bounds = Vec::new();
    if stabilized != input.desired {
        bounds.push(Bound::Stabilization);
    }
    let (replicas, bound) = match (input.behavior, input.rate_limits) {
        (None, true) => limit_legacy(input, stabilized),
        (Some(behavior), true) => limit_with_behavior(input, behavior, stabilized),
        (_, false) => clamp(stabilized, input.min, input.max),
    };
    bounds.extend(bound);
    Normalized {
        replicas,
        stabilized,
        bounds,
        range_corrected: false,
    }
}

/// The legacy window: the highest of `desired` and the recommendations at most
/// `legacy_window_s` old.
fn stabilize_legacy(input: &NormalizeInput) -> i64 {
    input
        .recommendations
        .iter()
        .filter(|r| r.age_s <= input.legacy_window_s)
        .map(|r| r.replicas)
        .fold(input.desired, i64::max)
}

/// The `behavior` windows: `current` raised to the lowest recommendation of the scale-up
/// window and lowered to the highest of the scale-down window, `desired` included in both.
fn stabilize_with_behavior(input: &NormalizeInput, behavior: &Behavior) -> i64 {
    let within = |window_s: i64| move |r: &&PastRecommendation| r.age_s < window_s as f64;
    let recs = input.recommendations;
    let up = recs
        .iter()
        .filter(within(behavior.scale_up.stabilization_window_s))
        .map(|r| r.replicas)
        .fold(input.desired, i64::min);
    let down = recs
        .iter()
        .filter(within(behavior.scale_down.stabilization_window_s))
        .map(|r| r.replicas)
        .fold(input.desired, i64::max);
    input.current.max(up).min(down)
}

/// Returns `desired` clamped to `[min, max]`, with the bound that applied.
fn clamp(desired: i64, min: i64, max: i64) -> (i64, Option<Bound>) {
    if desired < min {
        (min, Some(Bound::MinReplicas))
    } else if desired > max {
        (max, Some(Bound::MaxReplicas))
    } else {
        (desired, None)
    }
}

/// Returns the legacy scale-up limit: `max(2 × current, 4)`.
pub fn legacy_scale_up_limit(current: i64) -> i64 {
    (2 * current).max(4)
}

/// The legacy rules: at least `min`, at most the smaller of `max` and the scale-up limit.
fn limit_legacy(input: &NormalizeInput, desired: i64) -> (i64, Option<Bound>) {
    let up_limit = legacy_scale_up_limit(input.current);
    let (ceiling, bound) = if input.max > up_limit {
        (up_limit, Bound::ScaleUpLimit)
    } else {
        (input.max, Bound::MaxReplicas)
    };
    if desired < input.min {
        (input.min, Some(Bound::MinReplicas))
    } else if desired > ceiling {
        (ceiling, Some(bound))
    } else {
        (desired, None)
    }
}

/// The `behavior` rules: the rate limit of the direction of change, never past `current` the
/// wrong way, then the bound of that direction.
fn limit_with_behavior(input: &NormalizeInput, b: &Behavior, desired: i64) -> (i64, Option<Bound>) {
    let current = input.current;
    if desired > current {
        let limit = rate_limit(current, input.scale_events, &b.scale_up, true).max(current);
        let (ceiling, bound) = if input.max > limit {
            (limit, Bound::ScaleUpLimit)
        } else {
            (input.max, Bound::MaxReplicas)
        };
        if desired > ceiling {
            return (ceiling, Some(bound));
        }
    } else if desired < current {
        let limit = rate_limit(current, input.scale_events, &b.scale_down, false).min(current);
        let (floor, bound) = if input.min < limit {
            (limit, Bound::ScaleDownLimit)
        } else {
            (input.min, Bound::MinReplicas)
        };
        if desired < floor {
            return (floor, Some(bound));
        }
    }
    (desired, None)
}

/// Returns the furthest count the rules allow from `current` in one direction. Each policy
/// starts from the count at the start of its period (`current` minus the replicas added plus
/// the replicas removed in the period); the select policy picks the largest or smallest change.
pub fn rate_limit(current: i64, events: &[PastScaleEvent], rules: &ScalingRules, up: bool) -> i64 {
    let larger_change = match rules.select_policy {
        SelectPolicy::Disabled => return current,
        SelectPolicy::Max => true,
        SelectPolicy::Min => false,
    };
    // Up, the largest change is the highest count; down, it is the lowest.
    let pick_high = larger_change == up;
    let mut result = if pick_high { i64::MIN } else { i64::MAX };
    for policy in &rules.policies {
        let in_period = events.iter().filter(|e| e.age_s < policy.period_s as f64);
        let (added, removed) = in_period.fold((0, 0), |(a, r), e| {
            (a + e.change.max(0), r + (-e.change).max(0))
        });
        let start = current - added + removed;
        let value = policy.value;
        let proposed = match (policy.kind, up) {
            (PolicyKind::Pods, true) => start + value,
            (PolicyKind::Pods, false) => start - value,
            (PolicyKind::Percent, true) => {
                (start as f64 * (1.0 + value as f64 / 100.0)).ceil() as i64
            }
            (PolicyKind::Percent, false) => (start as f64 * (1.0 - value as f64 / 100.0)) as i64,
        };
        result = if pick_high {
            result.max(proposed)
        } else {
            result.min(proposed)
        };
    }
    result
}
