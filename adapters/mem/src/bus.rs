//! The bus: node table, event queues, links and faults.
//!
//! This file holds the [`Bus`] itself, its node table and the commands that
//! drive nodes (adding, joining, broadcasting, observing). The rest is split
//! by domain:
//!
//! - `config`: the bus's settings ([`BusConfig`], [`Latency`]) and what it
//!   reports to an observer ([`Observation`]);
//! - `links`: the table of a node's established links;
//! - `faults`: fault injection: crashes, restarts (wiped or from disk),
//!   partitions and frame loss;
//! - `queue`: the event queue, timers and the run loops that step through
//!   them;
//! - `deliver`: moving a node's outputs onto the bus and delivering frames
//!   and link events to nodes.

use crate::Id;
use crate::disk::Disk;
use crate::metrics::{BroadcastReport, Metrics};
use bytes::Bytes;
use epidemic_core::broadcast::BroadcastError;
use epidemic_core::node::{BroadcastId, Config, Node};
use epidemic_core::{Duration, Instant};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet, VecDeque};

mod config;
mod deliver;
mod faults;
mod links;
mod queue;

pub use config::{BusConfig, Latency, Observation};
use links::Links;
use queue::What;

/// Why the bus refused a command.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BusError {
    /// The node is crashed (or was never added).
    Dead(Id),
    /// The node refused the broadcast.
    Broadcast(BroadcastError),
}

impl From<BroadcastError> for BusError {
    fn from(e: BroadcastError) -> Self {
        BusError::Broadcast(e)
    }
}

impl std::fmt::Display for BusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BusError::Dead(id) => write!(f, "node {id} is not alive"),
            BusError::Broadcast(e) => write!(f, "broadcast refused: {e}"),
        }
    }
}

impl std::error::Error for BusError {}

struct Slot {
    node: Option<Node<Id>>,
    /// Bumped on every crash, so frames and timers of a past life are void.
    incarnation: u32,
    /// Peers with an established link.
    links: Links,
    /// The deadline currently queued for this node, if any.
    armed: Option<Instant>,
    /// Latest scheduled arrival per destination, for links with a frame
    /// from this node still in flight: frames on one link arrive in order,
    /// as on a TCP connection or a QUIC stream. An arrival in the past
    /// constrains nothing, so those entries are dropped and the list stays
    /// as short as the node's links in use (a map of every pair that ever
    /// talked grew without bound and dominated the send path).
    arrivals: Vec<(Id, Instant)>,
    /// Its persisted metadata; survives crashes.
    disk: Disk,
    /// Whether the node is in `Bus::touched`.
    touched: bool,
    /// Whether the node was not idle ([`Node::is_idle`]) when last asked.
    busy: bool,
    config: Config,
}

/// N nodes on virtual time. See the [crate docs](crate).
pub struct Bus {
    config: BusConfig,
    now: Instant,
    rng: Xoshiro256PlusPlus,
    slots: Vec<Slot>,
    /// Scheduled deliveries and link events by (time, insertion order),
    /// naming their slot in `scheduled`: the heap moves 24-byte keys, not
    /// whole events with their frames.
    queue: BinaryHeap<Reverse<(Instant, u64, u32)>>,
    /// The events `queue` names; `None` once delivered.
    scheduled: Vec<Option<What>>,
    /// Free slots of `scheduled`.
    free: Vec<u32>,
    timers: BinaryHeap<Reverse<(Instant, Id, u32)>>,
    /// (node, peer) pairs with a `Down` already scheduled, so a burst of
    /// sends to a dead peer yields one notification.
    pending_down: HashSet<(Id, Id)>,
    /// Group per node while partitioned.
    partition: Option<Vec<u32>>,
    seq: u64,
    /// Nodes that took an input since they were last asked whether they are
    /// idle ([`Node::is_idle`]). Idleness changes only through inputs, so
    /// quiescence asks only these, and only once no broadcast frame is in
    /// flight: not a scan of every node after every event, nor a question
    /// after every input.
    touched: Vec<Id>,
    /// Live nodes with `busy` set.
    busy: usize,
    /// Broadcast frames (Plumtree and metadata) queued and not yet handled.
    broadcast_in_flight: usize,
    metrics: Metrics,
    /// What the nodes emitted, while observing.
    observations: Option<Vec<Observation>>,
    /// Malformed frames refused by receivers (each closes its link).
    pub refused_frames: u64,
    /// Frames lost to the drop probability.
    pub dropped_frames: u64,
    /// Frames lost because the receiver was dead or partitioned away.
    pub lost_frames: u64,
}

impl Bus {
    /// An empty bus at time zero.
    pub fn new(config: BusConfig) -> Self {
        Bus {
            rng: Xoshiro256PlusPlus::seed_from_u64(config.seed),
            config,
            now: Instant::ZERO,
            slots: Vec::new(),
            queue: BinaryHeap::new(),
            scheduled: Vec::new(),
            free: Vec::new(),
            timers: BinaryHeap::new(),
            pending_down: HashSet::new(),
            partition: None,
            seq: 0,
            touched: Vec::new(),
            busy: 0,
            broadcast_in_flight: 0,
            metrics: Metrics::default(),
            observations: None,
            refused_frames: 0,
            dropped_frames: 0,
            lost_frames: 0,
        }
    }

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Number of node slots, dead or alive.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the bus has no nodes.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Adds `n` nodes built from `config` (each with its own seed drawn from
    /// the bus's), returning the first new id.
    pub fn add_nodes(&mut self, n: usize, config: &Config) -> Id {
        let first = self.slots.len() as Id;
        for _ in 0..n {
            let id = self.slots.len() as Id;
            let node = Node::new(id, faults::life(config, self.rng.random(), config.incarnation));
            self.slots.push(Slot {
                node: Some(node),
                incarnation: 0,
                links: Links::default(),
                armed: None,
                arrivals: Vec::new(),
                touched: false,
                busy: false,
                disk: Disk::default(),
                config: config.clone(),
            });
            self.metrics.grow(self.slots.len());
        }
        first
    }

    /// The node `id`, if it is alive.
    pub fn node(&self, id: Id) -> Option<&Node<Id>> {
        self.slots.get(id as usize).and_then(|s| s.node.as_ref())
    }

    /// Whether node `id` is alive.
    pub fn is_alive(&self, id: Id) -> bool {
        self.node(id).is_some()
    }

    /// Ids of the live nodes.
    pub fn alive(&self) -> impl Iterator<Item = Id> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.node.is_some())
            .map(|(i, _)| i as Id)
    }

    /// Applies `f` to node `id` (if alive) and drains its outputs.
    pub fn with_node<R>(&mut self, id: Id, f: impl FnOnce(&mut Node<Id>, Instant) -> R) -> Option<R> {
        let now = self.now;
        let node = self.slots.get_mut(id as usize)?.node.as_mut()?;
        let r = f(node, now);
        self.drain(id);
        Some(r)
    }

    /// Node `id` joins through `contacts`.
    pub fn join(&mut self, id: Id, contacts: impl IntoIterator<Item = Id>) {
        let contacts: Vec<Id> = contacts.into_iter().collect();
        self.with_node(id, |n, now| n.join(now, contacts));
    }

    /// Every node but the first joins through a random earlier node, one
    /// after another, `gap` apart: the paper's growing overlay.
    pub fn join_each_via_random_earlier(&mut self, gap: Duration) {
        for id in 1..self.slots.len() as Id {
            let contact = self.rng.random_range(0..id);
            self.join(id, [contact]);
            self.run_for(gap);
        }
    }

    /// Broadcasts from `id`; the id is tracked in the metrics.
    pub fn broadcast(&mut self, id: Id, payload: Bytes) -> Result<BroadcastId<Id>, BusError> {
        let alive = self.alive().count();
        let r = self
            .with_node(id, |n, now| n.broadcast(now, payload))
            .ok_or(BusError::Dead(id))??;
        self.metrics.start(r.clone(), id, alive, self.now);
        Ok(r)
    }

    /// The delivery report of a tracked broadcast.
    pub fn report(&self, id: &BroadcastId<Id>) -> Option<BroadcastReport> {
        self.metrics.report(id)
    }

    /// The metrics collector.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The metrics collector, to [`clear`](Metrics::clear) it in long runs.
    pub fn metrics_mut(&mut self) -> &mut Metrics {
        &mut self.metrics
    }

    /// Turns the observation log on or off (off by default: long
    /// simulations would fill it). While on, deliveries, durable puts and
    /// collections are kept until [`Bus::take_observations`].
    pub fn set_observing(&mut self, on: bool) {
        self.observations = on.then(Vec::new);
    }

    /// What was observed since the last call, in order.
    pub fn take_observations(&mut self) -> Vec<Observation> {
        self.observations.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Node `id`'s incarnation: how many times it crashed.
    pub fn incarnation(&self, id: Id) -> Option<u32> {
        self.slots.get(id as usize).map(|s| s.incarnation)
    }

    /// The largest connected components of the live nodes' active views,
    /// largest first.
    pub fn components(&self) -> Vec<Vec<Id>> {
        let mut seen = vec![false; self.slots.len()];
        let mut out = Vec::new();
        for start in self.alive().collect::<Vec<_>>() {
            if seen[start as usize] {
                continue;
            }
            let mut comp = Vec::new();
            let mut todo = VecDeque::from([start]);
            seen[start as usize] = true;
            while let Some(n) = todo.pop_front() {
                comp.push(n);
                let Some(node) = self.node(n) else { continue };
                for p in node.active_view() {
                    // Edges count in either direction: the overlay graph is
                    // what messages can follow.
                    if self.is_alive(p) && !seen[p as usize] {
                        seen[p as usize] = true;
                        todo.push_back(p);
                    }
                }
            }
            out.push(comp);
        }
        out.sort_by_key(|c| std::cmp::Reverse(c.len()));
        out
    }
}
