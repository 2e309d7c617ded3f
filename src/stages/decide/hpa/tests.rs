use super::cases::{self, Case};
use super::*;

/// A running pod requesting 1 CPU (1000 m), ready, with `usage` millicores (or no sample).
fn pod(usage: Option<i64>) -> Pod {
    Pod {
        phase: PodPhase::Running,
        ready: true,
        cpu_warming: false,
        deleting: false,
        request_milli: Some(1000),
        usage_milli: usage,
    }
}

fn unready(usage: Option<i64>) -> Pod {
    Pod {
        ready: false,
        ..pod(usage)
    }
}

fn cpu(target: i64) -> Metric {
    Metric::Resource {
        target_utilization_percent: target,
    }
}

fn calc(current: i64, metric: Metric, pods: &[Pod]) -> Result<Recommendation, Error> {
    recommend(&MetricInput {
        current_replicas: current,
        tolerance: Tolerance::default(),
        metric,
        pods,
        unmatched_metrics_milli: &[],
    })
}

fn replicas(current: i64, metric: Metric, pods: &[Pod]) -> i64 {
    calc(current, metric, pods).expect("an answer").replicas
}

#[test]
fn every_reference_case_gives_the_controllers_answer() {
    let path = crate::data::shared_reference_file("hpa-cases.json");
    let cases = cases::load(&path).expect("the reference file parses");
    assert!(cases.len() >= 20, "only {} cases", cases.len());
    for (index, case) in cases.iter().enumerate() {
        let expect = case.expect().expect("reference cases have answers");
        let outcome = case.evaluate();
        assert_eq!(
            outcome.replicas,
            expect.replicas,
            "case {index} ({:?}): replicas",
            case.name()
        );
        assert_eq!(
            outcome.utilization_percent,
            expect.utilization_percent,
            "case {index} ({:?}): utilization_percent",
            case.name()
        );
        assert_eq!(outcome.error, None, "case {index} ({:?})", case.name());
        assert_eq!(outcome.matches_expect, Some(true), "case {index}");
    }
}

#[test]
fn failed_and_deleting_pods_and_unmatched_samples_do_not_count() {
    let failed = Pod {
        phase: PodPhase::Failed,
        ..pod(Some(100))
    };
    let deleting = Pod {
        deleting: true,
        ..pod(Some(100))
    };
    let pods = [pod(Some(900)), pod(Some(900)), failed, deleting];
    let r = recommend(&MetricInput {
        current_replicas: 2,
        tolerance: Tolerance::default(),
        metric: cpu(60),
        pods: &pods,
        unmatched_metrics_milli: &[0, 0, 0],
    })
    .expect("an answer");
    // 1800 / 2000 = 90 %, ratio 1.5, ceil(1.5 × 2) = 3. Counting the failed and deleting pods
    // would give 2000 / 4000 = 50 %, ratio 0.83, ceil(3.33) = 4.
    assert_eq!((r.replicas, r.utilization_percent), (3, Some(90)));
}

#[test]
fn a_pod_in_its_cpu_initialisation_period_counts_as_idle_on_a_scale_up() {
    let warming = Pod {
        cpu_warming: true,
        ..pod(Some(1000))
    };
    // Ready pods: 1000 / 1000 = 100 % against 50: ratio 2. The warming pod at 0:
    // 1000 / 2000 = 50 %, ratio 1.0, within tolerance: keep 2 (counted, it would be 4).
    let r = calc(2, cpu(50), &[pod(Some(1000)), warming]).expect("an answer");
    assert_eq!((r.replicas, r.utilization_percent), (2, Some(100)));
    assert!(r.unready_counted_idle);
    assert_eq!(r.rebalanced_ratio, Some(1.0));
    assert_eq!(replicas(2, cpu(50), &[pod(Some(1000)), pod(Some(1000))]), 4);
}

#[test]
fn missing_samples_count_as_full_requests_on_a_scale_down() {
    let pods = [pod(Some(100)), pod(Some(100)), pod(Some(100)), pod(None)];
    // 300 / 3000 = 10 %, ratio 0.2. The missing pod at max(100, 50) % of 1000 m:
    // 1300 / 4000 = 32 %, ratio 0.64, ceil(0.64 × 4) = ceil(2.56) = 3. Left out it would be
    // ceil(0.2 × 3) = 1; counted at 0, 300 / 4000 = 7 %, ceil(0.56) = 1.
    let r = calc(4, cpu(50), &pods).expect("an answer");
    assert_eq!(r.replicas, 3);
    assert_eq!(r.missing_fill, Some(MissingFill::Full));
    assert_eq!(r.utilization_percent, Some(10));
}

#[test]
fn missing_samples_count_at_the_target_when_it_is_above_one_hundred_percent() {
    let pods = [pod(Some(500)), pod(None)];
    // 500 / 1000 = 50 % against 200: ratio 0.25. The missing pod at 200 % of 1000 m:
    // 2500 / 2000 = 125 %, ratio 0.625, ceil(0.625 × 2) = 2: no change.
    assert_eq!(replicas(2, cpu(200), &pods), 2);
    // At 100 % instead it would be 1500 / 2000 = 75 %, ratio 0.375, ceil(0.75) = 1.
}

#[test]
fn missing_samples_count_as_idle_on_a_scale_up_and_can_flip_it() {
    let pods = [
        pod(Some(1000)),
        pod(Some(1000)),
        pod(None),
        pod(None),
        pod(None),
    ];
    // 2000 / 2000 = 100 % against 50: ratio 2, and ceil(2 × 2) = 4 would scale 5 down to 4.
    // With the 3 missing pods at 0: 2000 / 5000 = 40 %, ratio 0.8: the direction flipped, so
    // the count stays 5.
    let r = calc(5, cpu(50), &pods).expect("an answer");
    assert_eq!(r.replicas, 5);
    assert_eq!(r.missing_fill, Some(MissingFill::Zero));
    assert_eq!(r.held, Some(Hold::DirectionFlip));
}

#[test]
fn pods_metrics_count_unready_running_pods_but_not_pending_ones() {
    let pending = Pod {
        phase: PodPhase::Pending,
        ..pod(None)
    };
    let metric = Metric::Pods {
        target_average_milli: 10_000,
    };
    let pods = [pod(Some(20_000)), unready(Some(20_000)), pending];
    // Readiness only matters for CPU: both running pods count, average 20000, ratio 2. The
    // pending pod is unready, so on a scale up it counts at 0: 40000 / 3 = 13333, ratio
    // 1.3333, ceil(3.9999) = 4. (Were the unready pod excluded too: 20000 / 2 = 10000, 1.0.)
    let r = calc(3, metric, &pods).expect("an answer");
    assert_eq!((r.replicas, r.current_milli), (4, Some(20_000)));
    assert!(r.unready_counted_idle);
}

#[test]
fn pods_metrics_count_missing_samples_at_the_target_on_a_scale_down() {
    let metric = Metric::Pods {
        target_average_milli: 1000,
    };
    // Average 200, ratio 0.2. The missing pod at the target: 1400 / 3 = 466, ratio 0.466,
    // ceil(1.4) = 2. Left out it would be ceil(0.2 × 2) = 1.
    assert_eq!(
        replicas(3, metric, &[pod(Some(200)), pod(Some(200)), pod(None)]),
        2
    );
}

#[test]
fn external_average_value_targets_ask_for_value_over_target() {
    let metric = |value| Metric::ExternalAverageValue {
        value_milli: value,
        target_average_milli: 2000,
    };
    // 8600 / (2000 × 3) = 1.433: ceil(8600 / 2000) = ceil(4.3) = 5; per replica 2867.
    let r = calc(3, metric(8600), &[]).expect("an answer");
    assert_eq!((r.replicas, r.current_milli), (5, Some(2867)));
    // 6300 / 6000 = 1.05 is within tolerance: keep 3 (ceil(3.15) = 4 otherwise).
    let r = calc(3, metric(6300), &[]).expect("an answer");
    assert_eq!((r.replicas, r.held), (3, Some(Hold::Tolerance)));
}

#[test]
fn tolerance_differs_by_direction() {
    let input = |pods: &[Pod], current| {
        recommend(&MetricInput {
            current_replicas: current,
            tolerance: Tolerance {
                scale_up: 0.5,
                scale_down: 0.0,
            },
            metric: cpu(50),
            pods,
            unmatched_metrics_milli: &[],
        })
        .expect("an answer")
        .replicas
    };
    // 70 % / 50 = 1.4 ≤ 1.5: kept at 2 (ceil(2.8) = 3 otherwise).
    assert_eq!(input(&[pod(Some(700)), pod(Some(700))], 2), 2);
    // 45 % / 50 = 0.9: no scale-down tolerance, so ceil(0.9 × 10) = 9; the default 0.1
    // would keep 10.
    assert_eq!(input(&[pod(Some(450)); 10], 10), 9);
    assert_eq!(replicas(10, cpu(50), &[pod(Some(450)); 10]), 10);
}

#[test]
fn the_calculator_has_no_answer_without_pods_samples_or_requests() {
    assert_eq!(calc(3, cpu(50), &[]), Err(Error::NoPods));
    assert_eq!(
        calc(2, cpu(50), &[unready(Some(500)), unready(Some(500))]),
        Err(Error::NoMetrics)
    );
    let no_request = Pod {
        request_milli: None,
        ..pod(Some(500))
    };
    assert_eq!(
        calc(2, cpu(50), &[pod(Some(500)), no_request]),
        Err(Error::MissingRequest { index: 1 })
    );
}

fn input<'a>(
    current: i64,
    desired: i64,
    behavior: Option<&'a Behavior>,
    recommendations: &'a [PastRecommendation],
    scale_events: &'a [PastScaleEvent],
) -> NormalizeInput<'a> {
    NormalizeInput {
        current,
        desired,
        min: 1,
        max: 1000,
        behavior,
        legacy_window_s: DEFAULT_DOWNSCALE_WINDOW_S,
        recommendations,
        scale_events,
        rate_limits: true,
    }
}

fn rules(window: i64, select: SelectPolicy, policies: &[(PolicyKind, i64, i64)]) -> ScalingRules {
    ScalingRules {
        stabilization_window_s: window,
        select_policy: select,
        policies: policies
            .iter()
            .map(|&(kind, value, period_s)| ScalingPolicy {
                kind,
                value,
                period_s,
            })
            .collect(),
    }
}

fn rec(replicas: i64, age_s: f64) -> PastRecommendation {
    PastRecommendation { replicas, age_s }
}

fn event(change: i64, age_s: f64) -> PastScaleEvent {
    PastScaleEvent { change, age_s }
}

fn out(input: &NormalizeInput) -> (i64, Vec<&'static str>) {
    let n = normalize(input);
    (n.replicas, n.bounds.iter().map(|b| b.as_str()).collect())
}

#[test]
fn percent_policies_start_from_the_count_before_the_periods_scale_events() {
    let behavior = Behavior {
        scale_up: rules(0, SelectPolicy::Max, &[(PolicyKind::Percent, 50, 60)]),
        ..Behavior::default()
    };
    // +2 at 30 s is inside the 60 s period, +3 at 90 s is not: the period started at
    // 10 − 2 = 8 pods, and 50 % more is ceil(8 × 1.5) = 12.
    let events = [event(2, 30.0), event(3, 90.0)];
    let i = input(10, 40, Some(&behavior), &[], &events);
    assert_eq!(out(&i), (12, vec!["scale-up-limit"]));
    // A scale down inside the period adds back: 10 + 4 = 14 at the start, ceil(21) = 21.
    let events = [event(-4, 10.0)];
    let i = input(10, 40, Some(&behavior), &[], &events);
    assert_eq!(out(&i).0, 21);
}

#[test]
fn select_policy_min_takes_the_smallest_change_in_each_direction() {
    let pods_or_percent = &[(PolicyKind::Pods, 4, 60), (PolicyKind::Percent, 100, 60)];
    let down = &[(PolicyKind::Pods, 20, 60), (PolicyKind::Percent, 1, 60)];
    let behavior = Behavior {
        scale_up: rules(0, SelectPolicy::Min, pods_or_percent),
        scale_down: rules(0, SelectPolicy::Min, down),
    };
    // Up from 10: min(10 + 4, ceil(10 × 2)) = 14.
    assert_eq!(out(&input(10, 50, Some(&behavior), &[], &[])).0, 14);
    // Down from 100: the smaller change of 100 − 20 = 80 and trunc(100 × 0.99) = 99 is 99.
    assert_eq!(out(&input(100, 2, Some(&behavior), &[], &[])).0, 99);
}

#[test]
fn a_disabled_direction_keeps_the_current_count() {
    let behavior = Behavior {
        scale_up: rules(0, SelectPolicy::Disabled, &[(PolicyKind::Pods, 4, 15)]),
        scale_down: rules(0, SelectPolicy::Disabled, &[(PolicyKind::Percent, 100, 15)]),
    };
    assert_eq!(
        out(&input(5, 9, Some(&behavior), &[], &[])),
        (5, vec!["scale-up-limit"])
    );
    assert_eq!(
        out(&input(5, 2, Some(&behavior), &[], &[])),
        (5, vec!["scale-down-limit"])
    );
}

#[test]
fn behavior_scale_down_window_keeps_the_highest_recommendation_strictly_inside_it() {
    let behavior = Behavior::default();
    // Window 300 s: 8 (100 s) and 6 (299 s) count, 9 at exactly 300 s does not.
    // max(4, 8, 6) = 8; the rate policy (100 % per 15 s) allows down to 0.
    let recs = [rec(8, 100.0), rec(6, 299.0), rec(9, 300.0)];
    assert_eq!(
        out(&input(10, 4, Some(&behavior), &recs, &[])),
        (8, vec!["stabilization"])
    );
}

#[test]
fn behavior_scale_up_window_keeps_the_lowest_recommendation_inside_it() {
    let behavior = Behavior {
        scale_up: rules(
            60,
            SelectPolicy::Max,
            &[(PolicyKind::Pods, 4, 15), (PolicyKind::Percent, 100, 15)],
        ),
        ..Behavior::default()
    };
    // Up window 60 s: 7 (30 s) and 12 (50 s) count, 6 (61 s) does not: min(10, 7, 12) = 7,
    // and current 5 is raised to 7. The down window (300 s) allows up to max(10, 7, 12, 6).
    let recs = [rec(7, 30.0), rec(12, 50.0), rec(6, 61.0)];
    assert_eq!(
        out(&input(5, 10, Some(&behavior), &recs, &[])),
        (7, vec!["stabilization"])
    );
}

#[test]
fn legacy_window_includes_a_recommendation_exactly_five_minutes_old() {
    let at_edge = [rec(6, 300.0)];
    assert_eq!(out(&input(5, 3, None, &at_edge, &[])).0, 6);
    let past_edge = [rec(6, 300.5)];
    assert_eq!(out(&input(5, 3, None, &past_edge, &[])).0, 3);
}

#[test]
fn max_replicas_binds_before_a_looser_rate_limit() {
    let behavior = Behavior::default();
    // Default up rate from 10: max(14, 20) = 20, but max is 15.
    let i = NormalizeInput {
        max: 15,
        ..input(10, 50, Some(&behavior), &[], &[])
    };
    assert_eq!(out(&i), (15, vec!["max_replicas"]));
    // Down: 100 % per 15 s allows 0, so min 3 is the floor.
    let i = NormalizeInput {
        min: 3,
        ..input(10, 1, Some(&behavior), &[], &[])
    };
    assert_eq!(out(&i), (3, vec!["min_replicas"]));
}

#[test]
fn without_rate_limits_only_min_and_max_apply() {
    let i = NormalizeInput {
        rate_limits: false,
        ..input(3, 100, None, &[], &[])
    };
    // The legacy limit would be max(6, 4) = 6.
    assert_eq!(out(&i), (100, vec![]));
}

#[test]
fn a_count_outside_the_bounds_is_corrected_before_anything_else() {
    let n = normalize(&NormalizeInput {
        min: 2,
        ..input(1, 50, None, &[rec(9, 10.0)], &[])
    });
    assert_eq!((n.replicas, n.range_corrected), (2, true));
    // A target scaled to 0 by hand, with min 1, is left alone.
    let n = normalize(&input(0, 5, None, &[], &[]));
    assert_eq!((n.replicas, n.bounds), (0, vec![Bound::ScalingDisabled]));
}

#[test]
fn history_reports_ages_and_forgets_what_is_older_than_asked() {
    let s = 1_000_000;
    let mut h = History::default();
    h.record(0, 4, 1, 60);
    h.record(30 * s, 6, 0, 60);
    h.record(90 * s, 5, -1, 60);
    // At 90 s, the record at 0 s is past the 60 s to keep.
    assert_eq!(
        h.recommendations_at(90 * s),
        vec![rec(6, 60.0), rec(5, 0.0)]
    );
    assert_eq!(h.scale_events_at(100 * s), vec![event(-1, 10.0)]);
}

const ONE_CASE: &str = r#"[
 {"name": "ok", "kind": "normalize", "current_replicas": 5, "desired_replicas": 7,
  "min_replicas": 3, "max_replicas": 8, "recommendations": [], "scale_events": [],
  "behavior": null},
 {"name": "second", "kind": "metric", "current_replicas": 3,
  "tolerance": {"scale_up": 0.1, "scale_down": 0.1},
  "metric": {"type": "resource", "target_utilization_percent": 30},
  "pods": [], FIELD}
]"#;

fn parse_error(field: &str) -> String {
    let text = ONE_CASE.replace("FIELD", field);
    let error = cases::parse(&text, "my.json").expect_err("refused");
    error.to_string()
}

#[test]
fn a_case_with_an_unknown_field_is_refused_with_its_index_name_field_and_position() {
    let message = parse_error(r#""colour": "red""#);
    // The second case starts on line 5, column 2 (after one space).
    assert!(
        message.starts_with(r#"case 1 ("second") at line 5 column 2 of my.json"#),
        "{message}"
    );
    assert!(message.contains("unknown field `colour`"), "{message}");
}

#[test]
fn a_case_without_a_required_field_is_refused() {
    let text = ONE_CASE
        .replace(r#""min_replicas": 3, "#, "")
        .replace(", FIELD", "");
    let error = cases::parse(&text, "my.json")
        .expect_err("refused")
        .to_string();
    assert!(
        error.contains(r#"case 0 ("ok") at line 2 column 2"#),
        "{error}"
    );
    assert!(error.ends_with("missing field `min_replicas`"), "{error}");
    // `null` is required where a value is absent: no `behavior` at all is refused too.
    let text = ONE_CASE
        .replace(
            r#",
  "behavior": null"#,
            "",
        )
        .replace(", FIELD", "");
    assert!(cases::parse(&text, "my.json").is_err());
}

#[test]
fn an_external_metric_needs_exactly_one_target() {
    let text = ONE_CASE.replace(
        r#"{"type": "resource", "target_utilization_percent": 30}"#,
        r#"{"type": "external", "value_milli": 10, "target_value_milli": 5,
            "target_average_milli": 5}"#,
    );
    let text = text.replace(", FIELD", "");
    let error = cases::parse(&text, "my.json").expect_err("refused");
    assert!(error.to_string().contains("exactly one of"), "{error}");
    assert!(matches!(error, cases::Error::Invalid { index: 1, .. }));
}

#[test]
fn a_file_that_is_not_json_is_refused_with_serdes_position() {
    let error = cases::parse("[{\"name\": }]", "bad.json").expect_err("refused");
    let source = std::error::Error::source(&error).map(|s| s.to_string());
    assert!(error.to_string().contains("bad.json"), "{error}");
    assert!(
        source.unwrap_or_default().contains("line 1 column 11"),
        "{error}"
    );
}

#[test]
fn a_case_without_expect_still_evaluates() {
    let cases = cases::parse(&ONE_CASE.replace(", FIELD", ""), "x").expect("parses");
    assert!(matches!(cases[0], Case::Normalize(_)));
    let outcome = cases[0].evaluate();
    assert_eq!((outcome.replicas, outcome.matches_expect), (7, None));
    // No pods: the calculator keeps the count and says why.
    let outcome = cases[1].evaluate();
    assert_eq!(outcome.replicas, 3);
    assert!(outcome.error.is_some());
}
