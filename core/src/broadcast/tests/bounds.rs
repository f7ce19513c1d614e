//! Nothing a peer sends grows a structure past its bound, and nothing a peer
//! sends panics.

use super::net::{Id, Node};
use crate::broadcast::{Announcement, Config, Message, MessageCache, Plumtree, Stats, TreeMode};
use crate::rng;
use crate::time::{Duration, Instant};
use alloc::vec::Vec;
use bytes::Bytes;
use rand::Rng as _;
use std::println;

/// Largest value each size field reached.
#[derive(Default, Debug)]
struct Peaks {
    tracked_roots: usize,
    missing: usize,
    max_announcers: usize,
    max_outstanding: usize,
    max_lazy_queue: usize,
    received_cache: usize,
}

impl Peaks {
    fn check(&mut self, s: &Stats, c: &Config, max_roots: usize) {
        assert!(s.tracked_roots <= max_roots, "{s:?}");
        assert!(s.missing <= c.max_missing, "{s:?}");
        assert!(s.max_announcers <= c.max_announcers, "{s:?}");
        assert!(s.max_outstanding <= c.max_outstanding, "{s:?}");
        assert!(s.max_lazy_queue <= c.max_lazy_queue, "{s:?}");
        assert!(s.received_cache <= c.max_received, "{s:?}");
        self.tracked_roots = self.tracked_roots.max(s.tracked_roots);
        self.missing = self.missing.max(s.missing);
        self.max_announcers = self.max_announcers.max(s.max_announcers);
        self.max_outstanding = self.max_outstanding.max(s.max_outstanding);
        self.max_lazy_queue = self.max_lazy_queue.max(s.max_lazy_queue);
        self.received_cache = self.received_cache.max(s.received_cache);
    }
}

/// A million distinct messages through one node, as origin and as receiver,
/// with peers that never acknowledge an announcement and announce messages
/// that never come. Every structure must stay within its bound; the peaks
/// show the bounds were actually reached.
#[test]
fn a_million_broadcasts_stay_within_every_bound() {
    const MAX_ROOTS: usize = 64;
    let config = Config {
        tree: TreeMode::PerRoot { max_roots: MAX_ROOTS },
        initial_eager_fanout: Some(2),
        ..Config::default()
    };
    let mut n: Node = Plumtree::new(0, config.clone(), 5);
    for p in 1..=4 {
        n.neighbor_up(Instant::ZERO, p);
    }
    let mut h = MessageCache::new(1024, 8192);
    let payload = Bytes::from_static(&[7; 64]);
    let mut now = Instant::ZERO;
    let mut peaks = Peaks::default();
    let mut transmits = 0u64;
    let started = std::time::Instant::now();
    for i in 0..1_000_000u32 {
        now += Duration::from_micros(100);
        match i % 4 {
            0 => n.broadcast(now, (0, i), payload.clone(), &mut h).unwrap(),
            1 => {
                // New messages from 5,000 roots, through a neighbour.
                let root = 1_000 + i % 5_000;
                let msg = Message::Gossip {
                    id: (root, i),
                    root,
                    round: i % 20,
                    payload: payload.clone(),
                };
                n.handle_message(now, 1 + i % 4, msg, &mut h);
            }
            2 => {
                // Announcements of messages that never arrive, from 40
                // senders (most not neighbours): alternately 12,000 distinct
                // ids (the map overflows) and 52 (their announcers do).
                let window = if i % 8 == 2 { 3_000 } else { 13 };
                let base = (i / 8) % window * 4 + if i % 8 == 2 { 0 } else { 100_000 };
                let announcements = (0..4)
                    .map(|k| Announcement {
                        id: (7, base + k),
                        root: 7 + k,
                        round: 1,
                    })
                    .collect();
                n.handle_message(now, 1 + (i / 8) % 40, Message::IHave { announcements }, &mut h);
            }
            _ => {
                // A duplicate (pruned) and a graft for our own message.
                let root = 1_000 + (i - 2) % 5_000;
                let dup = Message::Gossip {
                    id: (root, i - 2),
                    root,
                    round: 3,
                    payload: payload.clone(),
                };
                n.handle_message(now, 2, dup, &mut h);
                let graft = Message::Graft {
                    id: (0, i - 3),
                    root: 0,
                    round: 0,
                };
                n.handle_message(now, 3, graft, &mut h);
            }
        }
        // Timers only every ~410 ms, so the lazy queues fill up in between.
        if i % 4096 == 0 && n.poll_timeout().is_some_and(|t| t <= now) {
            n.handle_timeout(now, &mut h);
        }
        while n.poll_transmit().is_some() {
            transmits += 1;
        }
        while n.poll_event().is_some() {}
        if i % 512 == 0 {
            peaks.check(&n.stats(), &config, MAX_ROOTS);
            n.assert_internal_bounds();
            assert!(h.len() <= 1024 && h.seen_len() <= 8192);
        }
    }
    let elapsed = started.elapsed();
    let s = n.stats();
    peaks.check(&s, &config, MAX_ROOTS);
    n.assert_internal_bounds();
    println!("1,000,000 messages in {elapsed:?}; {transmits} transmits; peaks {peaks:?}");
    println!("{s:#?}");
    assert_eq!(peaks.tracked_roots, MAX_ROOTS);
    assert_eq!(peaks.missing, config.max_missing);
    assert_eq!(peaks.max_announcers, config.max_announcers);
    assert_eq!(peaks.max_outstanding, config.max_outstanding);
    // Full batches leave at once, so a queue never holds one.
    assert!(peaks.max_lazy_queue > 0 && peaks.max_lazy_queue < config.max_ihave_batch);
    assert_eq!(peaks.received_cache, config.max_received);
    assert!(s.outstanding_dropped > 0 && s.missing_evicted > 0 && s.eviction_grafts > 0);
    assert_eq!(s.lazy_dropped, 0, "no announcement is lost before it is sent");
    assert!(s.announcers_dropped > 0 && s.roots_evicted > 0 && s.duplicates > 0);
    assert_eq!(s.broadcasts, 250_000);
    assert_eq!(s.delivered, 250_000);
}

/// Random, often malformed, messages from neighbours, strangers and
/// ourselves, with neighbours coming and going: no panic, every bound held.
#[test]
fn garbage_never_panics() {
    let config = Config {
        tree: TreeMode::PerRoot { max_roots: 4 },
        max_payload: 64,
        max_ihave_batch: 8,
        max_received: 16,
        max_missing: 16,
        max_announcers: 3,
        max_outstanding: 8,
        max_lazy_queue: 8,
        ..Config::default()
    };
    let mut rng = rng::from_seed(77);
    let mut n: Node = Plumtree::new(0, config.clone(), 3);
    let mut h = MessageCache::new(32, 64);
    let mut now = Instant::ZERO;
    let mut peaks = Peaks::default();
    let id = |rng: &mut rng::Rng| -> Id { (rng.random_range(0..6), rng.random_range(0..40)) };
    for step in 0..50_000u32 {
        now += Duration::from_micros(rng.random_range(0..50_000));
        let from = rng.random_range(0..12u32);
        let list = |rng: &mut rng::Rng| rng.random_range(0..=config.max_ihave_batch + 1);
        let msg: Message<u32, Id> = match rng.random_range(0..9) {
            0 => Message::Gossip {
                id: id(&mut rng),
                root: rng.random_range(0..8),
                round: rng.random(),
                payload: Bytes::from(alloc::vec![0u8; rng.random_range(0..80)]),
            },
            1 => Message::IHave {
                announcements: (0..list(&mut rng))
                    .map(|_| Announcement {
                        id: id(&mut rng),
                        root: rng.random_range(0..8),
                        round: rng.random(),
                    })
                    .collect(),
            },
            2 => Message::Graft {
                id: id(&mut rng),
                root: rng.random_range(0..8),
                round: rng.random(),
            },
            3 => Message::Attach {
                root: rng.random_range(0..8),
            },
            4 => Message::Prune {
                root: rng.random_range(0..8),
            },
            5 => Message::IgnoredIHave {
                ids: (0..list(&mut rng)).map(|_| id(&mut rng)).collect(),
            },
            6 => {
                // Arbitrary bytes, decoded as a driver would.
                let len = rng.random_range(0..40);
                let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
                match postcard::from_bytes::<Message<u32, Id>>(&bytes) {
                    Ok(m) => m,
                    Err(_) => continue,
                }
            }
            7 => {
                let p = rng.random_range(0..12);
                if rng.random_bool(0.5) {
                    n.neighbor_up(now, p);
                } else {
                    n.neighbor_down(now, &p);
                }
                continue;
            }
            _ => {
                let payload = Bytes::from(alloc::vec![1u8; rng.random_range(0..80)]);
                let _ = n.broadcast(now, (0, 1_000 + step), payload, &mut h);
                continue;
            }
        };
        n.handle_message(now, from, msg, &mut h);
        if n.poll_timeout().is_some_and(|t| t <= now) {
            n.handle_timeout(now, &mut h);
        }
        if let Some(t) = n.poll_timeout() {
            assert!(t > now, "a timer left due after handle_timeout");
        }
        while n.poll_transmit().is_some() {}
        while n.poll_event().is_some() {}
        peaks.check(&n.stats(), &config, 4);
        n.assert_internal_bounds();
    }
    assert!(n.stats().invalid > 0);
}
