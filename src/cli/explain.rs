//! `tickscale explain DECISION_ID`: prints the chain behind one decision, read back from the
//! embedded log: its inputs (the observed window, the forecast, the regime), the reactive and
//! predictive answers, the bounds that applied, the resource recommendation and the reason.

use anyhow::Context;
use chrono::{DateTime, Utc};
use tickscale::bus::EmbeddedLog;
use tickscale::events::{LoadForecast, MarketRegime, ObservedOutcome, ScalingDecision};

use super::consume::read_all;
use super::StateArgs;

#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// The decision's id, such as decision/market-data/1381152615000000.
    decision_id: String,
    #[command(flatten)]
    state: StateArgs,
}

pub fn explain(args: ExplainArgs) -> anyhow::Result<()> {
    let topology = args.state.topology()?;
    anyhow::ensure!(
        args.state.state.exists(),
        "no state folder at {}: run `tickscale run` first, or pass --state DIR",
        args.state.state.display()
    );
    let log = EmbeddedLog::open(&args.state.state, &topology.topics)?;
    let decisions: Vec<ScalingDecision> = read_all(&log, "scaling.decisions")?;
    let decision = decisions
        .into_iter()
        .find(|d| d.id == args.decision_id)
        .with_context(|| {
            format!(
                "no decision `{}` in {}; list them with `tickscale consume scaling.decisions \
                 --from-beginning --state {}`",
                args.decision_id,
                args.state.state.display(),
                args.state.state.display()
            )
        })?;
    let forecast = match &decision.forecast_id {
        Some(id) => read_all::<LoadForecast>(&log, "load.forecasts")?
            .into_iter()
            .find(|f| &f.id == id),
        None => None,
    };
    let observed = read_all::<ObservedOutcome>(&log, "load.observed")?
        .into_iter()
        .find(|o| o.service == decision.service && o.window_end_us == decision.ts_us);
    let regime = read_all::<MarketRegime>(&log, "market.regime")?
        .into_iter()
        .find(|r| r.window_end_us == decision.ts_us);
    for line in chain(
        &decision,
        forecast.as_ref(),
        observed.as_ref(),
        regime.as_ref(),
    ) {
        say!("{line}");
    }
    Ok(())
}

/// Returns the lines that explain `d`.
fn chain(
    d: &ScalingDecision,
    forecast: Option<&LoadForecast>,
    observed: Option<&ObservedOutcome>,
    regime: Option<&MarketRegime>,
) -> Vec<String> {
    let mut lines = vec![
        format!("decision    {} ({} at {})", d.id, d.service, time(d.ts_us)),
        format!("policy      {}, strategy {}", d.policy, d.strategy),
        "inputs".to_string(),
    ];
    lines.push(match observed {
        Some(o) => format!(
            "  observed  {}: load {:.0}/s on {} ready of {} replicas, utilisation {:.1} %, \
             backlog {:.0}, latency {:.1} ms (SLO {:.0} ms{})",
            o.id,
            o.load,
            o.ready_replicas,
            o.replicas,
            o.utilization,
            o.backlog,
            o.latency_ms,
            o.slo_latency_ms,
            if o.slo_violated { ", violated" } else { "" }
        ),
        None => format!(
            "  observed  load {:.0}/s, utilisation {:.1} % (window not found in load.observed)",
            d.observed_load, d.observed_utilization
        ),
    });
    lines.push(match (forecast, &d.forecast_id) {
        (Some(f), _) => format!(
            "  forecast  {} ({} v{}, confidence {:.2}): {}",
            f.id,
            f.model,
            f.model_version,
            f.confidence,
            f.points
                .iter()
                .map(|p| format!(
                    "+{} s {:.0} [{:.0}, {:.0}]",
                    p.horizon_s, p.load, p.lower, p.upper
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        (None, Some(id)) => format!("  forecast  {id} (not found in load.forecasts)"),
        (None, None) => "  forecast  none used".to_string(),
    });
    lines.push(match regime {
        Some(r) => format!(
            "  regime    {:?} (confidence {:.2}, volatility {:.2})",
            r.regime, r.confidence, r.volatility
        )
        .to_lowercase(),
        None => format!("  regime    {}", d.regime),
    });
    lines.push(format!(
        "reactive    the HPA asks {} pods",
        d.reactive_replicas
    ));
    lines.push(match (d.predictive_replicas, d.forecast_load) {
        (Some(replicas), Some(load)) => format!(
            "predictive  {}: {load:.0}/s needs {replicas} pods",
            d.strategy
        ),
        _ => "predictive  none".to_string(),
    });
    lines.push(format!("rule        {}", d.rule));
    lines.push(format!(
        "bounds      {}",
        if d.bounds.is_empty() {
            "none".to_string()
        } else {
            d.bounds.join(", ")
        }
    ));
    lines.push(format!(
        "resources   cpu request {}m (lower {}m, upper {}m), limit {}m",
        d.cpu_request_milli, d.cpu_lower_milli, d.cpu_upper_milli, d.cpu_limit_milli
    ));
    lines.push(format!(
        "final       {} -> {} replicas",
        d.current_replicas, d.desired_replicas
    ));
    lines.push(format!("reason      {}", d.reason));
    lines
}

fn time(ts_us: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(ts_us)
        .map(|t| t.format("%Y-%m-%d %H:%M:%SZ").to_string())
        .unwrap_or_else(|| ts_us.to_string())
}
