//! What the core needs of a node's identity.
//!
//! The core never dials anyone, so it does not care what an identity *is*:
//! the in-memory bus uses small integers, the TCP and QUIC adapters use socket
//! addresses. The driver maps identities to links.

use core::fmt::Debug;
use core::hash::Hash;
use serde::{Serialize, de::DeserializeOwned};

/// A node's identity, as carried in protocol messages.
///
/// Blanket-implemented for every type with the listed bounds. `Hash` is used
/// only for in-memory maps with a fixed hasher; nothing derived from it
/// crosses the wire.
pub trait Identity: Clone + Eq + Ord + Hash + Debug + Serialize + DeserializeOwned + 'static {}

impl<T> Identity for T where T: Clone + Eq + Ord + Hash + Debug + Serialize + DeserializeOwned + 'static {}
