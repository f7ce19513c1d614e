//! The final checks: heal everything, restart every crashed node, wait for
//! the stores to settle, then check convergence, durability and delivery
//! with nothing failing.

use super::{Runner, Status};
use crate::Id;
use crate::chaos::check::Invariant;
use crate::chaos::schedule::Step;
use epidemic_core::Duration;
use std::collections::{BTreeMap, BTreeSet};

impl Runner<'_> {
    pub(super) fn converged(&self) -> bool {
        let mut hashes = self
            .up()
            .into_iter()
            .filter_map(|i| self.bus.node(i).map(|n| n.metadata_hash()));
        let first = hashes.next();
        hashes.all(|h| Some(h) == first)
    }

    /// Heals everything, restarts every crashed node, waits, and checks.
    pub(super) fn finish(&mut self) {
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

    pub(super) fn check_stores(&mut self) {
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
    pub(super) fn check_calm_delivery(&mut self) {
        self.calm_delivery(20, 1_000);
        if self.max_rate > 20 {
            self.calm_delivery(self.max_rate.min(10_000), 200);
        }
    }

    pub(super) fn calm_delivery(&mut self, rate: u32, ms: u64) {
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
