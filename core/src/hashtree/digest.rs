//! The stable hash: what a digest is and exactly which bytes feed it.
//!
//! Every digest in a hash tree crosses the wire, so the same input must give
//! the same digest on every platform and compiler. All hashing is XXH3-64
//! (`xxhash_rust::xxh3`, whose output is fixed by the XXH3 specification),
//! every integer fed in is little-endian with an explicit width, and each use
//! has its own seed so that a segment digest can never be mistaken for an
//! inner-node digest of the same bytes. `core::hash::Hash` is never used for
//! anything that leaves the process.
//!
//! The format (pinned by the `pinned_digests` test; changing any of it is a
//! wire-protocol change):
//!
//! - key hash: `h = xxh3_64_with_seed(key, SEED_KEY)`; the key's segment is
//!   `h % segments`, and within a segment entries are ordered by `(h, key)`
//!   ("segment order"), so that ordering compares integers, not key bytes;
//! - object digest ([`Digest::of`]): `xxh3_64_with_seed(bytes, SEED_OBJECT)`;
//! - segment digest: XXH3-64 seeded with `SEED_SEGMENT` over, for each entry
//!   in segment order, `u64le(key.len()) ‖ key ‖ u64le(object digest)`;
//! - inner-node digest: XXH3-64 seeded with `SEED_INNER` over, for each
//!   non-empty child in ascending position, `u32le(position) ‖ u64le(digest)`;
//! - an empty segment or subtree is [`Digest::EMPTY`] (zero); a non-empty one
//!   whose hash happens to be zero is mapped to one, so zero means empty and
//!   nothing else.

use alloc::vec::Vec;
use core::fmt;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use xxhash_rust::xxh3::xxh3_64_with_seed;

const SEED_KEY: u64 = 1;
const SEED_OBJECT: u64 = 2;
const SEED_SEGMENT: u64 = 3;
const SEED_INNER: u64 = 4;

/// A 64-bit digest: of an object, a segment, an inner node or a whole tree.
///
/// On the wire it is always eight little-endian bytes (not a varint: digests
/// are uniformly random, so a varint would average more than nine bytes).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Digest(u64);

impl Digest {
    /// The digest of an empty segment, subtree or tree.
    pub const EMPTY: Digest = Digest(0);

    /// The stable digest of an object's bytes, for callers with no digest of
    /// their own.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(xxh3_64_with_seed(bytes, SEED_OBJECT))
    }

    /// A digest from its integer value (an object digest computed elsewhere).
    pub const fn from_u64(value: u64) -> Digest {
        Digest(value)
    }

    /// The digest's integer value.
    pub const fn to_u64(self) -> u64 {
        self.0
    }

    /// Whether this is [`Digest::EMPTY`].
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Zero is reserved for "empty"; a real hash of zero becomes one.
    const fn non_empty(hash: u64) -> Digest {
        Digest(if hash == 0 { 1 } else { hash })
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({:016x})", self.0)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.to_le_bytes().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <[u8; 8]>::deserialize(deserializer).map(|b| Digest(u64::from_le_bytes(b)))
    }
}

/// The hash that places a key: its segment, and its order within the
/// segment.
pub(crate) fn key_hash(key: &[u8]) -> u64 {
    xxh3_64_with_seed(key, SEED_KEY)
}

/// The segment of a key with hash `hash`, for a tree of `segments` segments.
pub(crate) fn segment_of(hash: u64, segments: u32) -> u32 {
    // The remainder is below `segments`, so it fits in a u32.
    (hash % u64::from(segments.max(1))) as u32
}

/// The digest of a segment's entries, given in segment order. `scratch` is
/// a reusable buffer: the bytes are laid out there and hashed in one call,
/// which is several times faster than streaming three small pieces per
/// entry.
pub(crate) fn segment_digest<'a, I>(entries: I, scratch: &mut Vec<u8>) -> Digest
where
    I: IntoIterator<Item = (&'a [u8], Digest)>,
{
    scratch.clear();
    for (key, digest) in entries {
        scratch.extend_from_slice(&(key.len() as u64).to_le_bytes());
        scratch.extend_from_slice(key);
        scratch.extend_from_slice(&digest.0.to_le_bytes());
    }
    if scratch.is_empty() {
        Digest::EMPTY
    } else {
        Digest::non_empty(xxh3_64_with_seed(scratch, SEED_SEGMENT))
    }
}

/// The digest of an inner node from its non-empty children, given as
/// (position under the node, digest) in ascending position; `scratch` as for
/// [`segment_digest`].
pub(crate) fn inner_digest<I>(children: I, scratch: &mut Vec<u8>) -> Digest
where
    I: IntoIterator<Item = (u32, Digest)>,
{
    scratch.clear();
    for (position, digest) in children {
        if !digest.is_empty() {
            scratch.extend_from_slice(&position.to_le_bytes());
            scratch.extend_from_slice(&digest.0.to_le_bytes());
        }
    }
    if scratch.is_empty() {
        Digest::EMPTY
    } else {
        Digest::non_empty(xxh3_64_with_seed(scratch, SEED_INNER))
    }
}
