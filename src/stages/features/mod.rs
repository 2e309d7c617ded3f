//! Feature windows: market activity and service load over event-time tumbling windows.
//!
//! Consumes trades, quotes, bars, market context and pod metrics; produces, for every window
//! `[s, s + W)` with `s` a multiple of `W`, one [`WindowClosed`]: the market's summary
//! ([`MarketWindow`]) and one [`FeatureVector`] per declared service, in the order the services
//! were given. Keeps the open windows (a small ring addressed by window index), the watermark
//! and the values carried from window to window (last price, volatility index, last traced
//! load).
//!
//! # Guarantees
//! - The watermark is the largest event time seen minus `allowed_lateness_s`; a window is
//!   emitted once the watermark reaches its end, and windows are emitted in order.
//! - Every window from the first event's to the last event's is emitted, empty ones too (a
//!   market load of 0 and the last price carried), except inside gaps longer than `max_gap_s`;
//!   [`FeatureWindows::finish`] flushes the rest.
//! - An event whose window is already closed is late. It is never dropped: it is counted in
//!   `late_events` of the next window emitted and in [`FeatureWindows::late_events`], and its
//!   counts, notional and load go into that window (the oldest still open). Its price does not
//!   move that window's last price or range.
//! - The same events give the same windows whatever their order within the allowed lateness
//!   (up to the rounding of floating-point sums such as notional, which follow arrival order).
//!
//! # Load
//! Market services take their load from [`LoadModel::load`]; services named in `traced` take
//! the mean of the [`PodMetrics`] loads in the window, carrying the last mean when a window has
//! none (0 before the first sample).
//!
//! # Caveats
//! - A bar counts at its start time for the watermark; its estimated trades and notional are
//!   spread evenly over the windows it overlaps, and its close, high and low go to the window
//!   holding its last instant.
//! - A window's price comes from its trades; a window with quotes only takes the last quote mid.
//! - A stretch longer than `max_gap_s` without any event is skipped: the windows open before it
//!   are emitted, the empty ones inside it are not (they are counted), and windows resume at the
//!   next event. The readers refuse timestamps that cannot be real (before 1970, after tomorrow).
//! - Market context (the VIX) does not open windows or move the watermark; a level applies to
//!   the windows emitted after it arrives.
//! - `volatility` is a range (Parkinson) estimate from one window's high and low, annualised over
//!   a calendar year: noisy per window, meant as a load input rather than a risk figure.

mod ring;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::events::{
    Bar, ContextKind, FeatureVector, MarketContext, PodMetrics, QuoteTick, TradeTick,
};
use crate::load::LoadModel;
use crate::topology::ServiceSpec;
use ring::{Ring, Slot};

/// Seconds in a calendar year, the annualisation of window volatility.
pub const SECONDS_PER_YEAR: f64 = 365.25 * 86_400.0;

const US_PER_S: i64 = 1_000_000;

/// How windows are cut.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeatureConfig {
    /// Window length in seconds (default 15). Values below 1 are taken as 1.
    pub window_s: i64,
    /// How far behind the latest event time an event may arrive and still count in its own
    /// window, in seconds (default 2). Negative values are taken as 0.
    pub allowed_lateness_s: i64,
    /// A stretch of event time longer than this with no event, in seconds, is skipped: no empty
    /// windows are emitted inside it (default 6 hours: overnight and weekend closes, gaps in a
    /// recording). Values below the window length are taken as the window length.
    pub max_gap_s: i64,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        Self {
            window_s: 15,
            allowed_lateness_s: 2,
            max_gap_s: 6 * 3600,
        }
    }
}

/// What the market did over one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarketWindow {
    pub start_us: i64,
    pub end_us: i64,
    /// Trades, plus the rounded number estimated from bars.
    pub trade_count: i64,
    pub quote_count: i64,
    /// Trades (including bar estimates) plus quotes per second.
    pub tick_rate: f64,
    /// Trades (including bar estimates) per second.
    pub trade_rate: f64,
    /// Traded notional per second.
    pub notional_rate: f64,
    /// Last price in the window, or the last known price (0 before any).
    pub last_price: f64,
    /// Log return of `last_price` against the previous window's; 0 without a price change.
    pub log_return: f64,
    pub high: f64,
    pub low: f64,
    /// Annualised range volatility of the window, a fraction (0.2 is 20 %).
    pub volatility: f64,
    /// Mean quoted spread in basis points, when quotes were seen.
    pub spread_bps: Option<f64>,
    /// Latest volatility index level seen, if any.
    pub vix: Option<f64>,
    /// Late events counted in this window.
    pub late_events: i64,
}

impl MarketWindow {
    /// Returns a window with no activity and no price.
    pub fn empty(start_us: i64, end_us: i64) -> Self {
        Self {
            start_us,
            end_us,
            trade_count: 0,
            quote_count: 0,
            tick_rate: 0.0,
            trade_rate: 0.0,
            notional_rate: 0.0,
            last_price: 0.0,
            log_return: 0.0,
            high: 0.0,
            low: 0.0,
            volatility: 0.0,
            spread_bps: None,
            vix: None,
            late_events: 0,
        }
    }
}

/// One emitted window: the market summary and one feature vector per service.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowClosed {
    pub market: MarketWindow,
    /// One per service, in the order the services were given.
    pub features: Vec<FeatureVector>,
}

/// Values carried from one emitted window to the next.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Carry {
    last_price: Option<f64>,
    vix: Option<f64>,
    /// Per traced service: the last window's mean load.
    traced_load: Vec<f64>,
    /// Per traced service: where its samples came from.
    traced_source: Vec<String>,
}

/// The feature-window stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FeatureWindows {
    model: LoadModel,
    services: Vec<ServiceSpec>,
    /// Service name to its position among the traced services.
    traced: BTreeMap<String, usize>,
    /// Per service: its position among the traced services, if traced.
    traced_pos: Vec<Option<usize>>,
    window_us: i64,
    lateness_us: i64,
    max_gap_us: i64,
    ring: Ring,
    started: bool,
    emitted_any: bool,
    max_ts: i64,
    /// Lowest window index not yet emitted.
    next_emit: i64,
    /// Highest window index any event touched.
    max_idx: i64,
    carry: Carry,
    late_total: u64,
    unmatched_workload: u64,
    /// Windows not emitted because they fell inside a skipped gap.
    skipped_windows: u64,
}

impl FeatureWindows {
    /// Builds the stage for `services`; those named in `traced` take their load from pod
    /// metrics, the others from `model`.
    pub fn new(
        config: FeatureConfig,
        services: Vec<ServiceSpec>,
        traced: BTreeSet<String>,
        model: LoadModel,
    ) -> Self {
        let window_s = config.window_s.max(1);
        let lateness_s = config.allowed_lateness_s.max(0);
        let traced: BTreeMap<String, usize> = traced
            .into_iter()
            .enumerate()
            .map(|(i, s)| (s, i))
            .collect();
        let traced_pos = services
            .iter()
            .map(|s| traced.get(&s.name).copied())
            .collect();
        let ring_len = (lateness_s / window_s + 3) as usize;
        let carry = Carry {
            traced_load: vec![0.0; traced.len()],
            traced_source: vec!["trace".to_string(); traced.len()],
            ..Carry::default()
        };
        Self {
            model,
            ring: Ring::new(ring_len, traced.len()),
            services,
            traced,
            traced_pos,
            window_us: window_s * US_PER_S,
            lateness_us: lateness_s * US_PER_S,
            max_gap_us: config.max_gap_s.max(window_s).saturating_mul(US_PER_S),
            started: false,
            emitted_any: false,
            max_ts: i64::MIN,
            next_emit: 0,
            max_idx: 0,
            carry,
            late_total: 0,
            unmatched_workload: 0,
            skipped_windows: 0,
        }
    }

    /// Builds a stage with no services, for consumers that only want [`MarketWindow`]s (the
    /// regime detector).
    pub fn market_only(config: FeatureConfig, model: LoadModel) -> Self {
        Self::new(config, Vec::new(), BTreeSet::new(), model)
    }

    /// Takes one trade.
    #[inline]
    pub fn on_trade(&mut self, t: &TradeTick, out: &mut Vec<WindowClosed>) {
        let (idx, late) = self.place(t.ts_us, out);
        let slot = self.ring.get(idx);
        slot.trades += 1;
        slot.notional += t.price * t.size;
        if !late {
            slot.prices.add(t.ts_us, t.price);
        }
    }

    /// Takes one best bid and ask update.
    pub fn on_quote(&mut self, q: &QuoteTick, out: &mut Vec<WindowClosed>) {
        let (idx, late) = self.place(q.ts_us, out);
        let slot = self.ring.get(idx);
        slot.quotes += 1;
        let mid = 0.5 * (q.bid_price + q.ask_price);
        if !late && mid > 0.0 && q.ask_price >= q.bid_price {
            slot.spread_bps_sum += (q.ask_price - q.bid_price) / mid * 1e4;
            slot.spread_count += 1;
            slot.mids.add(q.ts_us, mid);
        }
    }

    /// Takes one bar, spreading its estimated trades and notional over the windows it covers.
    pub fn on_bar(&mut self, b: &Bar, out: &mut Vec<WindowClosed>) {
        let (idx, late) = self.place(b.ts_us, out);
        let trades = self.model.bar_trades(b.volume);
        let notional = b.volume.unwrap_or(0.0).max(0.0);
        let bar_us = b.interval_s.max(0) * US_PER_S;
        if late || bar_us == 0 {
            let slot = self.ring.get(idx);
            slot.bar_trades += trades;
            slot.notional += notional;
            if !late {
                bar_prices(slot, b.ts_us, b);
            }
            return;
        }
        self.spread_bar(b, trades, notional, bar_us);
    }

    /// Takes market context: a volatility index level is carried into the windows emitted
    /// from now on. Context neither opens windows nor moves the watermark: a daily index over
    /// decades beside one day of ticks must not make decades of windows.
    pub fn on_context(&mut self, c: &MarketContext, _out: &mut Vec<WindowClosed>) {
        if let (ContextKind::VolatilityIndex, Some(level)) = (c.kind, c.value) {
            self.carry.vix = Some(level);
        }
    }

    /// Takes one workload sample; samples for services not traced move the watermark only.
    pub fn on_workload(&mut self, m: &PodMetrics, out: &mut Vec<WindowClosed>) {
        let (idx, _) = self.place(m.ts_us, out);
        let Some(&pos) = self.traced.get(&m.service) else {
            self.unmatched_workload += 1;
            return;
        };
        if self.carry.traced_source[pos] != m.source {
            self.carry.traced_source[pos].clone_from(&m.source);
        }
        let slot = self.ring.get(idx);
        slot.loads[pos].0 += m.load;
        slot.loads[pos].1 += 1;
    }

    /// Ends the input: emits every window still open.
    pub fn finish(&mut self, out: &mut Vec<WindowClosed>) {
        if !self.started {
            return;
        }
        while self.next_emit <= self.max_idx {
            self.emit(out);
        }
    }

    /// Returns how many late events were seen in total.
    pub fn late_events(&self) -> u64 {
        self.late_total
    }

    /// Returns how many empty windows were skipped inside gaps longer than `max_gap_s`.
    pub fn skipped_windows(&self) -> u64 {
        self.skipped_windows
    }

    /// Returns how many workload samples named a service that is not traced.
    pub fn unmatched_workload(&self) -> u64 {
        self.unmatched_workload
    }

    /// Moves the watermark to `ts` and returns the window index the event's data goes to, and
    /// whether the event is late (then the index is the oldest open window's).
    #[inline]
    fn place(&mut self, ts: i64, out: &mut Vec<WindowClosed>) -> (i64, bool) {
        let idx = ts.div_euclid(self.window_us);
        if !self.started {
            self.started = true;
            self.max_ts = ts;
            self.next_emit = idx;
            self.max_idx = idx;
        } else if ts > self.max_ts {
            if ts - self.max_ts > self.max_gap_us {
                self.skip_gap(idx, out);
            }
            self.max_ts = ts;
            self.close_through(ts.saturating_sub(self.lateness_us), out);
        }

        if idx < self.next_emit {
            let closable = (idx + 1) * self.window_us <= self.max_ts - self.lateness_us;
            if self.emitted_any || closable {
                self.late_total += 1;
                let oldest = self.next_emit;
                self.ring.get(oldest).late += 1;
                return (oldest, true);
            }
            // Nothing emitted yet: an early event within the lateness widens the first window.
            self.next_emit = idx;
            self.ring.ensure_len(self.max_idx - idx + 1, idx);
        }
        if idx > self.max_idx {
            self.touch(idx);
        }
        (idx, false)
    }

    /// Emits the windows still open, then moves on to window `idx` without emitting the empty
    /// windows between them.
    fn skip_gap(&mut self, idx: i64, out: &mut Vec<WindowClosed>) {
        while self.next_emit <= self.max_idx {
            self.emit(out);
        }
        self.skipped_windows += (idx - self.next_emit).max(0) as u64;
        self.next_emit = idx;
        self.max_idx = idx;
    }

    /// Marks window `idx` as touched, growing the ring when the open range outgrows it.
    #[inline]
    fn touch(&mut self, idx: i64) {
        if idx > self.max_idx {
            self.max_idx = idx;
            if idx - self.next_emit + 1 > self.ring.len() as i64 {
                self.ring
                    .ensure_len(idx - self.next_emit + 1, self.next_emit);
            }
        }
    }

    /// Emits every window whose end is at or before `watermark`.
    fn close_through(&mut self, watermark: i64, out: &mut Vec<WindowClosed>) {
        while (self.next_emit + 1) * self.window_us <= watermark {
            self.emit(out);
        }
    }

    /// Spreads one on-time bar's trades and notional over the windows it overlaps.
    fn spread_bar(&mut self, b: &Bar, trades: f64, notional: f64, bar_us: i64) {
        let end = b.ts_us + bar_us;
        let last_idx = (end - 1).div_euclid(self.window_us);
        self.touch(last_idx);
        let mut start = b.ts_us;
        while start < end {
            let idx = start.div_euclid(self.window_us);
            let window_end = ((idx + 1) * self.window_us).min(end);
            let share = (window_end - start) as f64 / bar_us as f64;
            let slot = self.ring.get(idx);
            slot.bar_trades += trades * share;
            slot.notional += notional * share;
            if idx == last_idx {
                bar_prices(slot, end - 1, b);
            }
            start = window_end;
        }
    }

    /// Emits window `next_emit` and advances it.
    fn emit(&mut self, out: &mut Vec<WindowClosed>) {
        let idx = self.next_emit;
        let start_us = idx * self.window_us;
        let mut market = MarketWindow::empty(start_us, start_us + self.window_us);
        let means = match self.ring.take(idx) {
            Some(slot) => fill_market(&mut market, slot, &mut self.carry),
            None => {
                fill_empty(&mut market, &self.carry);
                Vec::new()
            }
        };
        for (pos, mean) in means.into_iter().enumerate() {
            if let Some(mean) = mean {
                self.carry.traced_load[pos] = mean;
            }
        }
        let features = self.features(&market);
        out.push(WindowClosed { market, features });
        self.next_emit += 1;
        self.emitted_any = true;
    }

    /// Builds one feature vector per service for a closed window.
    fn features(&self, market: &MarketWindow) -> Vec<FeatureVector> {
        let services = self.services.iter().zip(&self.traced_pos);
        services
            .map(|(spec, traced)| {
                let (load, load_source) = match traced {
                    Some(pos) => (
                        self.carry.traced_load[*pos],
                        self.carry.traced_source[*pos].clone(),
                    ),
                    None => (self.model.load(spec.kind, market), "market".to_string()),
                };
                FeatureVector {
                    id: format!("features/{}/{}", spec.name, market.start_us),
                    service: spec.name.clone(),
                    window_start_us: market.start_us,
                    window_end_us: market.end_us,
                    trade_count: market.trade_count,
                    quote_count: market.quote_count,
                    tick_rate: market.tick_rate,
                    notional_rate: market.notional_rate,
                    last_price: market.last_price,
                    log_return: market.log_return,
                    spread_bps: market.spread_bps,
                    vix: market.vix,
                    load,
                    load_source,
                    late_events: market.late_events,
                    regime: None,
                    market_time_us: None,
                    context: Vec::new(),
                }
            })
            .collect()
    }
}

/// Records a bar's close, high and low in the window holding time `ts`.
fn bar_prices(slot: &mut Slot, ts: i64, b: &Bar) {
    slot.prices.add(ts, b.high);
    slot.prices.add(ts, b.low);
    slot.prices.add(ts, b.close);
}

/// Fills `market` from a window's sums and the carried values; returns each traced service's
/// mean load in the window, when it had samples.
fn fill_market(market: &mut MarketWindow, slot: &Slot, carry: &mut Carry) -> Vec<Option<f64>> {
    let seconds = (market.end_us - market.start_us) as f64 / US_PER_S as f64;
    let trades = slot.trades as f64 + slot.bar_trades;
    market.trade_count = slot.trades + slot.bar_trades.round() as i64;
    market.quote_count = slot.quotes;
    market.trade_rate = trades / seconds;
    market.tick_rate = (trades + slot.quotes as f64) / seconds;
    market.notional_rate = slot.notional / seconds;
    market.late_events = slot.late;
    if slot.spread_count > 0 {
        market.spread_bps = Some(slot.spread_bps_sum / f64::from(slot.spread_count));
    }
    if slot.vix.is_some() {
        carry.vix = slot.vix;
    }
    market.vix = carry.vix;

    // Trades set the price; a window with quotes only takes their mid.
    let range = |p: &ring::PriceRange| p.seen.then_some((p.last, p.high, p.low));
    let prices = range(&slot.prices).or_else(|| range(&slot.mids));
    if let Some((last, high, low)) = prices {
        if let Some(prev) = carry.last_price.filter(|p| *p > 0.0) {
            if last > 0.0 {
                market.log_return = (last / prev).ln();
            }
        }
        market.last_price = last;
        market.high = high;
        market.low = low;
        market.volatility = range_volatility(high, low, seconds);
        carry.last_price = Some(last);
    } else {
        fill_empty(market, carry);
    }
    let mean = |&(sum, n): &(f64, u32)| (n > 0).then(|| sum / f64::from(n));
    slot.loads.iter().map(mean).collect()
}

/// Fills the prices of a window that saw none from the carried last price.
fn fill_empty(market: &mut MarketWindow, carry: &Carry) {
    let price = carry.last_price.unwrap_or(0.0);
    market.last_price = price;
    market.high = price;
    market.low = price;
    if market.vix.is_none() {
        market.vix = carry.vix;
    }
}

/// Returns the Parkinson range volatility of one window, annualised over a calendar year.
fn range_volatility(high: f64, low: f64, seconds: f64) -> f64 {
    if high <= 0.0 || low <= 0.0 || seconds <= 0.0 {
        return 0.0;
    }
    let range = (high / low).ln();
    let variance = range * range / (4.0 * std::f64::consts::LN_2);
    (variance * SECONDS_PER_YEAR / seconds).sqrt()
}
