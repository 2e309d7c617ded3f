//! The replica calculator: from pods and one metric to the replica count the metric asks for.
//!
//! Follows the rules of the Kubernetes controller's replica calculator for resource utilisation
//! (CPU), pods metrics (average value) and external metrics (value and average-value targets).
//! See the parent module for what is left out.

use serde::{Deserialize, Serialize};

use super::{Error, Tolerance};

/// A pod's lifecycle phase, as the controller sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PodPhase {
    /// Scheduled and started.
    Running,
    /// Not started yet: counted as unready, whatever the metric.
    Pending,
    /// Failed: ignored.
    Failed,
}

/// One pod of the scale target; request and usage are the sums over its containers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pod {
    /// The pod's phase.
    pub phase: PodPhase,
    /// The pod's Ready condition. For CPU, a pod that is not ready has never been ready since it
    /// started, so its sample is ignored.
    pub ready: bool,
    /// Still inside the CPU initialisation period: its CPU sample does not count as ready.
    pub cpu_warming: bool,
    /// Being deleted: ignored.
    pub deleting: bool,
    /// The pod's request in milli-units (CPU millicores); needed for resource metrics.
    #[serde(deserialize_with = "Option::deserialize")]
    pub request_milli: Option<i64>,
    /// The pod's metric sample in milli-units, `None` when the pod reported none.
    #[serde(deserialize_with = "Option::deserialize")]
    pub usage_milli: Option<i64>,
}

/// The metric and its target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    /// CPU utilisation against requests, target in percent.
    Resource { target_utilization_percent: i64 },
    /// A per-pod metric averaged over the pods, target per pod in milli-units.
    Pods { target_average_milli: i64 },
    /// One value for the whole target against a target value.
    ExternalValue {
        value_milli: i64,
        target_value_milli: i64,
    },
    /// One value for the whole target against a target per replica.
    ExternalAverageValue {
        value_milli: i64,
        target_average_milli: i64,
    },
}

/// What the calculator needs.
#[derive(Debug, Clone, Copy)]
pub struct MetricInput<'a> {
    /// The scale target's current replica count.
    pub current_replicas: i64,
    /// No change while `1 - scale_down <= ratio <= 1 + scale_up`.
    pub tolerance: Tolerance,
    /// The metric and its target.
    pub metric: Metric,
    /// The pods the target's selector lists.
    pub pods: &'a [Pod],
    /// Samples from pods that are not in `pods`; they never count.
    pub unmatched_metrics_milli: &'a [i64],
}

/// How missing samples were filled in before the second look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingFill {
    /// Scale up: pods without a sample count as using nothing.
    Zero,
    /// Scale down: pods without a sample count as using their request at
    /// `max(100 %, target)` (resource) or exactly the target (pods metric).
    Full,
}

/// Why the calculator kept the current count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// The usage ratio was within tolerance.
    Tolerance,
    /// Counting unready or missing pods flipped the direction of the change.
    DirectionFlip,
}

/// The calculator's answer, with what it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommendation {
    /// Replicas the metric asks for, before normalisation.
    pub replicas: i64,
    /// The usage ratio over ready pods with samples (or of the external value).
    pub usage_ratio: f64,
    /// The ratio after unready and missing pods were counted, when they were.
    pub rebalanced_ratio: Option<f64>,
    /// For resource metrics: the utilisation the controller reports (truncated percent).
    pub utilization_percent: Option<i64>,
    /// The current value the controller reports: average per pod in milli-units (pods and
    /// external average-value), or the total (external value); `None` for resource metrics.
    pub current_milli: Option<i64>,
    /// Set when a rule kept the current count though `ceil(ratio × pods)` differs from it.
    pub held: Option<Hold>,
    /// True when unready pods were counted as using nothing (a scale up with unready pods).
    pub unready_counted_idle: bool,
    /// How pods without samples were counted, if there were any.
    pub missing_fill: Option<MissingFill>,
}

impl Recommendation {
    /// Returns the ratio the answer came from: the rebalanced one when there was one.
    pub fn final_ratio(&self) -> f64 {
        self.rebalanced_ratio.unwrap_or(self.usage_ratio)
    }
}

/// Returns the replica count `input`'s metric asks for.
///
/// # Errors
/// [`Error::NoPods`] when the selector lists no pods (pods-based metrics),
/// [`Error::MissingRequest`] when a pod has no request (resource), [`Error::NoMetrics`] when no
/// ready pod reported a sample, [`Error::ZeroTarget`] when the target is not positive. The
/// controller keeps the current count on any of these.
pub fn recommend(input: &MetricInput) -> Result<Recommendation, Error> {
    match input.metric {
        Metric::Resource {
            target_utilization_percent,
        } => pod_based(input, Target::Utilization(target_utilization_percent)),
        Metric::Pods {
            target_average_milli,
        } => pod_based(input, Target::Average(target_average_milli)),
        Metric::ExternalValue {
            value_milli,
            target_value_milli,
        } => external_value(input, value_milli, target_value_milli),
        Metric::ExternalAverageValue {
            value_milli,
            target_average_milli,
        } => external_average(input, value_milli, target_average_milli),
    }
}

/// The target of a metric that each pod reports.
#[derive(Debug, Clone, Copy)]
enum Target {
    Utilization(i64),
    Average(i64),
}

impl Target {
    fn value(self) -> i64 {
        match self {
            Target::Utilization(t) | Target::Average(t) => t,
        }
    }
}

/// A pod's sample and request, as the ratio sees them.
#[derive(Debug, Clone, Copy)]
struct Sample {
    usage: i64,
    request: i64,
}

/// Pods sorted the controller's way.
#[derive(Debug, Default)]
struct Groups {
    ready: Vec<Sample>,
    unready: Vec<Sample>,
    missing: Vec<Sample>,
}

/// Sorts pods into ready (with a sample), unready and missing; failed and deleting pods are
/// dropped. Readiness and the CPU initialisation period only matter for CPU.
fn group(pods: &[Pod], cpu: bool) -> Result<Groups, Error> {
    let mut groups = Groups::default();
    for (index, pod) in pods.iter().enumerate() {
        let request = match (cpu, pod.request_milli) {
            (true, None) => return Err(Error::MissingRequest { index }),
            (_, request) => request.unwrap_or(0),
        };
        if pod.deleting || pod.phase == PodPhase::Failed {
            continue;
        }
        let sample = |usage| Sample { usage, request };
        if pod.phase == PodPhase::Pending {
            groups.unready.push(sample(0));
            continue;
        }
        let Some(usage) = pod.usage_milli else {
            groups.missing.push(sample(0));
            continue;
        };
        if cpu && (!pod.ready || pod.cpu_warming) {
            groups.unready.push(sample(usage));
        } else {
            groups.ready.push(sample(usage));
        }
    }
    Ok(groups)
}

/// Returns `(ratio, reported value)` over `samples`: truncated utilisation percent over the
/// target, or the truncated average over the target.
fn ratio(samples: &[Sample], target: Target) -> Result<(f64, i64), Error> {
    let usage: i64 = samples.iter().map(|s| s.usage).sum();
    match target {
        Target::Utilization(t) => {
            let requests: i64 = samples.iter().map(|s| s.request).sum();
            if requests == 0 {
                return Err(Error::NoMetrics);
            }
            let utilization = usage * 100 / requests;
            Ok((utilization as f64 / t as f64, utilization))
        }
        Target::Average(t) => {
            if samples.is_empty() {
                return Err(Error::NoMetrics);
            }
            let average = usage / samples.len() as i64;
            Ok((average as f64 / t as f64, average))
        }
    }
}

/// Returns `ceil(x)` as a replica count, as the controller converts it.
fn ceil(x: f64) -> i64 {
    x.ceil() as i64
}

/// The calculator for metrics each pod reports (resource utilisation, pods metrics).
fn pod_based(input: &MetricInput, target: Target) -> Result<Recommendation, Error> {
    if target.value() <= 0 {
        return Err(Error::ZeroTarget);
    }
    if input.pods.is_empty() {
        return Err(Error::NoPods);
    }
    let cpu = matches!(target, Target::Utilization(_));
    let groups = group(input.pods, cpu)?;
    if groups.ready.is_empty() {
        return Err(Error::NoMetrics);
    }
    let (usage_ratio, reported) = ratio(&groups.ready, target)?;
    let current = input.current_replicas;
    let mut answer = Recommendation {
        replicas: current,
        usage_ratio,
        rebalanced_ratio: None,
        utilization_percent: cpu.then_some(reported),
        current_milli: (!cpu).then_some(reported),
        held: None,
        unready_counted_idle: false,
        missing_fill: None,
    };
    let ready_count = groups.ready.len() as f64;

    // Nothing to rebalance: the plain rule over ready pods.
    let scale_up_with_unready = !groups.unready.is_empty() && usage_ratio > 1.0;
    if !scale_up_with_unready && groups.missing.is_empty() {
        let raw = ceil(usage_ratio * ready_count);
        if input.tolerance.contains(usage_ratio) {
            answer.held = (raw != current).then_some(Hold::Tolerance);
        } else {
            answer.replicas = raw;
        }
        return Ok(answer);
    }

    let samples = rebalance(
        &groups,
        target,
        usage_ratio,
        scale_up_with_unready,
        &mut answer,
    );
    let (new_ratio, _) = ratio(&samples, target)?;
    answer.rebalanced_ratio = Some(new_ratio);
    let raw = ceil(new_ratio * samples.len() as f64);
    let flipped = (usage_ratio < 1.0 && new_ratio > 1.0) || (usage_ratio > 1.0 && new_ratio < 1.0);
    let count_flipped = (new_ratio < 1.0 && raw > current) || (new_ratio > 1.0 && raw < current);
    if input.tolerance.contains(new_ratio) {
        answer.held = (raw != current).then_some(Hold::Tolerance);
    } else if flipped || count_flipped {
        answer.held = (raw != current).then_some(Hold::DirectionFlip);
    } else {
        answer.replicas = raw;
    }
    Ok(answer)
}

/// Returns the samples for the second look: ready pods, missing pods filled in by direction,
/// and, on a scale up, unready pods at zero.
fn rebalance(
    groups: &Groups,
    target: Target,
    usage_ratio: f64,
    scale_up_with_unready: bool,
    answer: &mut Recommendation,
) -> Vec<Sample> {
    let mut samples = groups.ready.clone();

    // An exact ratio of 1 fills nothing in for resource metrics; pods metrics count it as a
    // scale up, as the controller does.
    let fill = if groups.missing.is_empty() {
        None
    } else if usage_ratio < 1.0 {
        Some(MissingFill::Full)
    } else if usage_ratio > 1.0 || matches!(target, Target::Average(_)) {
        Some(MissingFill::Zero)
    } else {
        None
    };
    if let Some(fill) = fill {
        answer.missing_fill = Some(fill);
        samples.extend(groups.missing.iter().map(|s| Sample {
            usage: match (fill, target) {
                (MissingFill::Zero, _) => 0,
                (MissingFill::Full, Target::Utilization(t)) => s.request * t.max(100) / 100,
                (MissingFill::Full, Target::Average(t)) => t,
            },
            request: s.request,
        }));
    }

    if scale_up_with_unready {
        answer.unready_counted_idle = true;
        samples.extend(groups.unready.iter().map(|s| Sample {
            usage: 0,
            request: s.request,
        }));
    }
    samples
}

/// The calculator for an external metric against a target value: `ratio = value / target`,
/// replicas `ceil(ratio × ready pods)`.
fn external_value(input: &MetricInput, value: i64, target: i64) -> Result<Recommendation, Error> {
    if target <= 0 {
        return Err(Error::ZeroTarget);
    }
    let usage_ratio = value as f64 / target as f64;
    let mut answer = plain(input.current_replicas, usage_ratio, value);
    if input.current_replicas == 0 {
        // From zero the caller decides; the ratio alone gives the count.
        answer.replicas = ceil(usage_ratio);
        return Ok(answer);
    }
    if input.pods.is_empty() {
        return Err(Error::NoPods);
    }
    let ready = input
        .pods
        .iter()
        .filter(|p| p.phase == PodPhase::Running && p.ready)
        .count();
    let raw = ceil(usage_ratio * ready as f64);
    if input.tolerance.contains(usage_ratio) {
        answer.held = (raw != input.current_replicas).then_some(Hold::Tolerance);
    } else {
        answer.replicas = raw;
    }
    Ok(answer)
}

/// The calculator for an external metric against a target per replica:
/// `ratio = value / (target × current)`, replicas `ceil(value / target)`.
fn external_average(input: &MetricInput, value: i64, target: i64) -> Result<Recommendation, Error> {
    if target <= 0 {
        return Err(Error::ZeroTarget);
    }
    let current = input.current_replicas;
    let usage_ratio = value as f64 / (target as f64 * current as f64);
    let per_replica = (current > 0).then(|| ceil(value as f64 / current as f64));
    let mut answer = plain(current, usage_ratio, per_replica.unwrap_or(value));
    let raw = ceil(value as f64 / target as f64);
    if input.tolerance.contains(usage_ratio) {
        answer.held = (raw != current).then_some(Hold::Tolerance);
    } else {
        answer.replicas = raw;
    }
    Ok(answer)
}

/// Returns an answer that keeps `current`, for the external rules to fill in.
fn plain(current: i64, usage_ratio: f64, current_milli: i64) -> Recommendation {
    Recommendation {
        replicas: current,
        usage_ratio,
        rebalanced_ratio: None,
        utilization_percent: None,
        current_milli: Some(current_milli),
        held: None,
        unready_counted_idle: false,
        missing_fill: None,
    }
}
