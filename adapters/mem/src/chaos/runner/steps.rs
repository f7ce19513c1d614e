//! The step executor: applies each [`Step`] of a schedule to the bus and
//! records in the model what it did (writes begun, reads kept, crashes,
//! restarts and operator commands, with the writes they excuse).

use super::{COMMAND_WAIT, Runner, Status, key_name, siblings};
use crate::Id;
use crate::chaos::history::History;
use crate::chaos::schedule::{Ctx, Mode, SLOTS, Step, WriteOp};
use bytes::Bytes;
use epidemic_core::Duration;
use epidemic_core::node::BroadcastId;
use std::collections::BTreeSet;

impl Runner<'_> {
    pub(super) fn step(&mut self, step: &Step) -> bool {
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
    pub(super) fn add(&mut self, node: Id, via: Id) {
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
    pub(super) fn until_acknowledged(&mut self, member: Id, mut via: Id, added: bool) {
        let mut tried = vec![via];
        loop {
            let mut waited = Duration::ZERO;
            while waited < COMMAND_WAIT {
                let acked = self
                    .up()
                    .into_iter()
                    .filter(|&i| i != member && i != via)
                    .filter_map(|i| self.bus.node(i))
                    .any(|n| n.is_member(&member) == added);
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
    pub(super) fn write(&mut self, op: &WriteOp) -> bool {
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

    pub(super) fn broadcasts(&mut self, origins: &[Id], rate: u32, ms: u64) -> Vec<(BroadcastId<Id>, Id)> {
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

    /// Node `id` lost what it held when it crashed: excuse the writes whose
    /// only copies those were.
    pub(super) fn excuse_lost_with(&mut self, id: Id, why: &str) {
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
}
