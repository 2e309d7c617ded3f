//! On the SPY day: the predictive policy leads the HPA into the 09:30 open, and every decision
//! has the forecast, observed window and regime that `tickscale explain` shows.

mod common;

use std::collections::BTreeSet;

use common::{consume, data, ok, stdout};
use serde_json::Value;

const OPEN_UTC_US: i64 = 1_381_152_600_000_000; // 2013-10-07 09:30 New York

fn run_spy(extra: &[&str]) -> (tempfile::TempDir, Vec<Value>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let spy = data("market/spy_tick_20131007_trade.zip");
    let state = dir.path().to_str().expect("path").to_string();
    let args = [
        "run",
        "--ticks",
        spy.to_str().expect("path"),
        "--state",
        &state,
        "--summary-every",
        "0",
    ];
    ok(&[&args[..], extra].concat());
    let decisions = consume(dir.path(), "scaling.decisions");
    (dir, decisions)
}

/// Returns the market-data service's desired replicas at each decision time in `[from, to]`.
fn market_data(decisions: &[Value], from: i64, to: i64) -> Vec<(i64, i64)> {
    decisions
        .iter()
        .filter(|d| d["service"] == "market-data")
        .map(|d| {
            (
                d["ts_us"].as_i64().expect("ts"),
                d["desired_replicas"].as_i64().expect("n"),
            )
        })
        .filter(|(ts, _)| (from..=to).contains(ts))
        .collect()
}

#[test]
fn event_driven_decisions_lead_the_hpa_into_the_open_and_every_decision_can_be_explained() {
    let (_hpa_dir, hpa) = run_spy(&["--policy", "hpa"]);
    let (dir, predictive) = run_spy(&["--strategy", "event-driven"]);

    // In the minute before the open the predictive policy has already added pods; the HPA has
    // not, since nothing has happened yet.
    let before = |ds: &[Value]| market_data(ds, OPEN_UTC_US - 60_000_000, OPEN_UTC_US - 1);
    let hpa_before = before(&hpa);
    let predictive_before = before(&predictive);
    assert!(hpa_before.iter().all(|(_, n)| *n == 2), "{hpa_before:?}");
    assert!(
        predictive_before.iter().any(|(_, n)| *n > 2),
        "{predictive_before:?}"
    );
    let first_above =
        |ds: &[(i64, i64)], level: i64| ds.iter().find(|(_, n)| *n >= level).map(|(t, _)| *t);
    let window = OPEN_UTC_US - 600_000_000;
    let hpa_open = market_data(&hpa, window, OPEN_UTC_US + 600_000_000);
    let predictive_open = market_data(&predictive, window, OPEN_UTC_US + 600_000_000);
    assert!(first_above(&predictive_open, 4) < first_above(&hpa_open, 4));

    // Each decision names a forecast that exists, and its service's window was observed and
    // judged: the chain explain prints is complete for all of them.
    let forecasts: BTreeSet<String> = consume(dir.path(), "load.forecasts")
        .iter()
        .map(|f| f["id"].as_str().expect("id").to_string())
        .collect();
    let observed: BTreeSet<(String, i64)> = consume(dir.path(), "load.observed")
        .iter()
        .map(|o| {
            (
                o["service"].as_str().expect("s").to_string(),
                o["window_end_us"].as_i64().expect("t"),
            )
        })
        .collect();
    let regimes: BTreeSet<i64> = consume(dir.path(), "market.regime")
        .iter()
        .map(|r| r["window_end_us"].as_i64().expect("t"))
        .collect();
    assert_eq!(predictive.len(), 19_200);
    for d in &predictive {
        let ts = d["ts_us"].as_i64().expect("ts");
        let service = d["service"].as_str().expect("service").to_string();
        let forecast = d["forecast_id"]
            .as_str()
            .expect("every decision names its forecast");
        assert!(forecasts.contains(forecast), "{forecast} missing");
        assert!(
            observed.contains(&(service, ts)),
            "no observed window for {}",
            d["id"]
        );
        assert!(regimes.contains(&ts), "no regime for {}", d["id"]);
    }

    // And explain prints that chain for decisions at the start, at the open and at the end.
    let state = dir.path().to_str().expect("path");
    let at_open = predictive
        .iter()
        .find(|d| d["ts_us"].as_i64() == Some(OPEN_UTC_US))
        .expect("open");
    for d in [&predictive[0], at_open, &predictive[predictive.len() - 1]] {
        let id = d["id"].as_str().expect("id");
        let text = stdout(&ok(&["explain", id, "--state", state]));
        assert!(text.contains(id), "{text}");
        assert!(
            text.contains(d["reason"].as_str().expect("reason")),
            "{text}"
        );
    }
}
