//! The deterministic fault sweep (`epidemic_mem::chaos`), short: every seed
//! must keep every invariant. `epidemic sim chaos --seeds 1000` runs the
//! long one; `epidemic sim chaos --seed N --verbose` replays one seed.

use epidemic_mem::chaos::{self, GenOptions, Invariant, Schedule};
use std::collections::BTreeMap;

/// Seeds in the sweep: enough to meet every kind of step many times, few
/// enough for a minute or two of CI.
const SEEDS: u64 = 300;

/// The CLI's schedules: the sweep here is the long one's first seeds.
fn options() -> GenOptions {
    GenOptions::default()
}

#[test]
fn every_seed_keeps_every_invariant() {
    let started = std::time::Instant::now();
    let options = options();
    let mut failed: BTreeMap<Invariant, Vec<u64>> = BTreeMap::new();
    let mut report = Vec::new();
    for seed in 0..SEEDS {
        let outcome = chaos::run_seed(seed, &options);
        for v in &outcome.violations {
            failed.entry(v.invariant).or_default().push(seed);
            report.push(format!("seed {seed}: {v}"));
        }
    }
    println!("{SEEDS} seeds in {:.1?}", started.elapsed());
    for line in &report {
        println!("{line}");
    }
    if let Some((&invariant, seeds)) = failed.iter().next() {
        // Shrink the first failure so the report carries a small schedule.
        let schedule = Schedule::generate(seeds[0], &options);
        let shrunk = chaos::shrink(&schedule, invariant, 60);
        println!(
            "seed {} shrunk for {invariant} in {} runs:\n{}",
            seeds[0], shrunk.runs, shrunk.schedule
        );
    }
    assert!(
        failed.is_empty(),
        "failing seeds per invariant: {failed:?}; replay with `epidemic sim chaos --seed N --verbose`"
    );
}
