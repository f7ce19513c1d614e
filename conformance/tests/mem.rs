//! The conformance suite on the in-memory bus (virtual time, 20 nodes),
//! plus what only the bus can do: partitions.

use epidemic_conformance::mem::MemCluster;
use epidemic_conformance::scenarios::{all_delivered, connected, form, settle};
use epidemic_conformance::{Cluster, payload};
use epidemic_core::Duration;
use std::time::Duration as StdDuration;

epidemic_conformance::suite!(MemCluster::new(7));

/// A partition into two halves: each side keeps delivering within itself;
/// once healed, the overlay is one again and broadcasts reach everyone.
#[test]
fn partition_and_heal() {
    let mut c = MemCluster::new(11);
    let nodes = form(&mut c, 20);
    // A few shuffle periods fill the passive views, from which each side
    // will rebuild its own overlay.
    c.bus().run_for(Duration::from_secs(60));
    let half = |id: u32| u32::from(id >= 10);
    c.bus().partition(half);
    let left: Vec<usize> = (0..10).collect();
    let right: Vec<usize> = (10..20).collect();
    // Each side heals into its own overlay.
    assert!(settle(&mut c, &left) && settle(&mut c, &right));
    let l = c.broadcast(0, payload("left", 0));
    let r = c.broadcast(15, payload("right", 0));
    assert!(all_delivered(&mut c, &left, std::slice::from_ref(&l)));
    assert!(all_delivered(&mut c, &right, std::slice::from_ref(&r)));
    c.bus().run_for(Duration::from_secs(5));
    assert!(
        right.iter().all(|&n| !c.has_delivered(n, &l)),
        "nothing crosses the partition"
    );
    assert!(
        left.iter().all(|&n| !c.has_delivered(n, &r)),
        "nothing crosses the partition"
    );

    c.bus().heal();
    // HyParView's lost-peer probes (one per shuffle period) reconnect the halves.
    assert!(
        c.wait_until(StdDuration::from_secs(600), |c| connected(c, &nodes)),
        "the overlay did not heal"
    );
    assert!(settle(&mut c, &nodes));
    let after = c.broadcast(3, payload("healed", 0));
    assert!(all_delivered(&mut c, &nodes, &[after]));
    assert_eq!(c.duplicates(), 0);
}
