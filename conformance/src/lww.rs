//! A last-writer-wins register map as an application's own broadcast
//! handler ([`ChannelHandler`]): the versioned store the [`user_handler`]
//! scenario runs on every adapter.
//!
//! Each key holds one `(version, writer, value)`; a write at a node takes
//! the key's next version, and of two entries the higher `(version,
//! writer)` wins, so every node that has seen the same writes holds the
//! same map. The handler answers the engine from the map:
//!
//! - a message id is the postcard encoding of `(key, version, writer)`, its
//!   payload the value;
//! - `merge` keeps the entry if it wins; `is_stale` says whether the map
//!   holds that entry or a winner over it; `graft` answers with the value if
//!   the map holds exactly that entry, `Stale` if it holds a winner,
//!   `Missing` otherwise;
//! - anti-entropy: `exchange` sends the map's digest (every key's version
//!   and writer), and a node that gets one answers with the entries it holds
//!   that win over the digest's (or that the digest lacks).
//!
//! The map records how each entry arrived ([`Source`]), so a test can tell
//! a repair by the exchange from a delivery by the broadcast.
//!
//! [`user_handler`]: crate::scenarios::user_handler

use bytes::Bytes;
use epidemic_core::broadcast::{self, Graft};
use epidemic_core::node::{ChannelConfig, ChannelHandler, ChannelId};
use epidemic_core::{Duration, Instant};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The channel the scenarios register the map on.
pub const CHANNEL: ChannelId = ChannelId(7);

/// The most entries one exchange reply carries (the rest follow at the
/// next exchange), so a reply always fits a frame for small values.
pub const MAX_REPLY: usize = 256;

/// How an entry reached this map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Written here.
    Local,
    /// Merged from a broadcast (a GOSSIP, or a GRAFT's answer).
    Broadcast,
    /// Merged from an anti-entropy exchange reply.
    Exchange,
}

/// One key's register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Bumped by every write.
    pub version: u64,
    /// Breaks ties between writes of one version.
    pub writer: u64,
    /// The value.
    pub value: Bytes,
    /// How it arrived.
    pub source: Source,
}

/// The store: key to register.
#[derive(Debug, Default)]
pub struct LwwMap {
    entries: BTreeMap<Bytes, Entry>,
}

/// A map shared between the handler (on the node's loop) and the test.
pub type Shared = Arc<Mutex<LwwMap>>;

#[derive(Serialize, Deserialize)]
struct Id {
    key: Bytes,
    version: u64,
    writer: u64,
}

#[derive(Serialize, Deserialize)]
enum Direct {
    /// Every key's `(version, writer)`.
    Digest(Vec<(Bytes, u64, u64)>),
    /// Entries that win over the digest's: `(key, version, writer, value)`.
    Entries(Vec<(Bytes, u64, u64, Bytes)>),
}

fn encode<T: Serialize>(t: &T) -> Bytes {
    Bytes::from(postcard::to_allocvec(t).expect("plain data encodes"))
}

impl LwwMap {
    /// Writes `value` under `key` as `writer`, at the key's next version;
    /// returns the message id and payload to broadcast.
    pub fn write(&mut self, writer: u64, key: &str, value: &str) -> (Bytes, Bytes) {
        let key = Bytes::copy_from_slice(key.as_bytes());
        let version = self.entries.get(&key).map_or(0, |e| e.version) + 1;
        let value = Bytes::copy_from_slice(value.as_bytes());
        let id = encode(&Id {
            key: key.clone(),
            version,
            writer,
        });
        self.entries.insert(
            key,
            Entry {
                version,
                writer,
                value: value.clone(),
                source: Source::Local,
            },
        );
        (id, value)
    }

    /// The entry of `key`.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key.as_bytes())
    }

    /// Every key with its value, in key order.
    pub fn values(&self) -> Vec<(Bytes, Bytes)> {
        self.entries.iter().map(|(k, e)| (k.clone(), e.value.clone())).collect()
    }

    /// Whether `(version, writer)` would win over what `key` holds.
    fn wins(&self, key: &Bytes, version: u64, writer: u64) -> bool {
        self.entries
            .get(key)
            .is_none_or(|e| (version, writer) > (e.version, e.writer))
    }

    fn apply(&mut self, key: Bytes, version: u64, writer: u64, value: Bytes, source: Source) -> bool {
        if !self.wins(&key, version, writer) {
            return false;
        }
        self.entries.insert(
            key,
            Entry {
                version,
                writer,
                value,
                source,
            },
        );
        true
    }
}

/// The map as a channel handler.
#[derive(Debug, Clone)]
pub struct LwwHandler {
    map: Shared,
}

impl LwwHandler {
    /// A handler over `map`.
    pub fn new(map: Shared) -> Self {
        LwwHandler { map }
    }
}

impl<I> ChannelHandler<I> for LwwHandler {
    fn merge(&mut self, _: Instant, id: &Bytes, payload: &Bytes) -> bool {
        let Ok(id) = postcard::from_bytes::<Id>(id) else {
            return false;
        };
        let mut map = self.map.lock().unwrap();
        map.apply(id.key, id.version, id.writer, payload.clone(), Source::Broadcast)
    }

    fn is_stale(&mut self, id: &Bytes) -> bool {
        let Ok(id) = postcard::from_bytes::<Id>(id) else {
            return true;
        };
        !self.map.lock().unwrap().wins(&id.key, id.version, id.writer)
    }

    fn graft(&mut self, id: &Bytes) -> Graft {
        let Ok(id) = postcard::from_bytes::<Id>(id) else {
            return Graft::Missing;
        };
        match self.map.lock().unwrap().entries.get(&id.key) {
            Some(e) if (e.version, e.writer) == (id.version, id.writer) => Graft::Payload(e.value.clone()),
            Some(e) if (e.version, e.writer) > (id.version, id.writer) => Graft::Stale,
            _ => Graft::Missing,
        }
    }

    fn exchange(&mut self, _: Instant, _: &I) -> Option<Bytes> {
        let map = self.map.lock().unwrap();
        let digest = map
            .entries
            .iter()
            .map(|(k, e)| (k.clone(), e.version, e.writer))
            .collect();
        Some(encode(&Direct::Digest(digest)))
    }

    fn handle_direct(&mut self, _: Instant, _: &I, message: &Bytes) -> Option<Bytes> {
        let mut map = self.map.lock().unwrap();
        match postcard::from_bytes::<Direct>(message).ok()? {
            Direct::Digest(digest) => {
                let theirs: BTreeMap<Bytes, (u64, u64)> = digest.into_iter().map(|(k, v, w)| (k, (v, w))).collect();
                let newer: Vec<_> = map
                    .entries
                    .iter()
                    .filter(|(k, e)| theirs.get(*k).is_none_or(|&vw| (e.version, e.writer) > vw))
                    .take(MAX_REPLY)
                    .map(|(k, e)| (k.clone(), e.version, e.writer, e.value.clone()))
                    .collect();
                (!newer.is_empty()).then(|| encode(&Direct::Entries(newer)))
            }
            Direct::Entries(entries) => {
                for (k, v, w, value) in entries {
                    map.apply(k, v, w, value, Source::Exchange);
                }
                None
            }
        }
    }
}

/// The channel's settings in the scenarios: the exchange every 500 ms, and
/// no catch-up announcements to neighbours that come up, so a node that was
/// down gets what it missed only through the exchange.
pub fn config() -> ChannelConfig {
    let mut plumtree = broadcast::Config::default();
    plumtree.catch_up_window = Duration::ZERO;
    ChannelConfig {
        plumtree,
        exchange_interval: Some(Duration::from_millis(500)),
    }
}
