//! Deferred removes: contexts that are ahead of the replica's clock, kept
//! per element (or key) until the clock catches up.
//!
//! `riak_dt` keeps a list of `(context, elements)` and replays a remove once
//! the clock descends its context. This keeps one context per element
//! instead, and applies it *eagerly*: any dot of that element which the
//! context covers is dead on arrival, so a removed element never flickers
//! back while the replica catches up. Two pending contexts for one element
//! join into one, which loses nothing: a dot is covered by `c1 ⊔ c2` exactly
//! when `c1` or `c2` covers it. The part of a context that the clock already
//! covers is forgotten as soon as it is covered, since the ordinary merge
//! rule (a dot the clock covers but the state lacks was removed) takes over;
//! that also keeps the pending state canonical, so converged replicas are
//! equal.

use super::{DEFAULT_DEFERRED_CAP, Removal};
use crate::clock::VClock;
use alloc::collections::BTreeMap;
use serde::{Deserialize, Serialize};

/// Pending remove contexts by element, bounded by count.
///
/// Equality and serialization cover only the pending contexts: the bound
/// and the overflow count are local settings and statistics.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
#[serde(bound(
    serialize = "K: Serialize, A: Serialize",
    deserialize = "K: Deserialize<'de> + Ord, A: Deserialize<'de> + Ord"
))]
pub(crate) struct Deferred<K: Ord, A: Ord> {
    pending: BTreeMap<K, VClock<A>>,
    #[serde(skip)]
    limit: Limit,
}

/// The local bound and what it has dropped.
#[derive(Debug, Clone, Copy)]
struct Limit {
    cap: usize,
    overflow: u64,
}

impl Default for Limit {
    fn default() -> Self {
        Limit {
            cap: DEFAULT_DEFERRED_CAP,
            overflow: 0,
        }
    }
}

impl<K: Ord, A: Ord> PartialEq for Deferred<K, A> {
    fn eq(&self, other: &Self) -> bool {
        self.pending == other.pending
    }
}

impl<K: Ord, A: Ord> Eq for Deferred<K, A> {}

impl<K: Ord, A: Ord> Default for Deferred<K, A> {
    fn default() -> Self {
        Deferred {
            pending: BTreeMap::new(),
            limit: Limit::default(),
        }
    }
}

impl<K: Ord + Clone, A: Ord + Clone> Deferred<K, A> {
    /// Records that `key`'s dots covered by `ctx` are removed, for the part
    /// of `ctx` that `clock` does not cover yet.
    pub(crate) fn defer(&mut self, key: K, ctx: &VClock<A>, clock: &VClock<A>) -> Removal {
        let mut ahead = ctx.clone();
        ahead.forget(clock);
        if ahead.is_empty() {
            return Removal::Done;
        }
        if let Some(pending) = self.pending.get_mut(&key) {
            pending.merge(&ahead);
            return Removal::Deferred;
        }
        if self.pending.len() >= self.limit.cap {
            self.limit.overflow = self.limit.overflow.saturating_add(1);
            return Removal::Overflow;
        }
        self.pending.insert(key, ahead);
        Removal::Deferred
    }

    /// The pending context of `key`, if any.
    pub(crate) fn get(&self, key: &K) -> Option<&VClock<A>> {
        self.pending.get(key)
    }

    /// Joins `other`'s pending contexts into these (the bound is enforced
    /// by [`settle`](Self::settle)).
    pub(crate) fn merge(&mut self, other: &Self) {
        for (key, ctx) in &other.pending {
            match self.pending.get_mut(key) {
                Some(mine) => mine.merge(ctx),
                None => {
                    self.pending.insert(key.clone(), ctx.clone());
                }
            }
        }
    }

    /// Forgets what `clock` now covers, drops contexts left empty, and
    /// enforces the bound by dropping the greatest keys (a deterministic
    /// choice, so replicas that overflow alike stay alike).
    pub(crate) fn settle(&mut self, clock: &VClock<A>) {
        if self.pending.is_empty() {
            return;
        }
        self.pending.retain(|_, ctx| {
            ctx.forget(clock);
            !ctx.is_empty()
        });
        self.enforce_cap();
    }

    fn enforce_cap(&mut self) {
        while self.pending.len() > self.limit.cap {
            self.pending.pop_last();
            self.limit.overflow = self.limit.overflow.saturating_add(1);
        }
    }

    /// `(key, context)` pairs in key order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &VClock<A>)> + '_ {
        self.pending.iter()
    }

    /// How many keys have a pending remove.
    pub(crate) fn len(&self) -> usize {
        self.pending.len()
    }

    /// The bound on [`len`](Self::len).
    pub(crate) fn cap(&self) -> usize {
        self.limit.cap
    }

    /// Sets the bound, dropping (and counting) pending removes above it.
    pub(crate) fn set_cap(&mut self, cap: usize) {
        self.limit.cap = cap;
        self.enforce_cap();
    }

    /// How many deferred removes were dropped because of the bound.
    pub(crate) fn overflow(&self) -> u64 {
        self.limit.overflow
    }
}
