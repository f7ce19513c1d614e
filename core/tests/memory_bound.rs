//! One million distinct broadcasts through one `Node`, with neighbours that
//! never acknowledge anything: every cache, queue and outstanding set stays
//! within its configured bound. Sizes are asserted, never times.

use bytes::Bytes;
use epidemic_core::broadcast::{self, Announcement};
use epidemic_core::membership::hyparview;
use epidemic_core::node::Message;
use epidemic_core::node::{BroadcastId, Config, Node};
use epidemic_core::wire::DEFAULT_MAX_FRAME;
use epidemic_core::{Duration, Instant};

const ME: u32 = 0;
const NEIGHBORS: [u32; 5] = [1, 2, 3, 4, 5];

fn frame(m: Message<u32>) -> Vec<u8> {
    let mut out = Vec::new();
    m.encode_into(DEFAULT_MAX_FRAME, &mut out).expect("small message");
    out
}

fn drain(node: &mut Node<u32>) -> usize {
    let mut n = 0;
    while node.poll_transmit().is_some() {
        n += 1;
    }
    while node.poll_event().is_some() {}
    n
}

#[test]
fn a_million_broadcasts_through_one_node_stay_within_every_bound() {
    let mut config = Config::default();
    config.seed = 1;
    let pt = config.plumtree.clone();
    let cache_bound = config.message_cache;
    let broadcast::TreeMode::PerRoot { max_roots } = pt.tree else {
        panic!("per-root trees by default")
    };
    let mut node = Node::new(ME, config);
    let mut now = Instant::ZERO;
    for (i, &p) in NEIGHBORS.iter().enumerate() {
        let connect = frame(Message::HyParView(hyparview::Message::Connect { link: 100 + i as u64 }));
        node.handle_frame(now, p, &connect).unwrap();
    }
    drain(&mut node);
    assert_eq!(node.active_view(), NEIGHBORS.to_vec());

    let payload = Bytes::from_static(&[7u8; 64]);
    let mut sent = 0usize;
    let mut worst = broadcast::Stats::default();
    let mut worst_cache = 0;
    for i in 0..1_000_000u64 {
        match i % 4 {
            // A new broadcast pushed by neighbour 1: half from 5,000 roots
            // (churning the root LRU), half from 32 (whose trees persist).
            0 | 1 => {
                let origin = if i % 4 == 0 {
                    1000 + (i % 5000) as u32
                } else {
                    100 + (i % 32) as u32
                };
                let gossip = broadcast::Message::Gossip {
                    id: BroadcastId { origin, seq: i },
                    root: origin,
                    round: 1,
                    payload: payload.clone(),
                };
                node.handle_frame(now, 1, &frame(Message::Plumtree(gossip))).unwrap();
                // Neighbours 4 and 5 prune this root: it gets sets of its
                // own, and later messages from it are announced to them
                // lazily and stay outstanding, since they never answer.
                for p in [4, 5] {
                    node.handle_frame(
                        now,
                        p,
                        &frame(Message::Plumtree(broadcast::Message::Prune { root: origin })),
                    )
                    .unwrap();
                }
            }
            // An announcement of a message that never arrives.
            2 => {
                let origin = 1000 + (i % 5000) as u32;
                let ihave = broadcast::Message::IHave {
                    announcements: vec![Announcement {
                        id: BroadcastId { origin, seq: i },
                        root: origin,
                        round: 2,
                    }],
                };
                node.handle_frame(now, 2 + (i % 4) as u32, &frame(Message::Plumtree(ihave)))
                    .unwrap();
            }
            // Our own broadcast.
            _ => {
                node.broadcast(now, payload.clone()).unwrap();
            }
        }
        sent += drain(&mut node);
        if i % 64 == 0 {
            now += Duration::from_millis(5);
            node.handle_timeout(now);
            sent += drain(&mut node);
        }
        if i % 1024 == 0 {
            let s = node.stats();
            let p = &s.plumtree;
            assert!(
                s.message_cache <= cache_bound,
                "message cache {} > {cache_bound}",
                s.message_cache
            );
            assert!(p.tracked_roots <= max_roots, "roots {} > {max_roots}", p.tracked_roots);
            assert!(
                p.missing <= pt.max_missing,
                "missing {} > {}",
                p.missing,
                pt.max_missing
            );
            assert!(p.max_announcers <= pt.max_announcers);
            assert!(
                p.max_outstanding <= pt.max_outstanding,
                "outstanding {} > {}",
                p.max_outstanding,
                pt.max_outstanding
            );
            assert!(
                p.max_lazy_queue <= pt.max_lazy_queue,
                "lazy queue {} > {}",
                p.max_lazy_queue,
                pt.max_lazy_queue
            );
            assert!(p.received_cache <= pt.max_received);
            assert!(p.catch_up_recent <= pt.max_catch_up);
            assert_eq!(s.transmit_queue, 0, "drained");
            assert_eq!(s.event_queue, 0, "drained");
            worst_cache = worst_cache.max(s.message_cache);
            worst.tracked_roots = worst.tracked_roots.max(p.tracked_roots);
            worst.missing = worst.missing.max(p.missing);
            worst.max_outstanding = worst.max_outstanding.max(p.max_outstanding);
            worst.max_lazy_queue = worst.max_lazy_queue.max(p.max_lazy_queue);
            worst.received_cache = worst.received_cache.max(p.received_cache);
            worst.catch_up_recent = worst.catch_up_recent.max(p.catch_up_recent);
        }
    }
    let s = node.stats();
    println!(
        "1,000,000 broadcasts: frames out={sent} delivered={} own={} | peak sizes: cache={worst_cache}/{cache_bound} \
         roots={}/{max_roots} missing={}/{} outstanding/peer={}/{} lazy/peer={}/{} received={}/{} catch-up={}/{}",
        s.plumtree.delivered,
        s.plumtree.broadcasts,
        worst.tracked_roots,
        worst.missing,
        pt.max_missing,
        worst.max_outstanding,
        pt.max_outstanding,
        worst.max_lazy_queue,
        pt.max_lazy_queue,
        worst.received_cache,
        pt.max_received,
        worst.catch_up_recent,
        pt.max_catch_up,
    );
    assert_eq!(
        s.plumtree.delivered, 500_000,
        "every pushed broadcast was new and delivered"
    );
    assert_eq!(s.plumtree.broadcasts, 250_000);
    // The bounds were reached, so the test really exercised them.
    assert_eq!(worst_cache, cache_bound);
    assert_eq!(worst.tracked_roots, max_roots);
    assert_eq!(worst.missing, pt.max_missing);
    assert_eq!(worst.catch_up_recent, pt.max_catch_up);
    // Reached only through lazy pushes to the pruned neighbours.
    assert_eq!(worst.max_outstanding, pt.max_outstanding);
}
