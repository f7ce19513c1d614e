//! Anti-entropy: periodic hash-tree exchanges with a random peer, and repair
//! in both directions (Riak's `riak_core_metadata_exchange_fsm`).
//!
//! The initiator keeps one [`Session`] per exchange, at most
//! [`Config::max_concurrent_exchanges`](super::Config::max_concurrent_exchanges);
//! the responder keeps nothing (the hash tree's `respond` is stateless, and
//! fetches are answered from the store), so peers cannot make it grow.

use super::message::{MAX_ENTRIES, Message};
use super::object::Object;
use super::replica::{Peers, Replica};
use super::store::parse_tree_key;
use super::{Actor, ChangeSource};
use crate::hashtree::{self, Diff, Exchange, Step};
use crate::identity::Identity;
use crate::rng;
use crate::time::Instant;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use bytes::Bytes;

/// Bytes counted per list entry on top of its contents: length prefixes and
/// an option tag, generously.
const ENTRY_OVERHEAD: usize = 12;

/// Exchanges this node runs as initiator.
pub(crate) struct AntiEntropy<I> {
    /// The next exchange tick.
    pub(crate) tick: Option<Instant>,
    sessions: BTreeMap<u64, Session<I>>,
    next_session: u64,
}

struct Session<I> {
    peer: I,
    /// Abandoned if no reply comes by then.
    deadline: Instant,
    phase: Phase,
}

enum Phase {
    /// Comparing trees.
    Tree(Exchange),
    /// Fetching what differs: `asked` is in flight, `todo` waits.
    Fetch { todo: VecDeque<Bytes>, asked: Vec<Bytes> },
}

impl<I: Identity> AntiEntropy<I> {
    pub(crate) fn new() -> Self {
        AntiEntropy {
            tick: None,
            sessions: BTreeMap::new(),
            next_session: 0,
        }
    }

    pub(crate) fn sessions(&self) -> usize {
        self.sessions.len()
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.sessions.values().map(|s| s.deadline).min()
    }
}

impl<I: Identity> Replica<I> {
    /// The exchange tick: start an exchange if there is room.
    pub(crate) fn exchange_tick(&mut self, now: Instant, peers: &Peers<'_, I>) {
        let c = &self.core.config;
        self.ae.tick = if self.core.store.is_empty() || c.max_concurrent_exchanges == 0 {
            None
        } else {
            Some(now + c.exchange_interval.max(crate::Duration::from_millis(1)))
        };
        if self.ae.tick.is_none() || self.ae.sessions.len() >= c.max_concurrent_exchanges {
            return;
        }
        if let Some(peer) = self.pick_peer(peers) {
            self.start_exchange(now, peer);
        }
    }

    /// A random peer, preferring those outside the eager and lazy sets of
    /// this node's own broadcast tree (every other exchange, when there are
    /// some); never one already in an exchange.
    ///
    /// Only a preference: every known peer keeps a chance. Picking only
    /// outside the tree can pair a node for good with the one peer there
    /// that is as stale as itself (a HyParView passive view of one), and
    /// the two then never converge with the rest (the chaos sweep's seed
    /// 86: two nodes missing one sibling after 300 s).
    fn pick_peer(&mut self, peers: &Peers<'_, I>) -> Option<I> {
        let me = &self.core.me;
        let mut candidates: Vec<&I> = peers
            .neighbors
            .iter()
            .chain(peers.others)
            .filter(|p| *p != me && !self.ae.sessions.values().any(|s| s.peer == **p))
            .collect();
        candidates.sort();
        candidates.dedup();
        let in_tree =
            |p: &I| self.plumtree.eager_peers(me).any(|q| q == p) || self.plumtree.lazy_peers(me).any(|q| q == p);
        let outside: Vec<&I> = candidates.iter().copied().filter(|p| !in_tree(p)).collect();
        let prefer_outside = !outside.is_empty() && rng::index(&mut self.rng, 2) == Some(0);
        let pool = if prefer_outside { &outside } else { &candidates };
        rng::index(&mut self.rng, pool.len()).map(|i| pool[i].clone())
    }

    fn start_exchange(&mut self, now: Instant, peer: I) {
        let limits = self.core.config.exchange_limits;
        let (exchange, request) = Exchange::with_limits(self.core.store.tree(), limits);
        let session = self.ae.next_session;
        self.ae.next_session += 1;
        self.ae.sessions.insert(
            session,
            Session {
                peer: peer.clone(),
                deadline: now + self.core.config.exchange_timeout,
                phase: Phase::Tree(exchange),
            },
        );
        self.core.stats.exchanges_started += 1;
        crate::log::decision!(me = ?self.core.me, ?peer, session, "anti-entropy exchange started");
        self.core.stats.exchange_rounds += 1;
        self.send(peer, Message::TreeRequest { session, request });
    }

    /// Abandons exchanges whose peer has not answered in time.
    pub(crate) fn expire_sessions(&mut self, now: Instant) {
        let before = self.ae.sessions.len();
        self.ae.sessions.retain(|_, s| s.deadline > now);
        self.core.stats.exchanges_timed_out += (before - self.ae.sessions.len()) as u64;
    }

    /// The link to `peer` broke: its exchanges are over.
    pub(crate) fn link_down(&mut self, peer: &I) {
        let before = self.ae.sessions.len();
        self.ae.sessions.retain(|_, s| s.peer != *peer);
        self.core.stats.exchanges_failed += (before - self.ae.sessions.len()) as u64;
    }

    /// An anti-entropy or GC message from `from` (a member, in mesh mode).
    pub(crate) fn handle_message(&mut self, now: Instant, from: I, message: Message<Actor<I>>) {
        match message {
            Message::TreeRequest { session, request } => {
                let reply = match hashtree::respond(self.core.store.tree(), &request) {
                    Ok(reply) => Message::TreeReply { session, reply },
                    Err(_) => {
                        self.core.stats.out_of_place += 1;
                        Message::Abort { session }
                    }
                };
                self.send(from, reply);
            }
            Message::TreeReply { session, reply } => self.on_tree_reply(now, from, session, reply),
            Message::Abort { session } => {
                if self.ae.sessions.get(&session).is_some_and(|s| s.peer == from) {
                    self.ae.sessions.remove(&session);
                    self.core.stats.exchanges_failed += 1;
                } else {
                    self.core.stats.out_of_place += 1;
                }
            }
            Message::Fetch { session, keys } => {
                let objects = self.answer_fetch(&from, &keys);
                self.send(from, Message::Objects { session, objects });
            }
            Message::Objects { session, objects } => self.on_objects(now, from, session, objects),
            Message::Push { objects } => {
                for (key, object) in objects {
                    if let Some((prefix, key)) = parse_tree_key(&key) {
                        self.core
                            .apply_remote(now, &prefix, &key, object, ChangeSource::AntiEntropy);
                    }
                }
            }
            Message::GcAck { tombstones } => self.on_gc_ack(now, from, tombstones),
            Message::GcCollect { tombstones } => self.on_gc_collect(now, tombstones),
        }
        self.flush(now);
        self.arm(now);
    }

    fn on_tree_reply(&mut self, now: Instant, from: I, session: u64, reply: hashtree::Message) {
        let timeout = self.core.config.exchange_timeout;
        let Some(s) = self.ae.sessions.get_mut(&session).filter(|s| s.peer == from) else {
            self.core.stats.out_of_place += 1;
            return;
        };
        let Phase::Tree(exchange) = &mut s.phase else {
            self.core.stats.out_of_place += 1;
            return;
        };
        s.deadline = now + timeout;
        match exchange.handle(self.core.store.tree(), reply) {
            Ok(Step::Send(request)) => {
                self.core.stats.exchange_rounds += 1;
                self.send(from, Message::TreeRequest { session, request });
            }
            Ok(Step::Done(diff)) => self.repair(session, from, diff),
            Err(_) => {
                self.ae.sessions.remove(&session);
                self.core.stats.exchanges_failed += 1;
            }
        }
    }

    /// Repairs both ways: pushes what the peer lacks or holds differently,
    /// then fetches what this node lacks or holds differently.
    fn repair(&mut self, session: u64, peer: I, diff: Diff) {
        self.core.stats.keys_different += diff.len() as u64;
        let Diff {
            missing_locally,
            missing_remotely,
            different,
            ..
        } = diff;
        let push: Vec<&[u8]> = missing_remotely.iter().chain(&different).map(Vec::as_slice).collect();
        self.push(&peer, &push);
        let todo: VecDeque<Bytes> = missing_locally.into_iter().chain(different).map(Bytes::from).collect();
        if todo.is_empty() {
            self.ae.sessions.remove(&session);
            self.core.stats.exchanges_completed += 1;
            crate::log::decision!(me = ?self.core.me, session, "anti-entropy exchange completed");
            return;
        }
        if let Some(s) = self.ae.sessions.get_mut(&session) {
            s.phase = Phase::Fetch {
                todo,
                asked: Vec::new(),
            };
        }
        self.fetch_next(session);
    }

    /// Sends our durable objects for `keys` to `peer`, in frames of at most
    /// the budget.
    fn push(&mut self, peer: &I, keys: &[&[u8]]) {
        let mut objects = Vec::new();
        for key in keys {
            let Some((prefix, k)) = parse_tree_key(key) else {
                continue;
            };
            if !self.core.is_clean(&prefix, &k) {
                continue;
            }
            if let Some(e) = self.core.store.get(&prefix, &k) {
                objects.push((Bytes::copy_from_slice(key), e.object.clone()));
            }
        }
        self.push_objects(peer, objects);
    }

    /// Sends `objects` to `peer` in [`Message::Push`] frames within the
    /// budget. An object too large for one frame (siblings merged from many
    /// writers) goes in parts of whole writers' entries, which the peer
    /// merges back into the object.
    fn push_objects(&mut self, peer: &I, objects: Vec<(Bytes, Object<Actor<I>>)>) {
        let mut batch: Vec<(Bytes, Object<Actor<I>>)> = Vec::new();
        let mut used = 0;
        for (key, object) in objects {
            let room = self.budget.saturating_sub(key.len() + ENTRY_OVERHEAD);
            let Some(parts) = object.split(room) else {
                self.core.stats.oversized += 1;
                continue;
            };
            if parts.len() > 1 {
                self.core.stats.split_objects += 1;
            }
            self.core.stats.objects_pushed += 1;
            for part in parts {
                let cost = key.len() + part.encode().len() + ENTRY_OVERHEAD;
                if !batch.is_empty() && (used + cost > self.budget || batch.len() >= MAX_ENTRIES) {
                    let objects = core::mem::take(&mut batch);
                    self.transmits.push_back((peer.clone(), Message::Push { objects }));
                    used = 0;
                }
                used += cost;
                batch.push((key.clone(), part));
            }
        }
        if !batch.is_empty() {
            self.transmits
                .push_back((peer.clone(), Message::Push { objects: batch }));
        }
    }

    /// Asks for the next batch of a fetching session, or ends it.
    fn fetch_next(&mut self, session: u64) {
        let budget = self.budget;
        let Some(s) = self.ae.sessions.get_mut(&session) else {
            return;
        };
        let Phase::Fetch { todo, asked } = &mut s.phase else {
            return;
        };
        let mut used = 0;
        asked.clear();
        while let Some(key) = todo.front() {
            let cost = key.len() + ENTRY_OVERHEAD;
            if !asked.is_empty() && (used + cost > budget || asked.len() >= MAX_ENTRIES) {
                break;
            }
            used += cost;
            if let Some(key) = todo.pop_front() {
                asked.push(key);
            }
        }
        if asked.is_empty() {
            self.ae.sessions.remove(&session);
            self.core.stats.exchanges_completed += 1;
            crate::log::decision!(me = ?self.core.me, session, "anti-entropy exchange completed");
            return;
        }
        let (peer, keys) = (s.peer.clone(), asked.clone());
        self.send(peer, Message::Fetch { session, keys });
    }

    /// The objects for a prefix of `keys`, within the budget; `None` for a
    /// key not held or not yet durable. An object too large for one frame is
    /// answered `None` and pushed to `from` in parts instead.
    fn answer_fetch(&mut self, from: &I, keys: &[Bytes]) -> Vec<(Bytes, Option<Object<Actor<I>>>)> {
        let mut out = Vec::new();
        let mut large = Vec::new();
        let mut used = 0;
        for key in keys {
            let found = parse_tree_key(key).and_then(|(prefix, k)| {
                let e = self.core.store.get(&prefix, &k)?;
                self.core.is_clean(&prefix, &k).then_some(e)
            });
            let (cost, object) = match found {
                Some(e) if key.len() + e.encoded.len() + ENTRY_OVERHEAD > self.budget => {
                    large.push((key.clone(), e.object.clone()));
                    (key.len() + ENTRY_OVERHEAD, None)
                }
                Some(e) => (key.len() + e.encoded.len() + ENTRY_OVERHEAD, Some(e.object.clone())),
                None => (key.len() + ENTRY_OVERHEAD, None),
            };
            // At least one answer per reply, so the fetch always advances.
            if !out.is_empty() && used + cost > self.budget {
                break;
            }
            used += cost;
            out.push((key.clone(), object));
        }
        // Only the large objects actually answered (the loop may stop early).
        large.retain(|(k, _)| out.iter().any(|(o, _)| o == k));
        self.push_objects(from, large);
        out
    }

    fn on_objects(&mut self, now: Instant, from: I, session: u64, objects: Vec<(Bytes, Option<Object<Actor<I>>>)>) {
        let timeout = self.core.config.exchange_timeout;
        let Some(s) = self.ae.sessions.get_mut(&session).filter(|s| s.peer == from) else {
            self.core.stats.out_of_place += 1;
            return;
        };
        let Phase::Fetch { todo, asked } = &mut s.phase else {
            self.core.stats.out_of_place += 1;
            return;
        };
        // The reply must answer a prefix of what was asked, in order.
        let answers = objects.len() <= asked.len() && objects.iter().zip(asked.iter()).all(|((k, _), a)| k == a);
        if !answers {
            self.ae.sessions.remove(&session);
            self.core.stats.out_of_place += 1;
            self.core.stats.exchanges_failed += 1;
            return;
        }
        s.deadline = now + timeout;
        for key in asked.drain(objects.len()..).rev() {
            todo.push_front(key);
        }
        for (key, object) in objects {
            let Some(object) = object else { continue };
            self.core.stats.objects_fetched += 1;
            if let Some((prefix, key)) = parse_tree_key(&key) {
                self.core
                    .apply_remote(now, &prefix, &key, object, ChangeSource::AntiEntropy);
            }
        }
        self.fetch_next(session);
    }
}
