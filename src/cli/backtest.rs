//! `tickscale backtest`: replays recorded inputs through the stages under several policies and
//! compares them side by side.

use std::collections::BTreeSet;
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use tickscale::backtest::{self, html, log_input::LogEvents, table, traces, Input, Replay};
use tickscale::pipeline::{SourceSpec, StageConfig};
use tickscale::topology::Topology;

use super::run::InputArgs;

/// The default price of a pod-hour: about the on-demand hourly price of a 2-vCPU, 8 GB cloud
/// instance (an m5.large in us-east-1 was 0.096 USD in 2024).
const DEFAULT_PRICE_PER_POD_HOUR: f64 = 0.096;
const DEFAULT_WINDOW_S: i64 = 15;

#[derive(Debug, clap::Args)]
pub struct BacktestArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Replays the input topics of a state folder written by `tickscale run`, instead of files.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["ticks", "load", "brokers"])]
    from_log: Option<PathBuf>,
    /// Replays the input topics of a Kafka namespace (--brokers, --namespace) from the start
    /// of every partition to its current end, instead of files.
    #[command(flatten)]
    kafka: super::KafkaArgs,
    #[command(flatten)]
    traced: super::TracedArgs,
    /// With --brokers: skips the events before this event time (RFC 3339, for example
    /// 2024-03-15T14:00:00Z).
    #[arg(long, value_name = "TIME", requires = "brokers")]
    since: Option<String>,
    /// The policies to compare, comma separated [default: hpa, keda-lag, holt-winters,
    /// conservative, balanced, aggressive, event-driven, ml-optimised]
    #[arg(long, value_name = "LIST")]
    policy: Option<String>,
    /// The price of one pod-hour, for the cost row [default: 0.096, about a 2-vCPU on-demand
    /// cloud instance's hour in USD]
    #[arg(long, value_name = "PRICE")]
    price_per_pod_hour: Option<f64>,
    /// Writes the report as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Writes the report as a self-contained HTML page with plots to FILE.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// A folder with topics.toml and services.toml [default: the built-in topology]
    #[arg(long, value_name = "DIR")]
    topology: Option<PathBuf>,
}

pub fn backtest(args: BacktestArgs) -> anyhow::Result<()> {
    // Installed first, so that Ctrl-C while the inputs are being opened also stops cleanly.
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed))
        .context("failed to install the Ctrl-C handler")?;
    let replay = plan(&args)?;

    let bar = progress_bar(args.from_log.is_some());
    let mut on_progress = |p: &backtest::Progress| {
        if let Some(total) = p.total {
            bar.set_length(total);
        }
        bar.set_position(p.events_in);
        if let Some(ts) = p.event_time_us {
            bar.set_message(super::run::time(ts));
        }
    };
    let report = backtest::replay(&replay, &stop, &mut on_progress)?;
    bar.finish_and_clear();

    say!("{}", table::table(&report));
    if let Some(path) = &args.json {
        let json = report.to_json()?;
        std::fs::write(path, json)
            .with_context(|| format!("failed to write {}", path.display()))?;
    }
    if let Some(path) = &args.html {
        let page = html::html(&report)?;
        std::fs::write(path, page)
            .with_context(|| format!("failed to write {}", path.display()))?;
    }
    if report.partial {
        tracing::warn!("Stopped before the end of the input; the report is partial.");
    }
    Ok(())
}

/// Returns a bar on standard error, hidden when it is not a terminal; a spinner when the
/// number of events is not known ahead (files are not counted before the replay).
fn progress_bar(total_known: bool) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(0);
    let template = if total_known {
        "{spinner} {human_pos}/{human_len} events ({per_sec}) {wide_bar} event time {msg}"
    } else {
        "{spinner} {human_pos} events ({per_sec}), event time {msg}"
    };
    let style = indicatif::ProgressStyle::with_template(template);
    if let Ok(style) = style {
        bar.set_style(style);
    }
    bar
}

/// Builds the replay: topology (with a service for each known trace given by a new name),
/// input, shared settings and policies.
fn plan(args: &BacktestArgs) -> anyhow::Result<Replay> {
    let mut topology = match &args.topology {
        Some(dir) => Topology::load(dir)?,
        None => Topology::builtin()?,
    };
    add_trace_services(&args.input, &mut topology)?;
    let price = args
        .price_per_pod_hour
        .unwrap_or(DEFAULT_PRICE_PER_POD_HOUR);
    anyhow::ensure!(
        price.is_finite() && price >= 0.0,
        "--price-per-pod-hour {price}: expected zero or a positive price"
    );

    let (input, base, traced, input_names) = match (&args.from_log, args.kafka.settings()) {
        (Some(dir), _) => from_log(args, dir, &topology)?,
        (None, Some(settings)) => from_kafka(args, settings, &topology)?,
        (None, None) => from_files(args, &mut topology)?,
    };
    let policies = backtest::policies(args.policy.as_deref(), &base.decide)?;
    Ok(Replay {
        input,
        topology,
        traced,
        base,
        policies,
        price_per_pod_hour: price,
        input_names,
    })
}

type Planned = (Input, StageConfig, BTreeSet<String>, Vec<String>);

fn from_files(args: &BacktestArgs, topology: &mut Topology) -> anyhow::Result<Planned> {
    // A replay of traces alone runs no market: the generator would only add idle services.
    let market = !args.input.ticks.is_empty() || args.input.load.is_empty();
    let (sources, base) = args.input.plan(topology, market)?;
    let traced: BTreeSet<String> = sources
        .iter()
        .filter_map(|s| match s {
            SourceSpec::Load { service, .. } => Some(service.clone()),
            _ => None,
        })
        .collect();
    if !market {
        topology.services.retain(|s| traced.contains(&s.name));
    }
    let names = sources.iter().map(SourceSpec::name).collect();
    Ok((Input::Files(sources), base, traced, names))
}

fn from_log(
    args: &BacktestArgs,
    dir: &std::path::Path,
    topology: &Topology,
) -> anyhow::Result<Planned> {
    let (traced, bar_interval) = LogEvents::open(dir, &topology.topics)?.inputs_seen()?;
    let base = base_config(&args.input, bar_interval)?;
    let names = vec![format!("log {}", dir.display())];
    Ok((Input::Log(dir.to_path_buf()), base, traced, names))
}

fn from_kafka(
    args: &BacktestArgs,
    settings: tickscale::kafka::KafkaSettings,
    topology: &Topology,
) -> anyhow::Result<Planned> {
    anyhow::ensure!(
        args.input.ticks.is_empty() && args.input.load.is_empty(),
        "--brokers: a Kafka backtest reads its input from the topics; give either --brokers or \
         files, not both"
    );
    let traced = args.traced.services(topology)?;
    let since_us = match &args.since {
        Some(text) => {
            let time = chrono::DateTime::parse_from_rfc3339(text).with_context(|| {
                format!("--since {text}: expected an RFC 3339 time such as 2024-03-15T14:00:00Z")
            })?;
            Some(time.timestamp_micros())
        }
        None => None,
    };
    let base = base_config(&args.input, None)?;
    let mut name = format!("kafka {}", settings.brokers);
    if !settings.namespace.is_empty() {
        name += &format!(" namespace {}", settings.namespace);
    }
    if let Some(text) = &args.since {
        name += &format!(" since {text}");
    }
    Ok((
        Input::Kafka { settings, since_us },
        base,
        traced,
        vec![name],
    ))
}

/// Returns the stages' settings for a replay of recorded topics: `--window`, or else 15 s or
/// the bar interval seen in the input when that is longer.
fn base_config(input: &InputArgs, bar_interval: Option<i64>) -> anyhow::Result<StageConfig> {
    super::run::check_numbers(input)?;
    let window = input
        .window
        .unwrap_or_else(|| bar_interval.unwrap_or(0).max(DEFAULT_WINDOW_S));
    input.stage_config(window)
}

/// Adds a general service for each `--load SERVICE=FILE` whose service the topology lacks and
/// whose file is one of the known public traces ([`traces`]).
fn add_trace_services(input: &InputArgs, topology: &mut Topology) -> anyhow::Result<()> {
    for mapping in &input.load {
        let Some((service, file)) = mapping.split_once('=') else {
            continue;
        };
        if service.is_empty() || topology.service(service).is_some() {
            continue;
        }
        if let Some(profile) = traces::profile_of(std::path::Path::new(file))? {
            topology.services.push(profile.service(service));
        }
    }
    Ok(())
}
