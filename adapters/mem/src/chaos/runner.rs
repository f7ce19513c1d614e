//! Executes a [`Schedule`] on a [`Bus`], feeding the model, then heals
//! everything, waits for quiescence and checks the invariants.

use super::check::{self, Deliveries, Invariant, Violation};
use super::history::{History, Sibling};
use super::schedule::{Ctx, Mode, SLOTS, Schedule, Step, WriteOp};
use crate::bus::Observation;
use crate::{Bus, BusConfig, Id, Latency};
use bytes::Bytes;
use epidemic_core::Duration;
use epidemic_core::metadata::{Actor, FullPrefix, Object, PutId, Read};
use epidemic_core::node::{BroadcastId, Config};
use std::collections::{BTreeMap, BTreeSet};

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

/// Chunks that runs are cut into, so the log is absorbed and the state
/// sampled regularly.
/// How long an operator waits for a membership command to spread before
/// issuing it again through another member.
const COMMAND_WAIT: Duration = Duration::from_secs(2);

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
        config.metadata = config
            .metadata
            .clone()
            .with_durable(s.durable)
            .with_gc_interval(ms(s.gc_interval_ms))
            .with_exchange_interval(ms(s.exchange_interval_ms));
        config.metadata.collected_retention = ms(s.collected_retention_ms);
        let mut bus = Bus::new(
            BusConfig::default()
                .with_seed(schedule.seed)
                .with_latency(Latency::Uniform {
                    min: ms(1),
                    max: ms(s.latency_max_ms.max(1)),
                }),
        );
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

    /// Node `id` lost what it held when it crashed: excuse the writes whose
    /// only copies those were.
    fn excuse_lost_with(&mut self, id: Id, why: &str) {
        let held = self.at_crash.remove(&id).unwrap_or_default();
        for (key, held) in held.into_iter().enumerate() {
            let mut elsewhere = self.history.covered(key, &BTreeSet::new());
            for other in 0..self.status.len() as Id {
                if other == id {
                    continue;
                }
                let present = match self.status[other as usize] {
                    Status::Up => self.held(other, key),
                    Status::Down => self.on_disk(other, key),
                    Status::Removed | Status::Spare => continue,
                };
                elsewhere.extend(self.history.closure(present));
            }
            for w in self.history.closure(held) {
                if !elsewhere.contains(&w) && self.history.writes()[w].excused.is_none() {
                    if self.tracing() {
                        let line = format!("  excused {} ({why})", self.history.describe(w));
                        self.log(line);
                    }
                    self.history.excuse(w, why);
                }
            }
        }
    }

    fn step(&mut self, step: &Step) -> bool {
        match step {
            Step::Run { ms } => self.run_for(Duration::from_millis(*ms)),
            Step::Loss { p } => self.bus.set_drop_probability(p.clamp(0.0, 1.0)),
            Step::Partition { groups } => {
                let groups = groups.clone();
                self.bus
                    .partition(move |id| groups.get(id as usize).copied().unwrap_or(0));
            }
            Step::Heal => self.bus.heal(),
            Step::Crash { node } => {
                if !self.is_up(*node) {
                    return false;
                }
                let held = (0..self.keys()).map(|k| self.held(*node, k)).collect();
                self.at_crash.insert(*node, held);
                self.bus.crash(*node);
                self.status[*node as usize] = Status::Down;
            }
            Step::Restart { node, disk } => {
                if self.status.get(*node as usize) != Some(&Status::Down) {
                    return false;
                }
                let contact = self.contact(*node);
                let durable = self.schedule.setup.durable;
                if *disk && durable {
                    self.at_crash.remove(node);
                    self.bus.restart_from_disk(*node, [contact]);
                } else {
                    self.excuse_lost_with(*node, &format!("node {node} restarted wiped"));
                    if *disk {
                        self.bus.restart_from_disk(*node, [contact]);
                    } else {
                        self.bus.restart(*node, [contact]);
                    }
                }
                self.status[*node as usize] = Status::Up;
            }
            Step::Remove { node, via } => {
                if self.schedule.setup.mode != Mode::Mesh
                    || self.status.get(*node as usize) != Some(&Status::Down)
                    || !self.is_up(*via)
                {
                    return false;
                }
                self.excuse_lost_with(*node, &format!("node {node} removed"));
                self.status[*node as usize] = Status::Removed;
                let node = *node;
                self.bus.with_node(*via, |n, now| n.remove_member(now, node));
                self.until_acknowledged(node, *via, false);
            }
            Step::Add { node, via } => {
                let was = self.status.get(*node as usize).copied();
                if self.schedule.setup.mode != Mode::Mesh
                    || !matches!(was, Some(Status::Removed | Status::Spare))
                    || !self.is_up(*via)
                {
                    return false;
                }
                self.add(*node, *via);
            }
            Step::Writes { ops } => {
                let mut any = false;
                for op in ops {
                    any |= self.write(op);
                }
                self.absorb();
                return any;
            }
            Step::Read { node, key, slot } => {
                if !self.is_up(*node) || *slot >= SLOTS || *key >= self.keys() {
                    return false;
                }
                let read = self.bus.node(*node).and_then(|n| n.get(&self.prefix, &key_name(*key)));
                let Some(read) = read else { return false };
                let saw = self.history.present(*key, &siblings(&read));
                self.slots[*slot] = Some((*key, read, saw));
            }
            Step::Broadcasts { origins, rate, ms } => {
                let origins: Vec<Id> = origins.iter().copied().filter(|&o| self.is_up(o)).collect();
                if origins.is_empty() || *rate == 0 {
                    return false;
                }
                self.broadcasts(&origins, *rate, *ms);
            }
        }
        true
    }

    /// The operator adds `node` (wiped) through `via`.
    fn add(&mut self, node: Id, via: Id) {
        if self.status[node as usize] == Status::Removed {
            // A removed node must be wiped before it is added again.
            self.bus.restart(node, [via]);
        } else {
            self.bus.join(node, [via]);
        }
        self.bus.with_node(via, |n, now| n.add_member(now, node));
        self.status[node as usize] = Status::Up;
        self.until_acknowledged(node, via, true);
    }

    /// An operator's membership command returns once a second member holds
    /// the change, as an acknowledged write does. A change still only in
    /// `via`'s memory dies with it (membership is not written to disk), so
    /// the operator waits for it to spread and, if it has not after
    /// [`COMMAND_WAIT`] (a partition, loss), issues it again through
    /// another live member. Without this, adding 7 through 6 and crashing 6
    /// in the same millisecond leaves 7 a member of nobody's cluster: a lost
    /// command, not a lost write (the sweep's seed 244).
    fn until_acknowledged(&mut self, member: Id, mut via: Id, added: bool) {
        let mut tried = vec![via];
        loop {
            let mut waited = Duration::ZERO;
            while waited < COMMAND_WAIT {
                let others = self.up().into_iter().filter(|&i| i != member && i != via);
                let acked = others
                    .filter_map(|i| self.bus.node(i))
                    .any(|n| n.members().contains(&member) == added);
                if acked {
                    return;
                }
                self.run_for(Duration::from_millis(1));
                waited = waited + Duration::from_millis(1);
            }
            let Some(next) = self.up().into_iter().find(|i| *i != member && !tried.contains(i)) else {
                return;
            };
            via = next;
            tried.push(via);
            self.bus.with_node(via, |n, now| {
                if added {
                    n.add_member(now, member);
                } else {
                    n.remove_member(now, member);
                }
            });
        }
    }

    /// One write: returns whether it was issued.
    fn write(&mut self, op: &WriteOp) -> bool {
        if !self.is_up(op.node) {
            return false;
        }
        let (key, context, saw) = match op.ctx {
            Ctx::Stale(s) => match self.slots.get(s).cloned().flatten() {
                Some((key, read, saw)) => (key, Some(read), saw),
                None => (op.key, None, BTreeSet::new()),
            },
            _ => (op.key, None, BTreeSet::new()),
        };
        if key >= self.keys() {
            return false;
        }
        let name = key_name(key);
        let (context, saw) = if matches!(op.ctx, Ctx::Stale(_)) && context.is_some() {
            (context, saw)
        } else {
            let read = self.bus.node(op.node).and_then(|n| n.get(&self.prefix, &name));
            let saw = read
                .as_ref()
                .map(|r| self.history.present(key, &siblings(r)))
                .unwrap_or_default();
            (if op.ctx == Ctx::Fresh { read } else { None }, saw)
        };
        // Every write at its own microsecond: its timestamp names it.
        self.bus.run_for(Duration::from_micros(1));
        let ts = self.bus.now().as_micros();
        let index = self.history.begin(op.node, key, op.delete, ts, saw);
        let payload = History::payload(index, op.node);
        let prefix = self.prefix.clone();
        let delete = op.delete;
        let result = self.bus.with_node(op.node, |n, now| {
            let ctx = context.as_ref().map(|r| r.context());
            if delete {
                n.delete(now, &prefix, &name, ctx)
            } else {
                n.put(now, &prefix, &name, payload, ctx)
            }
        });
        self.stats.writes += 1;
        self.stats.deletes += usize::from(delete);
        match result {
            Some(Ok(put)) => {
                if self.schedule.setup.durable {
                    self.pending.insert((op.node, put), index);
                } else {
                    self.history.ack(index);
                    self.stats.acked += 1;
                }
            }
            Some(Err(e)) => self.log(format!("  write w{index} refused: {e}")),
            None => {}
        }
        self.absorb();
        true
    }

    fn broadcasts(&mut self, origins: &[Id], rate: u32, ms: u64) -> Vec<(BroadcastId<Id>, Id)> {
        self.max_rate = self.max_rate.max(rate);
        let count = (u64::from(rate) * ms / 1000).max(1);
        let gap = Duration::from_micros(1_000_000 / u64::from(rate).max(1));
        let mut sent = Vec::new();
        for i in 0..count {
            let origin = origins[i as usize % origins.len()];
            if let Ok(id) = self.bus.broadcast(origin, Bytes::from_static(b"chaos broadcast")) {
                sent.push((id, origin));
                self.stats.broadcasts += 1;
            }
            self.bus.run_for(gap);
            if i % 256 == 255 {
                self.absorb();
            }
        }
        self.absorb();
        sent
    }

    fn converged(&self) -> bool {
        let mut hashes = self
            .up()
            .into_iter()
            .filter_map(|i| self.bus.node(i).map(|n| n.metadata_hash()));
        let first = hashes.next();
        hashes.all(|h| Some(h) == first)
    }

    /// Heals everything, restarts every crashed node, waits, and checks.
    fn finish(&mut self) {
        let line = format!("{:>8.3}s final: heal, no loss, restart every crashed node", self.secs());
        self.log(line);
        self.bus.set_drop_probability(0.0);
        self.bus.heal();
        let durable = self.schedule.setup.durable;
        for id in 0..self.status.len() as Id {
            match self.status[id as usize] {
                Status::Down => {
                    self.step(&Step::Restart {
                        node: id,
                        disk: durable,
                    });
                }
                Status::Removed => {
                    let via = self.contact(id);
                    self.add(id, via);
                }
                Status::Up | Status::Spare => {}
            }
        }
        // Quiescence, then anti-entropy and collection rounds until the
        // stores agree (or a generous limit passes).
        let s = &self.schedule.setup;
        let settle = Duration::from_millis(3 * s.exchange_interval_ms.max(s.gc_interval_ms));
        self.bus.run_until_quiescent(Duration::from_secs(120));
        self.run_for(settle);
        let mut waited = Duration::ZERO;
        while !self.converged() && waited < Duration::from_secs(300) {
            self.run_for(Duration::from_secs(1));
            waited = waited + Duration::from_secs(1);
        }
        self.run_for(settle);
        let line = format!("{:>8.3}s settled", self.secs());
        self.log(line);
        self.check_stores();
        self.check_calm_delivery();
        self.sample();
    }

    fn check_stores(&mut self) {
        let up = self.up();
        if !self.converged() {
            let mut diffs = Vec::new();
            for key in 0..self.keys() {
                let views: Vec<(Id, BTreeSet<usize>)> = up.iter().map(|&i| (i, self.held(i, key))).collect();
                if views.windows(2).any(|w| w[0].1 != w[1].1) {
                    diffs.push(format!("k{key}: {views:?}"));
                }
            }
            if diffs.is_empty() {
                diffs.push("the stores hash differently (tombstones or contexts differ)".into());
            }
            self.violate(
                Invariant::Convergence,
                format!("live members differ after settling: {}", diffs.join("; ")),
            );
        }
        for &id in &up {
            for key in 0..self.keys() {
                let held = self.held(id, key);
                let lost = self.history.lost(key, &held);
                if let Some(&w) = lost.first() {
                    let d = format!(
                        "node {id} k{key} holds {held:?}; acknowledged {} is neither there nor superseded{}",
                        self.history.describe(w),
                        if lost.len() > 1 {
                            format!(" ({} lost on this key)", lost.len())
                        } else {
                            String::new()
                        }
                    );
                    self.violate(Invariant::Durability, d);
                }
            }
        }
    }

    /// Broadcasts with nothing failing must reach every live member: a slow
    /// trickle, then a burst at the schedule's highest rate (so a failure
    /// says whether rate matters).
    fn check_calm_delivery(&mut self) {
        self.calm_delivery(20, 1_000);
        if self.max_rate > 20 {
            self.calm_delivery(self.max_rate.min(10_000), 200);
        }
    }

    fn calm_delivery(&mut self, rate: u32, ms: u64) {
        let up = self.up();
        let origins: Vec<Id> = [up.first(), up.last()].into_iter().flatten().copied().collect();
        let sent = self.broadcasts(&origins, rate, ms);
        self.bus.run_until_quiescent(Duration::from_secs(120));
        self.run_for(Duration::from_secs(5));
        let mut missed = 0;
        let mut first = None;
        let mut per_node: BTreeMap<Id, usize> = BTreeMap::new();
        for (id, origin) in &sent {
            for &at in &up {
                let inc = self.bus.incarnation(at).unwrap_or(0);
                if at != *origin && !self.deliveries.delivered(at, inc, id) {
                    missed += 1;
                    *per_node.entry(at).or_default() += 1;
                    first.get_or_insert((at, id.clone()));
                }
            }
        }
        if let Some((at, id)) = first {
            // Who would carry the origin's messages to the node: the peers
            // holding it in their eager or lazy set for that root.
            let root = id.origin;
            let (mut eager, mut lazy) = (Vec::new(), Vec::new());
            for &x in &up {
                if let Some(n) = self.bus.node(x) {
                    if n.plumtree().eager_peers(&root).any(|p| *p == at) {
                        eager.push(x);
                    }
                    if n.plumtree().lazy_peers(&root).any(|p| *p == at) {
                        lazy.push(x);
                    }
                }
            }
            let views: Vec<String> = per_node
                .keys()
                .map(|&n| {
                    let view = self.bus.node(n).map(|x| x.active_view()).unwrap_or_default();
                    format!("node {n} (neighbours {view:?})")
                })
                .collect();
            self.violate(
                Invariant::Delivery,
                format!(
                    "{missed} of {} deliveries missing after {} broadcasts at {rate}/s with no fault; first: node {at} \
                     never delivered {id:?}; missed per node {per_node:?}; {}; node {at} is eager at {eager:?} and \
                     lazy at {lazy:?} for root {root}",
                    sent.len() * up.len().saturating_sub(1),
                    sent.len(),
                    views.join(", ")
                ),
            );
        }
    }
}
