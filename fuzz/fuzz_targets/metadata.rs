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
use epidemic_core::Duration;
use epidemic_core::hashtree;
use epidemic_core::metadata::{self, FullPrefix};
use epidemic_core::node::{Config, Event, LinkEvent, Node};
use epidemic_core::testing::{Flight, Network};
use libfuzzer_sys::fuzz_target;

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

/// The two nodes on the core's virtual-time network, held: a frame arrives
/// only when an input says so. A corrupted frame may name members that do
/// not exist; the network drops what is sent to them.
struct Pair {
    net: Network<Node<u32>>,
}

impl Pair {
    fn new() -> Self {
        let mut net = Network::new(0);
        net.hold(true);
        net.add(0, Node::new(0, config(1)));
        net.add(1, Node::new(1, config(2)));
        let mut pair = Pair { net };
        pair.net.with(&1, |node, now| node.join(now, [0]));
        pair.persist();
        pair
    }

    /// Confirms every persist record (a synchronous disk).
    fn persist(&mut self) {
        let mut progressed = true;
        while progressed {
            progressed = false;
            for i in 0..2 {
                for event in self.net.take_events(&i) {
                    if let Event::Metadata(metadata::Event::Persist(record)) = event {
                        progressed = true;
                        self.net.with(&i, |node, now| node.persisted(now, record.id));
                    }
                }
            }
        }
    }

    /// Hands `frame` to `to`; a refused frame closes the link at both ends,
    /// and it comes back up at once.
    fn deliver(&mut self, to: u32, frame: Vec<u8>) {
        let from = 1 - to;
        if self
            .net
            .deliver(Flight {
                from,
                to,
                message: frame,
            })
            .is_err()
        {
            for i in 0..2 {
                self.net
                    .with(&i, |node, now| node.handle_link(now, 1 - i, LinkEvent::Down));
            }
            // What was in flight, and what the nodes said to the closed
            // link, is lost with it.
            self.persist();
            self.net.clear();
            for i in 0..2 {
                self.net
                    .with(&i, |node, now| node.handle_link(now, 1 - i, LinkEvent::Up));
            }
        }
        self.persist();
    }

    /// Time passes: every deadline due fires, at its time.
    fn advance(&mut self, by: Duration) {
        self.net.run_for(by);
        self.persist();
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
                let key = [key % 8];
                let value = Bytes::from(vec![key[0]; usize::from(len)]);
                pair.net
                    .with(&u32::from(node), |n, now| {
                        let context = with_context
                            .then(|| n.get(&prefix, &key).map(|r| r.into_context()))
                            .flatten();
                        n.put(now, &prefix, &key, value, context.as_ref())
                    })
                    .expect("small keys and values are accepted");
                pair.persist();
            }
            Input::Delete { node, key } => {
                pair.net
                    .with(&u32::from(node), |n, now| n.delete(now, &prefix, &[key % 8], None))
                    .expect("small keys are accepted");
                pair.persist();
            }
            Input::Advance { millis } => pair.advance(Duration::from_millis(millis.into())),
            Input::Deliver { to, corrupt } => {
                let to = u32::from(to);
                if let Some(Flight { message: mut frame, .. }) = pair.net.take(&to) {
                    if let Some((at, xor)) = corrupt.filter(|&(_, x)| x != 0 && !frame.is_empty()) {
                        let at = usize::from(at) % frame.len();
                        frame[at] ^= xor;
                        clean = false;
                    }
                    pair.deliver(to, frame);
                }
            }
            Input::Drop { to } => {
                if pair.net.take(&u32::from(to)).is_some() {
                    clean = false;
                }
            }
            Input::Duplicate { to } => {
                // A copy now; the original stays in flight.
                let to = u32::from(to);
                if let Some(frame) = pair.net.peek(&to).map(|f| f.message.clone()) {
                    pair.deliver(to, frame);
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
            while let Some(Flight { message: frame, .. }) = pair.net.take(&to) {
                pair.deliver(to, frame);
            }
        }
        pair.advance(Duration::from_secs(1));
    }
    assert_eq!(
        pair.net.node(&0).metadata_hash(),
        pair.net.node(&1).metadata_hash(),
        "two nodes on a perfect link for 120 s hold the same store"
    );
});
