//! The conformance suite on the in-memory bus (virtual time, 20 nodes),
//! plus what only the bus can do: partitions.

use epidemic_conformance::mem::MemCluster;
use epidemic_conformance::scenarios::{all_delivered, connected, form, settle};
use epidemic_conformance::{Cluster, payload};
use epidemic_core::Duration;
use std::time::Duration as StdDuration;

epidemic_conformance::suite!(MemCluster::new(7));
epidemic_conformance::mesh_suite!(MemCluster::mesh(7));

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

/// The user handler on the bus with a node cut off by a partition rather
/// than crashed: it keeps its engine and its store, misses the writes made
/// while it is cut off, and gets them through the handler's exchange once
/// the partition heals.
#[test]
fn a_user_handler_repairs_a_partitioned_node_by_its_exchange() {
    use epidemic_conformance::lww;
    let mut c = MemCluster::new(13);
    let nodes = form(&mut c, 20);
    let maps: Vec<lww::Shared> = (0..20).map(|_| lww::Shared::default()).collect();
    for &ix in &nodes {
        let handler = Box::new(lww::LwwHandler::new(maps[ix].clone()));
        assert!(c.register_channel(ix, lww::CHANNEL, handler, lww::config()));
    }
    let write = |c: &mut MemCluster, ix: usize, key: &str, value: &str| {
        let (id, payload) = maps[ix].lock().unwrap().write(ix as u64, key, value);
        assert!(c.broadcast_on(ix, lww::CHANNEL, id, payload));
    };
    let agree = |among: &[usize], key: &str, value: &str| {
        among
            .iter()
            .all(|&i| maps[i].lock().unwrap().get(key).is_some_and(|e| e.value == value))
    };
    write(&mut c, 3, "before", "old");
    assert!(c.wait_until(StdDuration::from_secs(10), |_| agree(&nodes, "before", "old")));
    // Shuffles fill the passive views the others heal from.
    c.bus().run_for(Duration::from_secs(60));
    let cut = 5;
    c.bus().partition(|id| u32::from(id == cut as u32));
    let rest: Vec<usize> = nodes.iter().copied().filter(|&i| i != cut).collect();
    assert!(c.wait_until(StdDuration::from_secs(30), |c| {
        c.neighbors(cut).is_empty() && rest.iter().all(|&i| !c.neighbors(i).contains(&cut))
    }));
    assert!(settle(&mut c, &rest), "the other nodes did not heal into one overlay");
    for (k, &ix) in [0, 9, 17].iter().enumerate() {
        write(&mut c, ix, &format!("cut-{k}"), "new");
    }
    write(&mut c, 12, "before", "overwritten");
    let ok = c.wait_until(StdDuration::from_secs(10), |_| {
        agree(&rest, "before", "overwritten") && (0..3).all(|k| agree(&rest, &format!("cut-{k}"), "new"))
    });
    assert!(ok, "the other nodes did not converge");
    c.bus().run_for(Duration::from_secs(5));
    assert!(
        maps[cut].lock().unwrap().get("cut-0").is_none(),
        "nothing crosses the partition"
    );
    c.bus().heal();
    assert!(
        c.wait_until(StdDuration::from_secs(60), |_| {
            agree(&nodes, "before", "overwritten") && (0..3).all(|k| agree(&nodes, &format!("cut-{k}"), "new"))
        }),
        "the partitioned node did not catch up"
    );
    let map = maps[cut].lock().unwrap();
    for key in ["before", "cut-0", "cut-1", "cut-2"] {
        assert_eq!(map.get(key).map(|e| e.source), Some(lww::Source::Exchange), "{key}");
    }
}
