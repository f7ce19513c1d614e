//! A bounded [`Handler`] for plain broadcasts.

use super::bounded::BoundedMap;
use super::{Graft, Handler, MessageId};
use crate::time::Instant;
use bytes::Bytes;
use core::fmt;

/// Remembers recent broadcasts for a node that has no store of its own.
///
/// Two bounded, first-in-first-out memories:
///
/// - the last `capacity` payloads, to answer grafts;
/// - the last `seen_capacity` ids (at least `capacity`), to tell new
///   messages from duplicates.
///
/// Past the bounds:
///
/// - a GRAFT for an id whose payload was evicted is answered
///   [`Graft::Missing`], and the grafter tries its next announcer;
/// - an id evicted from the seen set looks new again. If a peer still pushed
///   it after that, it would be delivered a second time. Size `seen_capacity`
///   to cover the longest time a message can keep circulating (in practice a
///   few lazy ticks: outstanding announcements are re-sent until
///   acknowledged), at the expected message rate.
///
/// Memory is `capacity` payloads plus `seen_capacity` ids; payload bytes are
/// not bounded separately, [`Config::max_payload`](super::Config::max_payload)
/// bounds each.
pub struct MessageCache<M> {
    payloads: BoundedMap<M, Bytes>,
    seen: BoundedMap<M, ()>,
    capacity: usize,
    seen_capacity: usize,
}

impl<M: MessageId> MessageCache<M> {
    /// A cache of `capacity` payloads and `seen_capacity` ids (raised to
    /// `capacity` if smaller).
    pub fn new(capacity: usize, seen_capacity: usize) -> Self {
        let seen_capacity = seen_capacity.max(capacity);
        MessageCache {
            payloads: BoundedMap::new(capacity),
            seen: BoundedMap::new(seen_capacity),
            capacity,
            seen_capacity,
        }
    }

    /// The payload of `id`, if still held.
    pub fn get(&self, id: &M) -> Option<&Bytes> {
        self.payloads.get(id)
    }

    /// Whether `id` is in the seen set.
    pub fn contains(&self, id: &M) -> bool {
        self.seen.contains_key(id)
    }

    /// Payloads held.
    pub fn len(&self) -> usize {
        self.payloads.len()
    }

    /// Whether no payload is held.
    pub fn is_empty(&self) -> bool {
        self.payloads.is_empty()
    }

    /// Ids in the seen set.
    pub fn seen_len(&self) -> usize {
        self.seen.len()
    }

    /// The payload bound.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The seen-id bound.
    pub fn seen_capacity(&self) -> usize {
        self.seen_capacity
    }
}

impl<M: MessageId> Handler<M> for MessageCache<M> {
    fn merge(&mut self, _now: Instant, id: &M, payload: &Bytes) -> bool {
        if self.seen.contains_key(id) {
            return false;
        }
        self.seen.insert(id.clone(), ());
        self.payloads.insert(id.clone(), payload.clone());
        true
    }

    fn is_stale(&mut self, id: &M) -> bool {
        self.seen.contains_key(id)
    }

    fn graft(&mut self, id: &M) -> Graft {
        match self.payloads.get(id) {
            Some(payload) => Graft::Payload(payload.clone()),
            None => Graft::Missing,
        }
    }
}

impl<M> fmt::Debug for MessageCache<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageCache")
            .field("capacity", &self.capacity)
            .field("seen_capacity", &self.seen_capacity)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_duplicates_and_answers_grafts() {
        let mut c = MessageCache::new(2, 4);
        let p = Bytes::from_static(b"x");
        assert!(c.merge(Instant::ZERO, &1u32, &p));
        assert!(!c.merge(Instant::ZERO, &1, &p));
        assert!(c.is_stale(&1));
        assert!(!c.is_stale(&2));
        assert_eq!(c.graft(&1), Graft::Payload(p.clone()));
        assert_eq!(c.graft(&2), Graft::Missing);
    }

    #[test]
    fn past_the_bounds() {
        let mut c = MessageCache::new(2, 4);
        let p = Bytes::from_static(b"x");
        for id in 0u32..5 {
            assert!(c.merge(Instant::ZERO, &id, &p));
        }
        assert_eq!((c.len(), c.seen_len()), (2, 4));
        // Payload evicted but still seen: a duplicate, and grafts get Missing.
        assert!(c.is_stale(&2));
        assert_eq!(c.graft(&2), Graft::Missing);
        assert!(!c.merge(Instant::ZERO, &2, &p));
        // Evicted from the seen set too: looks new again (documented).
        assert!(!c.is_stale(&0));
        assert!(c.merge(Instant::ZERO, &0, &p));
    }
}
