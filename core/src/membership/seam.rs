//! The one membership type the [`Node`](crate::node::Node) drives: either
//! protocol behind the same methods, so the node never asks which it runs.

use super::{Event, LinkEvent, hyparview, mesh};
use crate::identity::Identity;
use crate::time::Instant;
use crate::wire::WireError;
use alloc::boxed::Box;
use alloc::vec::Vec;

/// Either membership protocol, with one set of methods. The node hands it
/// messages, link news and timeouts, and drains messages and
/// [`Event`]s from it.
pub(crate) enum Membership<I: Identity> {
    /// HyParView partial views.
    HyParView(Box<hyparview::HyParView<I>>),
    /// Operator-controlled full mesh.
    Mesh(Box<mesh::Mesh<I>>),
}

/// A membership message of either protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Message<I: Identity> {
    /// HyParView.
    HyParView(hyparview::Message<I>),
    /// Full mesh.
    Mesh(mesh::Message<I>),
}

impl<I: Identity> Membership<I> {
    /// The machine `config` asks for.
    pub(crate) fn new(me: I, incarnation: u32, config: super::Config, seed: u64) -> Self {
        match config {
            super::Config::HyParView(c) => Membership::HyParView(Box::new(hyparview::HyParView::new(me, c, seed))),
            super::Config::Mesh(c) => Membership::Mesh(Box::new(mesh::Mesh::new(me, incarnation, c, seed))),
        }
    }

    /// Checks a message before it is handled. A message of the other
    /// protocol is well-formed, only out of place: it passes here and is
    /// refused by [`handle_message`](Self::handle_message).
    pub(crate) fn validate(&self, message: &Message<I>) -> Result<(), WireError> {
        match (self, message) {
            (Membership::HyParView(h), Message::HyParView(m)) => hyparview::HyParView::validate(m, h.config()),
            (Membership::Mesh(mesh), Message::Mesh(m)) => mesh.validate(m),
            _ => Ok(()),
        }
    }

    /// A message from `from`, validated already. Returns false, touching
    /// nothing, if it belongs to the other protocol.
    pub(crate) fn handle_message(&mut self, now: Instant, from: I, message: Message<I>) -> bool {
        match (self, message) {
            (Membership::HyParView(h), Message::HyParView(m)) => h.handle_validated(now, from, m),
            (Membership::Mesh(mesh), Message::Mesh(m)) => mesh.handle_validated(now, from, m),
            _ => return false,
        }
        true
    }

    /// The driver's news about the link to `peer`.
    pub(crate) fn handle_link(&mut self, now: Instant, peer: &I, event: LinkEvent) {
        match (self, event) {
            (Membership::HyParView(h), LinkEvent::Down) => h.handle_link_down(now, peer),
            // HyParView learns of neighbours through its own handshake.
            (Membership::HyParView(_), LinkEvent::Up) => {}
            (Membership::Mesh(m), LinkEvent::Down) => m.handle_link_down(now, peer),
            (Membership::Mesh(m), LinkEvent::Up) => m.handle_link_up(now, peer),
        }
    }

    /// Runs the due timers.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        match self {
            Membership::HyParView(h) => h.handle_timeout(now),
            Membership::Mesh(m) => m.handle_timeout(now),
        }
    }

    /// Joins through `contacts`: HyParView asks them in turn until one
    /// answers (and retries while it has no neighbour); the mesh adds them
    /// all as members.
    pub(crate) fn join(&mut self, now: Instant, contacts: Vec<I>) {
        match self {
            Membership::HyParView(h) => h.join_via(now, contacts),
            Membership::Mesh(m) => {
                for c in contacts {
                    m.add_member(now, c);
                }
            }
        }
    }

    /// Leaves: neighbours are told, views emptied.
    pub(crate) fn leave(&mut self, now: Instant) {
        match self {
            Membership::HyParView(h) => h.leave(now),
            Membership::Mesh(m) => m.leave(now),
        }
    }

    /// The operator adds `member` (mesh only; HyParView has no member list).
    pub(crate) fn add_member(&mut self, now: Instant, member: I) {
        if let Membership::Mesh(m) = self {
            m.add_member(now, member);
        }
    }

    /// The operator removes `member` (mesh only).
    pub(crate) fn remove_member(&mut self, now: Instant, member: &I) {
        if let Membership::Mesh(m) = self {
            m.remove_member(now, member);
        }
    }

    /// The next message to send.
    pub(crate) fn poll_transmit(&mut self) -> Option<(I, Message<I>)> {
        match self {
            Membership::HyParView(h) => h.poll_transmit().map(|(to, m)| (to, Message::HyParView(m))),
            Membership::Mesh(m) => m.poll_transmit().map(|(to, m)| (to, Message::Mesh(m))),
        }
    }

    /// The next neighbour change.
    pub(crate) fn poll_event(&mut self) -> Option<Event<I>> {
        match self {
            Membership::HyParView(h) => h.poll_event(),
            Membership::Mesh(m) => m.poll_event(),
        }
    }

    /// The next deadline.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Membership::HyParView(h) => h.poll_timeout(),
            Membership::Mesh(m) => m.poll_timeout(),
        }
    }

    /// The neighbours: the active view, or the reachable members.
    pub(crate) fn neighbors(&self) -> Vec<I> {
        match self {
            Membership::HyParView(h) => h.active_view().cloned().collect(),
            Membership::Mesh(m) => m.reachable().cloned().collect(),
        }
    }

    /// The contact of a HyParView join not answered yet (never for the
    /// mesh, whose joins need no answer).
    pub(crate) fn joining(&self) -> Option<&I> {
        match self {
            Membership::HyParView(h) => h.joining(),
            Membership::Mesh(_) => None,
        }
    }

    /// The HyParView passive view (empty for the mesh).
    pub(crate) fn passive(&self) -> Vec<I> {
        match self {
            Membership::HyParView(h) => h.passive_view().cloned().collect(),
            Membership::Mesh(_) => Vec::new(),
        }
    }

    /// Every member known, `me` included, sorted: the mesh's member set, or
    /// the active view and `me` (no HyParView node knows every member).
    pub(crate) fn members(&self) -> Vec<I> {
        match self {
            Membership::HyParView(h) => {
                let mut v: Vec<I> = h.active_view().cloned().collect();
                v.push(h.me().clone());
                v.sort();
                v
            }
            Membership::Mesh(m) => m.members().cloned().collect(),
        }
    }

    /// Whether this is the operator-controlled mesh.
    pub(crate) fn is_mesh(&self) -> bool {
        matches!(self, Membership::Mesh(_))
    }

    /// Whether `peer` is a member: of the mesh's member set; under
    /// HyParView every peer is.
    pub(crate) fn is_member(&self, peer: &I) -> bool {
        match self {
            Membership::HyParView(_) => true,
            Membership::Mesh(m) => m.is_member(peer),
        }
    }

    /// Every member, `me` included, where this node knows them all (the
    /// mesh); `None` under HyParView.
    pub(crate) fn member_list(&self) -> Option<Vec<I>> {
        match self {
            Membership::HyParView(_) => None,
            Membership::Mesh(m) => Some(m.members().cloned().collect()),
        }
    }
}
