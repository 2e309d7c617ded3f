//! Actuation on a simulated cluster: pods that take time to start, a queue that backs up.
//!
//! **Consumes** [`ScalingDecision`]s (through [`SimulatedCluster::apply`]) and the load of each
//! closed window (through [`SimulatedCluster::observe`], from the window's [`FeatureVector`]).
//! **Produces** one [`ActuationOutcome`] per decision and one [`ObservedOutcome`] per window.
//! **Keeps**, per service, its pods (each with the time it becomes ready) and the backlog of
//! work not yet served.
//! **Guarantees**: deterministic outcomes with ids `actuation/<decision id>` and
//! `observed/<service>/<window_start_us>`.
//!
//! # The model
//!
//! A pod asked for at `t` serves from `t + startup_s`. Over a window `[s, e)` of `W` seconds,
//! the pods ready at `s` serve with capacity `C = ready × capacity_per_pod` load units per
//! second; the window brings `load × W` units on top of the backlog:
//!
//! ```text
//! served    = min(backlog + load·W, C·W)
//! backlog'  = backlog + load·W − served
//! ρ         = served / (C·W)                       (the pods' busy fraction, ≤ 1)
//! util      = 100·ρ  = 100·(load + backlog drained per s) / C, at most 100
//! latency   = base_latency_ms · min(1/(1 − ρ), 10) + backlog' / C · 1000
//! ```
//!
//! CPU saturates at 100 % like a real pod's: a pod cannot report the demand it cannot serve,
//! which is what makes a reactive HPA under-react to a spike (it sees 100 %, not 300 %). The
//! queueing factor is the M/M/1 stretch `1/(1 − ρ)`, capped at [`MAX_QUEUEING_FACTOR`]; the
//! backlog adds the time to drain it at full capacity.
//!
//! # Caveats
//!
//! - A pod that becomes ready inside a window serves from the next window on.
//! - With no ready pod nothing is served: utilisation reads 0 (no pod reports), and latency is
//!   the capped queueing delay plus the whole window.
//! - Scale-down is instant (no graceful termination); the backlog is never dropped.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::events::{
    ActuationOutcome, ActuationStatus, FeatureVector, ObservedOutcome, ScalingDecision,
};
use crate::topology::ServiceSpec;

/// The most the queueing delay stretches the base latency (reached at ρ = 0.9).
pub const MAX_QUEUEING_FACTOR: f64 = 10.0;

const MICROS: i64 = 1_000_000;

/// One pod of a simulated Deployment.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SimulatedPod {
    /// When the pod was asked for, in µs (`i64::MIN` for the initial pods).
    pub created_us: i64,
    /// When the pod starts serving, in µs.
    pub ready_us: i64,
}

/// One simulated Deployment: its pods, its backlog and the last time it was touched.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SimulatedService {
    /// Pods asked for, ready or starting, oldest first.
    pub pods: Vec<SimulatedPod>,
    /// Work waiting to be served, in load units.
    pub backlog: f64,
    /// The latest event time seen (window end or decision time), in µs.
    pub now_us: i64,
}

impl SimulatedService {
    fn new(spec: &ServiceSpec) -> Self {
        let initial = SimulatedPod {
            created_us: i64::MIN,
            ready_us: i64::MIN,
        };
        let count = usize::try_from(spec.initial_replicas.max(0)).unwrap_or(0);
        Self {
            pods: vec![initial; count],
            backlog: 0.0,
            now_us: i64::MIN,
        }
    }

    fn ready_at(&self, t_us: i64) -> i64 {
        self.pods.iter().filter(|p| p.ready_us <= t_us).count() as i64
    }

    fn asked(&self) -> i64 {
        self.pods.len() as i64
    }

    /// Asks for `count` pods at `now_us`, ready `startup_s` later; returns a detail line.
    fn start_pods(&mut self, now_us: i64, count: i64, startup_s: i64) -> String {
        let ready_us = now_us.saturating_add(startup_s.saturating_mul(MICROS));
        let pod = SimulatedPod {
            created_us: now_us,
            ready_us,
        };
        self.pods.extend(std::iter::repeat_n(
            pod,
            usize::try_from(count).unwrap_or(0),
        ));
        format!("started {count} pods, ready at {ready_us} us")
    }

    /// Removes pods down to `keep`, newest first; returns a detail line.
    fn remove_newest(&mut self, keep: i64) -> String {
        let before = self.asked();
        // Newest first: the latest to become ready, then the latest asked for.
        self.pods.sort_by_key(|p| (p.ready_us, p.created_us));
        self.pods.truncate(usize::try_from(keep).unwrap_or(0));
        format!("removed {} pods", before - self.asked())
    }
}

/// The actuate stage against a simulated cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SimulatedCluster {
    services: BTreeMap<String, SimulatedService>,
}

impl SimulatedCluster {
    /// Returns a cluster running each service at its initial replicas, all ready.
    pub fn new(services: &[ServiceSpec]) -> Self {
        let services = services
            .iter()
            .map(|spec| (spec.name.clone(), SimulatedService::new(spec)))
            .collect();
        Self { services }
    }

    /// Returns the replicas asked for and those ready at the latest time the service saw.
    pub fn replicas(&self, service: &str) -> (i64, i64) {
        self.services
            .get(service)
            .map_or((0, 0), |s| (s.asked(), s.ready_at(s.now_us)))
    }

    fn service(&mut self, spec: &ServiceSpec) -> &mut SimulatedService {
        self.services
            .entry(spec.name.clone())
            .or_insert_with(|| SimulatedService::new(spec))
    }

    /// Serves one window's load with the pods ready at its start and returns what happened.
    pub fn observe(&mut self, spec: &ServiceSpec, feature: &FeatureVector) -> ObservedOutcome {
        let state = self.service(spec);
        let window_s = (feature.window_end_us - feature.window_start_us).max(0) as f64 / 1e6;
        let ready = state.ready_at(feature.window_start_us);
        let capacity = ready as f64 * spec.capacity_per_pod.max(0.0);

        let demand = state.backlog + feature.load.max(0.0) * window_s;
        let served = demand.min(capacity * window_s);
        state.backlog = demand - served;
        state.now_us = state.now_us.max(feature.window_end_us);

        let busy = if capacity > 0.0 && window_s > 0.0 {
            (served / (capacity * window_s)).min(1.0)
        } else {
            0.0
        };
        let latency_ms = latency_ms(spec, busy, state.backlog, capacity, window_s);
        ObservedOutcome {
            id: format!("observed/{}/{}", spec.name, feature.window_start_us),
            service: spec.name.clone(),
            window_start_us: feature.window_start_us,
            window_end_us: feature.window_end_us,
            load: feature.load,
            replicas: state.asked(),
            ready_replicas: ready,
            capacity,
            utilization: 100.0 * busy,
            backlog: state.backlog,
            latency_ms,
            slo_latency_ms: spec.slo_latency_ms,
            slo_violated: latency_ms > spec.slo_latency_ms,
        }
    }

    /// Carries out a decision: starts new pods (ready after `startup_s`) or removes pods at
    /// once, newest first (so starting pods go before serving ones).
    pub fn apply(&mut self, spec: &ServiceSpec, decision: &ScalingDecision) -> ActuationOutcome {
        let state = self.service(spec);
        state.now_us = state.now_us.max(decision.ts_us);
        let from = state.asked();
        let to = decision.desired_replicas;
        let outcome = |status, to_replicas, detail: String| ActuationOutcome {
            id: format!("actuation/{}", decision.id),
            decision_id: decision.id.clone(),
            service: spec.name.clone(),
            ts_us: decision.ts_us,
            status,
            from_replicas: from,
            to_replicas,
            detail,
        };

        if to < spec.min_replicas || to > spec.max_replicas {
            let detail = format!(
                "refused {to} replicas: outside [{}, {}]",
                spec.min_replicas, spec.max_replicas
            );
            return outcome(ActuationStatus::Refused, from, detail);
        }
        if to == from {
            return outcome(
                ActuationStatus::Unchanged,
                to,
                format!("kept {to} replicas"),
            );
        }

        let detail = if to > from {
            state.start_pods(decision.ts_us, to - from, spec.startup_s)
        } else {
            state.remove_newest(to)
        };
        outcome(ActuationStatus::Applied, to, detail)
    }
}

/// Returns the window's latency: the base latency stretched by queueing, plus the time to drain
/// what is left at full capacity.
fn latency_ms(spec: &ServiceSpec, busy: f64, backlog: f64, capacity: f64, window_s: f64) -> f64 {
    if capacity <= 0.0 {
        return spec.base_latency_ms * MAX_QUEUEING_FACTOR + window_s * 1000.0;
    }
    let queueing = if busy < 1.0 {
        (1.0 / (1.0 - busy)).min(MAX_QUEUEING_FACTOR)
    } else {
        MAX_QUEUEING_FACTOR
    };
    spec.base_latency_ms * queueing + backlog / capacity * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::ServiceKind;

    fn spec(initial: i64, startup_s: i64) -> ServiceSpec {
        ServiceSpec {
            name: "svc".into(),
            kind: ServiceKind::General,
            min_replicas: 1,
            max_replicas: 10,
            capacity_per_pod: 100.0,
            startup_s,
            slo_latency_ms: 500.0,
            base_latency_ms: 10.0,
            target_utilization_percent: 60.0,
            initial_replicas: initial,
        }
    }

    fn window(index: i64, load: f64) -> FeatureVector {
        FeatureVector::for_load("svc", index, 15, load)
    }

    fn decision(ts_s: i64, desired: i64) -> ScalingDecision {
        ScalingDecision {
            id: format!("decision/svc/{}", ts_s * MICROS),
            service: "svc".into(),
            ts_us: ts_s * MICROS,
            current_replicas: 0,
            desired_replicas: desired,
            policy: "hpa".into(),
            strategy: "reactive".into(),
            forecast_id: None,
            forecast_load: None,
            observed_load: 0.0,
            observed_utilization: 0.0,
            reactive_replicas: desired,
            predictive_replicas: None,
            regime: "normal".into(),
            rule: "hpa".into(),
            bounds: vec![],
            reason: String::new(),
            cpu_request_milli: 0,
            cpu_limit_milli: 0,
            cpu_lower_milli: 0,
            cpu_upper_milli: 0,
        }
    }

    #[test]
    fn pods_do_not_serve_before_their_startup_time() {
        let spec = spec(2, 30);
        let mut cluster = SimulatedCluster::new(std::slice::from_ref(&spec));
        assert_eq!(cluster.replicas("svc"), (2, 2));

        let applied = cluster.apply(&spec, &decision(15, 4));
        assert_eq!(applied.status, ActuationStatus::Applied);
        assert_eq!(cluster.replicas("svc"), (4, 2));
        // Asked at 15 s, ready at 45 s: windows [15, 30) and [30, 45) still run on two pods.
        for (index, ready) in [(1, 2), (2, 2), (3, 4)] {
            let observed = cluster.observe(&spec, &window(index, 100.0));
            assert_eq!(
                (observed.replicas, observed.ready_replicas),
                (4, ready),
                "window {index}"
            );
            assert_eq!(observed.capacity, 100.0 * ready as f64);
        }
    }

    #[test]
    fn backlog_grows_when_load_exceeds_capacity_and_drains_after() {
        let spec = spec(2, 30);
        let mut cluster = SimulatedCluster::new(std::slice::from_ref(&spec));
        // Capacity 200/s, W = 15 s: 3,000 units per window.
        let w0 = cluster.observe(&spec, &window(0, 150.0));
        // ρ = 2250/3000 = 0.75: 10 ms × 1/(1 − 0.75) = 40 ms.
        assert_eq!(
            (w0.utilization, w0.backlog, w0.latency_ms),
            (75.0, 0.0, 40.0)
        );
        assert!(!w0.slo_violated);

        let w1 = cluster.observe(&spec, &window(1, 300.0));
        // 4,500 asked, 3,000 served: 1,500 left; 10 ms × 10 (cap) + 1500/200 s = 7,600 ms.
        assert_eq!(
            (w1.utilization, w1.backlog, w1.latency_ms),
            (100.0, 1500.0, 7600.0)
        );
        assert!(w1.slo_violated);

        let w2 = cluster.observe(&spec, &window(2, 100.0));
        // 1,500 + 1,500 = 3,000 = capacity: the backlog drains, CPU still at 100 %.
        assert_eq!(
            (w2.utilization, w2.backlog, w2.latency_ms),
            (100.0, 0.0, 100.0)
        );
        assert!(!w2.slo_violated);

        let w3 = cluster.observe(&spec, &window(3, 100.0));
        assert_eq!(
            (w3.utilization, w3.backlog, w3.latency_ms),
            (50.0, 0.0, 20.0)
        );
        assert_eq!(w3.id, "observed/svc/45000000");
    }

    #[test]
    fn scale_down_removes_starting_pods_before_serving_ones() {
        let spec = spec(2, 30);
        let mut cluster = SimulatedCluster::new(std::slice::from_ref(&spec));
        cluster.apply(&spec, &decision(0, 4));
        cluster.apply(&spec, &decision(15, 3));
        assert_eq!(cluster.replicas("svc"), (3, 2));
        let down = cluster.apply(&spec, &decision(20, 1));
        assert_eq!((down.from_replicas, down.to_replicas), (3, 1));
        // The one pod left is an initial one, so it serves at once.
        let observed = cluster.observe(&spec, &window(2, 10.0));
        assert_eq!((observed.replicas, observed.ready_replicas), (1, 1));
    }

    #[test]
    fn actuation_reports_unchanged_and_refused_requests() {
        let spec = spec(3, 30);
        let mut cluster = SimulatedCluster::new(std::slice::from_ref(&spec));
        let same = cluster.apply(&spec, &decision(15, 3));
        assert_eq!(same.status, ActuationStatus::Unchanged);
        assert_eq!(same.id, "actuation/decision/svc/15000000");

        let refused = cluster.apply(&spec, &decision(30, 11));
        assert_eq!(refused.status, ActuationStatus::Refused);
        assert_eq!(refused.to_replicas, 3);
        assert!(
            refused.detail.contains("outside [1, 10]"),
            "{}",
            refused.detail
        );
        assert_eq!(cluster.replicas("svc"), (3, 3));
    }

    #[test]
    fn a_service_without_ready_pods_backs_everything_up() {
        let spec = spec(0, 30);
        let mut cluster = SimulatedCluster::new(std::slice::from_ref(&spec));
        let observed = cluster.observe(&spec, &window(0, 40.0));
        assert_eq!((observed.capacity, observed.utilization), (0.0, 0.0));
        assert_eq!(observed.backlog, 600.0);
        assert_eq!(observed.latency_ms, 100.0 + 15_000.0);
        assert!(observed.slo_violated);
    }
}
