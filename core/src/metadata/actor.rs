//! The writer named in a metadata dot (see [`Actor`]).

use core::fmt;
use serde::{Deserialize, Serialize};

/// A writer in the metadata store's clocks: `node` in its life
/// `incarnation`, epoch `epoch` of that life.
///
/// # Why the node id alone is not enough
///
/// A DVVSet dot `(actor, n)` must name exactly one event: replicas that hold
/// different values under one dot disagree forever, and a context that
/// covers `(actor, n)` overwrites whichever value the reader never saw. A
/// node that names its writes by its id alone continues each key's counter
/// from what it holds of the key, and there are two ways for it to hold less
/// than it wrote:
///
/// - **A restart.** Without its disk it holds nothing; with it, it does not
///   hold the keys it collected.
/// - **Tombstone collection.** Once a key is collected and the memory of
///   its context has expired (or was never restored), the next write to the
///   key starts again at counter 1, and a member that still holds the old
///   tombstone (or an old context) reads the new write as already deleted.
///
/// # The rule
///
/// A writer is an [`Actor`] `(node, incarnation, epoch)`:
///
/// - the **incarnation** is the node's life ([`node::Config::incarnation`](crate::node::Config::incarnation)),
///   distinct across restarts, so a restarted node never continues a
///   counter of its earlier life, with or without its disk;
/// - the **epoch** starts at 0 in each life and moves on whenever this
///   node collects a tombstone that holds a dot of its current actor. Every
///   key the current actor wrote is then still in the store, so continuing
///   its counter from the stored object never reuses a dot.
///
/// Old actors stay in clocks as plain history; the cost is one clock entry
/// per life (and per collection epoch) that wrote a key. This is the
/// approach Riak KV took for the same bug ("per-key epochs" in its vnode
/// clocks: a new actor id whenever the vnode cannot be sure it holds the
/// latest of its own writes to a key).
///
/// The price of a fresh actor is that it carries no memory: a write by a
/// new actor to a key whose tombstone is still held somewhere becomes a
/// *sibling* of that tombstone rather than superseding it (unless the writer
/// passes, or remembers, the tombstone's context). A sibling of a tombstone
/// reads as the written value, so no acknowledged write is ever lost.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Actor<I> {
    /// The node that wrote.
    pub node: I,
    /// The node's life: [`node::Config::incarnation`](crate::node::Config::incarnation).
    pub incarnation: u32,
    /// The epoch within that life.
    pub epoch: u32,
}

impl<I> Actor<I> {
    /// The first actor of `node`'s life `incarnation`.
    pub fn new(node: I, incarnation: u32) -> Self {
        Actor {
            node,
            incarnation,
            epoch: 0,
        }
    }
}

impl<I: fmt::Debug> fmt::Debug for Actor<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}@{}.{}", self.node, self.incarnation, self.epoch)
    }
}

/// The causal context of a metadata object: a version vector over
/// [`Actor`]s. Read it from [`Read::context`](super::Read), hand it back to
/// `put`/`delete`; it is opaque otherwise.
pub type Context<I> = crate::clock::VClock<Actor<I>>;
