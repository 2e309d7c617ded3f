//! The event model: every record that crosses a topic, with its Avro schema.
//!
//! Each type derives its schema; the files in `schemas/` are the published form of the same
//! schemas, and a test fails when the two drift apart. Times are µs since the Unix epoch (UTC).
//! Derived events carry deterministic ids built from their key and event time, so a replay
//! produces the same ids and consumers can de-duplicate.

mod codec;
mod decision;
mod market;
mod pipeline;
mod workload;

pub use codec::{Codec, CodecError};
pub use decision::{
    ActuationOutcome, ActuationStatus, DeadLetter, ModelEvent, ModelEventKind, ObservedOutcome,
    ScalingDecision,
};
pub use market::{Bar, ContextKind, MarketContext, QuoteTick, Side, TradeTick};
pub use pipeline::{FeatureVector, ForecastPoint, LoadForecast, MarketRegime, Regime};
pub use workload::PodMetrics;

use apache_avro::AvroSchema;
use serde::{de::DeserializeOwned, Serialize};

/// A record that travels on a topic.
pub trait Event: Serialize + DeserializeOwned + AvroSchema + Clone + std::fmt::Debug {
    /// The Avro record name, which is also the schema file's stem in `schemas/`.
    const NAME: &'static str;

    /// Returns the partitioning key: the symbol for market data, the service otherwise.
    fn key(&self) -> &str;

    /// Returns the event time in µs since the epoch.
    fn event_time_us(&self) -> i64;

    /// Returns the derived schema, built once per process.
    fn schema() -> &'static apache_avro::Schema;
}

macro_rules! impl_event {
    ($ty:ty, $name:literal, |$e:ident| key = $key:expr, time = $time:expr) => {
        impl Event for $ty {
            const NAME: &'static str = $name;

            fn key(&self) -> &str {
                #[allow(unused_variables)]
                let $e = self;
                $key
            }

            fn event_time_us(&self) -> i64 {
                #[allow(unused_variables)]
                let $e = self;
                $time
            }

            fn schema() -> &'static apache_avro::Schema {
                static SCHEMA: std::sync::OnceLock<apache_avro::Schema> =
                    std::sync::OnceLock::new();
                SCHEMA.get_or_init(<$ty as AvroSchema>::get_schema)
            }
        }
    };
}

impl_event!(TradeTick, "TradeTick", |e| key = &e.symbol, time = e.ts_us);
impl_event!(QuoteTick, "QuoteTick", |e| key = &e.symbol, time = e.ts_us);
impl_event!(Bar, "Bar", |e| key = &e.symbol, time = e.ts_us);
impl_event!(
    MarketContext,
    "MarketContext",
    |e| key = &e.name,
    time = e.ts_us
);
impl_event!(
    PodMetrics,
    "PodMetrics",
    |e| key = &e.service,
    time = e.ts_us
);
impl_event!(
    FeatureVector,
    "FeatureVector",
    |e| key = &e.service,
    time = e.window_end_us
);
impl_event!(
    MarketRegime,
    "MarketRegime",
    |e| key = "market",
    time = e.window_end_us
);
impl_event!(
    LoadForecast,
    "LoadForecast",
    |e| key = &e.service,
    time = e.ts_us
);
impl_event!(
    ScalingDecision,
    "ScalingDecision",
    |e| key = &e.service,
    time = e.ts_us
);
impl_event!(
    ActuationOutcome,
    "ActuationOutcome",
    |e| key = &e.service,
    time = e.ts_us
);
impl_event!(
    ObservedOutcome,
    "ObservedOutcome",
    |e| key = &e.service,
    time = e.window_end_us
);
impl_event!(
    ModelEvent,
    "ModelEvent",
    |e| key = &e.service,
    time = e.ts_us
);
impl_event!(DeadLetter, "DeadLetter", |e| key = &e.source, time = 0);

/// Calls `$mac!(Type)` once for every event type; keeps registries in one place.
#[macro_export]
macro_rules! for_each_event {
    ($mac:ident) => {
        $mac!(TradeTick);
        $mac!(QuoteTick);
        $mac!(Bar);
        $mac!(MarketContext);
        $mac!(PodMetrics);
        $mac!(FeatureVector);
        $mac!(MarketRegime);
        $mac!(LoadForecast);
        $mac!(ScalingDecision);
        $mac!(ActuationOutcome);
        $mac!(ObservedOutcome);
        $mac!(ModelEvent);
        $mac!(DeadLetter);
    };
}
