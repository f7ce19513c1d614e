//! Decoding a [`DVVSet`]: a peer's bytes are checked against the invariants
//! every operation relies on before they become a set.

use alloc::vec::Vec;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

use super::{DVVSet, Entry};

/// What a decoder reads before the invariants are checked.
#[derive(Deserialize)]
#[serde(rename = "DVVSet")]
struct Unchecked<A, V> {
    entries: Vec<Entry<A, V>>,
    anonymous: Vec<V>,
}

impl<'de, A: Ord + Deserialize<'de>, V: Deserialize<'de>> Deserialize<'de> for DVVSet<A, V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let Unchecked { entries, anonymous } = Unchecked::deserialize(deserializer)?;
        check(&entries).map_err(D::Error::custom)?;
        Ok(DVVSet { entries, anonymous })
    }
}

/// The invariants every operation relies on.
pub(super) fn check<A: Ord, V>(entries: &[Entry<A, V>]) -> Result<(), &'static str> {
    if entries.windows(2).any(|w| matches!(w, [x, y] if x.id >= y.id)) {
        return Err("DVVSet server ids are not strictly increasing");
    }
    if entries.iter().any(|e| e.counter == 0) {
        return Err("DVVSet entry with a zero counter");
    }
    if entries
        .iter()
        .any(|e| u64::try_from(e.values.len()).map_or(true, |n| n > e.counter))
    {
        return Err("DVVSet entry holds more values than events");
    }
    Ok(())
}
