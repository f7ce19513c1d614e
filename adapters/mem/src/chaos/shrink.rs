//! Shrinking: a failing schedule made smaller while it still breaks the
//! same invariant. Replay is deterministic, so each candidate is one run.
//!
//! First whole steps are deleted, in chunks of half the schedule down to
//! single steps (delta debugging's complement pass); then what is left is
//! simplified in place: the writes of a burst one by one, broadcast bursts
//! and pauses halved.

use super::check::Invariant;
use super::runner;
use super::schedule::{Schedule, Step};

/// The result of [`shrink`].
#[derive(Debug, Clone, PartialEq)]
pub struct Shrunk {
    /// The smallest failing schedule found.
    pub schedule: Schedule,
    /// Runs spent.
    pub runs: usize,
}

/// Shrinks `schedule`, which breaks `invariant`, in at most `budget` runs.
pub fn shrink(schedule: &Schedule, invariant: Invariant, budget: usize) -> Shrunk {
    let mut best = schedule.clone();
    let mut runs = 0;
    let fails = |candidate: &Schedule, runs: &mut usize| -> bool {
        *runs += 1;
        runner::run(candidate, None).broke(invariant)
    };
    let mut chunk = best.steps.len().div_ceil(2).max(1);
    loop {
        let mut i = 0;
        while i < best.steps.len() && runs < budget {
            let mut candidate = best.clone();
            let end = (i + chunk).min(candidate.steps.len());
            candidate.steps.drain(i..end);
            if fails(&candidate, &mut runs) {
                best = candidate;
            } else {
                i += chunk;
            }
        }
        if chunk == 1 || runs >= budget {
            break;
        }
        chunk = chunk.div_ceil(2);
    }
    let mut i = 0;
    while i < best.steps.len() && runs < budget {
        let simpler = simplify(&best.steps[i]);
        let mut progressed = false;
        for s in simpler {
            if runs >= budget {
                break;
            }
            let mut candidate = best.clone();
            candidate.steps[i] = s;
            if fails(&candidate, &mut runs) {
                best = candidate;
                progressed = true;
                break;
            }
        }
        if !progressed {
            i += 1;
        }
    }
    Shrunk { schedule: best, runs }
}

/// Simpler versions of one step, most promising first.
fn simplify(step: &Step) -> Vec<Step> {
    match step {
        Step::Writes { ops } if ops.len() > 1 => (0..ops.len())
            .map(|skip| Step::Writes {
                ops: ops
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != skip)
                    .map(|(_, o)| *o)
                    .collect(),
            })
            .collect(),
        Step::Broadcasts { origins, rate, ms } => {
            let mut v = Vec::new();
            if *ms >= 100 {
                v.push(Step::Broadcasts {
                    origins: origins.clone(),
                    rate: *rate,
                    ms: ms / 2,
                });
            }
            if *rate >= 2 {
                v.push(Step::Broadcasts {
                    origins: origins.clone(),
                    rate: rate / 2,
                    ms: *ms,
                });
            }
            if origins.len() > 1 {
                v.push(Step::Broadcasts {
                    origins: origins[..1].to_vec(),
                    rate: *rate,
                    ms: *ms,
                });
            }
            v
        }
        Step::Run { ms } if *ms >= 100 => vec![Step::Run { ms: ms / 2 }],
        _ => Vec::new(),
    }
}
