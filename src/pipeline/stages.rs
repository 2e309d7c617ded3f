//! All stages of one process, wired in the order the design gives them, with no IO.
//!
//! For every closed window: the regime is judged; then, per service, the simulated cluster
//! serves the window's load, the forecaster sees the window, the monitor pairs forecast and
//! actual, the decision engine decides from the forecast, the regime and what the cluster went
//! through, and the cluster carries the decision out. Everything produced goes to the outbox in
//! that order, so the same input always gives the same events in the same order.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::events::{DeadLetter, ScalingDecision};
use crate::ingest::SourceEvent;
use crate::load::LoadModel;
use crate::stages::actuate::SimulatedCluster;
use crate::stages::decide::{DecideConfig, DecisionEngine};
use crate::stages::features::{FeatureConfig, FeatureWindows, WindowClosed};
use crate::stages::monitor::{DriftMonitor, MonitorConfig};
use crate::stages::predict::{Forecaster, PredictConfig};
use crate::stages::regime::{RegimeConfig, RegimeDetector};
use crate::topology::ServiceSpec;

use super::outbox::Outbox;
use super::Error;

/// The settings of every stage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StageConfig {
    pub features: FeatureConfig,
    pub regime: RegimeConfig,
    pub predict: PredictConfig,
    pub decide: DecideConfig,
    pub monitor: MonitorConfig,
    pub load: LoadModel,
}

/// What a run has counted so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    pub events_in: u64,
    pub dead_letters: u64,
    pub windows: u64,
    pub decisions: u64,
    pub scale_changes: u64,
    pub slo_violations: u64,
    pub drift_alarms: u64,
    /// Replicas asked for, times the windows they were asked for over, in hours.
    pub pod_hours: f64,
    /// Model events of every kind (accuracy reports, drift detected and cleared).
    pub model_events: u64,
}

/// The state of every stage, persisted together at each checkpoint.
#[derive(Serialize, Deserialize)]
pub struct Stages {
    services: Vec<ServiceSpec>,
    features: FeatureWindows,
    regime: RegimeDetector,
    forecaster: Forecaster,
    engine: DecisionEngine,
    cluster: SimulatedCluster,
    monitor: DriftMonitor,
    pub counters: Counters,
    /// The latest decision per service, for summaries.
    pub latest: Vec<Option<ScalingDecision>>,
    /// The highest replica count decided per service, and when.
    pub peak: Vec<(i64, i64)>,
}

impl Stages {
    /// Builds fresh stages for `services`; `traced` names the services whose load comes from a
    /// workload trace.
    pub fn new(config: &StageConfig, services: Vec<ServiceSpec>, traced: BTreeSet<String>) -> Self {
        let features = FeatureWindows::new(
            config.features.clone(),
            services.clone(),
            traced,
            config.load.clone(),
        );
        Self {
            features,
            regime: RegimeDetector::new(config.regime.clone()),
            forecaster: Forecaster::new(config.predict.clone()),
            engine: DecisionEngine::new(config.decide.clone()),
            cluster: SimulatedCluster::new(&services),
            monitor: DriftMonitor::new(config.monitor.clone()),
            counters: Counters::default(),
            latest: vec![None; services.len()],
            peak: vec![(0, 0); services.len()],
            services,
        }
    }

    /// Returns the services in topology order.
    pub fn services(&self) -> &[ServiceSpec] {
        &self.services
    }

    /// Records an input event on its topic and feeds it to the feature windows.
    ///
    /// # Errors
    /// Fails only when an event does not fit its own schema.
    pub fn on_event(
        &mut self,
        event: &SourceEvent,
        out: &mut Outbox,
    ) -> Result<Vec<WindowClosed>, Error> {
        let mut closed = Vec::new();
        self.counters.events_in += 1;
        match event {
            SourceEvent::Trade(t) => {
                self.features.on_trade(t, &mut closed);
                self.engine.note_market_time(t.ts_us);
                out.push(t)?;
            }
            SourceEvent::Quote(q) => {
                self.features.on_quote(q, &mut closed);
                self.engine.note_market_time(q.ts_us);
                out.push(q)?;
            }
            SourceEvent::Bar(b) => {
                self.features.on_bar(b, &mut closed);
                self.engine.note_market_time(b.ts_us);
                out.push(b)?;
            }
            SourceEvent::Context(c) => {
                self.features.on_context(c, &mut closed);
                self.engine.note_context(c);
                out.push(c)?;
            }
            SourceEvent::Workload(m) => {
                self.features.on_workload(m, &mut closed);
                out.push(m)?;
            }
        }
        Ok(closed)
    }

    /// Records an unreadable row on the dead-letter topic.
    ///
    /// # Errors
    /// Fails only when the dead letter does not fit its own schema.
    pub fn on_dead_letter(&mut self, letter: &DeadLetter, out: &mut Outbox) -> Result<(), Error> {
        self.counters.dead_letters += 1;
        out.push(letter)
    }

    /// Closes the feature windows at the end of the input.
    pub fn finish(&mut self) -> Vec<WindowClosed> {
        let mut closed = Vec::new();
        self.features.finish(&mut closed);
        closed
    }

    /// Runs the rest of the pipeline over one closed window.
    ///
    /// # Errors
    /// Fails only when an event does not fit its own schema.
    pub fn on_window(&mut self, window: &WindowClosed, out: &mut Outbox) -> Result<(), Error> {
        self.counters.windows += 1;
        let regime = self.regime.on_window(&window.market);

        for feature in &window.features {
            let Some(index) = self.services.iter().position(|s| s.name == feature.service) else {
                continue;
            };
            let spec = &self.services[index];
            let observed = self.cluster.observe(spec, feature);
            let forecast = self.forecaster.on_features(feature);
            self.monitor.on_forecast(&forecast);
            let model_events = self.monitor.on_observed(&observed);
            let decision = self.engine.decide(spec, &forecast, &regime, &observed);
            let actuation = self.cluster.apply(spec, &decision);

            self.count(&observed, &model_events, &decision);
            if decision.desired_replicas > self.peak[index].0 {
                self.peak[index] = (decision.desired_replicas, decision.ts_us);
            }
            out.push(feature)?;
            out.push(&observed)?;
            out.push(&forecast)?;
            for event in &model_events {
                out.push(event)?;
            }
            out.push(&decision)?;
            out.push(&actuation)?;
            self.latest[index] = Some(decision);
        }
        out.push(&regime)
    }

    fn count(
        &mut self,
        observed: &crate::events::ObservedOutcome,
        model_events: &[crate::events::ModelEvent],
        decision: &ScalingDecision,
    ) {
        use crate::events::ModelEventKind;
        self.counters.decisions += 1;
        self.counters.scale_changes +=
            u64::from(decision.desired_replicas != decision.current_replicas);
        self.counters.slo_violations += u64::from(observed.slo_violated);
        let window_h = (observed.window_end_us - observed.window_start_us) as f64 / 3.6e9;
        self.counters.pod_hours += observed.replicas as f64 * window_h;
        self.counters.model_events += model_events.len() as u64;
        let drift = model_events
            .iter()
            .filter(|e| e.kind == ModelEventKind::DriftDetected);
        self.counters.drift_alarms += drift.count() as u64;
    }
}
