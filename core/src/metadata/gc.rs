//! Tombstone garbage collection: acknowledgements to a collector in mesh
//! mode, the retention horizon, and the memory of what was collected. The
//! rule and its trade-offs are in the [module docs](super).
//!
//! # Dots after a collection
//!
//! Collecting a key drops the only record of the dots its writers gave it.
//! So that no later write can be given one of them again, [`Replica::collect`]
//! moves this node's writer to a new epoch whenever the collected tombstone
//! holds a dot of the current one (see [`Actor`]); a restart is a new
//! incarnation, disk or no disk. The memory kept here ([`Collected`]) is
//! only an optimisation on top of that: while it lasts, a new write to the
//! key supersedes the collected tombstone instead of standing beside a copy
//! that a late member may still hold, and old copies in flight are refused.
//!
//! # What a client holding a very old context can expect
//!
//! - Within [`Config::collected_retention`](super::Config::collected_retention)
//!   of the collection, writing it back overwrites exactly what it saw and
//!   supersedes the collected tombstone.
//! - Later, it still overwrites only the dots it names. Every write made
//!   since the collection is by an actor the old context does not name, so
//!   it stays as a sibling: nothing the client never saw is lost.
//! - Not promised: that a member away for longer than the collection (one
//!   removed from the mesh, or past a tombstone-retention horizon) does not
//!   bring back its own older copy. Mesh mode refuses metadata from
//!   non-members for that reason; with a horizon, wipe such a member.

use super::message::{MAX_ENTRIES, Message, Tombstone};
use super::replica::{Key, Peers, Replica};
use super::store::{parse_tree_key, tree_key};
use super::{Actor, Context, FullPrefix};
use crate::clock::VClock;
use crate::identity::Identity;
use crate::time::{Duration, Instant};
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::vec::Vec;
use bytes::Bytes;

/// Bytes counted per tombstone entry beyond its key: the context (a few
/// bytes per actor, counted separately) and length prefixes.
const TOMBSTONE_OVERHEAD: usize = 8;
/// The tombstones of one GC message.
type Tombstones<I> = Vec<Tombstone<Actor<I>>>;

/// Bytes counted per context entry: the actor (identity, incarnation and
/// epoch, a socket address at worst) and the counter.
const ACTOR_COST: usize = 48;

/// Collected tombstones: key → context, for a time and up to a count.
///
/// Entries leave in insertion order, which is also expiry order (every
/// entry lives `retention`); a re-inserted key leaves a stale queue entry
/// behind, recognised by its sequence number and compacted away.
pub(crate) struct Collected<I: Ord> {
    map: BTreeMap<Key, (VClock<I>, u64)>,
    queue: VecDeque<(u64, Instant, Key)>,
    next: u64,
    capacity: usize,
    retention: Duration,
}

impl<I: Ord + Clone> Collected<I> {
    pub(crate) fn new(capacity: usize, retention: Duration) -> Self {
        Collected {
            map: BTreeMap::new(),
            queue: VecDeque::new(),
            next: 0,
            capacity,
            retention,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// The remembered context of a collected key.
    pub(crate) fn context(&self, prefix: &FullPrefix, key: &Bytes) -> Option<&VClock<I>> {
        if self.map.is_empty() {
            return None;
        }
        self.map.get(&(prefix.clone(), key.clone())).map(|(c, _)| c)
    }

    /// Whether an object with `context` is superseded by a collected
    /// tombstone: an older copy, which must not be stored again.
    pub(crate) fn supersedes(&self, prefix: &FullPrefix, key: &Bytes, context: &VClock<I>) -> bool {
        self.context(prefix, key).is_some_and(|c| c.descends(context))
    }

    /// Remembers that `key` was collected at `context`.
    pub(crate) fn insert(&mut self, now: Instant, key: Key, context: VClock<I>) {
        if self.capacity == 0 {
            return;
        }
        let seq = self.next;
        self.next += 1;
        let context = match self.map.remove(&key) {
            Some((mut old, _)) => {
                old.merge(&context);
                old
            }
            None => context,
        };
        self.map.insert(key.clone(), (context, seq));
        self.queue.push_back((seq, now + self.retention, key));
        while self.map.len() > self.capacity {
            self.pop();
        }
        if self.queue.len() > 2 * self.map.len() + 32 {
            let map = &self.map;
            self.queue
                .retain(|(seq, _, k)| map.get(k).is_some_and(|(_, s)| s == seq));
        }
    }

    /// Forgets what has been remembered long enough.
    pub(crate) fn expire(&mut self, now: Instant) {
        while self.queue.front().is_some_and(|(_, at, _)| *at <= now) {
            self.pop();
        }
    }

    fn pop(&mut self) {
        if let Some((seq, _, key)) = self.queue.pop_front() {
            if self.map.get(&key).is_some_and(|(_, s)| *s == seq) {
                self.map.remove(&key);
            }
        }
    }
}

/// The GC tick and, at the collector, the acknowledgements gathered.
pub(crate) struct Gc<I: Ord> {
    pub(crate) tick: Option<Instant>,
    /// Tombstone → the context acknowledged and who acknowledged it. Only
    /// for tombstones this node holds, so bounded by them times the members.
    acks: BTreeMap<Key, (Context<I>, BTreeSet<I>)>,
}

impl<I: Ord + Clone> Gc<I> {
    pub(crate) fn new() -> Self {
        Gc {
            tick: None,
            acks: BTreeMap::new(),
        }
    }

    pub(crate) fn pending(&self) -> usize {
        self.acks.len()
    }
}

impl<I: Identity> Replica<I> {
    /// The GC tick: expire the memory, apply the retention horizon, then ack
    /// (or, at the collector, collect) in mesh mode.
    pub(crate) fn gc_tick(&mut self, now: Instant, peers: &Peers<'_, I>) {
        let interval = self.core.config.gc_interval.max(Duration::from_millis(1));
        self.core.collected.expire(now);
        if let Some(horizon) = self.core.config.tombstone_retention {
            let old: Vec<Key> = self
                .clean_tombstones()
                .filter(|(p, k)| {
                    self.core
                        .store
                        .get(p, k)
                        .and_then(|e| e.tombstone_since)
                        .is_some_and(|since| since + horizon <= now)
                })
                .collect();
            for (prefix, key) in old {
                self.collect(now, &prefix, &key);
            }
        }
        // Forget acks for what is no longer the tombstone they acknowledged.
        let store = &self.core.store;
        self.gc.acks.retain(|(p, k), (ctx, _)| {
            store
                .get(p, k)
                .is_some_and(|e| e.object.is_tombstone() && e.context == *ctx)
        });
        if let Some(members) = peers.members {
            self.gc_mesh(now, members);
        }
        let work = !self.core.store.tombstones().is_empty() || self.core.collected.len() > 0;
        self.gc.tick = work.then_some(now + interval);
    }

    /// Tombstones whose records are all confirmed.
    fn clean_tombstones(&self) -> impl Iterator<Item = Key> + '_ {
        self.core
            .store
            .tombstones()
            .iter()
            .filter(|(p, k)| self.core.is_clean(p, k))
            .cloned()
    }

    fn gc_mesh(&mut self, now: Instant, members: &[I]) {
        let me = self.core.me.clone();
        // A node removed from the cluster collects nothing: nobody accepts
        // its metadata any more.
        if !members.contains(&me) {
            return;
        }
        let Some(collector) = members.iter().min().cloned() else {
            return;
        };
        if collector != me {
            let held: Vec<Tombstone<Actor<I>>> = self
                .clean_tombstones()
                .filter_map(|(p, k)| self.tombstone(&p, &k))
                .collect();
            self.core.stats.gc_acks_sent += held.len() as u64;
            self.send_tombstones(&[collector], held, |tombstones| Message::GcAck { tombstones });
            return;
        }
        // The collector: every other member acked this exact tombstone.
        let others: Vec<I> = members.iter().filter(|m| **m != me).cloned().collect();
        let ready: Vec<Key> = self
            .clean_tombstones()
            .filter(|k| {
                let Some(e) = self.core.store.get(&k.0, &k.1) else {
                    return false;
                };
                match self.gc.acks.get(k) {
                    Some((ctx, who)) => *ctx == e.context && others.iter().all(|m| who.contains(m)),
                    None => others.is_empty(),
                }
            })
            .collect();
        let mut collected = Vec::new();
        for (prefix, key) in ready {
            if let Some(t) = self.tombstone(&prefix, &key) {
                collected.push(t);
            }
            self.collect(now, &prefix, &key);
        }
        self.core.stats.gc_collects_sent += (collected.len() * others.len()) as u64;
        self.send_tombstones(&others, collected, |tombstones| Message::GcCollect { tombstones });
    }

    fn tombstone(&self, prefix: &FullPrefix, key: &Bytes) -> Option<Tombstone<Actor<I>>> {
        let e = self.core.store.get(prefix, key)?;
        Some(Tombstone {
            key: Bytes::from(tree_key(prefix, key)),
            context: e.context.clone(),
        })
    }

    /// Sends `tombstones` to each of `to`, in batches within the budget.
    fn send_tombstones(
        &mut self,
        to: &[I],
        tombstones: Vec<Tombstone<Actor<I>>>,
        wrap: fn(Tombstones<I>) -> Message<Actor<I>>,
    ) {
        let mut batches: Vec<Vec<Tombstone<Actor<I>>>> = Vec::new();
        let mut batch = Vec::new();
        let mut used = 0;
        for t in tombstones {
            let cost = t.key.len() + TOMBSTONE_OVERHEAD + t.context.len() * ACTOR_COST;
            if !batch.is_empty() && (used + cost > self.budget || batch.len() >= MAX_ENTRIES) {
                batches.push(core::mem::take(&mut batch));
                used = 0;
            }
            used += cost;
            batch.push(t);
        }
        if !batch.is_empty() {
            batches.push(batch);
        }
        for peer in to {
            for b in &batches {
                self.send(peer.clone(), wrap(b.clone()));
            }
        }
    }

    /// Removes a tombstone, remembers it, moves the writer's epoch on if the
    /// tombstone holds a dot of it, and persists the removal.
    pub(crate) fn collect(&mut self, now: Instant, prefix: &FullPrefix, key: &Bytes) {
        let Some(entry) = self.core.store.remove(prefix, key) else {
            return;
        };
        let k = (prefix.clone(), key.clone());
        self.gc.acks.remove(&k);
        // The current actor's dots on this key leave the store: later writes
        // to the key must not continue its counter (see `actor`).
        let actor = &mut self.core.actor;
        if entry.context.get(actor) > 0 {
            actor.epoch = actor.epoch.wrapping_add(1);
            self.core.stats.epochs += 1;
        }
        self.core.collected.insert(now, k, entry.context);
        self.core.record(prefix, key, None, false);
        self.core.stats.collected += 1;
        crate::log::decision!(me = ?self.core.me, ?prefix, ?key, "tombstone collected");
    }

    /// A member durably holds these tombstones. Recorded for the ones held
    /// here; one already collected here is answered with `GcCollect`, so a
    /// member that missed the notice hears it again.
    pub(crate) fn on_gc_ack(&mut self, _now: Instant, from: I, tombstones: Vec<Tombstone<Actor<I>>>) {
        let mut again = Vec::new();
        for t in tombstones {
            let Some((prefix, key)) = parse_tree_key(&t.key) else {
                continue;
            };
            match self.core.store.get(&prefix, &key) {
                Some(e) if e.object.is_tombstone() && e.context == t.context => {
                    let (ctx, who) = self
                        .gc
                        .acks
                        .entry((prefix, key))
                        .or_insert_with(|| (t.context.clone(), BTreeSet::new()));
                    if *ctx != t.context {
                        *ctx = t.context;
                        who.clear();
                    }
                    who.insert(from.clone());
                }
                Some(_) => {}
                None => {
                    if self.core.collected.supersedes(&prefix, &key, &t.context) {
                        again.push(t);
                    }
                }
            }
        }
        self.core.stats.gc_collects_sent += again.len() as u64;
        self.send_tombstones(&[from], again, |tombstones| Message::GcCollect { tombstones });
    }

    /// The collector says every member holds these: collect the ones held
    /// here exactly as named, and remember the others so their older copies
    /// are refused.
    pub(crate) fn on_gc_collect(&mut self, now: Instant, tombstones: Vec<Tombstone<Actor<I>>>) {
        for t in tombstones {
            let Some((prefix, key)) = parse_tree_key(&t.key) else {
                continue;
            };
            match self.core.store.get(&prefix, &key) {
                Some(e) if e.object.is_tombstone() && e.context == t.context => self.collect(now, &prefix, &key),
                Some(_) => {}
                None => self.core.collected.insert(now, (prefix, key), t.context),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collected_memory_is_bounded_by_count_and_time() {
        let mut c: Collected<u32> = Collected::new(2, Duration::from_secs(10));
        let p = FullPrefix::new("p", "");
        let key = |i: u8| (p.clone(), Bytes::copy_from_slice(&[i]));
        let ctx = |n: u64| [(1u32, n)].into_iter().collect::<VClock<u32>>();
        c.insert(Instant::ZERO, key(1), ctx(3));
        assert!(c.supersedes(&p, &key(1).1, &ctx(2)));
        assert!(c.supersedes(&p, &key(1).1, &ctx(3)));
        assert!(!c.supersedes(&p, &key(1).1, &ctx(4)), "a newer write is not superseded");
        c.insert(Instant::from_millis(1), key(2), ctx(1));
        c.insert(Instant::from_millis(2), key(3), ctx(1));
        assert_eq!(c.len(), 2);
        assert!(c.context(&p, &key(1).1).is_none(), "the oldest went first");
        for i in 0..100 {
            c.insert(Instant::from_millis(3), key(2), ctx(i));
        }
        assert!(c.queue.len() <= 2 * c.len() + 33);
        c.expire(Instant::from_millis(11_000));
        assert_eq!(c.len(), 0);
    }
}
