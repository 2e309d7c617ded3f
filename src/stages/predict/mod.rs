//! Load prediction: an online Holt-Winters forecaster per service.
//!
//! **Consumes** one [`FeatureVector`] per service per closed window and reads its `load`.
//! **Produces** one [`LoadForecast`] per feature vector, made at the window's end, with a point
//! and a prediction interval for each configured horizon.
//! **Keeps**, per service, a [`HoltWinters`] model: level, damped trend, optional additive
//! season, a running estimate of the one-step error variance and the last few relative errors.
//! **Guarantees**: O(1) work per window in the length of the history (the horizons cost O(h)),
//! the same forecasts for the same input, ids `forecast/<service>/<ts_us>`, no negative loads.
//!
//! # The model
//!
//! Additive error-correction form of Holt-Winters with a damped trend, where `e` is the one-step
//! error of the forecast made for this window, `k` the season slot and `φ` the damping factor:
//!
//! ```text
//! e  = y − (l + φ·b + s[k])
//! l' = l + φ·b + α·e            (≡ α·(y − s[k]) + (1 − α)·(l + φ·b))
//! b' = φ·b + α·β·e              (≡ β·(l' − l) + (1 − β)·φ·b)
//! s[k]' = s[k] + γ·e            (γ in error-correction form: the classic γ·(1 − α))
//! ŷ(h) = l + (φ + φ² + … + φ^h)·b + s[slot of the h-th next window]
//! ```
//!
//! # Intervals
//!
//! σ² is an EWMA (weight [`ERROR_WEIGHT`]) of squared one-step errors. For ETS(A,Ad,A) the
//! h-step error variance is `σ²·(1 + Σ_{j=1}^{h−1} c_j²)` with `c_j = α·(1 + β·(φ + … + φ^j)) +
//! γ·[j is a multiple of the season length]` (Hyndman et al., *Forecasting with Exponential
//! Smoothing*, class 1), so the interval widens with the horizon. The interval is `ŷ ± z·σ_h`,
//! with `z` the two-sided normal quantile of `interval_level`, clipped below at 0.
//!
//! # Confidence
//!
//! `confidence = min(1, coverage / interval_level)`, where `coverage` is the share of the last
//! [`CONFIDENCE_WINDOW`] actual loads that fell inside the one-step interval forecast for them;
//! 0 until [`MIN_ERRORS_FOR_CONFIDENCE`] errors have been seen, since a model that has not yet
//! been checked against the load does not trust itself. A model whose intervals hold as
//! advertised is trusted fully, however noisy the load: the decision provisions within the
//! interval, so what matters is that the interval is honest. When the load leaves the intervals
//! (a regime change the model has not caught up with), confidence drops and the decide stage
//! falls back to the reactive rule. A relative error (MAPE or WAPE) would instead punish the
//! bursty 15 s windows of a single instrument's tape, where most of the error is noise that no
//! model removes.
//!
//! # Caveats
//!
//! - Before the first error is known, σ is a prior of 10 % of the load.
//! - The season starts at zero and is learnt slot by slot; the first seasons are poorly fitted.
//! - Horizons that are not a multiple of the window are interpolated between whole steps.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::events::{FeatureVector, ForecastPoint, LoadForecast};

/// Name of the model, as written on every forecast.
pub const MODEL_NAME: &str = "holt-winters";
/// Version of the model, as written on every forecast.
pub const MODEL_VERSION: i64 = 1;
/// Weight of the newest squared error in the running one-step variance.
pub const ERROR_WEIGHT: f64 = 0.1;
/// One-step errors that `confidence` is computed over.
pub const CONFIDENCE_WINDOW: usize = 20;
/// Errors a model must have seen before its confidence rises above 0.
pub const MIN_ERRORS_FOR_CONFIDENCE: usize = 3;

/// What can be wrong with a [`PredictConfig`]; none of these is worth retrying.
#[derive(Debug, Error, PartialEq)]
pub enum Error {
    /// A smoothing factor lies outside its range.
    #[error("smoothing factor {name} must lie in [0, 1], got {value}")]
    SmoothingOutOfRange { name: &'static str, value: f64 },
    /// The window is not a positive number of seconds.
    #[error("window must be at least 1 s, got {0}")]
    BadWindow(i64),
    /// The season is not a whole number of windows.
    #[error("season of {season_s} s is not a positive multiple of the {window_s} s window")]
    BadSeason { season_s: i64, window_s: i64 },
    /// The interval level is not a probability strictly between 0 and 1.
    #[error("interval level must lie in (0, 1), got {0}")]
    BadIntervalLevel(f64),
    /// A horizon is not positive.
    #[error("horizons must be positive, got {0}")]
    BadHorizon(i64),
}

/// Settings of the forecaster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictConfig {
    /// Horizons forecast at each window, in seconds after the window's end.
    pub horizons_s: Vec<i64>,
    /// Length of the feature windows, in seconds: one model step.
    pub window_s: i64,
    /// Level smoothing, in [0, 1]; higher follows the load faster.
    pub alpha: f64,
    /// Trend smoothing, in [0, 1]; higher turns the trend faster.
    pub beta: f64,
    /// Season smoothing in error-correction form, in [0, 1]; unused without a season.
    pub gamma: f64,
    /// Trend damping, in [0, 1]; 1 is Holt's linear trend, lower flattens long horizons.
    pub phi: f64,
    /// Length of the season in seconds, a multiple of `window_s`; 0 for no season.
    pub season_s: i64,
    /// Coverage of the prediction intervals, e.g. 0.9.
    pub interval_level: f64,
}

impl Default for PredictConfig {
    fn default() -> Self {
        Self {
            horizons_s: vec![15, 30, 60, 120, 300],
            window_s: 15,
            alpha: 0.5,
            beta: 0.1,
            gamma: 0.1,
            phi: 0.98,
            season_s: 0,
            interval_level: 0.9,
        }
    }
}

impl PredictConfig {
    /// Checks the settings.
    ///
    /// # Errors
    /// Returns the first setting that is out of range.
    pub fn validate(&self) -> Result<(), Error> {
        for (name, value) in [
            ("alpha", self.alpha),
            ("beta", self.beta),
            ("gamma", self.gamma),
            ("phi", self.phi),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(Error::SmoothingOutOfRange { name, value });
            }
        }
        if self.window_s < 1 {
            return Err(Error::BadWindow(self.window_s));
        }
        if self.season_s < 0 || self.season_s % self.window_s != 0 {
            return Err(Error::BadSeason {
                season_s: self.season_s,
                window_s: self.window_s,
            });
        }
        if !(self.interval_level > 0.0 && self.interval_level < 1.0) {
            return Err(Error::BadIntervalLevel(self.interval_level));
        }
        match self.horizons_s.iter().find(|h| **h <= 0) {
            Some(h) => Err(Error::BadHorizon(*h)),
            None => Ok(()),
        }
    }

    fn season_len(&self) -> usize {
        if self.season_s > 0 && self.window_s > 0 {
            usize::try_from(self.season_s / self.window_s).unwrap_or(0)
        } else {
            0
        }
    }
}

/// Returns |forecast − actual| / actual; with a zero actual, 0 when the forecast is 0 too and 1
/// otherwise (the relative error is undefined there, and 1 counts it as a full miss).
pub fn absolute_percentage_error(forecast: f64, actual: f64) -> f64 {
    if actual.abs() > f64::EPSILON {
        (forecast - actual).abs() / actual.abs()
    } else if forecast.abs() > f64::EPSILON {
        1.0
    } else {
        0.0
    }
}

/// Returns the two-sided standard normal quantile for a central coverage `level` in (0, 1):
/// the `z` with P(|Z| ≤ z) = level (1.645 for 0.9).
///
/// Uses the Abramowitz–Stegun rational approximation 26.2.23 (absolute error below 4.5e-4).
pub fn normal_quantile_two_sided(level: f64) -> f64 {
    let p = ((1.0 - level) / 2.0).clamp(1e-12, 0.5);
    let t = (-2.0 * p.ln()).sqrt();
    let num = 2.515_517 + 0.802_853 * t + 0.010_328 * t * t;
    let den = 1.0 + 1.432_788 * t + 0.189_269 * t * t + 0.001_308 * t * t * t;
    (t - num / den).max(0.0)
}

/// One service's Holt-Winters state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HoltWinters {
    /// Windows seen so far.
    pub observations: u64,
    /// Smoothed level.
    pub level: f64,
    /// Smoothed trend, per window.
    pub trend: f64,
    /// Additive seasonal offsets, one per slot (empty without a season).
    pub season: Vec<f64>,
    /// EWMA of squared one-step errors; `None` until the first error.
    pub error_variance: Option<f64>,
    /// Whether each of the last actual loads fell inside its one-step interval, oldest first.
    pub recent_hits: VecDeque<bool>,
    /// The last load seen.
    pub last_load: f64,
}

impl HoltWinters {
    /// Feeds one window's load and returns the one-step error of the forecast made for it
    /// (`None` for the very first window).
    pub fn update(&mut self, config: &PredictConfig, y: f64) -> Option<f64> {
        let m = config.season_len();
        if self.observations == 0 {
            self.level = y;
            self.trend = 0.0;
            self.season = vec![0.0; m];
            self.observations = 1;
            self.last_load = y;
            return None;
        }

        let slot = self.slot(m, 0);
        let point = self.point(config, 1);
        let half_width =
            normal_quantile_two_sided(config.interval_level) * self.variance(config, 1).sqrt();
        let inside = y <= point + half_width && y >= (point - half_width).max(0.0);
        let error = y - (self.level + config.phi * self.trend + self.season_at(slot));
        self.level += config.phi * self.trend + config.alpha * error;
        self.trend = config.phi * self.trend + config.alpha * config.beta * error;
        if let Some(s) = slot.and_then(|k| self.season.get_mut(k)) {
            *s += config.gamma * error;
        }

        self.record_error(error, inside);
        self.observations += 1;
        self.last_load = y;
        Some(error)
    }

    fn record_error(&mut self, error: f64, inside: bool) {
        self.error_variance = Some(match self.error_variance {
            Some(v) => (1.0 - ERROR_WEIGHT) * v + ERROR_WEIGHT * error * error,
            None => error * error,
        });
        self.recent_hits.push_back(inside);
        while self.recent_hits.len() > CONFIDENCE_WINDOW {
            self.recent_hits.pop_front();
        }
    }

    /// Returns the season slot of the window `ahead` steps after the next one.
    fn slot(&self, m: usize, ahead: usize) -> Option<usize> {
        // The next window is observation number `observations` (0-based).
        let next = usize::try_from(self.observations).unwrap_or(usize::MAX);
        (m > 0).then(|| (next.wrapping_add(ahead)) % m)
    }

    fn season_at(&self, slot: Option<usize>) -> f64 {
        slot.and_then(|k| self.season.get(k))
            .copied()
            .unwrap_or(0.0)
    }

    /// Returns the forecast `steps` whole windows ahead, before clipping (0 steps: last load).
    pub fn point(&self, config: &PredictConfig, steps: usize) -> f64 {
        if steps == 0 {
            return self.last_load;
        }
        let damped: f64 = (1..=steps).map(|i| config.phi.powi(i as i32)).sum();
        let slot = self.slot(config.season_len(), steps - 1);
        self.level + damped * self.trend + self.season_at(slot)
    }

    /// Returns the error variance `steps` windows ahead (see the module doc for the formula).
    pub fn variance(&self, config: &PredictConfig, steps: usize) -> f64 {
        if steps == 0 {
            return 0.0;
        }
        let sigma2 = self
            .error_variance
            .unwrap_or((0.1 * self.last_load).powi(2));
        let m = config.season_len();
        let mut sum = 1.0;
        let mut phi_j = 0.0;
        for j in 1..steps {
            phi_j += config.phi.powi(j as i32);
            let seasonal = if m > 0 && j % m == 0 {
                config.gamma
            } else {
                0.0
            };
            let c = config.alpha * (1.0 + config.beta * phi_j) + seasonal;
            sum += c * c;
        }
        sigma2 * sum
    }

    /// Returns `min(1, recent coverage / interval_level)`, or 0 before enough errors were seen.
    pub fn confidence(&self, config: &PredictConfig) -> f64 {
        if self.recent_hits.len() < MIN_ERRORS_FOR_CONFIDENCE {
            return 0.0;
        }
        let hits = self.recent_hits.iter().filter(|hit| **hit).count();
        let coverage = hits as f64 / self.recent_hits.len() as f64;
        (coverage / config.interval_level.max(f64::EPSILON)).min(1.0)
    }

    /// Returns the point and interval `horizon_s` after the last window, interpolating
    /// between whole steps.
    fn forecast_point(&self, config: &PredictConfig, horizon_s: i64, z: f64) -> ForecastPoint {
        let steps = horizon_s.max(0) as f64 / config.window_s.max(1) as f64;
        let below = steps.floor() as usize;
        let frac = steps - below as f64;
        let lerp = |f: &dyn Fn(usize) -> f64| {
            let a = f(below);
            if frac > 0.0 {
                a + frac * (f(below + 1) - a)
            } else {
                a
            }
        };
        let load = lerp(&|k| self.point(config, k));
        let sd = lerp(&|k| self.variance(config, k)).sqrt();
        ForecastPoint {
            horizon_s,
            load: load.max(0.0),
            lower: (load - z * sd).max(0.0),
            upper: (load + z * sd).max(0.0),
        }
    }
}

/// The predict stage: one [`HoltWinters`] per service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forecaster {
    config: PredictConfig,
    models: BTreeMap<String, HoltWinters>,
}

impl Forecaster {
    /// Returns a forecaster with no history; call [`PredictConfig::validate`] first.
    pub fn new(config: PredictConfig) -> Self {
        Self {
            config,
            models: BTreeMap::new(),
        }
    }

    /// Returns the settings.
    pub fn config(&self) -> &PredictConfig {
        &self.config
    }

    /// Returns a service's model, once it has seen a window.
    pub fn model(&self, service: &str) -> Option<&HoltWinters> {
        self.models.get(service)
    }

    /// Learns from one closed window and returns the forecast made at its end.
    pub fn on_features(&mut self, f: &FeatureVector) -> LoadForecast {
        let model = self.models.entry(f.service.clone()).or_default();
        model.update(&self.config, f.load.max(0.0));

        let z = normal_quantile_two_sided(self.config.interval_level);
        let points = self
            .config
            .horizons_s
            .iter()
            .map(|h| model.forecast_point(&self.config, *h, z))
            .collect();
        LoadForecast {
            id: format!("forecast/{}/{}", f.service, f.window_end_us),
            service: f.service.clone(),
            ts_us: f.window_end_us,
            model: MODEL_NAME.to_string(),
            model_version: MODEL_VERSION,
            observed_load: f.load,
            interval_level: self.config.interval_level,
            confidence: model.confidence(&self.config),
            points,
        }
    }
}

/// Returns the forecast `horizon_s` after `forecast.ts_us`, interpolating linearly between the
/// forecast's horizons. Below the first horizon it interpolates from the observed load (horizon
/// 0, no spread); beyond the last it holds the last point.
pub fn forecast_at(forecast: &LoadForecast, horizon_s: i64) -> ForecastPoint {
    let start = ForecastPoint {
        horizon_s: 0,
        load: forecast.observed_load.max(0.0),
        lower: forecast.observed_load.max(0.0),
        upper: forecast.observed_load.max(0.0),
    };
    let mut before = &start;
    for point in &forecast.points {
        if point.horizon_s >= horizon_s {
            let span = (point.horizon_s - before.horizon_s) as f64;
            let t = if span > 0.0 {
                (horizon_s - before.horizon_s) as f64 / span
            } else {
                1.0
            };
            let mix = |a: f64, b: f64| a + t.clamp(0.0, 1.0) * (b - a);
            return ForecastPoint {
                horizon_s,
                load: mix(before.load, point.load),
                lower: mix(before.lower, point.lower),
                upper: mix(before.upper, point.upper),
            };
        }
        before = point;
    }
    ForecastPoint {
        horizon_s,
        ..before.clone()
    }
}

#[cfg(test)]
mod tests;
