//! `epidemic sim churn`: nodes fail in every cycle.
//!
//! After `warmup` cycles, each of `cycles` cycles crashes `fail-per-cycle`
//! random live nodes (never the origin) at one instant, then broadcasts from
//! the origin and runs the membership step. Crashed nodes stay down, so the
//! cluster shrinks by `cycles × fail-per-cycle` nodes in all.

use super::cluster::Cluster;
use super::output::{Table, pct, ratio};
use super::report::{LoadDistribution, Report, Row, Summary, Tally};
use super::{Common, Progress, SINGLE_SENDER_THRESHOLD, thousands};
use anyhow::bail;
use clap::Args;
use epidemic_mem::Id;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
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
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(common.seed ^ 0xC4A2);
    let origin = rng.random_range(0..n) as Id;
    let mut order: Vec<Id> = (0..n as Id).filter(|&i| i != origin).collect();
    order.shuffle(&mut rng);

    progress.message("building overlay");
    let mut cluster = Cluster::new(common.cluster(common.plumtree(Some(SINGLE_SENDER_THRESHOLD), 1)));
    progress.inc(1);
    progress.message("broadcasting");
    for _ in 0..args.warmup {
        cluster.broadcast(origin);
        cluster.membership_step();
        progress.inc(1);
    }
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
        let m = tally.measure();
        let first = i * group + 1;
        let last = first + chunk.len() - 1;
        t.row([
            format!("{first}–{last}"),
            thousands((last * per_cycle) as f64),
            pct(m.reliability),
            pct(m.min_reliability),
            ratio(m.rmr),
            ratio(m.max_rmr),
            format!("{:.1}", m.ldh),
            m.max_ldh.to_string(),
            thousands(m.payload_msgs),
            thousands(m.control_msgs),
        ]);
    }
    let s = &report.summary.measure;
    t.row([
        "all".into(),
        thousands((report.rows.len() * per_cycle) as f64),
        pct(s.reliability),
        pct(s.min_reliability),
        ratio(s.rmr),
        ratio(s.max_rmr),
        format!("{:.1}", s.ldh),
        s.max_ldh.to_string(),
        thousands(s.payload_msgs),
        thousands(s.control_msgs),
    ]);
    format!(
        "epidemic sim churn: {} nodes, seed {}; {per_cycle} nodes fail at the start of each of {} cycles, \
         after {} warm-up cycles; links report a failure after {} ms; latency {} ms\n\n{}\n\
         The paper (Plumtree, SRDS 2007) at 10,000 nodes, 50 failing per cycle for 100 cycles: reliability \
         100%, RMR slightly above 0.\n",
        thousands(common.nodes as f64),
        common.seed,
        args.cycles,
        args.warmup,
        common.detection_ms,
        common.latency,
        t.render(),
    )
}
