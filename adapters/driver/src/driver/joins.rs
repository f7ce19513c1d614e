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
            Closed::ByUs => return,
        };
        self.join_ended(peer, || why);
    }
}
