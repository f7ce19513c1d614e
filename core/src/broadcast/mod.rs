//! Plumtree: epidemic broadcast trees (Leitão, Pereira, Rodrigues, SRDS 2007),
//! with what Riak's cluster metadata learned in production.
//!
//! A broadcast travels as a full payload ("eager push") along the edges of a
//! spanning tree embedded in the membership overlay, and as a short
//! announcement ("lazy push", IHAVE) along every other overlay edge. The
//! tree is not computed: it *emerges* from pruning the edges that deliver
//! duplicates, and it heals by grafting the edges that announce what the tree
//! failed to deliver. [`Plumtree`] is that protocol as a sans-IO state machine.
//!
//! ```text
//!            GOSSIP (payload)              IHAVE (id, round), batched
//!   root ─────────────────────► p ─────────────────────────────► q
//!                               │◄──── IGNORED_IHAVE (q had it) ─┤
//!                               │◄──── GRAFT (q lacks it) ───────┤  after a timer
//!                               │───── GOSSIP ──────────────────►│
//!          duplicate GOSSIP ──► x ──── PRUNE ──► back to the sender
//! ```
//!
//! # State
//!
//! - **Eager and lazy sets** (paper §3). `eager` neighbours get the
//!   payload, `lazy` ones an announcement. Every neighbour starts eager
//!   (the paper's dynamic membership: "a new member is simply added to the
//!   set of eagerPushPeers", as Riak quotes it). In full-mesh mode the eager
//!   set starts capped at [`Config::initial_eager_fanout`] (Riak's
//!   `ln(n) + 1`), kept a uniform random sample of the neighbours, and the
//!   rest start lazy, up to [`Config::initial_lazy_fanout`] (Riak: one;
//!   [`Config::mesh`] makes them all lazy, and says why).
//! - **Per-root sets** (Riak's sender-based trees). The paper builds one
//!   shared tree and measures what that costs other senders (last delivery
//!   hop ≈17–18 against ≈8–9). With [`TreeMode::PerRoot`] each
//!   originating node ("root") has its own eager/lazy pair, so every sender
//!   gets a shortest-latency tree of its own rather than sharing one tree
//!   built for somebody else. A root is *tracked* only once its sets differ
//!   from the shared pair, and at most `max_roots` are: the least recently
//!   used is evicted and falls back to the shared pair, which stays the
//!   template every new root starts from (a copy, as Riak's `common_eagers`
//!   and `common_lazys`). With [`TreeMode::Shared`] there is one pair, as in
//!   the paper.
//! - **Missing** (§3.7). For each announced message we do not have, the
//!   announcers in arrival order and one timer. Bounded by
//!   [`Config::max_missing`] ids and [`Config::max_announcers`] per id. An
//!   id is never forgotten before one graft attempt: the one evicted to
//!   make room is grafted then if it was not yet. Forgetting it unasked
//!   broke repair above `max_missing / ihave_timeout` (about 2,000 msg/s by
//!   default): a node cut off from a tree saw every entry evicted before
//!   its timer fired, so it never grafted back and missed all but the
//!   first 1,024 messages.
//! - **Outstanding** (Riak). Every IHAVE sent is remembered per peer until
//!   the peer acknowledges it with an [`Message::IgnoredIHave`] (or a GRAFT we
//!   cannot answer), and re-sent on every [`Config::lazy_tick`] until then.
//!   A lost IHAVE is therefore harmless. Bounded per peer by
//!   [`Config::max_outstanding`]; past it the oldest is dropped and counted.
//! - **Lazy queue** (Riak's "lazy IHAVE batching"). Announcements wait per
//!   peer for the next dispatch, [`Config::dispatch_interval`] after the
//!   first, and leave in batches of at most [`Config::max_ihave_batch`].
//!   Bounded per peer by [`Config::max_lazy_queue`]; a full batch leaves at
//!   once, so a burst never overflows the queue and loses announcements
//!   that nobody would make again.
//! - **Received cache** (§3.8). The round and sender of each recently
//!   delivered message, for the hop-count optimisation, and whether it came
//!   by the tree (below). Bounded by [`Config::max_received`].
//! - **Parents.** Per root, the neighbour that last delivered one of its
//!   messages by the tree. Bounded by the number of tracked roots (at
//!   least 64).
//! - **Recent messages** (neither the paper nor Riak). The ids delivered or
//!   originated in the last [`Config::catch_up_window`], announced to each
//!   neighbour that comes up. Bounded by [`Config::max_catch_up`].
//!
//! What a message *is* and whether it is new is not the engine's business:
//! that is the [`Handler`]'s, answered from the application's store. The
//! engine never hashes payloads; message ids come from the caller ((origin,
//! sequence) for plain broadcasts, (key, context) for metadata).
//! [`MessageCache`] is a bounded handler for plain broadcasts (it forgets
//! ids by count; the `Node` pairs it with exact per-origin sequence
//! tracking, so a late copy is never delivered twice).
//!
//! # Messages
//!
//! See [`Message`]: `Gossip` (eager push), `IHave` (lazy push, batched),
//! `Graft` (pull a message and join the sender's eager set), `Attach` (join
//! the eager set without a message: the paper's `GRAFT(null)` of §3.8),
//! `Prune` (leave the eager set) and `IgnoredIHave` (Riak's acknowledgement
//! of announcements we did not need).
//!
//! # Timers
//!
//! All are internal deadlines reported by [`Plumtree::poll_timeout`]; an idle
//! engine has none.
//!
//! - **`ihave_timeout`** (the paper's *timeout1*, §3.7): started by the first
//!   announcement of a missing message. If the payload has not arrived when
//!   it fires, the first announcer is grafted.
//! - **`graft_timeout`** (*timeout2*, §3.7): after each graft, how long to
//!   wait for the payload before grafting the next announcer.
//! - **`dispatch_interval`** (Riak): flushes the lazy queues.
//! - **`lazy_tick`** (Riak, 1 s): re-sends unacknowledged announcements.
//!
//! # Pruning with broadcasts in flight
//!
//! The paper's rules are: a duplicate prunes its sender (§3.6), and a new
//! message makes its sender eager. With one broadcast at a time they build
//! a stable tree. With a window of them in flight (32, say) they did not:
//! after node `x` prunes `b` because `a`'s copy came first, `b`'s pushes of
//! the rest of the window are still on the wire. When one of them beats
//! `a`'s copy (per-frame latency varies), `x` delivered it, made `b` eager
//! again on its side only (`b` had already made `x` lazy on the PRUNE), and
//! then pruned `a` for the duplicate that followed. It also pushed the
//! message to `a`, which had it, and `a` pruned `x`. Either way `x` ended
//! with no peer pushing to it, and every broadcast of the window reached it
//! only through IHAVE, one `ihave_timeout` late, until a timer graft
//! restored an edge, whose own duplicates started the next round. PRUNEs
//! never stopped and slow deliveries came in whole windows. So:
//!
//! - A new message from a peer in our lazy set for its root (a push sent
//!   before our PRUNE arrived) is delivered and forwarded, but does not make
//!   the peer eager, and is not pushed to our parent for that root (the
//!   neighbour that last delivered the root's messages by the tree, which
//!   is upstream and has it).
//! - The duplicate that then arrives from an eager peer does not prune it:
//!   that peer is the tree's path, the first copy was the leftover
//!   ([`Stats::leftovers`]). Duplicates from anyone else prune as in the
//!   paper, and a lazy peer's duplicate is answered with a PRUNE again,
//!   which repairs a PRUNE that was lost.
//!
//! On the bus (20 nodes, 32 in flight from the first broadcast,
//! `adapters/mem/tests/rate.rs`) this took the IHAVE-timer grafts of 2,000
//! broadcasts from 317 to 0, and at 3,000 msg/s from 12,472 to 0.
//!
//! # Choices beyond the paper and Riak
//!
//! - A node never delivers a message whose root is itself, nor grafts one:
//!   a GOSSIP of it is a duplicate and an IHAVE of it is acknowledged,
//!   whatever the handler still remembers.
//! - Every eager push is also remembered as outstanding and re-announced
//!   until acknowledged ([`Config::retransmit_eager`], on by default), so a
//!   push lost without its link failing is repaired.
//! - A GRAFT answered with the payload leaves the announcement outstanding,
//!   as in Riak (`handle_graft` acknowledges only stale grafts): if the
//!   payload is lost, the next lazy tick announces it again and the peer
//!   grafts again. The peer acknowledges with IGNORED_IHAVE once it has the
//!   message. A GRAFT we cannot answer (stale or missing) does acknowledge.
//! - The optimisation's payload-less graft is its own message,
//!   [`Message::Attach`].
//! - Riak grafts on the first IHAVE; this engine waits for the paper's
//!   timers, so an announcement that merely beats the eager path costs
//!   nothing.
//! - The sender of a payload and the announcers of a message have it, so
//!   they get neither the payload nor an announcement of it when we forward
//!   it; an IHAVE or GOSSIP from a peer also clears any outstanding
//!   announcement of ours for that id.
//! - Only the membership layer makes a peer a neighbour. Messages from other
//!   peers are processed (their payloads delivered, their grafts answered)
//!   but never put them in a set, so sets are bounded by the neighbour count.
//! - A neighbour that comes up is announced the recent messages (catch-up).
//!   After a massive failure a node promotes passive peers while the next
//!   broadcast is under way; if the broadcast has already passed the peer it
//!   connects to, nobody would announce it again, and the node would miss
//!   it. The catch-up IHAVE lets it graft. In `epidemic sim failure` at
//!   10,000 nodes it lifts the first broadcast after 30% and 40% of the nodes
//!   fail from 99.99% and 99.97% to 100%.
//! - Timers run only while there is work: an idle engine has no deadline.
//! - Outputs (transmits, events) are queues the driver drains after every
//!   call; each call adds a bounded amount to them.
//!
//! # Example
//!
//! Two engines passing a broadcast by hand; a driver does the same with a
//! transport in between.
//!
//! ```
//! use bytes::Bytes;
//! use epidemic_core::broadcast::{Config, Event, MessageCache, Plumtree};
//! use epidemic_core::Instant;
//!
//! // Identities are u64 here; plain broadcasts use (origin, sequence) as id.
//! let mut a: Plumtree<u64, (u64, u64)> = Plumtree::new(1, Config::default(), 7);
//! let mut b: Plumtree<u64, (u64, u64)> = Plumtree::new(2, Config::default(), 8);
//! let (mut store_a, mut store_b) = (MessageCache::new(64, 1024), MessageCache::new(64, 1024));
//! let now = Instant::ZERO;
//! a.neighbor_up(now, 2);
//! b.neighbor_up(now, 1);
//!
//! a.broadcast(now, (1, 1), Bytes::from_static(b"hello"), &mut store_a).unwrap();
//! while let Some((to, msg)) = a.poll_transmit() {
//!     assert_eq!(to, 2);
//!     b.handle_message(now, 1, msg, &mut store_b);
//! }
//! match b.poll_event() {
//!     Some(Event::Delivered { id, root, hops, payload }) => {
//!         assert_eq!((id, root, hops), ((1, 1), 1, 1));
//!         assert_eq!(&payload[..], b"hello");
//!     }
//!     other => panic!("expected a delivery, got {other:?}"),
//! }
//! assert!(b.poll_event().is_none());
//! ```

use crate::time::Instant;
use alloc::vec::Vec;
use bytes::Bytes;
use core::fmt::{self, Debug};
use core::hash::Hash;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

mod batch;
pub(crate) use batch::gossip_frame_len;
mod bounded;
mod cache;
mod config;
mod id;
mod missing;
mod peer;
mod plumtree;
mod roots;
mod seen;
mod stats;
#[cfg(test)]
mod tests;

#[doc(hidden)]
pub use cache::MessageCache;
#[doc(hidden)]
pub use config::mesh_eager_fanout;
pub use config::{Config, TreeMode};
pub use id::BroadcastId;
#[doc(hidden)]
pub use plumtree::Plumtree;
pub(crate) use seen::Seen;
pub use stats::{Counts, Stats};

/// What the engine needs of a message id.
///
/// Blanket-implemented. Ids are chosen by the caller and are never derived
/// from payloads, so two identical payloads are two messages.
#[doc(hidden)]
pub trait MessageId: Clone + Eq + Ord + Hash + Debug + Serialize + DeserializeOwned + 'static {}

impl<T> MessageId for T where T: Clone + Eq + Ord + Hash + Debug + Serialize + DeserializeOwned + 'static {}

/// The answer to a GRAFT, from the application's store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Graft {
    /// We have the message: here is its payload, to be sent to the grafter.
    Payload(Bytes),
    /// We hold something newer that supersedes it; the grafter will get that
    /// by its own broadcast. Nothing is sent.
    Stale,
    /// We no longer have it (evicted from a cache, say). Nothing is sent; the
    /// grafter tries its next announcer.
    Missing,
}

/// The application's side of the broadcast (DESIGN.md, "the handler
/// contract", after Riak's `riak_core_broadcast_handler`).
///
/// The questions are answered from the application's store, not only from a
/// cache, which is what lets the metadata store and a plain message cache
/// share one engine.
#[doc(hidden)]
pub trait Handler<M> {
    /// Delivers (or merges) an incoming payload. `true` means it was new:
    /// the engine reports it and keeps forwarding it. `false` means we
    /// already had it (or something newer), which makes the sender's copy a
    /// duplicate. `now` is the time of the input being handled.
    fn merge(&mut self, now: Instant, id: &M, payload: &Bytes) -> bool;

    /// Whether we already have `id` or something newer. An announcement of a
    /// stale id is acknowledged with an "ignored IHAVE" instead of grafted.
    fn is_stale(&mut self, id: &M) -> bool;

    /// Answers a GRAFT for `id` from the store.
    fn graft(&mut self, id: &M) -> Graft;
}

/// One lazy-push announcement: "I have `id`, which reached me from `root`;
/// through me it would be hop `round + 1`".
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[doc(hidden)]
pub struct Announcement<I, M> {
    /// The announced message.
    pub id: M,
    /// The node that originated it.
    pub root: I,
    /// Hops the payload would have travelled when sent on from the announcer
    /// (the same count a GOSSIP would carry).
    pub round: u32,
}

/// Plumtree's messages.
///
/// `round` counts hops so far: the origin sends round 0 and every forward
/// adds one, so a receiver is at hop `round + 1` (PAPERS.md: "the first send
/// is hop 1").
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[doc(hidden)]
pub enum Message<I, M> {
    /// Eager push of a payload (paper §3).
    Gossip {
        /// The message id.
        id: M,
        /// The originating node: which tree this travels on.
        root: I,
        /// Hops so far.
        round: u32,
        /// The application's payload.
        payload: Bytes,
    },
    /// Lazy push (paper §3), batched per peer (Riak).
    IHave {
        /// What the sender has; never empty, at most
        /// [`Config::max_ihave_batch`].
        announcements: Vec<Announcement<I, M>>,
    },
    /// "Send me `id`, and put me in your eager set for `root`" (paper §3.7).
    Graft {
        /// The wanted message.
        id: M,
        /// Its tree.
        root: I,
        /// The round from the announcement being grafted.
        round: u32,
    },
    /// "Put me in your eager set for `root`; I need no payload". The paper's
    /// `GRAFT(null, r)` of the hop-count optimisation (§3.8): the sender
    /// already has the message that showed the shorter path, so a GRAFT that
    /// asked for it would only bring a duplicate, and that duplicate would
    /// prune the new edge straight away.
    Attach {
        /// The tree to join.
        root: I,
    },
    /// "Move me to your lazy set for `root`" (paper §3.6).
    Prune {
        /// The tree to leave.
        root: I,
    },
    /// "I did not need these announcements" (Riak's `ignored_i_have`): the
    /// acknowledgement that clears them from the sender's outstanding set.
    IgnoredIHave {
        /// The acknowledged ids; never empty, at most
        /// [`Config::max_ihave_batch`].
        ids: Vec<M>,
    },
}

/// What the engine tells the application.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[doc(hidden)]
pub enum Event<I, M> {
    /// A message new to us (the handler's `merge` said so).
    ///
    /// Not emitted at the origin: the origin's own `merge` runs inside
    /// [`Plumtree::broadcast`], so the application already knows.
    Delivered {
        /// The message id.
        id: M,
        /// The originating node.
        root: I,
        /// Hop count of this delivery: `round + 1`, so a direct send from
        /// the origin is hop 1 (the paper's LDH counts the same way).
        hops: u32,
        /// The payload.
        payload: Bytes,
    },
}

/// Why [`Plumtree::broadcast`] refused a message.
///
/// A refused broadcast leaves the engine and the handler untouched.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BroadcastError {
    /// The payload exceeds [`Config::max_payload`].
    PayloadTooLarge {
        /// The payload's length in bytes.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The frame that would carry it exceeds the node's `max_frame`: it
    /// could never be sent.
    FrameTooSmall {
        /// The frame's length in bytes.
        len: usize,
        /// The node's `max_frame`.
        max: usize,
    },
}

impl fmt::Display for BroadcastError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BroadcastError::PayloadTooLarge { len, max } => {
                write!(f, "broadcast payload of {len} bytes exceeds the maximum of {max}")
            }
            BroadcastError::FrameTooSmall { len, max } => {
                write!(f, "the broadcast's frame of {len} bytes exceeds max_frame of {max}")
            }
        }
    }
}

impl core::error::Error for BroadcastError {}
