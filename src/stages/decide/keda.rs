//! KEDA's Kafka scaler: replicas from consumer lag.
//!
//! **Consumes** the latest and committed offsets of a consumer group's partitions, with the
//! scaler's settings ([`KafkaLagConfig`]). **Produces** the replica count KEDA would have the
//! HPA aim for, with the rules that capped it ([`LagOutcome`]). **Keeps** nothing.
//! **Guarantees** the same answer for the same offsets.
//!
//! The rules, as KEDA's `kafka` scaler applies them:
//!
//! - Lag of a partition = latest offset − committed offset (0 if negative). A partition with no
//!   committed offset lags by what `offsetResetPolicy` would consume: `latest` → 0,
//!   `earliest` → the latest offset.
//! - The scaler is active when the total lag exceeds `activationLagThreshold`; inactive, the
//!   target scales to zero when its minimum allows (else to its minimum).
//! - Unless `allowIdleConsumers`, the total lag counts at most `partitions × lagThreshold`, so
//!   the answer never exceeds the partition count (a consumer beyond it would sit idle); with
//!   `limitToPartitionsWithLag`, at most the number of partitions with lag. The two settings
//!   exclude each other, as in KEDA.
//! - Active: `desired = max(1, ceil(total lag / lagThreshold))`, the HPA's average-value rule.
//! - `ensureEvenDistributionOfPartitions`: the answer rises to the next divisor of the
//!   partition count, so every consumer owns as many partitions (6 partitions: 4 → 6).
//!
//! # How the simulated cluster feeds it
//!
//! The simulated cluster has no topics: [`simulated_offsets`] treats a service's backlog at the
//! end of a window (work waiting, in load units) as its consumer lag, spread evenly over
//! `partitions` partitions (the topology's topics have 6), committed at 0.
//! `lagThreshold` defaults to one decision interval of one pod's full capacity
//! (`capacity_per_pod × interval`), so one replica per interval of work waiting.
//!
//! # Caveats
//!
//! Lag measures work not yet done: a service that keeps up has none, and this rule then sits
//! at its minimum until a backlog forms, which is what a lag scaler does on a consumer that is
//! fast enough. Recent KEDA versions report a lag of 1 (not 0) for an uncommitted partition
//! under `latest` unless `scaleToZeroOnInvalidOffset`; this follows the simpler rule above.
//! `excludePersistentLag` is not modelled.

use serde::{Deserialize, Serialize};

use super::Error;

/// Where a consumer with no committed offset starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OffsetResetPolicy {
    /// At the end: nothing to catch up.
    #[default]
    Latest,
    /// At the beginning: the whole partition is lag.
    Earliest,
}

/// The Kafka scaler's settings, named after KEDA's metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KafkaLagConfig {
    /// `lagThreshold`: lag one replica is meant to carry; `None` derives it from the service
    /// (one interval of a pod's full capacity).
    #[serde(default)]
    pub lag_threshold: Option<i64>,
    /// `activationLagThreshold`: at or below this total lag the scaler is inactive (KEDA: 0).
    #[serde(default)]
    pub activation_lag_threshold: i64,
    /// `allowIdleConsumers`: lets the answer exceed the partition count.
    #[serde(default)]
    pub allow_idle_consumers: bool,
    /// `limitToPartitionsWithLag`: caps the answer at the partitions that have lag.
    #[serde(default)]
    pub limit_to_partitions_with_lag: bool,
    /// `ensureEvenDistributionOfPartitions`: rounds up to a divisor of the partition count.
    #[serde(default)]
    pub ensure_even_distribution: bool,
    /// `offsetResetPolicy`.
    #[serde(default)]
    pub offset_reset_policy: OffsetResetPolicy,
    /// Partitions of the consumed topic, in the simulated cluster (default 6).
    #[serde(default = "default_partitions")]
    pub partitions: i64,
}

fn default_partitions() -> i64 {
    6
}

impl Default for KafkaLagConfig {
    fn default() -> Self {
        Self {
            lag_threshold: None,
            activation_lag_threshold: 0,
            allow_idle_consumers: false,
            limit_to_partitions_with_lag: false,
            ensure_even_distribution: false,
            offset_reset_policy: OffsetResetPolicy::Latest,
            partitions: default_partitions(),
        }
    }
}

impl KafkaLagConfig {
    /// Checks the settings.
    ///
    /// # Errors
    /// A threshold or partition count out of range, or idle consumers allowed together with
    /// the limit to partitions with lag.
    pub fn validate(&self) -> Result<(), Error> {
        if let Some(threshold) = self.lag_threshold.filter(|t| *t <= 0) {
            return Err(Error::OutOfRange {
                name: "keda.lag_threshold",
                value: threshold as f64,
            });
        }
        if self.activation_lag_threshold < 0 || self.partitions < 1 {
            return Err(Error::OutOfRange {
                name: "keda.activation_lag_threshold or keda.partitions",
                value: self.activation_lag_threshold.min(self.partitions) as f64,
            });
        }
        if self.allow_idle_consumers && self.limit_to_partitions_with_lag {
            return Err(Error::Conflict(
                "keda.allow_idle_consumers and keda.limit_to_partitions_with_lag",
            ));
        }
        Ok(())
    }
}

/// One partition's offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionOffsets {
    /// The offset the next produced record will get.
    pub latest: i64,
    /// The consumer group's committed offset, if it has one.
    pub committed: Option<i64>,
}

/// What the Kafka scaler asks for, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct LagOutcome {
    /// Lag per partition, in order.
    pub lags: Vec<i64>,
    pub total_lag: i64,
    /// Whether the total lag exceeds the activation threshold.
    pub active: bool,
    /// The lag threshold used.
    pub lag_threshold: i64,
    pub replicas: i64,
    /// Rules that changed the answer: `activation`, `partition-count`, `partitions-with-lag`,
    /// `even-distribution`.
    pub bounds: Vec<&'static str>,
}

/// Returns the lag of one partition under `policy`.
pub fn partition_lag(offsets: PartitionOffsets, policy: OffsetResetPolicy) -> i64 {
    match (offsets.committed, policy) {
        (Some(committed), _) => (offsets.latest - committed).max(0),
        (None, OffsetResetPolicy::Latest) => 0,
        (None, OffsetResetPolicy::Earliest) => offsets.latest.max(0),
    }
}

/// Returns the replicas KEDA's Kafka scaler asks for; `lag_threshold` is the threshold in
/// force (at least 1) and `min_replicas` the target's minimum (0 allows scaling to zero).
pub fn desired_replicas(
    partitions: &[PartitionOffsets],
    config: &KafkaLagConfig,
    lag_threshold: i64,
    min_replicas: i64,
) -> LagOutcome {
    let threshold = lag_threshold.max(1);
    let lags: Vec<i64> = partitions
        .iter()
        .map(|p| partition_lag(*p, config.offset_reset_policy))
        .collect();
    let total_lag: i64 = lags.iter().sum();
    let count = partitions.len() as i64;
    let with_lag = lags.iter().filter(|l| **l > 0).count() as i64;
    let mut bounds = Vec::new();
    let active = total_lag > config.activation_lag_threshold;
    if !active {
        bounds.push("activation");
        return LagOutcome {
            lags,
            total_lag,
            active,
            lag_threshold: threshold,
            replicas: min_replicas.max(0),
            bounds,
        };
    }
    let mut replicas = div_ceil(total_lag, threshold).max(1);
    let cap = if config.limit_to_partitions_with_lag {
        Some((with_lag, "partitions-with-lag"))
    } else if !config.allow_idle_consumers {
        Some((count, "partition-count"))
    } else {
        None
    };
    if let Some((cap, name)) = cap.filter(|(cap, _)| replicas > *cap) {
        replicas = cap.max(1);
        bounds.push(name);
    }
    if config.ensure_even_distribution && replicas < count {
        let even = (replicas..=count).find(|r| count % r == 0).unwrap_or(count);
        if even != replicas {
            replicas = even;
            bounds.push("even-distribution");
        }
    }
    LagOutcome {
        lags,
        total_lag,
        active,
        lag_threshold: threshold,
        replicas,
        bounds,
    }
}

/// Returns `backlog` (rounded to whole units) as lag spread evenly over `partitions`
/// partitions committed at 0, the first ones taking the remainder.
pub fn simulated_offsets(backlog: f64, partitions: i64) -> Vec<PartitionOffsets> {
    let n = partitions.max(1);
    let total = backlog.max(0.0).round() as i64;
    (0..n)
        .map(|i| PartitionOffsets {
            latest: total / n + i64::from(i < total % n),
            committed: Some(0),
        })
        .collect()
}

/// Returns `ceil(a / b)` for `a ≥ 0`, `b > 0`.
fn div_ceil(a: i64, b: i64) -> i64 {
    (a + b - 1) / b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(latest: i64, committed: Option<i64>) -> PartitionOffsets {
        PartitionOffsets { latest, committed }
    }

    /// Lags 60, 0 and (uncommitted) 0 or 30.
    fn three() -> Vec<PartitionOffsets> {
        vec![p(100, Some(40)), p(50, Some(50)), p(30, None)]
    }

    #[test]
    fn lag_is_latest_minus_committed_and_the_reset_policy_fills_uncommitted_partitions() {
        let latest = desired_replicas(&three(), &KafkaLagConfig::default(), 10, 1);
        assert_eq!(
            (latest.lags.clone(), latest.total_lag),
            (vec![60, 0, 0], 60)
        );
        let earliest = KafkaLagConfig {
            offset_reset_policy: OffsetResetPolicy::Earliest,
            ..Default::default()
        };
        let outcome = desired_replicas(&three(), &earliest, 10, 1);
        assert_eq!((outcome.lags, outcome.total_lag), (vec![60, 0, 30], 90));
        // A committed offset beyond the latest (a truncated topic) is no lag, not negative.
        assert_eq!(partition_lag(p(10, Some(15)), OffsetResetPolicy::Latest), 0);
    }

    #[test]
    fn the_answer_is_capped_at_the_partition_count_unless_idle_consumers_are_allowed() {
        // 60 / 10 = 6 replicas for 3 partitions: capped at 3.
        let capped = desired_replicas(&three(), &KafkaLagConfig::default(), 10, 1);
        assert_eq!(
            (capped.replicas, capped.bounds),
            (3, vec!["partition-count"])
        );
        let idle = KafkaLagConfig {
            allow_idle_consumers: true,
            ..Default::default()
        };
        assert_eq!(desired_replicas(&three(), &idle, 10, 1).replicas, 6);
        // 60 / 25 = 2.4 → 3, within the cap.
        let within = desired_replicas(&three(), &KafkaLagConfig::default(), 25, 1);
        assert_eq!((within.replicas, within.bounds.len()), (3, 0));
        assert_eq!(
            desired_replicas(&three(), &KafkaLagConfig::default(), 40, 1).replicas,
            2
        );
    }

    #[test]
    fn limit_to_partitions_with_lag_caps_at_the_partitions_that_lag() {
        let limit = KafkaLagConfig {
            limit_to_partitions_with_lag: true,
            ..Default::default()
        };
        let outcome = desired_replicas(&three(), &limit, 10, 1);
        assert_eq!(
            (outcome.replicas, outcome.bounds),
            (1, vec!["partitions-with-lag"])
        );
    }

    #[test]
    fn below_the_activation_threshold_the_target_scales_to_zero_when_its_minimum_allows() {
        let config = KafkaLagConfig {
            activation_lag_threshold: 60,
            ..Default::default()
        };
        // Total 60 is not above 60: inactive.
        let zero = desired_replicas(&three(), &config, 10, 0);
        assert_eq!((zero.active, zero.replicas), (false, 0));
        assert_eq!(desired_replicas(&three(), &config, 10, 2).replicas, 2);
        // Active with a lag far below the threshold: at least 1 (60 / 1000 → 1).
        let active = KafkaLagConfig {
            activation_lag_threshold: 59,
            ..Default::default()
        };
        let one = desired_replicas(&three(), &active, 1000, 0);
        assert_eq!((one.active, one.replicas), (true, 1));
    }

    #[test]
    fn even_distribution_rounds_up_to_a_divisor_of_the_partition_count() {
        let config = KafkaLagConfig {
            ensure_even_distribution: true,
            ..Default::default()
        };
        let twelve = |lag: i64| simulated_offsets(lag as f64, 12);
        // 50 / 10 = 5 → 6 (12 = 6 × 2); 70 / 10 = 7 → 12; 40 / 10 = 4 stays 4.
        let five = desired_replicas(&twelve(50), &config, 10, 1);
        assert_eq!((five.replicas, five.bounds), (6, vec!["even-distribution"]));
        assert_eq!(desired_replicas(&twelve(70), &config, 10, 1).replicas, 12);
        assert_eq!(desired_replicas(&twelve(40), &config, 10, 1).replicas, 4);
    }

    #[test]
    fn simulated_offsets_spread_the_backlog_evenly_with_the_remainder_first() {
        let offsets = simulated_offsets(20.4, 6);
        let latest: Vec<i64> = offsets.iter().map(|o| o.latest).collect();
        assert_eq!(latest, vec![4, 4, 3, 3, 3, 3]);
        assert!(offsets.iter().all(|o| o.committed == Some(0)));
    }

    #[test]
    fn idle_consumers_with_the_partitions_with_lag_limit_is_refused() {
        let both = KafkaLagConfig {
            allow_idle_consumers: true,
            limit_to_partitions_with_lag: true,
            ..Default::default()
        };
        assert!(matches!(both.validate(), Err(Error::Conflict(_))));
        assert!(KafkaLagConfig::default().validate().is_ok());
    }
}
