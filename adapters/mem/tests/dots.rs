//! One dot names one event: acknowledged writes to a key whose tombstone was
//! collected survive a restart, the expiry of the collected memory, and a
//! write made with a context read before the collection.
//!
//! Each test asserts that the acknowledged write is present in the final
//! state, or is a sibling of the write that never saw it. These are the
//! regression tests for the dot-reuse bug: before writers were actors
//! `(node, incarnation, epoch)`, each of them ended with the acknowledged
//! write gone from every node.

mod common;

use bytes::Bytes;
use epidemic_core::Duration;
use epidemic_core::metadata::{Context, FullPrefix, Read};
use epidemic_core::node::Config;
use epidemic_mem::{Bus, Id};

fn prefix() -> FullPrefix {
    FullPrefix::new("dots", "keys")
}

const KEY: &[u8] = b"k";

/// `n` settled mesh nodes.
fn mesh(n: usize, seed: u64, config: &Config) -> Bus {
    common::joined_via_0(n, seed, config)
}

fn read(bus: &Bus, at: Id) -> Option<Read<epidemic_core::metadata::Actor<Id>>> {
    bus.node(at).expect("live").get(&prefix(), KEY)
}

fn live(bus: &Bus, at: Id) -> Vec<Bytes> {
    let mut v: Vec<Bytes> = read(bus, at).map(|r| r.live().cloned().collect()).unwrap_or_default();
    v.sort();
    v
}

/// A put at `at`, acknowledged: the bus's disk is synchronous, so one step
/// later the record is on `at`'s disk (asserted).
fn put_acked(bus: &mut Bus, at: Id, value: &[u8], context: Option<&Context<Id>>) {
    let p = prefix();
    bus.with_node(at, |n, now| n.put(now, &p, KEY, Bytes::copy_from_slice(value), context))
        .expect("live")
        .expect("a small put");
    bus.run_for(Duration::from_millis(1));
    let on_disk = bus
        .disk(at)
        .expect("a slot")
        .iter()
        .any(|(p, k, _)| *p == prefix() && k.as_ref() == KEY);
    assert!(on_disk, "the put is durable at node {at}");
}

fn delete(bus: &mut Bus, at: Id) {
    let p = prefix();
    bus.with_node(at, |n, now| n.delete(now, &p, KEY, None))
        .expect("live")
        .expect("a delete");
}

/// Runs until no live node holds the key: it was collected everywhere.
fn run_until_collected(bus: &mut Bus, nodes: &[Id]) {
    for _ in 0..600 {
        if nodes.iter().all(|&i| read(bus, i).is_none()) {
            return;
        }
        bus.run_for(Duration::from_millis(500));
    }
    panic!("the tombstone was not collected within 5 minutes");
}

/// Runs until every live node holds the same store (5 minutes at most).
fn run_until_converged(bus: &mut Bus) {
    for _ in 0..600 {
        let hashes: Vec<_> = bus.alive().map(|i| bus.node(i).unwrap().metadata_hash()).collect();
        if hashes.windows(2).all(|w| w[0] == w[1]) {
            return;
        }
        bus.run_for(Duration::from_millis(500));
    }
    panic!("no convergence within 5 minutes");
}

#[test]
fn a_write_after_collection_and_a_restart_from_disk_is_never_lost() {
    let mut bus = mesh(3, 11, &Config::mesh(3));
    put_acked(&mut bus, 1, b"v1", None);
    bus.run_for(Duration::from_secs(1));
    delete(&mut bus, 1);
    run_until_collected(&mut bus, &[0, 1, 2]);

    bus.crash(1);
    bus.run_for(Duration::from_secs(1));
    bus.restart_from_disk(1, [0]);
    bus.run_for(Duration::from_secs(5));
    // Node 1 is cut off while it writes, so the others cannot have seen it.
    bus.partition(|id| u32::from(id == 1));
    put_acked(&mut bus, 1, b"a", None);
    assert_eq!(live(&bus, 1), [Bytes::from_static(b"a")]);
    // Node 2 still reads the key as absent and writes blind.
    assert!(read(&bus, 2).is_none());
    put_acked(&mut bus, 2, b"b", None);
    bus.heal();
    run_until_converged(&mut bus);
    for id in 0..3 {
        assert_eq!(
            live(&bus, id),
            [Bytes::from_static(b"a"), Bytes::from_static(b"b")],
            "node {id}: the acknowledged \"a\" is a sibling of \"b\", which never saw it"
        );
    }
}

#[test]
fn a_write_after_the_collected_memory_expired_survives_a_member_that_kept_the_tombstone() {
    // A horizon, so the two reachable members collect without the third.
    let mut config = Config::mesh(3);
    config.metadata.tombstone_retention = Some(Duration::from_secs(60));
    let mut bus = mesh(3, 12, &config);
    put_acked(&mut bus, 1, b"v1", None);
    bus.run_for(Duration::from_secs(1));
    delete(&mut bus, 1);
    bus.run_for(Duration::from_secs(1));
    assert!(
        read(&bus, 2).is_some_and(|r| r.is_deleted()),
        "node 2 holds the tombstone"
    );
    // Node 2 goes away holding the tombstone on its disk.
    bus.crash(2);
    run_until_collected(&mut bus, &[0, 1]);
    // Past the collected memory's retention (600 s by default).
    bus.run_for(config.metadata.collected_retention + Duration::from_secs(60));
    for id in [0, 1] {
        assert_eq!(
            bus.node(id).unwrap().stats().metadata.collected_memory,
            0,
            "node {id} forgot"
        );
    }
    put_acked(&mut bus, 1, b"a", None);
    bus.restart_from_disk(2, [0]);
    assert!(
        read(&bus, 2).is_some_and(|r| r.is_deleted()),
        "node 2 came back with it"
    );
    run_until_converged(&mut bus);
    for id in 0..3 {
        assert_eq!(
            live(&bus, id),
            [Bytes::from_static(b"a")],
            "node {id}: the old tombstone does not cover the new write"
        );
    }
}

#[test]
fn a_context_read_before_the_collection_does_not_cover_a_later_write() {
    let mut bus = mesh(3, 13, &Config::mesh(3));
    put_acked(&mut bus, 1, b"v1", None);
    bus.run_for(Duration::from_secs(1));
    let stale = read(&bus, 0).expect("v1 arrived").into_context();
    delete(&mut bus, 1);
    run_until_collected(&mut bus, &[0, 1, 2]);
    let retention = bus.node(0).unwrap().metadata_config().collected_retention;
    bus.run_for(retention + Duration::from_secs(60));
    put_acked(&mut bus, 1, b"a", None);
    bus.run_for(Duration::from_secs(1));
    // A client that read v1 before the delete writes with that context.
    put_acked(&mut bus, 0, b"c", Some(&stale));
    run_until_converged(&mut bus);
    for id in 0..3 {
        assert_eq!(
            live(&bus, id),
            [Bytes::from_static(b"a"), Bytes::from_static(b"c")],
            "node {id}: \"c\" saw v1, not \"a\""
        );
    }
}
