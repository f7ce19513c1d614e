//! The event queue: scheduled frames and link events, node deadlines, and
//! the run loops that step through them in virtual time.

use crate::Id;
use epidemic_core::node::LinkEvent;
#[cfg(doc)]
use epidemic_core::node::Node;
use epidemic_core::wire::{HEADER_LEN, Kind};
use epidemic_core::{Duration, Instant};
use std::cmp::Reverse;

use super::Bus;

pub(super) enum What {
    Frame {
        from: Id,
        to: Id,
        from_inc: u32,
        to_inc: u32,
        frame: Vec<u8>,
    },
    Link {
        at: Id,
        at_inc: u32,
        peer: Id,
        event: LinkEvent,
    },
}

impl Bus {
    /// Runs every event up to `now + d`, then sets the clock there.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some(at) = self.next_at() {
            if at > end {
                break;
            }
            self.step();
        }
        self.now = self.now.max(end);
    }

    /// Runs until no broadcast frame (Plumtree or metadata) is in flight and
    /// every live node is idle ([`Node::is_idle`]); periodic membership
    /// traffic (shuffles, their replies, link events) keeps flowing meanwhile
    /// and does not count, since in a large cluster some of it is always in
    /// flight. Returns false if `limit` of virtual time passed first.
    pub fn run_until_quiescent(&mut self, limit: Duration) -> bool {
        let end = self.now + limit;
        loop {
            if self.broadcast_in_flight == 0 && self.settle_touched() {
                return true;
            }
            match self.next_at() {
                Some(at) if at <= end => {
                    self.step();
                }
                _ => {
                    self.now = self.now.max(end);
                    return false;
                }
            }
        }
    }

    /// Asks the nodes touched since the last call whether they are idle;
    /// whether every live node now is. A node that is not touched again keeps
    /// its answer, so a node waiting on a timer is not asked after every
    /// event.
    pub(super) fn settle_touched(&mut self) -> bool {
        for id in std::mem::take(&mut self.touched) {
            let slot = &mut self.slots[id as usize];
            slot.touched = false;
            let busy = slot.node.as_ref().is_some_and(|n| !n.is_idle());
            if busy != slot.busy {
                slot.busy = busy;
                if busy {
                    self.busy += 1;
                } else {
                    self.busy -= 1;
                }
            }
        }
        self.busy == 0
    }

    /// Processes the single next event (frame, link event or deadline).
    /// Returns false if there is none.
    pub fn step(&mut self) -> bool {
        let q = self.queue.peek().map(|Reverse((at, ..))| *at);
        let t = self.timers.peek().map(|Reverse((at, ..))| *at);
        match (q, t) {
            (None, None) => false,
            (Some(q), Some(t)) if t < q => self.fire_timer(),
            (Some(_), _) => {
                let Reverse((at, _, slot)) = self.queue.pop().expect("peeked");
                let what = self.scheduled[slot as usize].take().expect("scheduled once");
                self.free.push(slot);
                if let What::Frame { frame, .. } = &what {
                    self.broadcast_in_flight -= usize::from(is_broadcast(frame));
                }
                self.now = self.now.max(at);
                self.deliver(what);
                true
            }
            (None, Some(_)) => self.fire_timer(),
        }
    }

    pub(super) fn next_at(&self) -> Option<Instant> {
        let q = self.queue.peek().map(|Reverse((at, ..))| *at);
        let t = self.timers.peek().map(|Reverse((at, ..))| *at);
        match (q, t) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub(super) fn fire_timer(&mut self) -> bool {
        let Reverse((at, id, inc)) = self.timers.pop().expect("peeked");
        let slot = &mut self.slots[id as usize];
        if slot.incarnation != inc || slot.armed != Some(at) {
            return true; // superseded
        }
        slot.armed = None;
        self.now = self.now.max(at);
        let now = self.now;
        if let Some(node) = slot.node.as_mut() {
            node.handle_timeout(now);
            self.drain(id);
        }
        true
    }

    pub(super) fn push(&mut self, at: Instant, what: What) {
        if let What::Frame { frame, .. } = &what {
            self.broadcast_in_flight += usize::from(is_broadcast(frame));
        }
        self.seq += 1;
        let slot = match self.free.pop() {
            Some(slot) => {
                self.scheduled[slot as usize] = Some(what);
                slot
            }
            None => {
                self.scheduled.push(Some(what));
                (self.scheduled.len() - 1) as u32
            }
        };
        self.queue.push(Reverse((at, self.seq, slot)));
    }

    pub(super) fn schedule_down(&mut self, at: Instant, node: Id, peer: Id) {
        if self.pending_down.insert((node, peer)) {
            let at_inc = self.slots[node as usize].incarnation;
            self.push(
                at,
                What::Link {
                    at: node,
                    at_inc,
                    peer,
                    event: LinkEvent::Down,
                },
            );
        }
    }
}

/// Whether a frame carries broadcast traffic (by its header's kind byte), as
/// opposed to membership traffic, which never quiesces in a live cluster.
fn is_broadcast(frame: &[u8]) -> bool {
    frame.len() >= HEADER_LEN && matches!(Kind::from_u8(frame[1]), Some(Kind::Plumtree | Kind::Metadata))
}
