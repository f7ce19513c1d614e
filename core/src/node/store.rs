//! The plain-broadcast store: recent payloads for grafts, and exact
//! duplicate detection by `(origin, seq)`.

use super::BroadcastId;
use crate::Identity;
use crate::Instant;
use crate::broadcast::{Graft, Handler, MessageCache, Seen};
use bytes::Bytes;

/// [`MessageCache`] answers grafts; [`Seen`] tells new from duplicate. The
/// cache's own seen set forgets ids by count, and an id that still
/// circulates after that would be delivered twice; plain broadcast ids carry
/// a per-origin sequence number, which lets `Seen` forget safely.
pub(super) struct Store<I> {
    cache: MessageCache<BroadcastId<I>>,
    seen: Seen<I>,
}

impl<I: Identity> Store<I> {
    /// `payloads` payloads for grafts; `seen` sequence numbers held out of
    /// order (and origins).
    pub(super) fn new(payloads: usize, seen: usize) -> Self {
        Store {
            cache: MessageCache::new(payloads, payloads),
            seen: Seen::new(seen),
        }
    }

    /// Payloads held.
    pub(super) fn len(&self) -> usize {
        self.cache.len()
    }

    /// Entries of the exact seen set.
    pub(super) fn seen_len(&self) -> usize {
        self.seen.size()
    }
}

impl<I: Identity> Handler<BroadcastId<I>> for Store<I> {
    fn merge(&mut self, now: Instant, id: &BroadcastId<I>, payload: &Bytes) -> bool {
        if !self.seen.insert(&id.origin, id.seq) {
            return false;
        }
        self.cache.merge(now, id, payload);
        true
    }

    fn is_stale(&mut self, id: &BroadcastId<I>) -> bool {
        self.seen.contains(&id.origin, id.seq)
    }

    fn graft(&mut self, id: &BroadcastId<I>) -> Graft {
        self.cache.graft(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(origin: u64, seq: u64) -> BroadcastId<u64> {
        BroadcastId { origin, seq }
    }

    /// A count-bounded seen set forgets an id after that many newer ones,
    /// and a late copy of it was delivered again. Sequence numbers do not
    /// forget.
    #[test]
    fn a_late_copy_is_never_new_again() {
        let mut s = Store::new(2, 8);
        let p = Bytes::from_static(b"x");
        for seq in 0..10_000 {
            assert!(s.merge(Instant::ZERO, &id(1, seq), &p));
            assert!(s.merge(Instant::ZERO, &id(2, seq), &p));
        }
        assert!(s.is_stale(&id(1, 0)));
        assert!(!s.merge(Instant::ZERO, &id(1, 0), &p), "delivered twice");
        assert_eq!(s.graft(&id(1, 0)), Graft::Missing, "payload long evicted");
        assert_eq!(s.graft(&id(2, 9_999)), Graft::Payload(p.clone()));
        assert_eq!(s.len(), 2);
    }
}
