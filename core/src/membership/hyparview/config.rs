//! HyParView's parameters, and their defaults with the reasons for them.

use core::fmt;

use crate::time::Duration;

/// HyParView's parameters.
///
/// Start from [`Config::default`] (the paper's figures for 10,000 nodes) or
/// [`Config::for_cluster_size`], then set fields:
///
/// ```
/// use epidemic_core::Duration;
/// use epidemic_core::membership::hyparview::Config;
///
/// let mut config = Config::for_cluster_size(200);
/// config.shuffle_interval = Duration::from_secs(5);
/// assert_eq!(config.active_view_capacity, 4);
/// ```
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// The most neighbors a node keeps: log(n) + c in the paper (§5).
    ///
    /// Default: `5`. §5: log10(10,000) + c with c = 1.
    pub active_view_capacity: usize,
    /// The most passive peers a node keeps: k · (log(n) + c) in the paper.
    ///
    /// Default: `30`. §5: k · (log10(10,000) + 1) with k = 6.
    pub passive_view_capacity: usize,
    /// Active random walk length (ARWL): hops a `ForwardJoin` travels (§4.2).
    ///
    /// Default: `6`. §5: ARWL = 6, PRWL = 3.
    pub active_random_walk_length: u8,
    /// Passive random walk length (PRWL): the walk's ttl at which the joiner
    /// is added to a passive view (§4.2). Must be below ARWL to matter.
    ///
    /// Default: `3`. §5: PRWL = 3.
    pub passive_random_walk_length: u8,
    /// ka: active peers sent in a shuffle (§4.4).
    ///
    /// Default: `3`. §5: ka = 3, kp = 4.
    pub shuffle_active: usize,
    /// kp: passive peers sent in a shuffle (§4.4).
    ///
    /// Default: `4`. §5: kp = 4.
    pub shuffle_passive: usize,
    /// Hops a `Shuffle` travels before it is answered (§4.4).
    ///
    /// Default: `6`. The paper gives the shuffle walk a ttl but no separate
    /// figure; it is the same kind of random walk as a join's, so it gets the
    /// same length and ends about as far away.
    pub shuffle_ttl: u8,
    /// Time between two shuffles of one node.
    ///
    /// Default: `Duration::from_secs(10)`. The paper shuffles once per
    /// simulation cycle. On a real network a cycle must be far longer than a
    /// round trip, and short enough that passive views stay fresh: at 10 s
    /// each node starts one 8-entry shuffle per period (with its walk and
    /// reply, about eight small messages), and a 30-entry passive view is
    /// renewed within a few periods. It is also the period of Riak's metadata
    /// anti-entropy tick.
    pub shuffle_interval: Duration,
    /// How long a `Neighbor` request (or a `Join`) waits for its answer.
    ///
    /// Default: `Duration::from_secs(5)`. A `Neighbor` is answered within one
    /// round trip. A peer that is down is normally reported much sooner by
    /// the link; this is the backstop for one that accepts a connection and
    /// never answers. RFC 6298 starts TCP's retransmission timeout at 1 s, so
    /// a connect that loses two SYNs completes after 3 s; 5 s covers that
    /// plus a slow round trip, and stays under the shuffle interval so a
    /// stuck request is replaced before the next tick.
    pub neighbor_timeout: Duration,
    /// How many peers lost to a link failure are remembered for
    /// reconnection (see "Healing partitions" in the module docs).
    ///
    /// Default: `8`. Not in the paper. Eight entries cover more than the
    /// whole active view (5) failing at once, so a node cut off from all its
    /// neighbors by a partition still remembers each of them.
    pub lost_capacity: usize,
    /// How long a lost peer is remembered. A partition that lasts longer
    /// heals only through a new join.
    ///
    /// Default: `Duration::from_secs(300)`. One probe per shuffle interval,
    /// so 30 probes over 5 minutes: partitions of a network maintenance
    /// window heal by themselves, and the cost of probing peers that really
    /// died stays bounded.
    pub lost_retention: Duration,
    /// How many of its own shuffles in a row must get a familiar reply (from
    /// a neighbor, or from a passive peer and naming only known peers)
    /// before a node suspects that its component is closed and probes a
    /// passive peer with a high-priority `Neighbor` (see "Closed
    /// components" in the module docs). The threshold doubles after each
    /// probe, up to 32 times this. Zero turns the check off.
    ///
    /// Default: `2`. Not in the paper. A shuffle walks 6 hops; in a large
    /// random overlay it ends at a neighbor of its origin about once in n /
    /// active_view_capacity walks, in a closed clique every time. Two such
    /// replies in a row are rare enough at any size where a split matters (at
    /// 1,000 nodes, about once per 40,000 shuffles), and they take two
    /// shuffle intervals, so a clique left by the joins is probed within the
    /// three intervals the simulator settles for.
    pub isolation_replies: u32,
    /// How many join contacts a node remembers for rejoining (see
    /// "Rejoining" in the module docs): those given to
    /// [`HyParView::join`](super::HyParView::join), the oldest forgotten
    /// first. Zero turns rejoining off.
    ///
    /// Default: `4`. Not in the paper, which only says that a node whose
    /// active view is empty joins again. A few contacts are enough for one of
    /// them to be up; four is what a seed-node list usually has.
    pub join_contacts: usize,
    /// The longest wait between two join retries. Retries start
    /// [`neighbor_timeout`](Self::neighbor_timeout) after a failed join
    /// and double up to this, with jitter.
    ///
    /// Default: `Duration::from_secs(40)`. Not in the paper. Four shuffle
    /// intervals: a node cut off by a partition or a crashed contact retries
    /// about once per 40 s at worst, well within `lost_retention`, and a
    /// cluster of nodes waiting for a dead contact costs one `Join` each per
    /// period.
    pub join_retry_max: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            active_view_capacity: 5,
            passive_view_capacity: 30,
            active_random_walk_length: 6,
            passive_random_walk_length: 3,
            shuffle_active: 3,
            shuffle_passive: 4,
            shuffle_ttl: 6,
            shuffle_interval: Duration::from_secs(10),
            neighbor_timeout: Duration::from_secs(5),
            lost_capacity: 8,
            lost_retention: Duration::from_secs(300),
            isolation_replies: 2,
            join_contacts: 4,
            join_retry_max: Duration::from_secs(40),
        }
    }
}

impl Config {
    /// The paper's sizing for a cluster of about `n` nodes: an active view
    /// of ⌈log10(n)⌉ + 1 (c = 1), at least 3, and a passive view six times
    /// that (k = 6). Other fields are the defaults.
    ///
    /// The floor of 3 is ours: a random graph in which every node has two
    /// neighbors is a union of cycles and easily falls apart.
    pub fn for_cluster_size(n: usize) -> Config {
        // ⌈log10(n)⌉ without floating point, which `core` lacks.
        let log10 = match n.checked_ilog10() {
            None => 0,
            Some(l) => l as usize + usize::from(10usize.checked_pow(l) != Some(n)),
        };
        let active = (log10 + 1).max(3);
        Config {
            active_view_capacity: active,
            passive_view_capacity: active.saturating_mul(6),
            ..Config::default()
        }
    }

    /// The longest node list a `Shuffle` or `ShuffleReply` may carry: the
    /// sender itself, ka active and kp passive peers.
    pub fn max_shuffle_len(&self) -> usize {
        1usize
            .saturating_add(self.shuffle_active)
            .saturating_add(self.shuffle_passive)
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Destructured so that a new field cannot be forgotten here.
        let Config {
            active_view_capacity,
            passive_view_capacity,
            active_random_walk_length,
            passive_random_walk_length,
            shuffle_active,
            shuffle_passive,
            shuffle_ttl,
            shuffle_interval,
            neighbor_timeout,
            lost_capacity,
            lost_retention,
            isolation_replies,
            join_contacts,
            join_retry_max,
        } = self;
        f.debug_struct("Config")
            .field("active_view_capacity", active_view_capacity)
            .field("passive_view_capacity", passive_view_capacity)
            .field("active_random_walk_length", active_random_walk_length)
            .field("passive_random_walk_length", passive_random_walk_length)
            .field("shuffle_active", shuffle_active)
            .field("shuffle_passive", shuffle_passive)
            .field("shuffle_ttl", shuffle_ttl)
            .field("shuffle_interval", shuffle_interval)
            .field("neighbor_timeout", neighbor_timeout)
            .field("lost_capacity", lost_capacity)
            .field("lost_retention", lost_retention)
            .field("isolation_replies", isolation_replies)
            .field("join_contacts", join_contacts)
            .field("join_retry_max", join_retry_max)
            .finish()
    }
}
