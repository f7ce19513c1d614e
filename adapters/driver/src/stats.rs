//! The driver's counters.

use epidemic_core::node;

/// What the driver did with links and frames. Counters only grow; the
/// `open_*` fields are current sizes.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct DriverStats {
    /// Dials started.
    pub dials: u64,
    /// Dials that failed (refused, timed out, handshake failed); each was
    /// reported to the node as a link down.
    pub dial_failures: u64,
    /// Dials the peer answered with "duplicate": both sides dialled at once
    /// and the other connection won. Not failures.
    pub duplicate_dials: u64,
    /// Inbound connections accepted at the transport.
    pub accepted: u64,
    /// Inbound connections closed before or during their handshakes
    /// (transport or node handshake failed, timed out, or the node was full).
    pub handshake_failures: u64,
    /// Inbound connections refused at once because `max_handshakes`
    /// handshakes were running, or `max_handshakes_per_ip` from their
    /// address (also counted in `handshake_failures`).
    pub handshakes_refused: u64,
    /// Links that completed both handshakes.
    pub links_opened: u64,
    /// Links closed by an orderly goodbye from either side. A goodbye from
    /// a peer the node still counted on (not merely a passive backup) was
    /// reported to the node as a link down.
    pub links_closed: u64,
    /// Links that broke (reset, end of stream without goodbye, bad input);
    /// each was reported to the node as a link down.
    pub links_failed: u64,
    /// Links closed because the peer sent bytes that are not a valid record
    /// or frame: garbage, an oversized length prefix, a cut-off record, a
    /// frame the node refused.
    pub bad_input: u64,
    /// Links closed because the record arriving on them would have taken
    /// what partial records hold across all links over
    /// [`DriverConfig::partial_frame_budget`](crate::DriverConfig::partial_frame_budget)
    /// (also counted in `links_failed`).
    pub over_budget: u64,
    /// Links closed after [`DriverConfig::idle_timeout`](crate::DriverConfig::idle_timeout).
    pub idle_closes: u64,
    /// Frames handed to peer queues.
    pub frames_queued: u64,
    /// Frames received and handed to the node.
    pub frames_received: u64,
    /// Frames dropped because the peer's queue was full (the protocol's own
    /// retransmission covers them).
    pub queue_overflows: u64,
    /// Frames dropped because their peer could not be reached.
    pub unreachable_drops: u64,
    /// Events not delivered to a subscriber whose queue was full.
    pub events_lagged: u64,
    /// Objects restored from the store at start.
    pub restored: u64,
    /// Stored records the node refused at start (corrupt or over limits).
    pub restore_failures: u64,
    /// The store failed; the node stopped.
    pub storage_failed: bool,
    /// Links open now, handshakes included.
    pub open_links: usize,
    /// Peers with a queue now.
    pub open_peers: usize,
}

/// A snapshot of a running node: the core's counters and the driver's.
#[derive(Debug, Clone, serde::Serialize)]
#[non_exhaustive]
pub struct NodeStats {
    /// The node's own counters.
    pub node: node::Stats,
    /// The driver's counters.
    pub driver: DriverStats,
}
