//! Tables for people, CSV files and plots for `--out`.

use super::plot;
use super::report::{Measure, Report, Row};
use anyhow::Context;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A plain-text table: a header row and left-aligned first column, the other
/// columns right-aligned.
pub(crate) struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(header: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Table {
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    pub(crate) fn row(&mut self, cells: impl IntoIterator<Item = String>) {
        self.rows.push(cells.into_iter().collect());
    }

    pub(crate) fn render(&self) -> String {
        let cols = self.header.len();
        let width = |i: usize| {
            self.rows
                .iter()
                .chain([&self.header])
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..cols).map(width).collect();
        let mut out = String::new();
        let line = |out: &mut String, cells: &[String]| {
            for (i, w) in widths.iter().enumerate() {
                let c = cells.get(i).map_or("", String::as_str);
                let pad = w - c.chars().count();
                if i == 0 {
                    out.push_str(c);
                    out.push_str(&" ".repeat(pad));
                } else {
                    out.push_str("  ");
                    out.push_str(&" ".repeat(pad));
                    out.push_str(c);
                }
            }
            let trimmed = out.trim_end().len();
            out.truncate(trimmed);
            out.push('\n');
        };
        line(&mut out, &self.header);
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        line(&mut out, &rule);
        for r in &self.rows {
            line(&mut out, r);
        }
        out
    }
}

/// One figure of a [`Measure`] as a table cell: every broadcast scenario's
/// table formats its figures through this one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Figure {
    /// Mean reliability, as a percentage ([`pct`]).
    Reliability,
    /// Lowest reliability, as a percentage.
    MinReliability,
    /// Mean RMR ([`ratio`]).
    Rmr,
    /// Highest RMR.
    MaxRmr,
    /// Mean last delivery hop, one decimal.
    Ldh,
    /// Highest last delivery hop.
    MaxLdh,
    /// Payload frames per broadcast ([`thousands`]).
    Payload,
    /// Control frames per broadcast.
    Control,
    /// IHAVE frames per broadcast.
    Ihave,
    /// The busiest node's payload frames for one broadcast.
    MaxLoad,
}

impl Figure {
    /// A set of broadcasts' spread and cost, mean and extreme: the columns
    /// `stable` and `churn` share.
    pub(crate) const SPREAD: [Figure; 8] = [
        Figure::Reliability,
        Figure::MinReliability,
        Figure::Rmr,
        Figure::MaxRmr,
        Figure::Ldh,
        Figure::MaxLdh,
        Figure::Payload,
        Figure::Control,
    ];

    /// The cell for `m`.
    pub(crate) fn of(self, m: &Measure) -> String {
        match self {
            Figure::Reliability => pct(m.reliability),
            Figure::MinReliability => pct(m.min_reliability),
            Figure::Rmr => ratio(m.rmr),
            Figure::MaxRmr => ratio(m.max_rmr),
            Figure::Ldh => format!("{:.1}", m.ldh),
            Figure::MaxLdh => m.max_ldh.to_string(),
            Figure::Payload => thousands(m.payload_msgs),
            Figure::Control => thousands(m.control_msgs),
            Figure::Ihave => thousands(m.ihave_msgs),
            Figure::MaxLoad => thousands(f64::from(m.max_load)),
        }
    }
}

/// The cells of `figures` for `m`, in order.
pub(crate) fn figures(m: &Measure, figures: &[Figure]) -> Vec<String> {
    figures.iter().map(|f| f.of(m)).collect()
}

/// A count as a table cell, with thousands separators.
pub(crate) fn count(x: u64) -> String {
    thousands(x as f64)
}

/// A report's JSON document without its one nondeterministic field
/// (`summary.wall_ms`): two runs with the same seed give equal values.
pub(crate) fn deterministic_json<T: serde::Serialize>(report: &T) -> serde_json::Value {
    let mut v = serde_json::to_value(report).expect("reports serialize");
    if let Some(summary) = v.get_mut("summary").and_then(|s| s.as_object_mut()) {
        summary.remove("wall_ms");
    }
    v
}

/// A percentage with two decimals, or three when two would round a
/// shortfall up to 100.
pub(crate) fn pct(x: f64) -> String {
    let two = format!("{x:.2}");
    if x < 100.0 && two == "100.00" {
        format!("{x:.3}%")
    } else {
        format!("{two}%")
    }
}

/// A ratio (RMR) with three decimals.
pub(crate) fn ratio(x: f64) -> String {
    format!("{x:.3}")
}

const CSV_HEADER: &str = "label,cycle,failed_pct,broadcasts,reliability,min_reliability,rmr,max_rmr,ldh,max_ldh,\
payload_msgs,control_msgs,ihave_msgs,ack_msgs,max_load,duplicates,healing_rounds";

/// A CSV field, quoted if it needs to be.
pub(crate) fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn opt<T: ToString>(x: Option<T>) -> String {
    x.map(|v| v.to_string()).unwrap_or_default()
}

fn csv_row(out: &mut String, r: &Row) {
    let m = &r.measure;
    let _ = writeln!(
        out,
        "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
        csv_field(&r.label),
        opt(r.cycle),
        opt(r.failed_pct),
        m.broadcasts,
        m.reliability,
        m.min_reliability,
        m.rmr,
        m.max_rmr,
        m.ldh,
        m.max_ldh,
        m.payload_msgs,
        m.control_msgs,
        m.ihave_msgs,
        m.ack_msgs,
        m.max_load,
        m.duplicates,
        opt(r.healing_rounds),
    );
    for f in &r.after_failure {
        csv_row(out, f);
    }
}

fn csv(rows: &[Row]) -> String {
    let mut out = String::from(CSV_HEADER);
    out.push('\n');
    for r in rows {
        csv_row(&mut out, r);
    }
    out
}

/// Creates `dir` if missing and writes `report.json` (what `--format json`
/// prints) into it: the start of every scenario's `--out`. Returns the
/// paths written so far.
pub(crate) fn start_out_dir<T: serde::Serialize>(dir: &Path, report: &T) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = Vec::new();
    let json = serde_json::to_string_pretty(report).context("serializing the report")? + "\n";
    write(dir, "report.json", &json, &mut written)?;
    Ok(written)
}

/// Writes `contents` to `dir/name` and adds the path to `written`.
pub(crate) fn write(dir: &Path, name: &str, contents: &str, written: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let path = dir.join(name);
    std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
    written.push(path);
    Ok(())
}

/// Writes the report's CSV files and SVG plots into `dir` (created if
/// missing) and returns the paths written.
///
/// - `report.json`: what `--format json` prints;
/// - `rows.csv`: the report's rows (for `compare`, each strategy's failure
///   rows follow it, with `failed_pct` set);
/// - `cycles.csv`: per-cycle rows (`stable`, `churn`);
/// - `loads.csv`: per-node forwarding load (`label,load,count`);
/// - `reliability.svg`: reliability against the share of nodes failed
///   (`failure`, `compare`), or over cycles (`churn`);
/// - `rmr_ldh.svg`: RMR and LDH over cycles (`stable`, `churn`);
/// - `load.svg`: the distribution of per-node forwarding load.
pub fn write_out_dir(report: &Report, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = start_out_dir(dir, report)?;
    write(dir, "rows.csv", &csv(&report.rows), &mut written)?;
    if !report.cycles.is_empty() {
        write(dir, "cycles.csv", &csv(&report.cycles), &mut written)?;
    }
    if !report.loads.is_empty() {
        let mut out = String::from("label,load,count\n");
        for d in &report.loads {
            for (load, count) in &d.counts {
                let _ = writeln!(out, "{},{load},{count}", csv_field(&d.label));
            }
        }
        write(dir, "loads.csv", &out, &mut written)?;
    }
    for (name, svg) in plot::plots(report)? {
        write(dir, &name, &svg, &mut written)?;
    }
    Ok(written)
}

/// Formats a count with thousands separators.
pub(crate) fn thousands(x: f64) -> String {
    let s = format!("{:.0}", x.round());
    let (sign, digits) = s.strip_prefix('-').map_or(("", s.as_str()), |d| ("-", d));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns() {
        let mut t = Table::new(["name", "value"]);
        t.row(["a".to_string(), "1".to_string()]);
        t.row(["long name".to_string(), "1,000".to_string()]);
        assert_eq!(
            t.render(),
            "name       value\n---------  -----\na              1\nlong name  1,000\n"
        );
    }

    #[test]
    fn percentages_never_round_up_to_full() {
        assert_eq!(pct(100.0), "100.00%");
        assert_eq!(pct(99.997), "99.997%");
        assert_eq!(pct(99.5), "99.50%");
    }

    #[test]
    fn csv_quotes() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("plain"), "plain");
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(39984.0), "39,984");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1_000_000.0), "1,000,000");
    }
}
