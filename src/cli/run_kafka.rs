//! `tickscale run --brokers`: the stages on Kafka, all or some of them in this process.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use tickscale::kafka::stages::{self, Stage, StagePlan};
use tickscale::kafka::KafkaSettings;
use tickscale::pipeline::StageConfig;
use tickscale::topology::Topology;

/// The options that only a Kafka run has.
#[derive(Debug, clap::Args)]
pub struct KafkaRunArgs {
    /// With --brokers: the stages this process runs. One market stage per group; run as many
    /// service stages as you like, and they split the services.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "market,service",
        requires = "brokers"
    )]
    stages: Vec<Stage>,
    /// With --brokers: the consumer group (the stages use GROUP.market and GROUP.service).
    #[arg(long, default_value = "tickscale", requires = "brokers")]
    group: String,
    /// With --brokers: keeps waiting for new input instead of finishing at the end of the
    /// topics; Ctrl-C stops after a last checkpoint.
    #[arg(long, requires = "brokers")]
    follow: bool,
    #[command(flatten)]
    traced: super::TracedArgs,
    /// With --brokers: input messages between checkpoints.
    #[arg(
        long,
        default_value_t = 20_000,
        requires = "brokers",
        value_name = "MESSAGES"
    )]
    kafka_checkpoint_every: u64,
}

pub fn run(
    args: &KafkaRunArgs,
    settings: &KafkaSettings,
    topology: &Topology,
    config: &StageConfig,
) -> anyhow::Result<()> {
    let traced = args.traced.services(topology)?;
    anyhow::ensure!(
        args.kafka_checkpoint_every >= 1,
        "--kafka-checkpoint-every 0: expected at least one message between checkpoints"
    );
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    // Without a handler Ctrl-C kills at once; that loses nothing either (the snapshots hold),
    // so failing to install one is only worth a warning.
    if let Err(error) = ctrlc::set_handler(move || {
        flag.store(true, std::sync::atomic::Ordering::Relaxed);
    }) {
        tracing::warn!(%error, "Ctrl-C will stop without a last checkpoint.");
    }
    let plan = StagePlan {
        settings,
        topology,
        config,
        traced,
        group: args.group.clone(),
        follow: args.follow,
        checkpoint_every: args.kafka_checkpoint_every,
        stop: &stop,
    };
    let chosen: BTreeSet<Stage> = args.stages.iter().copied().collect();
    let started = std::time::Instant::now();
    let report = stages::run(&plan, &chosen)?;
    let seconds = started.elapsed().as_secs_f64();
    if let Some(market) = &report.market {
        let c = &market.counters;
        let state = match (market.already_complete, market.resumed) {
            (true, _) => "had already finished",
            (false, true) => "resumed and finished",
            (false, false) => "finished",
        };
        say!(
            "market stage {state}: events in {}, windows {}, dead letters {}",
            c.events_in,
            c.windows,
            c.dead_letters
        );
    }
    if let Some(service) = &report.service {
        say!(
            "service stage: {} decisions on partitions {:?}, {} repeated windows skipped, {} \
             dead letters",
            service.decisions,
            service.partitions,
            service.repeats_skipped,
            service.dead_letters
        );
    }
    say!(
        "Kafka run on {} (group {}) in {seconds:.1} s.",
        settings.brokers,
        args.group
    );
    Ok(())
}
