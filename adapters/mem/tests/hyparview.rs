//! HyParView on the bus at 1,000 nodes (issue: "Tests on the bus").

mod common;

use common::{check_views, overlay};
use epidemic_core::Duration;
use epidemic_core::membership::hyparview;
use epidemic_core::node::Config;
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
