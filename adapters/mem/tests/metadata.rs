//! The replicated metadata store on the bus: convergence, siblings, repair
//! after a crash, partitions, CRDT values and tombstone collection (which
//! needs every member). The store's API at one node or two is in
//! `store.rs`. Every test is seeded and asserts its outcome; figures are
//! printed, not asserted.

mod common;

use bytes::Bytes;
use epidemic_core::Duration;
use epidemic_core::crdt::OrSwot;
use epidemic_core::metadata::FullPrefix;
use epidemic_core::node::Config;
use epidemic_core::node::typed::Typed;
use epidemic_mem::{Bus, Id};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// `n` mesh nodes that all joined through node 0 and settled.
fn mesh(n: usize, seed: u64, config: &Config) -> Bus {
    common::joined_via_0(n, seed, config)
}

fn prefix() -> FullPrefix {
    FullPrefix::new("test", "keys")
}

fn put(bus: &mut Bus, at: Id, key: &[u8], value: &[u8]) {
    let p = prefix();
    bus.with_node(at, |n, now| n.put(now, &p, key, Bytes::copy_from_slice(value), None))
        .expect("live node")
        .expect("small put");
}

/// Whether every live node holds the same objects.
fn converged(bus: &Bus) -> bool {
    let mut hashes = bus.alive().map(|i| bus.node(i).unwrap().metadata_hash());
    let first = hashes.next();
    hashes.all(|h| Some(h) == first)
}

/// Runs in steps of `step` until [`converged`]; the virtual time it took, or
/// `None` if `limit` passed first.
fn run_until_converged(bus: &mut Bus, step: Duration, limit: Duration) -> Option<Duration> {
    let start = bus.now();
    while bus.now() - start <= limit {
        if converged(bus) {
            return Some(bus.now() - start);
        }
        bus.run_for(step);
    }
    None
}

/// Totals over live nodes: (exchanges completed, anti-entropy bytes sent,
/// objects repaired, metadata broadcasts).
fn ae_totals(bus: &Bus) -> (u64, u64, u64, u64) {
    bus.alive().fold((0, 0, 0, 0), |(x, b, r, c), i| {
        let s = bus.node(i).unwrap().stats();
        (
            x + s.metadata.exchanges_completed,
            b + s.sent.anti_entropy.bytes,
            r + s.metadata.repaired,
            c + s.metadata.broadcasts,
        )
    })
}

#[test]
fn fifty_nodes_converge_on_a_thousand_keys() {
    let n = 50;
    let mut bus = mesh(n, 11, &Config::mesh(n));
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(12);
    let start = bus.now();
    for k in 0..1000u32 {
        let at = rng.random_range(0..n as Id);
        put(
            &mut bus,
            at,
            &k.to_be_bytes(),
            format!("value-{k}-from-{at}").as_bytes(),
        );
        bus.run_for(Duration::from_millis(5));
    }
    let writes_done = bus.now() - start;
    let took = run_until_converged(&mut bus, Duration::from_millis(50), Duration::from_secs(60))
        .expect("50 nodes converge within 60 s of the last write");
    let (exchanges, ae_bytes, repaired, broadcasts) = ae_totals(&bus);
    println!(
        "convergence: 50 nodes, 1000 keys written over {writes_done:?}; converged {took:?} after the last write; \
         broadcasts {broadcasts}, exchanges {exchanges}, anti-entropy bytes {ae_bytes}, repaired {repaired}"
    );
    let p = prefix();
    let reference = bus.node(0).unwrap();
    assert_eq!(reference.iter(&p).count(), 1000);
    for id in bus.alive() {
        let node = bus.node(id).unwrap();
        assert_eq!(node.prefix_hash(&p), reference.prefix_hash(&p));
        for k in 0..1000u32 {
            let key = k.to_be_bytes();
            let v = node.get_resolved(&p, &key).expect("every key everywhere");
            assert!(v.starts_with(format!("value-{k}-").as_bytes()));
            assert_eq!(Some(v), reference.get_resolved(&p, &key));
        }
    }
}

#[test]
fn concurrent_writes_at_three_nodes_are_the_same_siblings_everywhere() {
    let n = 10;
    let mut bus = mesh(n, 21, &Config::mesh(n));
    // Three writes at the same instant: none has seen the others.
    for at in [1, 2, 3] {
        put(&mut bus, at, b"colour", format!("from-{at}").as_bytes());
    }
    run_until_converged(&mut bus, Duration::from_millis(50), Duration::from_secs(30)).expect("converges");
    let p = prefix();
    let mut expected: Option<Vec<Bytes>> = None;
    for id in bus.alive() {
        let read = bus.node(id).unwrap().get(&p, b"colour").unwrap();
        assert_eq!(read.siblings(), 3, "node {id}");
        let mut values: Vec<Bytes> = read.live().cloned().collect();
        values.sort();
        assert_eq!(values, [&b"from-1"[..], b"from-2", b"from-3"].map(Bytes::from_static));
        match &expected {
            None => expected = Some(values),
            Some(e) => assert_eq!(e, &values),
        }
        // All three wrote at the same instant: LWW breaks the tie on the
        // bytes, identically everywhere.
        assert_eq!(read.lww().map(|b| &b[..]), Some(&b"from-3"[..]));
        let joined = read.resolve(|vs| {
            let mut vs = vs.to_vec();
            vs.sort();
            Bytes::from(vs.concat())
        });
        assert_eq!(joined.as_deref(), Some(&b"from-1from-2from-3"[..]));
    }
    // A reader resolves and writes back with the merged context: one sibling
    // everywhere.
    let (resolved, context) = {
        let read = bus.node(7).unwrap().get(&p, b"colour").unwrap();
        (read.lww().cloned().unwrap(), read.into_context())
    };
    bus.with_node(7, |node, now| {
        node.put(now, &p, b"colour", resolved.clone(), Some(&context))
    })
    .unwrap()
    .unwrap();
    run_until_converged(&mut bus, Duration::from_millis(50), Duration::from_secs(30)).expect("converges");
    for id in bus.alive() {
        let read = bus.node(id).unwrap().get(&p, b"colour").unwrap();
        assert_eq!(read.siblings(), 1, "node {id} collapsed the siblings");
        assert_eq!(read.lww(), Some(&resolved));
    }
}

#[test]
fn a_crashed_node_restarts_from_disk_and_catches_up_by_anti_entropy() {
    let n = 10;
    let crashed: Id = 7;
    let mut bus = mesh(n, 31, &Config::mesh(n));
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(32);
    let mut missed = 0;
    for k in 0..500u32 {
        if k == 200 {
            bus.crash(crashed);
        }
        let at = loop {
            let at = rng.random_range(0..n as Id);
            if bus.is_alive(at) {
                break at;
            }
        };
        missed += u64::from(!bus.is_alive(crashed));
        put(&mut bus, at, &k.to_be_bytes(), format!("v{k}").as_bytes());
        bus.run_for(Duration::from_millis(20));
    }
    bus.run_for(Duration::from_secs(5));
    let on_disk = bus.disk(crashed).unwrap().len();
    assert!(on_disk >= 190, "it persisted what it had before the crash ({on_disk})");
    bus.restart_from_disk(crashed, [0]);
    assert_eq!(
        bus.node(crashed).unwrap().stats().metadata.keys,
        on_disk,
        "restored from disk"
    );
    let (x0, b0, _, broadcasts) = ae_totals(&bus);
    let took = run_until_converged(&mut bus, Duration::from_millis(100), Duration::from_secs(120))
        .expect("the restarted node converges");
    let (x1, b1, _, broadcasts_after) = ae_totals(&bus);
    let node = bus.node(crashed).unwrap();
    let s = node.stats();
    println!(
        "repair after a crash: 10 nodes, 500 writes, {missed} of them while node {crashed} was down; it restarted \
         from {on_disk} persisted objects and converged {took:?} later, through {} exchanges and {} anti-entropy \
         bytes; it repaired {} objects",
        x1 - x0,
        b1 - b0,
        s.metadata.repaired,
    );
    assert!(x1 > x0 && b1 > b0, "anti-entropy ran");
    assert!(s.metadata.repaired >= missed, "every missed write came by anti-entropy");
    assert_eq!(s.metadata.broadcast_merges, 0, "none came by broadcast");
    assert_eq!(broadcasts_after, broadcasts, "repairs are never rebroadcast");
    assert_eq!(node.iter(&prefix()).count(), 500);
}

#[test]
fn a_fifty_fifty_partition_with_writes_on_both_sides_converges_after_healing() {
    let n = 50;
    let mut bus = mesh(n, 41, &Config::mesh(n));
    let half = (n / 2) as Id;
    bus.partition(|id| u32::from(id >= half));
    bus.run_for(Duration::from_secs(5));
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(42);
    for k in 0..400u32 {
        // Keys 0..100 are written once on each side: siblings after healing.
        let key = if k < 200 { k / 2 } else { 1000 + k };
        let side = k % 2;
        let at = rng.random_range(0..half) + side * half;
        put(&mut bus, at, &key.to_be_bytes(), format!("side-{side}-{k}").as_bytes());
        bus.run_for(Duration::from_millis(10));
    }
    bus.run_for(Duration::from_secs(10));
    assert!(!converged(&bus), "the sides differ while partitioned");
    let (x0, b0, ..) = ae_totals(&bus);
    bus.heal();
    let took = run_until_converged(&mut bus, Duration::from_millis(100), Duration::from_secs(300))
        .expect("converges after healing");
    let (x1, b1, ..) = ae_totals(&bus);
    println!(
        "partition: 50 nodes split 25/25, 400 writes; converged {took:?} after healing with {} exchanges and {} \
         anti-entropy bytes",
        x1 - x0,
        b1 - b0
    );
    let p = prefix();
    for id in bus.alive() {
        let node = bus.node(id).unwrap();
        assert_eq!(node.iter(&p).count(), 300);
        let read = node.get(&p, &0u32.to_be_bytes()).unwrap();
        assert_eq!(read.siblings(), 2, "a key written on both sides keeps both writes");
    }
}

#[test]
fn orswot_values_converge_without_siblings() {
    type Set = OrSwot<u32, u32>;
    let n = 10;
    let mut bus = mesh(n, 51, &Config::mesh(n));
    let sets: Typed<Set> = Typed::new(FullPrefix::new("crdt", "sets"));
    for id in 0..n as Id {
        bus.with_node(id, |node, now| sets.register(node, now));
    }
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(52);
    let mut concurrent = 0;
    for _round in 0..60 {
        // Three nodes update the same few keys at the same instant.
        for _ in 0..3 {
            let at = rng.random_range(0..n as Id);
            let key = [rng.random_range(0..5u8)];
            let elem = rng.random_range(0..8u32);
            let add = rng.random_bool(0.7);
            bus.with_node(at, |node, now| {
                sets.update(node, now, &key, |s| {
                    if add {
                        s.add(at, elem);
                    } else {
                        s.remove(&elem);
                    }
                })
            })
            .unwrap()
            .unwrap();
        }
        bus.run_for(Duration::from_millis(30));
        concurrent += bus
            .alive()
            .map(|i| {
                (0..5u8)
                    .filter(|k| {
                        bus.node(i)
                            .unwrap()
                            .get(sets.prefix(), &[*k])
                            .is_some_and(|r| r.siblings() > 1)
                    })
                    .count()
            })
            .sum::<usize>();
    }
    run_until_converged(&mut bus, Duration::from_millis(100), Duration::from_secs(60)).expect("converges");
    let resolved: u64 = bus
        .alive()
        .map(|i| bus.node(i).unwrap().stats().metadata.resolved)
        .sum();
    println!("crdt: siblings seen {concurrent} times during the run; {resolved} resolutions written");
    assert!(concurrent > 0, "the updates were concurrent");
    for k in 0..5u8 {
        let reference = sets.get_merged(bus.node(0).unwrap(), &[k]).unwrap();
        for id in bus.alive() {
            let node = bus.node(id).unwrap();
            if let Some(read) = node.get(sets.prefix(), &[k]) {
                assert_eq!(read.siblings(), 1, "node {id} key {k}");
            }
            assert_eq!(sets.get_merged(node, &[k]).unwrap(), reference, "node {id} key {k}");
        }
    }
}

/// Whether any of `nodes` reads `key` as live.
fn live_anywhere(bus: &Bus, nodes: impl IntoIterator<Item = Id>, key: &[u8]) -> bool {
    let p = prefix();
    nodes
        .into_iter()
        .any(|i| bus.node(i).unwrap().get(&p, key).is_some_and(|r| !r.is_deleted()))
}

fn held_anywhere(bus: &Bus, nodes: impl IntoIterator<Item = Id>, key: &[u8]) -> bool {
    let p = prefix();
    nodes.into_iter().any(|i| bus.node(i).unwrap().get(&p, key).is_some())
}

#[test]
fn tombstones_wait_for_a_partitioned_member_then_go_everywhere() {
    let n = 10;
    let away: Id = 9;
    let members: Vec<Id> = (0..n as Id).collect();
    let others: Vec<Id> = (0..away).collect();
    let mut bus = mesh(n, 61, &Config::mesh(n));
    put(&mut bus, 3, b"doomed", b"old value");
    put(&mut bus, 4, b"kept", b"stays");
    run_until_converged(&mut bus, Duration::from_millis(50), Duration::from_secs(30)).expect("converges");
    bus.partition(|id| u32::from(id == away));
    bus.run_for(Duration::from_secs(5));
    let p = prefix();
    bus.with_node(0, |node, now| node.delete(now, &p, b"doomed", None))
        .unwrap()
        .unwrap();
    // Long enough for many GC ticks: the tombstone must wait for node 9.
    for _ in 0..120 {
        bus.run_for(Duration::from_millis(500));
        assert!(
            !live_anywhere(&bus, others.clone(), b"doomed"),
            "deleted on the majority side"
        );
    }
    for &id in &others {
        let node = bus.node(id).unwrap();
        assert_eq!(
            node.stats().metadata.collected,
            0,
            "node {id} collected while a member lacks the tombstone"
        );
        assert!(node.get(&p, b"doomed").unwrap().is_deleted());
    }
    assert!(
        live_anywhere(&bus, [away], b"doomed"),
        "the partitioned member still has the old value"
    );
    bus.heal();
    let mut t = 0;
    while held_anywhere(&bus, members.clone(), b"doomed") {
        assert!(t < 600, "collected within 5 minutes of healing");
        bus.run_for(Duration::from_millis(500));
        t += 1;
        assert!(
            !live_anywhere(&bus, others.clone(), b"doomed"),
            "never reappears on the members"
        );
    }
    println!(
        "gc (a): the tombstone was collected everywhere {}ms after healing",
        t * 500
    );
    bus.run_for(Duration::from_secs(60));
    assert!(!held_anywhere(&bus, members.clone(), b"doomed"), "and stays gone");
    for &id in &members {
        let node = bus.node(id).unwrap();
        assert_eq!(node.stats().metadata.collected, 1, "node {id}");
        assert_eq!(node.stats().metadata.gc_pending, 0, "node {id}");
        assert_eq!(node.get_resolved(&p, b"kept").as_deref(), Some(&b"stays"[..]));
    }
    // Node 0, the smallest member, is the collector; every other member
    // acknowledged the tombstone to it.
    for &id in &members[1..] {
        let acks = bus.node(id).unwrap().stats().metadata.gc_acks_sent;
        assert!(acks >= 1, "node {id} acknowledged ({acks})");
    }
    let acks: u64 = members
        .iter()
        .map(|&i| bus.node(i).unwrap().stats().metadata.gc_acks_sent)
        .sum();
    assert!(acks >= 2, "the non-collectors acknowledged ({acks})");
    let _ = format!("{:?}", bus.node(0).unwrap().metadata_config());
}

#[test]
fn a_member_removed_while_away_cannot_resurrect_a_collected_key() {
    let n = 10;
    let away: Id = 9;
    let others: Vec<Id> = (0..away).collect();
    // The members forget what they collected after a second, so only the
    // membership rule stands between the stale copy and the store.
    let mut config = Config::mesh(n);
    config.metadata.collected_retention = Duration::from_secs(1);
    let mut bus = mesh(n, 71, &config);
    put(&mut bus, 3, b"doomed", b"old value");
    run_until_converged(&mut bus, Duration::from_millis(50), Duration::from_secs(30)).expect("converges");
    bus.partition(|id| u32::from(id == away));
    bus.run_for(Duration::from_secs(5));
    // The operator gives up on node 9 and removes it from the cluster.
    bus.with_node(0, |node, now| node.remove_member(now, away));
    bus.run_for(Duration::from_secs(10));
    for &id in &others {
        assert!(!bus.node(id).unwrap().members().contains(&away));
    }
    let p = prefix();
    bus.with_node(0, |node, now| node.delete(now, &p, b"doomed", None))
        .unwrap()
        .unwrap();
    let mut t = 0;
    while held_anywhere(&bus, others.clone(), b"doomed") {
        assert!(t < 240, "collected without the removed node within 2 minutes");
        bus.run_for(Duration::from_millis(500));
        t += 1;
    }
    println!("gc (b): collected on the 9 members {}ms after the delete", t * 500);
    assert!(
        live_anywhere(&bus, [away], b"doomed"),
        "the removed node still has its stale copy"
    );
    bus.run_for(Duration::from_secs(15));
    for &id in &others {
        assert_eq!(
            bus.node(id).unwrap().stats().metadata.collected_memory,
            0,
            "node {id} forgot"
        );
    }
    bus.heal();
    for _ in 0..240 {
        bus.run_for(Duration::from_millis(500));
        assert!(
            !held_anywhere(&bus, others.clone(), b"doomed"),
            "the stale copy is refused"
        );
    }
    let refused: u64 = others
        .iter()
        .map(|&i| bus.node(i).unwrap().stats().metadata.refused_non_member)
        .sum();
    println!("gc (b): the members refused {refused} metadata frames from the removed node");
    assert!(refused > 0, "the removed node tried, and was refused");
}
