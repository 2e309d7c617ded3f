use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;
use crate::events::Side;
use crate::topology::ServiceKind;

const S: i64 = 1_000_000;

fn spec(name: &str, kind: ServiceKind) -> ServiceSpec {
    ServiceSpec {
        name: name.to_string(),
        kind,
        min_replicas: 1,
        max_replicas: 10,
        capacity_per_pod: 2_000.0,
        startup_s: 30,
        slo_latency_ms: 50.0,
        base_latency_ms: 5.0,
        target_utilization_percent: 70.0,
        initial_replicas: 2,
    }
}

fn trade(ts_us: i64, price: f64) -> TradeTick {
    TradeTick {
        symbol: "BTCUSDT".to_string(),
        venue: "test".to_string(),
        ts_us,
        price,
        size: 1.0,
        side: Side::Buy,
    }
}

fn config(window_s: i64, allowed_lateness_s: i64) -> FeatureConfig {
    FeatureConfig {
        window_s,
        allowed_lateness_s,
        ..FeatureConfig::default()
    }
}

fn market_windows(window_s: i64, lateness_s: i64) -> FeatureWindows {
    FeatureWindows::market_only(config(window_s, lateness_s), LoadModel::default())
}

fn run_trades(fw: &mut FeatureWindows, times: &[i64]) -> Vec<WindowClosed> {
    let mut out = Vec::new();
    for &ts in times {
        fw.on_trade(&trade(ts, 100.0 + (ts / S) as f64), &mut out);
    }
    fw.finish(&mut out);
    out
}

#[test]
fn event_one_second_late_within_allowed_lateness_lands_in_its_window() {
    let mut fw = market_windows(15, 2);
    let out = run_trades(&mut fw, &[10 * S, 16 * S, 14 * S, 20 * S]);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].market.start_us, 0);
    assert_eq!(out[0].market.trade_count, 2);
    assert_eq!(out[1].market.trade_count, 2);
    assert_eq!(fw.late_events(), 0);
    // The last price of window 0 is the one at 14 s, although it arrived after 10 s and 16 s.
    assert_eq!(out[0].market.last_price, 114.0);
}

#[test]
fn event_after_its_window_closed_is_counted_late_in_the_next_window() {
    let mut fw = market_windows(15, 2);
    let mut out = Vec::new();
    fw.on_trade(&trade(5 * S, 100.0), &mut out);
    fw.on_trade(&trade(18 * S, 101.0), &mut out);
    // Watermark 16 s passed the end of [0, 15): window 0 is out.
    assert_eq!(out.len(), 1);
    fw.on_trade(&trade(14 * S, 50.0), &mut out);
    fw.finish(&mut out);

    assert_eq!(fw.late_events(), 1);
    assert_eq!(out[0].market.late_events, 0);
    assert_eq!(out[1].market.late_events, 1);
    // The late trade is counted, but its stale price moves nothing.
    assert_eq!(out[1].market.trade_count, 2);
    assert_eq!(out[1].market.last_price, 101.0);
    assert_eq!(out[1].market.low, 101.0);
}

#[test]
fn empty_windows_between_events_are_emitted_with_the_price_carried() {
    let mut fw = FeatureWindows::new(
        config(15, 2),
        vec![spec("md", ServiceKind::MarketData)],
        BTreeSet::new(),
        LoadModel::default(),
    );
    let out = run_trades(&mut fw, &[S, 2 * S, 50 * S]);
    let starts: Vec<i64> = out.iter().map(|w| w.market.start_us / S).collect();
    assert_eq!(starts, vec![0, 15, 30, 45]);
    assert_eq!(out[1].market.trade_count, 0);
    assert_eq!(out[1].market.last_price, 102.0);
    assert_eq!(out[1].market.log_return, 0.0);
    assert_eq!(out[1].features[0].load, 0.0);
    // Two trades in 15 s at fan-out 500.
    assert!((out[0].features[0].load - 2.0 / 15.0 * 500.0).abs() < 1e-9);
    assert!((out[3].market.log_return - (150.0f64 / 102.0).ln()).abs() < 1e-12);
}

#[test]
fn feature_vectors_follow_service_order_with_deterministic_ids() {
    let services = vec![
        spec("risk", ServiceKind::Risk),
        spec("md", ServiceKind::MarketData),
    ];
    let mut fw = FeatureWindows::new(
        config(15, 2),
        services,
        BTreeSet::new(),
        LoadModel::default(),
    );
    let out = run_trades(&mut fw, &[30 * S]);
    let ids: Vec<&str> = out[0].features.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(ids, vec!["features/risk/30000000", "features/md/30000000"]);
    assert_eq!(out[0].features[1].load_source, "market");
}

fn sample(service: &str, ts_us: i64, load: f64) -> PodMetrics {
    PodMetrics {
        service: service.to_string(),
        ts_us,
        load,
        cpu_percent: None,
        memory_percent: None,
        source: "nasa.tbz2".to_string(),
    }
}

#[test]
fn traced_service_takes_the_mean_sample_and_carries_it_through_quiet_windows() {
    let traced: BTreeSet<String> = ["web".to_string()].into();
    let services = vec![spec("web", ServiceKind::General)];
    let mut fw = FeatureWindows::new(config(15, 0), services, traced, LoadModel::default());
    let mut out = Vec::new();
    fw.on_workload(&sample("web", 0, 100.0), &mut out);
    fw.on_workload(&sample("web", 5 * S, 300.0), &mut out);
    fw.on_workload(&sample("other", 20 * S, 9.0), &mut out);
    fw.on_workload(&sample("web", 31 * S, 50.0), &mut out);
    fw.finish(&mut out);
    let loads: Vec<f64> = out.iter().map(|w| w.features[0].load).collect();
    assert_eq!(loads, vec![200.0, 200.0, 50.0]);
    assert_eq!(out[0].features[0].load_source, "nasa.tbz2");
    assert_eq!(fw.unmatched_workload(), 1);
}

#[test]
fn a_minute_bar_is_spread_evenly_over_four_windows() {
    let mut fw = market_windows(15, 2);
    let mut out = Vec::new();
    let bar = Bar {
        symbol: "BTC".to_string(),
        ts_us: 60 * S,
        interval_s: 60,
        open: 100.0,
        high: 110.0,
        low: 90.0,
        close: 105.0,
        volume: Some(600_000.0),
    };
    fw.on_bar(&bar, &mut out);
    fw.finish(&mut out);
    // 600,000 USD / 5,000 USD per trade = 120 trades, 30 per window, 2 per second.
    assert_eq!(out.len(), 4);
    for w in &out {
        assert_eq!(w.market.trade_count, 30);
        assert!((w.market.trade_rate - 2.0).abs() < 1e-12);
        assert!((w.market.notional_rate - 10_000.0).abs() < 1e-9);
    }
    assert_eq!(out[3].market.last_price, 105.0);
    assert_eq!(out[3].market.high, 110.0);
}

#[test]
fn quotes_give_tick_rate_and_mean_spread() {
    let mut fw = market_windows(10, 0);
    let mut out = Vec::new();
    for (i, ask) in [100.02, 100.04].into_iter().enumerate() {
        let q = QuoteTick {
            symbol: "X".to_string(),
            venue: "v".to_string(),
            ts_us: i as i64 * S,
            bid_price: 100.0,
            bid_size: 1.0,
            ask_price: ask,
            ask_size: 1.0,
        };
        fw.on_quote(&q, &mut out);
    }
    fw.finish(&mut out);
    assert_eq!(out[0].market.quote_count, 2);
    assert!((out[0].market.tick_rate - 0.2).abs() < 1e-12);
    // Spreads of 2 and 4 cents on a mid near 100: about 2 and 4 bp.
    let spread = out[0].market.spread_bps.unwrap_or_default();
    assert!((spread - 2.9997).abs() < 1e-3, "{spread}");
    // No trades: the window's price is the last quote mid.
    assert!((out[0].market.last_price - 100.02).abs() < 1e-9);
    assert!((out[0].market.low - 100.01).abs() < 1e-9);
}

#[test]
fn state_survives_a_serde_round_trip_mid_stream() {
    let times: Vec<i64> = (0..200).map(|i| i * 700_000).collect();
    let straight = run_trades(&mut market_windows(15, 2), &times);

    let mut first = market_windows(15, 2);
    let mut out = Vec::new();
    for &ts in &times[..100] {
        first.on_trade(&trade(ts, 100.0 + (ts / S) as f64), &mut out);
    }
    let saved = serde_json::to_string(&first).expect("serialises");
    let mut second: FeatureWindows = serde_json::from_str(&saved).expect("deserialises");
    for &ts in &times[100..] {
        second.on_trade(&trade(ts, 100.0 + (ts / S) as f64), &mut out);
    }
    second.finish(&mut out);
    assert_eq!(out, straight);
}

#[test]
fn tardis_trades_fill_504_windows_of_15_seconds() {
    let path = crate::data::shared_data_file("market/tardis_trades.csv");
    let mut reader = csv::Reader::from_path(path).expect("opens the recording");
    let services = vec![spec("md", ServiceKind::MarketData)];
    let mut fw = FeatureWindows::new(
        config(15, 2),
        services,
        BTreeSet::new(),
        LoadModel::default(),
    );
    let mut out = Vec::new();
    let mut rows = 0;
    for record in reader.records() {
        let record = record.expect("reads a row");
        let ts: i64 = record[2].parse().expect("timestamp");
        let price: f64 = record[6].parse().expect("price");
        let size: f64 = record[7].parse().expect("amount");
        let t = TradeTick {
            size,
            ..trade(ts, price)
        };
        fw.on_trade(&t, &mut out);
        rows += 1;
    }
    fw.finish(&mut out);

    assert_eq!(rows, 9_999);
    assert_eq!(fw.late_events(), 0);
    assert_eq!(out.iter().map(|w| w.market.trade_count).sum::<i64>(), 9_999);
    // First trade 1582329602.111 s, last 1582337147.728 s: windows from 1582329600 to
    // 1582337145, that is (1582337145 - 1582329600) / 15 + 1 = 504, of which 4 are empty.
    assert_eq!(out.len(), 504);
    assert_eq!(out[0].market.start_us, 1_582_329_600 * S);
    assert_eq!(out.iter().filter(|w| w.market.trade_count == 0).count(), 4);
    assert_eq!(out[0].market.trade_count, 47);
    let busiest = out
        .iter()
        .max_by_key(|w| w.market.trade_count)
        .expect("windows");
    assert_eq!(busiest.market.start_us, 1_582_336_695 * S);
    assert_eq!(busiest.market.trade_count, 140);
    for w in &out {
        assert_eq!(w.market.end_us - w.market.start_us, 15 * S);
        assert_eq!(w.market.tick_rate, w.market.trade_count as f64 / 15.0);
        assert_eq!(w.features[0].load, w.market.tick_rate * 500.0);
    }
}

/// Sorted event times in µs, with distinct values so the last price is well defined.
fn event_times() -> impl Strategy<Value = Vec<i64>> {
    proptest::collection::btree_set(-50_000_000i64..400_000_000, 1..300)
        .prop_map(|set| set.into_iter().collect())
}

proptest! {
    #[test]
    fn every_in_order_event_lands_in_exactly_one_aligned_window(
        times in event_times(), window_s in 1i64..40, lateness_s in 0i64..10,
    ) {
        let mut fw = market_windows(window_s, lateness_s);
        let out = run_trades(&mut fw, &times);
        let w = window_s * S;
        prop_assert_eq!(fw.late_events(), 0);
        prop_assert_eq!(out.iter().map(|x| x.market.trade_count).sum::<i64>(), times.len() as i64);
        let first = times[0].div_euclid(w);
        let last = times[times.len() - 1].div_euclid(w);
        prop_assert_eq!(out.len() as i64, last - first + 1);
        for (i, x) in out.iter().enumerate() {
            prop_assert_eq!(x.market.start_us, (first + i as i64) * w);
            prop_assert_eq!(x.market.start_us.rem_euclid(w), 0);
            let inside = times.iter().filter(|&&t| t >= x.market.start_us && t < x.market.end_us);
            prop_assert_eq!(inside.count() as i64, x.market.trade_count);
        }
    }

    #[test]
    fn shuffling_within_the_lateness_bound_gives_the_same_windows(
        times in event_times(), window_s in 1i64..40, lateness_s in 1i64..10, seed in any::<u64>(),
    ) {
        let shuffled = shuffle_within(&times, lateness_s * S, seed);
        let expected = run_trades(&mut market_windows(window_s, lateness_s), &times);
        let mut fw = market_windows(window_s, lateness_s);
        let got = run_trades(&mut fw, &shuffled);
        prop_assert_eq!(fw.late_events(), 0);
        prop_assert_eq!(got, expected);
    }
}

/// Reorders sorted `times` so that every event is at most `bound` behind the largest time
/// already seen: random swaps of neighbours, each kept only when both moved events stay within
/// the bound.
fn shuffle_within(times: &[i64], bound: i64, seed: u64) -> Vec<i64> {
    let mut out = times.to_vec();
    let mut state = seed | 1;
    for _ in 0..3 {
        for j in 1..out.len() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            if state & 1 == 0 {
                continue;
            }
            let (a, b) = (out[j - 1], out[j]);
            let max_before = out[..j - 1].iter().copied().max().unwrap_or(i64::MIN);
            if b >= max_before.saturating_sub(bound) && a >= max_before.max(b) - bound {
                out.swap(j - 1, j);
            }
        }
    }
    out
}

#[test]
fn the_test_shuffle_really_reorders_close_events() {
    let times: Vec<i64> = (0..100).map(|i| i * 100_000).collect();
    let shuffled = shuffle_within(&times, S, 7);
    assert_ne!(shuffled, times);
    let mut sorted = shuffled.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, times);
}

/// Measures the hot path; run with
/// `cargo test --release --lib stages::features -- --ignored --nocapture`.
#[test]
#[ignore = "a throughput measurement, meaningful only in release mode"]
fn on_trade_sustains_millions_of_ticks_per_second() {
    let services = vec![
        spec("md", ServiceKind::MarketData),
        spec("risk", ServiceKind::Risk),
    ];
    let mut fw = FeatureWindows::new(
        config(15, 2),
        services,
        BTreeSet::new(),
        LoadModel::default(),
    );
    let ticks: Vec<TradeTick> = (0..5_000_000i64)
        .map(|i| trade(i * 1_000 + (i % 7) * 300, 100.0 + (i % 13) as f64))
        .collect();
    let mut out = Vec::new();
    let started = std::time::Instant::now();
    for t in &ticks {
        fw.on_trade(t, &mut out);
    }
    fw.finish(&mut out);
    let rate = ticks.len() as f64 / started.elapsed().as_secs_f64();
    eprintln!(
        "on_trade: {:.1} million ticks/s, {} windows",
        rate / 1e6,
        out.len()
    );
    assert_eq!(
        out.iter().map(|w| w.market.trade_count).sum::<i64>(),
        5_000_000
    );
    assert!(rate > 5e6, "{rate} ticks/s");
}

#[test]
fn a_gap_longer_than_the_limit_is_skipped_instead_of_filled_with_empty_windows() {
    let day = 86_400 * S;
    let mut fw = market_windows(15, 2);
    // Two trades 20 s apart, then one ten days later: a weekend-like gap.
    let out = run_trades(&mut fw, &[0, 20 * S, 10 * day]);
    let starts: Vec<i64> = out.iter().map(|w| w.market.start_us).collect();
    assert_eq!(starts, [0, 15 * S, 10 * day]);
    assert_eq!(fw.skipped_windows(), (10 * day / (15 * S) - 2) as u64);
    assert_eq!(fw.late_events(), 0);
}

#[test]
fn a_gap_within_the_limit_is_filled_with_empty_windows() {
    let mut fw = market_windows(15, 2);
    let out = run_trades(&mut fw, &[0, 3600 * S]);
    assert_eq!(
        out.len(),
        241,
        "every 15 s window of the hour, and the one after it"
    );
    assert_eq!(fw.skipped_windows(), 0);
}

#[test]
fn a_volatility_index_opens_no_window_and_is_carried_into_later_ones() {
    let mut fw = market_windows(15, 2);
    let mut out = Vec::new();
    let vix = |ts_us: i64, value: f64| MarketContext {
        ts_us,
        kind: ContextKind::VolatilityIndex,
        name: "VIX".to_string(),
        value: Some(value),
    };
    // Decades of daily levels before the first trade make no windows.
    for year in 0..20 {
        fw.on_context(&vix(year * 365 * 86_400 * S, 15.0 + year as f64), &mut out);
    }
    assert!(out.is_empty());
    let first_trade = 7_000 * 86_400 * S;
    fw.on_trade(&trade(first_trade, 100.0), &mut out);
    fw.on_trade(&trade(first_trade + 30 * S, 100.0), &mut out);
    fw.finish(&mut out);
    assert_eq!(out[0].market.start_us, first_trade);
    assert!(out.iter().all(|w| w.market.vix == Some(34.0)));
}
