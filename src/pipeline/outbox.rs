//! Events produced since the last checkpoint, and their encoding for the log.
//!
//! The stages hand their events to an [`Outbox`], which encodes each at once as an Avro datum for
//! its topic's partition; the encoded records then travel to the log with the next checkpoint.
//! Encoding early keeps the waiting events small (a trade is about 30 bytes encoded) and leaves
//! the thread that writes the log nothing but writing.
//!
//! An outbox made with [`Outbox::collecting`] encodes nothing: it keeps the typed events as
//! [`Emitted`] values, in the same order, for a driver that reads them back at once (the
//! backtest) and has no log to write.

use std::collections::BTreeMap;

use crate::bus::{self, Transaction};
use crate::events::{Codec, Event};
use crate::topology::Topology;

use super::Error;

/// The topic each event type is written to, and its codec in [`Codecs`].
pub trait Routed: Event {
    const TOPIC: &'static str;

    /// Returns this type's codec.
    fn codec(codecs: &Codecs) -> &Codec<Self>;

    /// Returns a copy of `event` as an [`Emitted`] value, for a collecting outbox.
    fn emitted(event: &Self) -> Emitted;
}

macro_rules! routes {
    ($($ty:ident => $topic:literal, $field:ident;)*) => {
        /// One codec per event type, built once.
        pub struct Codecs {
            $($field: Codec<crate::events::$ty>,)*
        }

        impl Default for Codecs {
            fn default() -> Self {
                Self { $($field: Codec::new(),)* }
            }
        }

        /// One typed event as the stages produced it, kept by a collecting outbox.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Emitted {
            $($ty(crate::events::$ty),)*
        }

        $(impl Routed for crate::events::$ty {
            const TOPIC: &'static str = $topic;

            fn codec(codecs: &Codecs) -> &Codec<Self> {
                &codecs.$field
            }

            fn emitted(event: &Self) -> Emitted {
                Emitted::$ty(event.clone())
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

/// One encoded event: where it goes, its key and its Avro datum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub topic: &'static str,
    pub partition: u32,
    /// The partitioning key (symbol, service, source or market).
    pub key: Box<str>,
    /// The event time, µs since the epoch.
    pub ts_us: i64,
    pub datum: Vec<u8>,
}

/// Events waiting for the next checkpoint, encoded, in the order they were produced.
pub struct Outbox {
    codecs: Codecs,
    partitions: BTreeMap<&'static str, u32>,
    records: Vec<Encoded>,
    /// Typed events, when the outbox collects instead of encoding.
    collected: Option<Vec<Emitted>>,
}

impl Outbox {
    /// Returns an empty outbox for the topics of `topology`.
    pub fn new(topology: &Topology) -> Self {
        let mut partitions = BTreeMap::new();
        macro_rules! count {
            ($ty:ident) => {
                let topic = <crate::events::$ty as Routed>::TOPIC;
                partitions.insert(topic, topology.topic(topic).map_or(1, |t| t.partitions));
            };
        }
        crate::for_each_event!(count);
        Self {
            codecs: Codecs::default(),
            partitions,
            records: Vec::new(),
            collected: None,
        }
    }

    /// Returns an empty outbox that encodes nothing and keeps every event pushed as an
    /// [`Emitted`] value, for [`Outbox::take_collected`].
    pub fn collecting() -> Self {
        Self {
            codecs: Codecs::default(),
            partitions: BTreeMap::new(),
            records: Vec::new(),
            collected: Some(Vec::new()),
        }
    }

    /// Takes every typed event a collecting outbox holds, in the order pushed, leaving it empty.
    /// Returns nothing for an encoding outbox.
    pub fn take_collected(&mut self) -> Vec<Emitted> {
        self.collected
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Encodes `event` for its topic's partition and queues it.
    ///
    /// # Errors
    /// Fails only when a value does not fit its own schema, which is a bug.
    pub fn push<T: Routed>(&mut self, event: &T) -> Result<(), Error> {
        if let Some(collected) = &mut self.collected {
            collected.push(T::emitted(event));
            return Ok(());
        }
        let mut bytes = Vec::with_capacity(64);
        T::codec(&self.codecs).encode(event, &mut bytes)?;
        let partitions = self.partitions.get(T::TOPIC).copied().unwrap_or(1);
        self.records.push(Encoded {
            topic: T::TOPIC,
            partition: bus::partition_for(event.key(), partitions),
            key: event.key().into(),
            ts_us: event.event_time_us(),
            datum: bytes,
        });
        Ok(())
    }

    /// Returns how many events wait.
    pub fn len(&self) -> usize {
        self.records.len() + self.collected.as_ref().map_or(0, Vec::len)
    }

    /// Returns true when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes every waiting record, leaving the outbox empty.
    pub fn take(&mut self) -> Vec<Encoded> {
        std::mem::take(&mut self.records)
    }
}

/// Appends encoded records to `tx`, in order.
///
/// # Errors
/// Fails for a topic or partition the topology does not declare.
pub fn append_all(records: Vec<Encoded>, tx: &mut Transaction<'_>) -> Result<(), bus::Error> {
    for record in records {
        tx.append_to(record.topic, record.partition, record.datum)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Routed;

    #[test]
    fn every_event_is_routed_to_the_topic_the_topology_requires_for_its_schema() {
        let mut routes = Vec::new();
        macro_rules! route_of {
            ($ty:ident) => {
                routes.push((
                    <crate::events::$ty as Routed>::TOPIC,
                    <crate::events::$ty as crate::events::Event>::NAME,
                ));
            };
        }
        crate::for_each_event!(route_of);
        assert_eq!(routes, crate::topology::REQUIRED_TOPICS);
    }

    #[test]
    fn a_collecting_outbox_keeps_typed_events_in_order_and_encodes_nothing() {
        use super::{Emitted, Outbox};
        use crate::events::FeatureVector;
        let first = FeatureVector::for_load("risk", 0, 15, 10.0);
        let second = FeatureVector::for_load("risk", 1, 15, 20.0);
        let mut out = Outbox::collecting();
        out.push(&first).expect("push");
        out.push(&second).expect("push");

        assert_eq!(out.len(), 2);
        assert!(out.take().is_empty());
        let collected = out.take_collected();
        assert_eq!(
            collected,
            vec![
                Emitted::FeatureVector(first),
                Emitted::FeatureVector(second)
            ]
        );
        assert!(out.is_empty());
    }
}
