//! The replica: the store with its write path, durability bookkeeping and
//! subscriptions ([`Core`]), and the state machine the node drives
//! ([`Replica`]): the metadata Plumtree, anti-entropy and GC around it.

use super::exchange::AntiEntropy;
use super::gc::{Collected, Gc};
use super::message::Message;
use super::object::{Object, Read, lww_sibling};
use super::store::{Store, tree_key};
use super::{
    Actor, Change, ChangeSource, Config, Context, Event, FullPrefix, Id, MAX_PREFIX_LEN, Merger, Persist, PersistId,
    PutError, PutId, RestoreError, Stats, SubscriptionId,
};
use crate::broadcast::Plumtree;
use crate::clock::VClock;
use crate::hashtree::{self, Digest};
use crate::identity::Identity;
use crate::rng::{self, Rng};
use crate::time::{Duration, Instant};
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::vec::Vec;
use bytes::Bytes;
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// A stored key: its full prefix and the key.
pub(crate) type Key = (FullPrefix, Bytes);

/// What the node knows of its peers, handed to the replica's timers.
pub(crate) struct Peers<'a, I> {
    /// Every member, sorted, in mesh mode; `None` with partial views.
    pub(crate) members: Option<&'a [I]>,
    /// The overlay neighbours.
    pub(crate) neighbors: &'a [I],
    /// Other known peers (the HyParView passive view).
    pub(crate) others: &'a [I],
}

/// Persist records not yet confirmed, and writes waiting on them.
#[derive(Default)]
pub(crate) struct Durability {
    /// The next record's id (also numbers puts when not durable).
    next: u64,
    /// Record id → its key, and whether it is a put's.
    unconfirmed: BTreeMap<u64, (Key, bool)>,
    /// Unconfirmed records per key.
    pending: BTreeMap<Key, u32>,
    /// Keys with a local write to broadcast once they are clean.
    held: BTreeSet<Key>,
}

/// Everything the broadcast handler and the repairs touch: the store and
/// what hangs off its changes.
pub(crate) struct Core<I: Ord> {
    pub(super) me: I,
    pub(super) config: Config,
    /// The writer this node names its dots with now (see [`Actor`]).
    pub(super) actor: Actor<I>,
    pub(super) store: Store<Actor<I>>,
    pub(super) collected: Collected<Actor<I>>,
    pub(super) durability: Durability,
    subscriptions: BTreeMap<SubscriptionId, FullPrefix>,
    by_prefix: BTreeMap<FullPrefix, Vec<SubscriptionId>>,
    next_subscription: u64,
    mergers: BTreeMap<FullPrefix, Merger>,
    /// CRDT keys holding siblings this node resolves.
    to_resolve: BTreeSet<Key>,
    /// Keys whose writes are clean and to be broadcast.
    ready: BTreeSet<Key>,
    pub(super) events: VecDeque<Event<I>>,
    pub(super) stats: Stats,
}

impl<I: Identity> Core<I> {
    /// Checks a prefix and key against the limits.
    pub(crate) fn check_key(&self, prefix: &FullPrefix, key: &[u8]) -> Result<(), PutError> {
        let longest = prefix.prefix().len().max(prefix.subprefix().len());
        if longest > MAX_PREFIX_LEN {
            return Err(PutError::PrefixTooLong {
                len: longest,
                max: MAX_PREFIX_LEN,
            });
        }
        let len = prefix.prefix().len() + prefix.subprefix().len() + key.len() + 2;
        let max = self.config.max_key_len.min(hashtree::MAX_KEY_LEN);
        if len > max {
            return Err(PutError::KeyTooLong { len, max });
        }
        Ok(())
    }

    /// Whether every persist record of the key is confirmed: only then may
    /// the object leave this node.
    pub(crate) fn is_clean(&self, prefix: &FullPrefix, key: &Bytes) -> bool {
        self.durability.pending.is_empty() || !self.durability.pending.contains_key(&(prefix.clone(), key.clone()))
    }

    /// Merges a peer's object. True if it changed the store.
    pub(crate) fn apply_remote(
        &mut self,
        now: Instant,
        prefix: &FullPrefix,
        key: &Bytes,
        incoming: Object<Actor<I>>,
        source: ChangeSource,
    ) -> bool {
        let context = incoming.context();
        if self.collected.supersedes(prefix, key, &context) {
            self.stats.refused_collected += 1;
            return false;
        }
        let merged = match self.store.get(prefix, key) {
            Some(e) if e.context.descends(&context) => return false,
            Some(e) => e.object.sync(&incoming),
            None if self.store.len() >= self.config.max_keys => {
                self.stats.refused_keys += 1;
                return false;
            }
            None => incoming,
        };
        match source {
            ChangeSource::AntiEntropy => {
                crate::log::decision!(me = ?self.me, ?prefix, ?key, "repaired by anti-entropy");
                self.stats.repaired += 1;
            }
            _ => self.stats.broadcast_merges += 1,
        }
        self.put_object(now, prefix, key, merged, source, false);
        true
    }

    /// Stores `object`, records it for persistence, and tells subscribers.
    /// Returns the record's number.
    pub(crate) fn put_object(
        &mut self,
        now: Instant,
        prefix: &FullPrefix,
        key: &Bytes,
        object: Object<Actor<I>>,
        source: ChangeSource,
        put: bool,
    ) -> u64 {
        let entry = self.store.set(now, prefix, key, object);
        let encoded = entry.encoded.clone();
        let owns_siblings = self.mergers.contains_key(prefix)
            && entry.object.siblings() > 1
            && entry.object.resolver().is_some_and(|a| a.node == self.me);
        if owns_siblings {
            self.to_resolve.insert((prefix.clone(), key.clone()));
        }
        // The subscriptions' ids are taken before `record` needs `self`.
        let change = self.by_prefix.get(prefix).map(|subs| {
            let read = entry.object.read();
            let resolved = resolve(self.mergers.get(prefix), &entry.object, &read);
            (subs.clone(), read, resolved)
        });
        let id = self.record(prefix, key, Some(encoded), put);
        if let Some((subs, read, resolved)) = change {
            for subscription in subs {
                self.events.push_back(Event::Changed(Change {
                    subscription,
                    prefix: prefix.clone(),
                    key: key.clone(),
                    read: read.clone(),
                    resolved: resolved.clone(),
                    source,
                }));
            }
        }
        id
    }

    /// Numbers a change and, when durable, emits its record and counts it as
    /// unconfirmed.
    pub(crate) fn record(&mut self, prefix: &FullPrefix, key: &Bytes, object: Option<Bytes>, put: bool) -> u64 {
        let id = self.durability.next;
        self.durability.next += 1;
        if self.config.durable {
            let k = (prefix.clone(), key.clone());
            *self.durability.pending.entry(k.clone()).or_insert(0) += 1;
            self.durability.unconfirmed.insert(id, (k, put));
            self.events.push_back(Event::Persist(Persist {
                id: PersistId(id),
                put: put.then_some(PutId(id)),
                prefix: prefix.clone(),
                key: key.clone(),
                object,
            }));
        }
        id
    }
}

/// The metadata state machine the node drives. Its parts are its own: the
/// node hands it inputs and drains one stream of messages from it.
pub(crate) struct Replica<I: Identity> {
    pub(super) core: Core<I>,
    pub(super) plumtree: Plumtree<I, Id<Actor<I>>>,
    pub(super) ae: AntiEntropy<I>,
    pub(super) gc: Gc<I>,
    pub(super) rng: Rng,
    pub(super) transmits: VecDeque<(I, Message<Actor<I>>)>,
    /// The node's frame limit: a write whose broadcast exceeds it is refused.
    pub(super) max_frame: usize,
    /// The most bytes one anti-entropy or GC message may carry.
    pub(super) budget: usize,
}

/// A message the replica sends: a metadata broadcast (Plumtree) or an
/// anti-entropy or collection message.
pub(crate) enum Outbound<I: Identity> {
    /// Plumtree dissemination of a write.
    Broadcast(crate::broadcast::Message<I, Id<Actor<I>>>),
    /// Anti-entropy and tombstone collection.
    AntiEntropy(Message<Actor<I>>),
}

impl<I: Identity> Replica<I> {
    /// The replica of node `me` in its life `incarnation`.
    pub(crate) fn new(me: I, incarnation: u32, config: Config, seed: u64, max_frame: usize) -> Self {
        let collected = Collected::new(config.max_collected, config.collected_retention);
        let mergers = (config.crdts.iter())
            .map(|c| (c.prefix.clone(), c.kind.merger::<I>()))
            .collect();
        Replica {
            plumtree: Plumtree::new(me.clone(), config.plumtree.clone(), seed),
            ae: AntiEntropy::new(),
            gc: Gc::new(),
            rng: rng::from_seed(seed ^ 0x6d65_7461_6461_7461),
            transmits: VecDeque::new(),
            // Half a frame leaves room for the envelope, as the hash tree's
            // own messages do.
            budget: (max_frame / 2).max(1024),
            max_frame,
            core: Core {
                store: Store::new(config.hashtree),
                actor: Actor::new(me.clone(), incarnation),
                me,
                config,
                collected,
                durability: Durability::default(),
                subscriptions: BTreeMap::new(),
                by_prefix: BTreeMap::new(),
                next_subscription: 0,
                mergers,
                to_resolve: BTreeSet::new(),
                ready: BTreeSet::new(),
                events: VecDeque::new(),
                stats: Stats::default(),
            },
        }
    }

    pub(crate) fn config(&self) -> &Config {
        &self.core.config
    }

    // ---- reads ------------------------------------------------------------

    pub(crate) fn stats(&self) -> Stats {
        let c = &self.core;
        let mut s = c.stats.clone();
        s.keys = c.store.len();
        s.tombstones = c.store.tombstones().len();
        s.sessions = self.ae.sessions();
        s.unconfirmed = c.durability.unconfirmed.len();
        s.held = c.durability.held.len();
        s.collected_memory = c.collected.len();
        s.gc_pending = self.gc.pending();
        s.subscriptions = c.subscriptions.len();
        s
    }

    pub(crate) fn get(&self, prefix: &FullPrefix, key: &[u8]) -> Option<Read<Actor<I>>> {
        self.core.store.get(prefix, key).map(|e| e.object.read())
    }

    /// One value: the registered CRDT merge of the live siblings, or the LWW
    /// winner; `None` if absent or deleted.
    pub(crate) fn get_resolved(&self, prefix: &FullPrefix, key: &[u8]) -> Option<Bytes> {
        let entry = self.core.store.get(prefix, key)?;
        resolve(self.core.mergers.get(prefix), &entry.object, &entry.object.read())
    }

    /// The keys of `prefix` that are not deleted, in key order.
    pub(crate) fn iter<'a>(&'a self, prefix: &FullPrefix) -> impl Iterator<Item = (&'a Bytes, Read<Actor<I>>)> + 'a {
        self.core
            .store
            .prefix(prefix)
            .into_iter()
            .flat_map(|objects| objects.iter())
            .filter(|(_, e)| !e.object.is_tombstone())
            .map(|(k, e)| (k, e.object.read()))
    }

    pub(crate) fn prefix_hash(&self, prefix: &FullPrefix) -> Option<Digest> {
        self.core.store.prefix_hash(prefix)
    }

    /// A hash of the whole store: every prefix and its hash.
    pub(crate) fn store_hash(&self) -> Digest {
        let mut sum = 0u64;
        for p in self.core.store.prefixes() {
            let h = self.core.store.prefix_hash(p).map_or(0, Digest::to_u64);
            sum = sum.wrapping_add(xxh3_64_with_seed(&tree_key(p, &[]), h));
        }
        Digest::from_u64(sum)
    }

    pub(crate) fn prefixes(&self) -> impl Iterator<Item = &FullPrefix> + '_ {
        self.core.store.prefixes()
    }

    // ---- commands ---------------------------------------------------------

    /// A put (`Some`) or delete (`None`) from the application.
    pub(crate) fn write(
        &mut self,
        now: Instant,
        prefix: &FullPrefix,
        key: &[u8],
        value: Option<Bytes>,
        context: Option<&Context<I>>,
    ) -> Result<PutId, PutError> {
        let deleting = value.is_none();
        let id = self.write_inner(now, prefix, &Bytes::copy_from_slice(key), value, context, true)?;
        if deleting {
            self.core.stats.deletes += 1;
        } else {
            self.core.stats.puts += 1;
        }
        self.flush(now);
        Ok(PutId(id))
    }

    /// The write path: a new sibling with this node's next dot.
    fn write_inner(
        &mut self,
        now: Instant,
        prefix: &FullPrefix,
        key: &Bytes,
        value: Option<Bytes>,
        context: Option<&Context<I>>,
        put: bool,
    ) -> Result<u64, PutError> {
        let max_frame = self.max_frame;
        let core = &mut self.core;
        core.check_key(prefix, key)?;
        if let Some(v) = &value {
            if v.len() > core.config.max_value_len {
                return Err(PutError::ValueTooLarge {
                    len: v.len(),
                    max: core.config.max_value_len,
                });
            }
        }
        let stored = core.store.get(prefix, key);
        if stored.is_none() && core.store.len() >= core.config.max_keys {
            return Err(PutError::TooManyKeys {
                max: core.config.max_keys,
            });
        }
        let mut base = match (context, stored) {
            (Some(c), _) => c.clone(),
            (None, Some(e)) => e.context.clone(),
            (None, None) => VClock::new(),
        };
        // A key collected here continues from the collected context, so the
        // new write supersedes it everywhere and never reuses one of its dots.
        if let Some(c) = core.collected.context(prefix, key) {
            base.merge(c);
        }
        let timestamp = now
            .as_micros()
            .max(stored.map_or(0, |e| e.object.max_timestamp().saturating_add(1)));
        let object = Object::write(stored.map(|e| &e.object), base, value, timestamp, core.actor.clone());
        let encoded = object.encode();
        let len = encoded.len();
        if len > core.config.max_object_len {
            return Err(PutError::ObjectTooLarge {
                len,
                max: core.config.max_object_len,
            });
        }
        // The broadcast that carries it must fit a frame, or it would be
        // acknowledged here and never reach anyone.
        let id = Id {
            prefix: prefix.clone(),
            key: key.clone(),
            context: object.context(),
        };
        let frame = crate::broadcast::gossip_frame_len(&id, &core.me, &encoded);
        if frame > max_frame {
            return Err(PutError::FrameTooSmall {
                len: frame,
                max: max_frame,
            });
        }
        let id = core.put_object(now, prefix, key, object, ChangeSource::Local, put);
        let k = (prefix.clone(), key.clone());
        if core.config.durable {
            core.durability.held.insert(k);
        } else {
            core.ready.insert(k);
        }
        self.arm(now);
        Ok(id)
    }

    /// The driver wrote record `id`.
    pub(crate) fn persisted(&mut self, now: Instant, id: PersistId) {
        let d = &mut self.core.durability;
        let Some((key, put)) = d.unconfirmed.remove(&id.0) else {
            return;
        };
        let clean = match d.pending.get_mut(&key) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            _ => {
                d.pending.remove(&key);
                true
            }
        };
        if clean && d.held.remove(&key) {
            self.core.ready.insert(key);
        }
        if put {
            self.core.events.push_back(Event::PutDurable(PutId(id.0)));
        }
        self.flush(now);
    }

    /// Loads a persisted object (after a restart): merged into the store
    /// without events or broadcast.
    pub(crate) fn restore(
        &mut self,
        now: Instant,
        prefix: &FullPrefix,
        key: &[u8],
        object: &[u8],
    ) -> Result<(), RestoreError> {
        self.core.check_key(prefix, key).map_err(RestoreError::Key)?;
        let object: Object<Actor<I>> =
            Object::decode(object, self.core.config.max_value_len).map_err(RestoreError::Object)?;
        let key = Bytes::copy_from_slice(key);
        let merged = match self.core.store.get(prefix, &key) {
            Some(e) => e.object.sync(&object),
            None if self.core.store.len() >= self.core.config.max_keys => {
                return Err(RestoreError::TooManyKeys {
                    max: self.core.config.max_keys,
                });
            }
            None => object,
        };
        self.core.store.set(now, prefix, &key, merged);
        self.core.stats.restored += 1;
        self.arm(now);
        Ok(())
    }

    pub(crate) fn subscribe(&mut self, prefix: FullPrefix) -> SubscriptionId {
        let id = SubscriptionId(self.core.next_subscription);
        self.core.next_subscription += 1;
        self.core.by_prefix.entry(prefix.clone()).or_default().push(id);
        self.core.subscriptions.insert(id, prefix);
        id
    }

    pub(crate) fn unsubscribe(&mut self, id: SubscriptionId) -> bool {
        let Some(prefix) = self.core.subscriptions.remove(&id) else {
            return false;
        };
        if let Some(ids) = self.core.by_prefix.get_mut(&prefix) {
            ids.retain(|s| *s != id);
            if ids.is_empty() {
                self.core.by_prefix.remove(&prefix);
            }
        }
        true
    }

    pub(crate) fn register_crdt(&mut self, now: Instant, prefix: FullPrefix, merger: Merger) {
        // Siblings already stored under the prefix are resolved now.
        let me = self.core.me.clone();
        if let Some(objects) = self.core.store.prefix(&prefix) {
            for (k, e) in objects {
                if e.object.siblings() > 1 && e.object.resolver().is_some_and(|a| a.node == me) {
                    self.core.to_resolve.insert((prefix.clone(), k.clone()));
                }
            }
        }
        self.core.mergers.insert(prefix, merger);
        self.flush(now);
    }

    // ---- inputs -----------------------------------------------------------

    /// A metadata broadcast message.
    pub(crate) fn handle_broadcast(
        &mut self,
        now: Instant,
        from: I,
        message: crate::broadcast::Message<I, Id<Actor<I>>>,
    ) {
        self.plumtree.handle_validated(now, from, message, &mut self.core);
        self.flush(now);
        self.arm(now);
    }

    /// Whether a timer is due at `now` (so the node knows to gather peers).
    pub(crate) fn is_due(&self, now: Instant) -> bool {
        self.poll_timeout().is_some_and(|t| t <= now)
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant, peers: &Peers<'_, I>) {
        self.plumtree.handle_timeout(now, &mut self.core);
        self.expire_sessions(now);
        if self.ae.tick.is_some_and(|t| t <= now) {
            self.exchange_tick(now, peers);
        }
        if self.gc.tick.is_some_and(|t| t <= now) {
            self.gc_tick(now, peers);
        }
        self.flush(now);
        self.arm(now);
    }

    /// Broadcasts the writes that became clean, and resolves CRDT siblings
    /// this node owns.
    pub(crate) fn flush(&mut self, now: Instant) {
        loop {
            if let Some(key) = self.core.to_resolve.pop_first() {
                self.resolve(now, key);
                continue;
            }
            let Some((prefix, key)) = self.core.ready.pop_first() else {
                break;
            };
            let Some(e) = self.core.store.get(&prefix, &key) else {
                continue;
            };
            let id = Id {
                prefix,
                key,
                context: e.context.clone(),
            };
            let payload = e.encoded.clone();
            match self.plumtree.broadcast(now, id, payload, &mut self.core) {
                Ok(()) => self.core.stats.broadcasts += 1,
                // Larger than the engine's payload limit (a merge of large
                // siblings): anti-entropy still carries it.
                Err(_) => self.core.stats.oversized += 1,
            }
        }
    }

    /// Writes back the merge of a CRDT key's siblings, if this node is the
    /// one that resolves them.
    fn resolve(&mut self, now: Instant, (prefix, key): Key) {
        let Some(merger) = self.core.mergers.get(&prefix).copied() else {
            return;
        };
        let Some(e) = self.core.store.get(&prefix, &key) else {
            return;
        };
        if e.object.siblings() < 2 || e.object.resolver().is_none_or(|a| a.node != self.core.me) {
            return;
        }
        let read = e.object.read();
        let live: Vec<Bytes> = read.live().cloned().collect();
        let value = match live.len() {
            0 => return,
            1 => live.into_iter().next(),
            _ => merger(&live),
        };
        let Some(value) = value else { return };
        let context = read.into_context();
        if self
            .write_inner(now, &prefix, &key, Some(value), Some(&context), false)
            .is_ok()
        {
            self.core.stats.resolved += 1;
        }
    }

    /// Starts the periodic timers that have work.
    pub(crate) fn arm(&mut self, now: Instant) {
        let c = &self.core.config;
        if self.ae.tick.is_none() && !self.core.store.is_empty() && c.max_concurrent_exchanges > 0 {
            // A random first phase, so nodes started together do not exchange
            // in lockstep.
            let interval = c.exchange_interval.as_micros().max(1);
            let phase = rng::index(&mut self.rng, usize::try_from(interval).unwrap_or(usize::MAX)).unwrap_or(0);
            self.ae.tick = Some(now + Duration::from_micros(phase as u64));
        }
        // GC runs while there are tombstones to collect or collected ones to
        // forget.
        if self.gc.tick.is_none() && (!self.core.store.tombstones().is_empty() || self.core.collected.len() > 0) {
            self.gc.tick = Some(now + c.gc_interval.max(Duration::from_millis(1)));
        }
    }

    // ---- outputs ----------------------------------------------------------

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        [
            self.plumtree.poll_timeout(),
            self.ae.tick,
            self.ae.next_deadline(),
            self.gc.tick,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The next message to send: broadcast traffic first, then
    /// anti-entropy.
    pub(crate) fn poll_transmit(&mut self) -> Option<(I, Outbound<I>)> {
        // Deliveries reach the application as `Changed` events (the store
        // merged them already): the engine's own events carry nothing more.
        while self.plumtree.poll_event().is_some() {}
        if let Some((to, m)) = self.plumtree.poll_transmit() {
            return Some((to, Outbound::Broadcast(m)));
        }
        self.transmits.pop_front().map(|(to, m)| (to, Outbound::AntiEntropy(m)))
    }

    /// A peer became a neighbour: the metadata broadcast trees grow to it.
    pub(crate) fn neighbor_up(&mut self, now: Instant, peer: I) {
        self.plumtree.neighbor_up(now, peer);
    }

    /// A peer stopped being a neighbour.
    pub(crate) fn neighbor_down(&mut self, now: Instant, peer: &I) {
        self.plumtree.neighbor_down(now, peer);
    }

    /// A metadata or anti-entropy message from a peer that is not a member
    /// was refused.
    pub(crate) fn refused_non_member(&mut self) {
        self.core.stats.refused_non_member += 1;
    }

    /// The metadata broadcast engine, for inspection.
    pub(crate) fn plumtree(&self) -> &Plumtree<I, Id<Actor<I>>> {
        &self.plumtree
    }

    pub(crate) fn poll_event(&mut self) -> Option<Event<I>> {
        self.core.events.pop_front()
    }

    /// Nothing in flight: no broadcast work, no exchange running, no output.
    pub(crate) fn is_idle(&self) -> bool {
        self.plumtree.is_idle() && self.ae.sessions() == 0 && self.transmits.is_empty() && self.core.events.is_empty()
    }

    pub(crate) fn send(&mut self, to: I, message: Message<Actor<I>>) {
        self.transmits.push_back((to, message));
    }
}

/// One value for a stored object whose read is `read`: the merge of the live
/// siblings under `merger` (a CRDT prefix), else the last writer's; `None`
/// when deleted.
fn resolve<I: Ord + Clone>(merger: Option<&Merger>, object: &Object<Actor<I>>, read: &Read<Actor<I>>) -> Option<Bytes> {
    if let Some(merger) = merger {
        let live: Vec<Bytes> = read.live().cloned().collect();
        if live.len() > 1 {
            if let Some(merged) = merger(&live) {
                return Some(merged);
            }
        }
    }
    lww_sibling(object).and_then(|s| s.value.clone())
}
