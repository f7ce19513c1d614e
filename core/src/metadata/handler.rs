//! The Plumtree handler contract answered from the store (Riak's
//! `riak_core_metadata_manager` as a `riak_core_broadcast_handler`).

use super::object::Object;
use super::replica::Core;
use super::{Actor, ChangeSource, Id};
use crate::broadcast::{Graft, Handler};
use crate::identity::Identity;
use crate::time::Instant;
use bytes::Bytes;

impl<I: Identity> Handler<Id<Actor<I>>> for Core<I> {
    /// New if the local context does not descend the object's: the replicas
    /// are merged and the engine forwards the message. An object a collected
    /// tombstone supersedes is refused.
    fn merge(&mut self, now: Instant, id: &Id<Actor<I>>, payload: &Bytes) -> bool {
        // The node validated the frame; a payload that fails here came from
        // somewhere that skipped it, and is a duplicate as far as the tree is
        // concerned.
        if self.check_key(&id.prefix, &id.key).is_err() {
            return false;
        }
        let Ok(object) = Object::decode(payload, self.config.max_value_len) else {
            return false;
        };
        self.apply_remote(now, &id.prefix, &id.key, object, ChangeSource::Broadcast)
    }

    /// Stale when what we hold, or a tombstone we collected, descends the
    /// announced context.
    fn is_stale(&mut self, id: &Id<Actor<I>>) -> bool {
        if self
            .store
            .get(&id.prefix, &id.key)
            .is_some_and(|e| e.context.descends(&id.context))
        {
            return true;
        }
        self.collected.supersedes(&id.prefix, &id.key, &id.context)
    }

    /// Riak's `graft/1`: the object if its context is exactly the one asked
    /// for; stale if ours descends it (the newer write was broadcast on its
    /// own); missing otherwise. A key with an unconfirmed write answers
    /// missing: nothing leaves before it is durable.
    fn graft(&mut self, id: &Id<Actor<I>>) -> Graft {
        match self.store.get(&id.prefix, &id.key) {
            Some(_) if !self.is_clean(&id.prefix, &id.key) => Graft::Missing,
            Some(e) if e.context == id.context => Graft::Payload(e.encoded.clone()),
            Some(e) if e.context.descends(&id.context) => Graft::Stale,
            _ if self.collected.supersedes(&id.prefix, &id.key, &id.context) => Graft::Stale,
            _ => Graft::Missing,
        }
    }
}
