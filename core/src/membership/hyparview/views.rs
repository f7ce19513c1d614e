//! The active and passive views: links to neighbors, evictions, and the
//! merge of shuffled entries (§4.1, §4.4), with the random choices they
//! make.

use alloc::vec::Vec;
use rand::RngCore as _;

use super::{Event, HyParView, Message};
use crate::identity::Identity;
use crate::rng::{self, Rng};

/// A neighbor and the id of the link to it.
#[derive(Debug, Clone)]
pub(super) struct Link<I> {
    pub(super) peer: I,
    pub(super) id: u64,
}

impl<I: Identity> HyParView<I> {
    pub(super) fn link(&self, peer: &I) -> Option<u64> {
        self.active.iter().find(|l| l.peer == *peer).map(|l| l.id)
    }

    /// Makes `peer` a neighbor over a new link and tells it with `Connect`.
    /// False only if the peer is this node or the capacity is zero.
    pub(super) fn open(&mut self, peer: I) -> bool {
        let mut link = self.rng.next_u64();
        while self.active.iter().any(|l| l.id == link) {
            link = self.rng.next_u64();
        }
        if !self.add_active(peer.clone(), link) {
            return false;
        }
        self.send(peer, Message::Connect { link });
        true
    }

    /// Closes the link to `peer`, telling it with `Disconnect`. The peer is
    /// not kept as a passive peer: the caller decides.
    pub(super) fn close(&mut self, peer: &I, leaving: bool) {
        if let Some(link) = self.link(peer) {
            self.remove_active(peer);
            self.send(
                peer.clone(),
                Message::Disconnect {
                    link: Some(link),
                    leaving,
                },
            );
        }
    }

    /// Adds `peer` over `link`, evicting a random neighbor (with
    /// `Disconnect`) if the view is full. False only if the peer is this
    /// node or the capacity is zero. The caller has checked that `peer` is
    /// not a neighbor already.
    pub(super) fn add_active(&mut self, peer: I, link: u64) -> bool {
        let capacity = self.config.active_view_capacity;
        if peer == self.me || capacity == 0 {
            return false;
        }
        self.remove_pending(&peer);
        self.remove_passive(&peer);
        while self.active.len() >= capacity {
            let Some(victim) = pick(&mut self.rng, self.active.iter().map(|l| &l.peer)) else {
                break;
            };
            self.stats.evictions += 1;
            self.close(&victim, false);
            self.add_passive(victim);
        }
        self.active.push(Link {
            peer: peer.clone(),
            id: link,
        });
        self.stats.neighbor_up += 1;
        self.events.push_back(Event::NeighborUp(peer.clone()));
        if self.joining.as_ref().is_some_and(|j| j.contact == peer) {
            self.join_answered();
        }
        if self.active.len() >= capacity {
            // The repair round is over.
            self.tried.clear();
        }
        true
    }

    pub(super) fn remove_active(&mut self, peer: &I) -> bool {
        match self.active.iter().position(|l| l.peer == *peer) {
            Some(i) => {
                let link = self.active.remove(i);
                self.neighbor_down(link.peer);
                true
            }
            None => false,
        }
    }

    pub(super) fn neighbor_down(&mut self, peer: I) {
        self.stats.neighbor_down += 1;
        self.events.push_back(Event::NeighborDown(peer));
    }

    pub(super) fn add_passive(&mut self, peer: I) {
        if peer == self.me || self.is_active(&peer) || self.passive.contains(&peer) {
            return;
        }
        if self.config.passive_view_capacity == 0 {
            return;
        }
        while self.passive.len() >= self.config.passive_view_capacity {
            let Some(i) = rng::index(&mut self.rng, self.passive.len()) else {
                break;
            };
            self.evict_passive(i);
        }
        self.passive.push(peer);
    }

    /// §4.4: merge shuffled entries, making room by dropping first the
    /// entries we sent to the other side (it has them now), then random ones
    /// other than those this merge brought in.
    pub(super) fn merge_passive(&mut self, nodes: &[I], sent: &[I]) {
        let capacity = self.config.passive_view_capacity;
        if capacity == 0 {
            return;
        }
        for node in nodes {
            if *node == self.me || self.is_active(node) || self.passive.contains(node) {
                continue;
            }
            while self.passive.len() >= capacity {
                let i = sent
                    .iter()
                    .find_map(|s| self.passive.iter().position(|p| p == s))
                    .or_else(|| {
                        let old: Vec<usize> = (0..self.passive.len())
                            .filter(|&i| self.passive.get(i).is_some_and(|p| !nodes.contains(p)))
                            .collect();
                        rng::index(&mut self.rng, old.len()).and_then(|j| old.get(j).copied())
                    })
                    .or_else(|| rng::index(&mut self.rng, self.passive.len()));
                let Some(i) = i else {
                    break;
                };
                self.evict_passive(i);
            }
            self.passive.push(node.clone());
        }
    }

    pub(super) fn evict_passive(&mut self, i: usize) {
        if i < self.passive.len() {
            let peer = self.passive.remove(i);
            self.tried.retain(|t| *t != peer);
            self.stats.passive_evictions += 1;
        }
    }

    pub(super) fn remove_passive(&mut self, peer: &I) {
        self.passive.retain(|p| p != peer);
        self.tried.retain(|t| t != peer);
    }
}

/// A uniformly chosen candidate. Views are small, so collecting is cheap.
pub(super) fn pick<'a, I: Clone + 'a>(rng: &mut Rng, candidates: impl Iterator<Item = &'a I>) -> Option<I> {
    let candidates: Vec<&I> = candidates.collect();
    let i = rng::index(rng, candidates.len())?;
    candidates.get(i).map(|p| (*p).clone())
}

/// Up to `k` distinct entries of `pool`, chosen uniformly (a partial
/// Fisher–Yates shuffle).
pub(super) fn sample<I>(rng: &mut Rng, mut pool: Vec<I>, k: usize) -> Vec<I> {
    let k = k.min(pool.len());
    for i in 0..k {
        if let Some(j) = rng::index(rng, pool.len() - i) {
            pool.swap(i, i + j);
        }
    }
    pool.truncate(k);
    pool
}
