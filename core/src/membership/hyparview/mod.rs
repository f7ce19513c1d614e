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
use core::fmt;
use rand::{Rng as _, RngCore as _};
use serde::{Deserialize, Serialize};

use crate::identity::Identity;
use crate::rng::{self, Rng};
use crate::time::{Duration, Instant};
use crate::wire::WireError;

/// HyParView's parameters.
///
/// Start from [`Config::default`] (the paper's figures for 10,000 nodes) or
/// [`Config::for_cluster_size`], then set fields:
///
/// ```
/// use epidemic_core::Duration;
/// use epidemic_core::membership::hyparview::Config;
///
/// let mut config = Config::for_cluster_size(200);
/// config.shuffle_interval = Duration::from_secs(5);
/// assert_eq!(config.active_view_capacity, 4);
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// The most neighbors a node keeps: log(n) + c in the paper (§5).
    pub active_view_capacity: usize,
    /// The most passive peers a node keeps: k · (log(n) + c) in the paper.
    pub passive_view_capacity: usize,
    /// Active random walk length (ARWL): hops a `ForwardJoin` travels (§4.2).
    pub active_random_walk_length: u8,
    /// Passive random walk length (PRWL): the walk's ttl at which the joiner
    /// is added to a passive view (§4.2). Must be below ARWL to matter.
    pub passive_random_walk_length: u8,
    /// ka: active peers sent in a shuffle (§4.4).
    pub shuffle_active: usize,
    /// kp: passive peers sent in a shuffle (§4.4).
    pub shuffle_passive: usize,
    /// Hops a `Shuffle` travels before it is answered (§4.4).
    pub shuffle_ttl: u8,
    /// Time between two shuffles of one node.
    pub shuffle_interval: Duration,
    /// How long a `Neighbor` request (or a `Join`) waits for its answer.
    pub neighbor_timeout: Duration,
    /// How many peers lost to a link failure are remembered for
    /// reconnection (see "Healing partitions" in the module docs).
    pub lost_capacity: usize,
    /// How long a lost peer is remembered. A partition that lasts longer
    /// heals only through a new join.
    pub lost_retention: Duration,
    /// How many of its own shuffles in a row must get a familiar reply (from
    /// a neighbor, or from a passive peer and naming only known peers)
    /// before a node suspects that its component is closed and probes a
    /// passive peer with a high-priority `Neighbor` (see "Closed
    /// components" in the module docs). The threshold doubles after each
    /// probe, up to 32 times this. Zero turns the check off. Not in the
    /// paper; default 2.
    pub isolation_replies: u32,
    /// How many join contacts a node remembers for rejoining (see
    /// "Rejoining" in the module docs): those given to
    /// [`HyParView::join`], the oldest forgotten first. Zero turns
    /// rejoining off. Not in the paper; default 4.
    pub join_contacts: usize,
    /// The longest wait between two join retries. Retries start
    /// [`neighbor_timeout`](Self::neighbor_timeout) after a failed join
    /// and double up to this, with jitter. Not in the paper; default 40 s.
    pub join_retry_max: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            // §5: log10(10,000) + c with c = 1.
            active_view_capacity: 5,
            // §5: k · (log10(10,000) + 1) with k = 6.
            passive_view_capacity: 30,
            // §5: ARWL = 6, PRWL = 3.
            active_random_walk_length: 6,
            passive_random_walk_length: 3,
            // §5: ka = 3, kp = 4.
            shuffle_active: 3,
            shuffle_passive: 4,
            // The paper gives the shuffle walk a ttl but no separate figure;
            // it is the same kind of random walk as a join's, so it gets the
            // same length and ends about as far away.
            shuffle_ttl: 6,
            // The paper shuffles once per simulation cycle. On a real
            // network a cycle must be far longer than a round trip, and
            // short enough that passive views stay fresh: at 10 s each node
            // starts one 8-entry shuffle per period (with its walk and
            // reply, about eight small messages), and a 30-entry passive
            // view is renewed within a few periods. It is also the period
            // of Riak's metadata anti-entropy tick.
            shuffle_interval: Duration::from_secs(10),
            // A `Neighbor` is answered within one round trip. A peer that is
            // down is normally reported much sooner by the link; this is the
            // backstop for one that accepts a connection and never answers.
            // RFC 6298 starts TCP's retransmission timeout at 1 s, so a
            // connect that loses two SYNs completes after 3 s; 5 s covers
            // that plus a slow round trip, and stays under the shuffle
            // interval so a stuck request is replaced before the next tick.
            neighbor_timeout: Duration::from_secs(5),
            // Not in the paper. Eight entries cover more than the whole
            // active view (5) failing at once, so a node cut off from all its
            // neighbors by a partition still remembers each of them.
            lost_capacity: 8,
            // One probe per shuffle interval, so 30 probes over 5 minutes:
            // partitions of a network maintenance window heal by themselves,
            // and the cost of probing peers that really died stays bounded.
            lost_retention: Duration::from_secs(300),
            // Not in the paper. A shuffle walks 6 hops; in a large random
            // overlay it ends at a neighbor of its origin about once in
            // n / active_view_capacity walks, in a closed clique every
            // time. Two such replies in a row are rare enough at any size
            // where a split matters (at 1,000 nodes, about once per 40,000
            // shuffles), and they take two shuffle intervals, so a clique
            // left by the joins is probed within the three intervals the
            // simulator settles for.
            isolation_replies: 2,
            // Not in the paper, which only says that a node whose active
            // view is empty joins again. A few contacts are enough for one
            // of them to be up; four is what a seed-node list usually has.
            join_contacts: 4,
            // Not in the paper. Four shuffle intervals: a node cut off by a
            // partition or a crashed contact retries about once per 40 s at
            // worst, well within `lost_retention`, and a cluster of nodes
            // waiting for a dead contact costs one `Join` each per period.
            join_retry_max: Duration::from_secs(40),
        }
    }
}

impl Config {
    /// The paper's sizing for a cluster of about `n` nodes: an active view
    /// of ⌈log10(n)⌉ + 1 (c = 1), at least 3, and a passive view six times
    /// that (k = 6). Other fields are the defaults.
    ///
    /// The floor of 3 is ours: a random graph in which every node has two
    /// neighbors is a union of cycles and easily falls apart.
    pub fn for_cluster_size(n: usize) -> Config {
        // ⌈log10(n)⌉ without floating point, which `core` lacks.
        let log10 = match n.checked_ilog10() {
            None => 0,
            Some(l) => l as usize + usize::from(10usize.checked_pow(l) != Some(n)),
        };
        let active = (log10 + 1).max(3);
        Config {
            active_view_capacity: active,
            passive_view_capacity: active.saturating_mul(6),
            ..Config::default()
        }
    }

    /// The longest node list a `Shuffle` or `ShuffleReply` may carry: the
    /// sender itself, ka active and kp passive peers.
    pub fn max_shuffle_len(&self) -> usize {
        1usize
            .saturating_add(self.shuffle_active)
            .saturating_add(self.shuffle_passive)
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Destructured so that a new field cannot be forgotten here.
        let Config {
            active_view_capacity,
            passive_view_capacity,
            active_random_walk_length,
            passive_random_walk_length,
            shuffle_active,
            shuffle_passive,
            shuffle_ttl,
            shuffle_interval,
            neighbor_timeout,
            lost_capacity,
            lost_retention,
            isolation_replies,
            join_contacts,
            join_retry_max,
        } = self;
        f.debug_struct("Config")
            .field("active_view_capacity", active_view_capacity)
            .field("passive_view_capacity", passive_view_capacity)
            .field("active_random_walk_length", active_random_walk_length)
            .field("passive_random_walk_length", passive_random_walk_length)
            .field("shuffle_active", shuffle_active)
            .field("shuffle_passive", shuffle_passive)
            .field("shuffle_ttl", shuffle_ttl)
            .field("shuffle_interval", shuffle_interval)
            .field("neighbor_timeout", neighbor_timeout)
            .field("lost_capacity", lost_capacity)
            .field("lost_retention", lost_retention)
            .field("isolation_replies", isolation_replies)
            .field("join_contacts", join_contacts)
            .field("join_retry_max", join_retry_max)
            .finish()
    }
}

/// How strongly a `Neighbor` request asks (§4.3).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Priority {
    /// The requester has no neighbor at all (§4.3), or too few after a
    /// whole repair round, or is probing a lost peer or a way out of a
    /// closed component: the receiver accepts, and evicts a random neighbor
    /// if it must when the requester connects.
    High,
    /// The receiver accepts only if its active view has room.
    Low,
}

/// A HyParView message. The sender is known from the link it arrives on.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum Message<I> {
    /// "Let me in": sent by a new node to its contact (§4.2).
    Join,
    /// A join's random walk (§4.2).
    ForwardJoin {
        /// The node that joined.
        joiner: I,
        /// Hops left.
        ttl: u8,
    },
    /// "Will you be my neighbor?" (§4.3).
    Neighbor {
        /// How strongly.
        priority: Priority,
    },
    /// The answer to `Neighbor`. The sender's state is unchanged either
    /// way: on acceptance, the requester connects.
    NeighborReply {
        /// Whether the requester may connect.
        accepted: bool,
    },
    /// "You are my neighbor, over this link": the receiver makes the sender
    /// its neighbor unconditionally (evicting a random one if full).
    Connect {
        /// The link's id, chosen at random by the sender.
        link: u64,
    },
    /// "You are no longer my neighbor."
    Disconnect {
        /// The link closed. `None` when there was none: a refused join, or
        /// a node that has left answering a message.
        link: Option<u64>,
        /// The sender is leaving the cluster: forget it entirely rather than
        /// keep it as a passive peer.
        leaving: bool,
    },
    /// A passive-view exchange travelling along a random walk (§4.4).
    Shuffle {
        /// The node that started the exchange, and that gets the reply.
        origin: I,
        /// Hops left.
        ttl: u8,
        /// The origin and some of its active and passive peers.
        nodes: Vec<I>,
    },
    /// The end of a shuffle walk answering its origin (§4.4).
    ShuffleReply {
        /// Passive peers of the sender, as many as it received.
        nodes: Vec<I>,
    },
}

/// A change to the active view, reported exactly when it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<I> {
    /// The peer entered the active view: it is now a neighbor.
    NeighborUp(I),
    /// The peer left the active view.
    NeighborDown(I),
}

/// Messages counted by type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MessageCounts {
    /// `Join`.
    pub join: u64,
    /// `ForwardJoin`.
    pub forward_join: u64,
    /// `Neighbor`.
    pub neighbor: u64,
    /// `NeighborReply`.
    pub neighbor_reply: u64,
    /// `Connect`.
    pub connect: u64,
    /// `Disconnect`.
    pub disconnect: u64,
    /// `Shuffle`.
    pub shuffle: u64,
    /// `ShuffleReply`.
    pub shuffle_reply: u64,
}

impl MessageCounts {
    /// All messages together.
    pub fn total(&self) -> u64 {
        let MessageCounts {
            join,
            forward_join,
            neighbor,
            neighbor_reply,
            connect,
            disconnect,
            shuffle,
            shuffle_reply,
        } = *self;
        join + forward_join + neighbor + neighbor_reply + connect + disconnect + shuffle + shuffle_reply
    }

    fn record<I>(&mut self, msg: &Message<I>) {
        let counter = match msg {
            Message::Join => &mut self.join,
            Message::ForwardJoin { .. } => &mut self.forward_join,
            Message::Neighbor { .. } => &mut self.neighbor,
            Message::NeighborReply { .. } => &mut self.neighbor_reply,
            Message::Connect { .. } => &mut self.connect,
            Message::Disconnect { .. } => &mut self.disconnect,
            Message::Shuffle { .. } => &mut self.shuffle,
            Message::ShuffleReply { .. } => &mut self.shuffle_reply,
        };
        *counter = counter.saturating_add(1);
    }
}

/// Counters since the node was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
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

/// A neighbor and the id of the link to it.
#[derive(Debug, Clone)]
struct Link<I> {
    peer: I,
    id: u64,
}

#[derive(Debug, Clone)]
struct Pending<I> {
    peer: I,
    deadline: Instant,
    priority: Priority,
}

/// A peer lost to a link failure, remembered until `until`.
#[derive(Debug, Clone)]
struct Lost<I> {
    peer: I,
    until: Instant,
}

#[derive(Debug, Clone)]
struct PendingJoin<I> {
    contact: I,
    deadline: Instant,
}

/// Why a high-priority probe was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProbeKind {
    /// To a peer lost to a link failure ("Healing partitions").
    Lost,
    /// To a passive peer, from a component suspected closed.
    Isolation,
}

/// An outstanding high-priority probe.
#[derive(Debug, Clone)]
struct Probe<I> {
    contact: I,
    deadline: Instant,
    kind: ProbeKind,
}

/// One node's HyParView state machine. See the [module docs](self).
///
/// Drive it like every state machine in the core: feed inputs
/// (`handle_message`, `handle_link_down`, `handle_timeout`) and commands
/// (`join`, `leave`), and after each one drain `poll_transmit` and
/// `poll_event`, then sleep until `poll_timeout`. Time must not go
/// backwards.
#[derive(Debug)]
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

    /// Checks a decoded message against the limits of `config`: node lists
    /// in `Shuffle` and `ShuffleReply` may hold at most
    /// [`Config::max_shuffle_len`] entries.
    ///
    /// [`handle_message`](Self::handle_message) applies this itself; a
    /// driver may call it first to refuse a frame before handing it over.
    pub fn validate(msg: &Message<I>, config: &Config) -> Result<(), WireError> {
        let max = config.max_shuffle_len();
        match msg {
            Message::Shuffle { nodes, .. } if nodes.len() > max => {
                Err(WireError::Invalid("shuffle lists more than 1 + ka + kp nodes"))
            }
            Message::ShuffleReply { nodes } if nodes.len() > max => {
                Err(WireError::Invalid("shuffle reply lists more than 1 + ka + kp nodes"))
            }
            _ => Ok(()),
        }
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
            return;
        }
        self.left = false;
        self.arm_shuffle(now);
        self.remember_contact(&contact);
        self.send_join(now, contact);
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
    }

    /// Adds `peer` to the passive view, as a candidate for promotion (for
    /// instance seed nodes from configuration). Ignored for this node and
    /// for neighbors; may evict a random passive peer when full.
    pub fn insert_passive(&mut self, peer: I) {
        if !self.left {
            self.add_passive(peer);
        }
    }

    // ----- inputs -----

    /// Handles a message from `from`.
    ///
    /// Never panics. Invalid, out-of-place or self-referential messages are
    /// counted in [`Stats`] and dropped.
    pub fn handle_message(&mut self, now: Instant, from: I, msg: Message<I>) {
        self.stats.received.record(&msg);
        if from == self.me {
            self.stats.from_self += 1;
            return;
        }
        if Self::validate(&msg, &self.config).is_err() {
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
        if self.left || *peer == self.me {
            return;
        }
        let known = self.is_active(peer) || self.is_passive(peer) || self.pending.iter().any(|p| p.peer == *peer);
        let probed = self.probe.as_ref().is_some_and(|p| p.contact == *peer);
        if probed {
            self.probe = None;
        }
        // A probed peer is still in the lost list; re-remembering it would
        // extend its retention forever.
        if known && !probed {
            self.remember_lost(now, peer.clone());
        }
        self.close(peer, false);
        if self.remove_pending(peer) {
            self.stats.promotions_failed += 1;
        }
        self.remove_passive(peer);
        if self.joining.as_ref().is_some_and(|j| j.contact == *peer) {
            self.join_failed(now);
        }
        self.refill(now);
    }

    /// Runs whatever timers are due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.left {
            return;
        }
        let mut expired = Vec::new();
        self.pending.retain(|p| {
            let keep = p.deadline > now;
            if !keep {
                expired.push(p.peer.clone());
            }
            keep
        });
        for peer in expired {
            // No answer in time: treat it as down (§4.3).
            self.stats.promotions_failed += 1;
            self.remove_passive(&peer);
        }
        if self.joining.as_ref().is_some_and(|j| j.deadline <= now) {
            self.join_failed(now);
        }
        self.on_rejoin_timer(now);
        if let Some(probe) = self.probe.take_if(|p| p.deadline <= now) {
            if probe.kind == ProbeKind::Isolation {
                // No answer in time: treat it as down (§4.3).
                self.remove_passive(&probe.contact);
            }
        }
        if self.next_shuffle.is_some_and(|t| t <= now) {
            self.next_shuffle = Some(now + self.shuffle_interval());
            self.start_shuffle();
            self.start_probe(now);
            // Before `tried` is cleared: it tells whether every passive
            // peer was asked in the round that ends.
            self.rejoin_tick(now);
            if self.active.len() < self.config.active_view_capacity {
                // A new repair round: refusals of the last one may no longer hold.
                self.tried.clear();
            }
            // A whole round of low-priority requests left the node with
            // fewer than half its neighbors: the next round insists (see
            // "Closed components").
            self.escalate = self.very_short();
        }
        self.refill(now);
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

    // ----- message handlers -----

    /// §4.2: the contact connects to the joiner and starts a walk through
    /// each of its other neighbors.
    fn on_join(&mut self, joiner: I) {
        if self.is_active(&joiner) {
            // A neighbor joining again has restarted and forgotten our
            // link: replace it.
            self.close(&joiner, false);
        }
        if !self.open(joiner.clone()) {
            self.send(
                joiner,
                Message::Disconnect {
                    link: None,
                    leaving: false,
                },
            );
            return;
        }
        let ttl = self.config.active_random_walk_length;
        let others: Vec<I> = self.active_view().filter(|p| **p != joiner).cloned().collect();
        for peer in others {
            self.send(
                peer,
                Message::ForwardJoin {
                    joiner: joiner.clone(),
                    ttl,
                },
            );
        }
    }

    /// §4.2, Algorithm 1.
    fn on_forward_join(&mut self, from: I, joiner: I, ttl: u8) {
        if joiner == self.me {
            self.stats.names_self += 1;
            return;
        }
        let ttl = ttl.min(self.config.active_random_walk_length);
        if ttl == 0 || self.active.len() <= 1 {
            self.connect_joiner(joiner);
            return;
        }
        if ttl == self.config.passive_random_walk_length {
            self.add_passive(joiner.clone());
        }
        let next = pick(
            &mut self.rng,
            self.active
                .iter()
                .map(|l| &l.peer)
                .filter(|p| **p != from && **p != joiner),
        );
        match next {
            Some(next) => self.send(next, Message::ForwardJoin { joiner, ttl: ttl - 1 }),
            None => self.connect_joiner(joiner),
        }
    }

    fn connect_joiner(&mut self, joiner: I) {
        if !self.is_active(&joiner) {
            self.open(joiner);
        }
    }

    /// §4.3: a high-priority request is always accepted, a low one only
    /// with room to spare. Accepting changes nothing here: the requester
    /// connects if it still wants to.
    fn on_neighbor(&mut self, from: I, priority: Priority) {
        // A lost peer asking to reconnect: the bridge is being built from
        // its side, no need to probe it from ours.
        self.lost.retain(|l| l.peer != from);
        let capacity = self.config.active_view_capacity;
        let mut accepted =
            self.is_active(&from) || (capacity > 0 && (priority == Priority::High || self.active.len() < capacity));
        if !accepted && capacity > 0 && self.suspects_closed() && self.maybe_outside(&from) {
            // A stranger asks while we suspect our component is closed and
            // have no passive peer left to probe: it is a way out.
            self.accept_as_way_out();
            accepted = true;
        }
        self.send(from, Message::NeighborReply { accepted });
    }

    fn on_neighbor_reply(&mut self, from: I, accepted: bool) {
        if let Some(probe) = self.probe.take_if(|p| p.contact == from) {
            if probe.kind == ProbeKind::Isolation {
                self.on_isolation_reply(from, accepted);
                return;
            }
            if accepted && !self.is_active(&from) {
                // The lost peer is back: it may be the only bridge to a
                // healed partition, so it gets a slot even if the view is
                // full. One bridge is enough; forget the other lost peers.
                self.lost.clear();
                self.open(from);
                self.stats.reconnects_succeeded += 1;
            }
            return;
        }
        let asked = self.remove_pending(&from);
        if !accepted {
            if asked {
                // It stays a passive peer; `tried` keeps it from being asked
                // again this round.
                self.stats.promotions_refused += 1;
            } else {
                self.stats.unexpected += 1;
            }
            return;
        }
        // A late or surplus acceptance needs no undoing: the peer has not
        // connected, it only allowed us to.
        if asked && !self.is_active(&from) && self.active.len() < self.config.active_view_capacity {
            self.open(from);
            self.stats.promotions_succeeded += 1;
        }
    }

    fn on_connect(&mut self, from: I, link: u64) {
        if self.joining.as_ref().is_some_and(|j| j.contact == from) {
            self.join_answered();
        }
        self.remove_pending(&from);
        match self.active.iter_mut().find(|l| l.peer == from) {
            Some(current) if current.id == link => {}
            Some(current) => {
                // Both sides connected at once. Each sees the other's
                // Connect while connected, and both keep the larger id.
                let closed = current.id.min(link);
                current.id = current.id.max(link);
                self.send(
                    from,
                    Message::Disconnect {
                        link: Some(closed),
                        leaving: false,
                    },
                );
            }
            None => {
                if !self.add_active(from.clone(), link) {
                    self.send(
                        from,
                        Message::Disconnect {
                            link: Some(link),
                            leaving: false,
                        },
                    );
                }
            }
        }
    }

    fn on_disconnect(&mut self, now: Instant, from: I, link: Option<u64>, leaving: bool) {
        let closed = link.is_some() && link == self.link(&from);
        if closed {
            self.remove_active(&from);
        } else if link.is_some() {
            // A link already replaced or closed: a harmless race.
            self.stats.unexpected += 1;
        }
        if (link.is_none() || leaving) && self.remove_pending(&from) {
            self.stats.promotions_refused += 1;
        }
        if self.joining.as_ref().is_some_and(|j| j.contact == from) && (link.is_none() || leaving) {
            self.join_failed(now);
        }
        if leaving {
            self.remove_passive(&from);
            self.lost.retain(|l| l.peer != from);
        } else if closed {
            // §4.3: a dropped neighbor is still a good backup; but do not
            // ask it straight back in this round, it just chose to leave us.
            self.add_passive(from.clone());
            if self.passive.contains(&from) && !self.tried.contains(&from) {
                self.tried.push(from);
            }
        }
    }

    /// §4.4: forward along the walk, or answer and merge.
    fn on_shuffle(&mut self, from: I, origin: I, ttl: u8, nodes: Vec<I>) {
        if origin == self.me {
            self.stats.names_self += 1;
            return;
        }
        self.seen_in_component(&origin);
        let ttl = ttl.min(self.config.shuffle_ttl);
        if ttl > 0 && self.active.len() > 1 {
            let next = pick(
                &mut self.rng,
                self.active
                    .iter()
                    .map(|l| &l.peer)
                    .filter(|p| **p != from && **p != origin),
            );
            if let Some(next) = next {
                self.send(
                    next,
                    Message::Shuffle {
                        origin,
                        ttl: ttl - 1,
                        nodes,
                    },
                );
                return;
            }
        }
        let candidates: Vec<I> = self.passive.iter().filter(|p| **p != origin).cloned().collect();
        let reply = sample(&mut self.rng, candidates, nodes.len());
        self.send(origin, Message::ShuffleReply { nodes: reply.clone() });
        self.merge_passive(&nodes, &reply);
    }

    fn on_shuffle_reply(&mut self, now: Instant, from: I, nodes: Vec<I>) {
        match self.shuffle_sent.take() {
            Some(sent) => {
                // Before the merge, which may bring the replier in.
                self.observe_shuffle_reply(now, &from, &nodes);
                self.merge_passive(&nodes, &sent);
            }
            None => self.stats.unexpected += 1,
        }
    }

    // ----- timers and repair -----

    fn shuffle_interval(&self) -> Duration {
        // A zero interval would make the timer fire forever at one instant.
        self.config.shuffle_interval.max(Duration::from_micros(1))
    }

    /// Arms the shuffle timer at a random phase within one interval.
    fn arm_shuffle(&mut self, now: Instant) {
        if self.next_shuffle.is_none() && !self.left {
            let interval = self.shuffle_interval().as_micros();
            let phase = self.rng.random_range(1..=interval);
            self.next_shuffle = Some(now + Duration::from_micros(phase));
        }
    }

    /// §4.4: send ourselves, ka neighbors and kp passive peers along a
    /// random walk starting at a random neighbor.
    fn start_shuffle(&mut self) {
        let Some(target) = pick(&mut self.rng, self.active.iter().map(|l| &l.peer)) else {
            return;
        };
        let neighbors: Vec<I> = self.active_view().filter(|p| **p != target).cloned().collect();
        let mut sent = sample(&mut self.rng, neighbors, self.config.shuffle_active);
        sent.extend(sample(&mut self.rng, self.passive.clone(), self.config.shuffle_passive));
        let mut nodes = Vec::with_capacity(sent.len() + 1);
        nodes.push(self.me.clone());
        nodes.extend(sent.iter().cloned());
        self.shuffle_sent = Some(sent);
        self.send(
            target,
            Message::Shuffle {
                origin: self.me.clone(),
                ttl: self.config.shuffle_ttl,
                nodes,
            },
        );
    }

    /// Remembers `peer`, lost to a link failure, for later reconnection.
    fn remember_lost(&mut self, now: Instant, peer: I) {
        if self.config.lost_capacity == 0 {
            return;
        }
        self.lost.retain(|l| l.peer != peer);
        while self.lost.len() >= self.config.lost_capacity {
            self.lost.pop_front();
        }
        self.lost.push_back(Lost {
            peer,
            until: now + self.config.lost_retention,
        });
    }

    /// Not in the paper: once per shuffle tick, ask one remembered lost peer
    /// to become a neighbor again, with high priority.
    fn start_probe(&mut self, now: Instant) {
        self.lost.retain(|l| l.until > now);
        if self.probe.is_some() {
            return;
        }
        let candidates: Vec<usize> = (0..self.lost.len())
            .filter(|&i| !self.is_active(&self.lost[i].peer))
            .collect();
        let Some(&i) = rng::index(&mut self.rng, candidates.len()).map(|k| &candidates[k]) else {
            return;
        };
        let Some(lost) = self.lost.remove(i) else { return };
        self.stats.reconnects_attempted += 1;
        self.probe = Some(Probe {
            contact: lost.peer.clone(),
            deadline: now + self.config.neighbor_timeout,
            kind: ProbeKind::Lost,
        });
        // Put it back at the end: if the probe fails it is probed again on a
        // later tick, until its retention ends.
        self.lost.push_back(lost.clone());
        self.send(
            lost.peer,
            Message::Neighbor {
                priority: Priority::High,
            },
        );
    }

    /// §4.3: ask untried passive peers to fill the free active slots.
    fn refill(&mut self, now: Instant) {
        if self.left {
            return;
        }
        while self.active.len() + self.pending.len() < self.config.active_view_capacity {
            let Some(peer) = pick(&mut self.rng, self.passive.iter().filter(|p| !self.tried.contains(p))) else {
                break;
            };
            let insist = self.active.is_empty() || (self.escalate && self.very_short());
            let priority = if insist && self.pending.iter().all(|p| p.priority == Priority::Low) {
                if !self.active.is_empty() {
                    self.stats.escalations += 1;
                }
                self.escalate = false;
                Priority::High
            } else {
                Priority::Low
            };
            self.tried.push(peer.clone());
            self.pending.push(Pending {
                peer: peer.clone(),
                deadline: now + self.config.neighbor_timeout,
                priority,
            });
            self.stats.promotions_attempted += 1;
            self.send(peer, Message::Neighbor { priority });
        }
    }

    // ----- views -----

    fn link(&self, peer: &I) -> Option<u64> {
        self.active.iter().find(|l| l.peer == *peer).map(|l| l.id)
    }

    /// Makes `peer` a neighbor over a new link and tells it with `Connect`.
    /// False only if the peer is this node or the capacity is zero.
    fn open(&mut self, peer: I) -> bool {
        let mut link = self.rng.next_u64();
        while self.active.iter().any(|l| l.id == link) {
            link = self.rng.next_u64();
        }
        if !self.add_active(peer.clone(), link) {
            return false;
        }
        self.send(peer, Message::Connect { link });
        true
    }

    /// Closes the link to `peer`, telling it with `Disconnect`. The peer is
    /// not kept as a passive peer: the caller decides.
    fn close(&mut self, peer: &I, leaving: bool) {
        if let Some(link) = self.link(peer) {
            self.remove_active(peer);
            self.send(
                peer.clone(),
                Message::Disconnect {
                    link: Some(link),
                    leaving,
                },
            );
        }
    }

    /// Adds `peer` over `link`, evicting a random neighbor (with
    /// `Disconnect`) if the view is full. False only if the peer is this
    /// node or the capacity is zero. The caller has checked that `peer` is
    /// not a neighbor already.
    fn add_active(&mut self, peer: I, link: u64) -> bool {
        let capacity = self.config.active_view_capacity;
        if peer == self.me || capacity == 0 {
            return false;
        }
        self.remove_pending(&peer);
        self.remove_passive(&peer);
        while self.active.len() >= capacity {
            let Some(victim) = pick(&mut self.rng, self.active.iter().map(|l| &l.peer)) else {
                break;
            };
            self.stats.evictions += 1;
            self.close(&victim, false);
            self.add_passive(victim);
        }
        self.active.push(Link {
            peer: peer.clone(),
            id: link,
        });
        self.stats.neighbor_up += 1;
        self.events.push_back(Event::NeighborUp(peer.clone()));
        if self.joining.as_ref().is_some_and(|j| j.contact == peer) {
            self.join_answered();
        }
        if self.active.len() >= capacity {
            // The repair round is over.
            self.tried.clear();
        }
        true
    }

    fn remove_active(&mut self, peer: &I) -> bool {
        match self.active.iter().position(|l| l.peer == *peer) {
            Some(i) => {
                let link = self.active.remove(i);
                self.neighbor_down(link.peer);
                true
            }
            None => false,
        }
    }

    fn neighbor_down(&mut self, peer: I) {
        self.stats.neighbor_down += 1;
        self.events.push_back(Event::NeighborDown(peer));
    }

    fn add_passive(&mut self, peer: I) {
        if peer == self.me || self.is_active(&peer) || self.passive.contains(&peer) {
            return;
        }
        if self.config.passive_view_capacity == 0 {
            return;
        }
        while self.passive.len() >= self.config.passive_view_capacity {
            let Some(i) = rng::index(&mut self.rng, self.passive.len()) else {
                break;
            };
            self.evict_passive(i);
        }
        self.passive.push(peer);
    }

    /// §4.4: merge shuffled entries, making room by dropping first the
    /// entries we sent to the other side (it has them now), then random ones
    /// other than those this merge brought in.
    fn merge_passive(&mut self, nodes: &[I], sent: &[I]) {
        let capacity = self.config.passive_view_capacity;
        if capacity == 0 {
            return;
        }
        for node in nodes {
            if *node == self.me || self.is_active(node) || self.passive.contains(node) {
                continue;
            }
            while self.passive.len() >= capacity {
                let i = sent
                    .iter()
                    .find_map(|s| self.passive.iter().position(|p| p == s))
                    .or_else(|| {
                        let old: Vec<usize> = (0..self.passive.len())
                            .filter(|&i| self.passive.get(i).is_some_and(|p| !nodes.contains(p)))
                            .collect();
                        rng::index(&mut self.rng, old.len()).and_then(|j| old.get(j).copied())
                    })
                    .or_else(|| rng::index(&mut self.rng, self.passive.len()));
                let Some(i) = i else {
                    break;
                };
                self.evict_passive(i);
            }
            self.passive.push(node.clone());
        }
    }

    fn evict_passive(&mut self, i: usize) {
        if i < self.passive.len() {
            let peer = self.passive.remove(i);
            self.tried.retain(|t| *t != peer);
            self.stats.passive_evictions += 1;
        }
    }

    fn remove_passive(&mut self, peer: &I) {
        self.passive.retain(|p| p != peer);
        self.tried.retain(|t| t != peer);
    }

    fn remove_pending(&mut self, peer: &I) -> bool {
        let before = self.pending.len();
        self.pending.retain(|p| p.peer != *peer);
        self.pending.len() != before
    }

    fn send(&mut self, to: I, msg: Message<I>) {
        self.stats.sent.record(&msg);
        self.transmits.push_back((to, msg));
    }
}

/// A uniformly chosen candidate. Views are small, so collecting is cheap.
fn pick<'a, I: Clone + 'a>(rng: &mut Rng, candidates: impl Iterator<Item = &'a I>) -> Option<I> {
    let candidates: Vec<&I> = candidates.collect();
    let i = rng::index(rng, candidates.len())?;
    candidates.get(i).map(|p| (*p).clone())
}

/// Up to `k` distinct entries of `pool`, chosen uniformly (a partial
/// Fisher–Yates shuffle).
fn sample<I>(rng: &mut Rng, mut pool: Vec<I>, k: usize) -> Vec<I> {
    let k = k.min(pool.len());
    for i in 0..k {
        if let Some(j) = rng::index(rng, pool.len() - i) {
            pool.swap(i, i + j);
        }
    }
    pool.truncate(k);
    pool
}

mod isolation;
mod rejoin;
#[cfg(test)]
mod tests;
