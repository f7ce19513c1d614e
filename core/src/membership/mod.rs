//! Membership: who a node talks to.
//!
//! A membership protocol gives every node a set of *neighbors*: the peers it
//! keeps links to and gossips with. The broadcast layer builds its trees over
//! those links, so membership decides how well broadcast survives failures.
//!
//! Two protocols live here, for two cluster shapes:
//!
//! - [`hyparview`]: HyParView (Leitão, Pereira, Rodrigues, DSN 2007). Each
//!   node knows a small *active view* of about log(n) neighbors, kept
//!   symmetric and repaired as soon as a link fails, and a larger *passive
//!   view* of backups refreshed by shuffles. It scales to tens of thousands
//!   of nodes and survives the loss of most of them at once.
//! - [`mesh`]: full-mesh membership, in the Riak model: every node knows every node,
//!   and joins and leaves are operator decisions. It is for clusters small
//!   enough that a complete member list is cheap.
//!
//! Both are sans-IO state machines with the contract of the rest of the
//! core: inputs carry `now`, outputs are drained with `poll_transmit`,
//! `poll_event` and `poll_timeout`, and failure detection is the driver's
//! job. A driver reports a failed link and the protocol repairs around it;
//! the protocols never probe or time out a healthy link on their own.
//! Both report neighbor changes as events, which is all the broadcast layer
//! needs to know.

pub mod hyparview;
pub mod mesh;
mod seam;

pub(crate) use seam::{Membership, Message};

/// Which membership protocol a node runs, with its settings.
///
/// In a configuration file the protocol is named by `protocol`, beside its
/// settings: `protocol = "hyparview"` or `protocol = "mesh"`.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(tag = "protocol", rename_all = "lowercase")]
#[non_exhaustive]
pub enum Config {
    /// HyParView partial views: for clusters of any size; no node knows every
    /// member.
    HyParView(hyparview::Config),
    /// Full mesh: every node knows every member; for small clusters whose
    /// membership the operator controls.
    Mesh(mesh::Config),
}

/// A change in the set of neighbours, from either protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
#[doc(hidden)]
pub enum Event<I> {
    /// The peer became a neighbour: it entered the HyParView active view, or
    /// is a member whose link is up in mesh mode.
    NeighborUp(I),
    /// The peer stopped being a neighbour.
    NeighborDown(I),
}

/// What the driver reports about the link to a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkEvent {
    /// A connection to the peer is established.
    Up,
    /// The connection failed or broke: the peer is unreachable for now.
    Down,
}
