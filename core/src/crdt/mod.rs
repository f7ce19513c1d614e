//! State-based CRDTs (convergent replicated data types) under one [`Merge`]
//! trait.
//!
//! Every type here is a join semilattice: replicas change their own copy
//! with local operations, ship their whole state to each other (gossip,
//! anti-entropy), and [`Merge::merge`] what they receive. Because merge is
//! commutative, associative and idempotent, replicas that have seen the same
//! updates hold equal states, whatever the order, duplication or batching of
//! the deliveries. The catalogue and the proofs are Shapiro, Preguiça,
//! Baquero and Zawirski, *A comprehensive study of Convergent and Commutative
//! Replicated Data Types* (INRIA RR-7506, 2011); the observed-remove set
//! without tombstones is Bieniusa et al., *An optimized conflict-free
//! replicated set* (arXiv:1210.3368, 2012), as built in Basho's `riak_dt`
//! (`riak_dt_orswot`, `riak_dt_map`).
//!
//! | type | what it holds | on concurrent updates |
//! |------|---------------|-----------------------|
//! | [`GCounter`] | a count that only grows | every increment counts |
//! | [`PNCounter`] | a count that goes up and down | every increment and decrement counts |
//! | [`LwwRegister`] | one value with a timestamp | the highest `(timestamp, value)` wins; ties break on the value, so every replica picks the same |
//! | [`MvRegister`] | one value, written with the context it was read at | concurrent writes are all kept until a write that saw them all |
//! | [`OrSwot`] | a set | add wins over a concurrent remove; removes need no tombstones |
//! | [`OrMap`] | a map from keys to nested CRDTs | as `OrSwot` for the keys; a removed key's value is reset (see [`Embed`]) |
//!
//! The causal types ([`MvRegister`], [`OrSwot`], [`OrMap`]) tag every
//! update with a [`Dot`] and keep a [`VClock`] of everything they have
//! seen. A dot that a replica's clock covers but whose effect it no longer
//! holds was removed there, which is how removes travel without
//! tombstones. A remove can carry the context of another replica
//! (`remove_with_context`): what the context covers that this replica has
//! not seen yet is *deferred*, and applied as the missing updates arrive.
//! Deferred removes are state that a peer can make grow, so they are
//! bounded by a count ([`DEFAULT_DEFERRED_CAP`]); an overflow is counted,
//! never a panic.
//!
//! In a map, the map's clock is the one context for its values too
//! ([`Embed`], after `riak_dt_map` and Almeida et al., *Delta State
//! Replicated Data Types*, 2016): removing a key resets what the remover
//! saw of its value, and a concurrent update keeps only its own effects.
//!
//! Actors are any `Ord + Clone` type (a node id). Each actor must update
//! from one replica at a time: two replicas minting dots for one actor
//! break every guarantee here. Maps and sets are `BTreeMap`/`BTreeSet`, so
//! iteration, equality and serialization are deterministic.
//!
//! # Example
//!
//! ```
//! use epidemic_core::crdt::{Merge, OrMap, OrSwot, PNCounter};
//!
//! // Two replicas of a member set, actors "a" and "b".
//! let mut a: OrSwot<&str, u32> = OrSwot::new();
//! a.add("a", 1);
//! a.add("a", 2);
//! let mut b = a.clone();
//!
//! // Concurrently: a removes 2, b adds 2 again and adds 3.
//! a.remove(&2);
//! b.add("b", 2);
//! b.add("b", 3);
//!
//! a.merge(&b);
//! b.merge(&a);
//! assert_eq!(a, b);
//! // Add wins: b's re-add of 2 was not seen by a's remove.
//! assert_eq!(a.iter().copied().collect::<Vec<_>>(), [1, 2, 3]);
//!
//! // A map of counters.
//! let mut m: OrMap<&str, &str, PNCounter<&str>> = OrMap::new();
//! m.update("a", "hits", |c| c.increment_by("a", 5));
//! let mut n = m.clone();
//! n.update("b", "hits", |c| c.decrement("b"));
//! m.update("a", "misses", |c| c.increment("a"));
//! m.merge(&n);
//! assert_eq!(m.get(&"hits").map(|c| c.value()), Some(4));
//! assert_eq!(m.len(), 2);
//! ```

mod deferred;
mod gcounter;
mod lww;
mod mvreg;
mod ormap;
mod orswot;
mod pncounter;

#[cfg(test)]
mod laws;

pub use gcounter::GCounter;
pub use lww::LwwRegister;
pub use mvreg::MvRegister;
pub use ormap::OrMap;
pub use orswot::OrSwot;
pub use pncounter::PNCounter;

use crate::clock::{Dot, VClock};
use alloc::collections::BTreeSet;

/// The default bound on deferred removes held by one [`OrSwot`] or
/// [`OrMap`]: how many elements (keys) may wait at once for updates that a
/// remove's context covers and this replica has not yet seen.
///
/// `riak_dt` leaves the list unbounded. In a cluster, a deferred remove
/// only lives for one gossip round trip (until the missing add arrives), so
/// even a burst of operator removes through a lagging node stays far below
/// a thousand; the bound is there so that a faulty or hostile peer cannot
/// grow the state without limit (each entry holds one element and one clock).
pub const DEFAULT_DEFERRED_CAP: usize = 1024;

/// A state-based CRDT: a join semilattice whose join is [`merge`](Merge::merge).
///
/// Implementations must obey, for all reachable states `a`, `b`, `c` (with
/// `a ⊔ b` meaning `a` after `a.merge(&b)`):
///
/// - **commutative:** `a ⊔ b == b ⊔ a`;
/// - **associative:** `(a ⊔ b) ⊔ c == a ⊔ (b ⊔ c)`;
/// - **idempotent:** `a ⊔ a == a`.
///
/// Together these make delivery order, duplication and batching irrelevant:
/// replicas that have merged the same states are equal. Merge also never
/// loses an update that either side holds, except those that the other
/// side's causal history shows were removed. Every type in this module is
/// checked against the three laws by property tests, with full state
/// equality.
pub trait Merge {
    /// Joins `other` into `self`: afterwards `self` holds every update of
    /// both.
    fn merge(&mut self, other: &Self);
}

/// A version vector merges by pointwise maximum.
impl<A: Ord + Clone> Merge for VClock<A> {
    fn merge(&mut self, other: &Self) {
        VClock::merge(self, other);
    }
}

/// What a `remove_with_context` on an [`OrSwot`] or [`OrMap`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Removal {
    /// This replica has seen everything the context covers: what the
    /// context covers is removed, and nothing waits.
    Done,
    /// The context covers updates this replica has not seen. What is here
    /// was removed; the rest is deferred and removed when it arrives.
    Deferred,
    /// As [`Removal::Deferred`], but the deferred-remove bound was reached:
    /// what is here was removed, the part ahead of this replica was dropped
    /// (and counted). An unseen add that the context covers may survive.
    Overflow,
}

/// A CRDT that can be the value of an [`OrMap`].
///
/// A map owns one causal context (its clock) and its values share it, as in
/// `riak_dt_map`: before an update the map lends its clock to the value
/// ([`parent_clock`](Embed::parent_clock)), so the dots the value mints are
/// new to the whole map, and afterwards takes the new dots back
/// ([`absorb_clock`](Embed::absorb_clock)). That lets the map *reset* a
/// removed key's value: removing a key removes every effect of the value
/// that the remover had seen, so a concurrent update keeps only its own
/// effects. In `riak_dt`'s example, if one replica removes a set-valued key
/// while another adds an element to it, the key survives holding only the
/// new element.
///
/// Types whose state carries no dots (counters, [`LwwRegister`]) keep the
/// default methods: they have no effects to reset, so a key that is removed
/// while concurrently updated comes back with the whole value the updater
/// saw (`riak_dt_map`'s documented counter anomaly; think of appending to a
/// file while someone deletes it).
///
/// Implementations must keep every effect dot covered by their own clock,
/// and `retain_effects` must only ever drop effects.
pub trait Embed<A: Ord + Clone>: Merge + Default + Clone + PartialEq {
    /// Advances this value's own clock, if it has one, to include `clock`.
    fn parent_clock(&mut self, clock: &VClock<A>) {
        let _ = clock;
    }

    /// Merges this value's own clock, if it has one, into `clock`.
    fn absorb_clock(&self, clock: &mut VClock<A>) {
        let _ = clock;
    }

    /// Adds the dots of this value's live effects to `out`.
    fn effect_dots(&self, out: &mut BTreeSet<Dot<A>>) {
        let _ = out;
    }

    /// Keeps only the effects whose dot `keep` accepts.
    fn retain_effects<F: FnMut(&Dot<A>) -> bool>(&mut self, keep: F) {
        let _ = keep;
    }
}
