//! The compare-exchange: a sans-IO initiator and a stateless responder.
//!
//! The initiator ([`Exchange`], in `initiator`) drives the walk and keeps
//! all the state; the responder ([`respond`], in `responder`) answers each
//! request from its tree and keeps none. This module holds what both sides
//! share: the [`Limits`] of one exchange, the [`Diff`] it reports, the
//! initiator's [`Step`], the [`ExchangeError`] either side returns, and
//! positions in segment order.

use alloc::vec::Vec;
use core::fmt;

use super::message::Message;
use super::tree::Entry;

mod initiator;
mod responder;

pub use initiator::Exchange;
pub use responder::respond;

/// Bounds on one exchange, so that it ends and stays small whatever the peer
/// sends or however the trees change meanwhile.
#[derive(Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Limits {
    /// Requests sent at most (the root request included). When reached, the
    /// exchange ends with what it found and [`Diff::complete`] false.
    pub max_rounds: u32,
    /// Keys reported at most. When reached, the exchange ends with
    /// [`Diff::complete`] false; the next exchange, after repair, finds the
    /// rest.
    pub max_diff_keys: usize,
}

impl Default for Limits {
    /// - `max_rounds` 256: two trees of 10^6 keys that share nothing need 4
    ///   rounds of digests and ~60 of keys at ~30 bytes per pair and 512 KiB
    ///   per reply, so 256 never cuts short an honest exchange at that size,
    ///   while a peer dribbling one key per reply is cut off after 256
    ///   replies (at most 128 MiB received).
    /// - `max_diff_keys` 65,536: enough to repair a million-key store in 16
    ///   exchanges (under three minutes at Riak's 10 s exchange tick) while
    ///   holding at most 256 MiB of keys (65,536 × the 4 KiB key maximum)
    ///   and usually a few MiB.
    fn default() -> Self {
        Limits {
            max_rounds: 256,
            max_diff_keys: 1 << 16,
        }
    }
}

impl fmt::Debug for Limits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Limits {
            max_rounds,
            max_diff_keys,
        } = self;
        f.debug_struct("Limits")
            .field("max_rounds", max_rounds)
            .field("max_diff_keys", max_diff_keys)
            .finish()
    }
}

/// What an exchange found, from the initiator's point of view.
///
/// Each list is in the order the walk found the keys (deterministic for
/// given trees); a key appears at most once across the three lists.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Diff {
    /// Keys the peer has and the local tree lacks.
    pub missing_locally: Vec<Vec<u8>>,
    /// Keys the local tree has and the peer lacks.
    pub missing_remotely: Vec<Vec<u8>>,
    /// Keys both have, with different object digests.
    pub different: Vec<Vec<u8>>,
    /// False when [`Limits`] cut the exchange short: the lists are true
    /// differences but not all of them.
    pub complete: bool,
}

impl Diff {
    /// Keys reported in all three lists.
    pub fn len(&self) -> usize {
        self.missing_locally.len() + self.missing_remotely.len() + self.different.len()
    }

    /// Whether no difference was found.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What the initiator does next.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Step {
    /// Send this request to the peer and feed its reply to
    /// [`Exchange::handle`].
    Send(Message),
    /// The exchange is over.
    Done(Diff),
}

/// Why a message was refused.
///
/// The trees are never changed. The responder's errors leave it with nothing
/// to undo; an initiator that returns one is finished and should be dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExchangeError {
    /// The message is not what this side expects now (a reply sent to the
    /// responder, a request or the wrong reply sent to the initiator).
    Unexpected {
        /// The message received.
        got: &'static str,
        /// What was expected.
        expected: &'static str,
    },
    /// The peer's tree has another shape; the trees cannot be compared.
    ConfigMismatch {
        /// The peer's segment count.
        segments: u32,
        /// The peer's width.
        width: u32,
    },
    /// The local tree passed to [`Exchange::handle`] has a different shape
    /// from the one the exchange started with.
    WrongTree,
    /// The message breaks a protocol rule (an index out of range, a list too
    /// long or out of order, a key in the wrong segment).
    Invalid(&'static str),
    /// The exchange has already ended.
    Finished,
}

impl fmt::Display for ExchangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExchangeError::Unexpected { got, expected } => write!(f, "expected {expected}, got {got}"),
            ExchangeError::ConfigMismatch { segments, width } => {
                write!(f, "peer's tree has {segments} segments of width {width}, unlike ours")
            }
            ExchangeError::WrongTree => f.write_str("local tree changed shape during the exchange"),
            ExchangeError::Invalid(why) => write!(f, "invalid exchange message: {why}"),
            ExchangeError::Finished => f.write_str("exchange already finished"),
        }
    }
}

impl core::error::Error for ExchangeError {}

/// A place in segment order: (key hash, key).
pub(super) type Position<'a> = (u64, &'a [u8]);

/// The entries of a segment strictly after `lower` in segment order.
pub(super) fn after_position<'a>(entries: &'a [Entry], lower: Option<Position<'_>>) -> &'a [Entry] {
    match lower {
        Some(lower) => &entries[entries.partition_point(|e| e.position() <= lower)..],
        None => entries,
    }
}
