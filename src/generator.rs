//! The built-in market generator: a synthetic trading day for `tickscale run` with no inputs.
//!
//! Produces trades, quotes and market context for one symbol, in event-time order, from a seed:
//! the same config gives the same events on every platform (ChaCha8). Keeps the clock, the mid
//! price, a GARCH(1,1) variance and the context events still to emit.
//!
//! # The day
//! - Arrivals are Poisson with a rate that is constant within each second:
//!   `base_rate × profile × stress`. In session, `profile = 1 + (open_factor − 1)·e^(−τ/decay)
//!   + (close_factor − 1)·e^(−τ'/decay)`, with `τ` the time since the 09:30 open and `τ'` the
//!   time to the 16:00 close (a U shape); outside the session it is `outside_session_factor`.
//! - The mid price moves every second by `drift + σ·z`, with `σ² = h / 60` from a per-minute
//!   GARCH(1,1) variance `h ← ω + α·R² + β·h` (`R` the last minute's return; `ω` set so that the
//!   long-run volatility is `annual_volatility` over a 252-day, 6.5-hour trading year).
//! - One stress episode: from `stress_start_s` for `stress_duration_s`, volatility × 4, rate × 5
//!   and a drift that takes `stress_drop` (3 %) off the price; the spread triples. The overlay
//!   does not feed the GARCH recursion, so volatility falls back when the episode ends.
//! - Context: a VIX level at the start, `SessionOpen` at 09:30 and `SessionClose` at 16:00.
//!
//! With the defaults (2024-03-05, 09:00 to 17:00 New York) the day holds about 280,000 events (seed 7: 280,419).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::events::{ContextKind, MarketContext, QuoteTick, Side, TradeTick};

const US_PER_S: i64 = 1_000_000;
/// Seconds in a trading year (252 sessions of 6.5 hours), the generator's volatility unit.
const TRADING_SECONDS_PER_YEAR: f64 = 252.0 * 23_400.0;

/// Why a generator config is unusable; none is worth retrying.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Error {
    #[error("invalid generator config: {field} must be {expected}, got {value}")]
    InvalidConfig {
        field: &'static str,
        expected: &'static str,
        value: f64,
    },
}

/// What the synthetic day looks like.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GeneratorConfig {
    /// Seed of the random stream (default 7).
    pub seed: u64,
    /// Symbol of every event (default `SYN`).
    pub symbol: String,
    /// Venue of every tick (default `SIM`).
    pub venue: String,
    /// Start of the day, µs since the epoch (default 2024-03-05 09:00 New York, a Tuesday).
    pub start_us: i64,
    /// Length of the day in seconds (default 28,800: 09:00 to 17:00).
    pub duration_s: i64,
    /// Session open, seconds after the start (default 1,800: 09:30).
    pub session_open_s: i64,
    /// Session close, seconds after the start (default 25,200: 16:00).
    pub session_close_s: i64,
    /// Events per second at midday (default 8).
    pub base_rate: f64,
    /// Share of events that are trades; the rest are quotes (default 0.3).
    pub trade_share: f64,
    /// Rate multiplier outside the session (default 0.1).
    pub outside_session_factor: f64,
    /// Rate multiplier right at the open (default 5).
    pub open_factor: f64,
    /// Rate multiplier right before the close (default 4).
    pub close_factor: f64,
    /// Time constant of the open's decay and the close's build-up, seconds (default 900).
    pub profile_decay_s: f64,
    /// Mid price at the start (default 100).
    pub start_price: f64,
    /// Long-run annualised volatility over trading time (default 0.2).
    pub annual_volatility: f64,
    /// GARCH weight of the last minute's squared return (default 0.06).
    pub garch_alpha: f64,
    /// GARCH weight of the last variance (default 0.93).
    pub garch_beta: f64,
    /// Quoted spread in basis points outside the stress episode (default 1).
    pub spread_bps: f64,
    /// Stress episode start, seconds after the start (default 14,400: 13:00).
    pub stress_start_s: i64,
    /// Stress episode length in seconds (default 1,200).
    pub stress_duration_s: i64,
    /// Volatility multiplier during the episode (default 4).
    pub stress_vol_factor: f64,
    /// Rate multiplier during the episode (default 5).
    pub stress_rate_factor: f64,
    /// Share of the price the episode's drift removes (default 0.03).
    pub stress_drop: f64,
    /// VIX level announced at the start (default 15).
    pub vix: f64,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        Self {
            seed: 7,
            symbol: "SYN".to_string(),
            venue: "SIM".to_string(),
            start_us: 1_709_647_200 * US_PER_S,
            duration_s: 28_800,
            session_open_s: 1_800,
            session_close_s: 25_200,
            base_rate: 8.0,
            trade_share: 0.3,
            outside_session_factor: 0.1,
            open_factor: 5.0,
            close_factor: 4.0,
            profile_decay_s: 900.0,
            start_price: 100.0,
            annual_volatility: 0.2,
            garch_alpha: 0.06,
            garch_beta: 0.93,
            spread_bps: 1.0,
            stress_start_s: 14_400,
            stress_duration_s: 1_200,
            stress_vol_factor: 4.0,
            stress_rate_factor: 5.0,
            stress_drop: 0.03,
            vix: 15.0,
        }
    }
}

impl GeneratorConfig {
    /// Checks the values a generator cannot run with.
    ///
    /// # Errors
    /// Returns [`Error::InvalidConfig`] naming the first bad field.
    pub fn validate(&self) -> Result<(), Error> {
        let check = |ok: bool, field, expected, value: f64| match ok {
            true => Ok(()),
            false => Err(Error::InvalidConfig {
                field,
                expected,
                value,
            }),
        };
        check(
            self.duration_s > 0,
            "duration_s",
            "positive",
            self.duration_s as f64,
        )?;
        check(
            self.base_rate > 0.0,
            "base_rate",
            "positive",
            self.base_rate,
        )?;
        let share = (0.0..=1.0).contains(&self.trade_share);
        check(share, "trade_share", "between 0 and 1", self.trade_share)?;
        check(
            self.start_price > 0.0,
            "start_price",
            "positive",
            self.start_price,
        )?;
        let persistence = self.garch_alpha + self.garch_beta;
        let stationary = self.garch_alpha >= 0.0 && self.garch_beta >= 0.0 && persistence < 1.0;
        check(
            stationary,
            "garch_alpha + garch_beta",
            "below 1",
            persistence,
        )?;
        let drop = (0.0..1.0).contains(&self.stress_drop);
        check(drop, "stress_drop", "in [0, 1)", self.stress_drop)
    }

    /// Returns the designed event rate, per second, at `t_us`.
    pub fn rate_at(&self, t_us: i64) -> f64 {
        let t = (t_us - self.start_us) as f64 / US_PER_S as f64;
        let (open, close) = (self.session_open_s as f64, self.session_close_s as f64);
        let profile = if t >= open && t < close {
            let decay = self.profile_decay_s.max(1.0);
            1.0 + (self.open_factor - 1.0) * (-(t - open) / decay).exp()
                + (self.close_factor - 1.0) * (-(close - t) / decay).exp()
        } else {
            self.outside_session_factor
        };
        let stress = if self.in_stress(t) {
            self.stress_rate_factor
        } else {
            1.0
        };
        self.base_rate * profile * stress
    }

    fn in_stress(&self, t_s: f64) -> bool {
        let start = self.stress_start_s as f64;
        t_s >= start && t_s < start + self.stress_duration_s as f64
    }
}

/// One generated event.
#[derive(Debug, Clone, PartialEq)]
pub enum GeneratedEvent {
    Trade(TradeTick),
    Quote(QuoteTick),
    Context(MarketContext),
}

impl GeneratedEvent {
    /// Returns the event time, µs since the epoch.
    pub fn ts_us(&self) -> i64 {
        match self {
            Self::Trade(t) => t.ts_us,
            Self::Quote(q) => q.ts_us,
            Self::Context(c) => c.ts_us,
        }
    }
}

/// The synthetic day, as an iterator over events in time order.
#[derive(Debug, Clone)]
pub struct MarketGenerator {
    config: GeneratorConfig,
    rng: ChaCha8Rng,
    end_us: i64,
    /// Time the arrival process has reached.
    clock_us: i64,
    /// The next tick's time, once drawn; `None` after the end of the day.
    next_tick: Option<i64>,
    /// Second (since the start) the mid price is valid for.
    price_second: i64,
    log_mid: f64,
    /// Per-minute GARCH variance.
    variance: f64,
    minute_return: f64,
    /// Context events still to emit, latest first.
    context: Vec<MarketContext>,
}

impl MarketGenerator {
    /// Builds the generator for `config`.
    ///
    /// # Errors
    /// Returns [`Error::InvalidConfig`] when the config fails [`GeneratorConfig::validate`].
    pub fn new(config: GeneratorConfig) -> Result<Self, Error> {
        config.validate()?;
        let at = |s: i64| config.start_us + s * US_PER_S;
        let context = |ts_us, kind, name: &str, value| MarketContext {
            ts_us,
            kind,
            name: name.to_string(),
            value,
        };
        let mut pending = vec![
            context(at(0), ContextKind::VolatilityIndex, "VIX", Some(config.vix)),
            context(
                at(config.session_open_s),
                ContextKind::SessionOpen,
                "NYSE open",
                None,
            ),
            context(
                at(config.session_close_s),
                ContextKind::SessionClose,
                "NYSE close",
                None,
            ),
        ];
        let end_us = at(config.duration_s);
        pending.retain(|c| c.ts_us < end_us);
        pending.sort_by_key(|c| std::cmp::Reverse(c.ts_us));

        let long_run = config.annual_volatility.powi(2) * 60.0 / TRADING_SECONDS_PER_YEAR;
        Ok(Self {
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            end_us,
            clock_us: config.start_us,
            next_tick: None,
            price_second: 0,
            log_mid: config.start_price.ln(),
            variance: long_run,
            minute_return: 0.0,
            context: pending,
            config,
        })
    }

    /// Returns the config the generator runs.
    pub fn config(&self) -> &GeneratorConfig {
        &self.config
    }

    /// Draws the next arrival after the clock: exponential gaps at the rate of the current
    /// second, restarted at each second boundary (exact for a rate constant within a second).
    fn draw_arrival(&mut self) -> Option<i64> {
        let mut t = self.clock_us;
        while t < self.end_us {
            let second_end = (t.div_euclid(US_PER_S) + 1) * US_PER_S;
            let rate = self.config.rate_at(t);
            let gap_s = match Exp::new(rate) {
                Ok(exp) if rate > 0.0 => exp.sample(&mut self.rng),
                _ => f64::INFINITY,
            };
            let arrival = t as f64 + gap_s * US_PER_S as f64;
            if arrival < second_end as f64 {
                self.clock_us = (arrival as i64).max(t);
                return (self.clock_us < self.end_us).then_some(self.clock_us);
            }
            t = second_end;
        }
        self.clock_us = self.end_us;
        None
    }

    /// Moves the mid price forward, one second at a time, up to the second holding `t_us`.
    fn advance_price(&mut self, t_us: i64) {
        let target = (t_us - self.config.start_us).div_euclid(US_PER_S);
        let c = &self.config;
        let long_run = c.annual_volatility.powi(2) * 60.0 / TRADING_SECONDS_PER_YEAR;
        let omega = long_run * (1.0 - c.garch_alpha - c.garch_beta);
        let stress_drift = (1.0 - c.stress_drop).ln() / c.stress_duration_s.max(1) as f64;
        while self.price_second < target {
            self.price_second += 1;
            let stressed = c.in_stress(self.price_second as f64);
            let (drift, vol_factor) = match stressed {
                true => (stress_drift, c.stress_vol_factor),
                false => (0.0, 1.0),
            };
            let z: f64 = StandardNormal.sample(&mut self.rng);
            let r = drift + (self.variance / 60.0).sqrt() * vol_factor * z;
            self.log_mid += r;
            // The stress overlay stays out of the GARCH recursion: fed back at ×4 its shocks
            // would make the variance explode (persistence α·16 + β > 1).
            self.minute_return += (r - drift) / vol_factor;
            if self.price_second % 60 == 0 {
                let shock = self.minute_return * self.minute_return;
                self.variance = omega + c.garch_alpha * shock + c.garch_beta * self.variance;
                self.minute_return = 0.0;
            }
        }
    }

    /// Builds the tick at `t_us`: a trade or a quote around the current mid.
    fn tick(&mut self, t_us: i64) -> GeneratedEvent {
        self.advance_price(t_us);
        let c = &self.config;
        let stressed = c.in_stress((t_us - c.start_us) as f64 / US_PER_S as f64);
        let spread = c.spread_bps * if stressed { 3.0 } else { 1.0 } * 1e-4;
        let mid = self.log_mid.exp();
        let (bid, ask) = (mid * (1.0 - spread / 2.0), mid * (1.0 + spread / 2.0));
        let lots = |rng: &mut ChaCha8Rng| 100.0 * f64::from(rng.random_range(1..=10u32));
        if self.rng.random::<f64>() < c.trade_share {
            let buy = self.rng.random::<bool>();
            return GeneratedEvent::Trade(TradeTick {
                symbol: c.symbol.clone(),
                venue: c.venue.clone(),
                ts_us: t_us,
                price: round_cents(if buy { ask } else { bid }),
                size: lots(&mut self.rng),
                side: if buy { Side::Buy } else { Side::Sell },
            });
        }
        let (bid_size, ask_size) = (lots(&mut self.rng), lots(&mut self.rng));
        GeneratedEvent::Quote(QuoteTick {
            symbol: c.symbol.clone(),
            venue: c.venue.clone(),
            ts_us: t_us,
            bid_price: round_cents(bid),
            bid_size,
            ask_price: round_cents(ask).max(round_cents(bid) + 0.01),
            ask_size,
        })
    }
}

fn round_cents(price: f64) -> f64 {
    (price * 100.0).round() / 100.0
}

impl Iterator for MarketGenerator {
    type Item = GeneratedEvent;

    fn next(&mut self) -> Option<GeneratedEvent> {
        if self.next_tick.is_none() {
            self.next_tick = self.draw_arrival();
        }
        let context_due = match (self.context.last(), self.next_tick) {
            (Some(c), Some(tick)) => c.ts_us <= tick,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if context_due {
            return self.context.pop().map(GeneratedEvent::Context);
        }
        let tick = self.next_tick.take()?;
        Some(self.tick(tick))
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Datelike, TimeZone, Timelike, Weekday};
    use chrono_tz::America::New_York;

    use super::*;

    fn day(seed: u64) -> Vec<GeneratedEvent> {
        let config = GeneratorConfig {
            seed,
            ..GeneratorConfig::default()
        };
        MarketGenerator::new(config)
            .expect("valid config")
            .collect()
    }

    fn new_york(ts_us: i64) -> chrono::DateTime<chrono_tz::Tz> {
        New_York
            .timestamp_micros(ts_us)
            .single()
            .expect("a valid instant")
    }

    /// Returns µs since the epoch of a New York wall-clock time on the default day.
    fn at(hour: u32, minute: u32) -> i64 {
        New_York
            .with_ymd_and_hms(2024, 3, 5, hour, minute, 0)
            .single()
            .expect("unambiguous")
            .timestamp_micros()
    }

    fn ticks_between(events: &[GeneratedEvent], from: i64, to: i64) -> f64 {
        let is_tick = |e: &&GeneratedEvent| !matches!(e, GeneratedEvent::Context(_));
        let inside = |e: &&GeneratedEvent| e.ts_us() >= from && e.ts_us() < to;
        events.iter().filter(is_tick).filter(inside).count() as f64
    }

    /// The designed mean rate over `[from, to)`, integrated second by second.
    fn designed(config: &GeneratorConfig, from: i64, to: i64) -> f64 {
        let seconds = (to - from) / US_PER_S;
        let sum: f64 = (0..seconds)
            .map(|s| config.rate_at(from + s * US_PER_S))
            .sum();
        sum / seconds as f64
    }

    #[test]
    fn the_default_day_starts_on_a_weekday_at_nine_in_new_york() {
        let start = new_york(GeneratorConfig::default().start_us);
        assert_eq!(start.weekday(), Weekday::Tue);
        assert_eq!((start.hour(), start.minute()), (9, 0));
    }

    #[test]
    fn the_same_seed_gives_the_same_events_and_another_seed_differs() {
        let first: Vec<_> = day(42).into_iter().take(10_000).collect();
        let again: Vec<_> = day(42).into_iter().take(10_000).collect();
        let other: Vec<_> = day(43).into_iter().take(10_000).collect();
        assert_eq!(first.len(), 10_000);
        assert_eq!(first, again);
        assert_ne!(first, other);
    }

    #[test]
    fn the_day_is_in_time_order_with_sessions_marked_and_a_few_hundred_thousand_events() {
        let events = day(7);
        let config = GeneratorConfig::default();
        assert!(events.windows(2).all(|p| p[0].ts_us() <= p[1].ts_us()));
        let end = config.start_us + config.duration_s * US_PER_S;
        assert!(events
            .iter()
            .all(|e| e.ts_us() >= config.start_us && e.ts_us() < end));
        assert!(
            (200_000..400_000).contains(&events.len()),
            "{} events",
            events.len()
        );

        let contexts: Vec<&MarketContext> = events
            .iter()
            .filter_map(|e| match e {
                GeneratedEvent::Context(c) => Some(c),
                _ => None,
            })
            .collect();
        let kinds: Vec<ContextKind> = contexts.iter().map(|c| c.kind).collect();
        let expected = [
            ContextKind::VolatilityIndex,
            ContextKind::SessionOpen,
            ContextKind::SessionClose,
        ];
        assert_eq!(kinds, expected);
        assert_eq!(contexts[1].ts_us, at(9, 30));
        assert_eq!(contexts[2].ts_us, at(16, 0));
        let trades = events
            .iter()
            .filter(|e| matches!(e, GeneratedEvent::Trade(_)))
            .count();
        let share = trades as f64 / (events.len() - 3) as f64;
        assert!((share - 0.3).abs() < 0.01, "trade share {share}");
    }

    #[test]
    fn the_open_and_the_stress_episode_beat_midday_by_their_designed_factors() {
        let events = day(7);
        let config = GeneratorConfig::default();
        let midday = ticks_between(&events, at(12, 0), at(12, 30)) / 1_800.0;
        let open = ticks_between(&events, at(9, 30), at(10, 0)) / 1_800.0;
        let stress = ticks_between(&events, at(13, 0), at(13, 20)) / 1_200.0;

        let designed_midday = designed(&config, at(12, 0), at(12, 30));
        let designed_open = designed(&config, at(9, 30), at(10, 0)) / designed_midday;
        let designed_stress = designed(&config, at(13, 0), at(13, 20)) / designed_midday;
        // 1 + 4 × (900 / 1800) × (1 − e^−2) ≈ 2.73 over the open half hour; × 5 in stress.
        assert!((designed_open - 2.729).abs() < 0.01, "{designed_open}");
        assert!((designed_stress - 5.0).abs() < 0.01, "{designed_stress}");
        let open_ratio = open / midday;
        let stress_ratio = stress / midday;
        eprintln!("midday {midday:.2}/s, open × {open_ratio:.2}, stress × {stress_ratio:.2}");
        assert!(
            (open_ratio / designed_open - 1.0).abs() < 0.1,
            "open × {open_ratio}"
        );
        assert!(
            (stress_ratio / designed_stress - 1.0).abs() < 0.1,
            "stress × {stress_ratio}"
        );
    }

    fn mid_at(events: &[GeneratedEvent], ts_us: i64) -> f64 {
        let quote = events.iter().find_map(|e| match e {
            GeneratedEvent::Quote(q) if q.ts_us >= ts_us => Some(q),
            _ => None,
        });
        let q = quote.expect("a quote after the time");
        0.5 * (q.bid_price + q.ask_price)
    }

    #[test]
    fn the_stress_episode_drops_the_price_and_raises_volatility() {
        let events = day(7);
        let drop = 1.0 - mid_at(&events, at(13, 20)) / mid_at(&events, at(13, 0));
        eprintln!("stress drop {drop:.4}, {} events in the day", events.len());
        assert!((0.015..0.045).contains(&drop), "drop {drop}");

        // Minute returns of quote mids: stress against the hour before it.
        let minute_vol = |from: i64, minutes: i64| {
            let mids: Vec<f64> = (0..=minutes)
                .map(|m| mid_at(&events, from + m * 60 * US_PER_S).ln())
                .collect();
            let r: Vec<f64> = mids.windows(2).map(|p| p[1] - p[0]).collect();
            (r.iter().map(|x| x * x).sum::<f64>() / r.len() as f64).sqrt()
        };
        let calm = minute_vol(at(12, 0), 60);
        let stressed = minute_vol(at(13, 0), 20);
        eprintln!("minute volatility: stress {stressed:.5}, midday {calm:.5}");
        assert!(stressed > 2.5 * calm, "stress {stressed}, calm {calm}");
    }

    #[test]
    fn an_unstationary_garch_is_refused() {
        let config = GeneratorConfig {
            garch_alpha: 0.2,
            garch_beta: 0.85,
            ..GeneratorConfig::default()
        };
        let error = MarketGenerator::new(config).err();
        assert!(matches!(
            error,
            Some(Error::InvalidConfig {
                field: "garch_alpha + garch_beta",
                ..
            })
        ));
    }
}
