//! What a scenario reports: the JSON document, its rows, and the running
//! tallies they are computed from.

use serde::Serialize;
use std::collections::BTreeMap;

/// One broadcast, measured by the Plumtree paper's definitions (§2.3).
#[derive(Debug, Clone, Default)]
pub(crate) struct Shot {
    /// Live nodes when it was sent, the origin included.
    pub(crate) alive: usize,
    /// Live nodes that delivered it, the origin included.
    pub(crate) delivered: usize,
    /// Payload frames sent for it (GOSSIP), lost ones included.
    pub(crate) payload: u64,
    /// Control frames sent for it: IHAVE, GRAFT, PRUNE, ATTACH, IGNORED_IHAVE.
    pub(crate) control: u64,
    /// Of `control`: IHAVE frames.
    pub(crate) ihave: u64,
    /// Of `control`: IGNORED_IHAVE frames (Riak's acknowledgements).
    pub(crate) acks: u64,
    /// Last delivery hop; the first send is hop 1.
    pub(crate) ldh: u32,
    /// Deliveries the application saw twice (the node promises none).
    pub(crate) duplicates: u64,
    /// Payload frames sent by each node, by node id.
    pub(crate) loads: Vec<u32>,
}

impl Shot {
    /// Percentage of live nodes that delivered.
    pub(crate) fn reliability(&self) -> f64 {
        if self.alive == 0 {
            100.0
        } else {
            100.0 * self.delivered.min(self.alive) as f64 / self.alive as f64
        }
    }

    /// RMR as the paper defines it: `m / (n − 1) − 1`, for `n ≥ 2`
    /// deliveries; 0 below that.
    pub(crate) fn rmr(&self) -> f64 {
        if self.delivered >= 2 {
            self.payload as f64 / (self.delivered - 1) as f64 - 1.0
        } else {
            0.0
        }
    }

    /// The most payload frames one node sent.
    pub(crate) fn max_load(&self) -> u32 {
        self.loads.iter().copied().max().unwrap_or(0)
    }
}

/// Averages over a set of broadcasts. Message counts are per broadcast.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Measure {
    /// Broadcasts measured.
    pub broadcasts: u64,
    /// Mean reliability, in percent of live nodes.
    pub reliability: f64,
    /// Lowest reliability of any one broadcast, in percent.
    pub min_reliability: f64,
    /// Mean relative message redundancy.
    pub rmr: f64,
    /// Highest RMR of any one broadcast.
    pub max_rmr: f64,
    /// Mean last delivery hop.
    pub ldh: f64,
    /// Highest last delivery hop.
    pub max_ldh: u32,
    /// Payload frames per broadcast.
    pub payload_msgs: f64,
    /// Control frames per broadcast (IHAVE, GRAFT, PRUNE, ATTACH,
    /// IGNORED_IHAVE).
    pub control_msgs: f64,
    /// Of `control_msgs`: IHAVE frames per broadcast.
    pub ihave_msgs: f64,
    /// Of `control_msgs`: IGNORED_IHAVE acknowledgements per broadcast.
    pub ack_msgs: f64,
    /// Payload frames sent by the busiest node for one broadcast.
    pub max_load: u32,
    /// Duplicate deliveries to the application, all broadcasts together.
    pub duplicates: u64,
}

/// Accumulates [`Shot`]s into a [`Measure`] and a load histogram.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tally {
    n: u64,
    reliability: f64,
    min_reliability: Option<f64>,
    rmr: f64,
    max_rmr: f64,
    ldh: u64,
    max_ldh: u32,
    payload: u64,
    control: u64,
    ihave: u64,
    acks: u64,
    max_load: u32,
    duplicates: u64,
    /// Live node-broadcast pairs by payload frames sent.
    pub(crate) loads: BTreeMap<u32, u64>,
}

impl Tally {
    pub(crate) fn add(&mut self, shot: &Shot) {
        let reliability = shot.reliability();
        let rmr = shot.rmr();
        self.n += 1;
        self.reliability += reliability;
        self.min_reliability = Some(self.min_reliability.map_or(reliability, |m| m.min(reliability)));
        self.rmr += rmr;
        self.max_rmr = self.max_rmr.max(rmr);
        self.ldh += u64::from(shot.ldh);
        self.max_ldh = self.max_ldh.max(shot.ldh);
        self.payload += shot.payload;
        self.control += shot.control;
        self.ihave += shot.ihave;
        self.acks += shot.acks;
        self.max_load = self.max_load.max(shot.max_load());
        self.duplicates += shot.duplicates;
    }

    /// Counts the loads of `shot`'s live nodes (`alive[i]`) in the histogram.
    pub(crate) fn add_loads(&mut self, shot: &Shot, alive: impl Fn(usize) -> bool) {
        for (i, &load) in shot.loads.iter().enumerate() {
            if alive(i) {
                *self.loads.entry(load).or_default() += 1;
            }
        }
    }

    /// Adds every broadcast of `other`.
    pub(crate) fn merge(&mut self, other: &Tally) {
        if other.n == 0 {
            return;
        }
        self.n += other.n;
        self.reliability += other.reliability;
        self.min_reliability = match (self.min_reliability, other.min_reliability) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.rmr += other.rmr;
        self.max_rmr = self.max_rmr.max(other.max_rmr);
        self.ldh += other.ldh;
        self.max_ldh = self.max_ldh.max(other.max_ldh);
        self.payload += other.payload;
        self.control += other.control;
        self.ihave += other.ihave;
        self.acks += other.acks;
        self.max_load = self.max_load.max(other.max_load);
        self.duplicates += other.duplicates;
        for (&k, &v) in &other.loads {
            *self.loads.entry(k).or_default() += v;
        }
    }

    pub(crate) fn measure(&self) -> Measure {
        let n = self.n.max(1) as f64;
        Measure {
            broadcasts: self.n,
            reliability: self.reliability / n,
            min_reliability: self.min_reliability.unwrap_or(100.0),
            rmr: self.rmr / n,
            max_rmr: self.max_rmr,
            ldh: self.ldh as f64 / n,
            max_ldh: self.max_ldh,
            payload_msgs: self.payload as f64 / n,
            control_msgs: self.control as f64 / n,
            ihave_msgs: self.ihave as f64 / n,
            ack_msgs: self.acks as f64 / n,
            max_load: self.max_load,
            duplicates: self.duplicates,
        }
    }
}

/// One line of results: a variant, a strategy, a failure level or a cycle.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Row {
    /// What this row is (variant, strategy, failure level).
    pub label: String,
    /// The cycle, for per-cycle rows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cycle: Option<u32>,
    /// Nodes failed, in percent, for failure rows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_pct: Option<f64>,
    /// The figures.
    #[serde(flatten)]
    pub measure: Measure,
    /// `failure`: cycles after the failure's own cycle until a broadcast
    /// reached every live node (0: the first one did); `None` if that did
    /// not happen within the rounds simulated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healing_rounds: Option<u32>,
    /// `failure`: survivors that knew no live node (through their views,
    /// directly or by way of other survivors) at the last round simulated;
    /// healing does not wait for them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cut_off: Option<u64>,
    /// `failure`: the reliability of each cycle's broadcast from the
    /// failure on.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub round_reliability: Vec<f64>,
    /// `compare`: the same strategy after each failure level.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub after_failure: Vec<Row>,
}

impl Row {
    pub(crate) fn new(label: impl Into<String>, measure: Measure) -> Self {
        Row {
            label: label.into(),
            cycle: None,
            failed_pct: None,
            measure,
            healing_rounds: None,
            cut_off: None,
            round_reliability: Vec::new(),
            after_failure: Vec::new(),
        }
    }
}

/// The scenario's headline figures.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    /// Which row the figures come from, or how they were combined.
    pub of: String,
    /// The figures.
    #[serde(flatten)]
    pub measure: Measure,
    /// Wall-clock time of the whole run, in milliseconds: the one field that
    /// differs between two runs with the same seed.
    pub wall_ms: u64,
}

/// How busy nodes were: node-broadcast pairs by payload frames sent.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LoadDistribution {
    /// The variant or strategy.
    pub label: String,
    /// `[load, count]` pairs, by increasing load.
    pub counts: Vec<(u32, u64)>,
}

impl LoadDistribution {
    pub(crate) fn new(label: impl Into<String>, tally: &Tally) -> Self {
        LoadDistribution {
            label: label.into(),
            counts: tally.loads.iter().map(|(&k, &v)| (k, v)).collect(),
        }
    }
}

/// Everything `epidemic sim` prints with `--format json`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    /// `stable`, `failure`, `churn` or `compare`.
    pub scenario: String,
    /// Every parameter of the run, defaults included, the seed among them.
    pub params: BTreeMap<String, serde_json::Value>,
    /// The headline figures.
    pub summary: Summary,
    /// One row per variant, failure level, cycle or strategy.
    pub rows: Vec<Row>,
    /// Per-cycle rows (`stable`: of every variant).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cycles: Vec<Row>,
    /// Per-node forwarding load, by variant or strategy.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub loads: Vec<LoadDistribution>,
    /// The human-readable table.
    #[serde(skip)]
    pub table: String,
}

impl Report {
    /// The JSON document, minus its one nondeterministic field
    /// (`summary.wall_ms`): two runs with the same seed give equal values.
    pub fn deterministic_json(&self) -> serde_json::Value {
        super::output::deterministic_json(self)
    }
}
