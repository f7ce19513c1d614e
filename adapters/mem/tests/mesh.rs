//! Full-mesh membership with Plumtree on the bus, at 5, 10 and 40 nodes.

mod common;

use common::{Measured, measure};
use epidemic_core::Duration;
use epidemic_core::broadcast::mesh_eager_fanout;
use epidemic_core::node::Config;
use epidemic_mem::{Bus, BusConfig};

/// `n` mesh nodes; every node joins through node 0, then gossip runs.
fn mesh(n: usize, seed: u64) -> Bus {
    let mut bus = Bus::new(BusConfig::seeded(seed));
    bus.add_nodes(n, &Config::mesh(n));
    for id in 1..n as u32 {
        bus.join(id, [0]);
    }
    bus.run_for(Duration::from_secs(30));
    bus
}

fn run(n: usize) {
    let mut bus = mesh(n, 60 + n as u64);
    let all: Vec<u32> = (0..n as u32).collect();
    for id in bus.alive().collect::<Vec<_>>() {
        let node = bus.node(id).unwrap();
        assert_eq!(node.members(), all, "node {id} knows every member");
        assert_eq!(node.active_view().len(), n - 1, "node {id} reaches every other member");
    }
    // Warm-up: one broadcast per node so each sender-based tree forms.
    let warmup: Vec<Measured> = (0..n as u32).map(|o| measure(&mut bus, o)).collect();
    let runs: Vec<Measured> = (0..n as u32).map(|o| measure(&mut bus, o)).collect();
    let mean = |v: &[Measured]| v.iter().map(|m| m.rmr).sum::<f64>() / v.len() as f64;
    let max_ldh = runs.iter().map(|m| m.ldh).max().unwrap();
    println!(
        "mesh n={n}: eager fanout={} warm-up mean RMR={:.3}, measured mean RMR={:.3}, max LDH={max_ldh}",
        mesh_eager_fanout(n),
        mean(&warmup),
        mean(&runs)
    );
    for m in warmup.iter().chain(&runs) {
        assert_eq!(m.reliability, 100.0);
        assert_eq!(m.duplicates, 0);
    }
    assert!(mean(&runs) <= mean(&warmup), "trees do not get worse after warm-up");

    // Operator removes the last member: every node converges without it.
    let gone = n as u32 - 1;
    bus.with_node(0, |node, now| node.remove_member(now, gone));
    bus.run_for(Duration::from_secs(30));
    for id in 0..gone {
        assert!(
            !bus.node(id).unwrap().members().contains(&gone),
            "node {id} still lists {gone}"
        );
    }
}

#[test]
fn mesh_of_5() {
    run(5);
}

#[test]
fn mesh_of_10() {
    run(10);
}

#[test]
fn mesh_of_40() {
    run(40);
}

#[test]
fn a_crashed_member_stays_a_member_and_is_reached_again_after_restart() {
    let mut bus = mesh(10, 7);
    // 4 broadcasts before it crashes: its peers remember that id as seen.
    assert_eq!(measure(&mut bus, 4).reliability, 100.0);
    bus.crash(4);
    bus.run_for(Duration::from_secs(10));
    assert!(
        bus.node(0).unwrap().members().contains(&4),
        "membership is operator-controlled"
    );
    assert!(
        !bus.node(0).unwrap().active_view().contains(&4),
        "but 4 is not a neighbour while down"
    );
    let m = measure(&mut bus, 0);
    assert_eq!(m.reliability, 100.0, "every live node delivers");
    bus.restart(4, [0]);
    bus.run_for(Duration::from_secs(30));
    assert_eq!(
        bus.node(4).unwrap().members().len(),
        10,
        "the restarted node relearns the members"
    );
    // Its first broadcast after the restart must not reuse the old id, or
    // every peer would drop it as a duplicate.
    let m = measure(&mut bus, 4);
    assert_eq!(m.reliability, 100.0, "a restarted node's broadcasts are delivered");
}

/// Every member is in some peer's eager or lazy set for every root, so
/// every broadcast reaches every member, including from a member the
/// operator adds later. With the lazy set capped at one (Riak's fanout) and
/// eager sets sampled at random, a member could be in nobody's sets for a
/// root and never hear that root's broadcasts (the chaos sweep's seed 25:
/// 7 members, add member 8 via 4, node 0 misses every broadcast of 8).
#[test]
fn every_member_hears_every_root_including_an_added_one() {
    let mut missed = Vec::new();
    for seed in 0..24u64 {
        let n = 7 + (seed % 4) as usize;
        let mut bus = Bus::new(BusConfig::seeded(900 + seed));
        // Room for one more than the starting members.
        bus.add_nodes(n + 1, &Config::mesh(n));
        for id in 1..n as u32 {
            bus.join(id, [0]);
        }
        bus.run_for(Duration::from_secs(30));
        let added = n as u32;
        bus.with_node(0, |node, now| node.add_member(now, added));
        bus.join(added, [(seed % n as u64) as u32]);
        bus.run_for(Duration::from_secs(30));
        for origin in 0..=added {
            for _ in 0..3 {
                let m = measure(&mut bus, origin);
                if m.reliability < 100.0 {
                    missed.push((seed, origin, m.reliability));
                }
                assert_eq!(m.duplicates, 0);
            }
        }
    }
    assert!(
        missed.is_empty(),
        "(seed, origin, reliability) short of 100%: {missed:?}"
    );
}

/// A member the operator removed while it was down, restarted wiped and
/// joined again, is a member again everywhere: its new life's adds carry
/// dots its old life never used. Before writers in the member set carried
/// the incarnation, the new life restarted its counter at 1, every peer
/// read its adds as the old, removed ones, and node 7 was reachable from no
/// one (the chaos sweep's seed 114).
#[test]
fn a_removed_member_that_rejoins_wiped_is_a_member_again() {
    let mut bus = Bus::new(BusConfig::seeded(114));
    bus.add_nodes(8, &Config::mesh(8));
    for id in 1..7 {
        bus.join(id, [0]);
    }
    bus.run_for(Duration::from_secs(10));
    bus.with_node(6, |n, now| n.add_member(now, 7));
    bus.join(7, [6]);
    bus.run_for(Duration::from_secs(10));
    bus.crash(7);
    bus.with_node(4, |n, now| n.remove_member(now, 7));
    bus.run_for(Duration::from_secs(10));
    assert!(!bus.node(0).unwrap().members().contains(&7), "the removal spread");
    bus.restart(7, [5]);
    bus.run_for(Duration::from_secs(30));
    for id in 0..8 {
        let node = bus.node(id).unwrap();
        assert_eq!(node.members(), (0..8).collect::<Vec<u32>>(), "node {id}'s members");
    }
    for origin in [0, 7] {
        for _ in 0..3 {
            assert_eq!(measure(&mut bus, origin).reliability, 100.0, "from {origin}");
        }
    }
}

/// A hostile peer sends member sets whose clocks name thousands of fresh
/// writers. Before, each merged, the node's own state passed a frame after
/// about 13 of them, and it never gossiped membership again (only
/// `encode_failures` moved). Now a state over `max_writers`, alone or
/// merged, is refused: the node's frames keep encoding and membership
/// changes keep spreading.
#[test]
fn a_peer_cannot_grow_the_member_set_clock_without_bound() {
    use epidemic_core::crdt::OrSwot;
    use epidemic_core::membership::mesh;
    use epidemic_core::node::Message;

    let mut bus = mesh(4, 77);
    let members = |bus: &Bus, id: u32| bus.node(id).unwrap().members();
    assert_eq!(members(&bus, 0), [0, 1, 2, 3]);
    let hostile = |first_writer: u32, writers: u32| {
        let mut set: OrSwot<(u32, u32), u32> = OrSwot::new();
        for w in first_writer..first_writer + writers {
            set.add((1000 + w, 0), 1);
        }
        let mut frame = Vec::new();
        Message::Mesh(mesh::Message::State { members: set })
            .encode_into(usize::MAX, &mut frame)
            .unwrap();
        frame
    };
    // One state naming 20,000 writers: refused outright, as a bad frame.
    let frame = hostile(0, 20_000);
    let refused = bus.with_node(0, |n, now| n.handle_frame(now, 1, &frame)).unwrap();
    assert!(refused.is_err(), "a 20,000-writer state was accepted");
    // Thirteen states of 1,000 fresh writers each: valid alone, refused
    // once their union passes 4,096.
    for round in 0..13 {
        let frame = hostile(100_000 + round * 1_000, 1_000);
        let _ = bus.with_node(0, |n, now| n.handle_frame(now, 1, &frame));
        bus.run_for(Duration::from_millis(200));
    }
    bus.run_for(Duration::from_secs(10));
    for id in 0..4 {
        let s = bus.node(id).unwrap().stats();
        assert_eq!(s.encode_failures, 0, "node {id} failed to encode a frame");
    }
    // Membership still spreads: a fifth node joins and everyone sees it.
    bus.add_nodes(1, &Config::mesh(5));
    bus.join(4, [2]);
    bus.run_for(Duration::from_secs(30));
    for id in 0..5 {
        assert_eq!(members(&bus, id), [0, 1, 2, 3, 4], "node {id}");
    }
}
