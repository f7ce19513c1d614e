//! `epidemic sim failure`: a massive failure at one instant.
//!
//! For each failure level, a fresh copy of the same overlay (same seed)
//! warms up with `warmup` cycles from one origin, then that share of the
//! other nodes crashes at one instant and the cycles go on: the failure's
//! own cycle broadcasts right after the crash (before any link has reported
//! it), then the membership step repairs the views, and so on. The levels'
//! failed sets are nested (the first k of one seeded permutation), so a
//! higher level fails a superset of a lower one.
//!
//! **Healing rounds** are the cycles after the failure's own until a
//! broadcast reaches every live node that can still be reached: 0 when the
//! first broadcast after the failure already does, 1 when the next cycle's
//! does. After a large failure a few survivors know no live node: their
//! views hold only failed nodes, or only other such survivors
//! (`Cluster::reachable_from`). HyParView connects a node only to peers it
//! knows, so they come back only if a live node that still lists them
//! promotes them, or through a fresh join. They are reported as *cut off*,
//! and healing does not wait for them (the paper cannot reach them either:
//! its HyParView delivers to ≈91% after 95% fail). The reliability columns
//! still count them.

use super::output::{Figure, Table, count, figures};
use super::report::{Report, Row, Summary, Tally};
use super::setup::Headline;
use super::{Common, Percentages, Progress, SINGLE_SENDER_THRESHOLD, parallel, take_pct};
use clap::Args;
use epidemic_mem::Id;
use serde_json::json;

const LEVELS: &str = "10,20,30,40,50,60,70,80,90,95";
/// Cycles before the failure: the tree forms in the first and settles in
/// the next.
const WARMUP: u32 = 3;
/// Cycles from the failure on: the paper heals within 4.
const ROUNDS: u32 = 5;

/// Options of `epidemic sim failure`.
#[derive(Debug, Clone, Args)]
pub struct FailureArgs {
    /// Shares of the nodes that fail at once, in percent, comma-separated.
    #[arg(long, default_value = LEVELS, )]
    pub levels: Percentages,
    /// Cycles before the failure, for the tree to form and settle.
    #[arg(long, default_value_t = WARMUP)]
    pub warmup: u32,
    /// Cycles simulated from the failure on, at most, waiting for a
    /// broadcast to reach every live node again.
    #[arg(long, default_value_t = ROUNDS, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,
}

impl FailureArgs {
    pub(crate) fn work(&self) -> u64 {
        self.levels.0.len() as u64 * u64::from(self.warmup + self.rounds + 1)
    }
}

/// The Plumtree paper's figures (PAPERS.md), by failure level: reliability of
/// the next broadcast, and healing rounds.
fn paper(level: f64) -> (&'static str, &'static str) {
    match level {
        l if l <= 30.0 => ("≈100%", "1"),
        l if l <= 40.0 => ("≈99%", "1"),
        l if l <= 50.0 => ("≈95%", "1"),
        l if l <= 60.0 => ("≈56–84%", "1"),
        l if l <= 70.0 => ("≈15%", "1"),
        _ => ("≈0%", "1–4"),
    }
}

struct Outcome {
    first: Tally,
    rounds: Vec<f64>,
    healing: Option<u32>,
    cut_off: u64,
}

/// Runs the scenario.
pub fn run(common: &Common, args: &FailureArgs, progress: &Progress) -> anyhow::Result<Report> {
    let n = common.nodes as usize;
    let (origin, order) = common.origin_and_order(0xFA11);

    let outcomes = parallel(args.levels.0.len(), common.jobs(), |job| {
        let level = args.levels.0[job];
        progress.message("building overlays");
        let mut cluster = common.build(Some(SINGLE_SENDER_THRESHOLD), 1);
        progress.inc(1);
        progress.message("broadcasting");
        cluster.warm_up(origin, args.warmup, progress);
        cluster.crash(take_pct(&order, level, n));
        let mut first = Tally::default();
        let mut rounds = Vec::new();
        let mut healing = None;
        let mut cut_off = 0;
        for round in 0..args.rounds {
            let shot = cluster.broadcast(origin);
            if round == 0 {
                first.add(&shot);
                first.add_loads(&shot, |i| cluster.is_alive(i as Id));
            }
            rounds.push(shot.reliability());
            progress.inc(1);
            let reachable = cluster.reachable_from(origin);
            cut_off = shot.alive.saturating_sub(reachable) as u64;
            if shot.delivered >= reachable {
                healing = Some(round);
                progress.inc(u64::from(args.rounds - round - 1));
                break;
            }
            cluster.membership_step();
        }
        Outcome {
            first,
            rounds,
            healing,
            cut_off,
        }
    });

    let mut rows = Vec::new();
    let mut all = Tally::default();
    for (level, o) in args.levels.0.iter().zip(&outcomes) {
        let mut row = Row::new(format!("{level}%"), o.first.measure());
        row.failed_pct = Some(*level);
        row.healing_rounds = o.healing;
        row.cut_off = Some(o.cut_off);
        row.round_reliability = o.rounds.clone();
        rows.push(row);
        all.merge(&o.first);
    }
    let mut params = common.params();
    params.insert("levels_pct".into(), json!(args.levels.0));
    params.insert("warmup".into(), json!(args.warmup));
    params.insert("rounds".into(), json!(args.rounds));
    params.insert("origin".into(), json!(origin));
    params.insert("optimization_threshold".into(), json!(SINGLE_SENDER_THRESHOLD));
    let mut report = Report {
        scenario: "failure".into(),
        params,
        summary: Summary {
            of: "the first broadcast after the failure, averaged over the levels".into(),
            measure: all.measure(),
            wall_ms: 0,
        },
        rows,
        cycles: Vec::new(),
        loads: Vec::new(),
        table: String::new(),
    };
    report.table = table(common, args, &report);
    Ok(report)
}

fn table(common: &Common, args: &FailureArgs, report: &Report) -> String {
    let mut t = Table::new([
        "failed",
        "reliability",
        "paper",
        "healing rounds",
        "paper",
        "cut off",
        "RMR",
        "LDH",
        "payload",
        "control",
        "reliability by round",
    ]);
    for r in &report.rows {
        let m = &r.measure;
        let (paper_rel, paper_heal) = paper(r.failed_pct.unwrap_or(0.0));
        let mut cells = vec![
            r.label.clone(),
            Figure::Reliability.of(m),
            paper_rel.into(),
            r.healing_rounds
                .map_or_else(|| format!("> {}", args.rounds - 1), |h| h.to_string()),
            paper_heal.into(),
            r.cut_off.map_or_else(String::new, count),
        ];
        cells.extend(figures(
            m,
            &[Figure::Rmr, Figure::MaxLdh, Figure::Payload, Figure::Control],
        ));
        cells.push(
            r.round_reliability
                .iter()
                .map(|&x| {
                    if x >= 100.0 {
                        "100".to_string()
                    } else {
                        format!("{x:.2}")
                    }
                })
                .collect::<Vec<_>>()
                .join(" "),
        );
        t.row(cells);
    }
    Headline::cluster("failure", common)
        .then(common.views())
        .then(common.latency_clause())
        .then(common.detection_clause())
        .then(format!(
            "{} warm-up cycles, then the failure at one instant",
            args.warmup
        ))
        .page(
            &t,
            format!(
                "Reliability: of the first broadcast, sent right after the failure. Healing rounds: cycles after \
         the failure's own until a broadcast reaches every live node that any protocol still could (0: the first \
         one did). Cut off: survivors whose HyParView views lead to no live node (only \
         failed ones, or other such survivors), at the last round; only a live node that still lists them, or a \
         fresh join, brings them back, so healing does not wait for them (reliability counts them). A cycle is \
         one broadcast run to quiescence, then one shuffle interval ({} ms) of membership repair. \
         \"paper\": the Plumtree paper (SRDS 2007) at 10,000 nodes, read off its figures.\n",
                common.shuffle_ms,
            ),
        )
}
