//! Range checks on a case's values that the JSON types cannot express: a case that no HPA could
//! be in is refused with the field and what was expected, rather than answered.

use super::{MetricCase, MetricSpec, NormalizeCase};
use crate::stages::decide::hpa::normalize::ScalingRules;

fn at_least(field: &str, value: i64, least: i64) -> Result<(), String> {
    if value < least {
        return Err(format!("`{field}` is {value}; expected at least {least}"));
    }
    Ok(())
}

fn not_negative(field: &str, value: f64) -> Result<(), String> {
    if !(value.is_finite() && value >= 0.0) {
        return Err(format!(
            "`{field}` is {value}; expected a finite number, zero or more"
        ));
    }
    Ok(())
}

/// Checks a replica-calculator case.
pub(super) fn metric(case: &MetricCase) -> Result<(), String> {
    at_least("current_replicas", case.current_replicas, 0)?;
    for (field, value) in [
        ("scale_up", case.tolerance.scale_up),
        ("scale_down", case.tolerance.scale_down),
    ] {
        not_negative(&format!("tolerance.{field}"), value)?;
    }
    match case.metric {
        MetricSpec::Resource {
            target_utilization_percent,
        } => at_least(
            "metric.target_utilization_percent",
            target_utilization_percent,
            1,
        )?,
        MetricSpec::Pods {
            target_average_milli,
        } => at_least("metric.target_average_milli", target_average_milli, 1)?,
        MetricSpec::External {
            value_milli,
            target_value_milli,
            target_average_milli,
        } => {
            at_least("metric.value_milli", value_milli, 0)?;
            for target in [target_value_milli, target_average_milli]
                .into_iter()
                .flatten()
            {
                at_least("metric target", target, 1)?;
            }
        }
    }
    for (i, pod) in case.pods.iter().enumerate() {
        if let Some(request) = pod.request_milli {
            at_least(&format!("pods[{i}].request_milli"), request, 0)?;
        }
        if let Some(usage) = pod.usage_milli {
            at_least(&format!("pods[{i}].usage_milli"), usage, 0)?;
        }
    }
    Ok(())
}

/// Checks a normalisation case.
pub(super) fn normalize(case: &NormalizeCase) -> Result<(), String> {
    at_least("current_replicas", case.current_replicas, 0)?;
    at_least("desired_replicas", case.desired_replicas, 0)?;
    at_least("min_replicas", case.min_replicas, 0)?;
    at_least("max_replicas", case.max_replicas, case.min_replicas.max(1))?;
    for (i, r) in case.recommendations.iter().enumerate() {
        at_least(&format!("recommendations[{i}].replicas"), r.replicas, 0)?;
        not_negative(&format!("recommendations[{i}].age_s"), r.age_s)?;
    }
    for (i, e) in case.scale_events.iter().enumerate() {
        not_negative(&format!("scale_events[{i}].age_s"), e.age_s)?;
    }
    if let Some(behavior) = &case.behavior {
        rules("behavior.scale_up", &behavior.scale_up)?;
        rules("behavior.scale_down", &behavior.scale_down)?;
    }
    Ok(())
}

fn rules(path: &str, rules: &ScalingRules) -> Result<(), String> {
    at_least(
        &format!("{path}.stabilization_window_s"),
        rules.stabilization_window_s,
        0,
    )?;
    for (i, policy) in rules.policies.iter().enumerate() {
        at_least(&format!("{path}.policies[{i}].value"), policy.value, 1)?;
        at_least(
            &format!("{path}.policies[{i}].period_s"),
            policy.period_s,
            1,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::stages::decide::hpa::cases::parse;

    fn normalize_case(min: i64, max: i64, age: f64) -> String {
        format!(
            r#"[{{"name": "n", "kind": "normalize", "current_replicas": 3, "desired_replicas": 5,
                "min_replicas": {min}, "max_replicas": {max}, "behavior": null,
                "recommendations": [{{"replicas": 4, "age_s": {age}}}], "scale_events": []}}]"#
        )
    }

    #[test]
    fn max_below_min_and_negative_ages_are_refused_with_the_field() {
        assert!(parse(&normalize_case(1, 10, 30.0), "ok.json").is_ok());
        let err = parse(&normalize_case(10, 2, 30.0), "bad.json").expect_err("max < min");
        assert_eq!(
            err.to_string(),
            "case 0 (\"n\") in bad.json is not a valid case: `max_replicas` is 2; expected at least 10"
        );
        let err = parse(&normalize_case(1, 10, -5.0), "bad.json").expect_err("negative age");
        assert!(
            err.to_string().contains("`recommendations[0].age_s` is -5"),
            "{err}"
        );
    }

    #[test]
    fn negative_replicas_and_usage_are_refused() {
        let case = r#"[{"name": "m", "kind": "metric", "current_replicas": -3,
            "tolerance": {"scale_up": 0.1, "scale_down": 0.1},
            "metric": {"type": "resource", "target_utilization_percent": 50},
            "pods": [{"phase": "Running", "ready": true, "cpu_warming": false, "deleting": false,
                      "request_milli": 1000, "usage_milli": 500}]}]"#;
        let err = parse(case, "bad.json").expect_err("negative replicas");
        assert!(
            err.to_string().contains("`current_replicas` is -3"),
            "{err}"
        );
        let case = case
            .replace("-3", "3")
            .replace("\"usage_milli\": 500", "\"usage_milli\": -1");
        let err = parse(&case, "bad.json").expect_err("negative usage");
        assert!(
            err.to_string().contains("`pods[0].usage_milli` is -1"),
            "{err}"
        );
    }
}
