//! Replay speed of `tickscale backtest` on the SPY day (five services, four policies), beside
//! the time to merely parse the same file, measured in the same run.
//!
//! `cargo bench --bench backtest`; the recordings come from `TICKSCALE_DATA` (default
//! `../shared/data`). Criterion's `thrpt` lines give input events per second; the line printed
//! before them gives simulated seconds per wall second from one timed replay. Set
//! `TICKSCALE_BENCH_NASA=1` to also time one replay of the NASA per-second trace (two months of
//! seconds, about 5 million events; too long for criterion's ten samples).

use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tickscale::backtest::{self, Input, Replay};
use tickscale::ingest;
use tickscale::pipeline::{SourceSpec, StageConfig};
use tickscale::topology::Topology;

const POLICIES: &str = "hpa,keda-lag,holt-winters,balanced";

fn spy_replay() -> Replay {
    let path = tickscale::data::shared_data_file("market/spy_tick_20131007_trade.zip");
    let base = StageConfig::default();
    Replay {
        input: Input::Files(vec![SourceSpec::Market { path, format: None }]),
        topology: Topology::builtin().expect("topology"),
        traced: BTreeSet::new(),
        policies: backtest::policies(Some(POLICIES), &base.decide).expect("policies"),
        base,
        price_per_pod_hour: 0.096,
        input_names: vec!["spy".into()],
    }
}

fn nasa_replay() -> Replay {
    let path =
        tickscale::data::shared_data_file("workload/nasa-http-1995-requests-per-second.tbz2");
    let profile = backtest::traces::profile_of(&path)
        .expect("open")
        .expect("nasa profile");
    let mut topology = Topology::builtin().expect("topology");
    topology.services = vec![profile.service("nasa")];
    let base = StageConfig::default();
    Replay {
        input: Input::Files(vec![SourceSpec::Load {
            service: "nasa".into(),
            path,
            format: None,
        }]),
        topology,
        traced: BTreeSet::from(["nasa".to_string()]),
        policies: backtest::policies(None, &base.decide).expect("policies"),
        base,
        price_per_pod_hour: 0.096,
        input_names: vec!["nasa".into()],
    }
}

/// Replays once and prints events/s and simulated seconds per wall second.
fn time_once(name: &str, replay: &Replay) -> u64 {
    let started = Instant::now();
    let report = backtest::replay(replay, &AtomicBool::new(false), &mut |_| {}).expect("replay");
    let wall = started.elapsed().as_secs_f64();
    let span = report
        .facts
        .last_window_end_us
        .zip(report.facts.first_window_us)
        .map_or(0.0, |(end, start)| (end - start) as f64 / 1e6);
    eprintln!(
        "{name}: {} events, {} policies, {:.2} s wall: {:.0} events/s, {:.0} simulated s per wall s",
        report.facts.events_in,
        report.policies.len(),
        wall,
        report.facts.events_in as f64 / wall,
        span / wall
    );
    report.facts.events_in
}

fn bench_backtest(c: &mut Criterion) {
    let replay = spy_replay();
    let events = time_once("spy day, 5 services", &replay);
    if std::env::var_os("TICKSCALE_BENCH_NASA").is_some() {
        time_once("nasa per-second trace, 1 service", &nasa_replay());
    }

    let mut group = c.benchmark_group("backtest_spy_day");
    group.sample_size(10);
    group.throughput(Throughput::Elements(events));
    let Input::Files(specs) = &replay.input else {
        return;
    };
    let SourceSpec::Market { path, .. } = &specs[0] else {
        return;
    };
    group.bench_function("parse_only_baseline", |b| {
        b.iter(|| ingest::open(path, None).expect("open").count())
    });
    group.bench_function("replay_four_policies", |b| {
        b.iter(|| backtest::replay(&replay, &AtomicBool::new(false), &mut |_| {}).expect("replay"))
    });
    group.finish();
}

criterion_group!(benches, bench_backtest);
criterion_main!(benches);
