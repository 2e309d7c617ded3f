//! The stages wired in the order the design gives them, with no IO, in two parts that a bus can
//! carry apart.
//!
//! [`MarketStage`] reads the market and workload events: feature windows and the regime. For
//! every closed window it emits one feature vector per service, each carrying the window's
//! regime, the latest market time and the context events since the last window, so that
//! everything after it depends on the feature vector alone.
//!
//! [`ServiceStage`] reads those feature vectors, one service at a time: the simulated cluster
//! serves the window's load, the forecaster sees the window, the monitor pairs forecast and
//! actual, the decision engine decides from the forecast, the regime and what the cluster went
//! through, and the cluster carries the decision out. Services share nothing here but the
//! calendar, which every feature vector feeds alike, so a bus may split services among
//! processes.
//!
//! [`Stages`] is both parts in one process, as the embedded run uses them. Everything produced
//! goes to the outbox in a fixed order, so the same input always gives the same events.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::events::{DeadLetter, FeatureVector, MarketContext, ScalingDecision};
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

/// Feature windows and the regime: everything that must see the whole market.
#[derive(Serialize, Deserialize)]
pub struct MarketStage {
    features: FeatureWindows,
    regime: RegimeDetector,
    /// Context events since the last closed window.
    context: Vec<MarketContext>,
    /// The latest market event time.
    market_time_us: Option<i64>,
    /// Events in, dead letters and windows.
    pub counters: Counters,
}

impl MarketStage {
    /// Builds a fresh market stage for `services`; `traced` names the services whose load comes
    /// from a workload trace.
    pub fn new(config: &StageConfig, services: Vec<ServiceSpec>, traced: BTreeSet<String>) -> Self {
        Self {
            features: FeatureWindows::new(
                config.features.clone(),
                services,
                traced,
                config.load.clone(),
            ),
            regime: RegimeDetector::new(config.regime.clone()),
            context: Vec::new(),
            market_time_us: None,
            counters: Counters::default(),
        }
    }

    /// Records an input event on its topic when `record` is set (the embedded run keeps its
    /// inputs; on a bus they are already on their topics) and feeds it to the feature windows.
    /// Returns the feature vectors of the windows it closed, oldest first.
    ///
    /// # Errors
    /// Fails only when an event does not fit its own schema.
    pub fn on_event(
        &mut self,
        event: &SourceEvent,
        record: bool,
        out: &mut Outbox,
    ) -> Result<Vec<FeatureVector>, Error> {
        let mut closed = Vec::new();
        self.counters.events_in += 1;
        match event {
            SourceEvent::Trade(t) => {
                self.features.on_trade(t, &mut closed);
                self.market_time_us = Some(t.ts_us);
            }
            SourceEvent::Quote(q) => {
                self.features.on_quote(q, &mut closed);
                self.market_time_us = Some(q.ts_us);
            }
            SourceEvent::Bar(b) => {
                self.features.on_bar(b, &mut closed);
                self.market_time_us = Some(b.ts_us);
            }
            SourceEvent::Context(c) => {
                self.features.on_context(c, &mut closed);
                self.context.push(c.clone());
            }
            SourceEvent::Workload(m) => self.features.on_workload(m, &mut closed),
        }
        if record {
            push_source(event, out)?;
        }
        self.close_all(closed, out)
    }

    /// Records an unreadable input on the dead-letter topic.
    ///
    /// # Errors
    /// Fails only when the dead letter does not fit its own schema.
    pub fn on_dead_letter(&mut self, letter: &DeadLetter, out: &mut Outbox) -> Result<(), Error> {
        self.counters.dead_letters += 1;
        out.push(letter)
    }

    /// Closes the feature windows at the end of the input and returns their feature vectors.
    ///
    /// # Errors
    /// Fails only when an event does not fit its own schema.
    pub fn finish(&mut self, out: &mut Outbox) -> Result<Vec<FeatureVector>, Error> {
        let mut closed = Vec::new();
        self.features.finish(&mut closed);
        self.close_all(closed, out)
    }

    /// Judges the regime of each closed window and writes it and its feature vectors, enriched
    /// with what the per-service stages need from the market.
    fn close_all(
        &mut self,
        closed: Vec<WindowClosed>,
        out: &mut Outbox,
    ) -> Result<Vec<FeatureVector>, Error> {
        let mut features = Vec::new();
        for window in closed {
            self.counters.windows += 1;
            let regime = self.regime.on_window(&window.market);
            let context = std::mem::take(&mut self.context);
            for mut feature in window.features {
                feature.regime = Some(regime.clone());
                feature.market_time_us = self.market_time_us;
                feature.context = context.clone();
                out.push(&feature)?;
                features.push(feature);
            }
            out.push(&regime)?;
        }
        Ok(features)
    }
}

fn push_source(event: &SourceEvent, out: &mut Outbox) -> Result<(), Error> {
    match event {
        SourceEvent::Trade(t) => out.push(t),
        SourceEvent::Quote(q) => out.push(q),
        SourceEvent::Bar(b) => out.push(b),
        SourceEvent::Context(c) => out.push(c),
        SourceEvent::Workload(m) => out.push(m),
    }
}

/// Forecast, monitor, decision and the simulated cluster, per service.
#[derive(Serialize, Deserialize)]
pub struct ServiceStage {
    services: Vec<ServiceSpec>,
    forecaster: Forecaster,
    engine: DecisionEngine,
    cluster: SimulatedCluster,
    monitor: DriftMonitor,
    /// Decisions, scale changes, violations, pod-hours and model events.
    pub counters: Counters,
    /// The latest decision per service, for summaries.
    pub latest: Vec<Option<ScalingDecision>>,
    /// The highest replica count decided per service, and when.
    pub peak: Vec<(i64, i64)>,
}

impl ServiceStage {
    /// Builds a fresh service stage that knows `services`.
    pub fn new(config: &StageConfig, services: Vec<ServiceSpec>) -> Self {
        Self {
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

    /// Runs one service's window through the cluster, forecaster, monitor and decision engine.
    /// A feature vector for a service this stage does not know is skipped, and false returned.
    ///
    /// # Errors
    /// Fails only when an event does not fit its own schema.
    pub fn on_feature(&mut self, feature: &FeatureVector, out: &mut Outbox) -> Result<bool, Error> {
        let Some(index) = self.services.iter().position(|s| s.name == feature.service) else {
            return Ok(false);
        };
        for context in &feature.context {
            self.engine.note_context(context);
        }
        if let Some(ts_us) = feature.market_time_us {
            self.engine.note_market_time(ts_us);
        }
        let regime = feature.regime.clone().unwrap_or_else(|| unjudged(feature));
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
        out.push(&observed)?;
        out.push(&forecast)?;
        for event in &model_events {
            out.push(event)?;
        }
        out.push(&decision)?;
        out.push(&actuation)?;
        self.latest[index] = Some(decision);
        Ok(true)
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

/// The regime of a window nobody judged: normal, with no confidence.
fn unjudged(feature: &FeatureVector) -> crate::events::MarketRegime {
    crate::events::MarketRegime {
        id: format!("regime/{}", feature.window_start_us),
        window_start_us: feature.window_start_us,
        window_end_us: feature.window_end_us,
        regime: crate::events::Regime::Normal,
        volatility: 0.0,
        volatility_ratio: 1.0,
        trend_score: 0.0,
        volume_ratio: 1.0,
        confidence: 0.0,
    }
}

/// Both parts in one process, as the embedded run drives them.
#[derive(Serialize, Deserialize)]
pub struct Stages {
    pub market: MarketStage,
    pub service: ServiceStage,
}

impl Stages {
    /// Builds fresh stages for `services`; `traced` names the services whose load comes from a
    /// workload trace.
    pub fn new(config: &StageConfig, services: Vec<ServiceSpec>, traced: BTreeSet<String>) -> Self {
        Self {
            market: MarketStage::new(config, services.clone(), traced),
            service: ServiceStage::new(config, services),
        }
    }

    /// Returns the services in topology order.
    pub fn services(&self) -> &[ServiceSpec] {
        self.service.services()
    }

    /// Returns what both parts have counted.
    pub fn counters(&self) -> Counters {
        self.market.counters.merged(&self.service.counters)
    }

    /// Records an input event and runs every window it closed through the service stage.
    /// Returns the end of each closed window, in order.
    ///
    /// # Errors
    /// Fails only when an event does not fit its own schema.
    pub fn on_event(&mut self, event: &SourceEvent, out: &mut Outbox) -> Result<Vec<i64>, Error> {
        let features = self.market.on_event(event, true, out)?;
        self.on_features(features, out)
    }

    /// Closes the last windows at the end of the input and runs them through.
    ///
    /// # Errors
    /// Fails only when an event does not fit its own schema.
    pub fn finish(&mut self, out: &mut Outbox) -> Result<Vec<i64>, Error> {
        let features = self.market.finish(out)?;
        self.on_features(features, out)
    }

    fn on_features(
        &mut self,
        features: Vec<FeatureVector>,
        out: &mut Outbox,
    ) -> Result<Vec<i64>, Error> {
        let mut ends: Vec<i64> = Vec::new();
        for feature in &features {
            self.service.on_feature(feature, out)?;
            if ends.last() != Some(&feature.window_end_us) {
                ends.push(feature.window_end_us);
            }
        }
        Ok(ends)
    }
}

impl Counters {
    /// Returns the sum of two sets of counts.
    pub fn merged(&self, other: &Counters) -> Counters {
        Counters {
            events_in: self.events_in + other.events_in,
            dead_letters: self.dead_letters + other.dead_letters,
            windows: self.windows + other.windows,
            decisions: self.decisions + other.decisions,
            scale_changes: self.scale_changes + other.scale_changes,
            slo_violations: self.slo_violations + other.slo_violations,
            drift_alarms: self.drift_alarms + other.drift_alarms,
            pod_hours: self.pod_hours + other.pod_hours,
            model_events: self.model_events + other.model_events,
        }
    }
}
