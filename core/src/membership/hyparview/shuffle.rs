//! Shuffles (§4.4): the periodic passive-view exchange along a random
//! walk, its reply, and the shuffle timer that also drives repair rounds,
//! probes and rejoins.

use alloc::vec::Vec;
use rand::Rng as _;

use super::views::{pick, sample};
use super::{HyParView, Message};
use crate::identity::Identity;
use crate::time::{Duration, Instant};

impl<I: Identity> HyParView<I> {
    /// §4.4: forward along the walk, or answer and merge.
    pub(super) fn on_shuffle(&mut self, from: I, origin: I, ttl: u8, nodes: Vec<I>) {
        if origin == self.me {
            self.stats.names_self += 1;
            return;
        }
        self.seen_in_component(&origin);
        let ttl = ttl.min(self.config.shuffle_ttl);
        if ttl > 0 && self.active.len() > 1 {
            let next = pick(
                &mut self.rng,
                self.active
                    .iter()
                    .map(|l| &l.peer)
                    .filter(|p| **p != from && **p != origin),
            );
            if let Some(next) = next {
                self.send(
                    next,
                    Message::Shuffle {
                        origin,
                        ttl: ttl - 1,
                        nodes,
                    },
                );
                return;
            }
        }
        let candidates: Vec<I> = self.passive.iter().filter(|p| **p != origin).cloned().collect();
        let reply = sample(&mut self.rng, candidates, nodes.len());
        self.send(origin, Message::ShuffleReply { nodes: reply.clone() });
        self.merge_passive(&nodes, &reply);
    }

    pub(super) fn on_shuffle_reply(&mut self, now: Instant, from: I, nodes: Vec<I>) {
        match self.shuffle_sent.take() {
            Some(sent) => {
                // Before the merge, which may bring the replier in.
                self.observe_shuffle_reply(now, &from, &nodes);
                self.merge_passive(&nodes, &sent);
            }
            None => self.stats.unexpected += 1,
        }
    }

    pub(super) fn shuffle_interval(&self) -> Duration {
        // A zero interval would make the timer fire forever at one instant.
        self.config.shuffle_interval.max(Duration::from_micros(1))
    }

    /// Arms the shuffle timer at a random phase within one interval.
    pub(super) fn arm_shuffle(&mut self, now: Instant) {
        if self.next_shuffle.is_none() && !self.left {
            let interval = self.shuffle_interval().as_micros();
            let phase = self.rng.random_range(1..=interval);
            self.next_shuffle = Some(now + Duration::from_micros(phase));
        }
    }

    /// The shuffle timer fired: shuffle, probe a lost peer, note whether
    /// the node is stranded, and end the repair round.
    pub(super) fn on_shuffle_timer(&mut self, now: Instant) {
        self.next_shuffle = Some(now + self.shuffle_interval());
        self.start_shuffle();
        self.start_probe(now);
        // Before `tried` is cleared: it tells whether every passive
        // peer was asked in the round that ends.
        self.rejoin_tick(now);
        if self.active.len() < self.config.active_view_capacity {
            // A new repair round: refusals of the last one may no longer hold.
            self.tried.clear();
        }
        // A whole round of low-priority requests left the node with
        // fewer than half its neighbors: the next round insists (see
        // "Closed components").
        self.escalate = self.very_short();
    }

    /// §4.4: send ourselves, ka neighbors and kp passive peers along a
    /// random walk starting at a random neighbor.
    pub(super) fn start_shuffle(&mut self) {
        let Some(target) = pick(&mut self.rng, self.active.iter().map(|l| &l.peer)) else {
            return;
        };
        let neighbors: Vec<I> = self.active_view().filter(|p| **p != target).cloned().collect();
        let mut sent = sample(&mut self.rng, neighbors, self.config.shuffle_active);
        sent.extend(sample(&mut self.rng, self.passive.clone(), self.config.shuffle_passive));
        let mut nodes = Vec::with_capacity(sent.len() + 1);
        nodes.push(self.me.clone());
        nodes.extend(sent.iter().cloned());
        self.shuffle_sent = Some(sent);
        self.send(
            target,
            Message::Shuffle {
                origin: self.me.clone(),
                ttl: self.config.shuffle_ttl,
                nodes,
            },
        );
    }
}
