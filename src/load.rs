//! The load model: how market activity turns into work for each kind of service.
//!
//! Consumes one closed [`MarketWindow`] and a [`ServiceKind`]; produces that service's load over
//! the window, in messages (or evaluations) per second: the unit its `capacity_per_pod` is
//! declared in. It keeps no state: the same window always gives the same load.
//!
//! # Formulas
//!
//! With `ticks` = trades plus quotes per second in the window (bars count their estimated
//! trades), `trades` = trades per second, `σ` = the window's annualised range volatility
//! (a fraction: 0.2 is 20 %), and `F` = `fan_out`:
//!
//! | kind | load (per second) | default constants |
//! | --- | --- | --- |
//! | market-data | `ticks × F` | `F = 500` |
//! | strategy | `ticks × F × strategy_cost × (1 + strategy_vol_gain × σ)` | `0.5`, `2.0` |
//! | risk | `risk_base + trades × F × risk_per_trade + risk_per_vol × σ` | `200`, `0.5`, `1000` |
//! | order | `trades × F × order_per_trade` | `0.1` |
//! | position | `trades × F × position_per_trade` | `0.04` |
//! | general | `0` (its load comes from a workload trace) | |
//!
//! `fan_out` says that one recorded symbol stands for a universe of `F` instruments that the
//! platform follows: the default 500 reads the SPY tape as the S&P 500. On the recorded SPY day
//! (2013-10-07) the first quarter hour after the 09:30 open averages about 24 trades/s, so the
//! market-data service sees about 12,000 msgs/s (peaks near 37,000 in single 15 s windows):
//! several pods at 1,000 to 5,000 msgs/s each, against about 2,500 msgs/s at midday.
//!
//! Bars carry no ticks. A bar's trade count is estimated as `volume / trade_notional_usd`
//! (default 5,000 USD per trade), or `trades_per_bar_without_volume` (default 60) when the bar has
//! no volume, and is spread evenly over the bar's interval.
//!
//! # Caveats
//! The constants are plausible orders of magnitude, not measurements of any real platform; tune
//! them in the config to match a deployment's own metrics.

use serde::{Deserialize, Serialize};

use crate::stages::features::MarketWindow;
use crate::topology::ServiceKind;

/// The constants that turn market activity into service load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoadModel {
    /// How many instruments one recorded symbol stands for (default 500).
    pub fan_out: f64,
    /// Mean notional of one trade in USD, used to estimate trade counts from bar volume
    /// (default 5,000).
    pub trade_notional_usd: f64,
    /// Trades assumed per bar when the bar carries no volume (default 60).
    pub trades_per_bar_without_volume: f64,
    /// Strategy evaluations per tick (default 0.5).
    pub strategy_cost: f64,
    /// How much strategy work grows per unit of annualised volatility (default 2.0).
    pub strategy_vol_gain: f64,
    /// Risk re-pricings per second with no market activity (default 200).
    pub risk_base: f64,
    /// Risk re-pricings per trade (default 0.5).
    pub risk_per_trade: f64,
    /// Risk re-pricings per second per unit of annualised volatility (default 1,000).
    pub risk_per_vol: f64,
    /// Orders routed per market trade (default 0.1).
    pub order_per_trade: f64,
    /// Fills booked per market trade (default 0.04).
    pub position_per_trade: f64,
}

impl Default for LoadModel {
    fn default() -> Self {
        Self {
            fan_out: 500.0,
            trade_notional_usd: 5_000.0,
            trades_per_bar_without_volume: 60.0,
            strategy_cost: 0.5,
            strategy_vol_gain: 2.0,
            risk_base: 200.0,
            risk_per_trade: 0.5,
            risk_per_vol: 1_000.0,
            order_per_trade: 0.1,
            position_per_trade: 0.04,
        }
    }
}

impl LoadModel {
    /// Returns the load a service of `kind` sees over `window`, per second in its load unit.
    pub fn load(&self, kind: ServiceKind, window: &MarketWindow) -> f64 {
        let ticks = window.tick_rate * self.fan_out;
        let trades = window.trade_rate * self.fan_out;
        let vol = window.volatility.max(0.0);
        match kind {
            ServiceKind::MarketData => ticks,
            ServiceKind::Strategy => {
                ticks * self.strategy_cost * (1.0 + self.strategy_vol_gain * vol)
            }
            ServiceKind::Risk => {
                self.risk_base + trades * self.risk_per_trade + self.risk_per_vol * vol
            }
            ServiceKind::Order => trades * self.order_per_trade,
            ServiceKind::Position => trades * self.position_per_trade,
            ServiceKind::General => 0.0,
        }
    }

    /// Returns the number of trades a bar stands for: volume over the mean trade notional, or
    /// the fixed count when the bar has no volume.
    pub fn bar_trades(&self, volume: Option<f64>) -> f64 {
        match volume {
            Some(v) if v > 0.0 && self.trade_notional_usd > 0.0 => v / self.trade_notional_usd,
            Some(_) => 0.0,
            None => self.trades_per_bar_without_volume,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(tick_rate: f64, trade_rate: f64, volatility: f64) -> MarketWindow {
        MarketWindow {
            tick_rate,
            trade_rate,
            volatility,
            ..MarketWindow::empty(0, 15_000_000)
        }
    }

    #[test]
    fn market_data_load_is_tick_rate_times_fan_out() {
        let model = LoadModel::default();
        let load = model.load(ServiceKind::MarketData, &window(24.0, 20.0, 0.3));
        assert_eq!(load, 12_000.0);
    }

    #[test]
    fn strategy_load_rises_with_volatility() {
        let model = LoadModel::default();
        // 10 ticks/s × 500 × 0.5 = 2,500, times (1 + 2 × σ).
        let calm = model.load(ServiceKind::Strategy, &window(10.0, 5.0, 0.0));
        let wild = model.load(ServiceKind::Strategy, &window(10.0, 5.0, 1.0));
        assert_eq!(calm, 2_500.0);
        assert_eq!(wild, 7_500.0);
    }

    #[test]
    fn risk_load_is_base_plus_trade_and_volatility_terms() {
        let model = LoadModel::default();
        // 200 + 4 × 500 × 0.5 + 1000 × 0.5 = 1,700.
        let load = model.load(ServiceKind::Risk, &window(10.0, 4.0, 0.5));
        assert_eq!(load, 1_700.0);
        assert_eq!(model.load(ServiceKind::Risk, &window(0.0, 0.0, 0.0)), 200.0);
    }

    #[test]
    fn order_and_position_loads_follow_trade_rate_with_position_smaller() {
        let model = LoadModel::default();
        let w = window(50.0, 10.0, 0.2);
        assert_eq!(model.load(ServiceKind::Order, &w), 500.0);
        assert_eq!(model.load(ServiceKind::Position, &w), 200.0);
        assert_eq!(model.load(ServiceKind::General, &w), 0.0);
    }

    #[test]
    fn bar_trades_come_from_volume_or_the_fixed_count() {
        let model = LoadModel::default();
        assert_eq!(model.bar_trades(Some(2_300_000.0)), 460.0);
        assert_eq!(model.bar_trades(None), 60.0);
        assert_eq!(model.bar_trades(Some(0.0)), 0.0);
    }
}
