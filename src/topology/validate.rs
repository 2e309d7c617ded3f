//! Checks of the topology that serde cannot express, with the line each problem sits on.

use super::{Cleanup, Error, InvalidField, ServiceSpec, TopicSpec};

/// Returns the 1-based line of `field = …` inside the `index`-th `[[table]]` of `text`, or the
/// table header's line when the field is absent.
fn field_line(text: &str, table: &str, index: usize, field: &str) -> usize {
    let header = format!("[[{table}]]");
    let mut seen = None;
    let mut header_line = 0;
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed == header {
            seen = Some(seen.map_or(0, |s: usize| s + 1));
            if seen == Some(index) {
                header_line = n + 1;
            } else if seen > Some(index) {
                break;
            }
            continue;
        }
        let key = trimmed.split('=').next().unwrap_or("").trim();
        if seen == Some(index) && key == field {
            return n + 1;
        }
    }
    header_line
}

struct Check<'a> {
    path: &'a str,
    text: &'a str,
    table: &'a str,
    index: usize,
    entry: String,
}

impl Check<'_> {
    fn fail(&self, field: &str, expected: impl Into<String>, found: impl ToString) -> Error {
        Error::Invalid(Box::new(InvalidField {
            path: self.path.to_string(),
            line: field_line(self.text, self.table, self.index, field),
            entry: self.entry.clone(),
            field: field.to_string(),
            expected: expected.into(),
            found: found.to_string(),
        }))
    }
}

/// More partitions than this is surely a typo (Kafka's own practical limits are far lower).
const MAX_PARTITIONS: u32 = 10_000;
/// A pod start-up longer than a day is surely a typo.
const MAX_STARTUP_S: i64 = 86_400;

pub(super) fn topics((path, text): (&str, &str), topics: &[TopicSpec]) -> Result<(), Error> {
    for (name, schema) in super::REQUIRED_TOPICS {
        if !topics.iter().any(|t| t.name == name) {
            let message = format!(
                "expected a [[topic]] named `{name}` (schema {schema}): tickscale writes it"
            );
            return Err(Error::Parse {
                path: path.to_string(),
                message,
            });
        }
    }
    let known = super::known_schemas();
    for (index, topic) in topics.iter().enumerate() {
        let check = Check {
            path,
            text,
            table: "topic",
            index,
            entry: format!("topic `{}`", topic.name),
        };
        if topics[..index].iter().any(|t| t.name == topic.name) {
            return Err(check.fail("name", "a name no other topic has", &topic.name));
        }
        if !(1..=MAX_PARTITIONS).contains(&topic.partitions) {
            let expected = format!("between 1 and {MAX_PARTITIONS}");
            return Err(check.fail("partitions", expected, topic.partitions));
        }
        if !known.contains(&topic.schema.as_str()) {
            return Err(check.fail(
                "schema",
                format!("one of {}", known.join(", ")),
                &topic.schema,
            ));
        }
        let required = super::REQUIRED_TOPICS
            .iter()
            .find(|(name, _)| *name == topic.name);
        if let Some((_, schema)) = required.filter(|(_, schema)| *schema != topic.schema) {
            let expected = format!("{schema}, the schema tickscale writes on this topic");
            return Err(check.fail("schema", expected, &topic.schema));
        }
        match (topic.cleanup, topic.retention_hours) {
            (Cleanup::Delete, None) => {
                return Err(check.fail(
                    "retention_hours",
                    "hours to keep, with cleanup = \"delete\"",
                    "nothing",
                ))
            }
            (Cleanup::Delete, Some(0)) => {
                return Err(check.fail("retention_hours", "at least 1", 0))
            }
            (Cleanup::Compact, Some(h)) => {
                return Err(check.fail(
                    "retention_hours",
                    "no retention with cleanup = \"compact\"",
                    h,
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

pub(super) fn services((path, text): (&str, &str), services: &[ServiceSpec]) -> Result<(), Error> {
    if services.is_empty() {
        return Err(Error::Parse {
            path: path.to_string(),
            message: "expected at least one [[service]]".into(),
        });
    }
    for (index, s) in services.iter().enumerate() {
        let check = Check {
            path,
            text,
            table: "service",
            index,
            entry: format!("service `{}`", s.name),
        };
        if s.name.is_empty() || s.name.contains(['/', ' ', '=']) {
            return Err(check.fail(
                "name",
                "a non-empty name without '/', '=' or spaces",
                &s.name,
            ));
        }
        if services[..index].iter().any(|t| t.name == s.name) {
            return Err(check.fail("name", "a name no other service has", &s.name));
        }
        if s.min_replicas < 1 {
            return Err(check.fail("min_replicas", "at least 1", s.min_replicas));
        }
        if s.max_replicas < s.min_replicas {
            let expected = format!("at least min_replicas ({})", s.min_replicas);
            return Err(check.fail("max_replicas", expected, s.max_replicas));
        }
        if !(s.min_replicas..=s.max_replicas).contains(&s.initial_replicas) {
            let expected = format!("between {} and {}", s.min_replicas, s.max_replicas);
            return Err(check.fail("initial_replicas", expected, s.initial_replicas));
        }
        check_numbers(&check, s)?;
    }
    Ok(())
}

fn check_numbers(check: &Check, s: &ServiceSpec) -> Result<(), Error> {
    if !(s.capacity_per_pod.is_finite() && s.capacity_per_pod > 0.0) {
        return Err(check.fail("capacity_per_pod", "a positive number", s.capacity_per_pod));
    }
    if !(0..=MAX_STARTUP_S).contains(&s.startup_s) {
        let expected = format!("between 0 and {MAX_STARTUP_S} seconds");
        return Err(check.fail("startup_s", expected, s.startup_s));
    }
    if !(s.base_latency_ms.is_finite() && s.base_latency_ms > 0.0) {
        return Err(check.fail("base_latency_ms", "a positive number", s.base_latency_ms));
    }
    if !(s.slo_latency_ms.is_finite() && s.slo_latency_ms > s.base_latency_ms) {
        let expected = format!("more than base_latency_ms ({})", s.base_latency_ms);
        return Err(check.fail("slo_latency_ms", expected, s.slo_latency_ms));
    }
    let target = s.target_utilization_percent;
    if !(target > 0.0 && target <= 100.0) {
        return Err(check.fail(
            "target_utilization_percent",
            "a percentage in (0, 100]",
            target,
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::topology::{Error, Topology};

    const TOPICS: &str = include_str!("../../topology/topics.toml");
    const SERVICES: &str = include_str!("../../topology/services.toml");

    fn services_error(services: &str) -> String {
        let err = Topology::parse(("topics.toml", TOPICS), ("services.toml", services))
            .expect_err("the topology should be refused");
        err.to_string()
    }

    #[test]
    fn shipped_topology_is_valid_and_declares_the_five_trading_services() {
        let topology = Topology::builtin().expect("shipped topology");
        let names: Vec<_> = topology.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["market-data", "strategy", "risk", "order", "position"]
        );
        assert_eq!(
            topology
                .topic("scaling.decisions")
                .map(|t| t.schema.as_str()),
            Some("ScalingDecision")
        );
    }

    #[test]
    fn max_below_min_names_file_line_field_and_expectation() {
        let bad = SERVICES.replacen("max_replicas = 30", "max_replicas = 1", 1);
        let line = bad
            .lines()
            .position(|l| l == "max_replicas = 1")
            .expect("edited line")
            + 1;
        let message = services_error(&bad);
        assert_eq!(
            message,
            format!(
                "services.toml:{line}: field `max_replicas` of service `strategy`: expected at least \
                 min_replicas (2), found 1"
            )
        );
    }

    #[test]
    fn unknown_field_is_refused_with_its_name_and_line() {
        let bad = SERVICES.replacen("startup_s = 45", "startup_seconds = 45", 1);
        let line = bad
            .lines()
            .position(|l| l.starts_with("startup_seconds"))
            .expect("line")
            + 1;
        let message = services_error(&bad);
        assert!(
            message.starts_with("services.toml: TOML parse error at line "),
            "{message}"
        );
        assert!(message.contains(&format!("line {line}")), "{message}");
        assert!(
            message.contains("unknown field `startup_seconds`"),
            "{message}"
        );
    }

    #[test]
    fn a_wrong_type_says_what_was_expected() {
        let bad = SERVICES.replacen("min_replicas = 2", "min_replicas = \"two\"", 1);
        let message = services_error(&bad);
        assert!(message.contains("min_replicas"), "{message}");
        assert!(
            message.contains("invalid type: string \"two\", expected i64"),
            "{message}"
        );
    }

    #[test]
    fn topic_with_unknown_schema_lists_the_known_ones() {
        let bad = TOPICS.replacen("schema = \"Bar\"", "schema = \"Candle\"", 1);
        let err = Topology::parse(("topics.toml", &bad), ("services.toml", SERVICES))
            .expect_err("refused");
        let message = err.to_string();
        assert!(
            message.contains("field `schema` of topic `market.bars`"),
            "{message}"
        );
        assert!(
            message.contains("expected one of TradeTick, QuoteTick, Bar"),
            "{message}"
        );
        assert!(message.ends_with("found Candle"), "{message}");
    }

    #[test]
    fn a_missing_required_topic_is_named_with_its_file() {
        let start = TOPICS
            .find("[[topic]]\nname = \"deadletter\"")
            .expect("deadletter topic");
        let bad = &TOPICS[..start];
        let err = Topology::parse(("topics.toml", bad), ("services.toml", SERVICES))
            .expect_err("refused");
        assert_eq!(
            err.to_string(),
            "topics.toml: expected a [[topic]] named `deadletter` (schema DeadLetter): tickscale \
             writes it"
        );
    }

    #[test]
    fn absurd_partition_counts_and_start_up_times_are_refused() {
        let bad = TOPICS.replacen("partitions = 3", "partitions = 4000000000", 1);
        let err = Topology::parse(("topics.toml", &bad), ("services.toml", SERVICES))
            .expect_err("refused");
        assert!(
            err.to_string().contains("expected between 1 and 10000"),
            "{err}"
        );
        let bad = SERVICES.replacen("startup_s = 30", "startup_s = 99999999999", 1);
        assert!(services_error(&bad).contains("field `startup_s` of service `market-data`"));
    }

    #[test]
    fn compacted_topic_with_retention_is_refused() {
        let bad = TOPICS.replacen(
            "cleanup = \"compact\"\nschema",
            "cleanup = \"compact\"\nretention_hours = 5\nschema",
            1,
        );
        let err = Topology::parse(("topics.toml", &bad), ("services.toml", SERVICES))
            .expect_err("refused");
        assert!(err
            .to_string()
            .contains("field `retention_hours` of topic `model.events`"));
        assert!(matches!(err, Error::Invalid(_)));
    }
}
