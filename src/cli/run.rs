//! `tickscale run`: the pipeline on the embedded log, with a live summary.

use std::path::PathBuf;

use anyhow::Context;
use chrono::{DateTime, Utc};
use tickscale::bus::EmbeddedLog;
use tickscale::generator::GeneratorConfig;
use tickscale::ingest::{self, Format, SourceEvent};

const DEFAULT_WINDOW_S: i64 = 15;
/// The longest window (and lateness) accepted: a day.
const MAX_WINDOW_S: i64 = 86_400;
use tickscale::pipeline::{self, Progress, Report, RunPlan, SourceSpec, StageConfig, Stages};
use tickscale::stages::decide::{Policy, Strategy};

use super::{KafkaArgs, StateArgs};

/// The inputs of a run and the stage settings they imply, shared by `run` and `backtest`.
#[derive(Debug, clap::Args)]
pub struct InputArgs {
    /// Market recordings to run on (trades, quotes, bars, VIX); without any, the built-in
    /// market generator runs.
    #[arg(long, num_args = 1.., value_name = "FILE")]
    pub ticks: Vec<PathBuf>,
    /// The format of every --ticks file [default: detected from the content]
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<Format>,
    /// Takes a service's load from a workload trace instead of the market, as SERVICE=FILE.
    #[arg(long, value_name = "SERVICE=FILE")]
    pub load: Vec<String>,
    /// Feature window length in seconds, also the decision interval [default: 15, or the bar
    /// interval when bars are longer]
    #[arg(long, value_name = "SECONDS")]
    pub window: Option<i64>,
    /// Seconds an event may arrive behind the latest one seen and still join its own window.
    #[arg(long, default_value_t = 2, value_name = "SECONDS")]
    pub allowed_lateness: i64,
    /// Seed of the built-in market generator.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    input: InputArgs,
    /// The scaling policy.
    #[arg(long, value_enum, default_value = "predictive")]
    policy: PolicyArg,
    /// The predictive strategy: conservative (the forecast interval's upper bound), balanced,
    /// aggressive (the point forecast), event-driven (balanced, with a floor raised ahead of
    /// the NYSE open and close) or ml-optimised (the forecast quantile that balances the cost
    /// of under- against over-provisioning).
    #[arg(long, default_value = "balanced", value_name = "STRATEGY")]
    strategy: Strategy,
    /// Discards the earlier run held in the state folder (only a tickscale log is ever cleared).
    #[arg(long)]
    fresh: bool,
    /// Input events between checkpoints.
    #[arg(long, default_value_t = 50_000)]
    checkpoint_every: u64,
    /// Event-time seconds between two lines of the live summary (0: none).
    #[arg(long, default_value_t = 1800, value_name = "SECONDS")]
    summary_every: i64,
    #[command(flatten)]
    state: StateArgs,
    #[command(flatten)]
    kafka: KafkaArgs,
    #[command(flatten)]
    on_kafka: super::run_kafka::KafkaRunArgs,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum PolicyArg {
    /// The Kubernetes HPA rule on CPU utilisation (reactive).
    Hpa,
    /// Provisions for the forecast load one pod start-up ahead, never below the HPA.
    Predictive,
    /// KEDA's Kafka scaler: the service's backlog read as consumer lag over 6 partitions.
    KedaLag,
}

pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let topology = args.state.topology()?;
    if let Some(settings) = args.kafka.settings() {
        anyhow::ensure!(
            args.input.ticks.is_empty() && args.input.load.is_empty(),
            "--brokers: a Kafka run reads its input from the topics; publish files there first \
             with `tickscale produce --ticks FILE... --brokers {}`",
            settings.brokers
        );
        check_run_numbers(&args)?;
        check_numbers(&args.input)?;
        let window = args.input.window.unwrap_or(DEFAULT_WINDOW_S);
        let mut config = args.input.stage_config(window)?;
        decide(&args, &mut config);
        return super::run_kafka::run(&args.on_kafka, &settings, &topology, &config);
    }
    let plan = plan(&args, &topology)?;
    // Opening takes the folder's lock and checks that it is a tickscale log, so --fresh can
    // neither wipe a folder of other files nor pull the log from under a running process.
    let log = EmbeddedLog::open(&args.state.state, &topology.topics)?;
    if args.fresh {
        log.clear()?;
    }

    let started = std::time::Instant::now();
    let mut header_printed = false;
    let mut on_progress = |progress: Progress<'_>| match progress {
        Progress::Summary {
            ts_us,
            regime,
            stages,
        } if args.summary_every > 0 => {
            if !header_printed {
                print_header(stages);
                header_printed = true;
            }
            print_summary(ts_us, regime, stages);
        }
        Progress::Summary { .. } => {}
        Progress::Checkpoint { counters } => {
            tracing::info!(
                events = counters.events_in,
                decisions = counters.decisions,
                "Checkpoint committed."
            );
        }
    };
    let report = pipeline::run(&log, &topology, &plan, &mut on_progress)?;
    print_report(&report, &args.state.state, started.elapsed());
    Ok(())
}

fn plan(args: &RunArgs, topology: &tickscale::topology::Topology) -> anyhow::Result<RunPlan> {
    check_run_numbers(args)?;
    let (sources, mut config) = args.input.plan(topology, true)?;
    decide(args, &mut config);
    Ok(RunPlan {
        sources,
        config,
        checkpoint_every: args.checkpoint_every.max(1),
        summary_every_s: args.summary_every.max(1),
    })
}

/// Sets the policy and strategy of `config` from the arguments.
fn decide(args: &RunArgs, config: &mut StageConfig) {
    config.decide.policy = match args.policy {
        PolicyArg::Hpa => Policy::Hpa,
        PolicyArg::Predictive => Policy::Predictive,
        PolicyArg::KedaLag => Policy::KedaLag,
    };
    config.decide.strategy = args.strategy;
}

/// Refuses checkpoint and summary spacings that cannot mean anything.
fn check_run_numbers(args: &RunArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.checkpoint_every >= 1,
        "--checkpoint-every 0: expected at least one event between checkpoints"
    );
    anyhow::ensure!(
        args.summary_every >= 0,
        "--summary-every {}: expected zero (no summary) or more seconds",
        args.summary_every
    );
    Ok(())
}

impl InputArgs {
    /// Returns the sources these arguments name, checked, and the stage settings they imply
    /// (window and lateness; the decide settings are the defaults). Without `--ticks`, the
    /// built-in market generator is a source when `generator_when_no_ticks` is set.
    pub fn plan(
        &self,
        topology: &tickscale::topology::Topology,
        generator_when_no_ticks: bool,
    ) -> anyhow::Result<(Vec<SourceSpec>, StageConfig)> {
        let args = self;
        let mut sources: Vec<SourceSpec> = args
            .ticks
            .iter()
            .map(|path| SourceSpec::Market {
                path: path.clone(),
                format: args.format,
            })
            .collect();
        if sources.is_empty() && generator_when_no_ticks {
            sources.push(SourceSpec::Generator(GeneratorConfig {
                seed: args.seed,
                ..GeneratorConfig::default()
            }));
        }
        check_numbers(args)?;
        let mut seen_files = std::collections::BTreeSet::new();
        for path in &args.ticks {
            let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
            anyhow::ensure!(
                seen_files.insert(canonical),
                "--ticks {}: the same file is given twice; its events would count twice",
                path.display()
            );
        }
        let mut seen_services = std::collections::BTreeSet::new();
        for mapping in &args.load {
            let (service, file) = mapping
                .split_once('=')
                .filter(|(service, file)| !service.is_empty() && !file.is_empty())
                .with_context(|| format!("--load {mapping}: expected SERVICE=FILE"))?;
            anyhow::ensure!(
                seen_services.insert(service.to_string()),
                "--load {mapping}: service `{service}` already takes its load from another trace"
            );
            anyhow::ensure!(
                topology.service(service).is_some(),
                "--load {mapping}: no service `{service}` in the topology; the services are {}",
                topology
                    .services
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            sources.push(SourceSpec::Load {
                service: service.to_string(),
                path: file.into(),
                format: None,
            });
        }

        check_kinds(&sources)?;
        let window = match args.window {
            Some(window) => window,
            None => default_window(&sources)?,
        };
        Ok((sources, self.stage_config(window)?))
    }

    /// Returns the stages' settings for a window of `window` seconds (the decide settings
    /// are the defaults).
    pub fn stage_config(&self, window: i64) -> anyhow::Result<StageConfig> {
        anyhow::ensure!(
            window > 0,
            "--window {window}: expected a positive number of seconds"
        );
        anyhow::ensure!(
            self.allowed_lateness >= 0,
            "--allowed-lateness {}: expected zero or more seconds",
            self.allowed_lateness
        );
        let mut config = StageConfig::default();
        config.features.window_s = window;
        config.features.allowed_lateness_s = self.allowed_lateness;
        config.predict.window_s = window;
        config.decide.decision_interval_s = window;
        Ok(config)
    }
}

/// Refuses a workload trace given as market data, and market data given as a trace.
fn check_kinds(sources: &[SourceSpec]) -> anyhow::Result<()> {
    for source in sources {
        match source {
            SourceSpec::Market { path, format } => {
                let found = ingest::open(path, *format)?.format();
                anyhow::ensure!(
                    !found.is_workload(),
                    "--ticks {}: this is a workload trace ({found}), not market data; give it \
                     as --load SERVICE={}",
                    path.display(),
                    path.display()
                );
            }
            SourceSpec::Load {
                service,
                path,
                format,
            } => {
                let found = ingest::open(path, *format)?.format();
                anyhow::ensure!(
                    found.is_workload(),
                    "--load {service}={}: this is market data ({found}), not a workload trace; \
                     give it with --ticks",
                    path.display()
                );
            }
            SourceSpec::Generator(_) => {}
        }
    }
    Ok(())
}

/// Returns 15 s, or the longest bar interval among the market inputs when that is longer: a
/// window shorter than a bar only splits the bar's activity evenly and multiplies decisions.
fn default_window(sources: &[SourceSpec]) -> anyhow::Result<i64> {
    let mut window = DEFAULT_WINDOW_S;
    for source in sources {
        let SourceSpec::Market { path, format } = source else {
            continue;
        };
        let reader = ingest::open(path, *format)?;
        if reader.format() != Format::Bars {
            continue;
        }
        let first_bar = reader.take(100).find_map(|item| match item {
            Ok(SourceEvent::Bar(bar)) => Some(bar.interval_s),
            _ => None,
        });
        window = window.max(first_bar.unwrap_or(0));
    }
    Ok(window)
}

/// Refuses numeric options that cannot mean anything, rather than bending them into range.
pub(super) fn check_numbers(args: &InputArgs) -> anyhow::Result<()> {
    if let Some(window) = args.window {
        anyhow::ensure!(
            (1..=MAX_WINDOW_S).contains(&window),
            "--window {window}: expected between 1 and {MAX_WINDOW_S} seconds"
        );
    }
    anyhow::ensure!(
        (0..=MAX_WINDOW_S).contains(&args.allowed_lateness),
        "--allowed-lateness {}: expected between 0 and {MAX_WINDOW_S} seconds",
        args.allowed_lateness
    );
    Ok(())
}

pub(super) fn time(ts_us: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(ts_us)
        .map(|t| t.format("%Y-%m-%d %H:%M:%SZ").to_string())
        .unwrap_or_else(|| ts_us.to_string())
}

fn print_header(stages: &Stages) {
    let names: Vec<String> = stages
        .services()
        .iter()
        .map(|s| format!("{:>12}", s.name))
        .collect();
    say!(
        "{:<21} {:<9} {}   (replicas, load/s)",
        "event time",
        "regime",
        names.join(" ")
    );
}

fn print_summary(ts_us: i64, regime: &str, stages: &Stages) {
    let cells: Vec<String> = stages
        .service
        .latest
        .iter()
        .map(|d| match d {
            Some(d) => format!("{:>3} {:>8.0}", d.desired_replicas, d.observed_load),
            None => format!("{:>12}", "-"),
        })
        .collect();
    say!("{:<21} {:<9} {}", time(ts_us), regime, cells.join(" "));
}

fn print_report(report: &Report, state: &std::path::Path, elapsed: std::time::Duration) {
    let c = &report.counters;
    if report.already_complete {
        say!(
            "This run had already finished in {}; nothing to do.",
            state.display()
        );
    } else if report.resumed {
        say!(
            "Resumed from the last checkpoint in {} and finished.",
            state.display()
        );
    }
    say!(
        "events in {}, dead letters {}, windows {}, decisions {} ({} changed replicas), pod-hours {:.1}, SLO-violating windows {}, drift alarms {}{}",
        c.events_in,
        c.dead_letters,
        c.windows,
        c.decisions,
        c.scale_changes,
        c.pod_hours,
        c.slo_violations,
        c.drift_alarms,
        if report.already_complete { String::new() } else { format!(", {:.1} s", elapsed.as_secs_f64()) }
    );
    for ((spec, latest), (peak, peak_ts)) in
        report.services.iter().zip(&report.latest).zip(&report.peak)
    {
        let last = latest.as_ref().map_or(0, |d| d.desired_replicas);
        say!(
            "  {:<12} peak {:>3} replicas at {}, last {}",
            spec.name,
            peak,
            time(*peak_ts),
            last
        );
    }
    say!(
        "Decisions: tickscale consume scaling.decisions --from-beginning --state {}",
        state.display()
    );
}
