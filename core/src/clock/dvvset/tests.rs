//! Tests of [`DVVSet`](super::DVVSet).

use super::decode::check;
use super::*;
use proptest::prelude::*;
use proptest::sample::Index;

type Set = DVVSet<u8, u32>;

/// A set from `(id, counter, values oldest first)` triples and
/// anonymous values.
fn set(entries: &[(u8, u64, &[u32])], anonymous: &[u32]) -> Set {
    DVVSet {
        entries: entries
            .iter()
            .map(|&(id, counter, values)| Entry {
                id,
                counter,
                values: values.to_vec(),
            })
            .collect(),
        anonymous: anonymous.to_vec(),
    }
}

fn vc(pairs: &[(u8, u64)]) -> VClock<u8> {
    pairs.iter().copied().collect()
}

/// Every dotted value with its dot.
fn dotted(s: &Set) -> Vec<(Dot<u8>, u32)> {
    s.values_with_dots().filter_map(|(dot, &v)| Some((dot?, v))).collect()
}

fn sorted_values(s: &Set) -> Vec<u32> {
    let mut values: Vec<u32> = s.values().copied().collect();
    values.sort_unstable();
    values
}

/// `==`, but with the anonymous values compared as sets.
fn same(a: &Set, b: &Set) -> bool {
    a.entries == b.entries
        && a.anonymous.iter().all(|v| b.anonymous.contains(v))
        && b.anonymous.iter().all(|v| a.anonymous.contains(v))
}

/// `less(a, b)` as Riak's eunit tests spell "a is older than b".
fn num_less(a: &u32, b: &u32) -> bool {
    a < b
}

// ---- construction, join, update ----

#[test]
fn new_sets_hold_one_anonymous_value() {
    assert_eq!(Set::new(7), set(&[], &[7]));
    let mut context = vc(&[(2, 3), (1, 1)]);
    context.apply(&Dot::new(9, 0)); // a zero entry must not become an entry
    assert_eq!(Set::new_with(context, 7), set(&[(1, 1, &[]), (2, 3, &[])], &[7]));
    assert_eq!(Set::default().size(), 0);
}

#[test]
fn join_grows_with_each_server_that_writes() {
    let blind = Set::new(1);
    let via_a = blind.clone().update(b'a');
    let via_b = Set::new_with(via_a.join(), 2).update_with(&via_a, b'b');
    assert_eq!(blind.join(), VClock::new());
    assert_eq!(via_a.join(), vc(&[(b'a', 1)]));
    assert_eq!(via_b.join(), vc(&[(b'a', 1), (b'b', 1)]));
}

#[test]
fn update_with_drops_exactly_what_the_context_covers() {
    let (a, b) = (b'a', b'b');
    let first = Set::new(1).update(a);
    let overwrite = Set::new_with(first.join(), 2).update_with(&first, a);
    // A client who read `overwrite` writes through another server.
    let elsewhere = Set::new_with(overwrite.join(), 3).update_with(&overwrite, b);
    // A client who only read `first` writes through b, then through a.
    let stale_b = Set::new_with(first.join(), 4).update_with(&overwrite, b);
    let stale_a = Set::new_with(first.join(), 5).update_with(&overwrite, a);
    assert_eq!(first, set(&[(a, 1, &[1])], &[]));
    assert_eq!(overwrite, set(&[(a, 1 + 1, &[2])], &[]));
    assert_eq!(elsewhere, set(&[(a, 2, &[]), (b, 1, &[3])], &[]));
    assert_eq!(stale_b, set(&[(a, 2, &[2]), (b, 1, &[4])], &[]));
    // Two live values on one server, told apart by their dots a2 and a3.
    assert_eq!(stale_a, set(&[(a, 3, &[2, 5])], &[]));
}

#[test]
fn concurrent_writers_through_one_server_keep_their_values() {
    // One writer keeps writing blind; another writes with an old read.
    let s = b's';
    let v1 = Set::new(1).update(s);
    let read_v1 = v1.join();
    let v2 = Set::new(2).update_with(&v1, s);
    let v3 = Set::new_with(read_v1.clone(), 3).update_with(&v2, s);
    assert_eq!(read_v1, vc(&[(s, 1)]));
    assert_eq!(v2, set(&[(s, 2, &[1, 2])], &[]));
    // v3's writer saw v1 (so it goes) but not v2 (so it stays).
    assert_eq!(v3, set(&[(s, 3, &[2, 3])], &[]));
}

#[test]
fn event_advances_one_server() {
    let mut s = set(&[(b'b', 1, &[1])], &[]);
    s.event(b'b', 2);
    assert_eq!(s, set(&[(b'b', 2, &[1, 2])], &[]));
    s.event(b'a', 3);
    s.event(b'c', 4);
    assert_eq!(s, set(&[(b'a', 1, &[3]), (b'b', 2, &[1, 2]), (b'c', 1, &[4])], &[]));
}

#[test]
fn update_with_several_or_no_anonymous_values() {
    let stored = set(&[(1, 2, &[10, 20])], &[]);
    // Two anonymous values (from syncing two blind writes): two dots.
    let two = Set::new(30).sync(&Set::new(40));
    assert_eq!(two.update_with(&stored, 1), set(&[(1, 4, &[10, 20, 30, 40])], &[]));
    // No value: the context only removes what it covers.
    let context_only = set(&[(1, 1, &[])], &[]);
    assert_eq!(context_only.clone().update_with(&stored, 1), set(&[(1, 2, &[20])], &[]));
    assert_eq!(context_only.update(1), set(&[(1, 1, &[])], &[]));
}

// ---- sync ----

#[test]
fn sync_hand_worked() {
    let seen_a1 = set(&[(b'a', 1, &[])], &[]);
    let two_live = set(&[(b'a', 2, &[1, 2])], &[]);
    assert_eq!(seen_a1.sync(&two_live), set(&[(b'a', 2, &[2])], &[]));
    assert_eq!(two_live.sync(&seen_a1), set(&[(b'a', 2, &[2])], &[]));

    // Disjoint servers: everything survives.
    let via_a = Set::new(1).update(b'a');
    let via_b = Set::new(2).update(b'b');
    let only_x = set(&[(b'x', 1, &[])], &[]);
    assert_eq!(via_a.sync(&via_b), set(&[(b'a', 1, &[1]), (b'b', 1, &[2])], &[]));
    assert_eq!(via_a.sync(&only_x), set(&[(b'a', 1, &[1]), (b'x', 1, &[])], &[]));
    assert_eq!(via_a.sync(&only_x), only_x.sync(&via_a));

    // One value, written twice from the same context through b and c.
    let a2 = Set::new_with(via_a.join(), 2).update(b'a');
    let via_b3 = Set::new_with(a2.join(), 3).update(b'b');
    let via_c3 = Set::new_with(a2.join(), 3).update(b'c');
    let both = set(&[(b'a', 2, &[]), (b'b', 1, &[3]), (b'c', 1, &[3])], &[]);
    assert_eq!(via_c3.sync(&via_b3), both);
    assert_eq!(via_b3.sync(&via_c3), both);
    assert_eq!(Set::sync_all([&via_b3, &a2, &via_c3]), both);
    assert_eq!(Set::sync_all([]), Set::default());
}

#[test]
fn merge_entry_keeps_unseen_and_commonly_live_values() {
    // Values are named after their dots: 30 is a3.
    let newer = set(&[(b'a', 5, &[30, 40, 50])], &[]);
    // `older` saw a1..a4 and still holds a2..a4: a3, a4 stay, a5 is news.
    let older = set(&[(b'a', 4, &[20, 30, 40])], &[]);
    assert_eq!(newer.sync(&older), newer);
    // `older` saw a3 overwritten: a3 goes.
    let older = set(&[(b'a', 4, &[40])], &[]);
    assert_eq!(newer.sync(&older), set(&[(b'a', 5, &[40, 50])], &[]));
    assert_eq!(older.sync(&newer), set(&[(b'a', 5, &[40, 50])], &[]));
    // `older` saw everything up to a4 overwritten.
    let older = set(&[(b'a', 4, &[])], &[]);
    assert_eq!(newer.sync(&older), set(&[(b'a', 5, &[50])], &[]));
}

#[test]
fn anonymous_values_follow_riaks_rule() {
    // Equal (empty) contexts: both survive, in order of first appearance.
    let ab = Set::new(1).sync(&Set::new(2));
    let ba = Set::new(2).sync(&Set::new(1));
    assert_eq!(ab, set(&[], &[1, 2]));
    assert!(same(&ab, &ba) && ab != ba);
    assert_eq!(ab.sync(&ab), ab);
    // A strictly newer context drops them.
    let stored = set(&[(1, 2, &[5])], &[]);
    assert_eq!(Set::new_with(vc(&[(1, 1)]), 9).sync(&stored), stored);
    // Concurrent contexts keep them.
    assert_eq!(
        Set::new_with(vc(&[(2, 1)]), 9).sync(&stored),
        set(&[(1, 2, &[5]), (2, 1, &[])], &[9])
    );
    // Not associative: whether x's value survives depends on whether it
    // meets `xy` (which dominates it) alone or after `y` (concurrent).
    let x = Set::new_with(vc(&[(1, 1)]), 1);
    let y = Set::new_with(vc(&[(2, 1)]), 2);
    let xy = Set::new_with(vc(&[(1, 1), (2, 1)]), 3);
    assert_eq!(sorted_values(&x.sync(&y).sync(&xy)), [1, 2, 3]);
    assert_eq!(sorted_values(&x.sync(&y.sync(&xy))), [3]);
}

// ---- comparisons ----

#[test]
fn less_is_strict_causal_order() {
    let (a, b, c, d, z) = (b'a', b'b', b'c', b'd', b'z');
    let s_a = Set::new(1).update(a);
    let s_b = Set::new_with(s_a.join(), 2).update(a);
    let s_b2 = Set::new_with(s_a.join(), 2).update(b);
    let s_b3 = Set::new_with(s_a.join(), 2).update(z);
    let s_c = Set::new_with(s_b.join(), 3).update_with(&s_a, c);
    let s_d = Set::new_with(s_c.join(), 4).update_with(&s_b2, d);
    for (older, newer) in [
        (&s_a, &s_b),
        (&s_a, &s_c),
        (&s_b, &s_c),
        (&s_b, &s_d),
        (&s_b2, &s_d),
        (&s_a, &s_d),
    ] {
        assert!(older.less(newer) && !newer.less(older));
    }
    for (x, y) in [(&s_b2, &s_c), (&s_b, &s_b2), (&s_b2, &s_b3), (&s_c, &s_b3)] {
        assert!(!x.less(y) && !y.less(x), "concurrent");
    }
    for s in [&s_a, &s_b, &s_c, &s_d] {
        assert!(!s.less(s));
    }
    assert!(Set::default().less(&s_a) && !s_a.less(&Set::default()));
}

#[test]
fn equal_compares_history_and_live_dots_only() {
    let x = set(&[(1, 3, &[7, 8]), (2, 1, &[])], &[]);
    assert!(x.equal(&set(&[(1, 3, &[0, 0]), (2, 1, &[])], &[5])));
    assert!(!x.equal(&set(&[(1, 3, &[8]), (2, 1, &[])], &[])));
    assert!(!x.equal(&set(&[(1, 3, &[7, 8]), (2, 2, &[])], &[])));
    assert!(!x.equal(&set(&[(1, 3, &[7, 8])], &[])));
    assert!(!x.equal(&set(&[(1, 3, &[7, 8]), (3, 1, &[])], &[])));
}

// ---- getters and map ----

#[test]
fn size_ids_values_and_map() {
    let x = set(&[(1, 4, &[2, 5]), (2, 1, &[]), (3, 1, &[3])], &[10, 0]);
    assert_eq!(x.size(), 5);
    assert_eq!(x.ids().copied().collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(x.values().copied().collect::<Vec<_>>(), [2, 5, 3, 10, 0]);
    assert_eq!(x.values().len(), 5);
    let mut partly = x.values();
    partly.next();
    assert_eq!(partly.len(), 4);
    let with_dots: Vec<_> = x.values_with_dots().collect();
    let d = |id, n| Some(Dot::new(id, n));
    assert_eq!(
        with_dots,
        [(d(1, 3), &2), (d(1, 4), &5), (d(3, 1), &3), (None, &10), (None, &0)]
    );
    let saturated = set(&[(1, u64::MAX, &[7]), (2, u64::MAX, &[])], &[]);
    assert_eq!(saturated.values_with_dots().collect::<Vec<_>>(), [(d(1, u64::MAX), &7)]);
    let doubled = x.map(|v| u64::from(v) * 2);
    assert_eq!(doubled.values().copied().collect::<Vec<_>>(), [4, 10, 6, 20, 0]);
    assert_eq!(doubled.ids().copied().collect::<Vec<_>>(), [1, 2, 3]);
}

// ---- resolving ----

#[test]
fn last_and_lww_hand_worked() {
    let x = set(&[(1, 4, &[2, 5]), (2, 1, &[]), (3, 1, &[3])], &[]);
    assert_eq!(x.last(num_less), Some(&5));
    assert_eq!(x.lww(num_less), set(&[(1, 4, &[5]), (2, 1, &[]), (3, 1, &[])], &[]));
    assert_eq!(x.sync(&x.lww(num_less)), x.lww(num_less));

    // An anonymous winner stays anonymous, with the whole context.
    let y = set(&[(1, 4, &[2, 5]), (2, 1, &[]), (3, 1, &[3])], &[10, 0]);
    assert_eq!(y.last(num_less), Some(&10));
    assert_eq!(y.lww(num_less), set(&[(1, 4, &[]), (2, 1, &[]), (3, 1, &[])], &[10]));

    let z = set(&[(1, 4, &[2, 5]), (2, 1, &[1])], &[3]);
    assert_eq!(z.lww(num_less), set(&[(1, 4, &[5]), (2, 1, &[])], &[]));

    // Order by a timestamp: the winner is server 1's newest value.
    type Stamped = DVVSet<u8, (u32, u64)>;
    let by_time = |a: &(u32, u64), b: &(u32, u64)| a.1 < b.1;
    let t = Stamped {
        entries: vec![
            Entry {
                id: 1,
                counter: 4,
                values: vec![(7, 1_002_340), (5, 1_002_345)],
            },
            Entry {
                id: 2,
                counter: 1,
                values: vec![(4, 1_001_340)],
            },
        ],
        anonymous: vec![(2, 1_001_140)],
    };
    assert_eq!(t.last(by_time), Some(&(5, 1_002_345)));
    let t_lww = t.lww(by_time);
    assert_eq!(t_lww.values().collect::<Vec<_>>(), [&(5, 1_002_345)]);
    assert_eq!(t_lww.join(), t.join());
    assert_eq!(t_lww.anonymous, []);

    // The winner is not its server's newest value: it cannot keep its
    // dot (a3) without a4, so it becomes anonymous under the context.
    let mid = set(&[(1, 4, &[9, 5])], &[]);
    assert_eq!(mid.lww(num_less), set(&[(1, 4, &[])], &[9]));
    assert_eq!(mid.sync(&mid.lww(num_less)), mid.lww(num_less));
    assert_eq!(mid.lww(num_less).sync(&mid), mid.lww(num_less));

    // Ties go to the last value in `values()` order.
    let tie = set(&[(1, 1, &[4]), (2, 1, &[4])], &[]);
    assert_eq!(tie.lww(|_, _| false), set(&[(1, 1, &[]), (2, 1, &[4])], &[]));

    assert_eq!(Set::default().last(num_less), None);
    let no_values = set(&[(1, 2, &[])], &[]);
    assert_eq!(no_values.lww(num_less), no_values);
}

#[test]
fn reconcile_folds_siblings_into_one_new_dot() {
    let x = set(&[(1, 4, &[2, 5]), (2, 1, &[]), (3, 1, &[3])], &[]);
    let y = set(&[(1, 4, &[2, 5]), (2, 1, &[]), (3, 1, &[3])], &[10, 0]);
    let sum = |vs: Siblings<'_, u8, u32>| vs.sum::<u32>();
    let min = |vs: Siblings<'_, u8, u32>| vs.copied().min().unwrap_or(0);
    assert_eq!(
        x.reconcile(sum, 3),
        set(&[(1, 4, &[]), (2, 1, &[]), (3, 2, &[10])], &[])
    );
    assert_eq!(
        y.reconcile(sum, 3),
        set(&[(1, 4, &[]), (2, 1, &[]), (3, 2, &[20])], &[])
    );
    assert_eq!(x.reconcile(min, 2), set(&[(1, 4, &[]), (2, 2, &[2]), (3, 1, &[])], &[]));
    assert_eq!(
        y.reconcile(min, 4),
        set(&[(1, 4, &[]), (2, 1, &[]), (3, 1, &[]), (4, 1, &[0])], &[])
    );
    for r in [x.reconcile(sum, 3), y.reconcile(min, 4)] {
        assert!(x.less(&r) && y.less(&r));
        assert_eq!(x.sync(&r), r);
    }
}

// ---- decoding ----

#[test]
fn decoding_checks_the_invariants() {
    let good = set(&[(1, 4, &[2, 5]), (3, 1, &[])], &[7]);
    let bytes = postcard::to_allocvec(&good).expect("encodes");
    assert_eq!(postcard::from_bytes::<Set>(&bytes).ok(), Some(good));
    for bad in [
        set(&[(3, 1, &[]), (1, 1, &[])], &[]),
        set(&[(1, 1, &[]), (1, 2, &[])], &[]),
        set(&[(1, 0, &[])], &[]),
        set(&[(1, 1, &[1, 2])], &[]),
    ] {
        let bytes = postcard::to_allocvec(&bad).expect("encodes");
        assert!(postcard::from_bytes::<Set>(&bytes).is_err(), "{bad:?} decoded");
    }
}

// ---- the DVVSet paper's experiment ----

/// One key under per-server version vectors, as Riak kept keys before
/// DVVs (vnode vclocks, siblings allowed): each value carries a version
/// vector whose only actors are servers.
#[derive(Default)]
struct ServerVvKey {
    siblings: Vec<(VClock<u8>, u32)>,
}

impl ServerVvKey {
    /// The key's clock, and the context a reader gets: the join of the
    /// siblings' clocks.
    fn clock(&self) -> VClock<u8> {
        let mut clock = VClock::new();
        for (c, _) in &self.siblings {
            clock.merge(c);
        }
        clock
    }

    /// A write through `server` by a writer that last read `context`.
    /// The new value's clock is the key's clock, merged with the context
    /// and advanced at the server. As the new clock dominates every
    /// sibling's, whether or not the writer saw them, the clocks cannot
    /// say which siblings the writer overwrote; so the server keeps them
    /// all unless the writer saw the whole key. Returns the context the
    /// writer reads back.
    fn put(&mut self, server: u8, context: &VClock<u8>, value: u32) -> VClock<u8> {
        let mut clock = self.clock();
        if context.descends(&clock) {
            self.siblings.clear();
        }
        clock.merge(context);
        clock.increment(server);
        self.siblings.push((clock.clone(), value));
        clock
    }

    /// Anti-entropy that trusts the per-value clocks: keep a sibling
    /// unless another's clock strictly dominates it.
    fn sync(&self, other: &ServerVvKey) -> ServerVvKey {
        let all: Vec<_> = self.siblings.iter().chain(&other.siblings).cloned().collect();
        let mut siblings: Vec<(VClock<u8>, u32)> = Vec::new();
        for (clock, value) in &all {
            let dominated = all.iter().any(|(c, _)| c.dominates(clock));
            if !dominated && !siblings.iter().any(|(_, v)| v == value) {
                siblings.push((clock.clone(), *value));
            }
        }
        ServerVvKey { siblings }
    }

    fn values(&self) -> Vec<u32> {
        let mut values: Vec<u32> = self.siblings.iter().map(|(_, v)| *v).collect();
        values.sort_unstable();
        values
    }
}

/// Two clients each write 50 times to one key through one server,
/// alternating. Each writes with the context it got back from its own
/// previous write, which never includes the other client's latest one.
#[test]
fn two_clients_one_server_sibling_counts() {
    const SERVER: u8 = 0;
    let mut dvv = Set::default();
    let mut vv = ServerVvKey::default();
    // Per client: the context from its last write, under each scheme.
    let mut dvv_ctx = [VClock::new(), VClock::new()];
    let mut vv_ctx = [VClock::new(), VClock::new()];
    for write in 0..100u32 {
        let client = (write % 2) as usize;
        dvv = Set::new_with(dvv_ctx[client].clone(), write).update_with(&dvv, SERVER);
        dvv_ctx[client] = dvv.join();
        vv_ctx[client] = vv.put(SERVER, &vv_ctx[client], write);

        let writes = write as usize + 1;
        assert_eq!(dvv.size(), writes.min(2), "after write {writes}");
        // DVVSet keeps exactly each client's latest write.
        let latest = if write == 0 { vec![0] } else { vec![write - 1, write] };
        assert_eq!(sorted_values(&dvv), latest);
        // Server VVs keep every write ever made.
        assert_eq!(vv.siblings.len(), writes);
    }
    assert_eq!(dvv.size(), 2);
    assert_eq!(vv.siblings.len(), 100);
    assert_eq!(dvv.join(), vc(&[(SERVER, 100)]));
    assert_eq!(vv.clock(), vc(&[(SERVER, 100)]));
}

/// Why server-VV stores had to keep those siblings: the clocks claim an
/// order that did not happen, so trusting them loses a write.
#[test]
fn server_vvs_lose_a_write_when_their_clocks_are_trusted() {
    const S: u8 = 0;
    let mut vv = ServerVvKey::default();
    let read = vv.put(S, &VClock::new(), 1);
    vv.put(S, &read, 2); // Alice overwrites 1
    let replica = ServerVvKey {
        siblings: vv.siblings.clone(),
    };
    vv.put(S, &read, 3); // Bob overwrites 1, concurrently with Alice
    assert_eq!(vv.values(), [2, 3]);
    // 3's clock {s: 3} dominates 2's {s: 2}: syncing drops Alice's write.
    assert_eq!(vv.sync(&replica).values(), [3]);

    let mut dvv = Set::new(1).update(S);
    let read = dvv.join();
    dvv = Set::new_with(read.clone(), 2).update_with(&dvv, S);
    let replica = dvv.clone();
    dvv = Set::new_with(read, 3).update_with(&dvv, S);
    assert_eq!(sorted_values(&dvv.sync(&replica)), [2, 3]);
    assert_eq!(sorted_values(&replica.sync(&dvv)), [2, 3]);
}

// ---- properties ----

const SERVERS: usize = 3;

/// Every state of three servers' copies of one key over a random run of
/// client writes (with a context read from any earlier state, or blind),
/// anti-entropy syncs and reconciliations. Each value is unique, and each
/// server only creates events on its own latest copy, as in a real store.
fn history() -> impl Strategy<Value = Vec<Set>> {
    proptest::collection::vec((0..SERVERS, 0..SERVERS, any::<Index>(), 0u8..10), 1..40).prop_map(|steps| {
        let mut servers: [Set; SERVERS] = Default::default();
        let mut pool = vec![Set::default()];
        let mut next_value = 0u32;
        for (s, t, read, kind) in steps {
            next_value += 1;
            let id = s as u8;
            let new = match kind {
                0..=4 => {
                    let context = read.get(&pool).join();
                    Set::new_with(context, next_value).update_with(&servers[s], id)
                }
                5 => Set::new(next_value).update_with(&servers[s], id),
                6..=8 => servers[s].sync(&servers[t]),
                _ => servers[s].reconcile(|vs| vs.sum(), id),
            };
            servers[s] = new;
            pool.push(servers[s].clone());
        }
        pool
    })
}

fn pick(pool: &[Set], i: Index) -> &Set {
    i.get(pool)
}

proptest! {
    #[test]
    fn sync_is_a_join(pool in history(), i: Index, j: Index, k: Index) {
        let (a, b, c) = (pick(&pool, i), pick(&pool, j), pick(&pool, k));
        prop_assert_eq!(a.sync(b), b.sync(a));
        prop_assert_eq!(a.sync(b).sync(c), a.sync(&b.sync(c)));
        prop_assert_eq!(&a.sync(a), a);
        prop_assert_eq!(&a.sync(&Set::default()), a);
        prop_assert_eq!(Set::sync_all([a, b, c]), a.sync(b).sync(c));
    }

    #[test]
    fn sync_joins_the_contexts(pool in history(), i: Index, j: Index) {
        let (a, b) = (pick(&pool, i), pick(&pool, j));
        let synced = a.sync(b).join();
        let mut both = a.join();
        both.merge(&b.join());
        prop_assert!(synced.descends(&a.join()) && synced.descends(&b.join()));
        prop_assert_eq!(synced, both);
        prop_assert_eq!(a.less(b), b.join().dominates(&a.join()));
        if a.less(b) {
            prop_assert_eq!(&a.sync(b), b);
        }
    }

    /// Values never disappear unless a context covers them: a value of
    /// `a` leaves `sync(a, b)` exactly when `b` has seen its dot and no
    /// longer holds it. Nothing appears from nowhere.
    #[test]
    fn values_leave_only_when_a_context_covers_them(pool in history(), i: Index, j: Index) {
        let (a, b) = (pick(&pool, i), pick(&pool, j));
        let (da, db) = (dotted(a), dotted(b));
        let synced = dotted(&a.sync(b));
        for (x, y) in [(&da, &b), (&db, &a)] {
            let other = dotted(y);
            for dv in x.iter() {
                let expected = !y.join().contains(&dv.0) || other.contains(dv);
                prop_assert_eq!(synced.contains(dv), expected, "{:?}", dv);
            }
        }
        prop_assert!(synced.iter().all(|dv| da.contains(dv) || db.contains(dv)));
    }

    /// A write drops exactly the stored values its context covers and
    /// adds one value with a dot nobody has seen.
    #[test]
    fn update_with_adds_one_new_dot(pool in history(), i: Index, j: Index, id in 0u8..4) {
        let (stored, read) = (pick(&pool, i), pick(&pool, j));
        let context = read.join();
        let written = Set::new_with(context.clone(), u32::MAX).update_with(stored, id);
        let after = dotted(&written);
        let new: Vec<_> = after.iter().filter(|(_, v)| *v == u32::MAX).collect();
        prop_assert_eq!(new.len(), 1);
        let dot = &new[0].0;
        prop_assert!(!stored.join().contains(dot) && !context.contains(dot));
        for dv in dotted(stored) {
            prop_assert_eq!(after.contains(&dv), !context.contains(&dv.0));
        }
        prop_assert_eq!(written.size(), after.len());
        prop_assert!(stored.less(&written));
        prop_assert!(written.join().descends(&context));

        // With the stored set's own context: one value, newer than all.
        let full = Set::new_with(stored.join(), u32::MAX).update_with(stored, id);
        prop_assert_eq!(full.values().collect::<Vec<_>>(), [&u32::MAX]);
        prop_assert!(stored.less(&full));
    }

    #[test]
    fn resolving_leaves_one_value_that_descends(pool in history(), i: Index, id in 0u8..4) {
        let a = pick(&pool, i);
        let lww = a.lww(num_less);
        prop_assert_eq!(lww.size(), a.size().min(1));
        prop_assert_eq!(lww.values().next(), a.values().max());
        prop_assert_eq!(lww.join(), a.join());
        prop_assert_eq!(&a.sync(&lww), &lww);
        prop_assert_eq!(&lww.sync(a), &lww);
        let r = a.reconcile(|vs| vs.copied().max().unwrap_or(0), id);
        prop_assert_eq!(r.size(), 1);
        prop_assert!(a.less(&r));
        prop_assert_eq!(&a.sync(&r), &r);
    }

    #[test]
    fn encoding_round_trips(pool in history(), i: Index) {
        let a = pick(&pool, i);
        let bytes = postcard::to_allocvec(a).expect("encodes");
        let decoded = postcard::from_bytes::<Set>(&bytes).ok();
        prop_assert_eq!(decoded.as_ref(), Some(a));
    }

    /// A peer's bytes either fail to decode or give a set every
    /// operation handles.
    #[test]
    fn any_bytes_decode_safely(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(s) = postcard::from_bytes::<Set>(&bytes) {
            prop_assert!(check(&s.entries).is_ok());
            prop_assert!(same(&s.sync(&s), &s));
            let _ = (s.lww(num_less), s.reconcile(|vs| vs.len() as u32, 1), s.clone().update(0));
        }
    }
}
