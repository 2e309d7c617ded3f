//! The reactive answer: the HPA's replica calculator over what the simulated cluster observed.

use crate::events::ObservedOutcome;
use crate::topology::ServiceSpec;

use super::hpa::{self, Hold, Metric, MetricInput, Pod, PodPhase, Tolerance};
use super::DecideConfig;

/// The HPA's recommendation, as the decision reports it.
pub(super) struct Reactive {
    pub(super) replicas: i64,
    /// The usage ratio the answer came from.
    pub(super) usage_ratio: f64,
    /// The rule that kept the current count, if one did.
    pub(super) hold: Option<Hold>,
    /// A note for the reason line, when a special case decided.
    pub(super) note: Option<String>,
}

/// Returns the HPA's recommendation for `observed`: the ready replicas as pods requesting
/// 1 CPU and all using the observed utilisation, the replicas still starting as running
/// pods that are not ready.
pub(super) fn reactive(
    config: &DecideConfig,
    spec: &ServiceSpec,
    observed: &ObservedOutcome,
) -> Reactive {
    let ready = observed.ready_replicas.clamp(0, observed.replicas.max(0));
    let usage = (observed.utilization * 10.0).round() as i64;
    let pod = |ready: bool, usage| Pod {
        phase: PodPhase::Running,
        ready,
        cpu_warming: false,
        deleting: false,
        request_milli: Some(1000),
        usage_milli: Some(usage),
    };
    let mut pods = vec![pod(true, usage); ready as usize];
    pods.extend(vec![
        pod(false, 0);
        (observed.replicas - ready).max(0) as usize
    ]);

    let input = MetricInput {
        current_replicas: observed.replicas,
        tolerance: Tolerance::both(config.tolerance),
        metric: Metric::Resource {
            target_utilization_percent: spec.target_utilization_percent.round() as i64,
        },
        pods: &pods,
        unmatched_metrics_milli: &[],
    };
    match hpa::recommend(&input) {
        Ok(r) => Reactive {
            replicas: r.replicas,
            usage_ratio: r.final_ratio(),
            hold: r.held,
            note: r
                .unready_counted_idle
                .then(|| "starting pods count as idle".to_string()),
        },
        // The controller keeps the count when it has no metrics to go by.
        Err(error) => Reactive {
            replicas: observed.replicas,
            usage_ratio: 1.0,
            hold: None,
            note: Some(error.to_string()),
        },
    }
}
