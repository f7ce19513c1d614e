//! The replicated metadata store: Riak's cluster metadata, with tombstone
//! garbage collection.
//!
//! Every node holds a full replica of a small key-value store. Writes are
//! local and spread by Plumtree; Merkle anti-entropy repairs what the
//! broadcast missed; concurrent writes are kept as siblings and resolved by
//! the reader. The [`Node`](crate::node::Node) is the API (`put`, `get`,
//! `delete`, `fold`, `iter`, `subscribe`, `prefix_hash`, `persisted`,
//! `restore`); this module holds the types and the machinery.
//!
//! # Data model
//!
//! ```text
//!   (prefix, subprefix)  ──►  key  ──►  object = DVVSet of siblings
//!    a FullPrefix             bytes      sibling = (value | tombstone, timestamp)
//! ```
//!
//! - A [`FullPrefix`] names a namespace: two byte strings of at most
//!   [`MAX_PREFIX_LEN`] bytes each (Riak's `{Prefix, SubPrefix}`). Keys are
//!   byte strings; `prefix + subprefix + key + 2` is at most
//!   [`Config::max_key_len`].
//! - An object is a [`DVVSet`](crate::clock::DVVSet) whose server ids are
//!   [`Actor`]s: a node id, as in `riak_core_metadata_object`, with the
//!   node's incarnation and an epoch, so that one dot always names one event
//!   (see [`Actor`] for why the node id alone reuses dots). Each sibling is a value
//!   (bytes, at most [`Config::max_value_len`]) or a tombstone, with the
//!   writer's timestamp.
//! - Values are bytes at the core; [`node::typed`](crate::node::typed) is a serde layer on top, and
//!   gives CRDT values their merge.
//!
//! ## Writes
//!
//! `put(prefix, key, value, context)` (and `delete`, which writes a
//! tombstone) is coordinated by the local node: the new sibling gets the
//! node's next dot, and the stored siblings the context covers are
//! overwritten. With no context the node's own context is used, so the write
//! overwrites everything this node has seen of the key (Riak: "the new value
//! will clobber the one that exists locally"). With the context of an
//! earlier read it overwrites what that read saw, and anything newer stays a
//! sibling.
//!
//! The LWW timestamp is the `now` given to `put`, in microseconds, raised to
//! one more than the largest timestamp already stored under the key, so that
//! a write always sorts after what it overwrote even when the writer's clock
//! lags. Ties break on the value bytes (a tombstone below any value), so every
//! replica picks the same winner. The core reads no clock: timestamps are only
//! as comparable across nodes as the instants drivers pass in.
//!
//! ## Reads
//!
//! `get` returns a [`Read`]: every sibling and the context to write back.
//! [`Read::lww`] resolves by last-writer-wins, [`Read::resolve`] with a
//! caller's function; `Node::get_resolved` uses the prefix's registered CRDT
//! merge ([`Merger`]) if there is one and LWW otherwise. A read that resolves
//! siblings and writes the result back with the read's context collapses
//! them.
//!
//! A prefix registered as CRDT-valued (`Node::register_crdt`, or
//! [`Typed::register`](crate::node::typed::Typed::register)) converges to a single sibling on its own:
//! when a replica stores siblings there, the replica owning the smallest
//! live dot (and only it) merges them and writes the result back with the
//! whole context. Only one replica resolving a given set of siblings is what
//! keeps resolution from making new siblings forever.
//!
//! # Dissemination: a second Plumtree
//!
//! Writes travel through a Plumtree engine of their own, with
//! [`Id`] = (full prefix, key, context) as message id and the encoded object
//! as payload. The handler contract is answered from the store (Riak's
//! `riak_core_metadata_manager`):
//!
//! - `merge`: the object is new if the local context does not descend its
//!   context; the replicas are then merged (DVVSet `sync`).
//! - `is_stale`: the local context (or a collected tombstone's) descends
//!   the id's context.
//! - `graft`: the stored object if its context equals the id's, *stale* if it
//!   descends it (a newer write went out on its own), *missing* otherwise.
//!
//! A second engine, rather than one engine with a sum-type id, keeps the two
//! kinds of traffic apart: each has its own bounds (a burst of metadata
//! writes cannot evict plain broadcasts from the missing set or the received
//! cache), its own configuration (metadata payloads are objects of up to
//! [`Config::max_object_len`]) and its own statistics; per-root trees are
//! cheap to keep twice (a few identities per root).
//!
//! # Anti-entropy: one tree over prefix-aware keys
//!
//! Every node keeps one [`HashTree`](crate::hashtree::HashTree) over all its
//! objects, keyed by `len(prefix) ‖ prefix ‖ len(subprefix) ‖ subprefix ‖
//! key` with the object's digest as value. Riak keeps a tree of trees (one
//! hashtree per prefix under a tree of prefixes); one tree is the better
//! fit here:
//!
//! - An exchange costs the same few round trips (root, one inner level,
//!   keys) however many prefixes differ. A tree of trees walks the top tree
//!   and then every differing prefix's tree, round trips growing with the
//!   number of prefixes touched.
//! - The tree's segments are shared by every prefix, so many small prefixes
//!   cost nothing extra; a tree per prefix pays a full tree's overhead for
//!   each.
//! - What a tree of trees gives, a per-prefix hash, is kept beside it: each
//!   prefix holds the wrapping sum of a stable hash of (key, object digest)
//!   over its keys, updated in O(1) per write (`prefix_hash`). What one tree
//!   cannot do is exchange one prefix alone, which a store replicated whole
//!   to every node never needs.
//!
//! Every [`Config::exchange_interval`] (Riak: 10 s) a node with a non-empty
//! store that runs fewer than [`Config::max_concurrent_exchanges`] exchanges
//! (Riak: one) starts one with a random peer, preferring peers outside the
//! eager and lazy sets of its own broadcast tree (Riak's rationale: those are
//! the peers the tree does not already keep in step); in HyParView mode that
//! is the passive view. The exchange is the [`hashtree`]
//! compare-exchange carried in [`Message::TreeRequest`] and
//! [`Message::TreeReply`]; its [`Diff`](crate::hashtree::Diff) is repaired in
//! both directions: objects the peer lacks or holds differently are pushed
//! ([`Message::Push`]), objects this node lacks or holds differently are
//! fetched ([`Message::Fetch`], answered by [`Message::Objects`]). Both sides
//! merge what they receive; neither broadcasts it. A repair is one node
//! catching up with one peer, not news: rebroadcasting it would send every
//! repaired object to every node again, once per node that repaired it.
//!
//! # Messages
//!
//! | Message | Kind | Purpose |
//! |---|---|---|
//! | Plumtree `Gossip`/`IHave`/`Graft`/... with [`Id`] | [`Kind::Metadata`](crate::wire::Kind::Metadata) | dissemination of writes |
//! | [`Message::TreeRequest`], [`Message::TreeReply`], [`Message::Abort`] | [`Kind::AntiEntropy`](crate::wire::Kind::AntiEntropy) | the hash-tree compare |
//! | [`Message::Fetch`], [`Message::Objects`], [`Message::Push`] | `AntiEntropy` | repair, both ways |
//! | [`Message::GcAck`], [`Message::GcCollect`] | `AntiEntropy` | tombstone collection |
//!
//! Every list is split to stay within half of the node's `max_frame`; an
//! IHAVE batch of metadata ids too large for a frame is split by the node.
//!
//! # Timers
//!
//! | Timer | Default | Runs |
//! |---|---|---|
//! | exchange tick, [`Config::exchange_interval`] | 10 s (Riak) | while the store is not empty |
//! | exchange timeout, [`Config::exchange_timeout`] | 10 s | per exchange: since its last reply |
//! | GC tick, [`Config::gc_interval`] | 10 s | while tombstones are held or collected ones remembered |
//! | the metadata Plumtree's own timers | see [`broadcast`] | while it has work |
//!
//! # Durability
//!
//! Every change to the store is emitted as a [`Persist`] event carrying the
//! whole encoded object (or `None` once an object is collected). A driver
//! that writes them in order, a later record of a key replacing an earlier
//! one, holds everything [`Node::restore`](crate::node::Node::restore) needs
//! after a restart. It then confirms each record with
//! [`Node::persisted`](crate::node::Node::persisted). A `put` returns a
//! [`PutId`]; [`PutDurable`](Event::PutDurable) follows once
//! the driver has confirmed the put's record.
//!
//! **Nothing a node wrote leaves it before it is durable.** A key with an
//! unconfirmed record is not broadcast, not sent in a graft and not shipped
//! by anti-entropy until its records are confirmed. The reason is the DVVSet
//! invariant that one dot names one event: a node that crashed after its
//! write (dot `n`) escaped but before it was persisted would restart at dot
//! `n - 1` and give its next write the same dot `n`, and replicas holding
//! different values for one dot can disagree forever. (Writers are
//! [`Actor`]s with the node's incarnation, so a restart cannot reuse a dot
//! anyway when the driver gives each life its own incarnation; this rule
//! also covers a driver that does not.) A write that no one else saw can be
//! lost harmlessly. With [`Config::durable`] off, no events
//! are emitted and writes leave at once.
//!
//! # Garbage collection of tombstones
//!
//! Riak never collects tombstones. Here, a tombstone (an object whose
//! siblings are all tombstones) is collected **only once every current
//! member is known to hold it**, meaning to hold that exact object, durably:
//!
//! - In mesh mode every node knows the members. At each GC tick, each member
//!   sends [`Message::GcAck`] for the durable tombstones it holds to the
//!   *collector*, the smallest member. When every other member has acked a
//!   tombstone with the collector's exact context, the collector removes it
//!   and sends [`Message::GcCollect`] to every member; a member removes the
//!   tombstone if it holds exactly that object. Lost messages are covered by
//!   re-sending acks every tick; the collector answers an ack for something
//!   it already collected with another `GcCollect`.
//! - A member that is unreachable holds collection back until it holds the
//!   tombstone (anti-entropy brings it there once reachable). Collection
//!   cannot leave an older copy at a member, so a collected key cannot come
//!   back from one.
//! - **Metadata from non-members is refused** (in mesh mode): broadcast and
//!   anti-entropy frames from a peer that is not a member are dropped. An
//!   operator who removes a member that is away lets collection proceed
//!   without it, and whatever stale copies it still holds when it returns are
//!   not accepted. A removed node must be wiped (restarted with an empty
//!   store) before it is added again: re-adding it with its old store
//!   re-admits its old copies.
//! - Each node remembers what it collected, key and context, for
//!   [`Config::collected_retention`] (bounded by [`Config::max_collected`])
//!   and refuses objects that context descends: an older copy still in
//!   flight, or the tombstone coming back by anti-entropy from a member that
//!   has not yet heard `GcCollect`, is dropped rather than stored again. A
//!   new write to a collected key continues from the remembered context, so
//!   it supersedes the collected tombstone everywhere.
//! - Collecting a tombstone that holds a dot of this node's current writer
//!   moves the node on to a new [`Actor`] epoch, and every restart is a new
//!   incarnation: a dot is never given twice, however long ago the key was
//!   collected and whatever was forgotten since.
//!
//! **What a client holding a very old context can expect.** A context is
//! only ever compared with dots, never trusted for more than it names:
//!
//! - Written back while the collected memory still holds the key (within
//!   [`Config::collected_retention`]), it overwrites exactly what it saw;
//!   the new write also supersedes the collected tombstone.
//! - Written back later, it still overwrites only the dots it names. Every
//!   write made after the collection is by a newer actor or epoch that the
//!   old context does not name, so it stays as a sibling: no write the
//!   client never saw is lost. The collected tombstone itself is forgotten,
//!   so the old context cannot supersede a copy of it that a member away
//!   for longer still holds; that copy comes back as a tombstone sibling,
//!   which reads as deleted beside any live value.
//! - What cannot be promised: that a member away for longer than the
//!   collection (removed from the mesh, or past a
//!   [`Config::tombstone_retention`] horizon) does not bring back its older
//!   copy of the key's *values*. Mesh mode refuses metadata from
//!   non-members for that reason; with a horizon, wipe such a member.
//!
//! **HyParView trade-off.** With partial views no node knows every member,
//! so the rule above can never be satisfied: in HyParView mode tombstones
//! are kept forever, as in Riak, unless [`Config::tombstone_retention`] is
//! set. With a retention horizon `h` each node collects a tombstone it has
//! held for `h`, without asking anyone. That bounds the garbage, and it is
//! unsafe for any node that was unreachable for longer than `h`: such a node
//! can bring a deleted key back with its old copy. Set `h` longer than any
//! partition or downtime you intend to survive (and wipe nodes that were
//! away longer). The horizon also applies in mesh mode when set, as an
//! upper bound on how long a tombstone waits for an unreachable member.
//!
//! # Bounds
//!
//! What peers can make grow is bounded: exchange sessions (started only
//! locally, at most [`Config::max_concurrent_exchanges`]), keys pending
//! fetch (at most [`hashtree::Limits::max_diff_keys`](crate::hashtree::Limits::max_diff_keys)
//! per session), GC acks (only for tombstones held here, one per member),
//! the collected memory ([`Config::max_collected`]) and the Plumtree
//! structures (its [`Config`](crate::broadcast::Config)). Subscriptions,
//! unconfirmed records and CRDT registrations are made by the local
//! application (a driver that never confirms records should turn
//! [`Config::durable`] off). The store itself holds what the members write:
//! every node replicates everything, as in Riak, and in mesh mode only
//! members' writes are accepted.

mod actor;
mod exchange;
mod gc;
mod handler;
mod message;
mod object;
mod replica;
mod store;
#[cfg(test)]
mod tests;

/// The typed layer, at its old path: it sits on top of the node in
/// [`node::typed`](crate::node::typed) now. A compatibility alias, hidden,
/// to be removed.
#[doc(hidden)]
pub use crate::node::typed;
pub use actor::{Actor, Context};
#[doc(hidden)]
pub use message::{Message, Tombstone};
pub(crate) use message::{validate, validate_broadcast};
#[doc(hidden)]
pub use object::Object;
pub use object::{Read, Value};
pub(crate) use replica::{Outbound, Peers, Replica};

use crate::broadcast;
use crate::clock::VClock;
use crate::hashtree;
use crate::time::Duration;
use alloc::vec::Vec;
use bytes::Bytes;
use core::cmp::Ordering;
use core::fmt;
use serde::{Deserialize, Serialize};

/// The longest prefix or subprefix, in bytes.
pub const MAX_PREFIX_LEN: usize = 255;

/// A namespace: `(prefix, subprefix)`, as Riak's `{Prefix, SubPrefix}`.
///
/// Both parts are byte strings of at most [`MAX_PREFIX_LEN`] bytes; the
/// node refuses longer ones with a typed error.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FullPrefix {
    prefix: Bytes,
    subprefix: Bytes,
}

impl FullPrefix {
    /// The full prefix `(prefix, subprefix)`.
    pub fn new(prefix: impl AsRef<[u8]>, subprefix: impl AsRef<[u8]>) -> Self {
        FullPrefix {
            prefix: Bytes::copy_from_slice(prefix.as_ref()),
            subprefix: Bytes::copy_from_slice(subprefix.as_ref()),
        }
    }

    /// The prefix.
    pub fn prefix(&self) -> &[u8] {
        &self.prefix
    }

    /// The subprefix.
    pub fn subprefix(&self) -> &[u8] {
        &self.subprefix
    }

    /// Whether both parts are within [`MAX_PREFIX_LEN`].
    pub fn is_valid(&self) -> bool {
        self.prefix.len() <= MAX_PREFIX_LEN && self.subprefix.len() <= MAX_PREFIX_LEN
    }
}

/// A metadata broadcast's id: the key and the context of the object sent
/// (Riak's `{PKey, Context}`). Two writes to a key have different contexts,
/// so every write is its own message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(bound(serialize = "I: Serialize", deserialize = "I: Ord + Deserialize<'de>"))]
#[doc(hidden)]
pub struct Id<I: Ord> {
    /// The key's full prefix.
    pub prefix: FullPrefix,
    /// The key.
    pub key: Bytes,
    /// The object's causal context.
    pub context: VClock<I>,
}

impl<I: Ord + Clone> PartialOrd for Id<I> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Prefix, key, then the context's `(actor, counter)` pairs in order: a total
/// order for the engine's maps, not a causal one.
impl<I: Ord + Clone> Ord for Id<I> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.prefix
            .cmp(&other.prefix)
            .then_with(|| self.key.cmp(&other.key))
            .then_with(|| self.context.iter().cmp(other.context.iter()))
    }
}

/// What the store tells the application, through
/// [`Node::poll_event`](crate::Node::poll_event) as
/// [`Event::Metadata`](crate::Event::Metadata).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event<I: Ord> {
    /// An object must be made durable: write it (replacing what is stored
    /// under its key, or removing the key if `object` is `None`), in the
    /// order the records are emitted, then call
    /// [`Node::persisted`](crate::Node::persisted) with its id. See
    /// "Durability" in the [module docs](self).
    Persist(Persist),
    /// A put or delete is durable: the driver confirmed its record.
    PutDurable(PutId),
    /// A key under a subscribed prefix changed
    /// ([`Node::subscribe`](crate::Node::subscribe)); the change carries the
    /// new value, so a subscriber need not read it back.
    Changed(Change<I>),
}

/// A key under a subscribed prefix changed: its new siblings, its resolved
/// value, and how the change arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Change<I: Ord> {
    /// The subscription it matches.
    pub subscription: SubscriptionId,
    /// The key's full prefix.
    pub prefix: FullPrefix,
    /// The key.
    pub key: Bytes,
    /// Every sibling after the change, tombstones included, with the
    /// context to write back with (what [`Node::get`](crate::Node::get)
    /// returns now).
    pub read: Read<Actor<I>>,
    /// One value: the merge of the live siblings when the prefix is
    /// CRDT-valued, the last writer's otherwise; `None` when the key is now
    /// deleted (what [`Node::get_resolved`](crate::Node::get_resolved)
    /// returns now).
    pub resolved: Option<Bytes>,
    /// How the change arrived.
    pub source: ChangeSource,
}

impl<I: Ord> Change<I> {
    /// Whether the change deleted the key.
    pub fn is_delete(&self) -> bool {
        self.resolved.is_none()
    }
}

/// A record to persist; see "Durability" in the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Persist {
    /// Confirm it with [`Node::persisted`](crate::node::Node::persisted)
    /// once written.
    pub id: PersistId,
    /// The put or delete this record makes durable, if it was one.
    pub put: Option<PutId>,
    /// The key's full prefix.
    pub prefix: FullPrefix,
    /// The key.
    pub key: Bytes,
    /// The whole encoded object, to store under the key (replacing what is
    /// there), or `None`: the object was garbage-collected, remove the key.
    pub object: Option<Bytes>,
}

/// Names one [`Persist`] record. Ids increase in emission order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PersistId(pub(crate) u64);

/// Names one `put` or `delete`; see [`Persist::put`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PutId(pub(crate) u64);

/// Names one subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SubscriptionId(pub(crate) u64);

/// How a change reached this node's store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChangeSource {
    /// A put or delete on this node (CRDT resolutions included).
    Local,
    /// A broadcast from a peer.
    Broadcast,
    /// An anti-entropy repair.
    AntiEntropy,
}

/// A CRDT merge over encoded values, registered for a prefix with
/// `Node::register_crdt`: it gets every live sibling (at least two) and
/// returns their merge, or `None` if a value does not decode (the siblings
/// are then left as they are). It must be a join: commutative, associative
/// and idempotent. [`node::typed::merger`](crate::node::typed::merger) builds one from a
/// [`Merge`](crate::crdt::Merge) type.
pub type Merger = fn(&[Bytes]) -> Option<Bytes>;

/// Why a `put` or `delete` was refused. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PutError {
    /// The prefix or subprefix is longer than [`MAX_PREFIX_LEN`].
    PrefixTooLong {
        /// The longer part's length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// Prefix, subprefix and key together exceed [`Config::max_key_len`].
    KeyTooLong {
        /// The encoded length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// The value exceeds [`Config::max_value_len`].
    ValueTooLarge {
        /// The value's length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// The object with its siblings would exceed [`Config::max_object_len`]:
    /// resolve the siblings (write with the read's context) first.
    ObjectTooLarge {
        /// The encoded object's length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// The store holds [`Config::max_keys`] keys already, and this one is
    /// new: delete keys first, or raise the bound.
    TooManyKeys {
        /// The bound.
        max: usize,
    },
    /// The frame that would broadcast the object (with its key and version
    /// vector) exceeds the node's `max_frame`: it could never be sent.
    FrameTooSmall {
        /// The frame's length.
        len: usize,
        /// The node's `max_frame`.
        max: usize,
    },
}

impl fmt::Display for PutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::PrefixTooLong { len, max } => write!(f, "prefix of {len} bytes exceeds the maximum of {max}"),
            PutError::KeyTooLong { len, max } => write!(f, "key of {len} bytes exceeds the maximum of {max}"),
            PutError::ValueTooLarge { len, max } => write!(f, "value of {len} bytes exceeds the maximum of {max}"),
            PutError::TooManyKeys { max } => write!(f, "the store holds its maximum of {max} keys"),
            PutError::FrameTooSmall { len, max } => {
                write!(f, "the write's frame of {len} bytes exceeds max_frame of {max}")
            }
            PutError::ObjectTooLarge { len, max } => {
                write!(
                    f,
                    "object of {len} bytes with its siblings exceeds the maximum of {max}"
                )
            }
        }
    }
}

impl core::error::Error for PutError {}

/// Why [`Node::restore`](crate::node::Node::restore) refused a record.
/// Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RestoreError {
    /// The prefix or key breaks a limit.
    Key(PutError),
    /// The object does not decode, or is not a valid stored object.
    Object(crate::wire::WireError),
    /// The store holds [`Config::max_keys`] keys already.
    TooManyKeys {
        /// The bound.
        max: usize,
    },
}

impl fmt::Display for RestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestoreError::Key(e) => write!(f, "restored key refused: {e}"),
            RestoreError::Object(e) => write!(f, "restored object refused: {e}"),
            RestoreError::TooManyKeys { max } => {
                write!(f, "restored key refused: the store holds its maximum of {max} keys")
            }
        }
    }
}

impl core::error::Error for RestoreError {}

/// The metadata store's settings.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// The metadata broadcast engine's settings.
    ///
    /// Default: the plain broadcast's defaults with a `max_payload` of
    /// 256 KiB, so an object of [`max_object_len`](Self::max_object_len)
    /// fits one GOSSIP.
    pub plumtree: broadcast::Config,
    /// Emit [`Persist`] events and hold writes until they are confirmed (see
    /// "Durability" in the [module docs](self)).
    ///
    /// Default: `true`: Riak's cluster metadata writes every object to disk
    /// (DETS, then LevelDB) before a put returns.
    pub durable: bool,
    /// The longest `prefix + subprefix + key + 2`, in bytes; at most
    /// [`hashtree::MAX_KEY_LEN`].
    ///
    /// Default: `1024`. Names, not values: 1 KiB holds any sane prefix and
    /// key, and keeps an IHAVE batch of 128 ids far below a frame.
    pub max_key_len: usize,
    /// The largest value a put accepts and a peer's object may hold.
    ///
    /// Default: `64 * 1024`. The plain broadcast's payload limit: metadata is
    /// for small values (Riak's cluster metadata holds bucket types and
    /// security settings).
    pub max_value_len: usize,
    /// The largest encoded object (all siblings) a put may produce; also the
    /// metadata engine's `max_payload`.
    ///
    /// Default: `256 * 1024`. Four siblings of the largest value: room for
    /// concurrent writes, and a quarter of a 1 MiB frame.
    pub max_object_len: usize,
    /// The most keys (tombstones included) the store holds. A new key past
    /// it is refused: a local put with [`PutError::TooManyKeys`], a peer's
    /// object (broadcast or repair) by dropping it and counting it in
    /// [`Stats::refused_keys`]. So a peer cannot grow the store without
    /// bound.
    ///
    /// Default: `1_000_000`, the store size the hash tree's default shape
    /// is measured and sized for ([`hashtree::Config`]'s `Default`).
    pub max_keys: usize,
    /// The hash tree's shape; every node of a cluster must use the same.
    ///
    /// Default: 65,536 segments under a width of 256 (see
    /// [`hashtree::Config`]'s `Default` for the measurements).
    pub hashtree: hashtree::Config,
    /// How often a node starts an anti-entropy exchange.
    ///
    /// Default: `Duration::from_secs(10)`. Riak's production value
    /// (PAPERS.md: "anti-entropy exchange tick 10 s").
    pub exchange_interval: Duration,
    /// Exchanges this node runs at once as initiator; 0 turns anti-entropy
    /// off on this node (it still answers peers).
    ///
    /// Default: `1`. Riak's: "at most one exchange at a time".
    pub max_concurrent_exchanges: usize,
    /// How long an exchange waits for a reply before it is abandoned.
    ///
    /// Default: `Duration::from_secs(10)`. Each reply is one round trip plus
    /// a tree walk of milliseconds; ten seconds is a dead peer, not a slow
    /// one, and matches the tick so an abandoned exchange is replaced at the
    /// next one.
    pub exchange_timeout: Duration,
    /// Bounds on one exchange's rounds and reported keys.
    ///
    /// Default: 256 rounds and 65,536 differing keys (see
    /// [`hashtree::Limits`]'s `Default` for why).
    pub exchange_limits: hashtree::Limits,
    /// How often tombstones are acknowledged and collected.
    ///
    /// Default: `Duration::from_secs(10)`. The anti-entropy tick: collection
    /// is rare work and need not be faster than the repair that brings
    /// tombstones to every member.
    pub gc_interval: Duration,
    /// Collect a tombstone once this node has held it this long, without
    /// asking anyone; `None` keeps tombstones until every member holds them
    /// (mesh mode) or forever (HyParView). See "Garbage collection".
    ///
    /// Default: `None`. Riak keeps tombstones forever; collecting without
    /// every member's acknowledgement is a trade-off the operator must opt
    /// into.
    pub tombstone_retention: Option<Duration>,
    /// How long a collected tombstone's context is remembered.
    ///
    /// Default: `Duration::from_secs(600)`. Sixty GC ticks: every member
    /// re-acks (and so hears `GcCollect` again) many times, and frames and
    /// exchanges in flight at collection time (seconds) are long gone.
    pub collected_retention: Duration,
    /// How many collected tombstones are remembered at most.
    ///
    /// Default: `1 << 16`. A key and a small context each: a few MiB at most.
    pub max_collected: usize,
    /// Prefixes whose values are a built-in CRDT: registered when the node
    /// is built, exactly as [`Node::register_crdt`](crate::Node::register_crdt)
    /// would, so they merge without siblings from the first object on.
    /// Every node of the cluster must name the same ones. In a config file:
    /// `crdts = [{ prefix = { prefix = "app", subprefix = "hits" }, kind = "pn_counter" }]`.
    ///
    /// Default: none. Which prefixes are CRDTs is the application's choice.
    pub crdts: Vec<CrdtPrefix>,
}

/// A prefix of [`Config::crdts`] and the CRDT its values are.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrdtPrefix {
    /// The prefix.
    pub prefix: FullPrefix,
    /// The CRDT its values are.
    pub kind: CrdtKind,
}

/// A built-in CRDT a prefix can hold ([`Config::crdts`]). Values are the
/// [`typed`] (postcard) encoding of the named type, with `A` the node
/// identity (the actor) and byte-string elements: `String`, `Vec<u8>` and
/// `Bytes` encode alike, so any of them may be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CrdtKind {
    /// [`GCounter<A>`](crate::crdt::GCounter).
    GCounter,
    /// [`PNCounter<A>`](crate::crdt::PNCounter).
    PnCounter,
    /// [`LwwRegister<Bytes>`](crate::crdt::LwwRegister).
    LwwRegister,
    /// [`MvRegister<A, Bytes>`](crate::crdt::MvRegister).
    MvRegister,
    /// [`OrSwot<A, Bytes>`](crate::crdt::OrSwot).
    OrSwot,
    /// [`OrMap<A, Bytes, MvRegister<A, Bytes>>`](crate::crdt::OrMap).
    OrMap,
}

impl CrdtKind {
    /// The merge of this kind's values with actor type `A` (the node
    /// identity), for [`Node::register_crdt`](crate::Node::register_crdt).
    pub fn merger<A>(self) -> Merger
    where
        A: Ord + Clone + serde::Serialize + serde::de::DeserializeOwned,
    {
        use crate::crdt::{GCounter, LwwRegister, MvRegister, OrMap, OrSwot, PNCounter};
        match self {
            CrdtKind::GCounter => typed::merger::<GCounter<A>>,
            CrdtKind::PnCounter => typed::merger::<PNCounter<A>>,
            CrdtKind::LwwRegister => typed::merger::<LwwRegister<Bytes>>,
            CrdtKind::MvRegister => typed::merger::<MvRegister<A, Bytes>>,
            CrdtKind::OrSwot => typed::merger::<OrSwot<A, Bytes>>,
            CrdtKind::OrMap => typed::merger::<OrMap<A, Bytes, MvRegister<A, Bytes>>>,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            plumtree: Config::engine(broadcast::Config::default()),
            durable: true,
            max_key_len: 1024,
            max_value_len: 64 * 1024,
            max_object_len: 256 * 1024,
            max_keys: 1_000_000,
            hashtree: hashtree::Config::default(),
            exchange_interval: Duration::from_secs(10),
            max_concurrent_exchanges: 1,
            exchange_timeout: Duration::from_secs(10),
            exchange_limits: hashtree::Limits::default(),
            gc_interval: Duration::from_secs(10),
            tombstone_retention: None,
            collected_retention: Duration::from_secs(600),
            max_collected: 1 << 16,
            crdts: Vec::new(),
        }
    }
}

impl Config {
    /// The settings for a full mesh of `cluster_size` nodes: the metadata
    /// engine gets Riak's mesh fanouts ([`broadcast::Config::mesh`]).
    pub fn mesh(cluster_size: usize) -> Self {
        Config {
            plumtree: Config::engine(broadcast::Config::mesh(cluster_size)),
            ..Config::default()
        }
    }

    /// A broadcast configuration made fit to carry objects.
    fn engine(mut plumtree: broadcast::Config) -> broadcast::Config {
        plumtree.max_payload = 256 * 1024;
        plumtree
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Config {
            plumtree,
            durable,
            max_key_len,
            max_value_len,
            max_object_len,
            max_keys,
            hashtree,
            exchange_interval,
            max_concurrent_exchanges,
            exchange_timeout,
            exchange_limits,
            gc_interval,
            tombstone_retention,
            collected_retention,
            max_collected,
            crdts,
        } = self;
        f.debug_struct("Config")
            .field("plumtree", plumtree)
            .field("durable", durable)
            .field("max_key_len", max_key_len)
            .field("max_value_len", max_value_len)
            .field("max_object_len", max_object_len)
            .field("max_keys", max_keys)
            .field("hashtree", hashtree)
            .field("exchange_interval", exchange_interval)
            .field("max_concurrent_exchanges", max_concurrent_exchanges)
            .field("exchange_timeout", exchange_timeout)
            .field("exchange_limits", exchange_limits)
            .field("gc_interval", gc_interval)
            .field("tombstone_retention", tombstone_retention)
            .field("collected_retention", collected_retention)
            .field("max_collected", max_collected)
            .field("crdts", crdts)
            .finish()
    }
}

/// The metadata store's counters and the sizes of its structures.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Stats {
    /// Objects stored, tombstones included.
    pub keys: usize,
    /// Objects that are tombstones.
    pub tombstones: usize,
    /// Puts accepted.
    pub puts: u64,
    /// Deletes accepted.
    pub deletes: u64,
    /// Objects from broadcasts that changed the store.
    pub broadcast_merges: u64,
    /// Objects from anti-entropy that changed the store.
    pub repaired: u64,
    /// Objects restored.
    pub restored: u64,
    /// CRDT siblings this node resolved and wrote back.
    pub resolved: u64,
    /// Writes broadcast (after their records were confirmed).
    pub broadcasts: u64,
    /// Exchanges started as initiator.
    pub exchanges_started: u64,
    /// Exchanges that ran to the end of their repair.
    pub exchanges_completed: u64,
    /// Exchanges ended by an error (a peer's bad reply, a tree mismatch).
    pub exchanges_failed: u64,
    /// Exchanges abandoned for want of a reply.
    pub exchanges_timed_out: u64,
    /// Hash-tree requests sent by exchanges.
    pub exchange_rounds: u64,
    /// Keys found different by exchanges (both directions).
    pub keys_different: u64,
    /// Objects pushed to peers by repairs.
    pub objects_pushed: u64,
    /// Objects received in reply to fetches.
    pub objects_fetched: u64,
    /// Metadata frames dropped because the sender is not a member.
    pub refused_non_member: u64,
    /// Objects refused because a collected tombstone supersedes them.
    pub refused_collected: u64,
    /// Peers' objects for new keys refused because the store holds
    /// [`Config::max_keys`] keys.
    pub refused_keys: u64,
    /// Tombstones collected.
    pub collected: u64,
    /// Objects too large for one anti-entropy frame that were sent in parts.
    pub split_objects: u64,
    /// Times a collection moved this node's writer on to a new epoch (see
    /// [`Actor`]).
    pub epochs: u64,
    /// Tombstone acknowledgements sent.
    pub gc_acks_sent: u64,
    /// Collection notices sent.
    pub gc_collects_sent: u64,
    /// Anti-entropy messages out of place (unknown session, wrong peer,
    /// a reply that does not answer the request).
    pub out_of_place: u64,
    /// Objects that could not be sent: a local write over the metadata
    /// engine's payload limit (anti-entropy still carries it), or a single
    /// writer's siblings over a repair frame (possible only when
    /// `max_object_len` is above half of `max_frame`).
    pub oversized: u64,
    /// Exchanges running now.
    pub sessions: usize,
    /// Persist records not yet confirmed.
    pub unconfirmed: usize,
    /// Keys whose broadcast waits for confirmation.
    pub held: usize,
    /// Collected tombstones remembered.
    pub collected_memory: usize,
    /// Tombstones with acknowledgements being gathered.
    pub gc_pending: usize,
    /// Subscriptions.
    pub subscriptions: usize,
}
