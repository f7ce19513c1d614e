//! Observed-remove map of nested CRDTs (`riak_dt_map`; keys as in
//! Bieniusa et al. 2012, values reset on remove as in Almeida, Shoker and
//! Baquero, *Delta State Replicated Data Types*, 2016, §7).

use super::deferred::Deferred;
use super::{Embed, Merge, Removal};
use crate::clock::{Dot, VClock};
use alloc::borrow::Cow;
use alloc::collections::{BTreeMap, BTreeSet};
use serde::{Deserialize, Serialize};

/// A key's value as written by each surviving update: `update dot -> value`.
/// One entry normally; several while updates made without seeing each other
/// are outstanding. Each entry is immutable except for reset-removes.
type Copies<A, V> = BTreeMap<Dot<A>, V>;

/// A map from keys to nested CRDTs, with add-wins keys, observed remove
/// and no tombstones.
///
/// Every [`update`](OrMap::update) of a key is an event with a dot, as an
/// add is in [`OrSwot`](super::OrSwot), and stores the key's value as that
/// update left it. Keys follow the `OrSwot` rules: an update concurrent
/// with a remove wins, a stale replica cannot bring a removed key back, and
/// a remove whose context is ahead is deferred (bounded like `OrSwot`'s).
/// Concurrent updates of one key are kept side by side and read (and
/// updated) as their [`merge`](Merge::merge), so nested CRDT semantics
/// apply inside a key: two replicas adding to a set-valued key add to the
/// same set.
///
/// Values share the map's causal context (see [`Embed`]). Removing a key
/// removes, besides the key, every effect of its value that the remover had
/// seen: if a key holding a set is removed while another replica adds an
/// element to it, the key survives with only that element
/// ("observed-remove-reset-remove" in `riak_dt_map`). This holds for values
/// whose effects carry dots ([`OrSwot`](super::OrSwot),
/// [`MvRegister`](super::MvRegister), nested `OrMap`s); counters and
/// [`LwwRegister`](super::LwwRegister)s survive such a race with the whole
/// value the updater saw.
///
/// A key is present while an update of it survives, even if its value is
/// then empty (say, a set whose last element a nested remove took out).
///
/// A deferred remove *inside* a value (an `OrSwot::remove_with_context`
/// made in [`update`](OrMap::update)) is part of that update's value: it
/// applies when the key's concurrent updates are read or updated together,
/// and it goes with the key if the key is removed, so an unseen add it
/// covers can then survive (as in `riak_dt_map`). Removes of keys are
/// deferred at the map level and have no such gap.
///
/// Equality and serialization cover the clock, the keys' updates and the
/// deferred removes; the deferred bound and its overflow count are local.
///
/// ```
/// use epidemic_core::crdt::{Merge, OrMap, OrSwot};
///
/// let mut a: OrMap<char, &str, OrSwot<char, u32>> = OrMap::new();
/// a.update('a', "ring", |s| s.add('a', 1));
/// let mut b = a.clone();
///
/// // a removes the key while b adds to the set in it.
/// a.remove(&"ring");
/// b.update('b', "ring", |s| s.add('b', 2));
/// a.merge(&b);
///
/// // b's update wins, but the element a saw is gone with the key.
/// let ring = a.get(&"ring").unwrap();
/// assert_eq!(ring.iter().copied().collect::<Vec<_>>(), [2]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrMap<A: Ord, K: Ord, V> {
    clock: VClock<A>,
    entries: BTreeMap<K, Copies<A, V>>,
    deferred: Deferred<K, A>,
}

impl<A: Ord, K: Ord, V> Default for OrMap<A, K, V> {
    fn default() -> Self {
        OrMap {
            clock: VClock::default(),
            entries: BTreeMap::new(),
            deferred: Deferred::default(),
        }
    }
}

/// A key's value: its copies merged (borrowed when there is just one).
fn read<A: Ord + Clone, V: Embed<A>>(copies: &Copies<A, V>) -> Cow<'_, V> {
    let mut values = copies.values();
    match (values.next(), values.next()) {
        (Some(only), None) => Cow::Borrowed(only),
        (None, _) => Cow::Owned(V::default()),
        (Some(first), Some(second)) => {
            let mut value = first.clone();
            value.merge(second);
            for rest in values {
                value.merge(rest);
            }
            Cow::Owned(value)
        }
    }
}

/// Drops `copies`' updates that `ctx` covers, and resets the rest: drops
/// the effects in their values that `ctx` covers.
fn reset<A: Ord + Clone, V: Embed<A>>(copies: &mut Copies<A, V>, ctx: &VClock<A>) {
    copies.retain(|dot, _| !ctx.contains(dot));
    for value in copies.values_mut() {
        value.retain_effects(|e| !ctx.contains(e));
    }
}

impl<A: Ord + Clone, K: Ord + Clone, V: Embed<A>> OrMap<A, K, V> {
    /// The empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// The empty map, holding at most `cap` deferred removes.
    pub fn with_deferred_cap(cap: usize) -> Self {
        let mut map = Self::default();
        map.deferred.set_cap(cap);
        map
    }

    /// Updates `key`'s value as `actor`: `f` gets the current value (or
    /// `V::default()` if the key is absent) and changes it, and its result is
    /// returned. The key is present afterwards, whatever `f` did.
    ///
    /// Dots that `f` mints in the value must come from the value's own
    /// clock, which the map sets to its clock first (any actor will do, as
    /// long as each actor only ever updates at one replica).
    pub fn update<R>(&mut self, actor: A, key: K, f: impl FnOnce(&mut V) -> R) -> R {
        let mut value = match self.entries.remove(&key) {
            Some(copies) => {
                let mut copies = copies.into_values();
                let mut value = copies.next().unwrap_or_default();
                for rest in copies {
                    value.merge(&rest);
                }
                value
            }
            None => V::default(),
        };
        if let Some(pending) = self.deferred.get(&key) {
            // As in `OrSwot::add`: never mint a dot a pending remove covers.
            let named = pending.get(&actor);
            if named > self.clock.get(&actor) {
                self.clock.apply(&Dot::new(actor.clone(), named));
            }
        }
        value.parent_clock(&self.clock);
        let out = f(&mut value);
        value.absorb_clock(&mut self.clock);
        let dot = self.clock.increment(actor);
        self.deferred.settle(&self.clock);
        let mut copies = Copies::new();
        copies.insert(dot, value);
        self.entries.insert(key, copies);
        out
    }

    /// Removes `key` as observed here: every update of it this replica has
    /// seen, and so every effect in its value. Returns whether it was
    /// present. Concurrent updates survive, with their own effects only.
    pub fn remove(&mut self, key: &K) -> bool {
        self.entries.remove(key).is_some()
    }

    /// Removes the updates of `key`, and the effects in its value, that
    /// `ctx` covers: now for those this replica holds and, for those it has
    /// not seen yet, when they arrive (a deferred remove).
    pub fn remove_with_context(&mut self, key: K, ctx: &VClock<A>) -> Removal {
        if let Some(copies) = self.entries.get_mut(&key) {
            reset(copies, ctx);
            if copies.is_empty() {
                self.entries.remove(&key);
            }
        }
        self.deferred.defer(key, ctx, &self.clock)
    }

    /// `key`'s value, if the key is present.
    pub fn get(&self, key: &K) -> Option<Cow<'_, V>> {
        self.entries.get(key).map(read)
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &K) -> bool {
        self.entries.contains_key(key)
    }

    /// The keys and their values, in ascending key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, Cow<'_, V>)> + '_ {
        self.entries.iter().map(|(key, copies)| (key, read(copies)))
    }

    /// The keys, in ascending order.
    pub fn keys(&self) -> impl Iterator<Item = &K> + '_ {
        self.entries.keys()
    }

    /// How many keys are present.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key is present.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every update (and nested effect) this replica has seen.
    pub fn clock(&self) -> &VClock<A> {
        &self.clock
    }

    /// The context that observes everything read here: removing a key with
    /// it removes the key and its value as this replica has them.
    pub fn read_context(&self) -> &VClock<A> {
        &self.clock
    }

    /// The smallest context that observes `key` as it is here: the dots of
    /// its updates and everything their values had seen. `None` if absent.
    pub fn context_of(&self, key: &K) -> Option<VClock<A>> {
        let copies = self.entries.get(key)?;
        let mut ctx = VClock::new();
        for (dot, value) in copies {
            ctx.apply(dot);
            value.absorb_clock(&mut ctx);
        }
        Some(ctx)
    }

    /// How many keys have a deferred remove waiting.
    pub fn deferred_len(&self) -> usize {
        self.deferred.len()
    }

    /// The bound on [`deferred_len`](Self::deferred_len).
    pub fn deferred_cap(&self) -> usize {
        self.deferred.cap()
    }

    /// Sets the bound on deferred removes. Lowering it below the current
    /// number drops the removes of the greatest keys, counted in
    /// [`deferred_overflow`](Self::deferred_overflow).
    pub fn set_deferred_cap(&mut self, cap: usize) -> &mut Self {
        self.deferred.set_cap(cap);
        self
    }

    /// How many deferred removes were dropped because of the bound since
    /// this value was created or deserialized. While it is zero, merge
    /// obeys the [`Merge`] laws.
    pub fn deferred_overflow(&self) -> u64 {
        self.deferred.overflow()
    }

    fn apply_deferred(&mut self) {
        if self.deferred.len() == 0 {
            return;
        }
        for (key, ctx) in self.deferred.iter() {
            if let Some(copies) = self.entries.get_mut(key) {
                reset(copies, ctx);
                if copies.is_empty() {
                    self.entries.remove(key);
                }
            }
        }
        self.deferred.settle(&self.clock);
    }
}

impl<A: Ord + Clone, K: Ord + Clone, V: Embed<A>> Merge for OrMap<A, K, V> {
    /// Per key: the updates join as an `OrSwot`'s dots do; the effects in
    /// the values join the same way (an effect survives if both sides hold
    /// it, or one side holds it and the other has not seen it), and each
    /// surviving update's value keeps only the surviving effects.
    fn merge(&mut self, other: &Self) {
        if self == other {
            return;
        }
        let my_clock = &self.clock;
        let their_clock = &other.clock;
        let mut my_effects = BTreeSet::new();
        let mut their_effects = BTreeSet::new();
        self.entries.retain(|key, copies| {
            match other.entries.get(key) {
                // They removed the key, or never saw it: either way what they
                // have seen of it is gone there.
                None => reset(copies, their_clock),
                Some(theirs) if theirs == copies => {}
                Some(theirs) => {
                    my_effects.clear();
                    their_effects.clear();
                    for value in copies.values() {
                        value.effect_dots(&mut my_effects);
                    }
                    for value in theirs.values() {
                        value.effect_dots(&mut their_effects);
                    }
                    // Updates both hold are kept whatever `their_clock` says.
                    copies.retain(|dot, _| theirs.contains_key(dot) || !their_clock.contains(dot));
                    for value in copies.values_mut() {
                        value.retain_effects(|e| !their_clock.contains(e) || their_effects.contains(e));
                    }
                    for (dot, value) in theirs {
                        if !copies.contains_key(dot) && !my_clock.contains(dot) {
                            let mut value = value.clone();
                            value.retain_effects(|e| !my_clock.contains(e) || my_effects.contains(e));
                            copies.insert(dot.clone(), value);
                        }
                    }
                }
            }
            !copies.is_empty()
        });
        for (key, theirs) in &other.entries {
            // A key both held that came out empty above is absent here too:
            // none of their updates is unseen by `my_clock`.
            if self.entries.contains_key(key) {
                continue;
            }
            let mut copies: Copies<A, V> = theirs
                .iter()
                .filter(|(dot, _)| !my_clock.contains(dot))
                .map(|(dot, value)| (dot.clone(), value.clone()))
                .collect();
            reset(&mut copies, my_clock);
            if !copies.is_empty() {
                self.entries.insert(key.clone(), copies);
            }
        }
        self.clock.merge(&other.clock);
        self.deferred.merge(&other.deferred);
        self.apply_deferred();
    }
}

/// A map can nest in a map: its updates and their effects are all effects.
impl<A: Ord + Clone, K: Ord + Clone, V: Embed<A>> Embed<A> for OrMap<A, K, V> {
    fn parent_clock(&mut self, clock: &VClock<A>) {
        self.clock.merge(clock);
        self.deferred.settle(&self.clock);
    }

    fn absorb_clock(&self, clock: &mut VClock<A>) {
        clock.merge(&self.clock);
    }

    fn effect_dots(&self, out: &mut BTreeSet<Dot<A>>) {
        for copies in self.entries.values() {
            for (dot, value) in copies {
                out.insert(dot.clone());
                value.effect_dots(out);
            }
        }
    }

    fn retain_effects<F: FnMut(&Dot<A>) -> bool>(&mut self, mut keep: F) {
        self.entries.retain(|_, copies| {
            copies.retain(|dot, _| keep(dot));
            for value in copies.values_mut() {
                value.retain_effects(&mut keep);
            }
            !copies.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crdt::laws::{self, Step};
    use crate::crdt::{MvRegister, OrSwot, PNCounter};
    use proptest::prelude::*;
    use std::collections::BTreeSet as Set;
    use std::vec::Vec;

    type SetMap = OrMap<u8, u8, OrSwot<u8, u8>>;
    type CounterMap = OrMap<u8, u8, PNCounter<u8>>;
    type Nested = OrMap<u8, u8, OrMap<u8, u8, MvRegister<u8, u8>>>;

    fn contents(m: &SetMap) -> Vec<(u8, Vec<u8>)> {
        m.iter().map(|(k, s)| (*k, s.iter().copied().collect())).collect()
    }

    fn joined<S: Merge + Clone>(a: &S, b: &S) -> S {
        let mut out = a.clone();
        out.merge(b);
        out
    }

    #[test]
    fn concurrent_updates_of_a_key_merge_their_values() {
        let mut a = SetMap::new();
        let mut b = SetMap::new();
        a.update(1, 0, |s| s.add(1, 10));
        b.update(2, 0, |s| s.add(2, 20));
        b.update(2, 1, |s| s.add(2, 21));
        let ab = joined(&a, &b);
        assert_eq!(ab, joined(&b, &a));
        assert_eq!(contents(&ab), [(0, std::vec![10, 20]), (1, std::vec![21])]);
        // The next update of the key collapses the two updates into one.
        let mut c = ab.clone();
        c.update(3, 0, |s| s.remove(&10));
        assert_eq!(c.entries[&0].len(), 1);
        assert_eq!(contents(&joined(&c, &ab)), [(0, std::vec![20]), (1, std::vec![21])]);
    }

    #[test]
    fn removing_a_key_resets_its_value_against_a_concurrent_update() {
        let mut a = SetMap::new();
        a.update(1, 0, |s| {
            s.add(1, 10);
            s.add(1, 11);
        });
        let mut b = a.clone();
        assert!(a.remove(&0));
        b.update(2, 0, |s| s.add(2, 20));
        let ab = joined(&a, &b);
        assert_eq!(ab, joined(&b, &a));
        assert_eq!(
            contents(&ab),
            [(0, std::vec![20])],
            "only b's unseen add survives the remove"
        );
    }

    #[test]
    fn a_remove_that_saw_every_update_wins() {
        let mut a = SetMap::new();
        a.update(1, 0, |s| s.add(1, 10));
        let mut b = a.clone();
        b.update(2, 0, |s| s.add(2, 20));
        a.merge(&b);
        a.remove(&0);
        b.merge(&a);
        assert!(b.is_empty());
        assert_eq!(a, b);
    }

    #[test]
    fn a_stale_merge_does_not_resurrect_a_key() {
        let mut a = SetMap::new();
        a.update(1, 0, |s| s.add(1, 10));
        a.update(1, 1, |s| s.add(1, 11));
        let stale = a.clone();
        a.remove(&0);
        a.merge(&stale);
        assert_eq!(a.keys().copied().collect::<Vec<_>>(), [1]);
        let mut back = stale;
        back.merge(&a);
        assert_eq!(back, a);
    }

    #[test]
    fn a_deferred_key_remove_applies_when_the_update_arrives() {
        let mut a = SetMap::new();
        a.update(1, 0, |s| s.add(1, 10));
        let ctx = a.context_of(&0).expect("present");
        let mut c = SetMap::new();
        c.update(3, 5, |s| s.add(3, 50));
        assert_eq!(c.remove_with_context(0, &ctx), Removal::Deferred);
        c.merge(&a);
        assert_eq!(contents(&c), [(5, std::vec![50])]);
        assert_eq!(c.deferred_len(), 0);
        // An update c makes after the remove is not covered by it.
        let mut d = SetMap::new();
        d.remove_with_context(0, &ctx);
        d.update(4, 0, |s| s.add(4, 40));
        d.merge(&a);
        assert_eq!(contents(&d), [(0, std::vec![40])]);
    }

    #[test]
    fn counters_survive_a_concurrent_remove_whole() {
        let mut a = CounterMap::new();
        a.update(1, 0, |c| c.increment_by(1, 5));
        let mut b = a.clone();
        a.remove(&0);
        b.update(2, 0, |c| c.increment(2));
        a.merge(&b);
        // The documented anomaly of counters without dots (as riak_dt_map's).
        assert_eq!(a.get(&0).map(|c| c.value()), Some(6));
        b.merge(&a);
        assert_eq!(a, b);
    }

    #[test]
    fn maps_nest() {
        let mut a = Nested::new();
        a.update(1, 0, |inner| inner.update(1, 7, |r| r.set(1, 70)));
        let mut b = a.clone();
        a.update(1, 0, |inner| inner.update(1, 7, |r| r.set(1, 71)));
        b.update(2, 0, |inner| inner.update(2, 7, |r| r.set(2, 72)));
        a.merge(&b);
        let inner = a.get(&0).expect("present");
        let values: Vec<u8> = inner.get(&7).expect("present").values().copied().collect();
        assert_eq!(values, [71, 72], "concurrent writes are siblings");

        // Removing the outer key resets the inner map to b's unseen write.
        let mut c = a.clone();
        c.remove(&0);
        a.update(1, 0, |inner| inner.update(1, 8, |r| r.set(1, 80)));
        c.merge(&a);
        let inner = c.get(&0).expect("a's later update survives");
        assert_eq!(inner.keys().copied().collect::<Vec<_>>(), [8]);
    }

    #[test]
    fn deferred_key_removes_are_bounded() {
        let mut a = SetMap::new();
        for k in 0..3 {
            a.update(1, k, |s| s.add(1, k));
        }
        let ctx = a.read_context().clone();
        let mut b = SetMap::with_deferred_cap(1);
        assert_eq!(b.remove_with_context(0, &ctx), Removal::Deferred);
        assert_eq!(b.remove_with_context(1, &ctx), Removal::Overflow);
        assert_eq!((b.deferred_len(), b.deferred_cap(), b.deferred_overflow()), (1, 1, 1));
        b.merge(&a);
        assert_eq!(
            contents(&b),
            [(1, std::vec![1]), (2, std::vec![2])],
            "the overflowed remove is lost"
        );
    }

    #[test]
    fn serde_round_trip_keeps_the_state() {
        let mut a = SetMap::new();
        a.update(1, 0, |s| s.add(1, 10));
        let mut b = a.clone();
        b.update(2, 0, |s| s.add(2, 20));
        a.update(1, 0, |s| s.add(1, 11));
        a.merge(&b);
        let bytes = postcard::to_allocvec(&a).expect("serializes");
        let back: SetMap = postcard::from_bytes(&bytes).expect("deserializes");
        assert_eq!(back, a);
    }

    /// Map operations with a nested operation `N`.
    #[derive(Debug, Clone)]
    enum Op<N> {
        Update(u8, N),
        Remove(u8),
        /// Remove with the read context of another replica.
        RemoveWithContext(u8, usize),
    }

    fn map_op<N: core::fmt::Debug + Clone>(
        nested: impl Strategy<Value = N> + 'static,
        replicas: usize,
    ) -> impl Strategy<Value = Op<N>> {
        prop_oneof![
            4 => (0u8..3, nested).prop_map(|(k, n)| Op::Update(k, n)),
            1 => (0u8..3).prop_map(Op::Remove),
            1 => (0u8..3, 0..replicas).prop_map(|(k, r)| Op::RemoveWithContext(k, r)),
        ]
    }

    fn apply_map<V: Embed<u8>, N>(
        replicas: &mut [OrMap<u8, u8, V>],
        r: usize,
        op: &Op<N>,
        nested: impl FnOnce(&mut V, u8, &N, &VClock<u8>),
    ) {
        let actor = r as u8;
        match op {
            Op::Update(k, n) => {
                // A nested remove may borrow another replica's context.
                let ctx = replicas[(r + 1) % replicas.len()].read_context().clone();
                replicas[r].update(actor, *k, |v| nested(v, actor, n, &ctx));
            }
            Op::Remove(k) => {
                replicas[r].remove(k);
            }
            Op::RemoveWithContext(k, from) => {
                let ctx = replicas[*from].read_context().clone();
                replicas[r].remove_with_context(*k, &ctx);
            }
        }
    }

    #[derive(Debug, Clone)]
    enum SetOp {
        Add(u8),
        Remove(u8),
        RemoveWithContext(u8),
    }

    fn set_op(with_context: bool) -> impl Strategy<Value = SetOp> {
        let ctx_weight = if with_context { 1 } else { 0 };
        prop_oneof![
            3 => (0u8..4).prop_map(SetOp::Add),
            1 => (0u8..4).prop_map(SetOp::Remove),
            ctx_weight => (0u8..4).prop_map(SetOp::RemoveWithContext),
        ]
    }

    fn apply_set(replicas: &mut [SetMap], r: usize, op: &Op<SetOp>) {
        apply_map(replicas, r, op, |s, actor, n, ctx| match *n {
            SetOp::Add(e) => {
                s.add(actor, e);
            }
            SetOp::Remove(e) => {
                s.remove(&e);
            }
            SetOp::RemoveWithContext(e) => {
                s.remove_with_context(e, ctx);
            }
        });
    }

    fn apply_counter(replicas: &mut [CounterMap], r: usize, op: &Op<i8>) {
        apply_map(replicas, r, op, |c, actor, &n, _| {
            if n >= 0 {
                c.increment_by(actor, n.unsigned_abs().into());
            } else {
                c.decrement_by(actor, n.unsigned_abs().into());
            }
        });
    }

    /// Inner key and value to write, or `None` to remove the inner key.
    type NestedOp = (u8, Option<u8>);

    fn apply_nested(replicas: &mut [Nested], r: usize, op: &Op<NestedOp>) {
        apply_map(replicas, r, op, |inner, actor, &(k, v), _| match v {
            Some(v) => inner.update(actor, k, |reg| {
                reg.set(actor, v);
            }),
            None => {
                inner.remove(&k);
            }
        });
    }

    /// The specification of a set-valued map with reset-remove: every
    /// update and every nested add is a unique event; a nested remove kills
    /// the adds of that element in that key the replica has seen; a key
    /// remove kills every event of that key the remover has seen. A key is
    /// present while it has a live update, and holds the elements that have
    /// a live add.
    #[derive(Debug, Clone, Default)]
    struct Model {
        /// (key, element or None for the update itself, event id)
        seen: Set<(u8, Option<u8>, u32)>,
        killed: Set<(u8, Option<u8>, u32)>,
    }

    impl Model {
        fn kill(&mut self, from: &Set<(u8, Option<u8>, u32)>, key: u8, elem: Option<Option<u8>>) {
            let hits = from
                .iter()
                .filter(|(k, e, _)| *k == key && elem.is_none_or(|x| x == *e));
            self.killed.extend(hits.copied().collect::<Vec<_>>());
        }

        fn value(&self) -> Vec<(u8, Vec<u8>)> {
            let live: Vec<_> = self.seen.difference(&self.killed).copied().collect();
            let keys: Set<u8> = live
                .iter()
                .filter(|(_, e, _)| e.is_none())
                .map(|(k, _, _)| *k)
                .collect();
            keys.into_iter()
                .map(|k| {
                    let elems: Set<u8> = live
                        .iter()
                        .filter(|(kk, _, _)| *kk == k)
                        .filter_map(|(_, e, _)| *e)
                        .collect();
                    (k, elems.into_iter().collect())
                })
                .collect()
        }
    }

    fn run_with_model(steps: &[Step<Op<SetOp>>], n: usize) -> (Vec<SetMap>, Vec<Model>) {
        let mut maps = std::vec![SetMap::new(); n];
        let mut models = std::vec![Model::default(); n];
        let mut next = 0u32;
        for step in steps {
            match step {
                Step::Local(r, op) => {
                    let r = *r;
                    apply_set(&mut maps, r, op);
                    match op {
                        Op::Update(k, nested) => {
                            next += 1;
                            models[r].seen.insert((*k, None, next));
                            match *nested {
                                SetOp::Add(e) => {
                                    next += 1;
                                    models[r].seen.insert((*k, Some(e), next));
                                }
                                SetOp::Remove(e) => {
                                    let seen = models[r].seen.clone();
                                    models[r].kill(&seen, *k, Some(Some(e)));
                                }
                                SetOp::RemoveWithContext(_) => unreachable!("not generated for the model"),
                            }
                        }
                        Op::Remove(k) => {
                            let seen = models[r].seen.clone();
                            models[r].kill(&seen, *k, None);
                        }
                        Op::RemoveWithContext(k, from) => {
                            let seen = models[*from].seen.clone();
                            models[r].kill(&seen, *k, None);
                        }
                    }
                }
                Step::Merge { from, to } => {
                    let src = maps[*from].clone();
                    maps[*to].merge(&src);
                    let src = models[*from].clone();
                    models[*to].seen.extend(src.seen);
                    models[*to].killed.extend(src.killed);
                }
            }
        }
        (maps, models)
    }

    proptest! {
        #![proptest_config(laws::config())]

        #[test]
        fn set_map_merge_is_a_join(steps in laws::steps(map_op(set_op(true), 3), 3)) {
            let replicas = laws::run(SetMap::new(), 3, &steps, apply_set);
            laws::assert_join(&replicas[0], &replicas[1], &replicas[2])?;
        }

        #[test]
        fn set_maps_converge(steps in laws::steps(map_op(set_op(true), 4), 4)) {
            let replicas = laws::run(SetMap::new(), 4, &steps, apply_set);
            let joined = laws::assert_converge(replicas)?;
            prop_assert_eq!(joined.deferred_len(), 0);
        }

        #[test]
        fn counter_map_merge_is_a_join(steps in laws::steps(map_op(-3i8..4, 3), 3)) {
            let replicas = laws::run(CounterMap::new(), 3, &steps, apply_counter);
            laws::assert_join(&replicas[0], &replicas[1], &replicas[2])?;
        }

        #[test]
        fn counter_maps_converge(steps in laws::steps(map_op(-3i8..4, 4), 4)) {
            let replicas = laws::run(CounterMap::new(), 4, &steps, apply_counter);
            laws::assert_converge(replicas)?;
        }

        #[test]
        fn nested_map_merge_is_a_join(steps in laws::steps(map_op((0u8..3, proptest::option::of(0u8..3)), 3), 3)) {
            let replicas = laws::run(Nested::new(), 3, &steps, apply_nested);
            laws::assert_join(&replicas[0], &replicas[1], &replicas[2])?;
        }

        #[test]
        fn nested_maps_converge(steps in laws::steps(map_op((0u8..3, proptest::option::of(0u8..3)), 4), 4)) {
            let replicas = laws::run(Nested::new(), 4, &steps, apply_nested);
            laws::assert_converge(replicas)?;
        }

        /// Every replica reads what the reset-remove specification says,
        /// and so does the merge of all of them.
        #[test]
        fn matches_the_reset_remove_specification(steps in laws::steps(map_op(set_op(false), 3), 3)) {
            let (maps, models) = run_with_model(&steps, 3);
            for (map, model) in maps.iter().zip(&models) {
                prop_assert_eq!(contents(map), model.value());
            }
            let mut all = maps[0].clone();
            let mut spec = models[0].clone();
            for (map, model) in maps.iter().zip(&models).skip(1) {
                all.merge(map);
                spec.seen.extend(model.seen.iter().copied());
                spec.killed.extend(model.killed.iter().copied());
            }
            prop_assert_eq!(contents(&all), spec.value());
        }

        /// Remove a key at one replica, then merge a stale copy taken before
        /// the remove: the key stays removed, both ways.
        #[test]
        fn stale_merge_never_resurrects(steps in laws::steps(map_op(set_op(true), 3), 3), r in 0usize..3, k in 0u8..3) {
            let mut replicas = laws::run(SetMap::new(), 3, &steps, apply_set);
            let stale = replicas[r].clone();
            replicas[r].remove(&k);
            replicas[r].merge(&stale);
            prop_assert!(!replicas[r].contains_key(&k));
            let mut back = stale;
            back.merge(&replicas[r]);
            prop_assert!(!back.contains_key(&k));
        }

        /// A key remove with another replica's context, at a replica that may
        /// be behind it: once the context's owner is merged in, no update or
        /// element the context covers survives in that key.
        #[test]
        fn deferred_removes_catch_up(steps in laws::steps(map_op(set_op(true), 3), 3), r in 0usize..3, from in 0usize..3, k in 0u8..3) {
            let mut replicas = laws::run(SetMap::new(), 3, &steps, apply_set);
            let ctx = replicas[from].read_context().clone();
            replicas[r].remove_with_context(k, &ctx);
            let src = replicas[from].clone();
            replicas[r].merge(&src);
            if let Some(copies) = replicas[r].entries.get(&k) {
                for (dot, set) in copies {
                    prop_assert!(!ctx.contains(dot), "a covered update survived");
                    let mut effects = BTreeSet::new();
                    set.effect_dots(&mut effects);
                    prop_assert!(effects.iter().all(|e| !ctx.contains(e)), "a covered element survived");
                }
            }
        }
    }
}
