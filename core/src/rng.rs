//! The injected source of randomness.
//!
//! Every state machine that needs randomness owns one [`Rng`], seeded by the
//! caller. Xoshiro256++ is used because its output is specified bit for bit,
//! so a seed reproduces a run on every platform (`SmallRng` makes no such
//! promise across targets).

use rand::{Rng as _, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// The core's random number generator.
pub type Rng = Xoshiro256PlusPlus;

/// A generator from a 64-bit seed.
pub fn from_seed(seed: u64) -> Rng {
    Rng::seed_from_u64(seed)
}

/// A uniformly chosen index below `n`; `None` when `n == 0`.
pub fn index(rng: &mut Rng, n: usize) -> Option<usize> {
    (n > 0).then(|| rng.random_range(0..n))
}
