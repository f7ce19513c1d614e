//! Last-writer-wins register (Shapiro et al. 2011, §3.2.1 "LWW-Register").

use super::{Embed, Merge};
use serde::{Deserialize, Serialize};

/// One value with the timestamp of its write; merge keeps the write with
/// the greatest `(timestamp, value)`.
///
/// Ties on the timestamp break on the value's own order, so every replica
/// picks the same winner without knowing who wrote what. To break ties by
/// writer instead, make the writer part of the value (for example
/// `(actor, payload)`), or fold it into the timestamp. The timestamps are
/// the caller's (the core reads no clock): a hybrid logical clock or the
/// driver's wall clock in microseconds. A write with a smaller timestamp
/// than the current one is lost, which is the point of LWW and its hazard.
///
/// ```
/// use epidemic_core::crdt::{LwwRegister, Merge};
///
/// let mut a = LwwRegister::new();
/// let mut b = LwwRegister::new();
/// a.write(10, "apple");
/// b.write(10, "pear"); // same timestamp: "pear" > "apple"
/// a.merge(&b);
/// b.merge(&a);
/// assert_eq!(a.get(), Some(&"pear"));
/// assert_eq!(a, b);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LwwRegister<T> {
    current: Option<(u64, T)>,
}

impl<T> Default for LwwRegister<T> {
    fn default() -> Self {
        LwwRegister { current: None }
    }
}

impl<T: Ord + Clone> LwwRegister<T> {
    /// A register that was never written.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes `value` at `timestamp`. Returns whether it became the current
    /// value (it did not if the register holds a greater
    /// `(timestamp, value)`).
    pub fn write(&mut self, timestamp: u64, value: T) -> bool {
        let wins = match &self.current {
            None => true,
            Some((ts, v)) => (timestamp, &value) > (*ts, v),
        };
        if wins {
            self.current = Some((timestamp, value));
        }
        wins
    }

    /// The current value, if the register was ever written.
    pub fn get(&self) -> Option<&T> {
        self.current.as_ref().map(|(_, v)| v)
    }

    /// The timestamp of the current value.
    pub fn timestamp(&self) -> Option<u64> {
        self.current.as_ref().map(|(ts, _)| *ts)
    }
}

impl<T: Ord + Clone> Merge for LwwRegister<T> {
    fn merge(&mut self, other: &Self) {
        if let Some((ts, v)) = &other.current {
            self.write(*ts, v.clone());
        }
    }
}

/// No dots: a removed key's register is not reset (see [`Embed`]).
impl<A: Ord + Clone, T: Ord + Clone> Embed<A> for LwwRegister<T> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crdt::laws;
    use proptest::prelude::*;

    #[test]
    fn later_timestamp_wins() {
        let mut a = LwwRegister::new();
        assert_eq!(a.get(), None);
        assert!(a.write(5, 'z'));
        assert!(a.write(6, 'a'), "a later write wins whatever its value");
        assert!(!a.write(4, 'z'), "an earlier write loses");
        assert_eq!((a.timestamp(), a.get()), (Some(6), Some(&'a')));
    }

    #[test]
    fn ties_break_on_the_value_in_every_order() {
        let mut x = LwwRegister::new();
        x.write(7, 10u32);
        let mut y = LwwRegister::new();
        y.write(7, 3u32);
        let mut xy = x.clone();
        xy.merge(&y);
        let mut yx = y.clone();
        yx.merge(&x);
        assert_eq!(xy, yx);
        assert_eq!(xy.get(), Some(&10));
        assert!(!y.write(7, 3), "rewriting the same entry changes nothing");
    }

    proptest! {
        #![proptest_config(laws::config())]

        #[test]
        fn merge_is_a_join(steps in laws::steps((0u64..4, 0u8..4), 3)) {
            let replicas = laws::run(LwwRegister::new(), 3, &steps, |rs, r, &(ts, v)| {
                rs[r].write(ts, v);
            });
            laws::assert_join(&replicas[0], &replicas[1], &replicas[2])?;
        }

        #[test]
        fn replicas_converge_on_the_greatest_write(steps in laws::steps((0u64..4, 0u8..4), 4)) {
            let replicas = laws::run(LwwRegister::new(), 4, &steps, |rs, r, &(ts, v)| {
                rs[r].write(ts, v);
            });
            let greatest = steps.iter().filter_map(|s| match s {
                laws::Step::Local(_, w) => Some(*w),
                laws::Step::Merge { .. } => None,
            }).max();
            let joined = laws::assert_converge(replicas)?;
            prop_assert_eq!(joined.timestamp().zip(joined.get().copied()), greatest);
        }
    }
}
