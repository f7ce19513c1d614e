//! What every scenario starts from: the cluster its options describe, the
//! parameters its report lists, and the line its table opens with.

use super::cluster::{Cluster, ClusterSpec};
use super::output::{Table, thousands};
use super::{Common, Progress, Tree};
use epidemic_core::Duration;
use epidemic_core::broadcast::{self, TreeMode};
use epidemic_mem::{Id, Latency};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde_json::json;
use std::collections::BTreeMap;

/// The Plumtree paper's optimisation thresholds (PAPERS.md): 3 hops for a
/// single sender, 7 for many. The variant labels ("optimised (3)") spell
/// them out.
pub(crate) const SINGLE_SENDER_THRESHOLD: u32 = 3;
/// See [`SINGLE_SENDER_THRESHOLD`].
pub(crate) const MULTI_SENDER_THRESHOLD: u32 = 7;

/// Nodes when `--nodes` is not given (but for `metadata`): the Plumtree
/// paper's 10,000.
pub(crate) const NODES: u64 = 10_000;

/// Nodes join 1 ms apart while the overlay grows, as the paper adds them one
/// by one: short against a walk (6 hops of 5 ms), so the 10,000 joins of the
/// default take 10 s of virtual time. Faster is not safe: 0.1 ms apart, the
/// storm of concurrent joins and evictions left a 47-node island at 10,000
/// nodes that HyParView never merged back.
const JOIN_GAP: Duration = Duration::from_millis(1);

/// Broadcasts whose payload each node keeps to answer grafts (and four times
/// as many ids to tell duplicates). The library's default (4,096) sizes
/// for thousands of messages a second; in a cycle every broadcast settles
/// before the next starts, so only the latest is ever grafted, and a small
/// cache keeps 100,000 nodes in memory.
pub(crate) const MESSAGE_CACHE: usize = 32;

/// Delivered messages each node remembers for the tree optimisation (the
/// library's default is 256), for the same reason.
const MAX_RECEIVED: usize = 32;

/// Shuffle intervals of membership after the last join, before the first
/// broadcast: passive views mix, and nodes left short of neighbours by the
/// joins fill their active views.
const SETTLE_SHUFFLES: u64 = 3;

impl Common {
    /// The parameters shared by every scenario, for the report.
    pub(crate) fn params(&self) -> BTreeMap<String, serde_json::Value> {
        let Common {
            requested_nodes: _,
            nodes,
            seed,
            format: _,
            out: _,
            active,
            passive,
            tree: _,
            latency,
            detection_ms,
            shuffle_ms,
            jobs: _,
            quiet: _,
        } = self;
        BTreeMap::from([
            ("nodes".into(), json!(nodes)),
            ("seed".into(), json!(seed)),
            ("active_view".into(), json!(active)),
            ("passive_view".into(), json!(passive)),
            ("tree".into(), json!(self.tree_name())),
            ("latency_ms".into(), json!(latency.to_string())),
            ("detection_ms".into(), json!(detection_ms)),
            ("shuffle_ms".into(), json!(shuffle_ms)),
            ("join_gap_us".into(), json!(JOIN_GAP.as_micros())),
            ("settle_shuffles".into(), json!(SETTLE_SHUFFLES)),
            ("message_cache".into(), json!(MESSAGE_CACHE)),
            ("max_received".into(), json!(MAX_RECEIVED)),
        ])
    }

    /// The cluster these options describe, with `plumtree` as the broadcast
    /// configuration.
    fn cluster(&self, plumtree: broadcast::Config) -> ClusterSpec {
        let ms = |m: u64| Duration::from_millis(m);
        let latency = if self.latency.min == self.latency.max {
            Latency::Fixed(ms(self.latency.min))
        } else {
            Latency::Uniform {
                min: ms(self.latency.min),
                max: ms(self.latency.max),
            }
        };
        ClusterSpec {
            nodes: self.nodes as usize,
            seed: self.seed,
            active: self.active as usize,
            passive: self.passive as usize,
            shuffle_interval: ms(self.shuffle_ms),
            latency,
            detection_delay: ms(self.detection_ms),
            join_gap: JOIN_GAP,
            settle: ms(self.shuffle_ms).saturating_mul(SETTLE_SHUFFLES),
            plumtree,
        }
    }

    /// Plumtree's configuration: the library defaults with this tree mode,
    /// room for `roots` trees, and `threshold` for the optimisation.
    fn plumtree(&self, threshold: Option<u32>, roots: usize) -> broadcast::Config {
        let mut c = broadcast::Config::default();
        c.tree = match self.tree {
            Tree::PerRoot => TreeMode::PerRoot {
                max_roots: roots.max(64),
            },
            Tree::Shared => TreeMode::Shared,
        };
        c.optimization_threshold = threshold;
        c.max_received = MAX_RECEIVED;
        // The papers' links are reliable (TCP) and their message counts
        // have no retransmission acknowledgements; the library's default
        // retransmits eager pushes for lossy links (+34% control frames).
        c.retransmit_eager = false;
        c
    }
}

impl Common {
    /// A cluster as these options describe it, with Plumtree's optimisation
    /// at `threshold` and room for `roots` trees: the overlay every
    /// broadcast scenario builds (the same seed, so the same overlay).
    pub(crate) fn build(&self, threshold: Option<u32>, roots: usize) -> Cluster {
        Cluster::new(self.cluster(self.plumtree(threshold, roots)))
    }

    /// The origin of the scenario's broadcasts and every other node in the
    /// order they fail in, both drawn from the seed mixed with `salt`.
    pub(crate) fn origin_and_order(&self, salt: u64) -> (Id, Vec<Id>) {
        let n = self.nodes as usize;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(self.seed ^ salt);
        let origin = rng.random_range(0..n) as Id;
        let mut order: Vec<Id> = (0..n as Id).filter(|&i| i != origin).collect();
        order.shuffle(&mut rng);
        (origin, order)
    }

    /// `N nodes, seed S`: how every scenario's headline starts.
    fn nodes_and_seed(&self) -> String {
        format!("{} nodes, seed {}", thousands(self.nodes as f64), self.seed)
    }

    /// `HyParView active A / passive P`, with what the cluster's size
    /// leaves of them when it is smaller.
    pub(crate) fn views(&self) -> String {
        let others = self.nodes.saturating_sub(1);
        let fit = |v: u64| {
            if v > others {
                format!("{v} (at most {others} with {} nodes)", self.nodes)
            } else {
                v.to_string()
            }
        };
        format!("HyParView active {} / passive {}", fit(self.active), fit(self.passive))
    }

    /// `latency L ms`.
    pub(crate) fn latency_clause(&self) -> String {
        format!("latency {} ms", self.latency)
    }

    /// `links report a failure after D ms`.
    pub(crate) fn detection_clause(&self) -> String {
        format!("links report a failure after {} ms", self.detection_ms)
    }

    /// `per-root` or `shared`.
    pub(crate) fn tree_name(&self) -> &'static str {
        match self.tree {
            Tree::PerRoot => "per-root",
            Tree::Shared => "shared",
        }
    }
}

impl Cluster {
    /// `cycles` cycles of broadcasts from `origin`, unmeasured, one unit of
    /// `progress` each: the warm-up in which the tree forms.
    pub(crate) fn warm_up(&mut self, origin: Id, cycles: u32, progress: &Progress) {
        for _ in 0..cycles {
            self.broadcast(origin);
            self.membership_step();
            progress.inc(1);
        }
    }
}

/// The line a scenario's table opens with, `epidemic sim NAME: ...`, its
/// clauses separated by `; `; [`Headline::page`] sets the table and the
/// notes under it.
pub(crate) struct Headline(String);

impl Headline {
    /// `epidemic sim NAME: FIRST`.
    pub(crate) fn new(scenario: &str, first: impl std::fmt::Display) -> Self {
        Headline(format!("epidemic sim {scenario}: {first}"))
    }

    /// `epidemic sim NAME: N nodes, seed S`.
    pub(crate) fn cluster(scenario: &str, common: &Common) -> Self {
        Headline::new(scenario, common.nodes_and_seed())
    }

    /// Adds `; CLAUSE`.
    pub(crate) fn then(mut self, clause: impl std::fmt::Display) -> Self {
        use std::fmt::Write as _;
        let _ = write!(self.0, "; {clause}");
        self
    }

    /// The headline, a blank line, the table, a blank line, then `notes`.
    pub(crate) fn page(self, table: &Table, notes: impl std::fmt::Display) -> String {
        format!(
            "{}

{}
{notes}",
            self.0,
            table.render()
        )
    }
}

/// The first `pct` percent of `order` (rounded), never more than all but
/// one.
pub(crate) fn take_pct(order: &[epidemic_mem::Id], pct: f64, nodes: usize) -> &[epidemic_mem::Id] {
    let k = ((nodes as f64) * pct / 100.0).round() as usize;
    &order[..k.min(order.len())]
}
