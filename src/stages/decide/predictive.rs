//! The predictive rule: provision now for the load expected when a pod asked for now is ready
//! and has served one decision interval.
//!
//! The horizon is `startup_s + decision_interval_s`: a pod asked for at `t` serves from
//! `t + startup_s`, and the next decision can correct the count one interval later, so this
//! decision must cover the load up to then. Which load of the forecast's interval is
//! provisioned for is the [`Strategy`]'s choice ([`super::strategy`]); the default, balanced,
//! takes `point + 0.5 × (upper − point)`, which covers most of the forecast's upside without
//! paying for its whole tail. The target utilisation already leaves the HPA's own headroom, so
//! this is on top of it.

use crate::events::LoadForecast;
use crate::stages::predict::forecast_at;
use crate::topology::ServiceSpec;

use super::strategy::{provision_load, Strategy, StrategyInputs};

/// What the forecast asks for on its own.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Seconds after the forecast the plan covers.
    pub horizon_s: i64,
    /// Load provisioned for, in load units per second.
    pub load: f64,
    /// Replicas that serve `load` at the target utilisation.
    pub replicas: i64,
}

/// Returns the replicas that serve the load `strategy` picks from the forecast at the target
/// utilisation: `ceil(load / (capacity_per_pod × target / 100))`.
pub fn plan(
    spec: &ServiceSpec,
    forecast: &LoadForecast,
    interval_s: i64,
    strategy: Strategy,
    inputs: &StrategyInputs,
) -> Plan {
    let horizon_s = spec.startup_s.max(0) + interval_s.max(0);
    let point = forecast_at(forecast, horizon_s);
    let inputs = StrategyInputs {
        interval_level: forecast.interval_level,
        ..*inputs
    };
    let load = provision_load(strategy, &point, &inputs);

    let per_pod = spec.capacity_per_pod * spec.target_utilization_percent / 100.0;
    let replicas = if per_pod > 0.0 {
        ceil_replicas(load / per_pod)
    } else {
        spec.max_replicas
    };
    Plan {
        horizon_s,
        load,
        replicas,
    }
}

/// Returns `ceil(x)`, forgiving float noise just above a whole number (3 × 1.0000000000000002
/// is 3 pods, not 4). The HPA's own calculator does not forgive it; this rule is ours.
fn ceil_replicas(x: f64) -> i64 {
    (x - 1e-9).ceil().max(0.0) as i64
}
