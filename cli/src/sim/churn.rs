//! `epidemic sim churn`: nodes fail in every cycle.
//!
//! After `warmup` cycles, each of `cycles` cycles crashes `fail-per-cycle`
//! random live nodes (never the origin) at one instant, then broadcasts from
//! the origin and runs the membership step. Crashed nodes stay down, so the
//! cluster shrinks by `cycles × fail-per-cycle` nodes in all.

use super::output::{Figure, Table, count, figures};
use super::report::{LoadDistribution, Report, Row, Summary, Tally};
use super::setup::Headline;
use super::{Common, Progress, SINGLE_SENDER_THRESHOLD};
use anyhow::bail;
use clap::Args;
use epidemic_mem::Id;
use serde_json::json;

const CYCLES: u32 = 50;
const WARMUP: u32 = 10;

/// Options of `epidemic sim churn`.
#[derive(Debug, Clone, Args)]
pub struct ChurnArgs {
    /// Nodes that fail in each cycle; defaults to 0.5% of `--nodes` (the
    /// paper: 50 of 10,000).
    #[arg(long)]
    pub fail_per_cycle: Option<u64>,
    /// Cycles with failures (the paper: 100).
    #[arg(long, default_value_t = CYCLES, value_parser = clap::value_parser!(u32).range(1..))]
    pub cycles: u32,
    /// Cycles without failures first, for the tree to form.
    #[arg(long, default_value_t = WARMUP)]
    pub warmup: u32,
}

impl ChurnArgs {
    pub(crate) fn work(&self) -> u64 {
        u64::from(self.warmup + self.cycles + 1)
    }
}

/// Runs the scenario.
pub fn run(common: &Common, args: &ChurnArgs, progress: &Progress) -> anyhow::Result<Report> {
    let n = common.nodes as usize;
    let per_cycle = args.fail_per_cycle.map_or((n / 200).max(1), |k| k as usize);
    let total = per_cycle.saturating_mul(args.cycles as usize);
    if total + 1 >= n {
        bail!(
            "{} cycles × {per_cycle} failures would fail all {n} nodes; lower --fail-per-cycle or --cycles",
            args.cycles
        );
    }
    let (origin, order) = common.origin_and_order(0xC4A2);

    progress.message("building overlay");
    let mut cluster = common.build(Some(SINGLE_SENDER_THRESHOLD), 1);
    progress.inc(1);
    progress.message("broadcasting");
    cluster.warm_up(origin, args.warmup, progress);
    let mut tally = Tally::default();
    let mut rows = Vec::new();
    let mut each = Vec::new();
    for (cycle, failing) in order.chunks(per_cycle).take(args.cycles as usize).enumerate() {
        cluster.crash(failing);
        let shot = cluster.broadcast(origin);
        tally.add(&shot);
        tally.add_loads(&shot, |i| cluster.is_alive(i as Id));
        let mut one = Tally::default();
        one.add(&shot);
        let mut row = Row::new("plumtree, optimised (3)", one.measure());
        row.cycle = Some(cycle as u32 + 1);
        rows.push(row);
        each.push(one);
        cluster.membership_step();
        progress.inc(1);
    }

    let mut params = common.params();
    params.insert("fail_per_cycle".into(), json!(per_cycle));
    params.insert("cycles".into(), json!(args.cycles));
    params.insert("warmup".into(), json!(args.warmup));
    params.insert("origin".into(), json!(origin));
    params.insert("optimization_threshold".into(), json!(SINGLE_SENDER_THRESHOLD));
    let mut report = Report {
        scenario: "churn".into(),
        params,
        summary: Summary {
            of: "every broadcast under churn".into(),
            measure: tally.measure(),
            wall_ms: 0,
        },
        rows,
        cycles: Vec::new(),
        loads: vec![LoadDistribution::new("plumtree under churn", &tally)],
        table: String::new(),
    };
    report.table = table(common, args, per_cycle, &each, &report);
    Ok(report)
}

fn table(common: &Common, args: &ChurnArgs, per_cycle: usize, each: &[Tally], report: &Report) -> String {
    let mut t = Table::new([
        "cycles",
        "failed so far",
        "reliability",
        "min rel.",
        "RMR",
        "max RMR",
        "LDH",
        "max LDH",
        "payload/bcast",
        "control/bcast",
    ]);
    let group = 10;
    for (i, chunk) in each.chunks(group).enumerate() {
        let mut tally = Tally::default();
        for one in chunk {
            tally.merge(one);
        }
        let first = i * group + 1;
        let last = first + chunk.len() - 1;
        let mut cells = vec![format!("{first}–{last}"), count((last * per_cycle) as u64)];
        cells.extend(figures(&tally.measure(), &Figure::SPREAD));
        t.row(cells);
    }
    let mut cells = vec!["all".into(), count((report.rows.len() * per_cycle) as u64)];
    cells.extend(figures(&report.summary.measure, &Figure::SPREAD));
    t.row(cells);
    Headline::cluster("churn", common)
        .then(format!(
            "{per_cycle} nodes fail at the start of each of {} cycles, after {} warm-up cycles",
            args.cycles, args.warmup
        ))
        .then(common.detection_clause())
        .then(common.latency_clause())
        .page(
            &t,
            "The paper (Plumtree, SRDS 2007) at 10,000 nodes, 50 failing per cycle for 100 cycles: reliability \
         100%, RMR slightly above 0.\n",
        )
}
