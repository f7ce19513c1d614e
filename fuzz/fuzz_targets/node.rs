//! Arbitrary sequences of inputs into one `Node`: raw frame bytes, well-formed
//! messages of every protocol (so the state machines are reached, not just
//! the decoder), timeouts, link events and commands.
//!
//! After every step: no panic, views within their bounds, the node never in
//! its own views, and no timer left due after `handle_timeout` (time moves
//! on). Time handed in is monotonic except for explicit `Rewind` steps, which
//! the node must clamp and count rather than act on.
#![no_main]

use arbitrary::Arbitrary;
use bytes::Bytes;
use epidemic_core::broadcast::{self, Announcement};
use epidemic_core::membership::hyparview::{self, Priority};
use epidemic_core::node::{BroadcastId, Config, LinkEvent, Node};
use epidemic_core::node::Message;
use epidemic_core::wire::DEFAULT_MAX_FRAME;
use epidemic_core::{Duration, Instant};
use libfuzzer_sys::fuzz_target;

const ME: u32 = 0;

#[derive(Arbitrary, Debug)]
enum Hv {
    Join,
    ForwardJoin { joiner: u8, ttl: u8 },
    Neighbor { high: bool },
    NeighborReply { accepted: bool },
    Connect { link: u8 },
    Disconnect { link: Option<u8>, leaving: bool },
    Shuffle { origin: u8, ttl: u8, nodes: Vec<u8> },
    ShuffleReply { nodes: Vec<u8> },
}

#[derive(Arbitrary, Debug)]
enum Pt {
    Gossip {
        origin: u8,
        seq: u8,
        round: u8,
        payload: Vec<u8>,
    },
    IHave {
        announcements: Vec<(u8, u8, u8)>,
    },
    Graft {
        origin: u8,
        seq: u8,
        round: u8,
    },
    Attach {
        root: u8,
    },
    Prune {
        root: u8,
    },
    IgnoredIHave {
        ids: Vec<(u8, u8)>,
    },
}

#[derive(Arbitrary, Debug)]
enum Input {
    Raw { from: u8, bytes: Vec<u8> },
    HyParView { from: u8, msg: Hv },
    Plumtree { from: u8, msg: Pt },
    Advance { millis: u16 },
    Rewind { millis: u8 },
    Link { peer: u8, up: bool },
    Join { contacts: Vec<u8> },
    Leave,
    Broadcast { len: u16 },
}

fn id(origin: u8, seq: u8) -> BroadcastId<u32> {
    BroadcastId {
        origin: u32::from(origin),
        seq: u64::from(seq),
    }
}

fn hyparview(m: Hv) -> hyparview::Message<u32> {
    let list = |v: Vec<u8>| v.into_iter().map(u32::from).collect();
    match m {
        Hv::Join => hyparview::Message::Join,
        Hv::ForwardJoin { joiner, ttl } => hyparview::Message::ForwardJoin {
            joiner: joiner.into(),
            ttl,
        },
        Hv::Neighbor { high } => hyparview::Message::Neighbor {
            priority: if high { Priority::High } else { Priority::Low },
        },
        Hv::NeighborReply { accepted } => hyparview::Message::NeighborReply { accepted },
        Hv::Connect { link } => hyparview::Message::Connect { link: link.into() },
        Hv::Disconnect { link, leaving } => hyparview::Message::Disconnect {
            link: link.map(u64::from),
            leaving,
        },
        Hv::Shuffle { origin, ttl, nodes } => hyparview::Message::Shuffle {
            origin: origin.into(),
            ttl,
            nodes: list(nodes),
        },
        Hv::ShuffleReply { nodes } => hyparview::Message::ShuffleReply { nodes: list(nodes) },
    }
}

fn plumtree(m: Pt) -> broadcast::Message<u32, BroadcastId<u32>> {
    match m {
        Pt::Gossip {
            origin,
            seq,
            round,
            payload,
        } => broadcast::Message::Gossip {
            id: id(origin, seq),
            root: origin.into(),
            round: round.into(),
            payload: Bytes::from(payload),
        },
        Pt::IHave { announcements } => broadcast::Message::IHave {
            announcements: announcements
                .into_iter()
                .map(|(o, s, r)| Announcement {
                    id: id(o, s),
                    root: o.into(),
                    round: r.into(),
                })
                .collect(),
        },
        Pt::Graft { origin, seq, round } => broadcast::Message::Graft {
            id: id(origin, seq),
            root: origin.into(),
            round: round.into(),
        },
        Pt::Attach { root } => broadcast::Message::Attach { root: root.into() },
        Pt::Prune { root } => broadcast::Message::Prune { root: root.into() },
        Pt::IgnoredIHave { ids } => broadcast::Message::IgnoredIHave {
            ids: ids.into_iter().map(|(o, s)| id(o, s)).collect(),
        },
    }
}

fn frame(m: Message<u32>) -> Vec<u8> {
    let mut out = Vec::new();
    // Messages the fuzzer builds may exceed the frame limit; those are
    // refused at encoding, which is the sender's business, not the node's.
    let _ = m.encode_into(DEFAULT_MAX_FRAME, &mut out);
    out
}

fuzz_target!(|inputs: Vec<Input>| {
    let mut config = Config::default();
    config.seed = 7;
    let hv = hyparview::Config::default();
    let mut node = Node::new(ME, config);
    let mut now = Instant::ZERO;
    let mut regressions = 0;
    for input in inputs {
        match input {
            Input::Raw { from, bytes } => {
                let _ = node.handle_frame(now, from.into(), &bytes);
            }
            Input::HyParView { from, msg } => {
                let _ = node.handle_frame(now, from.into(), &frame(Message::HyParView(hyparview(msg))));
            }
            Input::Plumtree { from, msg } => {
                let _ = node.handle_frame(now, from.into(), &frame(Message::Plumtree(plumtree(msg))));
            }
            Input::Advance { millis } => {
                now += Duration::from_millis(millis.into());
                node.handle_timeout(now);
                if let Some(next) = node.poll_timeout() {
                    assert!(
                        next > now,
                        "a timer is still due after handle_timeout: {next:?} <= {now:?}"
                    );
                }
            }
            Input::Rewind { millis } => {
                let earlier = Instant::from_micros(now.as_micros().saturating_sub(u64::from(millis) * 1000 + 1));
                if earlier < now {
                    regressions += 1;
                }
                node.handle_timeout(earlier);
                assert_eq!(
                    node.stats().time_regressions,
                    regressions,
                    "a step back in time is clamped and counted"
                );
            }
            Input::Link { peer, up } => {
                node.handle_link(now, peer.into(), if up { LinkEvent::Up } else { LinkEvent::Down });
            }
            Input::Join { contacts } => node.join(now, contacts.into_iter().map(u32::from)),
            Input::Leave => node.leave(now),
            Input::Broadcast { len } => {
                let _ = node.broadcast(now, Bytes::from(vec![0u8; len.into()]));
            }
        }
        while node.poll_transmit().is_some() {}
        while node.poll_event().is_some() {}
        let active = node.active_view();
        let passive = node.passive_view();
        assert!(active.len() <= hv.active_view_capacity, "active view over capacity");
        assert!(passive.len() <= hv.passive_view_capacity, "passive view over capacity");
        assert!(
            !active.contains(&ME) && !passive.contains(&ME),
            "the node is in its own views"
        );
        assert!(active.iter().all(|p| !passive.contains(p)), "a peer in both views");
    }
});
