//! Increment/decrement counter (Shapiro et al. 2011, §3.1.2 "PN-Counter").

use super::{Embed, GCounter, Merge};
use serde::{Deserialize, Serialize};

/// A counter that goes up and down: two [`GCounter`]s, one of increments
/// and one of decrements; the value is their difference.
///
/// The value is an `i128`, so the difference of two saturated `u64` sums
/// is always exact.
///
/// ```
/// use epidemic_core::crdt::{Merge, PNCounter};
///
/// let mut a = PNCounter::new();
/// let mut b = PNCounter::new();
/// a.increment_by('a', 2);
/// b.decrement_by('b', 5);
/// a.merge(&b);
/// assert_eq!(a.value(), -3);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PNCounter<A: Ord> {
    inc: GCounter<A>,
    dec: GCounter<A>,
}

impl<A: Ord> Default for PNCounter<A> {
    fn default() -> Self {
        PNCounter {
            inc: GCounter::default(),
            dec: GCounter::default(),
        }
    }
}

impl<A: Ord + Clone> PNCounter<A> {
    /// A counter at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one, as `actor`.
    pub fn increment(&mut self, actor: A) {
        self.inc.increment_by(actor, 1);
    }

    /// Adds `n`, as `actor`.
    pub fn increment_by(&mut self, actor: A, n: u64) {
        self.inc.increment_by(actor, n);
    }

    /// Subtracts one, as `actor`.
    pub fn decrement(&mut self, actor: A) {
        self.dec.increment_by(actor, 1);
    }

    /// Subtracts `n`, as `actor`.
    pub fn decrement_by(&mut self, actor: A, n: u64) {
        self.dec.increment_by(actor, n);
    }

    /// Increments minus decrements.
    pub fn value(&self) -> i128 {
        i128::from(self.inc.value()) - i128::from(self.dec.value())
    }

    /// The increments.
    pub fn increments(&self) -> &GCounter<A> {
        &self.inc
    }

    /// The decrements.
    pub fn decrements(&self) -> &GCounter<A> {
        &self.dec
    }
}

impl<A: Ord + Clone> Merge for PNCounter<A> {
    fn merge(&mut self, other: &Self) {
        self.inc.merge(&other.inc);
        self.dec.merge(&other.dec);
    }
}

/// No dots: a removed key's counter is not reset (see [`Embed`]).
impl<A: Ord + Clone> Embed<A> for PNCounter<A> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crdt::laws::{self, Step};
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Inc(u64),
        Dec(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![(0u64..5).prop_map(Op::Inc), (0u64..5).prop_map(Op::Dec)]
    }

    fn apply(replicas: &mut [PNCounter<u8>], r: usize, op: &Op) {
        match *op {
            Op::Inc(n) => replicas[r].increment_by(r as u8, n),
            Op::Dec(n) => replicas[r].decrement_by(r as u8, n),
        }
    }

    #[test]
    fn value_arithmetic() {
        let mut a = PNCounter::new();
        assert_eq!(a.value(), 0);
        a.increment(1u8);
        a.increment_by(1, 9);
        a.decrement(1);
        a.decrement_by(2, 4);
        assert_eq!(a.value(), 5);
        assert_eq!(a.increments().value(), 10);
        assert_eq!(a.decrements().value(), 5);

        let mut b = a.clone();
        b.decrement_by(2, 10);
        a.increment(1);
        a.merge(&b);
        assert_eq!(a.value(), 5 + 1 - 10, "a's increment and b's decrement both count");

        let mut low = PNCounter::new();
        low.decrement_by(1u8, u64::MAX);
        low.decrement_by(2, u64::MAX);
        assert_eq!(
            low.value(),
            -i128::from(u64::MAX),
            "the decrement sum saturates, the value is exact"
        );
    }

    proptest! {
        #![proptest_config(laws::config())]

        #[test]
        fn merge_is_a_join(steps in laws::steps(op(), 3)) {
            let replicas = laws::run(PNCounter::new(), 3, &steps, apply);
            laws::assert_join(&replicas[0], &replicas[1], &replicas[2])?;
        }

        #[test]
        fn replicas_converge(steps in laws::steps(op(), 4)) {
            let replicas = laws::run(PNCounter::new(), 4, &steps, apply);
            let total: i128 = steps
                .iter()
                .map(|s| match s {
                    Step::Local(_, Op::Inc(n)) => i128::from(*n),
                    Step::Local(_, Op::Dec(n)) => -i128::from(*n),
                    Step::Merge { .. } => 0,
                })
                .sum();
            let joined = laws::assert_converge(replicas)?;
            prop_assert_eq!(joined.value(), total);
        }
    }
}
