//! `tickscale backtest` end to end, on the shared recordings.

mod common;

use std::path::Path;

use common::{data, fails, ok, stdout, tickscale};

const SPY: &str = "market/spy_tick_20131007_trade.zip";
const NASA: &str = "workload/nasa-http-1995-requests-per-second.tbz2";

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Runs a backtest of the SPY day with `extra` arguments and returns its JSON report.
fn spy_json(dir: &Path, name: &str, extra: &[&str]) -> (String, serde_json::Value) {
    let json = dir.join(name);
    let spy = data(SPY);
    let mut args = vec!["backtest", "--ticks", path(&spy), "--json", path(&json)];
    args.extend_from_slice(extra);
    ok(&args);
    let text = std::fs::read_to_string(&json).expect("read json");
    let value = serde_json::from_str(&text).expect("parse json");
    (text, value)
}

#[test]
fn the_spy_day_replayed_twice_gives_byte_identical_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (first, _) = spy_json(dir.path(), "a.json", &["--policy", "hpa,balanced"]);
    let (second, _) = spy_json(dir.path(), "b.json", &["--policy", "hpa,balanced"]);
    assert_eq!(first, second);
}

#[test]
fn every_selected_policy_appears_in_the_report_for_every_service() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, report) = spy_json(
        dir.path(),
        "r.json",
        &["--policy", "keda-lag,holt-winters,hpa"],
    );
    assert_eq!(
        report["policies"],
        serde_json::json!(["keda-lag", "holt-winters", "hpa"])
    );
    let results = report["results"].as_object().expect("results");
    assert_eq!(results.len(), 3);
    for (policy, services) in results {
        let services = services.as_object().expect("services");
        assert_eq!(services.len(), 5, "{policy}");
        // 16 hours of 15 s windows (the SPY file spans pre- and post-market).
        assert_eq!(services["risk"]["windows"], 3840, "{policy}");
    }
}

#[test]
fn on_the_spy_day_predictive_strategies_violate_the_slo_less_than_the_hpa() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, report) = spy_json(dir.path(), "r.json", &[]);
    let minutes = |policy: &str| {
        report["totals"][policy]["slo_violation_minutes"]
            .as_f64()
            .expect("minutes")
    };
    // Measured: hpa 59.2 minutes; aggressive 43.5, balanced 19.8, conservative 10.2.
    let hpa = minutes("hpa");
    assert!(hpa > 50.0, "hpa {hpa}");
    for policy in [
        "conservative",
        "balanced",
        "aggressive",
        "event-driven",
        "ml-optimised",
    ] {
        assert!(
            minutes(policy) < hpa,
            "{policy} {} vs hpa {hpa}",
            minutes(policy)
        );
    }
    assert!(minutes("conservative") < minutes("aggressive"));
    // The report's pod-hours are the ones `run` prints for the same day (README: hpa 248.8).
    let pod_hours = report["totals"]["hpa"]["pod_hours"]
        .as_f64()
        .expect("pod-hours");
    assert!((pod_hours - 248.8).abs() < 0.06, "{pod_hours}");
}

#[test]
fn the_html_report_embeds_svg_plots_and_loads_no_script() {
    let dir = tempfile::tempdir().expect("tempdir");
    let html = dir.path().join("r.html");
    let spy = data(SPY);
    ok(&[
        "backtest",
        "--ticks",
        path(&spy),
        "--policy",
        "hpa,conservative",
        "--html",
        path(&html),
    ]);
    let page = std::fs::read_to_string(&html).expect("read html");
    // Two plots per service, five services.
    assert_eq!(page.matches("<svg").count(), 10);
    assert!(!page.contains("<script"));
    assert!(!page.contains("src=\"http"));
    assert!(page.contains("market-data"));
    assert!(!page.contains("PARTIAL"));
}

#[test]
fn a_bad_policy_name_fails_with_the_valid_names() {
    let spy = data(SPY);
    let error = fails(&["backtest", "--ticks", path(&spy), "--policy", "hpa,magic"]);
    assert!(error.contains("unknown policy `magic`"), "{error}");
    assert!(
        error.contains(
            "hpa, keda-lag, holt-winters, conservative, balanced, aggressive, event-driven, \
             ml-optimised"
        ),
        "{error}"
    );
}

#[test]
fn a_recorded_log_replays_to_the_same_figures_as_its_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let trades = data("market/tardis_trades.csv");
    let state = dir.path().join("state");
    ok(&["run", "--ticks", path(&trades), "--state", path(&state)]);

    let from_log = dir.path().join("log.json");
    ok(&[
        "backtest",
        "--from-log",
        path(&state),
        "--policy",
        "hpa,balanced",
        "--json",
        path(&from_log),
    ]);
    let from_files = dir.path().join("files.json");
    ok(&[
        "backtest",
        "--ticks",
        path(&trades),
        "--policy",
        "hpa,balanced",
        "--json",
        path(&from_files),
    ]);
    let read = |p: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(p).expect("read")).expect("json")
    };
    let (log, files) = (read(&from_log), read(&from_files));
    assert_eq!(log["events_in"], 9999);
    assert_eq!(log["results"], files["results"]);
}

#[test]
fn a_public_trace_gets_a_service_that_neither_pins_at_min_nor_at_max() {
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("r.json");
    let alibaba = data("workload/alibaba2018_machine_usage_days_1_to_8_grouped_30_seconds.csv");
    let load = format!("alibaba={}", path(&alibaba));
    ok(&[
        "backtest",
        "--load",
        &load,
        "--policy",
        "hpa",
        "--json",
        path(&json),
    ]);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("read")).expect("json");
    assert_eq!(report["services"], serde_json::json!(["alibaba"]));
    let figures = &report["results"]["hpa"]["alibaba"];
    let windows = figures["windows"].as_f64().expect("windows");
    let hours = windows * 15.0 / 3600.0;
    let mean_replicas = figures["pod_hours"].as_f64().expect("pod-hours") / hours;
    // Replicas 2 to 20; the fleet's mean 38 % at 8 % per pod and a 70 % target: about 7.
    assert!((4.0..12.0).contains(&mean_replicas), "{mean_replicas}");
}

#[test]
fn ctrl_c_stops_the_replay_and_writes_a_partial_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("r.json");
    let nasa = data(NASA);
    let load = format!("nasa={}", path(&nasa));
    let child = tickscale()
        .args(["backtest", "--load", &load, "--json", path(&json)])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start tickscale");
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let output = child.wait_with_output().expect("wait");
    assert!(output.status.success(), "exit {:?}", output.status);
    assert!(stdout(&output).contains("PARTIAL"), "{}", stdout(&output));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("read")).expect("json");
    assert_eq!(report["partial"], true);
    // Stopped well before the trace's 5,059,950 seconds.
    assert!(report["events_in"].as_u64().expect("events") < 5_059_950);
}
