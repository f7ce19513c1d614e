//! The link table: which peer has which connection, and what the loop is to
//! do about it.
//!
//! It is sans-IO: no sockets, no tasks, no channels, no clock (the loop
//! passes the time in). The loop owns one, asks it at every connection
//! event, and carries out its answers: spawning dials, answering
//! handshakes, closing connections, telling the node. What it keeps:
//!
//! - **Connections** by [`ConnId`], from the dial or accept until the
//!   connection task reports its end; which peer each one is to, and whether
//!   frames from it may still reach the node (`live`).
//! - **Peers** by address: their [`LinkState`] (one link per peer), whether
//!   the node was told `Up`, the peer's incarnation on its last link, and
//!   the dial backoff.
//!
//! The rules:
//!
//! - **Simultaneous dials.** Between two connections of the same two
//!   incarnations, the one dialled by the smaller identity wins on both
//!   sides, so two nodes that dial each other at once settle on one
//!   connection without another round trip. A peer that dials again while we
//!   hold a link it dialled has given that link up.
//! - **Restarts.** A link whose peer announces an incarnation other than
//!   the one it had on its previous link is a new life of that peer: it
//!   replaces whatever we held (the old link is aborted), and the node hears
//!   `Down` then `Up`. Incarnations are random numbers, not counters: any
//!   different one counts, larger or smaller.
//! - **Backoff.** A failed dial doubles the wait before the next one, up to
//!   the configured maximum; a link that opens resets it. A dial answered
//!   "duplicate" waits [`DUPLICATE_RETRY`] for the peer's own dial.
//!
//! The frame queue of each peer and the close handle of each link are the
//! loop's (they are shared with connection tasks); the table knows only
//! whether a peer has frames waiting, when the loop tells it.

use crate::link::{CloseMode, ConnId, DialFailure};
use epidemic_core::Instant;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

/// How long to wait for the peer's own dial after it answered ours with
/// "duplicate" before dialling again.
pub(super) const DUPLICATE_RETRY: Duration = Duration::from_millis(500);

/// What a peer's link is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LinkState {
    /// No connection.
    Idle,
    /// Our dial on this connection is under way.
    Dialing(ConnId),
    /// This connection is the link; `dialed` if we dialled it.
    Up { conn: ConnId, dialed: bool },
}

impl LinkState {
    fn conn(self) -> Option<ConnId> {
        match self {
            LinkState::Idle => None,
            LinkState::Dialing(c) | LinkState::Up { conn: c, .. } => Some(c),
        }
    }
}

#[derive(Debug)]
struct Peer {
    link: LinkState,
    /// The node was told `Up` and not `Down` since.
    up: bool,
    /// The peer's incarnation on the last link.
    incarnation: Option<u64>,
    /// The next backoff after a failed dial.
    backoff: Duration,
    /// No dial before this.
    retry_at: Option<Instant>,
    last_active: Instant,
}

impl Peer {
    /// A peer first heard of at `now`: no link, the shortest backoff.
    fn new(backoff: Duration, now: Instant) -> Self {
        Peer {
            link: LinkState::Idle,
            up: false,
            incarnation: None,
            backoff,
            retry_at: None,
            last_active: now,
        }
    }
}

#[derive(Debug)]
struct Conn {
    peer: Option<SocketAddr>,
    /// Frames from it reach the node: from the moment it becomes a link
    /// until it ends, unless it was aborted (bad input, or a restarted peer's
    /// old life). A link closing with a goodbye still delivers what the peer
    /// sent before it heard the goodbye.
    live: bool,
}

/// The verdict on a peer's dial to us, once it said hello.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Inbound {
    /// It claims our own identity: refused (the connection is forgotten).
    Myself,
    /// We hold a connection that wins over it: refused as a duplicate (the
    /// connection is forgotten).
    Duplicate,
    /// It is to become the peer's link ([`LinkTable::open`]), once the link
    /// it replaces, if any, is closed this way.
    Accept { replaces: Option<(ConnId, CloseMode)> },
}

/// What opening a link changed, for the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Opened {
    /// The node had been told `Up` for this peer.
    pub(super) was_up: bool,
    /// The peer has another incarnation than on its previous link.
    pub(super) restarted: bool,
    /// The connection is one the table knows (it always should be).
    pub(super) known: bool,
}

impl Opened {
    /// The old incarnation is gone: the node must hear so before it hears
    /// from the new one.
    pub(super) fn report_down(self) -> bool {
        self.was_up && self.restarted
    }

    /// The node must hear of the link.
    pub(super) fn report_up(self) -> bool {
        !self.was_up || self.restarted
    }
}

/// What a failed dial means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DialOutcome {
    /// Not the peer's current dial (superseded, or the peer forgotten):
    /// nothing more to do.
    Stale,
    /// The peer's own dial wins; ours is retried after [`DUPLICATE_RETRY`]
    /// if the peer's never arrives.
    Duplicate,
    /// A failure: retried after the backoff; the peer is down.
    Failed,
}

/// What housekeeping asks of the loop.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Housekeeping {
    /// Close these idle links with a goodbye (their peers are idle now).
    pub(super) close: Vec<ConnId>,
    /// Dial these peers: frames wait and their backoff is over.
    pub(super) dial: Vec<SocketAddr>,
    /// These peers were forgotten (idle, nothing waiting, no backoff).
    pub(super) forgotten: Vec<SocketAddr>,
}

/// Every connection and every peer's link; see the module documentation.
#[derive(Debug)]
pub(super) struct LinkTable {
    me: SocketAddr,
    backoff_min: Duration,
    backoff_max: Duration,
    peers: HashMap<SocketAddr, Peer>,
    conns: HashMap<ConnId, Conn>,
    next_conn: ConnId,
}

impl LinkTable {
    /// An empty table for the node known as `me`.
    pub(super) fn new(me: SocketAddr, backoff_min: Duration, backoff_max: Duration) -> Self {
        LinkTable {
            me,
            backoff_min,
            backoff_max: backoff_max.max(backoff_min),
            peers: HashMap::new(),
            conns: HashMap::new(),
            next_conn: 0,
        }
    }

    /// Connections open or opening.
    pub(super) fn conn_count(&self) -> usize {
        self.conns.len()
    }

    /// Peers known.
    pub(super) fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// Whether `peer` is known.
    pub(super) fn knows(&self, peer: SocketAddr) -> bool {
        self.peers.contains_key(&peer)
    }

    /// The state of `peer`'s link, if the peer is known.
    pub(super) fn link(&self, peer: SocketAddr) -> Option<LinkState> {
        self.peers.get(&peer).map(|p| p.link)
    }

    /// Whether the node was told `Up` for `peer` (and not `Down` since).
    #[cfg(all(test, not(loom)))]
    pub(super) fn is_up(&self, peer: SocketAddr) -> bool {
        self.peers.get(&peer).is_some_and(|p| p.up)
    }

    /// `peer`'s incarnation on its last link.
    #[cfg(all(test, not(loom)))]
    pub(super) fn incarnation(&self, peer: SocketAddr) -> Option<u64> {
        self.peers.get(&peer).and_then(|p| p.incarnation)
    }

    /// Adds `peer`, first heard of at `now` (a frame for it, or its dial):
    /// no link, the shortest backoff. Returns whether it is new.
    pub(super) fn insert(&mut self, peer: SocketAddr, now: Instant) -> bool {
        if self.peers.contains_key(&peer) {
            return false;
        }
        self.peers.insert(peer, Peer::new(self.backoff_min, now));
        true
    }

    /// Traffic with `peer` at `now` (it keeps an idle link open).
    pub(super) fn touch(&mut self, peer: SocketAddr, now: Instant) {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.last_active = now;
        }
    }

    /// Whether `peer` may be dialled at `now`: it has no connection and no
    /// backoff running.
    pub(super) fn may_dial(&self, peer: SocketAddr, now: Instant) -> bool {
        self.peers
            .get(&peer)
            .is_some_and(|p| p.link == LinkState::Idle && p.retry_at.is_none_or(|t| t <= now))
    }

    /// A new connection, to `peer` if we dial it (`None` for an inbound
    /// one until its hello names the peer).
    pub(super) fn new_conn(&mut self, peer: Option<SocketAddr>) -> ConnId {
        let id = self.next_conn;
        self.next_conn += 1;
        self.conns.insert(id, Conn { peer, live: false });
        id
    }

    /// A dial to `peer`: a new connection, which is the peer's link-to-be.
    pub(super) fn dial(&mut self, peer: SocketAddr) -> ConnId {
        let conn = self.new_conn(Some(peer));
        if let Some(p) = self.peers.get_mut(&peer) {
            p.link = LinkState::Dialing(conn);
            p.retry_at = None;
        }
        conn
    }

    /// Forgets a connection that never became a link.
    pub(super) fn remove_conn(&mut self, conn: ConnId) {
        self.conns.remove(&conn);
    }

    /// The loop closes `conn` with `mode`: an aborted connection's frames no
    /// longer reach the node. Returns whether the connection is known.
    pub(super) fn close(&mut self, conn: ConnId, mode: CloseMode) -> bool {
        let Some(c) = self.conns.get_mut(&conn) else {
            return false;
        };
        if mode == CloseMode::Abort {
            c.live = false;
        }
        true
    }

    /// `peer`, at incarnation `incarnation`, dialled us on `conn`: whether
    /// that becomes its link. Adds the peer if new; changes no link (that is
    /// [`LinkTable::open`], once the connection task has the answer).
    pub(super) fn inbound(&mut self, conn: ConnId, peer: SocketAddr, incarnation: u64, now: Instant) -> Inbound {
        if peer == self.me {
            self.conns.remove(&conn);
            return Inbound::Myself;
        }
        let (me, backoff) = (self.me, self.backoff_min);
        let p = self.peers.entry(peer).or_insert_with(|| Peer::new(backoff, now));
        let restarted = p.incarnation.is_some_and(|i| i != incarnation);
        // One connection per peer. Between two connections of the same two
        // incarnations, the one dialled by the smaller identity wins on both
        // sides, so simultaneous dials settle on the same connection without
        // another round trip. A peer that dials again while we still hold a
        // link it dialled has given that link up; a restarted peer replaces
        // whatever we held for its previous life.
        let accept = restarted
            || match p.link {
                LinkState::Idle => true,
                LinkState::Dialing(_) => peer < me,
                LinkState::Up { dialed: false, .. } => true,
                LinkState::Up { dialed: true, .. } => peer < me,
            };
        if !accept {
            self.conns.remove(&conn);
            return Inbound::Duplicate;
        }
        // A dial of ours that loses is refused when it reports.
        let replaces = match p.link {
            LinkState::Up { conn: old, .. } => {
                let mode = if restarted {
                    CloseMode::Abort
                } else {
                    CloseMode::Goodbye
                };
                Some((old, mode))
            }
            _ => None,
        };
        Inbound::Accept { replaces }
    }

    /// Whether our dial on `conn` is still `peer`'s link-to-be (it was not
    /// superseded by the peer's own dial).
    pub(super) fn is_dialing(&self, conn: ConnId, peer: SocketAddr) -> bool {
        self.link(peer) == Some(LinkState::Dialing(conn))
    }

    /// The task of `conn` went away before `conn` became `peer`'s link.
    pub(super) fn abandon(&mut self, conn: ConnId, peer: SocketAddr) {
        self.conns.remove(&conn);
        if let Some(p) = self.peers.get_mut(&peer) {
            if p.link.conn() == Some(conn) {
                p.link = LinkState::Idle;
            }
        }
    }

    /// Makes `conn` (`dialed` by us or not) the link to `peer`, at
    /// incarnation `incarnation`, at `now`.
    pub(super) fn open(
        &mut self,
        conn: ConnId,
        peer: SocketAddr,
        incarnation: u64,
        dialed: bool,
        now: Instant,
    ) -> Opened {
        let mut opened = Opened {
            was_up: false,
            restarted: false,
            known: false,
        };
        if let Some(p) = self.peers.get_mut(&peer) {
            opened.restarted = p.incarnation.is_some_and(|i| i != incarnation);
            p.incarnation = Some(incarnation);
            p.link = LinkState::Up { conn, dialed };
            p.backoff = self.backoff_min;
            p.retry_at = None;
            p.last_active = now;
            opened.was_up = p.up;
            p.up = true;
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.peer = Some(peer);
            c.live = true;
            opened.known = true;
        }
        opened
    }

    /// Our dial to `peer` on `conn` failed at `now`, for `why`.
    pub(super) fn dial_failed(
        &mut self,
        conn: ConnId,
        peer: SocketAddr,
        why: DialFailure,
        now: Instant,
    ) -> DialOutcome {
        self.conns.remove(&conn);
        let Some(p) = self.peers.get_mut(&peer) else {
            return DialOutcome::Stale;
        };
        if p.link != LinkState::Dialing(conn) {
            return DialOutcome::Stale;
        }
        p.link = LinkState::Idle;
        match why {
            DialFailure::Duplicate => {
                p.retry_at = Some(now + DUPLICATE_RETRY.into());
                DialOutcome::Duplicate
            }
            DialFailure::Busy | DialFailure::Failed => {
                p.retry_at = Some(now + p.backoff.into());
                p.backoff = (p.backoff * 2).min(self.backoff_max);
                DialOutcome::Failed
            }
        }
    }

    /// The node is told `peer` is down.
    pub(super) fn mark_down(&mut self, peer: SocketAddr) {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.up = false;
        }
    }

    /// Whether a frame from `peer` on `conn` is to reach the node.
    pub(super) fn is_live(&self, conn: ConnId, peer: SocketAddr) -> bool {
        self.conns.get(&conn).is_some_and(|c| c.live && c.peer == Some(peer))
    }

    /// `conn`, to `peer`, ended. Returns whether it was the peer's current
    /// link (now idle); one already replaced or closed on purpose changes
    /// nothing about the peer.
    pub(super) fn closed(&mut self, conn: ConnId, peer: SocketAddr) -> bool {
        self.conns.remove(&conn);
        let Some(p) = self.peers.get_mut(&peer) else {
            return false;
        };
        if p.link.conn() != Some(conn) {
            return false;
        }
        p.link = LinkState::Idle;
        true
    }

    /// Every connection that is a peer's link.
    pub(super) fn links(&self) -> Vec<ConnId> {
        self.peers
            .values()
            .filter_map(|p| match p.link {
                LinkState::Up { conn, .. } => Some(conn),
                _ => None,
            })
            .collect()
    }

    /// At `now`: peers whose backoff ended with frames waiting are to be
    /// dialled; links without traffic for `idle` to peers with nothing
    /// waiting that are not `neighbors` are to close (the peers are idle at
    /// once); idle peers with nothing waiting and no backoff are forgotten
    /// (a later link to one is reported `Up` again, which the node takes in
    /// its stride). `pending` says whether a peer has frames waiting.
    pub(super) fn housekeeping(
        &mut self,
        now: Instant,
        idle: Duration,
        neighbors: &[SocketAddr],
        pending: impl Fn(&SocketAddr) -> bool,
    ) -> Housekeeping {
        let idle = epidemic_core::Duration::from(idle);
        let mut out = Housekeeping::default();
        self.peers.retain(|addr, p| {
            let due = p.retry_at.is_none_or(|t| t <= now);
            match p.link {
                LinkState::Idle if pending(addr) && due => out.dial.push(*addr),
                LinkState::Idle if due && !pending(addr) => {
                    out.forgotten.push(*addr);
                    return false;
                }
                LinkState::Up { conn, .. }
                    if !pending(addr) && now.saturating_since(p.last_active) >= idle && !neighbors.contains(addr) =>
                {
                    p.link = LinkState::Idle;
                    out.close.push(conn);
                }
                _ => {}
            }
            true
        });
        out
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
