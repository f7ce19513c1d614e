//! The node's configuration.

use crate::broadcast;
use crate::membership::{hyparview, mesh};
use crate::metadata;
use crate::wire::DEFAULT_MAX_FRAME;
use core::fmt;

/// Which membership protocol the node runs (`membership::Config`).
pub use crate::membership::Config as MembershipConfig;

/// Everything a [`Node`](super::Node) can be configured with.
///
/// Every configuration in epidemic has one shape, as foca's and rustls's
/// do: public fields, each documenting its default and where that default
/// comes from, a [`Default`] (here HyParView) and named presets
/// ([`Config::mesh`]). Start from one and set fields:
///
/// ```
/// use epidemic_core::{Config, Duration, Node};
///
/// let mut config = Config::mesh(5);
/// config.seed = 7;
/// config.metadata.exchange_interval = Duration::from_secs(30);
/// let node = Node::new(1u32, config);
/// assert!(node.active_view().is_empty());
/// ```
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// The membership protocol and its settings. Default: HyParView with
    /// the paper's settings ([`hyparview::Config`]).
    pub membership: MembershipConfig,
    /// The plain broadcast engine's settings. Default: Plumtree with
    /// per-root trees ([`broadcast::Config`]).
    pub plumtree: broadcast::Config,
    /// The metadata store's settings, its own broadcast engine included.
    /// Default: Riak's cluster metadata values ([`metadata::Config`]).
    pub metadata: metadata::Config,
    /// The largest frame sent or accepted, header included. Default 1 MiB
    /// ([`wire::DEFAULT_MAX_FRAME`](crate::wire::DEFAULT_MAX_FRAME): sixteen
    /// of the largest 64 KiB payloads, the bound Riak's and most gossip
    /// transports put on one message).
    pub max_frame: usize,
    /// How many recent broadcast payloads the plain-message cache keeps to
    /// answer grafts. Duplicates are detected exactly, by each origin's
    /// sequence numbers: a floor per origin, and up to four times this many
    /// numbers that arrived out of order (and as many origins). Past that
    /// the oldest out-of-order gap counts as seen: a message that late is
    /// lost, never delivered twice. Default 4,096: the broadcasts of the
    /// last few lazy ticks at thousands per second, at a bounded cost
    /// (payloads are reference-counted).
    pub message_cache: usize,
    /// Seeds every random choice the node makes. The same seed and the same
    /// inputs give the same outputs. Default 0: give every node of a
    /// cluster its own.
    pub seed: u64,
    /// Which life of this identity the node is: a driver passes a new value
    /// (a counter, or a random number) at every start. Plain broadcast ids
    /// are `(origin, seq)`, and the sequence starts at `incarnation << 32`,
    /// so a restarted node never reuses an id its peers still remember as
    /// seen (they would drop its broadcasts as duplicates). The metadata
    /// store names its writers `(identity, incarnation, epoch)`
    /// ([`metadata::Actor`]), so a restarted node never gives a new write a
    /// dot of its earlier life.
    ///
    /// **Two lives of one identity must not share an incarnation**: the
    /// drivers draw a random one at every start, and the simulator counts
    /// restarts. Default 0, for a node that never restarts.
    pub incarnation: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            membership: MembershipConfig::HyParView(hyparview::Config::default()),
            plumtree: broadcast::Config::default(),
            metadata: metadata::Config::default(),
            // 1 MiB: see `wire::DEFAULT_MAX_FRAME`.
            max_frame: DEFAULT_MAX_FRAME,
            // Enough to answer grafts for every broadcast of the last few
            // lazy ticks at thousands of broadcasts per second, at a bounded
            // cost: payloads are reference-counted `Bytes`.
            message_cache: 4096,
            seed: 0,
            incarnation: 0,
        }
    }
}

impl Config {
    /// A full-mesh configuration for a cluster of about `expected_members`
    /// nodes, with the broadcast fanouts Riak uses for that size
    /// ([`broadcast::Config::mesh`]), for plain broadcasts and metadata alike.
    pub fn mesh(expected_members: usize) -> Self {
        Config {
            membership: MembershipConfig::Mesh(mesh::Config::default()),
            plumtree: broadcast::Config::mesh(expected_members),
            metadata: metadata::Config::mesh(expected_members),
            ..Config::default()
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Config {
            membership,
            plumtree,
            metadata,
            max_frame,
            message_cache,
            seed,
            incarnation,
        } = self;
        f.debug_struct("Config")
            .field("membership", membership)
            .field("plumtree", plumtree)
            .field("metadata", metadata)
            .field("max_frame", max_frame)
            .field("message_cache", message_cache)
            .field("seed", seed)
            .field("incarnation", incarnation)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Duration;
    use alloc::string::ToString;

    #[test]
    fn a_configuration_reads_back_what_it_wrote() {
        for config in [Config::default(), Config::mesh(7)] {
            let text = serde_json::to_string(&config).unwrap();
            let back: Config = serde_json::from_str(&text).unwrap();
            assert_eq!(serde_json::to_string(&back).unwrap(), text);
            assert_eq!(alloc::format!("{back:?}"), alloc::format!("{config:?}"));
        }
    }

    #[test]
    fn missing_fields_take_their_defaults_and_unknown_ones_are_refused() {
        let config: Config = serde_json::from_str(
            r#"{"seed": 7, "membership": {"protocol": "mesh", "push_fanout": 4},
                "metadata": {"exchange_interval": "30s"},
                "plumtree": {"tree": {"mode": "shared"}}}"#,
        )
        .unwrap();
        assert_eq!(config.seed, 7);
        assert_eq!(config.max_frame, Config::default().max_frame);
        let MembershipConfig::Mesh(mesh) = &config.membership else {
            panic!("mesh expected: {:?}", config.membership);
        };
        assert_eq!(mesh.push_fanout, 4);
        assert_eq!(mesh.gossip_interval, mesh::Config::default().gossip_interval);
        assert_eq!(config.metadata.exchange_interval, Duration::from_secs(30));
        assert_eq!(config.plumtree.tree, broadcast::TreeMode::Shared);

        for bad in [
            r#"{"sead": 7}"#,
            r#"{"membership": {"protocol": "gossip"}}"#,
            r#"{"metadata": {"exchange_interval": 10}}"#,
        ] {
            let e = serde_json::from_str::<Config>(bad).unwrap_err().to_string();
            assert!(!e.is_empty(), "{bad} was accepted");
        }
    }
}
