//! Per-broadcast delivery metrics (Plumtree paper §2.3 definitions).

use crate::Id;
use epidemic_core::node::BroadcastId;
use epidemic_core::{Duration, Instant};
use std::collections::HashMap;

struct Record {
    started: Instant,
    alive_at_start: usize,
    /// One bit per node: delivered (the origin counts as delivered).
    bits: Vec<u64>,
    delivered: usize,
    duplicates: usize,
    max_hops: u32,
    last_delivery: Instant,
}

/// How one broadcast went.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BroadcastReport {
    /// Nodes that delivered it, the origin included.
    pub delivered: usize,
    /// Live nodes when it was sent, the origin included.
    pub alive_at_start: usize,
    /// Deliveries of it to a node that had already delivered it. The node
    /// promises zero.
    pub duplicates: usize,
    /// Last delivery hop: the largest hop count of any delivery.
    pub ldh: u32,
    /// Virtual time from the broadcast to its last delivery.
    pub latency: Duration,
}

impl BroadcastReport {
    /// Percentage of `alive` nodes that delivered it.
    pub fn reliability(&self, alive: usize) -> f64 {
        if alive == 0 {
            100.0
        } else {
            100.0 * self.delivered.min(alive) as f64 / alive as f64
        }
    }
}

/// Collects deliveries for every broadcast started through the bus.
#[derive(Default)]
pub struct Metrics {
    nodes: usize,
    records: HashMap<BroadcastId<Id>, Record>,
    /// Deliveries reported by a broadcast's own origin, which the node
    /// promises never to emit.
    at_origin: usize,
}

impl Metrics {
    pub(crate) fn grow(&mut self, nodes: usize) {
        self.nodes = nodes;
    }

    pub(crate) fn start(&mut self, id: BroadcastId<Id>, origin: Id, alive: usize, now: Instant) {
        let mut bits = vec![0u64; self.nodes.div_ceil(64)];
        bits[origin as usize / 64] |= 1 << (origin % 64);
        self.records.insert(
            id,
            Record {
                started: now,
                alive_at_start: alive,
                bits,
                delivered: 1,
                duplicates: 0,
                max_hops: 0,
                last_delivery: now,
            },
        );
    }

    pub(crate) fn delivered(&mut self, id: &BroadcastId<Id>, at: Id, hops: u32, now: Instant) {
        if at == id.origin {
            self.at_origin += 1;
        }
        let Some(r) = self.records.get_mut(id) else { return };
        let (word, bit) = (at as usize / 64, 1u64 << (at % 64));
        if word >= r.bits.len() {
            r.bits.resize(word + 1, 0);
        }
        if r.bits[word] & bit != 0 {
            r.duplicates += 1;
            return;
        }
        r.bits[word] |= bit;
        r.delivered += 1;
        r.max_hops = r.max_hops.max(hops);
        r.last_delivery = now;
    }

    /// The report for one broadcast.
    pub fn report(&self, id: &BroadcastId<Id>) -> Option<BroadcastReport> {
        self.records.get(id).map(|r| BroadcastReport {
            delivered: r.delivered,
            alive_at_start: r.alive_at_start,
            duplicates: r.duplicates,
            ldh: r.max_hops,
            latency: r.last_delivery - r.started,
        })
    }

    /// Whether node `at` delivered broadcast `id` (the origin counts).
    pub fn has_delivered(&self, id: &BroadcastId<Id>, at: Id) -> bool {
        self.records
            .get(id)
            .is_some_and(|r| r.bits.get(at as usize / 64).is_some_and(|w| w & (1 << (at % 64)) != 0))
    }

    /// Total duplicate deliveries across every tracked broadcast.
    pub fn total_duplicates(&self) -> usize {
        self.records.values().map(|r| r.duplicates).sum()
    }

    /// Deliveries at a broadcast's own origin, tracked or not (the node
    /// promises zero; each is also counted in its report's `duplicates`).
    pub fn deliveries_at_origin(&self) -> usize {
        self.at_origin
    }

    /// Forgets every tracked broadcast (long simulations).
    pub fn clear(&mut self) {
        self.records.clear();
    }
}
