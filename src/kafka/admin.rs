//! Topic administration: creates the topology's topics on a cluster and checks existing ones.
//!
//! Consumes a [`Topology`] and the cluster's metadata. Produces one [`TopicStatus`] per topic:
//! created, exists as declared, exists but differs (saying which field), or failed. Keeps no
//! state. Idempotent: a topic that exists is never altered, only compared with its declaration,
//! so running it twice is harmless.
//!
//! Caveats: a broker that does not answer DescribeConfigs is compared on partitions only (the
//! statuses say so). A broker that answers with only the settings set on the topic (tansu does)
//! is taken to use Kafka's defaults for the others: `cleanup.policy=delete` and
//! `retention.ms=604800000` (7 days). Replication is always 1: tickscale does not manage it yet.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use rdkafka::admin::{
    AdminClient, AdminOptions, ConfigResourceResult, NewTopic, ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use crate::topology::{Cleanup, Topology};

use super::{Error, KafkaSettings, STATE_TOPIC};

/// How long to wait for the cluster to answer one request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Kafka's default `retention.ms`, assumed when a broker does not list the setting.
const DEFAULT_RETENTION_MS: &str = "604800000";

/// A topic's name on the cluster, `cleanup.policy` and `retention.ms` (None when not listed).
type TopicConfig = (String, Option<String>, Option<String>);

/// A topic as tickscale declares it on the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDeclaration {
    /// The topic's name on the cluster (namespace included).
    pub name: String,
    pub partitions: u32,
    /// `delete` or `compact`.
    pub cleanup_policy: &'static str,
    /// `retention.ms`, for topics cleaned by deletion.
    pub retention_ms: Option<u64>,
}

/// What happened to one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicState {
    /// The topic did not exist and was created as declared.
    Created,
    /// The topic existed and matches its declaration (on partitions only when
    /// `configs_checked` is false).
    AsDeclared { configs_checked: bool },
    /// The topic existed and differs; each entry says how, such as
    /// "6 partitions declared, 3 on the cluster".
    Differs {
        differences: Vec<String>,
        configs_checked: bool,
    },
    /// The topic could not be created or described.
    Failed { reason: String },
}

/// The outcome for one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicStatus {
    /// The topic's name on the cluster.
    pub name: String,
    pub state: TopicState,
}

/// Returns every topic tickscale needs on the cluster: the topology's topics and
/// [`STATE_TOPIC`], under the namespace of `settings`.
pub fn declarations(settings: &KafkaSettings, topology: &Topology) -> Vec<TopicDeclaration> {
    let mut out: Vec<TopicDeclaration> = topology
        .topics
        .iter()
        .map(|topic| TopicDeclaration {
            name: settings.topic(&topic.name),
            partitions: topic.partitions,
            cleanup_policy: match topic.cleanup {
                Cleanup::Delete => "delete",
                Cleanup::Compact => "compact",
            },
            retention_ms: match topic.cleanup {
                Cleanup::Delete => topic.retention_hours.map(|h| h * 3_600_000),
                Cleanup::Compact => None,
            },
        })
        .collect();
    out.push(TopicDeclaration {
        name: settings.topic(STATE_TOPIC),
        partitions: 1,
        cleanup_policy: "compact",
        retention_ms: None,
    });
    out
}

/// Creates every topic of `topology` (and [`STATE_TOPIC`]) that the cluster lacks, and
/// compares those it has with their declaration.
///
/// # Errors
/// Fails when the cluster cannot be reached or does not answer with its metadata; a topic that
/// cannot be created is reported in its status instead, so the others are still handled.
pub fn create_topics(
    settings: &KafkaSettings,
    topology: &Topology,
) -> Result<Vec<TopicStatus>, Error> {
    let admin: AdminClient<DefaultClientContext> = settings.client_config().create()?;
    let declared = declarations(settings, topology);
    let existing = partition_counts(&admin, &declared)?;

    let missing: Vec<&TopicDeclaration> = declared
        .iter()
        .filter(|d| !existing.iter().any(|(name, _)| name == &d.name))
        .collect();
    let mut created = create_missing(&admin, &missing)?;

    // A topic someone else created meanwhile is compared like any existing one.
    let existing = partition_counts(&admin, &declared)?;
    let configs = describe(&admin, &declared);
    let mut statuses = Vec::with_capacity(declared.len());
    for declaration in &declared {
        let state = match created.remove(&declaration.name) {
            Some(Ok(())) => TopicState::Created,
            Some(Err(reason)) => TopicState::Failed { reason },
            None => compare(declaration, &existing, configs.as_ref()),
        };
        statuses.push(TopicStatus {
            name: declaration.name.clone(),
            state,
        });
    }
    Ok(statuses)
}

/// Returns the partition count of each declared topic the cluster has.
fn partition_counts(
    admin: &AdminClient<DefaultClientContext>,
    declared: &[TopicDeclaration],
) -> Result<Vec<(String, usize)>, Error> {
    let metadata = admin.inner().fetch_metadata(None, REQUEST_TIMEOUT)?;
    Ok(metadata
        .topics()
        .iter()
        .filter(|t| t.error().is_none() && declared.iter().any(|d| d.name == t.name()))
        .map(|t| (t.name().to_string(), t.partitions().len()))
        .collect())
}

/// Creates `missing` and returns, by name, whether each was created; a topic that turns out
/// to exist already is left out, to be compared.
fn create_missing(
    admin: &AdminClient<DefaultClientContext>,
    missing: &[&TopicDeclaration],
) -> Result<std::collections::BTreeMap<String, Result<(), String>>, Error> {
    let retention: Vec<Option<String>> = missing
        .iter()
        .map(|d| d.retention_ms.map(|ms| ms.to_string()))
        .collect();
    let topics: Vec<NewTopic<'_>> = missing
        .iter()
        .zip(&retention)
        .map(|(d, retention)| {
            let topic = NewTopic::new(&d.name, d.partitions as i32, TopicReplication::Fixed(1))
                .set("cleanup.policy", d.cleanup_policy);
            match retention {
                Some(ms) => topic.set("retention.ms", ms),
                None => topic,
            }
        })
        .collect();
    let mut out = std::collections::BTreeMap::new();
    if topics.is_empty() {
        return Ok(out);
    }
    let options = AdminOptions::new().operation_timeout(Some(REQUEST_TIMEOUT));
    for result in block_on(admin.create_topics(&topics, &options))? {
        match result {
            Ok(name) => {
                out.insert(name, Ok(()));
            }
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                out.insert(name, Err(format!("failed to create: {code}")));
            }
        }
    }
    Ok(out)
}

/// Returns each topic's `cleanup.policy` and `retention.ms` (None when absent), or None when
/// the broker cannot describe configs.
fn describe(
    admin: &AdminClient<DefaultClientContext>,
    declared: &[TopicDeclaration],
) -> Option<Vec<TopicConfig>> {
    let specifiers: Vec<ResourceSpecifier<'_>> = declared
        .iter()
        .map(|d| ResourceSpecifier::Topic(&d.name))
        .collect();
    let options = AdminOptions::new().request_timeout(Some(REQUEST_TIMEOUT));
    let results: Vec<ConfigResourceResult> =
        block_on(admin.describe_configs(&specifiers, &options)).ok()?;
    let mut out = Vec::with_capacity(results.len());
    for (declaration, result) in declared.iter().zip(results) {
        // A topic that could not be described keeps its configs unchecked.
        let Ok(resource) = result else { continue };
        let value = |name: &str| resource.get(name).and_then(|e| e.value.clone());
        out.push((
            declaration.name.clone(),
            value("cleanup.policy"),
            value("retention.ms"),
        ));
    }
    Some(out)
}

/// Compares an existing topic with its declaration.
fn compare(
    declaration: &TopicDeclaration,
    existing: &[(String, usize)],
    configs: Option<&Vec<TopicConfig>>,
) -> TopicState {
    let Some((_, partitions)) = existing.iter().find(|(n, _)| n == &declaration.name) else {
        return TopicState::Failed {
            reason: "missing from the cluster's metadata after creation".to_string(),
        };
    };
    let mut differences = Vec::new();
    if *partitions != declaration.partitions as usize {
        differences.push(format!(
            "{} partitions declared, {partitions} on the cluster",
            declaration.partitions
        ));
    }

    let found = configs.and_then(|c| c.iter().find(|(n, _, _)| n == &declaration.name));
    if let Some((_, cleanup, retention)) = found {
        let cleanup = cleanup.as_deref().unwrap_or("delete");
        if cleanup != declaration.cleanup_policy {
            differences.push(format!(
                "cleanup.policy {} declared, {cleanup} on the cluster",
                declaration.cleanup_policy
            ));
        }
        if let Some(declared) = declaration.retention_ms {
            let retention = retention.as_deref().unwrap_or(DEFAULT_RETENTION_MS);
            if retention != declared.to_string() {
                differences.push(format!(
                    "retention.ms {declared} declared, {retention} on the cluster"
                ));
            }
        }
    }

    let configs_checked = found.is_some();
    match differences.is_empty() {
        true => TopicState::AsDeclared { configs_checked },
        false => TopicState::Differs {
            differences,
            configs_checked,
        },
    }
}

/// Wakes the thread that waits in [`block_on`].
struct ThreadWaker(std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs `future` to completion on the calling thread. The admin client answers from its own
/// background thread, so parking until woken is all the executor it needs.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    loop {
        match future.as_mut().poll(&mut context) {
            Poll::Ready(output) => return output,
            Poll::Pending => std::thread::park(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declaration() -> TopicDeclaration {
        TopicDeclaration {
            name: "ns.market.ticks".into(),
            partitions: 6,
            cleanup_policy: "delete",
            retention_ms: Some(168 * 3_600_000),
        }
    }

    #[test]
    fn declarations_carry_retention_in_ms_and_add_the_compacted_state_topic() {
        let settings = KafkaSettings {
            brokers: "b:9092".into(),
            namespace: "ns".into(),
            schema_registry: None,
        };
        let topology = Topology::builtin().expect("builtin topology");
        let all = declarations(&settings, &topology);
        assert_eq!(all.len(), topology.topics.len() + 1);
        assert_eq!(all[0], declaration());
        let state = all.last().expect("state topic");
        assert_eq!(state.name, "ns.tickscale.state");
        assert_eq!((state.partitions, state.cleanup_policy), (1, "compact"));
        assert_eq!(state.retention_ms, None);
    }

    #[test]
    fn a_topic_with_fewer_partitions_is_reported_with_both_counts() {
        let existing = vec![("ns.market.ticks".to_string(), 3)];
        let state = compare(&declaration(), &existing, None);
        assert_eq!(
            state,
            TopicState::Differs {
                differences: vec!["6 partitions declared, 3 on the cluster".into()],
                configs_checked: false
            }
        );
    }

    #[test]
    fn settings_a_broker_leaves_out_are_taken_as_kafka_defaults() {
        let existing = vec![("ns.market.ticks".to_string(), 6)];
        // 168 hours is Kafka's default retention, so an unlisted retention.ms matches.
        let configs = vec![("ns.market.ticks".to_string(), None, None)];
        let state = compare(&declaration(), &existing, Some(&configs));
        assert_eq!(
            state,
            TopicState::AsDeclared {
                configs_checked: true
            }
        );
        let configs = vec![(
            "ns.market.ticks".to_string(),
            Some("compact".to_string()),
            Some("1000".to_string()),
        )];
        let TopicState::Differs { differences, .. } =
            compare(&declaration(), &existing, Some(&configs))
        else {
            panic!("should differ")
        };
        assert_eq!(
            differences,
            vec![
                "cleanup.policy delete declared, compact on the cluster".to_string(),
                "retention.ms 604800000 declared, 1000 on the cluster".to_string()
            ]
        );
    }
}
