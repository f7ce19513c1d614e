//! The [`Node`]: membership, broadcast and the replicated metadata store
//! behind one sans-IO contract.
//!
//! # The contract
//!
//! `Node` follows quinn-proto's `Connection`: it owns no socket, no clock and
//! no thread, and its methods come in four groups.
//!
//! - **A. Getters**: [`Node::me`], [`Node::active_view`], [`Node::passive_view`],
//!   [`Node::members`], [`Node::stats`]; the metadata reads [`Node::get`],
//!   [`Node::get_resolved`], [`Node::iter`], [`Node::fold`],
//!   [`Node::prefix_hash`] and [`Node::metadata_hash`].
//! - **B. Inputs**: [`Node::handle_frame`], [`Node::handle_timeout`],
//!   [`Node::handle_link`].
//! - **C. Application commands**: [`Node::join`], [`Node::leave`],
//!   [`Node::broadcast`] (and, in mesh mode, [`Node::add_member`] and
//!   [`Node::remove_member`]); the metadata writes [`Node::put`] and
//!   [`Node::delete`], the durability hook [`Node::persisted`] and
//!   [`Node::restore`], and [`Node::subscribe`], [`Node::unsubscribe`] and
//!   [`Node::register_crdt`]; the application channels
//!   [`Node::register_channel`], [`Node::unregister_channel`],
//!   [`Node::broadcast_on`] and [`Node::send_direct`] ([`channel`]).
//! - **D. Outputs**: [`Node::poll_transmit`], [`Node::poll_event`],
//!   [`Node::poll_timeout`].
//!
//! **After every call in group B or C, drain group D completely**: send every
//! transmit, handle every event, and re-arm the timer from `poll_timeout`.
//! This is str0m's "single-mutation invariant": outputs are only valid right
//! after the input that produced them, and a driver that stops draining early
//! can hold a stale deadline. **Time never goes backwards**: every `now`
//! handed to the node must be at least the previous one. (The node clamps a
//! `now` that goes backwards to the latest one it saw and counts it in
//! [`Stats::time_regressions`]; it never panics on it.)
//!
//! A complete driver loop, over a trivially small "network" of two nodes that
//! hand frames to each other directly:
//!
//! ```
//! use epidemic_core::node::{Config, Event, LinkEvent, Node};
//! use epidemic_core::{Duration, Instant};
//! use bytes::Bytes;
//!
//! let seeded = |seed| {
//!     let mut config = Config::default();
//!     config.seed = seed;
//!     config
//! };
//! let mut nodes = [Node::new(0u32, seeded(1)), Node::new(1u32, seeded(2))];
//! let mut now = Instant::ZERO;
//! nodes[1].join(now, [0]);
//!
//! let mut delivered = Vec::new();
//! for step in 0..100 {
//!     // 1. (Application commands go here.)
//!     if step == 10 {
//!         nodes[0].broadcast(now, Bytes::from_static(b"hello")).expect("small payload");
//!     }
//!     // 2. Drain every node's outputs: transmits become the peer's inputs.
//!     let mut progressed = true;
//!     while progressed {
//!         progressed = false;
//!         for i in 0..nodes.len() {
//!             while let Some(t) = nodes[i].poll_transmit() {
//!                 progressed = true;
//!                 let to = t.to as usize;
//!                 // A malformed frame closes that one link; here we just report it.
//!                 if nodes[to].handle_frame(now, i as u32, &t.frame).is_err() {
//!                     nodes[to].handle_link(now, i as u32, LinkEvent::Down);
//!                 }
//!             }
//!             while let Some(event) = nodes[i].poll_event() {
//!                 if let Event::Delivered { payload, .. } = event {
//!                     delivered.push((i, payload));
//!                 }
//!             }
//!         }
//!     }
//!     // 3. Advance time to the earliest deadline (at most 100 ms here) and fire timers.
//!     let next = nodes.iter().filter_map(|n| n.poll_timeout()).min();
//!     now = next.unwrap_or(now + Duration::from_millis(100)).min(now + Duration::from_millis(100));
//!     for n in &mut nodes {
//!         n.handle_timeout(now);
//!     }
//! }
//! assert_eq!(delivered, vec![(1, Bytes::from_static(b"hello"))]);
//! ```
//!
//! # The metadata store
//!
//! [`Node::put`], [`Node::get`] and [`Node::delete`] work on a key-value store
//! that every node replicates whole ([`metadata`] has the design). Writes
//! become [`metadata::Event::Persist`] records: the driver writes each one, confirms it
//! with [`Node::persisted`], and only then does the write leave the node
//! (and [`metadata::Event::PutDurable`] report it durable). After a restart the driver
//! hands the records back with [`Node::restore`].
//!
//! ```
//! use epidemic_core::metadata::{self, FullPrefix};
//! use epidemic_core::node::{Config, Event, Node};
//! use epidemic_core::{Duration, Instant};
//! use bytes::Bytes;
//! use std::collections::BTreeMap;
//!
//! let seeded = |seed| {
//!     let mut config = Config::mesh(2);
//!     config.seed = seed;
//!     config
//! };
//! let mut nodes = [Node::new(0u32, seeded(1)), Node::new(1u32, seeded(2))];
//! let mut disks = [BTreeMap::new(), BTreeMap::new()];
//! let mut now = Instant::ZERO;
//! nodes[1].join(now, [0]);
//! let users = FullPrefix::new("app", "users");
//!
//! // One step of the driver loop, with a synchronous "disk".
//! let mut step = |nodes: &mut [Node<u32>; 2], now: Instant| {
//!     let mut progressed = true;
//!     while progressed {
//!         progressed = false;
//!         for i in 0..2 {
//!             while let Some(t) = nodes[i].poll_transmit() {
//!                 progressed = true;
//!                 nodes[t.to as usize].handle_frame(now, i as u32, &t.frame).expect("valid frame");
//!             }
//!             while let Some(event) = nodes[i].poll_event() {
//!                 progressed = true;
//!                 if let Event::Metadata(metadata::Event::Persist(record)) = event {
//!                     match &record.object {
//!                         Some(object) => disks[i].insert((record.prefix.clone(), record.key.clone()), object.clone()),
//!                         None => disks[i].remove(&(record.prefix.clone(), record.key.clone())),
//!                     };
//!                     nodes[i].persisted(now, record.id);
//!                 }
//!             }
//!         }
//!         for n in nodes.iter_mut() {
//!             n.handle_timeout(now);
//!         }
//!     }
//! };
//! for _ in 0..50 {
//!     step(&mut nodes, now);
//!     now = now + Duration::from_millis(100);
//! }
//!
//! // Two writes to one key, neither seeing the other: siblings.
//! nodes[0].put(now, &users, b"alice", Bytes::from_static(b"admin"), None).unwrap();
//! nodes[1].put(now, &users, b"alice", Bytes::from_static(b"reader"), None).unwrap();
//! for _ in 0..10 {
//!     step(&mut nodes, now);
//!     now = now + Duration::from_millis(100);
//! }
//! let read = nodes[1].get(&users, b"alice").unwrap();
//! assert_eq!(read.siblings(), 2);
//! assert_eq!(nodes[0].get(&users, b"alice"), Some(read.clone()));
//!
//! // Resolve (last writer wins here) and write back with the read's context.
//! let winner = read.lww().cloned().unwrap();
//! nodes[0].put(now, &users, b"alice", winner.clone(), Some(read.context())).unwrap();
//! for _ in 0..10 {
//!     step(&mut nodes, now);
//!     now = now + Duration::from_millis(100);
//! }
//! assert_eq!(nodes[1].get(&users, b"alice").unwrap().siblings(), 1);
//! assert_eq!(nodes[1].get_resolved(&users, b"alice"), Some(winner));
//!
//! // Node 1 restarts from what it persisted.
//! let mut restarted = Node::new(1u32, seeded(3));
//! for ((prefix, key), object) in &disks[1] {
//!     restarted.restore(now, prefix, key, object).unwrap();
//! }
//! assert_eq!(restarted.metadata_hash(), nodes[1].metadata_hash());
//! ```

pub mod channel;
mod config;
mod message;
mod stats;
mod store;
pub mod typed;

#[doc(hidden)]
pub use channel::{ChannelBody, ChannelMessage};
pub use channel::{ChannelConfig, ChannelError, ChannelHandler, ChannelId, MAX_CHANNELS};
pub use config::{Config, ConfigError, MembershipConfig};
#[doc(hidden)]
pub use message::Message;
pub use stats::{ChannelStats, KindStats, PerKind, Stats};

use crate::broadcast::{self, BroadcastError, Plumtree};
use crate::hashtree::Digest;
use crate::membership::{self, Membership};
use crate::metadata::{
    self, Actor, Context, FullPrefix, Merger, Peers, PersistId, PutError, PutId, Read, Replica, RestoreError,
    SubscriptionId,
};
use crate::rng::{self, Rng};
use crate::wire::{self, WireError};
use crate::{Duration, Identity, Instant};
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use bytes::Bytes;
use channel::{Adapter, CHANNEL_OVERHEAD};
use store::Store;

pub use crate::broadcast::BroadcastId;

/// A frame for the driver to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit<I> {
    /// The destination.
    pub to: I,
    /// The encoded frame, at most [`Config::max_frame`] bytes.
    pub frame: Vec<u8>,
}

pub use crate::membership::LinkEvent;

/// What the node tells the application.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event<I: Ord> {
    /// A peer entered the set of overlay neighbours (the HyParView active
    /// view, or a reachable member in mesh mode).
    NeighborUp(I),
    /// A peer left the set of overlay neighbours.
    NeighborDown(I),
    /// A broadcast from another node arrived for the first time. Never
    /// emitted twice for one id, and never at the origin.
    Delivered {
        /// The broadcast's id.
        id: BroadcastId<I>,
        /// The payload.
        payload: Bytes,
        /// Hops it travelled; the origin's first send is hop 1.
        hops: u32,
    },
    /// The metadata store has something for the application: a record to
    /// make durable, a durable put, or a change under a subscribed prefix.
    Metadata(metadata::Event<I>),
    /// A broadcast on an application channel was new to this node: its
    /// handler has merged it already ([`ChannelHandler::merge`] said
    /// `true`). Never emitted at the origin.
    ChannelDelivered {
        /// The channel.
        channel: ChannelId,
        /// The message's id, as its handler encoded it.
        id: Bytes,
        /// Hops it travelled; the origin's first send is hop 1.
        hops: u32,
    },
}

/// A decoded frame, routed to the machine that handles it.
enum Input<I: Identity> {
    Membership(membership::Message<I>),
    Plumtree(broadcast::Message<I, BroadcastId<I>>),
    Metadata(broadcast::Message<I, metadata::Id<Actor<I>>>),
    AntiEntropy(metadata::Message<Actor<I>>),
    Channel(ChannelMessage<I>),
}

impl<I: Identity> From<Message<I>> for Input<I> {
    fn from(message: Message<I>) -> Self {
        match message {
            Message::HyParView(m) => Input::Membership(membership::Message::HyParView(m)),
            Message::Mesh(m) => Input::Membership(membership::Message::Mesh(m)),
            Message::Plumtree(m) => Input::Plumtree(m),
            Message::Metadata(m) => Input::Metadata(m),
            Message::AntiEntropy(m) => Input::AntiEntropy(m),
            Message::Channel(m) => Input::Channel(m),
        }
    }
}

/// One epidemic node: membership, broadcast and the metadata store composed
/// behind the sans-IO contract described in the [module docs](self).
pub struct Node<I: Identity> {
    me: I,
    max_frame: usize,
    membership: Membership<I>,
    plumtree: Plumtree<I, BroadcastId<I>>,
    cache: Store<I>,
    metadata: Box<Replica<I>>,
    next_seq: u64,
    last_now: Instant,
    transmits: VecDeque<Transmit<I>>,
    events: VecDeque<Event<I>>,
    stats: Stats,
    /// The application channels, in channel order.
    channels: Vec<Channel<I>>,
    /// For the channels' engines and exchange picks.
    seed: u64,
    rng: Rng,
}

/// One registered application channel.
struct Channel<I: Identity> {
    id: ChannelId,
    handler: Box<dyn ChannelHandler<I>>,
    engine: Plumtree<I, Bytes>,
    exchange_interval: Option<Duration>,
    next_exchange: Option<Instant>,
    exchanges: u64,
    direct_received: u64,
}

impl<I: Identity> Node<I> {
    /// A node with identity `me`, after checking that `config`'s limits
    /// agree ([`Config::validate`]). It knows no one until [`Node::join`].
    pub fn try_new(me: I, config: Config) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Node::new(me, config))
    }

    /// A node with identity `me`. It knows no one until [`Node::join`].
    ///
    /// It does not check `config`: a limit that disagrees with `max_frame`
    /// shows as refused calls ([`PutError::FrameTooSmall`],
    /// [`BroadcastError::FrameTooSmall`]). [`Node::try_new`] refuses such a
    /// configuration up front.
    pub fn new(me: I, config: Config) -> Self {
        let Config {
            membership,
            mut plumtree,
            mut metadata,
            max_frame,
            message_cache,
            seed,
            incarnation,
        } = config;
        // Both engines end their announcement batches where a frame ends.
        let body = max_frame.saturating_sub(wire::HEADER_LEN);
        plumtree.max_batch_bytes = plumtree.max_batch_bytes.min(body);
        metadata.plumtree.max_batch_bytes = metadata.plumtree.max_batch_bytes.min(body);
        // Independent streams for the state machines, all from one seed.
        let membership = Membership::new(me.clone(), incarnation, membership, seed);
        Node {
            plumtree: Plumtree::new(me.clone(), plumtree, seed ^ 0x9e37_79b9_7f4a_7c15),
            cache: Store::new(message_cache, message_cache.saturating_mul(4)),
            metadata: Box::new(Replica::new(
                me.clone(),
                incarnation,
                metadata,
                seed ^ 0x2545_f491_4f6c_dd1d,
                max_frame,
            )),
            me,
            max_frame,
            membership,
            next_seq: u64::from(incarnation) << 32,
            last_now: Instant::ZERO,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            channels: Vec::new(),
            seed,
            rng: rng::from_seed(seed ^ 0x6a09_e667_f3bc_c909),
        }
    }

    // ---- A. getters -------------------------------------------------------

    /// This node's identity.
    pub fn me(&self) -> &I {
        &self.me
    }

    /// The overlay neighbours: the HyParView active view, or the reachable
    /// members in mesh mode.
    pub fn active_view(&self) -> Vec<I> {
        self.membership.neighbors()
    }

    /// The contact of a join that has not been answered yet (HyParView;
    /// always `None` in mesh mode). A join ends answered (the contact is a
    /// neighbour) or failed (the contact is down, refused, or stayed silent
    /// for `neighbor_timeout`); see [`Node::join`].
    pub fn joining(&self) -> Option<&I> {
        self.membership.joining()
    }

    /// The HyParView passive view (empty in mesh mode).
    pub fn passive_view(&self) -> Vec<I> {
        self.membership.passive()
    }

    /// Every member this node knows of, itself included, in mesh mode; the
    /// active view plus itself in HyParView mode (no node knows every member
    /// there).
    pub fn members(&self) -> Vec<I> {
        self.membership.members()
    }

    /// Counters and current sizes of every bounded structure.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats.clone();
        s.plumtree = self.plumtree.stats();
        s.message_cache = self.cache.len();
        s.seen_ids = self.cache.seen_len();
        s.metadata = self.metadata.stats();
        s.metadata_plumtree = self.metadata.plumtree().stats();
        s.channels = self
            .channels
            .iter()
            .map(|c| ChannelStats {
                channel: c.id.0,
                plumtree: c.engine.stats(),
                exchanges: c.exchanges,
                direct_received: c.direct_received,
            })
            .collect();
        s.transmit_queue = self.transmits.len();
        s.event_queue = self.events.len();
        s
    }

    /// The broadcast engine, for inspection (eager and lazy sets per root).
    #[doc(hidden)]
    pub fn plumtree(&self) -> &Plumtree<I, BroadcastId<I>> {
        &self.plumtree
    }

    /// The metadata broadcast engine, for inspection.
    #[doc(hidden)]
    pub fn metadata_plumtree(&self) -> &Plumtree<I, metadata::Id<Actor<I>>> {
        self.metadata.plumtree()
    }

    /// Whether the node runs the operator-controlled mesh
    /// ([`Config::mesh`]), where [`Node::add_member`] and
    /// [`Node::remove_member`] apply; false under HyParView, where they are
    /// ignored.
    pub fn is_mesh(&self) -> bool {
        self.membership.is_mesh()
    }

    /// Whether `peer` is a member: in mesh mode, of the member set; in
    /// HyParView mode every peer counts (no node knows the members).
    pub fn is_member(&self, peer: &I) -> bool {
        self.membership.is_member(peer)
    }

    /// The siblings of `key` under `prefix` with their context, tombstones
    /// included; `None` if the key is absent (never written, or written,
    /// deleted and garbage-collected).
    pub fn get(&self, prefix: &FullPrefix, key: &[u8]) -> Option<Read<Actor<I>>> {
        self.metadata.get(prefix, key)
    }

    /// One value for `key`: the merge of the live siblings when the prefix
    /// is CRDT-valued ([`Node::register_crdt`]), the last writer's otherwise;
    /// `None` if absent or deleted. For a resolver of your own, use
    /// [`Node::get`] and [`Read::resolve`].
    pub fn get_resolved(&self, prefix: &FullPrefix, key: &[u8]) -> Option<Bytes> {
        self.metadata.get_resolved(prefix, key)
    }

    /// The keys of `prefix` that are not deleted, in key order, with their
    /// siblings.
    pub fn iter<'a>(&'a self, prefix: &FullPrefix) -> impl Iterator<Item = (&'a Bytes, Read<Actor<I>>)> + 'a {
        self.metadata.iter(prefix)
    }

    /// Folds `f` over [`Node::iter`].
    pub fn fold<B>(&self, prefix: &FullPrefix, init: B, mut f: impl FnMut(B, &Bytes, Read<Actor<I>>) -> B) -> B {
        self.iter(prefix).fold(init, |acc, (k, r)| f(acc, k, r))
    }

    /// A 64-bit hash of everything stored under `prefix`, tombstones
    /// included; equal on two nodes when they hold the same objects there.
    /// `None` when the prefix holds nothing.
    pub fn prefix_hash(&self, prefix: &FullPrefix) -> Option<Digest> {
        self.metadata.prefix_hash(prefix)
    }

    /// A hash of the whole metadata store: equal on two nodes when they hold
    /// the same objects.
    pub fn metadata_hash(&self) -> Digest {
        self.metadata.store_hash()
    }

    /// Every full prefix holding at least one object, in order.
    pub fn metadata_prefixes(&self) -> impl Iterator<Item = &FullPrefix> + '_ {
        self.metadata.prefixes()
    }

    /// The metadata settings.
    pub fn metadata_config(&self) -> &metadata::Config {
        self.metadata.config()
    }

    /// The registered application channels, in order.
    pub fn channels(&self) -> impl Iterator<Item = ChannelId> + '_ {
        self.channels.iter().map(|c| c.id)
    }

    // ---- B. inputs --------------------------------------------------------

    /// A frame from `from`. On error nothing changed; the driver should close
    /// the link the frame came on.
    pub fn handle_frame(&mut self, now: Instant, from: I, frame: &[u8]) -> Result<(), WireError> {
        let now = self.clock(now);
        let decoded = Message::decode(frame, self.max_frame).map(|m| (m.kind(), Input::from(m)));
        let (kind, input) = match decoded.and_then(|(k, i)| self.validate(&i).map(|()| (k, i))) {
            Ok(decoded) => decoded,
            Err(e) => {
                self.stats.invalid_frames += 1;
                return Err(e);
            }
        };
        if from == self.me {
            self.stats.invalid_frames += 1;
            return Err(WireError::Invalid("frame claims to come from this node"));
        }
        self.stats.received.record(kind, frame.len());
        match input {
            Input::Membership(m) => {
                if !self.membership.handle_message(now, from, m) {
                    self.stats.out_of_place += 1;
                }
            }
            Input::Plumtree(m) => self.plumtree.handle_validated(now, from, m, &mut self.cache),
            Input::Metadata(m) => {
                if self.is_member(&from) {
                    self.metadata.handle_broadcast(now, from, m);
                } else {
                    self.metadata.refused_non_member();
                }
            }
            Input::AntiEntropy(m) => {
                if self.is_member(&from) {
                    self.metadata.handle_message(now, from, m);
                } else {
                    self.metadata.refused_non_member();
                }
            }
            Input::Channel(m) => self.on_channel(now, from, m),
        }
        self.pump(now);
        Ok(())
    }

    /// Fires every internal timer that is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.clock(now);
        self.membership.handle_timeout(now);
        self.plumtree.handle_timeout(now, &mut self.cache);
        self.channel_timeouts(now);
        if self.metadata.is_due(now) {
            let members = self.membership.member_list();
            let neighbors = self.membership.neighbors();
            let others = self.membership.passive();
            let peers = Peers {
                members: members.as_deref(),
                neighbors: &neighbors,
                others: &others,
            };
            self.metadata.handle_timeout(now, &peers);
        }
        self.pump(now);
    }

    /// The driver's news about the link to `peer`.
    pub fn handle_link(&mut self, now: Instant, peer: I, event: LinkEvent) {
        let now = self.clock(now);
        if peer == self.me {
            return;
        }
        if event == LinkEvent::Down {
            self.metadata.link_down(&peer);
        }
        self.membership.handle_link(now, &peer, event);
        self.pump(now);
    }

    // ---- C. commands ------------------------------------------------------

    /// Joins the cluster through `contacts`. HyParView asks the first; a
    /// contact that is down, refuses, has left, or stays silent for
    /// `neighbor_timeout` is followed by the next, and the contacts are
    /// retried in turn with jittered backoff for as long as the node has no
    /// neighbour ([`HyParView::join_via`](crate::membership::hyparview::HyParView::join_via)).
    /// Mesh mode adds them all as members.
    pub fn join(&mut self, now: Instant, contacts: impl IntoIterator<Item = I>) {
        let now = self.clock(now);
        let me = self.me.clone();
        let contacts: Vec<I> = contacts.into_iter().filter(|c| *c != me).collect();
        crate::log::decision!(me = ?self.me, ?contacts, "joining");
        self.membership.join(now, contacts);
        self.pump(now);
    }

    /// Leaves the overlay: neighbours are told, views are emptied.
    pub fn leave(&mut self, now: Instant) {
        let now = self.clock(now);
        self.membership.leave(now);
        self.pump(now);
    }

    /// Mesh mode: the operator adds `member` to the cluster. Ignored in
    /// HyParView mode, where membership is not operator-controlled (see
    /// [`Node::is_mesh`]).
    pub fn add_member(&mut self, now: Instant, member: I) {
        let now = self.clock(now);
        self.membership.add_member(now, member);
        self.pump(now);
    }

    /// Mesh mode: the operator removes `member` from the cluster. Ignored
    /// in HyParView mode.
    pub fn remove_member(&mut self, now: Instant, member: I) {
        let now = self.clock(now);
        self.membership.remove_member(now, &member);
        self.pump(now);
    }

    /// Broadcasts `payload` to every node. A payload over the configured
    /// limit is refused here, before any state changes.
    pub fn broadcast(&mut self, now: Instant, payload: Bytes) -> Result<BroadcastId<I>, BroadcastError> {
        let now = self.clock(now);
        let id = BroadcastId {
            origin: self.me.clone(),
            seq: self.next_seq,
        };
        let len = broadcast::gossip_frame_len(&id, &self.me, &payload);
        if len > self.max_frame {
            return Err(BroadcastError::FrameTooSmall {
                len,
                max: self.max_frame,
            });
        }
        self.plumtree.broadcast(now, id.clone(), payload, &mut self.cache)?;
        self.next_seq += 1;
        self.pump(now);
        Ok(id)
    }

    /// Writes `value` under `key` in `prefix`, coordinated by this node.
    ///
    /// With `context: None` the write overwrites every sibling this node
    /// holds; with the context of an earlier [`Read`] it overwrites what that
    /// read saw, and anything newer stays a sibling. The write is visible to
    /// [`Node::get`] at once. It is broadcast once the driver has confirmed
    /// its [`metadata::Event::Persist`] record ([`Node::persisted`]), which also brings
    /// [`metadata::Event::PutDurable`] with the returned id. With
    /// [`metadata::Config::durable`] off it is broadcast at once and neither
    /// event is emitted. A key or value over the configured limits is refused
    /// here with nothing changed.
    pub fn put(
        &mut self,
        now: Instant,
        prefix: &FullPrefix,
        key: &[u8],
        value: Bytes,
        context: Option<&Context<I>>,
    ) -> Result<PutId, PutError> {
        let now = self.clock(now);
        let r = self.metadata.write(now, prefix, key, Some(value), context);
        self.pump(now);
        r
    }

    /// Deletes `key`: writes a tombstone, exactly as [`Node::put`] writes a
    /// value. Reads then see the key as deleted; the tombstone is collected
    /// once every member holds it (see "Garbage collection" in
    /// [`metadata`]).
    pub fn delete(
        &mut self,
        now: Instant,
        prefix: &FullPrefix,
        key: &[u8],
        context: Option<&Context<I>>,
    ) -> Result<PutId, PutError> {
        let now = self.clock(now);
        let r = self.metadata.write(now, prefix, key, None, context);
        self.pump(now);
        r
    }

    /// The driver has durably written the [`metadata::Event::Persist`] record `id`.
    /// Unknown ids are ignored.
    pub fn persisted(&mut self, now: Instant, id: PersistId) {
        let now = self.clock(now);
        self.metadata.persisted(now, id);
        self.pump(now);
    }

    /// Feeds a persisted object back in after a restart: `object` is the
    /// bytes of an [`metadata::Event::Persist`] record stored under `(prefix, key)`.
    /// It is merged into the store without events or broadcast. Restore
    /// every record before [`Node::join`].
    pub fn restore(
        &mut self,
        now: Instant,
        prefix: &FullPrefix,
        key: &[u8],
        object: &[u8],
    ) -> Result<(), RestoreError> {
        let now = self.clock(now);
        let r = self.metadata.restore(now, prefix, key, object);
        self.pump(now);
        r
    }

    /// Emits [`metadata::Event::Changed`], with the new value, for every
    /// change under `prefix` from now on.
    pub fn subscribe(&mut self, prefix: FullPrefix) -> SubscriptionId {
        self.metadata.subscribe(prefix)
    }

    /// Ends a subscription; false if it did not exist.
    pub fn unsubscribe(&mut self, id: SubscriptionId) -> bool {
        self.metadata.unsubscribe(id)
    }

    /// Declares `prefix` CRDT-valued: [`Node::get_resolved`] merges its
    /// siblings with `merger`, and the node that owns a key's siblings writes
    /// the merge back, so the prefix converges to one sibling per key.
    /// Register it on every node. [`typed::Typed::register`] does
    /// this for a [`Merge`](crate::crdt::Merge) type.
    pub fn register_crdt(&mut self, now: Instant, prefix: FullPrefix, merger: Merger) {
        let now = self.clock(now);
        self.metadata.register_crdt(now, prefix, merger);
        self.pump(now);
    }

    /// Registers the application's `handler` on `channel`, with an engine
    /// of its own ([`channel`] has the design). The engine learns the
    /// current neighbours at once; the first exchange runs one
    /// `exchange_interval` from now. Register the channel on every node
    /// that takes part; frames for it reach the others and are ignored.
    pub fn register_channel(
        &mut self,
        now: Instant,
        channel: ChannelId,
        handler: Box<dyn ChannelHandler<I>>,
        config: ChannelConfig,
    ) -> Result<(), ChannelError> {
        let now = self.clock(now);
        let Err(at) = self.channels.binary_search_by_key(&channel, |c| c.id) else {
            return Err(ChannelError::Duplicate(channel));
        };
        if self.channels.len() >= MAX_CHANNELS {
            return Err(ChannelError::TooMany { max: MAX_CHANNELS });
        }
        let ChannelConfig {
            mut plumtree,
            exchange_interval,
        } = config;
        // Announcement batches end where a channel frame ends.
        let body = self.max_frame.saturating_sub(wire::HEADER_LEN + CHANNEL_OVERHEAD);
        plumtree.max_batch_bytes = plumtree.max_batch_bytes.min(body);
        let seed = self.seed ^ 0xbb67_ae85_84ca_a73b ^ (u64::from(channel.0) << 48);
        let mut engine = Plumtree::new(self.me.clone(), plumtree, seed);
        for peer in self.membership.neighbors() {
            engine.neighbor_up(now, peer);
        }
        crate::log::decision!(me = ?self.me, ?channel, "channel registered");
        self.channels.insert(
            at,
            Channel {
                id: channel,
                handler,
                engine,
                exchange_interval,
                next_exchange: exchange_interval.and_then(|d| now.checked_add(d)),
                exchanges: 0,
                direct_received: 0,
            },
        );
        self.pump(now);
        Ok(())
    }

    /// Removes `channel` and returns its handler; its engine's state is
    /// dropped, and frames for it are ignored from now on.
    pub fn unregister_channel(&mut self, channel: ChannelId) -> Result<Box<dyn ChannelHandler<I>>, ChannelError> {
        let at = self.channel_index(channel)?;
        Ok(self.channels.remove(at).handler)
    }

    /// Spreads message `id` with `payload` on `channel`, with this node as
    /// root. As in Riak, the application has applied the write to its
    /// handler's store already; the handler's `merge` is called once more
    /// and its answer ignored. A payload over the channel's `max_payload`, or
    /// whose frame would exceed `max_frame`, is refused with
    /// [`ChannelError::Broadcast`], nothing changed. Ids must be unique per
    /// message (a version in them, say): peers that have an id already take
    /// the broadcast for a duplicate.
    pub fn broadcast_on(
        &mut self,
        now: Instant,
        channel: ChannelId,
        id: Bytes,
        payload: Bytes,
    ) -> Result<(), ChannelError> {
        let now = self.clock(now);
        let at = self.channel_index(channel)?;
        let len = broadcast::gossip_frame_len(&id, &self.me, &payload).saturating_add(CHANNEL_OVERHEAD);
        if len > self.max_frame {
            return Err(ChannelError::Broadcast(BroadcastError::FrameTooSmall {
                len,
                max: self.max_frame,
            }));
        }
        let c = &mut self.channels[at];
        c.engine.broadcast(now, id, payload, &mut Adapter(c.handler.as_mut()))?;
        self.pump(now);
        Ok(())
    }

    /// Sends `message` to `to` on `channel`, for its handler's
    /// [`ChannelHandler::handle_direct`] (whose reply comes back to this
    /// node's handler the same way): request and reply beyond the exchange
    /// hook. Whether `to` is reachable is the transport's business; nothing
    /// is retried. A message whose frame would exceed `max_frame` is
    /// refused.
    pub fn send_direct(&mut self, now: Instant, channel: ChannelId, to: I, message: Bytes) -> Result<(), ChannelError> {
        let now = self.clock(now);
        self.channel_index(channel)?;
        let message: Message<I> = Message::Channel(ChannelMessage {
            channel: channel.0,
            body: ChannelBody::Direct(message),
        });
        let mut frame = Vec::new();
        if let Err(e) = message.encode_into(self.max_frame, &mut frame) {
            let len = match e {
                wire::EncodeError::TooLarge { len, .. } => len,
                _ => usize::MAX,
            };
            return Err(ChannelError::DirectTooLarge {
                len,
                max: self.max_frame,
            });
        }
        if to != self.me {
            self.stats.sent.record(wire::Kind::Channel, frame.len());
            self.transmits.push_back(Transmit { to, frame });
        }
        self.pump(now);
        Ok(())
    }

    // ---- D. outputs -------------------------------------------------------

    /// The next frame to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit<I>> {
        self.transmits.pop_front()
    }

    /// The next event for the application.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event<I>> {
        self.events.pop_front()
    }

    /// The earliest instant at which [`Node::handle_timeout`] has work.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let channels = self
            .channels
            .iter()
            .flat_map(|c| [c.engine.poll_timeout(), c.next_exchange])
            .flatten()
            .min();
        [
            self.membership.poll_timeout(),
            self.plumtree.poll_timeout(),
            self.metadata.poll_timeout(),
            channels,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Whether nothing is in flight on this node's side: no queued output, no
    /// broadcast work pending (missing messages, unacknowledged IHAVEs) and
    /// no anti-entropy exchange running. Periodic timers (membership, the
    /// exchange and GC ticks) do not count.
    pub fn is_idle(&self) -> bool {
        self.transmits.is_empty()
            && self.events.is_empty()
            && self.plumtree.is_idle()
            && self.metadata.is_idle()
            && self.channels.iter().all(|c| c.engine.is_idle())
    }

    // ---- internals --------------------------------------------------------

    fn clock(&mut self, now: Instant) -> Instant {
        if now < self.last_now {
            self.stats.time_regressions += 1;
            self.last_now
        } else {
            self.last_now = now;
            now
        }
    }

    fn validate(&self, input: &Input<I>) -> Result<(), WireError> {
        match input {
            Input::Membership(m) => self.membership.validate(m),
            Input::Plumtree(m) => Plumtree::<I, BroadcastId<I>>::validate(m, self.plumtree.config()),
            Input::Metadata(m) => metadata::validate_broadcast(m, self.metadata.config()),
            Input::AntiEntropy(m) => metadata::validate(m, self.metadata.config()),
            // A channel this node has not registered is not the peer's
            // fault: it is counted and ignored when handled. A direct
            // message is bounded by the frame it came in.
            Input::Channel(ChannelMessage {
                channel,
                body: ChannelBody::Broadcast(m),
            }) => match self.channel_index(ChannelId(*channel)) {
                Ok(at) => Plumtree::<I, Bytes>::validate(m, self.channels[at].engine.config()),
                Err(_) => Ok(()),
            },
            Input::Channel(_) => Ok(()),
        }
    }

    /// Moves every output of the inner state machines into the node's queues,
    /// until none has anything left. Membership changes feed the broadcast
    /// engine's neighbour sets.
    fn pump(&mut self, now: Instant) {
        loop {
            let mut progressed = false;
            loop {
                let Some(event) = self.membership.poll_event() else {
                    break;
                };
                progressed = true;
                match event {
                    membership::Event::NeighborUp(peer) => {
                        crate::log::decision!(me = ?self.me, ?peer, "neighbour up");
                        self.plumtree.neighbor_up(now, peer.clone());
                        self.metadata.neighbor_up(now, peer.clone());
                        for c in &mut self.channels {
                            c.engine.neighbor_up(now, peer.clone());
                        }
                        self.events.push_back(Event::NeighborUp(peer));
                    }
                    membership::Event::NeighborDown(peer) => {
                        crate::log::decision!(me = ?self.me, ?peer, "neighbour down");
                        self.plumtree.neighbor_down(now, &peer);
                        self.metadata.neighbor_down(now, &peer);
                        for c in &mut self.channels {
                            c.engine.neighbor_down(now, &peer);
                        }
                        self.events.push_back(Event::NeighborDown(peer));
                    }
                }
            }
            loop {
                let Some((to, message)) = self.membership.poll_transmit() else {
                    break;
                };
                let message = match message {
                    membership::Message::HyParView(m) => Message::HyParView(m),
                    membership::Message::Mesh(m) => Message::Mesh(m),
                };
                progressed = true;
                self.send(to, &message);
            }
            while let Some((to, m)) = self.plumtree.poll_transmit() {
                progressed = true;
                self.send(to, &Message::Plumtree(m));
            }
            while let Some(broadcast::Event::Delivered { id, payload, hops, .. }) = self.plumtree.poll_event() {
                progressed = true;
                self.events.push_back(Event::Delivered { id, payload, hops });
            }
            while let Some((to, out)) = self.metadata.poll_transmit() {
                progressed = true;
                let message = match out {
                    metadata::Outbound::Broadcast(m) => Message::Metadata(m),
                    metadata::Outbound::AntiEntropy(m) => Message::AntiEntropy(m),
                };
                self.send(to, &message);
            }
            while let Some(event) = self.metadata.poll_event() {
                progressed = true;
                self.events.push_back(Event::Metadata(event));
            }
            for at in 0..self.channels.len() {
                let channel = self.channels[at].id;
                while let Some((to, m)) = self.channels[at].engine.poll_transmit() {
                    progressed = true;
                    let message = Message::Channel(ChannelMessage {
                        channel: channel.0,
                        body: ChannelBody::Broadcast(m),
                    });
                    self.send(to, &message);
                }
                while let Some(broadcast::Event::Delivered { id, hops, .. }) = self.channels[at].engine.poll_event() {
                    progressed = true;
                    self.events.push_back(Event::ChannelDelivered { channel, id, hops });
                }
            }
            if !progressed {
                break;
            }
        }
    }

    fn channel_index(&self, channel: ChannelId) -> Result<usize, ChannelError> {
        self.channels
            .binary_search_by_key(&channel, |c| c.id)
            .map_err(|_| ChannelError::Unknown(channel))
    }

    /// A validated channel frame from `from`.
    fn on_channel(&mut self, now: Instant, from: I, m: ChannelMessage<I>) {
        if !self.is_member(&from) {
            self.stats.channel_non_member += 1;
            return;
        }
        let channel = ChannelId(m.channel);
        let Ok(at) = self.channel_index(channel) else {
            self.stats.unknown_channel += 1;
            return;
        };
        let c = &mut self.channels[at];
        match m.body {
            ChannelBody::Broadcast(m) => {
                c.engine
                    .handle_validated(now, from, m, &mut Adapter(c.handler.as_mut()));
            }
            ChannelBody::Direct(message) => {
                c.direct_received += 1;
                if let Some(reply) = c.handler.handle_direct(now, &from, &message) {
                    let reply = Message::Channel(ChannelMessage {
                        channel: channel.0,
                        body: ChannelBody::Direct(reply),
                    });
                    self.send(from, &reply);
                }
            }
        }
    }

    /// Runs every channel's due engine timers and exchange.
    fn channel_timeouts(&mut self, now: Instant) {
        let mut neighbors: Option<Vec<I>> = None;
        for at in 0..self.channels.len() {
            let c = &mut self.channels[at];
            c.engine.handle_timeout(now, &mut Adapter(c.handler.as_mut()));
            if c.next_exchange.is_none_or(|t| t > now) {
                continue;
            }
            c.next_exchange = c.exchange_interval.and_then(|d| now.checked_add(d));
            let neighbors = neighbors.get_or_insert_with(|| self.membership.neighbors());
            let Some(pick) = rng::index(&mut self.rng, neighbors.len()) else {
                continue;
            };
            let peer = neighbors[pick].clone();
            let c = &mut self.channels[at];
            if let Some(message) = c.handler.exchange(now, &peer) {
                c.exchanges += 1;
                let message = Message::Channel(ChannelMessage {
                    channel: c.id.0,
                    body: ChannelBody::Direct(message),
                });
                self.send(peer, &message);
            }
        }
    }

    fn send(&mut self, to: I, message: &Message<I>) {
        let mut frame = Vec::new();
        match message.encode_into(self.max_frame, &mut frame) {
            Ok(()) => {
                self.stats.sent.record(message.kind(), frame.len());
                if let Message::Plumtree(m) = message {
                    let split = match m {
                        broadcast::Message::Gossip { .. } => &mut self.stats.payload_sent,
                        _ => &mut self.stats.control_sent,
                    };
                    split.messages += 1;
                    split.bytes += frame.len() as u64;
                }
                self.transmits.push_back(Transmit { to, frame });
            }
            // Batches are cut to fit a frame where they are built
            // (`broadcast::Config::max_batch_bytes`), so this is reachable
            // only if a limit is configured below what the protocols
            // produce: counted rather than sent truncated.
            Err(_) => self.stats.encode_failures += 1,
        }
    }
}
