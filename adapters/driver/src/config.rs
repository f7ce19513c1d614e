//! The driver's configuration.

use epidemic_core::node;
use std::fmt;
use std::time::Duration;

/// How the driver runs a node: the node's own configuration, and the bounds
/// and timeouts of its links.
///
/// Every bound here is what keeps memory finite whatever the peers do; every
/// timeout is what keeps a dead or hostile peer from holding anything for
/// long. Set fields through the `&mut self` setters.
#[derive(Clone)]
#[non_exhaustive]
pub struct DriverConfig {
    /// The node's configuration (membership, broadcast, frame limit, seed).
    pub node: node::Config,
    /// Links open at once, handshakes included; inbound connections beyond
    /// it are closed at once.
    pub max_connections: usize,
    /// Frames queued for one peer.
    pub peer_queue_frames: usize,
    /// Bytes queued for one peer.
    pub peer_queue_bytes: usize,
    /// Commands from handles waiting for the loop.
    pub command_queue: usize,
    /// Frames and link events from connections waiting for the loop.
    pub input_queue: usize,
    /// Events waiting for each subscriber.
    pub event_queue: usize,
    /// Longest a dial may take, transport handshake (TLS, QUIC) and node
    /// handshake included.
    pub connect_timeout: Duration,
    /// Longest an inbound connection may take to finish its handshakes.
    pub handshake_timeout: Duration,
    /// A link to a peer that is not an overlay neighbour is closed after
    /// this long without traffic.
    pub idle_timeout: Duration,
    /// The first wait before re-dialling a peer that could not be reached.
    pub backoff_min: Duration,
    /// The longest wait between dials to an unreachable peer.
    pub backoff_max: Duration,
    /// On shutdown, how long queued frames (the leave notices) get to drain.
    pub linger: Duration,
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig {
            node: node::Config::default(),
            // A HyParView node holds ~5 neighbour links and a handful of
            // short-lived ones (joins, shuffle replies, neighbour requests);
            // a mesh node one per member. 256 covers a mesh of that size.
            max_connections: 256,
            // Enough for bursts of small broadcasts to a slow neighbour; the
            // byte bound below caps large ones. An overflow is dropped and
            // counted: Plumtree's IHAVE/GRAFT recovers the payloads.
            peer_queue_frames: 4096,
            // 8 MiB: a hundred 64 KiB payloads in flight to one peer, about
            // 70 ms of a gigabit link.
            peer_queue_bytes: 8 << 20,
            command_queue: 1024,
            input_queue: 1024,
            event_queue: 4096,
            // HyParView gives a neighbour request 5 s (its
            // `neighbor_timeout`, from TCP's 1 s initial RTO and two lost
            // SYNs); a dial slower than that is answered too late anyway.
            connect_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(5),
            // Three HyParView shuffle periods: a passive peer contacted for a
            // shuffle or a join keeps its link for the likely follow-up.
            idle_timeout: Duration::from_secs(30),
            backoff_min: Duration::from_millis(100),
            // Below the shuffle interval (10 s), so a peer back from a
            // restart is reachable again by the next shuffle tick.
            backoff_max: Duration::from_secs(5),
            linger: Duration::from_secs(2),
        }
    }
}

impl DriverConfig {
    /// Sets the node's configuration.
    pub fn node(&mut self, node: node::Config) -> &mut Self {
        self.node = node;
        self
    }

    /// Sets the maximum number of links.
    pub fn max_connections(&mut self, n: usize) -> &mut Self {
        self.max_connections = n;
        self
    }

    /// Sets the per-peer queue bounds.
    pub fn peer_queue(&mut self, frames: usize, bytes: usize) -> &mut Self {
        self.peer_queue_frames = frames;
        self.peer_queue_bytes = bytes;
        self
    }

    /// Sets the per-subscriber event queue bound.
    pub fn event_queue(&mut self, n: usize) -> &mut Self {
        self.event_queue = n;
        self
    }

    /// Sets the connect timeout.
    pub fn connect_timeout(&mut self, d: Duration) -> &mut Self {
        self.connect_timeout = d;
        self
    }

    /// Sets the inbound handshake timeout.
    pub fn handshake_timeout(&mut self, d: Duration) -> &mut Self {
        self.handshake_timeout = d;
        self
    }

    /// Sets the idle timeout of non-neighbour links.
    pub fn idle_timeout(&mut self, d: Duration) -> &mut Self {
        self.idle_timeout = d;
        self
    }

    /// Sets the re-dial backoff range.
    pub fn backoff(&mut self, min: Duration, max: Duration) -> &mut Self {
        self.backoff_min = min;
        self.backoff_max = max.max(min);
        self
    }

    /// Sets the shutdown linger.
    pub fn linger(&mut self, d: Duration) -> &mut Self {
        self.linger = d;
        self
    }
}

impl fmt::Debug for DriverConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let DriverConfig {
            node,
            max_connections,
            peer_queue_frames,
            peer_queue_bytes,
            command_queue,
            input_queue,
            event_queue,
            connect_timeout,
            handshake_timeout,
            idle_timeout,
            backoff_min,
            backoff_max,
            linger,
        } = self;
        f.debug_struct("DriverConfig")
            .field("node", node)
            .field("max_connections", max_connections)
            .field("peer_queue_frames", peer_queue_frames)
            .field("peer_queue_bytes", peer_queue_bytes)
            .field("command_queue", command_queue)
            .field("input_queue", input_queue)
            .field("event_queue", event_queue)
            .field("connect_timeout", connect_timeout)
            .field("handshake_timeout", handshake_timeout)
            .field("idle_timeout", idle_timeout)
            .field("backoff_min", backoff_min)
            .field("backoff_max", backoff_max)
            .field("linger", linger)
            .finish()
    }
}
