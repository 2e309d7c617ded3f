//! The files in `schemas/` and the Rust event types describe the same records.
//!
//! Set `TICKSCALE_BLESS=1` to rewrite the files from the types after an intended change.

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::{AvroSchema, Schema};
use tickscale::events::*;

fn schema_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas")
        .join(format!("{name}.avsc"))
}

fn file_schema<T: Event>() -> Schema {
    let path = schema_path(T::NAME);
    if std::env::var_os("TICKSCALE_BLESS").is_some() {
        let text = serde_json::to_string_pretty(&T::get_schema()).expect("schema to json");
        std::fs::write(&path, text + "\n").expect("write schema");
    }
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run with TICKSCALE_BLESS=1", path.display()));
    Schema::parse_str(&text).unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()))
}

/// Encodes with the file's schema, decodes with it, and checks the value survived.
fn round_trip<T: Event + PartialEq>(event: T) {
    let schema = file_schema::<T>();
    assert_eq!(
        schema.canonical_form(),
        T::get_schema().canonical_form(),
        "schemas/{}.avsc and the Rust type differ",
        T::NAME
    );

    let writer = GenericDatumWriter::builder(&schema)
        .build()
        .expect("writer");
    let bytes = writer
        .write_ser_to_vec(&event)
        .expect("encode with the file schema");
    let reader = GenericDatumReader::builder(&schema)
        .build()
        .expect("reader");
    let back: T = reader
        .read_deser(&mut bytes.as_slice())
        .expect("decode with the file schema");
    assert_eq!(back, event, "{} did not survive a round trip", T::NAME);

    let codec = Codec::<T>::new();
    let mut ours = Vec::new();
    codec.encode(&event, &mut ours).expect("codec encode");
    assert_eq!(
        ours, bytes,
        "the codec writes other bytes than the file schema"
    );
}

#[test]
fn every_schema_file_belongs_to_an_event_type() {
    let mut names: Vec<String> = std::fs::read_dir(schema_path("x").parent().expect("dir"))
        .expect("schemas dir")
        .map(|e| {
            e.expect("entry")
                .file_name()
                .to_string_lossy()
                .replace(".avsc", "")
        })
        .collect();
    names.sort();
    let mut known: Vec<String> = tickscale::topology::known_schemas()
        .iter()
        .map(|s| s.to_string())
        .collect();
    known.sort();
    assert_eq!(names, known);
}

#[test]
fn market_events_round_trip_through_their_schemas() {
    round_trip(TradeTick {
        symbol: "SPY".into(),
        venue: "P".into(),
        ts_us: 1_381_132_800_464_000,
        price: 167.41,
        size: 100.0,
        side: Side::Sell,
    });
    round_trip(QuoteTick {
        symbol: "BTCUSDT".into(),
        venue: "binance-futures".into(),
        ts_us: 1_582_329_601_096_000,
        bid_price: 9681.92,
        bid_size: 0.67,
        ask_price: 9682.0,
        ask_size: 0.84,
    });
    round_trip(Bar {
        symbol: "BTC-PERP".into(),
        ts_us: 1_640_991_660_000_000,
        interval_s: 60,
        open: 46319.0,
        high: 46385.0,
        low: 46319.0,
        close: 46377.0,
        volume: Some(2_300_413.729_5),
    });
    round_trip(Bar {
        volume: None,
        ..bar_without_volume()
    });
    round_trip(MarketContext {
        ts_us: 1,
        kind: ContextKind::MacroRelease,
        name: "FOMC".into(),
        value: None,
    });
    round_trip(PodMetrics {
        service: "risk".into(),
        ts_us: 30_000_000,
        load: 16.1,
        cpu_percent: Some(16.1),
        memory_percent: None,
        source: "alibaba.csv".into(),
    });
}

fn bar_without_volume() -> Bar {
    Bar {
        symbol: "GBPUSD".into(),
        ts_us: 1_328_054_400_000_000,
        interval_s: 60,
        open: 1.57597,
        high: 1.57606,
        low: 1.57576,
        close: 1.57576,
        volume: None,
    }
}

#[test]
fn derived_events_round_trip_through_their_schemas() {
    round_trip(FeatureVector {
        id: "features/risk/15000000".into(),
        service: "risk".into(),
        window_start_us: 15_000_000,
        window_end_us: 30_000_000,
        trade_count: 12,
        quote_count: 3,
        tick_rate: 1.0,
        notional_rate: 1234.5,
        last_price: 100.5,
        log_return: -0.001,
        spread_bps: Some(1.5),
        vix: None,
        load: 420.0,
        load_source: "market".into(),
        late_events: 2,
        regime: Some(MarketRegime {
            id: "regime/15000000".into(),
            window_start_us: 15_000_000,
            window_end_us: 30_000_000,
            regime: Regime::Calm,
            volatility: 0.1,
            volatility_ratio: 0.9,
            trend_score: 0.2,
            volume_ratio: 1.1,
            confidence: 0.7,
        }),
        market_time_us: Some(30_500_000),
        context: vec![MarketContext {
            ts_us: 20_000_000,
            kind: ContextKind::VolatilityIndex,
            name: "VIX".into(),
            value: Some(18.5),
        }],
    });
    round_trip(MarketRegime {
        id: "regime/0".into(),
        window_start_us: 0,
        window_end_us: 15_000_000,
        regime: Regime::Stressed,
        volatility: 0.9,
        volatility_ratio: 3.1,
        trend_score: -2.5,
        volume_ratio: 2.0,
        confidence: 0.8,
    });
    round_trip(LoadForecast {
        id: "forecast/order/1".into(),
        service: "order".into(),
        ts_us: 1,
        model: "holt-winters".into(),
        model_version: 1,
        observed_load: 10.0,
        interval_level: 0.9,
        confidence: 0.7,
        points: vec![ForecastPoint {
            horizon_s: 15,
            load: 11.0,
            lower: 9.0,
            upper: 13.0,
        }],
    });
}

#[test]
fn decision_loop_events_round_trip_through_their_schemas() {
    round_trip(ScalingDecision {
        id: "decision/order/1".into(),
        service: "order".into(),
        ts_us: 1,
        current_replicas: 3,
        desired_replicas: 6,
        policy: "predictive".into(),
        strategy: "balanced".into(),
        forecast_id: Some("forecast/order/1".into()),
        forecast_load: Some(5000.0),
        observed_load: 2500.0,
        observed_utilization: 83.3,
        reactive_replicas: 4,
        predictive_replicas: Some(6),
        regime: "Volatile".into(),
        rule: "forecast".into(),
        bounds: vec!["stabilization".into()],
        reason: "forecast needs 6 pods".into(),
        cpu_request_milli: 1150,
        cpu_limit_milli: 1725,
        cpu_lower_milli: 600,
        cpu_upper_milli: 1300,
    });
    round_trip(ActuationOutcome {
        id: "actuation/decision/order/1".into(),
        decision_id: "decision/order/1".into(),
        service: "order".into(),
        ts_us: 1,
        status: ActuationStatus::Applied,
        from_replicas: 3,
        to_replicas: 6,
        detail: "3 pods starting".into(),
    });
    round_trip(ObservedOutcome {
        id: "observed/order/0".into(),
        service: "order".into(),
        window_start_us: 0,
        window_end_us: 15_000_000,
        load: 2500.0,
        replicas: 3,
        ready_replicas: 3,
        capacity: 3000.0,
        utilization: 83.3,
        backlog: 0.0,
        latency_ms: 6.0,
        slo_latency_ms: 10.0,
        slo_violated: false,
    });
    round_trip(ModelEvent {
        id: "model/DriftDetected/order/1".into(),
        ts_us: 1,
        service: "order".into(),
        kind: ModelEventKind::DriftDetected,
        model: "holt-winters".into(),
        model_version: 1,
        mape: 0.4,
        bias: -12.0,
        samples: 40,
        detail: "recent MAPE 0.40 against 0.10".into(),
    });
    round_trip(DeadLetter {
        source: "trades.csv".into(),
        partition: -1,
        offset: 17,
        reason: "price: invalid float".into(),
        payload: vec![0xff, 0x00, b'x'],
    });
}

#[test]
fn an_edited_schema_file_no_longer_matches_its_type() {
    let text = std::fs::read_to_string(schema_path("TradeTick")).expect("TradeTick.avsc");
    let edited = text.replacen("\"size\"", "\"quantity\"", 1);
    assert_ne!(edited, text, "the test must actually edit the schema");
    let schema = Schema::parse_str(&edited).expect("still valid avro");
    assert_ne!(
        schema.canonical_form(),
        TradeTick::get_schema().canonical_form()
    );
}
