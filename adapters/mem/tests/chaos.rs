//! The deterministic fault sweep (`epidemic_mem::chaos`), short: every seed
//! must keep every invariant, but for the seeds of a known, open failure
//! listed in [`OPEN`], which must still fail (so that the list shrinks as
//! they are fixed and never hides a new one). `epidemic sim chaos --seeds
//! 1000` runs the long one; `epidemic sim chaos --seed N --verbose` replays
//! one seed.

use epidemic_mem::chaos::{self, GenOptions, Invariant, Schedule};
use std::collections::BTreeMap;

/// Seeds in the sweep: enough to meet every kind of step many times, few
/// enough for a minute or two of CI.
const SEEDS: u64 = 300;

/// Seeds that fail today, tracked on the issue "Nothing acknowledged is
/// ever lost". All are mesh schedules in which the operator adds and
/// removes members: in 114, 127 and 182 a member ends in no peer's eager or
/// lazy set for one root and misses its broadcasts (114: add, remove, add
/// member 7; node 7 is in no set for root 0); in 244 two members end
/// connected only to each other. Their stores then diverge. Every other
/// seed keeps every invariant.
const OPEN: [u64; 4] = [114, 127, 182, 244];

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
    let mut still_open = Vec::new();
    for seed in 0..SEEDS {
        let outcome = chaos::run_seed(seed, &options);
        if OPEN.contains(&seed) {
            if !outcome.violations.is_empty() {
                still_open.push(seed);
            }
            continue;
        }
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
    assert_eq!(
        still_open, OPEN,
        "a seed of a known failure passes now: take it off OPEN"
    );
}
