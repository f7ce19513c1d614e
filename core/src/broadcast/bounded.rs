//! A map bounded by count that forgets its oldest entry to make room.
//!
//! Insertion order is kept in a queue beside the map. Removals and LRU
//! touches leave stale queue entries behind, recognised by a sequence number
//! and skipped; the queue is compacted once they outnumber the live ones, so
//! every operation is O(1) amortised and the queue never exceeds twice the
//! map plus a small constant.

use alloc::collections::VecDeque;
use core::hash::Hash;
use foldhash::fast::FixedState;
use hashbrown::HashMap;

/// Stale queue entries tolerated before a compaction is considered.
const SLACK: usize = 32;

pub(crate) struct BoundedMap<K, V> {
    map: HashMap<K, Slot<V>, FixedState>,
    order: VecDeque<(K, u64)>,
    next: u64,
    capacity: usize,
}

struct Slot<V> {
    value: V,
    seq: u64,
}

impl<K: Hash + Eq + Clone, V> BoundedMap<K, V> {
    /// A map holding at most `capacity` entries; zero stores nothing.
    pub(crate) fn new(capacity: usize) -> Self {
        BoundedMap {
            map: HashMap::with_hasher(FixedState::default()),
            order: VecDeque::new(),
            next: 0,
            capacity,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub(crate) fn contains_key(&self, k: &K) -> bool {
        self.map.contains_key(k)
    }

    pub(crate) fn get(&self, k: &K) -> Option<&V> {
        self.map.get(k).map(|s| &s.value)
    }

    pub(crate) fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        self.map.get_mut(k).map(|s| &mut s.value)
    }

    /// Inserts `v` under `k`. A key already present keeps its place in the
    /// order and gets the new value. Returns the entry evicted to make room
    /// (with capacity zero, the entry itself).
    pub(crate) fn insert(&mut self, k: K, v: V) -> Option<(K, V)> {
        if let Some(slot) = self.map.get_mut(&k) {
            slot.value = v;
            return None;
        }
        if self.capacity == 0 {
            return Some((k, v));
        }
        let evicted = if self.map.len() >= self.capacity {
            self.pop_oldest()
        } else {
            None
        };
        let seq = self.bump();
        self.order.push_back((k.clone(), seq));
        self.map.insert(k, Slot { value: v, seq });
        self.compact();
        evicted
    }

    /// Makes `k` the newest entry (LRU use); `None` if absent.
    pub(crate) fn touch(&mut self, k: &K) -> Option<&mut V> {
        let seq = self.next;
        let slot = self.map.get_mut(k)?;
        if self.order.back().is_some_and(|(_, s)| *s == slot.seq) {
            // Already the newest: nothing to reorder.
            return self.map.get_mut(k).map(|s| &mut s.value);
        }
        slot.seq = seq;
        self.next += 1;
        self.order.push_back((k.clone(), seq));
        self.compact();
        self.map.get_mut(k).map(|s| &mut s.value)
    }

    pub(crate) fn remove(&mut self, k: &K) -> Option<V> {
        let slot = self.map.remove(k)?;
        self.compact();
        Some(slot.value)
    }

    /// Removes and returns the oldest entry.
    pub(crate) fn pop_oldest(&mut self) -> Option<(K, V)> {
        while let Some((k, seq)) = self.order.pop_front() {
            if self.map.get(&k).is_some_and(|s| s.seq == seq) {
                return self.map.remove_entry(&k).map(|(k, s)| (k, s.value));
            }
        }
        None
    }

    /// Entries from oldest to newest.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.order.iter().filter_map(move |(k, seq)| {
            self.map
                .get_key_value(k)
                .filter(|(_, s)| s.seq == *seq)
                .map(|(k, s)| (k, &s.value))
        })
    }

    /// Every value, in no particular order: nothing observable may depend on
    /// the order.
    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.map.values_mut().map(|s| &mut s.value)
    }

    fn bump(&mut self) -> u64 {
        let seq = self.next;
        self.next += 1;
        seq
    }

    fn compact(&mut self) {
        if self.order.len() > 2 * self.map.len() + SLACK {
            let map = &self.map;
            self.order.retain(|(k, seq)| map.get(k).is_some_and(|s| s.seq == *seq));
        }
    }

    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Length of the order queue, for the bound tests.
    #[cfg(test)]
    pub(crate) fn queue_len(&self) -> usize {
        self.order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn evicts_the_oldest_and_keeps_order_on_replace() {
        let mut m = BoundedMap::new(3);
        assert_eq!(m.insert(1, 'a'), None);
        assert_eq!(m.insert(2, 'b'), None);
        assert_eq!(m.insert(3, 'c'), None);
        assert_eq!(m.insert(2, 'B'), None, "replacing is not growing");
        assert_eq!(m.insert(4, 'd'), Some((1, 'a')));
        assert_eq!(
            m.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>(),
            [(2, 'B'), (3, 'c'), (4, 'd')]
        );
    }

    #[test]
    fn touch_makes_an_entry_newest() {
        let mut m = BoundedMap::new(2);
        m.insert(1, ());
        m.insert(2, ());
        m.touch(&1);
        assert_eq!(m.insert(3, ()), Some((2, ())));
        assert_eq!(m.iter().map(|(k, _)| *k).collect::<Vec<_>>(), [1, 3]);
    }

    #[test]
    fn capacity_zero_stores_nothing() {
        let mut m = BoundedMap::new(0);
        assert_eq!(m.insert(1, 'a'), Some((1, 'a')));
        assert!(m.is_empty());
    }

    #[test]
    fn churn_keeps_the_queue_bounded() {
        let mut m = BoundedMap::new(8);
        for i in 0..10_000u32 {
            m.insert(i, i);
            if i % 2 == 0 {
                m.remove(&i);
            } else {
                m.touch(&(i - 1));
                m.touch(&i);
            }
            assert!(m.len() <= 8);
            assert!(m.queue_len() <= 2 * m.len() + SLACK + 1);
        }
    }
}
