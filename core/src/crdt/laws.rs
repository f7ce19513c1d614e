//! Test machinery shared by the CRDT property tests: random operation
//! sequences over a few replicas with merges interleaved, and the checks for
//! the join laws and for convergence.

use super::Merge;
use core::fmt::Debug;
use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use std::vec;
use std::vec::Vec;

/// Deterministic (fixed seed, no persistence) and small enough that the
/// whole `crdt` suite runs in a few seconds in debug builds.
pub(crate) fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        rng_seed: RngSeed::Fixed(0x00c0_ffee_5eed),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// One step of a run: a local operation at a replica, or one replica
/// merging another's current state.
#[derive(Debug, Clone)]
pub(crate) enum Step<O> {
    Local(usize, O),
    Merge { from: usize, to: usize },
}

/// Up to 60 steps over `replicas` replicas, three local operations for each
/// merge on average.
pub(crate) fn steps<O: Debug + Clone>(
    op: impl Strategy<Value = O> + 'static,
    replicas: usize,
) -> impl Strategy<Value = Vec<Step<O>>> {
    let step = prop_oneof![
        3 => (0..replicas, op).prop_map(|(r, o)| Step::Local(r, o)),
        1 => (0..replicas, 0..replicas).prop_map(|(from, to)| Step::Merge { from, to }),
    ];
    proptest::collection::vec(step, 0..60)
}

/// Plays `steps` on `n` replicas that start as `init`. `apply` performs a
/// local operation at replica `r` (it sees every replica, so an operation
/// can borrow another replica's context).
pub(crate) fn run<S: Merge + Clone, O>(
    init: S,
    n: usize,
    steps: &[Step<O>],
    mut apply: impl FnMut(&mut [S], usize, &O),
) -> Vec<S> {
    let mut replicas = vec![init; n];
    for step in steps {
        match step {
            Step::Local(r, op) => apply(&mut replicas, *r, op),
            Step::Merge { from, to } => {
                let src = replicas[*from].clone();
                replicas[*to].merge(&src);
            }
        }
    }
    replicas
}

fn join<S: Merge + Clone>(a: &S, b: &S) -> S {
    let mut out = a.clone();
    out.merge(b);
    out
}

/// Commutativity, associativity, idempotence (and absorption, which follows
/// from them), by full state equality.
pub(crate) fn assert_join<S: Merge + Clone + PartialEq + Debug>(a: &S, b: &S, c: &S) -> Result<(), TestCaseError> {
    let ab = join(a, b);
    prop_assert_eq!(&ab, &join(b, a), "commutative");
    prop_assert_eq!(join(&ab, c), join(a, &join(b, c)), "associative");
    prop_assert_eq!(&join(a, a), a, "idempotent");
    prop_assert_eq!(&join(&ab, a), &ab, "absorbs a");
    prop_assert_eq!(&join(&ab, b), &ab, "absorbs b");
    Ok(())
}

/// Merges every replica into every other (all-to-all, in index order) and
/// checks that all end equal, and equal to two references obtained by other
/// merge orders: a right-to-left fold and a balanced tree. Returns the
/// converged state.
pub(crate) fn assert_converge<S: Merge + Clone + PartialEq + Debug>(mut replicas: Vec<S>) -> Result<S, TestCaseError> {
    let n = replicas.len();
    let mut by_fold = replicas[n - 1].clone();
    for r in replicas[..n - 1].iter().rev() {
        by_fold.merge(r);
    }
    let mut level = replicas.clone();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [a, b] => join(b, a),
                [a] => a.clone(),
                _ => unreachable!(),
            })
            .collect();
    }
    let by_tree = level.pop().expect("at least one replica");
    prop_assert_eq!(&by_tree, &by_fold, "tree and fold orders agree");

    for i in 0..n {
        for j in 0..n {
            if i != j {
                let src = replicas[j].clone();
                replicas[i].merge(&src);
            }
        }
    }
    for r in &replicas {
        prop_assert_eq!(r, &by_fold, "all-to-all agrees with the references");
    }
    Ok(by_fold)
}
