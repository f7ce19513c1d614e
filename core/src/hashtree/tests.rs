//! Tree and exchange tests: digests, incremental update, exact diffs on
//! random trees, message bounds, and hostile input.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec;
use alloc::vec::Vec;

use proptest::prelude::*;
use rand::Rng;

use super::digest::{inner_digest, key_hash, segment_digest, segment_of};
use super::*;
use crate::rng::{self, Rng as Xoshiro};
use crate::wire;

type Model = BTreeMap<Vec<u8>, Digest>;

fn tree(segments: u32, width: u32) -> HashTree {
    HashTree::new(Config::new(segments, width).unwrap()).unwrap()
}

fn encoded_len(message: &Message) -> usize {
    postcard::to_allocvec(message).unwrap().len()
}

/// Everything one exchange did.
struct Run {
    diff: Diff,
    rounds: u32,
    messages: usize,
}

/// Runs an exchange from `a` against `b` to completion, checking that every
/// message fits [`MAX_MESSAGE_LEN`] and survives a postcard round trip.
fn run_with(a: &HashTree, b: &HashTree, limits: Limits) -> Run {
    let (mut exchange, mut request) = Exchange::with_limits(a, limits);
    let mut messages = 0;
    loop {
        assert!(encoded_len(&request) <= MAX_MESSAGE_LEN);
        let request_back: Message = wire::decode_body(&postcard::to_allocvec(&request).unwrap()).unwrap();
        assert_eq!(request_back, request);
        let reply = respond(b, &request).unwrap();
        assert!(encoded_len(&reply) <= MAX_MESSAGE_LEN, "{} bytes", encoded_len(&reply));
        messages += 2;
        match exchange.handle(a, reply).unwrap() {
            Step::Send(next) => request = next,
            Step::Done(diff) => {
                assert!(exchange.is_finished());
                return Run {
                    diff,
                    rounds: exchange.rounds(),
                    messages,
                };
            }
        }
    }
}

fn run(a: &HashTree, b: &HashTree) -> Run {
    run_with(a, b, Limits::default())
}

/// The diff a model comparison predicts, each list sorted.
fn expected(a: &Model, b: &Model) -> [BTreeSet<Vec<u8>>; 3] {
    let missing_locally = b.keys().filter(|k| !a.contains_key(*k)).cloned().collect();
    let missing_remotely = a.keys().filter(|k| !b.contains_key(*k)).cloned().collect();
    let different = a
        .iter()
        .filter(|(k, d)| b.get(*k).is_some_and(|e| e != *d))
        .map(|(k, _)| k.clone())
        .collect();
    [missing_locally, missing_remotely, different]
}

fn found(diff: &Diff) -> [BTreeSet<Vec<u8>>; 3] {
    let set = |v: &Vec<Vec<u8>>| {
        let s: BTreeSet<Vec<u8>> = v.iter().cloned().collect();
        assert_eq!(s.len(), v.len(), "a key reported twice");
        s
    };
    [
        set(&diff.missing_locally),
        set(&diff.missing_remotely),
        set(&diff.different),
    ]
}

fn build(config: Config, model: &Model) -> HashTree {
    let mut t = HashTree::new(config).unwrap();
    for (k, d) in model {
        t.insert(k, *d).unwrap();
    }
    t.update();
    t
}

fn random_key(rng: &mut Xoshiro) -> Vec<u8> {
    let mut key = vec![0u8; rng.random_range(1..=24)];
    rng.fill(&mut key[..]);
    key
}

/// Two models of `n` shared keys with `k` differences of mixed kinds.
fn random_pair(seed: u64, n: usize, k: usize) -> (Model, Model) {
    let mut rng = rng::from_seed(seed);
    let mut a = Model::new();
    while a.len() < n {
        a.insert(random_key(&mut rng), Digest::from_u64(rng.random()));
    }
    let mut b = a.clone();
    let keys: Vec<Vec<u8>> = a.keys().cloned().collect();
    let mut touched = BTreeSet::new();
    while touched.len() < k {
        match rng.random_range(0..3) {
            // Missing locally: a new key only the peer has.
            0 => {
                let key = random_key(&mut rng);
                if !a.contains_key(&key) && touched.insert(key.clone()) {
                    b.insert(key, Digest::from_u64(rng.random()));
                }
            }
            // Missing remotely / different: an existing key.
            kind => {
                if keys.is_empty() {
                    continue;
                }
                let key = keys[rng.random_range(0..keys.len())].clone();
                if touched.insert(key.clone()) {
                    if kind == 1 {
                        b.remove(&key);
                    } else {
                        b.insert(key, Digest::from_u64(rng.random()));
                    }
                }
            }
        }
    }
    (a, b)
}

/// Pins the digest format: segment choice, object digests, segment and inner
/// digests and the root of a tiny tree. These values cross the wire between
/// versions and platforms; if this test fails, the wire format changed.
#[test]
fn pinned_digests() {
    assert_eq!(Digest::of(b"").to_u64(), 0xf36c_f7ec_d1fc_fda0);
    assert_eq!(Digest::of(b"value").to_u64(), 0xd588_58c8_8c4e_9535);
    let keys: [&[u8]; 4] = [b"", b"a", b"b", b"key"];
    let segments: Vec<u32> = keys.iter().map(|k| segment_of(key_hash(k), 4)).collect();
    assert_eq!(segments, vec![3, 0, 0, 2]);

    let segment = segment_digest(
        [(&b"a"[..], Digest::from_u64(1)), (&b"b"[..], Digest::from_u64(2))],
        &mut Vec::new(),
    );
    assert_eq!(segment.to_u64(), 0x23f4_fccd_1212_df73);
    // The documented byte layout, hashed in one go, gives the same value.
    let mut bytes = Vec::new();
    for (key, digest) in [(&b"a"[..], 1u64), (&b"b"[..], 2)] {
        bytes.extend_from_slice(&(key.len() as u64).to_le_bytes());
        bytes.extend_from_slice(key);
        bytes.extend_from_slice(&digest.to_le_bytes());
    }
    assert_eq!(xxhash_rust::xxh3::xxh3_64_with_seed(&bytes, 3), segment.to_u64());

    let inner = inner_digest([(0, Digest::from_u64(1)), (3, Digest::from_u64(2))], &mut Vec::new());
    assert_eq!(inner.to_u64(), 0x029b_956c_b668_67c8);
    let mut bytes = Vec::new();
    for (position, digest) in [(0u32, 1u64), (3, 2)] {
        bytes.extend_from_slice(&position.to_le_bytes());
        bytes.extend_from_slice(&digest.to_le_bytes());
    }
    assert_eq!(xxhash_rust::xxh3::xxh3_64_with_seed(&bytes, 4), inner.to_u64());
    assert_eq!(segment_digest([], &mut Vec::new()), Digest::EMPTY);
    assert_eq!(inner_digest([(0, Digest::EMPTY)], &mut Vec::new()), Digest::EMPTY);

    // A tiny tree: 4 segments, width 2, so two inner levels.
    let mut t = tree(4, 2);
    for (i, k) in keys.iter().enumerate() {
        t.insert(k, Digest::of(&[i as u8])).unwrap();
    }
    t.update();
    assert_eq!(t.root().to_u64(), 0x2680_91fb_971f_f7eb);
    let digests = |level, bucket| -> Vec<u64> { t.level(level, bucket).unwrap().iter().map(|d| d.to_u64()).collect() };
    assert_eq!(digests(0, 0), vec![0xb7ed_93a2_9aab_d265, 0x6f89_23a6_2e03_5124]);
    assert_eq!(digests(1, 1), vec![0x7d1c_9dff_4531_9a92, 0x2ad0_10aa_9661_8d66]);
    // Segment 1 is empty; segment 0 holds "a" and "b", in segment order:
    // "b" first, as its key hash is the smaller.
    assert_eq!(digests(1, 0), vec![0xa760_7056_6b8d_466f, 0]);
    assert_eq!(key_hash(b"a"), 0xd2f6_d099_6f37_a720);
    assert_eq!(key_hash(b"b"), 0x9900_9138_a345_2320);
    let ab = [(&b"b"[..], Digest::of(&[2])), (&b"a"[..], Digest::of(&[1]))];
    assert_eq!(segment_digest(ab, &mut Vec::new()).to_u64(), 0xa760_7056_6b8d_466f);
    assert_eq!(t.segment_keys(0).collect::<Vec<_>>(), ab.to_vec());
    // Digests are eight little-endian bytes on the wire.
    assert_eq!(
        postcard::to_allocvec(&Digest::from_u64(0x0102_0304_0506_0708)).unwrap(),
        vec![8, 7, 6, 5, 4, 3, 2, 1]
    );
}

#[test]
fn config_is_validated() {
    assert_eq!(Config::default().inner_levels(), Ok(2));
    assert_eq!(Config::new(1 << 20, 1024).unwrap().inner_levels(), Ok(2));
    assert_eq!(Config::new(1 << 24, 2).unwrap().inner_levels(), Ok(24));
    assert_eq!(Config::new(27, 3).unwrap().inner_levels(), Ok(3));
    assert_eq!(Config::new(16, 1), Err(ConfigError::Width(1)));
    assert_eq!(Config::new(1 << 13, 1 << 13), Err(ConfigError::Width(1 << 13)));
    assert_eq!(Config::new(1, 2), Err(ConfigError::Segments(1)));
    assert_eq!(Config::new(1 << 25, 2), Err(ConfigError::Segments(1 << 25)));
    assert!(Config::new(1000, 10).is_ok());
    assert_eq!(
        Config::new(96, 4),
        Err(ConfigError::NotAPower { segments: 96, width: 4 })
    );
    let bad = Config {
        width: 0,
        ..Config::default()
    };
    assert!(HashTree::new(bad).is_err());
}

#[test]
fn insert_get_remove() {
    let mut t = HashTree::default();
    assert_eq!(t.root(), Digest::EMPTY);
    assert_eq!(t.insert(b"k", Digest::from_u64(1)), Ok(None));
    assert_eq!(t.insert(b"k", Digest::from_u64(2)), Ok(Some(Digest::from_u64(1))));
    assert_eq!(t.get(b"k"), Some(Digest::from_u64(2)));
    assert_eq!(t.len(), 1);
    let long = vec![0u8; MAX_KEY_LEN + 1];
    assert_eq!(
        t.insert(&long, Digest::from_u64(1)),
        Err(InsertError::KeyTooLong {
            len: MAX_KEY_LEN + 1,
            max: MAX_KEY_LEN
        })
    );
    assert!(t.insert(&long[..MAX_KEY_LEN], Digest::from_u64(1)).is_ok());
    t.update();
    assert_ne!(t.root(), Digest::EMPTY);
    assert_eq!(t.remove(b"k"), Some(Digest::from_u64(2)));
    assert_eq!(t.remove(b"k"), None);
    assert_eq!(t.remove(&long[..MAX_KEY_LEN]), Some(Digest::from_u64(1)));
    assert!(t.is_empty() && t.is_dirty());
    t.update();
    assert_eq!(t.root(), Digest::EMPTY);
    assert_eq!(t.stats().segments, 0);
    assert_eq!(t.stats().inner_nodes, 0, "an empty tree stores no nodes");
    assert_eq!(t.level(0, 0), Some(vec![Digest::EMPTY; 256]));
    assert_eq!(t.level(0, 1), None);
    assert_eq!(t.level(2, 0), None);
}

#[test]
fn levels_roll_up_to_the_root() {
    let mut t = tree(64, 4);
    for i in 0..200u32 {
        t.insert(&i.to_be_bytes(), Digest::from_u64(u64::from(i))).unwrap();
    }
    t.update();
    // Recompute every digest from the segment listings up.
    let mut level: Vec<Digest> = (0..64)
        .map(|s| segment_digest(t.segment_keys(s), &mut Vec::new()))
        .collect();
    for depth in (0..3).rev() {
        let nodes = 4u32.pow(depth);
        let above: Vec<Digest> = (0..nodes)
            .map(|b| {
                let children = t.level(depth, b).unwrap();
                assert_eq!(children, level[b as usize * 4..b as usize * 4 + 4].to_vec());
                inner_digest(
                    children.iter().enumerate().map(|(i, d)| (i as u32, *d)),
                    &mut Vec::new(),
                )
            })
            .collect();
        level = above;
    }
    assert_eq!(level, vec![t.root()]);
    assert_eq!(t.segment_keys(64).count(), 0);
}

#[test]
fn update_touches_only_the_dirty_segment() {
    let (model, _) = random_pair(1, 1000, 0);
    let mut t = build(Config::default(), &model);
    let before = t.stats();
    assert_eq!(before.keys, 1000);
    assert_eq!(before.dirty_segments, 0);
    // 1,000 keys in 65,536 segments: ~990 segments, under almost every one
    // of the 256 level-1 nodes, plus the root.
    assert!((980..=1000).contains(&before.segments), "{before:?}");
    assert!((240..=257).contains(&before.inner_nodes), "{before:?}");

    t.insert(b"new key", Digest::from_u64(9)).unwrap();
    assert_eq!(t.stats().dirty_segments, 1);
    assert_eq!(
        t.stats().segments_rehashed,
        before.segments_rehashed,
        "insert hashes nothing"
    );
    t.update();
    let after = t.stats();
    assert_eq!(after.segments_rehashed - before.segments_rehashed, 1);
    assert_eq!(after.inner_rehashed - before.inner_rehashed, 2);

    t.remove(b"new key");
    t.update();
    let removed = t.stats();
    assert_eq!(removed.segments_rehashed - after.segments_rehashed, 1);
    assert_eq!(removed.inner_rehashed - after.inner_rehashed, 2);
    assert_eq!(build(Config::default(), &model).root(), t.root());

    // Insert then remove before updating: the segment is rehashed, comes out
    // unchanged, and nothing above it is.
    t.insert(b"fleeting", Digest::from_u64(1)).unwrap();
    t.remove(b"fleeting");
    t.update();
    let fleeting = t.stats();
    assert_eq!(fleeting.segments_rehashed - removed.segments_rehashed, 1);
    assert_eq!(fleeting.inner_rehashed, removed.inner_rehashed);

    // Re-inserting the same digest dirties nothing; update with nothing dirty
    // hashes nothing.
    let (k, d) = model.iter().next().unwrap();
    t.insert(k, *d).unwrap();
    assert!(!t.is_dirty());
    t.update();
    assert_eq!(t.stats(), fleeting);
}

#[test]
fn insertion_order_does_not_matter() {
    let (model, _) = random_pair(2, 2000, 0);
    let mut entries: Vec<(Vec<u8>, Digest)> = model.iter().map(|(k, d)| (k.clone(), *d)).collect();
    let reference = build(Config::default(), &model).root();
    let mut rng = rng::from_seed(3);
    for round in 0..4 {
        // Fisher–Yates with the seeded generator.
        for i in (1..entries.len()).rev() {
            entries.swap(i, rng.random_range(0..=i));
        }
        let mut t = HashTree::default();
        for (i, (k, d)) in entries.iter().enumerate() {
            // Interleave updates, overwrites and removals differently each time.
            t.insert(k, Digest::from_u64(0)).unwrap();
            t.insert(k, *d).unwrap();
            if round % 2 == 1 && i % 97 == 0 {
                t.update();
            }
            t.insert(b"scratch", *d).unwrap();
            t.remove(b"scratch");
        }
        t.update();
        assert_eq!(t.root(), reference);
    }
}

#[test]
fn identical_trees_take_one_round_trip() {
    for n in [0, 1, 1000] {
        let (a, b) = random_pair(4, n, 0);
        let (a, b) = (build(Config::default(), &a), build(Config::default(), &b));
        let (mut exchange, request) = Exchange::start(&a);
        assert_eq!(request, Message::RootRequest);
        let reply = respond(&b, &request).unwrap();
        let Step::Done(diff) = exchange.handle(&a, reply).unwrap() else {
            panic!("identical trees need a second round")
        };
        assert!(diff.is_empty() && diff.complete);
        assert_eq!(exchange.rounds(), 1);
        assert_eq!(exchange.handle(&a, Message::RootRequest), Err(ExchangeError::Finished));
    }
}

#[test]
fn random_differences_are_reported_exactly() {
    for (seed, n, k) in [
        (10, 1000, 0),
        (11, 1000, 1),
        (12, 1000, 10),
        (13, 1000, 100),
        (14, 10_000, 37),
    ] {
        let (ma, mb) = random_pair(seed, n, k);
        let (a, b) = (build(Config::default(), &ma), build(Config::default(), &mb));
        let r = run(&a, &b);
        assert!(r.diff.complete);
        assert_eq!(found(&r.diff), expected(&ma, &mb), "n={n} k={k}");
        assert_eq!(r.diff.len(), k);
        // From the other side, local and remote swap.
        let back = run(&b, &a);
        assert_eq!(found(&back.diff), expected(&mb, &ma));
        if k == 0 {
            assert_eq!(r.rounds, 1);
        } else {
            // Root, two levels, at least one keys request.
            assert!(r.rounds >= 4, "rounds {}", r.rounds);
            assert_eq!(r.messages, 2 * r.rounds as usize);
        }
    }
}

#[test]
fn empty_sides_short_cut() {
    let (model, _) = random_pair(5, 500, 0);
    let full = build(Config::default(), &model);
    let empty = HashTree::default();
    // The peer has nothing: the root reply already says so.
    let r = run(&full, &empty);
    assert_eq!(r.rounds, 1);
    assert_eq!(found(&r.diff)[1], model.keys().cloned().collect());
    // We have nothing: walk down and list the peer's segments.
    let r = run(&empty, &full);
    assert_eq!(found(&r.diff)[0], model.keys().cloned().collect());
    assert!(r.diff.missing_remotely.is_empty() && r.diff.different.is_empty());
}

#[test]
fn deep_narrow_trees_work() {
    for (segments, width) in [(2, 2), (1 << 10, 2), (81, 3), (1 << 12, 1 << 12)] {
        let (ma, mb) = random_pair(u64::from(segments), 300, 30);
        let config = Config::new(segments, width).unwrap();
        let (a, b) = (build(config, &ma), build(config, &mb));
        let r = run(&a, &b);
        assert_eq!(found(&r.diff), expected(&ma, &mb), "{config:?}");
        assert!(r.rounds > config.inner_levels().unwrap());
    }
}

#[test]
fn big_segments_are_listed_in_several_replies() {
    // Four segments holding ~4 MiB of keys: every listing is cut short and
    // resumed, sometimes inside a segment.
    let config = Config::new(4, 2).unwrap();
    let mut rng = rng::from_seed(6);
    let mut ma = Model::new();
    for i in 0..2000u32 {
        let mut key = vec![0u8; rng.random_range(1..=MAX_KEY_LEN)];
        let prefix = 4.min(key.len());
        key[..prefix].copy_from_slice(&i.to_be_bytes()[..prefix]);
        rng.fill(&mut key[prefix..]);
        ma.insert(key, Digest::from_u64(rng.random()));
    }
    let mut mb = ma.clone();
    let keys: Vec<Vec<u8>> = ma.keys().cloned().collect();
    for key in keys.iter().step_by(7) {
        mb.insert(key.clone(), Digest::from_u64(1));
    }
    for key in keys.iter().step_by(11) {
        ma.remove(key);
    }
    let (a, b) = (build(config, &ma), build(config, &mb));
    let r = run(&a, &b);
    assert_eq!(found(&r.diff), expected(&ma, &mb));
    assert!(r.rounds > 6, "expected continuation rounds, got {}", r.rounds);
}

#[test]
fn largest_messages_fit() {
    for width in [2, 3, 16, 256, 1000, MAX_WIDTH] {
        let max = max_buckets_per_request(width);
        let full = ChildDigests::pack(
            width,
            (0..width).map(|i| (i, Digest::from_u64(u64::MAX - u64::from(i)))),
        );
        assert_eq!(full.digests.len(), width as usize);
        let reply = Message::Children {
            level: u32::MAX,
            nodes: vec![full; max],
        };
        assert!(encoded_len(&reply) <= MAX_MESSAGE_LEN, "width {width}");
        let request = Message::ChildrenRequest {
            level: u32::MAX,
            buckets: (u32::MAX - max as u32..u32::MAX).collect(),
        };
        assert!(encoded_len(&request) <= MAX_MESSAGE_LEN);
    }
    assert_eq!(max_buckets_per_request(256), 250);
    let request = Message::KeysRequest {
        segments: (u32::MAX - MAX_SEGMENTS_PER_REQUEST as u32..u32::MAX).collect(),
        after: Some(vec![0xff; MAX_KEY_LEN]),
    };
    assert!(encoded_len(&request) <= MAX_MESSAGE_LEN);
    const { assert!(MAX_MESSAGE_LEN + wire::HEADER_LEN <= wire::DEFAULT_MAX_FRAME) };

    // One segment of maximum-length keys, listed from a tree.
    let mut t = tree(2, 2);
    let mut rng = rng::from_seed(7);
    while t.segment_keys(0).count() < 300 {
        let mut key = vec![0u8; MAX_KEY_LEN];
        rng.fill(&mut key[..]);
        t.insert(&key, Digest::from_u64(u64::MAX)).unwrap();
    }
    t.update();
    let reply = respond(
        &t,
        &Message::KeysRequest {
            segments: vec![0, 1],
            after: None,
        },
    )
    .unwrap();
    assert!(encoded_len(&reply) <= MAX_MESSAGE_LEN);
    let Message::Keys { sections } = reply else { panic!() };
    assert_eq!(sections.len(), 1);
    assert!(!sections[0].complete && !sections[0].entries.is_empty());
}

#[test]
fn limits_cut_exchanges_short() {
    let (ma, mb) = random_pair(8, 1000, 100);
    let (a, b) = (build(Config::default(), &ma), build(Config::default(), &mb));
    let limits = Limits {
        max_diff_keys: 5,
        ..Limits::default()
    };
    let r = run_with(&a, &b, limits);
    assert_eq!(r.diff.len(), 5);
    assert!(!r.diff.complete);
    let [l, m, d] = found(&r.diff);
    let [el, em, ed] = expected(&ma, &mb);
    assert!(l.is_subset(&el) && m.is_subset(&em) && d.is_subset(&ed));

    let limits = Limits {
        max_rounds: 2,
        ..Limits::default()
    };
    let r = run_with(&a, &b, limits);
    assert_eq!(r.rounds, 2);
    assert!(!r.diff.complete);
    // Only what the root's children already showed: level-1 nodes the peer
    // lacks entirely.
    let [l, m, d] = found(&r.diff);
    assert!(l.is_empty() && d.is_empty() && m.is_subset(&em) && m.len() < 5);

    // Exactly as many differences as the limit is still complete.
    let limits = Limits {
        max_diff_keys: 100,
        ..Limits::default()
    };
    let r = run_with(&a, &b, limits);
    assert_eq!(r.diff.len(), 100);
    assert!(r.diff.complete);
}

#[test]
fn responder_refuses_bad_requests() {
    let (model, _) = random_pair(9, 100, 0);
    let t = build(Config::default(), &model);
    let invalid = |m: Message| match respond(&t, &m) {
        Err(ExchangeError::Invalid(_)) => {}
        other => panic!("{m:?} gave {other:?}"),
    };
    invalid(Message::ChildrenRequest {
        level: 2,
        buckets: vec![0],
    });
    invalid(Message::ChildrenRequest {
        level: 0,
        buckets: vec![1],
    });
    invalid(Message::ChildrenRequest {
        level: 1,
        buckets: vec![],
    });
    invalid(Message::ChildrenRequest {
        level: 1,
        buckets: vec![3, 3],
    });
    invalid(Message::ChildrenRequest {
        level: 1,
        buckets: vec![4, 3],
    });
    invalid(Message::ChildrenRequest {
        level: 1,
        buckets: (0..251).collect(),
    });
    invalid(Message::KeysRequest {
        segments: vec![1 << 16],
        after: None,
    });
    invalid(Message::KeysRequest {
        segments: (0..MAX_SEGMENTS_PER_REQUEST as u32 + 1).collect(),
        after: None,
    });
    invalid(Message::KeysRequest {
        segments: vec![0],
        after: Some(vec![0; MAX_KEY_LEN + 1]),
    });
    for reply in [
        Message::Root {
            segments: 4,
            width: 2,
            root: Digest::EMPTY,
        },
        Message::Children {
            level: 0,
            nodes: vec![],
        },
        Message::Keys { sections: vec![] },
    ] {
        assert!(matches!(respond(&t, &reply), Err(ExchangeError::Unexpected { .. })));
    }
    assert!(
        respond(
            &t,
            &Message::ChildrenRequest {
                level: 1,
                buckets: (0..250).collect()
            }
        )
        .is_ok()
    );
}

/// Drives an exchange from `a` against `b` until its first request of the
/// given kind, returning the exchange and that request.
fn exchange_at(a: &HashTree, b: &HashTree, kind: &str) -> (Exchange, Message) {
    let (mut exchange, mut request) = Exchange::start(a);
    while request.name() != kind {
        let reply = respond(b, &request).unwrap();
        let Step::Send(next) = exchange.handle(a, reply).unwrap() else {
            panic!("finished before {kind}")
        };
        request = next;
    }
    (exchange, request)
}

#[test]
fn initiator_refuses_bad_replies() {
    let (ma, mb) = random_pair(10, 1000, 3);
    let (a, b) = (build(Config::default(), &ma), build(Config::default(), &mb));
    let err = |kind: &str, make: &dyn Fn(&Message) -> Message| {
        let (mut exchange, request) = exchange_at(&a, &b, kind);
        let bad = make(&respond(&b, &request).unwrap());
        let e = exchange.handle(&a, bad).unwrap_err();
        assert!(exchange.is_finished());
        assert_eq!(exchange.handle(&a, Message::RootRequest), Err(ExchangeError::Finished));
        e
    };
    let unexpected = |e: ExchangeError| assert!(matches!(e, ExchangeError::Unexpected { .. }), "{e:?}");
    let invalid = |e: ExchangeError| assert!(matches!(e, ExchangeError::Invalid(_)), "{e:?}");

    // Out of order: a request, or another phase's reply.
    unexpected(err("RootRequest", &|_| Message::RootRequest));
    unexpected(err("RootRequest", &|_| Message::Keys { sections: vec![] }));
    unexpected(err("ChildrenRequest", &|_| Message::Root {
        segments: 1 << 16,
        width: 256,
        root: Digest::EMPTY,
    }));
    unexpected(err("KeysRequest", &|_| Message::Children {
        level: 1,
        nodes: vec![],
    }));
    // The wrong shape.
    assert_eq!(
        err("RootRequest", &|_| Message::Root {
            segments: 1024,
            width: 32,
            root: Digest::EMPTY
        }),
        ExchangeError::ConfigMismatch {
            segments: 1024,
            width: 32
        }
    );
    // Children replies that do not fit the request.
    fn children(f: impl Fn(&mut u32, &mut Vec<ChildDigests>)) -> impl Fn(&Message) -> Message {
        move |m: &Message| {
            let Message::Children { level, nodes } = m else {
                panic!()
            };
            let (mut level, mut nodes) = (*level, nodes.clone());
            f(&mut level, &mut nodes);
            Message::Children { level, nodes }
        }
    }
    invalid(err("ChildrenRequest", &children(|l, _| *l += 1)));
    invalid(err("ChildrenRequest", &children(|_, n| n.clear())));
    invalid(err("ChildrenRequest", &children(|_, n| n.push(n[0].clone()))));
    invalid(err(
        "ChildrenRequest",
        &children(|_, n| {
            n[0].present.pop();
        }),
    ));
    invalid(err(
        "ChildrenRequest",
        &children(|_, n| n[0].digests.push(Digest::from_u64(1))),
    ));
    invalid(err(
        "ChildrenRequest",
        &children(|_, n| n[0].digests[0] = Digest::EMPTY),
    ));
    let mut odd = tree(9, 3);
    odd.insert(b"x", Digest::from_u64(1)).unwrap();
    odd.update();
    let bits_past_width = ChildDigests {
        present: vec![0b1000],
        digests: vec![Digest::from_u64(1)],
    };
    assert!(bits_past_width.unpack(3).is_err());
    assert!(
        ChildDigests::pack(3, [(2, Digest::from_u64(1))].into_iter())
            .unpack(3)
            .is_ok()
    );

    // Keys replies that do not fit the request.
    fn keys(f: impl Fn(&mut Vec<SegmentKeys>)) -> impl Fn(&Message) -> Message {
        move |m: &Message| {
            let Message::Keys { sections } = m else { panic!() };
            let mut sections = sections.clone();
            f(&mut sections);
            Message::Keys { sections }
        }
    }
    invalid(err("KeysRequest", &keys(|s| s.clear())));
    invalid(err("KeysRequest", &keys(|s| s[0].segment += 1)));
    invalid(err("KeysRequest", &keys(|s| s.push(s[0].clone()))));
    invalid(err(
        "KeysRequest",
        &keys(|s| {
            s[0].complete = false;
            s[0].entries.clear();
        }),
    ));
    invalid(err(
        "KeysRequest",
        &keys(|s| {
            let e = s[0].entries[0].clone();
            s[0].entries.push(e);
        }),
    ));
    invalid(err(
        "KeysRequest",
        &keys(|s| s[0].entries.push((b"elsewhere?".to_vec(), Digest::EMPTY))),
    ));
    invalid(err(
        "KeysRequest",
        &keys(|s| s[0].entries.push((vec![0xff; MAX_KEY_LEN + 1], Digest::EMPTY))),
    ));

    // A different local tree.
    let (mut exchange, _) = Exchange::start(&a);
    let reply = respond(&b, &Message::RootRequest).unwrap();
    assert_eq!(exchange.handle(&odd, reply), Err(ExchangeError::WrongTree));
}

#[test]
fn garbage_never_panics() {
    let (ma, mb) = random_pair(11, 300, 20);
    let (a, b) = (build(Config::default(), &ma), build(Config::default(), &mb));
    // Valid messages of every kind, to mutate.
    let mut corpus = Vec::new();
    let (mut exchange, mut request) = Exchange::start(&a);
    loop {
        let reply = respond(&b, &request).unwrap();
        corpus.push(postcard::to_allocvec(&request).unwrap());
        corpus.push(postcard::to_allocvec(&reply).unwrap());
        match exchange.handle(&a, reply).unwrap() {
            Step::Send(next) => request = next,
            Step::Done(_) => break,
        }
    }
    let mut rng = rng::from_seed(12);
    let mut decoded = 0;
    for i in 0..20_000 {
        let mut bytes = if i % 2 == 0 {
            corpus[rng.random_range(0..corpus.len())].clone()
        } else {
            let mut b = vec![0u8; rng.random_range(0..64)];
            rng.fill(&mut b[..]);
            b
        };
        for _ in 0..rng.random_range(0..4) {
            if bytes.is_empty() {
                break;
            }
            let at = rng.random_range(0..bytes.len());
            bytes[at] = rng.random();
        }
        let Ok(message) = wire::decode_body::<Message>(&bytes) else {
            continue;
        };
        decoded += 1;
        let _ = respond(&a, &message);
        for kind in ["RootRequest", "ChildrenRequest", "KeysRequest"] {
            let (mut exchange, _) = exchange_at(&a, &b, kind);
            let _ = exchange.handle(&a, message.clone());
        }
    }
    assert!(decoded > 1000, "only {decoded} decoded");
}

#[test]
fn lying_and_changing_peers_cannot_stall_an_exchange() {
    let (ma, mb) = random_pair(13, 2000, 50);
    // Few segments, so made-up keys for a given segment are quick to find.
    let small = Config::new(16, 4).unwrap();
    let (a, b) = (build(small, &ma), build(small, &mb));
    // A peer that dribbles one made-up key per reply, in segment order.
    let (mut exchange, mut request) = exchange_at(&a, &b, "KeysRequest");
    let Message::KeysRequest { segments, .. } = &request else {
        panic!()
    };
    let segment = segments[0];
    let mut made_up: Vec<(u64, Vec<u8>)> = (0..20_000u32)
        .map(|n| n.to_be_bytes().to_vec())
        .filter(|k| a.segment_of(k) == segment)
        .map(|k| (key_hash(&k), k))
        .collect();
    made_up.sort();
    assert!(made_up.len() > 1000);
    for (n, (_, key)) in made_up.into_iter().enumerate() {
        let Message::KeysRequest { segments, .. } = &request else {
            panic!()
        };
        assert_eq!(segments[0], segment);
        let reply = Message::Keys {
            sections: vec![SegmentKeys {
                segment,
                entries: vec![(key, Digest::from_u64(n as u64))],
                complete: false,
            }],
        };
        match exchange.handle(&a, reply) {
            Ok(Step::Send(next)) => request = next,
            Ok(Step::Done(diff)) => {
                assert!(!diff.complete);
                break;
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(exchange.rounds(), Limits::default().max_rounds);

    // A peer whose tree changes under the exchange, and a local tree that
    // changes too.
    let (mut a, mut b) = (build(Config::default(), &ma), build(Config::default(), &mb));
    let mut rng = rng::from_seed(14);
    let (mut exchange, mut request) = Exchange::start(&a);
    loop {
        for _ in 0..50 {
            b.insert(&random_key(&mut rng), Digest::from_u64(1)).unwrap();
            a.insert(&random_key(&mut rng), Digest::from_u64(2)).unwrap();
        }
        b.update();
        let reply = respond(&b, &request).unwrap();
        match exchange.handle(&a, reply).unwrap() {
            Step::Send(next) => request = next,
            Step::Done(_) => break,
        }
        a.update();
    }
    assert!(exchange.rounds() <= 10, "{} rounds", exchange.rounds());
}

#[derive(Debug, Clone)]
enum Edit {
    Insert(u8, u8),
    Remove(u8),
}

fn edit() -> impl Strategy<Value = (u8, Edit)> {
    // Target: 0 = a, 1 = b, 2 = both. Keys and values from small domains so
    // that edits collide, overwrite and undo each other.
    let op = prop_oneof![
        (0u8..64, 0u8..4).prop_map(|(k, v)| Edit::Insert(k, v)),
        (0u8..64).prop_map(Edit::Remove),
    ];
    (0u8..3, op)
}

fn key_of(k: u8) -> Vec<u8> {
    // Lengths vary with the key, so keys are not all the same width.
    vec![k; 1 + usize::from(k % 5)]
}

fn apply(tree: &mut HashTree, model: &mut Model, edit: &Edit) {
    match edit {
        Edit::Insert(k, v) => {
            let d = Digest::of(&[*v]);
            assert_eq!(tree.insert(&key_of(*k), d).unwrap(), model.insert(key_of(*k), d));
        }
        Edit::Remove(k) => assert_eq!(tree.remove(&key_of(*k)), model.remove(&key_of(*k))),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn exchange_matches_the_model_and_repair_converges(
        edits in proptest::collection::vec(edit(), 0..200),
        shape in 0usize..3,
    ) {
        let config = [Config::default(), Config::new(16, 2).unwrap(), Config::new(64, 4).unwrap()][shape];
        let (mut a, mut b) = (HashTree::new(config).unwrap(), HashTree::new(config).unwrap());
        let (mut ma, mut mb) = (Model::new(), Model::new());
        for (i, (target, e)) in edits.iter().enumerate() {
            if *target != 1 { apply(&mut a, &mut ma, e); }
            if *target != 0 { apply(&mut b, &mut mb, e); }
            // Update at arbitrary points, not only at the end.
            if i % 17 == 0 { a.update(); }
        }
        a.update();
        b.update();
        prop_assert_eq!(a.len(), ma.len());
        prop_assert_eq!(a.root() == b.root(), ma == mb);

        let r = run(&a, &b);
        prop_assert!(r.diff.complete);
        prop_assert_eq!(found(&r.diff), expected(&ma, &mb));

        // Repair: copy what each side lacks; on a conflict the peer wins.
        for key in r.diff.missing_locally.iter().chain(&r.diff.different) {
            let d = b.get(key).unwrap();
            a.insert(key, d).unwrap();
        }
        for key in &r.diff.missing_remotely {
            b.insert(key, a.get(key).unwrap()).unwrap();
        }
        a.update();
        b.update();
        prop_assert_eq!(a.root(), b.root());
        prop_assert_eq!(a.iter().collect::<Vec<_>>(), b.iter().collect::<Vec<_>>());
        prop_assert_eq!(run(&a, &b).rounds, 1);
    }
}
