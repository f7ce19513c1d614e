//! `epidemic sim`: epidemic broadcast on a simulated cluster, measured the
//! way the Plumtree paper measures it and set beside the published figures;
//! and the replicated metadata store through partitions.
//!
//! Every scenario runs real [`Node`](epidemic_core::node::Node)s (HyParView
//! under Plumtree; for `metadata`, a full mesh unless `--hyparview`) on the
//! deterministic [`Bus`](epidemic_mem::Bus) of `epidemic-mem`, on virtual
//! time, from one seed.
//!
//! # Cycles
//!
//! As in the paper, time advances in *cycles*. A cycle is: the cycle's
//! failures (if any), at one instant; then one broadcast, run until it is
//! quiescent (no broadcast frame in flight and every node idle; membership
//! traffic goes on meanwhile); then a membership step, one HyParView shuffle
//! interval of virtual time, in which every node shuffles once and repairs
//! its views. A *round*, in the failure scenario's healing time, is one
//! cycle.
//!
//! # Scenarios
//!
//! - [`stable`]: the paper's stable-state runs, single and multiple senders,
//!   with and without the tree optimisation, beside eager flooding.
//! - [`failure`]: a massive failure at one instant, swept over a range of
//!   sizes: the next broadcast's reliability and the rounds to heal.
//! - [`churn`]: a few nodes fail in every cycle.
//! - [`compare`]: the strategies of the RICON 2014 talk side by side on one
//!   overlay, before and after failures.
//! - [`metadata`]: the replicated metadata store through partitions, with
//!   and without anti-entropy: whether every node converges after the last
//!   heal, how fast, and what anti-entropy costs. Not measured in cycles;
//!   50 nodes unless `--nodes` says otherwise.
//! - [`chaos`]: a deterministic fault sweep over many seeds (crashes,
//!   restarts, partitions, loss, membership changes, writes and broadcasts),
//!   checked against a model of the acknowledged history; failures are
//!   listed by seed and invariant, and shrunk.

pub mod chaos;
pub mod churn;
mod cluster;
pub mod compare;
pub mod failure;
pub mod metadata;
mod output;
mod plot;
mod progress;
mod report;
pub mod stable;
mod strategies;

pub use metadata::{MetadataReport, MetadataRow, MetadataSummary};
pub use output::write_out_dir;
pub use progress::Progress;
pub use report::{LoadDistribution, Measure, Report, Row, Summary};

use clap::{Args, Subcommand, ValueEnum};
use cluster::ClusterSpec;
use epidemic_core::Duration;
use epidemic_core::broadcast::{self, TreeMode};
use epidemic_mem::Latency;
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// `epidemic sim [SCENARIO] [OPTIONS]`.
#[derive(Debug, Clone, Args)]
pub struct SimArgs {
    /// The scenario; `stable` when none is given.
    #[command(subcommand)]
    pub scenario: Option<Scenario>,
    /// `stable`'s options, for `epidemic sim` without a scenario.
    #[command(flatten)]
    pub stable: stable::StableArgs,
    /// Options every scenario takes.
    #[command(flatten)]
    pub common: Common,
}

/// The scenarios.
#[derive(Debug, Clone, Subcommand)]
pub enum Scenario {
    /// The Plumtree paper's stable state: eager flooding, then Plumtree with
    /// one sender and with many, each with and without the tree
    /// optimisation (the default scenario).
    Stable(stable::StableArgs),
    /// A massive failure at one instant, swept from 10% to 95% of the nodes:
    /// reliability of the next broadcast and rounds until it heals.
    Failure(failure::FailureArgs),
    /// Nodes fail in every cycle (the paper: 50 of 10,000 per cycle for 100
    /// cycles).
    Churn(churn::ChurnArgs),
    /// One-to-all, a fixed spanning tree, flooding, gossip, logarithmic
    /// broadcast and Plumtree side by side, before and after failures.
    Compare(compare::CompareArgs),
    /// The replicated metadata store through partitions with writes on both
    /// sides: convergence after the last heal with and without
    /// anti-entropy, and its cost (50 nodes unless `--nodes` is given).
    Metadata(metadata::MetadataArgs),
    /// A deterministic fault sweep: one schedule of faults and writes per
    /// seed, checked against a model of the acknowledged history (7 members
    /// unless `--nodes` is given). `--seed N --verbose` replays one seed.
    Chaos(chaos::ChaosArgs),
}

/// How results are printed on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable tables.
    Table,
    /// One JSON object.
    Json,
}

/// Plumtree's tree mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Tree {
    /// One eager/lazy set pair per sender (Riak's sender-based trees).
    PerRoot,
    /// One pair shared by every sender, as in the paper.
    Shared,
}

/// A one-way frame latency: fixed, or uniform in a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatencyMs {
    /// Shortest, in milliseconds.
    pub min: u64,
    /// Longest, in milliseconds.
    pub max: u64,
}

impl FromStr for LatencyMs {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parse = |x: &str| {
            x.trim()
                .parse::<u64>()
                .map_err(|_| format!("`{x}` is not a whole number of milliseconds"))
        };
        let (min, max) = match s.split_once("..") {
            Some((a, b)) => (parse(a)?, parse(b)?),
            None => (parse(s)?, parse(s)?),
        };
        if min > max {
            return Err(format!("the range {min}..{max} is empty"));
        }
        Ok(LatencyMs { min, max })
    }
}

impl std::fmt::Display for LatencyMs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.min == self.max {
            write!(f, "{}", self.min)
        } else {
            write!(f, "{}..{}", self.min, self.max)
        }
    }
}

/// Options every scenario takes; they may come before or after the
/// scenario's name.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Nodes in the simulated cluster [default: 10,000; `metadata`: 50].
    #[arg(
        id = "nodes",
        long = "nodes",
        value_name = "NODES",
        global = true,
        value_parser = clap::value_parser!(u64).range(3..=10_000_000)
    )]
    pub requested_nodes: Option<u64>,
    /// The nodes in effect: `--nodes`, or else the scenario's default
    /// ([`SimArgs::nodes`]). [`run`] sets it before the scenario runs; until
    /// then it holds the broadcast scenarios' default.
    #[arg(skip = NODES)]
    pub nodes: u64,
    /// Seeds everything random: the same seed gives the same run, bit for
    /// bit (all but the wall time).
    #[arg(long, global = true, default_value_t = 1)]
    pub seed: u64,
    /// How to print the results on stdout.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Also write CSV files and SVG plots into this directory (created if
    /// missing).
    #[arg(long, global = true, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// HyParView active view size (the paper: log10(n) + 1 = 5 at 10,000).
    #[arg(long, global = true, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub active: u64,
    /// HyParView passive view size (the paper: 6 × the active view).
    #[arg(long, global = true, default_value_t = 30, value_parser = clap::value_parser!(u64).range(0..=1024))]
    pub passive: u64,
    /// Plumtree trees: one per sender (Riak), or one shared (the paper).
    #[arg(long, global = true, value_enum, default_value_t = Tree::PerRoot)]
    pub tree: Tree,
    /// One-way latency of every frame in ms: fixed (`5`), or uniform in a
    /// range (`1..10`). Fixed models the paper's cycle-based simulator, in
    /// which every hop takes the same time.
    #[arg(long, global = true, default_value = "5", value_name = "MS|MIN..MAX")]
    pub latency: LatencyMs,
    /// How long after a node fails its peers' links report it down, in ms.
    /// 0, the default, models the papers' simulators, where links are TCP
    /// connections and a crashed peer is noticed at the first send to it
    /// (every node sends to every neighbour within a broadcast's few
    /// milliseconds); 1000 models a keep-alive that notices a silent crash
    /// after a second.
    #[arg(long, global = true, default_value_t = 0)]
    pub detection_ms: u64,
    /// HyParView shuffle interval in ms: the membership step of one cycle.
    #[arg(long, global = true, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub shuffle_ms: u64,
    /// Clusters simulated at once (each on its own thread); defaults to the
    /// number of CPUs. Results do not depend on it.
    #[arg(long, global = true, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub jobs: Option<u64>,
    /// No progress bar.
    #[arg(long, short, global = true)]
    pub quiet: bool,
}

impl Common {
    /// `--nodes` if given, else `default`.
    pub fn nodes_or(&self, default: u64) -> u64 {
        self.requested_nodes.unwrap_or(default)
    }

    /// The parameters shared by every scenario, for the report.
    fn params(&self) -> BTreeMap<String, serde_json::Value> {
        let Common {
            requested_nodes: _,
            nodes,
            seed,
            format: _,
            out: _,
            active,
            passive,
            tree,
            latency,
            detection_ms,
            shuffle_ms,
            jobs: _,
            quiet: _,
        } = self;
        BTreeMap::from([
            ("nodes".into(), json!(nodes)),
            ("seed".into(), json!(seed)),
            ("active_view".into(), json!(active)),
            ("passive_view".into(), json!(passive)),
            (
                "tree".into(),
                json!(match tree {
                    Tree::PerRoot => "per-root",
                    Tree::Shared => "shared",
                }),
            ),
            ("latency_ms".into(), json!(latency.to_string())),
            ("detection_ms".into(), json!(detection_ms)),
            ("shuffle_ms".into(), json!(shuffle_ms)),
            ("join_gap_us".into(), json!(JOIN_GAP.as_micros())),
            ("settle_shuffles".into(), json!(SETTLE_SHUFFLES)),
            ("message_cache".into(), json!(MESSAGE_CACHE)),
            ("max_received".into(), json!(MAX_RECEIVED)),
        ])
    }

    fn jobs(&self) -> usize {
        self.jobs
            .map(|j| j as usize)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// The cluster these options describe, with `plumtree` as the broadcast
    /// configuration.
    fn cluster(&self, plumtree: broadcast::Config) -> ClusterSpec {
        let ms = |m: u64| Duration::from_millis(m);
        let latency = if self.latency.min == self.latency.max {
            Latency::Fixed(ms(self.latency.min))
        } else {
            Latency::Uniform {
                min: ms(self.latency.min),
                max: ms(self.latency.max),
            }
        };
        ClusterSpec {
            nodes: self.nodes as usize,
            seed: self.seed,
            active: self.active as usize,
            passive: self.passive as usize,
            shuffle_interval: ms(self.shuffle_ms),
            latency,
            detection_delay: ms(self.detection_ms),
            join_gap: JOIN_GAP,
            settle: ms(self.shuffle_ms).saturating_mul(SETTLE_SHUFFLES),
            plumtree,
        }
    }

    /// Plumtree's configuration: the library defaults with this tree mode,
    /// room for `roots` trees, and `threshold` for the optimisation.
    fn plumtree(&self, threshold: Option<u32>, roots: usize) -> broadcast::Config {
        let mut c = broadcast::Config::default();
        c.tree = match self.tree {
            Tree::PerRoot => TreeMode::PerRoot {
                max_roots: roots.max(64),
            },
            Tree::Shared => TreeMode::Shared,
        };
        c.optimization_threshold = threshold;
        c.max_received = MAX_RECEIVED;
        // The papers' links are reliable (TCP) and their message counts
        // have no retransmission acknowledgements; the library's default
        // retransmits eager pushes for lossy links (+34% control frames).
        c.retransmit_eager = false;
        c
    }
}

/// The Plumtree paper's optimisation thresholds (PAPERS.md): 3 hops for a
/// single sender, 7 for many. The variant labels ("optimised (3)") spell
/// them out.
const SINGLE_SENDER_THRESHOLD: u32 = 3;
/// See [`SINGLE_SENDER_THRESHOLD`].
const MULTI_SENDER_THRESHOLD: u32 = 7;

/// Nodes when `--nodes` is not given (but for `metadata`): the Plumtree
/// paper's 10,000.
const NODES: u64 = 10_000;

/// Nodes join 1 ms apart while the overlay grows, as the paper adds them one
/// by one: short against a walk (6 hops of 5 ms), so the 10,000 joins of the
/// default take 10 s of virtual time. Faster is not safe: 0.1 ms apart, the
/// storm of concurrent joins and evictions left a 47-node island at 10,000
/// nodes that HyParView never merged back.
const JOIN_GAP: Duration = Duration::from_millis(1);

/// Broadcasts whose payload each node keeps to answer grafts (and four times
/// as many ids to tell duplicates). The library's default (4,096) sizes
/// for thousands of messages a second; in a cycle every broadcast settles
/// before the next starts, so only the latest is ever grafted, and a small
/// cache keeps 100,000 nodes in memory.
pub(crate) const MESSAGE_CACHE: usize = 32;

/// Delivered messages each node remembers for the tree optimisation (the
/// library's default is 256), for the same reason.
const MAX_RECEIVED: usize = 32;

/// Shuffle intervals of membership after the last join, before the first
/// broadcast: passive views mix, and nodes left short of neighbours by the
/// joins fill their active views.
const SETTLE_SHUFFLES: u64 = 3;

impl SimArgs {
    /// Parses the arguments that follow `epidemic sim` on a command line,
    /// for callers of [`run`] that start from strings (tests, scripts).
    pub fn parse_from<I, T>(args: I) -> Result<SimArgs, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::{CommandFactory as _, FromArgMatches};
        #[derive(clap::Parser)]
        #[command(name = "epidemic sim")]
        struct Wrapper {
            #[command(flatten)]
            sim: SimArgs,
        }
        let matches = Wrapper::command()
            .try_get_matches_from(std::iter::once("epidemic-sim".into()).chain(args.into_iter().map(Into::into)))?;
        Wrapper::from_arg_matches(&matches).map(|w| w.sim)
    }

    /// The nodes of the cluster to simulate: `--nodes` if given, else the
    /// scenario's default (10,000; 50 for `metadata`; 7 for `chaos`).
    pub fn nodes(&self) -> u64 {
        self.common.nodes_or(match &self.scenario {
            Some(Scenario::Metadata(_)) => metadata::NODES,
            Some(Scenario::Chaos(_)) => chaos::NODES,
            _ => NODES,
        })
    }
}

/// What [`run`] returns: a broadcast scenario's [`Report`], or
/// `metadata`'s [`MetadataReport`]. Serializes as the report it holds.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(untagged)]
pub enum ScenarioReport {
    /// `stable`, `failure`, `churn` or `compare`.
    Broadcast(Report),
    /// `metadata`.
    Metadata(MetadataReport),
    /// `chaos`.
    Chaos(chaos::ChaosReport),
}

impl ScenarioReport {
    /// The human-readable table.
    pub fn table(&self) -> &str {
        match self {
            ScenarioReport::Broadcast(r) => &r.table,
            ScenarioReport::Metadata(r) => &r.table,
            ScenarioReport::Chaos(r) => &r.table,
        }
    }

    /// Wall-clock time of the whole run, in milliseconds.
    pub fn wall_ms(&self) -> u64 {
        match self {
            ScenarioReport::Broadcast(r) => r.summary.wall_ms,
            ScenarioReport::Metadata(r) => r.summary.wall_ms,
            ScenarioReport::Chaos(r) => r.summary.wall_ms,
        }
    }

    fn set_wall_ms(&mut self, ms: u64) {
        match self {
            ScenarioReport::Broadcast(r) => r.summary.wall_ms = ms,
            ScenarioReport::Metadata(r) => r.summary.wall_ms = ms,
            ScenarioReport::Chaos(r) => r.summary.wall_ms = ms,
        }
    }

    /// The JSON document, minus its one nondeterministic field
    /// (`summary.wall_ms`): two runs with the same seed give equal values.
    pub fn deterministic_json(&self) -> serde_json::Value {
        match self {
            ScenarioReport::Broadcast(r) => r.deterministic_json(),
            ScenarioReport::Metadata(r) => r.deterministic_json(),
            ScenarioReport::Chaos(r) => r.deterministic_json(),
        }
    }

    /// Writes the report's files for `--out` into `dir` (created if
    /// missing) and returns the paths written: see [`write_out_dir`] and
    /// [`MetadataReport::write_out_dir`].
    pub fn write_out_dir(&self, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
        match self {
            ScenarioReport::Broadcast(r) => write_out_dir(r, dir),
            ScenarioReport::Metadata(r) => r.write_out_dir(dir),
            ScenarioReport::Chaos(r) => r.write_out_dir(dir),
        }
    }

    /// The broadcast scenario's report, if it is one.
    pub fn into_broadcast(self) -> Option<Report> {
        match self {
            ScenarioReport::Broadcast(r) => Some(r),
            ScenarioReport::Metadata(_) | ScenarioReport::Chaos(_) => None,
        }
    }

    /// `chaos`'s report, if it is one.
    pub fn into_chaos(self) -> Option<chaos::ChaosReport> {
        match self {
            ScenarioReport::Chaos(r) => Some(r),
            ScenarioReport::Broadcast(_) | ScenarioReport::Metadata(_) => None,
        }
    }

    /// `metadata`'s report, if it is one.
    pub fn into_metadata(self) -> Option<MetadataReport> {
        match self {
            ScenarioReport::Metadata(r) => Some(r),
            ScenarioReport::Broadcast(_) | ScenarioReport::Chaos(_) => None,
        }
    }
}

/// Runs the scenario `args` names and returns its report. `progress` is
/// told of every cycle (for `metadata`, of every run).
pub fn run(args: &SimArgs, progress: &Progress) -> anyhow::Result<ScenarioReport> {
    let started = std::time::Instant::now();
    if args.scenario.is_some() && args.stable != stable::StableArgs::default() {
        anyhow::bail!("a scenario's options go after its name: `epidemic sim SCENARIO --option ...`");
    }
    let common = &Common {
        nodes: args.nodes(),
        ..args.common.clone()
    };
    let mut report = match &args.scenario {
        None => ScenarioReport::Broadcast(stable::run(common, &args.stable, progress)?),
        Some(Scenario::Stable(a)) => ScenarioReport::Broadcast(stable::run(common, a, progress)?),
        Some(Scenario::Failure(a)) => ScenarioReport::Broadcast(failure::run(common, a, progress)?),
        Some(Scenario::Churn(a)) => ScenarioReport::Broadcast(churn::run(common, a, progress)?),
        Some(Scenario::Compare(a)) => ScenarioReport::Broadcast(compare::run(common, a, progress)?),
        Some(Scenario::Metadata(a)) => ScenarioReport::Metadata(metadata::run(common, a, progress)?),
        Some(Scenario::Chaos(a)) => ScenarioReport::Chaos(chaos::run(common, a, progress)?),
    };
    report.set_wall_ms(started.elapsed().as_millis() as u64);
    Ok(report)
}

/// Units of progress `args` will report, for the bar's length.
pub fn total_work(args: &SimArgs) -> u64 {
    match &args.scenario {
        None => args.stable.work(),
        Some(Scenario::Stable(a)) => a.work(),
        Some(Scenario::Failure(a)) => a.work(),
        Some(Scenario::Churn(a)) => a.work(),
        Some(Scenario::Compare(a)) => a.work(),
        Some(Scenario::Metadata(a)) => a.work(),
        Some(Scenario::Chaos(a)) => a.work(),
    }
}

/// Runs `job(0..n)` on up to `threads` threads and returns the results in
/// job order. Jobs are independent simulations, so the results do not depend
/// on the thread count or on scheduling.
fn parallel<T: Send>(n: usize, threads: usize, job: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<T>>> = Mutex::new((0..n).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, n.max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let r = job(i);
                    results.lock().expect("no worker panicked")[i] = Some(r);
                }
            });
        }
    });
    results
        .into_inner()
        .expect("no worker panicked")
        .into_iter()
        .map(|r| r.expect("every job ran"))
        .collect()
}

/// A comma-separated list of percentages, each in `(0, 100)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Percentages(pub Vec<f64>);

impl FromStr for Percentages {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        percentages(s).map(Percentages)
    }
}

/// Parses a comma-separated list of percentages in `(0, 100)`.
fn percentages(s: &str) -> Result<Vec<f64>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let v: f64 = part
            .trim_end_matches('%')
            .parse()
            .map_err(|_| format!("`{part}` is not a percentage"))?;
        if !(v > 0.0 && v < 100.0) {
            return Err(format!("{v}% is not between 0% and 100% (exclusive)"));
        }
        out.push(v);
    }
    if out.is_empty() {
        return Err("no percentage given".into());
    }
    Ok(out)
}

/// The first `pct` percent of `order` (rounded), never more than all but
/// one.
fn take_pct(order: &[epidemic_mem::Id], pct: f64, nodes: usize) -> &[epidemic_mem::Id] {
    let k = ((nodes as f64) * pct / 100.0).round() as usize;
    &order[..k.min(order.len())]
}

/// Formats a count with thousands separators.
fn thousands(x: f64) -> String {
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

    /// `epidemic sim` as the binary defines it.
    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    #[derive(Debug, clap::Subcommand)]
    enum Command {
        Sim(SimArgs),
    }

    fn parse(args: &[&str]) -> SimArgs {
        use clap::Parser;
        let Command::Sim(a) = Cli::try_parse_from(["epidemic", "sim"].iter().chain(args))
            .unwrap()
            .command;
        a
    }

    #[test]
    fn command_line() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let a = parse(&[]);
        assert!(a.scenario.is_none());
        assert_eq!(
            (a.nodes(), a.stable.cycles),
            (10_000, stable::StableArgs::default().cycles)
        );
        let a = parse(&["--cycles", "3", "--nodes", "50"]);
        assert_eq!((a.nodes(), a.stable.cycles), (50, 3));
        let a = parse(&["failure", "--levels", "10,50", "--nodes", "200", "--format", "json"]);
        assert_eq!(a.nodes(), 200);
        assert_eq!(a.common.format, Format::Json);
        match a.scenario {
            Some(Scenario::Failure(f)) => assert_eq!(f.levels, Percentages(vec![10.0, 50.0])),
            other => panic!("{other:?}"),
        }
        let a = parse(&["--seed", "9", "compare", "--fanout", "3", "--latency", "1..10"]);
        assert_eq!(a.common.seed, 9);
        assert_eq!(a.common.latency, LatencyMs { min: 1, max: 10 });
        assert!(matches!(a.scenario, Some(Scenario::Compare(c)) if c.fanout == 3));
        assert!(
            matches!(parse(&["churn", "--fail-per-cycle", "2"]).scenario, Some(Scenario::Churn(c)) if c.fail_per_cycle == Some(2))
        );
        let a = parse(&["metadata", "--partitions", "2", "--anti-entropy", "off", "--hyparview"]);
        assert_eq!(a.nodes(), 50, "metadata defaults to 50 nodes");
        match &a.scenario {
            Some(Scenario::Metadata(m)) => {
                assert_eq!((m.partitions, m.writes, m.hyparview), (2, 300, true));
                assert_eq!(m.anti_entropy, metadata::AntiEntropy::Off);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(parse(&["--nodes", "20", "metadata"]).nodes(), 20);
        assert_eq!(parse(&["metadata", "--nodes", "10000"]).nodes(), 10_000);
        assert_eq!(parse(&["churn"]).nodes(), 10_000);
        use clap::Parser;
        assert!(Cli::try_parse_from(["epidemic", "sim", "failure", "--levels", "0"]).is_err());
        assert!(Cli::try_parse_from(["epidemic", "sim", "metadata", "--nodes", "2"]).is_err());
        assert!(Cli::try_parse_from(["epidemic", "sim", "metadata", "--partitions", "0"]).is_err());
        assert!(Cli::try_parse_from(["epidemic", "sim", "--nodes", "1"]).is_err());
    }

    #[test]
    fn latency_parses() {
        assert_eq!("5".parse::<LatencyMs>(), Ok(LatencyMs { min: 5, max: 5 }));
        assert_eq!("1..10".parse::<LatencyMs>(), Ok(LatencyMs { min: 1, max: 10 }));
        assert!("10..1".parse::<LatencyMs>().is_err());
        assert!("x".parse::<LatencyMs>().is_err());
    }

    #[test]
    fn percentages_parse() {
        assert_eq!(percentages("10, 20%,95"), Ok(vec![10.0, 20.0, 95.0]));
        assert!(percentages("0").is_err());
        assert!(percentages("100").is_err());
        assert!(percentages("").is_err());
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(39984.0), "39,984");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1_000_000.0), "1,000,000");
    }

    #[test]
    fn parallel_keeps_job_order() {
        assert_eq!(parallel(10, 3, |i| i * i), (0..10).map(|i| i * i).collect::<Vec<_>>());
    }
}
