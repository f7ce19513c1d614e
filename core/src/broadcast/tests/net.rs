//! Plumtree engines on the [`testing`](crate::testing) network: a fixed
//! overlay, random per-message latency and optional random loss, with the
//! paper's measurements (deliveries, LDH, payload counts, RMR).

use crate::broadcast::{Config, Event, Message, MessageCache, Plumtree};
use crate::testing::{Machine, Network};
use crate::time::{Duration, Instant};
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;
use bytes::Bytes;
use core::convert::Infallible;
use rand::Rng as _;

pub(super) type Id = (u32, u32);
pub(super) type Node = Plumtree<u32, Id>;

/// One engine with its message store, counting the payloads it sends.
pub(super) struct Engine {
    plumtree: Node,
    store: MessageCache<Id>,
    /// Payload messages (GOSSIP) sent for each message.
    payloads: BTreeMap<Id, u64>,
}

impl Machine for Engine {
    type Id = u32;
    type Message = Message<u32, Id>;
    type Event = Event<u32, Id>;
    type Error = Infallible;

    fn handle_message(&mut self, now: Instant, from: u32, message: Self::Message) -> Result<(), Infallible> {
        self.plumtree.handle_message(now, from, message, &mut self.store);
        Ok(())
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.plumtree.handle_timeout(now, &mut self.store);
    }

    fn poll_transmit(&mut self) -> Option<(u32, Self::Message)> {
        let (to, message) = self.plumtree.poll_transmit()?;
        if let Message::Gossip { id, .. } = &message {
            *self.payloads.entry(*id).or_default() += 1;
        }
        Some((to, message))
    }

    fn poll_event(&mut self) -> Option<Self::Event> {
        self.plumtree.poll_event()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.plumtree.poll_timeout()
    }
}

pub(super) struct Net {
    net: Network<Engine>,
    /// Every message broadcast so far.
    sent: BTreeSet<Id>,
}

impl Net {
    /// `n` nodes on a ring plus random chords, every node of degree at least
    /// `degree` (a few exceed it so that all can reach it).
    pub(super) fn new(n: u32, degree: usize, config: &Config, seed: u64) -> Net {
        let mut net = Network::new(seed);
        let rng = net.rng();
        let mut adj: Vec<BTreeSet<u32>> = (0..n).map(|_| BTreeSet::new()).collect();
        for i in 0..n {
            let j = (i + 1) % n;
            adj[i as usize].insert(j);
            adj[j as usize].insert(i);
        }
        for i in 0..n {
            let mut tries = 0;
            while adj[i as usize].len() < degree && tries < 1000 {
                tries += 1;
                let j = rng.random_range(0..n);
                if j == i || adj[i as usize].contains(&j) || adj[j as usize].len() > degree {
                    continue;
                }
                adj[i as usize].insert(j);
                adj[j as usize].insert(i);
            }
        }
        Net::with_overlay(net, &adj, config, seed)
    }

    /// Every node a neighbour of every other: the full-mesh membership.
    pub(super) fn complete(n: u32, config: &Config, seed: u64) -> Net {
        let adj: Vec<BTreeSet<u32>> = (0..n).map(|i| (0..n).filter(|&j| j != i).collect()).collect();
        Net::with_overlay(Network::new(seed), &adj, config, seed)
    }

    fn with_overlay(mut net: Network<Engine>, adj: &[BTreeSet<u32>], config: &Config, seed: u64) -> Net {
        for (i, peers) in (0u32..).zip(adj) {
            let mut plumtree = Plumtree::new(i, config.clone(), seed ^ (u64::from(i) << 20));
            for &j in peers {
                plumtree.neighbor_up(Instant::ZERO, j);
            }
            let engine = Engine {
                plumtree,
                store: MessageCache::new(4096, 65_536),
                payloads: BTreeMap::new(),
            };
            net.add(i, engine);
        }
        net.set_latency(Duration::from_millis(1), Duration::from_millis(10));
        Net {
            net,
            sent: BTreeSet::new(),
        }
    }

    /// The engines, by id.
    pub(super) fn nodes(&self) -> impl Iterator<Item = &Node> + '_ {
        self.net.nodes().map(|(_, e)| &e.plumtree)
    }

    /// The virtual time.
    pub(super) fn now(&self) -> Instant {
        self.net.now()
    }

    /// Each message is lost with probability `p` from now on.
    pub(super) fn set_loss(&mut self, p: f64) {
        self.net.set_loss(p);
    }

    /// Messages lost so far.
    pub(super) fn lost(&self) -> u64 {
        self.net.lost()
    }

    /// Node `from` broadcasts message `(from, seq)`.
    pub(super) fn broadcast(&mut self, from: u32, seq: u32) -> Id {
        let id = (from, seq);
        let payload = Bytes::from(alloc::vec![seq as u8; 100]);
        self.net
            .with(&from, |e, now| e.plumtree.broadcast(now, id, payload, &mut e.store))
            .unwrap();
        self.sent.insert(id);
        id
    }

    /// See [`Network::run_until_idle`].
    pub(super) fn run_until_quiet(&mut self, limit: Duration) -> bool {
        self.net.run_until_idle(limit)
    }

    /// Who delivered each message broadcast so far (a node twice is a bug).
    pub(super) fn deliveries(&self) -> BTreeMap<Id, Vec<u32>> {
        let mut out: BTreeMap<Id, Vec<u32>> = self.sent.iter().map(|&id| (id, Vec::new())).collect();
        for (&node, _) in self.net.nodes() {
            for Event::Delivered { id, .. } in self.net.events(&node) {
                out.entry(*id).or_default().push(node);
            }
        }
        out
    }

    /// Last delivery hop of each message.
    pub(super) fn ldh(&self) -> BTreeMap<Id, u32> {
        let mut out: BTreeMap<Id, u32> = BTreeMap::new();
        for (node, _) in self.net.nodes() {
            for Event::Delivered { id, hops, .. } in self.net.events(node) {
                let ldh = out.entry(*id).or_default();
                *ldh = (*ldh).max(*hops);
            }
        }
        out
    }

    /// Relative message redundancy of one broadcast: payload messages over
    /// receivers, minus one (PAPERS.md, paper §2.3).
    pub(super) fn rmr(&self, id: Id) -> f64 {
        let receivers = self.deliveries().get(&id).map_or(0, Vec::len);
        let m: u64 = self
            .net
            .nodes()
            .map(|(_, e)| e.payloads.get(&id).copied().unwrap_or(0))
            .sum();
        m as f64 / receivers as f64 - 1.0
    }

    /// Asserts that every node but the origin delivered `id` exactly once.
    pub(super) fn assert_exactly_once(&self, id: Id) {
        let deliveries = self.deliveries();
        let got = &deliveries[&id];
        let distinct: BTreeSet<u32> = got.iter().copied().collect();
        assert_eq!(distinct.len(), got.len(), "{id:?} delivered twice somewhere");
        assert!(!distinct.contains(&id.0), "{id:?} delivered at its origin");
        let n = self.net.nodes().count();
        assert_eq!(got.len(), n - 1, "{id:?} reached {} of {n} nodes", got.len() + 1);
    }
}
