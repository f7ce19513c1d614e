//! The id of a plain broadcast.

use serde::{Deserialize, Serialize};

/// The id of a plain broadcast: its origin and the origin's sequence number.
///
/// Ids are not content hashes, so two broadcasts of identical bytes are two
/// messages (DESIGN.md, "Plumtree").
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BroadcastId<I> {
    /// The node that broadcast it.
    pub origin: I,
    /// The origin's sequence number, from 0.
    pub seq: u64,
}
