//! Multi-value register (Shapiro et al. 2011, §3.2.2 "MV-Register"), with
//! one dot per value and a causal context instead of a version vector per
//! value, as in dotted version vectors.

use super::{Embed, Merge};
use crate::clock::{Dot, VClock};
use alloc::collections::{BTreeMap, BTreeSet};
use serde::{Deserialize, Serialize};

/// A register that keeps every concurrently written value.
///
/// A write names the context it was made from (what the writer had read):
/// it replaces the values that context covers and nothing else. Writes that
/// did not see each other are siblings; [`values`](MvRegister::values)
/// returns all of them, and the next write made from a context that covers
/// them collapses them into one.
///
/// A write's context may be ahead of the replica that performs it (the
/// writer read elsewhere). The part ahead is kept, and a value it covers is
/// dropped when it arrives, so it never shows as a false sibling.
///
/// ```
/// use epidemic_core::crdt::{Merge, MvRegister};
///
/// let mut a = MvRegister::new();
/// let mut b = MvRegister::new();
/// a.set('a', "left");
/// b.set('b', "right");
/// a.merge(&b);
/// assert_eq!(a.values().copied().collect::<Vec<_>>(), ["left", "right"]);
///
/// // A write made from a context that saw both replaces both.
/// let ctx = a.read_context().clone();
/// b.write('b', "both", &ctx);
/// a.merge(&b);
/// assert_eq!(a.values().copied().collect::<Vec<_>>(), ["both"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MvRegister<A: Ord, T> {
    clock: VClock<A>,
    values: BTreeMap<Dot<A>, T>,
    // Write contexts ahead of `clock`: values with these dots were
    // overwritten. Only the part not yet covered by `clock` is kept.
    superseded: VClock<A>,
}

impl<A: Ord, T> Default for MvRegister<A, T> {
    fn default() -> Self {
        MvRegister {
            clock: VClock::default(),
            values: BTreeMap::new(),
            superseded: VClock::default(),
        }
    }
}

impl<A: Ord + Clone, T: Clone> MvRegister<A, T> {
    /// A register that was never written.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes `value` as `actor`, replacing the values that `ctx` covers
    /// (normally the [`read_context`](Self::read_context) the writer read
    /// with). Returns the dot of the new value.
    pub fn write(&mut self, actor: A, value: T, ctx: &VClock<A>) -> Dot<A> {
        self.values.retain(|dot, _| !ctx.contains(dot));
        let mut ahead = ctx.clone();
        ahead.forget(&self.clock);
        self.superseded.merge(&ahead);
        // A context can only name this actor's future dots if it is not a
        // read context; skip past them so the new value is not superseded.
        let named = self.superseded.get(&actor);
        if named > self.clock.get(&actor) {
            self.clock.apply(&Dot::new(actor.clone(), named));
        }
        let dot = self.clock.increment(actor);
        self.superseded.forget(&self.clock);
        self.values.insert(dot.clone(), value);
        dot
    }

    /// Writes `value` as `actor` over every value this replica holds.
    pub fn set(&mut self, actor: A, value: T) -> Dot<A> {
        let ctx = self.clock.clone();
        self.write(actor, value, &ctx)
    }

    /// The current values, one per concurrent write, in dot order.
    pub fn values(&self) -> impl Iterator<Item = &T> + '_ {
        self.values.values()
    }

    /// The current values with their dots.
    pub fn iter(&self) -> impl Iterator<Item = (&Dot<A>, &T)> + '_ {
        self.values.iter()
    }

    /// How many concurrent values there are (0 if never written).
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the register holds no value.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The context to [`write`](Self::write) with so that the write
    /// replaces every value read here.
    pub fn read_context(&self) -> &VClock<A> {
        &self.clock
    }

    /// Every write this replica has seen.
    pub fn clock(&self) -> &VClock<A> {
        &self.clock
    }
}

impl<A: Ord + Clone, T: Clone> Merge for MvRegister<A, T> {
    fn merge(&mut self, other: &Self) {
        // A value only one side holds survives unless the other side has
        // seen its dot, in which case the other side overwrote it.
        self.values
            .retain(|dot, _| other.values.contains_key(dot) || !other.clock.contains(dot));
        for (dot, value) in &other.values {
            if !self.clock.contains(dot) && !self.values.contains_key(dot) {
                self.values.insert(dot.clone(), value.clone());
            }
        }
        self.clock.merge(&other.clock);
        self.superseded.merge(&other.superseded);
        if !self.superseded.is_empty() {
            let superseded = &self.superseded;
            self.values.retain(|dot, _| !superseded.contains(dot));
            self.superseded.forget(&self.clock);
        }
    }
}

/// Values are effects: removing a key whose value is a register drops the
/// values the remover had seen.
impl<A: Ord + Clone, T: Clone + PartialEq> Embed<A> for MvRegister<A, T> {
    fn parent_clock(&mut self, clock: &VClock<A>) {
        self.clock.merge(clock);
        self.superseded.forget(&self.clock);
    }

    fn absorb_clock(&self, clock: &mut VClock<A>) {
        clock.merge(&self.clock);
    }

    fn effect_dots(&self, out: &mut BTreeSet<Dot<A>>) {
        out.extend(self.values.keys().cloned());
    }

    fn retain_effects<F: FnMut(&Dot<A>) -> bool>(&mut self, mut keep: F) {
        self.values.retain(|dot, _| keep(dot));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crdt::laws;
    use proptest::prelude::*;
    use std::vec::Vec;

    type Reg = MvRegister<u8, u8>;

    /// Write `value` at the replica, with the read context of replica
    /// `ctx_from` (itself, or one that may be ahead or behind).
    #[derive(Debug, Clone)]
    struct Write {
        value: u8,
        ctx_from: usize,
    }

    fn apply(replicas: &mut [Reg], r: usize, op: &Write) {
        let ctx = replicas[op.ctx_from % replicas.len()].read_context().clone();
        replicas[r].write(r as u8, op.value, &ctx);
    }

    fn op(replicas: usize) -> impl Strategy<Value = Write> {
        (0u8..4, 0..replicas).prop_map(|(value, ctx_from)| Write { value, ctx_from })
    }

    fn values(r: &Reg) -> Vec<u8> {
        r.values().copied().collect()
    }

    #[test]
    fn concurrent_writes_are_siblings_until_a_write_sees_them() {
        let mut a = Reg::new();
        let mut b = Reg::new();
        a.set(1, 10);
        b.merge(&a);
        a.set(1, 11);
        b.set(2, 20);
        a.merge(&b);
        b.merge(&a);
        assert_eq!(values(&a), [11, 20]);
        assert_eq!(a, b);

        // A write from a context that is missing b's value keeps it.
        let mut c = Reg::new();
        c.set(3, 30);
        let stale = c.read_context().clone();
        a.write(1, 12, &stale);
        assert_eq!(values(&a), [11, 12, 20]);

        // A write from the merged context collapses everything.
        let ctx = a.read_context().clone();
        b.write(2, 21, &ctx);
        a.merge(&b);
        assert_eq!(values(&a), [21]);
        assert_eq!(a.len(), 1);
    }

    #[test]
    fn a_context_ahead_overwrites_values_on_arrival() {
        let mut a = Reg::new();
        a.set(1, 10);
        let seen_at_a = a.read_context().clone();
        // b has not received a's write, but a client that read at a
        // writes through b.
        let mut b = Reg::new();
        b.write(2, 20, &seen_at_a);
        assert_eq!(values(&b), [20]);
        b.merge(&a);
        assert_eq!(values(&b), [20], "a's value was overwritten, not a sibling");
        a.merge(&b);
        assert_eq!(a, b);
    }

    proptest! {
        #![proptest_config(laws::config())]

        #[test]
        fn merge_is_a_join(steps in laws::steps(op(3), 3)) {
            let replicas = laws::run(Reg::new(), 3, &steps, apply);
            laws::assert_join(&replicas[0], &replicas[1], &replicas[2])?;
        }

        #[test]
        fn replicas_converge(steps in laws::steps(op(4), 4)) {
            let replicas = laws::run(Reg::new(), 4, &steps, apply);
            let writes = steps.iter().filter(|s| matches!(s, laws::Step::Local(..))).count();
            let joined = laws::assert_converge(replicas)?;
            prop_assert_eq!(joined.is_empty(), writes == 0);
        }
    }
}
