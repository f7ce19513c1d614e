//! A segmented Merkle tree and the compare-exchange that finds where two
//! trees differ, after Riak's `hashtree`.
//!
//! Each node of a cluster keeps a [`HashTree`] over its objects: for every
//! key, a [`Digest`] of the object stored under it. Two nodes find out which
//! keys they disagree on by exchanging digests top-down, only descending
//! where the digests differ, and finally listing the keys of the few
//! segments that differ. The differences are then repaired by whatever
//! owns the objects (the metadata store).
//!
//! # Layout
//!
//! Keys hash into one of `segments` segments. A segment holds its keys in
//! order with their object digests, and has a digest of its own. Segment
//! digests roll up through inner nodes of `width` children each to a single
//! root. With the default [`Config`] (65,536 segments, width 256):
//!
//! ```text
//!  level 0                        [root]                     1 node
//!                      ┌────────────┼─────────────┐
//!  level 1           [0]   ...    [b]    ...    [255]         256 nodes
//!                          ┌───────┼───────┐
//!  segments    [256·b] ... [256·b+i] ... [256·b+255]         65,536 segments
//!                              │
//!                key₁ → d₁, key₂ → d₂, ...  (~15 per segment at 10^6 keys)
//! ```
//!
//! - [`HashTree::insert`] and [`HashTree::remove`] change a segment's
//!   entries and mark it dirty: O(log n), no hashing.
//! - [`HashTree::update`] rehashes only the dirty segments and the inner
//!   nodes above them (two per segment by default), and stops climbing where
//!   a digest comes out unchanged.
//! - Each non-empty inner node keeps its `width` child digests together;
//!   empty segments and subtrees are not stored at all and have the digest
//!   [`Digest::EMPTY`]. Memory follows the keys, not the shape.
//! - Within a segment, keys are ordered by a stable 64-bit hash of the key,
//!   then by the key ("segment order"): searching compares integers held in
//!   the entries rather than key bytes behind pointers.
//! - Every digest is XXH3-64 over explicitly little-endian bytes, so it is
//!   the same on every platform; the exact format is in the `digest` module
//!   source and is pinned by a test.
//!
//! # The exchange
//!
//! The initiator runs an [`Exchange`]; the peer answers each request with
//! [`respond`], which keeps no state. Both are sans-IO: they take and return
//! [`Message`]s, which the caller carries (postcard-encoded, in a
//! [`wire`](crate::wire) frame). One request is in flight at a time.
//!
//! 1. **Root.** The initiator sends [`Message::RootRequest`]; the reply
//!    carries the peer's shape and root. A different shape ends the exchange
//!    with [`ExchangeError::ConfigMismatch`]; an equal root ends it with an
//!    empty diff: identical trees cost one round trip.
//! 2. **Levels.** For each inner level, top-down, the initiator asks for the
//!    child digests of every node that differs
//!    ([`Message::ChildrenRequest`]), batched up to
//!    [`max_buckets_per_request`] nodes per message, and compares them with
//!    its own. Children that differ form the next level's list. A child the
//!    peer lacks entirely (empty digest) is not descended: every local key
//!    under it is missing remotely.
//! 3. **Keys.** For the differing segments the initiator asks for the
//!    (key, object digest) pairs, in segment order
//!    ([`Message::KeysRequest`]), up to
//!    [`MAX_SEGMENTS_PER_REQUEST`] segments per request. A reply that would
//!    pass [`MAX_MESSAGE_LEN`] stops early, possibly inside a segment, and
//!    the initiator asks again from where it stopped.
//! 4. **Report.** The initiator merges each remote listing with its own
//!    segment and reports a [`Diff`]: keys missing locally, keys missing
//!    remotely, and keys whose digests differ. Repair (fetching and pushing
//!    objects, in both directions) belongs to the caller.
//!
//! Every message is checked before it is used: a message out of place, an
//! index out of range, a list out of order or too long, or a key in a
//! segment it does not hash to is an [`ExchangeError`], never a panic. Each
//! reply either finishes a level or segment or moves the cursor forward, and
//! [`Limits`] caps the rounds and the keys reported, so an exchange ends
//! even against a peer that lies or trees that change underneath it.
//!
//! # Cost
//!
//! A difference in one key costs one root digest, then `width` child
//! digests per inner level below the root, then one segment's listing.
//! Riak's tree (2^20 segments, width 1,024, 3 levels) at 10^9 keys: 3 hash
//! exchanges plus about 1,000 key hashes (10^9 / 2^20 ≈ 954 keys per
//! segment). The default here has the same three levels, so at 10^6 keys
//! one difference costs the same 3 digest exchanges (the root, 256 digests,
//! 256 digests) and a listing of ~15 (key, digest) pairs: 4 round trips,
//! 4.8 KB in all. `k`
//! scattered differences cost about `min(k, 256)` level-1 nodes of 256
//! digests each plus `k` segment listings: at `k` = 1,000, 5 round trips
//! and 1 MB. Measured figures are in `BENCHMARKS.md`.
//!
//! # Example
//!
//! Two trees that differ in one key, exchanged to completion:
//!
//! ```
//! use epidemic_core::hashtree::{Config, Digest, Exchange, HashTree, Step, respond};
//!
//! let mut a = HashTree::new(Config::default()).unwrap();
//! let mut b = HashTree::new(Config::default()).unwrap();
//! for i in 0..1000u32 {
//!     let key = i.to_le_bytes();
//!     a.insert(&key, Digest::of(b"v1")).unwrap();
//!     b.insert(&key, Digest::of(b"v1")).unwrap();
//! }
//! b.insert(&7u32.to_le_bytes(), Digest::of(b"v2")).unwrap();
//! a.update();
//! b.update();
//! assert_ne!(a.root(), b.root());
//!
//! let (mut exchange, mut request) = Exchange::start(&a);
//! let diff = loop {
//!     let reply = respond(&b, &request).unwrap();
//!     match exchange.handle(&a, reply).unwrap() {
//!         Step::Send(next) => request = next,
//!         Step::Done(diff) => break diff,
//!     }
//! };
//! assert_eq!(diff.different, vec![7u32.to_le_bytes().to_vec()]);
//! assert_eq!(diff.len(), 1);
//! assert_eq!(exchange.rounds(), 4); // root, level 0, level 1, keys
//! ```

mod digest;
mod exchange;
mod message;
mod tree;

#[cfg(test)]
mod tests;

pub use digest::Digest;
pub use exchange::{Diff, Exchange, ExchangeError, Limits, Step, respond};
pub use message::{ChildDigests, MAX_SEGMENTS_PER_REQUEST, Message, SegmentKeys, max_buckets_per_request};
pub use tree::{Config, ConfigError, HashTree, InsertError, MAX_SEGMENTS, MAX_WIDTH, Stats};

/// The longest key a tree accepts, in bytes.
///
/// Keys are names (a metadata store's prefix, subprefix and key), not
/// values; 4 KiB is far above any sane name, and keeps the largest single
/// entry of a key listing under 1% of [`MAX_MESSAGE_LEN`], so a listing always
/// makes progress.
pub const MAX_KEY_LEN: usize = 4096;

/// The most bytes any exchange message postcard-encodes to: 512 KiB.
///
/// Half of [`wire::DEFAULT_MAX_FRAME`](crate::wire::DEFAULT_MAX_FRAME), so
/// a message fits a frame with room for whatever envelope the node adds.
/// The responder checks conservative upper bounds on the encoding as it
/// fills a reply, so this holds for any tree.
pub const MAX_MESSAGE_LEN: usize = 512 * 1024;
