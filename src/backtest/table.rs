//! The report as a terminal table: one column per policy, one block of rows per service.
//!
//! **Consumes** a [`Report`]; **produces** plain text, the same for the same report. A partial
//! report says PARTIAL in its first line.

use std::fmt::Write as _;

use super::report::{PolicyTotals, Report, ServiceFigures};

const LABEL_WIDTH: usize = 26;
const COLUMN_WIDTH: usize = 13;

/// One row: its label and how to read its cell from a service's figures.
type Row = (&'static str, fn(&ServiceFigures) -> String);
/// One row of the totals block.
type TotalRow = (&'static str, fn(&PolicyTotals) -> String);

const ROWS: [Row; 10] = [
    ("pod-hours", |f| format!("{:.1}", f.pod_hours)),
    ("SLO-violation minutes", |f| {
        format!("{:.1}", f.slo_violation_minutes)
    }),
    ("peak backlog", |f| format!("{:.0}", f.peak_backlog)),
    ("p99 latency ms", |f| optional(f.p99_latency_ms, 1)),
    ("scale events", |f| f.scale_events.to_string()),
    ("cost", |f| format!("{:.2}", f.cost)),
    ("forecast MAPE %", |f| optional(f.forecast.mape_percent, 1)),
    ("forecast R²", |f| optional(f.forecast.r_squared, 3)),
    ("interval coverage", |f| {
        optional(f.forecast.interval_coverage, 3)
    }),
    ("windows", |f| f.windows.to_string()),
];

fn optional(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "-".to_string(), |v| format!("{v:.decimals$}"))
}

/// Returns the report as a table for a terminal.
pub fn table(report: &Report) -> String {
    let mut out = String::new();
    let status = if report.partial {
        "PARTIAL: stopped before the end of the input; figures cover what was replayed"
    } else {
        "complete"
    };
    let _ = writeln!(
        out,
        "backtest ({status}): {} events in, {} windows of {} s, {} dead letters, price {} per \
         pod-hour",
        report.facts.events_in,
        report.facts.windows,
        report.facts.window_s,
        report.facts.dead_letters,
        report.price_per_pod_hour
    );
    header(&mut out, report);
    for service in &report.services {
        let _ = writeln!(out, "{service}");
        for (label, cell) in ROWS {
            let cells = report.policies.iter().map(|policy| {
                let figures = report.results.get(policy).and_then(|r| r.get(service));
                figures.map_or_else(|| "-".to_string(), cell)
            });
            row(&mut out, label, cells);
        }
    }
    totals(&mut out, report);
    out
}

fn header(out: &mut String, report: &Report) {
    row(out, "", report.policies.iter().cloned());
}

fn totals(out: &mut String, report: &Report) {
    let _ = writeln!(out, "all services");
    let total = |policy: &String| report.totals.get(policy);
    let rows: [TotalRow; 4] = [
        ("pod-hours", |t| format!("{:.1}", t.pod_hours)),
        ("SLO-violation minutes", |t| {
            format!("{:.1}", t.slo_violation_minutes)
        }),
        ("scale events", |t| t.scale_events.to_string()),
        ("cost", |t| format!("{:.2}", t.cost)),
    ];
    for (label, cell) in rows {
        let cells = report
            .policies
            .iter()
            .map(|p| total(p).map_or_else(|| "-".to_string(), cell));
        row(out, label, cells);
    }
}

fn row(out: &mut String, label: &str, cells: impl Iterator<Item = String>) {
    let _ = write!(out, "  {label:<LABEL_WIDTH$}");
    for cell in cells {
        let _ = write!(out, "{cell:>COLUMN_WIDTH$}");
    }
    out.push('\n');
}
