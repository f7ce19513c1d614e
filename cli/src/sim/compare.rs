//! `epidemic sim compare`: the dissemination strategies of the RICON 2014
//! talk on Riak's cluster metadata, side by side.
//!
//! All run on one overlay: the HyParView active-view graph of the cluster
//! the seed builds. The baselines (one-to-all, a fixed spanning tree,
//! flooding, gossip, logarithmic broadcast) are computed round by round over
//! that graph (see `strategies`), taken right before Plumtree's measured
//! broadcast; Plumtree runs for real on the bus, on copies of the same
//! overlay (the same seed), with and without the tree optimisation, after
//! `warmup` cycles. Each is measured in the stable state and for the first
//! broadcast after each failure level, on the graph as it was before the
//! failure: nothing is repaired but what Plumtree repairs by itself while
//! that broadcast runs.

use super::output::{Figure, Table, figures};
use super::report::{LoadDistribution, Report, Row, Shot, Summary, Tally};
use super::setup::Headline;
use super::strategies::{self, Graph};
use super::{Common, Percentages, Progress, SINGLE_SENDER_THRESHOLD, parallel, take_pct};
use clap::Args;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde_json::json;

const FAILURES: &str = "20,50";
/// Plumtree's warm-up: its tree forms in the first broadcast.
const WARMUP: u32 = 3;
const FANOUT: usize = 4;

/// Options of `epidemic sim compare`.
#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// Gossip's fanout: neighbours each node forwards to, at random.
    #[arg(long, default_value_t = FANOUT, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub fanout: usize,
    /// Failure levels, in percent of the nodes, comma-separated.
    #[arg(long, default_value = FAILURES, )]
    pub failures: Percentages,
    /// Plumtree's warm-up cycles before it is measured.
    #[arg(long, default_value_t = WARMUP)]
    pub warmup: u32,
}

impl CompareArgs {
    pub(crate) fn work(&self) -> u64 {
        2 * (self.failures.0.len() as u64 + 1) * u64::from(self.warmup + 2)
    }
}

const PLUMTREE: [(&str, Option<u32>); 2] = [
    ("plumtree", None),
    ("plumtree, optimised (3)", Some(SINGLE_SENDER_THRESHOLD)),
];

struct Measured {
    shot: Shot,
    graph: Option<Graph>,
}

/// Runs the scenario.
pub fn run(common: &Common, args: &CompareArgs, progress: &Progress) -> anyhow::Result<Report> {
    let n = common.nodes as usize;
    let (origin, order) = common.origin_and_order(0xC0A1);
    // State 0 is the stable state; state k > 0 is failure level k - 1.
    let states = args.failures.0.len() + 1;
    let dead_in = |state: usize| {
        let mut dead = vec![false; n];
        if state > 0 {
            for &id in take_pct(&order, args.failures.0[state - 1], n) {
                dead[id as usize] = true;
            }
        }
        dead
    };

    let plumtree = parallel(PLUMTREE.len() * states, common.jobs(), |job| {
        let (variant, state) = (job / states, job % states);
        progress.message("building overlays");
        let mut cluster = common.build(PLUMTREE[variant].1, 1);
        progress.inc(1);
        progress.message("broadcasting");
        cluster.warm_up(origin, args.warmup, progress);
        // The overlay at the instant of the measured broadcast: the same in
        // every job of this variant, since they run the same steps until
        // the failure.
        let graph = (job == 0).then(|| cluster.active_views());
        if state > 0 {
            cluster.crash(take_pct(&order, args.failures.0[state - 1], n));
        }
        let shot = cluster.broadcast(origin);
        progress.inc(1);
        Measured { shot, graph }
    });
    let graph = plumtree[0].graph.clone().expect("job 0 keeps the graph");
    let tree = strategies::bfs_tree(&graph, origin);

    // strategy label, then its shot in each state.
    let mut results: Vec<(String, Vec<Shot>)> = Vec::new();
    let strategy_rng = |k: u64, state: usize| Xoshiro256PlusPlus::seed_from_u64(common.seed ^ (k << 32) ^ state as u64);
    let mut add = |label: String, f: &dyn Fn(usize, &[bool]) -> Shot| {
        let shots = (0..states).map(|s| f(s, &dead_in(s))).collect();
        results.push((label, shots));
    };
    add("one-to-all".into(), &|_, dead| strategies::one_to_all(n, origin, dead));
    add("spanning tree (BFS, fixed)".into(), &|_, dead| {
        strategies::tree(&tree, origin, dead)
    });
    add("flooding".into(), &|_, dead| strategies::flood(&graph, origin, dead));
    add(format!("gossip, fanout {}", args.fanout), &|s, dead| {
        strategies::gossip(&graph, origin, dead, args.fanout, &mut strategy_rng(1, s))
    });
    add("logarithmic".into(), &|s, dead| {
        strategies::logarithmic(n, origin, dead, &mut strategy_rng(2, s))
    });
    for (v, (label, _)) in PLUMTREE.iter().enumerate() {
        let shots = (0..states).map(|s| plumtree[v * states + s].shot.clone()).collect();
        results.push(((*label).into(), shots));
    }

    let mut rows = Vec::new();
    let mut loads = Vec::new();
    for (label, shots) in &results {
        let stable = tally_live(&shots[0], &dead_in(0));
        let mut row = Row::new(label.clone(), stable.measure());
        loads.push(LoadDistribution::new(label.clone(), &stable));
        for (k, shot) in shots.iter().enumerate().skip(1) {
            let mut f = Row::new(label.clone(), tally_live(shot, &dead_in(k)).measure());
            f.failed_pct = Some(args.failures.0[k - 1]);
            row.after_failure.push(f);
        }
        rows.push(row);
    }
    let headline = rows.last().expect("plumtree rows").clone();
    let mut params = common.params();
    params.insert("fanout".into(), json!(args.fanout));
    params.insert("failures_pct".into(), json!(args.failures.0));
    params.insert("warmup".into(), json!(args.warmup));
    params.insert("origin".into(), json!(origin));
    let mut report = Report {
        scenario: "compare".into(),
        params,
        summary: Summary {
            of: format!("{}, stable state", headline.label),
            measure: headline.measure,
            wall_ms: 0,
        },
        rows,
        cycles: Vec::new(),
        loads,
        table: String::new(),
    };
    report.table = table(common, args, &report);
    Ok(report)
}

/// The tally of one shot, with the loads of the nodes not `dead` only.
fn tally_live(shot: &Shot, dead: &[bool]) -> Tally {
    let mut t = Tally::default();
    t.add(shot);
    t.add_loads(shot, |i| !dead[i]);
    t
}

/// The figures of each strategy in the stable state.
const STABLE_FIGURES: [Figure; 6] = [
    Figure::Reliability,
    Figure::Rmr,
    Figure::MaxLdh,
    Figure::Payload,
    Figure::Control,
    Figure::MaxLoad,
];
/// The figures of each strategy after each failure level.
const FAILURE_FIGURES: [Figure; 3] = [Figure::Reliability, Figure::Rmr, Figure::MaxLdh];

fn table(common: &Common, args: &CompareArgs, report: &Report) -> String {
    let mut header = vec![
        "strategy".to_string(),
        "reliability".into(),
        "RMR".into(),
        "LDH".into(),
        "payload".into(),
        "control".into(),
        "max load".into(),
    ];
    for f in &args.failures.0 {
        header.push(format!("rel. {f}% failed"));
        header.push(format!("RMR {f}%"));
        header.push(format!("LDH {f}%"));
    }
    let mut t = Table::new(header);
    for r in &report.rows {
        let mut cells = vec![r.label.clone()];
        cells.extend(figures(&r.measure, &STABLE_FIGURES));
        for f in &r.after_failure {
            cells.extend(figures(&f.measure, &FAILURE_FIGURES));
        }
        t.row(cells);
    }
    Headline::cluster("compare", common)
        .then(format!("one overlay ({})", common.views()))
        .then("one origin")
        .then(format!("Plumtree after {} warm-up cycles", args.warmup))
        .page(
            &t,
            format!(
                "Failures hit the same random nodes for every strategy, the instant before the broadcast; the \
         baselines use the overlay (and tree, and member list) as it was before. Max load: payload frames \
         sent by the busiest node. Gossip picks its targets among the sender's overlay neighbours, never \
         the one it got the message from: with fanout {} and an active view of {} it is close to flooding.\n",
                args.fanout, common.active,
            ),
        )
}
