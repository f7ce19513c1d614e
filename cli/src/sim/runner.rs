//! Running a scenario: [`run`] dispatches to it and times it, and
//! [`parallel`] runs its independent simulations on threads.

use super::metadata::MetadataDocument;
use super::report::Report;
use super::{Progress, Scenario, SimArgs, chaos, churn, compare, failure, metadata, stable, write_out_dir};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// What [`run`] returns: a broadcast scenario's [`Report`], or
/// `metadata`'s [`MetadataDocument`]. Serializes as the report it holds.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(untagged)]
pub enum ScenarioReport {
    /// `stable`, `failure`, `churn` or `compare`.
    Broadcast(Report),
    /// `metadata`.
    Metadata(MetadataDocument),
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
    /// [`MetadataDocument::write_out_dir`].
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
    pub fn into_metadata(self) -> Option<MetadataDocument> {
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
    let common = &super::Common {
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
pub(crate) fn parallel<T: Send>(n: usize, threads: usize, job: impl Fn(usize) -> T + Sync) -> Vec<T> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_keeps_job_order() {
        assert_eq!(parallel(10, 3, |i| i * i), (0..10).map(|i| i * i).collect::<Vec<_>>());
    }
}
