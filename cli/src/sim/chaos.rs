//! `epidemic sim chaos`: the deterministic fault sweep of
//! [`epidemic_mem::chaos`] over many seeds.
//!
//! Each seed generates a schedule of faults (loss and loss spikes,
//! partitions, crashes, restarts with and without disk, the operator
//! removing and adding members) and workload (concurrent, stale-context and
//! delete writes to the metadata store, plain broadcasts at 1/s to
//! 10,000/s), runs it on the bus, heals everything and checks the
//! invariants. Failures are listed with their seed and invariant; the first
//! failing seed of each invariant is shrunk to a smaller schedule that
//! still breaks it. `--seed N --verbose` replays one seed with its schedule
//! and a line per step.
//!
//! Of the global options, `--nodes` (members at the start, 7 by default),
//! `--seed` (with `--verbose`), `--format`, `--out`, `--jobs` and `--quiet`
//! apply.

use super::output::{self, Table, count};
use super::setup::Headline;
use super::{Common, Progress, parallel};
use anyhow::bail;
use clap::Args;
use epidemic_mem::chaos::{self, GenOptions, Invariant, Mode, Schedule};
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Members at the start when `--nodes` is not given: a small cluster, where
/// every fault touches a large share of it.
pub(crate) const NODES: u64 = 7;

/// The largest cluster swept: a full mesh costs the square of its nodes.
const MAX_NODES: u64 = 100;

/// Options of `epidemic sim chaos`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ChaosArgs {
    /// Seeds to run, from `--seed-start` on.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub seeds: u64,
    /// The first seed of the sweep.
    #[arg(long, default_value_t = 0)]
    pub seed_start: u64,
    /// Steps per schedule.
    #[arg(long, default_value_t = 60)]
    pub steps: usize,
    /// The highest plain broadcast rate drawn, per second.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_rate: u32,
    /// The longest burst of plain broadcasts, in virtual ms.
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(100..))]
    pub max_burst_ms: u64,
    /// Replay `--seed` alone: print its schedule, a line per step and every
    /// violation as it happens.
    #[arg(long)]
    pub verbose: bool,
    /// Runs spent shrinking the first failing seed of each invariant (0:
    /// no shrinking).
    #[arg(long, default_value_t = 100)]
    pub shrink_runs: usize,
}

impl ChaosArgs {
    pub(crate) fn work(&self) -> u64 {
        if self.verbose { 1 } else { self.seeds }
    }
}

/// One broken invariant of one seed.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ChaosViolation {
    /// The invariant's name.
    pub invariant: String,
    /// The first occurrence.
    pub detail: String,
    /// Occurrences in the run.
    pub count: usize,
}

/// A failing seed.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ChaosFailure {
    /// The seed.
    pub seed: u64,
    /// `mesh` or `hyparview`.
    pub mode: String,
    /// What broke.
    pub violations: Vec<ChaosViolation>,
}

/// A failing schedule, shrunk.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ChaosShrunk {
    /// The seed.
    pub seed: u64,
    /// The invariant it still breaks.
    pub invariant: String,
    /// Steps before and after.
    pub steps_before: usize,
    /// Steps after.
    pub steps_after: usize,
    /// Runs spent.
    pub runs: usize,
    /// The shrunk schedule, one step a line.
    pub schedule: String,
}

/// The sweep's headline.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ChaosSummary {
    /// Seeds run.
    pub seeds: u64,
    /// Seeds that kept every invariant.
    pub passed: u64,
    /// Seeds that broke one or more.
    pub failed: u64,
    /// Wall-clock time of the whole run, in milliseconds: the one field that
    /// differs between two runs with the same seeds.
    pub wall_ms: u64,
}

/// Everything `epidemic sim chaos` prints with `--format json`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ChaosReport {
    /// `chaos`.
    pub scenario: String,
    /// Every parameter of the run.
    pub params: BTreeMap<String, serde_json::Value>,
    /// The headline.
    pub summary: ChaosSummary,
    /// Failing seeds per invariant.
    pub failing_seeds: BTreeMap<String, Vec<u64>>,
    /// Every failing seed.
    pub failures: Vec<ChaosFailure>,
    /// The first failing seed of each invariant, shrunk.
    pub shrunk: Vec<ChaosShrunk>,
    /// With `--verbose`: the replayed seed's schedule and step log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
    /// The human-readable table.
    #[serde(skip)]
    pub table: String,
}

impl ChaosReport {
    /// The JSON document, minus its one nondeterministic field
    /// (`summary.wall_ms`).
    pub fn deterministic_json(&self) -> serde_json::Value {
        super::output::deterministic_json(self)
    }

    /// Writes `report.json` and `failures.csv` into `dir`.
    pub fn write_out_dir(&self, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
        let mut written = output::start_out_dir(dir, self)?;
        let mut csv = String::from("seed,mode,invariant,count,detail\n");
        for f in &self.failures {
            for v in &f.violations {
                let _ = writeln!(
                    csv,
                    "{},{},{},{},{}",
                    f.seed,
                    f.mode,
                    v.invariant,
                    v.count,
                    output::csv_field(&v.detail)
                );
            }
        }
        output::write(dir, "failures.csv", &csv, &mut written)?;
        Ok(written)
    }

    /// Whether every seed passed.
    pub fn passed(&self) -> bool {
        self.summary.failed == 0
    }
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Mesh => "mesh",
        Mode::HyParView => "hyparview",
    }
}

/// Runs the sweep (or, with `--verbose`, replays `--seed`).
pub fn run(common: &Common, args: &ChaosArgs, progress: &Progress) -> anyhow::Result<ChaosReport> {
    if common.nodes > MAX_NODES {
        bail!("chaos sweeps small clusters: at most {MAX_NODES} --nodes");
    }
    let options = GenOptions {
        nodes: common.nodes as usize,
        steps: args.steps,
        max_rate: args.max_rate,
        max_burst_ms: args.max_burst_ms,
    };
    let seeds: Vec<u64> = if args.verbose {
        vec![common.seed]
    } else {
        (0..args.seeds).map(|i| args.seed_start.wrapping_add(i)).collect()
    };
    progress.set_unit("seeds");
    progress.message("running schedules");
    let mut trace = None;
    let outcomes = if args.verbose {
        let schedule = Schedule::generate(common.seed, &options);
        let mut log = schedule.to_string();
        let mut line = |l: &str| {
            log.push_str(l);
            log.push('\n');
        };
        let outcome = chaos::run(&schedule, Some(&mut line));
        progress.inc(1);
        trace = Some(log);
        vec![(schedule, outcome)]
    } else {
        parallel(seeds.len(), common.jobs(), |i| {
            let schedule = Schedule::generate(seeds[i], &options);
            let outcome = chaos::run(&schedule, None);
            progress.inc(1);
            (schedule, outcome)
        })
    };

    let mut failing_seeds: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut first: BTreeMap<Invariant, Schedule> = BTreeMap::new();
    for (schedule, outcome) in &outcomes {
        if outcome.passed() {
            continue;
        }
        for v in &outcome.violations {
            failing_seeds
                .entry(v.invariant.to_string())
                .or_default()
                .push(outcome.seed);
            first.entry(v.invariant).or_insert_with(|| schedule.clone());
        }
        failures.push(ChaosFailure {
            seed: outcome.seed,
            mode: mode_name(schedule.setup.mode).into(),
            violations: outcome
                .violations
                .iter()
                .map(|v| ChaosViolation {
                    invariant: v.invariant.to_string(),
                    detail: v.detail.clone(),
                    count: v.count,
                })
                .collect(),
        });
    }
    let mut shrunk = Vec::new();
    if args.shrink_runs > 0 {
        progress.message("shrinking");
        let first: Vec<(Invariant, Schedule)> = first.into_iter().collect();
        shrunk = parallel(first.len(), common.jobs(), |i| {
            let (invariant, schedule) = &first[i];
            let s = chaos::shrink(schedule, *invariant, args.shrink_runs);
            ChaosShrunk {
                seed: schedule.seed,
                invariant: invariant.to_string(),
                steps_before: schedule.steps.len(),
                steps_after: s.schedule.steps.len(),
                runs: s.runs,
                schedule: s.schedule.to_string(),
            }
        });
    }
    let failed = failures.len() as u64;
    let mut report = ChaosReport {
        scenario: "chaos".into(),
        params: BTreeMap::from([
            ("nodes".into(), json!(common.nodes)),
            (
                "seed_start".into(),
                json!(if args.verbose { common.seed } else { args.seed_start }),
            ),
            ("seeds".into(), json!(seeds.len())),
            ("steps".into(), json!(args.steps)),
            ("max_rate".into(), json!(args.max_rate)),
            ("max_burst_ms".into(), json!(args.max_burst_ms)),
            ("shrink_runs".into(), json!(args.shrink_runs)),
        ]),
        summary: ChaosSummary {
            seeds: seeds.len() as u64,
            passed: seeds.len() as u64 - failed,
            failed,
            wall_ms: 0,
        },
        failing_seeds,
        failures,
        shrunk,
        trace,
        table: String::new(),
    };
    report.table = table(&report);
    Ok(report)
}

fn table(report: &ChaosReport) -> String {
    let mut out = String::new();
    if let Some(trace) = &report.trace {
        out.push_str(trace);
        out.push('\n');
    }
    let s = &report.summary;
    let headline = Headline::new(
        "chaos",
        format!(
            "{} seeds from {}, {} members, {} steps each",
            count(s.seeds),
            report.params["seed_start"],
            report.params["nodes"],
            report.params["steps"],
        ),
    );
    let mut t = Table::new(["invariant", "failing seeds", "seeds"]);
    for inv in Invariant::ALL {
        let seeds = report.failing_seeds.get(inv.name()).cloned().unwrap_or_default();
        let mut list: Vec<String> = seeds.iter().take(20).map(u64::to_string).collect();
        if seeds.len() > 20 {
            list.push(format!("... {} more", seeds.len() - 20));
        }
        t.row([inv.name().to_string(), count(seeds.len() as u64), list.join(" ")]);
    }
    out.push_str(&headline.page(
        &t,
        format!("passed {} of {} seeds; failed {}\n", s.passed, s.seeds, s.failed),
    ));
    if !report.failures.is_empty() {
        out.push_str("\nfailures:\n");
        for f in &report.failures {
            for v in &f.violations {
                let more = if v.count > 1 {
                    format!(" (and {} more)", v.count - 1)
                } else {
                    String::new()
                };
                let _ = writeln!(
                    out,
                    "  seed {} ({}): {}: {}{more}",
                    f.seed, f.mode, v.invariant, v.detail
                );
            }
        }
    }
    for s in &report.shrunk {
        let _ = write!(
            out,
            "\nseed {} shrunk for {} from {} to {} steps in {} runs (replay: epidemic sim chaos --seed {} \
             --verbose):\n{}",
            s.seed, s.invariant, s.steps_before, s.steps_after, s.runs, s.seed, s.schedule
        );
    }
    out
}
