//! `tickscale run` on the public recordings, end to end through the binary.

mod common;

use common::{consume, data, ok, stdout};
use serde_json::Value;

fn decisions_of<'a>(decisions: &'a [Value], service: &str) -> Vec<&'a Value> {
    decisions
        .iter()
        .filter(|d| d["service"] == service)
        .collect()
}

/// Returns the highest desired replica count decided in `[from, to)` (µs).
fn peak_between(decisions: &[&Value], from: i64, to: i64) -> i64 {
    decisions
        .iter()
        .filter(|d| (from..to).contains(&d["ts_us"].as_i64().expect("ts_us")))
        .map(|d| d["desired_replicas"].as_i64().expect("desired"))
        .max()
        .unwrap_or(0)
}

// 2013-10-07 is a Monday in EDT (UTC-4): the open is 13:30 UTC, the close 20:00 UTC.
const DAY: i64 = 1_381_104_000_000_000; // 2013-10-07 00:00 UTC
const HOUR: i64 = 3_600_000_000;
const MINUTE: i64 = 60_000_000;

#[test]
fn spy_day_reads_every_trade_and_scales_up_into_the_open_and_the_close() {
    let state = tempfile::tempdir().expect("tempdir");
    let spy = data("market/spy_tick_20131007_trade.zip");
    let state_arg = state.path().to_str().expect("path");
    let output = ok(&[
        "run",
        "--ticks",
        spy.to_str().expect("path"),
        "--state",
        state_arg,
    ]);
    assert!(
        stdout(&output).contains("events in 250601,"),
        "{}",
        stdout(&output)
    );

    let decisions = consume(state.path(), "scaling.decisions");
    for service in ["market-data", "strategy", "risk", "order", "position"] {
        assert!(
            !decisions_of(&decisions, service).is_empty(),
            "no decision for {service}"
        );
    }
    let first = &decisions[0];
    for field in [
        "service",
        "ts_us",
        "current_replicas",
        "desired_replicas",
        "policy",
        "reason",
    ] {
        assert!(!first[field].is_null(), "decision lacks {field}: {first}");
    }

    let market_data = decisions_of(&decisions, "market-data");
    let pre_open = peak_between(&market_data, DAY + 12 * HOUR, DAY + 13 * HOUR);
    let open = peak_between(&market_data, DAY + 13 * HOUR + 25 * MINUTE, DAY + 14 * HOUR);
    let midday = peak_between(&market_data, DAY + 16 * HOUR, DAY + 17 * HOUR);
    let close = peak_between(
        &market_data,
        DAY + 19 * HOUR + 30 * MINUTE,
        DAY + 20 * HOUR + 5 * MINUTE,
    );
    assert!(
        open > pre_open,
        "open {open} should exceed pre-open {pre_open}"
    );
    assert!(open > midday, "open {open} should exceed midday {midday}");
    assert!(
        close > midday,
        "close {close} should exceed midday {midday}"
    );
}

#[test]
fn tardis_trades_and_btc_minute_bars_run_to_decisions() {
    for file in [
        "market/tardis_trades.csv",
        "market/btc-perp-20211231-20220201_1m.csv",
    ] {
        let state = tempfile::tempdir().expect("tempdir");
        let path = data(file);
        let args = ["run", "--ticks", path.to_str().expect("path"), "--state"];
        let output = ok(&[
            &args[..],
            &[state.path().to_str().expect("path"), "--summary-every", "0"],
        ]
        .concat());
        let text = stdout(&output);
        assert!(text.contains("dead letters 0,"), "{file}: {text}");

        let decisions = consume(state.path(), "scaling.decisions");
        let services: std::collections::BTreeSet<_> = decisions
            .iter()
            .map(|d| d["service"].as_str().expect("service").to_string())
            .collect();
        assert_eq!(services.len(), 5, "{file}: {services:?}");
        assert!(decisions
            .iter()
            .all(|d| !d["reason"].as_str().unwrap_or("").is_empty()));
    }
}

#[test]
fn a_workload_trace_replaces_one_services_market_load() {
    let state = tempfile::tempdir().expect("tempdir");
    let trades = data("market/tardis_trades.csv");
    let trace = data("workload/alibaba2018_machine_usage_days_1_to_8_grouped_30_seconds.csv");
    let load = format!("risk={}", trace.to_str().expect("path"));
    let args = [
        "run",
        "--ticks",
        trades.to_str().expect("path"),
        "--load",
        &load,
    ];
    ok(&[
        &args[..],
        &[
            "--state",
            state.path().to_str().expect("path"),
            "--summary-every",
            "0",
        ],
    ]
    .concat());

    let features = consume(state.path(), "features");
    let risk: Vec<_> = features.iter().filter(|f| f["service"] == "risk").collect();
    let source = risk[0]["load_source"].as_str().expect("load_source");
    assert!(source.contains("alibaba2018"), "{source}");
    // The trace's first row (16.13 % CPU) is aligned with the first trade's window.
    let first = risk[0]["load"].as_f64().expect("load");
    assert!((first - 16.126_976_521_322_472).abs() < 1e-9, "{first}");
    // The other services keep their market load.
    let market_data = features
        .iter()
        .find(|f| f["service"] == "market-data")
        .expect("market-data");
    assert_eq!(market_data["load_source"], "market");
}
