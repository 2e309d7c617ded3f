use super::*;
use crate::events::{FeatureVector, ForecastPoint, Regime};
use crate::stages::actuate::SimulatedCluster;
use crate::stages::predict::{Forecaster, PredictConfig};
use crate::topology::ServiceKind;

pub(super) const S: i64 = 1_000_000;

pub(super) fn spec() -> ServiceSpec {
    ServiceSpec {
        name: "svc".into(),
        kind: ServiceKind::General,
        min_replicas: 1,
        max_replicas: 20,
        capacity_per_pod: 100.0,
        startup_s: 30,
        slo_latency_ms: 500.0,
        base_latency_ms: 10.0,
        target_utilization_percent: 60.0,
        initial_replicas: 3,
    }
}

pub(super) fn regime() -> MarketRegime {
    MarketRegime {
        id: "regime/0".into(),
        window_start_us: 0,
        window_end_us: 15 * S,
        regime: Regime::Volatile,
        volatility: 0.5,
        volatility_ratio: 1.0,
        trend_score: 0.0,
        volume_ratio: 1.0,
        confidence: 0.8,
    }
}

/// A window ending at `end_s` with `replicas` asked, `ready` of them serving at `util` %.
pub(super) fn observed(end_s: i64, replicas: i64, ready: i64, util: f64) -> ObservedOutcome {
    ObservedOutcome {
        id: format!("observed/svc/{}", (end_s - 15) * S),
        service: "svc".into(),
        window_start_us: (end_s - 15) * S,
        window_end_us: end_s * S,
        load: util * ready as f64,
        replicas,
        ready_replicas: ready,
        capacity: 100.0 * ready as f64,
        utilization: util,
        backlog: 0.0,
        latency_ms: 10.0,
        slo_latency_ms: 500.0,
        slo_violated: false,
    }
}

pub(super) fn flat_forecast(end_s: i64, load: f64, confidence: f64) -> LoadForecast {
    LoadForecast {
        id: format!("forecast/svc/{}", end_s * S),
        service: "svc".into(),
        ts_us: end_s * S,
        model: "holt-winters".into(),
        model_version: 1,
        observed_load: load,
        interval_level: 0.9,
        confidence,
        points: [15, 30, 60, 120, 300]
            .into_iter()
            .map(|h| ForecastPoint {
                horizon_s: h,
                load,
                lower: load,
                upper: load,
            })
            .collect(),
    }
}

fn hpa() -> DecisionEngine {
    DecisionEngine::new(DecideConfig {
        policy: Policy::Hpa,
        ..Default::default()
    })
}

#[test]
fn hpa_scales_three_pods_at_ninety_percent_to_five() {
    let d = hpa().decide(
        &spec(),
        &flat_forecast(15, 0.0, 1.0),
        &regime(),
        &observed(15, 3, 3, 90.0),
    );
    // ratio 90/60 = 1.5; ceil(3 × 1.5) = ceil(4.5) = 5.
    assert_eq!(
        (d.current_replicas, d.desired_replicas, d.reactive_replicas),
        (3, 5, 5)
    );
    assert_eq!(
        (d.rule.as_str(), d.policy.as_str(), d.strategy.as_str()),
        ("hpa", "hpa", "reactive")
    );
    assert!(d.bounds.is_empty());
    assert_eq!((d.forecast_id.clone(), d.predictive_replicas), (None, None));
    assert_eq!(d.regime, "volatile");
    assert_eq!(d.id, "decision/svc/15000000");
    assert_eq!(
        d.reason,
        "utilization 90.0% vs target 60% asks 5 pods; scaling 3 -> 5"
    );
}

#[test]
fn hpa_keeps_the_count_within_tolerance() {
    // ratio 64/60 = 1.067 would give ceil(3.2) = 4, but |1.067 − 1| ≤ 0.1.
    let d = hpa().decide(
        &spec(),
        &flat_forecast(15, 0.0, 1.0),
        &regime(),
        &observed(15, 3, 3, 64.0),
    );
    assert_eq!((d.desired_replicas, d.reactive_replicas), (3, 3));
    assert_eq!(d.bounds, vec!["tolerance"]);
    assert!(
        d.reason.ends_with("keeping 3 (bounded by tolerance)"),
        "{}",
        d.reason
    );
}

#[test]
fn scale_down_is_held_by_stabilisation_for_300_s_then_released() {
    let mut engine = hpa();
    let f = flat_forecast(15, 0.0, 1.0);
    assert_eq!(
        engine
            .decide(&spec(), &f, &regime(), &observed(15, 3, 3, 90.0))
            .desired_replicas,
        5
    );

    // From 30 s on, 5 pods at 30 %: ratio 0.5 asks ceil(2.5) = 3, but 5 (recorded at 15 s)
    // stays the highest recommendation until the window [now − 300 s, now] no longer holds it.
    for end_s in (30..=315).step_by(15) {
        let d = engine.decide(&spec(), &f, &regime(), &observed(end_s, 5, 5, 30.0));
        assert_eq!(
            (d.reactive_replicas, d.desired_replicas),
            (3, 5),
            "at {end_s} s"
        );
        assert_eq!(d.bounds, vec!["stabilization"]);
    }
    let released = engine.decide(&spec(), &f, &regime(), &observed(330, 5, 5, 30.0));
    assert_eq!(released.desired_replicas, 3);
    assert!(released.bounds.is_empty());
}

#[test]
fn scale_up_is_capped_at_twice_the_current_count_or_four() {
    let spec = ServiceSpec {
        target_utilization_percent: 20.0,
        ..spec()
    };
    // ratio 100/20 = 5: ceil(2 × 5) = 10, capped at max(2 × 2, 4) = 4.
    let d = hpa().decide(
        &spec,
        &flat_forecast(15, 0.0, 1.0),
        &regime(),
        &observed(15, 2, 2, 100.0),
    );
    assert_eq!((d.reactive_replicas, d.desired_replicas), (10, 4));
    assert_eq!(d.bounds, vec!["scale-up-limit"]);
    // From 6 pods the cap is 12.
    let d = hpa().decide(
        &spec,
        &flat_forecast(15, 0.0, 1.0),
        &regime(),
        &observed(15, 6, 6, 100.0),
    );
    assert_eq!((d.reactive_replicas, d.desired_replicas), (30, 12));
}

#[test]
fn min_and_max_replicas_clamp_the_answer() {
    let small = ServiceSpec {
        max_replicas: 6,
        ..spec()
    };
    // ceil(5 × 1.5) = 8 under the scale-up cap of 10, but above max 6.
    let d = hpa().decide(
        &small,
        &flat_forecast(15, 0.0, 1.0),
        &regime(),
        &observed(15, 5, 5, 90.0),
    );
    assert_eq!((d.reactive_replicas, d.desired_replicas), (8, 6));
    assert_eq!(d.bounds, vec!["max_replicas"]);

    let floor = ServiceSpec {
        min_replicas: 2,
        ..spec()
    };
    // ratio 10/60: ceil(3 × 0.167) = 1, below min 2.
    let d = hpa().decide(
        &floor,
        &flat_forecast(15, 0.0, 1.0),
        &regime(),
        &observed(15, 3, 3, 10.0),
    );
    assert_eq!((d.reactive_replicas, d.desired_replicas), (1, 2));
    assert_eq!(d.bounds, vec!["min_replicas"]);
}

#[test]
fn starting_pods_count_as_idle_when_scaling_up() {
    // 2 of 4 ready at 90 %: ratio 1.5, but over 4 pods 1.5 × 2 / 4 = 0.75 < 1: keep 4.
    let d = hpa().decide(
        &spec(),
        &flat_forecast(15, 0.0, 1.0),
        &regime(),
        &observed(15, 4, 2, 90.0),
    );
    assert_eq!(d.desired_replicas, 4);
    assert!(
        d.reason.contains("starting pods count as idle"),
        "{}",
        d.reason
    );
    // 2 of 3 ready at 100 % of a 50 % target: 2 × 2 / 3 = 1.33; ceil(1.33 × 3) = 4.
    let spec = ServiceSpec {
        target_utilization_percent: 50.0,
        ..spec()
    };
    let d = hpa().decide(
        &spec,
        &flat_forecast(15, 0.0, 1.0),
        &regime(),
        &observed(15, 3, 2, 100.0),
    );
    assert_eq!(d.desired_replicas, 4);
}

pub(super) fn rising_forecast(confidence: f64) -> LoadForecast {
    let mut f = flat_forecast(15, 2000.0, confidence);
    f.points = vec![
        ForecastPoint {
            horizon_s: 60,
            load: 8000.0,
            lower: 7000.0,
            upper: 9000.0,
        },
        ForecastPoint {
            horizon_s: 120,
            load: 9000.0,
            lower: 7000.0,
            upper: 11000.0,
        },
    ];
    f
}

#[test]
fn predictive_provisions_for_the_forecast_at_startup_plus_interval() {
    let spec = ServiceSpec {
        capacity_per_pod: 2500.0,
        startup_s: 60,
        ..spec()
    };
    let mut engine = DecisionEngine::new(DecideConfig::default());
    let d = engine.decide(
        &spec,
        &rising_forecast(0.9),
        &regime(),
        &observed(15, 3, 3, 70.0),
    );
    // At +75 s: point 8,250, upper 9,500; balanced = 8,250 + 0.5 × 1,250 = 8,875.
    // 8,875 / (2,500 × 0.6) = 5.92 → 6 pods. HPA: ratio 70/60, ceil(3.5) = 4.
    assert_eq!(d.forecast_load, Some(8875.0));
    assert_eq!(
        (
            d.predictive_replicas,
            d.reactive_replicas,
            d.desired_replicas
        ),
        (Some(6), 4, 6)
    );
    assert_eq!(
        (d.rule.as_str(), d.strategy.as_str()),
        ("forecast", "balanced")
    );
    assert_eq!(d.forecast_id.as_deref(), Some("forecast/svc/15000000"));
    assert_eq!(
        d.reason,
        "forecast 8,875/s at +75 s needs 6 pods (HPA asks 4); scaling 3 -> 6"
    );
}

#[test]
fn predictive_never_goes_below_the_hpa() {
    let mut engine = DecisionEngine::new(DecideConfig::default());
    // Forecast 100/s needs ceil(100 / 60) = 2 pods; the HPA asks ceil(3 × 1.5) = 5.
    let d = engine.decide(
        &spec(),
        &flat_forecast(15, 100.0, 0.9),
        &regime(),
        &observed(15, 3, 3, 90.0),
    );
    assert_eq!((d.predictive_replicas, d.desired_replicas), (Some(2), 5));
    assert_eq!(d.rule, "hpa");
}

#[test]
fn low_confidence_falls_back_to_the_hpa_and_says_so() {
    let spec = ServiceSpec {
        capacity_per_pod: 2500.0,
        startup_s: 60,
        ..spec()
    };
    let mut engine = DecisionEngine::new(DecideConfig::default());
    let d = engine.decide(
        &spec,
        &rising_forecast(0.3),
        &regime(),
        &observed(15, 3, 3, 70.0),
    );
    assert_eq!((d.desired_replicas, d.predictive_replicas), (4, Some(6)));
    assert_eq!(d.rule, "fallback-low-confidence");
    assert!(
        d.reason
            .starts_with("forecast confidence 0.30 below threshold, falling back to HPA"),
        "{}",
        d.reason
    );
}

#[test]
fn policy_parses_from_its_name() {
    assert_eq!("predictive".parse::<Policy>(), Ok(Policy::Predictive));
    assert_eq!("HPA".parse::<Policy>(), Ok(Policy::Hpa));
    assert_eq!("keda-lag".parse::<Policy>(), Ok(Policy::KedaLag));
    assert!(matches!(
        "keda".parse::<Policy>(),
        Err(Error::UnknownPolicy(_))
    ));
    assert_eq!(
        serde_json::to_string(&Policy::Predictive).expect("serialises"),
        "\"predictive\""
    );
}

#[test]
fn thousands_groups_digits() {
    assert_eq!(thousands(8420.4), "8,420");
    assert_eq!(thousands(999.0), "999");
    assert_eq!(thousands(1_234_567.0), "1,234,567");
}

/// Runs one policy over a load series through the simulated cluster and returns the desired
/// replicas after each window and the windows that broke the SLO.
fn run_policy(policy: Policy, loads: &[f64]) -> (Vec<i64>, usize) {
    let spec = ServiceSpec {
        max_replicas: 60,
        initial_replicas: 4,
        ..spec()
    };
    let mut cluster = SimulatedCluster::new(std::slice::from_ref(&spec));
    let mut forecaster = Forecaster::new(PredictConfig::default());
    let mut engine = DecisionEngine::new(DecideConfig {
        policy,
        ..Default::default()
    });
    let (mut desired, mut violations) = (Vec::new(), 0);
    for (i, load) in loads.iter().enumerate() {
        let feature = FeatureVector::for_load("svc", i as i64, 15, *load);
        let observed = cluster.observe(&spec, &feature);
        violations += usize::from(observed.slo_violated);
        let forecast = forecaster.on_features(&feature);
        let decision = engine.decide(&spec, &forecast, &regime(), &observed);
        cluster.apply(&spec, &decision);
        desired.push(decision.desired_replicas);
    }
    (desired, violations)
}

#[test]
fn predictive_reaches_the_needed_replicas_windows_before_the_hpa_on_a_ramp() {
    // 200/s for 10 windows, then +40/s per window up to 2,600/s.
    let loads: Vec<f64> = (0..80)
        .map(|i| 200.0 + 40.0 * (i - 10).clamp(0, 60) as f64)
        .collect();
    let (hpa, _) = run_policy(Policy::Hpa, &loads);
    let (predictive, _) = run_policy(Policy::Predictive, &loads);
    let first_at = |series: &[i64], n: i64| series.iter().position(|d| *d >= n);

    for n in [15, 25, 35] {
        let (h, p) = (first_at(&hpa, n), first_at(&predictive, n));
        eprintln!("{n} pods: hpa at window {h:?}, predictive at window {p:?}");
        let (h, p) = (
            h.expect("hpa gets there"),
            p.expect("predictive gets there"),
        );
        assert!(p + 3 <= h, "{n} pods: predictive at {p}, hpa at {h}");
    }
}

#[test]
fn predictive_breaks_the_slo_in_fewer_windows_than_the_hpa_on_a_steep_ramp() {
    // +120/s per window for 25 windows. Measured: HPA 11 windows over the SLO, predictive 5.
    // Predictive still misses some: the trend takes a few windows to learn, and pods asked for
    // take 30 s to serve. (Before the HPA truncated utilisation to a whole percent, as the
    // controller does, it had 9: 66.9 % against 60 % was a 1.115 ratio, now 66 % is 1.1,
    // inside the tolerance.)
    let loads: Vec<f64> = (0..60)
        .map(|i| 200.0 + 120.0 * (i - 10).clamp(0, 25) as f64)
        .collect();
    let (_, hpa_violations) = run_policy(Policy::Hpa, &loads);
    let (_, predictive_violations) = run_policy(Policy::Predictive, &loads);
    assert_eq!((hpa_violations, predictive_violations), (11, 5));
}
