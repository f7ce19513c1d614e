//! Exact duplicate detection for ids made of an origin and that origin's
//! sequence number, in bounded memory.
//!
//! A set of the last `n` ids seen forgets an id after `n` newer ones, and
//! an id that still circulates after that (re-announced on a lazy tick,
//! pushed by a node that grafted it late) looks new and is delivered twice.
//! At 10,000 messages a second a set of 16,384 ids covers 1.6 s, less than
//! two lazy ticks. Sequence numbers make forgetting safe instead: per
//! origin, a *floor* below which every sequence number counts as seen, and
//! the seen numbers above it. Numbers that arrive in order only move the
//! floor, so a steady stream costs one entry per origin.
//!
//! The bound is on the numbers held above the floors, all origins together.
//! Past it the oldest such number is forgotten by raising its origin's
//! floor past it: any message of that origin still missing below it counts
//! as seen. Forgetting can lose a message that was very late, never deliver
//! one twice. Origins are bounded too, least recently used first; only an
//! origin evicted there, unheard of while `capacity` others were, starts
//! again from an empty floor.

use super::bounded::BoundedMap;
use alloc::collections::{BTreeSet, VecDeque};
use core::hash::Hash;

/// Stale order entries tolerated before a compaction is considered.
const SLACK: usize = 32;

pub(crate) struct Seen<O> {
    origins: BoundedMap<O, Origin>,
    /// Numbers held above the floors, oldest first; entries that a floor
    /// has since passed are stale and skipped.
    order: VecDeque<(O, u64)>,
    /// Numbers held above the floors, all origins together.
    above: usize,
    capacity: usize,
}

#[derive(Default)]
struct Origin {
    /// Every number below it counts as seen.
    floor: u64,
    /// Numbers seen at or above the floor; never holds the floor itself.
    above: BTreeSet<u64>,
}

impl Origin {
    fn contains(&self, seq: u64) -> bool {
        seq < self.floor || self.above.contains(&seq)
    }

    /// Raises the floor to `floor`, forgetting what it passes; how many
    /// numbers it dropped from `above`. Then follows the numbers held
    /// contiguously above it.
    fn raise(&mut self, floor: u64) -> usize {
        let mut dropped = 0;
        if floor > self.floor {
            let kept = self.above.split_off(&floor);
            dropped = self.above.len();
            self.above = kept;
            self.floor = floor;
        }
        while self.above.first() == Some(&self.floor) {
            self.above.pop_first();
            self.floor += 1;
            dropped += 1;
        }
        dropped
    }
}

impl<O: Hash + Eq + Clone> Seen<O> {
    /// At most `capacity` numbers held above the floors and `capacity`
    /// origins (at least one of each).
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Seen {
            origins: BoundedMap::new(capacity),
            order: VecDeque::new(),
            above: 0,
            capacity,
        }
    }

    /// Whether `(origin, seq)` counts as seen.
    pub(crate) fn contains(&self, origin: &O, seq: u64) -> bool {
        self.origins.get(origin).is_some_and(|o| o.contains(seq))
    }

    /// Records `(origin, seq)`; whether it was new.
    pub(crate) fn insert(&mut self, origin: &O, seq: u64) -> bool {
        let o = match self.origins.touch(origin) {
            Some(o) => o,
            None => {
                if let Some((_, gone)) = self.origins.insert(origin.clone(), Origin::default()) {
                    self.above -= gone.above.len();
                }
                self.origins.get_mut(origin).expect("just inserted")
            }
        };
        if o.contains(seq) {
            return false;
        }
        if seq == o.floor {
            // Only moves the floor, past whatever was held right above it.
            self.above -= o.raise(seq + 1);
        } else {
            o.above.insert(seq);
            self.above += 1;
            self.order.push_back((origin.clone(), seq));
        }
        while self.above > self.capacity {
            let Some((origin, seq)) = self.order.pop_front() else {
                break;
            };
            if let Some(o) = self.origins.get_mut(&origin) {
                if o.above.contains(&seq) {
                    self.above -= o.raise(seq + 1);
                }
            }
        }
        self.compact();
        true
    }

    /// Numbers held above the floors.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.above
    }

    /// Entries held: origins, and numbers above their floors.
    pub(crate) fn size(&self) -> usize {
        self.origins.len() + self.above
    }

    fn compact(&mut self) {
        if self.order.len() > 2 * self.above + SLACK {
            let origins = &self.origins;
            self.order
                .retain(|(o, seq)| origins.get(o).is_some_and(|x| x.above.contains(seq)));
        }
    }

    #[cfg(test)]
    fn assert_invariants(&self) {
        let held: usize = self.origins.iter().map(|(_, o)| o.above.len()).sum();
        assert_eq!(held, self.above);
        assert!(self.above <= self.capacity);
        assert!(self.origins.len() <= self.capacity);
        assert!(self.order.len() <= 2 * self.above + SLACK + 1);
        for (_, o) in self.origins.iter() {
            assert!(o.above.first().is_none_or(|f| *f > o.floor));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_costs_nothing_and_never_forgets() {
        let mut s = Seen::new(4);
        for seq in 0..100_000u64 {
            assert!(s.insert(&1u32, seq));
            assert!(!s.insert(&1, seq));
        }
        assert_eq!(s.len(), 0);
        assert!(s.contains(&1, 0), "the first number is still seen");
        assert!(!s.insert(&1, 17));
        s.assert_invariants();
    }

    #[test]
    fn gaps_fill_and_move_the_floor() {
        let mut s = Seen::new(8);
        for seq in [3u64, 1, 2] {
            assert!(s.insert(&1u32, seq));
        }
        assert_eq!(s.len(), 3);
        assert!(!s.contains(&1, 0));
        assert!(s.insert(&1, 0));
        assert_eq!(s.len(), 0, "0..=3 contiguous: all below the floor");
        assert!((0..4).all(|q| s.contains(&1, q)));
        s.assert_invariants();
    }

    #[test]
    fn past_the_bound_forgetting_counts_as_seen() {
        let mut s = Seen::new(4);
        // Only odd numbers arrive: each waits above the floor.
        for seq in (1..=9u64).step_by(2) {
            assert!(s.insert(&1u32, seq));
            s.assert_invariants();
        }
        assert_eq!(s.len(), 4);
        // The oldest held, 1, was forgotten by raising the floor past it,
        // and with it the missing 0: neither can be delivered again.
        for seq in [0, 1, 3, 9] {
            assert!(!s.insert(&1, seq), "{seq} is seen");
        }
        // 2 and 4 are still told apart: above the floor, and new.
        assert!(s.insert(&1, 2));
        assert!(s.insert(&1, 4));
        assert!(!s.insert(&1, 4));
        s.assert_invariants();
        // Filling the gaps moves the floor past everything held.
        for seq in [6, 8] {
            assert!(s.insert(&1, seq));
        }
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn many_origins_stay_bounded() {
        let mut s = Seen::new(16);
        for i in 0..10_000u64 {
            // Every origin skips its number 0, so each holds what it sends.
            let origin = i % 37;
            s.insert(&origin, 1 + i / 37);
            assert!(!s.insert(&origin, 1 + i / 37));
            s.assert_invariants();
        }
        assert!(s.len() <= 16);
    }
}
