//! Joining (§4.2): the contact of a new node, and the random walk of its
//! `ForwardJoin`. The joiner's side, and joining again, are in
//! [`rejoin`](super::rejoin).

use alloc::vec::Vec;

use super::views::pick;
use super::{HyParView, Message};
use crate::identity::Identity;
use crate::time::Instant;

#[derive(Debug, Clone)]
pub(super) struct PendingJoin<I> {
    pub(super) contact: I,
    pub(super) deadline: Instant,
}

impl<I: Identity> HyParView<I> {
    /// §4.2: the contact connects to the joiner and starts a walk through
    /// each of its other neighbors.
    pub(super) fn on_join(&mut self, joiner: I) {
        if self.is_active(&joiner) {
            // A neighbor joining again has restarted and forgotten our
            // link: replace it.
            self.close(&joiner, false);
        }
        if !self.open(joiner.clone()) {
            self.send(
                joiner,
                Message::Disconnect {
                    link: None,
                    leaving: false,
                },
            );
            return;
        }
        let ttl = self.config.active_random_walk_length;
        let others: Vec<I> = self.active_view().filter(|p| **p != joiner).cloned().collect();
        for peer in others {
            self.send(
                peer,
                Message::ForwardJoin {
                    joiner: joiner.clone(),
                    ttl,
                },
            );
        }
    }

    /// §4.2, Algorithm 1.
    pub(super) fn on_forward_join(&mut self, from: I, joiner: I, ttl: u8) {
        if joiner == self.me {
            self.stats.names_self += 1;
            return;
        }
        let ttl = ttl.min(self.config.active_random_walk_length);
        if ttl == 0 || self.active.len() <= 1 {
            self.connect_joiner(joiner);
            return;
        }
        if ttl == self.config.passive_random_walk_length {
            self.add_passive(joiner.clone());
        }
        let next = pick(
            &mut self.rng,
            self.active
                .iter()
                .map(|l| &l.peer)
                .filter(|p| **p != from && **p != joiner),
        );
        match next {
            Some(next) => self.send(next, Message::ForwardJoin { joiner, ttl: ttl - 1 }),
            None => self.connect_joiner(joiner),
        }
    }

    pub(super) fn connect_joiner(&mut self, joiner: I) {
        if !self.is_active(&joiner) {
            self.open(joiner);
        }
    }
}
