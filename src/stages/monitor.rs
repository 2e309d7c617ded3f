//! Forecast accuracy and drift, per service.
//!
//! **Consumes** the [`LoadForecast`]s (through [`DriftMonitor::on_forecast`]) and the
//! [`ObservedOutcome`] of each window (through [`DriftMonitor::on_observed`]).
//! **Produces** [`ModelEvent`]s: `AccuracyReported` every `report_every` pairs, `DriftDetected`
//! when the recent error outgrows the long-run error, `DriftCleared` when it comes back.
//! **Keeps**, per service, the forecasts not yet paired, the recent pairs' errors and the sums
//! of the older pairs' errors.
//! **Guarantees**: ids `model/<kind>/<service>/<ts_us>` with `ts_us` the paired window's end, so
//! a replay gives the same events.
//!
//! # Pairing
//!
//! The load observed over a window `[s, e)` is paired with the forecast made at `s` (the end of
//! the window before), read at horizon `e − s` with [`forecast_at`]: the one-step forecast.
//! A window with no forecast made at its start is not scored.
//!
//! # Figures
//!
//! The recent MAPE and bias are taken over the last `window` pairs; bias is the mean of
//! `forecast − actual` (positive: forecasts too high). The long-run MAPE is taken over every
//! pair older than the recent window, so a drift cannot raise its own baseline until it has
//! lasted longer than the window. Drift is declared when
//! `recent MAPE > drift_ratio × max(long-run MAPE, min_mape)`, once `min_samples` pairs are
//! older than the recent window; it clears when the inequality no longer holds. `min_mape`
//! keeps a near-perfect history from turning any error into drift.
//!
//! # Caveats
//!
//! Relative errors of windows with zero load are 0 or 1 (see [`absolute_percentage_error`]).
//! Errors are scored per service, not per model version: a new model inherits the history.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::events::{LoadForecast, ModelEvent, ModelEventKind, ObservedOutcome};
use crate::stages::predict::{absolute_percentage_error, forecast_at};

/// Forecasts kept while waiting for their window, per service.
const MAX_PENDING: usize = 16;

/// Settings of the drift monitor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorConfig {
    /// Recent forecast/actual pairs the recent MAPE and bias are taken over.
    pub window: usize,
    /// Drift when the recent MAPE exceeds this many times the long-run MAPE.
    pub drift_ratio: f64,
    /// Pairs older than the recent window needed before drift is judged.
    pub min_samples: usize,
    /// An `AccuracyReported` event every this many pairs (0: never).
    pub report_every: usize,
    /// Floor under the long-run MAPE when judging drift, e.g. 0.02 for 2 %.
    pub min_mape: f64,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            window: 40,
            drift_ratio: 2.0,
            min_samples: 20,
            report_every: 20,
            min_mape: 0.02,
        }
    }
}

/// One service's accuracy figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccuracySummary {
    /// MAPE over the recent window, as a fraction (0.05 is 5 %).
    pub mape: f64,
    /// Mean `forecast − actual` over the recent window, in load units.
    pub bias: f64,
    /// Pairs in the recent window.
    pub samples: usize,
    /// MAPE over the pairs older than the recent window, if any.
    pub long_run_mape: Option<f64>,
    /// Pairs scored since the start.
    pub total_samples: u64,
    /// Whether drift is declared now.
    pub drifting: bool,
}

/// One service's pairing and error state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceAccuracy {
    /// Forecasts waiting for the window that starts at their `ts_us`.
    pub pending: BTreeMap<i64, LoadForecast>,
    /// `(absolute percentage error, forecast − actual)` of the recent pairs, oldest first.
    pub recent: VecDeque<(f64, f64)>,
    /// Sum of the relative errors of the pairs older than the recent window.
    pub older_ape_sum: f64,
    /// Pairs older than the recent window.
    pub older_samples: u64,
    /// Whether drift is declared now.
    pub drifting: bool,
}

impl ServiceAccuracy {
    fn recent_figures(&self) -> (f64, f64) {
        let n = self.recent.len().max(1) as f64;
        let mape = self.recent.iter().map(|(ape, _)| ape).sum::<f64>() / n;
        let bias = self.recent.iter().map(|(_, err)| err).sum::<f64>() / n;
        (mape, bias)
    }

    fn long_run_mape(&self) -> Option<f64> {
        (self.older_samples > 0).then(|| self.older_ape_sum / self.older_samples as f64)
    }

    fn total(&self) -> u64 {
        self.older_samples + self.recent.len() as u64
    }

    fn push(&mut self, ape: f64, error: f64, window: usize) {
        self.recent.push_back((ape, error));
        while self.recent.len() > window.max(1) {
            if let Some((old, _)) = self.recent.pop_front() {
                self.older_ape_sum += old;
                self.older_samples += 1;
            }
        }
    }
}

/// The monitor stage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DriftMonitor {
    config: MonitorConfig,
    services: BTreeMap<String, ServiceAccuracy>,
}

impl DriftMonitor {
    /// Returns a monitor with no history.
    pub fn new(config: MonitorConfig) -> Self {
        Self {
            config,
            services: BTreeMap::new(),
        }
    }

    /// Keeps a forecast until the window that starts when it was made is observed.
    pub fn on_forecast(&mut self, f: &LoadForecast) {
        let state = self.services.entry(f.service.clone()).or_default();
        state.pending.insert(f.ts_us, f.clone());
        while state.pending.len() > MAX_PENDING {
            state.pending.pop_first();
        }
    }

    /// Scores a window against its one-step forecast and returns the events that follow.
    pub fn on_observed(&mut self, o: &ObservedOutcome) -> Vec<ModelEvent> {
        let Some(state) = self.services.get_mut(&o.service) else {
            return Vec::new();
        };
        let Some(forecast) = state.pending.remove(&o.window_start_us) else {
            return Vec::new();
        };
        state.pending.retain(|ts, _| *ts > o.window_start_us);

        let horizon_s = (o.window_end_us - o.window_start_us) / 1_000_000;
        let predicted = forecast_at(&forecast, horizon_s).load;
        let ape = absolute_percentage_error(predicted, o.load);
        state.push(ape, predicted - o.load, self.config.window);

        let mut kinds = Vec::new();
        let total = state.total();
        if self.config.report_every > 0 && total % self.config.report_every as u64 == 0 {
            kinds.push(ModelEventKind::AccuracyReported);
        }
        if let Some(change) = drift_change(&self.config, state) {
            kinds.push(change);
        }
        let state = &*state;
        kinds
            .into_iter()
            .map(|kind| model_event(&self.config, kind, o, &forecast, state))
            .collect()
    }

    /// Returns each service's figures.
    pub fn summary(&self) -> BTreeMap<String, AccuracySummary> {
        self.services
            .iter()
            .map(|(name, state)| {
                let (mape, bias) = state.recent_figures();
                let summary = AccuracySummary {
                    mape,
                    bias,
                    samples: state.recent.len(),
                    long_run_mape: state.long_run_mape(),
                    total_samples: state.total(),
                    drifting: state.drifting,
                };
                (name.clone(), summary)
            })
            .collect()
    }
}

/// Returns one model event carrying the recent figures.
fn model_event(
    config: &MonitorConfig,
    kind: ModelEventKind,
    o: &ObservedOutcome,
    forecast: &LoadForecast,
    state: &ServiceAccuracy,
) -> ModelEvent {
    let (mape, bias) = state.recent_figures();
    let long_run = state
        .long_run_mape()
        .map_or("no long-run figure yet".to_string(), |m| {
            format!("long-run MAPE {:.1}%", 100.0 * m)
        });
    let detail = format!(
        "recent MAPE {:.1}% over {} pairs, {long_run}, drift ratio {}",
        100.0 * mape,
        state.recent.len(),
        config.drift_ratio
    );
    ModelEvent {
        id: format!(
            "model/{}/{}/{}",
            kind_name(kind),
            o.service,
            o.window_end_us
        ),
        ts_us: o.window_end_us,
        service: o.service.clone(),
        kind,
        model: forecast.model.clone(),
        model_version: forecast.model_version,
        mape,
        bias,
        samples: state.recent.len() as i64,
        detail,
    }
}

/// Returns `DriftDetected` or `DriftCleared` when the drift state flips, and flips it.
fn drift_change(config: &MonitorConfig, state: &mut ServiceAccuracy) -> Option<ModelEventKind> {
    let long_run = state.long_run_mape()?;
    if state.older_samples < config.min_samples as u64 {
        return None;
    }
    let (recent, _) = state.recent_figures();
    let drifting = recent > config.drift_ratio * long_run.max(config.min_mape);
    if drifting == state.drifting {
        return None;
    }
    state.drifting = drifting;
    Some(if drifting {
        ModelEventKind::DriftDetected
    } else {
        ModelEventKind::DriftCleared
    })
}

/// Returns the kind's name as used in event ids.
fn kind_name(kind: ModelEventKind) -> &'static str {
    match kind {
        ModelEventKind::AccuracyReported => "accuracy-reported",
        ModelEventKind::DriftDetected => "drift-detected",
        ModelEventKind::DriftCleared => "drift-cleared",
        ModelEventKind::ModelPromoted => "model-promoted",
        ModelEventKind::ModelRejected => "model-rejected",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::ForecastPoint;

    const S: i64 = 1_000_000;

    /// The forecast made at the end of window `index` (15 s windows), one-step load `load`.
    fn forecast(index: i64, load: f64) -> LoadForecast {
        let ts_us = (index + 1) * 15 * S;
        LoadForecast {
            id: format!("forecast/svc/{ts_us}"),
            service: "svc".into(),
            ts_us,
            model: "holt-winters".into(),
            model_version: 1,
            observed_load: load,
            interval_level: 0.9,
            confidence: 1.0,
            points: vec![ForecastPoint {
                horizon_s: 15,
                load,
                lower: load,
                upper: load,
            }],
        }
    }

    fn observed(index: i64, load: f64) -> ObservedOutcome {
        ObservedOutcome {
            id: format!("observed/svc/{}", index * 15 * S),
            service: "svc".into(),
            window_start_us: index * 15 * S,
            window_end_us: (index + 1) * 15 * S,
            load,
            replicas: 1,
            ready_replicas: 1,
            capacity: 100.0,
            utilization: 50.0,
            backlog: 0.0,
            latency_ms: 10.0,
            slo_latency_ms: 500.0,
            slo_violated: false,
        }
    }

    /// Feeds pairs `(forecast for window i, actual of window i)` from window `first` on, the
    /// way the driver does: observe window i, then forecast at its end for window i + 1.
    fn feed(
        monitor: &mut DriftMonitor,
        first: i64,
        pairs: &[(f64, f64)],
    ) -> Vec<(i64, ModelEvent)> {
        let mut events = Vec::new();
        for (k, (f, actual)) in pairs.iter().enumerate() {
            let i = first + k as i64;
            monitor.on_forecast(&forecast(i - 1, *f));
            for e in monitor.on_observed(&observed(i, *actual)) {
                events.push((i, e));
            }
        }
        events
    }

    fn drift_events(events: &[(i64, ModelEvent)]) -> Vec<(i64, ModelEventKind)> {
        events
            .iter()
            .filter(|(_, e)| e.kind != ModelEventKind::AccuracyReported)
            .map(|(i, e)| (*i, e.kind))
            .collect()
    }

    #[test]
    fn mape_and_bias_match_a_four_sample_example_worked_by_hand() {
        let config = MonitorConfig {
            report_every: 4,
            ..Default::default()
        };
        let mut monitor = DriftMonitor::new(config);
        let pairs = [
            (100.0, 100.0),
            (110.0, 100.0),
            (90.0, 100.0),
            (200.0, 160.0),
        ];
        let events = feed(&mut monitor, 1, &pairs);
        // APE 0, 0.1, 0.1, 0.25 → MAPE 0.1125; errors 0, +10, −10, +40 → bias +10.
        assert_eq!(events.len(), 1);
        let (_, report) = &events[0];
        assert_eq!(report.kind, ModelEventKind::AccuracyReported);
        assert!((report.mape - 0.1125).abs() < 1e-12, "{}", report.mape);
        assert!((report.bias - 10.0).abs() < 1e-12, "{}", report.bias);
        assert_eq!(report.samples, 4);
        assert_eq!(report.id, "model/accuracy-reported/svc/75000000");
        assert_eq!(monitor.summary()["svc"].total_samples, 4);
    }

    #[test]
    fn windows_without_a_forecast_at_their_start_are_not_scored() {
        let mut monitor = DriftMonitor::new(MonitorConfig::default());
        monitor.on_forecast(&forecast(5, 100.0));
        assert!(monitor.on_observed(&observed(3, 100.0)).is_empty());
        assert_eq!(monitor.summary()["svc"].total_samples, 0);
    }

    #[test]
    fn an_accurate_forecast_series_raises_no_drift() {
        let mut monitor = DriftMonitor::new(MonitorConfig::default());
        let pairs: Vec<(f64, f64)> = (0..300)
            .map(|i| (1000.0, if i % 2 == 0 { 1050.0 } else { 950.0 }))
            .collect();
        let events = feed(&mut monitor, 1, &pairs);
        assert!(drift_events(&events).is_empty());
        assert_eq!(events.len(), 15, "one accuracy report every 20 pairs");
        let summary = &monitor.summary()["svc"];
        assert!(!summary.drifting);
        assert!((summary.mape - 0.0501).abs() < 1e-3, "{}", summary.mape);
    }

    #[test]
    fn load_doubling_under_a_flat_forecast_raises_drift_within_the_window_then_clears() {
        let mut monitor = DriftMonitor::new(MonitorConfig::default());
        let calm: Vec<(f64, f64)> = (0..100)
            .map(|i| (1000.0, if i % 2 == 0 { 1050.0 } else { 950.0 }))
            .collect();
        assert!(drift_events(&feed(&mut monitor, 1, &calm)).is_empty());

        // Actual doubles, forecasts stay at 1,000: APE 0.5. Long-run MAPE ≈ 0.0501, so drift
        // needs the recent MAPE above 0.1002: (0.0501 × (40 − k) + 0.5 k) / 40 > 0.1002 holds
        // from k = 5 on (k > 4.45).
        let doubled = vec![(1000.0, 2000.0); 10];
        let events = drift_events(&feed(&mut monitor, 101, &doubled));
        assert_eq!(events, vec![(105, ModelEventKind::DriftDetected)]);
        assert!(monitor.summary()["svc"].drifting);

        // The model catches up (forecast = actual): the drift clears once few enough of the ten
        // bad pairs remain in the recent window.
        let recovered = vec![(2000.0, 2000.0); 40];
        let events = drift_events(&feed(&mut monitor, 111, &recovered));
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].1, ModelEventKind::DriftCleared);
        assert!(!monitor.summary()["svc"].drifting);
    }
}
