//! The declared shape of a deployment: topics and services, loaded from `topology/`.
//!
//! `topology/topics.toml` declares each topic (key, partitions, retention or compaction,
//! schema); `topology/services.toml` declares each service (replica bounds, per-pod capacity,
//! start-up time, SLO). Both are validated at start: a bad file stops with its path, the line,
//! the field and what was expected.

use serde::{Deserialize, Serialize};

/// What drives a service's load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceKind {
    /// Processes every tick: load is the tick rate.
    MarketData,
    /// Re-evaluates signals on ticks, harder when markets move.
    Strategy,
    /// Re-prices exposure on trades and on volatility.
    Risk,
    /// Routes orders that follow trade activity.
    Order,
    /// Books fills and keeps positions.
    Position,
    /// Not tied to markets: takes its load from a workload trace (`--load`).
    General,
}

/// One service as declared in `topology/services.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// The Deployment's name.
    pub name: String,
    /// What drives its load; see the README's load model.
    pub kind: ServiceKind,
    /// Never fewer replicas than this (at least 1).
    pub min_replicas: i64,
    /// Never more replicas than this.
    pub max_replicas: i64,
    /// Load one pod serves per second at 100 % CPU, in the service's load unit.
    pub capacity_per_pod: f64,
    /// Seconds from asking for a pod to its serving traffic.
    pub startup_s: i64,
    /// Latency objective; a window whose latency exceeds it counts as an SLO violation.
    pub slo_latency_ms: f64,
    /// Latency of a request served by an idle pod.
    pub base_latency_ms: f64,
    /// CPU utilisation the HPA aims for, in percent.
    pub target_utilization_percent: f64,
    /// Replicas at the start of a run.
    pub initial_replicas: i64,
}

/// How a topic is cleaned up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cleanup {
    /// Old segments are deleted after `retention_hours`.
    Delete,
    /// Only the latest record per key is kept.
    Compact,
}

/// What a topic's partitioner hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TopicKey {
    Symbol,
    Service,
    Source,
    Market,
}

/// One topic as declared in `topology/topics.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicSpec {
    /// The topic's name, such as `scaling.decisions`.
    pub name: String,
    /// What the partitioner hashes, so each key's events stay in order.
    pub key: TopicKey,
    /// Number of partitions (at least 1).
    pub partitions: u32,
    /// `delete` (with `retention_hours`) or `compact`.
    pub cleanup: Cleanup,
    /// Hours a record is kept; required with `delete`, refused with `compact`.
    #[serde(default)]
    pub retention_hours: Option<u64>,
    /// The Avro record name; `schemas/<schema>.avsc` describes it.
    pub schema: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TopicsFile {
    topic: Vec<TopicSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServicesFile {
    service: Vec<ServiceSpec>,
}

/// Errors of loading the topology. None is worth retrying: the file must be fixed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to read {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error(transparent)]
    Invalid(Box<InvalidField>),
}

/// A field whose value the topology refuses, with where it sits and what was expected.
#[derive(Debug, thiserror::Error)]
#[error("{path}:{line}: field `{field}` of {entry}: expected {expected}, found {found}")]
pub struct InvalidField {
    pub path: String,
    pub line: usize,
    pub entry: String,
    pub field: String,
    pub expected: String,
    pub found: String,
}

/// The validated topology: the topics and the services.
#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    pub topics: Vec<TopicSpec>,
    pub services: Vec<ServiceSpec>,
}

const BUILTIN_TOPICS: &str = include_str!("../../topology/topics.toml");
const BUILTIN_SERVICES: &str = include_str!("../../topology/services.toml");

/// The topics tickscale writes, each with the schema of its events. A topology must declare
/// each of them with that schema; the pipeline's routing is checked against this list.
pub const REQUIRED_TOPICS: [(&str, &str); 13] = [
    ("market.ticks", "TradeTick"),
    ("market.quotes", "QuoteTick"),
    ("market.bars", "Bar"),
    ("market.context", "MarketContext"),
    ("pods.metrics", "PodMetrics"),
    ("features", "FeatureVector"),
    ("market.regime", "MarketRegime"),
    ("load.forecasts", "LoadForecast"),
    ("scaling.decisions", "ScalingDecision"),
    ("scaling.outcomes", "ActuationOutcome"),
    ("load.observed", "ObservedOutcome"),
    ("model.events", "ModelEvent"),
    ("deadletter", "DeadLetter"),
];

/// The schema names that have a Rust type, hence a file in `schemas/`.
pub fn known_schemas() -> Vec<&'static str> {
    let mut names = Vec::new();
    macro_rules! push_name {
        ($ty:ident) => {
            names.push(<crate::events::$ty as crate::events::Event>::NAME)
        };
    }
    crate::for_each_event!(push_name);
    names
}

impl Topology {
    /// Returns the topology shipped in the binary (the repository's `topology/`).
    ///
    /// # Errors
    /// Fails only if the shipped files are invalid, which a test rules out.
    pub fn builtin() -> Result<Self, Error> {
        Self::parse(
            ("topology/topics.toml", BUILTIN_TOPICS),
            ("topology/services.toml", BUILTIN_SERVICES),
        )
    }

    /// Loads and validates `DIR/topics.toml` and `DIR/services.toml`.
    ///
    /// # Errors
    /// Names the file, the line, the field and what was expected.
    pub fn load(dir: &std::path::Path) -> Result<Self, Error> {
        let read = |name: &str| {
            let path = dir.join(name);
            let shown = path.display().to_string();
            std::fs::read_to_string(&path)
                .map(|text| (shown.clone(), text))
                .map_err(|source| Error::Read {
                    path: shown,
                    source,
                })
        };
        let topics = read("topics.toml")?;
        let services = read("services.toml")?;
        Self::parse((&topics.0, &topics.1), (&services.0, &services.1))
    }

    /// Parses and validates the two files' texts; the paths are for messages.
    ///
    /// # Errors
    /// As [`Topology::load`].
    pub fn parse(topics: (&str, &str), services: (&str, &str)) -> Result<Self, Error> {
        let parse_err = |path: &str, e: toml::de::Error| Error::Parse {
            path: path.to_string(),
            message: e.to_string().trim_end().replace('\n', "\n  "),
        };
        let topic_file: TopicsFile =
            toml::from_str(topics.1).map_err(|e| parse_err(topics.0, e))?;
        let service_file: ServicesFile =
            toml::from_str(services.1).map_err(|e| parse_err(services.0, e))?;

        let topology = Self {
            topics: topic_file.topic,
            services: service_file.service,
        };
        validate::topics(topics, &topology.topics)?;
        validate::services(services, &topology.services)?;
        Ok(topology)
    }

    /// Returns the service named `name`.
    pub fn service(&self, name: &str) -> Option<&ServiceSpec> {
        self.services.iter().find(|s| s.name == name)
    }

    /// Returns the topic named `name`.
    pub fn topic(&self, name: &str) -> Option<&TopicSpec> {
        self.topics.iter().find(|t| t.name == name)
    }
}

mod validate;
