//! Channels: the application's own broadcast handlers on the node's
//! Plumtree.
//!
//! A **channel** is a Plumtree engine of its own, with its own eager and lazy
//! sets, missing and outstanding sets and timers, whose store is the
//! application's: a [`ChannelHandler`] registered with
//! [`Node::register_channel`](super::Node::register_channel) answers every
//! question the engine asks about a message, as the metadata store answers
//! them for its own engine. It follows Riak's `riak_core_broadcast_handler`
//! behaviour:
//!
//! | Riak | here |
//! |---|---|
//! | `broadcast_data/1` | the application encodes `(id, payload)` itself and calls [`Node::broadcast_on`](super::Node::broadcast_on) |
//! | `merge/2` | [`ChannelHandler::merge`] |
//! | `is_stale/1` | [`ChannelHandler::is_stale`] |
//! | `graft/1` | [`ChannelHandler::graft`] |
//! | `exchange/1` | [`ChannelHandler::exchange`] and [`ChannelHandler::handle_direct`] |
//!
//! Ids and payloads are opaque [`Bytes`]: the handler encodes them as it
//! likes. As in Riak, the application applies a write to its own store
//! first and then asks the engine to spread it; the engine's `merge` at the
//! origin is then a no-op the handler may answer `false` to.
//!
//! # Messages
//!
//! Every channel frame travels under
//! [`Kind::Channel`](crate::wire::Kind::Channel) as a [`ChannelMessage`]:
//! the channel's number and either a Plumtree message with `Bytes` ids
//! ([`ChannelBody::Broadcast`]) or an opaque direct message
//! ([`ChannelBody::Direct`]) from the exchange hook or
//! [`Node::send_direct`](super::Node::send_direct). A frame for a channel
//! this node has not registered is well-formed: it is counted in
//! [`Stats::unknown_channel`](super::Stats::unknown_channel) and ignored, so
//! nodes may register channels in any order. In mesh mode, frames from
//! peers that are not members are refused and counted, as the metadata
//! store's are.
//!
//! # Timers
//!
//! - The engine's own (`ihave_timeout`, `graft_timeout`,
//!   `dispatch_interval`, `lazy_tick`; see [`broadcast`]), run only while
//!   there is work.
//! - **`exchange_interval`** ([`ChannelConfig::exchange_interval`]): every
//!   interval, one neighbour picked at random (from the node's seeded
//!   generator) is handed to [`ChannelHandler::exchange`], and the message
//!   it returns goes to that neighbour. This is Riak's cluster-metadata
//!   exchange tick, the anti-entropy that repairs what the broadcast missed
//!   (a node that was down or cut off while the message went by). It is
//!   periodic, so it does not count against
//!   [`Node::is_idle`](super::Node::is_idle).
//!
//! At most [`MAX_CHANNELS`] channels per node.

use crate::broadcast::{self, BroadcastError, Graft, Handler};
use crate::{Duration, Instant};
use bytes::Bytes;
use core::fmt;
use serde::{Deserialize, Serialize};

/// The most channels one node registers: each has its own engine and
/// timers, and a peer's frames name a channel by a 16-bit number.
pub const MAX_CHANNELS: usize = 16;

/// Bytes a channel frame adds around a Plumtree message: the channel number
/// (a varint of at most three bytes) and the body's variant tag.
pub(crate) const CHANNEL_OVERHEAD: usize = 4;

/// A channel's number, the same on every node that registers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ChannelId(pub u16);

impl fmt::Display for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "channel {}", self.0)
    }
}

/// The application's side of a channel (Riak's
/// `riak_core_broadcast_handler`): every question the engine asks about a
/// message is answered from the application's store.
///
/// The handler runs on the node's thread, inside the node's calls; keep each
/// answer short. Ids, payloads and direct messages come from peers: decode
/// them without trusting them (a handler that cannot decode an id answers
/// `merge` with `false` and `is_stale` with `true`).
pub trait ChannelHandler<I>: Send {
    /// Merges an incoming payload into the store. `true` if it was new (the
    /// node reports [`Event::ChannelDelivered`](super::Event::ChannelDelivered)
    /// and the engine forwards it); `false` if the store already had it or
    /// something newer (the sender's copy was a duplicate).
    fn merge(&mut self, now: Instant, id: &Bytes, payload: &Bytes) -> bool;

    /// Whether the store already has `id` or something newer: an
    /// announcement of it is acknowledged instead of grafted.
    fn is_stale(&mut self, id: &Bytes) -> bool;

    /// Answers a peer's GRAFT for `id` from the store.
    fn graft(&mut self, id: &Bytes) -> Graft;

    /// Anti-entropy: called every [`ChannelConfig::exchange_interval`] with
    /// one random neighbour. The message returned (a digest of the store,
    /// say) is sent to `peer`, whose handler gets it in
    /// [`handle_direct`](Self::handle_direct). Default: no exchange.
    fn exchange(&mut self, now: Instant, peer: &I) -> Option<Bytes> {
        let _ = (now, peer);
        None
    }

    /// A direct message from `from` arrived (an exchange, or
    /// [`Node::send_direct`](super::Node::send_direct)); the reply returned,
    /// if any, is sent back to `from`. Default: ignored.
    fn handle_direct(&mut self, now: Instant, from: &I, message: &Bytes) -> Option<Bytes> {
        let _ = (now, from, message);
        None
    }
}

impl<I, H: ChannelHandler<I> + ?Sized> ChannelHandler<I> for alloc::boxed::Box<H> {
    fn merge(&mut self, now: Instant, id: &Bytes, payload: &Bytes) -> bool {
        (**self).merge(now, id, payload)
    }

    fn is_stale(&mut self, id: &Bytes) -> bool {
        (**self).is_stale(id)
    }

    fn graft(&mut self, id: &Bytes) -> Graft {
        (**self).graft(id)
    }

    fn exchange(&mut self, now: Instant, peer: &I) -> Option<Bytes> {
        (**self).exchange(now, peer)
    }

    fn handle_direct(&mut self, now: Instant, from: &I, message: &Bytes) -> Option<Bytes> {
        (**self).handle_direct(now, from, message)
    }
}

/// A channel's settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelConfig {
    /// The channel's Plumtree engine. Default: the node's plain broadcast
    /// defaults ([`broadcast::Config::default`], Riak's broadcast values
    /// and the paper's timers). Batches are cut to fit the node's
    /// `max_frame` whatever `max_batch_bytes` says.
    pub plumtree: broadcast::Config,
    /// How often the handler's [`ChannelHandler::exchange`] runs with one
    /// random neighbour; `None` for never. Default 10 s, Riak's
    /// cluster-metadata exchange tick (`broadcast_exchange_timer`).
    pub exchange_interval: Option<Duration>,
}

impl Default for ChannelConfig {
    fn default() -> Self {
        ChannelConfig {
            plumtree: broadcast::Config::default(),
            // Riak's cluster metadata: one exchange every 10 s.
            exchange_interval: Some(Duration::from_secs(10)),
        }
    }
}

/// Why a channel call was refused. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelError {
    /// A channel with this number is registered already.
    Duplicate(ChannelId),
    /// [`MAX_CHANNELS`] channels are registered already.
    TooMany {
        /// The bound.
        max: usize,
    },
    /// No channel with this number is registered.
    Unknown(ChannelId),
    /// The engine refused the broadcast (a payload over the channel's
    /// `max_payload`, or a frame over the node's `max_frame`).
    Broadcast(BroadcastError),
    /// A direct message whose frame would exceed the node's `max_frame`.
    DirectTooLarge {
        /// The frame's length in bytes.
        len: usize,
        /// The node's `max_frame`.
        max: usize,
    },
}

impl fmt::Display for ChannelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelError::Duplicate(c) => write!(f, "{c} is registered already"),
            ChannelError::TooMany { max } => write!(f, "the node has {max} channels already"),
            ChannelError::Unknown(c) => write!(f, "{c} is not registered"),
            ChannelError::Broadcast(e) => fmt::Display::fmt(e, f),
            ChannelError::DirectTooLarge { len, max } => {
                write!(
                    f,
                    "the direct message's frame of {len} bytes exceeds max_frame of {max}"
                )
            }
        }
    }
}

impl core::error::Error for ChannelError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            ChannelError::Broadcast(e) => Some(e),
            _ => None,
        }
    }
}

impl From<BroadcastError> for ChannelError {
    fn from(e: BroadcastError) -> Self {
        ChannelError::Broadcast(e)
    }
}

/// A channel frame's body: `channel` names the handler.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[doc(hidden)]
pub struct ChannelMessage<I> {
    /// The channel's number.
    pub channel: u16,
    /// What it carries.
    pub body: ChannelBody<I>,
}

/// What a channel frame carries.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[doc(hidden)]
pub enum ChannelBody<I> {
    /// A Plumtree message of the channel's engine.
    Broadcast(broadcast::Message<I, Bytes>),
    /// A message for the handler's
    /// [`handle_direct`](ChannelHandler::handle_direct).
    Direct(Bytes),
}

/// The engine's view of a channel handler.
pub(crate) struct Adapter<'a, I>(pub(crate) &'a mut dyn ChannelHandler<I>);

impl<I> Handler<Bytes> for Adapter<'_, I> {
    fn merge(&mut self, now: Instant, id: &Bytes, payload: &Bytes) -> bool {
        self.0.merge(now, id, payload)
    }

    fn is_stale(&mut self, id: &Bytes) -> bool {
        self.0.is_stale(id)
    }

    fn graft(&mut self, id: &Bytes) -> Graft {
        self.0.graft(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broadcast::Message as PlumtreeMessage;
    use crate::node::{Config, Event, Message, Node, Stats};
    use crate::wire::{Kind, PROTOCOL_VERSION, WireError};
    use alloc::boxed::Box;
    use alloc::collections::BTreeMap;
    use alloc::vec;
    use alloc::vec::Vec;
    use std::sync::{Arc, Mutex};

    /// A grow-only set of (id, payload), shared with the test; exchange
    /// sends its ids, the reply carries what the asker lacks.
    #[derive(Clone, Default)]
    struct SetHandler(Arc<Mutex<BTreeMap<Bytes, Bytes>>>);

    impl ChannelHandler<u32> for SetHandler {
        fn merge(&mut self, _: Instant, id: &Bytes, payload: &Bytes) -> bool {
            self.0.lock().unwrap().insert(id.clone(), payload.clone()).is_none()
        }

        fn is_stale(&mut self, id: &Bytes) -> bool {
            self.0.lock().unwrap().contains_key(id)
        }

        fn graft(&mut self, id: &Bytes) -> Graft {
            self.0
                .lock()
                .unwrap()
                .get(id)
                .map_or(Graft::Missing, |p| Graft::Payload(p.clone()))
        }

        fn exchange(&mut self, _: Instant, _: &u32) -> Option<Bytes> {
            let ids: Vec<Bytes> = self.0.lock().unwrap().keys().cloned().collect();
            Some(Bytes::from(postcard::to_allocvec(&(0u8, ids)).unwrap()))
        }

        fn handle_direct(&mut self, _: Instant, _: &u32, message: &Bytes) -> Option<Bytes> {
            let mut map = self.0.lock().unwrap();
            if let Ok((0u8, ids)) = postcard::from_bytes::<(u8, Vec<Bytes>)>(message) {
                let missing: Vec<(Bytes, Bytes)> = map
                    .iter()
                    .filter(|(k, _)| !ids.contains(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                return (!missing.is_empty()).then(|| Bytes::from(postcard::to_allocvec(&(1u8, missing)).unwrap()));
            }
            if let Ok((1u8, entries)) = postcard::from_bytes::<(u8, Vec<(Bytes, Bytes)>)>(message) {
                map.extend(entries);
            }
            None
        }
    }

    const CH: ChannelId = ChannelId(3);

    fn node(me: u32, max_frame: usize) -> Node<u32> {
        let mut config = Config::mesh(2);
        config.seed = u64::from(me) + 1;
        config.max_frame = max_frame;
        Node::new(me, config)
    }

    /// Runs both nodes for `ms` milliseconds in 10 ms steps; the channel
    /// deliveries each saw.
    fn run(nodes: &mut [Node<u32>; 2], now: &mut Instant, ms: u64) -> [Vec<Bytes>; 2] {
        let mut delivered = [Vec::new(), Vec::new()];
        for _ in 0..ms / 10 {
            let mut progressed = true;
            while progressed {
                progressed = false;
                for i in 0..2 {
                    while let Some(t) = nodes[i].poll_transmit() {
                        progressed = true;
                        nodes[t.to as usize]
                            .handle_frame(*now, i as u32, &t.frame)
                            .expect("valid frame");
                    }
                    while let Some(e) = nodes[i].poll_event() {
                        if let Event::ChannelDelivered { channel, id, .. } = e {
                            assert_eq!(channel, CH);
                            delivered[i].push(id);
                        }
                    }
                }
            }
            *now += Duration::from_millis(10);
            for n in nodes.iter_mut() {
                n.handle_timeout(*now);
            }
        }
        delivered
    }

    fn pair() -> ([Node<u32>; 2], Instant) {
        let mut nodes = [
            node(0, crate::wire::DEFAULT_MAX_FRAME),
            node(1, crate::wire::DEFAULT_MAX_FRAME),
        ];
        let mut now = Instant::ZERO;
        nodes[1].join(now, [0]);
        run(&mut nodes, &mut now, 500);
        assert_eq!(nodes[0].active_view(), vec![1]);
        (nodes, now)
    }

    fn channel_stats(s: &Stats) -> &ChannelStats {
        s.channels.iter().find(|c| c.channel == CH.0).expect("registered")
    }

    use crate::node::ChannelStats;

    #[test]
    fn a_broadcast_is_delivered_and_the_exchange_repairs_what_it_missed() {
        let (mut nodes, mut now) = pair();
        let stores = [SetHandler::default(), SetHandler::default()];
        let config = ChannelConfig {
            exchange_interval: Some(Duration::from_secs(1)),
            ..ChannelConfig::default()
        };
        for (n, s) in nodes.iter_mut().zip(&stores) {
            n.register_channel(now, CH, Box::new(s.clone()), config.clone())
                .unwrap();
        }
        assert_eq!(nodes[0].channels().collect::<Vec<_>>(), vec![CH]);
        // A write applied to node 0's store, then spread.
        let (id, payload) = (Bytes::from_static(b"a"), Bytes::from_static(b"1"));
        stores[0].0.lock().unwrap().insert(id.clone(), payload.clone());
        nodes[0].broadcast_on(now, CH, id.clone(), payload.clone()).unwrap();
        // Long enough for a lazy tick to have the eager push acknowledged.
        let delivered = run(&mut nodes, &mut now, 1_500);
        assert_eq!(delivered, [vec![], vec![id.clone()]]);
        assert_eq!(stores[1].0.lock().unwrap().get(&id), Some(&payload));
        assert!(nodes.iter().all(Node::is_idle));
        // A write node 1 never hears of by broadcast (applied to the store
        // only): the exchange brings it.
        stores[0]
            .0
            .lock()
            .unwrap()
            .insert(Bytes::from_static(b"b"), Bytes::from_static(b"2"));
        let delivered = run(&mut nodes, &mut now, 1_500);
        assert!(delivered.iter().all(Vec::is_empty), "no broadcast carried it");
        assert_eq!(stores[1].0.lock().unwrap().len(), 2, "the exchange brought it");
        let s = nodes[1].stats();
        assert!(channel_stats(&s).exchanges >= 1);
        assert!(channel_stats(&s).direct_received >= 1);
        assert!(s.sent.channel.messages >= 1 && s.received.channel.messages >= 1);
        // Unregistered: frames for it are ignored from now on.
        assert!(nodes[1].unregister_channel(CH).is_ok());
        assert_eq!(nodes[1].unregister_channel(CH).err(), Some(ChannelError::Unknown(CH)));
        let id = Bytes::from_static(b"c");
        nodes[0].broadcast_on(now, CH, id, Bytes::new()).unwrap();
        run(&mut nodes, &mut now, 100);
        assert!(nodes[1].stats().unknown_channel >= 1);
    }

    #[test]
    fn a_frame_for_an_unknown_channel_is_counted_and_ignored() {
        let (mut nodes, mut now) = pair();
        let store = SetHandler::default();
        nodes[0]
            .register_channel(now, CH, Box::new(store), ChannelConfig::default())
            .unwrap();
        nodes[0]
            .broadcast_on(now, CH, Bytes::from_static(b"x"), Bytes::from_static(b"y"))
            .unwrap();
        nodes[0].send_direct(now, CH, 1, Bytes::from_static(b"hello")).unwrap();
        let delivered = run(&mut nodes, &mut now, 100);
        assert!(delivered.iter().all(Vec::is_empty));
        let s = nodes[1].stats();
        assert!(s.unknown_channel >= 2, "{}", s.unknown_channel);
        assert_eq!(s.invalid_frames, 0);
        assert!(s.channels.is_empty());
    }

    #[test]
    fn a_channel_frame_from_a_non_member_is_refused() {
        let (mut nodes, now) = pair();
        nodes[0]
            .register_channel(now, CH, Box::new(SetHandler::default()), ChannelConfig::default())
            .unwrap();
        let m: Message<u32> = Message::Channel(ChannelMessage {
            channel: CH.0,
            body: ChannelBody::Direct(Bytes::from_static(b"hi")),
        });
        let mut frame = Vec::new();
        m.encode_into(1 << 20, &mut frame).unwrap();
        assert_eq!(nodes[0].handle_frame(now, 77, &frame), Ok(()));
        let s = nodes[0].stats();
        assert_eq!(s.channel_non_member, 1);
        assert_eq!(channel_stats(&s).direct_received, 0);
    }

    #[test]
    fn malformed_and_invalid_channel_frames_are_errors() {
        let (mut nodes, now) = pair();
        nodes[0]
            .register_channel(now, CH, Box::new(SetHandler::default()), ChannelConfig::default())
            .unwrap();
        // Garbage after the header.
        let garbage = [PROTOCOL_VERSION, Kind::Channel as u8, 3, 9, 0xff, 0xff];
        assert!(nodes[0].handle_frame(now, 1, &garbage).is_err());
        // Truncated: a channel number and nothing else.
        assert_eq!(
            nodes[0].handle_frame(now, 1, &[PROTOCOL_VERSION, Kind::Channel as u8, 3]),
            Err(WireError::Malformed)
        );
        // Well-formed, but an empty IHAVE breaks the engine's rules.
        let m: Message<u32> = Message::Channel(ChannelMessage {
            channel: CH.0,
            body: ChannelBody::Broadcast(PlumtreeMessage::IHave { announcements: vec![] }),
        });
        let mut frame = Vec::new();
        m.encode_into(1 << 20, &mut frame).unwrap();
        assert!(matches!(
            nodes[0].handle_frame(now, 1, &frame),
            Err(WireError::Invalid(_))
        ));
        // A payload over the channel's max_payload.
        let m: Message<u32> = Message::Channel(ChannelMessage {
            channel: CH.0,
            body: ChannelBody::Broadcast(PlumtreeMessage::Gossip {
                id: Bytes::from_static(b"big"),
                root: 1,
                round: 0,
                payload: Bytes::from(vec![0u8; 64 * 1024 + 1]),
            }),
        });
        let mut frame = Vec::new();
        m.encode_into(1 << 20, &mut frame).unwrap();
        assert!(matches!(
            nodes[0].handle_frame(now, 1, &frame),
            Err(WireError::Invalid(_))
        ));
        assert_eq!(nodes[0].stats().invalid_frames, 4);
    }

    #[test]
    fn calls_over_the_limits_are_refused_with_typed_errors() {
        let mut n = node(0, 512);
        let now = Instant::ZERO;
        let h = || Box::new(SetHandler::default());
        assert_eq!(
            n.broadcast_on(now, CH, Bytes::new(), Bytes::new()),
            Err(ChannelError::Unknown(CH))
        );
        n.register_channel(now, CH, h(), ChannelConfig::default()).unwrap();
        assert_eq!(
            n.register_channel(now, CH, h(), ChannelConfig::default()),
            Err(ChannelError::Duplicate(CH))
        );
        // A payload whose frame cannot fit in 512 bytes.
        let r = n.broadcast_on(now, CH, Bytes::from_static(b"id"), Bytes::from(vec![0u8; 600]));
        assert!(
            matches!(r, Err(ChannelError::Broadcast(BroadcastError::FrameTooSmall { max: 512, len })) if len > 600),
            "{r:?}"
        );
        // One that fits is taken.
        n.broadcast_on(now, CH, Bytes::from_static(b"id"), Bytes::from(vec![0u8; 400]))
            .unwrap();
        let r = n.send_direct(now, CH, 1, Bytes::from(vec![0u8; 600]));
        assert!(matches!(r, Err(ChannelError::DirectTooLarge { max: 512, .. })), "{r:?}");
        assert_eq!(
            n.send_direct(now, ChannelId(9), 1, Bytes::new()),
            Err(ChannelError::Unknown(ChannelId(9)))
        );
        for c in 0..MAX_CHANNELS as u16 - 1 {
            n.register_channel(now, ChannelId(100 + c), h(), ChannelConfig::default())
                .unwrap();
        }
        assert_eq!(
            n.register_channel(now, ChannelId(999), h(), ChannelConfig::default()),
            Err(ChannelError::TooMany { max: MAX_CHANNELS })
        );
        assert_eq!(n.channels().count(), MAX_CHANNELS);
    }
}
