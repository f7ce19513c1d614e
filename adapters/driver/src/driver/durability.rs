//! Durability: the loop's side of persistence in redb (the writer thread
//! itself is [`crate::store`]).
//!
//! It owns restoring the store's objects into the node at start, the
//! records on their way to the writer (in order, held back while its queue
//! is full), the count of records handed over and not yet reported on
//! disk, and the puts waiting to be durable before they are acknowledged.
//! A store that fails stops the node (fail-stop).

use super::Core;
use crate::handle::{Error, Shared};
use crate::oneshot;
use crate::queue::{PushError, Queue};
use crate::stats::DriverStats;
use crate::store::{Durable, Store};
use crate::sync::Arc;
use epidemic_core::Instant;
use epidemic_core::metadata::{Persist, PersistId, PutId};
use epidemic_core::node::Node;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;

/// Persist records waiting for room in the writer's queue beyond which the
/// loop stops taking commands and frames, until the disk catches up.
const BACKLOG_LIMIT: usize = 1024;

/// Records on their way to the store, and puts waiting for them.
pub(super) struct Durability {
    /// Whether a writer thread persists records.
    has_store: bool,
    /// Records not yet handed to the writer (its queue was full).
    backlog: VecDeque<Persist>,
    /// Records handed to the writer and not yet reported durable.
    unconfirmed: usize,
    /// Puts waiting to be durable.
    puts: HashMap<PutId, oneshot::Sender<Result<(), Error>>>,
}

/// Puts every object `store` holds back into `node` (counting them in
/// `stats`), and starts the store's writer thread. Without a store, records
/// are durable at once.
pub(super) fn restore(
    node: &mut Node<SocketAddr>,
    store: Option<Store>,
    shared: &Arc<Shared>,
    now: Instant,
    stats: &mut DriverStats,
    slow_write: std::time::Duration,
) -> Durability {
    let has_store = store.is_some();
    if let Some(mut store) = store {
        // Everything the store holds goes back in before the node joins.
        for r in store.take_records() {
            match node.restore(now, &r.prefix, &r.key, &r.object) {
                Ok(()) => stats.restored += 1,
                Err(error) => {
                    tracing::warn!(prefix = ?r.prefix, key = ?r.key, %error, "a stored record was refused at restore");
                    stats.restore_failures += 1;
                }
            }
        }
        shared.part_started();
        if let Err(error) = crate::store::spawn_writer(store, shared.clone(), slow_write) {
            tracing::error!(%error, "could not start the store's writer thread");
            shared.part_ended();
            stats.storage_failed = true;
        }
    }
    Durability {
        has_store,
        backlog: VecDeque::new(),
        unconfirmed: 0,
        puts: HashMap::new(),
    }
}

impl Durability {
    /// Whether a writer thread persists records (and reports on them).
    pub(super) fn has_store(&self) -> bool {
        self.has_store
    }

    /// Whether the disk is so far behind that the loop must take no new
    /// work.
    pub(super) fn is_behind(&self) -> bool {
        self.backlog.len() >= BACKLOG_LIMIT
    }

    /// Whether every record is on disk.
    pub(super) fn is_settled(&self) -> bool {
        self.backlog.is_empty() && self.unconfirmed == 0
    }

    /// A record the node wants durable: held for the writer, or, without a
    /// store, returned to be confirmed at once.
    pub(super) fn persist(&mut self, record: Persist) -> Option<PersistId> {
        if self.has_store {
            self.backlog.push_back(record);
            None
        } else {
            Some(record.id)
        }
    }

    /// `reply` answers put `id` once it is durable.
    pub(super) fn await_durable(&mut self, id: PutId, reply: oneshot::Sender<Result<(), Error>>) {
        self.puts.insert(id, reply);
    }

    /// Put `id` is durable: acknowledge it.
    pub(super) fn put_durable(&mut self, id: PutId) {
        if let Some(reply) = self.puts.remove(&id) {
            let _ = reply.send(Ok(()));
        }
    }

    /// Hands waiting records to the writer's queue `persist`, in order, as
    /// far as it has room.
    pub(super) fn flush(&mut self, persist: &Queue<Persist>) {
        while let Some(record) = self.backlog.pop_front() {
            match persist.try_push(record) {
                Ok(()) => self.unconfirmed += 1,
                Err(PushError::Full(record)) => {
                    self.backlog.push_front(record);
                    break;
                }
                // The store failed or the node is stopping: nothing more is
                // written.
                Err(PushError::Closed(_)) => {}
            }
        }
    }

    /// The store failed: every waiting put fails with `why`, and nothing
    /// more is waited for.
    fn fail(&mut self, why: &str) {
        for (_, reply) in self.puts.drain() {
            let _ = reply.send(Err(Error::Storage(why.to_owned())));
        }
        self.backlog.clear();
        self.unconfirmed = 0;
    }
}

impl Core {
    pub(super) fn on_durable(&mut self, report: Durable) {
        match report {
            Durable::Written(ids) => {
                let d = &mut self.durability;
                d.unconfirmed = d.unconfirmed.saturating_sub(ids.len());
                let now = self.now();
                for id in ids {
                    self.node.persisted(now, id);
                }
                self.drain();
            }
            Durable::Failed(why) => {
                tracing::error!(error = %why, "the store failed: stopping the node");
                // Fail-stop: a node that cannot persist must not go on
                // acknowledging or spreading writes.
                self.stats.storage_failed = true;
                self.durability.fail(&why);
                self.begin_stop(None);
            }
        }
    }
}
