//! The metadata store's API driven through nodes on the bus: reads and
//! writes at one node, limits refused with typed errors, restoring from the
//! disk, an exchange that repairs both ways, and batches split to fit a
//! frame. The cluster-scale metadata scenarios are in `metadata.rs`.

mod common;

use bytes::Bytes;
use epidemic_core::clock::VClock;
use epidemic_core::metadata::FullPrefix;
use epidemic_core::node::{Config, Event, Node};
use epidemic_core::{Duration, Instant, PutError, RestoreError};
use epidemic_mem::{Bus, BusConfig};

fn p() -> FullPrefix {
    FullPrefix::new("p", "s")
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// One node, alone on a bus, that does not wait for a disk.
fn solo() -> Bus {
    let mut c = Config::default();
    c.metadata.durable = false;
    let mut bus = Bus::new(BusConfig::seeded(1));
    bus.add_nodes(1, &c);
    bus
}

/// `n` mesh nodes joined through node 0 and settled, each config edited.
fn mesh(n: usize, seed: u64, edit: impl Fn(&mut Config)) -> Bus {
    let mut c = Config::mesh(n);
    edit(&mut c);
    common::joined_via_0(n, seed, &c)
}

#[test]
fn put_get_delete_iter_fold_and_prefix_hash() {
    let mut bus = solo();
    bus.run_for(Duration::from_millis(5));
    bus.with_node(0, |node, now| {
        assert_eq!(now, Instant::from_millis(5));
        for k in ["b", "a", "c"] {
            node.put(now, &p(), k.as_bytes(), b(k), None).unwrap();
        }
        node.put(now, &FullPrefix::new("other", ""), b"a", b("x"), None)
            .unwrap();
        let keys: Vec<&Bytes> = node.iter(&p()).map(|(k, _)| k).collect();
        assert_eq!(keys, ["a", "b", "c"].map(b).iter().collect::<Vec<_>>(), "key order");
        assert_eq!(node.fold(&p(), 0, |n, _, r| n + r.siblings()), 3);
        let read = node.get(&p(), b"a").unwrap();
        assert_eq!(read.siblings(), 1);
        assert_eq!(read.lww(), Some(&b("a")));
        assert_eq!(read.values()[0].timestamp, 5_000);
        let before = node.prefix_hash(&p()).unwrap();
        // Overwrite (no context: clobbers what is here), then delete.
        node.put(now, &p(), b"a", b("a2"), None).unwrap();
        assert_eq!(node.get(&p(), b"a").unwrap().siblings(), 1);
        assert_eq!(node.get_resolved(&p(), b"a"), Some(b("a2")));
        assert!(
            node.get(&p(), b"a").unwrap().values()[0].timestamp > 5_000,
            "a write sorts after what it overwrote"
        );
        assert_ne!(node.prefix_hash(&p()), Some(before));
        node.delete(now, &p(), b"a", None).unwrap();
        assert!(node.get(&p(), b"a").unwrap().is_deleted());
        assert_eq!(node.get_resolved(&p(), b"a"), None);
        assert_eq!(node.iter(&p()).count(), 2, "deleted keys are not listed");
        assert_eq!(node.stats().metadata.tombstones, 1);
        assert!(node.get(&p(), b"zzz").is_none());
        assert!(node.prefix_hash(&FullPrefix::new("none", "")).is_none());
        // A blind write with an empty context is concurrent with what is here.
        node.put(now, &p(), b"b", b("b2"), Some(&VClock::new())).unwrap();
        assert_eq!(node.get(&p(), b"b").unwrap().siblings(), 2);
    })
    .expect("live node");
}

#[test]
fn limits_are_refused_with_typed_errors() {
    let mut bus = solo();
    bus.with_node(0, |node, now| {
        let long = vec![0u8; 300];
        assert_eq!(
            node.put(now, &FullPrefix::new(&long, ""), b"k", b("v"), None),
            Err(PutError::PrefixTooLong { len: 300, max: 255 })
        );
        assert!(matches!(
            node.put(now, &p(), &[0u8; 2000], b("v"), None),
            Err(PutError::KeyTooLong { .. })
        ));
        let big = Bytes::from(vec![0u8; 64 * 1024 + 1]);
        assert_eq!(
            node.put(now, &p(), b"k", big, None),
            Err(PutError::ValueTooLarge {
                len: 64 * 1024 + 1,
                max: 64 * 1024
            })
        );
        // Five concurrent siblings of 60 KiB exceed the object limit.
        let v = Bytes::from(vec![7u8; 60 * 1024]);
        for _ in 0..4 {
            node.put(now, &p(), b"k", v.clone(), Some(&VClock::new())).unwrap();
        }
        assert!(matches!(
            node.put(now, &p(), b"k", v, Some(&VClock::new())),
            Err(PutError::ObjectTooLarge { .. })
        ));
        assert_eq!(
            node.get(&p(), b"k").unwrap().siblings(),
            4,
            "a refused put changes nothing"
        );
        assert_eq!(node.stats().metadata.puts, 4);
    })
    .expect("live node");
}

#[test]
fn persisted_records_restore_the_store() {
    let mut bus = mesh(2, 81, |_| {});
    for k in 0..20u32 {
        bus.with_node(k % 2, |n, now| n.put(now, &p(), &k.to_be_bytes(), b("v"), None))
            .unwrap()
            .unwrap();
    }
    // The delete at node 0 follows node 1's put of key 3 once it arrived.
    bus.run_for(Duration::from_secs(1));
    bus.with_node(0, |n, now| n.delete(now, &p(), &3u32.to_be_bytes(), None))
        .unwrap()
        .unwrap();
    bus.run_for(Duration::from_secs(2));
    let mut fresh: Node<u32> = Node::new(0, Config::mesh(2));
    for (prefix, key, object) in bus.disk(0).unwrap().iter() {
        fresh.restore(Instant::ZERO, prefix, key, object).unwrap();
    }
    assert_eq!(fresh.metadata_hash(), bus.node(0).unwrap().metadata_hash());
    assert_eq!(fresh.iter(&p()).count(), 19);
    assert!(fresh.poll_event().is_none(), "restoring emits nothing");
    assert!(matches!(
        fresh.restore(Instant::ZERO, &p(), b"k", b"garbage"),
        Err(RestoreError::Object(_))
    ));
    assert!(matches!(
        fresh.restore(Instant::ZERO, &p(), &[0; 2000], b""),
        Err(RestoreError::Key(PutError::KeyTooLong { .. }))
    ));
}

#[test]
fn an_exchange_repairs_both_ways_without_broadcasting() {
    let mut bus = mesh(2, 82, |_| {});
    // Seed the stores behind the broadcast's back: each holds objects the
    // other lacks, and one key differs.
    let mut source: Node<u32> = Node::new(9, Config::default());
    let mut put = |k: u32, v: &str| {
        source.put(Instant::ZERO, &p(), &k.to_be_bytes(), b(v), None).unwrap();
        let mut last = None;
        while let Some(e) = source.poll_event() {
            if let Event::Metadata(epidemic_core::metadata::Event::Persist(r)) = e {
                source.persisted(Instant::ZERO, r.id);
                last = r.object;
            }
        }
        last.unwrap()
    };
    let objects: Vec<(u32, Bytes)> = (0..50).map(|k| (k, put(k, "v"))).collect();
    for (k, o) in &objects {
        let node = if k % 2 == 0 || *k == 7 { 0 } else { 1 };
        bus.with_node(node, |n, now| n.restore(now, &p(), &k.to_be_bytes(), o))
            .unwrap()
            .unwrap();
    }
    let newer = put(7, "newer");
    bus.with_node(1, |n, now| n.restore(now, &p(), &7u32.to_be_bytes(), &newer))
        .unwrap()
        .unwrap();
    let state = |bus: &Bus, i| {
        let n = bus.node(i).unwrap();
        (n.stats(), n.metadata_hash())
    };
    assert_ne!(state(&bus, 0).1, state(&bus, 1).1);
    bus.run_for(Duration::from_secs(25));
    let ((s0, h0), (s1, h1)) = (state(&bus, 0), state(&bus, 1));
    assert_eq!(h0, h1);
    assert_eq!(
        bus.node(0).unwrap().get_resolved(&p(), &7u32.to_be_bytes()),
        Some(b("newer"))
    );
    assert!(s0.metadata.exchanges_completed + s1.metadata.exchanges_completed >= 1);
    // Node 0 lacked 24 odd keys and had an older key 7; node 1 lacked 25.
    assert_eq!((s0.metadata.repaired, s1.metadata.repaired), (25, 25));
    assert_eq!(
        s0.metadata.broadcasts + s1.metadata.broadcasts,
        0,
        "repairs are not broadcast"
    );
    assert_eq!(s0.metadata_plumtree.sent.gossip + s1.metadata_plumtree.sent.gossip, 0);
}

#[test]
fn identifier_batches_are_cut_to_fit_a_frame() {
    // A small frame, long keys and a lazy peer: twenty 900-byte ids cannot
    // go in one 8 KiB IHAVE.
    let mut bus = mesh(3, 83, |c| {
        c.max_frame = 8 * 1024;
        c.metadata.max_concurrent_exchanges = 0;
        c.metadata.plumtree.initial_eager_fanout = Some(1);
        c.metadata.plumtree.initial_lazy_fanout = Some(1);
    });
    for k in 0..20u8 {
        let mut key = vec![k; 900];
        key[0] = k;
        bus.with_node(0, |n, now| n.put(now, &p(), &key, b("v"), None))
            .unwrap()
            .unwrap();
    }
    bus.run_for(Duration::from_secs(5));
    let nodes: Vec<&Node<u32>> = bus.alive().map(|i| bus.node(i).unwrap()).collect();
    for n in &nodes {
        assert_eq!(n.iter(&p()).count(), 20);
        assert_eq!(n.stats().encode_failures, 0);
    }
    let mut cut = false;
    for n in &nodes {
        let s = n.stats();
        let c = s.metadata_plumtree.sent;
        let engine = c.gossip + c.ihave + c.graft + c.attach + c.prune + c.ignored_ihave;
        // The engine cut its batches to fit a frame: the node sent each
        // message the engine made as one frame, none split after the fact.
        assert_eq!(s.sent.metadata.messages, engine);
        // At most 8 ids of 900 bytes fit 8 KiB, far below the 128 a batch
        // may count.
        let announced = s.metadata_plumtree.announcements_sent + s.metadata_plumtree.announcements_resent;
        if announced > 0 {
            assert!(announced <= 8 * c.ihave, "{announced} ids in {} IHAVEs", c.ihave);
            cut |= c.ihave > 1;
        }
    }
    assert!(cut, "some node announced the twenty ids in several IHAVEs");
}

/// A write or broadcast whose frame would exceed `max_frame` is refused at
/// the call with a typed error; before, both returned `Ok` and were lost
/// (only `encode_failures` moved). One just under the frame arrives.
#[test]
fn writes_and_broadcasts_that_cannot_fit_a_frame_are_refused_at_the_call() {
    let mut bus = mesh(2, 5, |c| {
        c.max_frame = 60_000;
        c.metadata.durable = false;
    });
    let big = Bytes::from(vec![7u8; 64_000]);
    let refused = bus
        .with_node(0, |n, now| n.put(now, &p(), b"big", big.clone(), None))
        .unwrap();
    assert!(
        matches!(refused, Err(PutError::FrameTooSmall { max: 60_000, .. })),
        "{refused:?}"
    );
    let refused = bus.with_node(0, |n, now| n.broadcast(now, big.clone())).unwrap();
    assert!(
        matches!(
            refused,
            Err(epidemic_core::BroadcastError::FrameTooSmall { max: 60_000, .. })
        ),
        "{refused:?}"
    );
    bus.with_node(0, |n, _| assert!(n.get(&p(), b"big").is_none(), "nothing was written"));

    let fits = Bytes::from(vec![8u8; 59_000]);
    bus.with_node(0, |n, now| n.put(now, &p(), b"fits", fits.clone(), None))
        .unwrap()
        .unwrap();
    bus.with_node(0, |n, now| n.broadcast(now, fits.clone()))
        .unwrap()
        .unwrap();
    bus.run_for(Duration::from_secs(2));
    let other = bus.node(1).unwrap();
    assert_eq!(other.get(&p(), b"fits").and_then(|r| r.lww().cloned()), Some(fits));
    assert_eq!(other.stats().plumtree.delivered, 1, "the broadcast arrived");
    for i in 0..2 {
        assert_eq!(bus.node(i).unwrap().stats().encode_failures, 0);
    }
}

/// The store holds at most `max_keys` keys: a local put of a new key past
/// it is refused with a typed error, and a peer's objects for new keys are
/// dropped and counted, however many it sends (by broadcast or repair);
/// keys already held keep taking updates.
#[test]
fn a_store_never_holds_more_than_max_keys() {
    let mut bus = mesh(2, 9, |c| {
        c.metadata.durable = false;
        c.metadata.max_keys = 10;
        c.metadata.exchange_interval = Duration::from_secs(1);
    });
    for k in 0..10u8 {
        bus.with_node(0, |n, now| n.put(now, &p(), &[k], b("v"), None))
            .unwrap()
            .unwrap();
    }
    let refused = bus
        .with_node(0, |n, now| n.put(now, &p(), b"one more", b("v"), None))
        .unwrap();
    assert_eq!(refused, Err(PutError::TooManyKeys { max: 10 }));
    // An update of a key it holds is not a new key.
    bus.with_node(0, |n, now| n.put(now, &p(), &[3], b("v2"), None))
        .unwrap()
        .unwrap();
    bus.run_for(Duration::from_secs(5));
    let one = bus.node(1).unwrap();
    assert_eq!(one.iter(&p()).count(), 10);
    assert_eq!(one.get(&p(), &[3]).and_then(|r| r.lww().cloned()), Some(b("v2")));
    assert_eq!(one.stats().metadata.refused_keys, 0);
}

/// A node whose bound is lower than its peer's refuses the surplus it is
/// sent, by broadcast and by anti-entropy alike, and counts it.
#[test]
fn a_peer_cannot_grow_a_store_past_its_bound() {
    let mut bus = Bus::new(BusConfig::seeded(13));
    let mut big = Config::mesh(2);
    big.metadata.durable = false;
    big.metadata.exchange_interval = Duration::from_secs(1);
    let mut small = big.clone();
    small.metadata.max_keys = 4;
    bus.add_nodes(1, &big);
    bus.add_nodes(1, &small);
    bus.join(1, [0]);
    bus.run_for(Duration::from_secs(5));
    for k in 0..50u8 {
        bus.with_node(0, |n, now| n.put(now, &p(), &[k], b("v"), None))
            .unwrap()
            .unwrap();
    }
    bus.run_for(Duration::from_secs(20));
    let small = bus.node(1).unwrap();
    assert_eq!(small.iter(&p()).count(), 4, "the store stays at its bound");
    let s = small.stats();
    assert!(s.metadata.refused_keys >= 46, "refused {}", s.metadata.refused_keys);
    assert!(
        s.metadata.exchanges_completed + s.metadata.exchanges_started > 0,
        "anti-entropy kept running"
    );
}
