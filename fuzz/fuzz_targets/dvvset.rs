//! Sequences of DVVSet operations on three servers' copies of one key, with
//! client writes, anti-entropy, resolution and decoded peer bytes mixed in.
//! Nothing may panic, and after every step the sync laws and the causal
//! invariants must hold.
//!
//! Sets made by following the protocol are *trusted*: no dot in them was ever
//! given to two values. For those the checks are exact. A decoded set can
//! claim any values at any dots, so sets built from one are checked only for
//! what holds regardless of values (contexts, live-dot counts, no panic).
#![no_main]

use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use epidemic_core::clock::{DVVSet, Dot, VClock};
use epidemic_core::wire;
use libfuzzer_sys::fuzz_target;

type Set = DVVSet<u8, u16>;

const SERVERS: usize = 3;
/// Snapshots kept for contexts and operands; bounds each run's work.
const MAX_SNAPSHOTS: usize = 24;
const MAX_OPS: usize = 64;

#[derive(Arbitrary, Debug)]
enum Op {
    /// A client that read snapshot `read` writes through `server`.
    Write { server: u8, read: u8, value: u16 },
    /// A client writes blind through `server`.
    WriteBlind { server: u8, value: u16 },
    /// Riak's `update/2` with the server's own context.
    WriteFresh { server: u8, value: u16 },
    /// A client prepares a write (anonymous value) with snapshot `read`'s context.
    Prepare { read: u8, value: u16 },
    /// `server` takes snapshot `write` as a client's write.
    Submit { server: u8, write: u8 },
    /// Anti-entropy between two servers.
    Sync { into: u8, from: u8 },
    /// Sync of any two snapshots.
    SyncSnapshots { a: u8, b: u8 },
    /// Last-writer-wins on a server's copy, stored back.
    Lww { server: u8 },
    /// Reconcile a server's copy into the sum of its values.
    Reconcile { server: u8 },
    /// A peer's bytes.
    Decode(Vec<u8>),
}

#[derive(Clone)]
struct Snapshot {
    set: Set,
    trusted: bool,
}

struct World {
    servers: [Set; SERVERS],
    snapshots: Vec<Snapshot>,
    replaced: usize,
    /// The value each dot of a trusted set wrote.
    dots: BTreeMap<Dot<u8>, u16>,
}

impl World {
    fn new() -> Self {
        World {
            servers: Default::default(),
            snapshots: vec![Snapshot {
                set: Set::default(),
                trusted: true,
            }],
            replaced: 0,
            dots: BTreeMap::new(),
        }
    }

    fn snapshot(&self, i: u8) -> &Snapshot {
        &self.snapshots[usize::from(i) % self.snapshots.len()]
    }

    fn push(&mut self, set: Set, trusted: bool) {
        let snapshot = Snapshot { set, trusted };
        if self.snapshots.len() < MAX_SNAPSHOTS {
            self.snapshots.push(snapshot);
        } else {
            // Slot 0 keeps the empty set.
            self.replaced += 1;
            let slot = 1 + self.replaced % (MAX_SNAPSHOTS - 1);
            self.snapshots[slot] = snapshot;
        }
    }

    /// Stores a server's new copy after checking it against the old one.
    fn store(&mut self, s: usize, new: Set) {
        let old = std::mem::replace(&mut self.servers[s], new.clone());
        check_pair(&trusted(&old), &trusted(&new));
        self.record(&new);
        self.push(new, true);
    }

    /// Every dot keeps the value it was first seen with.
    fn record(&mut self, set: &Set) {
        for (dot, &value) in set.values_with_dots() {
            if let Some(dot) = dot {
                let first = *self.dots.entry(dot.clone()).or_insert(value);
                assert_eq!(first, value, "dot {dot:?} wrote two values");
            }
        }
    }

    fn apply(&mut self, op: Op) {
        let server = |s: u8| usize::from(s) % SERVERS;
        match op {
            Op::Write { server: s, read, value } => {
                let s = server(s);
                let context = self.snapshot(read).set.join();
                let stored = &self.servers[s];
                let new = Set::new_with(context.clone(), value).update_with(stored, s as u8);
                check_write(stored, &context, value, s as u8, &new);
                self.store(s, new);
            }
            Op::WriteBlind { server: s, value } => {
                let s = server(s);
                let stored = &self.servers[s];
                let new = Set::new(value).update_with(stored, s as u8);
                check_write(stored, &VClock::new(), value, s as u8, &new);
                self.store(s, new);
            }
            Op::WriteFresh { server: s, value } => {
                let s = server(s);
                let stored = &self.servers[s];
                let new = Set::new_with(stored.join(), value).update(s as u8);
                assert_eq!(new.values().collect::<Vec<_>>(), [&value]);
                assert!(stored.less(&new));
                self.store(s, new);
            }
            Op::Prepare { read, value } => {
                let context = self.snapshot(read).set.join();
                let write = Set::new_with(context.clone(), value);
                assert_eq!(write.join(), context);
                assert_eq!(write.size(), 1);
                self.push(write, true);
            }
            Op::Submit { server: s, write } => {
                let s = server(s);
                let write = self.snapshot(write).clone();
                let stored = &self.servers[s];
                let new = write.set.clone().update_with(stored, s as u8);
                let mut context = stored.join();
                context.merge(&write.set.join());
                assert!(new.join().descends(&context));
                assert!(new.size() <= stored.size() + write.set.size());
                if write.trusted {
                    self.store(s, new);
                } else {
                    // It may hold dots the server will use: keep it out of the servers.
                    self.push(new, false);
                }
            }
            Op::Sync { into, from } => {
                let (into, from) = (server(into), server(from));
                let new = self.servers[into].sync(&self.servers[from]);
                check_pair(&trusted(&self.servers[into]), &trusted(&self.servers[from]));
                self.store(into, new);
            }
            Op::SyncSnapshots { a, b } => {
                let (a, b) = (self.snapshot(a).clone(), self.snapshot(b).clone());
                check_pair(&a, &b);
                let c = self.servers[0].clone();
                check_triple(&a, &b, &trusted(&c));
                let trusted = a.trusted && b.trusted;
                let synced = a.set.sync(&b.set);
                if trusted {
                    self.record(&synced);
                }
                self.push(synced, trusted);
            }
            Op::Lww { server: s } => {
                let s = server(s);
                let stored = &self.servers[s];
                let less = |a: &u16, b: &u16| a < b;
                let new = stored.lww(less);
                assert_eq!(new.size(), stored.size().min(1));
                assert_eq!(new.values().next(), stored.last(less));
                assert_eq!(new.join(), stored.join());
                // Anonymous losers come back: only a new dot (reconcile) supersedes them.
                if anonymous(stored).is_empty() {
                    assert!(same(&stored.sync(&new), &new));
                }
                self.store(s, new);
            }
            Op::Reconcile { server: s } => {
                let s = server(s);
                let stored = &self.servers[s];
                let new = stored.reconcile(|vs| vs.fold(0u16, |acc, v| acc.wrapping_add(*v)), s as u8);
                assert_eq!(new.size(), 1);
                assert!(stored.less(&new));
                assert!(same(&stored.sync(&new), &new));
                self.store(s, new);
            }
            Op::Decode(bytes) => {
                if let Ok(set) = wire::decode_body::<Set>(&bytes) {
                    let mine = trusted(&self.servers[0]);
                    let theirs = Snapshot { set, trusted: false };
                    check_pair(&mine, &theirs);
                    check_pair(&theirs, &theirs);
                    // Every operation must take it.
                    let _ = theirs.set.lww(|a, b| a < b);
                    let _ = theirs.set.reconcile(|vs| vs.len() as u16, 0);
                    let _ = theirs.set.clone().update(1);
                    let _ = theirs.set.clone().update_with(&mine.set, 2);
                    let _ = theirs.set.clone().map(u32::from).size();
                    self.push(theirs.set, false);
                }
            }
        }
        // The servers against each other, and the newest snapshot against one.
        for i in 0..SERVERS {
            check_pair(&trusted(&self.servers[i]), &trusted(&self.servers[(i + 1) % SERVERS]));
        }
        if let Some(last) = self.snapshots.last().cloned() {
            check_pair(&last, &trusted(&self.servers[1]));
        }
        let (a, b, c) = (
            trusted(&self.servers[0]),
            trusted(&self.servers[1]),
            trusted(&self.servers[2]),
        );
        check_triple(&a, &b, &c);
    }
}

fn trusted(set: &Set) -> Snapshot {
    Snapshot {
        set: set.clone(),
        trusted: true,
    }
}

fn dotted(set: &Set) -> Vec<(Dot<u8>, u16)> {
    set.values_with_dots().filter_map(|(d, &v)| Some((d?, v))).collect()
}

fn anonymous(set: &Set) -> Vec<u16> {
    set.values_with_dots()
        .filter(|(d, _)| d.is_none())
        .map(|(_, &v)| v)
        .collect()
}

/// Equal, with the anonymous values compared as sets.
fn same(x: &Set, y: &Set) -> bool {
    let (ax, ay) = (anonymous(x), anonymous(y));
    x.equal(y) && dotted(x) == dotted(y) && ax.iter().all(|v| ay.contains(v)) && ay.iter().all(|v| ax.contains(v))
}

fn check_pair(a: &Snapshot, b: &Snapshot) {
    let (x, y) = (&a.set, &b.set);
    let xy = x.sync(y);
    let yx = y.sync(x);

    // Whatever the values: contexts join, live-dot counts agree, sizes add up.
    let mut both = x.join();
    both.merge(&y.join());
    assert_eq!(xy.join(), both);
    assert!(xy.equal(&yx));
    assert!(xy.equal(&xy.sync(&xy)));
    assert_eq!(xy.size(), xy.values().count());
    assert_eq!(xy.size(), xy.values().len());
    assert!(xy.size() <= x.size() + y.size());
    assert_eq!(x.less(y), y.join().dominates(&x.join()));
    assert!(!(x.less(y) && y.less(x)));
    let ids: Vec<_> = xy.ids().collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    assert!(x.equal(x));

    if a.trusted && b.trusted {
        assert!(same(&xy, &yx), "sync not commutative:\n{x:?}\n{y:?}");
        assert!(same(&x.sync(x), x), "sync not idempotent: {x:?}");
        assert!(same(&xy.sync(y), &xy));
        // A dotted value leaves exactly when the other side saw its dot and dropped it.
        let (dx, dy, dxy) = (dotted(x), dotted(y), dotted(&xy));
        for (mine, other, other_set) in [(&dx, &dy, y), (&dy, &dx, x)] {
            let seen = other_set.join();
            for dv in mine {
                assert_eq!(dxy.contains(dv), !seen.contains(&dv.0) || other.contains(dv), "{dv:?}");
            }
        }
        assert!(dxy.iter().all(|dv| dx.contains(dv) || dy.contains(dv)));
        // An older side adds nothing (it may still remove what it saw
        // overwritten, if it is a client's context rather than a replica).
        if x.less(y) {
            assert_eq!(anonymous(&xy), anonymous(y));
            assert!(dxy.iter().all(|dv| dy.contains(dv)));
        }
    }
}

/// Associativity holds for trusted sets without anonymous values.
fn check_triple(a: &Snapshot, b: &Snapshot, c: &Snapshot) {
    let (x, y, z) = (&a.set, &b.set, &c.set);
    let left = x.sync(y).sync(z);
    let right = x.sync(&y.sync(z));
    assert!(left.equal(&right));
    assert_eq!(left.join(), right.join());
    if [a, b, c].iter().all(|s| s.trusted && anonymous(&s.set).is_empty()) {
        assert_eq!(left, right, "sync not associative");
        assert_eq!(Set::sync_all([x, y, z]), left);
    }
}

/// A write drops exactly the stored values `context` covers and adds
/// `value` under a dot nobody has seen.
fn check_write(stored: &Set, context: &VClock<u8>, value: u16, server: u8, new: &Set) {
    assert!(stored.less(new));
    assert!(new.join().descends(context));
    let dot = Dot::new(server, new.join().get(&server));
    assert!(!stored.join().contains(&dot) && !context.contains(&dot));
    let after = dotted(new);
    assert!(after.contains(&(dot, value)));
    for dv in dotted(stored) {
        assert_eq!(after.contains(&dv), !context.contains(&dv.0));
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let mut world = World::new();
    for op in ops.into_iter().take(MAX_OPS) {
        world.apply(op);
    }
});
