//! A tiny deterministic network: a fixed overlay, a virtual clock, random
//! per-message latency and optional random loss.

use crate::broadcast::{Config, Event, Message, MessageCache, Plumtree};
use crate::rng::{self, Rng};
use crate::time::{Duration, Instant};
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;
use bytes::Bytes;
use rand::Rng as _;

pub(super) type Id = (u32, u32);
pub(super) type Node = Plumtree<u32, Id>;
/// A message in flight: sender, receiver, message.
type InFlight = (u32, u32, Message<u32, Id>);

pub(super) struct Net {
    pub(super) nodes: Vec<Node>,
    pub(super) stores: Vec<MessageCache<Id>>,
    queue: BTreeMap<(Instant, u64), InFlight>,
    timers: BTreeSet<(Instant, u32)>,
    deadline: Vec<Option<Instant>>,
    seq: u64,
    pub(super) now: Instant,
    rng: Rng,
    /// Probability that a message is lost.
    pub(super) loss: f64,
    /// Who delivered each message, in order (a node twice is a bug).
    pub(super) deliveries: BTreeMap<Id, Vec<u32>>,
    /// Last delivery hop of each message.
    pub(super) ldh: BTreeMap<Id, u32>,
    /// Payload messages (GOSSIP) sent for each message.
    pub(super) payloads: BTreeMap<Id, u64>,
    pub(super) lost: u64,
}

impl Net {
    /// `n` nodes on a ring plus random chords, every node of degree at least
    /// `degree` (a few exceed it so that all can reach it).
    pub(super) fn new(n: u32, degree: usize, config: &Config, seed: u64) -> Net {
        let mut rng = rng::from_seed(seed);
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
        Net::with_overlay(&adj, config, seed, rng)
    }

    /// Every node a neighbour of every other: the full-mesh membership.
    pub(super) fn complete(n: u32, config: &Config, seed: u64) -> Net {
        let adj: Vec<BTreeSet<u32>> = (0..n).map(|i| (0..n).filter(|&j| j != i).collect()).collect();
        Net::with_overlay(&adj, config, seed, rng::from_seed(seed))
    }

    fn with_overlay(adj: &[BTreeSet<u32>], config: &Config, seed: u64, rng: Rng) -> Net {
        let n = adj.len() as u32;
        let mut net = Net {
            nodes: (0..n)
                .map(|i| Plumtree::new(i, config.clone(), seed ^ (u64::from(i) << 20)))
                .collect(),
            stores: (0..n).map(|_| MessageCache::new(4096, 65_536)).collect(),
            queue: BTreeMap::new(),
            timers: BTreeSet::new(),
            deadline: alloc::vec![None; n as usize],
            seq: 0,
            now: Instant::ZERO,
            rng,
            loss: 0.0,
            deliveries: BTreeMap::new(),
            ldh: BTreeMap::new(),
            payloads: BTreeMap::new(),
            lost: 0,
        };
        for (i, peers) in adj.iter().enumerate() {
            for &j in peers {
                net.nodes[i].neighbor_up(Instant::ZERO, j);
            }
        }
        net
    }

    /// Node `from` broadcasts message `(from, seq)`.
    pub(super) fn broadcast(&mut self, from: u32, seq: u32) -> Id {
        let id = (from, seq);
        let i = from as usize;
        let payload = Bytes::from(alloc::vec![seq as u8; 100]);
        self.nodes[i]
            .broadcast(self.now, id, payload, &mut self.stores[i])
            .unwrap();
        self.deliveries.entry(id).or_default();
        self.after(from);
        id
    }

    /// Drains node `i`'s outputs and re-files its timer.
    fn after(&mut self, i: u32) {
        let node = &mut self.nodes[i as usize];
        while let Some((to, msg)) = node.poll_transmit() {
            if let Message::Gossip { id, .. } = &msg {
                *self.payloads.entry(*id).or_default() += 1;
            }
            if self.loss > 0.0 && self.rng.random_bool(self.loss) {
                self.lost += 1;
                continue;
            }
            let at = self.now + Duration::from_micros(self.rng.random_range(1_000..=10_000));
            self.seq += 1;
            self.queue.insert((at, self.seq), (i, to, msg));
        }
        while let Some(ev) = node.poll_event() {
            let Event::Delivered { id, hops, .. } = ev;
            self.deliveries.entry(id).or_default().push(i);
            let ldh = self.ldh.entry(id).or_default();
            *ldh = (*ldh).max(hops);
        }
        if let Some(old) = self.deadline[i as usize].take() {
            self.timers.remove(&(old, i));
        }
        if let Some(at) = node.poll_timeout() {
            assert!(at >= self.now, "a deadline in the past");
            self.deadline[i as usize] = Some(at);
            self.timers.insert((at, i));
        }
    }

    /// Delivers the next message or fires the next timer; false when idle.
    pub(super) fn step(&mut self) -> bool {
        let msg_at = self.queue.first_key_value().map(|(k, _)| k.0);
        let timer_at = self.timers.first().map(|t| t.0);
        match (msg_at, timer_at) {
            (Some(m), t) if t.is_none_or(|t| m <= t) => {
                let Some((_, (from, to, msg))) = self.queue.pop_first() else {
                    return false;
                };
                self.now = m;
                let t = to as usize;
                self.nodes[t].handle_message(self.now, from, msg, &mut self.stores[t]);
                self.after(to);
                true
            }
            (_, Some(t)) => {
                let Some((_, i)) = self.timers.pop_first() else {
                    return false;
                };
                self.deadline[i as usize] = None;
                self.now = t;
                self.nodes[i as usize].handle_timeout(self.now, &mut self.stores[i as usize]);
                self.after(i);
                true
            }
            _ => false,
        }
    }

    /// Runs until nothing is in flight and no timer is set, or for at most
    /// `limit` of virtual time. Whether it went quiet.
    pub(super) fn run_until_quiet(&mut self, limit: Duration) -> bool {
        let end = self.now + limit;
        loop {
            let next = [
                self.queue.first_key_value().map(|(k, _)| k.0),
                self.timers.first().map(|t| t.0),
            ]
            .into_iter()
            .flatten()
            .min();
            match next {
                None => return true,
                Some(at) if at > end => return false,
                Some(_) => {
                    self.step();
                }
            }
        }
    }

    /// Relative message redundancy of one broadcast: payload messages over
    /// receivers, minus one (PAPERS.md, paper §2.3).
    pub(super) fn rmr(&self, id: Id) -> f64 {
        let receivers = self.deliveries.get(&id).map_or(0, Vec::len);
        let m = self.payloads.get(&id).copied().unwrap_or(0);
        m as f64 / receivers as f64 - 1.0
    }

    /// Asserts that every node but the origin delivered `id` exactly once.
    pub(super) fn assert_exactly_once(&self, id: Id) {
        let got = &self.deliveries[&id];
        let distinct: BTreeSet<u32> = got.iter().copied().collect();
        assert_eq!(distinct.len(), got.len(), "{id:?} delivered twice somewhere");
        assert!(!distinct.contains(&id.0), "{id:?} delivered at its origin");
        assert_eq!(
            got.len(),
            self.nodes.len() - 1,
            "{id:?} reached {} of {} nodes",
            got.len() + 1,
            self.nodes.len()
        );
    }
}
