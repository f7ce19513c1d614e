//! Sequences of `OrSwot` and `OrMap` operations and merges across three
//! replicas. After the sequence: merge is idempotent and commutative on the
//! replicas' states, associative on the three, and a full pairwise merge
//! leaves every replica equal. Nothing may panic on the way, including with
//! contexts that no replica produced.
#![no_main]

use arbitrary::Arbitrary;
use epidemic_core::clock::VClock;
use epidemic_core::crdt::{Merge, OrMap, OrSwot};
use libfuzzer_sys::fuzz_target;

const REPLICAS: usize = 3;

type Set = OrSwot<u8, u8>;
type Map = OrMap<u8, u8, OrSwot<u8, u8>>;

#[derive(Debug, Clone, Default, PartialEq)]
struct Replica {
    set: Set,
    map: Map,
}

impl Replica {
    fn merge(&mut self, other: &Replica) {
        self.set.merge(&other.set);
        self.map.merge(&other.map);
    }
}

/// Where a remove's context comes from.
#[derive(Arbitrary, Debug)]
enum Ctx {
    /// A replica's read context (may be ahead of or behind the remover).
    ReadOf(u8),
    /// The context of one element (or key) at a replica.
    ContextOf(u8),
    /// Any clock at all: counters of actors that never act, or of a
    /// replica's future dots.
    Raw(Vec<(u8, u8)>),
}

#[derive(Arbitrary, Debug)]
enum Nested {
    Add(u8),
    Remove(u8),
    RemoveWithContext(u8, Ctx),
}

#[derive(Arbitrary, Debug)]
enum Op {
    Add { replica: u8, elem: u8 },
    Remove { replica: u8, elem: u8 },
    RemoveWithContext { replica: u8, elem: u8, ctx: Ctx },
    Merge { from: u8, to: u8 },
    MapUpdate { replica: u8, key: u8, op: Nested },
    MapRemove { replica: u8, key: u8 },
    MapRemoveWithContext { replica: u8, key: u8, ctx: Ctx },
}

fn idx(r: u8) -> usize {
    usize::from(r) % REPLICAS
}

/// Small domains so that operations collide.
fn small(x: u8) -> u8 {
    x % 6
}

/// The context `ctx` names, for element (or key) `elem`, in the set (`in_map`
/// false) or the map.
fn context(replicas: &[Replica], ctx: &Ctx, elem: u8, in_map: bool) -> VClock<u8> {
    match ctx {
        Ctx::ReadOf(r) if in_map => replicas[idx(*r)].map.read_context().clone(),
        Ctx::ReadOf(r) => replicas[idx(*r)].set.read_context().clone(),
        Ctx::ContextOf(r) if in_map => replicas[idx(*r)].map.context_of(&elem).unwrap_or_default(),
        Ctx::ContextOf(r) => replicas[idx(*r)].set.context_of(&elem).unwrap_or_default(),
        Ctx::Raw(pairs) => pairs.iter().map(|&(a, n)| (a % 4, u64::from(n))).collect(),
    }
}

fn joined(a: &Replica, b: &Replica) -> Replica {
    let mut out = a.clone();
    out.merge(b);
    out
}

fuzz_target!(|ops: Vec<Op>| {
    let mut replicas: Vec<Replica> = vec![Replica::default(); REPLICAS];
    for op in &ops {
        match op {
            Op::Add { replica, elem } => {
                let r = idx(*replica);
                replicas[r].set.add(r as u8, small(*elem));
            }
            Op::Remove { replica, elem } => {
                let r = idx(*replica);
                replicas[r].set.remove(&small(*elem));
                assert!(!replicas[r].set.contains(&small(*elem)));
            }
            Op::RemoveWithContext { replica, elem, ctx } => {
                let r = idx(*replica);
                let ctx = context(&replicas, ctx, small(*elem), false);
                replicas[r].set.remove_with_context(small(*elem), &ctx);
            }
            Op::Merge { from, to } => {
                let src = replicas[idx(*from)].clone();
                replicas[idx(*to)].merge(&src);
            }
            Op::MapUpdate { replica, key, op } => {
                let r = idx(*replica);
                let actor = r as u8;
                let key = small(*key);
                let ctx = match op {
                    Nested::RemoveWithContext(e, ctx) => context(&replicas, ctx, small(*e), false),
                    _ => VClock::new(),
                };
                replicas[r].map.update(actor, key, |s| match op {
                    Nested::Add(e) => {
                        s.add(actor, small(*e));
                    }
                    Nested::Remove(e) => {
                        s.remove(&small(*e));
                    }
                    Nested::RemoveWithContext(e, _) => {
                        s.remove_with_context(small(*e), &ctx);
                    }
                });
                assert!(replicas[r].map.contains_key(&key));
            }
            Op::MapRemove { replica, key } => {
                let r = idx(*replica);
                replicas[r].map.remove(&small(*key));
                assert!(!replicas[r].map.contains_key(&small(*key)));
            }
            Op::MapRemoveWithContext { replica, key, ctx } => {
                let r = idx(*replica);
                let ctx = context(&replicas, ctx, small(*key), true);
                replicas[r].map.remove_with_context(small(*key), &ctx);
            }
        }
        // Reading folds concurrent updates; it must not panic either.
        for r in &replicas {
            for (_, value) in r.map.iter() {
                let _ = value.len();
            }
        }
    }

    for r in &replicas {
        assert_eq!(&joined(r, r), r, "idempotent");
    }
    for i in 0..REPLICAS {
        for j in 0..REPLICAS {
            assert_eq!(
                joined(&replicas[i], &replicas[j]),
                joined(&replicas[j], &replicas[i]),
                "commutative"
            );
        }
    }
    let (a, b, c) = (&replicas[0], &replicas[1], &replicas[2]);
    assert_eq!(joined(&joined(a, b), c), joined(a, &joined(b, c)), "associative");

    for i in 0..REPLICAS {
        for j in 0..REPLICAS {
            if i != j {
                let src = replicas[j].clone();
                replicas[i].merge(&src);
            }
        }
    }
    for r in &replicas[1..] {
        assert_eq!(r, &replicas[0], "a full pairwise merge converges");
    }
    assert_eq!(
        joined(&replicas[0], &replicas[0]),
        replicas[0],
        "idempotent after convergence"
    );
});
