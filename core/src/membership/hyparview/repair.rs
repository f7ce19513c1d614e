//! Repair of the active view (§4.3): neighbor requests and their replies,
//! promotion from the passive view, `Connect` and `Disconnect`, link
//! failures, and the probes of lost peers ("Healing partitions").

use alloc::vec::Vec;

use super::views::pick;
use super::{HyParView, Message, Priority};
use crate::identity::Identity;
use crate::rng;
use crate::time::Instant;

#[derive(Debug, Clone)]
pub(super) struct Pending<I> {
    pub(super) peer: I,
    pub(super) deadline: Instant,
    pub(super) priority: Priority,
}

/// A peer lost to a link failure, remembered until `until`.
#[derive(Debug, Clone)]
pub(super) struct Lost<I> {
    pub(super) peer: I,
    pub(super) until: Instant,
}

/// Why a high-priority probe was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ProbeKind {
    /// To a peer lost to a link failure ("Healing partitions").
    Lost,
    /// To a passive peer, from a component suspected closed.
    Isolation,
}

/// An outstanding high-priority probe.
#[derive(Debug, Clone)]
pub(super) struct Probe<I> {
    pub(super) contact: I,
    pub(super) deadline: Instant,
    pub(super) kind: ProbeKind,
}

impl<I: Identity> HyParView<I> {
    /// §4.3: a high-priority request is always accepted, a low one only
    /// with room to spare. Accepting changes nothing here: the requester
    /// connects if it still wants to.
    pub(super) fn on_neighbor(&mut self, from: I, priority: Priority) {
        // A lost peer asking to reconnect: the bridge is being built from
        // its side, no need to probe it from ours.
        self.lost.retain(|l| l.peer != from);
        let capacity = self.config.active_view_capacity;
        let mut accepted =
            self.is_active(&from) || (capacity > 0 && (priority == Priority::High || self.active.len() < capacity));
        if !accepted && capacity > 0 && self.suspects_closed() && self.maybe_outside(&from) {
            // A stranger asks while we suspect our component is closed and
            // have no passive peer left to probe: it is a way out.
            self.accept_as_way_out();
            accepted = true;
        }
        self.send(from, Message::NeighborReply { accepted });
    }

    pub(super) fn on_neighbor_reply(&mut self, from: I, accepted: bool) {
        if let Some(probe) = self.probe.take_if(|p| p.contact == from) {
            if probe.kind == ProbeKind::Isolation {
                self.on_isolation_reply(from, accepted);
                return;
            }
            if accepted && !self.is_active(&from) {
                // The lost peer is back: it may be the only bridge to a
                // healed partition, so it gets a slot even if the view is
                // full. One bridge is enough; forget the other lost peers.
                self.lost.clear();
                self.open(from);
                self.stats.reconnects_succeeded += 1;
            }
            return;
        }
        let asked = self.remove_pending(&from);
        if !accepted {
            if asked {
                // It stays a passive peer; `tried` keeps it from being asked
                // again this round.
                self.stats.promotions_refused += 1;
            } else {
                self.stats.unexpected += 1;
            }
            return;
        }
        // A late or surplus acceptance needs no undoing: the peer has not
        // connected, it only allowed us to.
        if asked && !self.is_active(&from) && self.active.len() < self.config.active_view_capacity {
            self.open(from);
            self.stats.promotions_succeeded += 1;
        }
    }

    pub(super) fn on_connect(&mut self, from: I, link: u64) {
        if self.joining.as_ref().is_some_and(|j| j.contact == from) {
            self.join_answered();
        }
        self.remove_pending(&from);
        match self.active.iter_mut().find(|l| l.peer == from) {
            Some(current) if current.id == link => {}
            Some(current) => {
                // Both sides connected at once. Each sees the other's
                // Connect while connected, and both keep the larger id.
                let closed = current.id.min(link);
                current.id = current.id.max(link);
                self.send(
                    from,
                    Message::Disconnect {
                        link: Some(closed),
                        leaving: false,
                    },
                );
            }
            None => {
                if !self.add_active(from.clone(), link) {
                    self.send(
                        from,
                        Message::Disconnect {
                            link: Some(link),
                            leaving: false,
                        },
                    );
                }
            }
        }
    }

    pub(super) fn on_disconnect(&mut self, now: Instant, from: I, link: Option<u64>, leaving: bool) {
        let closed = link.is_some() && link == self.link(&from);
        if closed {
            self.remove_active(&from);
        } else if link.is_some() {
            // A link already replaced or closed: a harmless race.
            self.stats.unexpected += 1;
        }
        if (link.is_none() || leaving) && self.remove_pending(&from) {
            self.stats.promotions_refused += 1;
        }
        if self.joining.as_ref().is_some_and(|j| j.contact == from) && (link.is_none() || leaving) {
            self.join_failed(now);
        }
        if leaving {
            self.remove_passive(&from);
            self.lost.retain(|l| l.peer != from);
        } else if closed {
            // §4.3: a dropped neighbor is still a good backup; but do not
            // ask it straight back in this round, it just chose to leave us.
            self.add_passive(from.clone());
            if self.passive.contains(&from) && !self.tried.contains(&from) {
                self.tried.push(from);
            }
        }
    }

    /// Remembers `peer`, lost to a link failure, for later reconnection.
    pub(super) fn remember_lost(&mut self, now: Instant, peer: I) {
        if self.config.lost_capacity == 0 {
            return;
        }
        self.lost.retain(|l| l.peer != peer);
        while self.lost.len() >= self.config.lost_capacity {
            self.lost.pop_front();
        }
        self.lost.push_back(Lost {
            peer,
            until: now + self.config.lost_retention,
        });
    }

    /// Not in the paper: once per shuffle tick, ask one remembered lost peer
    /// to become a neighbor again, with high priority.
    pub(super) fn start_probe(&mut self, now: Instant) {
        self.lost.retain(|l| l.until > now);
        if self.probe.is_some() {
            return;
        }
        let candidates: Vec<usize> = (0..self.lost.len())
            .filter(|&i| !self.is_active(&self.lost[i].peer))
            .collect();
        let Some(&i) = rng::index(&mut self.rng, candidates.len()).map(|k| &candidates[k]) else {
            return;
        };
        let Some(lost) = self.lost.remove(i) else { return };
        self.stats.reconnects_attempted += 1;
        self.probe = Some(Probe {
            contact: lost.peer.clone(),
            deadline: now + self.config.neighbor_timeout,
            kind: ProbeKind::Lost,
        });
        // Put it back at the end: if the probe fails it is probed again on a
        // later tick, until its retention ends.
        self.lost.push_back(lost.clone());
        self.send(
            lost.peer,
            Message::Neighbor {
                priority: Priority::High,
            },
        );
    }

    /// §4.3: ask untried passive peers to fill the free active slots.
    pub(super) fn refill(&mut self, now: Instant) {
        if self.left {
            return;
        }
        while self.active.len() + self.pending.len() < self.config.active_view_capacity {
            // Not a peer asked already: one evicted from the passive view
            // (which forgets it was tried) may be back while still pending.
            let untried = self
                .passive
                .iter()
                .filter(|p| !self.tried.contains(p) && !self.pending.iter().any(|q| q.peer == **p));
            let Some(peer) = pick(&mut self.rng, untried) else {
                break;
            };
            let insist = self.active.is_empty() || (self.escalate && self.very_short());
            let priority = if insist && self.pending.iter().all(|p| p.priority == Priority::Low) {
                if !self.active.is_empty() {
                    self.stats.escalations += 1;
                }
                self.escalate = false;
                Priority::High
            } else {
                Priority::Low
            };
            self.tried.push(peer.clone());
            self.pending.push(Pending {
                peer: peer.clone(),
                deadline: now + self.config.neighbor_timeout,
                priority,
            });
            self.stats.promotions_attempted += 1;
            self.send(peer, Message::Neighbor { priority });
        }
    }

    /// The link to `peer` failed ([`HyParView::handle_link_down`]; `peer`
    /// is not this node, and the node has not left): drop it from both
    /// views and any request, remember it for reconnection, and repair.
    pub(super) fn on_link_down(&mut self, now: Instant, peer: &I) {
        let known = self.is_active(peer) || self.is_passive(peer) || self.pending.iter().any(|p| p.peer == *peer);
        let probed = self.probe.as_ref().is_some_and(|p| p.contact == *peer);
        if probed {
            self.probe = None;
        }
        // A probed peer is still in the lost list; re-remembering it would
        // extend its retention forever.
        if known && !probed {
            self.remember_lost(now, peer.clone());
        }
        self.close(peer, false);
        if self.remove_pending(peer) {
            self.stats.promotions_failed += 1;
        }
        self.remove_passive(peer);
        if self.joining.as_ref().is_some_and(|j| j.contact == *peer) {
            self.join_failed(now);
        }
        self.refill(now);
    }

    /// Neighbor requests whose deadline has passed count as failures.
    pub(super) fn expire_pending(&mut self, now: Instant) {
        let mut expired = Vec::new();
        self.pending.retain(|p| {
            let keep = p.deadline > now;
            if !keep {
                expired.push(p.peer.clone());
            }
            keep
        });
        for peer in expired {
            // No answer in time: treat it as down (§4.3).
            self.stats.promotions_failed += 1;
            self.remove_passive(&peer);
        }
    }

    /// Ends a probe whose deadline has passed.
    pub(super) fn expire_probe(&mut self, now: Instant) {
        if let Some(probe) = self.probe.take_if(|p| p.deadline <= now) {
            if probe.kind == ProbeKind::Isolation {
                // No answer in time: treat it as down (§4.3).
                self.remove_passive(&probe.contact);
            }
        }
    }

    pub(super) fn remove_pending(&mut self, peer: &I) -> bool {
        let before = self.pending.len();
        self.pending.retain(|p| p.peer != *peer);
        self.pending.len() != before
    }
}
