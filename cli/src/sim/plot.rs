//! SVG plots, drawn with plotters' SVG backend: text is left to the viewer's
//! fonts, so no font library or system font is needed to draw them.

use super::report::{LoadDistribution, Report, Row};
use anyhow::anyhow;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::collections::BTreeMap;

const SIZE: (u32, u32) = (900, 520);
const FONT: &str = "sans-serif";

/// The plots of `report`, as `(file name, SVG text)`.
pub(crate) fn plots(report: &Report) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    match report.scenario.as_str() {
        "stable" => {
            out.push((
                "rmr_ldh.svg".into(),
                rmr_ldh(&by_label(&report.cycles), "stable state")?,
            ));
        }
        "churn" => {
            let series = by_label(&report.rows);
            out.push(("rmr_ldh.svg".into(), rmr_ldh(&series, "under churn")?));
            let points: Vec<Series> = series
                .iter()
                .map(|(label, rows)| Series {
                    label: label.clone(),
                    points: rows
                        .iter()
                        .map(|r| (f64::from(r.cycle.unwrap_or(0)), r.measure.reliability))
                        .collect(),
                })
                .collect();
            out.push((
                "reliability.svg".into(),
                lines("Reliability under churn", "cycle", "reliability (%)", &points, None)?,
            ));
        }
        "failure" => {
            let ours = Series {
                label: "epidemic: next broadcast".into(),
                points: report
                    .rows
                    .iter()
                    .filter_map(|r| Some((r.failed_pct?, r.measure.reliability)))
                    .collect(),
            };
            let paper = Series {
                label: "Plumtree paper (≈, read off its figure)".into(),
                points: PAPER_FAILURE.to_vec(),
            };
            out.push((
                "reliability.svg".into(),
                lines(
                    "Reliability of the first broadcast after a massive failure",
                    "nodes failed at one instant (%)",
                    "reliability (%)",
                    &[ours, paper],
                    Some((0.0, 100.0)),
                )?,
            ));
        }
        "compare" => {
            let series: Vec<Series> = report
                .rows
                .iter()
                .map(|r| Series {
                    label: r.label.clone(),
                    points: std::iter::once((0.0, r.measure.reliability))
                        .chain(
                            r.after_failure
                                .iter()
                                .filter_map(|f| Some((f.failed_pct?, f.measure.reliability))),
                        )
                        .collect(),
                })
                .collect();
            out.push((
                "reliability.svg".into(),
                lines(
                    "Reliability by strategy, on the overlay before the failure",
                    "nodes failed (%)",
                    "reliability (%)",
                    &series,
                    Some((0.0, 100.0)),
                )?,
            ));
        }
        _ => {}
    }
    if !report.loads.is_empty() {
        out.push(("load.svg".into(), loads(&report.loads)?));
    }
    Ok(out)
}

/// The Plumtree paper's reliability after a massive failure (PAPERS.md),
/// read off its figure: 60% is the middle of the 56–84% it shows.
const PAPER_FAILURE: [(f64, f64); 10] = [
    (10.0, 100.0),
    (20.0, 100.0),
    (30.0, 100.0),
    (40.0, 99.0),
    (50.0, 95.0),
    (60.0, 70.0),
    (70.0, 15.0),
    (80.0, 0.0),
    (90.0, 0.0),
    (95.0, 0.0),
];

struct Series {
    label: String,
    points: Vec<(f64, f64)>,
}

/// Rows grouped by label, in first-appearance order.
fn by_label(rows: &[Row]) -> Vec<(String, Vec<&Row>)> {
    let mut out: Vec<(String, Vec<&Row>)> = Vec::new();
    for r in rows {
        match out.iter_mut().find(|(l, _)| *l == r.label) {
            Some((_, v)) => v.push(r),
            None => out.push((r.label.clone(), vec![r])),
        }
    }
    out
}

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("drawing a plot: {e}")
}

fn color(i: usize) -> RGBColor {
    const COLORS: [RGBColor; 8] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
    ];
    COLORS[i % COLORS.len()]
}

fn range(points: impl Iterator<Item = f64>, floor: Option<f64>) -> (f64, f64) {
    let (mut lo, mut hi) = points.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    if let Some(f) = floor {
        lo = lo.min(f);
    }
    if hi - lo < 1e-9 {
        hi = lo + 1.0;
    }
    let pad = (hi - lo) * 0.05;
    (lo - if floor.is_some() { 0.0 } else { pad }, hi + pad)
}

/// A line chart of several series, with a marker on every point.
fn lines(title: &str, x: &str, y: &str, series: &[Series], y_fixed: Option<(f64, f64)>) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        draw_lines(&root, title, x, y, series, y_fixed)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

fn draw_lines(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    title: &str,
    x: &str,
    y: &str,
    series: &[Series],
    y_fixed: Option<(f64, f64)>,
) -> anyhow::Result<()> {
    let xs = range(series.iter().flat_map(|s| s.points.iter().map(|p| p.0)), Some(0.0));
    let ys = match y_fixed {
        Some((lo, hi)) => (lo, hi + (hi - lo) * 0.04),
        None => range(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)), Some(0.0)),
    };
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(xs.0..xs.1, ys.0..ys.1)
        .map_err(err)?;
    let whole = |v: &f64| format!("{v:.0}");
    let fine = |v: &f64| format!("{v}");
    let y_whole = ys.1 - ys.0 > 5.0;
    chart
        .configure_mesh()
        .x_desc(x)
        .y_desc(y)
        .x_label_formatter(&whole)
        .y_label_formatter(if y_whole { &whole } else { &fine })
        .label_style((FONT, 13))
        .draw()
        .map_err(err)?;
    for (i, s) in series.iter().enumerate() {
        let c = color(i);
        chart
            .draw_series(LineSeries::new(s.points.iter().copied(), c.stroke_width(2)))
            .map_err(err)?
            .label(s.label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        chart
            .draw_series(s.points.iter().map(|&p| Circle::new(p, 3, c.filled())))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .label_font((FONT, 13))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    Ok(())
}

/// RMR (top) and LDH (bottom) over cycles, one series per label.
fn rmr_ldh(series: &[(String, Vec<&Row>)], what: &str) -> anyhow::Result<String> {
    let cycle = |r: &Row| f64::from(r.cycle.unwrap_or(0));
    let rmr: Vec<Series> = series
        .iter()
        .map(|(l, rows)| Series {
            label: l.clone(),
            points: rows.iter().map(|r| (cycle(r), r.measure.rmr)).collect(),
        })
        .collect();
    let ldh: Vec<Series> = series
        .iter()
        .map(|(l, rows)| Series {
            label: l.clone(),
            points: rows.iter().map(|r| (cycle(r), r.measure.ldh)).collect(),
        })
        .collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (SIZE.0, SIZE.1 * 2)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (top, bottom) = root.split_vertically(SIZE.1);
        draw_lines(&top, &format!("RMR per broadcast, {what}"), "cycle", "RMR", &rmr, None)?;
        draw_lines(
            &bottom,
            &format!("Last delivery hop, {what}"),
            "cycle",
            "LDH",
            &ldh,
            None,
        )?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Share of node-broadcast pairs by payload frames sent, on a log scale:
/// one stem per series and load, side by side; loads from `CAP` up share
/// the last stem.
fn loads(dists: &[LoadDistribution]) -> anyhow::Result<String> {
    const CAP: u32 = 12;
    let series: Vec<Series> = dists
        .iter()
        .map(|d| {
            let total: u64 = d.counts.iter().map(|c| c.1).sum::<u64>().max(1);
            let mut buckets: BTreeMap<u32, u64> = BTreeMap::new();
            for &(load, count) in &d.counts {
                *buckets.entry(load.min(CAP)).or_default() += count;
            }
            Series {
                label: d.label.clone(),
                points: buckets
                    .into_iter()
                    .map(|(k, v)| (f64::from(k), 100.0 * v as f64 / total as f64))
                    .collect(),
            }
        })
        .collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Per-node forwarding load", (FONT, 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5f64..f64::from(CAP) + 0.5, (0.001f64..100.0).log_scale())
            .map_err(err)?;
        let whole = |v: &f64| format!("{v:.0}");
        chart
            .configure_mesh()
            .x_desc(format!(
                "payload frames a node sent for one broadcast ({CAP} = {CAP} or more)"
            ))
            .y_desc("share of nodes (%)")
            .x_labels(CAP as usize + 1)
            .x_label_formatter(&whole)
            .label_style((FONT, 13))
            .draw()
            .map_err(err)?;
        let width = 0.8 / series.len().max(1) as f64;
        for (i, s) in series.iter().enumerate() {
            let c = color(i);
            let dx = (i as f64 - (series.len() as f64 - 1.0) / 2.0) * width;
            chart
                .draw_series(
                    s.points
                        .iter()
                        .map(|&(x, y)| PathElement::new(vec![(x + dx, 0.001), (x + dx, y)], c.stroke_width(3))),
                )
                .map_err(err)?
                .label(s.label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(3)));
            chart
                .draw_series(s.points.iter().map(|&(x, y)| Circle::new((x + dx, y), 3, c.filled())))
                .map_err(err)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font((FONT, 13))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::report::{Measure, Summary};

    #[test]
    fn draws_svg_without_fonts() {
        let mut rows = Vec::new();
        for (pct, rel) in [(10.0, 100.0), (50.0, 97.5), (90.0, 40.0)] {
            let mut r = Row::new(
                format!("{pct}%"),
                Measure {
                    reliability: rel,
                    ..Measure::default()
                },
            );
            r.failed_pct = Some(pct);
            rows.push(r);
        }
        let report = Report {
            scenario: "failure".into(),
            params: Default::default(),
            summary: Summary {
                of: String::new(),
                measure: Measure::default(),
                wall_ms: 0,
            },
            rows,
            cycles: Vec::new(),
            loads: vec![LoadDistribution {
                label: "x".into(),
                counts: vec![(0, 5), (1, 90), (5, 5), (9999, 1)],
            }],
            table: String::new(),
        };
        let plots = plots(&report).unwrap();
        let names: Vec<&str> = plots.iter().map(|p| p.0.as_str()).collect();
        assert_eq!(names, ["reliability.svg", "load.svg"]);
        for (_, svg) in &plots {
            assert!(svg.starts_with("<svg"), "{}", &svg[..40.min(svg.len())]);
            assert!(svg.contains("<text"), "labels are SVG text");
        }
    }
}
