//! The open windows: a power-of-two ring of accumulators addressed by window index.
//!
//! Window `i` covers `[i × W, (i + 1) × W)` and lives in slot `i & mask`; each slot remembers
//! which window it holds, so a slot found holding another index is simply reset. The caller
//! keeps the open range (lowest open index to highest touched index) within the ring's length
//! and calls [`Ring::ensure_len`] before widening it; nothing here allocates per event.

use serde::{Deserialize, Serialize};

/// The sums one window accumulates while it is open.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Slot {
    /// The window index this slot holds; `FREE` when it holds none.
    pub idx: i64,
    pub trades: i64,
    pub quotes: i64,
    /// Trades estimated from bars, fractional because bars are spread over windows.
    pub bar_trades: f64,
    pub notional: f64,
    /// Trade prices (and bar closes).
    pub prices: PriceRange,
    pub spread_bps_sum: f64,
    pub spread_count: u32,
    /// Quote mids, the price of a window that saw no trade.
    pub mids: PriceRange,
    pub vix_ts: i64,
    pub vix: Option<f64>,
    pub late: i64,
    /// Per traced service: (sum of loads, number of samples).
    pub loads: Vec<(f64, u32)>,
}

/// The slot index meaning "holds no window".
pub(super) const FREE: i64 = i64::MIN;

impl Slot {
    fn new(services: usize) -> Self {
        Self {
            idx: FREE,
            trades: 0,
            quotes: 0,
            bar_trades: 0.0,
            notional: 0.0,
            prices: PriceRange::default(),
            spread_bps_sum: 0.0,
            spread_count: 0,
            mids: PriceRange::default(),
            vix_ts: i64::MIN,
            vix: None,
            late: 0,
            loads: vec![(0.0, 0); services],
        }
    }

    /// Empties the slot and gives it to window `idx`, keeping its allocation.
    fn reset(&mut self, idx: i64) {
        self.idx = idx;
        self.trades = 0;
        self.quotes = 0;
        self.bar_trades = 0.0;
        self.notional = 0.0;
        self.prices = PriceRange::default();
        self.spread_bps_sum = 0.0;
        self.spread_count = 0;
        self.mids = PriceRange::default();
        self.vix_ts = i64::MIN;
        self.vix = None;
        self.late = 0;
        self.loads.iter_mut().for_each(|l| *l = (0.0, 0));
    }
}

/// The last price, high and low of a series of prices that may arrive out of order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct PriceRange {
    pub seen: bool,
    pub last_ts: i64,
    pub last: f64,
    pub high: f64,
    pub low: f64,
}

impl PriceRange {
    /// Records a price seen at `ts`: widens the range, and takes the last price if `ts` is newest.
    #[inline]
    pub fn add(&mut self, ts: i64, price: f64) {
        if !self.seen || ts >= self.last_ts {
            self.last_ts = ts;
            self.last = price;
        }
        if !self.seen {
            self.seen = true;
            self.high = price;
            self.low = price;
        } else {
            self.high = self.high.max(price);
            self.low = self.low.min(price);
        }
    }
}

/// A ring of slots whose length is a power of two.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Ring {
    slots: Vec<Slot>,
    services: usize,
}

impl Ring {
    /// Builds a ring holding at least `min_len` windows, each with room for `services` loads.
    pub fn new(min_len: usize, services: usize) -> Self {
        let len = min_len.max(2).next_power_of_two();
        Self {
            slots: (0..len).map(|_| Slot::new(services)).collect(),
            services,
        }
    }

    #[inline]
    fn pos(&self, idx: i64) -> usize {
        // Two's complement makes the mask a floor modulo for negative indices too.
        (idx as u64 & (self.slots.len() as u64 - 1)) as usize
    }

    /// Returns the slot of window `idx`, emptied first if it held another window.
    #[inline]
    pub fn get(&mut self, idx: i64) -> &mut Slot {
        let pos = self.pos(idx);
        let slot = &mut self.slots[pos];
        if slot.idx != idx {
            slot.reset(idx);
        }
        slot
    }

    /// Takes window `idx` out of the ring if it holds it, freeing the slot for reuse.
    pub fn take(&mut self, idx: i64) -> Option<&mut Slot> {
        let pos = self.pos(idx);
        let slot = &mut self.slots[pos];
        if slot.idx != idx {
            return None;
        }
        slot.idx = FREE;
        Some(slot)
    }

    /// Grows the ring so that `span` consecutive windows starting at `lowest` fit, keeping the
    /// windows it holds from `lowest` on.
    pub fn ensure_len(&mut self, span: i64, lowest: i64) {
        if span <= self.slots.len() as i64 {
            return;
        }
        let mut grown = Ring::new(span as usize, self.services);
        for slot in self.slots.drain(..) {
            if slot.idx != FREE && slot.idx >= lowest {
                let pos = grown.pos(slot.idx);
                grown.slots[pos] = slot;
            }
        }
        *self = grown;
    }

    /// Returns how many windows the ring holds.
    pub fn len(&self) -> usize {
        self.slots.len()
    }
}
