//! The driver's configuration.

use epidemic_core::Duration;
use epidemic_core::node;
use std::fmt;

/// How the driver runs a node: the node's own configuration, and the bounds
/// and timeouts of its links.
///
/// Every bound here is what keeps memory finite whatever the peers do; every
/// timeout is what keeps a dead or hostile peer from holding anything for
/// long. Start from [`DriverConfig::default`] and set fields.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct DriverConfig {
    /// The node's configuration (membership, broadcast, frame limit, seed).
    ///
    /// Default: HyParView with the paper's settings
    /// ([`node::Config`]'s `Default`).
    pub node: node::Config,
    /// Links open at once (established, and dials in flight); inbound
    /// connections beyond it are closed at once. Inbound handshakes are
    /// bounded apart ([`max_handshakes`](Self::max_handshakes)).
    ///
    /// Default: `256`. A HyParView node holds ~5 neighbour links and a
    /// handful of short-lived ones (joins, shuffle replies, neighbour
    /// requests); a mesh node one per member. 256 covers a mesh of that size.
    pub max_connections: usize,
    /// Inbound connections that may be in their handshakes at once, apart
    /// from established links: a flood of connections that never finish
    /// (a slowloris) fills these, never the links.
    ///
    /// Default: `64`: a healthy node has a handful in flight (joins,
    /// shuffle replies, neighbour requests), and a stalled one holds its
    /// slot for `handshake_timeout` at most.
    pub max_handshakes: usize,
    /// Of [`max_handshakes`](Self::max_handshakes), how many one source
    /// address may hold, so one attacking host cannot take them all.
    ///
    /// Default: `8`: room for several nodes behind one address (a NAT, a
    /// test host) joining at once.
    pub max_handshakes_per_ip: usize,
    /// Bytes that partial records (frames still arriving) may hold across
    /// all links, beyond each link's free 64 KiB read buffer. A link whose
    /// record would take the total over it is closed (counted in
    /// `DriverStats::over_budget`), so links that each announce a large
    /// frame and stall pin this much in all, not `max_connections ×
    /// max_frame`. Raised to one frame of `node.max_frame` if lower, so a
    /// frame of the maximum size can always arrive.
    ///
    /// Default: `32 << 20`. 32 MiB: 32 frames of the default maximum
    /// (1 MiB) arriving at once, six times what a HyParView node's five
    /// active neighbours (the paper's active view) can send it at a time.
    pub partial_frame_budget: usize,
    /// Frames queued for one peer.
    ///
    /// Default: `4096`. Enough for bursts of small broadcasts to a slow
    /// neighbour; the byte bound below caps large ones. An overflow is
    /// dropped and counted: Plumtree's IHAVE/GRAFT recovers the payloads.
    pub peer_queue_frames: usize,
    /// Bytes queued for one peer.
    ///
    /// Default: `8 << 20`. 8 MiB: a hundred 64 KiB payloads in flight to one
    /// peer, about 70 ms of a gigabit link.
    pub peer_queue_bytes: usize,
    /// Commands from handles waiting for the loop.
    ///
    /// Default: `1024`: a burst of handle calls from many tasks waits
    /// rather than failing; beyond it callers wait.
    pub command_queue: usize,
    /// Frames and link events from connections waiting for the loop.
    ///
    /// Default: `1024`: a few frames per link of a full
    /// [`max_connections`](Self::max_connections); beyond it connections
    /// wait for the loop (and the transport's flow control takes over).
    pub input_queue: usize,
    /// Events waiting for each subscriber.
    ///
    /// Default: `4096`: the same as the node's message cache. A subscriber
    /// that falls that far behind misses the newer events (counted as its
    /// lag) rather than stalling the loop.
    pub event_queue: usize,
    /// Longest a dial may take, transport handshake (TLS, QUIC) and node
    /// handshake included.
    ///
    /// Default: `Duration::from_secs(5)`. HyParView gives a neighbour request
    /// 5 s (its `neighbor_timeout`, from TCP's 1 s initial RTO and two lost
    /// SYNs); a dial slower than that is answered too late anyway.
    pub connect_timeout: Duration,
    /// Longest an inbound connection may take to finish its handshakes.
    ///
    /// Default: `Duration::from_secs(5)`: the same bound as
    /// [`connect_timeout`](Self::connect_timeout), from the other side.
    pub handshake_timeout: Duration,
    /// A link to a peer that is not an overlay neighbour is closed after
    /// this long without traffic.
    ///
    /// Default: `Duration::from_secs(30)`. Three HyParView shuffle periods: a
    /// passive peer contacted for a shuffle or a join keeps its link for the
    /// likely follow-up.
    pub idle_timeout: Duration,
    /// The first wait before re-dialling a peer that could not be reached.
    ///
    /// Default: `Duration::from_millis(100)`: a few round trips, so a
    /// peer restarting at once is found again at once.
    pub backoff_min: Duration,
    /// The longest wait between dials to an unreachable peer.
    ///
    /// Default: `Duration::from_secs(5)`. Below the shuffle interval (10 s),
    /// so a peer back from a restart is reachable again by the next shuffle
    /// tick.
    pub backoff_max: Duration,
    /// On shutdown, how long queued frames (the leave notices) get to drain.
    ///
    /// Default: `Duration::from_secs(2)`: two round trips of any sane
    /// network plus a TLS close; the leave notices are one small frame
    /// per neighbour.
    pub linger: Duration,
    /// A link on which nothing arrives for this long is reported down,
    /// whatever TCP or QUIC think of it; each side sends a keepalive record
    /// every third of it. Catches a peer whose process
    /// hangs (stopped, deadlocked, swapping) while its kernel still answers
    /// transport keepalives. Zero turns the check off.
    ///
    /// Default: `Duration::from_secs(10)`: twice HyParView's neighbour
    /// timeout, the QUIC adapter's idle timeout, and the TCP adapter's
    /// keepalive, so a hung peer is replaced as fast as a dead one.
    pub liveness_timeout: Duration,
    /// A commit of the store that takes this long or longer is logged as
    /// a slow disk write (a warning with its duration and size).
    ///
    /// Default: `Duration::from_secs(1)`: a group commit is one fsync, a
    /// few milliseconds on any working disk; a second means the disk (or
    /// the machine) is in trouble, and puts are waiting on it.
    pub slow_write: Duration,
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig {
            node: node::Config::default(),
            max_connections: 256,
            max_handshakes: 64,
            max_handshakes_per_ip: 8,
            partial_frame_budget: 32 << 20,
            peer_queue_frames: 4096,
            peer_queue_bytes: 8 << 20,
            command_queue: 1024,
            input_queue: 1024,
            event_queue: 4096,
            connect_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            linger: Duration::from_secs(2),
            liveness_timeout: Duration::from_secs(10),
            slow_write: Duration::from_secs(1),
        }
    }
}

impl fmt::Debug for DriverConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let DriverConfig {
            node,
            max_connections,
            max_handshakes,
            max_handshakes_per_ip,
            partial_frame_budget,
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
            liveness_timeout,
            slow_write,
        } = self;
        f.debug_struct("DriverConfig")
            .field("node", node)
            .field("max_connections", max_connections)
            .field("max_handshakes", max_handshakes)
            .field("max_handshakes_per_ip", max_handshakes_per_ip)
            .field("partial_frame_budget", partial_frame_budget)
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
            .field("liveness_timeout", liveness_timeout)
            .field("slow_write", slow_write)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_configuration_keeps_the_defaults_of_what_it_leaves_out() {
        let config: DriverConfig = serde_json::from_str(
            r#"{"linger": "500ms", "max_connections": 64, "node": {"seed": 3, "metadata": {"durable": false}}}"#,
        )
        .unwrap();
        let default = DriverConfig::default();
        assert_eq!(config.linger, Duration::from_millis(500));
        assert_eq!(config.max_connections, 64);
        assert_eq!(config.node.seed, 3);
        assert!(!config.node.metadata.durable);
        assert_eq!(config.idle_timeout, default.idle_timeout);
        assert_eq!(config.node.max_frame, default.node.max_frame);
        // What it prints reads back the same.
        let text = serde_json::to_string(&config).unwrap();
        let back: DriverConfig = serde_json::from_str(&text).unwrap();
        assert_eq!(format!("{back:?}"), format!("{config:?}"));
        assert!(serde_json::from_str::<DriverConfig>(r#"{"lingr": "1s"}"#).is_err());
    }
}
