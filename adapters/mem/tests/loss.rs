//! Plumtree with the default configuration on lossy links, over the whole
//! stack and with churn: every broadcast still reaches every node, and what
//! that costs in payload messages (RMR). Loss alone, for both tree modes and
//! down to the repair path, is tested once, at the engine, in
//! `core/src/broadcast/tests/network.rs`.

mod common;

use common::{measure, overlay};
use epidemic_core::Duration;
use epidemic_core::node::Config;

/// 500 nodes, 20 origins, a lossless warm-up (the paper measures the stable
/// state), then 100 broadcasts with 20% of frames lost and churn: every
/// tenth broadcast one node crashes and, from the second time on, the one
/// that crashed before restarts with fresh state. Membership gets five seconds to repair before the next
/// broadcast; every node alive when a broadcast starts must deliver it.
#[test]
fn default_config_delivers_everything_at_20_percent_loss_with_churn() {
    let mut bus = overlay(500, 47, &Config::default(), Duration::from_secs(60));
    let origins: Vec<u32> = (0..20).map(|i| (i * 37 + 1) % 500).collect();
    for &o in &origins {
        measure(&mut bus, o);
    }
    bus.set_drop_probability(0.2);
    let mut crashed: Option<u32> = None;
    let mut runs = Vec::new();
    for (i, &o) in origins.iter().cycle().take(100).enumerate() {
        if i % 10 == 5 {
            let victim = 2 + (i as u32 * 53) % 490;
            bus.crash(victim);
            if let Some(back) = crashed.replace(victim) {
                bus.restart(back, [origins[0]]);
            }
            bus.run_for(Duration::from_secs(5));
        }
        runs.push(measure(&mut bus, o));
    }
    assert!(bus.dropped_frames > 0);
    let min_rel = runs.iter().map(|m| m.reliability).fold(100.0, f64::min);
    let mean_rmr = runs.iter().map(|m| m.rmr).sum::<f64>() / runs.len() as f64;
    println!("default config, 20% loss and churn, 500 nodes: min reliability {min_rel:.2}%, mean RMR {mean_rmr:.4}");
    assert_eq!(min_rel, 100.0, "every live node delivered every broadcast");
    assert!(runs.iter().all(|m| m.duplicates == 0));
}
