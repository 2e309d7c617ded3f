//! Regime detection: judges each market window Calm, Normal, Volatile or Stressed.
//!
//! Consumes closed [`MarketWindow`]s in window order (from a market-only
//! [`FeatureWindows`](crate::stages::features::FeatureWindows)); produces one [`MarketRegime`]
//! per window, with id `regime/<window_start_us>`. Keeps a ring of the last `long_horizon_s` of
//! window log returns and activity (tick rates) with running sums over the short and the long
//! horizon, so each window costs O(1) and memory is bounded by the long horizon.
//!
//! # Scores
//! With `r` the window log returns, `n` the windows in a horizon and `P` the windows per year
//! (`annualisation_s / W`):
//! - volatility: `sqrt(Σr² / n × P)` over the short horizon (zero-mean realised volatility);
//! - volatility ratio: short-horizon volatility over the long-horizon one (floored);
//! - trend score: `Σr / sqrt(Σr²)` over the short horizon, the drift in units of its own
//!   volatility (about N(0, 1) for a random walk; −3 is a sustained fall);
//! - volume ratio: mean tick rate over the short horizon against the long one.
//!
//! # Classification
//! Checked in order: Stressed when the market is volatile (either volatility test below at the
//! stressed level) and falling hard (`trend ≤ −stressed_trend`) or running far above its usual
//! activity (`volume ratio ≥ stressed_volume_ratio`); Volatile when the volatility or the
//! volatility ratio reaches its volatile threshold; Calm when both sit below their calm
//! thresholds; Normal otherwise. The confidence is how far the deciding score lies past its
//! threshold (a factor of two past it gives 1), times the share of the short horizon already
//! seen.
//!
//! # Caveats
//! The absolute volatility thresholds are calibrated on BTC one-minute bars (January 2022) and
//! annualise over a calendar year; equities quoted over trading hours need their own
//! `annualisation_s` or thresholds. Empty windows count as zero returns.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::events::{MarketRegime, Regime};
use crate::stages::features::{MarketWindow, SECONDS_PER_YEAR};

/// The horizons and thresholds of regime detection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegimeConfig {
    /// The recent horizon the scores describe, in seconds (default 1,800).
    pub short_horizon_s: i64,
    /// The baseline horizon, in seconds (default 86,400: a day).
    pub long_horizon_s: i64,
    /// Seconds in the year that volatility is annualised over (default a calendar year).
    pub annualisation_s: f64,
    /// Below this annualised volatility (and below `calm_ratio`) the market is Calm (default 0.45).
    pub calm_volatility: f64,
    /// Below this volatility ratio (and below `calm_volatility`) the market is Calm (default 1.2).
    pub calm_ratio: f64,
    /// From this annualised volatility the market is Volatile (default 0.8).
    pub volatile_volatility: f64,
    /// From this volatility ratio the market is Volatile (default 1.8).
    pub volatile_ratio: f64,
    /// From this annualised volatility a falling or frantic market is Stressed (default 1.0).
    pub stressed_volatility: f64,
    /// From this volatility ratio a falling or frantic market is Stressed (default 2.5).
    pub stressed_ratio: f64,
    /// A trend score at or below minus this marks a hard fall (default 2.0).
    pub stressed_trend: f64,
    /// A volume ratio at or above this marks frantic activity (default 2.5).
    pub stressed_volume_ratio: f64,
    /// The least long-horizon volatility a ratio divides by (default 0.05).
    pub volatility_floor: f64,
}

impl Default for RegimeConfig {
    fn default() -> Self {
        Self {
            short_horizon_s: 1_800,
            long_horizon_s: 86_400,
            annualisation_s: SECONDS_PER_YEAR,
            calm_volatility: 0.45,
            calm_ratio: 1.2,
            volatile_volatility: 0.8,
            volatile_ratio: 1.8,
            stressed_volatility: 1.0,
            stressed_ratio: 2.5,
            stressed_trend: 2.0,
            stressed_volume_ratio: 2.5,
            volatility_floor: 0.05,
        }
    }
}

/// Running sums over one horizon.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Sums {
    n: usize,
    r: f64,
    r2: f64,
    activity: f64,
}

impl Sums {
    fn add(&mut self, (r, a): (f64, f64), sign: f64) {
        self.r += sign * r;
        self.r2 += sign * r * r;
        self.activity += sign * a;
    }
}

/// The scores of one window, before classification.
#[derive(Debug, Clone, Copy)]
struct Scores {
    volatility: f64,
    volatility_ratio: f64,
    trend: f64,
    volume_ratio: f64,
}

/// The regime stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegimeDetector {
    config: RegimeConfig,
    /// Window length in µs, learnt from the first window.
    window_us: i64,
    /// (log return, tick rate) of the last windows, newest at the back.
    history: VecDeque<(f64, f64)>,
    short: Sums,
    long: Sums,
    /// Windows pushed since the sums were last recomputed from the ring.
    since_refresh: usize,
}

impl RegimeDetector {
    /// Builds a detector with no history.
    pub fn new(config: RegimeConfig) -> Self {
        Self {
            config,
            window_us: 0,
            history: VecDeque::new(),
            short: Sums::default(),
            long: Sums::default(),
            since_refresh: 0,
        }
    }

    /// Takes the next window and returns its regime.
    pub fn on_window(&mut self, w: &MarketWindow) -> MarketRegime {
        if self.window_us == 0 {
            self.window_us = (w.end_us - w.start_us).max(1);
        }
        self.push((w.log_return, w.tick_rate));

        let scores = self.scores();
        let (regime, margin) = self.classify(&scores);
        let warm_up =
            (self.short.n as f64 / self.horizon_len(self.config.short_horizon_s) as f64).min(1.0);
        MarketRegime {
            id: format!("regime/{}", w.start_us),
            window_start_us: w.start_us,
            window_end_us: w.end_us,
            regime,
            volatility: scores.volatility,
            volatility_ratio: scores.volatility_ratio,
            trend_score: scores.trend,
            volume_ratio: scores.volume_ratio,
            confidence: (margin * warm_up).clamp(0.0, 1.0),
        }
    }

    /// Returns how many windows a horizon spans (at least 1).
    fn horizon_len(&self, horizon_s: i64) -> usize {
        let windows = horizon_s.saturating_mul(1_000_000) / self.window_us.max(1);
        windows.max(1) as usize
    }

    /// Appends one window to the ring and slides both horizons' sums.
    fn push(&mut self, entry: (f64, f64)) {
        let n_short = self.horizon_len(self.config.short_horizon_s);
        let n_long = self.horizon_len(self.config.long_horizon_s).max(n_short);
        self.history.push_back(entry);
        self.short.add(entry, 1.0);
        self.long.add(entry, 1.0);
        if self.history.len() > n_short {
            let leaving = self.history[self.history.len() - 1 - n_short];
            self.short.add(leaving, -1.0);
        }
        if self.history.len() > n_long {
            if let Some(oldest) = self.history.pop_front() {
                self.long.add(oldest, -1.0);
            }
        }
        self.short.n = self.history.len().min(n_short);
        self.long.n = self.history.len();

        // Running sums drift with rounding; rebuilding them once per ring length keeps the
        // cost O(1) amortised.
        self.since_refresh += 1;
        if self.since_refresh >= n_long {
            self.refresh(n_short);
        }
    }

    /// Recomputes both sums from the ring.
    fn refresh(&mut self, n_short: usize) {
        let (mut short, mut long) = (Sums::default(), Sums::default());
        let skip = self.history.len().saturating_sub(n_short);
        for (i, &entry) in self.history.iter().enumerate() {
            long.add(entry, 1.0);
            if i >= skip {
                short.add(entry, 1.0);
            }
        }
        short.n = self.short.n;
        long.n = self.long.n;
        self.short = short;
        self.long = long;
        self.since_refresh = 0;
    }

    fn scores(&self) -> Scores {
        let per_year = self.config.annualisation_s * 1e6 / self.window_us as f64;
        let vol = |s: &Sums| (s.r2.max(0.0) / s.n.max(1) as f64 * per_year).sqrt();
        let volatility = vol(&self.short);
        let long_vol = vol(&self.long).max(self.config.volatility_floor);
        let trend = if self.short.r2 > 1e-18 {
            self.short.r / self.short.r2.sqrt()
        } else {
            0.0
        };
        let mean = |s: &Sums| s.activity / s.n.max(1) as f64;
        let volume_ratio = if mean(&self.long) > 0.0 {
            mean(&self.short) / mean(&self.long)
        } else {
            1.0
        };
        Scores {
            volatility,
            volatility_ratio: volatility / long_vol,
            trend,
            volume_ratio,
        }
    }

    /// Returns the regime and how clearly the scores place it there, 0 to 1.
    fn classify(&self, s: &Scores) -> (Regime, f64) {
        let c = &self.config;
        let stressed_vol = past(s.volatility, c.stressed_volatility)
            .max(past(s.volatility_ratio, c.stressed_ratio));
        let falling = past(-s.trend, c.stressed_trend);
        let frantic = past(s.volume_ratio, c.stressed_volume_ratio);
        if stressed_vol >= 0.0 && falling.max(frantic) >= 0.0 {
            return (
                Regime::Stressed,
                confidence(stressed_vol.min(falling.max(frantic))),
            );
        }
        let volatile = past(s.volatility, c.volatile_volatility)
            .max(past(s.volatility_ratio, c.volatile_ratio));
        if volatile >= 0.0 {
            return (Regime::Volatile, confidence(volatile));
        }
        let calm =
            past(c.calm_volatility, s.volatility).min(past(c.calm_ratio, s.volatility_ratio));
        if calm > 0.0 {
            return (Regime::Calm, confidence(calm));
        }
        // Normal: as clear as the distance to the nearer neighbouring regime.
        (Regime::Normal, confidence((-volatile).min(-calm)))
    }
}

/// Returns how far `value` lies past `threshold`, in doublings: 0 at the threshold, 1 at twice
/// it, negative below it.
fn past(value: f64, threshold: f64) -> f64 {
    if threshold <= 0.0 {
        return f64::INFINITY;
    }
    if value <= 0.0 {
        return f64::NEG_INFINITY;
    }
    (value / threshold).log2()
}

fn confidence(doublings: f64) -> f64 {
    if doublings.is_nan() {
        0.0
    } else {
        doublings.clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Bar;
    use crate::load::LoadModel;
    use crate::stages::features::{FeatureConfig, FeatureWindows, WindowClosed};

    /// Reads the BTC one-minute bars: naive UTC timestamps, USD notional volume.
    fn btc_bars() -> Vec<Bar> {
        let path = crate::data::shared_data_file("market/btc-perp-20211231-20220201_1m.csv");
        let mut reader = csv::Reader::from_path(path).expect("opens the recording");
        let mut bars = Vec::new();
        for record in reader.records() {
            let r = record.expect("reads a row");
            let ts = chrono::NaiveDateTime::parse_from_str(&r[0], "%Y-%m-%d %H:%M:%S%.f")
                .expect("timestamp")
                .and_utc()
                .timestamp_micros();
            let num = |i: usize| r[i].parse::<f64>().expect("number");
            bars.push(Bar {
                symbol: "BTC-PERP".to_string(),
                ts_us: ts,
                interval_s: 60,
                open: num(1),
                high: num(2),
                low: num(3),
                close: num(4),
                volume: Some(num(5)),
            });
        }
        bars
    }

    fn us(text: &str) -> i64 {
        chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M")
            .expect("date")
            .and_utc()
            .timestamp_micros()
    }

    fn windows_60s() -> Vec<MarketWindow> {
        let config = FeatureConfig {
            window_s: 60,
            allowed_lateness_s: 2,
            ..FeatureConfig::default()
        };
        let mut windows = FeatureWindows::market_only(config, LoadModel::default());
        let mut out: Vec<WindowClosed> = Vec::new();
        for bar in &btc_bars() {
            windows.on_bar(bar, &mut out);
        }
        windows.finish(&mut out);
        out.into_iter().map(|w| w.market).collect()
    }

    fn share(regimes: &[MarketRegime], from: &str, to: &str) -> f64 {
        let (from, to) = (us(from), us(to));
        let span: Vec<_> = regimes
            .iter()
            .filter(|r| r.window_start_us >= from && r.window_start_us < to)
            .collect();
        let hot = span
            .iter()
            .filter(|r| matches!(r.regime, Regime::Volatile | Regime::Stressed))
            .count();
        hot as f64 / span.len() as f64
    }

    #[test]
    fn btc_sell_off_is_mostly_volatile_while_the_first_week_is_not() {
        let windows = windows_60s();
        let mut detector = RegimeDetector::new(RegimeConfig::default());
        let regimes: Vec<_> = windows.iter().map(|w| detector.on_window(w)).collect();
        let calm_week = share(&regimes, "2022-01-01 00:00", "2022-01-08 00:00");
        // 2022-01-20 18:00 the price is near 43,000; by 2022-01-24 it trades near 33,000.
        let sell_off = share(&regimes, "2022-01-20 18:00", "2022-01-25 00:00");
        eprintln!("volatile or stressed: calm week {calm_week:.3}, sell-off {sell_off:.3}");
        assert!(sell_off > 0.5, "sell-off share {sell_off}");
        assert!(calm_week < 0.15, "calm-week share {calm_week}");
        assert_eq!(regimes.len(), windows.len());
        assert!(regimes.iter().all(|r| (0.0..=1.0).contains(&r.confidence)));
    }

    /// Windows of 60 s with the given log returns and a steady 10 ticks/s.
    fn synthetic(returns: &[f64]) -> Vec<MarketWindow> {
        let w = 60_000_000;
        let mut price: f64 = 100.0;
        let mut out = Vec::new();
        for (i, &r) in returns.iter().enumerate() {
            price *= r.exp();
            let start = i as i64 * w;
            out.push(MarketWindow {
                log_return: r,
                last_price: price,
                tick_rate: 10.0,
                ..MarketWindow::empty(start, start + w)
            });
        }
        out
    }

    fn judge(windows: &[MarketWindow]) -> Vec<MarketRegime> {
        let mut detector = RegimeDetector::new(RegimeConfig::default());
        windows.iter().map(|w| detector.on_window(w)).collect()
    }

    /// Two hours of quiet noise: ±0.05 % a minute, about 36 % a year.
    fn quiet(n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| if i % 2 == 0 { 0.0005 } else { -0.0005 })
            .collect()
    }

    #[test]
    fn constant_prices_are_calm_with_full_confidence() {
        let regimes = judge(&synthetic(&[0.0; 120]));
        let last = regimes.last().expect("regimes");
        assert_eq!(last.regime, Regime::Calm);
        assert_eq!(last.volatility, 0.0);
        assert_eq!(last.confidence, 1.0);
        assert_eq!(last.id, format!("regime/{}", 119 * 60_000_000i64));
        // Confidence grows while the short horizon (30 windows) fills.
        assert!((regimes[14].confidence - 0.5).abs() < 1e-12);
    }

    #[test]
    fn a_sudden_crash_is_stressed_with_a_negative_trend() {
        let mut returns = quiet(120);
        returns.extend([-0.01; 10]);
        let regimes = judge(&synthetic(&returns));
        assert_eq!(regimes[119].regime, Regime::Calm);
        let crash = &regimes[129];
        // Short horizon: Σr² = 10 × 1e-4 + 20 × 2.5e-7, Σr = −0.1 (the noise cancels).
        let r2: f64 = 10.0 * 1e-4 + 20.0 * 2.5e-7;
        let expected_vol = (r2 / 30.0 * SECONDS_PER_YEAR / 60.0).sqrt();
        assert!((crash.volatility - expected_vol).abs() < 1e-9);
        assert!((crash.trend_score - (-0.1 / r2.sqrt())).abs() < 1e-9);
        assert_eq!(crash.regime, Regime::Stressed);
        assert!(crash.trend_score < -3.0);
        assert!(crash.confidence > 0.5);
    }

    #[test]
    fn a_sudden_rally_is_volatile_but_not_stressed() {
        let mut returns = quiet(120);
        returns.extend([0.01; 10]);
        let regimes = judge(&synthetic(&returns));
        assert_eq!(regimes[129].regime, Regime::Volatile);
        assert!(regimes[129].trend_score > 3.0);
    }

    #[test]
    fn running_sums_match_a_direct_computation_after_the_ring_wraps() {
        let config = RegimeConfig {
            long_horizon_s: 3_600,
            ..RegimeConfig::default()
        };
        let returns: Vec<f64> = (0..500)
            .map(|i| ((i * 37 % 11) as f64 - 5.0) * 1e-3)
            .collect();
        let mut detector = RegimeDetector::new(config);
        let mut last = None;
        for w in synthetic(&returns) {
            last = Some(detector.on_window(&w));
        }
        let last = last.expect("a regime");
        assert_eq!(detector.history.len(), 60);
        let short = &returns[470..];
        let long = &returns[440..];
        let r2 = |s: &[f64]| s.iter().map(|r| r * r).sum::<f64>();
        let per_year = SECONDS_PER_YEAR / 60.0;
        let vol = (r2(short) / 30.0 * per_year).sqrt();
        let long_vol = (r2(long) / 60.0 * per_year).sqrt();
        assert!((last.volatility - vol).abs() < 1e-9);
        assert!((last.volatility_ratio - vol / long_vol).abs() < 1e-9);
        assert!((last.trend_score - short.iter().sum::<f64>() / r2(short).sqrt()).abs() < 1e-9);
    }

    #[test]
    fn a_burst_of_activity_raises_the_volume_ratio() {
        let mut windows = synthetic(&quiet(200));
        for w in windows.iter_mut().skip(170) {
            w.tick_rate = 50.0;
        }
        let regimes = judge(&windows);
        // Short: 30 windows at 50; long: 170 at 10 and 30 at 50 → mean 16.
        assert!((regimes[199].volume_ratio - 50.0 / 16.0).abs() < 1e-9);
    }

    #[test]
    fn the_generated_stress_episode_is_judged_volatile_or_stressed_and_midday_is_not() {
        use crate::generator::{GeneratedEvent, GeneratorConfig, MarketGenerator};
        let generator = MarketGenerator::new(GeneratorConfig::default()).expect("valid config");
        let start = generator.config().start_us;
        let mut windows =
            FeatureWindows::market_only(FeatureConfig::default(), LoadModel::default());
        let mut out = Vec::new();
        for event in generator {
            match event {
                GeneratedEvent::Trade(t) => windows.on_trade(&t, &mut out),
                GeneratedEvent::Quote(q) => windows.on_quote(&q, &mut out),
                GeneratedEvent::Context(c) => windows.on_context(&c, &mut out),
            }
        }
        windows.finish(&mut out);
        let mut detector = RegimeDetector::new(RegimeConfig::default());
        let regimes: Vec<_> = out.iter().map(|w| detector.on_window(&w.market)).collect();

        // The day starts 09:00 New York: midday is +3 h, the episode +4 h to +4 h 20.
        let hour = 3_600_000_000i64;
        let hot_share = |from: i64, to: i64| {
            let span: Vec<_> = regimes
                .iter()
                .filter(|r| r.window_start_us >= start + from && r.window_start_us < start + to)
                .collect();
            let hot = span
                .iter()
                .filter(|r| matches!(r.regime, Regime::Volatile | Regime::Stressed));
            hot.count() as f64 / span.len() as f64
        };
        let midday = hot_share(3 * hour, 3 * hour + hour / 2);
        let stress = hot_share(4 * hour + hour / 12, 4 * hour + hour / 3);
        eprintln!("generated day, volatile or stressed: midday {midday:.3}, stress {stress:.3}");
        assert!(stress > 0.8, "stress share {stress}");
        assert!(midday < 0.2, "midday share {midday}");
    }

    #[test]
    fn detector_state_survives_a_serde_round_trip() {
        let windows = synthetic(&quiet(100));
        let mut straight = RegimeDetector::new(RegimeConfig::default());
        let expected: Vec<_> = windows.iter().map(|w| straight.on_window(w)).collect();
        let mut first = RegimeDetector::new(RegimeConfig::default());
        let mut got: Vec<_> = windows[..50].iter().map(|w| first.on_window(w)).collect();
        let saved = serde_json::to_string(&first).expect("serialises");
        let mut second: RegimeDetector = serde_json::from_str(&saved).expect("deserialises");
        got.extend(windows[50..].iter().map(|w| second.on_window(w)));
        assert_eq!(got, expected);
    }
}
