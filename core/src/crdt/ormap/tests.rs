//! Tests of [`OrMap`](super::OrMap).

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
