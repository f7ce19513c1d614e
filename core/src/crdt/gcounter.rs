//! Grow-only counter (Shapiro et al. 2011, §3.1.1 "G-Counter").

use super::{Embed, Merge};
use alloc::collections::BTreeMap;
use serde::{Deserialize, Serialize};

/// A counter that only grows: one monotonic count per actor; the value is
/// their sum, and merge takes the per-actor maximum.
///
/// Each actor must only be incremented by its own replica, otherwise
/// concurrent increments of one actor's entry collapse into the larger.
/// Counts saturate at `u64::MAX` rather than wrap.
///
/// ```
/// use epidemic_core::crdt::{GCounter, Merge};
///
/// let mut a = GCounter::new();
/// let mut b = GCounter::new();
/// a.increment_by('a', 3);
/// b.increment('b');
/// a.merge(&b);
/// assert_eq!(a.value(), 4);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GCounter<A: Ord> {
    // Zero counts are never stored, so equal values have equal states.
    counts: BTreeMap<A, u64>,
}

impl<A: Ord> Default for GCounter<A> {
    fn default() -> Self {
        GCounter {
            counts: BTreeMap::new(),
        }
    }
}

impl<A: Ord + Clone> GCounter<A> {
    /// A counter at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one to `actor`'s count.
    pub fn increment(&mut self, actor: A) {
        self.increment_by(actor, 1);
    }

    /// Adds `n` to `actor`'s count (saturating).
    pub fn increment_by(&mut self, actor: A, n: u64) {
        if n == 0 {
            return;
        }
        let count = self.counts.entry(actor).or_insert(0);
        *count = count.saturating_add(n);
    }

    /// The sum of every actor's count (saturating at `u64::MAX`).
    pub fn value(&self) -> u64 {
        self.counts.values().fold(0u64, |sum, &n| sum.saturating_add(n))
    }

    /// `actor`'s own count.
    pub fn get(&self, actor: &A) -> u64 {
        self.counts.get(actor).copied().unwrap_or(0)
    }

    /// `(actor, count)` pairs in actor order.
    pub fn iter(&self) -> impl Iterator<Item = (&A, u64)> + '_ {
        self.counts.iter().map(|(a, &n)| (a, n))
    }
}

impl<A: Ord + Clone> Merge for GCounter<A> {
    fn merge(&mut self, other: &Self) {
        for (actor, &n) in &other.counts {
            if n == 0 {
                continue;
            }
            let count = self.counts.entry(actor.clone()).or_insert(0);
            *count = (*count).max(n);
        }
    }
}

/// No dots: a removed key's counter is not reset (see [`Embed`]).
impl<A: Ord + Clone> Embed<A> for GCounter<A> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crdt::laws::{self, Step};
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    struct Inc(u64);

    fn apply(replicas: &mut [GCounter<u8>], r: usize, op: &Inc) {
        replicas[r].increment_by(r as u8, op.0);
    }

    #[test]
    fn value_is_the_sum_of_maxima() {
        let mut a = GCounter::new();
        a.increment(1u8);
        a.increment(1);
        let mut b = a.clone();
        b.increment_by(2, 5);
        a.increment(1);
        a.merge(&b);
        assert_eq!(a.value(), 8);
        assert_eq!(a.get(&1), 3);
        assert_eq!(a.get(&2), 5);
        a.increment_by(3, 0);
        assert_eq!(a.iter().count(), 2, "a zero increment stores nothing");
        a.increment_by(3, u64::MAX);
        assert_eq!(a.value(), u64::MAX, "the sum saturates");
    }

    proptest! {
        #![proptest_config(laws::config())]

        #[test]
        fn merge_is_a_join(steps in laws::steps((0u64..4).prop_map(Inc), 3)) {
            let replicas = laws::run(GCounter::new(), 3, &steps, apply);
            laws::assert_join(&replicas[0], &replicas[1], &replicas[2])?;
        }

        #[test]
        fn replicas_converge(steps in laws::steps((0u64..4).prop_map(Inc), 4)) {
            let replicas = laws::run(GCounter::new(), 4, &steps, apply);
            let total: u64 = steps.iter().map(|s| match s { Step::Local(_, Inc(n)) => *n, _ => 0 }).sum();
            let joined = laws::assert_converge(replicas)?;
            prop_assert_eq!(joined.value(), total);
        }
    }
}
