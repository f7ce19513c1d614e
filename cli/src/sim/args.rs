//! The command line of `epidemic sim`: the scenarios, their options and
//! the options every scenario shares ([`Common`]), as clap parses them.

use super::{chaos, churn, compare, failure, metadata, setup, stable};
use clap::{Args, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::str::FromStr;

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
    /// ([`SimArgs::nodes`]). [`run`](super::run) sets it before the scenario runs; until
    /// then it holds the broadcast scenarios' default.
    #[arg(skip = setup::NODES)]
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

    pub(crate) fn jobs(&self) -> usize {
        self.jobs
            .map(|j| j as usize)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

impl SimArgs {
    /// Parses the arguments that follow `epidemic sim` on a command line,
    /// for callers of [`run`](super::run) that start from strings (tests, scripts).
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
            _ => setup::NODES,
        })
    }
}

impl SimArgs {
    /// Checks the options before anything runs: refuses those that make the
    /// run meaningless (an error saying why), returns warnings for doubtful
    /// ones, and creates `--out` and checks that it can be written, so a
    /// long run never ends in a path error.
    pub fn check(&self) -> Result<Vec<String>, String> {
        let c = &self.common;
        let nodes = self.nodes();
        let mut warnings = Vec::new();
        if c.latency.max >= c.shuffle_ms {
            return Err(format!(
                "a latency of {} ms is not below the shuffle interval of {} ms (one cycle): every broadcast would outlast its cycle",
                c.latency, c.shuffle_ms
            ));
        }
        let stable = match &self.scenario {
            None => Some(&self.stable),
            Some(Scenario::Stable(s)) => Some(s),
            _ => None,
        };
        if let Some(s) = stable {
            if u64::from(s.senders) > nodes {
                warnings.push(format!(
                    "--senders {} exceeds --nodes {nodes}: all {nodes} nodes take turns instead",
                    s.senders
                ));
            }
        }
        let hyparview = !matches!(self.scenario, Some(Scenario::Metadata(_) | Scenario::Chaos(_)));
        if hyparview && c.passive == 0 {
            warnings.push(
                "--passive 0: HyParView has no backups to replace a failed neighbour, so failures will not heal".into(),
            );
        }
        if hyparview && c.active >= nodes {
            warnings.push(format!(
                "--active {} with {nodes} nodes: a node has at most {} neighbours",
                c.active,
                nodes - 1
            ));
        }
        if let Some(dir) = &c.out {
            std::fs::create_dir_all(dir).map_err(|e| format!("--out {}: {e}", dir.display()))?;
            let probe = dir.join(".epidemic-write-check");
            std::fs::write(&probe, b"").map_err(|e| format!("--out {}: cannot write there: {e}", dir.display()))?;
            let _ = std::fs::remove_file(probe);
        }
        Ok(warnings)
    }
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
}
