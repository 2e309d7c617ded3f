//! `tickscale topics create`: creates the topology's topics on a Kafka cluster, or checks them.

use anyhow::Context;
use tickscale::kafka::admin::{self, TopicState};

use super::{KafkaArgs, StateArgs};

#[derive(Debug, clap::Args)]
pub struct TopicsArgs {
    #[command(subcommand)]
    action: TopicsAction,
}

#[derive(Debug, clap::Subcommand)]
enum TopicsAction {
    /// Creates every topic of the topology (and the stage-state topic) that the cluster lacks,
    /// and compares the others with their declaration.
    Create(CreateArgs),
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    #[command(flatten)]
    kafka: KafkaArgs,
    /// A folder with topics.toml and services.toml [default: the built-in topology]
    #[arg(long, value_name = "DIR")]
    topology: Option<std::path::PathBuf>,
}

pub fn topics(args: TopicsArgs) -> anyhow::Result<()> {
    match args.action {
        TopicsAction::Create(args) => create(args),
    }
}

fn create(args: CreateArgs) -> anyhow::Result<()> {
    let settings = args
        .kafka
        .settings()
        .context("topics create needs --brokers HOST:PORT")?;
    let topology = StateArgs {
        state: ".tickscale".into(),
        topology: args.topology,
    }
    .topology()?;
    let statuses = admin::create_topics(&settings, &topology)?;

    let unchecked = statuses.iter().any(|s| {
        matches!(
            s.state,
            TopicState::AsDeclared {
                configs_checked: false
            } | TopicState::Differs {
                configs_checked: false,
                ..
            }
        )
    });
    if unchecked {
        eprintln!(
            "the broker did not describe topic configs: existing topics are compared on \
             partitions only"
        );
    }
    let mut failed = 0;
    for status in &statuses {
        match &status.state {
            TopicState::Created => say!("{}: created", status.name),
            TopicState::AsDeclared { .. } => say!("{}: exists as declared", status.name),
            TopicState::Differs { differences, .. } => say!(
                "{}: exists but differs: {}",
                status.name,
                differences.join("; ")
            ),
            TopicState::Failed { reason } => {
                failed += 1;
                say!("{}: failed: {reason}", status.name);
            }
        }
    }
    anyhow::ensure!(failed == 0, "{failed} topic(s) could not be created");
    Ok(())
}
