//! Logical clocks: version vectors, dots and dotted version vector sets.
//!
//! - [`VClock`] is a version vector: one counter per actor. It orders
//!   histories by inclusion (`descends`), and finds concurrent ones.
//! - [`Dot`] is one event: an actor and that actor's counter.
//! - [`DVVSet`] keeps the values of one key with one dot each, so that
//!   concurrent writes through one server stay distinguishable.
//!
//! # Dotted version vector sets
//!
//! A replicated key can hold several concurrent values (siblings). Tagging
//! the key with a version vector keyed by *server* id keeps the vector small
//! (one entry per replica, not per client), but it cannot tell two writes
//! through the same server apart: a server either keeps every value a stale
//! writer did not see, and siblings pile up, or drops one of two concurrent
//! writes. A [`DVVSet`] (Almeida et al. 2014, "Scalable and Accurate
//! Causality Tracking for Eventually Consistent Stores"; Riak's `dvvset`)
//! keeps the server-id vector and gives each live value its own dot:
//!
//! ```text
//!   server id   counter   live values (oldest first)   their dots
//!   a           4         [x, y]                       a3, a4
//!   b           2         [z]                          b2
//!   c           1         []                           -
//!
//!   join() = {a: 4, b: 2, c: 1}   (the context handed to clients)
//! ```
//!
//! A client reads the values and the context [`DVVSet::join`]; it writes a
//! value with that context through a server, which applies
//! [`DVVSet::update_with`]: values whose dots the context covers are gone,
//! the others stay, and the new value takes the server's next dot. Replicas
//! converge with [`DVVSet::sync`].
//!
//! ```
//! use epidemic_core::clock::DVVSet;
//!
//! // Two replicas of one key, on servers 1 and 2, both start empty.
//! let mut on_1: DVVSet<u8, &str> = DVVSet::default();
//! let mut on_2: DVVSet<u8, &str> = DVVSet::default();
//!
//! // A client writes "red" through server 1; it replicates to server 2.
//! on_1 = DVVSet::new("red").update_with(&on_1, 1);
//! on_2 = on_2.sync(&on_1);
//! let seen_red = on_2.join();
//!
//! // Concurrently: one client overwrites "red" through server 2, another
//! // writes blind through server 1.
//! on_2 = DVVSet::new_with(seen_red, "green").update_with(&on_2, 2);
//! on_1 = DVVSet::new("blue").update_with(&on_1, 1);
//!
//! // After anti-entropy both replicas hold the same two siblings: "red" was
//! // overwritten by a writer who had seen it, "blue" was not.
//! let merged = on_1.sync(&on_2);
//! assert_eq!(merged, on_2.sync(&on_1));
//! assert_eq!(merged.values().copied().collect::<Vec<_>>(), ["blue", "green"]);
//! assert_eq!(merged.join().get(&1), 2);
//! assert_eq!(merged.join().get(&2), 1);
//!
//! // A reader resolves the siblings and writes the result back.
//! let resolved = merged.reconcile(|siblings| if siblings.len() > 1 { "teal" } else { "?" }, 1);
//! assert_eq!(resolved.values().copied().collect::<Vec<_>>(), ["teal"]);
//! assert!(merged.less(&resolved));
//! ```

mod dvvset;
mod vclock;

pub use dvvset::{DVVSet, Siblings};
pub use vclock::{Dot, VClock};
