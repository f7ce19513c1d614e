//! Anti-entropy and garbage-collection messages, and the checks every
//! metadata frame passes before it is used.

use super::object::Object;
use super::store::parse_tree_key;
use super::{Actor, Config, Id};
use crate::broadcast;
use crate::clock::VClock;
use crate::hashtree;
use crate::wire::WireError;
use alloc::vec::Vec;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// The most entries any list in a [`Message`] may hold. Lists are cut by
/// bytes long before this (half a frame); the count bound only keeps a
/// hostile list of empty entries cheap to refuse.
pub(crate) const MAX_ENTRIES: usize = 1 << 16;

/// A tombstone named in a GC message: its key (the tree key, which carries
/// the full prefix) and its exact context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(serialize = "I: Serialize", deserialize = "I: Ord + Deserialize<'de>"))]
pub struct Tombstone<I: Ord> {
    /// `len(prefix) ‖ prefix ‖ len(subprefix) ‖ subprefix ‖ key`.
    pub key: Bytes,
    /// The tombstone's context.
    pub context: VClock<I>,
}

/// Anti-entropy and tombstone-collection messages
/// ([`Kind::AntiEntropy`](crate::wire::Kind::AntiEntropy)).
///
/// Keys are tree keys: `len(prefix) ‖ prefix ‖ len(subprefix) ‖ subprefix ‖
/// key`. See the [module docs](super) for the protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(serialize = "I: Serialize", deserialize = "I: Ord + Deserialize<'de>"))]
#[non_exhaustive]
pub enum Message<I: Ord> {
    /// Initiator → responder: a hash-tree request of exchange `session`.
    TreeRequest {
        /// The initiator's session number.
        session: u64,
        /// The request.
        request: hashtree::Message,
    },
    /// Responder → initiator: the answer to a [`Message::TreeRequest`].
    TreeReply {
        /// The session it answers.
        session: u64,
        /// The reply.
        reply: hashtree::Message,
    },
    /// Responder → initiator: the request could not be answered (another
    /// tree shape, an invalid request); the exchange is over.
    Abort {
        /// The session it ends.
        session: u64,
    },
    /// Initiator → responder: send these objects.
    Fetch {
        /// The session they repair.
        session: u64,
        /// The keys, as tree keys.
        keys: Vec<Bytes>,
    },
    /// Responder → initiator: the objects for a non-empty prefix of a
    /// [`Message::Fetch`]'s keys, in order (`None`: not held, or not yet
    /// durable). The initiator asks again for the rest.
    Objects {
        /// The session it answers.
        session: u64,
        /// `(tree key, object)` pairs.
        objects: Vec<(Bytes, Option<Object<I>>)>,
    },
    /// Initiator → responder: objects the responder lacks or holds
    /// differently; merged, never broadcast.
    Push {
        /// `(tree key, object)` pairs.
        objects: Vec<(Bytes, Object<I>)>,
    },
    /// Member → collector: "I durably hold these tombstones".
    GcAck {
        /// The tombstones.
        tombstones: Vec<Tombstone<I>>,
    },
    /// Collector → members: "every member holds these; collect them".
    GcCollect {
        /// The tombstones.
        tombstones: Vec<Tombstone<I>>,
    },
}

impl<I: Ord> Message<I> {
    /// The variant's name, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Message::TreeRequest { .. } => "TreeRequest",
            Message::TreeReply { .. } => "TreeReply",
            Message::Abort { .. } => "Abort",
            Message::Fetch { .. } => "Fetch",
            Message::Objects { .. } => "Objects",
            Message::Push { .. } => "Push",
            Message::GcAck { .. } => "GcAck",
            Message::GcCollect { .. } => "GcCollect",
        }
    }
}

fn check_key(key: &[u8], config: &Config) -> Result<(), WireError> {
    if key.len() > config.max_key_len.min(hashtree::MAX_KEY_LEN) {
        return Err(WireError::Invalid("metadata key exceeds max_key_len"));
    }
    if parse_tree_key(key).is_none() {
        return Err(WireError::Invalid("malformed metadata key"));
    }
    Ok(())
}

fn check_list<T>(list: &[T]) -> Result<(), WireError> {
    match list.len() {
        0 => Err(WireError::Invalid("empty metadata list")),
        n if n > MAX_ENTRIES => Err(WireError::Invalid("metadata list too long")),
        _ => Ok(()),
    }
}

/// Checks a decoded anti-entropy message: list lengths, keys and objects.
/// The hash-tree requests and replies inside are checked by the exchange
/// itself.
pub(crate) fn validate<I: Ord + Clone>(message: &Message<I>, config: &Config) -> Result<(), WireError> {
    let object = |o: &Object<I>| o.check(config.max_value_len).map_err(WireError::Invalid);
    match message {
        Message::TreeRequest { .. } | Message::TreeReply { .. } | Message::Abort { .. } => Ok(()),
        Message::Fetch { keys, .. } => {
            check_list(keys)?;
            keys.iter().try_for_each(|k| check_key(k, config))
        }
        Message::Objects { objects, .. } => {
            check_list(objects)?;
            objects.iter().try_for_each(|(k, o)| {
                check_key(k, config)?;
                o.as_ref().map_or(Ok(()), object)
            })
        }
        Message::Push { objects } => {
            check_list(objects)?;
            objects.iter().try_for_each(|(k, o)| {
                check_key(k, config)?;
                object(o)
            })
        }
        Message::GcAck { tombstones } | Message::GcCollect { tombstones } => {
            check_list(tombstones)?;
            tombstones.iter().try_for_each(|t| check_key(&t.key, config))
        }
    }
}

fn check_id<I: Ord>(id: &Id<I>, config: &Config) -> Result<(), WireError> {
    if !id.prefix.is_valid() {
        return Err(WireError::Invalid("metadata prefix too long"));
    }
    let len = id.prefix.prefix().len() + id.prefix.subprefix().len() + id.key.len() + 2;
    if len > config.max_key_len.min(hashtree::MAX_KEY_LEN) {
        return Err(WireError::Invalid("metadata key exceeds max_key_len"));
    }
    Ok(())
}

/// Checks a decoded metadata broadcast message: the engine's own limits,
/// every id's key, and that a GOSSIP's payload is a valid object whose
/// context is the id's.
pub(crate) fn validate_broadcast<I>(
    message: &broadcast::Message<I, Id<Actor<I>>>,
    config: &Config,
) -> Result<(), WireError>
where
    I: crate::Identity,
{
    broadcast::Plumtree::<I, Id<Actor<I>>>::validate(message, &config.plumtree)?;
    match message {
        broadcast::Message::Gossip { id, payload, .. } => {
            check_id(id, config)?;
            let object: Object<Actor<I>> = Object::decode(payload, config.max_value_len)?;
            if object.context() != id.context {
                return Err(WireError::Invalid("metadata gossip context differs from its object's"));
            }
            Ok(())
        }
        broadcast::Message::IHave { announcements } => announcements.iter().try_for_each(|a| check_id(&a.id, config)),
        broadcast::Message::Graft { id, .. } => check_id(id, config),
        broadcast::Message::IgnoredIHave { ids } => ids.iter().try_for_each(|id| check_id(id, config)),
        _ => Ok(()),
    }
}
