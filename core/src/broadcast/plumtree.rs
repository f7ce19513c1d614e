//! The Plumtree engine.

use super::bounded::BoundedMap;
use super::config::{Config, TreeMode};
use super::missing::{Fired, Missing};
use super::peer::{Peer, Pending};
use super::roots::Trees;
use super::stats::Stats;
use super::{Announcement, BroadcastError, Event, Graft, Handler, Message, MessageId};
use crate::identity::Identity;
use crate::rng::{self, Rng};
use crate::time::{Duration, Instant};
use crate::wire::WireError;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use bytes::Bytes;

mod lazy;

/// How a delivered message reached us.
struct Received<I> {
    root: I,
    /// The optimisation's memory (§3.8): the shortest path known to us, by
    /// round and neighbour; updated when a shorter one is announced.
    round: u32,
    from: I,
    /// Whether the copy we delivered came from a peer in our eager set for
    /// `root` (or by a graft, which makes the peer eager). When it did not,
    /// it was a push still in flight from a peer we had already pruned, and
    /// the copy our eager parent sends next is no reason to prune the parent.
    by_tree: bool,
}

/// A Plumtree node: eager/lazy sets, the missing and outstanding sets, and
/// the lazy queues, driven by its caller.
///
/// The engine is pure: it reads no clock, does no I/O and draws randomness
/// only from the seed given to [`new`](Self::new), so the same seed and the
/// same inputs always give the same outputs. Its methods come in four groups
/// (as quinn-proto's `Connection`):
///
/// - **Getters:** [`eager_peers`](Self::eager_peers),
///   [`lazy_peers`](Self::lazy_peers), [`neighbors`](Self::neighbors),
///   [`stats`](Self::stats).
/// - **Inputs:** [`neighbor_up`](Self::neighbor_up) and
///   [`neighbor_down`](Self::neighbor_down) from the membership layer,
///   [`handle_message`](Self::handle_message) for every decoded message,
///   [`handle_timeout`](Self::handle_timeout) when the deadline from
///   [`poll_timeout`](Self::poll_timeout) has passed.
/// - **Command:** [`broadcast`](Self::broadcast).
/// - **Outputs:** [`poll_transmit`](Self::poll_transmit),
///   [`poll_event`](Self::poll_event), [`poll_timeout`](Self::poll_timeout).
///
/// After every input or command, drain the outputs: transmits and events
/// until `None`, then ask for the next deadline. `now` must never go
/// backwards. Nothing a peer sends can make the engine panic or grow a
/// structure past its [`Config`] bound.
pub struct Plumtree<I, M> {
    me: I,
    config: Config,
    rng: Rng,
    /// Sorted, for binary search.
    neighbors: Vec<I>,
    trees: Trees<I>,
    /// Lazy queue and outstanding set of each neighbour that has any.
    peers: BTreeMap<I, Peer<I, M>>,
    received: BoundedMap<M, Received<I>>,
    /// Per root, the neighbour that last delivered one of its messages by
    /// the tree: our parent in that tree. `None` once that parent went down
    /// and until a message of the root arrives by the tree again: the root
    /// is orphaned, and its announcements are grafted at once.
    parents: BoundedMap<I, Option<I>>,
    missing: Missing<I, M>,
    /// Messages delivered or originated lately, oldest first, for
    /// announcing to neighbours that come up ([`Config::catch_up_window`]).
    recent: VecDeque<(Instant, Announcement<I, M>)>,
    dispatch_at: Option<Instant>,
    lazy_tick_at: Option<Instant>,
    transmits: VecDeque<(I, Message<I, M>)>,
    events: VecDeque<Event<I, M>>,
    stats: Stats,
}

impl<I: Identity, M: MessageId> Plumtree<I, M> {
    /// A node called `me`, with randomness from `seed`.
    pub fn new(me: I, config: Config, seed: u64) -> Self {
        Plumtree {
            me,
            rng: rng::from_seed(seed),
            neighbors: Vec::new(),
            trees: Trees::new(config.tree),
            peers: BTreeMap::new(),
            received: BoundedMap::new(config.max_received),
            parents: BoundedMap::new(parent_capacity(config.tree)),
            missing: Missing::new(config.max_missing, config.max_announcers),
            recent: VecDeque::new(),
            dispatch_at: None,
            lazy_tick_at: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            config,
        }
    }

    // ----- getters -----

    /// This node's identity.
    pub fn me(&self) -> &I {
        &self.me
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Current neighbours, sorted.
    pub fn neighbors(&self) -> &[I] {
        &self.neighbors
    }

    /// The eager peers for messages from `root` (the shared set if `root` is
    /// not tracked). Does not count as a use of `root` for the LRU.
    pub fn eager_peers(&self, root: &I) -> impl Iterator<Item = &I> + '_ {
        self.trees.peek(root).eager.iter()
    }

    /// The lazy peers for messages from `root`; see
    /// [`eager_peers`](Self::eager_peers).
    pub fn lazy_peers(&self, root: &I) -> impl Iterator<Item = &I> + '_ {
        self.trees.peek(root).lazy.iter()
    }

    /// Whether `root` has sets of its own (always false with
    /// [`TreeMode::Shared`](super::TreeMode::Shared)).
    pub fn is_tracked(&self, root: &I) -> bool {
        self.trees.is_tracked(root)
    }

    /// Whether no broadcast work is pending: nothing to send, no announcement
    /// queued or unacknowledged, no message awaited. Drivers use it to tell
    /// when a simulated broadcast has settled.
    pub fn is_idle(&self) -> bool {
        self.transmits.is_empty()
            && self.missing.len() == 0
            && self
                .peers
                .values()
                .all(|p| p.queue.is_empty() && p.outstanding.is_empty())
    }

    /// Counters and the current size of every bounded structure.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats.clone();
        s.roots_evicted = self.trees.evicted;
        s.neighbors = self.neighbors.len();
        s.tracked_roots = self.trees.tracked();
        s.missing = self.missing.len();
        s.max_announcers = self.missing.max_announcers_len();
        for peer in self.peers.values() {
            s.outstanding += peer.outstanding.len();
            s.max_outstanding = s.max_outstanding.max(peer.outstanding.len());
            s.lazy_queue += peer.queue.len();
            s.max_lazy_queue = s.max_lazy_queue.max(peer.queue.len());
        }
        s.received_cache = self.received.len();
        s.catch_up_recent = self.recent.len();
        s.pending_transmits = self.transmits.len();
        s.pending_events = self.events.len();
        s
    }

    /// Checks a decoded message against the limits of `config`: payload size
    /// and list lengths (non-empty, at most
    /// [`Config::max_ihave_batch`]). [`handle_message`](Self::handle_message)
    /// runs the same check and drops what fails it; a driver can call this
    /// first to report the peer.
    pub fn validate(msg: &Message<I, M>, config: &Config) -> Result<(), WireError> {
        let batch = config.max_ihave_batch.max(1);
        match msg {
            Message::Gossip { payload, .. } if payload.len() > config.max_payload => {
                Err(WireError::Invalid("gossip payload exceeds max_payload"))
            }
            Message::IHave { announcements } if announcements.is_empty() => Err(WireError::Invalid("empty IHAVE")),
            Message::IHave { announcements } if announcements.len() > batch => {
                Err(WireError::Invalid("IHAVE exceeds max_ihave_batch"))
            }
            Message::IgnoredIHave { ids } if ids.is_empty() => Err(WireError::Invalid("empty IGNORED_IHAVE")),
            Message::IgnoredIHave { ids } if ids.len() > batch => {
                Err(WireError::Invalid("IGNORED_IHAVE exceeds max_ihave_batch"))
            }
            _ => Ok(()),
        }
    }

    // ----- inputs -----

    /// A neighbour came up (from the membership layer). It joins the eager
    /// set (the paper's dynamic membership). With
    /// [`Config::initial_eager_fanout`] `= Some(k)` it joins the eager set
    /// while that has fewer than `k` members; after that the shared eager set
    /// is kept a uniform random sample of the neighbours (reservoir
    /// sampling: the newcomer replaces a random member with probability
    /// `k / neighbours`), so which peers are eager does not depend on the
    /// order they came up in. The others go lazy, up to
    /// [`Config::initial_lazy_fanout`]. Every tracked root places the
    /// newcomer by the same caps, without displacing anyone. The newcomer is
    /// announced the messages of the last [`Config::catch_up_window`].
    pub fn neighbor_up(&mut self, now: Instant, peer: I) {
        if peer == self.me {
            return;
        }
        let Err(at) = self.neighbors.binary_search(&peer) else {
            return;
        };
        self.neighbors.insert(at, peer.clone());
        let (eager, lazy) = (self.config.initial_eager_fanout, self.config.initial_lazy_fanout);
        self.trees
            .add_neighbor(&peer, self.neighbors.len(), eager, lazy, &mut self.rng);
        self.catch_up(now, peer);
    }

    /// A neighbour went down. It leaves every set; its lazy queue and
    /// outstanding set are dropped and it is no longer an announcer of any
    /// missing message (paper §3.7: the tree is repaired by grafting when
    /// announcements from others time out).
    pub fn neighbor_down(&mut self, now: Instant, peer: &I) {
        if let Ok(at) = self.neighbors.binary_search(peer) {
            self.neighbors.remove(at);
        }
        let eager_cap = self.config.initial_eager_fanout;
        self.trees
            .remove_neighbor(peer, &self.neighbors, eager_cap, &mut self.rng);
        self.peers.remove(peer);
        self.missing.remove_peer(peer);
        // The roots whose parent this was get their messages only through
        // announcements now: graft what is already announced, and whatever
        // is announced next, without waiting for `ihave_timeout`, which
        // exists to give a push on the way time to arrive, and none will.
        let orphaned: Vec<I> = self
            .parents
            .iter()
            .filter(|(_, parent)| parent.as_ref() == Some(peer))
            .map(|(root, _)| root.clone())
            .collect();
        for root in &orphaned {
            if let Some(parent) = self.parents.get_mut(root) {
                *parent = None;
            }
        }
        if !orphaned.is_empty() {
            self.missing.expedite(now, |root| orphaned.contains(root));
        }
    }

    /// Whether `root`'s parent went down and no message of it came by the
    /// tree since.
    fn is_orphaned(&self, root: &I) -> bool {
        matches!(self.parents.get(root), Some(None))
    }

    /// Handles a message from `from`. Messages that break a limit (see
    /// [`validate`](Self::validate)) or claim to come from ourselves are
    /// counted in [`Stats::invalid`] and dropped without touching any state.
    ///
    /// Messages from peers that are not neighbours are processed (a payload
    /// is a payload) but never add them to a set: only the membership layer
    /// decides who is a neighbour.
    pub fn handle_message(&mut self, now: Instant, from: I, msg: Message<I, M>, h: &mut impl Handler<M>) {
        if Self::validate(&msg, &self.config).is_err() {
            self.stats.invalid += 1;
            return;
        }
        self.handle_validated(now, from, msg, h);
    }

    /// [`handle_message`](Self::handle_message) for a message the caller
    /// has validated already (the node validates every frame once, when it
    /// decodes it).
    pub(crate) fn handle_validated(&mut self, now: Instant, from: I, msg: Message<I, M>, h: &mut impl Handler<M>) {
        if from == self.me {
            self.stats.invalid += 1;
            return;
        }
        match msg {
            Message::Gossip {
                id,
                root,
                round,
                payload,
            } => self.on_gossip(now, from, (id, root, round, payload), h),
            Message::IHave { announcements } => self.on_ihave(now, from, announcements, h),
            Message::Graft { id, root, round } => self.on_graft(from, id, root, round, h),
            Message::Attach { root } => {
                self.stats.received.attach += 1;
                if self.is_neighbor(&from) {
                    self.trees.set_eager(&root, &from);
                }
            }
            Message::Prune { root } => {
                // §3.6: the sender got a duplicate from us.
                self.stats.received.prune += 1;
                if self.is_neighbor(&from) {
                    self.trees.set_lazy(&root, &from);
                }
            }
            Message::IgnoredIHave { ids } => {
                self.stats.received.ignored_ihave += 1;
                if let Some(peer) = self.peers.get_mut(&from) {
                    for id in &ids {
                        peer.outstanding.remove(id);
                    }
                }
            }
        }
    }

    /// Runs every timer due at `now`: missing-message grafts (§3.7), the
    /// lazy-queue dispatch and the lazy tick. Each produces a bounded
    /// amount of output: at most one GRAFT per missing id and announcer,
    /// and per peer at most its lazy queue plus its outstanding set in
    /// announcements.
    pub fn handle_timeout(&mut self, now: Instant, h: &mut impl Handler<M>) {
        while let Some(fired) = self.missing.fire(now, self.config.graft_timeout) {
            if let Fired::Graft { id, .. } = &fired {
                if h.is_stale(id) {
                    // It arrived some other way (anti-entropy, say).
                    self.missing.remove(id);
                    continue;
                }
            }
            // §3.7: graft the first announcer not tried yet; the timer is
            // re-armed with timeout2 for the next.
            let orphan = matches!(&fired, Fired::Graft { root, .. } if self.is_orphaned(root));
            if self.graft(fired) {
                if orphan {
                    self.stats.orphan_grafts += 1;
                } else {
                    self.stats.timer_grafts += 1;
                }
            }
        }
        if self.dispatch_at.is_some_and(|at| at <= now) {
            self.dispatch(now);
        }
        if self.lazy_tick_at.is_some_and(|at| at <= now) {
            self.lazy_tick(now);
        }
    }

    // ----- command -----

    /// Broadcasts `payload` as message `id`, with this node as root.
    ///
    /// A payload over [`Config::max_payload`] is refused before anything is
    /// touched, the handler included. Otherwise the handler's `merge` is
    /// called first, so the node's own store holds the message and can answer
    /// grafts; its result is ignored (an application that stored the message
    /// before broadcasting it still gets it sent) and no
    /// [`Event::Delivered`] is emitted here. Then the payload goes to the
    /// eager peers for this root at round 0, and announcements are queued
    /// for the lazy ones.
    ///
    /// Broadcasting an id that peers already have makes them see a duplicate
    /// and prune us; ids must be unique per message.
    pub fn broadcast(
        &mut self,
        now: Instant,
        id: M,
        payload: Bytes,
        h: &mut impl Handler<M>,
    ) -> Result<(), BroadcastError> {
        if payload.len() > self.config.max_payload {
            return Err(BroadcastError::PayloadTooLarge {
                len: payload.len(),
                max: self.config.max_payload,
            });
        }
        let _ = h.merge(now, &id, &payload);
        self.stats.broadcasts += 1;
        let announced = self.missing.remove(&id);
        let announcers = announced.as_ref().map_or(&[][..], |e| &e.announcers[..]);
        let root = self.me.clone();
        self.push(now, &id, &root, 0, &payload, &[], announcers);
        self.remember(now, Announcement { id, root, round: 0 });
        Ok(())
    }

    // ----- outputs -----

    /// The next message to send, with its destination.
    pub fn poll_transmit(&mut self) -> Option<(I, Message<I, M>)> {
        self.transmits.pop_front()
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event<I, M>> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called;
    /// `None` when no timer is running (an idle engine has none).
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.missing.next_deadline(), self.dispatch_at, self.lazy_tick_at]
            .into_iter()
            .flatten()
            .min()
    }

    // ----- protocol -----

    /// Sends the GRAFT a missing timer (or an eviction) asked for; the
    /// grafted peer joins the eager set (§3.7). Whether one was sent.
    fn graft(&mut self, fired: Fired<I, M>) -> bool {
        let Fired::Graft { id, root, peer, round } = fired else {
            return false;
        };
        if self.is_neighbor(&peer) {
            self.trees.set_eager(&root, &peer);
        }
        crate::log::decision!(me = ?self.me, ?peer, ?root, ?id, "graft: a missing message, asked of its announcer");
        self.send(peer, Message::Graft { id, root, round });
        true
    }

    fn on_gossip(&mut self, now: Instant, from: I, gossip: (M, I, u32, Bytes), h: &mut impl Handler<M>) {
        let (id, root, round, payload) = gossip;
        self.stats.received.gossip += 1;
        self.stats.payload_bytes_received += payload.len() as u64;
        let neighbor = self.is_neighbor(&from);
        // Whoever sends the payload has it: an announcement to it is moot.
        if let Some(peer) = self.peers.get_mut(&from) {
            peer.outstanding.remove(&id);
        }
        // Our own message is never delivered here, whatever the handler
        // still remembers of it (`Event::Delivered`'s promise).
        if root == self.me || !h.merge(now, &id, &payload) {
            self.on_duplicate(&id, root, from, neighbor);
            return;
        }
        self.stats.delivered += 1;
        // Delivery cancels the missing timer (§3.7). The announcers have the
        // message, so they get neither the payload nor an announcement.
        let announced = self.missing.remove(&id);
        let announcers = announced.as_ref().map_or(&[][..], |e| &e.announcers[..]);
        let next = round.saturating_add(1);
        // The paper makes the sender eager (§3.6). Not a peer we pruned for
        // this tree: its copy was pushed before our PRUNE reached it, and
        // making it eager again here, while its side keeps us lazy, is what
        // cut nodes off the tree under a window of broadcasts in flight
        // (see "Pruning with broadcasts in flight" in the module docs).
        let by_tree = neighbor && !self.trees.peek(&root).is_lazy(&from);
        let mut skip = [Some(from.clone()), None];
        if by_tree {
            self.trees.set_eager(&root, &from);
            self.parents.insert(root.clone(), Some(from.clone()));
        } else {
            // Such a leftover copy beat our parent's. The parent has it (it
            // is upstream): a push to it would come back as a PRUNE of our
            // own tree edge.
            skip[1] = self.parents.get(&root).cloned().flatten();
        }
        self.push(now, &id, &root, next, &payload, &skip, announcers);
        self.remember(
            now,
            Announcement {
                id: id.clone(),
                root: root.clone(),
                round: next,
            },
        );
        let mut path = (round, from.clone());
        if let Some(threshold) = self.config.optimization_threshold {
            // §3.8, when the shorter path's announcement came first: rewire
            // to the announcer with the smallest round.
            let best = announcers
                .iter()
                .filter(|(a, _)| *a != from && self.is_neighbor(a))
                .min_by_key(|(_, r)| *r);
            if let Some((a, r)) = best.filter(|(_, r)| round.saturating_sub(*r) >= threshold) {
                self.rewire(&root, a, &from);
                path = (*r, a.clone());
            }
        }
        let (round, from) = path;
        self.received.insert(
            id.clone(),
            Received {
                root: root.clone(),
                round,
                from,
                by_tree,
            },
        );
        self.events.push_back(Event::Delivered {
            id,
            root,
            hops: next,
            payload,
        });
    }

    /// §3.6: a duplicate means the edge it came by is redundant for this
    /// tree, so the sender is pruned. Except when the copy we delivered was
    /// a push still in flight from a peer we had pruned already, and this
    /// duplicate comes from an eager peer: that peer is the tree's path, the
    /// other copy was the leftover, and pruning the parent would cut us off.
    fn on_duplicate(&mut self, id: &M, root: I, from: I, neighbor: bool) {
        self.stats.duplicates += 1;
        let eager = neighbor && self.trees.peek(&root).is_eager(&from);
        if eager && self.received.get(id).is_some_and(|r| !r.by_tree) {
            self.stats.leftovers += 1;
            return;
        }
        if neighbor {
            self.trees.set_lazy(&root, &from);
        }
        crate::log::decision!(me = ?self.me, peer = ?from, ?root, "prune: a duplicate, the link goes lazy");
        self.send(from, Message::Prune { root });
    }

    fn on_ihave(&mut self, now: Instant, from: I, announcements: Vec<Announcement<I, M>>, h: &mut impl Handler<M>) {
        self.stats.received.ihave += 1;
        self.stats.announcements_received += announcements.len() as u64;
        let mut ignored = Vec::new();
        for a in announcements {
            // Whoever announces an id has it: an announcement to it is moot.
            if let Some(peer) = self.peers.get_mut(&from) {
                peer.outstanding.remove(&a.id);
            }
            if a.root == self.me || h.is_stale(&a.id) {
                self.optimise(&from, &a);
                ignored.push(a.id);
            } else {
                let timeout = if self.is_orphaned(&a.root) {
                    Duration::ZERO
                } else {
                    self.config.ihave_timeout
                };
                let r = self.missing.announce(now, timeout, a.id, a.root, from.clone(), a.round);
                self.stats.missing_evicted += u64::from(r.evicted);
                self.stats.announcers_dropped += u64::from(r.dropped);
                if let Some(fired) = r
                    .graft
                    .filter(|f| !matches!(f, Fired::Graft { id, .. } if h.is_stale(id)))
                {
                    // Past `max_missing` the id waiting longest is grafted
                    // early rather than forgotten unasked (see `Missing`).
                    if self.graft(fired) {
                        self.stats.eviction_grafts += 1;
                    }
                }
            }
        }
        if !ignored.is_empty() {
            // Riak: acknowledge, so the announcement leaves the sender's
            // outstanding set and is not re-sent on its next lazy tick.
            for ids in self.config.batching().split(ignored) {
                self.send(from.clone(), Message::IgnoredIHave { ids });
            }
        }
    }

    fn on_graft(&mut self, from: I, id: M, root: I, round: u32, h: &mut impl Handler<M>) {
        self.stats.received.graft += 1;
        // §3.7: the grafter joins our eager set for this tree.
        if self.is_neighbor(&from) {
            self.trees.set_eager(&root, &from);
        }
        match h.graft(&id) {
            Graft::Payload(payload) if payload.len() <= self.config.max_payload => {
                // As in Riak, a GRAFT answered with the payload does not
                // acknowledge the announcement: it stays outstanding until
                // the grafter, holding the payload, answers a re-sent IHAVE
                // with IGNORED_IHAVE. A lost reply is then re-announced and
                // grafted again instead of lost for good.
                self.send(
                    from,
                    Message::Gossip {
                        id,
                        root,
                        round,
                        payload,
                    },
                );
            }
            _ => {
                self.stats.grafts_unanswered += 1;
                if let Some(peer) = self.peers.get_mut(&from) {
                    peer.outstanding.remove(&id);
                }
            }
        }
    }

    /// §3.8 seen from the lazy side: `from` announced a message we already
    /// have, by a path at least `threshold` hops shorter than the one it
    /// came by.
    fn optimise(&mut self, from: &I, a: &Announcement<I, M>) {
        let Some(threshold) = self.config.optimization_threshold else {
            return;
        };
        let Some(rec) = self.received.get(&a.id) else {
            return;
        };
        if rec.from == *from
            || rec.root != a.root
            || rec.round.saturating_sub(a.round) < threshold
            || !self.is_neighbor(from)
        {
            return;
        }
        let old = rec.from.clone();
        self.rewire(&a.root, from, &old);
        if let Some(rec) = self.received.get_mut(&a.id) {
            rec.round = a.round;
            rec.from = from.clone();
        }
    }

    /// Makes `to` our eager parent for `root` in place of `away`: ATTACH to
    /// the one (the paper's `GRAFT(null)`), PRUNE to the other.
    fn rewire(&mut self, root: &I, to: &I, away: &I) {
        self.stats.optimisations += 1;
        crate::log::decision!(me = ?self.me, ?root, parent = ?to, was = ?away, "tree optimised: a closer parent");
        self.trees.set_eager(root, to);
        self.send(to.clone(), Message::Attach { root: root.clone() });
        if away != to && self.is_neighbor(away) {
            self.trees.set_lazy(root, away);
            self.send(away.clone(), Message::Prune { root: root.clone() });
        }
    }

    /// Eager push to the eager set and lazy push to the lazy set for `root`
    /// (paper §3), skipping `skip` (the sender) and the announcers, who have
    /// it.
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        now: Instant,
        id: &M,
        root: &I,
        round: u32,
        payload: &Bytes,
        skip: &[Option<I>],
        announcers: &[(I, u32)],
    ) {
        let has_it = |p: &I| skip.iter().any(|s| s.as_ref() == Some(p)) || announcers.iter().any(|(a, _)| a == p);
        let max_outstanding = self.config.max_outstanding;
        let max_queue = self.config.max_lazy_queue;
        let sets = self.trees.sets(root);
        let retransmit = self.config.retransmit_eager;
        for p in sets.eager.iter().filter(|p| !has_it(p)) {
            if retransmit {
                let peer = self
                    .peers
                    .entry(p.clone())
                    .or_insert_with(|| Peer::new(max_outstanding));
                let pending = Pending {
                    root: root.clone(),
                    round,
                    sent_at: now,
                };
                if peer.outstanding.insert(id.clone(), pending).is_some() {
                    self.stats.outstanding_dropped += 1;
                }
            }
            self.stats.sent.gossip += 1;
            self.stats.payload_bytes_sent += payload.len() as u64;
            self.transmits.push_back((
                p.clone(),
                Message::Gossip {
                    id: id.clone(),
                    root: root.clone(),
                    round,
                    payload: payload.clone(),
                },
            ));
        }
        let mut queued = false;
        let batching = self.config.batching();
        for p in sets.lazy.iter().filter(|p| !has_it(p)) {
            let peer = self
                .peers
                .entry(p.clone())
                .or_insert_with(|| Peer::new(max_outstanding));
            let a = Announcement {
                id: id.clone(),
                root: root.clone(),
                round,
            };
            self.stats.lazy_dropped += u64::from(peer.enqueue(a, max_queue));
            queued = true;
            if peer.queue.len() >= batching.max_items {
                // A full batch leaves at once: batching is for frames, and
                // waiting would let a burst overflow `max_lazy_queue` and
                // lose announcements that nobody would make again.
                Self::flush(p, peer, batching, now, &mut self.stats, &mut self.transmits);
            }
        }
        if queued {
            self.arm_dispatch(now);
        }
        if retransmit || queued {
            self.arm_lazy_tick(now);
        }
    }

    fn is_neighbor(&self, peer: &I) -> bool {
        self.neighbors.binary_search(peer).is_ok()
    }

    fn send(&mut self, to: I, msg: Message<I, M>) {
        let c = &mut self.stats.sent;
        match &msg {
            Message::Gossip { payload, .. } => {
                c.gossip += 1;
                self.stats.payload_bytes_sent += payload.len() as u64;
            }
            Message::IHave { .. } => c.ihave += 1,
            Message::Graft { .. } => c.graft += 1,
            Message::Attach { .. } => c.attach += 1,
            Message::Prune { .. } => c.prune += 1,
            Message::IgnoredIHave { .. } => c.ignored_ihave += 1,
        }
        self.transmits.push_back((to, msg));
    }
}

#[cfg(test)]
impl<I: Identity, M: MessageId> Plumtree<I, M> {
    /// Checks the bounds of the internals that [`Stats`] does not show: the
    /// order queues of the bounded maps and the missing timers.
    pub(crate) fn assert_internal_bounds(&self) {
        let c = &self.config;
        let queue_ok = |len: usize, cap: usize| len <= 2 * cap + 33;
        assert!(queue_ok(self.received.queue_len(), c.max_received));
        assert!(self.recent.len() <= c.max_catch_up);
        assert!(queue_ok(self.trees.queue_len(), self.trees.capacity()));
        for peer in self.peers.values() {
            assert!(queue_ok(peer.outstanding.queue_len(), c.max_outstanding));
        }
        assert!(
            self.peers.keys().all(|p| self.is_neighbor(p)),
            "per-peer state only for neighbours"
        );
        self.missing.assert_invariants();
    }
}

/// Roots whose parent is remembered: as many as have trees of their own,
/// and at least [`MIN_PARENTS`] for the shared tree's roots.
fn parent_capacity(tree: TreeMode) -> usize {
    match tree {
        TreeMode::Shared => MIN_PARENTS,
        TreeMode::PerRoot { max_roots } => max_roots.max(MIN_PARENTS),
    }
}

/// The default `max_roots`: the broadcasters of a typical cluster.
const MIN_PARENTS: usize = 64;

impl<I: Identity, M: MessageId> core::fmt::Debug for Plumtree<I, M> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Plumtree")
            .field("me", &self.me)
            .field("neighbors", &self.neighbors)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}
