//! Events the stages derive: feature vectors, market regimes and load forecasts.

use apache_avro::AvroSchema;
use serde::{Deserialize, Serialize};

use super::MarketContext;

/// What one service's load and its market looked like over one event-time window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "tickscale")]
pub struct FeatureVector {
    /// Deterministic: `features/<service>/<window_start_us>`.
    pub id: String,
    pub service: String,
    pub window_start_us: i64,
    pub window_end_us: i64,
    pub trade_count: i64,
    pub quote_count: i64,
    /// Trades plus quotes per second (bars contribute their estimated trade count).
    pub tick_rate: f64,
    /// Traded notional per second.
    pub notional_rate: f64,
    /// Last price in the window, or the last known price when the window is empty.
    pub last_price: f64,
    /// Log return of the window's last price against the previous window's.
    pub log_return: f64,
    /// Mean quoted spread in basis points, when quotes were seen.
    pub spread_bps: Option<f64>,
    /// Latest volatility index level seen, if any.
    pub vix: Option<f64>,
    /// The service's load over the window, in its load unit.
    pub load: f64,
    /// `market` when derived by the load model, or the trace's file name.
    pub load_source: String,
    /// Events that arrived after their window had closed; counted here, in the window that was
    /// open when they arrived.
    pub late_events: i64,
    /// The market's regime over the same window, as the market stage judged it. Carried here so
    /// that the per-service stages need no other input and can be split by service.
    pub regime: Option<MarketRegime>,
    /// The time of the latest market event (trade, quote or bar) when the window closed.
    pub market_time_us: Option<i64>,
    /// Market context events (index levels, scheduled events) seen since the previous window
    /// closed.
    pub context: Vec<MarketContext>,
}

/// The market's state over one window, with the scores it was judged by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "tickscale")]
pub enum Regime {
    Calm,
    Normal,
    Volatile,
    Stressed,
}

/// A market-regime judgement for one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "tickscale")]
pub struct MarketRegime {
    /// Deterministic: `regime/<window_start_us>`.
    pub id: String,
    pub window_start_us: i64,
    pub window_end_us: i64,
    pub regime: Regime,
    /// Realised volatility of window returns over the short horizon, annualised.
    pub volatility: f64,
    /// Short-horizon volatility over its long-horizon baseline.
    pub volatility_ratio: f64,
    /// Drift over the short horizon in units of its volatility (negative: falling market).
    pub trend_score: f64,
    /// Activity over the short horizon against its long-horizon baseline.
    pub volume_ratio: f64,
    /// How clearly the scores place the window in its regime, 0 to 1.
    pub confidence: f64,
}

/// One horizon of a load forecast, with its prediction interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "tickscale")]
pub struct ForecastPoint {
    pub horizon_s: i64,
    pub load: f64,
    pub lower: f64,
    pub upper: f64,
}

/// A service's forecast load for several horizons ahead of `ts_us`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "tickscale")]
pub struct LoadForecast {
    /// Deterministic: `forecast/<service>/<ts_us>`.
    pub id: String,
    pub service: String,
    /// When the forecast was made: the end of the window it saw last.
    pub ts_us: i64,
    pub model: String,
    pub model_version: i64,
    /// The load observed in the window just closed.
    pub observed_load: f64,
    /// Coverage of the intervals, e.g. 0.9.
    pub interval_level: f64,
    /// How much the model trusts itself now, 0 to 1 (1 minus its recent relative error).
    pub confidence: f64,
    pub points: Vec<ForecastPoint>,
}

#[cfg(test)]
impl FeatureVector {
    /// Returns the `index`-th window of `window_s` seconds of `service` with only its load set:
    /// the fixture the decision-loop stages' tests share.
    pub(crate) fn for_load(service: &str, index: i64, window_s: i64, load: f64) -> Self {
        let start = index * window_s * 1_000_000;
        Self {
            id: format!("features/{service}/{start}"),
            service: service.to_string(),
            window_start_us: start,
            window_end_us: start + window_s * 1_000_000,
            trade_count: 0,
            quote_count: 0,
            tick_rate: 0.0,
            notional_rate: 0.0,
            last_price: 0.0,
            log_return: 0.0,
            spread_bps: None,
            vix: None,
            load,
            load_source: "test".to_string(),
            late_events: 0,
            regime: None,
            market_time_us: None,
            context: Vec::new(),
        }
    }
}
