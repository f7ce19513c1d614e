//! Commands: what a [`Handle`](crate::Handle) asks of the loop, how the
//! loop carries each one out, and the graceful stop a shutdown (or a failed
//! store) begins.

use super::Core;
use crate::handle::Error;
use crate::link::{CloseMode, ConnId};
use crate::oneshot;
use crate::stats::DriverStats;
use crate::streams::{Change, Events};
use bytes::Bytes;
use epidemic_core::Instant;
use epidemic_core::broadcast::BroadcastError;
use epidemic_core::metadata::{self, FullPrefix};
use epidemic_core::node::{BroadcastId, Node};
use std::net::SocketAddr;

/// A read-only look at the node and the driver's counters, run on the
/// driver's loop.
pub(crate) type InspectFn = Box<dyn FnOnce(&Node<SocketAddr>, &DriverStats) + Send>;

/// A change to the node made on the driver's loop (with the loop's `now`);
/// the loop drains the node's outputs after it.
pub(crate) type MutateFn = Box<dyn FnOnce(&mut Node<SocketAddr>, Instant) + Send>;

/// What a handle asks of the loop.
pub(crate) enum Command {
    Broadcast {
        payload: Bytes,
        reply: oneshot::Sender<Result<BroadcastId<SocketAddr>, BroadcastError>>,
    },
    Join {
        contacts: Vec<SocketAddr>,
        reply: oneshot::Sender<()>,
    },
    Leave {
        reply: oneshot::Sender<()>,
    },
    /// Answered once the node has the neighbours asked for, or at the
    /// wait's timeout (see [`crate::Handle::joined`]).
    Joined {
        wait: crate::JoinWait,
        reply: oneshot::Sender<Result<(), crate::JoinError>>,
    },
    /// A put (`value: Some`) or a delete (`value: None`).
    Put {
        prefix: FullPrefix,
        key: Bytes,
        value: Option<Bytes>,
        context: Option<metadata::Context<SocketAddr>>,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    Subscribe {
        prefix: FullPrefix,
        reply: oneshot::Sender<Events<Change>>,
    },
    Inspect(InspectFn),
    Mutate(MutateFn),
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// A stop under way.
pub(super) struct Stopping {
    /// The loop ends by then whatever is left (the linger).
    pub(super) deadline: Instant,
    /// Shutdown requests, answered when the loop ends.
    pub(super) waiters: Vec<oneshot::Sender<()>>,
}

impl Core {
    pub(super) fn on_command(&mut self, command: Command) {
        if self.stopping.is_some() {
            // Dropping the reply sender answers `Shutdown`, except to
            // another shutdown request, which waits with the first.
            if let (Command::Shutdown { reply }, Some(s)) = (command, self.stopping.as_mut()) {
                s.waiters.push(reply);
            }
            return;
        }
        let now = self.now();
        match command {
            Command::Broadcast { payload, reply } => {
                let r = self.node.broadcast(now, payload);
                let _ = reply.send(r);
            }
            Command::Join { contacts, reply } => {
                self.joins.remember(&contacts, self.ctx.shared.identity);
                self.node.join(now, contacts);
                let _ = reply.send(());
            }
            Command::Joined { wait, reply } => self.on_joined(now, wait, reply),
            Command::Leave { reply } => {
                self.node.leave(now);
                let _ = reply.send(());
            }
            Command::Inspect(f) => {
                let mut stats = self.stats.clone();
                stats.open_links = self.links.conn_count();
                stats.open_peers = self.links.peer_count();
                f(&self.node, &stats);
            }
            Command::Mutate(f) => f(&mut self.node, now),
            Command::Put {
                prefix,
                key,
                value,
                context,
                reply,
            } => {
                let r = match value {
                    Some(v) => self.node.put(now, &prefix, &key, v, context.as_ref()),
                    None => self.node.delete(now, &prefix, &key, context.as_ref()),
                };
                match r {
                    // Answered on `PutDurable`, which the drain below brings
                    // at once when there is no store.
                    Ok(id) if self.node.metadata_config().durable => {
                        self.durability.await_durable(id, reply);
                    }
                    Ok(_) => {
                        let _ = reply.send(Ok(()));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e.into()));
                    }
                }
            }
            Command::Subscribe { prefix, reply } => {
                let id = self.node.subscribe(prefix);
                let events = self.ctx.shared.subscribers.lock().prefix(id);
                if let Err(events) = reply.send(events) {
                    // The caller gave up waiting: end it at once.
                    drop(events);
                    self.node.unsubscribe(id);
                }
            }
            Command::Shutdown { reply } => self.begin_stop(Some(reply)),
        }
        self.drain();
    }

    /// Leaves, then closes every link once its queue has drained; the loop
    /// ends when links are closed and records durable, or at the linger.
    pub(super) fn begin_stop(&mut self, reply: Option<oneshot::Sender<()>>) {
        if let Some(s) = self.stopping.as_mut() {
            s.waiters.extend(reply);
            return;
        }
        let now = self.now();
        self.node.leave(now);
        self.drain();
        // Waiting for a join is over: dropping the waits answers `Shutdown`.
        self.joins.stop();
        self.stopping = Some(Stopping {
            deadline: now + self.config.linger,
            waiters: reply.into_iter().collect(),
        });
        // Every link drains its queue (the leave notices among it), says
        // goodbye and closes; dials still in flight are refused when they
        // report.
        let open: Vec<ConnId> = self.links.links();
        for conn in open {
            self.close_conn(conn, CloseMode::Drain);
        }
        // No more requests: the ones already queued are answered `Shutdown`
        // by dropping them.
        for command in self.ctx.shared.commands.close_and_drain() {
            if let (Command::Shutdown { reply }, Some(s)) = (command, self.stopping.as_mut()) {
                s.waiters.push(reply);
            }
        }
    }
}
