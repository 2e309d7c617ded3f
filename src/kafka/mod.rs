//! Kafka as the bus: the same topics, events and stages as the embedded log, across processes.
//!
//! Consumes and produces the topics of `topology/` on a Kafka cluster through rdkafka, framed as
//! [`wire`] describes. Stage state is kept as snapshots on an internal topic (see [`snapshot`]),
//! beside the input offsets they cover, so that a stage resumes wherever it restarts.
//!
//! Delivery is at least once, with deterministic event ids: a stage that restarts from its last
//! snapshot produces again the events it had produced after it, identical to the first time,
//! and every reader (the per-service stage, `tickscale consume`) drops what it has already seen.
//! Kafka transactions are not used: the broker the tests run against does not support them.

pub mod admin;
pub mod consume;
mod io;
pub mod market;
pub mod produce;
pub mod registry;
pub mod service;
mod snapshot;
pub mod stages;
pub mod wire;

use std::collections::BTreeMap;

use rdkafka::ClientConfig;

use crate::pipeline::Routed;

pub use wire::{Framing, WireError};

/// The topic that holds stage snapshots, under the namespace.
pub const STATE_TOPIC: &str = "tickscale.state";

/// Errors of the Kafka bus.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("failed to encode an event")]
    Codec(#[from] crate::events::CodecError),
    #[error(transparent)]
    Pipeline(#[from] crate::pipeline::Error),
    #[error("failed to read the snapshot of {key}: {reason}")]
    Snapshot { key: String, reason: String },
    #[error("topic {topic} has no partition metadata on {brokers}: create the topics first with `tickscale topics create --brokers {brokers}`")]
    MissingTopic { topic: String, brokers: String },
    #[error("timed out after {seconds} s waiting for {what}")]
    Timeout { what: String, seconds: u64 },
    #[error(transparent)]
    Registry(#[from] registry::Error),
    #[error("the {0} panicked")]
    Panicked(&'static str),
    #[error("the broker refused a message: {0}")]
    Delivery(String),
    #[error(
        "the state of {key} on the cluster was written by other settings; use another --group \
         or --namespace"
    )]
    OtherSettings { key: String },
}

/// Where the cluster is and how tickscale names its topics there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaSettings {
    /// The bootstrap servers, `host:port[,host:port…]`.
    pub brokers: String,
    /// A prefix for every topic name (`NS.market.ticks`), so several pipelines can share a
    /// cluster; empty for none.
    pub namespace: String,
    /// A Confluent-compatible schema registry: when set, events are written with registry
    /// framing under ids registered there, and read in either framing.
    pub schema_registry: Option<String>,
}

impl KafkaSettings {
    /// Returns settings for `brokers` with no namespace.
    pub fn new(brokers: &str) -> Self {
        Self {
            brokers: brokers.to_string(),
            namespace: String::new(),
            schema_registry: None,
        }
    }

    /// Returns the framing of every event type: registry framing when a registry is set (each
    /// schema registered there first), single-object encoding otherwise.
    ///
    /// # Errors
    /// Fails when the registry cannot be reached or refuses a schema.
    pub fn framings(&self) -> Result<Framings, Error> {
        match &self.schema_registry {
            Some(url) => Ok(registry::framings(url, self)?),
            None => Ok(Framings::single_object()),
        }
    }

    /// Returns the name of the topology topic `name` on the cluster.
    pub fn topic(&self, name: &str) -> String {
        match self.namespace.is_empty() {
            true => name.to_string(),
            false => format!("{}.{name}", self.namespace),
        }
    }

    /// Returns the topology name of the cluster topic `topic`, if it is under the namespace.
    pub fn local_name<'a>(&self, topic: &'a str) -> Option<&'a str> {
        match self.namespace.is_empty() {
            true => Some(topic),
            false => topic
                .strip_prefix(self.namespace.as_str())
                .and_then(|rest| rest.strip_prefix('.')),
        }
    }

    /// Returns a client configuration for the cluster, with tickscale's client id.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", "tickscale");
        config
    }
}

/// The framing of every event type, by schema name.
pub struct Framings {
    by_schema: BTreeMap<&'static str, Framing>,
}

impl Default for Framings {
    fn default() -> Self {
        Self::single_object()
    }
}

impl Framings {
    /// Returns single-object framings for every event type.
    pub fn single_object() -> Self {
        let mut by_schema = BTreeMap::new();
        macro_rules! add {
            ($ty:ident) => {
                let name = <crate::events::$ty as crate::events::Event>::NAME;
                let schema = <crate::events::$ty as crate::events::Event>::schema();
                by_schema.insert(name, Framing::new(name, schema, None));
            };
        }
        crate::for_each_event!(add);
        Self { by_schema }
    }

    /// Returns the framing of the event type `T`.
    pub fn of<T: Routed>(&self) -> &Framing {
        self.get(T::NAME)
    }

    /// Returns the framing of the schema named `schema`.
    ///
    /// Every event type has one; a name that is not an event type is a bug.
    pub fn get(&self, schema: &str) -> &Framing {
        match self.by_schema.get(schema) {
            Some(framing) => framing,
            None => unreachable!("every event type has a framing, {schema} is not one"),
        }
    }

    /// Replaces the framing of `schema` with registry framing under `id`.
    pub fn use_registry_id(&mut self, schema: &'static str, id: u32) {
        let framing = Framing::new(schema, self.schema_of(schema), Some(id));
        self.by_schema.insert(schema, framing);
    }

    fn schema_of(&self, name: &str) -> &'static apache_avro::Schema {
        let mut found = None;
        macro_rules! find {
            ($ty:ident) => {
                if <crate::events::$ty as crate::events::Event>::NAME == name {
                    found = Some(<crate::events::$ty as crate::events::Event>::schema());
                }
            };
        }
        crate::for_each_event!(find);
        match found {
            Some(schema) => schema,
            None => unreachable!("{name} is not an event type"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespace_prefixes_every_topic_and_is_stripped_back() {
        let mut settings = KafkaSettings::new("localhost:9092");
        assert_eq!(settings.topic("market.ticks"), "market.ticks");
        settings.namespace = "t1".into();
        assert_eq!(settings.topic("market.ticks"), "t1.market.ticks");
        assert_eq!(settings.local_name("t1.market.ticks"), Some("market.ticks"));
        assert_eq!(settings.local_name("t2.market.ticks"), None);
        assert_eq!(settings.local_name("t1market.ticks"), None);
    }

    #[test]
    fn every_event_type_has_its_own_fingerprint() {
        let framings = Framings::single_object();
        let prints: std::collections::BTreeSet<u64> = framings
            .by_schema
            .values()
            .map(Framing::fingerprint)
            .collect();
        assert_eq!(prints.len(), framings.by_schema.len());
        assert_eq!(
            framings.by_schema.len(),
            crate::topology::REQUIRED_TOPICS.len()
        );
    }
}
