//! Version vectors and dots.

use alloc::collections::BTreeMap;
use core::cmp::Ordering;
use serde::{Deserialize, Serialize};

/// One event: the `counter`-th event of `actor`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Dot<A> {
    /// Who made the event.
    pub actor: A,
    /// That actor's event counter, starting at 1.
    pub counter: u64,
}

impl<A> Dot<A> {
    /// The dot `(actor, counter)`.
    pub const fn new(actor: A, counter: u64) -> Self {
        Dot { actor, counter }
    }
}

/// A version vector: for each actor, how many of its events are included.
///
/// Actors absent from the map count as zero. The map is ordered so that
/// iteration, equality and serialization are deterministic.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VClock<A: Ord> {
    entries: BTreeMap<A, u64>,
}

impl<A: Ord> Default for VClock<A> {
    fn default() -> Self {
        VClock {
            entries: BTreeMap::new(),
        }
    }
}

impl<A: Ord + Clone> VClock<A> {
    /// The empty clock: no events.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many of `actor`'s events this clock includes.
    pub fn get(&self, actor: &A) -> u64 {
        self.entries.get(actor).copied().unwrap_or(0)
    }

    /// Records `actor`'s next event and returns its dot.
    pub fn increment(&mut self, actor: A) -> Dot<A> {
        let counter = self.entries.entry(actor.clone()).or_insert(0);
        *counter = counter.saturating_add(1);
        Dot {
            actor,
            counter: *counter,
        }
    }

    /// Includes a dot (and, as version vectors are contiguous, every earlier
    /// event of its actor).
    pub fn apply(&mut self, dot: &Dot<A>) {
        let counter = self.entries.entry(dot.actor.clone()).or_insert(0);
        *counter = (*counter).max(dot.counter);
    }

    /// Whether the clock includes `dot`.
    pub fn contains(&self, dot: &Dot<A>) -> bool {
        self.get(&dot.actor) >= dot.counter
    }

    /// The pointwise maximum of `self` and `other`, in place.
    pub fn merge(&mut self, other: &VClock<A>) {
        for (actor, &n) in &other.entries {
            let counter = self.entries.entry(actor.clone()).or_insert(0);
            *counter = (*counter).max(n);
        }
    }

    /// Whether `self` includes every event of `other` (`self ≥ other`).
    pub fn descends(&self, other: &VClock<A>) -> bool {
        other.entries.iter().all(|(actor, &n)| self.get(actor) >= n)
    }

    /// Whether `self` includes every event of `other` and at least one more
    /// (`self > other`).
    pub fn dominates(&self, other: &VClock<A>) -> bool {
        self.descends(other) && !other.descends(self)
    }

    /// Whether neither clock descends the other.
    pub fn concurrent(&self, other: &VClock<A>) -> bool {
        !self.descends(other) && !other.descends(self)
    }

    /// The causal order of the two clocks, or `None` when concurrent.
    pub fn partial_cmp_causal(&self, other: &VClock<A>) -> Option<Ordering> {
        match (self.descends(other), other.descends(self)) {
            (true, true) => Some(Ordering::Equal),
            (true, false) => Some(Ordering::Greater),
            (false, true) => Some(Ordering::Less),
            (false, false) => None,
        }
    }

    /// Removes every event that `other` includes; keeps the rest. Used to
    /// shrink a context to what is still news to a peer.
    pub fn forget(&mut self, other: &VClock<A>) {
        self.entries.retain(|actor, n| *n > other.get(actor));
    }

    /// The pointwise minimum (the events both include). Actors absent from
    /// either clock disappear.
    pub fn glb(&mut self, other: &VClock<A>) {
        self.entries.retain(|actor, n| {
            *n = (*n).min(other.get(actor));
            *n > 0
        });
    }

    /// The dots at the head of each actor's history.
    pub fn dots(&self) -> impl Iterator<Item = Dot<A>> + '_ {
        self.entries.iter().map(|(a, &n)| Dot {
            actor: a.clone(),
            counter: n,
        })
    }

    /// `(actor, counter)` pairs in actor order.
    pub fn iter(&self) -> impl Iterator<Item = (&A, u64)> + '_ {
        self.entries.iter().map(|(a, &n)| (a, n))
    }

    /// Number of actors with at least one event.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the clock holds no event.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<A: Ord + Clone> FromIterator<(A, u64)> for VClock<A> {
    fn from_iter<T: IntoIterator<Item = (A, u64)>>(iter: T) -> Self {
        let mut clock = VClock::new();
        for (actor, n) in iter {
            if n > 0 {
                clock.apply(&Dot::new(actor, n));
            }
        }
        clock
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn vc(pairs: &[(u8, u64)]) -> VClock<u8> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn increment_and_descends() {
        let mut a = VClock::new();
        assert_eq!(a.increment(1u8), Dot::new(1, 1));
        assert_eq!(a.increment(1u8), Dot::new(1, 2));
        let b = vc(&[(1, 1)]);
        assert!(a.descends(&b) && a.dominates(&b));
        assert!(!b.descends(&a));
        assert!(a.descends(&a) && !a.dominates(&a));
        assert!(a.descends(&VClock::new()));
    }

    #[test]
    fn concurrency_and_merge() {
        let a = vc(&[(1, 2), (2, 1)]);
        let b = vc(&[(1, 1), (3, 1)]);
        assert!(a.concurrent(&b));
        assert_eq!(a.partial_cmp_causal(&b), None);
        let mut m = a.clone();
        m.merge(&b);
        assert_eq!(m, vc(&[(1, 2), (2, 1), (3, 1)]));
        assert!(m.dominates(&a) && m.dominates(&b));
        let mut g = a.clone();
        g.glb(&b);
        assert_eq!(g, vc(&[(1, 1)]));
        let mut f = m.clone();
        f.forget(&a);
        assert_eq!(f, vc(&[(3, 1)]));
    }

    fn arb_clock() -> impl Strategy<Value = VClock<u8>> {
        proptest::collection::vec((0u8..5, 0u64..6), 0..6).prop_map(|v| v.into_iter().collect())
    }

    proptest! {
        #[test]
        fn merge_is_a_join(a in arb_clock(), b in arb_clock(), c in arb_clock()) {
            let mut ab = a.clone(); ab.merge(&b);
            let mut ba = b.clone(); ba.merge(&a);
            prop_assert_eq!(&ab, &ba);
            let mut ab_c = ab.clone(); ab_c.merge(&c);
            let mut bc = b.clone(); bc.merge(&c);
            let mut a_bc = a.clone(); a_bc.merge(&bc);
            prop_assert_eq!(&ab_c, &a_bc);
            let mut aa = a.clone(); aa.merge(&a);
            prop_assert_eq!(&aa, &a);
            prop_assert!(ab.descends(&a) && ab.descends(&b));
        }

        #[test]
        fn order_is_consistent(a in arb_clock(), b in arb_clock()) {
            let exactly_one = [a.dominates(&b), b.dominates(&a), a == b, a.concurrent(&b)]
                .iter().filter(|x| **x).count();
            prop_assert_eq!(exactly_one, 1);
        }
    }
}
