//! The metadata store driven through [`Node`]s on the
//! [`testing`](crate::testing) network: the scenarios the mem bus cannot
//! drive (its disk confirms every record at once, and it keeps no
//! subscription events) and those that build frames from crate-private
//! types. The store's other node-level scenarios run on the bus, in
//! `adapters/mem/tests/store.rs` and `metadata.rs`.

use super::{Actor, ChangeSource, FullPrefix, Message, Object, PersistId};
use crate::broadcast::{self, Announcement};
use crate::clock::VClock;
use crate::membership::hyparview;
use crate::node::{Config, Event, MembershipConfig, Node};
use crate::testing::Network;
use crate::wire::{self, Kind, WireError};
use crate::{Duration, Instant};
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec;
use alloc::vec::Vec;
use bytes::Bytes;

/// Nodes on the [`testing`](crate::testing) network with no latency: frames
/// are handed over at once, in sending order. Each node has a disk that
/// confirms its persist records at once while `auto_persist` is on.
struct Net {
    net: Network<Node<u32>>,
    /// Each node's persisted objects.
    disks: Vec<BTreeMap<(FullPrefix, Bytes), Bytes>>,
    /// Events other than `Persist`, per node.
    events: Vec<Vec<Event<u32>>>,
    /// Persist records not yet written, per node, when `auto_persist` is off.
    unwritten: Vec<VecDeque<PersistId>>,
    auto_persist: bool,
}

impl Net {
    fn new(configs: Vec<Config>) -> Net {
        let n = configs.len();
        let mut net = Network::new(0);
        for (i, c) in (0u32..).zip(configs) {
            net.add(
                i,
                Node::new(
                    i,
                    Config {
                        seed: u64::from(i) + 1,
                        ..c
                    },
                ),
            );
        }
        Net {
            net,
            disks: vec![BTreeMap::new(); n],
            events: vec![Vec::new(); n],
            unwritten: vec![VecDeque::new(); n],
            auto_persist: true,
        }
    }

    /// `n` mesh nodes, joined through node 0 and settled.
    fn mesh(n: usize) -> Net {
        let mut net = Net::new(vec![Config::mesh(n); n]);
        for i in 1..n {
            net.with(i, |node, now| node.join(now, [0]));
        }
        net.run(Duration::from_secs(5));
        net
    }

    fn node(&self, i: usize) -> &Node<u32> {
        self.net.node(&(i as u32))
    }

    fn nodes(&self) -> impl Iterator<Item = &Node<u32>> + '_ {
        self.net.nodes().map(|(_, n)| n)
    }

    fn now(&self) -> Instant {
        self.net.now()
    }

    /// Writes the persist records to the disks, confirms them if
    /// `auto_persist`, and keeps the other events.
    fn persist(&mut self) {
        let mut progressed = true;
        while progressed {
            progressed = false;
            for i in 0..self.disks.len() {
                for e in self.net.take_events(&(i as u32)) {
                    match e {
                        Event::Metadata(super::Event::Persist(p)) => {
                            let key = (p.prefix.clone(), p.key.clone());
                            match &p.object {
                                Some(o) => self.disks[i].insert(key, o.clone()),
                                None => self.disks[i].remove(&key),
                            };
                            self.unwritten[i].push_back(p.id);
                        }
                        other => self.events[i].push(other),
                    }
                }
                if self.auto_persist {
                    while let Some(id) = self.unwritten[i].pop_front() {
                        progressed = true;
                        self.net.with(&(i as u32), |n, now| n.persisted(now, id));
                    }
                }
            }
        }
    }

    /// Steps through everything due by `end`, persisting as it goes.
    fn run_to(&mut self, end: Instant) {
        self.persist();
        while self.net.next_wakeup().is_some_and(|t| t <= end) {
            self.net.step();
            self.persist();
        }
    }

    fn run(&mut self, d: Duration) {
        let end = self.now() + d;
        self.run_to(end);
        self.net.advance_to(end);
    }

    /// Runs `f` on node `i`, then hands over what is due now.
    fn with<R>(&mut self, i: usize, f: impl FnOnce(&mut Node<u32>, Instant) -> R) -> R {
        let r = self.net.with(&(i as u32), f);
        self.run_to(self.now());
        r
    }
}

fn p() -> FullPrefix {
    FullPrefix::new("p", "s")
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

#[test]
fn a_put_leaves_only_once_durable() {
    let mut net = Net::mesh(2);
    net.auto_persist = false;
    let id = net.with(0, |n, now| n.put(now, &p(), b"k", b("v"), None)).unwrap();
    net.run(Duration::from_secs(2));
    assert!(
        net.node(1).get(&p(), b"k").is_none(),
        "not broadcast before it is durable"
    );
    assert_eq!(net.node(0).stats().metadata.held, 1);
    assert_eq!(net.disks[0].len(), 1, "but emitted for persistence");
    assert!(!net.events[0].contains(&Event::Metadata(super::Event::PutDurable(id))));
    net.auto_persist = true;
    net.run(Duration::from_secs(2));
    assert!(net.events[0].contains(&Event::Metadata(super::Event::PutDurable(id))));
    assert_eq!(net.node(1).get_resolved(&p(), b"k"), Some(b("v")));
    assert_eq!(net.node(0).stats().metadata.held, 0);
    assert_eq!(net.node(0).stats().metadata.unconfirmed, 0);
}

#[test]
fn subscriptions_report_changes_with_their_source() {
    let mut net = Net::mesh(2);
    let sub = net.with(1, |n, _| n.subscribe(p()));
    net.with(0, |n, now| n.put(now, &p(), b"a", b("1"), None)).unwrap();
    net.with(1, |n, now| n.put(now, &p(), b"b", b("2"), None)).unwrap();
    net.with(0, |n, now| {
        n.put(now, &FullPrefix::new("elsewhere", ""), b"c", b("3"), None)
    })
    .unwrap();
    net.run(Duration::from_secs(1));
    let changes: Vec<(Bytes, Option<Bytes>, usize, ChangeSource)> = net.events[1]
        .iter()
        .filter_map(|e| match e {
            Event::Metadata(super::Event::Changed(c)) if c.subscription == sub => {
                Some((c.key.clone(), c.resolved.clone(), c.read.siblings(), c.source))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        changes,
        [
            (b("a"), Some(b("1")), 1, ChangeSource::Broadcast),
            (b("b"), Some(b("2")), 1, ChangeSource::Local)
        ]
    );
    // A delete is a change too: the tombstone, and no resolved value.
    net.events[1].clear();
    net.with(0, |n, now| n.delete(now, &p(), b"a", None)).unwrap();
    net.run(Duration::from_secs(1));
    let deleted: Vec<_> = net.events[1]
        .iter()
        .filter_map(|e| match e {
            Event::Metadata(super::Event::Changed(c)) => Some((c.key.clone(), c.is_delete(), c.read.siblings())),
            _ => None,
        })
        .collect();
    assert_eq!(deleted, [(b("a"), true, 1)]);
    assert!(net.with(1, |n, _| n.unsubscribe(sub)));
    assert!(!net.with(1, |n, _| n.unsubscribe(sub)));
    net.events[1].clear();
    net.with(0, |n, now| n.put(now, &p(), b"a", b("again"), None)).unwrap();
    net.run(Duration::from_secs(1));
    assert!(
        !net.events[1]
            .iter()
            .any(|e| matches!(e, Event::Metadata(super::Event::Changed(_))))
    );
}

/// A prefix named CRDT in the configuration merges from the first object
/// on, with no `register_crdt` call: concurrent increments of a PN-counter
/// on two nodes resolve to their sum everywhere, the siblings collapse to
/// one, and a subscriber's change carries the merged value.
#[test]
fn a_crdt_prefix_from_the_configuration_merges_concurrent_writes() {
    use crate::crdt::PNCounter;
    use crate::node::typed;
    let hits = FullPrefix::new("app", "hits");
    let mut config = Config::mesh(3);
    config.metadata.crdts = vec![super::CrdtPrefix {
        prefix: hits.clone(),
        kind: super::CrdtKind::PnCounter,
    }];
    let mut net = Net::new(vec![config; 3]);
    for i in 1..3 {
        net.with(i, |node, now| node.join(now, [0]));
    }
    net.run(Duration::from_secs(5));
    let sub = net.with(2, |n, _| n.subscribe(hits.clone()));
    // Nodes 0 and 1 each add to the counter without seeing the other (no
    // write leaves before its record is confirmed).
    net.auto_persist = false;
    for (i, by) in [(0u32, 3u64), (1, 4)] {
        let mut c = PNCounter::new();
        c.increment_by(i, by);
        let value = typed::encode(&c).unwrap();
        net.with(i as usize, |n, now| n.put(now, &hits, b"page", value, None))
            .unwrap();
    }
    net.auto_persist = true;
    net.run(Duration::from_secs(30));
    for i in 0..3 {
        let resolved = net.node(i).get_resolved(&hits, b"page").expect("the key is there");
        let counter: PNCounter<u32> = typed::decode(&resolved).unwrap();
        assert_eq!(counter.value(), 7, "node {i} resolves to the sum");
        assert_eq!(net.node(i).get(&hits, b"page").unwrap().siblings(), 1, "node {i}");
    }
    let last = net.events[2]
        .iter()
        .filter_map(|e| match e {
            Event::Metadata(super::Event::Changed(c)) if c.subscription == sub => c.resolved.clone(),
            _ => None,
        })
        .last()
        .expect("the subscriber saw the changes");
    assert_eq!(typed::decode::<PNCounter<u32>>(&last).unwrap().value(), 7);
}

fn frame(kind: Kind, body: &impl serde::Serialize) -> Vec<u8> {
    wire::encode(kind, body, wire::DEFAULT_MAX_FRAME).unwrap()
}

#[test]
fn malformed_metadata_frames_are_wire_errors() {
    let mut net = Net::mesh(2);
    net.with(0, |n, now| n.put(now, &p(), b"k", b("v"), None)).unwrap();
    net.run(Duration::from_secs(1));
    let hash = net.node(1).metadata_hash();
    net.with(1, |node, now| {
        // Undecodable bodies.
        for kind in [Kind::Metadata as u8, Kind::AntiEntropy as u8] {
            for body in [&[][..], &[0xff; 9], &[200, 1, 2, 3]] {
                let mut f = vec![wire::PROTOCOL_VERSION, kind];
                f.extend_from_slice(body);
                assert!(node.handle_frame(now, 0, &f).is_err());
            }
        }
        let id = super::Id {
            prefix: p(),
            key: b("k2"),
            context: [(Actor::new(0u32, 0), 1u64)].into_iter().collect(),
        };
        let gossip = |payload: Bytes| broadcast::Message::Gossip {
            id: id.clone(),
            root: 0u32,
            round: 0,
            payload,
        };
        // A payload that is not an object.
        let f = frame(Kind::Metadata, &gossip(b("not an object")));
        assert_eq!(node.handle_frame(now, 0, &f), Err(WireError::Malformed));
        // An object whose context is not the id's.
        let other = Object::write(None, VClock::new(), Some(b("x")), 1, Actor::new(5u32, 0)).encode();
        let f = frame(Kind::Metadata, &gossip(other));
        assert!(matches!(node.handle_frame(now, 0, &f), Err(WireError::Invalid(_))));
        // A key too long, in an announcement.
        let long = super::Id {
            key: Bytes::from(vec![1u8; 5000]),
            ..id.clone()
        };
        let ihave: broadcast::Message<u32, super::Id<Actor<u32>>> = broadcast::Message::IHave {
            announcements: vec![Announcement {
                id: long,
                root: 0,
                round: 0,
            }],
        };
        assert!(matches!(
            node.handle_frame(now, 0, &frame(Kind::Metadata, &ihave)),
            Err(WireError::Invalid(_))
        ));
        // Anti-entropy: a malformed key, an empty list, a bad object.
        let bad_key: Message<Actor<u32>> = Message::Fetch {
            session: 1,
            keys: vec![Bytes::from_static(&[9, 1])],
        };
        let empty: Message<Actor<u32>> = Message::Push { objects: vec![] };
        let anon: Message<Actor<u32>> = Message::Push {
            objects: vec![(
                Bytes::from(super::store::tree_key(&p(), b"k")),
                Object {
                    dvv: crate::clock::DVVSet::new(super::object::Sibling {
                        value: None,
                        timestamp: 0,
                    }),
                },
            )],
        };
        for m in [bad_key, empty, anon] {
            assert!(matches!(
                node.handle_frame(now, 0, &frame(Kind::AntiEntropy, &m)),
                Err(WireError::Invalid(_))
            ));
        }
        assert_eq!(node.metadata_hash(), hash, "nothing changed");
        assert!(node.stats().invalid_frames >= 11);
    });
}

fn hyparview(retention: Option<Duration>) -> Net {
    let mut c = Config {
        membership: MembershipConfig::HyParView(hyparview::Config::for_cluster_size(3)),
        ..Config::default()
    };
    c.metadata.tombstone_retention = retention;
    let mut net = Net::new(vec![c.clone(), c.clone(), c]);
    for i in 1..3 {
        net.with(i, |node, now| node.join(now, [0]));
    }
    net.run(Duration::from_secs(5));
    net
}

#[test]
fn with_partial_views_tombstones_stay_unless_a_horizon_is_set() {
    let mut kept = hyparview(None);
    kept.with(0, |n, now| n.put(now, &p(), b"k", b("v"), None)).unwrap();
    kept.run(Duration::from_secs(1));
    kept.with(1, |n, now| n.delete(now, &p(), b"k", None)).unwrap();
    kept.run(Duration::from_secs(600));
    for n in kept.nodes() {
        assert!(n.get(&p(), b"k").unwrap().is_deleted(), "kept forever, as in Riak");
        assert_eq!(n.stats().metadata.collected, 0);
    }

    let mut horizon = hyparview(Some(Duration::from_secs(60)));
    horizon.with(0, |n, now| n.put(now, &p(), b"k", b("v"), None)).unwrap();
    horizon.run(Duration::from_secs(1));
    let old = horizon.disks[2][&(p(), b("k"))].clone();
    horizon.with(1, |n, now| n.delete(now, &p(), b"k", None)).unwrap();
    horizon.run(Duration::from_secs(30));
    assert!(
        horizon.nodes().all(|n| n.get(&p(), b"k").is_some()),
        "held for the horizon"
    );
    horizon.run(Duration::from_secs(60));
    for n in horizon.nodes() {
        assert!(n.get(&p(), b"k").is_none(), "collected after the horizon");
        assert_eq!(n.stats().metadata.collected, 1);
    }
    assert!(horizon.disks.iter().all(|d| d.is_empty()), "the removal was persisted");
    // The old value arriving late (by anti-entropy) is refused.
    let push: Message<Actor<u32>> = Message::Push {
        objects: vec![(
            Bytes::from(super::store::tree_key(&p(), b"k")),
            Object::decode(&old, 1024).unwrap(),
        )],
    };
    horizon
        .with(0, |n, now| n.handle_frame(now, 2, &frame(Kind::AntiEntropy, &push)))
        .unwrap();
    assert!(horizon.node(0).get(&p(), b"k").is_none());
    assert_eq!(horizon.node(0).stats().metadata.refused_collected, 1);
    // A new write to the collected key supersedes the collected context.
    horizon
        .with(2, |n, now| n.put(now, &p(), b"k", b("reborn"), None))
        .unwrap();
    horizon.run(Duration::from_secs(2));
    for n in horizon.nodes() {
        assert_eq!(n.get_resolved(&p(), b"k"), Some(b("reborn")));
    }
}

mod fuzzish {
    use super::*;
    use proptest::prelude::*;

    /// Valid metadata frames of every shape, to mutate.
    fn seeds() -> Vec<Vec<u8>> {
        let object = Object::write(None, VClock::new(), Some(b("value")), 1, Actor::new(0u32, 0));
        let key = Bytes::from(super::super::store::tree_key(&p(), b"k"));
        let id = super::super::Id {
            prefix: p(),
            key: b("k"),
            context: object.context(),
        };
        let gossip: broadcast::Message<u32, super::super::Id<Actor<u32>>> = broadcast::Message::Gossip {
            id: id.clone(),
            root: 0,
            round: 1,
            payload: object.encode(),
        };
        let ae: Vec<Message<Actor<u32>>> = vec![
            Message::Push {
                objects: vec![(key.clone(), object.clone())],
            },
            Message::Objects {
                session: 3,
                objects: vec![(key.clone(), Some(object.clone())), (key.clone(), None)],
            },
            Message::GcAck {
                tombstones: vec![super::super::Tombstone {
                    key: key.clone(),
                    context: object.context(),
                }],
            },
            Message::TreeRequest {
                session: 1,
                request: crate::hashtree::Message::KeysRequest {
                    segments: vec![1, 2],
                    after: None,
                },
            },
        ];
        let mut out = vec![frame(Kind::Metadata, &gossip)];
        out.extend(ae.iter().map(|m| frame(Kind::AntiEntropy, m)));
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn mutated_metadata_frames_never_panic(
            which in 0usize..5,
            flips in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 0..6),
            cut in any::<proptest::sample::Index>(),
            truncate in any::<bool>(),
        ) {
            let mut node: Node<u32> = Node::new(1, Config::mesh(2));
            node.join(Instant::ZERO, [0]);
            let mut f = seeds().swap_remove(which);
            for (at, byte) in flips {
                let i = at.index(f.len() - 2) + 2;
                f[i] ^= byte;
            }
            if truncate {
                f.truncate(cut.index(f.len()).max(2));
            }
            let _ = node.handle_frame(Instant::from_millis(1), 0, &f);
            node.handle_timeout(Instant::from_millis(30_000));
            while node.poll_transmit().is_some() {}
            while node.poll_event().is_some() {}
        }
    }
}
