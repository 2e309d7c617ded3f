//! The stages together on the SPY day, through the library: what each stage contributes, and
//! the predictive policy against the HPA baseline on identical input.

use tickscale::bus::EmbeddedLog;
use tickscale::pipeline::{self, Report, RunPlan, SourceSpec, StageConfig};
use tickscale::stages::decide::Policy;
use tickscale::topology::Topology;

fn run_spy(policy: Policy) -> Report {
    let path = tickscale::data::shared_data_file("market/spy_tick_20131007_trade.zip");
    let topology = Topology::builtin().expect("topology");
    let mut config = StageConfig::default();
    config.decide.policy = policy;
    let plan = RunPlan {
        sources: vec![SourceSpec::Market { path, format: None }],
        config,
        checkpoint_every: 100_000,
        summary_every_s: 3600,
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EmbeddedLog::open(dir.path(), &topology.topics).expect("log");
    pipeline::run(&log, &topology, &plan, &mut |_| {}).expect("run")
}

#[test]
fn predictive_policy_breaks_the_slo_in_fewer_windows_than_the_hpa_on_the_spy_day() {
    let hpa = run_spy(Policy::Hpa);
    let predictive = run_spy(Policy::Predictive);

    // Identical input: the same windows and the same number of decisions.
    assert_eq!(hpa.counters.windows, predictive.counters.windows);
    assert_eq!(hpa.counters.decisions, predictive.counters.decisions);
    assert_eq!(
        predictive.counters.decisions,
        5 * predictive.counters.windows
    );

    let (h, p) = (
        hpa.counters.slo_violations,
        predictive.counters.slo_violations,
    );
    assert!(
        p * 2 < h,
        "predictive {p} SLO-violating windows against the HPA's {h}"
    );
    // It buys that with more pods, but not without bound.
    let (hp, pp) = (hpa.counters.pod_hours, predictive.counters.pod_hours);
    assert!(
        pp > hp && pp < 2.0 * hp,
        "pod-hours: predictive {pp:.1}, HPA {hp:.1}"
    );

    // The monitor scored the forecasts of every service.
    assert!(
        predictive.counters.model_events >= 5,
        "{:?}",
        predictive.counters
    );
}
