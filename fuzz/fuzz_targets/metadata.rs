//! Two mesh nodes sharing a metadata store, driven by arbitrary writes,
//! deletes, time steps and frame deliveries between them, some of them
//! dropped, duplicated or corrupted on the way.
//!
//! Metadata frames are reached well-formed (each node's own output) and
//! mutated (a byte flipped), so the store, the Plumtree handler and the
//! anti-entropy exchange all see what a peer could send. A frame a node
//! refuses closes the link, as a driver would, and the link comes back up.
//!
//! After every step: no panic, and durable writes are confirmed as a driver
//! would. At the end, when nothing was corrupted or dropped, both nodes run
//! on a perfect link for two minutes of virtual time and must then hold the
//! same store (anti-entropy repairs anything the broadcasts missed).
#![no_main]

use arbitrary::Arbitrary;
use bytes::Bytes;
use epidemic_core::hashtree;
use epidemic_core::metadata::{self, FullPrefix};
use epidemic_core::node::{Config, Event, LinkEvent, Node};
use epidemic_core::{Duration, Instant};
use libfuzzer_sys::fuzz_target;
use std::collections::VecDeque;

#[derive(Arbitrary, Debug)]
enum Input {
    /// A write at `node` to one of a few keys (so they collide).
    Put {
        node: bool,
        key: u8,
        len: u8,
        with_context: bool,
    },
    /// A delete at `node`.
    Delete { node: bool, key: u8 },
    /// Time passes.
    Advance { millis: u16 },
    /// The next frame in flight towards `to` arrives: as sent, or with byte
    /// `at` (modulo the length) xored with `xor`.
    Deliver { to: bool, corrupt: Option<(u16, u8)> },
    /// The next frame towards `to` is lost.
    Drop { to: bool },
    /// The next frame towards `to` arrives twice.
    Duplicate { to: bool },
}

/// A two-member mesh with a small hash tree (64 segments under a width of
/// 8: two inner levels), so that an exchange walks several levels and a run
/// does not spend its time allocating the default 65,536 segments.
fn config(seed: u64) -> Config {
    let mut metadata = metadata::Config::mesh(2);
    metadata.hashtree = hashtree::Config::new(64, 8).expect("a valid shape");
    let mut config = Config::mesh(2);
    config.metadata = metadata;
    config.seed = seed;
    config
}

struct Pair {
    nodes: [Node<u32>; 2],
    /// Frames in flight towards each node, in order.
    wire: [VecDeque<Vec<u8>>; 2],
    now: Instant,
}

impl Pair {
    fn new() -> Self {
        let mut pair = Pair {
            nodes: [Node::new(0, config(1)), Node::new(1, config(2))],
            wire: [VecDeque::new(), VecDeque::new()],
            now: Instant::ZERO,
        };
        pair.nodes[1].join(pair.now, [0]);
        pair.pump();
        pair
    }

    /// Moves every output onto the wire and confirms every persist record
    /// (a synchronous disk).
    fn pump(&mut self) {
        let now = self.now;
        for i in 0..2 {
            while let Some(t) = self.nodes[i].poll_transmit() {
                // A corrupted frame may name members that do not exist:
                // frames to them go nowhere. The wire is drained by the
                // steps; cap it anyway.
                if let Some(wire) = self.wire.get_mut(t.to as usize)
                    && wire.len() < 10_000
                {
                    wire.push_back(t.frame);
                }
            }
            while let Some(event) = self.nodes[i].poll_event() {
                if let Event::Persist(record) = event {
                    self.nodes[i].persisted(now, record.id);
                }
            }
        }
    }

    /// Hands the next frame towards `to` in; a refused frame closes the link
    /// at both ends, and it comes back up at once.
    fn deliver(&mut self, to: usize, frame: &[u8]) {
        let from = 1 - to;
        if self.nodes[to].handle_frame(self.now, from as u32, frame).is_err() {
            for (i, node) in self.nodes.iter_mut().enumerate() {
                node.handle_link(self.now, (1 - i) as u32, LinkEvent::Down);
            }
            // What was in flight, and what the nodes said to the closed
            // link, is lost with it.
            self.pump();
            self.wire = [VecDeque::new(), VecDeque::new()];
            for (i, node) in self.nodes.iter_mut().enumerate() {
                node.handle_link(self.now, (1 - i) as u32, LinkEvent::Up);
            }
        }
        self.pump();
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        for node in &mut self.nodes {
            node.handle_timeout(self.now);
        }
        self.pump();
    }
}

fuzz_target!(|inputs: Vec<Input>| {
    let prefix = FullPrefix::new("fuzz", "keys");
    let mut pair = Pair::new();
    let mut clean = true;
    for input in inputs.into_iter().take(2_000) {
        match input {
            Input::Put {
                node,
                key,
                len,
                with_context,
            } => {
                let n = &mut pair.nodes[usize::from(node)];
                let key = [key % 8];
                let context = with_context
                    .then(|| n.get(&prefix, &key).map(|r| r.into_context()))
                    .flatten();
                let value = Bytes::from(vec![key[0]; usize::from(len)]);
                n.put(pair.now, &prefix, &key, value, context.as_ref())
                    .expect("small keys and values are accepted");
            }
            Input::Delete { node, key } => {
                let n = &mut pair.nodes[usize::from(node)];
                n.delete(pair.now, &prefix, &[key % 8], None)
                    .expect("small keys are accepted");
            }
            Input::Advance { millis } => pair.advance(Duration::from_millis(millis.into())),
            Input::Deliver { to, corrupt } => {
                let to = usize::from(to);
                if let Some(mut frame) = pair.wire[to].pop_front() {
                    if let Some((at, xor)) = corrupt.filter(|&(_, x)| x != 0 && !frame.is_empty()) {
                        let at = usize::from(at) % frame.len();
                        frame[at] ^= xor;
                        clean = false;
                    }
                    pair.deliver(to, &frame);
                }
            }
            Input::Drop { to } => {
                if pair.wire[usize::from(to)].pop_front().is_some() {
                    clean = false;
                }
            }
            Input::Duplicate { to } => {
                let to = usize::from(to);
                if let Some(frame) = pair.wire[to].front().cloned() {
                    pair.deliver(to, &frame);
                }
            }
        }
    }
    if !clean {
        return;
    }
    // A perfect link from here on: every frame arrives, a second at a time
    // (the anti-entropy tick is 10 s).
    for _ in 0..120 {
        for to in 0..2 {
            while let Some(frame) = pair.wire[to].pop_front() {
                pair.deliver(to, &frame);
            }
        }
        pair.advance(Duration::from_secs(1));
    }
    assert_eq!(
        pair.nodes[0].metadata_hash(),
        pair.nodes[1].metadata_hash(),
        "two nodes on a perfect link for 120 s hold the same store"
    );
});
