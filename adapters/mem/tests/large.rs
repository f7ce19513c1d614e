//! Objects of any size the store allows converge: siblings merged from many
//! writers grow past a broadcast payload and past a whole frame, and
//! anti-entropy still carries them, in parts.

use bytes::Bytes;
use epidemic_core::Duration;
use epidemic_core::metadata::FullPrefix;
use epidemic_core::node::Config;
use epidemic_mem::{Bus, BusConfig, Id};

fn prefix() -> FullPrefix {
    FullPrefix::new("large", "")
}

/// `writers` of `n` settled mesh nodes each put a `len`-byte value to one
/// key at the same instant, while node `n - 1` is down; it then restarts
/// with an empty disk. Returns the bus once every node holds the same
/// store, and the virtual time that took after the restart.
fn concurrent_large_writes(n: usize, writers: usize, len: usize, seed: u64) -> (Bus, Duration) {
    let config = Config::mesh(n);
    let mut bus = Bus::new(BusConfig::seeded(seed));
    bus.add_nodes(n, &config);
    for id in 1..n as Id {
        bus.join(id, [0]);
    }
    bus.run_for(Duration::from_secs(30));
    let down = (n - 1) as Id;
    bus.crash(down);
    let p = prefix();
    for w in 0..writers as Id {
        let value = Bytes::from(vec![w as u8; len]);
        bus.with_node(w, |node, now| node.put(now, &p, b"k", value, None))
            .expect("live")
            .expect("a value within max_value_len");
    }
    bus.run_for(Duration::from_secs(5));
    bus.restart(down, [0]);
    let start = bus.now();
    for _ in 0..1200 {
        let hashes: Vec<_> = bus.alive().map(|i| bus.node(i).unwrap().metadata_hash()).collect();
        if hashes.windows(2).all(|w| w[0] == w[1]) {
            let took = bus.now() - start;
            return (bus, took);
        }
        bus.run_for(Duration::from_millis(500));
    }
    panic!("{writers} writers of {len} bytes: no convergence within 10 minutes");
}

fn assert_every_value_everywhere(bus: &Bus, writers: usize, len: usize) {
    for id in bus.alive() {
        let read = bus.node(id).unwrap().get(&prefix(), b"k").expect("held");
        let mut live: Vec<u8> = read.live().map(|v| v[0]).collect();
        live.sort_unstable();
        assert_eq!(
            live,
            (0..writers as u8).collect::<Vec<_>>(),
            "node {id}: every writer's value"
        );
        assert!(read.live().all(|v| v.len() == len));
    }
}

#[test]
fn twelve_writers_of_64_kib_converge_and_a_restarted_node_catches_up() {
    // 768 KiB of siblings: over the 256 KiB payload and the 512 KiB repair budget.
    let (bus, took) = concurrent_large_writes(13, 12, 64 * 1024, 21);
    println!("12 x 64 KiB siblings: converged {took:?} after the restart");
    assert_every_value_everywhere(&bus, 12, 64 * 1024);
    let split: u64 = bus
        .alive()
        .map(|i| bus.node(i).unwrap().stats().metadata.split_objects)
        .sum();
    assert!(split > 0, "the object went in parts");
}

#[test]
fn siblings_larger_than_a_frame_converge() {
    // 20 x 64 KiB = 1.25 MiB of siblings, larger than the 1 MiB frame.
    let (bus, took) = concurrent_large_writes(21, 20, 64 * 1024, 22);
    println!("20 x 64 KiB siblings: converged {took:?} after the restart");
    assert_every_value_everywhere(&bus, 20, 64 * 1024);
}
