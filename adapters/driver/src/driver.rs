//! The driver loop: one task that owns the [`Node`] and obeys the sans-IO
//! contract (after every input, drain every output).
//!
//! This module owns the loop itself: starting a node ([`start`]), waiting
//! on its inputs (commands, connection reports, durability reports, the
//! listener, the timer), draining the node's outputs, and its timers. The
//! rest of what the loop does lives in submodules:
//!
//! - [`commands`]: what a handle asks of the loop, and the graceful stop;
//! - [`connections`]: carrying out the link table's decisions (dials,
//!   handshakes, closes, link events for the node) and the per-peer queues;
//! - [`link_table`]: which peer has which connection, sans-IO;
//! - [`durability`]: records on their way to the store, and puts waiting
//!   to be durable;
//! - [`joins`]: why each join contact failed, and the waits for a join.

mod commands;
mod connections;
mod durability;
mod handshakes;
mod joins;
mod link_table;

pub(crate) use commands::Command;

use crate::codec::{PREFIX_LEN, PartialBudget, RETAINED_CAPACITY};
use crate::config::DriverConfig;
use crate::handle::{Handle, Shared};
use crate::joined::ContactFailure;
use crate::link::CloseMode;
use crate::link::{ConnId, FrameQueue, TaskCtx};
use crate::oneshot;
use crate::runtime::{Accepting, BoxFuture, Runtime, Transport};
use crate::stats::DriverStats;
use crate::store::Store;
use crate::sync::Arc;
use commands::Stopping;
use durability::Durability;
use epidemic_core::Instant;
use epidemic_core::metadata::PersistId;
use epidemic_core::node::{Event, Node};
use epidemic_core::time::MonotonicClock;
use futures_lite::future;
use link_table::LinkTable;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::SocketAddr;
use std::task::Poll;
use std::time::Duration;

/// Starts a node with identity `identity` (the address peers dial) on
/// `runtime`, talking through `transport`, and returns its handle.
///
/// With a `store`, the node first restores every object the store holds,
/// and from then on acknowledges a put only once it is on disk (see
/// [`store`](crate::store)); without one, puts are acknowledged at once and
/// nothing survives a restart. The node then joins through `contacts`, if
/// any.
///
/// This is what the TCP and QUIC adapters call; use it directly to run a
/// node over a transport of your own. If the node configuration's seed is 0
/// (the default), a random one is drawn, so that nodes of one cluster do not
/// make the same random choices in lockstep.
pub fn start(
    identity: SocketAddr,
    mut config: DriverConfig,
    contacts: Vec<SocketAddr>,
    store: Option<Store>,
    transport: std::sync::Arc<dyn Transport>,
    runtime: std::sync::Arc<dyn Runtime>,
) -> Handle {
    let incarnation = random_u64();
    if config.node.seed == 0 {
        config.node.seed = incarnation.rotate_left(17) ^ 0x5851_f42d_4c95_7f2d;
    }
    let shared = Arc::new(Shared::new(
        identity,
        config.command_queue,
        config.input_queue,
        config.event_queue,
    ));
    let ctx = std::sync::Arc::new(TaskCtx {
        shared: shared.clone(),
        transport,
        runtime: runtime.clone(),
        incarnation,
        max_frame: config.node.max_frame,
        partial: std::sync::Arc::new(PartialBudget::new(partial_budget(&config))),
        connect_timeout: config.connect_timeout.into(),
        handshake_timeout: config.handshake_timeout.into(),
        linger: config.linger.into(),
        liveness_timeout: config.liveness_timeout.into(),
    });
    let clock = MonotonicClock::new();
    // The low half of the random incarnation keeps this life's broadcast ids
    // apart from a previous life's.
    let mut node_config = config.node.clone();
    node_config.incarnation = incarnation as u32;
    let mut node = Node::new(identity, node_config);
    let mut stats = DriverStats::default();
    let durability = durability::restore(
        &mut node,
        store,
        &shared,
        clock.now(),
        &mut stats,
        config.slow_write.into(),
    );
    let mut core = Core {
        node,
        clock,
        ctx,
        links: LinkTable::new(identity, config.backoff_min.into(), config.backoff_max.into()),
        queues: HashMap::new(),
        closers: HashMap::new(),
        stats,
        durability,
        overflowing: HashSet::new(),
        handshakes: handshakes::Handshakes::default(),
        refusing: false,
        joins: joins::Joins::default(),
        stopping: None,
        next_housekeeping: clock.now(),
        config,
    };
    tracing::info!(%identity, incarnation, contacts = ?contacts, "node started");
    if core.stats.storage_failed {
        core.begin_stop(None);
    } else if !contacts.is_empty() {
        core.joins.remember(&contacts, identity);
        core.node.join(clock.now(), contacts);
        core.drain();
    }
    // The guard exists before the task runs, so a task dropped before its
    // first poll (its executor dropped at once) still marks the node stopped.
    let guard = ExitGuard(shared.clone());
    runtime.spawn(Box::pin(run(core, guard)));
    Handle::new(shared)
}

/// A random number from the standard library's per-process hash keys and
/// the clock; enough to tell two starts of one node apart.
/// The configured partial-record budget, raised (with a warning) to what
/// one record of the maximum frame size charges, so that such a frame can
/// always arrive.
fn partial_budget(config: &DriverConfig) -> usize {
    let one_frame = (PREFIX_LEN + config.node.max_frame).saturating_sub(RETAINED_CAPACITY);
    if config.partial_frame_budget < one_frame {
        tracing::warn!(
            configured = config.partial_frame_budget,
            raised_to = one_frame,
            "partial_frame_budget is below one frame of max_frame: raised to it"
        );
    }
    config.partial_frame_budget.max(one_frame)
}

fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// How often idle links and pending re-dials are looked at.
const HOUSEKEEPING: Duration = Duration::from_secs(1);
/// Inputs handled per wake-up before commands and timers get a turn.
const INPUT_BATCH: usize = 256;
/// Commands handled per wake-up.
const COMMAND_BATCH: usize = 64;

/// Everything the loop owns.
struct Core {
    node: Node<SocketAddr>,
    clock: MonotonicClock,
    ctx: std::sync::Arc<TaskCtx>,
    config: DriverConfig,
    /// Which peer has which connection.
    links: LinkTable,
    /// Each known peer's outbound frames (the peers the link table knows).
    queues: HashMap<SocketAddr, Arc<FrameQueue>>,
    /// How to close each link whose close was not asked yet; dropping one
    /// aborts its link.
    closers: HashMap<ConnId, oneshot::Sender<CloseMode>>,
    stats: DriverStats,
    stopping: Option<Stopping>,
    next_housekeeping: Instant,
    /// Records on their way to the store, and puts waiting for them.
    durability: Durability,
    /// Peers whose queue overflowed since it last took a frame (logged once
    /// per episode).
    overflowing: HashSet<SocketAddr>,
    /// Inbound connections that have not said hello yet.
    handshakes: handshakes::Handshakes,
    /// Whether a refused handshake was logged since the last admitted one.
    refusing: bool,
    /// Why each join contact failed, and the waits for a join.
    joins: joins::Joins,
}

/// Closes the shared queues however the loop ends, its runtime dropped
/// included: every waiting request then resolves with `Shutdown`.
struct ExitGuard(Arc<Shared>);

impl Drop for ExitGuard {
    fn drop(&mut self) {
        self.0.close();
        self.0.part_ended();
    }
}

async fn run(mut core: Core, _guard: ExitGuard) {
    let shared = core.ctx.shared.clone();
    let transport = core.ctx.transport.clone();
    let runtime = core.ctx.runtime.clone();
    let mut accept: Option<BoxFuture<io::Result<Accepting>>> = Some(transport.accept());
    let mut sleep: Option<(Instant, BoxFuture<()>)> = None;
    loop {
        let deadline = core.deadline();
        if sleep.as_ref().map(|s| s.0) != Some(deadline) {
            sleep = Some((deadline, runtime.sleep(core.clock.until(deadline))));
        }
        // Once stopping, the command queue is closed (and so always
        // "ready"); it must not be polled, or the loop would spin.
        // While the disk is behind, take no new work (its frames wait in
        // the sockets): only durability reports, timers and the backlog.
        let open = !core.durability.is_behind();
        let commands = open && core.stopping.is_none();
        let inputs = open;
        let accepted = future::poll_fn(|cx| {
            let mut ready = commands && shared.commands.poll_ready(cx);
            ready |= inputs && shared.inputs.poll_ready(cx);
            ready |= core.durability.has_store() && shared.durable.poll_ready(cx);
            let mut accepted = None;
            if let Some(a) = accept.as_mut() {
                if let Poll::Ready(r) = a.as_mut().poll(cx) {
                    accepted = Some(r);
                    ready = true;
                }
            }
            if let Some((_, s)) = sleep.as_mut() {
                if s.as_mut().poll(cx).is_ready() {
                    sleep = None;
                    ready = true;
                }
            }
            if ready { Poll::Ready(accepted) } else { Poll::Pending }
        })
        .await;
        if let Some(result) = accepted {
            accept = None;
            match result {
                Ok(accepting) => {
                    core.on_accept(accepting);
                    accept = Some(transport.accept());
                }
                // The listener is gone; the node keeps its outbound links.
                Err(error) => {
                    tracing::error!(%error, "the listener failed: no more inbound links");
                    core.stats.handshake_failures += 1;
                }
            }
        }
        let mut busy = false;
        while let Some(report) = shared.durable.try_pop() {
            core.on_durable(report);
        }
        for i in 0..=COMMAND_BATCH {
            if !commands {
                break;
            }
            if i == COMMAND_BATCH {
                busy = true;
                break;
            }
            let Some(command) = shared.commands.try_pop() else {
                break;
            };
            core.on_command(command);
        }
        for i in 0..=INPUT_BATCH {
            if !inputs {
                break;
            }
            if i == INPUT_BATCH {
                busy = true;
                break;
            }
            let Some(input) = shared.inputs.try_pop() else { break };
            core.on_input(input);
        }
        core.on_time();
        if core.stopping.is_some() {
            accept = None;
            if core.is_done() {
                break;
            }
        }
        if busy {
            // Work is left over: let the links (which may share this
            // thread) run before taking more.
            future::yield_now().await;
        }
    }
    let waiters = core.stopping.take().map(|s| s.waiters).unwrap_or_default();
    // Links still open after the linger are aborted with the core.
    drop(core);
    shared.close();
    transport.shutdown().await;
    for w in waiters {
        let _ = w.send(());
    }
}

impl Core {
    fn now(&self) -> Instant {
        self.clock.now()
    }

    fn deadline(&self) -> Instant {
        let mut d = self.next_housekeeping;
        if let Some(t) = self.node.poll_timeout() {
            d = d.min(t);
        }
        if let Some(s) = &self.stopping {
            d = d.min(s.deadline);
        }
        if let Some(t) = self.joins.deadline() {
            d = d.min(t);
        }
        d
    }

    fn is_done(&self) -> bool {
        let drained = self.links.conn_count() == 0 && self.durability.is_settled();
        self.stopping
            .as_ref()
            .is_some_and(|s| drained || self.now() >= s.deadline)
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.ctx.runtime.spawn(Box::pin(task));
    }

    // ---- node I/O ----------------------------------------------------------

    /// Moves every output of the node to where it goes: frames into peer
    /// queues (dialling when needed), events to subscribers.
    fn drain(&mut self) {
        loop {
            let now = self.now();
            while let Some(t) = self.node.poll_transmit() {
                self.enqueue(now, t.to, t.frame);
            }
            // Without a store a record is "durable" at once; confirming it
            // brings more output, hence the outer loop.
            let mut confirm: Vec<PersistId> = Vec::new();
            while let Some(event) = self.node.poll_event() {
                match event {
                    Event::Metadata(epidemic_core::metadata::Event::Persist(record)) => {
                        confirm.extend(self.durability.persist(record))
                    }
                    Event::Metadata(epidemic_core::metadata::Event::PutDurable(id)) => self.durability.put_durable(id),
                    event => self.publish(event),
                }
            }
            if confirm.is_empty() {
                break;
            }
            for id in confirm {
                self.node.persisted(now, id);
            }
        }
        self.durability.flush(&self.ctx.shared.persist);
        let now = self.now();
        self.settle_joins(now);
    }

    fn publish(&mut self, event: Event<SocketAddr>) {
        let published = self.ctx.shared.subscribers.lock().publish(event);
        self.stats.events_lagged += published.missed;
        if let Some(id) = published.ended {
            self.node.unsubscribe(id);
        }
    }

    // ---- time ------------------------------------------------------------------

    fn on_time(&mut self) {
        let now = self.now();
        if self.node.poll_timeout().is_some_and(|t| t <= now) {
            let joining = self.node.joining().copied();
            self.node.handle_timeout(now);
            if let Some(contact) = joining {
                self.join_ended(contact, || {
                    ContactFailure::Silent("it did not answer the join within the neighbour timeout".into())
                });
            }
            self.drain();
        }
        self.settle_joins(now);
        if now >= self.next_housekeeping {
            self.housekeeping(now);
            #[cfg(feature = "metrics")]
            crate::metrics::publish(
                self.ctx.shared.identity,
                &crate::stats::NodeStats {
                    node: self.node.stats(),
                    driver: self.stats.clone(),
                },
                self.queues.iter().map(|(peer, q)| (*peer, q.len())),
            );
            self.next_housekeeping = now + HOUSEKEEPING.into();
        }
    }
}
