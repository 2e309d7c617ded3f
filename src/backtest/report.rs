//! The backtest's figures, computed from the events the stages emitted, and their table.
//!
//! **Consumes**, per policy, the [`Emitted`] events of its service stage: [`ObservedOutcome`]
//! (load, replicas, capacity, backlog, latency, SLO), [`LoadForecast`] and [`ActuationOutcome`];
//! other events pass by unread. **Produces** a [`Report`]: per policy and service, pod-hours,
//! SLO-violation minutes, peak backlog, p99 latency, scale events, cost, and forecast accuracy;
//! and, for the HTML report, load, capacity and replicas over time. **Keeps** a
//! [`PolicyTally`] per policy: running sums, a latency histogram and a bounded series, so a
//! replay of months costs memory in services, not in windows.
//! **Guarantees**: the same events give the same report, byte for byte once written as JSON:
//! maps are ordered, floats are rounded to [`DECIMALS`] places, and no wall-clock time is kept.
//!
//! # How each figure is computed
//!
//! - pod-hours: Σ replicas asked for (ready or starting) × window length, over observed windows.
//! - SLO-violation minutes: Σ window length in minutes over windows whose latency broke the SLO.
//! - peak backlog: the largest backlog at a window's end, in the service's load unit.
//! - p99 latency: the nearest-rank 99th percentile of the windows' latencies, read from a
//!   histogram of [`LATENCY_BUCKETS_PER_DECADE`] logarithmic buckets per decade, so it is exact
//!   to about ±0.6 % (the value reported is the geometric middle of its bucket).
//! - scale events: actuations that changed the replica count (status `Applied`).
//! - cost: pod-hours × the price per pod-hour.
//! - forecast accuracy: each forecast's one-step prediction (its point one window ahead, as
//!   [`forecast_at`] reads it) is paired with the next observed load of its service. MAPE is
//!   the mean of |forecast − actual| / |actual| in percent over pairs whose actual is not zero;
//!   R² is 1 − Σ(forecast − actual)² / Σ(actual − mean actual)², over all pairs; coverage is the
//!   share of actuals inside the forecast's interval, bounds included.
//!
//! # Caveats
//!
//! The forecaster does not depend on the policy, so forecast accuracy is the same for every
//! policy on the same input; it is repeated per policy so each column reads alone.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::events::{ActuationStatus, LoadForecast, ObservedOutcome};
use crate::pipeline::Emitted;
use crate::stages::predict::forecast_at;

/// Decimal places every float of the report is rounded to.
pub const DECIMALS: i32 = 4;
/// Logarithmic latency buckets per decade (a bucket spans a factor of 10^(1/200) ≈ 1.0116).
pub const LATENCY_BUCKETS_PER_DECADE: f64 = 200.0;
/// The most points of a series kept for plots; older points are merged in pairs beyond it.
pub const MAX_SERIES_POINTS: usize = 1024;

const MICROS_PER_HOUR: f64 = 3.6e9;
const MICROS_PER_MINUTE: f64 = 6.0e7;

/// Rounds `x` to [`DECIMALS`] places, so that a report's floats print the same everywhere.
pub fn round(x: f64) -> f64 {
    let scale = 10f64.powi(DECIMALS);
    let rounded = (x * scale).round() / scale;
    // -0.0 prints as "-0.0" in JSON; a report says 0.
    if rounded == 0.0 {
        0.0
    } else {
        rounded
    }
}

/// The figures of one service under one policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceFigures {
    /// Observed windows.
    pub windows: u64,
    pub pod_hours: f64,
    pub slo_violation_minutes: f64,
    /// In the service's load unit.
    pub peak_backlog: f64,
    /// `None` when no window was observed.
    pub p99_latency_ms: Option<f64>,
    pub scale_events: u64,
    /// pod-hours × the price per pod-hour.
    pub cost: f64,
    pub forecast: ForecastAccuracy,
}

/// How well the one-step forecasts matched the loads that followed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ForecastAccuracy {
    /// Forecast and next-actual pairs.
    pub pairs: u64,
    /// Mean absolute percentage error, in percent; `None` when every actual was zero.
    pub mape_percent: Option<f64>,
    /// `None` with fewer than two pairs or actuals that never vary.
    pub r_squared: Option<f64>,
    /// Share of actuals inside the forecast interval, 0 to 1; `None` without pairs.
    pub interval_coverage: Option<f64>,
}

/// One point of a plotted series: a window's start, or the mean over merged windows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SeriesPoint {
    pub ts_us: i64,
    pub load: f64,
    pub capacity: f64,
    pub replicas: f64,
}

/// A series that keeps at most [`MAX_SERIES_POINTS`] points by merging neighbours in pairs
/// (means of load, capacity and replicas, the first start), doubling the windows per point.
#[derive(Debug, Clone, Default)]
struct Series {
    points: Vec<SeriesPoint>,
    /// Windows per point.
    stride: u32,
    bucket: Vec<SeriesPoint>,
}

impl Series {
    fn push(&mut self, point: SeriesPoint) {
        self.stride = self.stride.max(1);
        self.bucket.push(point);
        if self.bucket.len() < self.stride as usize {
            return;
        }
        self.points
            .push(mean_point(&std::mem::take(&mut self.bucket)));
        if self.points.len() >= 2 * MAX_SERIES_POINTS {
            self.points = self.points.chunks(2).map(mean_point).collect();
            self.stride *= 2;
        }
    }

    fn to_points(&self) -> Vec<SeriesPoint> {
        let mut points = self.points.clone();
        if !self.bucket.is_empty() {
            points.push(mean_point(&self.bucket));
        }
        points
    }
}

fn mean_point(points: &[SeriesPoint]) -> SeriesPoint {
    let n = points.len().max(1) as f64;
    let sum = |f: fn(&SeriesPoint) -> f64| points.iter().map(f).sum::<f64>() / n;
    SeriesPoint {
        ts_us: points.first().map_or(0, |p| p.ts_us),
        load: sum(|p| p.load),
        capacity: sum(|p| p.capacity),
        replicas: sum(|p| p.replicas),
    }
}

/// Running sums of one service under one policy.
#[derive(Debug, Clone, Default)]
struct ServiceTally {
    windows: u64,
    pod_hours: f64,
    slo_minutes: f64,
    peak_backlog: f64,
    /// Latency histogram: bucket index to windows.
    latency: BTreeMap<i64, u64>,
    scale_events: u64,
    /// The latest forecast, waiting for the next observed load.
    pending: Option<LoadForecast>,
    pairs: u64,
    ape_sum: f64,
    ape_pairs: u64,
    covered: u64,
    squared_error: f64,
    /// Welford's running mean and sum of squared deviations of the paired actuals.
    actual_mean: f64,
    actual_m2: f64,
    series: Series,
}

impl ServiceTally {
    fn on_observed(&mut self, o: &ObservedOutcome) {
        let span_us = (o.window_end_us - o.window_start_us) as f64;
        self.windows += 1;
        self.pod_hours += o.replicas as f64 * span_us / MICROS_PER_HOUR;
        if o.slo_violated {
            self.slo_minutes += span_us / MICROS_PER_MINUTE;
        }
        self.peak_backlog = self.peak_backlog.max(o.backlog);
        *self
            .latency
            .entry(latency_bucket(o.latency_ms))
            .or_default() += 1;
        self.series.push(SeriesPoint {
            ts_us: o.window_start_us,
            load: o.load,
            capacity: o.capacity,
            replicas: o.replicas as f64,
        });
        if let Some(forecast) = self.pending.take() {
            let horizon_s = (o.window_end_us - forecast.ts_us) / 1_000_000;
            self.pair(&forecast, horizon_s, o.load);
        }
    }

    fn pair(&mut self, forecast: &LoadForecast, horizon_s: i64, actual: f64) {
        let point = forecast_at(forecast, horizon_s);
        let error = point.load - actual;
        self.pairs += 1;
        if actual != 0.0 {
            self.ape_sum += (error / actual).abs();
            self.ape_pairs += 1;
        }
        self.covered += u64::from(point.lower <= actual && actual <= point.upper);
        self.squared_error += error * error;
        let delta = actual - self.actual_mean;
        self.actual_mean += delta / self.pairs as f64;
        self.actual_m2 += delta * (actual - self.actual_mean);
    }

    fn figures(&self, price_per_pod_hour: f64) -> ServiceFigures {
        let r_squared = (self.pairs >= 2 && self.actual_m2 > 0.0)
            .then(|| round(1.0 - self.squared_error / self.actual_m2));
        ServiceFigures {
            windows: self.windows,
            pod_hours: round(self.pod_hours),
            slo_violation_minutes: round(self.slo_minutes),
            peak_backlog: round(self.peak_backlog),
            p99_latency_ms: percentile(&self.latency, self.windows, 0.99).map(round),
            scale_events: self.scale_events,
            cost: round(self.pod_hours * price_per_pod_hour),
            forecast: ForecastAccuracy {
                pairs: self.pairs,
                mape_percent: (self.ape_pairs > 0)
                    .then(|| round(100.0 * self.ape_sum / self.ape_pairs as f64)),
                r_squared,
                interval_coverage: (self.pairs > 0)
                    .then(|| round(self.covered as f64 / self.pairs as f64)),
            },
        }
    }
}

/// Returns the histogram bucket of a latency; zero and below share the lowest bucket.
fn latency_bucket(latency_ms: f64) -> i64 {
    if latency_ms <= 0.0 || !latency_ms.is_finite() {
        return i64::MIN;
    }
    (latency_ms.log10() * LATENCY_BUCKETS_PER_DECADE).floor() as i64
}

/// Returns the nearest-rank quantile `q` of `count` samples held in `histogram`, as the
/// geometric middle of its bucket.
fn percentile(histogram: &BTreeMap<i64, u64>, count: u64, q: f64) -> Option<f64> {
    if count == 0 {
        return None;
    }
    let rank = ((q * count as f64).ceil() as u64).clamp(1, count);
    let mut seen = 0;
    for (&bucket, &n) in histogram {
        seen += n;
        if seen >= rank {
            if bucket == i64::MIN {
                return Some(0.0);
            }
            return Some(10f64.powf((bucket as f64 + 0.5) / LATENCY_BUCKETS_PER_DECADE));
        }
    }
    None
}

/// What one policy's service stage went through, service by service.
#[derive(Debug, Clone, Default)]
pub struct PolicyTally {
    services: BTreeMap<String, ServiceTally>,
}

impl PolicyTally {
    /// Takes one event of the policy's service stage into the sums; others pass by.
    pub fn on_event(&mut self, event: &Emitted) {
        match event {
            Emitted::ObservedOutcome(o) => self.service(&o.service).on_observed(o),
            Emitted::LoadForecast(f) => self.service(&f.service).pending = Some(f.clone()),
            Emitted::ActuationOutcome(a) if a.status == ActuationStatus::Applied => {
                self.service(&a.service).scale_events += 1;
            }
            _ => {}
        }
    }

    fn service(&mut self, name: &str) -> &mut ServiceTally {
        self.services.entry(name.to_string()).or_default()
    }
}

/// What the backtest read, for the report's header.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunFacts {
    /// The inputs, as named on the command line.
    pub inputs: Vec<String>,
    pub window_s: i64,
    pub events_in: u64,
    pub dead_letters: u64,
    pub windows: u64,
    /// The start of the first window and the end of the last, µs since the epoch (event time).
    pub first_window_us: Option<i64>,
    pub last_window_end_us: Option<i64>,
}

/// The sums over every service of one policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyTotals {
    pub pod_hours: f64,
    pub slo_violation_minutes: f64,
    pub scale_events: u64,
    pub cost: f64,
}

/// A backtest's report: figures per policy and service, side by side.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// True when the replay was stopped before the end of its input.
    pub partial: bool,
    #[serde(flatten)]
    pub facts: RunFacts,
    pub price_per_pod_hour: f64,
    /// The policies in the order they were selected.
    pub policies: Vec<String>,
    /// The services in topology order.
    pub services: Vec<String>,
    /// Policy, then service, to its figures.
    pub results: BTreeMap<String, BTreeMap<String, ServiceFigures>>,
    /// Policy to its sums over services.
    pub totals: BTreeMap<String, PolicyTotals>,
    /// Policy, then service, to its plotted series (not written to JSON).
    #[serde(skip)]
    pub series: BTreeMap<String, BTreeMap<String, Vec<SeriesPoint>>>,
}

impl Report {
    /// Builds the report from each policy's tally, in the order given.
    pub fn build(
        facts: RunFacts,
        services: Vec<String>,
        tallies: &[(String, PolicyTally)],
        price_per_pod_hour: f64,
        partial: bool,
    ) -> Report {
        let mut results = BTreeMap::new();
        let mut totals = BTreeMap::new();
        let mut series = BTreeMap::new();
        for (policy, tally) in tallies {
            let figures: BTreeMap<String, ServiceFigures> = tally
                .services
                .iter()
                .map(|(name, t)| (name.clone(), t.figures(price_per_pod_hour)))
                .collect();
            totals.insert(policy.clone(), sum(&figures, tally, price_per_pod_hour));
            results.insert(policy.clone(), figures);
            let plotted = tally
                .services
                .iter()
                .map(|(name, t)| (name.clone(), t.series.to_points()))
                .collect();
            series.insert(policy.clone(), plotted);
        }
        Report {
            partial,
            facts,
            price_per_pod_hour,
            policies: tallies.iter().map(|(p, _)| p.clone()).collect(),
            services,
            results,
            totals,
            series,
        }
    }

    /// Returns the report as pretty JSON with a final newline.
    ///
    /// # Errors
    /// Never in practice: every value is a plain number, string or map.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        let mut json = serde_json::to_string_pretty(self)?;
        json.push('\n');
        Ok(json)
    }
}

fn sum(
    figures: &BTreeMap<String, ServiceFigures>,
    tally: &PolicyTally,
    price_per_pod_hour: f64,
) -> PolicyTotals {
    let pod_hours: f64 = tally.services.values().map(|t| t.pod_hours).sum();
    PolicyTotals {
        pod_hours: round(pod_hours),
        slo_violation_minutes: round(tally.services.values().map(|t| t.slo_minutes).sum()),
        scale_events: figures.values().map(|f| f.scale_events).sum(),
        cost: round(pod_hours * price_per_pod_hour),
    }
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
