use super::*;
use crate::events::{ActuationOutcome, ForecastPoint};

const S: i64 = 1_000_000;

fn observed(index: i64, load: f64, replicas: i64, backlog: f64, latency_ms: f64) -> Emitted {
    Emitted::ObservedOutcome(ObservedOutcome {
        id: format!("observed/risk/{}", index * 15 * S),
        service: "risk".into(),
        window_start_us: index * 15 * S,
        window_end_us: (index + 1) * 15 * S,
        load,
        replicas,
        ready_replicas: replicas,
        capacity: replicas as f64 * 100.0,
        utilization: 50.0,
        backlog,
        latency_ms,
        slo_latency_ms: 100.0,
        slo_violated: latency_ms > 100.0,
    })
}

fn forecast(ts_s: i64, load: f64, lower: f64, upper: f64) -> Emitted {
    Emitted::LoadForecast(LoadForecast {
        id: format!("forecast/risk/{}", ts_s * S),
        service: "risk".into(),
        ts_us: ts_s * S,
        model: "holt-winters".into(),
        model_version: 1,
        observed_load: 0.0,
        interval_level: 0.9,
        confidence: 1.0,
        points: vec![ForecastPoint {
            horizon_s: 15,
            load,
            lower,
            upper,
        }],
    })
}

fn actuation(ts_s: i64, status: ActuationStatus, from: i64, to: i64) -> Emitted {
    Emitted::ActuationOutcome(ActuationOutcome {
        id: format!("actuation/decision/risk/{}", ts_s * S),
        decision_id: format!("decision/risk/{}", ts_s * S),
        service: "risk".into(),
        ts_us: ts_s * S,
        status,
        from_replicas: from,
        to_replicas: to,
        detail: String::new(),
    })
}

/// Three windows of 15 s, in the order a service stage emits them: observed, forecast,
/// actuation.
fn three_windows() -> PolicyTally {
    let events = [
        observed(0, 100.0, 2, 0.0, 10.0),
        forecast(15, 250.0, 200.0, 320.0),
        actuation(15, ActuationStatus::Applied, 2, 4),
        observed(1, 300.0, 4, 1500.0, 500.0),
        forecast(30, 190.0, 100.0, 195.0),
        actuation(30, ActuationStatus::Unchanged, 4, 4),
        observed(2, 200.0, 4, 0.0, 20.0),
        forecast(45, 999.0, 0.0, 1.0),
        actuation(45, ActuationStatus::Applied, 4, 3),
    ];
    let mut tally = PolicyTally::default();
    for event in &events {
        tally.on_event(event);
    }
    tally
}

fn figures(partial: bool) -> Report {
    let tallies = vec![("hpa".to_string(), three_windows())];
    Report::build(
        RunFacts::default(),
        vec!["risk".into()],
        &tallies,
        0.5,
        partial,
    )
}

#[test]
fn cost_and_capacity_figures_match_the_hand_worked_values() {
    let report = figures(false);
    let risk = &report.results["hpa"]["risk"];
    assert_eq!(risk.windows, 3);
    // (2 + 4 + 4) replicas × 15 s = 150 pod-seconds = 0.041666… h.
    assert_eq!(risk.pod_hours, 0.0417);
    assert_eq!(risk.cost, 0.0208);
    // Only the 500 ms window broke the 100 ms SLO: a quarter of a minute.
    assert_eq!(risk.slo_violation_minutes, 0.25);
    assert_eq!(risk.peak_backlog, 1500.0);
    // Two of the three actuations changed the replica count.
    assert_eq!(risk.scale_events, 2);
    assert_eq!(report.totals["hpa"].scale_events, 2);
    assert_eq!(report.totals["hpa"].pod_hours, 0.0417);
}

#[test]
fn p99_of_three_windows_is_the_slowest_within_the_bucket_width() {
    let report = figures(false);
    let p99 = report.results["hpa"]["risk"].p99_latency_ms.expect("p99");
    // Nearest rank: ceil(0.99 × 3) = 3, the 500 ms window.
    assert!((p99 - 500.0).abs() / 500.0 < 0.006, "{p99}");
}

#[test]
fn forecasts_are_paired_with_the_next_observed_load_of_their_service() {
    let accuracy = figures(false).results["hpa"]["risk"].forecast.clone();
    // 250 against 300 and 190 against 200; the last forecast has no actual yet.
    assert_eq!(accuracy.pairs, 2);
    // (50 / 300 + 10 / 200) / 2 = (16.6667 % + 5 %) / 2.
    assert_eq!(accuracy.mape_percent, Some(10.8333));
    // Residuals 50² + 10² = 2600; actuals 300, 200 around 250: 5000. 1 − 2600 / 5000.
    assert_eq!(accuracy.r_squared, Some(0.48));
    // 300 is inside [200, 320]; 200 is above [100, 195].
    assert_eq!(accuracy.interval_coverage, Some(0.5));
}

#[test]
fn zero_actuals_leave_mape_out_but_count_in_coverage() {
    let mut tally = PolicyTally::default();
    tally.on_event(&observed(0, 5.0, 1, 0.0, 1.0));
    tally.on_event(&forecast(15, 0.0, 0.0, 1.0));
    tally.on_event(&observed(1, 0.0, 1, 0.0, 1.0));
    let figures = tally.services["risk"].figures(1.0);
    assert_eq!(figures.forecast.pairs, 1);
    assert_eq!(figures.forecast.mape_percent, None);
    assert_eq!(figures.forecast.r_squared, None);
    assert_eq!(figures.forecast.interval_coverage, Some(1.0));
}

#[test]
fn a_partial_report_says_so_in_json_and_on_the_table() {
    let report = figures(true);
    let json = report.to_json().expect("json");
    assert!(json.contains("\"partial\": true"), "{json}");
    assert!(super::super::table::table(&report).contains("PARTIAL"));
    let complete = figures(false).to_json().expect("json");
    assert!(complete.contains("\"partial\": false"));
}

#[test]
fn the_same_events_give_byte_identical_json() {
    assert_eq!(
        figures(false).to_json().expect("json"),
        figures(false).to_json().expect("json")
    );
}

#[test]
fn rounding_keeps_four_places_and_never_prints_negative_zero() {
    assert_eq!(round(1.234_56), 1.2346);
    assert_eq!(round(-0.000_01).to_string(), "0");
}

#[test]
fn a_long_series_is_merged_in_pairs_and_stays_bounded() {
    let mut series = Series::default();
    for i in 0..(2 * MAX_SERIES_POINTS as i64 + 2) {
        series.push(SeriesPoint {
            ts_us: i,
            load: i as f64,
            capacity: 0.0,
            replicas: 1.0,
        });
    }
    let points = series.to_points();
    // 2 × MAX points merged to MAX of two windows each, then one more pair.
    assert_eq!(points.len(), MAX_SERIES_POINTS + 1);
    assert_eq!(points[0].ts_us, 0);
    assert_eq!(points[0].load, 0.5);
    assert_eq!(points[1].load, 2.5);
    assert_eq!(points[MAX_SERIES_POINTS].load, 2048.5);
}
