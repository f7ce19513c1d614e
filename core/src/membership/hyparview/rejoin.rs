//! Rejoining: a node with no neighbor, or stranded with too few and no
//! passive peer to ask, joins again through a contact it was given. The
//! module docs ("Rejoining") explain when and why.

use super::join::PendingJoin;
use super::{HyParView, Message};
use crate::identity::Identity;
use crate::time::{Duration, Instant};
use alloc::vec::Vec;
use rand::Rng as _;

/// Shuffle ticks in a row that a node must end stranded (fewer than half
/// its neighbors, no untried passive peer) before it rejoins.
pub(super) const STRANDED_TICKS: u32 = 3;

/// The join contacts and the retry state.
#[derive(Debug, Clone)]
pub(super) struct Rejoin<I> {
    /// Contacts given to [`HyParView::join`], oldest first, at most
    /// [`Config::join_contacts`](super::Config::join_contacts).
    contacts: Vec<I>,
    /// The index of the next contact to try.
    cursor: usize,
    /// The delay before the next retry, before jitter; zero means the base
    /// ([`Config::neighbor_timeout`](super::Config::neighbor_timeout)).
    backoff: Duration,
    /// When the next retry is due.
    pub(super) retry_at: Option<Instant>,
    /// Shuffle ticks in a row that ended stranded.
    stranded_ticks: u32,
}

impl<I> Default for Rejoin<I> {
    fn default() -> Self {
        Rejoin {
            contacts: Vec::new(),
            cursor: 0,
            backoff: Duration::ZERO,
            retry_at: None,
            stranded_ticks: 0,
        }
    }
}

impl<I: PartialEq + core::fmt::Debug> Rejoin<I> {
    /// Checks the bounds of [`HyParView::check_invariants`](super::HyParView).
    #[cfg(test)]
    pub(super) fn check_invariants(&self, config: &super::Config, me: &I) {
        assert!(self.contacts.len() <= config.join_contacts, "too many join contacts");
        for (i, c) in self.contacts.iter().enumerate() {
            assert!(c != me, "self among join contacts");
            assert!(!self.contacts[..i].contains(c), "duplicate join contact {c:?}");
        }
        assert!(self.cursor <= self.contacts.len(), "contact cursor out of range");
        assert!(
            self.backoff <= config.join_retry_max.max(Duration::from_micros(1)),
            "backoff over join_retry_max"
        );
    }
}

impl<I: Identity> HyParView<I> {
    /// The contacts remembered for rejoining, oldest first.
    pub fn join_contacts(&self) -> impl Iterator<Item = &I> {
        self.rejoin.contacts.iter()
    }

    /// Joins through `contacts`, in order: the first is asked now; the
    /// first [`Config::join_contacts`](super::Config::join_contacts) are
    /// remembered, and while the node has no neighbour a join that fails
    /// (the contact is down, refuses, leaves, or is silent for
    /// [`Config::neighbor_timeout`](super::Config::neighbor_timeout)) is
    /// retried through the next, with jittered exponential backoff up to
    /// [`Config::join_retry_max`](super::Config::join_retry_max).
    pub fn join_via(&mut self, now: Instant, contacts: impl IntoIterator<Item = I>) {
        let me = self.me.clone();
        let contacts: Vec<I> = contacts
            .into_iter()
            .filter(|c| *c != me)
            .take(self.config.join_contacts.max(1))
            .collect();
        let Some(first) = contacts.first().cloned() else {
            return;
        };
        for c in &contacts {
            self.remember_contact(c);
        }
        // Remembering `first` again (in `join`) points the next retry at
        // the contact after it.
        self.join(now, first);
    }

    /// Remembers `contact` (bounded: the oldest is forgotten first); the
    /// next retry moves on to the contact after it.
    pub(super) fn remember_contact(&mut self, contact: &I) {
        let cap = self.config.join_contacts;
        let contacts = &mut self.rejoin.contacts;
        let i = match contacts.iter().position(|c| c == contact) {
            Some(i) => i,
            None if cap == 0 => return,
            None => {
                while contacts.len() >= cap {
                    contacts.remove(0);
                }
                contacts.push(contact.clone());
                contacts.len() - 1
            }
        };
        self.rejoin.cursor = i + 1;
        // A new join from the caller: start the backoff over.
        self.rejoin.backoff = Duration::ZERO;
        self.rejoin.retry_at = None;
    }

    /// Sends `Join` to `contact` and waits for its answer.
    pub(super) fn send_join(&mut self, now: Instant, contact: I) {
        crate::log::decision!(me = ?self.me, ?contact, "join sent");
        self.joining = Some(PendingJoin {
            contact: contact.clone(),
            deadline: now + self.config.neighbor_timeout,
        });
        self.send(contact, Message::Join);
    }

    /// The pending join's contact answered: connected to us.
    pub(super) fn join_answered(&mut self) {
        self.joining = None;
        self.rejoin.backoff = Duration::ZERO;
        self.rejoin.retry_at = None;
        self.rejoin.stranded_ticks = 0;
    }

    /// The pending join failed: its contact is down, refused, left, or was
    /// silent. Retry later, through the next contact.
    pub(super) fn join_failed(&mut self, now: Instant) {
        crate::log::decision!(me = ?self.me, contact = ?self.joining.as_ref().map(|j| &j.contact), "join failed: retrying with backoff through the next contact");
        self.joining = None;
        self.stats.join_failures += 1;
        self.schedule_rejoin(now);
    }

    /// Arms the retry timer, if it is not armed, after the current backoff
    /// with jitter (between half and all of it), and doubles the backoff up
    /// to [`Config::join_retry_max`](super::Config::join_retry_max).
    fn schedule_rejoin(&mut self, now: Instant) {
        if self.left || self.rejoin.retry_at.is_some() || self.rejoin.contacts.is_empty() {
            return;
        }
        let max = self.config.join_retry_max.max(Duration::from_micros(1));
        let base = self.config.neighbor_timeout.max(Duration::from_micros(1)).min(max);
        let backoff = if self.rejoin.backoff == Duration::ZERO {
            base
        } else {
            self.rejoin.backoff
        };
        let micros = backoff.as_micros();
        let half = micros / 2;
        let delay = half + self.rng.random_range(0..=micros - half);
        self.rejoin.retry_at = Some(now + Duration::from_micros(delay.max(1)));
        self.rejoin.backoff = backoff.saturating_mul(2).min(max);
    }

    /// On a shuffle tick, before a new repair round starts: notes whether
    /// the node is stranded, and arms a rejoin for a node with no neighbor
    /// or one stranded for [`STRANDED_TICKS`] ticks in a row.
    pub(super) fn rejoin_tick(&mut self, now: Instant) {
        // Every passive peer was asked in the round that ends (or there is
        // none), and the node is still short of half its neighbors.
        let stranded = self.very_short() && self.passive.iter().all(|p| self.tried.contains(p));
        if stranded {
            self.rejoin.stranded_ticks = self.rejoin.stranded_ticks.saturating_add(1);
        } else {
            self.rejoin.stranded_ticks = 0;
        }
        if self.joining.is_some() {
            return;
        }
        if self.active.is_empty() {
            self.schedule_rejoin(now);
        } else if self.rejoin.stranded_ticks >= STRANDED_TICKS && self.rejoin.retry_at.is_none() {
            self.rejoin.stranded_ticks = 0;
            self.stats.stranded_rejoins += 1;
            self.rejoin_now(now);
        }
    }

    /// The retry timer fired.
    pub(super) fn on_rejoin_timer(&mut self, now: Instant) {
        if self.rejoin.retry_at.take_if(|t| *t <= now).is_none() {
            return;
        }
        if self.joining.is_none() && self.active.is_empty() {
            self.rejoin_now(now);
        }
    }

    /// Joins through the next remembered contact that is not a neighbor
    /// already (a join through a neighbor would bring nobody new).
    fn rejoin_now(&mut self, now: Instant) {
        let n = self.rejoin.contacts.len();
        for _ in 0..n {
            let i = self.rejoin.cursor % n;
            self.rejoin.cursor = (i + 1) % n;
            let contact = self.rejoin.contacts[i].clone();
            if contact != self.me && !self.is_active(&contact) {
                self.stats.rejoins += 1;
                self.send_join(now, contact);
                return;
            }
        }
    }
}
