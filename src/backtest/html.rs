//! The report as one self-contained HTML page: the table and, per service, two plots drawn
//! with `plotters` as inline SVG (load and each policy's capacity; each policy's replicas).
//!
//! **Consumes** a [`Report`]; **produces** a string of HTML that needs no network: no scripts,
//! no fonts or styles from elsewhere. A partial report says PARTIAL in its title and heading.
//!
//! # Caveats
//!
//! The plotted series are bounded ([`MAX_SERIES_POINTS`](super::report::MAX_SERIES_POINTS)):
//! over a long replay each point is the mean of many windows, which flattens short spikes.

use std::fmt::Write as _;

use plotters::prelude::*;

use super::report::{Report, SeriesPoint};
use super::table::table;

const WIDTH: u32 = 960;
const HEIGHT: u32 = 320;

/// A colour per policy, in selection order (then repeated).
const PALETTE: [RGBColor; 8] = [
    RGBColor(214, 39, 40),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

/// Returns the report as an HTML page.
///
/// # Errors
/// Fails when a plot cannot be drawn (a bug: drawing into a string does no IO).
pub fn html(report: &Report) -> Result<String, super::Error> {
    let failed = |e: DrawError| super::Error::Plot(e.to_string());
    let mark = if report.partial { "PARTIAL " } else { "" };
    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{mark}tickscale backtest</title>\
         <style>body{{font-family:sans-serif;margin:2em}}pre{{font-size:12px}}</style>\
         </head><body>\n<h1>{mark}tickscale backtest</h1>\n"
    );
    if report.partial {
        page.push_str("<p><strong>PARTIAL</strong>: stopped before the end of the input.</p>\n");
    }
    let _ = writeln!(page, "<pre>{}</pre>", escape(&table(report)));
    for service in &report.services {
        let _ = writeln!(page, "<h2>{}</h2>", escape(service));
        page.push_str(&plot(report, service, Panel::LoadAndCapacity).map_err(failed)?);
        page.push_str(&plot(report, service, Panel::Replicas).map_err(failed)?);
    }
    page.push_str("</body></html>\n");
    Ok(page)
}

#[derive(Clone, Copy, PartialEq)]
enum Panel {
    LoadAndCapacity,
    Replicas,
}

type DrawError = plotters::drawing::DrawingAreaErrorKind<std::io::Error>;
type DrawResult<T> = Result<T, DrawError>;

/// Draws one panel of one service as an SVG element.
fn plot(report: &Report, service: &str, panel: Panel) -> DrawResult<String> {
    let lines: Vec<(&str, &[SeriesPoint])> = report
        .policies
        .iter()
        .filter_map(|p| {
            let points = report.series.get(p)?.get(service)?;
            Some((p.as_str(), points.as_slice()))
        })
        .collect();
    let value = |p: &SeriesPoint| match panel {
        Panel::LoadAndCapacity => p.capacity,
        Panel::Replicas => p.replicas,
    };
    let all = lines.iter().flat_map(|(_, points)| points.iter());
    let (t0, t1) = all.clone().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
        let t = p.ts_us as f64 / 3.6e9;
        (lo.min(t), hi.max(t))
    });
    let y_max = all
        .map(|p| {
            value(p).max(if panel == Panel::LoadAndCapacity {
                p.load
            } else {
                0.0
            })
        })
        .fold(1.0, f64::max);
    if t0 > t1 {
        return Ok(String::new());
    }
    let (t0, t1) = (t0, t1.max(t0 + 1e-6));

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)?;
        let caption = match panel {
            Panel::LoadAndCapacity => format!("{service}: load (black) and capacity per policy"),
            Panel::Replicas => format!("{service}: replicas per policy"),
        };
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(60)
            .build_cartesian_2d(t0..t1, 0.0..y_max * 1.05)?;
        chart
            .configure_mesh()
            .x_desc("hours since the epoch (event time)")
            .draw()?;
        if panel == Panel::LoadAndCapacity {
            if let Some((_, points)) = lines.first() {
                let load = points.iter().map(|p| (p.ts_us as f64 / 3.6e9, p.load));
                chart
                    .draw_series(LineSeries::new(load, BLACK.stroke_width(2)))?
                    .label("load")
                    .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLACK));
            }
        }
        for (i, (policy, points)) in lines.iter().enumerate() {
            let colour = PALETTE[i % PALETTE.len()];
            let series = points.iter().map(|p| (p.ts_us as f64 / 3.6e9, value(p)));
            chart
                .draw_series(LineSeries::new(series, colour))?
                .label(*policy)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], colour));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
    }
    Ok(svg)
}

/// Escapes text for HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
