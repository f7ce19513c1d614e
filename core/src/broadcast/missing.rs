//! Announced messages we do not have yet, and their timers (paper §3.7).

use crate::time::{Duration, Instant};
use alloc::collections::BTreeSet;
use alloc::vec::Vec;
use core::hash::Hash;
use foldhash::fast::FixedState;
use hashbrown::HashMap;

/// Every entry has exactly one timer in `timers`, at `deadline`: first
/// `ihave_timeout` after the first announcement, then `graft_timeout` after
/// each graft. When it fires with no announcer left to try, the entry goes.
pub(crate) struct Missing<I, M> {
    entries: HashMap<M, Entry<I>, FixedState>,
    timers: BTreeSet<(Instant, M)>,
    capacity: usize,
    max_announcers: usize,
}

pub(crate) struct Entry<I> {
    /// The root of the first announcement.
    pub(crate) root: I,
    /// Announcers in arrival order with the round each announced. Those
    /// before `next` have been grafted already.
    pub(crate) announcers: Vec<(I, u32)>,
    next: usize,
    deadline: Instant,
}

/// What recording an announcement cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Announced<I, M> {
    /// Another missing id was forgotten to make room.
    pub(crate) evicted: bool,
    /// The evicted id had not been grafted yet: graft its first announcer
    /// now. An id is never forgotten before one graft attempt, or a node
    /// cut off from the tree at a rate above `capacity / ihave_timeout`
    /// would see every entry evicted before its timer fired and would never
    /// graft back (it stopped at exactly `capacity` timer grafts).
    pub(crate) graft: Option<Fired<I, M>>,
    /// The announcer was not recorded: the id already has `max_announcers`.
    pub(crate) dropped: bool,
}

impl<I, M> Default for Announced<I, M> {
    fn default() -> Self {
        Announced {
            evicted: false,
            graft: None,
            dropped: false,
        }
    }
}

/// A due timer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fired<I, M> {
    /// Graft `peer` for `id`.
    Graft { id: M, root: I, peer: I, round: u32 },
    /// No announcer left: the entry is gone.
    Expired,
}

impl<I: Clone + Eq, M: Clone + Ord + Hash> Missing<I, M> {
    pub(crate) fn new(capacity: usize, max_announcers: usize) -> Self {
        Missing {
            entries: HashMap::with_hasher(FixedState::default()),
            timers: BTreeSet::new(),
            capacity,
            max_announcers: max_announcers.max(1),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The most announcers any entry holds, for the bound tests and stats.
    pub(crate) fn max_announcers_len(&self) -> usize {
        self.entries.values().map(|e| e.announcers.len()).max().unwrap_or(0)
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.timers.first().map(|(at, _)| *at)
    }

    /// Records that `from` announced `id`. The first announcement starts the
    /// timer at `now + timeout`. When the map is full, the entry whose timer
    /// is due first is forgotten: it has waited longest.
    pub(crate) fn announce(
        &mut self,
        now: Instant,
        timeout: Duration,
        id: M,
        root: I,
        from: I,
        round: u32,
    ) -> Announced<I, M> {
        let mut out = Announced::default();
        if let Some(e) = self.entries.get_mut(&id) {
            match e.announcers.iter().position(|(p, _)| *p == from) {
                // Announcing again after being grafted: its payload was lost
                // (the announcer re-sends until we acknowledge), so it may be
                // tried again, after the untried ones.
                Some(i) if i < e.next => {
                    e.announcers.remove(i);
                    e.next -= 1;
                    e.announcers.push((from, round));
                }
                Some(_) => {}
                None if e.announcers.len() >= self.max_announcers => out.dropped = true,
                None => e.announcers.push((from, round)),
            }
            return out;
        }
        if self.capacity == 0 {
            out.dropped = true;
            return out;
        }
        if self.entries.len() >= self.capacity {
            // Every entry has a timer, so the first timer names the victim.
            if let Some((_, old)) = self.timers.pop_first() {
                if let Some(e) = self.entries.remove(&old) {
                    out.graft = match (e.next, e.announcers.first()) {
                        (0, Some((peer, round))) => Some(Fired::Graft {
                            id: old,
                            root: e.root,
                            peer: peer.clone(),
                            round: *round,
                        }),
                        _ => None,
                    };
                }
                out.evicted = true;
            }
        }
        let deadline = now + timeout;
        self.timers.insert((deadline, id.clone()));
        self.entries.insert(
            id,
            Entry {
                root,
                announcers: alloc::vec![(from, round)],
                next: 0,
                deadline,
            },
        );
        out
    }

    /// Forgets `id` and cancels its timer.
    pub(crate) fn remove(&mut self, id: &M) -> Option<Entry<I>> {
        let e = self.entries.remove(id)?;
        self.timers.remove(&(e.deadline, id.clone()));
        Some(e)
    }

    /// Takes the next timer due at `now`: the next announcer to graft, with
    /// the timer re-armed `graft_timeout` later, or the entry's expiry.
    pub(crate) fn fire(&mut self, now: Instant, graft_timeout: Duration) -> Option<Fired<I, M>> {
        if self.next_deadline()? > now {
            return None;
        }
        let (_, id) = self.timers.pop_first()?;
        let Some(e) = self.entries.get_mut(&id) else {
            return Some(Fired::Expired);
        };
        match e.announcers.get(e.next).cloned() {
            Some((peer, round)) => {
                e.next += 1;
                e.deadline = now + graft_timeout;
                self.timers.insert((e.deadline, id.clone()));
                let root = e.root.clone();
                Some(Fired::Graft { id, root, peer, round })
            }
            None => {
                self.entries.remove(&id);
                Some(Fired::Expired)
            }
        }
    }

    /// Moves the timer of every entry of a root `orphaned` accepts that has
    /// not been grafted yet to `now`.
    pub(crate) fn expedite(&mut self, now: Instant, orphaned: impl Fn(&I) -> bool) {
        for (id, e) in self.entries.iter_mut() {
            if e.next == 0 && e.deadline > now && orphaned(&e.root) {
                self.timers.remove(&(e.deadline, id.clone()));
                e.deadline = now;
                self.timers.insert((now, id.clone()));
            }
        }
    }

    /// Forgets `peer` as an announcer everywhere (it went down).
    pub(crate) fn remove_peer(&mut self, peer: &I) {
        for e in self.entries.values_mut() {
            let tried = e.next;
            let mut i = 0;
            let mut next = tried;
            e.announcers.retain(|(p, _)| {
                let keep = p != peer;
                if !keep && i < tried {
                    next -= 1;
                }
                i += 1;
                keep
            });
            e.next = next;
        }
    }
}

#[cfg(test)]
impl<I: Clone + Eq, M: Clone + Ord + Hash> Missing<I, M> {
    /// One timer per entry, at the entry's deadline; bounds held.
    pub(crate) fn assert_invariants(&self) {
        assert_eq!(self.timers.len(), self.entries.len());
        assert!(self.entries.len() <= self.capacity);
        for (at, id) in &self.timers {
            assert_eq!(self.entries.get(id).map(|e| e.deadline), Some(*at));
        }
        for e in self.entries.values() {
            assert!(e.announcers.len() <= self.max_announcers && e.next <= e.announcers.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    #[test]
    fn two_timeouts_then_expiry() {
        let mut m: Missing<u32, u32> = Missing::new(4, 8);
        let (t1, t2) = (Duration::from_millis(100), Duration::from_millis(10));
        m.announce(ms(0), t1, 7, 1, 10, 3);
        m.announce(ms(5), t1, 7, 1, 11, 2);
        m.announce(ms(6), t1, 7, 1, 10, 3);
        assert_eq!(m.next_deadline(), Some(ms(100)));
        assert!(m.fire(ms(99), t2).is_none());
        assert!(matches!(
            m.fire(ms(100), t2),
            Some(Fired::Graft { peer: 10, round: 3, .. })
        ));
        assert_eq!(m.next_deadline(), Some(ms(110)));
        assert!(matches!(
            m.fire(ms(110), t2),
            Some(Fired::Graft { peer: 11, round: 2, .. })
        ));
        assert!(matches!(m.fire(ms(120), t2), Some(Fired::Expired)));
        assert_eq!((m.len(), m.next_deadline()), (0, None));
    }

    #[test]
    fn bounded_and_evicts_the_longest_waiting() {
        let mut m: Missing<u32, u32> = Missing::new(2, 2);
        let t = Duration::from_millis(100);
        assert_eq!(m.announce(ms(0), t, 1, 0, 10, 0), Announced::default());
        m.announce(ms(1), t, 2, 0, 10, 0);
        m.announce(ms(2), t, 2, 0, 11, 0);
        assert!(m.announce(ms(2), t, 2, 0, 12, 0).dropped);
        let r = m.announce(ms(3), t, 3, 0, 10, 0);
        assert!(r.evicted);
        assert_eq!(
            r.graft,
            Some(Fired::Graft {
                id: 1,
                root: 0,
                peer: 10,
                round: 0
            }),
            "an evicted id that was never grafted is grafted now"
        );
        assert_eq!(m.len(), 2);
        assert!(m.remove(&1).is_none(), "id 1 waited longest and was evicted");
        // An evicted id that was grafted already has had its attempt.
        assert!(matches!(m.fire(ms(103), t), Some(Fired::Graft { id: 2, .. })));
        assert!(matches!(m.fire(ms(103), t), Some(Fired::Graft { id: 3, .. })));
        let r = m.announce(ms(104), t, 4, 0, 10, 0);
        assert!(r.evicted && r.graft.is_none());
        m.announce(ms(105), t, 4, 0, 11, 0);
        m.remove_peer(&10);
        assert_eq!(m.max_announcers_len(), 1);
    }
}
