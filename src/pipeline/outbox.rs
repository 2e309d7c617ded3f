//! Events produced since the last checkpoint, already encoded for their topics.

use crate::bus::{self, Transaction};
use crate::events::{Codec, CodecError, Event};

/// The topic each event type is written to, and its codec in [`Codecs`].
pub trait Routed: Event {
    const TOPIC: &'static str;

    /// Returns this type's codec.
    fn codec(codecs: &Codecs) -> &Codec<Self>;
}

macro_rules! routes {
    ($($ty:ident => $topic:literal, $field:ident;)*) => {
        /// One codec per event type, built once (deriving a schema is not free).
        pub struct Codecs {
            $($field: Codec<crate::events::$ty>,)*
        }

        impl Default for Codecs {
            fn default() -> Self {
                Self { $($field: Codec::new(),)* }
            }
        }

        $(impl Routed for crate::events::$ty {
            const TOPIC: &'static str = $topic;

            fn codec(codecs: &Codecs) -> &Codec<Self> {
                &codecs.$field
            }
        })*
    };
}

routes! {
    TradeTick => "market.ticks", trade;
    QuoteTick => "market.quotes", quote;
    Bar => "market.bars", bar;
    MarketContext => "market.context", context;
    PodMetrics => "pods.metrics", pod_metrics;
    FeatureVector => "features", features;
    MarketRegime => "market.regime", regime;
    LoadForecast => "load.forecasts", forecast;
    ScalingDecision => "scaling.decisions", decision;
    ActuationOutcome => "scaling.outcomes", actuation;
    ObservedOutcome => "load.observed", observed;
    ModelEvent => "model.events", model;
    DeadLetter => "deadletter", dead_letter;
}

/// Encoded events waiting for the next commit, in the order they were produced.
#[derive(Default)]
pub struct Outbox {
    codecs: Codecs,
    records: Vec<(&'static str, String, Vec<u8>)>,
}

impl Outbox {
    /// Encodes `event` for its topic.
    ///
    /// # Errors
    /// Fails only when a value does not fit its own schema, which is a bug.
    pub fn push<T: Routed>(&mut self, event: &T) -> Result<(), CodecError> {
        let mut bytes = Vec::with_capacity(64);
        T::codec(&self.codecs).encode(event, &mut bytes)?;
        self.records
            .push((T::TOPIC, event.key().to_string(), bytes));
        Ok(())
    }

    /// Returns how many events wait.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Returns true when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Moves every waiting event into `tx`.
    ///
    /// # Errors
    /// Fails for a topic the topology does not declare.
    pub fn drain_into(&mut self, tx: &mut Transaction<'_>) -> Result<(), bus::Error> {
        for (topic, key, bytes) in self.records.drain(..) {
            tx.append(topic, &key, bytes)?;
        }
        Ok(())
    }
}
