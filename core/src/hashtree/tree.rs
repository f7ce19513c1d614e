//! The segmented Merkle tree: configuration, storage and incremental update.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use super::MAX_KEY_LEN;
use super::digest::{self, Digest};

/// The widest fan-out allowed: four times Riak's 1,024. The child digests of
/// one node (8 bytes each, 32 KiB at this width) are a small part of one
/// exchange message, and wider nodes only make every level reply bigger.
pub const MAX_WIDTH: u32 = 1 << 12;

/// The most segments allowed. 2^24 is sixteen times Riak's 2^20; past it the
/// per-segment bookkeeping outweighs the keys of any metadata store, and
/// every node index still fits comfortably in a `u32`.
pub const MAX_SEGMENTS: u32 = 1 << 24;

/// The shape of a hash tree. Both sides of an exchange must use the same one.
///
/// `segments` must be `width` raised to a whole power of at least one; that
/// power is the number of inner levels (root included) above the segments.
///
/// ```
/// use epidemic_core::hashtree::Config;
///
/// let mut config = Config::default();
/// config.segments = 1024;
/// config.width = 32;
/// assert_eq!(config.inner_levels(), Ok(2));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// How many segments keys hash into.
    pub segments: u32,
    /// How many children each inner node has.
    pub width: u32,
}

impl Default for Config {
    /// 65,536 segments under a width of 256: a root, one inner level of 256
    /// nodes, then the segments.
    ///
    /// Sized for a metadata store of up to about 10^6 keys. Figures below
    /// are measured at 10^6 keys by `examples/hashtree_exchange.rs` (see
    /// `BENCHMARKS.md`):
    ///
    /// - **Keys per segment.** 10^6 / 65,536 ≈ 15, so one differing key
    ///   ships about 15 (key, digest) pairs. With 1,024 segments (width 32)
    ///   it ships about 977 (Riak's ~1,000 per segment, but Riak sizes for
    ///   10^9 keys): 28 KB for one difference instead of 4.8 KB, and 19 MB
    ///   in 41 round trips instead of 1 MB in 5 for 1,000 scattered ones.
    /// - **Digests per level.** One differing key costs the root, the
    ///   root's 256 child digests and one level-1 node's 256: 4 round trips
    ///   and 4.8 KB in all. Riak's width of 1,024 ships 8 KiB per level
    ///   (13.6 KB for one difference); a width of 16 (16^4 segments) ships
    ///   128 bytes per level but needs 6 round trips, and round trips cost
    ///   more than kilobytes.
    /// - **Memory.** Only non-empty segments and nodes are stored, so the
    ///   shape costs little: 256 nodes × 256 digests (512 KiB) and 65,536
    ///   segment headers, within the 81 MiB that 10^6 keys of 22 bytes take.
    ///   Riak's 2^20 segments, most holding a single key, take 163 MiB for
    ///   the same keys.
    fn default() -> Self {
        Config {
            segments: 1 << 16,
            width: 1 << 8,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Config { segments, width } = self;
        f.debug_struct("Config")
            .field("segments", segments)
            .field("width", width)
            .finish()
    }
}

impl Config {
    /// A validated config.
    pub fn new(segments: u32, width: u32) -> Result<Config, ConfigError> {
        let config = Config { segments, width };
        config.inner_levels()?;
        Ok(config)
    }

    /// The number of inner levels (root included) above the segments, or why
    /// the config is invalid.
    pub fn inner_levels(&self) -> Result<u32, ConfigError> {
        let Config { segments, width } = *self;
        if !(2..=MAX_WIDTH).contains(&width) {
            return Err(ConfigError::Width(width));
        }
        if !(2..=MAX_SEGMENTS).contains(&segments) {
            return Err(ConfigError::Segments(segments));
        }
        let mut levels = 0;
        let mut n = segments;
        while n > 1 {
            if n % width != 0 {
                return Err(ConfigError::NotAPower { segments, width });
            }
            n /= width;
            levels += 1;
        }
        Ok(levels)
    }
}

/// Why a [`Config`] was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The width is below 2 or above [`MAX_WIDTH`].
    Width(u32),
    /// The segment count is below 2 or above [`MAX_SEGMENTS`].
    Segments(u32),
    /// The segment count is not a power of the width.
    NotAPower {
        /// The segment count asked for.
        segments: u32,
        /// The width asked for.
        width: u32,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Width(w) => write!(f, "width {w} is outside 2..={MAX_WIDTH}"),
            ConfigError::Segments(s) => write!(f, "segment count {s} is outside 2..={MAX_SEGMENTS}"),
            ConfigError::NotAPower { segments, width } => {
                write!(f, "segment count {segments} is not a power of the width {width}")
            }
        }
    }
}

impl core::error::Error for ConfigError {}

/// Why a key was refused. The tree is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InsertError {
    /// The key is longer than [`MAX_KEY_LEN`](super::MAX_KEY_LEN).
    KeyTooLong {
        /// The key's length.
        len: usize,
        /// The maximum.
        max: usize,
    },
}

impl fmt::Display for InsertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InsertError::KeyTooLong { len, max } => write!(f, "key of {len} bytes exceeds the maximum of {max}"),
        }
    }
}

impl core::error::Error for InsertError {}

/// Counters describing a tree and the work it has done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[non_exhaustive]
pub struct Stats {
    /// Keys in the tree.
    pub keys: usize,
    /// Non-empty segments.
    pub segments: usize,
    /// Non-empty inner nodes, each storing its `width` child digests.
    pub inner_nodes: usize,
    /// Segments changed since the last [`HashTree::update`].
    pub dirty_segments: usize,
    /// Segment digests computed by every [`HashTree::update`] so far.
    pub segments_rehashed: u64,
    /// Inner-node digests computed by every [`HashTree::update`] so far.
    pub inner_rehashed: u64,
}

/// One key in a segment.
#[derive(Clone)]
pub(crate) struct Entry {
    /// The key's hash ([`digest::key_hash`]), kept so that searching a
    /// segment compares integers in the entry itself rather than chasing
    /// every key's bytes through a pointer.
    pub(crate) hash: u64,
    pub(crate) key: Box<[u8]>,
    pub(crate) digest: Digest,
}

impl Entry {
    /// Where this entry sorts: by hash, then key ("segment order").
    pub(crate) fn position(&self) -> (u64, &[u8]) {
        (self.hash, &self.key)
    }
}

/// The child digests of one non-empty inner node.
#[derive(Clone)]
struct Block {
    /// `width` digests, [`Digest::EMPTY`] for empty children.
    digests: Box<[Digest]>,
    /// How many are not empty; the block is dropped at zero.
    non_empty: u32,
}

/// A non-empty (or just emptied) segment.
#[derive(Clone, Default)]
struct Segment {
    /// Sorted in segment order.
    entries: Vec<Entry>,
    /// Listed in `HashTree::dirty`.
    dirty: bool,
}

/// A segmented Merkle tree over (key, object digest) pairs.
///
/// [`insert`](Self::insert) and [`remove`](Self::remove) change the entries
/// at once but only mark the segment dirty; [`update`](Self::update)
/// rehashes the dirty segments and the nodes above them. The digests
/// ([`root`](Self::root), [`level`](Self::level)) are those of the last
/// update, while [`segment_keys`](Self::segment_keys) is always live.
///
/// Within a segment, keys are kept in *segment order*: by a stable 64-bit
/// hash of the key, then by the key's bytes.
#[derive(Clone)]
pub struct HashTree {
    config: Config,
    /// Inner levels above the segments; segments sit at depth `levels`.
    levels: u32,
    /// Non-empty segments. A segment emptied by a removal stays (empty, and
    /// dirty) until the next update, which drops it.
    segments: BTreeMap<u32, Segment>,
    /// `blocks[d]` maps each non-empty node at depth `d` (the root at depth
    /// 0; segments are at depth `levels`) to the digests of its `width`
    /// children. A node's children live together, so rehashing or listing
    /// them is one lookup and a contiguous scan, and empty subtrees cost
    /// nothing.
    blocks: Vec<BTreeMap<u32, Block>>,
    root: Digest,
    /// Segments with `dirty` set, unordered.
    dirty: Vec<u32>,
    keys: usize,
    segments_rehashed: u64,
    inner_rehashed: u64,
}

impl fmt::Debug for HashTree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HashTree")
            .field("config", &self.config)
            .field("keys", &self.keys)
            .field("root", &self.root())
            .field("dirty_segments", &self.dirty.len())
            .finish_non_exhaustive()
    }
}

impl Default for HashTree {
    fn default() -> Self {
        let config = Config::default();
        HashTree::with_levels(config, config.inner_levels().unwrap_or(2))
    }
}

impl HashTree {
    /// An empty tree of the given shape.
    pub fn new(config: Config) -> Result<HashTree, ConfigError> {
        let levels = config.inner_levels()?;
        Ok(HashTree::with_levels(config, levels))
    }

    fn with_levels(config: Config, levels: u32) -> HashTree {
        HashTree {
            config,
            levels,
            segments: BTreeMap::new(),
            blocks: vec![BTreeMap::new(); levels as usize],
            root: Digest::EMPTY,
            dirty: Vec::new(),
            keys: 0,
            segments_rehashed: 0,
            inner_rehashed: 0,
        }
    }

    /// The tree's shape.
    pub fn config(&self) -> Config {
        self.config
    }

    /// Inner levels above the segments (root included): 2 by default.
    pub fn inner_levels(&self) -> u32 {
        self.levels
    }

    /// Keys in the tree.
    pub fn len(&self) -> usize {
        self.keys
    }

    /// Whether the tree holds no keys.
    pub fn is_empty(&self) -> bool {
        self.keys == 0
    }

    /// The segment `key` falls in.
    pub fn segment_of(&self, key: &[u8]) -> u32 {
        digest::segment_of(digest::key_hash(key), self.config.segments)
    }

    /// The segment and index of `key`, or where it would go.
    fn find(&self, key: &[u8]) -> (u64, u32, Option<Result<usize, usize>>) {
        let hash = digest::key_hash(key);
        let segment = digest::segment_of(hash, self.config.segments);
        let at = self
            .segments
            .get(&segment)
            .map(|s| s.entries.binary_search_by(|e| e.position().cmp(&(hash, key))));
        (hash, segment, at)
    }

    fn mark_dirty(dirty: &mut Vec<u32>, segment: &mut Segment, index: u32) {
        if !segment.dirty {
            segment.dirty = true;
            dirty.push(index);
        }
    }

    /// Sets `key`'s object digest and marks its segment dirty; returns the
    /// previous digest. O(log n); nothing is rehashed until
    /// [`update`](Self::update).
    pub fn insert(&mut self, key: &[u8], object: Digest) -> Result<Option<Digest>, InsertError> {
        if key.len() > MAX_KEY_LEN {
            return Err(InsertError::KeyTooLong {
                len: key.len(),
                max: MAX_KEY_LEN,
            });
        }
        let hash = digest::key_hash(key);
        let index = digest::segment_of(hash, self.config.segments);
        let segment = self.segments.entry(index).or_default();
        let previous = match segment.entries.binary_search_by(|e| e.position().cmp(&(hash, key))) {
            Ok(i) => {
                let old = core::mem::replace(&mut segment.entries[i].digest, object);
                if old == object {
                    return Ok(Some(old));
                }
                Some(old)
            }
            Err(i) => {
                let entry = Entry {
                    hash,
                    key: key.into(),
                    digest: object,
                };
                segment.entries.insert(i, entry);
                self.keys += 1;
                None
            }
        };
        Self::mark_dirty(&mut self.dirty, segment, index);
        Ok(previous)
    }

    /// Removes `key` and marks its segment dirty; returns its digest.
    pub fn remove(&mut self, key: &[u8]) -> Option<Digest> {
        let (_, index, at) = self.find(key);
        let i = at?.ok()?;
        let segment = self.segments.get_mut(&index)?;
        let old = segment.entries.remove(i).digest;
        self.keys -= 1;
        Self::mark_dirty(&mut self.dirty, segment, index);
        Some(old)
    }

    /// `key`'s object digest.
    pub fn get(&self, key: &[u8]) -> Option<Digest> {
        let (_, index, at) = self.find(key);
        let i = at?.ok()?;
        Some(self.segments.get(&index)?.entries[i].digest)
    }

    /// Every (key, object digest), by segment, then in segment order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], Digest)> + '_ {
        self.segments
            .values()
            .flat_map(|s| &s.entries)
            .map(|e| (&*e.key, e.digest))
    }

    /// Whether entries changed since the last [`update`](Self::update).
    pub fn is_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// Rehashes the dirty segments and the inner nodes above them, and
    /// nothing else. A node whose digest comes out unchanged (a key inserted
    /// then removed, say) does not dirty its parent.
    pub fn update(&mut self) {
        if self.dirty.is_empty() {
            return;
        }
        let mut dirty = core::mem::take(&mut self.dirty);
        dirty.sort_unstable();
        let levels = self.levels as usize;
        let width = self.config.width;
        // Room for one inner node (12 bytes per child) without regrowing.
        let mut scratch = Vec::with_capacity(12 * width as usize);
        // Parents (at depth `levels - 1`) of segments whose digest changed,
        // ascending: `dirty` is sorted, so equal parents are adjacent.
        let mut parents: Vec<u32> = Vec::with_capacity(dirty.len());
        for index in dirty {
            let digest = match self.segments.get_mut(&index) {
                Some(segment) if !segment.entries.is_empty() => {
                    segment.dirty = false;
                    digest::segment_digest(segment.entries.iter().map(|e| (&*e.key, e.digest)), &mut scratch)
                }
                _ => {
                    self.segments.remove(&index);
                    Digest::EMPTY
                }
            };
            self.segments_rehashed += 1;
            if set(&mut self.blocks[levels - 1], width, index, digest) && parents.last() != Some(&(index / width)) {
                parents.push(index / width);
            }
        }
        for d in (0..levels).rev() {
            let mut grandparents = Vec::with_capacity(parents.len());
            for &node in &parents {
                let digest = match self.blocks[d].get(&node) {
                    Some(block) => digest::inner_digest(
                        block.digests.iter().enumerate().map(|(i, &digest)| (i as u32, digest)),
                        &mut scratch,
                    ),
                    None => Digest::EMPTY,
                };
                self.inner_rehashed += 1;
                let changed = if d == 0 {
                    core::mem::replace(&mut self.root, digest) != digest
                } else {
                    set(&mut self.blocks[d - 1], width, node, digest)
                };
                if changed && grandparents.last() != Some(&(node / width)) {
                    grandparents.push(node / width);
                }
            }
            parents = grandparents;
        }
    }

    /// The root digest as of the last [`update`](Self::update);
    /// [`Digest::EMPTY`] for an empty tree.
    pub fn root(&self) -> Digest {
        self.root
    }

    /// The digests of the `width` children of node `bucket` at `level`
    /// (the root is level 0, bucket 0; the children of level
    /// `inner_levels() - 1` are the segments), as of the last update. `None`
    /// if there is no such node.
    pub fn level(&self, level: u32, bucket: u32) -> Option<Vec<Digest>> {
        if !self.is_node(level, bucket) {
            return None;
        }
        let mut out = vec![Digest::EMPTY; self.config.width as usize];
        for (position, digest) in self.children(level, bucket) {
            out[position as usize] = digest;
        }
        Some(out)
    }

    /// The live (key, object digest) pairs of `segment`, in segment order;
    /// empty if the segment is empty or out of range.
    pub fn segment_keys(&self, segment: u32) -> impl Iterator<Item = (&[u8], Digest)> + '_ {
        self.segment_slice(segment).iter().map(|e| (&*e.key, e.digest))
    }

    /// Counters: size and rehash work.
    pub fn stats(&self) -> Stats {
        Stats {
            keys: self.keys,
            segments: self.segments.values().filter(|s| !s.entries.is_empty()).count(),
            inner_nodes: self.blocks.iter().map(BTreeMap::len).sum(),
            dirty_segments: self.dirty.len(),
            segments_rehashed: self.segments_rehashed,
            inner_rehashed: self.inner_rehashed,
        }
    }

    /// Nodes at `level` (0 ..= inner_levels).
    pub(crate) fn nodes_at(&self, level: u32) -> u32 {
        // Bounded by `segments`, so no overflow.
        self.config.width.pow(level.min(self.levels))
    }

    pub(crate) fn is_node(&self, level: u32, bucket: u32) -> bool {
        level < self.levels && bucket < self.nodes_at(level)
    }

    /// The non-empty children of node `bucket` at `level`, as (position,
    /// digest) in ascending position. The caller checks `is_node`.
    pub(crate) fn children(&self, level: u32, bucket: u32) -> impl Iterator<Item = (u32, Digest)> + '_ {
        self.blocks
            .get(level as usize)
            .and_then(|blocks| blocks.get(&bucket))
            .into_iter()
            .flat_map(|block| block.digests.iter().enumerate())
            .filter(|(_, d)| !d.is_empty())
            .map(|(i, &d)| (i as u32, d))
    }

    /// The live entries of `segment`, in segment order.
    pub(crate) fn segment_slice(&self, segment: u32) -> &[Entry] {
        self.segments.get(&segment).map(|s| s.entries.as_slice()).unwrap_or(&[])
    }

    /// Every live entry in the subtree of node `index` at depth `level`.
    pub(crate) fn subtree_keys(&self, level: u32, index: u32) -> impl Iterator<Item = &[u8]> + '_ {
        let span = self.config.width.pow(self.levels.saturating_sub(level));
        let first = index.saturating_mul(span);
        self.segments
            .range(first..first.saturating_add(span))
            .flat_map(|(_, s)| s.entries.iter().map(|e| &*e.key))
    }
}

/// Stores `digest` for node `index` in its parent's block among `blocks`,
/// creating or dropping the block as needed; whether the digest changed.
fn set(blocks: &mut BTreeMap<u32, Block>, width: u32, index: u32, digest: Digest) -> bool {
    let (parent, position) = (index / width, (index % width) as usize);
    let old = match blocks.get_mut(&parent) {
        Some(block) => {
            let old = core::mem::replace(&mut block.digests[position], digest);
            match (old.is_empty(), digest.is_empty()) {
                (true, false) => block.non_empty += 1,
                (false, true) => block.non_empty -= 1,
                _ => {}
            }
            if block.non_empty == 0 {
                blocks.remove(&parent);
            }
            old
        }
        None if !digest.is_empty() => {
            let mut digests = vec![Digest::EMPTY; width as usize].into_boxed_slice();
            digests[position] = digest;
            blocks.insert(parent, Block { digests, non_empty: 1 });
            Digest::EMPTY
        }
        None => Digest::EMPTY,
    };
    old != digest
}
