//! The replicated object: a DVVSet of `(value | tombstone, timestamp)`
//! siblings (Riak's `riak_core_metadata_object`), its encoding, and what a
//! reader gets back ([`Read`]).

use crate::clock::{DVVSet, VClock};
use crate::wire::{self, WireError};
use alloc::vec::Vec;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// One sibling as stored: the value (`None` for a tombstone) and the LWW
/// timestamp its writer gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Sibling {
    pub(crate) value: Option<Bytes>,
    pub(crate) timestamp: u64,
}

impl Sibling {
    /// Last-writer-wins order: timestamp, then the value itself (a tombstone
    /// sorts below any value), so every replica picks the same winner.
    fn lww_less(a: &Sibling, b: &Sibling) -> bool {
        (a.timestamp, &a.value) < (b.timestamp, &b.value)
    }
}

/// The object stored under one key: every sibling not yet overwritten, each
/// with the dot of the write that made it, under one causal context.
///
/// Objects are built by [`Node::put`](crate::node::Node::put) and
/// [`Node::delete`](crate::node::Node::delete) and merged by the store; an
/// application sees them as [`Read`]s, and as opaque bytes in
/// [`Persist`](super::Persist) events and [`Node::restore`](crate::node::Node::restore).
///
/// Every stored object has at least one sibling and no anonymous (undotted)
/// value; decoding a peer's object checks both (see [`Object::check`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
#[serde(bound(serialize = "I: Serialize", deserialize = "I: Ord + Deserialize<'de>"))]
pub struct Object<I: Ord> {
    pub(crate) dvv: DVVSet<I, Sibling>,
}

impl<I: Ord + Clone + Serialize> Object<I> {
    /// A write through server `me`: `value` (`None` deletes) with causal
    /// context `context`, applied to `stored` (this server's copy, if any).
    ///
    /// The stored siblings the context covers are overwritten, the others
    /// stay, and the new sibling gets `me`'s next dot.
    pub(crate) fn write(
        stored: Option<&Object<I>>,
        context: VClock<I>,
        value: Option<Bytes>,
        timestamp: u64,
        me: I,
    ) -> Self {
        let sibling = Sibling { value, timestamp };
        let empty = DVVSet::default();
        let base = stored.map_or(&empty, |o| &o.dvv);
        Object {
            dvv: DVVSet::new_with(context, sibling).update_with(base, me),
        }
    }

    /// The causal context: what a writer hands back to overwrite every
    /// sibling here.
    pub fn context(&self) -> VClock<I> {
        self.dvv.join()
    }

    /// Merges two replicas of the key (DVVSet `sync`).
    pub(crate) fn sync(&self, other: &Object<I>) -> Object<I> {
        Object {
            dvv: self.dvv.sync(&other.dvv),
        }
    }

    /// Number of siblings, tombstones included.
    pub fn siblings(&self) -> usize {
        self.dvv.size()
    }

    /// Whether every sibling is a tombstone: the key reads as deleted and the
    /// object may be garbage-collected.
    pub fn is_tombstone(&self) -> bool {
        self.dvv.values().all(|s| s.value.is_none())
    }

    /// The largest timestamp among the siblings (0 for none).
    pub(crate) fn max_timestamp(&self) -> u64 {
        self.dvv.values().map(|s| s.timestamp).max().unwrap_or(0)
    }

    /// The smallest server id among the live dots: the one replica that
    /// resolves the siblings of a CRDT prefix, so that two replicas never
    /// resolve the same siblings concurrently (each with a new dot of its
    /// own, which would make new siblings forever).
    pub(crate) fn resolver(&self) -> Option<I> {
        self.dvv
            .values_with_dots()
            .filter_map(|(dot, _)| dot.map(|d| d.actor))
            .min()
    }

    /// Splits the object into parts of at most `max` encoded bytes each, so
    /// that an object merged from many writers' siblings can be repaired in
    /// several messages: each part holds whole clock entries of some of the
    /// writers and at least one sibling, and merging every part
    /// ([`sync`](Self::sync)) gives the object back. `None` if a single
    /// writer's entry is larger than `max` on its own (a local write is
    /// refused before its object grows past
    /// [`Config::max_object_len`](super::Config::max_object_len), so that
    /// happens only when `max` is below it).
    pub(crate) fn split(&self, max: usize) -> Option<Vec<Object<I>>> {
        let whole = self.encode().len();
        if whole <= max {
            return Some(alloc::vec![self.clone()]);
        }
        // Each writer's entry alone: its size and whether it holds a value.
        let ids: Vec<I> = self.dvv.ids().cloned().collect();
        let alone = |id: &I| {
            let part = self.dvv.clone().split(2, |a| usize::from(a != id)).swap_remove(0);
            let valued = part.size() > 0;
            (Object { dvv: part }.encode().len(), valued)
        };
        // Greedy packing; entries without a value ride with the first part
        // (a part must hold a sibling to be a valid object).
        let mut group_of: Vec<usize> = Vec::with_capacity(ids.len());
        let mut sizes: Vec<usize> = Vec::new();
        let mut bare = 0usize;
        for id in &ids {
            let (len, valued) = alone(id);
            if len > max {
                return None;
            }
            if !valued {
                group_of.push(0);
                bare += len;
                continue;
            }
            let fits = sizes.iter().position(|s| s + len <= max);
            match fits {
                Some(g) => {
                    sizes[g] += len;
                    group_of.push(g);
                }
                None => {
                    sizes.push(len);
                    group_of.push(sizes.len() - 1);
                }
            }
        }
        if sizes.is_empty() || sizes[0] + bare > max {
            return None;
        }
        let parts = sizes.len();
        // `ids` is sorted (entries are kept by id).
        let parts: Vec<Object<I>> = self
            .dvv
            .clone()
            .split(parts, |a| ids.binary_search(a).map_or(0, |i| group_of[i]))
            .into_iter()
            .map(|dvv| Object { dvv })
            .collect();
        parts.iter().all(|p| p.encode().len() <= max).then_some(parts)
    }

    /// The postcard encoding: what is persisted, broadcast and hashed.
    ///
    /// Stored objects have sorted entries and no anonymous values, so equal
    /// objects encode to equal bytes on every node.
    pub fn encode(&self) -> Bytes {
        // Serializing into a Vec cannot fail for these types.
        Bytes::from(postcard::to_allocvec(self).unwrap_or_default())
    }

    /// The reader's view.
    pub fn read(&self) -> Read<I> {
        Read {
            values: self
                .dvv
                .values()
                .map(|s| Value {
                    data: s.value.clone(),
                    timestamp: s.timestamp,
                })
                .collect(),
            context: self.context(),
        }
    }
}

impl<I: Ord + Clone + Serialize + serde::de::DeserializeOwned> Object<I> {
    /// Decodes an object and checks it with [`Object::check`].
    pub fn decode(bytes: &[u8], max_value_len: usize) -> Result<Self, WireError> {
        let object: Object<I> = wire::decode_body(bytes)?;
        object.check(max_value_len).map_err(WireError::Invalid)?;
        Ok(object)
    }
}

impl<I: Ord + Clone> Object<I> {
    /// What a stored object must be: at least one sibling, every sibling
    /// dotted, every value at most `max_value_len` bytes. (The DVVSet decoder
    /// has already checked its own invariants.)
    pub fn check(&self, max_value_len: usize) -> Result<(), &'static str> {
        let mut any = false;
        for (dot, sibling) in self.dvv.values_with_dots() {
            any = true;
            if dot.is_none() {
                return Err("metadata object holds an undotted value");
            }
            if sibling.value.as_ref().is_some_and(|v| v.len() > max_value_len) {
                return Err("metadata value exceeds max_value_len");
            }
        }
        if any {
            Ok(())
        } else {
            Err("metadata object has no sibling")
        }
    }
}

/// One sibling as a reader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Value {
    /// The value, or `None` for a tombstone (a delete).
    pub data: Option<Bytes>,
    /// The writer's timestamp, in microseconds of the `now` it was given (see
    /// "Writes" in the [module docs](super)).
    pub timestamp: u64,
}

/// What a read returns: the siblings and the context to write back.
///
/// A key written once, or always by writers that read it first, has one
/// sibling. Concurrent writes leave several; resolve them with
/// [`lww`](Read::lww), [`resolve`](Read::resolve) or a CRDT merge (see
/// [`typed`](crate::node::typed)), and write the result back with
/// [`context`](Read::context) to collapse them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read<I: Ord> {
    values: Vec<Value>,
    context: VClock<I>,
}

impl<I: Ord + Clone> Read<I> {
    /// Every sibling, tombstones included, in a deterministic order.
    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// The causal context of the read: pass it to `put` (or `delete`) to
    /// overwrite every sibling seen here.
    pub fn context(&self) -> &VClock<I> {
        &self.context
    }

    /// The context, by value.
    pub fn into_context(self) -> VClock<I> {
        self.context
    }

    /// How many siblings there are, tombstones included.
    pub fn siblings(&self) -> usize {
        self.values.len()
    }

    /// The values that are not tombstones.
    pub fn live(&self) -> impl Iterator<Item = &Bytes> + '_ {
        self.values.iter().filter_map(|v| v.data.as_ref())
    }

    /// Whether every sibling is a tombstone.
    pub fn is_deleted(&self) -> bool {
        self.values.iter().all(|v| v.data.is_none())
    }

    /// Last-writer-wins: the sibling with the largest timestamp (ties broken
    /// by the bytes, a tombstone below any value), or `None` if that sibling
    /// is a tombstone. Every replica picks the same.
    pub fn lww(&self) -> Option<&Bytes> {
        let mut best: Option<&Value> = None;
        for v in &self.values {
            let better = match best {
                None => true,
                Some(b) => (v.timestamp, &v.data) > (b.timestamp, &b.data),
            };
            if better {
                best = Some(v);
            }
        }
        best.and_then(|v| v.data.as_ref())
    }

    /// A caller-supplied resolver over the live values: `None` if the key is
    /// deleted, the value itself if there is one, and `resolve(values)`
    /// otherwise (the values in [`values`](Read::values) order).
    pub fn resolve<F>(&self, resolve: F) -> Option<Bytes>
    where
        F: FnOnce(&[Bytes]) -> Bytes,
    {
        let live: Vec<Bytes> = self.live().cloned().collect();
        match live.len() {
            0 => None,
            1 => live.into_iter().next(),
            _ => Some(resolve(&live)),
        }
    }
}

/// The LWW winner among stored siblings, as [`Read::lww`] picks it.
pub(crate) fn lww_sibling<I: Ord + Clone>(object: &Object<I>) -> Option<&Sibling> {
    object.dvv.last(Sibling::lww_less)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(stored: Option<&Object<u32>>, ctx: VClock<u32>, v: &'static [u8], ts: u64, me: u32) -> Object<u32> {
        Object::write(stored, ctx, Some(Bytes::from_static(v)), ts, me)
    }

    #[test]
    fn an_object_splits_into_parts_that_merge_back_into_it() {
        // Eight writers' siblings, one of them overwritten (an entry with no
        // value), and a tombstone.
        let mut whole = put(None, VClock::new(), b"first", 1, 9);
        let read = whole.context();
        whole = whole.sync(&Object::write(None, read, None, 2, 8));
        for w in 0..8u32 {
            let v = Bytes::from(alloc::vec![w as u8; 100]);
            whole = whole.sync(&Object::write(None, VClock::new(), Some(v), 3, w));
        }
        let len = whole.encode().len();
        assert_eq!(whole.split(len).unwrap(), [whole.clone()], "small enough: itself");
        for max in [len / 2, len / 3, 260, 130] {
            let parts = whole.split(max).expect("every writer's entry fits");
            assert!(parts.len() > 1);
            assert!(parts.iter().all(|p| p.encode().len() <= max && p.siblings() > 0));
            assert!(parts.iter().all(|p| p.check(1024).is_ok()));
            let merged = parts.iter().fold(parts[0].clone(), |acc, p| acc.sync(p));
            assert_eq!(merged, whole, "max {max}");
            assert_eq!(merged.encode(), whole.encode());
        }
        assert!(
            whole.split(50).is_none(),
            "one writer's 100-byte value cannot fit in 50"
        );
    }

    #[test]
    fn concurrent_writes_are_siblings_and_a_full_context_collapses_them() {
        let a = put(None, VClock::new(), b"a", 5, 1);
        let b = put(None, VClock::new(), b"b", 7, 2);
        let c = put(None, VClock::new(), b"c", 6, 3);
        let all = a.sync(&b).sync(&c);
        assert_eq!(all, c.sync(&a).sync(&b));
        assert_eq!(all.encode(), b.sync(&c).sync(&a).encode(), "encoding is canonical");
        let read = all.read();
        assert_eq!(read.siblings(), 3);
        assert_eq!(read.lww().map(|b| &b[..]), Some(&b"b"[..]));
        assert_eq!(
            lww_sibling(&all).and_then(|s| s.value.clone()),
            Some(Bytes::from_static(b"b"))
        );
        let longest = read.resolve(|vs| vs.iter().max_by_key(|v| v.len()).cloned().unwrap_or_default());
        assert!(longest.is_some());
        let merged = put(Some(&all), read.context().clone(), b"abc", 8, 1);
        assert_eq!(merged.siblings(), 1);
        assert!(merged.context().descends(&all.context()));
        assert_eq!(all.sync(&merged), merged);
        assert_eq!(all.resolver(), Some(1));
    }

    #[test]
    fn tombstones_and_lww() {
        let a = put(None, VClock::new(), b"a", 5, 1);
        let del = Object::write(Some(&a), a.context(), None, 6, 2);
        assert!(del.is_tombstone());
        assert!(del.read().is_deleted());
        assert_eq!(del.read().lww(), None);
        // A concurrent write with a later timestamp beats the delete under LWW.
        let b = put(None, VClock::new(), b"b", 9, 3);
        let both = del.sync(&b);
        assert!(!both.is_tombstone());
        assert_eq!(both.read().lww().map(|b| &b[..]), Some(&b"b"[..]));
        assert_eq!(both.max_timestamp(), 9);
    }

    #[test]
    fn decoding_checks_the_object() {
        let a = put(None, VClock::new(), b"value", 5, 1);
        let bytes = a.encode();
        assert_eq!(Object::<u32>::decode(&bytes, 64).unwrap(), a);
        assert_eq!(
            Object::<u32>::decode(&bytes, 2),
            Err(WireError::Invalid("metadata value exceeds max_value_len"))
        );
        // An anonymous value (a client's half of a write) is never stored.
        let anon: Object<u32> = Object {
            dvv: DVVSet::new(Sibling {
                value: None,
                timestamp: 1,
            }),
        };
        assert!(Object::<u32>::decode(&anon.encode(), 64).is_err());
        let empty: Object<u32> = Object { dvv: DVVSet::default() };
        assert!(Object::<u32>::decode(&empty.encode(), 64).is_err());
        assert_eq!(
            Object::<u32>::decode(&bytes[..bytes.len() - 1], 64),
            Err(WireError::Malformed)
        );
        let mut long = bytes.to_vec();
        long.push(0);
        assert!(Object::<u32>::decode(&long, 64).is_err());
    }
}
