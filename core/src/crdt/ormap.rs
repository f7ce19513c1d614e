//! Observed-remove map of nested CRDTs (`riak_dt_map`; keys as in
//! Bieniusa et al. 2012, values reset on remove as in Almeida, Shoker and
//! Baquero, *Delta State Replicated Data Types*, 2016, §7).

use super::deferred::Deferred;
use super::{Embed, Merge, Removal};
use crate::clock::{Dot, VClock};
use alloc::borrow::Cow;
use alloc::collections::{BTreeMap, BTreeSet};
use serde::{Deserialize, Serialize};

/// A key's value as written by each surviving update: `update dot -> value`.
/// One entry normally; several while updates made without seeing each other
/// are outstanding. Each entry is immutable except for reset-removes.
type Copies<A, V> = BTreeMap<Dot<A>, V>;

/// A map from keys to nested CRDTs, with add-wins keys, observed remove
/// and no tombstones.
///
/// Every [`update`](OrMap::update) of a key is an event with a dot, as an
/// add is in [`OrSwot`](super::OrSwot), and stores the key's value as that
/// update left it. Keys follow the `OrSwot` rules: an update concurrent
/// with a remove wins, a stale replica cannot bring a removed key back, and
/// a remove whose context is ahead is deferred (bounded like `OrSwot`'s).
/// Concurrent updates of one key are kept side by side and read (and
/// updated) as their [`merge`](Merge::merge), so nested CRDT semantics
/// apply inside a key: two replicas adding to a set-valued key add to the
/// same set.
///
/// Values share the map's causal context (see [`Embed`]). Removing a key
/// removes, besides the key, every effect of its value that the remover had
/// seen: if a key holding a set is removed while another replica adds an
/// element to it, the key survives with only that element
/// ("observed-remove-reset-remove" in `riak_dt_map`). This holds for values
/// whose effects carry dots ([`OrSwot`](super::OrSwot),
/// [`MvRegister`](super::MvRegister), nested `OrMap`s); counters and
/// [`LwwRegister`](super::LwwRegister)s survive such a race with the whole
/// value the updater saw.
///
/// A key is present while an update of it survives, even if its value is
/// then empty (say, a set whose last element a nested remove took out).
///
/// A deferred remove *inside* a value (an `OrSwot::remove_with_context`
/// made in [`update`](OrMap::update)) is part of that update's value: it
/// applies when the key's concurrent updates are read or updated together,
/// and it goes with the key if the key is removed, so an unseen add it
/// covers can then survive (as in `riak_dt_map`). Removes of keys are
/// deferred at the map level and have no such gap.
///
/// Equality and serialization cover the clock, the keys' updates and the
/// deferred removes; the deferred bound and its overflow count are local.
///
/// ```
/// use epidemic_core::crdt::{Merge, OrMap, OrSwot};
///
/// let mut a: OrMap<char, &str, OrSwot<char, u32>> = OrMap::new();
/// a.update('a', "ring", |s| s.add('a', 1));
/// let mut b = a.clone();
///
/// // a removes the key while b adds to the set in it.
/// a.remove(&"ring");
/// b.update('b', "ring", |s| s.add('b', 2));
/// a.merge(&b);
///
/// // b's update wins, but the element a saw is gone with the key.
/// let ring = a.get(&"ring").unwrap();
/// assert_eq!(ring.iter().copied().collect::<Vec<_>>(), [2]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrMap<A: Ord, K: Ord, V> {
    clock: VClock<A>,
    entries: BTreeMap<K, Copies<A, V>>,
    deferred: Deferred<K, A>,
}

impl<A: Ord, K: Ord, V> Default for OrMap<A, K, V> {
    fn default() -> Self {
        OrMap {
            clock: VClock::default(),
            entries: BTreeMap::new(),
            deferred: Deferred::default(),
        }
    }
}

/// A key's value: its copies merged (borrowed when there is just one).
fn read<A: Ord + Clone, V: Embed<A>>(copies: &Copies<A, V>) -> Cow<'_, V> {
    let mut values = copies.values();
    match (values.next(), values.next()) {
        (Some(only), None) => Cow::Borrowed(only),
        (None, _) => Cow::Owned(V::default()),
        (Some(first), Some(second)) => {
            let mut value = first.clone();
            value.merge(second);
            for rest in values {
                value.merge(rest);
            }
            Cow::Owned(value)
        }
    }
}

/// Drops `copies`' updates that `ctx` covers, and resets the rest: drops
/// the effects in their values that `ctx` covers.
fn reset<A: Ord + Clone, V: Embed<A>>(copies: &mut Copies<A, V>, ctx: &VClock<A>) {
    copies.retain(|dot, _| !ctx.contains(dot));
    for value in copies.values_mut() {
        value.retain_effects(|e| !ctx.contains(e));
    }
}

impl<A: Ord + Clone, K: Ord + Clone, V: Embed<A>> OrMap<A, K, V> {
    /// The empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// The empty map, holding at most `cap` deferred removes.
    pub fn with_deferred_cap(cap: usize) -> Self {
        let mut map = Self::default();
        map.deferred.set_cap(cap);
        map
    }

    /// Updates `key`'s value as `actor`: `f` gets the current value (or
    /// `V::default()` if the key is absent) and changes it, and its result is
    /// returned. The key is present afterwards, whatever `f` did.
    ///
    /// Dots that `f` mints in the value must come from the value's own
    /// clock, which the map sets to its clock first (any actor will do, as
    /// long as each actor only ever updates at one replica).
    pub fn update<R>(&mut self, actor: A, key: K, f: impl FnOnce(&mut V) -> R) -> R {
        let mut value = match self.entries.remove(&key) {
            Some(copies) => {
                let mut copies = copies.into_values();
                let mut value = copies.next().unwrap_or_default();
                for rest in copies {
                    value.merge(&rest);
                }
                value
            }
            None => V::default(),
        };
        if let Some(pending) = self.deferred.get(&key) {
            // As in `OrSwot::add`: never mint a dot a pending remove covers.
            let named = pending.get(&actor);
            if named > self.clock.get(&actor) {
                self.clock.apply(&Dot::new(actor.clone(), named));
            }
        }
        value.parent_clock(&self.clock);
        let out = f(&mut value);
        value.absorb_clock(&mut self.clock);
        let dot = self.clock.increment(actor);
        self.deferred.settle(&self.clock);
        let mut copies = Copies::new();
        copies.insert(dot, value);
        self.entries.insert(key, copies);
        out
    }

    /// Removes `key` as observed here: every update of it this replica has
    /// seen, and so every effect in its value. Returns whether it was
    /// present. Concurrent updates survive, with their own effects only.
    pub fn remove(&mut self, key: &K) -> bool {
        self.entries.remove(key).is_some()
    }

    /// Removes the updates of `key`, and the effects in its value, that
    /// `ctx` covers: now for those this replica holds and, for those it has
    /// not seen yet, when they arrive (a deferred remove).
    pub fn remove_with_context(&mut self, key: K, ctx: &VClock<A>) -> Removal {
        if let Some(copies) = self.entries.get_mut(&key) {
            reset(copies, ctx);
            if copies.is_empty() {
                self.entries.remove(&key);
            }
        }
        self.deferred.defer(key, ctx, &self.clock)
    }

    /// `key`'s value, if the key is present.
    pub fn get(&self, key: &K) -> Option<Cow<'_, V>> {
        self.entries.get(key).map(read)
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &K) -> bool {
        self.entries.contains_key(key)
    }

    /// The keys and their values, in ascending key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, Cow<'_, V>)> + '_ {
        self.entries.iter().map(|(key, copies)| (key, read(copies)))
    }

    /// The keys, in ascending order.
    pub fn keys(&self) -> impl Iterator<Item = &K> + '_ {
        self.entries.keys()
    }

    /// How many keys are present.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key is present.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every update (and nested effect) this replica has seen.
    pub fn clock(&self) -> &VClock<A> {
        &self.clock
    }

    /// The context that observes everything read here: removing a key with
    /// it removes the key and its value as this replica has them.
    pub fn read_context(&self) -> &VClock<A> {
        &self.clock
    }

    /// The smallest context that observes `key` as it is here: the dots of
    /// its updates and everything their values had seen. `None` if absent.
    pub fn context_of(&self, key: &K) -> Option<VClock<A>> {
        let copies = self.entries.get(key)?;
        let mut ctx = VClock::new();
        for (dot, value) in copies {
            ctx.apply(dot);
            value.absorb_clock(&mut ctx);
        }
        Some(ctx)
    }

    /// How many keys have a deferred remove waiting.
    pub fn deferred_len(&self) -> usize {
        self.deferred.len()
    }

    /// The bound on [`deferred_len`](Self::deferred_len).
    pub fn deferred_cap(&self) -> usize {
        self.deferred.cap()
    }

    /// Sets the bound on deferred removes. Lowering it below the current
    /// number drops the removes of the greatest keys, counted in
    /// [`deferred_overflow`](Self::deferred_overflow).
    pub fn set_deferred_cap(&mut self, cap: usize) -> &mut Self {
        self.deferred.set_cap(cap);
        self
    }

    /// How many deferred removes were dropped because of the bound since
    /// this value was created or deserialized. While it is zero, merge
    /// obeys the [`Merge`] laws.
    pub fn deferred_overflow(&self) -> u64 {
        self.deferred.overflow()
    }

    fn apply_deferred(&mut self) {
        if self.deferred.len() == 0 {
            return;
        }
        for (key, ctx) in self.deferred.iter() {
            if let Some(copies) = self.entries.get_mut(key) {
                reset(copies, ctx);
                if copies.is_empty() {
                    self.entries.remove(key);
                }
            }
        }
        self.deferred.settle(&self.clock);
    }
}

impl<A: Ord + Clone, K: Ord + Clone, V: Embed<A>> Merge for OrMap<A, K, V> {
    /// Per key: the updates join as an `OrSwot`'s dots do; the effects in
    /// the values join the same way (an effect survives if both sides hold
    /// it, or one side holds it and the other has not seen it), and each
    /// surviving update's value keeps only the surviving effects.
    fn merge(&mut self, other: &Self) {
        if self == other {
            return;
        }
        let my_clock = &self.clock;
        let their_clock = &other.clock;
        let mut my_effects = BTreeSet::new();
        let mut their_effects = BTreeSet::new();
        self.entries.retain(|key, copies| {
            match other.entries.get(key) {
                // They removed the key, or never saw it: either way what they
                // have seen of it is gone there.
                None => reset(copies, their_clock),
                Some(theirs) if theirs == copies => {}
                Some(theirs) => {
                    my_effects.clear();
                    their_effects.clear();
                    for value in copies.values() {
                        value.effect_dots(&mut my_effects);
                    }
                    for value in theirs.values() {
                        value.effect_dots(&mut their_effects);
                    }
                    // Updates both hold are kept whatever `their_clock` says.
                    copies.retain(|dot, _| theirs.contains_key(dot) || !their_clock.contains(dot));
                    for value in copies.values_mut() {
                        value.retain_effects(|e| !their_clock.contains(e) || their_effects.contains(e));
                    }
                    for (dot, value) in theirs {
                        if !copies.contains_key(dot) && !my_clock.contains(dot) {
                            let mut value = value.clone();
                            value.retain_effects(|e| !my_clock.contains(e) || my_effects.contains(e));
                            copies.insert(dot.clone(), value);
                        }
                    }
                }
            }
            !copies.is_empty()
        });
        for (key, theirs) in &other.entries {
            // A key both held that came out empty above is absent here too:
            // none of their updates is unseen by `my_clock`.
            if self.entries.contains_key(key) {
                continue;
            }
            let mut copies: Copies<A, V> = theirs
                .iter()
                .filter(|(dot, _)| !my_clock.contains(dot))
                .map(|(dot, value)| (dot.clone(), value.clone()))
                .collect();
            reset(&mut copies, my_clock);
            if !copies.is_empty() {
                self.entries.insert(key.clone(), copies);
            }
        }
        self.clock.merge(&other.clock);
        self.deferred.merge(&other.deferred);
        self.apply_deferred();
    }
}

/// A map can nest in a map: its updates and their effects are all effects.
impl<A: Ord + Clone, K: Ord + Clone, V: Embed<A>> Embed<A> for OrMap<A, K, V> {
    fn parent_clock(&mut self, clock: &VClock<A>) {
        self.clock.merge(clock);
        self.deferred.settle(&self.clock);
    }

    fn absorb_clock(&self, clock: &mut VClock<A>) {
        clock.merge(&self.clock);
    }

    fn effect_dots(&self, out: &mut BTreeSet<Dot<A>>) {
        for copies in self.entries.values() {
            for (dot, value) in copies {
                out.insert(dot.clone());
                value.effect_dots(out);
            }
        }
    }

    fn retain_effects<F: FnMut(&Dot<A>) -> bool>(&mut self, mut keep: F) {
        self.entries.retain(|_, copies| {
            copies.retain(|dot, _| keep(dot));
            for value in copies.values_mut() {
                value.retain_effects(&mut keep);
            }
            !copies.is_empty()
        });
    }
}

#[cfg(test)]
mod tests;
