//! The one-line reason of a decision, for a human.

use crate::events::LoadForecast;
use crate::topology::ServiceSpec;

use super::{Candidate, Reactive};

/// Returns the one-line reason, e.g. "forecast 8,420/s at +75 s needs 6 pods (HPA asks 4);
/// scaling 3 -> 6".
pub(super) fn reason_line(
    spec: &ServiceSpec,
    forecast: &LoadForecast,
    reactive: &Reactive,
    candidate: &Candidate,
    current: i64,
    desired: i64,
    bounds: &[&str],
) -> String {
    let hpa_part = format!(
        "utilization {:.1}% vs target {}% asks {} pods{}",
        reactive.usage_ratio * spec.target_utilization_percent,
        spec.target_utilization_percent,
        reactive.replicas,
        reactive
            .note
            .as_ref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default(),
    );
    let why = match (candidate.rule, &candidate.plan) {
        ("fallback-low-confidence", _) => format!(
            "forecast confidence {:.2} below threshold, falling back to HPA: {hpa_part}",
            forecast.confidence
        ),
        (_, Some(plan)) => format!(
            "forecast {}/s at +{} s needs {} pods (HPA asks {})",
            thousands(plan.load),
            plan.horizon_s,
            plan.replicas,
            reactive.replicas
        ),
        _ => match &candidate.lag {
            Some(lag) => format!(
                "consumer lag {} over {} partitions at {} per replica asks {} pods (HPA asks {})",
                thousands(lag.total_lag as f64),
                lag.lags.len(),
                thousands(lag.lag_threshold as f64),
                lag.replicas,
                reactive.replicas
            ),
            None => hpa_part,
        },
    };
    let why = match &candidate.event {
        Some(event) if event.in_s >= 0 => format!(
            "{} in {} s raises the floor to {}; {why}",
            event.name, event.in_s, event.replicas
        ),
        Some(event) => format!(
            "{} {} s ago holds the floor at {}; {why}",
            event.name, -event.in_s, event.replicas
        ),
        None => why,
    };
    let action = if desired == current {
        format!("keeping {current}")
    } else {
        format!("scaling {current} -> {desired}")
    };
    if bounds.is_empty() {
        format!("{why}; {action}")
    } else {
        format!("{why}; {action} (bounded by {})", bounds.join(", "))
    }
}

/// Returns `x` rounded to a whole number with thousands separators: 8420.4 → "8,420".
pub(super) fn thousands(x: f64) -> String {
    let digits = format!("{:.0}", x.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if x < -0.5 {
        out.insert(0, '-');
    }
    out
}
