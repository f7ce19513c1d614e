//! A simulated cluster on the [`Bus`]: the warmed-up overlay every scenario
//! starts from, failures, and one measured broadcast.

use super::report::Shot;
use bytes::Bytes;
use epidemic_core::Duration;
use epidemic_core::broadcast;
use epidemic_core::membership::hyparview;
use epidemic_core::node::{Config, MembershipConfig};
use epidemic_mem::{Bus, BusConfig, Id, Latency};

/// Everything that shapes the simulated cluster, but not the scenario.
#[derive(Debug, Clone)]
pub(crate) struct ClusterSpec {
    pub(crate) nodes: usize,
    pub(crate) seed: u64,
    pub(crate) active: usize,
    pub(crate) passive: usize,
    /// HyParView's shuffle period: the membership step of one cycle.
    pub(crate) shuffle_interval: Duration,
    pub(crate) latency: Latency,
    pub(crate) detection_delay: Duration,
    /// Time between two joins while the overlay grows.
    pub(crate) join_gap: Duration,
    /// Membership time after the last join, before any broadcast.
    pub(crate) settle: Duration,
    pub(crate) plumtree: broadcast::Config,
}

impl ClusterSpec {
    fn node_config(&self) -> Config {
        let mut hv = hyparview::Config::default();
        hv.active_view_capacity = self.active;
        hv.passive_view_capacity = self.passive;
        hv.shuffle_interval = self.shuffle_interval;
        let mut config = Config::default();
        config.membership = MembershipConfig::HyParView(hv);
        config.plumtree = self.plumtree.clone();
        config.message_cache = super::MESSAGE_CACHE;
        config
    }

    fn bus_config(&self) -> BusConfig {
        let mut config = BusConfig::seeded(self.seed);
        config.latency = self.latency;
        config.detection_delay = self.detection_delay;
        config
    }
}

/// Counters summed over the live nodes.
#[derive(Debug, Clone, Copy, Default)]
struct Totals {
    control: u64,
    ihave: u64,
    acks: u64,
}

/// A warmed-up cluster.
pub(crate) struct Cluster {
    bus: Bus,
    spec: ClusterSpec,
    /// Each node's payload frames sent, at the start of the broadcast being
    /// measured.
    payload_seen: Vec<u64>,
}

impl Cluster {
    /// Builds the overlay as the paper grows it: every node joins through a
    /// random earlier one, `join_gap` apart; then shuffles run for `settle`.
    /// The same spec (seed included) gives the same overlay whatever the
    /// Plumtree settings, since no broadcast has run yet.
    pub(crate) fn new(spec: ClusterSpec) -> Self {
        let mut bus = Bus::new(spec.bus_config());
        bus.add_nodes(spec.nodes, &spec.node_config());
        bus.join_each_via_random_earlier(spec.join_gap);
        bus.run_for(spec.settle);
        Cluster {
            bus,
            payload_seen: vec![0; spec.nodes],
            spec,
        }
    }

    /// Live node count.
    pub(crate) fn alive_count(&self) -> usize {
        self.bus.alive().count()
    }

    pub(crate) fn is_alive(&self, id: Id) -> bool {
        self.bus.is_alive(id)
    }

    /// Every node's active view, indexed by id (empty for dead nodes).
    pub(crate) fn active_views(&self) -> Vec<Vec<Id>> {
        (0..self.spec.nodes as Id)
            .map(|i| self.bus.node(i).map(|n| n.active_view()).unwrap_or_default())
            .collect()
    }

    /// Live nodes that know a way to `origin`: those from which a chain of
    /// live peers, each in the previous one's active or passive view, leads
    /// to `origin`. HyParView only ever connects a node to peers it knows,
    /// so a survivor outside this set (its views hold only failed nodes, or
    /// only other such survivors) comes back only if a live node that still
    /// lists it happens to promote it, or through a fresh join.
    pub(crate) fn reachable_from(&self, origin: Id) -> usize {
        if !self.bus.is_alive(origin) {
            return 0;
        }
        let n = self.spec.nodes;
        let mut adjacent: Vec<Vec<Id>> = vec![Vec::new(); n];
        for id in self.bus.alive() {
            let node = self.bus.node(id).expect("alive");
            for peer in node.active_view().into_iter().chain(node.passive_view()) {
                if peer != id && self.bus.is_alive(peer) {
                    // Reversed: `id` knows `peer`, so `id` can reach it.
                    adjacent[peer as usize].push(id);
                }
            }
        }
        let mut seen = vec![false; n];
        seen[origin as usize] = true;
        let mut todo = vec![origin];
        let mut count = 0;
        while let Some(id) = todo.pop() {
            count += 1;
            for &peer in &adjacent[id as usize] {
                if !seen[peer as usize] {
                    seen[peer as usize] = true;
                    todo.push(peer);
                }
            }
        }
        count
    }

    /// Crashes every node in `ids` at this instant.
    pub(crate) fn crash(&mut self, ids: &[Id]) {
        for &id in ids {
            self.bus.crash(id);
        }
    }

    fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for id in self.bus.alive() {
            let s = self.bus.node(id).expect("alive").stats();
            t.control += s.control_sent.messages;
            t.ihave += s.plumtree.sent.ihave;
            t.acks += s.plumtree.sent.ignored_ihave;
        }
        t
    }

    /// Broadcasts from `origin` now, runs until the broadcast is quiescent
    /// (no broadcast frame in flight, every node idle; membership traffic
    /// goes on meanwhile), and measures it.
    pub(crate) fn broadcast(&mut self, origin: Id) -> Shot {
        for (i, seen) in self.payload_seen.iter_mut().enumerate() {
            *seen = self.bus.node(i as Id).map_or(0, |n| n.stats().payload_sent.messages);
        }
        let before = self.totals();
        let alive = self.alive_count();
        let id = self
            .bus
            .broadcast(origin, Bytes::from_static(b"epidemic sim payload"))
            .expect("the origin is alive and the payload small");
        // Far beyond any repair path (lazy ticks are 1 s): a broadcast that
        // has not settled by then is measured as it stands.
        self.bus.run_until_quiescent(Duration::from_secs(600));
        let report = self.bus.report(&id).expect("tracked by the bus");
        let loads: Vec<u32> = (0..self.spec.nodes)
            .map(|i| {
                let now = self.bus.node(i as Id).map_or(0, |n| n.stats().payload_sent.messages);
                now.saturating_sub(self.payload_seen[i]) as u32
            })
            .collect();
        let after = self.totals();
        self.bus.metrics_mut().clear();
        Shot {
            alive,
            delivered: report.delivered,
            payload: loads.iter().map(|&l| u64::from(l)).sum(),
            control: after.control - before.control,
            ihave: after.ihave - before.ihave,
            acks: after.acks - before.acks,
            ldh: report.ldh,
            duplicates: report.duplicates as u64,
            loads,
        }
    }

    /// The membership step of a cycle: one shuffle interval.
    pub(crate) fn membership_step(&mut self) {
        self.bus.run_for(self.spec.shuffle_interval);
    }
}
