//! Shared scaffolding for the bus scenario tests.
#![allow(dead_code)]

use bytes::Bytes;
use epidemic_core::Duration;
use epidemic_core::node::Config;
use epidemic_mem::{Bus, BusConfig, Id};

/// A bus of `n` nodes that joined one after another through random earlier
/// nodes, then ran `settle` of virtual time for shuffles to mix the overlay.
pub(crate) fn overlay(n: usize, seed: u64, config: &Config, settle: Duration) -> Bus {
    let mut bus = Bus::new(BusConfig::seeded(seed));
    bus.add_nodes(n, config);
    bus.join_each_via_random_earlier(Duration::from_millis(10));
    bus.run_for(settle);
    bus
}

/// `n` nodes that all joined through node 0, then ran 30 s of virtual time
/// to settle (the mesh and metadata tests).
pub(crate) fn joined_via_0(n: usize, seed: u64, config: &Config) -> Bus {
    let mut bus = Bus::new(BusConfig::seeded(seed));
    bus.add_nodes(n, config);
    for id in 1..n as Id {
        bus.join(id, [0]);
    }
    bus.run_for(Duration::from_secs(30));
    bus
}

/// Sum of payload frames sent by every live node so far.
pub(crate) fn payload_sent(bus: &Bus) -> u64 {
    bus.alive()
        .map(|i| bus.node(i).unwrap().stats().payload_sent.messages)
        .sum()
}

/// Sum of control frames sent by every live node so far.
pub(crate) fn control_sent(bus: &Bus) -> u64 {
    bus.alive()
        .map(|i| bus.node(i).unwrap().stats().control_sent.messages)
        .sum()
}

/// What one measured broadcast did.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Measured {
    pub(crate) reliability: f64,
    pub(crate) rmr: f64,
    pub(crate) ldh: u32,
    pub(crate) duplicates: usize,
    pub(crate) payload: u64,
    pub(crate) control: u64,
}

/// Broadcasts from `origin`, runs to quiescence, and measures it against the
/// Plumtree paper's definitions (§2.3).
pub(crate) fn measure(bus: &mut Bus, origin: Id) -> Measured {
    let (p0, c0) = (payload_sent(bus), control_sent(bus));
    let alive = bus.alive().count();
    let id = bus
        .broadcast(origin, Bytes::from_static(b"measured payload"))
        .expect("live origin");
    assert!(
        bus.run_until_quiescent(Duration::from_secs(600)),
        "broadcast did not quiesce"
    );
    let r = bus.report(&id).unwrap();
    let payload = payload_sent(bus) - p0;
    let rmr = if r.delivered >= 2 {
        payload as f64 / (r.delivered - 1) as f64 - 1.0
    } else {
        0.0
    };
    Measured {
        reliability: r.reliability(alive),
        rmr,
        ldh: r.ldh,
        duplicates: r.duplicates,
        payload,
        control: control_sent(bus) - c0,
    }
}

/// Asserts the active views of live nodes are symmetric, bounded, and free of
/// the node itself and of dead nodes; returns the mean active view size.
pub(crate) fn check_views(bus: &Bus, active_max: usize, passive_max: usize) -> f64 {
    let mut total = 0usize;
    let mut count = 0usize;
    for a in bus.alive() {
        let node = bus.node(a).unwrap();
        let active = node.active_view();
        let passive = node.passive_view();
        assert!(
            active.len() <= active_max,
            "node {a} active view {} > {active_max}",
            active.len()
        );
        assert!(
            passive.len() <= passive_max,
            "node {a} passive view {} > {passive_max}",
            passive.len()
        );
        assert!(!active.contains(&a) && !passive.contains(&a), "node {a} holds itself");
        for p in &active {
            assert!(!passive.contains(p), "node {a} holds {p} in both views");
            assert!(bus.is_alive(*p), "node {a} keeps dead {p} active");
            assert!(
                bus.node(*p).unwrap().active_view().contains(&a),
                "asymmetric: {a} has {p} but not back"
            );
        }
        total += active.len();
        count += 1;
    }
    total as f64 / count.max(1) as f64
}
