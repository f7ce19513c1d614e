//! The node's message: one variant per protocol, each framed under its own
//! [`Kind`] by [`wire`](crate::wire).

use super::channel::ChannelMessage;
use crate::Identity;
use crate::broadcast;
use crate::broadcast::BroadcastId;
use crate::membership::{hyparview, mesh};
use crate::metadata;
use crate::wire::{EncodeError, Kind, WireError, decode_body, encode_into, split};
use alloc::vec::Vec;

/// Every message one node sends another.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message<I: Identity> {
    /// HyParView membership.
    HyParView(hyparview::Message<I>),
    /// Full-mesh membership gossip.
    Mesh(mesh::Message<I>),
    /// Plumtree broadcast of plain messages.
    Plumtree(broadcast::Message<I, BroadcastId<I>>),
    /// Plumtree broadcast of metadata writes: ids are (full prefix, key,
    /// context), payloads are encoded objects.
    Metadata(broadcast::Message<I, metadata::Id<metadata::Actor<I>>>),
    /// Metadata anti-entropy and tombstone collection.
    AntiEntropy(metadata::Message<metadata::Actor<I>>),
    /// An application channel's broadcast or direct message.
    Channel(ChannelMessage<I>),
}

impl<I: Identity> Message<I> {
    /// The frame kind this message travels under.
    pub fn kind(&self) -> Kind {
        match self {
            Message::HyParView(_) => Kind::HyParView,
            Message::Mesh(_) => Kind::Mesh,
            Message::Plumtree(_) => Kind::Plumtree,
            Message::Metadata(_) => Kind::Metadata,
            Message::AntiEntropy(_) => Kind::AntiEntropy,
            Message::Channel(_) => Kind::Channel,
        }
    }

    /// Appends this message as a frame to `out`; on error `out` is unchanged.
    pub fn encode_into(&self, max: usize, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            Message::HyParView(m) => encode_into(Kind::HyParView, m, max, out),
            Message::Mesh(m) => encode_into(Kind::Mesh, m, max, out),
            Message::Plumtree(m) => encode_into(Kind::Plumtree, m, max, out),
            Message::Metadata(m) => encode_into(Kind::Metadata, m, max, out),
            Message::AntiEntropy(m) => encode_into(Kind::AntiEntropy, m, max, out),
            Message::Channel(m) => encode_into(Kind::Channel, m, max, out),
        }
    }

    /// Decodes a whole frame: length, version and kind first, then the body.
    pub fn decode(frame: &[u8], max: usize) -> Result<Self, WireError> {
        let (kind, body) = split(frame, max)?;
        Ok(match kind {
            Kind::HyParView => Message::HyParView(decode_body(body)?),
            Kind::Mesh => Message::Mesh(decode_body(body)?),
            Kind::Plumtree => Message::Plumtree(decode_body(body)?),
            Kind::Metadata => Message::Metadata(decode_body(body)?),
            Kind::AntiEntropy => Message::AntiEntropy(decode_body(body)?),
            Kind::Channel => Message::Channel(decode_body(body)?),
        })
    }
}
