//! Plumtree's configuration.

use super::batch::Batching;
use crate::time::Duration;
use core::fmt;

/// Whether trees are kept per originating node or shared. In a configuration
/// file: `tree = { mode = "shared" }` or `tree = { mode = "per_root",
/// max_roots = 64 }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
#[non_exhaustive]
pub enum TreeMode {
    /// One eager/lazy pair for every message, as in the paper. Cheapest; the
    /// tree is shaped by whoever broadcast first, so other senders' messages
    /// take longer paths (the paper's multi-sender LDH of ≈17–18 optimised
    /// against ≈8–9 for a single sender).
    Shared,
    /// Sender-based trees, as in Riak: an eager/lazy pair per root. At most
    /// `max_roots` roots are tracked; the least recently used is evicted and
    /// falls back to the shared pair.
    PerRoot {
        /// How many roots may have sets of their own.
        max_roots: usize,
    },
}

/// Plumtree's timers and bounds.
///
/// Every field is public; start from [`Config::default`] (a HyParView
/// overlay) or [`Config::mesh`] (a full mesh) and change what you need.
/// Every structure a peer can make grow has a count bound here.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// Shared or per-root trees.
    ///
    /// Default: `TreeMode::PerRoot { max_roots: 64 }`. DESIGN.md:
    /// sender-based trees are Riak's first production lesson. 64 roots covers
    /// the broadcasters of a typical cluster and costs 64 × degree identities
    /// per node, which a 100,000-node simulation can afford (raise it for
    /// many concurrent senders).
    pub tree: TreeMode,
    /// The paper's *timeout1* (§3.7): how long after the first announcement
    /// of a missing message to wait for its payload before grafting.
    ///
    /// Default: `Duration::from_millis(500)`. Must exceed the eager path's
    /// latency minus the lazy path's (which already includes
    /// `dispatch_interval`), or the tree is grafted for nothing and RMR
    /// rises. 500 ms covers ten hops of 50 ms; a late graft costs one
    /// payload, a false one a duplicate.
    pub ihave_timeout: Duration,
    /// The paper's *timeout2* (§3.7): after a graft, how long to wait for the
    /// payload before grafting the next announcer.
    ///
    /// Default: `Duration::from_millis(250)`. The paper: smaller than
    /// timeout1, about one round trip. 250 ms is a generous WAN round trip.
    pub graft_timeout: Duration,
    /// Riak's lazy tick: how often unacknowledged announcements are re-sent.
    ///
    /// Default: `Duration::from_secs(1)`. Riak's production value
    /// (`broadcast_lazy_timer`, 1000 ms).
    pub lazy_tick: Duration,
    /// How long announcements wait in the lazy queue to be batched.
    ///
    /// Default: `Duration::from_millis(20)`. Short against `ihave_timeout`,
    /// so batching barely delays repair, yet at 1,000 messages/s one IHAVE
    /// carries 20 announcements.
    pub dispatch_interval: Duration,
    /// Not in the paper nor in Riak: also keep every eager push in the
    /// outstanding set, so that it is re-announced (as an IHAVE) on the lazy
    /// tick until the peer acknowledges it. This closes the one gap the
    /// outstanding set leaves on lossy links: a node whose links for a tree
    /// are all tree links hears no IHAVE, so a lost push to it would be lost
    /// for good. It costs one IHAVE and one ignored-IHAVE per tree edge per
    /// lazy tick with traffic (batched, so not per message).
    ///
    /// On by default (it was off, as the paper's and Riak's message counts
    /// assume): a default that loses messages on a lossy link is not a
    /// robust default, and a push can be lost without its link failing
    /// (a UDP-like transport, a simulated or faulty network, a connection
    /// reset between write and read). Measured on the bus (500 nodes,
    /// 100 broadcasts from 20 origins after a lossless warm-up,
    /// `tests/loss.rs`): at 20% frame loss, off missed 3 deliveries
    /// (99.80% for the worst broadcast) and on missed none; RMR 0.658 off
    /// against 0.640 on, control frames per broadcast 3,289 against 4,855
    /// (+48%). Without loss RMR is 0.0024 off and 0.0027 on, and control
    /// frames 2,980 against 3,987 (+34%). Turn it off over a transport
    /// that never loses a frame on a live link to save those.
    ///
    /// Default: `true`. On: see the field's docs for the measurement.
    pub retransmit_eager: bool,
    /// Not in the paper nor in Riak: a neighbour that comes up is announced
    /// (IHAVE, through its lazy queue) the messages this node delivered or
    /// originated within this window, at most [`max_catch_up`] of them.
    /// A node that loses its neighbours and promotes passive peers while a
    /// broadcast is under way may connect to a peer the broadcast has
    /// already passed; without this it would miss the message, since no
    /// peer announces it again. It grafts what it lacks and acknowledges
    /// the rest with IGNORED_IHAVE. `Duration::ZERO` turns it off. The
    /// default, 2 s, covers a broadcast's spread plus a graft round over a
    /// WAN; what is older is left to anti-entropy.
    ///
    /// [`max_catch_up`]: Self::max_catch_up
    ///
    /// Default: `Duration::from_secs(2)`. Two lazy ticks (Riak's 1 s): a
    /// broadcast's spread and a graft round trip, with room for a WAN.
    pub catch_up_window: Duration,
    /// The hop-count optimisation (§3.8): when a lazy path is shorter than
    /// the eager one by at least this many hops, the tree is rewired. `None`
    /// turns it off.
    ///
    /// Default: `Some(3)`. The paper's figure for a single sender: with
    /// per-root trees every tree has one sender. Use 7 (the multi-sender
    /// figure) with `TreeMode::Shared` and several senders.
    pub optimization_threshold: Option<u32>,
    /// Mesh mode (Riak): a neighbour that comes up joins the eager set only
    /// while it has fewer than this many members; `None` makes every
    /// neighbour eager, as the paper does over HyParView. See
    /// [`mesh_eager_fanout`].
    ///
    /// Default: `None`. Over HyParView the active view (≈5) is the fanout,
    /// all eager.
    pub initial_eager_fanout: Option<usize>,
    /// Mesh mode (Riak): of the neighbours that do not start eager, only this
    /// many start lazy; the others are in neither set until a message makes
    /// them eager or lazy. `None` makes them all lazy.
    ///
    /// Default: `None`: every neighbour not eager starts lazy (see
    /// [`Config::mesh`] for why not Riak's one lazy peer).
    pub initial_lazy_fanout: Option<usize>,
    /// The largest payload [`broadcast`](super::Plumtree::broadcast) accepts
    /// and a GOSSIP may carry.
    ///
    /// Default: `64 * 1024`. 64 KiB: the figure `wire::DEFAULT_MAX_FRAME` (1
    /// MiB) was sized for, with room for the frame's other fields.
    pub max_payload: usize,
    /// Announcements per IHAVE, and ids per IGNORED_IHAVE.
    ///
    /// Default: `128`. 128 announcements of a few hundred bytes each (a
    /// metadata id carries a version vector) stay well inside a 1 MiB frame.
    pub max_ihave_batch: usize,
    /// The largest encoded IHAVE or IGNORED_IHAVE body: a batch ends before
    /// the announcement that would take it past this, whatever its count. A
    /// [`Node`](crate::Node) lowers it to fit its `max_frame`.
    ///
    /// Default: a [`wire::DEFAULT_MAX_FRAME`](crate::wire::DEFAULT_MAX_FRAME)
    /// frame less its header, so whatever the count a batch fits the
    /// default frame.
    pub max_batch_bytes: usize,
    /// Delivered messages whose round and sender are remembered: for the
    /// optimisation, and to tell a copy that came by the tree from one still
    /// in flight on a pruned edge (see "Pruning with broadcasts in flight"
    /// in the [module docs](super)).
    ///
    /// Default: `256`. Announcements of a delivered message arrive within a
    /// dispatch interval and a hop or two (tens of ms), so 256 covers that
    /// window beyond 5,000 msg/s. At about 70 bytes an entry with small ids,
    /// that is 18 KB a node: a 100,000-node simulation affords it (1,024
    /// would cost it 7 GB).
    pub max_received: usize,
    /// Missing messages being waited for. When it is full, the one whose
    /// timer is due first makes room; if it has not been grafted yet, it is
    /// grafted then, early, rather than forgotten unasked
    /// ([`Stats::eviction_grafts`](super::Stats::eviction_grafts)). So
    /// repair keeps up with any rate: a node cut off from a tree grafts back
    /// even when more than `max_missing` announcements arrive per
    /// `ihave_timeout`.
    ///
    /// Default: `1024`. Messages missing at once: a second of traffic at
    /// 1,000 msg/s when the tree is broken. Past it the oldest is grafted
    /// early, so it bounds memory, not the rate repair keeps up with.
    pub max_missing: usize,
    /// Announcers remembered per missing message.
    ///
    /// Default: `8`. Above the active view size (5) with slack: announcers
    /// are tried one `graft_timeout` apart, so more would never be reached.
    pub max_announcers: usize,
    /// Unacknowledged announcements per peer.
    ///
    /// Default: `1024`. A lazy tick's worth of traffic at 1,000 msg/s to a
    /// peer that has stopped acknowledging.
    pub max_outstanding: usize,
    /// Announcements waiting for dispatch per peer. A queue that reaches
    /// [`max_ihave_batch`](Self::max_ihave_batch) is sent at once, so this
    /// bound is reached only when it is the smaller of the two.
    ///
    /// Default: `1024`. Ten dispatch intervals at 5,000 msg/s; full batches
    /// leave at once, so it matters only below `max_ihave_batch`.
    pub max_lazy_queue: usize,
    /// Recent messages remembered for [`catch_up_window`]: the most that a
    /// neighbour that comes up is announced.
    ///
    /// [`catch_up_window`]: Self::catch_up_window
    ///
    /// Default: `32`. One IHAVE's worth, a fraction of `max_ihave_batch`: a
    /// newcomer costs each neighbour at most one extra announcement frame.
    pub max_catch_up: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            tree: TreeMode::PerRoot { max_roots: 64 },
            ihave_timeout: Duration::from_millis(500),
            graft_timeout: Duration::from_millis(250),
            lazy_tick: Duration::from_secs(1),
            dispatch_interval: Duration::from_millis(20),
            retransmit_eager: true,
            catch_up_window: Duration::from_secs(2),
            optimization_threshold: Some(3),
            initial_eager_fanout: None,
            initial_lazy_fanout: None,
            max_payload: 64 * 1024,
            max_ihave_batch: 128,
            max_batch_bytes: crate::wire::DEFAULT_MAX_FRAME - crate::wire::HEADER_LEN,
            max_received: 256,
            max_missing: 1024,
            max_announcers: 8,
            max_outstanding: 1024,
            max_lazy_queue: 1024,
            max_catch_up: 32,
        }
    }
}

impl Config {
    /// The configuration for a full mesh of `cluster_size` nodes:
    /// [`mesh_eager_fanout`] eager neighbours, as Riak sets it, and every
    /// other neighbour lazy.
    ///
    /// Riak starts one lazy peer, but its eager peers come from
    /// `riak_core_util:build_tree`, a tree over the member list in which
    /// every member has a parent. Here each node samples its eager peers at
    /// random, so with one lazy peer a member can be in no peer's sets for a
    /// root and never hear that root's broadcasts (the chaos sweep found
    /// it: 7 members, an eighth added, one member missing every broadcast of
    /// the newcomer; one 8–10-node mesh in 6 had such a hole). With every
    /// non-eager neighbour lazy, each member hears an IHAVE from every peer
    /// that delivered, and grafts: the cost is one announcement per
    /// neighbour per message, batched ([`Config::max_ihave_batch`]).
    pub fn mesh(cluster_size: usize) -> Self {
        Config {
            initial_eager_fanout: Some(mesh_eager_fanout(cluster_size)),
            initial_lazy_fanout: None,
            ..Config::default()
        }
    }

    /// Where this configuration ends IHAVE and IGNORED_IHAVE batches.
    pub(crate) fn batching(&self) -> Batching {
        Batching {
            max_items: self.max_ihave_batch.max(1),
            max_bytes: self.max_batch_bytes,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Config {
            tree,
            ihave_timeout,
            graft_timeout,
            lazy_tick,
            dispatch_interval,
            retransmit_eager,
            catch_up_window,
            optimization_threshold,
            initial_eager_fanout,
            initial_lazy_fanout,
            max_payload,
            max_ihave_batch,
            max_batch_bytes,
            max_received,
            max_missing,
            max_announcers,
            max_outstanding,
            max_lazy_queue,
            max_catch_up,
        } = self;
        f.debug_struct("Config")
            .field("tree", tree)
            .field("ihave_timeout", ihave_timeout)
            .field("graft_timeout", graft_timeout)
            .field("lazy_tick", lazy_tick)
            .field("dispatch_interval", dispatch_interval)
            .field("retransmit_eager", retransmit_eager)
            .field("catch_up_window", catch_up_window)
            .field("optimization_threshold", optimization_threshold)
            .field("initial_eager_fanout", initial_eager_fanout)
            .field("initial_lazy_fanout", initial_lazy_fanout)
            .field("max_payload", max_payload)
            .field("max_ihave_batch", max_ihave_batch)
            .field("max_batch_bytes", max_batch_bytes)
            .field("max_received", max_received)
            .field("max_missing", max_missing)
            .field("max_announcers", max_announcers)
            .field("max_outstanding", max_outstanding)
            .field("max_lazy_queue", max_lazy_queue)
            .field("max_catch_up", max_catch_up)
            .finish()
    }
}

/// The largest `n` for which `round(ln(n) + 1)` is `k`, for `k = 3, 4, ...`:
/// `floor(e^(k - 0.5))`, computed to 60 digits. A table because `ln` is not
/// available without std.
const LN_STEPS: [u64; 42] = [
    12,
    33,
    90,
    244,
    665,
    1808,
    4914,
    13359,
    36315,
    98715,
    268337,
    729416,
    1982759,
    5389698,
    14650719,
    39824784,
    108254987,
    294267566,
    799902177,
    2174359553,
    5910522063,
    16066464720,
    43673179097,
    118716009132,
    322703570371,
    877199251318,
    2384474784797,
    6481674477934,
    17619017951355,
    47893456332463,
    130187912050632,
    353887435612259,
    961965785544776,
    2614894114445696,
    7108019154642244,
    19321599304402836,
    52521552285925158,
    142768381181291985,
    388084696243620324,
    1054923577702081418,
    2867579591680571559,
    7794889495725306399,
];

/// Riak's initial eager fanout for a full mesh of `n` nodes (itself
/// included): `round(ln(n) + 1)` for `n ≥ 10` (riak_core PR #457, which
/// raised the share of nodes that can fail before anti-entropy is needed
/// from 64% to 85% at 10 nodes).
///
/// Below 10 Riak builds a cyclic tree instead (`riak_core_util:build_tree`):
/// fanout 1 for 3–4 nodes, 2 for 5–9, each plus one lazy peer, and for two
/// nodes the other node eager. This returns those fanouts, so `n < 10` gets
/// the same number of eager peers, chosen at random rather than by position
/// in a tree; 0 for a single node.
pub fn mesh_eager_fanout(n: usize) -> usize {
    match n {
        0 | 1 => 0,
        2..=4 => 1,
        5..=9 => 2,
        _ => {
            let n = n as u64;
            3 + LN_STEPS.iter().take_while(|&&step| n > step).count()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mesh_fanout_matches_round_ln_plus_one() {
        for n in 10..200_000usize {
            let want = ((n as f64).ln() + 1.0).round() as usize;
            assert_eq!(mesh_eager_fanout(n), want, "n = {n}");
        }
        assert_eq!(
            mesh_eager_fanout(usize::MAX),
            ((usize::MAX as f64).ln() + 1.0).round() as usize
        );
        assert_eq!(
            [1, 2, 4, 5, 9, 10, 20, 40, 100, 1000, 10_000, 100_000].map(mesh_eager_fanout),
            [0, 1, 1, 2, 2, 3, 4, 5, 6, 8, 10, 13]
        );
    }

    #[test]
    fn debug_names_every_field() {
        let s = alloc::format!("{:?}", Config::default());
        assert!(s.contains("max_lazy_queue: 1024"));
        assert!(s.contains("lazy_tick: 1000ms"));
    }
}
