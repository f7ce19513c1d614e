//! Per-peer lazy-push state: the lazy queue and the outstanding set (Riak).

use super::Announcement;
use super::bounded::BoundedMap;
use crate::time::Instant;
use alloc::collections::VecDeque;
use core::hash::Hash;

/// An announcement sent and not yet acknowledged.
pub(crate) struct Pending<I> {
    pub(crate) root: I,
    pub(crate) round: u32,
    /// When it was last sent; re-sent once a lazy tick older.
    pub(crate) sent_at: Instant,
}

pub(crate) struct Peer<I, M> {
    /// Announcements waiting for the next dispatch, oldest first.
    pub(crate) queue: VecDeque<Announcement<I, M>>,
    /// Announcements sent and not acknowledged, oldest first.
    pub(crate) outstanding: BoundedMap<M, Pending<I>>,
}

impl<I, M: Hash + Eq + Clone> Peer<I, M> {
    pub(crate) fn new(max_outstanding: usize) -> Self {
        Peer {
            queue: VecDeque::new(),
            outstanding: BoundedMap::new(max_outstanding),
        }
    }

    /// Queues an announcement; whether the oldest queued one was dropped to
    /// make room (a queue of capacity zero drops the new one).
    pub(crate) fn enqueue(&mut self, a: Announcement<I, M>, max_queue: usize) -> bool {
        if max_queue == 0 {
            return true;
        }
        let dropped = self.queue.len() >= max_queue && self.queue.pop_front().is_some();
        self.queue.push_back(a);
        dropped
    }
}
