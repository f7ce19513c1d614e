//! Executes a [`Schedule`] on a [`Bus`], feeding the model, then heals
//! everything, waits for quiescence and checks the invariants.
//!
//! This file holds the run's outcome, the `Runner` state and what every
//! phase uses (the model's view of the nodes, absorbing the bus's
//! observations, sampling the invariants that must hold at every moment).
//! The step executor is in `steps`, the final heal-settle-check phase in
//! `checks`.

use super::check::{self, Deliveries, Invariant, Violation};
use super::history::{History, Sibling};
use super::schedule::{Mode, SLOTS, Schedule};
use crate::bus::Observation;
use crate::{Bus, BusConfig, Id, Latency};
use bytes::Bytes;
use epidemic_core::Duration;
use epidemic_core::metadata::{Actor, FullPrefix, Object, PutId, Read};
use epidemic_core::node::Config;
use std::collections::{BTreeMap, BTreeSet};

mod checks;
mod steps;

/// What one run did and found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The schedule's seed.
    pub seed: u64,
    /// Broken invariants, one entry per invariant (the first occurrence,
    /// with a count), in [`Invariant::ALL`] order.
    pub violations: Vec<Violation>,
    /// Counters.
    pub stats: RunStats,
}

impl Outcome {
    /// Whether every invariant held.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }

    /// Whether `invariant` was broken.
    pub fn broke(&self, invariant: Invariant) -> bool {
        self.violations.iter().any(|v| v.invariant == invariant)
    }
}

/// Counters of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunStats {
    /// Steps that applied (the others were skipped as not applicable).
    pub steps_applied: usize,
    /// Puts and deletes issued.
    pub writes: usize,
    /// Of which deletes.
    pub deletes: usize,
    /// Acknowledged.
    pub acked: usize,
    /// Excused (their only copies were wiped or removed).
    pub excused: usize,
    /// Objects garbage-collected, all nodes.
    pub collections: usize,
    /// Plain broadcasts sent.
    pub broadcasts: usize,
    /// Their deliveries.
    pub deliveries: usize,
    /// Virtual time at the end, ms.
    pub virtual_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// Alive member.
    Up,
    /// Crashed member.
    Down,
    /// Crashed and removed by the operator.
    Removed,
    /// Alive, never added.
    Spare,
}

/// The prefix every write goes to.
fn prefix() -> FullPrefix {
    FullPrefix::new("chaos", "keys")
}

fn key_name(key: usize) -> Bytes {
    Bytes::from(format!("k{key}"))
}

fn siblings<I: Ord + Clone>(read: &Read<I>) -> Vec<Sibling> {
    read.values()
        .iter()
        .map(|v| Sibling {
            value: v.data.clone(),
            timestamp: v.timestamp,
        })
        .collect()
}

/// How long an operator waits for a membership command to spread before
/// issuing it again through another member.
const COMMAND_WAIT: Duration = Duration::from_secs(2);

/// Chunks that runs are cut into, so the log is absorbed and the state
/// sampled regularly.
const CHUNK: Duration = Duration::from_millis(250);

/// Runs `schedule`; `trace` (if any) hears one line per step and event of
/// note.
pub fn run<'a>(schedule: &'a Schedule, trace: Option<&'a mut dyn FnMut(&str)>) -> Outcome {
    let mut r = Runner::new(schedule, trace);
    for (i, step) in schedule.steps.iter().enumerate() {
        let applied = r.step(step);
        r.stats.steps_applied += usize::from(applied);
        if r.tracing() {
            let line = format!(
                "{:>8.3}s {i:>3}. {step}{}",
                r.secs(),
                if applied { "" } else { " (skipped)" }
            );
            r.log(line);
        }
        r.sample();
    }
    r.finish();
    r.stats.virtual_ms = r.bus.now().as_micros() / 1000;
    r.stats.excused = r.history.writes().iter().filter(|w| w.excused.is_some()).count();
    let mut violations: Vec<Violation> = r.violations.into_values().collect();
    violations.sort_by_key(|v| Invariant::ALL.iter().position(|i| *i == v.invariant));
    Outcome {
        seed: schedule.seed,
        violations,
        stats: r.stats,
    }
}

/// A read kept for a stale-context write: its key, the read (its context
/// stays opaque), and the writes it showed.
type Kept = (usize, Read<Actor<Id>>, BTreeSet<usize>);

struct Runner<'a> {
    schedule: &'a Schedule,
    bus: Bus,
    config: Config,
    prefix: FullPrefix,
    status: Vec<Status>,
    history: History,
    /// Stale reads, for later writes.
    slots: Vec<Option<Kept>>,
    /// What each crashed node held when it crashed, per key.
    at_crash: BTreeMap<Id, Vec<BTreeSet<usize>>>,
    /// Writes waiting for their `PutDurable`.
    pending: BTreeMap<(Id, PutId), usize>,
    deliveries: Deliveries,
    violations: BTreeMap<Invariant, Violation>,
    max_rate: u32,
    stats: RunStats,
    trace: Option<&'a mut dyn FnMut(&str)>,
}

impl<'a> Runner<'a> {
    fn new(schedule: &'a Schedule, trace: Option<&'a mut dyn FnMut(&str)>) -> Self {
        let s = &schedule.setup;
        let total = s.members + s.spares;
        let ms = Duration::from_millis;
        let mut config = match s.mode {
            Mode::Mesh => Config::mesh(total),
            Mode::HyParView => Config::default(),
        };
        config.metadata.durable = s.durable;
        config.metadata.gc_interval = ms(s.gc_interval_ms);
        config.metadata.exchange_interval = ms(s.exchange_interval_ms);
        config.metadata.collected_retention = ms(s.collected_retention_ms);
        let mut bus_config = BusConfig::seeded(schedule.seed);
        bus_config.latency = Latency::Uniform {
            min: ms(1),
            max: ms(s.latency_max_ms.max(1)),
        };
        let mut bus = Bus::new(bus_config);
        bus.set_observing(true);
        bus.add_nodes(total, &config);
        for id in 1..s.members as Id {
            bus.join(id, [0]);
            bus.run_for(ms(10));
        }
        bus.run_for(Duration::from_secs(10));
        let status = (0..total)
            .map(|i| if i < s.members { Status::Up } else { Status::Spare })
            .collect();
        let mut r = Runner {
            schedule,
            bus,
            config,
            prefix: prefix(),
            status,
            history: History::new(),
            slots: vec![None; SLOTS],
            at_crash: BTreeMap::new(),
            pending: BTreeMap::new(),
            deliveries: Deliveries::default(),
            violations: BTreeMap::new(),
            max_rate: 0,
            stats: RunStats::default(),
            trace,
        };
        r.absorb();
        r
    }

    fn secs(&self) -> f64 {
        self.bus.now().as_micros() as f64 / 1e6
    }

    fn tracing(&self) -> bool {
        self.trace.is_some()
    }

    fn log(&mut self, line: String) {
        if let Some(t) = self.trace.as_mut() {
            t(&line);
        }
    }

    fn violate(&mut self, invariant: Invariant, detail: String) {
        self.log(format!("  VIOLATION {invariant}: {detail}"));
        self.violations
            .entry(invariant)
            .and_modify(|v| v.count += 1)
            .or_insert(Violation {
                invariant,
                detail,
                count: 1,
            });
    }

    fn up(&self) -> Vec<Id> {
        (0..self.status.len() as Id)
            .filter(|&i| self.status[i as usize] == Status::Up)
            .collect()
    }

    fn is_up(&self, id: Id) -> bool {
        self.status.get(id as usize) == Some(&Status::Up)
    }

    fn keys(&self) -> usize {
        self.schedule.setup.keys
    }

    /// The writes live node `id` holds under `key`.
    fn held(&self, id: Id, key: usize) -> BTreeSet<usize> {
        let read = self.bus.node(id).and_then(|n| n.get(&self.prefix, &key_name(key)));
        match read {
            Some(r) => self.history.present(key, &siblings(&r)),
            None => BTreeSet::new(),
        }
    }

    /// What crashed node `id` holds on disk under `key` (nothing for a
    /// store that is not durable).
    fn on_disk(&self, id: Id, key: usize) -> BTreeSet<usize> {
        if !self.schedule.setup.durable {
            return BTreeSet::new();
        }
        let Some(bytes) = self.bus.disk(id).and_then(|d| d.get(&self.prefix, &key_name(key))) else {
            return BTreeSet::new();
        };
        // The disk holds what the node encoded: failing to decode it is a
        // bug in the harness, never a finding to pass over.
        let object = Object::<Actor<Id>>::decode(bytes, usize::MAX).expect("a stored object decodes");
        self.history.present(key, &siblings(&object.read()))
    }

    /// Moves the bus's observations into the model and the delivery log.
    fn absorb(&mut self) {
        for o in self.bus.take_observations() {
            match o {
                Observation::PutDurable { at, put } => {
                    if let Some(i) = self.pending.remove(&(at, put)) {
                        self.history.ack(i);
                        self.stats.acked += 1;
                    }
                }
                Observation::Delivered { at, incarnation, id } => {
                    self.stats.deliveries += 1;
                    if let Some((inv, detail)) = self.deliveries.record(at, incarnation, &id) {
                        self.violate(inv, format!("{detail} at {:.3}s", self.secs()));
                    }
                }
                Observation::Collected {
                    at,
                    prefix,
                    key,
                    object,
                } => {
                    let Some(k) = std::str::from_utf8(&key)
                        .ok()
                        .and_then(|s| s.strip_prefix('k'))
                        .and_then(|s| s.parse::<usize>().ok())
                    else {
                        continue;
                    };
                    if prefix != self.prefix {
                        continue;
                    }
                    self.stats.collections += 1;
                    let o = Object::<Actor<Id>>::decode(&object, usize::MAX).expect("a collected object decodes");
                    let present = self.history.present(k, &siblings(&o.read()));
                    self.log(format!("  node {at} collected k{k} holding {present:?}"));
                    self.history.collected(k, present);
                }
                Observation::Changed { .. } => {}
            }
        }
    }

    /// Checks what must hold at every moment: no resurrection, every bound.
    fn sample(&mut self) {
        self.absorb();
        for id in self.up() {
            for key in 0..self.keys() {
                let held = self.held(id, key);
                let back = self.history.resurrected(key, &held);
                if let Some(&w) = back.first() {
                    let d = format!(
                        "node {id} holds {} at {:.3}s after a tombstone that saw it was collected",
                        self.history.describe(w),
                        self.secs()
                    );
                    self.violate(Invariant::Resurrection, d);
                }
            }
            if let Some(d) = self.bus.node(id).and_then(|n| check::bounds(id, n, &self.config)) {
                self.violate(Invariant::Bound, d);
            }
        }
    }

    /// Runs `d` of virtual time in chunks, sampling after each.
    fn run_for(&mut self, d: Duration) {
        let end = self.bus.now() + d;
        while self.bus.now() < end {
            let left = end - self.bus.now();
            self.bus.run_for(if left < CHUNK { left } else { CHUNK });
            self.sample();
        }
    }

    /// Any live member, for contacts and the operator.
    fn contact(&self, not: Id) -> Id {
        self.up().into_iter().find(|&i| i != not).unwrap_or(0)
    }
}
