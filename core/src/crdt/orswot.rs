//! Add-wins observed-remove set without tombstones (Bieniusa et al. 2012,
//! "An optimized conflict-free replicated set"; `riak_dt_orswot`).

use super::deferred::Deferred;
use super::{Embed, Merge, Removal};
use crate::clock::{Dot, VClock};
use alloc::collections::{BTreeMap, BTreeSet};
use serde::{Deserialize, Serialize};

/// The dots that keep one element in the set: at most one per actor (an
/// actor's later add replaces its earlier dot), as `actor -> counter`.
type Dots<A> = BTreeMap<A, u64>;

/// An add-wins observed-remove set that keeps no tombstones.
///
/// The set holds a clock of every add it has seen and, for each present
/// element, the dots of the adds that put it there. A remove simply drops
/// the element's dots. Merge keeps a dot that both sides hold, and a dot
/// that one side holds and the other has not seen; a dot that one side
/// lacks although its clock covers it was removed there, and stays removed.
/// So an add concurrent with a remove wins (the remove did not see its
/// dot), and a stale replica cannot bring a removed element back. The
/// state is the elements plus one clock, with no per-remove growth.
///
/// [`remove`](OrSwot::remove) removes what this replica has observed.
/// [`remove_with_context`](OrSwot::remove_with_context) removes what a
/// context observed (say, what a client read on another node); the part of
/// the context this replica has not seen yet is kept as a *deferred* remove
/// and applied to matching dots as they arrive. Deferred removes are bounded
/// by [`deferred_cap`](OrSwot::deferred_cap) (default
/// [`DEFAULT_DEFERRED_CAP`](super::DEFAULT_DEFERRED_CAP)); beyond it the
/// remove is still applied to what is here, the rest is dropped and counted
/// in [`deferred_overflow`](OrSwot::deferred_overflow).
///
/// Merge costs `O((n + m) log(n + m))` for sets of `n` and `m` elements
/// (each with a handful of dots), plus the deferred removes.
///
/// Equality and serialization cover the clock, the elements and the
/// deferred removes; the bound and the overflow count are local.
///
/// ```
/// use epidemic_core::crdt::{Merge, OrSwot, Removal};
///
/// let mut a = OrSwot::new();
/// a.add("n1", "n1");
/// a.add("n1", "n2");
/// let stale = a.clone();
/// assert!(a.remove(&"n2"));
/// a.merge(&stale); // the stale copy still has "n2": it stays removed
/// assert!(!a.contains(&"n2"));
///
/// // A remove whose context is ahead of this replica waits for the add.
/// let mut b = OrSwot::new();
/// let ctx = stale.context_of(&"n1").unwrap();
/// assert_eq!(b.remove_with_context("n1", &ctx), Removal::Deferred);
/// b.merge(&stale);
/// assert_eq!(b.iter().collect::<Vec<_>>(), [&"n2"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrSwot<A: Ord, E: Ord> {
    clock: VClock<A>,
    entries: BTreeMap<E, Dots<A>>,
    deferred: Deferred<E, A>,
}

impl<A: Ord, E: Ord> Default for OrSwot<A, E> {
    fn default() -> Self {
        OrSwot {
            clock: VClock::default(),
            entries: BTreeMap::new(),
            deferred: Deferred::default(),
        }
    }
}

impl<A: Ord + Clone, E: Ord + Clone> OrSwot<A, E> {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// The empty set, holding at most `cap` deferred removes.
    pub fn with_deferred_cap(cap: usize) -> Self {
        let mut set = Self::default();
        set.deferred.set_cap(cap);
        set
    }

    /// Adds `elem` as `actor`, and returns the dot of the add.
    ///
    /// The add replaces the element's dots seen here, so a later remove
    /// anywhere that has seen this add removes the element entirely.
    pub fn add(&mut self, actor: A, elem: E) -> Dot<A> {
        if let Some(pending) = self.deferred.get(&elem) {
            // Only a context that is not a read context can name this
            // actor's future dots; skip past them so the add is not removed.
            let named = pending.get(&actor);
            if named > self.clock.get(&actor) {
                self.clock.apply(&Dot::new(actor.clone(), named));
            }
        }
        let dot = self.clock.increment(actor.clone());
        let mut dots = Dots::new();
        dots.insert(actor, dot.counter);
        self.entries.insert(elem, dots);
        self.deferred.settle(&self.clock);
        dot
    }

    /// Removes `elem` as observed here: every add of it this replica has
    /// seen. Returns whether it was present. An add this replica has not
    /// seen (a concurrent one) survives the remove.
    pub fn remove(&mut self, elem: &E) -> bool {
        self.entries.remove(elem).is_some()
    }

    /// Removes the adds of `elem` that `ctx` covers, now for those this
    /// replica holds and, for those it has not seen yet, when they arrive
    /// (a deferred remove). `ctx` is normally a
    /// [`read_context`](Self::read_context) or
    /// [`context_of`](Self::context_of) from some replica.
    pub fn remove_with_context(&mut self, elem: E, ctx: &VClock<A>) -> Removal {
        if let Some(dots) = self.entries.get_mut(&elem) {
            dots.retain(|actor, n| *n > ctx.get(actor));
            if dots.is_empty() {
                self.entries.remove(&elem);
            }
        }
        self.deferred.defer(elem, ctx, &self.clock)
    }

    /// Whether `elem` is in the set.
    pub fn contains(&self, elem: &E) -> bool {
        self.entries.contains_key(elem)
    }

    /// The elements, in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = &E> + '_ {
        self.entries.keys()
    }

    /// How many elements the set holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the set holds no element.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every add this replica has seen.
    pub fn clock(&self) -> &VClock<A> {
        &self.clock
    }

    /// The context that observes everything read here: removing an element
    /// with it removes every add of that element this replica has seen.
    pub fn read_context(&self) -> &VClock<A> {
        &self.clock
    }

    /// The smallest context that observes `elem` as it is here (its dots),
    /// or `None` if it is absent.
    pub fn context_of(&self, elem: &E) -> Option<VClock<A>> {
        self.entries
            .get(elem)
            .map(|dots| dots.iter().map(|(actor, &n)| (actor.clone(), n)).collect())
    }

    /// How many elements have a deferred remove waiting.
    pub fn deferred_len(&self) -> usize {
        self.deferred.len()
    }

    /// The bound on [`deferred_len`](Self::deferred_len).
    pub fn deferred_cap(&self) -> usize {
        self.deferred.cap()
    }

    /// Sets the bound on deferred removes. Lowering it below the current
    /// number drops the removes of the greatest elements, counted in
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

    /// Applies the deferred removes to the dots present, then forgets what
    /// the clock now covers.
    fn apply_deferred(&mut self) {
        if self.deferred.len() == 0 {
            return;
        }
        for (elem, ctx) in self.deferred.iter() {
            if let Some(dots) = self.entries.get_mut(elem) {
                dots.retain(|actor, n| *n > ctx.get(actor));
                if dots.is_empty() {
                    self.entries.remove(elem);
                }
            }
        }
        self.deferred.settle(&self.clock);
    }
}

/// Joins one element's dots: keep a dot both sides hold, and a dot one
/// side holds that the other side's clock has not seen.
fn join_dots<A: Ord + Clone>(mine: &mut Dots<A>, my_clock: &VClock<A>, theirs: &Dots<A>, their_clock: &VClock<A>) {
    mine.retain(|actor, n| theirs.get(actor) == Some(n) || *n > their_clock.get(actor));
    for (actor, &n) in theirs {
        if n > my_clock.get(actor) {
            // Both sides can keep a dot of one actor only in a state that no
            // run produces; keep the later one so the join stays symmetric.
            let kept = mine.entry(actor.clone()).or_insert(n);
            *kept = (*kept).max(n);
        }
    }
}

impl<A: Ord + Clone, E: Ord + Clone> Merge for OrSwot<A, E> {
    fn merge(&mut self, other: &Self) {
        if self == other {
            // The common case for periodic gossip of a settled set.
            return;
        }
        let my_clock = &self.clock;
        let their_clock = &other.clock;
        self.entries.retain(|elem, dots| {
            match other.entries.get(elem) {
                Some(theirs) => join_dots(dots, my_clock, theirs, their_clock),
                None => dots.retain(|actor, n| *n > their_clock.get(actor)),
            }
            !dots.is_empty()
        });
        for (elem, theirs) in &other.entries {
            // An element both held that came out empty above is absent here
            // too: none of their dots is unseen by `my_clock`.
            if self.entries.contains_key(elem) {
                continue;
            }
            let unseen: Dots<A> = theirs
                .iter()
                .filter(|(actor, n)| **n > my_clock.get(actor))
                .map(|(actor, &n)| (actor.clone(), n))
                .collect();
            if !unseen.is_empty() {
                self.entries.insert(elem.clone(), unseen);
            }
        }
        self.clock.merge(&other.clock);
        self.deferred.merge(&other.deferred);
        self.apply_deferred();
    }
}

/// Element dots are effects: removing a key whose value is a set drops the
/// adds the remover had seen, and keeps concurrent ones.
impl<A: Ord + Clone, E: Ord + Clone> Embed<A> for OrSwot<A, E> {
    fn parent_clock(&mut self, clock: &VClock<A>) {
        self.clock.merge(clock);
        self.deferred.settle(&self.clock);
    }

    fn absorb_clock(&self, clock: &mut VClock<A>) {
        clock.merge(&self.clock);
    }

    fn effect_dots(&self, out: &mut BTreeSet<Dot<A>>) {
        for dots in self.entries.values() {
            out.extend(dots.iter().map(|(actor, &n)| Dot::new(actor.clone(), n)));
        }
    }

    fn retain_effects<F: FnMut(&Dot<A>) -> bool>(&mut self, mut keep: F) {
        self.entries.retain(|_, dots| {
            dots.retain(|actor, n| keep(&Dot::new(actor.clone(), *n)));
            !dots.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crdt::laws::{self, Step};
    use proptest::prelude::*;
    use std::collections::BTreeSet as Set;
    use std::vec::Vec;

    type Set8 = OrSwot<u8, u8>;

    fn elems(s: &Set8) -> Vec<u8> {
        s.iter().copied().collect()
    }

    #[test]
    fn add_wins_over_a_concurrent_remove() {
        let mut a = Set8::new();
        a.add(1, 7);
        let mut b = a.clone();
        a.remove(&7);
        b.add(2, 7);
        let mut ab = a.clone();
        ab.merge(&b);
        let mut ba = b.clone();
        ba.merge(&a);
        assert_eq!(ab, ba);
        assert!(ab.contains(&7));
        assert_eq!(
            ab.context_of(&7),
            Some([(2, 1)].into_iter().collect()),
            "only b's add is left"
        );
    }

    #[test]
    fn a_remove_that_saw_every_add_wins() {
        let mut a = Set8::new();
        a.add(1, 7);
        let mut b = a.clone();
        b.add(2, 7);
        a.merge(&b);
        a.remove(&7);
        b.merge(&a);
        assert!(!b.contains(&7));
        assert!(b.is_empty());
    }

    #[test]
    fn a_stale_merge_does_not_resurrect() {
        let mut a = Set8::new();
        a.add(1, 1);
        a.add(1, 2);
        let mut b = Set8::new();
        b.merge(&a);
        a.remove(&1);
        a.merge(&b);
        assert_eq!(elems(&a), [2]);
        b.merge(&a);
        assert_eq!(a, b, "and the stale side learns the remove");
    }

    #[test]
    fn a_deferred_remove_applies_when_the_add_arrives() {
        let mut a = Set8::new();
        a.add(1, 5);
        a.add(1, 6);
        let mut c = Set8::new();
        c.add(3, 9);
        // A client read `a`, and removes 5 through `c`, which is behind.
        let ctx = a.read_context().clone();
        assert_eq!(c.remove_with_context(5, &ctx), Removal::Deferred);
        assert_eq!(c.deferred_len(), 1);
        c.merge(&a);
        assert_eq!(elems(&c), [6, 9]);
        assert_eq!(c.deferred_len(), 0, "the clock caught up");
        a.merge(&c);
        assert_eq!(a, c);

        // Covered by the clock already: nothing waits.
        assert_eq!(a.remove_with_context(6, &ctx), Removal::Done);
        assert_eq!(elems(&a), [9]);
    }

    #[test]
    fn a_deferred_remove_spares_adds_it_did_not_see() {
        let mut a = Set8::new();
        a.add(1, 5);
        let ctx = a.read_context().clone();
        let mut b = Set8::new();
        b.remove_with_context(5, &ctx);
        b.add(2, 5); // after the remove: wins
        b.merge(&a);
        assert_eq!(elems(&b), [5]);
        assert_eq!(b.context_of(&5), Some([(2, 1)].into_iter().collect()));
    }

    #[test]
    fn deferred_removes_are_bounded() {
        let mut a = Set8::new();
        for e in 0..4 {
            a.add(1, e);
        }
        let ctx = a.read_context().clone();
        let mut b = Set8::with_deferred_cap(2);
        assert_eq!(b.remove_with_context(0, &ctx), Removal::Deferred);
        assert_eq!(b.remove_with_context(1, &ctx), Removal::Deferred);
        assert_eq!(
            b.remove_with_context(1, &ctx),
            Removal::Deferred,
            "joins the pending one"
        );
        assert_eq!(b.remove_with_context(2, &ctx), Removal::Overflow);
        assert_eq!((b.deferred_len(), b.deferred_overflow()), (2, 1));

        // A peer's deferred removes count against the bound too.
        let mut c = Set8::new();
        for e in 4..8 {
            c.remove_with_context(e, &ctx);
        }
        b.merge(&c);
        assert_eq!(b.deferred_len(), 2);
        assert_eq!(b.deferred_overflow(), 5);
        b.set_deferred_cap(1);
        assert_eq!((b.deferred_len(), b.deferred_overflow()), (1, 6));
    }

    #[test]
    fn serde_round_trip_keeps_the_state() {
        let mut a = Set8::new();
        a.add(1, 3);
        a.add(2, 4);
        let mut ahead = Set8::new();
        ahead.add(9, 1);
        a.remove_with_context(1, ahead.read_context());
        let bytes = postcard::to_allocvec(&a).expect("serializes");
        let back: Set8 = postcard::from_bytes(&bytes).expect("deserializes");
        assert_eq!(back, a);
        assert_eq!(back.deferred_len(), 1);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Add(u8),
        Remove(u8),
        /// Remove with the read context of another replica.
        RemoveWithContext(u8, usize),
    }

    fn op(replicas: usize) -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0u8..5).prop_map(Op::Add),
            1 => (0u8..5).prop_map(Op::Remove),
            1 => (0u8..5, 0..replicas).prop_map(|(e, r)| Op::RemoveWithContext(e, r)),
        ]
    }

    fn apply(replicas: &mut [Set8], r: usize, op: &Op) {
        match *op {
            Op::Add(e) => {
                replicas[r].add(r as u8, e);
            }
            Op::Remove(e) => {
                replicas[r].remove(&e);
            }
            Op::RemoveWithContext(e, from) => {
                let ctx = replicas[from].read_context().clone();
                replicas[r].remove_with_context(e, &ctx);
            }
        }
    }

    /// The OR-Set specification (Shapiro et al. 2011, §3.3.5): every add is
    /// a unique event; a remove kills the adds of that element that the
    /// remover has seen; an element is present while it has a live add that
    /// the replica has seen. `seen` and `removed` merge by union.
    #[derive(Debug, Clone, Default)]
    struct Model {
        seen: Set<(u8, u32)>,
        removed: Set<(u8, u32)>,
    }

    impl Model {
        fn value(&self) -> Vec<u8> {
            let live: Set<u8> = self.seen.difference(&self.removed).map(|(e, _)| *e).collect();
            live.into_iter().collect()
        }
    }

    fn run_with_model(steps: &[Step<Op>], n: usize) -> (Vec<Set8>, Vec<Model>) {
        let mut sets = std::vec![Set8::new(); n];
        let mut models = std::vec![Model::default(); n];
        let mut next_event = 0u32;
        for step in steps {
            match *step {
                Step::Local(r, ref op) => {
                    apply(&mut sets, r, op);
                    match *op {
                        Op::Add(e) => {
                            next_event += 1;
                            models[r].seen.insert((e, next_event));
                        }
                        Op::Remove(e) => {
                            let killed: Vec<_> = models[r].seen.iter().filter(|(x, _)| *x == e).copied().collect();
                            models[r].removed.extend(killed);
                        }
                        Op::RemoveWithContext(e, from) => {
                            let killed: Vec<_> = models[from].seen.iter().filter(|(x, _)| *x == e).copied().collect();
                            models[r].removed.extend(killed);
                        }
                    }
                }
                Step::Merge { from, to } => {
                    let src = sets[from].clone();
                    sets[to].merge(&src);
                    let src = models[from].clone();
                    models[to].seen.extend(src.seen);
                    models[to].removed.extend(src.removed);
                }
            }
        }
        (sets, models)
    }

    proptest! {
        #![proptest_config(laws::config())]

        #[test]
        fn merge_is_a_join(steps in laws::steps(op(3), 3)) {
            let replicas = laws::run(Set8::new(), 3, &steps, apply);
            laws::assert_join(&replicas[0], &replicas[1], &replicas[2])?;
        }

        #[test]
        fn replicas_converge(steps in laws::steps(op(4), 4)) {
            let replicas = laws::run(Set8::new(), 4, &steps, apply);
            let joined = laws::assert_converge(replicas)?;
            prop_assert_eq!(joined.deferred_len(), 0, "every deferred remove found its adds");
        }

        /// Every replica, at every point we look, reads what the OR-Set
        /// specification says, including after a full merge.
        #[test]
        fn matches_the_or_set_specification(steps in laws::steps(op(3), 3)) {
            let (sets, models) = run_with_model(&steps, 3);
            for (set, model) in sets.iter().zip(&models) {
                prop_assert_eq!(elems(set), model.value());
            }
            let mut all = sets[0].clone();
            let mut spec = models[0].clone();
            for (set, model) in sets.iter().zip(&models).skip(1) {
                all.merge(set);
                spec.seen.extend(model.seen.iter().copied());
                spec.removed.extend(model.removed.iter().copied());
            }
            prop_assert_eq!(elems(&all), spec.value());
        }

        /// Remove at one replica, then merge a stale copy taken before the
        /// remove: the element stays removed.
        #[test]
        fn stale_merge_never_resurrects(steps in laws::steps(op(3), 3), r in 0usize..3, e in 0u8..5) {
            let mut replicas = laws::run(Set8::new(), 3, &steps, apply);
            let stale = replicas[r].clone();
            replicas[r].remove(&e);
            replicas[r].merge(&stale);
            prop_assert!(!replicas[r].contains(&e));
            let mut back = stale;
            back.merge(&replicas[r]);
            prop_assert!(!back.contains(&e), "the stale side learns the remove");
        }

        /// A remove with another replica's context, at a replica that may
        /// be behind it: once the context's owner is merged in, no add the
        /// context covers survives.
        #[test]
        fn deferred_removes_catch_up(steps in laws::steps(op(3), 3), r in 0usize..3, from in 0usize..3, e in 0u8..5) {
            let mut replicas = laws::run(Set8::new(), 3, &steps, apply);
            let ctx = replicas[from].read_context().clone();
            replicas[r].remove_with_context(e, &ctx);
            let src = replicas[from].clone();
            replicas[r].merge(&src);
            if let Some(left) = replicas[r].context_of(&e) {
                prop_assert!(left.dots().all(|d| !ctx.contains(&d)), "a covered add survived: {:?}", left);
            }
            // What still waits is only what the clock has not caught up with.
            let set = &replicas[r];
            if let Some(pending) = set.deferred.get(&e) {
                prop_assert!(pending.iter().all(|(a, n)| n > set.clock.get(a)), "{:?}", set);
            }
        }
    }
}
