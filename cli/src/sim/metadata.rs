//! `epidemic sim metadata`: the replicated metadata store through
//! partitions, with and without anti-entropy.
//!
//! Runs [`epidemic_mem::scenarios::metadata`]: a cluster (a full mesh, or
//! HyParView with `--hyparview`) settles, then goes through `--partitions`
//! splits into two random halves, one after another. During each, which
//! lasts `--partition-ms` of virtual time, `--writes` writes land at random
//! nodes, alternately on either side; every fifth pair of writes (one per
//! side) goes to the same key, so healing brings concurrent values
//! (siblings). Each partition heals before the next. After the last heal
//! the run waits up to `--limit-ms` for every live node to hold the same
//! store.
//!
//! Without anti-entropy only the metadata broadcasts carry writes, and a
//! write made on the other side of a partition does not arrive (unless it
//! is recent enough to be announced to a link that comes back up, Plumtree's
//! catch-up): the cluster does not converge. With it, exchanges between pairs of nodes repair what
//! the broadcasts missed. `--anti-entropy both` (the default) runs the two
//! side by side, on the same seed and so the same partitions and writes.
//!
//! Of the global options, only `--nodes` (50 by default here), `--seed`,
//! `--format`, `--out`, `--jobs` and `--quiet` apply: the cluster runs with
//! the library's defaults (HyParView's views sized for `--nodes`).

use super::output::{self, Table, count};
use super::setup::Headline;
use super::{Common, Progress, SimArgs, parallel, thousands};
use anyhow::bail;
use clap::{Args, ValueEnum};
use epidemic_mem::scenarios::{self, MetadataParams};
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::ops::Deref;
use std::path::{Path, PathBuf};

/// Nodes when `--nodes` is not given: tens of nodes, the size of cluster
/// Riak's cluster metadata serves, and small enough for a full mesh.
pub(crate) const NODES: u64 = 50;

/// The largest full mesh simulated. Time and memory grow with the square of
/// the nodes (every node links to, and broadcasts to, every other): a run
/// takes about 1 s at 50 nodes, 10–15 s at 200, 1–1.5 min at 500 and
/// 2.5–6 min and up to 2.4 GB at 1,000 (measured on one core each, with and
/// without anti-entropy).
const MAX_MESH_NODES: u64 = 1_000;

/// Whether anti-entropy runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AntiEntropy {
    /// With anti-entropy.
    On,
    /// Broadcasts alone.
    Off,
    /// Both, side by side: with, then without.
    Both,
}

impl AntiEntropy {
    /// The runs this setting asks for: `true` for anti-entropy on.
    fn runs(self) -> &'static [bool] {
        match self {
            AntiEntropy::On => &[true],
            AntiEntropy::Off => &[false],
            AntiEntropy::Both => &[true, false],
        }
    }

    fn name(self) -> &'static str {
        match self {
            AntiEntropy::On => "on",
            AntiEntropy::Off => "off",
            AntiEntropy::Both => "both",
        }
    }
}

/// Options of `epidemic sim metadata`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct MetadataArgs {
    /// Partitions, one after another, each into two random halves and
    /// healed before the next.
    #[arg(long, default_value_t = 3, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub partitions: usize,
    /// Writes per partition, at random nodes, alternately on either side.
    #[arg(long, default_value_t = 300)]
    pub writes: usize,
    /// How long each partition lasts, in virtual ms; its writes are spread
    /// over it.
    #[arg(long, default_value_t = 20_000)]
    pub partition_ms: u64,
    /// How long to wait for convergence after the last heal, in virtual ms.
    #[arg(long, default_value_t = 300_000)]
    pub limit_ms: u64,
    /// HyParView membership instead of a full mesh (needed above 1,000
    /// nodes).
    #[arg(long)]
    pub hyparview: bool,
    /// Run with anti-entropy, without it, or both side by side.
    #[arg(long, value_enum, default_value_t = AntiEntropy::Both)]
    pub anti_entropy: AntiEntropy,
}

impl MetadataArgs {
    pub(crate) fn work(&self) -> u64 {
        self.anti_entropy.runs().len() as u64
    }
}

/// One run, anti-entropy on or off: its label, then what
/// [`scenarios::metadata`] measured (the figures are that report's, read
/// through it as through [`Deref`]; the parameters it ran with are the
/// document's `params`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MetadataRow {
    /// `anti-entropy on` or `anti-entropy off`.
    pub label: String,
    /// Whether anti-entropy ran.
    pub anti_entropy: bool,
    /// What the run measured.
    #[serde(flatten)]
    pub run: scenarios::MetadataReport,
}

impl MetadataRow {
    fn new(run: scenarios::MetadataReport) -> Self {
        MetadataRow {
            label: format!("anti-entropy {}", if run.params.anti_entropy { "on" } else { "off" }),
            anti_entropy: run.params.anti_entropy,
            run,
        }
    }
}

impl Deref for MetadataRow {
    type Target = scenarios::MetadataReport;

    fn deref(&self) -> &scenarios::MetadataReport {
        &self.run
    }
}

/// `metadata`'s headline figures: those of the run with anti-entropy, or of
/// the one run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MetadataSummary {
    /// Which run the figures come from.
    pub of: String,
    /// The figures.
    #[serde(flatten)]
    pub row: MetadataRow,
    /// Wall-clock time of the whole run, in milliseconds: the one field that
    /// differs between two runs with the same seed.
    pub wall_ms: u64,
}

/// Everything `epidemic sim metadata` prints with `--format json`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MetadataDocument {
    /// `metadata`.
    pub scenario: String,
    /// Every parameter of the run, defaults included, the seed among them.
    pub params: BTreeMap<String, serde_json::Value>,
    /// The headline figures.
    pub summary: MetadataSummary,
    /// One row per run: anti-entropy on, then off.
    pub rows: Vec<MetadataRow>,
    /// The human-readable table.
    #[serde(skip)]
    pub table: String,
}

impl MetadataDocument {
    /// The JSON document, minus its one nondeterministic field
    /// (`summary.wall_ms`): two runs with the same seed give equal values.
    pub fn deterministic_json(&self) -> serde_json::Value {
        super::output::deterministic_json(self)
    }

    /// Writes `report.json` (what `--format json` prints) and `rows.csv` (a
    /// row per run) into `dir` (created if missing) and returns the paths
    /// written.
    pub fn write_out_dir(&self, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
        let mut written = output::start_out_dir(dir, self)?;
        let mut csv = String::from(
            "label,anti_entropy,converged,convergence_ms,exchanges,bytes,broadcast_bytes,repaired,keys,\
             sibling_keys,divergent_nodes\n",
        );
        for r in &self.rows {
            let _ = writeln!(
                csv,
                "{},{},{},{},{},{},{},{},{},{},{}",
                output::csv_field(&r.label),
                r.anti_entropy,
                r.converged,
                r.convergence_ms.map(|c| c.to_string()).unwrap_or_default(),
                r.exchanges,
                r.bytes,
                r.broadcast_bytes,
                r.repaired,
                r.keys,
                r.sibling_keys,
                r.divergent_nodes,
            );
        }
        output::write(dir, "rows.csv", &csv, &mut written)?;
        Ok(written)
    }
}

/// Runs the scenario: one simulation per anti-entropy setting, in parallel.
pub fn run(common: &Common, args: &MetadataArgs, progress: &Progress) -> anyhow::Result<MetadataDocument> {
    check_options(common)?;
    if !args.hyparview && common.nodes > MAX_MESH_NODES {
        bail!(
            "a full mesh of {} nodes is too big to simulate: 1,000 already take minutes and gigabytes, and both \
             grow with the square of the nodes; use at most {} --nodes, or --hyparview",
            thousands(common.nodes as f64),
            thousands(MAX_MESH_NODES as f64),
        );
    }
    let mut params = MetadataParams::default();
    params.nodes = common.nodes as usize;
    params.partitions = args.partitions;
    params.writes = args.writes;
    params.partition_ms = args.partition_ms;
    params.hyparview = args.hyparview;
    params.limit_ms = args.limit_ms;
    params.seed = common.seed;

    progress.set_unit("runs");
    progress.message("partitioning, writing, healing");
    let runs = args.anti_entropy.runs();
    let rows: Vec<MetadataRow> = parallel(runs.len(), common.jobs(), |job| {
        let mut params = params.clone();
        params.anti_entropy = runs[job];
        let report = scenarios::metadata(&params);
        progress.inc(1);
        MetadataRow::new(report)
    });

    let headline = rows.first().expect("at least one run").clone();
    let report_params = BTreeMap::from([
        ("nodes".into(), json!(common.nodes)),
        ("seed".into(), json!(common.seed)),
        ("partitions".into(), json!(args.partitions)),
        ("writes".into(), json!(args.writes)),
        ("partition_ms".into(), json!(args.partition_ms)),
        ("limit_ms".into(), json!(args.limit_ms)),
        ("hyparview".into(), json!(args.hyparview)),
        ("anti_entropy".into(), json!(args.anti_entropy.name())),
    ]);
    let mut report = MetadataDocument {
        scenario: "metadata".into(),
        params: report_params,
        summary: MetadataSummary {
            of: headline.label.clone(),
            row: headline,
            wall_ms: 0,
        },
        rows,
        table: String::new(),
    };
    report.table = table(common, args, &report);
    Ok(report)
}

/// Refuses the global options that shape a broadcast scenario's cluster but
/// not this one's, rather than ignoring them.
fn check_options(common: &Common) -> anyhow::Result<()> {
    let defaults = SimArgs::parse_from(["metadata"]).expect("the defaults parse").common;
    let given: Vec<&str> = [
        ("--active", common.active != defaults.active),
        ("--passive", common.passive != defaults.passive),
        ("--tree", common.tree != defaults.tree),
        ("--latency", common.latency != defaults.latency),
        ("--detection-ms", common.detection_ms != defaults.detection_ms),
        ("--shuffle-ms", common.shuffle_ms != defaults.shuffle_ms),
    ]
    .into_iter()
    .filter_map(|(name, given)| given.then_some(name))
    .collect();
    if !given.is_empty() {
        bail!(
            "{} {} not apply to `metadata`: its cluster runs with the library's defaults",
            given.join(", "),
            if given.len() == 1 { "does" } else { "do" }
        );
    }
    Ok(())
}

fn table(common: &Common, args: &MetadataArgs, report: &MetadataDocument) -> String {
    let mut t = Table::new([
        "anti-entropy",
        "converged",
        "convergence",
        "exchanges",
        "AE bytes",
        "broadcast bytes",
        "repaired",
        "keys",
        "sibling keys",
        "divergent nodes",
    ]);
    for r in &report.rows {
        t.row([
            if r.anti_entropy { "on" } else { "off" }.to_string(),
            if r.converged { "yes" } else { "no" }.to_string(),
            r.convergence_ms.map_or_else(
                || format!("> {} ms", count(args.limit_ms)),
                |ms| format!("{} ms", count(ms)),
            ),
            count(r.exchanges),
            count(r.bytes),
            count(r.broadcast_bytes),
            count(r.repaired),
            count(r.keys as u64),
            count(r.sibling_keys as u64),
            count(r.divergent_nodes as u64),
        ]);
    }
    Headline::cluster("metadata", common)
        .then(if args.hyparview {
            "HyParView membership"
        } else {
            "full mesh"
        })
        .then(format!(
            "{} partitions into random halves, one after another, each {} ms with {} writes on both sides, then \
             healed",
            args.partitions,
            count(args.partition_ms),
            count(args.writes as u64),
        ))
        .then(format!(
            "up to {} ms to converge after the last heal (virtual time)",
            count(args.limit_ms)
        ))
        .page(
            &t,
            "Convergence: virtual time from the last heal until every live node holds the same store. Exchanges \
         and AE bytes: anti-entropy exchanges completed and the bytes sent for them, all nodes together, from \
         the first partition on; broadcast bytes: the metadata broadcasts' bytes over the same time. Repaired: \
         objects anti-entropy repaired. Keys: distinct keys written (one pair of writes in five, one per side, \
         shares a key); sibling keys: keys left with concurrent values, on node 0. Divergent nodes: nodes whose \
         store differs from the most common one at the end. Without anti-entropy only broadcasts carry writes, \
         and writes made on the other side of a partition do not arrive (but for the last 2 s of them, \
         announced to links that come back up).\n",
        )
}
