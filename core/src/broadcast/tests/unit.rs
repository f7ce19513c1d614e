//! One engine driven by hand.

use super::net::{Id, Node};
use crate::broadcast::{
    Announcement, BroadcastError, Config, Event, Handler, Message, MessageCache, Plumtree, Stats, TreeMode,
};
use crate::time::Instant;
use crate::wire::WireError;
use alloc::vec;
use alloc::vec::Vec;
use bytes::Bytes;

type Msg = Message<u32, Id>;

/// The paper's engine with one shared tree: eager pushes are not
/// re-announced (`retransmit_eager` has tests of its own), so the only
/// timers are the paper's and Riak's.
fn shared() -> Config {
    Config {
        tree: TreeMode::Shared,
        retransmit_eager: false,
        ..Config::default()
    }
}

/// The default configuration without `retransmit_eager`.
fn paper() -> Config {
    Config {
        retransmit_eager: false,
        ..Config::default()
    }
}

/// Node 0 with neighbours `peers`, all eager.
fn node(config: Config, peers: &[u32]) -> (Node, MessageCache<Id>) {
    let mut n = Plumtree::new(0, config, 1);
    for &p in peers {
        n.neighbor_up(Instant::ZERO, p);
    }
    (n, MessageCache::new(1024, 4096))
}

fn drain(n: &mut Node) -> Vec<(u32, Msg)> {
    core::iter::from_fn(|| n.poll_transmit()).collect()
}

fn events(n: &mut Node) -> Vec<Event<u32, Id>> {
    core::iter::from_fn(|| n.poll_event()).collect()
}

fn ms(n: u64) -> Instant {
    Instant::from_millis(n)
}

fn gossip(id: Id, round: u32) -> Msg {
    Message::Gossip {
        id,
        root: id.0,
        round,
        payload: Bytes::from_static(b"payload"),
    }
}

fn ihave(id: Id, round: u32) -> Msg {
    Message::IHave {
        announcements: vec![Announcement { id, root: id.0, round }],
    }
}

fn eager(n: &Node, root: u32) -> Vec<u32> {
    n.eager_peers(&root).copied().collect()
}

fn lazy(n: &Node, root: u32) -> Vec<u32> {
    n.lazy_peers(&root).copied().collect()
}

#[test]
fn new_gossip_is_delivered_and_forwarded_a_hop_further() {
    let (mut n, mut h) = node(shared(), &[1, 2, 3]);
    n.handle_message(ms(0), 1, gossip((9, 1), 2), &mut h);
    let ev = events(&mut n);
    assert!(matches!(
        &ev[..],
        [Event::Delivered {
            id: (9, 1),
            root: 9,
            hops: 3,
            ..
        }]
    ));
    let out = drain(&mut n);
    assert_eq!(
        out.iter().map(|(to, _)| *to).collect::<Vec<_>>(),
        [2, 3],
        "not back to the sender"
    );
    assert!(out.iter().all(|(_, m)| matches!(m, Message::Gossip { round: 3, .. })));
    assert_eq!(n.poll_timeout(), None, "no lazy peers, nothing to dispatch");
}

#[test]
fn duplicate_gossip_prunes_the_sender() {
    let (mut n, mut h) = node(shared(), &[1, 2, 3]);
    n.handle_message(ms(0), 1, gossip((9, 1), 0), &mut h);
    drain(&mut n);
    events(&mut n);
    n.handle_message(ms(1), 2, gossip((9, 1), 4), &mut h);
    assert!(events(&mut n).is_empty(), "no second delivery");
    assert_eq!(drain(&mut n), [(2, Message::Prune { root: 9 })]);
    assert_eq!((eager(&n, 9), lazy(&n, 9)), (vec![1, 3], vec![2]));
    assert_eq!(n.stats().duplicates, 1);
    // The pruned peer now gets announcements, batched on the dispatch timer.
    n.handle_message(ms(2), 1, gossip((9, 2), 0), &mut h);
    let out = drain(&mut n);
    assert_eq!(out.iter().map(|(to, _)| *to).collect::<Vec<_>>(), [3]);
    assert_eq!(n.poll_timeout(), Some(ms(22)));
    n.handle_timeout(ms(22), &mut h);
    assert_eq!(drain(&mut n), [(2, ihave((9, 2), 1))]);
}

#[test]
fn prune_moves_the_sender_to_lazy() {
    let (mut n, mut h) = node(shared(), &[1, 2]);
    n.handle_message(ms(0), 2, Message::Prune { root: 5 }, &mut h);
    assert_eq!((eager(&n, 5), lazy(&n, 5)), (vec![1], vec![2]));
    n.handle_message(ms(0), 2, Message::Attach { root: 5 }, &mut h);
    assert_eq!((eager(&n, 5), lazy(&n, 5)), (vec![1, 2], vec![]));
}

#[test]
fn missing_timer_grafts_announcers_in_turn() {
    let (mut n, mut h) = node(shared(), &[1, 2, 3]);
    n.handle_message(ms(0), 2, Message::Prune { root: 9 }, &mut h);
    n.handle_message(ms(0), 3, Message::Prune { root: 9 }, &mut h);
    let id = (9, 1);
    n.handle_message(ms(0), 2, ihave(id, 1), &mut h);
    n.handle_message(ms(10), 3, ihave(id, 2), &mut h);
    assert!(drain(&mut n).is_empty(), "no graft before timeout1");
    assert_eq!(n.poll_timeout(), Some(ms(500)));
    n.handle_timeout(ms(499), &mut h);
    assert!(drain(&mut n).is_empty());
    n.handle_timeout(ms(500), &mut h);
    assert_eq!(drain(&mut n), [(2, Message::Graft { id, root: 9, round: 1 })]);
    assert!(eager(&n, 9).contains(&2), "the grafted announcer is eager");
    assert_eq!(n.poll_timeout(), Some(ms(750)), "timeout2 for the next announcer");
    n.handle_timeout(ms(750), &mut h);
    assert_eq!(drain(&mut n), [(3, Message::Graft { id, root: 9, round: 2 })]);
    n.handle_message(ms(760), 3, gossip(id, 2), &mut h);
    assert!(matches!(&events(&mut n)[..], [Event::Delivered { hops: 3, .. }]));
    // Delivery cancelled the timer; the announcers got nothing, they have it.
    let out = drain(&mut n);
    assert_eq!(out.iter().map(|(to, _)| *to).collect::<Vec<_>>(), [1]);
    assert_eq!((n.stats().missing, n.poll_timeout()), (0, None));
    assert_eq!(n.stats().timer_grafts, 2);
}

/// A root whose parent went down gets its messages only through
/// announcements: those already announced are grafted at once, and so is
/// the next one, instead of a whole `ihave_timeout` later each. A message
/// by the tree again ends the orphaning.
#[test]
fn losing_the_parent_grafts_announcements_at_once() {
    fn grafts(n: &mut Node) -> Vec<(u32, Msg)> {
        drain(n)
            .into_iter()
            .filter(|(_, m)| matches!(m, Message::Graft { .. }))
            .collect()
    }
    let graft = |id: Id| Message::Graft { id, root: 9, round: 1 };
    let (mut n, mut h) = node(shared(), &[1, 2, 3]);
    // 1 is our parent for root 9; 2 and 3 are lazy.
    n.handle_message(ms(0), 2, Message::Prune { root: 9 }, &mut h);
    n.handle_message(ms(0), 3, Message::Prune { root: 9 }, &mut h);
    n.handle_message(ms(0), 1, gossip((9, 1), 0), &mut h);
    // (9, 2) is announced by 2 while 1's push is on the way: wait.
    n.handle_message(ms(10), 2, ihave((9, 2), 1), &mut h);
    n.handle_timeout(ms(19), &mut h);
    assert_eq!(grafts(&mut n), []);
    // The parent goes down: no push will come, graft now.
    n.neighbor_down(ms(20), &1);
    n.handle_timeout(ms(20), &mut h);
    assert_eq!(grafts(&mut n), [(2, graft((9, 2)))]);
    // The next announcement of the root is grafted at once too.
    n.handle_message(ms(30), 3, ihave((9, 3), 1), &mut h);
    n.handle_timeout(ms(30), &mut h);
    assert_eq!(grafts(&mut n), [(3, graft((9, 3)))]);
    assert_eq!((n.stats().orphan_grafts, n.stats().timer_grafts), (2, 0));
    // A message by the tree (from 2, grafted, so eager) makes 2 the parent:
    // the next announcement waits for the push again.
    n.handle_message(ms(40), 2, gossip((9, 4), 0), &mut h);
    n.handle_message(ms(50), 3, ihave((9, 5), 1), &mut h);
    n.handle_timeout(ms(549), &mut h);
    assert_eq!(grafts(&mut n), [], "not before ihave_timeout");
    n.handle_timeout(ms(550), &mut h);
    assert_eq!(grafts(&mut n), [(3, graft((9, 5)))]);
    assert_eq!((n.stats().orphan_grafts, n.stats().timer_grafts), (2, 1));
}

#[test]
fn missing_entry_expires_after_the_last_announcer() {
    let (mut n, mut h) = node(shared(), &[1]);
    n.handle_message(ms(0), 1, ihave((9, 1), 0), &mut h);
    n.handle_timeout(ms(500), &mut h);
    assert_eq!(drain(&mut n).len(), 1);
    n.handle_timeout(ms(750), &mut h);
    assert!(drain(&mut n).is_empty());
    assert_eq!((n.stats().missing, n.poll_timeout()), (0, None));
}

#[test]
fn stale_announcements_are_acknowledged_not_grafted() {
    let (mut n, mut h) = node(shared(), &[1, 2]);
    n.handle_message(ms(0), 1, gossip((9, 1), 0), &mut h);
    drain(&mut n);
    let both = Message::IHave {
        announcements: vec![
            Announcement {
                id: (9, 1),
                root: 9,
                round: 1,
            },
            Announcement {
                id: (9, 2),
                root: 9,
                round: 1,
            },
        ],
    };
    n.handle_message(ms(1), 2, both, &mut h);
    assert_eq!(drain(&mut n), [(2, Message::IgnoredIHave { ids: vec![(9, 1)] })]);
    assert_eq!(n.stats().missing, 1, "(9, 2) is missing");
}

#[test]
fn optimisation_rewires_when_the_lazy_path_is_shorter_by_the_threshold() {
    let (mut n, mut h) = node(shared(), &[1, 2]);
    n.handle_message(ms(0), 2, Message::Prune { root: 9 }, &mut h);
    // Received at round 6 through 1; 2 announces round 4: two hops, below 3.
    n.handle_message(ms(1), 1, gossip((9, 1), 6), &mut h);
    drain(&mut n);
    n.handle_message(ms(2), 2, ihave((9, 1), 4), &mut h);
    assert_eq!(drain(&mut n), [(2, Message::IgnoredIHave { ids: vec![(9, 1)] })]);
    assert_eq!(n.stats().optimisations, 0);
    // Next message: 2 announces round 3 against 6 through 1: three hops.
    n.handle_message(ms(3), 1, gossip((9, 2), 6), &mut h);
    drain(&mut n);
    n.handle_message(ms(4), 2, ihave((9, 2), 3), &mut h);
    assert_eq!(
        drain(&mut n),
        [
            (2, Message::Attach { root: 9 }),
            (1, Message::Prune { root: 9 }),
            (2, Message::IgnoredIHave { ids: vec![(9, 2)] }),
        ]
    );
    assert_eq!((eager(&n, 9), lazy(&n, 9)), (vec![2], vec![1]));
    assert_eq!(n.stats().optimisations, 1);
}

#[test]
fn optimisation_when_the_announcement_comes_first() {
    let (mut n, mut h) = node(shared(), &[1, 2, 3]);
    n.handle_message(ms(0), 2, Message::Prune { root: 9 }, &mut h);
    n.handle_message(ms(0), 2, ihave((9, 1), 1), &mut h);
    n.handle_message(ms(5), 1, gossip((9, 1), 5), &mut h);
    let out = drain(&mut n);
    assert!(out.contains(&(2, Message::Attach { root: 9 })));
    assert!(out.contains(&(1, Message::Prune { root: 9 })));
    assert!(
        !out.iter()
            .any(|(to, m)| *to == 2 && matches!(m, Message::Gossip { .. })),
        "the announcer has it"
    );
    assert_eq!(eager(&n, 9), [3, 2]);
    // The received record now says round 1 through 2: no second rewiring.
    n.handle_message(ms(6), 3, ihave((9, 1), 3), &mut h);
    assert_eq!(n.stats().optimisations, 1);
}

#[test]
fn per_root_sets_and_lru_fallback_to_shared() {
    let config = Config {
        tree: TreeMode::PerRoot { max_roots: 2 },
        ..paper()
    };
    let (mut n, mut h) = node(config, &[1, 2, 3]);
    n.handle_message(ms(0), 1, Message::Prune { root: 10 }, &mut h);
    assert!(n.is_tracked(&10));
    assert_eq!((eager(&n, 10), lazy(&n, 10)), (vec![2, 3], vec![1]));
    assert_eq!(eager(&n, 11), [1, 2, 3], "other roots unaffected");
    n.handle_message(ms(0), 2, Message::Prune { root: 11 }, &mut h);
    n.handle_message(ms(0), 3, Message::Prune { root: 12 }, &mut h);
    let s = n.stats();
    assert_eq!((s.tracked_roots, s.roots_evicted), (2, 1));
    assert!(!n.is_tracked(&10), "least recently used root evicted");
    assert_eq!(
        (eager(&n, 10), lazy(&n, 10)),
        (vec![1, 2, 3], vec![]),
        "falls back to the shared sets"
    );
    // A message of the evicted root uses the shared sets again.
    n.handle_message(ms(1), 2, gossip((10, 1), 0), &mut h);
    let out = drain(&mut n);
    assert_eq!(out.iter().map(|(to, _)| *to).collect::<Vec<_>>(), [1, 3]);
    // Neighbour changes reach the shared sets and every tracked root.
    n.neighbor_up(ms(2), 4);
    assert!(eager(&n, 11).contains(&4) && eager(&n, 12).contains(&4) && eager(&n, 99).contains(&4));
    n.neighbor_down(ms(3), &2);
    assert!(!eager(&n, 12).contains(&2) && !lazy(&n, 11).contains(&2) && !eager(&n, 99).contains(&2));
}

#[test]
fn broadcast_refuses_oversized_payloads_before_touching_anything() {
    let (mut n, mut h) = node(Config::default(), &[1, 2]);
    let max = n.config().max_payload;
    let before = n.stats();
    let big = Bytes::from(vec![0u8; max + 1]);
    assert_eq!(
        n.broadcast(ms(0), (0, 1), big.clone(), &mut h),
        Err(BroadcastError::PayloadTooLarge { len: max + 1, max })
    );
    assert_eq!(n.stats(), before);
    assert!(h.is_empty() && !h.is_stale(&(0, 1)), "the handler was not called");
    assert!(drain(&mut n).is_empty() && n.poll_timeout().is_none());
    // The same limit applies to a peer's GOSSIP.
    let bad = Message::Gossip {
        id: (1, 1),
        root: 1,
        round: 0,
        payload: big,
    };
    assert_eq!(
        Node::validate(&bad, n.config()),
        Err(WireError::Invalid("gossip payload exceeds max_payload"))
    );
    n.handle_message(ms(0), 1, bad, &mut h);
    assert_eq!(n.stats().invalid, 1);
    assert!(events(&mut n).is_empty() && drain(&mut n).is_empty());
    // At the limit it goes.
    let ok = Bytes::from(vec![0u8; max]);
    assert_eq!(n.broadcast(ms(0), (0, 2), ok, &mut h), Ok(()));
    assert!(events(&mut n).is_empty(), "no delivery event at the origin");
    assert_eq!(drain(&mut n).len(), 2);
}

#[test]
fn validate_bounds_lists() {
    let c = Config {
        max_ihave_batch: 2,
        ..Config::default()
    };
    let a = Announcement {
        id: (1, 1),
        root: 1,
        round: 0,
    };
    let ok = Message::IHave {
        announcements: vec![a.clone(); 2],
    };
    assert_eq!(Node::validate(&ok, &c), Ok(()));
    for bad in [
        Message::IHave {
            announcements: vec![a; 3],
        },
        Message::IHave { announcements: vec![] },
        Message::IgnoredIHave { ids: vec![(1, 1); 3] },
        Message::IgnoredIHave { ids: vec![] },
    ] {
        assert!(
            matches!(Node::validate(&bad, &c), Err(WireError::Invalid(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn outstanding_announcements_are_resent_until_acknowledged() {
    let (mut n, mut h) = node(shared(), &[1, 2]);
    n.handle_message(ms(0), 2, Message::Prune { root: 0 }, &mut h);
    n.broadcast(ms(0), (0, 1), Bytes::from_static(b"x"), &mut h).unwrap();
    assert!(matches!(&drain(&mut n)[..], [(1, Message::Gossip { round: 0, .. })]));
    n.handle_timeout(ms(20), &mut h);
    assert_eq!(drain(&mut n), [(2, ihave((0, 1), 0))]);
    assert_eq!(n.stats().outstanding, 1);
    assert_eq!(n.poll_timeout(), Some(ms(1020)), "the lazy tick");
    // Lost: re-sent on every tick.
    for tick in 1..=3 {
        n.handle_timeout(ms(20 + 1000 * tick), &mut h);
        assert_eq!(drain(&mut n), [(2, ihave((0, 1), 0))]);
    }
    // A GRAFT answered with the payload does not acknowledge (Riak)...
    n.handle_message(
        ms(3100),
        2,
        Message::Graft {
            id: (0, 1),
            root: 0,
            round: 0,
        },
        &mut h,
    );
    assert!(matches!(&drain(&mut n)[..], [(2, Message::Gossip { round: 0, .. })]));
    assert_eq!(eager(&n, 0), [1, 2], "the grafter joined the eager set");
    assert_eq!(n.stats().outstanding, 1);
    // ...the IGNORED_IHAVE does, and the tick stops.
    n.handle_message(ms(3200), 2, Message::IgnoredIHave { ids: vec![(0, 1)] }, &mut h);
    assert_eq!(n.stats().outstanding, 0);
    n.handle_timeout(ms(4020), &mut h);
    assert!(drain(&mut n).is_empty());
    assert_eq!(n.poll_timeout(), None);
    assert_eq!(n.stats().announcements_resent, 3);
}

#[test]
fn a_lost_eager_push_is_reannounced_only_with_retransmit_eager() {
    // Node 0's only neighbour is 1, over a tree link: 1 has no lazy peer that
    // would announce the message if the push were lost.
    for retransmit in [false, true] {
        let config = Config {
            retransmit_eager: retransmit,
            ..shared()
        };
        let (mut n, mut h) = node(config, &[1]);
        n.broadcast(ms(0), (0, 1), Bytes::from_static(b"x"), &mut h).unwrap();
        assert!(matches!(&drain(&mut n)[..], [(1, Message::Gossip { round: 0, .. })]));
        // The push is lost. On the next lazy tick:
        n.handle_timeout(ms(1000), &mut h);
        let out = drain(&mut n);
        if retransmit {
            assert_eq!(out, [(1, ihave((0, 1), 0))], "the push is re-announced");
            // 1 lacked it and grafts: answered from the cache.
            n.handle_message(
                ms(1001),
                1,
                Message::Graft {
                    id: (0, 1),
                    root: 0,
                    round: 0,
                },
                &mut h,
            );
            assert!(matches!(&drain(&mut n)[..], [(1, Message::Gossip { round: 0, .. })]));
            // Acknowledged once 1 has it.
            n.handle_message(ms(1002), 1, Message::IgnoredIHave { ids: vec![(0, 1)] }, &mut h);
            assert_eq!(n.stats().outstanding, 0);
            assert!(n.is_idle());
        } else {
            assert!(out.is_empty(), "without retransmission the push is simply gone");
            assert_eq!(n.poll_timeout(), None);
        }
    }
}

#[test]
fn unanswerable_graft_acknowledges() {
    let (mut n, mut h) = node(shared(), &[1, 2]);
    n.handle_message(ms(0), 2, Message::Prune { root: 0 }, &mut h);
    n.broadcast(ms(0), (0, 1), Bytes::from_static(b"x"), &mut h).unwrap();
    n.handle_timeout(ms(20), &mut h);
    drain(&mut n);
    // A store that has lost the payload.
    let mut empty = MessageCache::new(0, 0);
    n.handle_message(
        ms(30),
        2,
        Message::Graft {
            id: (0, 1),
            root: 0,
            round: 0,
        },
        &mut empty,
    );
    assert!(drain(&mut n).is_empty());
    let s = n.stats();
    assert_eq!((s.outstanding, s.grafts_unanswered), (0, 1));
}

#[test]
fn ihaves_are_batched() {
    let config = Config {
        max_ihave_batch: 128,
        ..shared()
    };
    let (mut n, mut h) = node(config, &[1, 2]);
    n.handle_message(ms(0), 2, Message::Prune { root: 0 }, &mut h);
    for seq in 0..300 {
        n.broadcast(ms(1), (0, seq), Bytes::from_static(b"x"), &mut h).unwrap();
    }
    let sizes = |sent: Vec<(u32, Message<u32, Id>)>| -> Vec<usize> {
        sent.into_iter()
            .filter_map(|(to, m)| match m {
                Message::IHave { announcements } if to == 2 => Some(announcements.len()),
                Message::Gossip { .. } if to == 1 => None,
                other => panic!("{other:?}"),
            })
            .collect()
    };
    let sent = drain(&mut n);
    assert_eq!(sent.len(), 302, "gossip to the eager peer, and two IHAVEs");
    // A full batch leaves at once; the rest waits for the dispatch timer.
    assert_eq!(sizes(sent), [128, 128]);
    n.handle_timeout(ms(21), &mut h);
    assert_eq!(sizes(drain(&mut n)), [44]);
    assert_eq!(n.stats().announcements_sent, 300);
}

/// The announcements each peer gets from the next dispatch at `at`.
fn announced(n: &mut Node, h: &mut MessageCache<Id>, at: Instant) -> Vec<(u32, Vec<(Id, u32)>)> {
    n.handle_timeout(at, h);
    drain(n)
        .into_iter()
        .filter_map(|(to, m)| match m {
            Message::IHave { announcements } => Some((to, announcements.iter().map(|a| (a.id, a.round)).collect())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_neighbour_that_comes_up_is_announced_the_recent_messages() {
    let (mut n, mut h) = node(shared(), &[1]);
    n.handle_message(ms(0), 1, gossip((9, 1), 2), &mut h);
    n.broadcast(ms(10), (0, 1), Bytes::from_static(b"x"), &mut h).unwrap();
    drain(&mut n);
    // Within the window (2 s by default): both, with the round a payload
    // from here would carry, so the newcomer can graft them.
    n.neighbor_up(ms(500), 2);
    assert_eq!(
        announced(&mut n, &mut h, ms(520)),
        [(2, vec![((9, 1), 3), ((0, 1), 0)])]
    );
    assert_eq!(n.stats().catch_up_announcements, 2);
    // Acknowledged, they leave the outstanding set (else the lazy tick
    // would announce them again).
    n.handle_message(
        ms(530),
        2,
        Message::IgnoredIHave {
            ids: vec![(9, 1), (0, 1)],
        },
        &mut h,
    );
    // Once the window has passed for the first, only the second.
    n.neighbor_up(ms(2_005), 3);
    assert_eq!(announced(&mut n, &mut h, ms(2_025)), [(3, vec![((0, 1), 0)])]);
    n.handle_message(ms(2_030), 3, Message::IgnoredIHave { ids: vec![(0, 1)] }, &mut h);
    // And then for both: nothing.
    n.neighbor_up(ms(2_011), 4);
    assert_eq!(announced(&mut n, &mut h, ms(2_031)), []);
    assert_eq!(n.stats().catch_up_recent, 0, "what is too old is forgotten");
}

#[test]
fn catch_up_is_bounded_and_can_be_turned_off() {
    let bounded = Config {
        max_catch_up: 2,
        ..shared()
    };
    let (mut n, mut h) = node(bounded, &[1]);
    for seq in 0..5 {
        n.broadcast(ms(0), (0, seq), Bytes::from_static(b"x"), &mut h).unwrap();
    }
    drain(&mut n);
    assert_eq!(n.stats().catch_up_recent, 2);
    n.neighbor_up(ms(1), 2);
    assert_eq!(
        announced(&mut n, &mut h, ms(21)),
        [(2, vec![((0, 3), 0), ((0, 4), 0)])],
        "the newest"
    );

    let off = Config {
        catch_up_window: crate::time::Duration::ZERO,
        ..shared()
    };
    let (mut n, mut h) = node(off, &[1]);
    n.broadcast(ms(0), (0, 0), Bytes::from_static(b"x"), &mut h).unwrap();
    drain(&mut n);
    n.neighbor_up(ms(1), 2);
    assert_eq!(announced(&mut n, &mut h, ms(21)), []);
    assert_eq!(n.stats().catch_up_announcements, 0);
}

#[test]
fn neighbor_down_cleans_every_structure() {
    let (mut n, mut h) = node(paper(), &[1, 2, 3]);
    n.handle_message(ms(0), 2, Message::Prune { root: 0 }, &mut h);
    n.broadcast(ms(0), (0, 1), Bytes::from_static(b"x"), &mut h).unwrap();
    n.handle_timeout(ms(20), &mut h);
    n.handle_message(ms(20), 2, ihave((7, 1), 0), &mut h);
    n.handle_message(ms(20), 3, ihave((7, 1), 0), &mut h);
    drain(&mut n);
    let s = n.stats();
    assert_eq!((s.outstanding, s.max_announcers), (1, 2));
    n.neighbor_down(ms(30), &2);
    let s = n.stats();
    assert_eq!((s.neighbors, s.outstanding, s.max_announcers), (2, 0, 1));
    assert!(!eager(&n, 0).contains(&2) && !lazy(&n, 0).contains(&2));
    n.handle_timeout(ms(520), &mut h);
    let out = drain(&mut n);
    assert!(
        out.iter().all(|(to, _)| *to != 2),
        "never grafts a neighbour that is down: {out:?}"
    );
}

#[test]
fn mesh_mode_caps_the_initial_eager_set() {
    let config = Config {
        initial_eager_fanout: Some(3),
        initial_lazy_fanout: None,
        ..Config::default()
    };
    let peers: Vec<u32> = (1..=20).collect();
    let (n, _) = node(config, &peers);
    assert_eq!((eager(&n, 0).len(), lazy(&n, 0).len()), (3, 17));
    let (n, _) = node(Config::mesh(21), &peers);
    assert_eq!(n.config().initial_eager_fanout, Some(4));
    assert_eq!(
        (eager(&n, 0).len(), lazy(&n, 0).len()),
        (4, 16),
        "Riak's ln(n)+1 eager; every other neighbour lazy (see Config::mesh)"
    );
    // A capped lazy set still holds at most its cap.
    let capped = Config {
        initial_lazy_fanout: Some(1),
        ..Config::mesh(21)
    };
    let (n, _) = node(capped, &peers);
    assert_eq!((eager(&n, 0).len(), lazy(&n, 0).len()), (4, 1));
}

#[test]
fn messages_from_non_neighbours_never_join_a_set() {
    let (mut n, mut h) = node(shared(), &[1]);
    n.handle_message(ms(0), 50, gossip((9, 1), 0), &mut h);
    n.handle_message(ms(0), 51, Message::Attach { root: 9 }, &mut h);
    n.handle_message(
        ms(0),
        52,
        Message::Graft {
            id: (9, 1),
            root: 9,
            round: 0,
        },
        &mut h,
    );
    assert_eq!((eager(&n, 9), lazy(&n, 9)), (vec![1], vec![]));
    assert_eq!(events(&mut n).len(), 1, "the payload is still delivered");
    // And our own identity as sender is refused.
    n.handle_message(ms(0), 0, gossip((9, 2), 0), &mut h);
    assert_eq!(n.stats().invalid, 1);
}

#[test]
fn stats_start_empty() {
    let (n, _) = node(Config::default(), &[]);
    assert_eq!(n.stats(), Stats::default());
    assert_eq!(n.poll_timeout(), None);
}
