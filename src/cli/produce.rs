//! `tickscale produce`: replays recordings onto Kafka topics, paced or as fast as possible.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tickscale::ingest::Format;
use tickscale::kafka::produce::{self, ProducePlan, Progress, Speed};
use tickscale::pipeline::SourceSpec;

use super::{KafkaArgs, StateArgs};

#[derive(Debug, clap::Args)]
pub struct ProduceArgs {
    /// Market recordings to replay (trades, quotes, bars, VIX).
    #[arg(long, num_args = 1.., value_name = "FILE")]
    ticks: Vec<PathBuf>,
    /// The format of every --ticks file [default: detected from the content]
    #[arg(long, value_name = "FORMAT")]
    format: Option<Format>,
    /// A workload trace replayed as a service's pod metrics, as SERVICE=FILE.
    #[arg(long, value_name = "SERVICE=FILE")]
    load: Vec<String>,
    /// Pacing: max (no pacing), realtime (the recorded gaps) or a factor such as 10x.
    #[arg(long, default_value = "max", value_name = "SPEED")]
    speed: Speed,
    /// Seconds a message may wait for the broker before the replay fails [default: no limit,
    /// retrying while the broker is away]
    #[arg(long, value_name = "SECONDS")]
    delivery_timeout: Option<u64>,
    #[command(flatten)]
    kafka: KafkaArgs,
    /// A folder with topics.toml and services.toml [default: the built-in topology]
    #[arg(long, value_name = "DIR")]
    topology: Option<PathBuf>,
}

pub fn produce(args: ProduceArgs) -> anyhow::Result<()> {
    let settings = args
        .kafka
        .settings()
        .context("produce needs --brokers HOST:PORT")?;
    let topology = StateArgs {
        state: ".tickscale".into(),
        topology: args.topology.clone(),
    }
    .topology()?;
    let plan = ProducePlan {
        sources: sources(&args, &topology)?,
        speed: args.speed,
        delivery_timeout: args.delivery_timeout.map(Duration::from_secs),
    };

    let bar = progress_bar();
    let mut on_progress = |progress: Progress| match progress {
        Progress::Sent {
            sent,
            delivered,
            ts_us,
        } => bar.set_message(format!(
            "{sent} sent, {delivered} delivered, event time {}",
            time(ts_us)
        )),
        Progress::Trouble(text) => bar.suspend(|| eprintln!("{text}")),
    };
    let report = produce::produce(&settings, &topology, &plan, &mut on_progress);
    bar.finish_and_clear();
    let report = report?;

    let total: u64 = report.per_topic.values().sum();
    let seconds = report.elapsed.as_secs_f64();
    let topics: Vec<String> = report
        .per_topic
        .iter()
        .map(|(topic, n)| format!("{topic} {n}"))
        .collect();
    say!(
        "sent {} ({} events), dead letters {}, {seconds:.1} s, {:.0} events/s",
        topics.join(", "),
        total,
        report.dead_letters,
        total as f64 / seconds.max(1e-9)
    );
    Ok(())
}

/// A spinner on standard error, hidden when standard error is not a terminal.
fn progress_bar() -> ProgressBar {
    let bar = match std::io::stderr().is_terminal() {
        true => ProgressBar::new_spinner(),
        false => ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden()),
    };
    if let Ok(style) = ProgressStyle::with_template("{spinner} {elapsed} {msg}") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Returns the inputs as `run` takes them: market files, then workload traces.
fn sources(
    args: &ProduceArgs,
    topology: &tickscale::topology::Topology,
) -> anyhow::Result<Vec<SourceSpec>> {
    anyhow::ensure!(
        !args.ticks.is_empty() || !args.load.is_empty(),
        "nothing to produce: give --ticks FILE... or --load SERVICE=FILE"
    );
    let mut sources: Vec<SourceSpec> = args
        .ticks
        .iter()
        .map(|path| SourceSpec::Market {
            path: path.clone(),
            format: args.format,
        })
        .collect();
    for mapping in &args.load {
        let (service, file) = mapping
            .split_once('=')
            .filter(|(service, file)| !service.is_empty() && !file.is_empty())
            .with_context(|| format!("--load {mapping}: expected SERVICE=FILE"))?;
        anyhow::ensure!(
            topology.service(service).is_some(),
            "--load {mapping}: no service `{service}` in the topology"
        );
        sources.push(SourceSpec::Load {
            service: service.to_string(),
            path: file.into(),
            format: None,
        });
    }
    Ok(sources)
}

fn time(ts_us: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_micros(ts_us)
        .map(|t| t.format("%Y-%m-%d %H:%M:%SZ").to_string())
        .unwrap_or_else(|| ts_us.to_string())
}
