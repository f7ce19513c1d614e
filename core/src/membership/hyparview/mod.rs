//! HyParView: a small symmetric active view over a large passive view.
//!
//! This is the membership protocol of Leitão, Pereira and Rodrigues,
//! "HyParView: a membership protocol for reliable gossip-based broadcast"
//! (DSN 2007), as a sans-IO state machine. Section numbers below are the
//! paper's.
//!
//! # State
//!
//! | State | What it holds | Bound | Paper |
//! |---|---|---|---|
//! | active view | the neighbors, each with the id of the link to it; symmetric | [`Config::active_view_capacity`] | §4.1, §4.3 |
//! | passive view | backup peers, candidates to replace a failed neighbor | [`Config::passive_view_capacity`] | §4.1, §4.4 |
//! | pending neighbor requests | passive peers asked to become neighbors, with a deadline | free active slots | §4.3 |
//! | tried set | passive peers already asked in this repair round | passive view | §4.3 |
//! | pending join | the contact given to [`HyParView::join`] (or retried), until it answers | one | §4.2 |
//! | join contacts | contacts given to [`HyParView::join`], for rejoining; a cursor; the backoff; the retry deadline; stranded ticks in a row | [`Config::join_contacts`] | §4.2's "joins again", made concrete |
//! | outstanding shuffle | the entries sent in our last shuffle, until its reply | 1 + ka + kp | §4.4 |
//! | lost peers | peers lost to a link failure, for reconnection | [`Config::lost_capacity`] | not in the paper |
//! | probe | one high-priority `Neighbor` to a lost or passive peer, with a deadline | one | not in the paper |
//! | suspicion | familiar and unfamiliar shuffle replies in a row; latest shuffle origins and repliers | two counters; passive view | not in the paper |
//!
//! A node never appears in its own views, a peer is never in both views,
//! and neither view ever exceeds its capacity.
//!
//! # Messages
//!
//! | Message | Sent by | Effect | Paper |
//! |---|---|---|---|
//! | [`Join`](Message::Join) | a new node, to its contact | the contact connects to the joiner (evicting a random neighbor if full) and sends `ForwardJoin` to its other neighbors | §4.2 |
//! | [`ForwardJoin`](Message::ForwardJoin) | a random walk of length ARWL | at ttl 0, or at a node with at most one neighbor, the node connects to the joiner; at ttl PRWL the joiner enters the passive view | §4.2 |
//! | [`Neighbor`](Message::Neighbor) | a node repairing its active view, or probing (below) | `High` is always accepted, `Low` only if the receiver's active view has room | §4.3 |
//! | [`NeighborReply`](Message::NeighborReply) | the receiver of `Neighbor` | on accept, the requester connects; on refusal it asks another passive peer | §4.3 |
//! | [`Connect`](Message::Connect) | a node that made the receiver its neighbor | the receiver makes the sender its neighbor, unconditionally | the paper's TCP connection, made explicit |
//! | [`Disconnect`](Message::Disconnect) | a node dropping a neighbor, or leaving | the receiver drops the sender; keeps it as a passive peer unless it is leaving | §4.2, §4.3 |
//! | [`Shuffle`](Message::Shuffle) | every node, periodically, along a random walk | the walk's last node answers and merges the entries into its passive view | §4.4 |
//! | [`ShuffleReply`](Message::ShuffleReply) | the shuffle walk's last node, to its origin | the origin merges the entries into its passive view | §4.4 |
//!
//! Every input produces at most `2 × active_view_capacity + 3` messages, so
//! a peer cannot make the outbound queue grow faster than the driver drains
//! it.
//!
//! # Symmetry: links with ids
//!
//! The paper keeps active views symmetric through the TCP connection
//! between two neighbors. Here the connection is explicit, and it has an
//! identity: a node that makes a peer its neighbor picks a random link id
//! and sends `Connect { link }`; the peer adds the sender unconditionally
//! (evicting a random neighbor if full). `Disconnect { link }` closes that
//! link and no other, so a `Disconnect` that crosses a newer `Connect` on
//! the wire cannot close the newer link. If both sides open a link at the
//! same time, each sees the other's `Connect` while already connected, and
//! both keep the link with the larger id and close the other. Over links
//! that deliver in order (TCP, QUIC streams), every link is then open at
//! both ends or at neither once messages stop flowing, and since a node
//! keeps at most one link per peer, the active views are symmetric.
//!
//! For the same reason, accepting a `Neighbor` request changes nothing:
//! the acceptor only says yes, and the requester opens the link with
//! `Connect` if it still wants it. A request that comes back too late
//! leaves nothing to undo. The price is that an acceptance reserves no
//! slot: two requesters accepted at once may make the acceptor evict.
//!
//! # Healing partitions (not in the paper)
//!
//! A partition breaks every link across it. Each side repairs its active
//! views from its passive views, and every attempt to reach the other side
//! fails and removes that peer, so after a while neither side knows the other
//! exists, and healing the network would leave two overlays. To avoid this, a
//! node remembers up to [`Config::lost_capacity`] peers it lost to a link
//! failure, for [`Config::lost_retention`]. On each shuffle tick it probes
//! one of them with a high-priority `Neighbor`. A peer that answers yes
//! becomes a neighbor even if the active view is full (a random neighbor is
//! evicted): it may be the only bridge back. After one success the node
//! forgets its other lost peers, so a healed partition costs each node at
//! most one eviction. A peer that is really dead costs one probe per shuffle
//! interval until its retention ends.
//!
//! # Closed components (not in the paper)
//!
//! The paper's repair assumes that a node short of neighbors will find a
//! passive peer with room, and that a node with a full view is where it
//! should be. Growing an overlay by thousands of joins breaks both: every
//! join evicts somebody, evicted nodes promote whoever has room, and
//! some end up connected only to each other. `epidemic sim stable` at
//! 3,000 nodes left a pair, each the other's only neighbor; at 10,000
//! nodes with latencies of 10–100 ms, a clique of nine whose views were
//! full of each other, and two more pairs. Nothing got them out:
//!
//! - **Short nodes only ask with low priority**, and the paper's full
//!   nodes refuse every low-priority request (§4.3). The pair kept asking
//!   its two passive peers, both full, forever.
//! - **Full nodes never ask.** A clique of `active_view_capacity + 1`
//!   nodes, each with all the others as neighbors, sends nothing but
//!   shuffles, and those walk inside the clique. Its members do not even
//!   learn new peers: each shuffle is answered by a member, out of passive
//!   views that only hold what the members knew when the clique closed.
//! - **Nobody outside asks them either.** Outside nodes that still list
//!   a member as a passive peer are full themselves, or ask with low
//!   priority and are refused.
//!
//! Two mechanisms fix this, both driven by the shuffle tick and both
//! bounded to one `High` request per node per shuffle interval at most:
//!
//! - **Escalation.** A node that ends a repair round (one shuffle interval
//!   of asking every passive peer) with fewer than half its neighbors
//!   starts the next round with one `High` request, as the paper does for
//!   a node with none. Such a node is one or two failures from isolation,
//!   or stuck in a small component; the eviction it causes at the
//!   receiver leaves a node in the large overlay one neighbor short, which
//!   is harmless. This frees the pairs.
//! - **Suspicion of a closed component.** A shuffle walks
//!   [`Config::shuffle_ttl`] hops. In a large overlay it almost never ends
//!   at a neighbor of its origin, and its reply nearly always names a peer
//!   the origin did not know. In a component of a few nodes it nearly
//!   always ends at a neighbor; in one of a few dozen, whose members soon
//!   all know each other, its reply has nothing new to tell. A node whose
//!   last [`Config::isolation_replies`] shuffle replies were all familiar
//!   in one of these two ways sends one `High` `Neighbor` to a random
//!   passive peer that it has not seen lately as the origin or the last
//!   node of a shuffle (those are inside its component, since shuffles only
//!   walk along active links; it remembers as many as its passive view
//!   holds). When that peer accepts, the node connects, dropping a random
//!   neighbor (which becomes a passive peer) if its view is full: a
//!   rotation of the active view. A passive peer outside the component
//!   reconnects it. If no passive peer qualifies, the suspicion stands, and
//!   the node accepts the next low-priority request from a node not seen
//!   lately, whatever its view: outside nodes that still list it are its
//!   way back. Every time it acts, the number of familiar replies needed
//!   doubles (up to 32 times), so that a cluster that is simply small,
//!   where every reply is familiar too, rotates less and less; after as
//!   many unfamiliar replies in a row it returns to the base. This frees
//!   the cliques, full or not.
//!
//! The alternative, periodic rotation of every active view, would break
//! the cliques too, but it changes links all over a large overlay to fix
//! a few nodes, and every changed link costs Plumtree a duplicate and a
//! tree repair. Suspicion costs a stable 10,000-node overlay no link
//! change once its cliques are gone.
//!
//! # Rejoining (the paper's "joins again", made concrete)
//!
//! The paper has a node whose active view empties join again (§4.2) but
//! says nothing of a join that is lost. `epidemic sim chaos` found nodes
//! cut off for good: a node restarted through a contact that was crashed
//! or partitioned away at the time never got a neighbor, and two nodes
//! that met while partitioned (each the other's only neighbor, both
//! passive views emptied by failed repairs) stayed a pair after the heal.
//! So:
//!
//! - **Contacts are remembered.** Every contact given to
//!   [`HyParView::join`] is kept, up to [`Config::join_contacts`] (oldest
//!   forgotten first).
//! - **A failed join is retried.** A join fails when its deadline passes
//!   unanswered, when the contact refuses (`Disconnect` with no link) or
//!   is leaving (`Disconnect { leaving }`), or when its link goes down.
//!   The node then arms a retry after a backoff that starts at
//!   [`Config::neighbor_timeout`] and doubles up to
//!   [`Config::join_retry_max`], each wait drawn between half and all of
//!   the backoff from the seeded rng. When the retry is due and the node
//!   still has no neighbor, it sends `Join` to the next remembered contact
//!   (round robin). A shuffle tick that finds the active view empty arms a
//!   retry too. A join answered by its contact resets the backoff.
//! - **A stranded node rejoins.** A shuffle tick that ends a repair round
//!   with fewer than half the neighbors and every passive peer already
//!   asked (or none) counts as stranded. After three stranded ticks in a
//!   row the node sends `Join` to its next contact that is not a neighbor
//!   (a join through a neighbor would bring nobody new), then counts
//!   again. This frees a pair whose passive views hold nothing: the
//!   contact connects to the joiner and its `ForwardJoin` walk brings more
//!   neighbors from the large overlay. It costs at most one `Join` per
//!   three shuffle intervals, and only to nodes already short of neighbors.
//!
//! # Timers
//!
//! - **Shuffle**, every [`Config::shuffle_interval`], with a random first
//!   phase drawn from the seed so that nodes do not shuffle in lockstep
//!   (§4.4; the paper's simulation is cycle-based). The timer is armed by
//!   the first input that carries a `now`. On each tick, a node whose active
//!   view is below capacity also starts a new repair round (see below), and
//!   one left with fewer than half its neighbors escalates (see "Closed
//!   components").
//! - **Neighbor request deadline**, [`Config::neighbor_timeout`] after each
//!   `Neighbor` is sent. A request that expires counts as a failure: the
//!   peer leaves the passive view and the next candidate is asked.
//! - **Join deadline**, the same timeout for the pending join. It ends the
//!   pending state ([`HyParView::joining`]), counts a failure and arms the
//!   join retry (see "Rejoining"); the caller may also try another contact.
//! - **Join retry**, after a jittered exponential backoff from
//!   [`Config::neighbor_timeout`] up to [`Config::join_retry_max`]; sends
//!   `Join` to the next remembered contact if the node still has no
//!   neighbor (see "Rejoining").
//!
//! # Failure detection and repair
//!
//! Failure detection is by link, as in the paper (§4.3): the driver calls
//! [`HyParView::handle_link_down`] when a connection to a peer fails or
//! breaks, including a message that could not be delivered. A neighbor that
//! goes down leaves the active view with [`Event::NeighborDown`] (and is
//! sent a `Disconnect`, in case only this side saw the link fail), and the
//! node starts promoting passive peers: it sends `Neighbor` to random
//! passive peers it has not tried yet in this round, one per free active
//! slot, with `High` priority when it has no neighbor at all. A peer that
//! refuses stays in the passive view; one that is down or does not answer
//! in time is removed from it. Repair continues while the active view has
//! free slots and untried passive peers remain; the round ends when the
//! active view is full, and a new round starts on every shuffle tick while
//! it is not. That tick is a robustness addition: the paper promotes only
//! on failure, so a node whose passive peers all refused would otherwise
//! stay short of neighbors for good.
//!
//! # Departures from the paper
//!
//! - **Explicit links** (`Connect`, link ids), described above.
//! - **`Disconnect { leaving }`.** A node that leaves says so, and its
//!   peers forget it instead of keeping it as a passive peer. A node that
//!   has left answers any message with such a `Disconnect`.
//! - **Parallel promotion.** The paper asks one passive peer at a time;
//!   this asks one per free active slot (never more), so a node that lost
//!   several neighbors at once heals in one round trip. At most one request
//!   at a time is `High`, so a node with no neighbors does not force
//!   several peers to evict theirs. A peer that has just disconnected us is
//!   not asked back in the same round.
//! - **Walks avoid the obvious.** A `ForwardJoin` is never forwarded to the
//!   joiner and a `Shuffle` never back to its origin. A received ttl is
//!   capped at the configured walk length, so a peer cannot send a walk
//!   further than the local configuration would.
//! - **Validation.** `Shuffle` and `ShuffleReply` may list at most
//!   1 + ka + kp nodes ([`HyParView::validate`]); ka and kp should agree
//!   across the cluster. A `ShuffleReply` with no shuffle outstanding is
//!   dropped. Messages from the node itself, or naming it as joiner or
//!   shuffle origin, are dropped. All of these are counted in [`Stats`].
//!
//! # Example
//!
//! Three nodes join through node 0; the "network" hands each transmit
//! straight to its addressee until nothing is left to send.
//!
//! ```
//! use epidemic_core::Instant;
//! use epidemic_core::membership::hyparview::{Config, Event, HyParView};
//!
//! let now = Instant::ZERO;
//! let mut nodes: Vec<HyParView<u32>> =
//!     (0..3).map(|id| HyParView::new(id, Config::default(), u64::from(id))).collect();
//! nodes[1].join(now, 0);
//! nodes[2].join(now, 0);
//!
//! // After every input, drain every output (the sans-IO contract).
//! loop {
//!     let mut in_flight = Vec::new();
//!     for node in &mut nodes {
//!         let from = *node.me();
//!         while let Some((to, msg)) = node.poll_transmit() {
//!             in_flight.push((from, to, msg));
//!         }
//!         while let Some(event) = node.poll_event() {
//!             match event {
//!                 Event::NeighborUp(peer) => println!("{from}: {peer} is a neighbor"),
//!                 Event::NeighborDown(peer) => println!("{from}: {peer} is not"),
//!             }
//!         }
//!     }
//!     if in_flight.is_empty() {
//!         break;
//!     }
//!     for (from, to, msg) in in_flight {
//!         nodes[to as usize].handle_message(now, from, msg);
//!     }
//! }
//!
//! // Three nodes with room for five neighbors each: a full mesh.
//! for a in 0..3u32 {
//!     for b in 0..3u32 {
//!         assert_eq!(nodes[a as usize].is_active(&b), a != b);
//!     }
//! }
//! // The next thing to do is the first shuffle, at a seed-dependent phase.
//! assert!(nodes[0].poll_timeout().is_some());
//! ```

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use crate::identity::Identity;
use crate::rng::{self, Rng};
use crate::time::Instant;

// This file holds the state, the entry points and their dispatch; the
// protocol itself is split by domain:
mod config; // `Config` and its defaults
mod isolation; // "Closed components"
mod join; // §4.2, the contact's side: `Join`, `ForwardJoin`
mod message; // the wire messages, `Priority`, `MessageCounts`
mod rejoin; // "Rejoining", and the joiner's side of §4.2
mod repair; // §4.3: `Neighbor`, `Connect`, `Disconnect`, link failures, lost peers
mod shuffle; // §4.4: `Shuffle`, `ShuffleReply`, the shuffle timer
#[cfg(test)]
mod tests;
mod views; // the active and passive views

pub use config::Config;
#[doc(hidden)]
pub use message::{Message, MessageCounts, Priority};

use join::PendingJoin;
use repair::{Lost, Pending, Probe};
use views::Link;

/// A change to the active view, reported exactly when it happens: the
/// membership [`Event`](super::Event) both protocols share.
#[doc(hidden)]
pub use super::Event;

/// Counters since the node was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
#[doc(hidden)]
pub struct Stats {
    /// Messages queued for sending.
    pub sent: MessageCounts,
    /// Messages handed to [`HyParView::handle_message`], dropped ones included.
    pub received: MessageCounts,
    /// Dropped: failed [`HyParView::validate`].
    pub invalid: u64,
    /// Dropped: claimed to come from this node.
    pub from_self: u64,
    /// Dropped: named this node as a joiner or shuffle origin, or asked it
    /// to join itself.
    pub names_self: u64,
    /// Out of place: a refusal or shuffle reply nobody asked for, a
    /// `Disconnect` for a link that is not open, or any message after
    /// [`HyParView::leave`]. Most are harmless races.
    pub unexpected: u64,
    /// Peers that entered the active view.
    pub neighbor_up: u64,
    /// Peers that left the active view.
    pub neighbor_down: u64,
    /// Neighbors dropped to make room for another.
    pub evictions: u64,
    /// Passive peers dropped to make room for another.
    pub passive_evictions: u64,
    /// `Neighbor` requests sent to promote a passive peer.
    pub promotions_attempted: u64,
    /// Promotions that ended with a new neighbor.
    pub promotions_succeeded: u64,
    /// Promotions the peer refused.
    pub promotions_refused: u64,
    /// Promotions whose peer was down or did not answer in time.
    pub promotions_failed: u64,
    /// Calls to [`HyParView::handle_link_down`].
    pub links_down: u64,
    /// Joins whose contact was down, refused, or did not answer in time.
    pub join_failures: u64,
    /// Probes sent to peers lost to a link failure.
    pub reconnects_attempted: u64,
    /// Probes that ended with the lost peer as a neighbor again.
    pub reconnects_succeeded: u64,
    /// High-priority `Neighbor` requests of a node left with fewer than half
    /// its active view after a whole repair round (the paper sends `High`
    /// only from an empty view).
    pub escalations: u64,
    /// Probes of a passive peer by a node that suspected its component was
    /// closed.
    pub isolation_probes: u64,
    /// Isolation probes that ended with the passive peer as a neighbor.
    pub isolation_probes_succeeded: u64,
    /// Low-priority `Neighbor` requests accepted by a full node because it
    /// suspected its component was closed.
    pub isolation_accepts: u64,
    /// Joins sent again by the node itself, through a remembered contact
    /// (see "Rejoining").
    pub rejoins: u64,
    /// Of those, joins of a node stranded with too few neighbors and no
    /// passive peer to ask.
    pub stranded_rejoins: u64,
}

/// One node's HyParView state machine. See the [module docs](self).
///
/// Drive it like every state machine in the core: feed inputs
/// (`handle_message`, `handle_link_down`, `handle_timeout`) and commands
/// (`join`, `leave`), and after each one drain `poll_transmit` and
/// `poll_event`, then sleep until `poll_timeout`. Time must not go
/// backwards.
#[derive(Debug)]
#[doc(hidden)]
pub struct HyParView<I: Identity> {
    me: I,
    config: Config,
    rng: Rng,
    active: Vec<Link<I>>,
    passive: Vec<I>,
    pending: Vec<Pending<I>>,
    /// Passive peers already asked in this repair round; always a subset of
    /// the passive view.
    tried: Vec<I>,
    joining: Option<PendingJoin<I>>,
    /// What our last shuffle sent, while its reply is outstanding.
    shuffle_sent: Option<Vec<I>>,
    next_shuffle: Option<Instant>,
    /// Peers lost to link failures, oldest first, for reconnection.
    lost: VecDeque<Lost<I>>,
    /// The peer being probed, why, and when the probe expires.
    probe: Option<Probe<I>>,
    /// The next repair round starts with a `High` request: set on a shuffle
    /// tick that finds the active view below half its capacity.
    escalate: bool,
    /// Closed-component suspicion (see "Closed components").
    isolation: isolation::Suspicion<I>,
    /// Join contacts and retries (see "Rejoining").
    rejoin: rejoin::Rejoin<I>,
    left: bool,
    transmits: VecDeque<(I, Message<I>)>,
    events: VecDeque<Event<I>>,
    stats: Stats,
}

impl<I: Identity> HyParView<I> {
    /// A node called `me` with empty views. All its randomness comes from
    /// `seed`.
    ///
    /// A node that never calls [`join`](Self::join) can still be joined
    /// through: that is how the first node of a cluster starts.
    pub fn new(me: I, config: Config, seed: u64) -> Self {
        HyParView {
            me,
            config,
            rng: rng::from_seed(seed),
            active: Vec::new(),
            passive: Vec::new(),
            pending: Vec::new(),
            tried: Vec::new(),
            joining: None,
            shuffle_sent: None,
            next_shuffle: None,
            lost: VecDeque::new(),
            probe: None,
            escalate: false,
            isolation: isolation::Suspicion::default(),
            rejoin: rejoin::Rejoin::default(),
            left: false,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
        }
    }

    // ----- getters -----

    /// This node.
    pub fn me(&self) -> &I {
        &self.me
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The neighbors.
    pub fn active_view(&self) -> impl Iterator<Item = &I> {
        self.active.iter().map(|l| &l.peer)
    }

    /// The backup peers.
    pub fn passive_view(&self) -> impl Iterator<Item = &I> {
        self.passive.iter()
    }

    /// Whether `peer` is a neighbor.
    pub fn is_active(&self, peer: &I) -> bool {
        self.link(peer).is_some()
    }

    /// Whether `peer` is in the passive view.
    pub fn is_passive(&self, peer: &I) -> bool {
        self.passive.contains(peer)
    }

    /// The contact of a join that has not been answered yet.
    pub fn joining(&self) -> Option<&I> {
        self.joining.as_ref().map(|j| &j.contact)
    }

    /// Peers asked to become neighbors that have not answered yet.
    pub fn pending_neighbors(&self) -> impl Iterator<Item = &I> {
        self.pending.iter().map(|p| &p.peer)
    }

    /// Counters since creation.
    pub fn stats(&self) -> Stats {
        self.stats
    }
    // ----- commands -----

    /// Joins the cluster through `contact` by sending it `Join` (§4.2),
    /// and remembers `contact` for rejoining (see "Rejoining" in the
    /// module docs).
    ///
    /// The contact and the nodes where its `ForwardJoin` walks end connect
    /// to this node, and each becomes a neighbor. If the contact is down
    /// (reported through [`handle_link_down`](Self::handle_link_down)),
    /// refuses, or is silent for [`Config::neighbor_timeout`],
    /// [`joining`](Self::joining) goes back to `None` with no neighbor
    /// added, and the node retries by itself later through its remembered
    /// contacts while it has no neighbor; the caller may also try another
    /// contact at once. Joining again after
    /// [`leave`](Self::leave) is allowed.
    pub fn join(&mut self, now: Instant, contact: I) {
        if contact == self.me {
            self.stats.names_self += 1;
        } else {
            self.left = false;
            self.arm_shuffle(now);
            self.remember_contact(&contact);
            self.send_join(now, contact);
        }
        #[cfg(test)]
        self.check_invariants();
    }

    /// Leaves the cluster: tells every neighbor with `Disconnect { leaving:
    /// true }`, reports each as [`Event::NeighborDown`], and forgets both
    /// views. Until the next [`join`](Self::join), the node answers every
    /// message with the same `Disconnect` and has no timers.
    pub fn leave(&mut self, now: Instant) {
        let _ = now;
        for link in core::mem::take(&mut self.active) {
            self.send(
                link.peer.clone(),
                Message::Disconnect {
                    link: Some(link.id),
                    leaving: true,
                },
            );
            self.neighbor_down(link.peer);
        }
        self.passive.clear();
        self.pending.clear();
        self.tried.clear();
        self.joining = None;
        self.shuffle_sent = None;
        self.next_shuffle = None;
        self.probe = None;
        self.escalate = false;
        self.isolation = isolation::Suspicion::default();
        self.rejoin = rejoin::Rejoin::default();
        self.left = true;
        #[cfg(test)]
        self.check_invariants();
    }

    /// Adds `peer` to the passive view, as a candidate for promotion (for
    /// instance seed nodes from configuration). Ignored for this node and
    /// for neighbors; may evict a random passive peer when full.
    pub fn insert_passive(&mut self, peer: I) {
        if !self.left {
            self.add_passive(peer);
        }
        #[cfg(test)]
        self.check_invariants();
    }

    // ----- inputs -----

    /// Handles a message from `from`.
    ///
    /// Never panics. Invalid, out-of-place or self-referential messages are
    /// counted in [`Stats`] and dropped.
    pub fn handle_message(&mut self, now: Instant, from: I, msg: Message<I>) {
        self.receive(now, from, msg, false);
        #[cfg(test)]
        self.check_invariants();
    }

    /// [`handle_message`](Self::handle_message) for a message the caller
    /// has validated already (the node validates every frame once).
    pub(crate) fn handle_validated(&mut self, now: Instant, from: I, msg: Message<I>) {
        self.receive(now, from, msg, true);
        #[cfg(test)]
        self.check_invariants();
    }

    /// [`handle_message`](Self::handle_message): checks the message, then
    /// dispatches it to its handler.
    fn receive(&mut self, now: Instant, from: I, msg: Message<I>, validated: bool) {
        self.stats.received.record(&msg);
        if from == self.me {
            self.stats.from_self += 1;
            return;
        }
        if !validated && Self::validate(&msg, &self.config).is_err() {
            self.stats.invalid += 1;
            return;
        }
        if self.left {
            self.stats.unexpected += 1;
            let link = match msg {
                Message::Disconnect { .. } => return,
                Message::Connect { link } => Some(link),
                _ => None,
            };
            self.send(from, Message::Disconnect { link, leaving: true });
            return;
        }
        self.arm_shuffle(now);
        match msg {
            Message::Join => self.on_join(from),
            Message::ForwardJoin { joiner, ttl } => self.on_forward_join(from, joiner, ttl),
            Message::Neighbor { priority } => self.on_neighbor(from, priority),
            Message::NeighborReply { accepted } => self.on_neighbor_reply(from, accepted),
            Message::Connect { link } => self.on_connect(from, link),
            Message::Disconnect { link, leaving } => self.on_disconnect(now, from, link, leaving),
            Message::Shuffle { origin, ttl, nodes } => self.on_shuffle(from, origin, ttl, nodes),
            Message::ShuffleReply { nodes } => self.on_shuffle_reply(now, from, nodes),
        }
        self.refill(now);
    }

    /// The driver reports that the link to `peer` failed: the peer crashed,
    /// refused a connection, or a message to it could not be delivered.
    ///
    /// A neighbor is dropped (and sent a `Disconnect`, in case the failure
    /// was seen on this side only) and replaced from the passive view; a
    /// passive peer or an unanswered request target is forgotten.
    pub fn handle_link_down(&mut self, now: Instant, peer: &I) {
        self.stats.links_down += 1;
        if !self.left && *peer != self.me {
            self.on_link_down(now, peer);
        }
        #[cfg(test)]
        self.check_invariants();
    }

    /// Runs whatever timers are due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if !self.left {
            self.expire_pending(now);
            if self.joining.as_ref().is_some_and(|j| j.deadline <= now) {
                self.join_failed(now);
            }
            self.on_rejoin_timer(now);
            self.expire_probe(now);
            if self.next_shuffle.is_some_and(|t| t <= now) {
                self.on_shuffle_timer(now);
            }
            self.refill(now);
        }
        #[cfg(test)]
        self.check_invariants();
    }

    // ----- outputs -----

    /// The earliest instant at which [`handle_timeout`](Self::handle_timeout)
    /// has work to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.left {
            return None;
        }
        let pending = self.pending.iter().map(|p| p.deadline);
        let join = self.joining.as_ref().map(|j| j.deadline);
        let probe = self.probe.as_ref().map(|p| p.deadline);
        pending
            .chain(join)
            .chain(probe)
            .chain(self.rejoin.retry_at)
            .chain(self.next_shuffle)
            .min()
    }

    /// The next message to send, with its addressee.
    pub fn poll_transmit(&mut self) -> Option<(I, Message<I>)> {
        self.transmits.pop_front()
    }

    /// The next change to the active view.
    pub fn poll_event(&mut self) -> Option<Event<I>> {
        self.events.pop_front()
    }

    fn send(&mut self, to: I, msg: Message<I>) {
        self.stats.sent.record(&msg);
        self.transmits.push_back((to, msg));
    }

    /// Checks every local invariant; panics with the broken one. Run at the
    /// end of every input and command in tests.
    #[cfg(test)]
    fn check_invariants(&self) {
        let c = &self.config;
        // The views: bounded, without this node, disjoint, no duplicates.
        assert!(self.active.len() <= c.active_view_capacity, "active view over capacity");
        assert!(
            self.passive.len() <= c.passive_view_capacity,
            "passive view over capacity"
        );
        assert!(!self.is_active(&self.me), "self in active view");
        assert!(!self.passive.contains(&self.me), "self in passive view");
        for (i, l) in self.active.iter().enumerate() {
            assert!(
                self.active[..i].iter().all(|o| o.peer != l.peer),
                "duplicate in active view"
            );
            assert!(!self.passive.contains(&l.peer), "{:?} in both views", l.peer);
        }
        for (i, p) in self.passive.iter().enumerate() {
            assert!(!self.passive[..i].contains(p), "duplicate in passive view");
        }
        // Neighbor requests: at most one per free slot when sent, never to
        // this node or a neighbor, never two to one peer, at most one `High`.
        assert!(
            self.pending.len() <= c.active_view_capacity,
            "too many pending requests"
        );
        for (i, p) in self.pending.iter().enumerate() {
            assert!(p.peer != self.me, "pending request to self");
            assert!(!self.is_active(&p.peer), "pending request to a neighbor");
            assert!(
                self.pending[..i].iter().all(|o| o.peer != p.peer),
                "two pending requests to {:?}",
                p.peer
            );
        }
        assert!(
            self.pending.iter().filter(|p| p.priority == Priority::High).count() <= 1,
            "more than one pending High request"
        );
        // The repair round: a subset of the passive view.
        for (i, t) in self.tried.iter().enumerate() {
            assert!(self.passive.contains(t), "tried peer outside the passive view");
            assert!(!self.tried[..i].contains(t), "duplicate in tried set");
        }
        // The pending join and the probe: never this node.
        if let Some(j) = &self.joining {
            assert!(j.contact != self.me, "joining through self");
        }
        if let Some(p) = &self.probe {
            assert!(p.contact != self.me, "probing self");
        }
        // The outstanding shuffle: at most ka + kp entries, never this node.
        if let Some(sent) = &self.shuffle_sent {
            assert!(sent.len() < c.max_shuffle_len(), "shuffle sent too many entries");
            assert!(!sent.contains(&self.me), "self in the outstanding shuffle");
        }
        // Lost peers: bounded, no duplicates, never this node.
        assert!(self.lost.len() <= c.lost_capacity, "lost peers over capacity");
        for (i, l) in self.lost.iter().enumerate() {
            assert!(l.peer != self.me, "self among lost peers");
            assert!(
                self.lost.iter().take(i).all(|o| o.peer != l.peer),
                "duplicate among lost peers"
            );
        }
        self.isolation.check_invariants(c);
        self.rejoin.check_invariants(c, &self.me);
        if self.left {
            assert!(self.active.is_empty() && self.passive.is_empty() && self.pending.is_empty());
            assert!(self.tried.is_empty() && self.joining.is_none() && self.probe.is_none());
            assert!(self.next_shuffle.is_none() && self.shuffle_sent.is_none());
        }
    }
}
