//! Connections: the loop's side of links. It asks the [`LinkTable`] what
//! to do at each connection event, and does it: queues frames for peers,
//! spawns dials and accepts ([`crate::link`]), answers handshaken
//! connections, closes links, and tells the node of links going up and
//! down. It owns each peer's frame queue and each link's close handle.
//!
//! [`LinkTable`]: super::link_table::LinkTable

use super::Core;
use super::link_table::{DialOutcome, Inbound};
use crate::codec::{Ack, Hello};
use crate::joined::ContactFailure;
use crate::link::{self, CloseMode, Closed, ConnId, Decision, DialFailure, Input};
use crate::oneshot;
use crate::queue::{PushError, Queue};
use crate::runtime::Accepting;
use crate::sync::Arc;
use epidemic_core::Instant;
use epidemic_core::node::LinkEvent;
use std::net::SocketAddr;

impl Core {
    /// Makes sure the link table knows `peer`, first heard of at `now`, and
    /// that it has a frame queue.
    fn add_peer(&mut self, peer: SocketAddr, now: Instant) {
        self.links.insert(peer, now);
        self.add_queue(peer);
    }

    /// A frame queue for `peer` if it has none.
    fn add_queue(&mut self, peer: SocketAddr) {
        let config = &self.config;
        self.queues.entry(peer).or_insert_with(|| {
            Arc::new(Queue::weighted(
                config.peer_queue_frames,
                config.peer_queue_bytes,
                Vec::len,
            ))
        });
    }

    /// Whether `peer` has frames waiting.
    fn pending(&self, peer: SocketAddr) -> bool {
        self.queues.get(&peer).is_some_and(|q| !q.is_empty())
    }

    pub(super) fn close_conn(&mut self, conn: ConnId, mode: CloseMode) {
        if self.links.close(conn, mode) {
            if let Some(close) = self.closers.remove(&conn) {
                let _ = close.send(mode);
            }
        }
    }

    /// Queues `frame` for `to`, dialling it when it has no link.
    pub(super) fn enqueue(&mut self, now: Instant, to: SocketAddr, frame: Vec<u8>) {
        if to == self.ctx.shared.identity {
            return;
        }
        self.add_peer(to, now);
        self.links.touch(to, now);
        if let Some(queue) = self.queues.get(&to) {
            match queue.try_push(frame) {
                Ok(()) => {
                    self.stats.frames_queued += 1;
                    // Per frame: look the peer up only while some queue
                    // is in an overflow episode.
                    if !self.overflowing.is_empty() {
                        self.overflowing.remove(&to);
                    }
                }
                Err(PushError::Full(_)) => {
                    self.stats.queue_overflows += 1;
                    // Once per episode, not per frame: the queue stays full
                    // for as long as the peer does not read.
                    if self.overflowing.insert(to) {
                        tracing::warn!(peer = %to, frames = queue.len(), "peer queue full: dropping frames to it");
                    }
                }
                Err(PushError::Closed(_)) => self.stats.unreachable_drops += 1,
            }
        }
        if self.links.may_dial(to, now) && self.stopping.is_none() {
            self.dial(to);
        }
    }

    fn dial(&mut self, to: SocketAddr) {
        let conn = self.links.dial(to);
        self.stats.dials += 1;
        self.spawn(link::dial(self.ctx.clone(), conn, to));
    }

    fn link_event(&mut self, peer: SocketAddr, event: LinkEvent) {
        let now = self.now();
        self.node.handle_link(now, peer, event);
        self.drain();
    }

    /// The link to `peer` failed (or the dial to it did): tell the node.
    fn report_down(&mut self, peer: SocketAddr) {
        self.links.mark_down(peer);
        self.link_event(peer, LinkEvent::Down);
    }

    pub(super) fn on_accept(&mut self, accepting: Accepting) {
        self.stats.accepted += 1;
        let established = self.links.conn_count() - self.handshakes.len();
        if self.stopping.is_some() || established >= self.config.max_connections {
            // Dropping it closes the connection before any handshake.
            self.stats.handshake_failures += 1;
            return;
        }
        let conn = self.links.new_conn(None);
        let (max, per_ip) = (self.config.max_handshakes, self.config.max_handshakes_per_ip);
        match self.handshakes.admit(conn, accepting.remote.ip(), max, per_ip) {
            Ok(()) => self.refusing = false,
            Err(why) => {
                self.links.remove_conn(conn);
                self.stats.handshake_failures += 1;
                self.stats.handshakes_refused += 1;
                // Once per burst: a flood must not flood the log too.
                if !std::mem::replace(&mut self.refusing, true) {
                    tracing::warn!(remote = %accepting.remote, ?why, "refusing inbound connections: too many handshakes running");
                }
                return;
            }
        }
        self.spawn(link::accept(self.ctx.clone(), conn, accepting));
    }

    pub(super) fn on_input(&mut self, input: Input) {
        match input {
            Input::Inbound { conn, hello, reply } => {
                self.handshakes.done(conn);
                self.on_inbound(conn, hello, reply);
            }
            Input::Outbound {
                conn,
                peer,
                incarnation,
                reply,
            } => self.on_outbound(conn, peer, incarnation, reply),
            Input::DialFailed {
                conn,
                peer,
                why,
                reason,
            } => {
                if let Some(reason) = reason {
                    self.joins.failed(peer, reason);
                }
                self.on_dial_failed(conn, peer, why)
            }
            Input::HandshakeFailed { conn } => {
                self.handshakes.done(conn);
                self.links.remove_conn(conn);
                self.stats.handshake_failures += 1;
            }
            Input::Frame { conn, peer, frame } => self.on_frame(conn, peer, frame),
            Input::Closed { conn, peer, how } => self.on_closed(conn, peer, how),
        }
    }

    /// Makes `conn` the link to `peer` and hands the connection task what it
    /// needs to run it.
    fn open_link(
        &mut self,
        conn: ConnId,
        peer: SocketAddr,
        incarnation: u64,
        dialed: bool,
        reply: oneshot::Sender<Decision>,
    ) {
        let now = self.now();
        let (close_tx, close_rx) = oneshot::channel();
        let queue = self.queues.get(&peer).filter(|_| self.links.knows(peer)).cloned();
        let Some(queue) = queue else {
            self.links.remove_conn(conn);
            return;
        };
        if reply.send(Decision::Accept { queue, close: close_rx }).is_err() {
            // The connection task is gone and will not report.
            self.links.abandon(conn, peer);
            return;
        }
        let opened = self.links.open(conn, peer, incarnation, dialed, now);
        if opened.known {
            self.closers.insert(conn, close_tx);
        }
        self.stats.links_opened += 1;
        self.joins.answered(peer);
        tracing::info!(%peer, incarnation, dialed, "link up");
        if opened.report_down() {
            // The old incarnation is gone: the node must hear so before it
            // hears from the new one.
            self.link_event(peer, LinkEvent::Down);
        }
        if opened.report_up() {
            self.link_event(peer, LinkEvent::Up);
        }
    }

    fn on_inbound(&mut self, conn: ConnId, hello: Hello, reply: oneshot::Sender<Decision>) {
        let peer = hello.identity;
        if self.stopping.is_some() {
            self.links.remove_conn(conn);
            self.stats.handshake_failures += 1;
            let _ = reply.send(Decision::Refuse(Ack::Busy));
            return;
        }
        let now = self.now();
        match self.links.inbound(conn, peer, hello.incarnation, now) {
            Inbound::Myself => {
                self.stats.handshake_failures += 1;
                let _ = reply.send(Decision::Refuse(Ack::Busy));
            }
            Inbound::Duplicate => {
                self.add_queue(peer);
                self.stats.duplicate_dials += 1;
                let _ = reply.send(Decision::Refuse(Ack::Duplicate));
            }
            Inbound::Accept { replaces } => {
                self.add_queue(peer);
                if let Some((old, mode)) = replaces {
                    self.close_conn(old, mode);
                }
                self.open_link(conn, peer, hello.incarnation, false, reply);
            }
        }
    }

    fn on_outbound(&mut self, conn: ConnId, peer: SocketAddr, incarnation: u64, reply: oneshot::Sender<Decision>) {
        if self.stopping.is_some() || !self.links.is_dialing(conn, peer) {
            // Superseded by the peer's own dial, or stopping.
            self.links.remove_conn(conn);
            let _ = reply.send(Decision::Refuse(Ack::Busy));
            return;
        }
        self.open_link(conn, peer, incarnation, true, reply);
    }

    fn on_dial_failed(&mut self, conn: ConnId, peer: SocketAddr, why: DialFailure) {
        let now = self.now();
        match self.links.dial_failed(conn, peer, why, now) {
            DialOutcome::Stale => {}
            // The peer's dial to us is on its way; dial again only if it
            // never arrives.
            DialOutcome::Duplicate => self.stats.duplicate_dials += 1,
            DialOutcome::Failed => {
                self.stats.dial_failures += 1;
                if let Some(queue) = self.queues.get(&peer) {
                    self.stats.unreachable_drops += queue.clear() as u64;
                }
                self.report_down(peer);
            }
        }
    }

    fn on_frame(&mut self, conn: ConnId, peer: SocketAddr, frame: Vec<u8>) {
        if !self.links.is_live(conn, peer) || self.stopping.is_some() {
            return;
        }
        let now = self.now();
        self.stats.frames_received += 1;
        self.links.touch(peer, now);
        let joining = self.joining_through(peer);
        let handled = self.node.handle_frame(now, peer, &frame);
        if joining {
            // Only a `Disconnect` from the contact ends a join unanswered.
            self.join_ended(peer, || {
                ContactFailure::RefusedByPeer("it refused the join (or is leaving)".into())
            });
        }
        if let Err(error) = handled {
            tracing::warn!(%peer, %error, len = frame.len(), "closing the link: the node refused a frame");
            // A frame the node refuses closes its link (and nothing else).
            self.close_conn(conn, CloseMode::Abort);
            self.on_closed(conn, peer, Closed::BadInput);
            return;
        }
        self.drain();
    }

    fn on_closed(&mut self, conn: ConnId, peer: SocketAddr, how: Closed) {
        self.closers.remove(&conn);
        let failed = match how {
            Closed::Goodbye | Closed::ByUs => {
                self.stats.links_closed += 1;
                false
            }
            Closed::Broken => {
                self.stats.links_failed += 1;
                true
            }
            Closed::BadInput => {
                self.stats.bad_input += 1;
                self.stats.links_failed += 1;
                true
            }
            Closed::OverBudget => {
                self.stats.over_budget += 1;
                self.stats.links_failed += 1;
                true
            }
        };
        // A link that was already replaced or closed on purpose: the peer's
        // state follows its current link, not this one.
        if !self.links.closed(conn, peer) {
            return;
        }
        tracing::info!(%peer, ?how, "link down");
        let pending = self.pending(peer);
        if failed || (how == Closed::Goodbye && self.gone_after_goodbye(peer)) {
            let joining = self.joining_through(peer);
            self.report_down(peer);
            if joining {
                self.join_link_closed(peer, how);
            }
        }
        // Frames still queued (or queued by the node's reaction to the
        // failure) go out on a new link: reconnection is on demand.
        let now = self.now();
        let redial = (pending || self.pending(peer)) && self.links.may_dial(peer, now) && self.stopping.is_none();
        if redial {
            self.dial(peer);
        }
    }

    /// Whether `peer`, which said goodbye on its link, is to be reported
    /// down. A peer says goodbye when it stops (after the `Disconnect` its
    /// leave sends, which may have been lost or never sent to this node) or
    /// when it closes a link it holds idle. If the node still counts on it
    /// (a neighbour, an unanswered request, a join contact), the link it
    /// relied on is gone: it hears `Down`, as for a broken link. A peer the
    /// node keeps only as a passive backup is not reported: that goodbye
    /// is an idle close, and `Down` would make the node forget the backup.
    fn gone_after_goodbye(&self, peer: SocketAddr) -> bool {
        !self.node.passive_view().contains(&peer)
    }

    /// Re-dials peers whose backoff ended with frames waiting, closes idle
    /// links to peers that are not neighbours, and forgets peers with
    /// nothing left.
    pub(super) fn housekeeping(&mut self, now: Instant) {
        if self.stopping.is_some() {
            return;
        }
        let neighbors = self.node.active_view();
        let queues = &self.queues;
        let pending = |peer: &SocketAddr| queues.get(peer).is_some_and(|q| !q.is_empty());
        let chores = self
            .links
            .housekeeping(now, self.config.idle_timeout.into(), &neighbors, pending);
        for peer in &chores.forgotten {
            self.queues.remove(peer);
        }
        for conn in chores.close {
            self.stats.idle_closes += 1;
            self.close_conn(conn, CloseMode::Goodbye);
        }
        for peer in chores.dial {
            self.dial(peer);
        }
    }
}
