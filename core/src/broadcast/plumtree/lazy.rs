//! The lazy side of the engine (paper §3.3, Riak's lazy queues): batching
//! announcements per neighbour, re-sending the unacknowledged ones on the
//! lazy tick, and the catch-up of recent messages for a neighbour that comes
//! up.

use super::Plumtree;
use crate::broadcast::batch::Batching;
use crate::broadcast::peer::{Peer, Pending};
use crate::broadcast::stats::Stats;
use crate::broadcast::{Announcement, Message, MessageId};
use crate::identity::Identity;
use crate::time::{Duration, Instant};
use alloc::collections::VecDeque;
use alloc::vec::Vec;

impl<I: Identity, M: MessageId> Plumtree<I, M> {
    /// Announces the messages of the last [`Config::catch_up_window`] to a
    /// neighbour that just came up (see there why).
    pub(super) fn catch_up(&mut self, now: Instant, peer: I) {
        self.forget_old(now);
        if self.recent.is_empty() {
            return;
        }
        let max_outstanding = self.config.max_outstanding;
        let max_queue = self.config.max_lazy_queue;
        let state = self.peers.entry(peer).or_insert_with(|| Peer::new(max_outstanding));
        for (_, a) in &self.recent {
            self.stats.lazy_dropped += u64::from(state.enqueue(a.clone(), max_queue));
            self.stats.catch_up_announcements += 1;
        }
        self.arm_dispatch(now);
    }

    /// Remembers a message delivered or originated now, for [`catch_up`](Self::catch_up).
    pub(super) fn remember(&mut self, now: Instant, a: Announcement<I, M>) {
        if self.config.max_catch_up == 0 || self.config.catch_up_window == Duration::ZERO {
            return;
        }
        self.forget_old(now);
        if self.recent.len() == self.config.max_catch_up {
            self.recent.pop_front();
        }
        self.recent.push_back((now, a));
    }

    pub(super) fn forget_old(&mut self, now: Instant) {
        let window = self.config.catch_up_window;
        while self
            .recent
            .front()
            .is_some_and(|(at, _)| now.saturating_since(*at) > window)
        {
            self.recent.pop_front();
        }
    }

    /// Flushes every lazy queue in batches; what is sent becomes
    /// outstanding (Riak).
    pub(super) fn dispatch(&mut self, now: Instant) {
        self.dispatch_at = None;
        let batching = self.config.batching();
        for (to, peer) in &mut self.peers {
            Self::flush(to, peer, batching, now, &mut self.stats, &mut self.transmits);
        }
        self.arm_lazy_tick(now);
    }

    /// Sends `peer`'s lazy queue in batches; what is sent becomes
    /// outstanding.
    pub(super) fn flush(
        to: &I,
        peer: &mut Peer<I, M>,
        batching: Batching,
        now: Instant,
        stats: &mut Stats,
        transmits: &mut VecDeque<(I, Message<I, M>)>,
    ) {
        if peer.queue.is_empty() {
            return;
        }
        for a in &peer.queue {
            let pending = Pending {
                root: a.root.clone(),
                round: a.round,
                sent_at: now,
            };
            if peer.outstanding.insert(a.id.clone(), pending).is_some() {
                stats.outstanding_dropped += 1;
            }
        }
        stats.announcements_sent += peer.queue.len() as u64;
        for announcements in batching.split(peer.queue.drain(..)) {
            stats.sent.ihave += 1;
            transmits.push_back((to.clone(), Message::IHave { announcements }));
        }
    }

    /// Riak's lazy tick: re-sends every announcement outstanding for at
    /// least a tick.
    pub(super) fn lazy_tick(&mut self, now: Instant) {
        self.lazy_tick_at = None;
        let tick = self.tick();
        let batching = self.config.batching();
        for (to, peer) in &mut self.peers {
            let due: Vec<Announcement<I, M>> = peer
                .outstanding
                .iter()
                .filter(|(_, p)| p.sent_at + tick <= now)
                .map(|(id, p)| Announcement {
                    id: id.clone(),
                    root: p.root.clone(),
                    round: p.round,
                })
                .collect();
            for a in &due {
                if let Some(p) = peer.outstanding.get_mut(&a.id) {
                    p.sent_at = now;
                }
            }
            self.stats.announcements_resent += due.len() as u64;
            for announcements in batching.split(due) {
                self.stats.sent.ihave += 1;
                self.transmits.push_back((to.clone(), Message::IHave { announcements }));
            }
        }
        self.arm_lazy_tick(now);
    }

    /// Lazy queues flush one dispatch interval after the first announcement
    /// queued since the last flush.
    pub(super) fn arm_dispatch(&mut self, now: Instant) {
        if self.dispatch_at.is_none() {
            self.dispatch_at = Some(now + self.config.dispatch_interval);
        }
    }

    pub(super) fn arm_lazy_tick(&mut self, now: Instant) {
        if self.lazy_tick_at.is_none() && self.peers.values().any(|p| !p.outstanding.is_empty()) {
            self.lazy_tick_at = Some(now + self.tick());
        }
    }

    /// The lazy tick, at least 1 ms: a zero tick would make the timer due
    /// forever at the same instant.
    pub(super) fn tick(&self) -> Duration {
        self.config.lazy_tick.max(Duration::from_millis(1))
    }
}
