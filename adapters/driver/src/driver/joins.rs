//! Joins that never fail silently: the last failure of each join contact,
//! and the waits of [`Handle::joined`](crate::Handle::joined), which the
//! loop completes when a neighbour comes up and ends at their deadline on
//! its own timer.

use super::Core;
use crate::joined::{ContactFailure, JoinError, JoinWait, MAX_CONTACTS};
use crate::link::Closed;
use crate::oneshot;
use epidemic_core::Instant;
use std::net::SocketAddr;

/// A join contact and the last reason it failed, if any since it last
/// answered.
struct Contact {
    addr: SocketAddr,
    failure: Option<ContactFailure>,
}

/// A [`Handle::joined`](crate::Handle::joined) waiting.
struct Waiter {
    wanted: usize,
    deadline: Instant,
    reply: oneshot::Sender<Result<(), JoinError>>,
}

/// The join contacts (at most [`MAX_CONTACTS`], oldest first) and the
/// waits.
#[derive(Default)]
pub(super) struct Joins {
    contacts: Vec<Contact>,
    waiters: Vec<Waiter>,
}

impl Joins {
    /// Remembers `contacts` (but `me`), forgetting the oldest beyond
    /// [`MAX_CONTACTS`].
    pub(super) fn remember(&mut self, contacts: &[SocketAddr], me: SocketAddr) {
        for &addr in contacts {
            if addr == me || self.contacts.iter().any(|c| c.addr == addr) {
                continue;
            }
            if self.contacts.len() >= MAX_CONTACTS {
                self.contacts.remove(0);
            }
            self.contacts.push(Contact { addr, failure: None });
        }
    }

    fn contact(&mut self, peer: SocketAddr) -> Option<&mut Contact> {
        self.contacts.iter_mut().find(|c| c.addr == peer)
    }

    /// `peer`, if it is a join contact, failed with `failure`.
    pub(super) fn failed(&mut self, peer: SocketAddr, failure: ContactFailure) {
        if let Some(c) = self.contact(peer) {
            c.failure = Some(failure);
        }
    }

    /// `peer`, if it is a join contact, answered: its earlier failures are
    /// past.
    pub(super) fn answered(&mut self, peer: SocketAddr) {
        if let Some(c) = self.contact(peer) {
            c.failure = None;
        }
    }

    /// The earliest deadline of a wait.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.waiters.iter().map(|w| w.deadline).min()
    }

    /// The node is stopping: every wait is answered `Shutdown` (its reply
    /// dropped).
    pub(super) fn stop(&mut self) {
        self.waiters.clear();
    }

    /// Answers the waits that `neighbors` satisfy, and those whose deadline
    /// has come by `now`.
    fn settle(&mut self, now: Instant, neighbors: &[SocketAddr]) {
        let n = neighbors.len();
        let mut expired = Vec::new();
        let mut i = 0;
        while i < self.waiters.len() {
            let w = &self.waiters[i];
            if n >= w.wanted {
                let _ = self.waiters.swap_remove(i).reply.send(Ok(()));
            } else if w.deadline <= now {
                expired.push(self.waiters.swap_remove(i));
            } else {
                i += 1;
            }
        }
        for w in expired {
            let contacts = self
                .contacts
                .iter()
                .filter(|c| !neighbors.contains(&c.addr))
                .map(|c| (c.addr, c.failure.clone().unwrap_or(ContactFailure::NoAnswer)))
                .collect();
            let _ = w.reply.send(Err(JoinError::Timeout {
                neighbors: n,
                wanted: w.wanted,
                contacts,
            }));
        }
    }
}

impl Core {
    /// A [`Handle::joined`](crate::Handle::joined) request.
    pub(super) fn on_joined(&mut self, now: Instant, wait: JoinWait, reply: oneshot::Sender<Result<(), JoinError>>) {
        // Waits given up on (their future dropped) go first, so that the
        // list holds only live waits however often a caller gives up.
        self.joins.waiters.retain(|w| !w.reply.is_abandoned());
        self.joins.waiters.push(Waiter {
            wanted: wait.neighbors.max(1),
            deadline: now + wait.timeout.into(),
            reply,
        });
        self.settle_joins(now);
    }

    /// Answers the waits that can be answered (after every drain, and on
    /// the timer).
    pub(super) fn settle_joins(&mut self, now: Instant) {
        if self.joins.waiters.is_empty() {
            return;
        }
        let neighbors = self.node.active_view();
        self.joins.settle(now, &neighbors);
    }

    /// Whether the node's pending join is through `peer`.
    pub(super) fn joining_through(&self, peer: SocketAddr) -> bool {
        self.node.joining() == Some(&peer)
    }

    /// The join through `peer` was pending before the last input: if that
    /// input ended it and `peer` is not a neighbour, it failed with `why`.
    pub(super) fn join_ended(&mut self, peer: SocketAddr, why: impl FnOnce() -> ContactFailure) {
        if !self.joining_through(peer) && !self.node.active_view().contains(&peer) {
            self.joins.failed(peer, why());
        }
    }

    /// The reason a link to `peer` closing as `how` ended the join through
    /// it.
    pub(super) fn join_link_closed(&mut self, peer: SocketAddr, how: Closed) {
        let why = match how {
            Closed::Goodbye => ContactFailure::RefusedByPeer("it closed the link (it is leaving, or idle)".into()),
            Closed::Broken => ContactFailure::HungUp("the link broke before the join was answered".into()),
            Closed::BadInput => ContactFailure::WrongTransport("it sent bytes that are not frames".into()),
            Closed::OverBudget => {
                ContactFailure::HungUp("its link was closed: this node's partial-frame budget was full".into())
            }
            Closed::ByUs => return,
        };
        self.join_ended(peer, || why);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use futures_lite::future::block_on;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn contacts_are_bounded_and_waits_settle_on_neighbours_or_deadline() {
        let mut j = Joins::default();
        let many: Vec<SocketAddr> = (1..=100).map(addr).collect();
        j.remember(&many, addr(1));
        j.remember(&many, addr(1)); // again: nothing new
        assert_eq!(j.contacts.len(), MAX_CONTACTS);
        assert_eq!(j.contacts[0].addr, addr(100 - MAX_CONTACTS as u16 + 1));
        j.failed(addr(100), ContactFailure::Unreachable("refused".into()));
        j.failed(addr(2), ContactFailure::Unreachable("forgotten".into()));
        assert!(j.contacts.iter().all(|c| c.addr != addr(2)));

        let at = Instant::from_millis;
        let (one_tx, one_rx) = oneshot::channel();
        let (two_tx, two_rx) = oneshot::channel();
        j.waiters.push(Waiter {
            wanted: 1,
            deadline: at(10),
            reply: one_tx,
        });
        j.waiters.push(Waiter {
            wanted: 2,
            deadline: at(5),
            reply: two_tx,
        });
        j.settle(at(1), &[]);
        assert_eq!((j.waiters.len(), j.deadline()), (2, Some(at(5))));
        // A neighbour (the contact that failed before) answers the first;
        // the second's deadline has come.
        j.answered(addr(99));
        j.settle(at(6), &[addr(100)]);
        assert!(j.waiters.is_empty());
        assert_eq!(block_on(one_rx), Ok(Ok(())));
        let Ok(Err(JoinError::Timeout {
            neighbors: 1,
            wanted: 2,
            contacts,
        })) = block_on(two_rx)
        else {
            panic!("the second wait did not time out")
        };
        assert_eq!(contacts.len(), MAX_CONTACTS - 1, "the neighbour is not listed");
        assert!(
            contacts
                .iter()
                .all(|(a, why)| *a != addr(100) && *why == ContactFailure::NoAnswer)
        );
    }
}
