//! Two hash trees built from arbitrary edits are exchanged and repaired
//! until their roots match (the `converge` target of merkle-search-tree):
//! every diff must be exactly what a model comparison predicts, the
//! exchanges must end within their round limit, and repair must converge
//! within a bound of exchanges. Arbitrary bytes decoded as messages are
//! then fed to the responder and to initiators in every phase: they may be
//! refused, never panic.
#![no_main]

use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use epidemic_core::hashtree::{Config, Diff, Digest, Exchange, HashTree, Limits, Message, Step, respond};
use epidemic_core::wire;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Side {
    A,
    B,
    Both,
}

#[derive(Arbitrary, Debug)]
enum Edit {
    Insert {
        side: Side,
        key: u8,
        len: u8,
        value: u8,
    },
    Remove {
        side: Side,
        key: u8,
    },
    /// Rehash now, so dirty and clean segments mix.
    Update {
        side: Side,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    shape: u8,
    /// 0 for the default limits, else at most this many keys per diff.
    max_diff: u8,
    edits: Vec<Edit>,
    /// (phase to deliver in, bytes to decode as a message).
    garbage: Vec<(u8, Vec<u8>)>,
}

/// A small key domain, so edits collide, overwrite and undo each other.
fn key(k: u8, len: u8) -> Vec<u8> {
    vec![k; 1 + usize::from(len % 4)]
}

fn sides(side: Side) -> &'static [usize] {
    match side {
        Side::A => &[0],
        Side::B => &[1],
        Side::Both => &[0, 1],
    }
}

type Model = BTreeMap<Vec<u8>, Digest>;

fn model(tree: &HashTree) -> Model {
    tree.iter().map(|(k, d)| (k.to_vec(), d)).collect()
}

/// Runs one exchange from `a` against `b`, bounded by the limits.
fn exchange(a: &HashTree, b: &HashTree, limits: Limits) -> Diff {
    let (mut exchange, mut request) = Exchange::with_limits(a, limits);
    let mut replies = 0u32;
    loop {
        let reply = respond(b, &request).expect("honest requests are answered");
        replies += 1;
        assert!(replies <= limits.max_rounds, "exchange ran past its round limit");
        match exchange.handle(a, reply).expect("honest replies are accepted") {
            Step::Send(next) => request = next,
            Step::Done(diff) => return diff,
        }
    }
}

fn check_diff(diff: &Diff, a: &Model, b: &Model, max: usize) {
    let mut seen = std::collections::BTreeSet::new();
    for k in &diff.missing_locally {
        assert!(!a.contains_key(k) && b.contains_key(k), "wrongly missing locally");
        assert!(seen.insert(k.clone()));
    }
    for k in &diff.missing_remotely {
        assert!(a.contains_key(k) && !b.contains_key(k), "wrongly missing remotely");
        assert!(seen.insert(k.clone()));
    }
    for k in &diff.different {
        assert!(
            a.contains_key(k) && b.contains_key(k) && a[k] != b[k],
            "wrongly different"
        );
        assert!(seen.insert(k.clone()));
    }
    let all = a.iter().filter(|(k, d)| b.get(*k) != Some(d)).count() + b.keys().filter(|k| !a.contains_key(*k)).count();
    if diff.complete {
        assert_eq!(seen.len(), all, "a complete diff missed differences");
    } else {
        assert!(
            seen.len() <= max && seen.len() < all,
            "an incomplete diff that was complete"
        );
    }
}

/// Copies what each side lacks; on a conflict the larger digest wins.
fn repair(diff: &Diff, trees: &mut [HashTree; 2]) {
    for k in &diff.missing_locally {
        let d = trees[1].get(k).unwrap();
        trees[0].insert(k, d).unwrap();
    }
    for k in &diff.missing_remotely {
        let d = trees[0].get(k).unwrap();
        trees[1].insert(k, d).unwrap();
    }
    for k in &diff.different {
        let d = trees[0].get(k).unwrap().max(trees[1].get(k).unwrap());
        trees[0].insert(k, d).unwrap();
        trees[1].insert(k, d).unwrap();
    }
    trees[0].update();
    trees[1].update();
}

/// An exchange from `a` against `b`, driven to its first request of phase
/// `phase` (0 root, 1 children, 2 keys), if it gets there.
fn exchange_at(a: &HashTree, b: &HashTree, phase: u8) -> Option<Exchange> {
    let (mut exchange, mut request) = Exchange::start(a);
    let want = ["RootRequest", "ChildrenRequest", "KeysRequest"][usize::from(phase % 3)];
    while request.name() != want {
        match exchange.handle(a, respond(b, &request).ok()?).ok()? {
            Step::Send(next) => request = next,
            Step::Done(_) => return None,
        }
    }
    Some(exchange)
}

fuzz_target!(|input: Input| {
    let shapes = [
        Config::new(2, 2).unwrap(),
        Config::new(16, 2).unwrap(),
        Config::new(64, 4).unwrap(),
        Config::default(),
    ];
    let config = shapes[usize::from(input.shape) % shapes.len()];
    let mut trees = [HashTree::new(config).unwrap(), HashTree::new(config).unwrap()];
    for edit in input.edits.iter().take(512) {
        match *edit {
            Edit::Insert {
                side,
                key: k,
                len,
                value,
            } => {
                for &s in sides(side) {
                    trees[s].insert(&key(k, len), Digest::of(&[value])).unwrap();
                }
            }
            Edit::Remove { side, key: k } => {
                for &s in sides(side) {
                    for len in 0..4 {
                        trees[s].remove(&key(k, len));
                    }
                }
            }
            Edit::Update { side } => {
                for &s in sides(side) {
                    trees[s].update();
                }
            }
        }
    }
    trees[0].update();
    trees[1].update();

    let mut limits = Limits::default();
    if input.max_diff != 0 {
        limits.max_diff_keys = usize::from(input.max_diff % 16) + 1;
    }
    // Each exchange repairs at least min(differences, max_diff_keys) keys.
    let keys = trees[0].len() + trees[1].len();
    let bound = keys / limits.max_diff_keys + 2;
    let mut exchanges = 0;
    loop {
        let (ma, mb) = (model(&trees[0]), model(&trees[1]));
        assert_eq!(trees[0].root() == trees[1].root(), ma == mb);
        if ma == mb {
            break;
        }
        exchanges += 1;
        assert!(exchanges <= bound, "repair did not converge in {bound} exchanges");
        let diff = exchange(&trees[0], &trees[1], limits);
        check_diff(&diff, &ma, &mb, limits.max_diff_keys);
        assert!(!diff.is_empty(), "trees differ but the diff is empty");
        repair(&diff, &mut trees);
    }

    // Garbage: messages from arbitrary bytes, delivered anywhere.
    let [a, _] = &trees;
    let mut b = a.clone();
    b.insert(b"only in b", Digest::of(b"x")).unwrap();
    b.remove(&key(0, 0));
    b.update();
    for (phase, bytes) in input.garbage.iter().take(16) {
        let Ok(message) = wire::decode_body::<Message>(bytes) else {
            continue;
        };
        let _ = respond(a, &message);
        if let Some(mut exchange) = exchange_at(a, &b, *phase) {
            if exchange.handle(a, message.clone()).is_err() {
                assert!(exchange.is_finished());
            }
        }
    }
});
