//! A hostile neighbour floods a node with broadcast ids it has never seen:
//! GOSSIP frames from thousands of fresh origins, and IHAVE announcements
//! of ids that nobody will ever send. Every structure the flood touches is
//! bounded by its configuration, the node encodes every frame it sends,
//! and the cluster keeps working: a newcomer joins and a broadcast reaches
//! every node. (The member-set clock and metadata-key floods are in
//! `mesh.rs` and `store.rs`.)

mod common;

use bytes::Bytes;
use common::overlay;
use epidemic_core::Duration;
use epidemic_core::broadcast::{self, Announcement, TreeMode};
use epidemic_core::node::{BroadcastId, Config, Message};
use epidemic_mem::Bus;

const NODES: usize = 12;
const FRESH: u32 = 3_000;

fn frame(message: broadcast::Message<u32, BroadcastId<u32>>) -> Vec<u8> {
    let mut out = Vec::new();
    Message::Plumtree(message).encode_into(usize::MAX, &mut out).unwrap();
    out
}

/// Every bounded structure of node `id` within its configured bound.
fn assert_bounded(bus: &Bus, id: u32, config: &Config) {
    let s = bus.node(id).unwrap().stats();
    let p = &config.plumtree;
    let TreeMode::PerRoot { max_roots } = p.tree else {
        panic!("the test runs per-root trees");
    };
    let t = &s.plumtree;
    assert!(t.tracked_roots <= max_roots, "node {id}: {} roots", t.tracked_roots);
    assert!(t.missing <= p.max_missing, "node {id}: {} missing", t.missing);
    assert!(
        t.max_announcers <= p.max_announcers,
        "node {id}: {} announcers",
        t.max_announcers
    );
    assert!(
        t.max_outstanding <= p.max_outstanding,
        "node {id}: {} outstanding",
        t.max_outstanding
    );
    assert!(
        t.max_lazy_queue <= p.max_lazy_queue,
        "node {id}: {} queued",
        t.max_lazy_queue
    );
    assert!(
        t.received_cache <= p.max_received,
        "node {id}: {} received",
        t.received_cache
    );
    assert!(
        t.catch_up_recent <= p.max_catch_up,
        "node {id}: {} recent",
        t.catch_up_recent
    );
    assert!(
        s.message_cache <= config.message_cache,
        "node {id}: {} cached",
        s.message_cache
    );
    assert!(
        s.seen_ids <= 8 * config.message_cache,
        "node {id}: {} seen ids",
        s.seen_ids
    );
    assert_eq!(s.encode_failures, 0, "node {id} failed to encode a frame");
}

#[test]
fn a_flood_of_fresh_broadcast_ids_stays_bounded_and_the_cluster_keeps_working() {
    let mut config = Config::default();
    // Small bounds, so the flood passes every one of them many times over.
    config.message_cache = 256;
    config.plumtree.max_missing = 128;
    config.plumtree.max_received = 256;
    config.plumtree.max_catch_up = 64;
    config.plumtree.tree = TreeMode::PerRoot { max_roots: 16 };
    let mut bus = overlay(NODES, 0x0405_711e, &config, Duration::from_secs(30));
    let victim = 0;
    let hostile = bus.node(victim).unwrap().active_view()[0];
    let payload = Bytes::from_static(b"flood");
    for k in 0..FRESH {
        // A payload from an origin nobody has heard of, at a fresh sequence.
        let origin = 1_000_000 + k;
        let gossip = frame(broadcast::Message::Gossip {
            id: BroadcastId {
                origin,
                seq: u64::from(k),
            },
            root: origin,
            round: 0,
            payload: payload.clone(),
        });
        // And an announcement of an id that will never be sent.
        let ghost = 2_000_000 + k;
        let ihave = frame(broadcast::Message::IHave {
            announcements: vec![Announcement {
                id: BroadcastId { origin: ghost, seq: 0 },
                root: ghost,
                round: 0,
            }],
        });
        for f in [gossip, ihave] {
            bus.with_node(victim, |n, now| n.handle_frame(now, hostile, &f))
                .unwrap()
                .expect("well-formed frames are accepted");
        }
        if k % 100 == 99 {
            bus.run_for(Duration::from_millis(50));
            assert_bounded(&bus, victim, &config);
        }
    }
    bus.run_for(Duration::from_secs(30));
    for id in 0..NODES as u32 {
        assert_bounded(&bus, id, &config);
    }
    let victim_stats = bus.node(victim).unwrap().stats();
    assert!(
        victim_stats.plumtree.delivered >= u64::from(FRESH),
        "every fresh payload was new: {} delivered",
        victim_stats.plumtree.delivered
    );
    assert!(
        victim_stats.plumtree.missing_evicted > 0,
        "the ghost announcements passed the missing bound"
    );

    // The cluster still works: a newcomer joins, and a broadcast from it
    // reaches every node.
    let newcomer = bus.add_nodes(1, &config);
    bus.join(newcomer, [victim]);
    bus.run_for(Duration::from_secs(30));
    assert!(
        !bus.node(newcomer).unwrap().active_view().is_empty(),
        "the newcomer got in"
    );
    let id = bus.broadcast(newcomer, Bytes::from_static(b"after the flood")).unwrap();
    bus.run_for(Duration::from_secs(10));
    let report = bus.report(&id).expect("the broadcast was recorded");
    assert_eq!(report.delivered, NODES + 1, "{report:?}");
}
