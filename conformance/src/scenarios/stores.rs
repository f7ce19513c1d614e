//! Scenarios for the store's newer features: full-mesh membership, tombstone
//! collection over the network (mesh mode), subscriptions, and CRDT
//! prefixes.

use super::{LIMIT, all_delivered, counters, form, holds};
use crate::{Cluster, payload};
use bytes::Bytes;
use epidemic_core::crdt::PNCounter;
use epidemic_core::metadata::{Change, ChangeSource, FullPrefix};
use std::collections::BTreeSet;
use std::time::Duration;

/// How many nodes the mesh scenarios form (one more is added in
/// [`mesh_membership`]).
pub const MESH_NODES: usize = 5;

/// How long a scenario watches for something that must not happen: several
/// anti-entropy exchanges and GC ticks of the test configurations.
pub const QUIET: Duration = Duration::from_secs(3);

/// Waits until every node in `nodes` lists exactly `nodes` as its members
/// and has every other one as a neighbour (a link up to each).
pub fn mesh_agrees<C: Cluster>(c: &mut C, nodes: &[usize]) -> bool {
    let want: BTreeSet<usize> = nodes.iter().copied().collect();
    c.wait_until(LIMIT, |c| {
        nodes.iter().all(|&n| {
            let others: BTreeSet<usize> = want.iter().copied().filter(|&m| m != n).collect();
            c.members(n).into_iter().collect::<BTreeSet<_>>() == want
                && c.neighbors(n).into_iter().collect::<BTreeSet<_>>() == others
        })
    })
}

/// Starts `n` mesh nodes; each joins through the first; waits until every
/// node knows every member and reaches every other.
pub fn mesh_form<C: Cluster>(c: &mut C, n: usize) -> Vec<usize> {
    let nodes: Vec<usize> = (0..n).map(|_| c.add_node()).collect();
    for &i in &nodes[1..] {
        c.join(i, nodes[0]);
    }
    assert!(mesh_agrees(c, &nodes), "{n} mesh nodes did not all learn every member");
    nodes
}

/// Mesh mode: nodes form a mesh through one contact and each lists every
/// member; a node added at one member becomes a member everywhere (and
/// learns it belongs); a node removed at one member is dropped everywhere,
/// and its metadata writes are no longer accepted.
pub fn mesh_membership<C: Cluster>(c: &mut C) {
    let nodes = mesh_form(c, MESH_NODES);
    let ids: Vec<C::Id> = (0..2).map(|k| c.broadcast(nodes[k + 1], payload("mesh", k))).collect();
    assert!(all_delivered(c, &nodes, &ids), "a broadcast did not reach every member");

    // Added at one member: every member, the new one included, lists it.
    let new = c.add_node();
    assert!(c.add_member(nodes[2], new), "the member refused the addition");
    let mut all = nodes.clone();
    all.push(new);
    assert!(mesh_agrees(c, &all), "the added member did not spread to every node");
    let prefix = FullPrefix::new("conformance", "mesh");
    assert!(c.put(new, &prefix, "from-new", "hello"));
    assert!(
        holds(c, &all, &prefix, "from-new", &["hello"]),
        "the added member's write did not reach every node"
    );

    // Removed at one member: dropped everywhere.
    let gone = nodes[MESH_NODES - 1];
    assert!(c.remove_member(nodes[1], gone), "the member refused the removal");
    let rest: Vec<usize> = all.iter().copied().filter(|&n| n != gone).collect();
    assert!(mesh_agrees(c, &rest), "the removal did not spread to every node");

    // The removed node's writes are refused; the members' still spread.
    assert!(c.put(gone, &prefix, "from-removed", "stale"));
    assert!(c.put(nodes[0], &prefix, "after-removal", "fresh"));
    assert!(
        holds(c, &rest, &prefix, "after-removal", &["fresh"]),
        "a member's write did not reach every member"
    );
    let leaked = c.wait_until(QUIET, |c| {
        rest.iter().any(|&n| c.siblings(n, &prefix, "from-removed").is_some())
    });
    assert!(!leaked, "a member accepted a write from a removed node");
    c.stop();
}

/// Mesh mode: a deleted key's tombstone is collected on every node once
/// every member holds it, and not before: a member that is down holds
/// collection back. It comes back from its disk still holding the value
/// the tombstone deleted; that stale copy does not resurrect the key: the
/// tombstone reaches it, the tombstone is collected everywhere, and the key
/// stays absent. A new write to the key then spreads as any write does.
pub fn tombstone_gc<C: Cluster>(c: &mut C) {
    let nodes = mesh_form(c, MESH_NODES);
    let prefix = FullPrefix::new("conformance", "gc");
    assert!(c.put(nodes[1], &prefix, "doomed", "v1"));
    assert!(holds(c, &nodes, &prefix, "doomed", &["v1"]), "the write did not spread");

    let away = nodes[MESH_NODES - 1];
    c.crash(away);
    let live: Vec<usize> = nodes.iter().copied().filter(|&n| n != away).collect();
    assert!(c.delete(nodes[2], &prefix, "doomed"));
    assert!(
        holds(c, &live, &prefix, "doomed", &[]),
        "the tombstone did not reach every live node"
    );
    // A member is down: nothing may be collected.
    let early = c.wait_until(QUIET, |c| {
        live.iter()
            .any(|&n| c.metadata_stats(n).is_none_or(|s| s.collected > 0 || s.tombstones == 0))
    });
    assert!(!early, "a tombstone was collected while a member was down");

    // The member returns with the deleted value on its disk.
    c.restart_from_disk(away, nodes[0]);
    let collected = c.wait_until(LIMIT, |c| {
        nodes.iter().all(|&n| {
            c.siblings(n, &prefix, "doomed").is_none() && c.metadata_stats(n).is_some_and(|s| s.tombstones == 0)
        })
    });
    assert!(collected, "the tombstone was not collected on every node");
    let collectors = nodes
        .iter()
        .filter(|&&n| c.metadata_stats(n).is_some_and(|s| s.collected > 0))
        .count();
    assert!(collectors >= live.len(), "only {collectors} nodes counted a collection");
    let back = c.wait_until(QUIET, |c| {
        nodes.iter().any(|&n| c.siblings(n, &prefix, "doomed").is_some())
    });
    assert!(!back, "a collected key came back");

    // A new write to the collected key supersedes the tombstone everywhere.
    assert!(c.put(away, &prefix, "doomed", "v2"));
    assert!(
        holds(c, &nodes, &prefix, "doomed", &["v2"]),
        "a write after the collection did not spread"
    );
    c.stop();
}

/// Waits for the next changes of subscription `sub` (at least one).
fn next_changes<C: Cluster>(c: &mut C, sub: usize) -> Vec<Change<C::Identity>> {
    let mut got = Vec::new();
    c.wait_until(LIMIT, |c| {
        got.extend(c.changes(sub));
        !got.is_empty()
    });
    got
}

/// Asserts that `changes` is exactly one change of `key` under `prefix` to
/// `resolved`, arrived by `source`.
fn one_change<I: Ord + std::fmt::Debug>(
    changes: &[Change<I>],
    prefix: &FullPrefix,
    key: &str,
    resolved: Option<&str>,
    source: ChangeSource,
) {
    assert_eq!(changes.len(), 1, "one change per write: {changes:?}");
    let change = &changes[0];
    assert_eq!(&change.prefix, prefix);
    assert_eq!(change.key, Bytes::copy_from_slice(key.as_bytes()));
    assert_eq!(change.resolved, resolved.map(|v| Bytes::copy_from_slice(v.as_bytes())));
    assert_eq!(change.source, source, "the change of {key} came by the wrong way");
}

/// A subscriber sees one change per write under its prefix, with the key,
/// the resolved value and how it came (a broadcast for another node's
/// write, local for its own), a delete as no value, and nothing for
/// another prefix.
pub fn subscriptions<C: Cluster>(c: &mut C) {
    let n = c.scale();
    let nodes = form(c, n);
    let (a, b) = (nodes[0], nodes[n / 2]);
    let watched = FullPrefix::new("conformance", "watched");
    let other = FullPrefix::new("conformance", "unwatched");
    let sub = c.subscribe(a, &watched);

    assert!(c.put(b, &watched, "k1", "from-b"));
    let got = next_changes(c, sub);
    one_change(&got, &watched, "k1", Some("from-b"), ChangeSource::Broadcast);

    assert!(c.put(a, &watched, "k2", "from-a"));
    let got = next_changes(c, sub);
    one_change(&got, &watched, "k2", Some("from-a"), ChangeSource::Local);

    assert!(c.delete(b, &watched, "k1"));
    let got = next_changes(c, sub);
    one_change(&got, &watched, "k1", None, ChangeSource::Broadcast);

    // Another prefix: the subscriber's node takes the write, the
    // subscription hears nothing of it; the next change is the next write
    // under the watched prefix.
    assert!(c.put(b, &other, "k3", "elsewhere"));
    assert!(
        holds(c, &[a], &other, "k3", &["elsewhere"]),
        "the write did not reach the subscriber"
    );
    assert!(c.put(b, &watched, "k4", "last"));
    let got = next_changes(c, sub);
    one_change(&got, &watched, "k4", Some("last"), ChangeSource::Broadcast);
    c.stop();
}

/// How many increments each writer makes in [`crdt_counter`].
pub const INCREMENTS: u64 = 10;

/// A PN-counter prefix ([`counters`], named in every node's configuration):
/// three nodes increment one counter [`INCREMENTS`] times each, in turn and
/// without waiting, so their writes race; every node converges on the exact
/// sum (a last-writer-wins resolution would lose increments) with one
/// sibling.
pub fn crdt_counter<C: Cluster>(c: &mut C) {
    let n = c.scale();
    let nodes = form(c, n);
    let prefix = counters();
    let writers = [nodes[0], nodes[n / 2], nodes[n - 1]];
    for _ in 0..INCREMENTS {
        for &w in &writers {
            assert!(c.increment(w, &prefix, "hits"), "an increment was refused");
        }
    }
    let want = i128::from(INCREMENTS) * writers.len() as i128;
    let converged = c.wait_until(LIMIT, |c| {
        nodes.iter().all(|&x| {
            c.get_typed::<PNCounter<C::Identity>>(x, &prefix, "hits")
                .is_some_and(|v| v.value() == want)
                && c.siblings(x, &prefix, "hits").is_some_and(|s| s.len() == 1)
        })
    });
    let values: Vec<Option<i128>> = nodes
        .iter()
        .map(|&x| {
            c.get_typed::<PNCounter<C::Identity>>(x, &prefix, "hits")
                .map(|v| v.value())
        })
        .collect();
    assert!(
        converged,
        "the counter did not converge on {want} with one sibling: {values:?}"
    );
    c.stop();
}
