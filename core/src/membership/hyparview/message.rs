//! The wire messages, the priority of a `Neighbor` request, and the
//! message counters of [`Stats`](super::Stats).

use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

use super::{Config, HyParView};
use crate::identity::Identity;
use crate::wire::WireError;

/// How strongly a `Neighbor` request asks (§4.3).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Priority {
    /// The requester has no neighbor at all (§4.3), or too few after a
    /// whole repair round, or is probing a lost peer or a way out of a
    /// closed component: the receiver accepts, and evicts a random neighbor
    /// if it must when the requester connects.
    High,
    /// The receiver accepts only if its active view has room.
    Low,
}

/// A HyParView message. The sender is known from the link it arrives on.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum Message<I> {
    /// "Let me in": sent by a new node to its contact (§4.2).
    Join,
    /// A join's random walk (§4.2).
    ForwardJoin {
        /// The node that joined.
        joiner: I,
        /// Hops left.
        ttl: u8,
    },
    /// "Will you be my neighbor?" (§4.3).
    Neighbor {
        /// How strongly.
        priority: Priority,
    },
    /// The answer to `Neighbor`. The sender's state is unchanged either
    /// way: on acceptance, the requester connects.
    NeighborReply {
        /// Whether the requester may connect.
        accepted: bool,
    },
    /// "You are my neighbor, over this link": the receiver makes the sender
    /// its neighbor unconditionally (evicting a random one if full).
    Connect {
        /// The link's id, chosen at random by the sender.
        link: u64,
    },
    /// "You are no longer my neighbor."
    Disconnect {
        /// The link closed. `None` when there was none: a refused join, or
        /// a node that has left answering a message.
        link: Option<u64>,
        /// The sender is leaving the cluster: forget it entirely rather than
        /// keep it as a passive peer.
        leaving: bool,
    },
    /// A passive-view exchange travelling along a random walk (§4.4).
    Shuffle {
        /// The node that started the exchange, and that gets the reply.
        origin: I,
        /// Hops left.
        ttl: u8,
        /// The origin and some of its active and passive peers.
        nodes: Vec<I>,
    },
    /// The end of a shuffle walk answering its origin (§4.4).
    ShuffleReply {
        /// Passive peers of the sender, as many as it received.
        nodes: Vec<I>,
    },
}

/// Messages counted by type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct MessageCounts {
    /// `Join`.
    pub join: u64,
    /// `ForwardJoin`.
    pub forward_join: u64,
    /// `Neighbor`.
    pub neighbor: u64,
    /// `NeighborReply`.
    pub neighbor_reply: u64,
    /// `Connect`.
    pub connect: u64,
    /// `Disconnect`.
    pub disconnect: u64,
    /// `Shuffle`.
    pub shuffle: u64,
    /// `ShuffleReply`.
    pub shuffle_reply: u64,
}

impl MessageCounts {
    /// All messages together.
    pub fn total(&self) -> u64 {
        let MessageCounts {
            join,
            forward_join,
            neighbor,
            neighbor_reply,
            connect,
            disconnect,
            shuffle,
            shuffle_reply,
        } = *self;
        join + forward_join + neighbor + neighbor_reply + connect + disconnect + shuffle + shuffle_reply
    }

    pub(super) fn record<I>(&mut self, msg: &Message<I>) {
        let counter = match msg {
            Message::Join => &mut self.join,
            Message::ForwardJoin { .. } => &mut self.forward_join,
            Message::Neighbor { .. } => &mut self.neighbor,
            Message::NeighborReply { .. } => &mut self.neighbor_reply,
            Message::Connect { .. } => &mut self.connect,
            Message::Disconnect { .. } => &mut self.disconnect,
            Message::Shuffle { .. } => &mut self.shuffle,
            Message::ShuffleReply { .. } => &mut self.shuffle_reply,
        };
        *counter = counter.saturating_add(1);
    }
}

impl<I: Identity> HyParView<I> {
    /// Checks a decoded message against the limits of `config`: node lists
    /// in `Shuffle` and `ShuffleReply` may hold at most
    /// [`Config::max_shuffle_len`] entries.
    ///
    /// [`handle_message`](Self::handle_message) applies this itself; a
    /// driver may call it first to refuse a frame before handing it over.
    pub fn validate(msg: &Message<I>, config: &Config) -> Result<(), WireError> {
        let max = config.max_shuffle_len();
        match msg {
            Message::Shuffle { nodes, .. } if nodes.len() > max => {
                Err(WireError::Invalid("shuffle lists more than 1 + ka + kp nodes"))
            }
            Message::ShuffleReply { nodes } if nodes.len() > max => {
                Err(WireError::Invalid("shuffle reply lists more than 1 + ka + kp nodes"))
            }
            _ => Ok(()),
        }
    }
}
