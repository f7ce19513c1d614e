//! The bus: node table, event queues, links and faults.

use crate::Id;
use crate::disk::Disk;
use crate::metrics::{BroadcastReport, Metrics};
use bytes::Bytes;
use epidemic_core::broadcast::BroadcastError;
use epidemic_core::metadata::{FullPrefix, PutId};
use epidemic_core::node::{BroadcastId, Config, Event, LinkEvent, Node};
use epidemic_core::wire::{HEADER_LEN, Kind};
use epidemic_core::{Duration, Instant};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet, VecDeque};

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

/// How long a frame takes from sender to receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Latency {
    /// Always this long.
    Fixed(Duration),
    /// Uniform in `[min, max]`, drawn per frame.
    Uniform {
        /// Shortest.
        min: Duration,
        /// Longest.
        max: Duration,
    },
}

/// The bus's settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BusConfig {
    /// Seeds latency, drops and every node's seed.
    pub seed: u64,
    /// Per-frame latency.
    pub latency: Latency,
    /// Probability that a frame is silently lost, in `[0, 1]`.
    pub drop_probability: f64,
    /// How long after a link breaks (crash, partition, dead destination) its
    /// surviving end hears [`LinkEvent::Down`].
    pub detection_delay: Duration,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            seed: 0,
            // A few milliseconds: a LAN or a single cloud region.
            latency: Latency::Uniform {
                min: Duration::from_millis(1),
                max: Duration::from_millis(10),
            },
            drop_probability: 0.0,
            // A keep-alive or connect timeout of about a second.
            detection_delay: Duration::from_secs(1),
        }
    }
}

impl BusConfig {
    /// Sets the seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the latency model.
    pub fn with_latency(mut self, latency: Latency) -> Self {
        self.latency = latency;
        self
    }

    /// Sets the drop probability.
    pub fn with_drop_probability(mut self, p: f64) -> Self {
        self.drop_probability = p;
        self
    }

    /// Sets the failure detection delay.
    pub fn with_detection_delay(mut self, d: Duration) -> Self {
        self.detection_delay = d;
        self
    }
}

/// An application-facing event the bus saw while
/// [`Bus::set_observing`] was on: what a test harness needs to check a run
/// against a model (the chaos sweep's acknowledged history and delivery
/// log).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Observation {
    /// Node `at`, in its life `incarnation`, emitted
    /// [`Event::Delivered`] for `id`.
    Delivered {
        /// The node that delivered.
        at: Id,
        /// Its incarnation (bumped at every crash).
        incarnation: u32,
        /// The broadcast.
        id: BroadcastId<Id>,
    },
    /// Node `at` emitted [`Event::PutDurable`]: the put or delete is
    /// acknowledged.
    PutDurable {
        /// The node that coordinated the write.
        at: Id,
        /// The id its `put` or `delete` returned.
        put: PutId,
    },
    /// Node `at` persisted the removal of a key: it garbage-collected the
    /// object it had stored there, `object` (encoded, as persisted).
    Collected {
        /// The node that collected.
        at: Id,
        /// The key's full prefix.
        prefix: FullPrefix,
        /// The key.
        key: Bytes,
        /// The object it held until then.
        object: Bytes,
    },
}

/// The peers a node has an established link with, sorted: every delivered
/// frame checks membership here, and a sorted vector answers from one or two
/// cache lines where a B-tree walked several (it was the simulator's largest
/// single cost at 10,000 nodes).
#[derive(Default)]
struct Links(Vec<Id>);

impl Links {
    /// Adds `peer`; whether it was new.
    fn insert(&mut self, peer: Id) -> bool {
        match self.0.binary_search(&peer) {
            Ok(_) => false,
            Err(at) => {
                self.0.insert(at, peer);
                true
            }
        }
    }

    /// Removes `peer`; whether it was there.
    fn remove(&mut self, peer: &Id) -> bool {
        match self.0.binary_search(peer) {
            Ok(at) => {
                self.0.remove(at);
                true
            }
            Err(_) => false,
        }
    }

    fn iter(&self) -> std::slice::Iter<'_, Id> {
        self.0.iter()
    }
}

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

enum What {
    Frame {
        from: Id,
        to: Id,
        from_inc: u32,
        to_inc: u32,
        frame: Vec<u8>,
    },
    Link {
        at: Id,
        at_inc: u32,
        peer: Id,
        event: LinkEvent,
    },
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
            let node = Node::new(id, config.clone().with_seed(self.rng.random()));
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
        slot.node = Some(Node::new(
            id,
            slot.config.clone().with_seed(seed).with_incarnation(slot.incarnation),
        ));
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
        let mut node = Node::new(
            id,
            slot.config.clone().with_seed(seed).with_incarnation(slot.incarnation),
        );
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

    /// Runs every event up to `now + d`, then sets the clock there.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some(at) = self.next_at() {
            if at > end {
                break;
            }
            self.step();
        }
        self.now = self.now.max(end);
    }

    /// Runs until no broadcast frame (Plumtree or metadata) is in flight and
    /// every live node is idle ([`Node::is_idle`]); periodic membership
    /// traffic (shuffles, their replies, link events) keeps flowing meanwhile
    /// and does not count, since in a large cluster some of it is always in
    /// flight. Returns false if `limit` of virtual time passed first.
    pub fn run_until_quiescent(&mut self, limit: Duration) -> bool {
        let end = self.now + limit;
        loop {
            if self.broadcast_in_flight == 0 && self.settle_touched() {
                return true;
            }
            match self.next_at() {
                Some(at) if at <= end => {
                    self.step();
                }
                _ => {
                    self.now = self.now.max(end);
                    return false;
                }
            }
        }
    }

    /// Asks the nodes touched since the last call whether they are idle;
    /// whether every live node now is. A node that is not touched again keeps
    /// its answer, so a node waiting on a timer is not asked after every
    /// event.
    fn settle_touched(&mut self) -> bool {
        for id in std::mem::take(&mut self.touched) {
            let slot = &mut self.slots[id as usize];
            slot.touched = false;
            let busy = slot.node.as_ref().is_some_and(|n| !n.is_idle());
            if busy != slot.busy {
                slot.busy = busy;
                if busy {
                    self.busy += 1;
                } else {
                    self.busy -= 1;
                }
            }
        }
        self.busy == 0
    }

    /// Processes the single next event (frame, link event or deadline).
    /// Returns false if there is none.
    pub fn step(&mut self) -> bool {
        let q = self.queue.peek().map(|Reverse((at, ..))| *at);
        let t = self.timers.peek().map(|Reverse((at, ..))| *at);
        match (q, t) {
            (None, None) => false,
            (Some(q), Some(t)) if t < q => self.fire_timer(),
            (Some(_), _) => {
                let Reverse((at, _, slot)) = self.queue.pop().expect("peeked");
                let what = self.scheduled[slot as usize].take().expect("scheduled once");
                self.free.push(slot);
                if let What::Frame { frame, .. } = &what {
                    self.broadcast_in_flight -= usize::from(is_broadcast(frame));
                }
                self.now = self.now.max(at);
                self.deliver(what);
                true
            }
            (None, Some(_)) => self.fire_timer(),
        }
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

    // ---- internals --------------------------------------------------------

    fn next_at(&self) -> Option<Instant> {
        let q = self.queue.peek().map(|Reverse((at, ..))| *at);
        let t = self.timers.peek().map(|Reverse((at, ..))| *at);
        match (q, t) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn fire_timer(&mut self) -> bool {
        let Reverse((at, id, inc)) = self.timers.pop().expect("peeked");
        let slot = &mut self.slots[id as usize];
        if slot.incarnation != inc || slot.armed != Some(at) {
            return true; // superseded
        }
        slot.armed = None;
        self.now = self.now.max(at);
        let now = self.now;
        if let Some(node) = slot.node.as_mut() {
            node.handle_timeout(now);
            self.drain(id);
        }
        true
    }

    fn push(&mut self, at: Instant, what: What) {
        if let What::Frame { frame, .. } = &what {
            self.broadcast_in_flight += usize::from(is_broadcast(frame));
        }
        self.seq += 1;
        let slot = match self.free.pop() {
            Some(slot) => {
                self.scheduled[slot as usize] = Some(what);
                slot
            }
            None => {
                self.scheduled.push(Some(what));
                (self.scheduled.len() - 1) as u32
            }
        };
        self.queue.push(Reverse((at, self.seq, slot)));
    }

    fn schedule_down(&mut self, at: Instant, node: Id, peer: Id) {
        if self.pending_down.insert((node, peer)) {
            let at_inc = self.slots[node as usize].incarnation;
            self.push(
                at,
                What::Link {
                    at: node,
                    at_inc,
                    peer,
                    event: LinkEvent::Down,
                },
            );
        }
    }

    fn latency(&mut self) -> Duration {
        match self.config.latency {
            Latency::Fixed(d) => d,
            Latency::Uniform { min, max } => Duration::from_micros(
                self.rng
                    .random_range(min.as_micros()..=max.as_micros().max(min.as_micros())),
            ),
        }
    }

    fn partitioned(&self, a: Id, b: Id) -> bool {
        self.partition.as_ref().is_some_and(|g| g[a as usize] != g[b as usize])
    }

    /// Moves a node's outputs onto the bus.
    fn drain(&mut self, id: Id) {
        let now = self.now;
        let mut persisted = Vec::new();
        let from_inc = self.slots[id as usize].incarnation;
        loop {
            let Some(node) = self.slots[id as usize].node.as_mut() else {
                return;
            };
            let Some(t) = node.poll_transmit() else { break };
            if self.config.drop_probability > 0.0 && self.rng.random_bool(self.config.drop_probability) {
                self.dropped_frames += 1;
                continue;
            }
            let mut at = now + self.latency();
            let arrivals = &mut self.slots[id as usize].arrivals;
            arrivals.retain(|&(_, last)| last > now);
            match arrivals.iter_mut().find(|(to, _)| *to == t.to) {
                Some((_, last)) => {
                    at = at.max(*last);
                    *last = at;
                }
                None => arrivals.push((t.to, at)),
            }
            let to_inc = self.slots.get(t.to as usize).map_or(0, |s| s.incarnation);
            self.push(
                at,
                What::Frame {
                    from: id,
                    to: t.to,
                    from_inc,
                    to_inc,
                    frame: t.frame,
                },
            );
        }
        loop {
            let Some(node) = self.slots[id as usize].node.as_mut() else {
                return;
            };
            let Some(event) = node.poll_event() else { break };
            match &event {
                Event::Delivered { id: bid, hops, .. } => {
                    self.metrics.delivered(bid, id, *hops, now);
                    if let Some(log) = &mut self.observations {
                        log.push(Observation::Delivered {
                            at: id,
                            incarnation: from_inc,
                            id: bid.clone(),
                        });
                    }
                }
                Event::Persist(record) => persisted.push(record.clone()),
                Event::PutDurable(put) => {
                    if let Some(log) = &mut self.observations {
                        log.push(Observation::PutDurable { at: id, put: *put });
                    }
                }
                _ => {}
            }
        }
        if !persisted.is_empty() {
            // A synchronous disk: write, confirm, and drain what the
            // confirmations release.
            let slot = &mut self.slots[id as usize];
            for record in &persisted {
                if let (None, Some(log)) = (&record.object, &mut self.observations) {
                    if let Some(object) = slot.disk.get(&record.prefix, &record.key) {
                        log.push(Observation::Collected {
                            at: id,
                            prefix: record.prefix.clone(),
                            key: record.key.clone(),
                            object: object.clone(),
                        });
                    }
                }
                slot.disk.apply(record);
            }
            if let Some(node) = slot.node.as_mut() {
                for record in persisted {
                    node.persisted(now, record.id);
                }
            }
            return self.drain(id);
        }
        let slot = &mut self.slots[id as usize];
        if let Some(deadline) = slot.node.as_ref().and_then(Node::poll_timeout) {
            if slot.armed != Some(deadline) {
                slot.armed = Some(deadline);
                self.timers.push(Reverse((deadline, id, slot.incarnation)));
            }
        }
        // Every input ends here: the node may have work now.
        if !slot.touched {
            slot.touched = true;
            self.touched.push(id);
        }
    }

    fn deliver(&mut self, what: What) {
        let now = self.now;
        match what {
            What::Frame {
                from,
                to,
                from_inc,
                to_inc,
                frame,
            } => {
                let Some(to_slot) = self.slots.get(to as usize) else {
                    return;
                };
                let sender_alive = self.slots[from as usize].incarnation == from_inc && self.is_alive(from);
                if !sender_alive {
                    // Sent by a past life: its connection died with it.
                    self.lost_frames += 1;
                    return;
                }
                if to_slot.node.is_none() || to_slot.incarnation != to_inc || self.partitioned(from, to) {
                    self.lost_frames += 1;
                    self.slots[from as usize].links.remove(&to);
                    self.schedule_down(now + self.config.detection_delay, from, to);
                    return;
                }
                if self.slots[to as usize].links.insert(from) {
                    self.slots[from as usize].links.insert(to);
                    self.notify(to, from, LinkEvent::Up);
                    self.notify(from, to, LinkEvent::Up);
                }
                let node = self.slots[to as usize].node.as_mut().expect("checked alive");
                if node.handle_frame(now, from, &frame).is_err() {
                    // A malformed frame closes that one link.
                    self.refused_frames += 1;
                    self.slots[to as usize].links.remove(&from);
                    self.slots[from as usize].links.remove(&to);
                    self.notify(to, from, LinkEvent::Down);
                    self.schedule_down(now + self.config.detection_delay, from, to);
                }
                self.drain(to);
            }
            What::Link {
                at,
                at_inc,
                peer,
                event,
            } => {
                if event == LinkEvent::Down {
                    self.pending_down.remove(&(at, peer));
                }
                if self.slots[at as usize].incarnation == at_inc {
                    self.notify(at, peer, event);
                }
            }
        }
    }

    fn notify(&mut self, at: Id, peer: Id, event: LinkEvent) {
        let now = self.now;
        if let Some(node) = self.slots[at as usize].node.as_mut() {
            node.handle_link(now, peer, event);
            self.drain(at);
        }
    }
}

/// Whether a frame carries broadcast traffic (by its header's kind byte), as
/// opposed to membership traffic, which never quiesces in a live cluster.
fn is_broadcast(frame: &[u8]) -> bool {
    frame.len() >= HEADER_LEN && matches!(Kind::from_u8(frame[1]), Some(Kind::Plumtree | Kind::Metadata))
}
