//! Per-node counters.

use crate::broadcast;
use crate::metadata;
use crate::wire::Kind;
use alloc::vec::Vec;

/// One registered channel's figures.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[non_exhaustive]
pub struct ChannelStats {
    /// The channel's number.
    pub channel: u16,
    /// Its Plumtree engine's counters and structure sizes.
    pub plumtree: broadcast::Stats,
    /// Exchanges started (the handler returned a message to send).
    pub exchanges: u64,
    /// Direct messages received and handed to the handler.
    pub direct_received: u64,
}

/// Messages and bytes of one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct KindStats {
    /// Frames.
    pub messages: u64,
    /// Bytes, frame headers included.
    pub bytes: u64,
}

/// Counters split by frame kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PerKind {
    /// HyParView frames.
    pub hyparview: KindStats,
    /// Mesh membership frames.
    pub mesh: KindStats,
    /// Plumtree frames (payload and control; see [`Stats::plumtree`] for the
    /// split).
    pub plumtree: KindStats,
    /// Metadata broadcast frames.
    pub metadata: KindStats,
    /// Metadata anti-entropy and tombstone-collection frames.
    pub anti_entropy: KindStats,
    /// Application channel frames (broadcast and direct).
    pub channel: KindStats,
}

impl PerKind {
    pub(crate) fn record(&mut self, kind: Kind, bytes: usize) {
        let k = match kind {
            Kind::HyParView => &mut self.hyparview,
            Kind::Mesh => &mut self.mesh,
            Kind::Plumtree => &mut self.plumtree,
            Kind::Metadata => &mut self.metadata,
            Kind::AntiEntropy => &mut self.anti_entropy,
            Kind::Channel => &mut self.channel,
        };
        k.messages += 1;
        k.bytes += bytes as u64;
    }

    /// All kinds together.
    pub fn total(&self) -> KindStats {
        let all = [
            self.hyparview,
            self.mesh,
            self.plumtree,
            self.metadata,
            self.anti_entropy,
            self.channel,
        ];
        KindStats {
            messages: all.iter().map(|k| k.messages).sum(),
            bytes: all.iter().map(|k| k.bytes).sum(),
        }
    }
}

/// A node's counters and the current sizes of its bounded structures.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[non_exhaustive]
pub struct Stats {
    /// Frames sent, by kind.
    pub sent: PerKind,
    /// Frames received and accepted, by kind.
    pub received: PerKind,
    /// Frames refused: undecodable, invalid, or claiming to be from this node.
    pub invalid_frames: u64,
    /// Well-formed frames for a protocol this node does not run.
    pub out_of_place: u64,
    /// Calls whose `now` was earlier than a previous call's.
    pub time_regressions: u64,
    /// Messages that could not be encoded within the frame limit.
    pub encode_failures: u64,
    /// Plumtree payload frames sent (GOSSIP), the numerator of RMR.
    pub payload_sent: KindStats,
    /// Plumtree control frames sent (IHAVE, GRAFT, PRUNE, ignored-IHAVE).
    pub control_sent: KindStats,
    /// The broadcast engine's counters and structure sizes.
    pub plumtree: broadcast::Stats,
    /// Broadcasts held by the plain-message cache.
    pub message_cache: usize,
    /// Origins, and their out-of-order sequence numbers, held for exact
    /// duplicate detection of plain broadcasts; at most eight times
    /// [`Config::message_cache`](super::Config::message_cache) (four times
    /// each).
    pub seen_ids: usize,
    /// The metadata store's counters.
    pub metadata: metadata::Stats,
    /// The metadata broadcast engine's counters and structure sizes.
    pub metadata_plumtree: broadcast::Stats,
    /// Well-formed channel frames for a channel this node has not
    /// registered: ignored.
    pub unknown_channel: u64,
    /// Channel frames refused because their sender is not a member (mesh
    /// mode).
    pub channel_non_member: u64,
    /// Per registered channel, in channel order: its engine's counters and
    /// structure sizes.
    pub channels: Vec<ChannelStats>,
    /// Frames waiting in `poll_transmit`.
    pub transmit_queue: usize,
    /// Events waiting in `poll_event`.
    pub event_queue: usize,
}
