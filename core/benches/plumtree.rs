//! The per-message hot path of a node: a GOSSIP frame arrives, is decoded,
//! deduplicated against the message cache, delivered, and forwarded (encoded)
//! to the eager peers; and the cheaper path of a duplicate, answered with a
//! PRUNE.
//!
//! The node under test has five HyParView neighbours (the paper's active
//! view), all eager for the root that sends, so a new message costs one
//! decode and four encodes. Frames are encoded before the measurement.
//!
//! Run: `cargo bench -p epidemic-core --bench plumtree`

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use epidemic_core::broadcast;
use epidemic_core::node::Message;
use epidemic_core::node::{BroadcastId, Config, Node};
use epidemic_core::wire::DEFAULT_MAX_FRAME;
use epidemic_core::{Duration, Instant};

/// Frames fed in a ring: more than the node's seen-id memory (4 × its
/// message cache), so every frame looks new again when it comes round.
const RING: u64 = 1 << 15;

/// Node 0 and five peers that joined through it, handshakes delivered.
fn neighbourhood() -> Vec<Node<u32>> {
    let mut config = Config::default();
    config.message_cache = 1024;
    let mut nodes: Vec<Node<u32>> = (0..6)
        .map(|i| {
            let mut config = config.clone();
            config.seed = u64::from(i);
            Node::new(i, config)
        })
        .collect();
    let now = Instant::ZERO;
    for node in &mut nodes[1..] {
        node.join(now, [0]);
    }
    loop {
        let mut moved = false;
        for i in 0..nodes.len() {
            while let Some(t) = nodes[i].poll_transmit() {
                moved = true;
                let _ = nodes[t.to as usize].handle_frame(now, i as u32, &t.frame);
            }
            while nodes[i].poll_event().is_some() {}
        }
        if !moved {
            break;
        }
    }
    assert_eq!(nodes[0].active_view().len(), 5, "node 0 has five neighbours");
    nodes
}

/// A GOSSIP of message (origin 1, `seq`), as node 1 would forward it.
fn gossip(seq: u64, payload: &Bytes) -> Vec<u8> {
    let m: Message<u32> = Message::Plumtree(broadcast::Message::Gossip {
        id: BroadcastId { origin: 1, seq },
        root: 1,
        round: 3,
        payload: payload.clone(),
    });
    let mut frame = Vec::new();
    m.encode_into(DEFAULT_MAX_FRAME, &mut frame).expect("small message");
    frame
}

fn drain(node: &mut Node<u32>) -> usize {
    let mut n = 0;
    while let Some(t) = node.poll_transmit() {
        n += t.frame.len();
    }
    while node.poll_event().is_some() {
        n += 1;
    }
    n
}

fn hot_path(c: &mut Criterion) {
    let mut group = c.benchmark_group("plumtree/node");
    group.throughput(Throughput::Elements(1));
    for size in [64usize, 1024] {
        let payload = Bytes::from(vec![7u8; size]);
        let frames: Vec<Vec<u8>> = (0..RING).map(|s| gossip(s, &payload)).collect();

        let mut nodes = neighbourhood();
        let node = &mut nodes[0];
        let mut now = Instant::ZERO;
        let mut i = 0usize;
        group.bench_function(
            format!("new gossip, {size} B payload: decode, dedupe, deliver, forward to 4"),
            |b| {
                b.iter(|| {
                    now += Duration::from_micros(1);
                    node.handle_frame(now, 1, &frames[i % frames.len()])
                        .expect("valid frame");
                    i += 1;
                    black_box(drain(node))
                })
            },
        );

        let mut nodes = neighbourhood();
        let node = &mut nodes[0];
        node.handle_frame(now, 1, &frames[0]).expect("valid frame");
        drain(node);
        group.bench_function(
            format!("duplicate gossip, {size} B payload: decode, dedupe, prune"),
            |b| {
                b.iter(|| {
                    node.handle_frame(now, 2, &frames[0]).expect("valid frame");
                    black_box(drain(node))
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, hot_path);
criterion_main!(benches);
