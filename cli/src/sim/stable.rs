//! `epidemic sim stable`: the Plumtree paper's stable-state experiment.
//!
//! Every variant runs on its own copy of the same overlay (same seed, so the
//! same joins and shuffles): `warmup` cycles to let the trees form, then
//! `cycles` measured ones. Eager flooding over that overlay is the paper's
//! eager gossip with fanout 4 (the active view of 5 minus the sender).

use super::output::{Figure, Table, figures};
use super::report::{LoadDistribution, Report, Row, Summary, Tally};
use super::setup::Headline;
use super::{Common, MULTI_SENDER_THRESHOLD, Progress, SINGLE_SENDER_THRESHOLD, parallel, strategies, thousands};
use clap::Args;
use epidemic_mem::Id;
use rand::seq::index;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde_json::json;

/// Default measured cycles: the paper measures 200 (after 50); 15 keep the
/// default 10,000-node run of four variants within a minute on two shared
/// cores, and the stable state does not drift (`--cycles 200` to check).
const CYCLES: u32 = 15;
/// Default warm-up cycles (the paper: 50). A sender's tree forms in its
/// first broadcast and the optimisation settles within a few more; at least
/// `SENDERS`, so that every sender of the pool has broadcast once.
const WARMUP: u32 = 5;
/// Default sender pool for the multi-sender variants.
const SENDERS: u32 = 5;

/// Options of `epidemic sim stable`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct StableArgs {
    /// Measured cycles per variant (the paper: 200).
    #[arg(long, default_value_t = CYCLES, value_parser = clap::value_parser!(u32).range(1..))]
    pub cycles: u32,
    /// Warm-up cycles before measuring (the paper: 50).
    #[arg(long, default_value_t = WARMUP)]
    pub warmup: u32,
    /// Multi-sender variants: how many nodes take turns broadcasting. With
    /// per-root trees each sender's first broadcast floods to build its
    /// tree, so keep it at most `--warmup` to measure warm trees; the paper
    /// lets every node send, over one shared tree (`--tree shared`).
    #[arg(long, default_value_t = SENDERS, value_parser = clap::value_parser!(u32).range(2..))]
    pub senders: u32,
}

impl Default for StableArgs {
    fn default() -> Self {
        StableArgs {
            cycles: CYCLES,
            warmup: WARMUP,
            senders: SENDERS,
        }
    }
}

impl StableArgs {
    pub(crate) fn work(&self) -> u64 {
        VARIANTS.len() as u64 * u64::from(self.warmup + self.cycles + 1)
    }
}

struct Variant {
    label: &'static str,
    multi: bool,
    /// The paper's thresholds: 3 for one sender, 7 for several.
    threshold: Option<u32>,
}

const VARIANTS: [Variant; 4] = [
    Variant {
        label: "plumtree, 1 sender",
        multi: false,
        threshold: None,
    },
    Variant {
        label: "plumtree, 1 sender, optimised (3)",
        multi: false,
        threshold: Some(SINGLE_SENDER_THRESHOLD),
    },
    Variant {
        label: "plumtree, N senders",
        multi: true,
        threshold: None,
    },
    Variant {
        label: "plumtree, N senders, optimised (7)",
        multi: true,
        threshold: Some(MULTI_SENDER_THRESHOLD),
    },
];

struct Outcome {
    tally: Tally,
    cycles: Vec<Row>,
    /// Eager flooding over the overlay as built (from job 0 only).
    eager: Option<Tally>,
}

/// Runs the scenario.
pub fn run(common: &Common, args: &StableArgs, progress: &Progress) -> anyhow::Result<Report> {
    let n = common.nodes as usize;
    let senders = (args.senders as usize).min(n);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(common.seed ^ 0x57AB1E);
    let origin = rng.random_range(0..n) as Id;
    let pool: Vec<Id> = index::sample(&mut rng, n, senders).iter().map(|i| i as Id).collect();
    let label = |v: &Variant| v.label.replace('N', &thousands(senders as f64));

    let outcomes = parallel(VARIANTS.len(), common.jobs(), |job| {
        let v = &VARIANTS[job];
        progress.message("building overlays");
        let mut cluster = common.build(v.threshold, senders);
        progress.inc(1);
        let eager = (job == 0).then(|| {
            let dead = vec![false; n];
            let mut t = Tally::default();
            let shot = strategies::flood(&cluster.active_views(), origin, &dead);
            t.add(&shot);
            t.add_loads(&shot, |_| true);
            t
        });
        let mut tally = Tally::default();
        let mut cycles = Vec::new();
        progress.message("broadcasting");
        for cycle in 0..args.warmup + args.cycles {
            let from = if v.multi {
                pool[cycle as usize % pool.len()]
            } else {
                origin
            };
            let shot = cluster.broadcast(from);
            if cycle >= args.warmup {
                tally.add(&shot);
                tally.add_loads(&shot, |i| cluster.is_alive(i as Id));
                let mut one = Tally::default();
                one.add(&shot);
                let mut row = Row::new(label(v), one.measure());
                row.cycle = Some(cycle - args.warmup + 1);
                cycles.push(row);
            }
            cluster.membership_step();
            progress.inc(1);
        }
        Outcome { tally, cycles, eager }
    });

    let eager = outcomes[0].eager.clone().expect("job 0 measures flooding");
    let mut rows = vec![Row::new("eager flood (fanout 4)", eager.measure())];
    let mut loads = vec![LoadDistribution::new("eager flood", &eager)];
    let mut cycles = Vec::new();
    for (v, o) in VARIANTS.iter().zip(&outcomes) {
        rows.push(Row::new(label(v), o.tally.measure()));
        loads.push(LoadDistribution::new(label(v), &o.tally));
        cycles.extend(o.cycles.iter().cloned());
    }
    let headline = &rows[2];
    let summary = Summary {
        of: headline.label.clone(),
        measure: headline.measure.clone(),
        wall_ms: 0,
    };
    let mut params = common.params();
    params.insert("cycles".into(), json!(args.cycles));
    params.insert("warmup".into(), json!(args.warmup));
    params.insert("senders".into(), json!(senders));
    params.insert("origin".into(), json!(origin));
    params.insert("sender_pool".into(), json!(pool));
    params.insert("optimization_threshold_single".into(), json!(SINGLE_SENDER_THRESHOLD));
    params.insert("optimization_threshold_multi".into(), json!(MULTI_SENDER_THRESHOLD));
    let mut report = Report {
        scenario: "stable".into(),
        params,
        summary,
        rows,
        cycles,
        loads,
        table: String::new(),
    };
    report.table = table(common, args, &report);
    Ok(report)
}

fn table(common: &Common, args: &StableArgs, report: &Report) -> String {
    let mut t = Table::new([
        "variant",
        "reliability",
        "min rel.",
        "RMR",
        "max RMR",
        "LDH",
        "max LDH",
        "payload/bcast",
        "control/bcast",
        "of which IHAVE",
        "max load",
    ]);
    for r in &report.rows {
        let mut cells = vec![r.label.clone()];
        cells.extend(figures(&r.measure, &Figure::SPREAD));
        cells.extend(figures(&r.measure, &[Figure::Ihave, Figure::MaxLoad]));
        t.row(cells);
    }
    let n = common.nodes;
    Headline::cluster("stable", common)
        .then(common.views())
        .then(format!("{} trees", common.tree_name()))
        .then(common.latency_clause())
        .then(format!(
            "{} warm-up + {} measured cycles per variant",
            args.warmup, args.cycles
        ))
        .page(
            &t,
            format!(
                "The paper (Plumtree, SRDS 2007) at 10,000 nodes, one cycle:\n\
                 \x20 eager gossip (fanout 4)          RMR 3, LDH ≈8–9, 39,984 payload, 0 control\n\
                 \x20 plumtree, 1 sender               RMR 0 for most messages, LDH ≈10 (≈8–9 optimised), \
                 9,999 payload + 29,987 control\n\
                 \x20 plumtree, many senders           LDH ≈50–75 (≈17–18 optimised), 9,999 payload + 38,976 \
                 control (optimised)\n\
                 Control here is IHAVE plus Riak's IGNORED_IHAVE acknowledgements (about one per IHAVE) and the \
                 few GRAFT/PRUNE/ATTACH; the paper counts IHAVE, GRAFT and PRUNE. Max load: payload frames sent \
                 by the busiest node for one broadcast.{}\n",
                if n == 10_000 {
                    String::new()
                } else {
                    format!("\nThis run has {} nodes, not the paper's 10,000.", thousands(n as f64))
                }
            ),
        )
}
