//! Ready-made scenarios with serializable reports, for `epidemic sim` and
//! the benchmarks.

use crate::{Bus, BusConfig, Id};
use bytes::Bytes;
use epidemic_core::Duration;
use epidemic_core::membership::hyparview;
use epidemic_core::metadata::FullPrefix;
use epidemic_core::node::{Config, MembershipConfig};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

/// The settings of [`metadata`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct MetadataParams {
    /// Nodes in the cluster.
    pub nodes: usize,
    /// Partitions, one after another: each splits the nodes into two random
    /// halves, takes writes on both sides, and heals.
    pub partitions: usize,
    /// Writes per partition, at random nodes of both halves. Every fifth
    /// write goes to a key the other half also writes, so healing brings
    /// siblings.
    pub writes: usize,
    /// How long each partition lasts, in virtual milliseconds (the writes are
    /// spread over it).
    pub partition_ms: u64,
    /// Whether anti-entropy runs. Without it only broadcasts repair, and
    /// writes made on the other side of a partition do not arrive (but for
    /// the few recent enough for Plumtree's catch-up).
    pub anti_entropy: bool,
    /// HyParView membership instead of a full mesh.
    pub hyparview: bool,
    /// How long to wait for convergence after the last heal, in virtual
    /// milliseconds.
    pub limit_ms: u64,
    /// Seeds the bus, the nodes and the workload.
    pub seed: u64,
}

impl Default for MetadataParams {
    fn default() -> Self {
        MetadataParams {
            nodes: 50,
            partitions: 3,
            writes: 300,
            partition_ms: 20_000,
            anti_entropy: true,
            hyparview: false,
            limit_ms: 300_000,
            seed: 1,
        }
    }
}

/// What [`metadata`] measured: `epidemic sim metadata` reports a row of
/// these per run.
///
/// It serializes as its figures alone: whoever prints it prints the
/// settings beside it (`epidemic sim metadata` in its `params`), once for
/// all its runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MetadataReport {
    /// The settings it ran with (not serialized; the default when
    /// deserialized without them).
    #[serde(default, skip_serializing)]
    pub params: MetadataParams,
    /// Whether every live node held the same store by the end.
    pub converged: bool,
    /// Virtual time from the last heal to convergence, if it converged.
    pub convergence_ms: Option<u64>,
    /// Anti-entropy exchanges completed from the first partition on.
    pub exchanges: u64,
    /// Anti-entropy bytes sent from the first partition on (frames, headers
    /// included).
    pub bytes: u64,
    /// Metadata broadcast bytes sent from the first partition on.
    pub broadcast_bytes: u64,
    /// Objects repaired by anti-entropy.
    pub repaired: u64,
    /// Distinct keys written.
    pub keys: usize,
    /// Keys holding more than one sibling at the end (on node 0).
    pub sibling_keys: usize,
    /// Nodes whose store differs from the most common one at the end.
    pub divergent_nodes: usize,
}

fn totals(bus: &Bus) -> (u64, u64, u64, u64) {
    bus.alive().fold((0, 0, 0, 0), |(x, b, m, r), i| {
        let s = bus.node(i).map(|n| n.stats()).unwrap_or_default();
        (
            x + s.metadata.exchanges_completed,
            b + s.sent.anti_entropy.bytes,
            m + s.sent.metadata.bytes,
            r + s.metadata.repaired,
        )
    })
}

/// Nodes whose metadata differs from the most common store.
fn divergent(bus: &Bus) -> usize {
    let mut counts = std::collections::BTreeMap::new();
    for i in bus.alive() {
        if let Some(n) = bus.node(i) {
            *counts.entry(n.metadata_hash()).or_insert(0usize) += 1;
        }
    }
    let alive = bus.alive().count();
    alive - counts.values().copied().max().unwrap_or(0)
}

/// The metadata store through partitions: a cluster settles, then goes
/// through `partitions` splits into random halves with writes on both sides,
/// each healed before the next; the report says whether (and how fast) every
/// node converged after the last heal, and what anti-entropy cost.
pub fn metadata(params: &MetadataParams) -> MetadataReport {
    let n = params.nodes.max(2);
    let mut config = if params.hyparview {
        let mut c = Config::default();
        c.membership = MembershipConfig::HyParView(hyparview::Config::for_cluster_size(n));
        c
    } else {
        Config::mesh(n)
    };
    if !params.anti_entropy {
        config.metadata.max_concurrent_exchanges = 0;
    }
    let mut bus = Bus::new(BusConfig::seeded(params.seed));
    bus.add_nodes(n, &config);
    if params.hyparview {
        bus.join_each_via_random_earlier(Duration::from_millis(10));
    } else {
        for id in 1..n as Id {
            bus.join(id, [0]);
        }
    }
    bus.run_for(Duration::from_secs(30));

    let prefix = FullPrefix::new("sim", "metadata");
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(params.seed ^ 0x5eed);
    let (x0, b0, m0, r0) = totals(&bus);
    let mut keys = std::collections::BTreeSet::new();
    let gap = Duration::from_micros(params.partition_ms.saturating_mul(1000) / params.writes.max(1) as u64);
    for round in 0..params.partitions {
        let sides: Vec<u32> = (0..n).map(|_| rng.random_range(0..2u32)).collect();
        bus.partition(|id| sides[id as usize]);
        for w in 0..params.writes {
            let side = (w % 2) as u32;
            let members: Vec<Id> = (0..n as Id).filter(|&i| sides[i as usize] == side).collect();
            if let Some(&at) = members.get(rng.random_range(0..members.len().max(1))) {
                // Every fifth write pair shares a key across the two sides.
                let key = if w % 10 < 2 {
                    format!("shared-{round}-{}", w / 10)
                } else {
                    format!("key-{round}-{w}")
                };
                keys.insert(key.clone());
                let value = Bytes::from(format!("{key}@{at}"));
                let p = &prefix;
                bus.with_node(at, |node, now| node.put(now, p, key.as_bytes(), value, None));
            }
            bus.run_for(gap);
        }
        bus.heal();
        if round + 1 < params.partitions {
            bus.run_for(Duration::from_secs(2));
        }
    }
    let healed = bus.now();
    let limit = Duration::from_millis(params.limit_ms);
    let mut convergence_ms = None;
    loop {
        if divergent(&bus) == 0 {
            convergence_ms = Some((bus.now() - healed).as_millis());
            break;
        }
        if bus.now() - healed >= limit {
            break;
        }
        bus.run_for(Duration::from_millis(100));
    }
    let (x1, b1, m1, r1) = totals(&bus);
    let sibling_keys = bus
        .node(0)
        .map_or(0, |node| node.iter(&prefix).filter(|(_, r)| r.siblings() > 1).count());
    MetadataReport {
        params: params.clone(),
        converged: convergence_ms.is_some(),
        convergence_ms,
        exchanges: x1 - x0,
        bytes: b1 - b0,
        broadcast_bytes: m1 - m0,
        repaired: r1 - r0,
        keys: keys.len(),
        sibling_keys,
        divergent_nodes: divergent(&bus),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converges_with_anti_entropy_and_not_without() {
        let mut params = MetadataParams {
            nodes: 12,
            partitions: 2,
            writes: 60,
            partition_ms: 3_000,
            limit_ms: 120_000,
            ..MetadataParams::default()
        };
        let with = metadata(&params);
        assert!(with.converged, "{with:?}");
        assert!(with.exchanges > 0 && with.bytes > 0);
        assert_eq!(with.divergent_nodes, 0);
        assert!(with.sibling_keys > 0, "keys written on both sides keep both writes");
        params.anti_entropy = false;
        params.limit_ms = 30_000;
        let without = metadata(&params);
        assert!(!without.converged, "{without:?}");
        assert_eq!((without.exchanges, without.convergence_ms), (0, None));
        assert!(without.divergent_nodes > 0);
        let json = serde_json::to_string(&with).unwrap();
        assert!(json.contains("\"converged\":true") && json.contains("\"convergence_ms\":"));
    }
}
