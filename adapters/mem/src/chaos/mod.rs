//! A deterministic fault sweep, in the spirit of FoundationDB's simulator
//! and TigerBeetle's VOPR.
//!
//! One `u64` seed gives one [`Schedule`] (faults and workload), and the
//! schedule gives one run: the bus and, through it, every node are seeded
//! from the same seed, so any failure replays exactly.
//!
//! ```text
//!   seed ──► Schedule::generate ──► runner::run ──► Outcome (violations)
//!                                        │                 │
//!                                  History (model)      shrink: delete steps,
//!                                                       halve counts, re-run
//! ```
//!
//! - [`schedule`]: loss and loss spikes, partitions into 2–3 groups and
//!   heals, crashes and restarts (from disk and wiped), the operator
//!   removing and adding members (mesh), bursts of concurrent writes,
//!   stale-context writes and deletes, plain broadcasts from 1/s to
//!   10,000/s. Mesh runs collect tombstones (short GC ticks, sometimes a
//!   short memory of collected keys); HyParView runs keep them.
//! - [`history`]: the model of the acknowledged history (what each write
//!   saw, which are acknowledged, which were collected or legitimately lost
//!   with a wiped disk) and the "superseded" rule.
//! - [`check`]: the [`Invariant`]s, deliveries and structure bounds.
//! - [`runner`]: executes a schedule, then heals everything, restarts every
//!   crashed node, waits for quiescence and anti-entropy, and checks.
//! - [`shrink()`]: a smaller schedule that breaks the same invariant.
//!
//! ```
//! use epidemic_mem::chaos::{self, GenOptions, Schedule};
//!
//! let options = GenOptions { steps: 4, ..GenOptions::default() };
//! let schedule = Schedule::generate(3, &options);
//! let a = chaos::run(&schedule, None);
//! assert_eq!(a, chaos::run(&schedule, None), "a seed replays exactly");
//! ```

pub mod check;
pub mod history;
pub mod runner;
pub mod schedule;
pub mod shrink;

pub use check::{Invariant, Violation};
pub use history::History;
pub use runner::{Outcome, RunStats, run};
pub use schedule::{Ctx, GenOptions, Mode, Schedule, Setup, Step, WriteOp};
pub use shrink::{Shrunk, shrink};

/// Generates and runs `seed`'s schedule.
pub fn run_seed(seed: u64, options: &GenOptions) -> Outcome {
    run(&Schedule::generate(seed, options), None)
}
