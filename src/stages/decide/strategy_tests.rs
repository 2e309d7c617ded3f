use super::tests::{flat_forecast, observed, regime, rising_forecast, spec, S};
use super::*;
use crate::events::ContextKind;

fn engine(strategy: Strategy) -> DecisionEngine {
    DecisionEngine::new(DecideConfig {
        strategy,
        ..Default::default()
    })
}

#[test]
fn each_strategy_provisions_its_own_share_of_the_forecast() {
    // At +75 s (start-up 60 + interval 15) the rising forecast is point 8,250, upper 9,500;
    // one pod serves 1,000 × 60 % = 600/s.
    let spec = ServiceSpec {
        capacity_per_pod: 1000.0,
        startup_s: 60,
        ..spec()
    };
    let cases = [
        // 9,500 / 600 = 15.8 → 16
        (Strategy::Conservative, 9500.0, 16),
        // 8,250 + 625 = 8,875; / 600 = 14.8 → 15
        (Strategy::Balanced, 8875.0, 15),
        // 8,250 / 600 = 13.75 → 14: the fewest pods
        (Strategy::Aggressive, 8250.0, 14),
        // σ = 1,250 / 1.6449 = 759.9; 8,250 + 0.8416 σ = 8,889.5; / 600 = 14.8 → 15
        (Strategy::MlOptimised, 8889.5, 15),
    ];
    for (strategy, load, replicas) in cases {
        let d = engine(strategy).decide(
            &spec,
            &rising_forecast(0.9),
            &regime(),
            &observed(15, 3, 3, 70.0),
        );
        let got = d.forecast_load.unwrap_or(0.0);
        assert!((got - load).abs() < 0.5, "{strategy}: {got}");
        assert_eq!(d.desired_replicas, replicas, "{strategy}");
        assert_eq!(d.strategy, strategy.as_str());
        assert_eq!(d.rule, "forecast");
    }
}

fn open_at(ts_s: i64) -> MarketContext {
    MarketContext {
        ts_us: ts_s * S,
        kind: ContextKind::SessionOpen,
        name: "NYSE open".into(),
        value: None,
    }
}

#[test]
fn event_driven_raises_the_floor_from_the_lead_until_the_hold_ends() {
    let mut engine = DecisionEngine::new(DecideConfig {
        strategy: Strategy::EventDriven,
        event_hold_s: 60,
        ..Default::default()
    });
    engine.note_context(&open_at(100));
    let forecast = flat_forecast(15, 100.0, 0.9);
    // Lead = start-up 30 + 2 × 15 = 60 s: at 30 s the open is 70 s away, no floor yet.
    // Forecast 100/s needs ceil(100 / 60) = 2; HPA at 50 % asks ceil(3 × 50 / 60) = 3.
    let before = engine.decide(&spec(), &forecast, &regime(), &observed(30, 3, 3, 50.0));
    assert_eq!((before.desired_replicas, before.rule.as_str()), (3, "hpa"));
    // At 45 s the open is 55 s away: the floor is 2 × 3 = 6.
    let lead = engine.decide(&spec(), &forecast, &regime(), &observed(45, 3, 3, 50.0));
    assert_eq!(
        (lead.desired_replicas, lead.rule.as_str()),
        (6, "event-floor")
    );
    assert_eq!(lead.strategy, "event-driven");
    assert_eq!(
        lead.reason,
        "NYSE open in 55 s raises the floor to 6; forecast 100/s at +45 s needs 2 pods \
         (HPA asks 3); scaling 3 -> 6"
    );
    // Fixed at 6 while the count is 6, not 12; held 5 s after the open.
    let after = engine.decide(&spec(), &forecast, &regime(), &observed(105, 6, 6, 25.0));
    assert_eq!(after.desired_replicas, 6);
    assert!(
        after
            .reason
            .starts_with("NYSE open 5 s ago holds the floor at 6;"),
        "{}",
        after.reason
    );
    // 175 s is past the hold (100 + 60): the floor is gone (stabilisation may still hold).
    let later = engine.decide(&spec(), &forecast, &regime(), &observed(175, 6, 6, 25.0));
    assert_ne!(later.rule, "event-floor");
    assert!(!later.reason.contains("NYSE"), "{}", later.reason);
}

#[test]
fn the_event_floor_never_lowers_the_reactive_answer() {
    let mut engine = DecisionEngine::new(DecideConfig {
        strategy: Strategy::EventDriven,
        event_multiple: 1.5,
        ..Default::default()
    });
    engine.note_context(&open_at(100));
    // The HPA asks ceil(5 × 100 / 60) = ceil(8.33) = 9, above the floor's ceil(1.5 × 5) = 8.
    let d = engine.decide(
        &spec(),
        &flat_forecast(45, 0.0, 0.9),
        &regime(),
        &observed(45, 5, 5, 100.0),
    );
    assert_eq!((d.reactive_replicas, d.desired_replicas), (9, 9));
    assert_eq!(d.rule, "hpa");
}

#[test]
fn only_the_event_driven_strategy_keeps_a_calendar() {
    let mut balanced = engine(Strategy::Balanced);
    balanced.note_context(&open_at(100));
    balanced.note_market_time(1_381_152_600 * S);
    assert!(balanced.calendar().events().is_empty());
    let mut driven = engine(Strategy::EventDriven);
    driven.note_market_time(1_381_152_600 * S);
    assert_eq!(driven.calendar().events().len(), 2);
}

#[test]
fn keda_lag_asks_one_replica_per_interval_of_a_pods_work_waiting() {
    let mut engine = DecisionEngine::new(DecideConfig {
        policy: Policy::KedaLag,
        ..Default::default()
    });
    // Threshold = capacity 100/s × 15 s = 1,500 per replica. Backlog 7,600: ceil(5.07) = 6,
    // at the cap of 6 partitions; the scale-up limit max(2 × 3, 4) = 6 does not bind.
    let mut seen = observed(15, 3, 3, 100.0);
    seen.backlog = 7600.0;
    let d = engine.decide(&spec(), &flat_forecast(15, 0.0, 0.9), &regime(), &seen);
    assert_eq!((d.desired_replicas, d.rule.as_str()), (6, "keda-lag"));
    assert_eq!(
        (d.policy.as_str(), d.strategy.as_str()),
        ("keda-lag", "lag")
    );
    assert_eq!(
        d.reason,
        "consumer lag 7,600 over 6 partitions at 1,500 per replica asks 6 pods (HPA asks 5); \
         scaling 3 -> 6"
    );
    // 10,000 would be 7 replicas: capped at the partition count.
    seen.backlog = 10_000.0;
    let capped = engine.decide(&spec(), &flat_forecast(30, 0.0, 0.9), &regime(), &seen);
    assert_eq!(capped.desired_replicas, 6);
    assert!(capped.bounds.contains(&"partition-count".to_string()));
}

#[test]
fn keda_lag_without_backlog_is_inactive_and_rests_at_the_minimum() {
    let mut engine = DecisionEngine::new(DecideConfig {
        policy: Policy::KedaLag,
        scale_down_stabilization_s: 0,
        ..Default::default()
    });
    let d = engine.decide(
        &spec(),
        &flat_forecast(15, 0.0, 0.9),
        &regime(),
        &observed(15, 3, 3, 50.0),
    );
    // Lag 0 is not above the activation threshold 0: scale to the minimum, 1.
    assert_eq!(d.desired_replicas, 1);
    assert_eq!(d.bounds, vec!["activation"]);
}

#[test]
fn every_decision_carries_the_cpu_recommendation_of_its_service() {
    let mut engine = engine(Strategy::Balanced);
    let f = flat_forecast(15, 30.0, 0.9);
    // 10 % of a 1000m request = 100m, bucket end 104.01; × 1.15 → 120m, limit × 1.5 = 180m.
    let d = engine.decide(&spec(), &f, &regime(), &observed(15, 3, 3, 10.0));
    assert_eq!(
        (
            d.cpu_lower_milli,
            d.cpu_request_milli,
            d.cpu_upper_milli,
            d.cpu_limit_milli
        ),
        (120, 120, 120, 180)
    );
    // Another service's history is its own: no sample, no recommendation yet.
    let other = ServiceSpec {
        name: "other".into(),
        ..spec()
    };
    let idle = engine.decide(&other, &f, &regime(), &observed(15, 1, 0, 0.0));
    assert_eq!((idle.cpu_request_milli, idle.cpu_limit_milli), (0, 0));
}
