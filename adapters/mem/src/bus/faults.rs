//! Fault injection: crashes, restarts (with the disk wiped or restored from
//! it), partitions and frame loss.

use crate::Id;
use crate::disk::Disk;
use epidemic_core::node::{Config, Node};
use rand::Rng;

use super::Bus;

impl Bus {
    /// Crashes `id`: its state is gone, its links break, and every peer it
    /// had a link with hears `Down` after the detection delay.
    pub fn crash(&mut self, id: Id) {
        let Some(slot) = self.slots.get_mut(id as usize) else {
            return;
        };
        if slot.node.take().is_none() {
            return;
        }
        slot.incarnation += 1;
        slot.armed = None;
        if std::mem::take(&mut slot.busy) {
            self.busy -= 1;
        }
        let links = std::mem::take(&mut slot.links);
        let at = self.now + self.config.detection_delay;
        for peer in links.0 {
            self.slots[peer as usize].links.remove(&id);
            self.schedule_down(at, peer, id);
        }
    }

    /// Restarts a crashed node with fresh state (its disk wiped); it joins
    /// through `contacts`.
    pub fn restart(&mut self, id: Id, contacts: impl IntoIterator<Item = Id>) {
        let seed = self.rng.random();
        let Some(slot) = self.slots.get_mut(id as usize) else {
            return;
        };
        if slot.node.is_some() {
            return;
        }
        slot.node = Some(Node::new(id, life(&slot.config, seed, slot.incarnation)));
        slot.disk = Disk::default();
        self.join(id, contacts);
    }

    /// Restarts a crashed node from its disk: every persisted metadata
    /// object is restored (`Node::restore`) before it joins through
    /// `contacts`.
    pub fn restart_from_disk(&mut self, id: Id, contacts: impl IntoIterator<Item = Id>) {
        let seed = self.rng.random();
        let now = self.now;
        let Some(slot) = self.slots.get_mut(id as usize) else {
            return;
        };
        if slot.node.is_some() {
            return;
        }
        let mut node = Node::new(id, life(&slot.config, seed, slot.incarnation));
        for (prefix, key, object) in slot.disk.iter() {
            // The node wrote these bytes itself; a refusal is a bug.
            node.restore(now, prefix, key, object)
                .expect("persisted objects restore");
        }
        slot.node = Some(node);
        self.join(id, contacts);
    }

    /// What node `id` has persisted (kept across crashes).
    pub fn disk(&self, id: Id) -> Option<&Disk> {
        self.slots.get(id as usize).map(|s| &s.disk)
    }

    /// Splits the nodes into groups (`group_of(id)`); frames between groups
    /// are lost, and every link across groups breaks.
    pub fn partition(&mut self, group_of: impl Fn(Id) -> u32) {
        let groups: Vec<u32> = (0..self.slots.len() as Id).map(group_of).collect();
        let at = self.now + self.config.detection_delay;
        for a in 0..self.slots.len() as Id {
            let cut: Vec<Id> = self.slots[a as usize]
                .links
                .iter()
                .copied()
                .filter(|&b| groups[a as usize] != groups[b as usize])
                .collect();
            for b in cut {
                self.slots[a as usize].links.remove(&b);
                self.slots[b as usize].links.remove(&a);
                self.schedule_down(at, a, b);
                self.schedule_down(at, b, a);
            }
        }
        self.partition = Some(groups);
    }

    /// Changes the drop probability from now on.
    pub fn set_drop_probability(&mut self, p: f64) {
        self.config.drop_probability = p;
    }

    /// Ends the partition.
    pub fn heal(&mut self) {
        self.partition = None;
    }

    pub(super) fn partitioned(&self, a: Id, b: Id) -> bool {
        self.partition.as_ref().is_some_and(|g| g[a as usize] != g[b as usize])
    }
}

/// `config` for one life of a node: its seed and incarnation.
pub(super) fn life(config: &Config, seed: u64, incarnation: u32) -> Config {
    let mut config = config.clone();
    config.seed = seed;
    config.incarnation = incarnation;
    config
}
