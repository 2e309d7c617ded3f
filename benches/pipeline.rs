//! Throughput of the feature stage and of the whole pipeline on the SPY day, each beside the
//! time to merely parse the same file, measured in the same run.
//!
//! `cargo bench --bench pipeline`; the recordings come from `TICKSCALE_DATA` (default
//! `../shared/data`). Compare the `thrpt` lines within one run: the machine is shared and noisy,
//! so the ratios mean more than the absolute figures.

use std::collections::BTreeSet;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use tickscale::bus::EmbeddedLog;
use tickscale::events::TradeTick;
use tickscale::ingest::{self, SourceEvent};
use tickscale::pipeline::{self, RunPlan, SourceSpec, StageConfig};
use tickscale::stages::features::{FeatureConfig, FeatureWindows};
use tickscale::topology::Topology;

fn spy_trades() -> Vec<TradeTick> {
    let path = tickscale::data::shared_data_file("market/spy_tick_20131007_trade.zip");
    ingest::open(&path, None)
        .expect("open SPY")
        .filter_map(|item| match item {
            Ok(SourceEvent::Trade(t)) => Some(t),
            _ => None,
        })
        .collect()
}

fn bench_spy_day(c: &mut Criterion) {
    let path = tickscale::data::shared_data_file("market/spy_tick_20131007_trade.zip");
    let trades = spy_trades();
    let topology = Topology::builtin().expect("topology");
    let mut group = c.benchmark_group("spy_day");
    group.sample_size(10);
    group.throughput(Throughput::Elements(trades.len() as u64));

    group.bench_function("parse_only_baseline", |b| {
        b.iter(|| ingest::open(&path, None).expect("open").count())
    });

    group.bench_function("feature_stage", |b| {
        let fresh = || {
            let config = FeatureConfig::default();
            let traced = BTreeSet::new();
            FeatureWindows::new(
                config,
                topology.services.clone(),
                traced,
                Default::default(),
            )
        };
        b.iter_batched(
            fresh,
            |mut windows| {
                let mut out = Vec::new();
                for t in &trades {
                    windows.on_trade(t, &mut out);
                    out.clear();
                }
                windows
            },
            BatchSize::LargeInput,
        )
    });

    group.bench_function("whole_pipeline_embedded_log", |b| {
        let plan = RunPlan {
            sources: vec![SourceSpec::Market {
                path: path.clone(),
                format: None,
            }],
            config: StageConfig::default(),
            checkpoint_every: 50_000,
            summary_every_s: i64::MAX / 2,
        };
        b.iter_batched(
            || tempfile::tempdir().expect("tempdir"),
            |dir| {
                let log = EmbeddedLog::open(dir.path(), &topology.topics).expect("log");
                pipeline::run(&log, &topology, &plan, &mut |_| {}).expect("run");
                dir
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, bench_spy_day);
criterion_main!(benches);
