//! Market events: what the outside world tells tickscale about markets.
//!
//! Trades, quotes, bars and market context arrive on the `market.*` topics, keyed by symbol.
//! Times are microseconds since the Unix epoch, UTC. The schemas in `schemas/` describe the same
//! records; `tests/schemas.rs` fails when the two disagree.

use apache_avro::AvroSchema;
use serde::{Deserialize, Serialize};

/// Which side took liquidity in a trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "tickscale")]
pub enum Side {
    Buy,
    Sell,
    Unknown,
}

/// One executed trade.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "tickscale")]
pub struct TradeTick {
    pub symbol: String,
    pub venue: String,
    /// Exchange time, µs since the epoch.
    pub ts_us: i64,
    pub price: f64,
    pub size: f64,
    pub side: Side,
}

/// One update of the best bid and ask.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "tickscale")]
pub struct QuoteTick {
    pub symbol: String,
    pub venue: String,
    pub ts_us: i64,
    pub bid_price: f64,
    pub bid_size: f64,
    pub ask_price: f64,
    pub ask_size: f64,
}

/// An OHLC bar covering `[ts_us, ts_us + interval_s)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "tickscale")]
pub struct Bar {
    pub symbol: String,
    /// Start of the bar, µs since the epoch.
    pub ts_us: i64,
    pub interval_s: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    /// Traded volume in the file's unit (USD notional for the BTC perpetual); absent when the
    /// source has none.
    pub volume: Option<f64>,
}

/// What kind of market context an event carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "tickscale")]
pub enum ContextKind {
    // VolatilityIndex: an index level such as the VIX close; SessionOpen and SessionClose: a
    // scheduled session boundary; MacroRelease: a scheduled release (rates, payrolls, CPI, …).
    VolatilityIndex,
    SessionOpen,
    SessionClose,
    MacroRelease,
}

/// Context that is not a trade: an index level or a scheduled market event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "tickscale")]
pub struct MarketContext {
    pub ts_us: i64,
    pub kind: ContextKind,
    /// What it is: `VIX`, `NYSE open`, `FOMC`, …
    pub name: String,
    /// The level, for an index; absent for a scheduled event.
    pub value: Option<f64>,
}
