//! Anti-entropy repair of a node that missed `k` of N = 100,000 keys.
//!
//! `cargo run --release -p epidemic-mem --example metadata_repair [nodes] [N]`
//!
//! A mesh of `nodes` (default 2): every node starts (through `restore`, as
//! after a restart) with the same N objects, except the last node, which
//! lacks `k` of them. The nodes join at time zero; nothing is written, so
//! only anti-entropy can repair. For k = 1, 100 and 10,000 it prints the
//! virtual time until every node holds the same store (from the join, and
//! from the first exchange, whose tick has a random phase of up to 10 s),
//! the exchanges and hash-tree rounds it took, and the anti-entropy frames
//! and bytes sent (frame headers included).

use bytes::Bytes;
use epidemic_core::metadata::FullPrefix;
use epidemic_core::node::{Config, Event, Node};
use epidemic_core::{Duration, Instant};
use epidemic_mem::{Bus, BusConfig, Id};
use rand::SeedableRng;
use rand::seq::index::sample;
use rand_xoshiro::Xoshiro256PlusPlus;
use std::collections::BTreeSet;

fn key(i: usize) -> Vec<u8> {
    format!("{i:08}").into_bytes()
}

/// N encoded objects, as a node persisted them.
fn objects(prefix: &FullPrefix, n: usize) -> Vec<(Vec<u8>, Bytes)> {
    let mut source: Node<Id> = Node::new(1000, Config::default());
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let k = key(i);
        source
            .put(
                Instant::from_micros(i as u64),
                prefix,
                &k,
                Bytes::from(format!("value of key {i}")),
                None,
            )
            .expect("small put");
        while let Some(e) = source.poll_event() {
            if let Event::Metadata(epidemic_core::metadata::Event::Persist(record)) = e {
                source.persisted(Instant::ZERO, record.id);
                out.push((k.clone(), record.object.expect("a put")));
            }
        }
    }
    out
}

fn main() {
    let arg = |i: usize, default: usize| std::env::args().nth(i).and_then(|s| s.parse().ok()).unwrap_or(default);
    let nodes = arg(1, 2).max(2);
    let n = arg(2, 100_000);
    let prefix = FullPrefix::new("users", "profile");
    let started = std::time::Instant::now();
    let all = objects(&prefix, n);
    eprintln!("built {n} objects in {:.2?}", started.elapsed());
    println!(
        "| k | converged after join | after first exchange | exchanges | tree rounds | frames | bytes | repaired | wall |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for k in [1usize, 100, 10_000] {
        let mut bus = Bus::new(BusConfig::seeded(k as u64));
        bus.add_nodes(nodes, &Config::mesh(nodes));
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7 + k as u64);
        let missing: BTreeSet<usize> = sample(&mut rng, n, k).into_iter().collect();
        let lagging = (nodes - 1) as Id;
        for id in 0..nodes as Id {
            bus.with_node(id, |node, now| {
                for (i, (key, object)) in all.iter().enumerate() {
                    if id == lagging && missing.contains(&i) {
                        continue;
                    }
                    node.restore(now, &prefix, key, object).expect("valid object");
                }
            });
        }
        let wall = std::time::Instant::now();
        let start = bus.now();
        for id in 1..nodes as Id {
            bus.join(id, [0]);
        }
        let mut first_exchange = None;
        let same = |bus: &Bus| {
            let h = bus.node(0).unwrap().metadata_hash();
            bus.alive().all(|i| bus.node(i).unwrap().metadata_hash() == h)
        };
        while !same(&bus) {
            bus.run_for(Duration::from_millis(1));
            if first_exchange.is_none()
                && bus
                    .alive()
                    .any(|i| bus.node(i).unwrap().stats().metadata.exchanges_started > 0)
            {
                first_exchange = Some(bus.now());
            }
            assert!(bus.now() - start < Duration::from_secs(600), "k = {k} did not converge");
        }
        let took = bus.now() - start;
        let since_exchange = first_exchange.map_or(took, |t| bus.now() - t);
        let (mut exchanges, mut rounds, mut frames, mut bytes, mut repaired) = (0, 0, 0, 0, 0);
        for i in bus.alive() {
            let s = bus.node(i).unwrap().stats();
            exchanges += s.metadata.exchanges_completed;
            rounds += s.metadata.exchange_rounds;
            frames += s.sent.anti_entropy.messages;
            bytes += s.sent.anti_entropy.bytes;
            repaired += s.metadata.repaired;
        }
        println!(
            "| {k} | {} ms | {} ms | {exchanges} | {rounds} | {frames} | {bytes} | {repaired} | {:.0?} |",
            took.as_millis(),
            since_exchange.as_millis(),
            wall.elapsed()
        );
        assert_eq!(repaired, k as u64, "exactly the missing keys were repaired");
    }
}
