//! HyParView on the bus: 1,000 nodes (issue: "Tests on the bus"), and no
//! node left outside the overlay after the joins settle.

mod common;

use common::{check_views, overlay};
use epidemic_core::Duration;
use epidemic_core::membership::hyparview;
use epidemic_core::node::{Config, MembershipConfig};
use epidemic_mem::{Bus, BusConfig, Id, Latency};
use proptest::prelude::*;
use proptest::test_runner::{RngAlgorithm, RngSeed};
use rand::SeedableRng;
use rand::seq::SliceRandom;

#[test]
fn thousand_nodes_form_one_symmetric_bounded_overlay_and_heal_after_half_crash() {
    let config = Config::default();
    let hv = hyparview::Config::default();
    let shuffle = hv.shuffle_interval;
    let mut bus = overlay(1000, 11, &config, shuffle.saturating_mul(6));

    let components = bus.components();
    let mean_active = check_views(&bus, hv.active_view_capacity, hv.passive_view_capacity);
    let mean_passive: f64 = bus
        .alive()
        .map(|i| bus.node(i).unwrap().passive_view().len() as f64)
        .sum::<f64>()
        / 1000.0;
    println!(
        "hyparview n=1000: components={} mean_active={mean_active:.2} mean_passive={mean_passive:.2}",
        components.len()
    );
    assert_eq!(components.len(), 1, "overlay is connected");
    assert!(mean_active > 4.0, "active views are nearly full: {mean_active:.2}");

    // Crash half the nodes at one instant.
    let mut ids: Vec<u32> = bus.alive().collect();
    ids.shuffle(&mut rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(5));
    for &id in &ids[..500] {
        bus.crash(id);
    }
    bus.run_for(shuffle.saturating_mul(2));
    let components = bus.components();
    let mean_active = check_views(&bus, hv.active_view_capacity, hv.passive_view_capacity);
    println!(
        "hyparview after 50% crash + 2 shuffle periods: components={} largest={} mean_active={mean_active:.2}",
        components.len(),
        components[0].len()
    );
    assert_eq!(
        components.len(),
        1,
        "survivors form one component within 2 shuffle periods"
    );
    assert_eq!(components[0].len(), 500);
}

#[test]
fn overlay_is_deterministic_by_seed() {
    let run = |seed| {
        let bus = overlay(60, seed, &Config::default(), Duration::from_secs(30));
        bus.alive()
            .map(|i| bus.node(i).unwrap().active_view())
            .collect::<Vec<_>>()
    };
    assert_eq!(run(3), run(3));
    assert_ne!(run(3), run(4));
}

/// Latency as `epidemic sim` models it by default: every hop takes 5 ms.
const FIXED: Latency = Latency::Fixed(Duration::from_millis(5));
/// A wide range (`--latency 10..100`), under which joins and evictions
/// interleave in every order.
const RANGED: Latency = Latency::Uniform {
    min: Duration::from_millis(10),
    max: Duration::from_millis(100),
};

/// The overlay `epidemic sim` grows (`cli/src/sim/cluster.rs`): default
/// HyParView, every node joins through a random earlier one 1 ms apart,
/// failures detected at once, then `settle` shuffle intervals (the
/// simulator's are three).
fn sim_overlay(n: usize, seed: u64, latency: Latency, settle: u64) -> Bus {
    let hv = hyparview::Config::default();
    let settle = hv.shuffle_interval.saturating_mul(settle);
    let mut config = Config::default();
    config.membership = MembershipConfig::HyParView(hv);
    let mut bus_config = BusConfig::seeded(seed);
    bus_config.latency = latency;
    bus_config.detection_delay = Duration::ZERO;
    let mut bus = Bus::new(bus_config);
    bus.add_nodes(n, &config);
    bus.join_each_via_random_earlier(Duration::from_millis(1));
    bus.run_for(settle);
    bus
}

/// Every small component, with each member's active and passive view
/// sizes, for the failure message.
fn islands(components: &[Vec<Id>], bus: &Bus) -> Vec<Vec<(Id, usize, usize)>> {
    components
        .iter()
        .skip(1)
        .map(|c| {
            c.iter()
                .map(|&i| {
                    let node = bus.node(i).unwrap();
                    (i, node.active_view().len(), node.passive_view().len())
                })
                .collect()
        })
        .collect()
}

fn assert_one_component(n: usize, seed: u64, latency: Latency, settle: u64) {
    // Views are not checked for symmetry here: at an arbitrary instant a
    // `Connect` or `Disconnect` may be in flight.
    let bus = sim_overlay(n, seed, latency, settle);
    let components = bus.components();
    assert_eq!(
        components.len(),
        1,
        "{n} nodes, seed {seed}, {latency:?}: islands (id, active, passive) {:?}",
        islands(&components, &bus)
    );
}

/// Reported: `epidemic sim stable --nodes 3000` left a pair of nodes, each
/// the other's only neighbor, that only ever sent low-priority requests.
#[test]
fn sim_overlay_of_3000_nodes_leaves_no_pair_behind() {
    assert_one_component(3000, 1, FIXED, 3);
}

/// Reported: `epidemic sim stable --nodes 10000 --latency 10..100` left a
/// clique of nine nodes whose views were (nearly) full of each other, and
/// two pairs.
#[test]
fn sim_overlay_of_10000_nodes_under_ranged_latency_leaves_no_clique_behind() {
    assert_one_component(10_000, 1, RANGED, 3);
}

/// Sizes from 3 to 5,000, smaller ones more often (a case costs about its
/// size).
fn cluster_size() -> impl Strategy<Value = usize> {
    prop_oneof![
        4 => 3usize..=60,
        3 => 61usize..=600,
        1 => 601usize..=5000,
    ]
}

proptest! {
    // Fixed seed and no regression file: the same cases on every run.
    #![proptest_config(ProptestConfig {
        cases: 64,
        max_shrink_iters: 32,
        failure_persistence: None,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(0x4879_5061_7256_6965),
        ..ProptestConfig::default()
    })]

    /// After the joins settle, the active views form one connected overlay,
    /// whatever the size and under both latency models. Components cut off
    /// by the joins merge within two shuffle intervals in nearly every case
    /// (up to four in 600 random cases tried); six leave a margin.
    #[test]
    fn joins_settle_into_one_component(n in cluster_size(), seed in any::<u64>(), ranged in any::<bool>()) {
        assert_one_component(n, seed, if ranged { RANGED } else { FIXED }, 6);
    }
}

/// A small cluster as `epidemic sim chaos` runs it: HyParView sized for
/// seven nodes (an active view of three), failures detected at once.
fn small_bus(seed: u64, n: usize) -> Bus {
    small_bus_detecting_after(seed, n, Duration::ZERO)
}

/// [`small_bus`] whose links report a failure `detection` after it.
fn small_bus_detecting_after(seed: u64, n: usize, detection: Duration) -> Bus {
    let hv = hyparview::Config::for_cluster_size(7);
    let mut config = Config::default();
    config.membership = MembershipConfig::HyParView(hv);
    let mut bus_config = BusConfig::seeded(seed);
    bus_config.latency = FIXED;
    bus_config.detection_delay = detection;
    let mut bus = Bus::new(bus_config);
    bus.add_nodes(n, &config);
    bus
}

/// Nodes 1–4 join through node 0 and the overlay settles for 30 s.
fn join_four(bus: &mut Bus) {
    for id in 1..5 {
        bus.join(id, [0]);
    }
    bus.run_for(Duration::from_secs(30));
}

fn assert_connected(bus: &Bus, what: &str) {
    let components = bus.components();
    assert_eq!(
        components.len(),
        1,
        "{what}: islands (id, active, passive) {:?}",
        islands(&components, bus)
    );
}

/// A node whose only contact is crashed when it joins retries, with
/// backoff, and gets in once the contact is back.
#[test]
fn a_joiner_whose_contact_is_down_retries_until_it_is_back() {
    let mut bus = small_bus(1, 6);
    join_four(&mut bus);
    bus.crash(4);
    bus.join(5, [4]);
    bus.run_for(Duration::from_secs(60));
    assert!(bus.node(5).unwrap().active_view().is_empty(), "nobody to join yet");
    bus.restart(4, [0]);
    bus.run_for(Duration::from_secs(120));
    assert_connected(&bus, "after the contact came back");
    assert!(!bus.node(5).unwrap().active_view().is_empty());
}

/// A contact that has left answers `Disconnect { leaving }`; the joiner
/// tries again later and gets in once the contact has joined again.
#[test]
fn a_joiner_refused_by_a_contact_that_left_retries_after_it_returns() {
    let mut bus = small_bus(2, 6);
    join_four(&mut bus);
    bus.with_node(4, |n, now| n.leave(now));
    bus.run_for(Duration::from_secs(1));
    bus.join(5, [4]);
    bus.run_for(Duration::from_secs(60));
    assert!(bus.node(5).unwrap().active_view().is_empty(), "refused so far");
    bus.join(4, [0]);
    bus.run_for(Duration::from_secs(120));
    assert_connected(&bus, "after the contact joined again");
}

/// The shape of `epidemic sim chaos --seed 28`: two nodes that met while
/// partitioned from the rest, each the other's only neighbor, with empty
/// passive views. Once the partition heals, the one with a contact on the
/// other side rejoins through it.
#[test]
fn a_pair_isolated_together_with_empty_passive_views_rejoins_after_a_heal() {
    let mut bus = small_bus(3, 7);
    join_four(&mut bus);
    bus.partition(|id| u32::from(id >= 5));
    bus.join(5, [0]);
    bus.run_for(Duration::from_secs(10));
    bus.join(6, [5]);
    bus.run_for(Duration::from_secs(10));
    for (a, b) in [(5, 6), (6, 5)] {
        let node = bus.node(a).unwrap();
        assert_eq!(node.active_view(), [b], "node {a}");
        assert!(node.passive_view().is_empty(), "node {a}");
    }
    bus.heal();
    bus.run_for(Duration::from_secs(300));
    assert_connected(&bus, "300 s after the heal");
}

/// Five nodes joined through node 0, on a bus whose links report a failure
/// only after an hour: a contact that does not answer is silent, not down.
fn cluster_with_slow_failure_detection(seed: u64) -> Bus {
    let mut bus = small_bus_detecting_after(seed, 7, Duration::from_secs(3_600));
    join_four(&mut bus);
    bus
}

/// The joiner's first contact never answers and its link is never reported
/// down: after `neighbor_timeout` the joiner moves on to the next contact
/// by itself, and is in the overlay long before any link is reported down.
/// (It used to move on only after a `LinkEvent::Down`, and stayed alone.)
#[test]
fn a_joiner_moves_on_from_a_silent_contact() {
    let mut bus = cluster_with_slow_failure_detection(4);
    bus.crash(6);
    bus.join(5, [6, 1]);
    bus.run_for(Duration::from_secs(30));
    assert!(!bus.node(5).unwrap().active_view().is_empty(), "node 5 is still alone");
    assert_connected(&bus, "30 s after joining through a silent contact");
}

/// The joiner's first contact has left and answers `Disconnect { leaving }`:
/// the joiner moves on to the next contact. (It used to stop there, with no
/// neighbour, for good.)
#[test]
fn a_joiner_moves_on_from_a_contact_that_left() {
    let mut bus = cluster_with_slow_failure_detection(5);
    bus.with_node(4, |n, now| n.leave(now));
    bus.run_for(Duration::from_secs(1));
    bus.join(5, [4, 1]);
    bus.run_for(Duration::from_secs(30));
    assert!(!bus.node(5).unwrap().active_view().is_empty(), "node 5 is still alone");
    let mut up = bus.components();
    // Node 4 left and node 6 never joined: components of their own.
    up.retain(|c| c != &vec![4] && c != &vec![6]);
    assert_eq!(up.len(), 1, "islands (id, active, passive) {:?}", islands(&up, &bus));
}

/// The joiner starts 3 s before its only contact (the README's
/// three-terminal flow with terminal 2 started first): it keeps retrying
/// and is in the overlay soon after the contact is up.
#[test]
fn a_joiner_whose_contact_comes_up_late_gets_in() {
    let mut bus = small_bus(6, 7);
    join_four(&mut bus);
    bus.crash(6);
    bus.join(5, [6]);
    bus.run_for(Duration::from_secs(3));
    bus.restart(6, [0]);
    bus.run_for(Duration::from_secs(30));
    assert!(!bus.node(5).unwrap().active_view().is_empty(), "node 5 is still alone");
    assert_connected(&bus, "30 s after the contact came up");
}
