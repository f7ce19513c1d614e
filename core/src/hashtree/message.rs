//! The exchange's messages and their size accounting.

use alloc::vec;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::{MAX_KEY_LEN, MAX_MESSAGE_LEN};

/// Most segments one [`Message::KeysRequest`] may name.
///
/// 4,096 segment indices are at most 20 KiB; at the default shape's ~15 keys
/// per segment the answer would be ~60,000 pairs, more than one reply's
/// budget holds, so the responder's budget, not this count, usually cuts a
/// reply short.
pub const MAX_SEGMENTS_PER_REQUEST: usize = 4096;

/// One message of the compare-exchange. Requests go from the initiator
/// ([`Exchange`](super::Exchange)) to the responder ([`respond`](super::respond));
/// each request gets exactly one reply.
///
/// Every message either side produces postcard-encodes to at most
/// [`MAX_MESSAGE_LEN`](super::MAX_MESSAGE_LEN) bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Message {
    /// Request: the responder's tree shape and root digest.
    RootRequest,
    /// Reply to [`Message::RootRequest`].
    Root {
        /// The responder's segment count.
        segments: u32,
        /// The responder's width.
        width: u32,
        /// The responder's root digest.
        root: Digest,
    },
    /// Request: the child digests of these nodes at `level` (root = 0).
    ChildrenRequest {
        /// The level the nodes sit at; below the segment level.
        level: u32,
        /// The nodes, strictly ascending.
        buckets: Vec<u32>,
    },
    /// Reply to [`Message::ChildrenRequest`]: one entry per requested node,
    /// in request order.
    Children {
        /// The level of the requested nodes.
        level: u32,
        /// Each node's children.
        nodes: Vec<ChildDigests>,
    },
    /// Request: the (key, object digest) pairs of these segments.
    KeysRequest {
        /// The segments, strictly ascending; at most
        /// [`MAX_SEGMENTS_PER_REQUEST`].
        segments: Vec<u32>,
        /// Continue the first segment after this key (its last reply was
        /// cut short there).
        after: Option<Vec<u8>>,
    },
    /// Reply to [`Message::KeysRequest`]: sections for a prefix of the
    /// requested segments, in request order. Only the last may be
    /// incomplete, and then it holds at least one entry.
    Keys {
        /// One section per answered segment.
        sections: Vec<SegmentKeys>,
    },
}

impl Message {
    /// The variant's name, for errors and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Message::RootRequest => "RootRequest",
            Message::Root { .. } => "Root",
            Message::ChildrenRequest { .. } => "ChildrenRequest",
            Message::Children { .. } => "Children",
            Message::KeysRequest { .. } => "KeysRequest",
            Message::Keys { .. } => "Keys",
        }
    }
}

/// The children of one inner node: a bitmap of the non-empty ones, then
/// their digests in position order.
///
/// The bitmap costs `width / 8` bytes and spares the empty children their
/// eight bytes each, so a sparse tree's replies stay small and a full tree's
/// pay 1/64 extra.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildDigests {
    /// Bit `i % 8` of byte `i / 8` is set when child `i` is non-empty.
    pub present: Vec<u8>,
    /// The non-empty children's digests, in position order.
    pub digests: Vec<Digest>,
}

impl ChildDigests {
    /// Packs (position, digest) pairs, ascending and below `width`.
    pub(crate) fn pack(width: u32, children: impl Iterator<Item = (u32, Digest)>) -> ChildDigests {
        let mut present = vec![0u8; width.div_ceil(8) as usize];
        let mut digests = Vec::new();
        for (position, digest) in children {
            if digest.is_empty() {
                continue;
            }
            if let Some(byte) = present.get_mut(position as usize / 8) {
                *byte |= 1 << (position % 8);
                digests.push(digest);
            }
        }
        ChildDigests { present, digests }
    }

    /// Checks the packing against `width`; on success, the (position,
    /// digest) pairs in ascending position.
    pub(crate) fn unpack(&self, width: u32) -> Result<impl Iterator<Item = (u32, Digest)> + '_, &'static str> {
        if self.present.len() != width.div_ceil(8) as usize {
            return Err("child bitmap of the wrong length");
        }
        let spare = width % 8;
        if spare != 0 && self.present.last().is_some_and(|b| b >> spare != 0) {
            return Err("child bitmap marks positions past the width");
        }
        let count: u32 = self.present.iter().map(|b| b.count_ones()).sum();
        if count as usize != self.digests.len() {
            return Err("child bitmap and digest count disagree");
        }
        if self.digests.iter().any(|d| d.is_empty()) {
            return Err("empty digest listed as a non-empty child");
        }
        let positions = self.present.iter().enumerate().flat_map(|(i, &b)| {
            (0..8)
                .filter(move |bit| b & (1 << bit) != 0)
                .map(move |bit| i as u32 * 8 + bit)
        });
        Ok(positions.zip(self.digests.iter().copied()))
    }
}

/// One segment's (key, object digest) pairs in a [`Message::Keys`] reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentKeys {
    /// The segment.
    pub segment: u32,
    /// Its entries, strictly ascending in segment order: by the key's
    /// stable hash, then by key (after the request's `after` key, for the
    /// first section).
    pub entries: Vec<(Vec<u8>, Digest)>,
    /// False when the reply was cut short inside this segment; the initiator
    /// then asks again from the last key listed.
    pub complete: bool,
}

// Upper bounds on postcard encodings, used to keep every message within
// MAX_MESSAGE_LEN. Postcard writes integers as varints: a u32 or a length
// below 2^35 takes at most 5 bytes, a length below 2^14 at most 2.
const VARINT: usize = 5;
/// Enum tag plus one u32 and one length.
const REPLY_HEADER: usize = 1 + 2 * VARINT;
/// Segment, entry count and completeness flag.
pub(crate) const SECTION_OVERHEAD: usize = 2 * VARINT + 1;

/// The most a node's [`ChildDigests`] can take at `width`.
fn node_bound(width: u32) -> usize {
    2 * VARINT + width.div_ceil(8) as usize + 8 * width as usize
}

/// The most nodes one [`Message::ChildrenRequest`] may name at `width`, so
/// that the reply fits [`MAX_MESSAGE_LEN`]: 250 at the default width.
pub fn max_buckets_per_request(width: u32) -> usize {
    ((MAX_MESSAGE_LEN - REPLY_HEADER) / node_bound(width)).max(1)
}

/// The most one entry of a [`SegmentKeys`] can take.
pub(crate) fn entry_bound(key: &[u8]) -> usize {
    // Keys are at most MAX_KEY_LEN (< 2^14), so their length is two bytes.
    const _: () = assert!(MAX_KEY_LEN < 1 << 14);
    2 + key.len() + 8
}

/// The budget a [`Message::Keys`] reply starts with.
pub(crate) const KEYS_BUDGET: usize = MAX_MESSAGE_LEN - REPLY_HEADER;

// The first entry of a reply always fits, so every reply makes progress.
const _: () = assert!(SECTION_OVERHEAD + 2 + MAX_KEY_LEN + 8 <= KEYS_BUDGET);
