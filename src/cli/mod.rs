//! Command-line parsing and the commands.

/// Prints a line on standard output; a reader that went away (a closed pipe, as with `| head`)
/// is not an error worth stopping a run for.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod backtest;
mod consume;
mod explain;
mod hpa;
mod produce;
mod run;
mod run_kafka;
mod topics;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Scales the services of a trading platform ahead of the load that markets bring.
#[derive(Debug, Parser)]
#[command(name = "tickscale", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the pipeline on the embedded log: the built-in market by default, or real files.
    Run(run::RunArgs),
    /// Prints the events of a topic from the embedded log.
    Consume(consume::ConsumeArgs),
    /// Evaluates HPA cases from a JSON file: what the Kubernetes HPA would do in each.
    Hpa(hpa::HpaArgs),
    /// Prints the chain behind one decision: inputs, answers, bounds, resources and reason.
    Explain(explain::ExplainArgs),
    /// Manages the topology's topics on a Kafka cluster.
    Topics(topics::TopicsArgs),
    /// Replays recordings onto Kafka topics, as the market stage would find them.
    Produce(produce::ProduceArgs),
    /// Replays recorded inputs under several scaling policies and compares them side by side.
    Backtest(backtest::BacktestArgs),
}

/// Where the embedded log lives, and which topology to use.
#[derive(Debug, clap::Args)]
struct StateArgs {
    /// The state folder: the embedded log, stage state and offsets.
    #[arg(long, default_value = ".tickscale", value_name = "DIR")]
    state: PathBuf,
    /// A folder with topics.toml and services.toml [default: the built-in topology]
    #[arg(long, value_name = "DIR")]
    topology: Option<PathBuf>,
}

/// Where the Kafka cluster is, for the commands that can use one.
#[derive(Debug, Clone, clap::Args)]
struct KafkaArgs {
    /// Kafka bootstrap servers, HOST:PORT[,HOST:PORT…]; without it, the embedded log.
    #[arg(long, value_name = "HOST:PORT")]
    brokers: Option<String>,
    /// A prefix for every topic name on the cluster (NS.market.ticks), so that several
    /// pipelines can share one cluster.
    #[arg(long, value_name = "NS", default_value = "", requires = "brokers")]
    namespace: String,
    /// A Confluent-compatible schema registry: events are then written with its framing
    /// (magic byte and schema id) under schemas registered there, and read in either framing.
    #[arg(long, value_name = "URL", requires = "brokers")]
    schema_registry: Option<String>,
}

impl KafkaArgs {
    /// Returns the cluster settings, when brokers were given.
    fn settings(&self) -> Option<tickscale::kafka::KafkaSettings> {
        self.brokers
            .as_ref()
            .map(|brokers| tickscale::kafka::KafkaSettings {
                brokers: brokers.clone(),
                namespace: self.namespace.clone(),
                schema_registry: self.schema_registry.clone(),
            })
    }
}

/// The services of a Kafka run or replay whose load comes from workload traces on the topics.
#[derive(Debug, Clone, clap::Args)]
struct TracedArgs {
    /// With --brokers: services whose load comes from pod metrics (workload traces published
    /// with `tickscale produce --load SERVICE=FILE`) instead of the market.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "SERVICE",
        requires = "brokers"
    )]
    traced: Vec<String>,
}

impl TracedArgs {
    /// Returns the services named, each checked against `topology`.
    fn services(
        &self,
        topology: &tickscale::topology::Topology,
    ) -> anyhow::Result<std::collections::BTreeSet<String>> {
        for service in &self.traced {
            anyhow::ensure!(
                topology.service(service).is_some(),
                "--traced {service}: no such service in the topology"
            );
        }
        Ok(self.traced.iter().cloned().collect())
    }
}

impl StateArgs {
    fn topology(&self) -> anyhow::Result<tickscale::topology::Topology> {
        Ok(match &self.topology {
            Some(dir) => tickscale::topology::Topology::load(dir)?,
            None => tickscale::topology::Topology::builtin()?,
        })
    }
}

/// Runs the command that `cli` names.
///
/// # Errors
/// Whatever the command failed with, for `main` to print.
pub fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Consume(args) => consume::consume(args),
        Command::Hpa(args) => hpa::hpa(args),
        Command::Explain(args) => explain::explain(args),
        Command::Topics(args) => topics::topics(args),
        Command::Produce(args) => produce::produce(args),
        Command::Backtest(args) => backtest::backtest(args),
    }
}
