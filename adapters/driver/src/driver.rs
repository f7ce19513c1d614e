//! The driver loop: one task that owns the [`Node`] and everything about
//! links, and obeys the sans-IO contract (after every input, drain every
//! output).

use crate::codec::{Ack, Hello};
use crate::config::DriverConfig;
use crate::handle::{Command, Handle, Shared};
use crate::link::{self, CloseMode, Closed, ConnId, Decision, DialFailure, FrameQueue, Input, TaskCtx};
use crate::oneshot;
use crate::queue::{PushError, Queue};
use crate::runtime::{Accepting, BoxFuture, Runtime, Transport};
use crate::stats::DriverStats;
use crate::store::{Durable, Store};
use crate::sync::Arc;
use epidemic_core::Instant;
use epidemic_core::metadata::{Persist, PersistId, PutId};
use epidemic_core::node::{Event, LinkEvent, Node};
use epidemic_core::time::MonotonicClock;
use futures_lite::future;
use std::collections::{HashMap, VecDeque};
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
        connect_timeout: config.connect_timeout,
        handshake_timeout: config.handshake_timeout,
        linger: config.linger,
    });
    let clock = MonotonicClock::new();
    // The low half of the random incarnation keeps this life's broadcast ids
    // apart from a previous life's.
    let mut node = Node::new(identity, config.node.clone().with_incarnation(incarnation as u32));
    let mut stats = DriverStats::default();
    let has_store = store.is_some();
    if let Some(mut store) = store {
        // Everything the store holds goes back in before the node joins.
        let now = clock.now();
        for r in store.take_records() {
            match node.restore(now, &r.prefix, &r.key, &r.object) {
                Ok(()) => stats.restored += 1,
                Err(_) => stats.restore_failures += 1,
            }
        }
        shared.part_started();
        if crate::store::spawn_writer(store, shared.clone()).is_err() {
            shared.part_ended();
            stats.storage_failed = true;
        }
    }
    let mut core = Core {
        node,
        clock,
        ctx,
        peers: HashMap::new(),
        conns: HashMap::new(),
        next_conn: 0,
        stats,
        has_store,
        backlog: VecDeque::new(),
        unconfirmed: 0,
        puts: HashMap::new(),
        stopping: None,
        next_housekeeping: clock.now(),
        config,
    };
    if core.stats.storage_failed {
        core.begin_stop(None);
    } else if !contacts.is_empty() {
        core.node.join(clock.now(), contacts);
        core.drain();
    }
    runtime.spawn(Box::pin(run(core)));
    Handle::new(shared)
}

/// A random number from the standard library's per-process hash keys and
/// the clock; enough to tell two starts of one node apart.
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
/// How long to wait for the peer's own dial after it answered ours with
/// "duplicate" before dialling again.
const DUPLICATE_RETRY: Duration = Duration::from_millis(500);
/// Inputs handled per wake-up before commands and timers get a turn.
const INPUT_BATCH: usize = 256;
/// Commands handled per wake-up.
const COMMAND_BATCH: usize = 64;
/// Persist records waiting for room in the writer's queue beyond which the
/// loop stops taking commands and frames, until the disk catches up.
const BACKLOG_LIMIT: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkState {
    Idle,
    Dialing(ConnId),
    Up { conn: ConnId, dialed: bool },
}

impl LinkState {
    fn conn(self) -> Option<ConnId> {
        match self {
            LinkState::Idle => None,
            LinkState::Dialing(c) | LinkState::Up { conn: c, .. } => Some(c),
        }
    }
}

struct Peer {
    queue: Arc<FrameQueue>,
    link: LinkState,
    /// The node was told `Up` and not `Down` since.
    up: bool,
    /// The peer's incarnation on the last link.
    incarnation: Option<u64>,
    /// The next backoff after a failed dial.
    backoff: Duration,
    /// No dial before this.
    retry_at: Option<Instant>,
    last_active: Instant,
}

impl Peer {
    /// A peer first heard of (a frame for it, or its dial) at `now`: no
    /// link yet, an empty queue, the shortest backoff.
    fn new(config: &DriverConfig, now: Instant) -> Self {
        Peer {
            queue: Arc::new(Queue::weighted(
                config.peer_queue_frames,
                config.peer_queue_bytes,
                Vec::len,
            )),
            link: LinkState::Idle,
            up: false,
            incarnation: None,
            backoff: config.backoff_min,
            retry_at: None,
            last_active: now,
        }
    }
}

struct Conn {
    peer: Option<SocketAddr>,
    close: Option<oneshot::Sender<CloseMode>>,
    /// Frames from it reach the node: from the moment it becomes a link
    /// until it ends, unless it was aborted (bad input, or a restarted peer's
    /// old life). A link closing with a goodbye still delivers what the peer
    /// sent before it heard the goodbye.
    live: bool,
}

struct Stopping {
    deadline: Instant,
    waiters: Vec<oneshot::Sender<()>>,
}

struct Core {
    node: Node<SocketAddr>,
    clock: MonotonicClock,
    ctx: std::sync::Arc<TaskCtx>,
    config: DriverConfig,
    peers: HashMap<SocketAddr, Peer>,
    conns: HashMap<ConnId, Conn>,
    next_conn: ConnId,
    stats: DriverStats,
    stopping: Option<Stopping>,
    next_housekeeping: Instant,
    /// Whether a writer thread persists records.
    has_store: bool,
    /// Records not yet handed to the writer (its queue was full).
    backlog: VecDeque<Persist>,
    /// Records handed to the writer and not yet reported durable.
    unconfirmed: usize,
    /// Puts waiting to be durable.
    puts: HashMap<PutId, oneshot::Sender<Result<(), crate::Error>>>,
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

async fn run(mut core: Core) {
    let shared = core.ctx.shared.clone();
    let _guard = ExitGuard(shared.clone());
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
        let open = core.backlog.len() < BACKLOG_LIMIT;
        let commands = open && core.stopping.is_none();
        let inputs = open;
        let accepted = future::poll_fn(|cx| {
            let mut ready = commands && shared.commands.poll_ready(cx);
            ready |= inputs && shared.inputs.poll_ready(cx);
            ready |= core.has_store && shared.durable.poll_ready(cx);
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
                Err(_) => core.stats.handshake_failures += 1,
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
        d
    }

    fn is_done(&self) -> bool {
        let drained = self.conns.is_empty() && self.backlog.is_empty() && self.unconfirmed == 0;
        self.stopping
            .as_ref()
            .is_some_and(|s| drained || self.now() >= s.deadline)
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.ctx.runtime.spawn(Box::pin(task));
    }

    fn new_conn(&mut self, peer: Option<SocketAddr>) -> ConnId {
        let id = self.next_conn;
        self.next_conn += 1;
        self.conns.insert(
            id,
            Conn {
                peer,
                close: None,
                live: false,
            },
        );
        id
    }

    fn close_conn(&mut self, conn: ConnId, mode: CloseMode) {
        if let Some(c) = self.conns.get_mut(&conn) {
            if mode == CloseMode::Abort {
                c.live = false;
            }
            if let Some(close) = c.close.take() {
                let _ = close.send(mode);
            }
        }
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
                    Event::Persist(record) if self.has_store => self.backlog.push_back(record),
                    Event::Persist(record) => confirm.push(record.id),
                    Event::PutDurable(id) => {
                        if let Some(reply) = self.puts.remove(&id) {
                            let _ = reply.send(Ok(()));
                        }
                    }
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
        self.flush_backlog();
    }

    /// Hands waiting records to the writer, in order, as far as its queue
    /// has room.
    fn flush_backlog(&mut self) {
        while let Some(record) = self.backlog.pop_front() {
            match self.ctx.shared.persist.try_push(record) {
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

    fn on_durable(&mut self, report: Durable) {
        match report {
            Durable::Written(ids) => {
                self.unconfirmed = self.unconfirmed.saturating_sub(ids.len());
                let now = self.now();
                for id in ids {
                    self.node.persisted(now, id);
                }
                self.drain();
            }
            Durable::Failed(why) => {
                // Fail-stop: a node that cannot persist must not go on
                // acknowledging or spreading writes.
                self.stats.storage_failed = true;
                for (_, reply) in self.puts.drain() {
                    let _ = reply.send(Err(crate::Error::Storage(why.clone())));
                }
                self.backlog.clear();
                self.unconfirmed = 0;
                self.begin_stop(None);
            }
        }
    }

    fn publish(&mut self, event: Event<SocketAddr>) {
        self.stats.events_lagged += self.ctx.shared.publish(&event);
    }

    fn enqueue(&mut self, now: Instant, to: SocketAddr, frame: Vec<u8>) {
        if to == self.ctx.shared.identity {
            return;
        }
        let config = &self.config;
        let peer = self.peers.entry(to).or_insert_with(|| Peer::new(config, now));
        peer.last_active = now;
        match peer.queue.try_push(frame) {
            Ok(()) => self.stats.frames_queued += 1,
            Err(PushError::Full(_)) => self.stats.queue_overflows += 1,
            Err(PushError::Closed(_)) => self.stats.unreachable_drops += 1,
        }
        let dial = peer.link == LinkState::Idle && peer.retry_at.is_none_or(|t| t <= now) && self.stopping.is_none();
        if dial {
            self.dial(to);
        }
    }

    fn dial(&mut self, to: SocketAddr) {
        let conn = self.new_conn(Some(to));
        if let Some(p) = self.peers.get_mut(&to) {
            p.link = LinkState::Dialing(conn);
            p.retry_at = None;
        }
        self.stats.dials += 1;
        self.spawn(link::dial(self.ctx.clone(), conn, to));
    }

    fn link_event(&mut self, peer: SocketAddr, event: LinkEvent) {
        let now = self.now();
        self.node.handle_link(now, peer, event);
        self.drain();
    }

    /// The link to `peer` failed (or the dial to it did): tell the node.
    fn report_down(&mut self, peer: SocketAddr) {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.up = false;
        }
        self.link_event(peer, LinkEvent::Down);
    }

    // ---- commands ------------------------------------------------------------

    fn on_command(&mut self, command: Command) {
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
                self.node.join(now, contacts);
                let _ = reply.send(());
            }
            Command::Leave { reply } => {
                self.node.leave(now);
                let _ = reply.send(());
            }
            Command::Inspect(f) => {
                let mut stats = self.stats.clone();
                stats.open_links = self.conns.len();
                stats.open_peers = self.peers.len();
                f(&self.node, &stats);
            }
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
                        self.puts.insert(id, reply);
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
                let _ = reply.send(self.node.subscribe(prefix));
            }
            Command::Unsubscribe { id, reply } => {
                let _ = reply.send(self.node.unsubscribe(id));
            }
            Command::Shutdown { reply } => self.begin_stop(Some(reply)),
        }
        self.drain();
    }

    /// Leaves, then closes every link once its queue has drained; the loop
    /// ends when links are closed and records durable, or at the linger.
    fn begin_stop(&mut self, reply: Option<oneshot::Sender<()>>) {
        if let Some(s) = self.stopping.as_mut() {
            s.waiters.extend(reply);
            return;
        }
        let now = self.now();
        self.node.leave(now);
        self.drain();
        self.stopping = Some(Stopping {
            deadline: now + self.config.linger.into(),
            waiters: reply.into_iter().collect(),
        });
        // Every link drains its queue (the leave notices among it), says
        // goodbye and closes; dials still in flight are refused when they
        // report.
        let open: Vec<ConnId> = self
            .peers
            .values()
            .filter_map(|p| match p.link {
                LinkState::Up { conn, .. } => Some(conn),
                _ => None,
            })
            .collect();
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

    // ---- connections -----------------------------------------------------------

    fn on_accept(&mut self, accepting: Accepting) {
        self.stats.accepted += 1;
        if self.stopping.is_some() || self.conns.len() >= self.config.max_connections {
            // Dropping it closes the connection before any handshake.
            self.stats.handshake_failures += 1;
            return;
        }
        let conn = self.new_conn(None);
        self.spawn(link::accept(self.ctx.clone(), conn, accepting));
    }

    fn on_input(&mut self, input: Input) {
        match input {
            Input::Inbound { conn, hello, reply } => self.on_inbound(conn, hello, reply),
            Input::Outbound {
                conn,
                peer,
                incarnation,
                reply,
            } => self.on_outbound(conn, peer, incarnation, reply),
            Input::DialFailed { conn, peer, why } => self.on_dial_failed(conn, peer, why),
            Input::HandshakeFailed { conn } => {
                self.conns.remove(&conn);
                self.stats.handshake_failures += 1;
            }
            Input::Frame { conn, peer, frame } => self.on_frame(conn, peer, frame),
            Input::Closed { conn, peer, how } => self.on_closed(conn, peer, how),
        }
    }

    /// Makes `conn` the link to `peer` and hands the connection task what it
    /// needs to run it.
    fn open_link(
        &mut self,
        conn: ConnId,
        peer: SocketAddr,
        incarnation: u64,
        dialed: bool,
        reply: oneshot::Sender<Decision>,
    ) {
        let now = self.now();
        let (close_tx, close_rx) = oneshot::channel();
        let Some(p) = self.peers.get_mut(&peer) else {
            self.conns.remove(&conn);
            return;
        };
        if reply
            .send(Decision::Accept {
                queue: p.queue.clone(),
                close: close_rx,
            })
            .is_err()
        {
            // The connection task is gone and will not report.
            self.conns.remove(&conn);
            if p.link.conn() == Some(conn) {
                p.link = LinkState::Idle;
            }
            return;
        }
        let restarted = p.incarnation.is_some_and(|i| i != incarnation);
        p.incarnation = Some(incarnation);
        p.link = LinkState::Up { conn, dialed };
        p.backoff = self.config.backoff_min;
        p.retry_at = None;
        p.last_active = now;
        let was_up = p.up;
        p.up = true;
        if let Some(c) = self.conns.get_mut(&conn) {
            c.peer = Some(peer);
            c.close = Some(close_tx);
            c.live = true;
        }
        self.stats.links_opened += 1;
        if was_up && restarted {
            // The old incarnation is gone: the node must hear so before it
            // hears from the new one.
            self.link_event(peer, LinkEvent::Down);
        }
        if !was_up || restarted {
            self.link_event(peer, LinkEvent::Up);
        }
    }

    fn on_inbound(&mut self, conn: ConnId, hello: Hello, reply: oneshot::Sender<Decision>) {
        let me = self.ctx.shared.identity;
        let peer = hello.identity;
        if self.stopping.is_some() || peer == me {
            self.conns.remove(&conn);
            self.stats.handshake_failures += 1;
            let _ = reply.send(Decision::Refuse(Ack::Busy));
            return;
        }
        let now = self.now();
        let config = &self.config;
        let p = self.peers.entry(peer).or_insert_with(|| Peer::new(config, now));
        let restarted = p.incarnation.is_some_and(|i| i != hello.incarnation);
        // One connection per peer. Between two connections of the same two
        // incarnations, the one dialled by the smaller identity wins on both
        // sides, so simultaneous dials settle on the same connection without
        // another round trip. A peer that dials again while we still hold a
        // link it dialled has given that link up; a restarted peer replaces
        // whatever we held for its previous life.
        let accept = restarted
            || match p.link {
                LinkState::Idle => true,
                LinkState::Dialing(_) => peer < me,
                LinkState::Up { dialed: false, .. } => true,
                LinkState::Up { dialed: true, .. } => peer < me,
            };
        if !accept {
            self.conns.remove(&conn);
            self.stats.duplicate_dials += 1;
            let _ = reply.send(Decision::Refuse(Ack::Duplicate));
            return;
        }
        // A dial of ours that loses is refused when it reports.
        if let LinkState::Up { conn: old, .. } = p.link {
            let mode = if restarted {
                CloseMode::Abort
            } else {
                CloseMode::Goodbye
            };
            self.close_conn(old, mode);
        }
        self.open_link(conn, peer, hello.incarnation, false, reply);
    }

    fn on_outbound(&mut self, conn: ConnId, peer: SocketAddr, incarnation: u64, reply: oneshot::Sender<Decision>) {
        let current = self.peers.get(&peer).map(|p| p.link);
        if self.stopping.is_some() || current != Some(LinkState::Dialing(conn)) {
            // Superseded by the peer's own dial, or stopping.
            self.conns.remove(&conn);
            let _ = reply.send(Decision::Refuse(Ack::Busy));
            return;
        }
        self.open_link(conn, peer, incarnation, true, reply);
    }

    fn on_dial_failed(&mut self, conn: ConnId, peer: SocketAddr, why: DialFailure) {
        self.conns.remove(&conn);
        let now = self.now();
        let Some(p) = self.peers.get_mut(&peer) else { return };
        if p.link != LinkState::Dialing(conn) {
            return;
        }
        p.link = LinkState::Idle;
        match why {
            DialFailure::Duplicate => {
                // The peer's dial to us is on its way; dial again only if it
                // never arrives.
                self.stats.duplicate_dials += 1;
                p.retry_at = Some(now + DUPLICATE_RETRY.into());
            }
            DialFailure::Busy | DialFailure::Failed => {
                self.stats.dial_failures += 1;
                self.stats.unreachable_drops += p.queue.clear() as u64;
                p.retry_at = Some(now + p.backoff.into());
                p.backoff = (p.backoff * 2).min(self.config.backoff_max);
                self.report_down(peer);
            }
        }
    }

    fn on_frame(&mut self, conn: ConnId, peer: SocketAddr, frame: Vec<u8>) {
        let live = self.conns.get(&conn).is_some_and(|c| c.live && c.peer == Some(peer));
        if !live || self.stopping.is_some() {
            return;
        }
        let now = self.now();
        self.stats.frames_received += 1;
        if let Some(p) = self.peers.get_mut(&peer) {
            p.last_active = now;
        }
        if self.node.handle_frame(now, peer, &frame).is_err() {
            // A frame the node refuses closes its link (and nothing else).
            self.close_conn(conn, CloseMode::Abort);
            self.on_closed(conn, peer, Closed::BadInput);
            return;
        }
        self.drain();
    }

    fn on_closed(&mut self, conn: ConnId, peer: SocketAddr, how: Closed) {
        self.conns.remove(&conn);
        let failed = match how {
            Closed::Goodbye | Closed::ByUs => {
                self.stats.links_closed += 1;
                false
            }
            Closed::Broken => {
                self.stats.links_failed += 1;
                true
            }
            Closed::BadInput => {
                self.stats.bad_input += 1;
                self.stats.links_failed += 1;
                true
            }
        };
        // A link that was already replaced or closed on purpose: the peer's
        // state follows its current link, not this one.
        let Some(p) = self.peers.get_mut(&peer) else { return };
        if p.link.conn() != Some(conn) {
            return;
        }
        p.link = LinkState::Idle;
        let pending = !p.queue.is_empty();
        if failed {
            self.report_down(peer);
        }
        // Frames still queued (or queued by the node's reaction to the
        // failure) go out on a new link: reconnection is on demand.
        let now = self.now();
        if let Some(p) = self.peers.get(&peer) {
            let redial = (pending || !p.queue.is_empty())
                && p.link == LinkState::Idle
                && p.retry_at.is_none_or(|t| t <= now)
                && self.stopping.is_none();
            if redial {
                self.dial(peer);
            }
        }
    }

    // ---- time ------------------------------------------------------------------

    fn on_time(&mut self) {
        let now = self.now();
        if self.node.poll_timeout().is_some_and(|t| t <= now) {
            self.node.handle_timeout(now);
            self.drain();
        }
        if now >= self.next_housekeeping {
            self.housekeeping(now);
            self.next_housekeeping = now + HOUSEKEEPING.into();
        }
    }

    /// Re-dials peers whose backoff ended with frames waiting, closes idle
    /// links to peers that are not neighbours, and forgets peers with
    /// nothing left.
    fn housekeeping(&mut self, now: Instant) {
        if self.stopping.is_some() {
            return;
        }
        let neighbors = self.node.active_view();
        let idle = epidemic_core::Duration::from(self.config.idle_timeout);
        let mut dial = Vec::new();
        let mut close = Vec::new();
        self.peers.retain(|addr, p| {
            let due = p.retry_at.is_none_or(|t| t <= now);
            match p.link {
                LinkState::Idle if !p.queue.is_empty() && due => dial.push(*addr),
                // Nothing pending: forget the peer. (A later link to it is
                // reported `Up` again, which the node takes in its stride.)
                LinkState::Idle => return !(due && p.queue.is_empty()),
                LinkState::Up { conn, .. }
                    if p.queue.is_empty()
                        && now.saturating_since(p.last_active) >= idle
                        && !neighbors.contains(addr) =>
                {
                    p.link = LinkState::Idle;
                    close.push(conn);
                }
                _ => {}
            }
            true
        });
        for conn in close {
            self.stats.idle_closes += 1;
            self.close_conn(conn, CloseMode::Goodbye);
        }
        for peer in dial {
            self.dial(peer);
        }
    }
}
