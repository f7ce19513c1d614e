//! Logical clocks: version vectors, dots and dotted version vector sets.
//!
//! - [`VClock`] is a version vector: one counter per actor. It orders
//!   histories by inclusion (`descends`), and finds concurrent ones.
//! - [`Dot`] is one event: an actor and that actor's counter.
//! - `DVVSet` (in [`dvvset`]) keeps the values of one key with one dot each,
//!   so that concurrent writes through one server stay distinguishable.

mod vclock;

pub use vclock::{Dot, VClock};
