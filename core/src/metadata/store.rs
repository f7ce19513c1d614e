//! The store: full prefix → key → object, the one hash tree over
//! prefix-aware keys, per-prefix hashes and the tombstone index.

use super::FullPrefix;
use super::object::Object;
use crate::clock::VClock;
use crate::hashtree::{self, Digest, HashTree};
use crate::time::Instant;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;
use bytes::Bytes;
use serde::Serialize;
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// One stored object with what is derived from it, computed once per change.
pub(crate) struct Entry<I: Ord> {
    pub(crate) object: Object<I>,
    /// `object.context()`, kept because every IHAVE and GRAFT asks for it.
    pub(crate) context: VClock<I>,
    /// The canonical encoding: persisted, gossiped and hashed as it is.
    pub(crate) encoded: Bytes,
    pub(crate) digest: Digest,
    /// When this node last stored the object as a tombstone; `None` for a
    /// live object.
    pub(crate) tombstone_since: Option<Instant>,
}

/// The keys of one full prefix.
pub(crate) struct Prefix<I: Ord> {
    pub(crate) objects: BTreeMap<Bytes, Entry<I>>,
    /// Wrapping sum over the keys of `entry_hash(key, digest)`: order
    /// independent, so it is updated in O(1) per change.
    hash: u64,
}

/// Full prefix → key → [`Entry`], plus the hash tree and the tombstone
/// index.
pub(crate) struct Store<I: Ord> {
    prefixes: BTreeMap<FullPrefix, Prefix<I>>,
    tree: HashTree,
    /// Keys whose object is a tombstone, for garbage collection.
    tombstones: BTreeSet<(FullPrefix, Bytes)>,
    len: usize,
}

/// A key's contribution to its prefix hash.
fn entry_hash(key: &[u8], digest: Digest) -> u64 {
    xxh3_64_with_seed(key, digest.to_u64())
}

/// The key in the hash tree: `len(prefix) ‖ prefix ‖ len(subprefix) ‖
/// subprefix ‖ key`, lengths as one byte each (both are at most
/// [`MAX_PREFIX_LEN`](super::MAX_PREFIX_LEN)). Prefix-aware, so one tree
/// covers every prefix and a tree key names exactly one stored key.
pub(crate) fn tree_key(prefix: &FullPrefix, key: &[u8]) -> Vec<u8> {
    let (p, s) = (prefix.prefix(), prefix.subprefix());
    let mut out = Vec::with_capacity(2 + p.len() + s.len() + key.len());
    out.push(p.len() as u8);
    out.extend_from_slice(p);
    out.push(s.len() as u8);
    out.extend_from_slice(s);
    out.extend_from_slice(key);
    out
}

/// The inverse of [`tree_key`]; `None` for bytes no tree key encodes to.
pub(crate) fn parse_tree_key(bytes: &[u8]) -> Option<(FullPrefix, Bytes)> {
    let (&plen, rest) = bytes.split_first()?;
    let (p, rest) = rest.split_at_checked(usize::from(plen))?;
    let (&slen, rest) = rest.split_first()?;
    let (s, key) = rest.split_at_checked(usize::from(slen))?;
    Some((FullPrefix::new(p, s), Bytes::copy_from_slice(key)))
}

impl<I: Ord + Clone + Serialize> Store<I> {
    pub(crate) fn new(tree: hashtree::Config) -> Self {
        Store {
            prefixes: BTreeMap::new(),
            tree: HashTree::new(tree).unwrap_or_default(),
            tombstones: BTreeSet::new(),
            len: 0,
        }
    }

    /// Objects stored, tombstones included.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn get(&self, prefix: &FullPrefix, key: &[u8]) -> Option<&Entry<I>> {
        self.prefixes.get(prefix)?.objects.get(key)
    }

    /// Stores `object` under `key`, replacing what was there.
    pub(crate) fn set(&mut self, now: Instant, prefix: &FullPrefix, key: &Bytes, object: Object<I>) -> &Entry<I> {
        let encoded = object.encode();
        let digest = Digest::of(&encoded);
        let tombstone = object.is_tombstone();
        let entry = Entry {
            context: object.context(),
            object,
            encoded,
            digest,
            tombstone_since: tombstone.then_some(now),
        };
        // Keys are checked against hashtree::MAX_KEY_LEN before they get here.
        let _ = self.tree.insert(&tree_key(prefix, key), digest);
        let tkey = (prefix.clone(), key.clone());
        if tombstone {
            self.tombstones.insert(tkey);
        } else {
            self.tombstones.remove(&tkey);
        }
        let p = self.prefixes.entry(prefix.clone()).or_insert_with(|| Prefix {
            objects: BTreeMap::new(),
            hash: 0,
        });
        p.hash = p.hash.wrapping_add(entry_hash(key, digest));
        match p.objects.insert(key.clone(), entry) {
            Some(old) => p.hash = p.hash.wrapping_sub(entry_hash(key, old.digest)),
            None => self.len += 1,
        }
        match p.objects.get(key) {
            Some(e) => e,
            None => unreachable!("inserted just above"),
        }
    }

    /// Removes `key` (garbage collection); its prefix goes when emptied.
    pub(crate) fn remove(&mut self, prefix: &FullPrefix, key: &[u8]) -> Option<Entry<I>> {
        let p = self.prefixes.get_mut(prefix)?;
        let old = p.objects.remove(key)?;
        p.hash = p.hash.wrapping_sub(entry_hash(key, old.digest));
        if p.objects.is_empty() {
            self.prefixes.remove(prefix);
        }
        self.len -= 1;
        self.tree.remove(&tree_key(prefix, key));
        self.tombstones.remove(&(prefix.clone(), Bytes::copy_from_slice(key)));
        Some(old)
    }

    /// The prefix's objects in key order.
    pub(crate) fn prefix(&self, prefix: &FullPrefix) -> Option<&BTreeMap<Bytes, Entry<I>>> {
        self.prefixes.get(prefix).map(|p| &p.objects)
    }

    /// Every full prefix holding at least one object, in order.
    pub(crate) fn prefixes(&self) -> impl Iterator<Item = &FullPrefix> + '_ {
        self.prefixes.keys()
    }

    /// An order-independent 64-bit hash of everything under `prefix`
    /// (tombstones included); `None` when the prefix holds nothing.
    pub(crate) fn prefix_hash(&self, prefix: &FullPrefix) -> Option<Digest> {
        self.prefixes.get(prefix).map(|p| Digest::from_u64(p.hash))
    }

    /// The hash tree, with every change rehashed.
    pub(crate) fn tree(&mut self) -> &HashTree {
        self.tree.update();
        &self.tree
    }

    pub(crate) fn tombstones(&self) -> &BTreeSet<(FullPrefix, Bytes)> {
        &self.tombstones
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: &'static [u8], me: u32) -> Object<u32> {
        Object::write(None, VClock::new(), Some(Bytes::from_static(v)), 1, me)
    }

    #[test]
    fn tree_keys_round_trip_and_reject_garbage() {
        let p = FullPrefix::new("users", "");
        let k = tree_key(&p, b"alice");
        assert_eq!(parse_tree_key(&k), Some((p.clone(), Bytes::from_static(b"alice"))));
        assert_eq!(parse_tree_key(&[]), None);
        assert_eq!(parse_tree_key(&[9, 1, 2]), None);
        assert_eq!(parse_tree_key(&[0, 3]), None);
        assert_eq!(parse_tree_key(&[0, 0]), Some((FullPrefix::new("", ""), Bytes::new())));
        // Two prefixes that concatenate alike still differ.
        assert_ne!(
            tree_key(&FullPrefix::new("ab", "c"), b""),
            tree_key(&FullPrefix::new("a", "bc"), b"")
        );
    }

    #[test]
    fn prefix_hashes_follow_the_contents_not_the_history() {
        let p = FullPrefix::new("p", "s");
        let (k1, k2) = (Bytes::from_static(b"1"), Bytes::from_static(b"2"));
        let mut a: Store<u32> = Store::new(hashtree::Config::default());
        let mut b: Store<u32> = Store::new(hashtree::Config::default());
        a.set(Instant::ZERO, &p, &k1, obj(b"x", 1));
        a.set(Instant::ZERO, &p, &k2, obj(b"y", 1));
        b.set(Instant::ZERO, &p, &k2, obj(b"old", 1));
        b.set(Instant::ZERO, &p, &k2, obj(b"y", 1));
        assert_ne!(a.prefix_hash(&p), b.prefix_hash(&p));
        b.set(Instant::ZERO, &p, &k1, obj(b"x", 1));
        assert_eq!(a.prefix_hash(&p), b.prefix_hash(&p));
        assert_eq!(a.tree().root(), b.tree().root());
        assert_eq!(a.len(), 2);
        a.remove(&p, b"1");
        a.remove(&p, b"2");
        assert!(a.is_empty() && a.prefix_hash(&p).is_none());
        assert!(a.tree().root().is_empty());
    }
}
