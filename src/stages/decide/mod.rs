//! The scaling decision: how many replicas each service should run, and why.
//!
//! **Consumes**, per service and closed window, the [`LoadForecast`] made at its end, the
//! [`MarketRegime`] and the [`ObservedOutcome`] (replicas, ready replicas, CPU utilisation).
//! **Produces** one [`ScalingDecision`] per call, id `decision/<service>/<ts_us>`, with every
//! input that shaped it, the rule that set it, the bounds that changed it and a reason line.
//! **Keeps**, per service, the recent recommendations and scale events ([`hpa::History`]) for
//! the stabilisation windows and rate policies, a histogram of CPU usage for the resource
//! recommendation ([`resources`]) and, under event-driven, what it saw around scheduled events.
//! **Guarantees**: the same inputs in the same order give the same decisions.
//!
//! Three policies:
//!
//! - [`Policy::Hpa`]: the Kubernetes HPA on CPU utilisation ([`hpa`]): replica calculator,
//!   then, without `behavior`, scale-down stabilisation, scale-up limit `max(2 × current, 4)`
//!   and min/max bounds, or with [`DecideConfig::behavior`] its stabilisation windows and rate
//!   policies. The simulated cluster reports one utilisation figure per window, so the
//!   calculator sees the ready replicas as pods requesting 1 CPU each and all using that
//!   figure, and the replicas still starting as running pods that are not ready.
//! - [`Policy::Predictive`]: provisions for the forecast load at `now + startup_s +
//!   decision_interval_s` ([`predictive`]), never below what the HPA asks
//!   (`max(reactive, predictive)`), through the same stabilisation and min/max bounds. It does
//!   not apply the HPA's scale-up limit: the forecast is the reason to jump ahead. When the
//!   forecast's confidence is below the threshold, it falls back to the HPA path, scale-up limit
//!   included, with rule `fallback-low-confidence`.
//!   Which load of the forecast it provisions for is the [`Strategy`]'s choice
//!   ([`strategy`]); under event-driven, a floor from the [`calendar`] of scheduled market
//!   events raises the answer from a lead before the NYSE open or close (rule `event-floor`).
//! - [`Policy::KedaLag`]: KEDA's Kafka scaler ([`keda`]) on the service's backlog read as
//!   consumer lag, through the HPA's legacy scale-up limit, stabilisation and bounds (KEDA
//!   drives an HPA with an average-value target).
//!
//! # Caveats
//!
//! The HPA's own caveats are listed in [`hpa`]'s module doc. Here, every ready pod uses the
//! same share of its request, so missing metrics, failed, pending and deleting pods never
//! arise, and the target utilisation is rounded to a whole percent as the HPA's API requires.
//! The controller syncs every 15 s; here it runs once per closed window. When the current count
//! is already outside `[min, max]`, the answer is the nearest bound and nothing is recorded for
//! stabilisation, as the controller does.

pub mod calendar;
pub mod hpa;
pub mod keda;
pub mod predictive;
mod reactive;
mod reason;
pub mod resources;
pub mod strategy;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::events::{LoadForecast, MarketContext, MarketRegime, ObservedOutcome, ScalingDecision};
use crate::topology::ServiceSpec;

use calendar::{Calendar, EventMemory};
use hpa::{History, Hold};
use reactive::Reactive;
use reason::reason_line;
#[cfg(test)]
use reason::thousands;
pub use strategy::Strategy;
use strategy::StrategyInputs;

/// What can be wrong with the decide stage's settings; none of these is worth retrying.
#[derive(Debug, Error, PartialEq)]
pub enum Error {
    /// The policy name is not one this stage knows.
    #[error("unknown scaling policy {0:?}: expected \"hpa\", \"predictive\" or \"keda-lag\"")]
    UnknownPolicy(String),
    /// The strategy name is not one this stage knows.
    #[error("unknown strategy {0:?}: expected conservative, balanced, aggressive, event-driven or ml-optimised")]
    UnknownStrategy(String),
    /// Two settings cannot be used together.
    #[error("settings {0} exclude each other")]
    Conflict(&'static str),
    /// A setting is out of its range.
    #[error("setting {name} is out of range: {value}")]
    OutOfRange { name: &'static str, value: f64 },
}

/// How replicas are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// The Kubernetes HPA on CPU utilisation.
    Hpa,
    /// Forecast-driven, never below the HPA.
    Predictive,
    /// KEDA's Kafka scaler on consumer lag ([`keda`]).
    KedaLag,
}

impl Policy {
    /// Returns the policy's name as written in decisions and accepted by `FromStr`.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Hpa => "hpa",
            Policy::Predictive => "predictive",
            Policy::KedaLag => "keda-lag",
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Policy {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "hpa" => Ok(Policy::Hpa),
            "predictive" => Ok(Policy::Predictive),
            "keda-lag" => Ok(Policy::KedaLag),
            _ => Err(Error::UnknownPolicy(s.to_string())),
        }
    }
}

/// Settings of the decide stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecideConfig {
    /// How replicas are chosen.
    pub policy: Policy,
    /// Usage ratios within `1 ± tolerance` keep the current count (the HPA's 0.1).
    pub tolerance: f64,
    /// Seconds over which the highest recommendation holds a scale-down when there is no
    /// `behavior` (the controller's `--horizontal-pod-autoscaler-downscale-stabilization`, 300).
    pub scale_down_stabilization_s: i64,
    /// The HPA's `behavior`: stabilisation windows and rate policies per direction. `None` is
    /// the legacy path (the window above and the scale-up limit `max(2 × current, 4)`).
    #[serde(default)]
    pub behavior: Option<hpa::Behavior>,
    /// Forecasts whose confidence is below this fall back to the HPA.
    pub confidence_threshold: f64,
    /// Seconds between decisions: the window length.
    pub decision_interval_s: i64,
    /// Balanced's place in the forecast interval: 0 the point, 1 the upper bound.
    pub headroom: f64,
    /// Which load of the forecast the predictive policy provisions for.
    #[serde(default)]
    pub strategy: Strategy,
    /// ml-optimised: cost of one unit of load not provisioned for (default 4: an SLO breach
    /// costs four times a spare pod's share).
    #[serde(default = "default_under_cost")]
    pub under_cost: f64,
    /// ml-optimised: cost of one unit of load provisioned and unused (default 1).
    #[serde(default = "default_over_cost")]
    pub over_cost: f64,
    /// event-driven: seconds before a scheduled event the floor rises; `None` is the service's
    /// start-up time plus two decision intervals.
    #[serde(default)]
    pub event_lead_s: Option<i64>,
    /// event-driven: seconds after a scheduled event the floor holds (default 900, the time
    /// constant of the open's decay in the generator).
    #[serde(default = "default_event_hold_s")]
    pub event_hold_s: i64,
    /// event-driven: the floor as a multiple of the current replicas, when no earlier event of
    /// the same name was seen (default 2).
    #[serde(default = "default_event_multiple")]
    pub event_multiple: f64,
    /// keda-lag: the Kafka scaler's settings.
    #[serde(default)]
    pub keda: keda::KafkaLagConfig,
    /// The CPU request and limit recommender's settings.
    #[serde(default)]
    pub resources: resources::ResourceConfig,
}

fn default_under_cost() -> f64 {
    4.0
}
fn default_over_cost() -> f64 {
    1.0
}
fn default_event_hold_s() -> i64 {
    900
}
fn default_event_multiple() -> f64 {
    2.0
}

impl Default for DecideConfig {
    fn default() -> Self {
        Self {
            policy: Policy::Predictive,
            tolerance: 0.1,
            scale_down_stabilization_s: 300,
            behavior: None,
            confidence_threshold: 0.5,
            decision_interval_s: 15,
            headroom: 0.5,
            strategy: Strategy::Balanced,
            under_cost: default_under_cost(),
            over_cost: default_over_cost(),
            event_lead_s: None,
            event_hold_s: default_event_hold_s(),
            event_multiple: default_event_multiple(),
            keda: keda::KafkaLagConfig::default(),
            resources: resources::ResourceConfig::default(),
        }
    }
}

impl DecideConfig {
    /// Checks the settings.
    ///
    /// # Errors
    /// Returns the first setting out of range.
    pub fn validate(&self) -> Result<(), Error> {
        let checks = [
            ("tolerance", self.tolerance, self.tolerance >= 0.0),
            (
                "headroom",
                self.headroom,
                (0.0..=1.0).contains(&self.headroom),
            ),
            (
                "confidence_threshold",
                self.confidence_threshold,
                (0.0..=1.0).contains(&self.confidence_threshold),
            ),
            (
                "scale_down_stabilization_s",
                self.scale_down_stabilization_s as f64,
                self.scale_down_stabilization_s >= 0,
            ),
            (
                "decision_interval_s",
                self.decision_interval_s as f64,
                self.decision_interval_s > 0,
            ),
            ("under_cost", self.under_cost, self.under_cost >= 0.0),
            ("over_cost", self.over_cost, self.over_cost >= 0.0),
            (
                "event_lead_s",
                self.event_lead_s.unwrap_or(0) as f64,
                self.event_lead_s.unwrap_or(0) >= 0,
            ),
            (
                "event_hold_s",
                self.event_hold_s as f64,
                self.event_hold_s >= 0,
            ),
            (
                "event_multiple",
                self.event_multiple,
                self.event_multiple >= 1.0,
            ),
        ];
        match checks.into_iter().find(|(_, _, ok)| !ok) {
            Some((name, value, _)) => Err(Error::OutOfRange { name, value }),
            None => self.keda.validate(),
        }
    }
}

/// The decide stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionEngine {
    config: DecideConfig,
    histories: BTreeMap<String, History>,
    /// Scheduled market events (kept under the event-driven strategy only).
    #[serde(default)]
    calendar: Calendar,
    /// Per service, what it remembers of scheduled events.
    #[serde(default)]
    events: BTreeMap<String, EventMemory>,
    /// Per service, per-pod CPU usage for the resource recommendation.
    #[serde(default)]
    usage: BTreeMap<String, resources::CpuHistogram>,
}

/// The answer before stabilisation, with what it came from.
struct Candidate {
    replicas: i64,
    rule: &'static str,
    plan: Option<predictive::Plan>,
    scale_up_limit: bool,
    /// The event floor, when it raised the answer.
    event: Option<EventFloor>,
    /// The Kafka scaler's answer, under keda-lag.
    lag: Option<keda::LagOutcome>,
}

/// A scheduled event's floor that raised the answer.
struct EventFloor {
    name: String,
    /// Seconds from the decision to the event (negative once it has passed).
    in_s: i64,
    replicas: i64,
}

impl DecisionEngine {
    /// Returns an engine with no history; call [`DecideConfig::validate`] first.
    pub fn new(config: DecideConfig) -> Self {
        Self {
            config,
            histories: BTreeMap::new(),
            calendar: Calendar::default(),
            events: BTreeMap::new(),
            usage: BTreeMap::new(),
        }
    }

    /// Notes a market event's time: under the event-driven strategy, the first event of a New
    /// York date puts that date's NYSE open and close on the calendar.
    pub fn note_market_time(&mut self, ts_us: i64) {
        if self.config.strategy == Strategy::EventDriven {
            self.calendar.note_market_time(ts_us);
        }
    }

    /// Notes a context event: under the event-driven strategy, a scheduled one goes on the
    /// calendar.
    pub fn note_context(&mut self, context: &MarketContext) {
        if self.config.strategy == Strategy::EventDriven {
            self.calendar.add_context(context);
        }
    }

    /// Returns the calendar of scheduled events.
    pub fn calendar(&self) -> &Calendar {
        &self.calendar
    }

    /// Returns the settings.
    pub fn config(&self) -> &DecideConfig {
        &self.config
    }

    /// Decides the replicas of `spec`'s service at the end of the window `observed` covers.
    pub fn decide(
        &mut self,
        spec: &ServiceSpec,
        forecast: &LoadForecast,
        regime: &MarketRegime,
        observed: &ObservedOutcome,
    ) -> ScalingDecision {
        let now_us = observed.window_end_us;
        let current = observed.replicas;
        let reactive = reactive::reactive(&self.config, spec, observed);
        let mut candidate = match self.config.policy {
            Policy::KedaLag => self.lag_candidate(spec, observed),
            _ => self.candidate(spec, forecast, reactive.replicas),
        };
        self.apply_event_floor(spec, now_us, current, &mut candidate);

        let (desired, bounds) = self.normalize(spec, now_us, current, &candidate, &reactive);

        let reason = reason_line(
            spec, forecast, &reactive, &candidate, current, desired, &bounds,
        );
        let histogram = self.usage.entry(spec.name.clone()).or_default();
        let cpu = resources::observe(histogram, observed, &self.config.resources);
        let predictive = candidate.plan.as_ref();
        ScalingDecision {
            id: format!("decision/{}/{now_us}", spec.name),
            service: spec.name.clone(),
            ts_us: now_us,
            current_replicas: current,
            desired_replicas: desired,
            policy: self.config.policy.as_str().to_string(),
            strategy: match self.config.policy {
                Policy::Hpa => "reactive",
                Policy::KedaLag => "lag",
                Policy::Predictive => self.config.strategy.as_str(),
            }
            .to_string(),
            forecast_id: predictive.map(|_| forecast.id.clone()),
            forecast_load: predictive.map(|p| p.load),
            observed_load: observed.load,
            observed_utilization: observed.utilization,
            reactive_replicas: reactive.replicas,
            predictive_replicas: predictive.map(|p| p.replicas),
            regime: format!("{:?}", regime.regime).to_lowercase(),
            rule: candidate.rule.to_string(),
            bounds: bounds.into_iter().map(str::to_string).collect(),
            reason,
            cpu_request_milli: cpu.target_milli,
            cpu_limit_milli: cpu.limit_milli,
            cpu_lower_milli: cpu.lower_milli,
            cpu_upper_milli: cpu.upper_milli,
        }
    }

    /// Returns the answer after stabilisation and the replica bounds, with the bounds that
    /// changed it.
    fn normalize(
        &mut self,
        spec: &ServiceSpec,
        now_us: i64,
        current: i64,
        candidate: &Candidate,
        reactive: &Reactive,
    ) -> (i64, Vec<&'static str>) {
        let mut bounds = Vec::new();
        if let Some(lag) = &candidate.lag {
            bounds.extend(lag.bounds.iter().copied());
        } else if !matches!(candidate.rule, "forecast" | "event-floor") {
            bounds.extend(reactive.hold.map(|hold| match hold {
                Hold::Tolerance => "tolerance",
                Hold::DirectionFlip => "unready-pods",
            }));
        }
        let keep_s = self.history_keep_s();
        let history = self.histories.entry(spec.name.clone()).or_default();
        let recommendations = history.recommendations_at(now_us);
        let scale_events = history.scale_events_at(now_us);
        let normalized = hpa::normalize(&hpa::NormalizeInput {
            current,
            desired: candidate.replicas,
            min: spec.min_replicas,
            max: spec.max_replicas,
            behavior: self.config.behavior.as_ref(),
            legacy_window_s: self.config.scale_down_stabilization_s as f64,
            recommendations: &recommendations,
            scale_events: &scale_events,
            rate_limits: candidate.scale_up_limit && candidate.event.is_none(),
        });

        // The controller corrects an out-of-range count before looking at metrics, and then
        // records nothing.
        if !normalized.range_corrected {
            let change = normalized.replicas - current;
            history.record(now_us, candidate.replicas, change, keep_s);
        }
        bounds.extend(normalized.bounds.iter().map(|b| b.as_str()));
        (normalized.replicas, bounds)
    }

    /// Returns how long the history must reach back: the longest stabilisation window or
    /// rate-policy period.
    fn history_keep_s(&self) -> i64 {
        let Some(behavior) = &self.config.behavior else {
            return self.config.scale_down_stabilization_s;
        };
        [&behavior.scale_up, &behavior.scale_down]
            .into_iter()
            .flat_map(|r| {
                let periods = r.policies.iter().map(|p| p.period_s);
                periods.chain([r.stabilization_window_s])
            })
            .max()
            .unwrap_or(0)
    }

    /// Returns the policy's answer before stabilisation and bounds.
    fn candidate(&self, spec: &ServiceSpec, forecast: &LoadForecast, reactive: i64) -> Candidate {
        let hpa_only = |rule, plan| Candidate {
            replicas: reactive,
            rule,
            plan,
            scale_up_limit: true,
            event: None,
            lag: None,
        };
        match self.config.policy {
            Policy::Hpa | Policy::KedaLag => hpa_only("hpa", None),
            Policy::Predictive => {
                let inputs = StrategyInputs {
                    interval_level: forecast.interval_level,
                    headroom: self.config.headroom,
                    under_cost: self.config.under_cost,
                    over_cost: self.config.over_cost,
                };
                let plan = predictive::plan(
                    spec,
                    forecast,
                    self.config.decision_interval_s,
                    self.config.strategy,
                    &inputs,
                );
                if forecast.confidence < self.config.confidence_threshold {
                    return hpa_only("fallback-low-confidence", Some(plan));
                }
                let rule = if plan.replicas >= reactive {
                    "forecast"
                } else {
                    "hpa"
                };
                Candidate {
                    replicas: plan.replicas.max(reactive),
                    rule,
                    plan: Some(plan),
                    scale_up_limit: false,
                    event: None,
                    lag: None,
                }
            }
        }
    }

    /// Returns KEDA's Kafka-lag answer, the service's backlog read as lag over the configured
    /// partitions ([`keda::simulated_offsets`]).
    fn lag_candidate(&self, spec: &ServiceSpec, observed: &ObservedOutcome) -> Candidate {
        let config = &self.config.keda;
        let threshold = config.lag_threshold.unwrap_or_else(|| {
            let per_interval = spec.capacity_per_pod * self.config.decision_interval_s as f64;
            per_interval.round().max(1.0) as i64
        });
        let offsets = keda::simulated_offsets(observed.backlog, config.partitions);
        let lag = keda::desired_replicas(&offsets, config, threshold, spec.min_replicas);
        Candidate {
            replicas: lag.replicas,
            rule: "keda-lag",
            plan: None,
            scale_up_limit: true,
            event: None,
            lag: Some(lag),
        }
    }

    /// Raises `candidate` to the floor of a scheduled event whose span holds `now_us`, under
    /// the event-driven strategy. The floor is a maximum, so never below the reactive answer.
    fn apply_event_floor(
        &mut self,
        spec: &ServiceSpec,
        now_us: i64,
        current: i64,
        candidate: &mut Candidate,
    ) {
        if self.config.policy != Policy::Predictive || self.config.strategy != Strategy::EventDriven
        {
            return;
        }
        let lead_s = self
            .config
            .event_lead_s
            .unwrap_or(spec.startup_s.max(0) + 2 * self.config.decision_interval_s);
        let Some(event) = self
            .calendar
            .active(now_us, lead_s, self.config.event_hold_s)
        else {
            return;
        };
        let memory = self.events.entry(spec.name.clone()).or_default();
        let floor = memory.floor(
            event,
            now_us,
            candidate.replicas,
            current,
            self.config.event_multiple,
        );
        if floor.replicas > candidate.replicas {
            candidate.replicas = floor.replicas;
            candidate.rule = "event-floor";
            candidate.event = Some(EventFloor {
                name: floor.name,
                in_s: (floor.event_ts_us - now_us).div_euclid(1_000_000),
                replicas: floor.replicas,
            });
        }
    }
}

#[cfg(test)]
mod strategy_tests;
#[cfg(test)]
mod tests;
