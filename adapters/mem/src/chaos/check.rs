//! The invariants, and the checks that do not need the model: deliveries
//! and structure bounds.

use crate::Id;
use epidemic_core::broadcast::{self, TreeMode};
use epidemic_core::node::{BroadcastId, Config, MembershipConfig, Node};
use std::collections::HashSet;
use std::fmt;

/// What a run must never do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Invariant {
    /// After healing, restarts and quiescence, live members hold different
    /// stores.
    Convergence,
    /// An acknowledged write is neither in the final state nor superseded
    /// by a write that (transitively) saw it.
    Durability,
    /// A value came back after a tombstone that saw it was collected.
    Resurrection,
    /// A node delivered one broadcast id twice in one life.
    DuplicateDelivery,
    /// A node delivered its own broadcast.
    OriginDelivery,
    /// A broadcast sent with no fault left did not reach every live member.
    Delivery,
    /// A structure grew past its configured bound.
    Bound,
}

impl Invariant {
    /// Every invariant, in report order.
    pub const ALL: [Invariant; 7] = [
        Invariant::Convergence,
        Invariant::Durability,
        Invariant::Resurrection,
        Invariant::DuplicateDelivery,
        Invariant::OriginDelivery,
        Invariant::Delivery,
        Invariant::Bound,
    ];

    /// A short name.
    pub fn name(self) -> &'static str {
        match self {
            Invariant::Convergence => "convergence",
            Invariant::Durability => "durability",
            Invariant::Resurrection => "resurrection",
            Invariant::DuplicateDelivery => "duplicate-delivery",
            Invariant::OriginDelivery => "origin-delivery",
            Invariant::Delivery => "delivery",
            Invariant::Bound => "bound",
        }
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One broken invariant, with what broke it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Which.
    pub invariant: Invariant,
    /// Details: nodes, keys, writes, ids.
    pub detail: String,
    /// How many times it was seen in the run (the detail is the first).
    pub count: usize,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.invariant, self.detail)?;
        if self.count > 1 {
            write!(f, " (and {} more)", self.count - 1)?;
        }
        Ok(())
    }
}

/// Every delivery of the run, per node and life.
#[derive(Default)]
pub(crate) struct Deliveries {
    seen: HashSet<(Id, u32, BroadcastId<Id>)>,
}

impl Deliveries {
    /// Records one; the invariant it breaks, if any.
    pub(crate) fn record(&mut self, at: Id, incarnation: u32, id: &BroadcastId<Id>) -> Option<(Invariant, String)> {
        // Sequences start at `incarnation << 32`: an id of this life.
        if id.origin == at && id.seq >> 32 == u64::from(incarnation) {
            return Some((
                Invariant::OriginDelivery,
                format!("node {at} delivered its own broadcast {id:?}"),
            ));
        }
        if !self.seen.insert((at, incarnation, id.clone())) {
            return Some((
                Invariant::DuplicateDelivery,
                format!("node {at} (life {incarnation}) delivered {id:?} twice"),
            ));
        }
        None
    }

    /// Whether `at` delivered `id` in life `incarnation`.
    pub(crate) fn delivered(&self, at: Id, incarnation: u32, id: &BroadcastId<Id>) -> bool {
        self.seen.contains(&(at, incarnation, id.clone()))
    }
}

/// The first bound node `id` breaks, if any.
pub(crate) fn bounds(id: Id, node: &Node<Id>, config: &Config) -> Option<String> {
    let s = node.stats();
    let mut broken = Vec::new();
    engine("plumtree", &s.plumtree, &config.plumtree, &mut broken);
    engine(
        "metadata plumtree",
        &s.metadata_plumtree,
        &config.metadata.plumtree,
        &mut broken,
    );
    let m = &config.metadata;
    let mut check = |what: &str, value: usize, bound: usize| {
        if value > bound {
            broken.push(format!("{what} {value} > {bound}"));
        }
    };
    check("message cache", s.message_cache, config.message_cache);
    check("exchange sessions", s.metadata.sessions, m.max_concurrent_exchanges);
    check("collected memory", s.metadata.collected_memory, m.max_collected);
    if let MembershipConfig::HyParView(h) = &config.membership {
        check("active view", node.active_view().len(), h.active_view_capacity);
        check("passive view", node.passive_view().len(), h.passive_view_capacity);
    }
    (!broken.is_empty()).then(|| format!("node {id}: {}", broken.join(", ")))
}

fn engine(name: &str, s: &broadcast::Stats, c: &broadcast::Config, broken: &mut Vec<String>) {
    let roots = match c.tree {
        TreeMode::PerRoot { max_roots } => max_roots,
        _ => usize::MAX,
    };
    for (what, value, bound) in [
        ("missing", s.missing, c.max_missing),
        ("announcers", s.max_announcers, c.max_announcers),
        ("outstanding per peer", s.max_outstanding, c.max_outstanding),
        ("lazy queue per peer", s.max_lazy_queue, c.max_lazy_queue),
        ("received cache", s.received_cache, c.max_received),
        ("tracked roots", s.tracked_roots, roots),
        ("catch-up", s.catch_up_recent, c.max_catch_up),
    ] {
        if value > bound {
            broken.push(format!("{name} {what} {value} > {bound}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_and_origin_deliveries_are_flagged() {
        let mut d = Deliveries::default();
        let id = BroadcastId { origin: 1, seq: 5 };
        assert_eq!(d.record(2, 0, &id), None);
        assert_eq!(d.record(2, 0, &id).map(|v| v.0), Some(Invariant::DuplicateDelivery));
        assert_eq!(d.record(2, 1, &id), None, "a new life may deliver it again");
        assert_eq!(d.record(1, 0, &id).map(|v| v.0), Some(Invariant::OriginDelivery));
        let old = BroadcastId { origin: 1, seq: 5 };
        assert_eq!(
            d.record(1, 1, &old),
            None,
            "an id of a past life is news to the new one"
        );
    }
}
