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

/// What a frame needs beyond a plain broadcast's payload: the GOSSIP's
/// variant, id (origin and sequence), root, round and payload length. 128
/// bytes covers two IPv6 socket addresses (19 bytes each encoded) and every
/// varint at its longest, with room for a larger identity type.
pub(crate) const PLAIN_ENVELOPE: usize = 128;

/// What a frame needs beyond a metadata object besides its key: the
/// GOSSIP's envelope and the version vector in its id. 4 KiB holds the
/// vector of about a hundred writers (a writer is an identity and two
/// counters); a write with a larger one is still checked, and refused, at
/// the call ([`PutError::FrameTooSmall`](crate::PutError::FrameTooSmall)).
pub(crate) const METADATA_ENVELOPE: usize = 4096;

/// The smallest `max_frame` a node accepts: a HyParView shuffle or an IHAVE
/// of a few announcements must always fit.
pub(crate) const MIN_FRAME: usize = 1024;

/// Why a configuration cannot make a working node. Each names the settings
/// that disagree, so the fix is in the message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// `max_frame` is below 1,024 bytes: a HyParView shuffle or an IHAVE
    /// of a few announcements must always fit.
    FrameTooSmall {
        /// The configured `max_frame`.
        max_frame: usize,
    },
    /// A plain broadcast of `plumtree.max_payload` bytes (and a 128-byte
    /// envelope: ids, root, round, lengths) would need a frame larger than
    /// `max_frame`: it would be accepted and never sent.
    PayloadAboveFrame {
        /// `plumtree.max_payload`.
        max_payload: usize,
        /// `max_frame`.
        max_frame: usize,
    },
    /// A metadata object of `metadata.max_object_len` bytes under a key of
    /// `metadata.max_key_len` (and a 4 KiB envelope, the version vector of
    /// about a hundred writers) would need a frame larger than `max_frame`.
    ObjectAboveFrame {
        /// `metadata.max_object_len`.
        max_object_len: usize,
        /// `metadata.max_key_len`.
        max_key_len: usize,
        /// `max_frame`.
        max_frame: usize,
    },
    /// `metadata.max_value_len` exceeds `metadata.max_object_len`: no value
    /// that large could ever be written.
    ValueAboveObject {
        /// `metadata.max_value_len`.
        max_value_len: usize,
        /// `metadata.max_object_len`.
        max_object_len: usize,
    },
    /// The hash tree's shape is invalid.
    HashTree(crate::hashtree::ConfigError),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::FrameTooSmall { max_frame } => {
                write!(f, "max_frame of {max_frame} bytes is below the minimum of {MIN_FRAME}")
            }
            ConfigError::PayloadAboveFrame { max_payload, max_frame } => write!(
                f,
                "plumtree.max_payload of {max_payload} bytes and its {PLAIN_ENVELOPE}-byte envelope exceed max_frame of {max_frame}"
            ),
            ConfigError::ObjectAboveFrame {
                max_object_len,
                max_key_len,
                max_frame,
            } => write!(
                f,
                "metadata.max_object_len of {max_object_len} bytes, a key of {max_key_len} and a {METADATA_ENVELOPE}-byte envelope exceed max_frame of {max_frame}"
            ),
            ConfigError::ValueAboveObject {
                max_value_len,
                max_object_len,
            } => write!(
                f,
                "metadata.max_value_len of {max_value_len} bytes exceeds metadata.max_object_len of {max_object_len}"
            ),
            ConfigError::HashTree(e) => write!(f, "metadata.hashtree: {e}"),
        }
    }
}

impl core::error::Error for ConfigError {}

impl Config {
    /// Checks that the limits agree: every payload and object the node
    /// accepts fits a frame. [`Node::try_new`](super::Node::try_new) and
    /// the drivers refuse a configuration that fails this.
    ///
    /// ```
    /// use epidemic_core::Config;
    /// use epidemic_core::node::ConfigError;
    ///
    /// assert_eq!(Config::default().validate(), Ok(()));
    /// let mut config = Config::default();
    /// config.max_frame = 60_000;
    /// assert!(matches!(config.validate(), Err(ConfigError::PayloadAboveFrame { .. })));
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        let max_frame = self.max_frame;
        if max_frame < MIN_FRAME {
            return Err(ConfigError::FrameTooSmall { max_frame });
        }
        let max_payload = self.plumtree.max_payload;
        if max_payload.saturating_add(PLAIN_ENVELOPE) > max_frame {
            return Err(ConfigError::PayloadAboveFrame { max_payload, max_frame });
        }
        let m = &self.metadata;
        if m.max_value_len > m.max_object_len {
            return Err(ConfigError::ValueAboveObject {
                max_value_len: m.max_value_len,
                max_object_len: m.max_object_len,
            });
        }
        let object_frame = m
            .max_object_len
            .saturating_add(m.max_key_len)
            .saturating_add(METADATA_ENVELOPE);
        if object_frame > max_frame {
            return Err(ConfigError::ObjectAboveFrame {
                max_object_len: m.max_object_len,
                max_key_len: m.max_key_len,
                max_frame,
            });
        }
        m.hashtree.inner_levels().map_err(ConfigError::HashTree)?;
        Ok(())
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

    #[test]
    fn limits_that_disagree_are_refused_with_what_to_change() {
        assert_eq!(Config::default().validate(), Ok(()));
        assert_eq!(Config::mesh(5).validate(), Ok(()));
        let with = |edit: fn(&mut Config)| {
            let mut c = Config::default();
            edit(&mut c);
            c.validate()
        };
        assert_eq!(
            with(|c| c.max_frame = 512),
            Err(ConfigError::FrameTooSmall { max_frame: 512 })
        );
        assert!(matches!(
            with(|c| c.max_frame = 64 * 1024),
            Err(ConfigError::PayloadAboveFrame {
                max_payload: 65_536,
                ..
            })
        ));
        // Payloads fit, objects do not.
        assert!(matches!(
            with(|c| c.max_frame = 200 * 1024),
            Err(ConfigError::ObjectAboveFrame {
                max_object_len: 262_144,
                ..
            })
        ));
        assert!(matches!(
            with(|c| c.metadata.max_value_len = c.metadata.max_object_len + 1),
            Err(ConfigError::ValueAboveObject { .. })
        ));
        assert!(matches!(
            with(|c| c.metadata.hashtree.width = 1),
            Err(ConfigError::HashTree(_))
        ));
        // Smaller objects make a smaller frame possible.
        assert_eq!(
            with(|c| {
                c.max_frame = 100 * 1024;
                c.metadata.max_object_len = 64 * 1024;
            }),
            Ok(())
        );
        let e = with(|c| c.max_frame = 64 * 1024).unwrap_err().to_string();
        assert!(e.contains("plumtree.max_payload") && e.contains("max_frame"), "{e}");
    }
}
