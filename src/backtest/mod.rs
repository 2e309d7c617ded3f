//! Backtests: recorded inputs replayed through the same stages as `run`, under several scaling
//! policies at once, against the simulated cluster, with a report that compares them.
//!
//! **Consumes** an [`Input`]: market files and workload traces merged in event-time order (as
//! `run` reads them), the input topics of a state folder that `tickscale run` wrote, or the
//! input topics of a Kafka namespace.
//! **Produces** a [`Report`] ([`report`]), shown as a table ([`table`]), JSON and HTML
//! ([`html`]). **Keeps** one [`MarketStage`](crate::pipeline::MarketStage) and, per policy, one
//! [`ServiceStage`](crate::pipeline::ServiceStage) fed the same feature vectors, plus the
//! running figures of each policy; nothing is written to a log.
//! **Guarantees**: the same input and settings give the same report, byte for byte as JSON; a
//! replay stopped early still reports what it replayed, marked partial.
//!
//! # Policies
//!
//! [`POLICY_NAMES`] lists them: `hpa` and `keda-lag` are the decide stage's policies as they
//! are; each tickscale strategy is the predictive policy with that strategy; `holt-winters` is
//! how the predictive-HPA projects run Holt-Winters: the replica count for the plain point
//! forecast (strategy `aggressive`), never below what the HPA asks (their default decision,
//! the maximum of predicted and calculated), and with no confidence gate (threshold 0: they
//! always trust their model). Its forecaster is tickscale's own online Holt-Winters, the same
//! for every policy, so the comparison is of decision rules, not of models.
//!
//! # Caveats
//!
//! Replaying from a log sorts the input topics by event time; events with equal times may come
//! in another order than the run that wrote them (topic by topic rather than file by file), so
//! a window may differ at a tie.

pub mod driver;
pub mod html;
pub mod log_input;
pub mod report;
pub mod table;
pub mod traces;

use std::path::PathBuf;

use crate::pipeline::{SourceSpec, StageConfig};
use crate::stages::decide::{DecideConfig, Policy, Strategy};

pub use driver::{replay, Progress, Replay};
pub use report::Report;

/// Every policy a backtest knows, in the default order.
pub const POLICY_NAMES: [&str; 8] = [
    "hpa",
    "keda-lag",
    "holt-winters",
    "conservative",
    "balanced",
    "aggressive",
    "event-driven",
    "ml-optimised",
];

/// Errors of a backtest. None is worth retrying as is.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown policy `{name}`; the policies are {}", POLICY_NAMES.join(", "))]
    UnknownPolicy { name: String },
    #[error("policy `{name}` is selected twice")]
    DuplicatePolicy { name: String },
    #[error("no policy selected; the policies are {}", POLICY_NAMES.join(", "))]
    NoPolicy,
    #[error(
        "the policies differ in more than their decide settings, so they cannot share one market \
         stage"
    )]
    MarketSettingsDiffer,
    #[error(transparent)]
    Pipeline(#[from] crate::pipeline::Error),
    #[error("failed to read the recorded log")]
    Log(#[from] crate::bus::Error),
    #[error("failed to decode a record of {topic} at offset {offset}")]
    Decode {
        topic: &'static str,
        offset: u64,
        #[source]
        source: crate::events::CodecError,
    },
    #[error("failed to draw a plot: {0}")]
    Plot(String),
    #[error("failed to read the Kafka topics")]
    Kafka(#[from] crate::kafka::Error),
    #[error("no state folder at {0}")]
    NoLog(PathBuf),
}

/// What a backtest replays.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Market files and workload traces, merged in event-time order as `run` reads them.
    Files(Vec<SourceSpec>),
    /// The input topics of a state folder written by `tickscale run`.
    Log(PathBuf),
    /// The input topics of a Kafka namespace, read from the start of every partition to its
    /// current end and merged by event time; events before `since_us` (event time) are
    /// skipped.
    Kafka {
        settings: crate::kafka::KafkaSettings,
        since_us: Option<i64>,
    },
}

/// One selected policy: its name in the report and the decide settings it runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyChoice {
    pub name: String,
    pub decide: DecideConfig,
}

/// Returns the decide settings for policy `name` on top of `base`.
///
/// # Errors
/// Fails for a name not in [`POLICY_NAMES`].
pub fn policy(name: &str, base: &DecideConfig) -> Result<PolicyChoice, Error> {
    let mut decide = base.clone();
    match name {
        "hpa" => decide.policy = Policy::Hpa,
        "keda-lag" => decide.policy = Policy::KedaLag,
        "holt-winters" => {
            decide.policy = Policy::Predictive;
            decide.strategy = Strategy::Aggressive;
            decide.confidence_threshold = 0.0;
        }
        other => {
            let strategy = Strategy::ALL
                .into_iter()
                .find(|s| s.as_str() == other)
                .ok_or_else(|| Error::UnknownPolicy { name: other.into() })?;
            decide.policy = Policy::Predictive;
            decide.strategy = strategy;
        }
    }
    Ok(PolicyChoice {
        name: name.to_string(),
        decide,
    })
}

/// Returns the policies of a comma-separated `list` (every policy when `None`), in its order.
///
/// # Errors
/// Fails for an unknown or repeated name, or an empty list.
pub fn policies(list: Option<&str>, base: &DecideConfig) -> Result<Vec<PolicyChoice>, Error> {
    let names: Vec<&str> = match list {
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .collect(),
        None => POLICY_NAMES.to_vec(),
    };
    if names.is_empty() {
        return Err(Error::NoPolicy);
    }
    let mut chosen: Vec<PolicyChoice> = Vec::new();
    for name in names {
        let name = name.to_ascii_lowercase();
        if chosen.iter().any(|c| c.name == name) {
            return Err(Error::DuplicatePolicy { name });
        }
        chosen.push(policy(&name, base)?);
    }
    Ok(chosen)
}

/// Returns the stage settings of each policy: `base` with the policy's decide settings.
///
/// # Errors
/// Fails when two of them differ outside `decide`, since they share one market stage.
pub fn stage_configs(
    base: &StageConfig,
    choices: &[PolicyChoice],
) -> Result<Vec<StageConfig>, Error> {
    let configs: Vec<StageConfig> = choices
        .iter()
        .map(|c| StageConfig {
            decide: c.decide.clone(),
            ..base.clone()
        })
        .collect();
    let market_part = |c: &StageConfig| StageConfig {
        decide: DecideConfig::default(),
        ..c.clone()
    };
    if configs
        .windows(2)
        .any(|pair| market_part(&pair[0]) != market_part(&pair[1]))
    {
        return Err(Error::MarketSettingsDiffer);
    }
    Ok(configs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_policy_is_selected_by_default_in_the_documented_order() {
        let chosen = policies(None, &DecideConfig::default()).expect("policies");
        let names: Vec<&str> = chosen.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, POLICY_NAMES);
    }

    #[test]
    fn holt_winters_is_the_predictive_point_forecast_without_a_confidence_gate() {
        let hw = policy("holt-winters", &DecideConfig::default()).expect("policy");
        assert_eq!(hw.decide.policy, Policy::Predictive);
        assert_eq!(hw.decide.strategy, Strategy::Aggressive);
        assert_eq!(hw.decide.confidence_threshold, 0.0);
        let aggressive = policy("aggressive", &DecideConfig::default()).expect("policy");
        assert_eq!(aggressive.decide.confidence_threshold, 0.5);
    }

    #[test]
    fn an_unknown_policy_is_refused_with_the_valid_names() {
        let error = policies(Some("hpa,bogus"), &DecideConfig::default()).expect_err("refused");
        let message = error.to_string();
        assert!(message.contains("`bogus`"), "{message}");
        assert!(message.contains("hpa, keda-lag, holt-winters"), "{message}");
    }

    #[test]
    fn a_policy_named_twice_is_refused() {
        let error = policies(Some("hpa, HPA"), &DecideConfig::default()).expect_err("refused");
        assert!(matches!(error, Error::DuplicatePolicy { name } if name == "hpa"));
    }

    #[test]
    fn policies_share_every_stage_setting_but_the_decision() {
        let mut base = StageConfig::default();
        base.features.window_s = 60;
        let chosen = policies(None, &base.decide).expect("policies");
        let configs = stage_configs(&base, &chosen).expect("configs");
        assert_eq!(configs.len(), 8);
        assert!(configs.iter().all(|c| c.features.window_s == 60));
        assert_eq!(configs[0].decide.policy, Policy::Hpa);
        assert_eq!(configs[7].decide.strategy, Strategy::MlOptimised);
    }
}
