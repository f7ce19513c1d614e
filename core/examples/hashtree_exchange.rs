//! What a hash-tree exchange costs at a million keys.
//!
//! Builds a tree of N = 1,000,000 keys, copies it, makes k differences in
//! the copy (a mix of keys missing on either side and changed values), and
//! runs the exchange to completion with every message postcard-encoded and
//! decoded on the other side, as a node would. Prints, per k, the rounds,
//! messages, bytes (postcard bodies; a wire frame adds a 2-byte header to
//! each) and wall time, for the default shape and for two alternatives, so
//! the choice of default can be checked.
//!
//! Run: `cargo run --release -p epidemic-core --example hashtree_exchange`

use std::time::Instant;

use epidemic_core::hashtree::{Config, Digest, Exchange, HashTree, MAX_MESSAGE_LEN, Message, Step, respond};
use epidemic_core::rng;
use epidemic_core::wire::{self, DEFAULT_MAX_FRAME};
use rand::Rng;

const N: u32 = 1_000_000;

/// A metadata-style key: prefix, subprefix and name, ~20 bytes.
fn key(i: u32) -> Vec<u8> {
    format!("users/profile/{i:08}").into_bytes()
}

/// The message's postcard encoding: what a node puts in a frame's body.
fn encode(message: &Message) -> Vec<u8> {
    let body = postcard::to_allocvec(message).expect("every message encodes");
    assert!(body.len() <= MAX_MESSAGE_LEN);
    assert!(body.len() + wire::HEADER_LEN <= DEFAULT_MAX_FRAME);
    body
}

fn decode(body: &[u8]) -> Message {
    wire::decode_body(body).expect("valid body")
}

struct Outcome {
    rounds: u32,
    messages: usize,
    bytes: usize,
    largest: usize,
    found: usize,
    micros: u128,
}

fn exchange(a: &HashTree, b: &HashTree) -> Outcome {
    let start = Instant::now();
    let (mut exchange, mut request) = Exchange::start(a);
    let (mut messages, mut bytes, mut largest) = (0, 0, 0);
    let diff = loop {
        let out = encode(&request);
        let reply = respond(b, &decode(&out)).expect("valid request");
        let back = encode(&reply);
        messages += 2;
        bytes += out.len() + back.len();
        largest = largest.max(out.len()).max(back.len());
        match exchange.handle(a, decode(&back)).expect("valid reply") {
            Step::Send(next) => request = next,
            Step::Done(diff) => break diff,
        }
    };
    assert!(diff.complete);
    Outcome {
        rounds: exchange.rounds(),
        messages,
        bytes,
        largest,
        found: diff.len(),
        micros: start.elapsed().as_micros(),
    }
}

/// Resident memory in MiB, where the platform says (Linux).
fn rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

const SHAPES: [(&str, u32, u32); 3] = [
    ("default 65,536 × 256", 1 << 16, 256),
    ("Riak 2^20 × 1,024", 1 << 20, 1024),
    ("small 1,024 × 32", 1024, 32),
];

fn main() {
    // Each shape runs in a process of its own, so that the memory figure is
    // that tree's alone.
    if let Some(shape) = std::env::args().nth(1).and_then(|a| a.parse::<usize>().ok()) {
        run_shape(shape);
        return;
    }
    println!("N = {N} keys of 22 bytes; k differences: 1/3 missing locally, 1/3 missing remotely, 1/3 changed");
    println!();
    println!(
        "| shape | insert N | update | RSS of tree | k | rounds | messages | bytes | largest message | exchange time |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for shape in 0..SHAPES.len() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .arg(shape.to_string())
            .output()
            .expect("run one shape");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        print!("{}", String::from_utf8_lossy(&out.stdout));
    }
}

fn run_shape(shape: usize) {
    let (name, segments, width) = SHAPES[shape];
    let config = Config::new(segments, width).unwrap();
    let keys: Vec<Vec<u8>> = (0..N).map(key).collect();
    let rss_before = rss_mib();
    let started = Instant::now();
    let mut a = HashTree::new(config).unwrap();
    for (i, k) in keys.iter().enumerate() {
        a.insert(k, Digest::from_u64(i as u64)).unwrap();
    }
    let inserted = started.elapsed();
    a.update();
    let updated = started.elapsed() - inserted;
    let rss = match (rss_before, rss_mib()) {
        (Some(before), Some(after)) => format!("{:.0} MiB", after - before),
        _ => "n/a".to_string(),
    };
    for k in [1u32, 10, 1000] {
        let mut b = a.clone();
        let mut rng = rng::from_seed(u64::from(k));
        let mut touched = std::collections::BTreeSet::new();
        while touched.len() < k as usize {
            let i = rng.random_range(0..N);
            if !touched.insert(i) {
                continue;
            }
            match touched.len() % 3 {
                0 => {
                    b.insert(&key(N + i), Digest::from_u64(7)).unwrap();
                }
                1 => {
                    b.remove(&key(i));
                }
                _ => {
                    b.insert(&key(i), Digest::from_u64(u64::MAX - u64::from(i))).unwrap();
                }
            }
        }
        b.update();
        let o = exchange(&a, &b);
        assert_eq!(o.found, k as usize);
        println!(
            "| {name} | {:.0} ms | {:.0} ms | {rss} | {k} | {} | {} | {} | {} | {:.2} ms |",
            inserted.as_secs_f64() * 1e3,
            updated.as_secs_f64() * 1e3,
            o.rounds,
            o.messages,
            o.bytes,
            o.largest,
            o.micros as f64 / 1000.0
        );
    }
}
