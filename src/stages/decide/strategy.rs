//! Predictive strategies: which load, out of the forecast's distribution, to provision for.
//!
//! **Consumes** one forecast point (the point forecast and its prediction interval at the
//! policy's horizon) and the interval's level. **Produces** the load to provision for.
//! **Keeps** nothing. **Guarantees** a load at least 0 and, for every strategy but
//! ml-optimised with a critical ratio below one half, at least the point forecast.
//!
//! - **conservative**: the interval's upper bound. Pays for the forecast's whole upside.
//! - **balanced** (default): the point plus `headroom` (0.5) of the way to the upper bound.
//! - **aggressive**: the point forecast alone. "Aggressive" leans towards cost: it provisions
//!   the fewest pods of the fixed strategies and accepts the risk that the load lands above the
//!   point forecast, as it does about half the time. The HPA floor (`max(reactive, predictive)`)
//!   still catches a load already above capacity, one pod start-up late.
//! - **ml-optimised**: the newsvendor answer. With `c_under` the cost of one unit of load not
//!   provisioned for (SLO risk) and `c_over` the cost of one unit provisioned and unused (pod
//!   cost), the expected cost is lowest at the quantile `q = c_under / (c_under + c_over)` of
//!   the load's distribution. The forecast is read as a normal distribution centred on the
//!   point, with `σ = (upper − point) / z`, `z` the standard normal quantile of
//!   `(1 + level) / 2` (1.645 for a 90 % interval). The defaults `c_under = 4`, `c_over = 1`
//!   give `q = 0.8`, i.e. `point + 0.842 σ`.
//! - **event-driven**: balanced, plus a replica floor raised ahead of scheduled market events
//!   (see [`super::calendar`]); the load chosen here is balanced's.
//!
//! # Caveats
//!
//! The interval is the forecaster's, from its running one-step error; a normal reading of it
//! is an approximation (load errors are skewed upwards at the open). An interval with no width
//! (or an upper bound below the point) gives `σ = 0`, and every strategy then provisions the
//! point.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::events::ForecastPoint;

use super::Error;

/// Which load of the forecast's distribution the predictive policy provisions for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// The upper bound of the prediction interval.
    Conservative,
    /// Halfway (the configured headroom) from the point to the upper bound.
    #[default]
    Balanced,
    /// The point forecast: fewer pods, more risk.
    Aggressive,
    /// Balanced, with a floor raised ahead of scheduled market events.
    EventDriven,
    /// The quantile that minimises the expected cost of under- against over-provisioning.
    MlOptimised,
}

impl Strategy {
    /// Every strategy, in declaration order.
    pub const ALL: [Strategy; 5] = [
        Strategy::Conservative,
        Strategy::Balanced,
        Strategy::Aggressive,
        Strategy::EventDriven,
        Strategy::MlOptimised,
    ];

    /// Returns the strategy's name as written in decisions and accepted by `FromStr`.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Conservative => "conservative",
            Strategy::Balanced => "balanced",
            Strategy::Aggressive => "aggressive",
            Strategy::EventDriven => "event-driven",
            Strategy::MlOptimised => "ml-optimised",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Strategy {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase().replace('_', "-");
        Strategy::ALL
            .into_iter()
            .find(|strategy| strategy.as_str() == wanted)
            .ok_or_else(|| Error::UnknownStrategy(s.to_string()))
    }
}

/// What a strategy needs besides the forecast point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StrategyInputs {
    /// The prediction interval's level, such as 0.9.
    pub interval_level: f64,
    /// Balanced's share of the way from the point to the upper bound.
    pub headroom: f64,
    /// Cost of one unit of load not provisioned for.
    pub under_cost: f64,
    /// Cost of one unit of load provisioned and unused.
    pub over_cost: f64,
}

/// Returns the load `strategy` provisions for at `point`.
pub fn provision_load(strategy: Strategy, point: &ForecastPoint, inputs: &StrategyInputs) -> f64 {
    let upside = (point.upper - point.load).max(0.0);
    let load = match strategy {
        Strategy::Conservative => point.load + upside,
        Strategy::Balanced | Strategy::EventDriven => {
            point.load + inputs.headroom.clamp(0.0, 1.0) * upside
        }
        Strategy::Aggressive => point.load,
        Strategy::MlOptimised => {
            let z_interval = normal_quantile((1.0 + inputs.interval_level.clamp(0.0, 0.999)) / 2.0);
            let sigma = if z_interval > 0.0 {
                upside / z_interval
            } else {
                0.0
            };
            point.load + sigma * normal_quantile(critical_ratio(inputs))
        }
    };
    load.max(0.0)
}

/// Returns the newsvendor critical ratio `c_under / (c_under + c_over)`, 0.5 when both are 0.
pub fn critical_ratio(inputs: &StrategyInputs) -> f64 {
    let total = inputs.under_cost + inputs.over_cost;
    if total > 0.0 {
        (inputs.under_cost / total).clamp(0.0, 1.0)
    } else {
        0.5
    }
}

/// Returns the standard normal CDF, through the error function.
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * (1.0 + erf(x / std::f64::consts::SQRT_2))
}

/// Returns `x` with `normal_cdf(x) = p`, by bisection on `[-8, 8]` (to about 1e-7: finer than
/// the error function it inverts). `p` at or beyond 0 or 1 gives ∓8.
pub fn normal_quantile(p: f64) -> f64 {
    let (mut lo, mut hi) = (-8.0_f64, 8.0_f64);
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if normal_cdf(mid) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Returns the error function, by Abramowitz and Stegun's formula 7.1.26 (absolute error
/// below 1.5e-7).
fn erf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let y = 1.0 - poly * (-x * x).exp();
    if x >= 0.0 {
        y
    } else {
        -y
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point() -> ForecastPoint {
        ForecastPoint {
            horizon_s: 45,
            load: 1000.0,
            lower: 671.0,
            upper: 1329.0,
        }
    }

    fn inputs(under_cost: f64, over_cost: f64) -> StrategyInputs {
        StrategyInputs {
            interval_level: 0.9,
            headroom: 0.5,
            under_cost,
            over_cost,
        }
    }

    #[test]
    fn fixed_strategies_pick_upper_halfway_and_point() {
        let i = inputs(4.0, 1.0);
        assert_eq!(provision_load(Strategy::Conservative, &point(), &i), 1329.0);
        // 1000 + 0.5 × 329 = 1164.5
        assert_eq!(provision_load(Strategy::Balanced, &point(), &i), 1164.5);
        assert_eq!(provision_load(Strategy::EventDriven, &point(), &i), 1164.5);
        assert_eq!(provision_load(Strategy::Aggressive, &point(), &i), 1000.0);
    }

    #[test]
    fn ml_optimised_picks_the_critical_ratio_quantile() {
        // σ = 329 / 1.6449 = 200.0; q = 4 / 5 = 0.8, z = 0.8416: 1000 + 168.3 = 1168.3.
        let load = provision_load(Strategy::MlOptimised, &point(), &inputs(4.0, 1.0));
        assert!((load - 1168.3).abs() < 0.2, "{load}");
        // Equal costs: the median, the point itself.
        let median = provision_load(Strategy::MlOptimised, &point(), &inputs(1.0, 1.0));
        assert!((median - 1000.0).abs() < 0.01, "{median}");
        // q = 1 / 5 = 0.2: 1000 − 168.3 = 831.7, below the point: over-provisioning costs more.
        let cheap = provision_load(Strategy::MlOptimised, &point(), &inputs(1.0, 4.0));
        assert!((cheap - 831.7).abs() < 0.2, "{cheap}");
        // q = 0.95 with a 90 % interval is the upper bound exactly: 19 / 20.
        let upper = provision_load(Strategy::MlOptimised, &point(), &inputs(19.0, 1.0));
        assert!((upper - 1329.0).abs() < 0.1, "{upper}");
    }

    #[test]
    fn a_zero_width_interval_provisions_the_point_whatever_the_strategy() {
        let flat = ForecastPoint {
            horizon_s: 45,
            load: 500.0,
            lower: 500.0,
            upper: 500.0,
        };
        for strategy in Strategy::ALL {
            assert_eq!(
                provision_load(strategy, &flat, &inputs(9.0, 1.0)),
                500.0,
                "{strategy}"
            );
        }
    }

    #[test]
    fn the_normal_quantile_inverts_the_cdf_at_textbook_values() {
        assert!((normal_quantile(0.95) - 1.6449).abs() < 1e-3);
        assert!((normal_quantile(0.8) - 0.8416).abs() < 1e-3);
        assert!(normal_quantile(0.5).abs() < 1e-6);
        assert!((normal_cdf(1.96) - 0.975).abs() < 1e-4);
    }

    #[test]
    fn strategies_parse_from_their_kebab_case_names_and_serialise_to_them() {
        for strategy in Strategy::ALL {
            assert_eq!(strategy.as_str().parse::<Strategy>(), Ok(strategy));
            let json = serde_json::to_string(&strategy).expect("serialises");
            assert_eq!(json, format!("\"{}\"", strategy.as_str()));
        }
        assert_eq!(
            "ML_Optimised".parse::<Strategy>(),
            Ok(Strategy::MlOptimised)
        );
        assert_eq!(
            "greedy".parse::<Strategy>(),
            Err(Error::UnknownStrategy("greedy".into()))
        );
        assert_eq!(Strategy::default(), Strategy::Balanced);
    }
}
