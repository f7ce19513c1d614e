//! Dotted version vector sets (Almeida et al. 2014), with the operations of
//! Riak's `dvvset` module.
//!
//! Implementation notes (the public story is on [`DVVSet`]):
//!
//! - Entries are sorted by id and ids are unique, so `sync`, `less` and
//!   `equal` are linear merge walks.
//! - An entry's values are stored oldest first, so a new event is a `push`
//!   and "keep the newest `k`" is a suffix.
//! - Decoding checks those invariants: a peer's bytes either give a set that
//!   every operation handles, or a decode error.

use alloc::vec;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

use super::{Dot, VClock};

mod decode;
mod siblings;
mod sync;
#[cfg(test)]
mod tests;

pub use siblings::Siblings;

/// One server's share of a [`DVVSet`]: it has seen events `1..=counter` of
/// `id`, and the last `values.len()` of them still hold a live value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
struct Entry<A, V> {
    id: A,
    counter: u64,
    /// Oldest first: `values[i]` was written by event
    /// `counter - values.len() + 1 + i`.
    values: Vec<V>,
}

impl<A, V> Entry<A, V> {
    /// The same history with no live value.
    fn emptied(&self) -> Self
    where
        A: Clone,
    {
        Entry {
            id: self.id.clone(),
            counter: self.counter,
            values: Vec::new(),
        }
    }
}

/// The siblings of one key, each tagged with the event that wrote it, under
/// one compact causal context: a dotted version vector set.
///
/// # Structure
///
/// For each server id that ever coordinated a write to the key, a DVVSet
/// holds a counter `n` (the server's events `1..=n` are all in the causal
/// history) and the values of its latest events that no later write has
/// overwritten. A value's dot, `(server, event number)`, is implied by its
/// position, so a set costs one counter per server plus the live values:
/// O(R + V), as a plain version vector does, but without losing track of
/// which value each event wrote.
///
/// ```text
///   server a: n = 4, live values [x, y]   -> events a1..a4 seen; x is a3, y is a4
///   server b: n = 1, live values []       -> event b1 seen; its value was overwritten
///   join():   {a: 4, b: 1}                -> the context a client gets with x and y
/// ```
///
/// Two siblings written through the same server are told apart by their
/// dots. That is what a version vector keyed by server id alone cannot do:
/// it must either keep every value a stale writer did not see (and siblings
/// pile up) or pretend the newest write follows all of them (and lose one).
///
/// # The client/server protocol
///
/// - **Read**: the server returns [`values`](Self::values) and the context
///   [`join`](Self::join).
/// - **Write**: the client sends its value with the context of its last read
///   (or no context, for a blind write). The coordinating server `s` builds
///   [`new_with(context, value)`](Self::new_with) (or [`new(value)`](Self::new))
///   and stores [`update_with(&stored, s)`](Self::update_with). That drops
///   exactly the values whose dots the context covers, keeps the concurrent
///   ones, and gives the new value the next dot of `s`.
/// - **Replicate**: replicas merge with [`sync`](Self::sync).
/// - **Resolve**: [`lww`](Self::lww) and [`last`](Self::last) pick a
///   winner by a caller's order; [`reconcile`](Self::reconcile) folds all
///   siblings into one value with a new dot, as a write that read them all.
///
/// A server id must only create events on that server's latest copy of the
/// key (as `update_with` does): two events with one dot would be confused.
///
/// ```
/// use epidemic_core::clock::DVVSet;
///
/// let mut stored: DVVSet<&str, &str> = DVVSet::default();
///
/// // Alice writes blind, then reads.
/// stored = DVVSet::new("alice-1").update_with(&stored, "s");
/// let alice_ctx = stored.join();
///
/// // Bob writes blind too: he saw nothing, so Alice's value stays a sibling.
/// stored = DVVSet::new("bob-1").update_with(&stored, "s");
/// assert_eq!(stored.size(), 2);
///
/// // Alice overwrites what she read: her old value goes, Bob's stays.
/// stored = DVVSet::new_with(alice_ctx, "alice-2").update_with(&stored, "s");
/// let mut siblings: Vec<_> = stored.values().copied().collect();
/// siblings.sort();
/// assert_eq!(siblings, ["alice-2", "bob-1"]);
///
/// // A write with the full context leaves one value, newer than both.
/// let merged = DVVSet::new_with(stored.join(), "merged").update_with(&stored, "s");
/// assert_eq!(merged.values().collect::<Vec<_>>(), [&"merged"]);
/// assert!(stored.less(&merged));
/// ```
///
/// # Anonymous values
///
/// A value not yet given a dot (from [`new`](Self::new) or
/// [`new_with`](Self::new_with), or a resolved winner from
/// [`lww`](Self::lww)) is *anonymous*. It is the client's half of a write,
/// and [`update`](Self::update) or [`update_with`](Self::update_with) turns it
/// into a dotted value. Sets that servers store and replicate normally have
/// none.
///
/// [`sync`](Self::sync) is a join (commutative, associative, idempotent) on
/// sets without anonymous values. Anonymous values have no dot, so `sync`
/// follows Riak's rule for them: they survive unless the other set's context
/// strictly dominates theirs. That rule is commutative and idempotent (up to
/// the order of the anonymous values) but not associative.
///
/// # Encoding
///
/// `Serialize` and `Deserialize` write the entries and the anonymous values.
/// Decoding refuses a set whose ids are not strictly increasing, whose
/// counter is zero, or that holds more values for a server than it has
/// events, so every operation can trust a decoded set.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct DVVSet<A, V> {
    /// Sorted by id, ids unique, every counter at least 1.
    entries: Vec<Entry<A, V>>,
    /// Values without a dot yet: a client's write before a server takes it.
    anonymous: Vec<V>,
}

impl<A, V> Default for DVVSet<A, V> {
    /// The empty set: no history, no value. It is the identity of
    /// [`sync`](DVVSet::sync).
    fn default() -> Self {
        DVVSet {
            entries: Vec::new(),
            anonymous: Vec::new(),
        }
    }
}

/// Construction and getters that need nothing of `A` or `V`.
impl<A, V> DVVSet<A, V> {
    /// A client's write with no context (Riak's `new/1`): one anonymous
    /// value. Hand it to [`update_with`](Self::update_with) on the server.
    pub fn new(value: V) -> Self {
        DVVSet {
            entries: Vec::new(),
            anonymous: vec![value],
        }
    }

    /// Every value: the dotted ones by server id, oldest first within a
    /// server, then the anonymous ones.
    pub fn values(&self) -> Siblings<'_, A, V> {
        Siblings {
            entries: self.entries.iter(),
            current: [].iter(),
            anonymous: self.anonymous.iter(),
        }
    }

    /// The number of values, dotted and anonymous.
    pub fn size(&self) -> usize {
        self.entries.iter().map(|e| e.values.len()).sum::<usize>() + self.anonymous.len()
    }

    /// The server ids in the causal history, in order.
    pub fn ids(&self) -> impl Iterator<Item = &A> + '_ {
        self.entries.iter().map(|e| &e.id)
    }

    /// Splits the set into parts of whole entries, a part per group that
    /// `group` gives each server id (groups are numbered from 0; anonymous
    /// values go to part 0). [`sync`](DVVSet::sync) is pointwise per server,
    /// so syncing every part gives the set back; that is what lets a set too
    /// large for one message travel in several.
    pub fn split(self, groups: usize, mut group: impl FnMut(&A) -> usize) -> Vec<Self> {
        let mut parts: Vec<Self> = (0..groups.max(1))
            .map(|_| DVVSet {
                entries: Vec::new(),
                anonymous: Vec::new(),
            })
            .collect();
        for e in self.entries {
            let g = group(&e.id).min(parts.len() - 1);
            parts[g].entries.push(e);
        }
        parts[0].anonymous = self.anonymous;
        parts
    }

    /// Applies `f` to every value, keeping the causal information.
    pub fn map<W, F: FnMut(V) -> W>(self, mut f: F) -> DVVSet<A, W> {
        let entries = self
            .entries
            .into_iter()
            .map(|e| Entry {
                id: e.id,
                counter: e.counter,
                values: e.values.into_iter().map(&mut f).collect(),
            })
            .collect();
        DVVSet {
            entries,
            anonymous: self.anonymous.into_iter().map(f).collect(),
        }
    }
}

/// Causal comparisons.
impl<A: Ord, V> DVVSet<A, V> {
    /// Whether `self` is strictly causally older than `other`: `other`'s
    /// context includes every event of `self`'s and at least one more, so
    /// `other` supersedes all of `self`'s values.
    pub fn less(&self, other: &Self) -> bool {
        covers(&other.entries, &self.entries) && !covers(&self.entries, &other.entries)
    }

    /// Whether both sets have the same causal history and the same live
    /// dots (Riak's `equal/2`). The values themselves and the anonymous
    /// values are not compared; `==` compares everything.
    pub fn equal(&self, other: &Self) -> bool {
        self.entries.len() == other.entries.len()
            && self
                .entries
                .iter()
                .zip(&other.entries)
                .all(|(x, y)| x.id == y.id && x.counter == y.counter && x.values.len() == y.values.len())
    }
}

/// Building, writing and resolving.
impl<A: Ord + Clone, V> DVVSet<A, V> {
    /// A client's write with the context of its last read (Riak's `new/2`):
    /// one anonymous value whose causal history is `context`. Hand it to
    /// [`update_with`](Self::update_with) on the server.
    pub fn new_with(context: VClock<A>, value: V) -> Self {
        let entries = context
            .iter()
            .filter(|&(_, counter)| counter > 0)
            .map(|(id, counter)| Entry {
                id: id.clone(),
                counter,
                values: Vec::new(),
            })
            .collect();
        DVVSet {
            entries,
            anonymous: vec![value],
        }
    }

    /// The causal context: for each server id, how many of its events this
    /// set has seen. A client sends it back with its next write.
    pub fn join(&self) -> VClock<A> {
        self.entries.iter().map(|e| (e.id.clone(), e.counter)).collect()
    }

    /// Every value with the dot of the event that wrote it (`None` for an
    /// anonymous value), in [`values`](Self::values) order.
    pub fn values_with_dots(&self) -> impl Iterator<Item = (Option<Dot<A>>, &V)> + '_ {
        let dotted = self.entries.iter().flat_map(|e| {
            // `values.len() ≤ counter`, so the dots are `first..=counter`.
            let first = e.counter.saturating_sub(e.values.len() as u64).saturating_add(1);
            (first..=e.counter)
                .zip(&e.values)
                .map(move |(n, v)| (Some(Dot::new(e.id.clone(), n)), v))
        });
        dotted.chain(self.anonymous.iter().map(|v| (None, v)))
    }

    /// Gives each anonymous value of `self` (a client's write) the next dot
    /// of `server_id`, without looking at any stored copy (Riak's
    /// `update/2`). Use it only when `server_id` stores nothing newer for the
    /// key; otherwise use [`update_with`](Self::update_with).
    ///
    /// A write normally carries one value. With several, each gets its own
    /// dot (they are siblings); with none, only the context is kept.
    pub fn update(self, server_id: A) -> Self {
        let mut out = DVVSet {
            entries: self.entries,
            anonymous: Vec::new(),
        };
        for value in self.anonymous {
            out.event(server_id.clone(), value);
        }
        out
    }

    /// Resolves the siblings into one value written by `server_id`: `resolve`
    /// gets every value (as [`values`](Self::values) lists them) and returns
    /// the merged one, which gets a new dot on top of the whole history. The
    /// result is strictly newer than `self` and supersedes all its values, as
    /// a write by a client that read them all would.
    ///
    /// Call it on `server_id`'s latest copy, as for any write.
    pub fn reconcile<F>(&self, resolve: F, server_id: A) -> Self
    where
        F: FnOnce(Siblings<'_, A, V>) -> V,
    {
        let value = resolve(self.values());
        let mut out = DVVSet {
            entries: self.entries.iter().map(Entry::emptied).collect(),
            anonymous: Vec::new(),
        };
        out.event(server_id, value);
        out
    }

    /// The greatest value by `less(a, b)` ("`a` is older than `b`"), or
    /// `None` if the set holds no value. Among equal greatest values the last
    /// in [`values`](Self::values) order wins, so every replica with the same
    /// set picks the same one.
    pub fn last<F: FnMut(&V, &V) -> bool>(&self, less: F) -> Option<&V> {
        self.winner(less).map(|(value, _)| value)
    }

    /// Last-writer-wins: keeps only the value [`last`](Self::last) picks,
    /// under the same causal history, so the result descends `self`.
    ///
    /// If the winner is its server's newest value, it keeps its dot.
    /// Otherwise a dot in the middle of a server's run cannot stay live
    /// without the later ones, so, as Riak does for an anonymous winner, the
    /// winner becomes an anonymous value with the whole context: what
    /// [`new_with(self.join(), winner)`](Self::new_with) builds, ready to be
    /// written back. A set with no value is returned as it is.
    ///
    /// For a set without anonymous values, `self.sync(&lww)` is `lww`. An
    /// anonymous loser has no dot for the result's context to cover, so
    /// syncing with `self` brings it back; [`reconcile`](Self::reconcile),
    /// which makes a new dot, supersedes everything.
    pub fn lww<F: FnMut(&V, &V) -> bool>(&self, less: F) -> Self
    where
        V: Clone,
    {
        let Some((value, place)) = self.winner(less) else {
            return self.clone();
        };
        let mut entries: Vec<Entry<A, V>> = self.entries.iter().map(Entry::emptied).collect();
        let mut anonymous = Vec::new();
        match place {
            Place::Newest(i) => match entries.get_mut(i) {
                Some(entry) => entry.values.push(value.clone()),
                None => anonymous.push(value.clone()),
            },
            Place::Elsewhere => anonymous.push(value.clone()),
        }
        DVVSet { entries, anonymous }
    }

    /// The winner by `less` and where it sits.
    fn winner<F: FnMut(&V, &V) -> bool>(&self, mut less: F) -> Option<(&V, Place)> {
        let mut best: Option<(&V, Place)> = None;
        let dotted = self.entries.iter().enumerate().flat_map(|(i, e)| {
            let newest = e.values.len().saturating_sub(1);
            e.values.iter().enumerate().map(move |(j, v)| {
                let place = if j == newest {
                    Place::Newest(i)
                } else {
                    Place::Elsewhere
                };
                (v, place)
            })
        });
        let anonymous = self.anonymous.iter().map(|v| (v, Place::Elsewhere));
        for (value, place) in dotted.chain(anonymous) {
            match best {
                Some((current, _)) if less(value, current) => {}
                _ => best = Some((value, place)),
            }
        }
        best
    }

    /// Records `server_id`'s next event, which wrote `value`.
    ///
    /// The counter saturates at `u64::MAX` (as `VClock::increment` does);
    /// no key sees 2^64 writes.
    fn event(&mut self, server_id: A, value: V) {
        match self.entries.binary_search_by(|e| e.id.cmp(&server_id)) {
            Ok(i) => {
                if let Some(entry) = self.entries.get_mut(i) {
                    entry.counter = entry.counter.saturating_add(1);
                    entry.values.push(value);
                }
            }
            Err(i) => self.entries.insert(
                i,
                Entry {
                    id: server_id,
                    counter: 1,
                    values: vec![value],
                },
            ),
        }
    }
}

/// Where [`DVVSet::winner`] found its value.
#[derive(Clone, Copy)]
enum Place {
    /// The newest value of entry `i`: its dot can stay.
    Newest(usize),
    /// Anonymous, or older than another value of its server.
    Elsewhere,
}

/// Whether `big`'s history includes `small`'s (`join(big) ≥ join(small)`).
fn covers<A: Ord, V>(big: &[Entry<A, V>], small: &[Entry<A, V>]) -> bool {
    let mut big = big.iter().peekable();
    'small: for s in small {
        while let Some(b) = big.next_if(|b| b.id <= s.id) {
            if b.id == s.id {
                if b.counter < s.counter {
                    return false;
                }
                continue 'small;
            }
        }
        // `big` has no entry for `s.id`: zero events, and `s.counter` ≥ 1.
        if s.counter > 0 {
            return false;
        }
    }
    true
}
