//! Hash-tree costs: inserting keys (with the update that rehashes them) and
//! a full exchange between two trees of 1,000,000 keys.
//!
//! Run: `cargo bench -p epidemic-core --bench hashtree`

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use epidemic_core::hashtree::{Digest, Exchange, HashTree, Step, respond};

const N: u32 = 1_000_000;

fn key(i: u32) -> Vec<u8> {
    format!("users/profile/{i:08}").into_bytes()
}

fn full_tree(keys: &[Vec<u8>]) -> HashTree {
    let mut t = HashTree::default();
    for (i, k) in keys.iter().enumerate() {
        t.insert(k, Digest::from_u64(i as u64)).unwrap();
    }
    t.update();
    t
}

fn insert(c: &mut Criterion) {
    let mut group = c.benchmark_group("hashtree/insert");
    // Bulk load: 100,000 keys into an empty tree, then one update.
    let keys: Vec<Vec<u8>> = (0..N).map(key).collect();
    let some = &keys[..100_000];
    group.throughput(Throughput::Elements(some.len() as u64));
    group.bench_function("bulk 100k into empty + update", |b| {
        b.iter(|| {
            let mut t = HashTree::default();
            for (i, k) in some.iter().enumerate() {
                t.insert(k, Digest::from_u64(i as u64)).unwrap();
            }
            t.update();
            black_box(t.root())
        })
    });

    // Steady state in a full tree: overwrite keys with new digests, updating
    // after every `batch` writes (batch 1 is the worst case: every write
    // pays its segment's rehash and the two nodes above it).
    let mut t = full_tree(&keys);
    let mut version = 0u64;
    let mut next = 0u32;
    for batch in [1u64, 100, 10_000] {
        group.throughput(Throughput::Elements(batch));
        group.bench_with_input(
            BenchmarkId::new("overwrite in 1M + update every", batch),
            &batch,
            |b, &batch| {
                b.iter(|| {
                    version += 1;
                    for _ in 0..batch {
                        next = (next + 7919) % N;
                        t.insert(&keys[next as usize], Digest::from_u64(version)).unwrap();
                    }
                    t.update();
                    black_box(t.root())
                })
            },
        );
    }
    group.finish();
}

fn exchange(c: &mut Criterion) {
    let mut group = c.benchmark_group("hashtree/exchange 1M keys");
    group.sample_size(10);
    let keys: Vec<Vec<u8>> = (0..N).map(key).collect();
    let a = full_tree(&keys);
    drop(keys);
    for k in [1u32, 10, 1000] {
        let mut b = a.clone();
        for j in 0..k {
            // Spread the changes over the key space; a mix of kinds.
            let i = (u64::from(j) * u64::from(N) / u64::from(k)) as u32;
            match j % 3 {
                0 => b.insert(&key(N + i), Digest::from_u64(7)).map(drop).unwrap(),
                1 => b.remove(&key(i)).map(drop).unwrap(),
                _ => b.insert(&key(i), Digest::from_u64(u64::MAX)).map(drop).unwrap(),
            }
        }
        b.update();
        group.bench_with_input(BenchmarkId::new("k", k), &k, |bench, &k| {
            bench.iter(|| {
                let (mut ex, mut request) = Exchange::start(&a);
                loop {
                    let reply = respond(&b, &request).unwrap();
                    match ex.handle(&a, reply).unwrap() {
                        Step::Send(next) => request = next,
                        Step::Done(diff) => {
                            assert_eq!(diff.len(), k as usize);
                            return black_box(diff);
                        }
                    }
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, insert, exchange);
criterion_main!(benches);
