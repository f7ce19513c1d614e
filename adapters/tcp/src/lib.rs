//! # epidemic-tcp
//!
//! Runs an `epidemic-core` node over TCP, on smol, with mutual TLS 1.3
//! (futures-rustls) against a cluster CA, or in plaintext when, and only
//! when, configured so explicitly.
//!
//! Everything but the sockets is the shared driver
//! ([`epidemic_driver`]): one connection per peer with simultaneous dials
//! settled by a deterministic rule, length-prefixed frames whose size is
//! checked before allocation, link up/down reported to the node, re-dial on
//! demand with backoff, bounded per-peer queues that never block the node,
//! and a graceful leave. This crate supplies the smol [`Runtime`] (an
//! executor on threads of its own) and the TCP [`Transport`].
//!
//! An application depends on this crate alone: it re-exports the handle,
//! the events, the metadata types, the certificates and every
//! configuration ([`NodeConfig`], [`DriverConfig`]).
//!
//! ```
//! use epidemic_tcp::{block_on, ClusterCa, MembershipEvent, TcpNode, TcpConfig};
//!
//! let ca = ClusterCa::generate()?;
//! let tls = |ca: &ClusterCa| ca.issue(&["127.0.0.1"]).and_then(|c| c.tls_config(ca));
//! let a = TcpNode::start(TcpConfig::tls("127.0.0.1:0".parse()?, tls(&ca)?))?;
//! let b = TcpNode::start(TcpConfig::tls("127.0.0.1:0".parse()?, tls(&ca)?))?;
//! let (mut membership, mut deliveries) = (b.handle().membership(), b.handle().deliveries());
//! block_on(b.handle().join([a.identity()]))?;
//! // Wait until b has a neighbour, then broadcast from a.
//! while !matches!(membership.blocking_next(), Some(Ok(MembershipEvent::NeighborUp(_)))) {}
//! block_on(a.handle().broadcast(&b"hello"[..]))?;
//! let delivery = deliveries.blocking_next().expect("b is running")?;
//! assert_eq!(&delivery.payload[..], b"hello");
//! a.shutdown_blocking()?;
//! b.shutdown_blocking()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! In async code, await [`TcpNode::shutdown`] instead of
//! `shutdown_blocking`. Dropping a [`TcpNode`] without shutting it down
//! stops it abruptly, as a crash would: its executor and every task on it
//! are dropped, and peers see its connections close without a goodbye.

#![forbid(unsafe_code)]

use epidemic_driver::store::{Store, StoreError};
use epidemic_driver::tls::SERVER_NAME;
use epidemic_driver::{Accepting, BoxFuture, Duplex, Runtime, Transport};
use futures_rustls::{TlsAcceptor, TlsConnector};
use rustls::pki_types::ServerName;
use smol::net::{TcpListener, TcpStream};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration as StdDuration;

// One dependency is enough for an application: everything it uses from the
// driver and the core is here, and the two crates whole below.
/// The core's state machines and types, whole.
pub use epidemic_core;
pub use epidemic_core::broadcast::Graft;
pub use epidemic_core::metadata::{self, FullPrefix};
pub use epidemic_core::node::ConfigError;
pub use epidemic_core::node::{ChannelConfig, ChannelError, ChannelHandler, ChannelId};
pub use epidemic_core::{
    BroadcastError, BroadcastId, ChangeSource, Config as NodeConfig, Context, Duration, Event, PutError, PutId, Read,
    Typed, TypedError, TypedRead, Value,
};
/// The shared driver, whole: run a node over a transport of your own.
pub use epidemic_driver;
pub use epidemic_driver::certs::{CertError, ClusterCa, NodeCert};
pub use epidemic_driver::tls::{TlsConfig, TlsError};
pub use epidemic_driver::{
    Change, ChangeExt, ContactFailure, Delivery, DriverConfig, DriverStats, Error as HandleError, Events, Handle,
    IntoBytes, JoinError, JoinWait, Lagged, MembershipEvent, NodeStats,
};
/// Runs a handle's future to completion on this thread, for code outside
/// async (futures-lite's `block_on`).
pub use futures_lite::future::block_on;
/// smol's executor, to run nodes on with [`spawn`].
pub use smol::Executor;

/// How links are protected.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Security {
    /// Mutual TLS 1.3 against the cluster CA.
    Tls(TlsConfig),
    /// No encryption and no authentication: anyone who can reach the port
    /// can join and speak for any address. For local trials only.
    Plaintext,
}

/// How to run a TCP node.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TcpConfig {
    /// The address to listen on; port 0 picks a free one. No default: given
    /// to [`TcpConfig::tls`] or [`TcpConfig::insecure_plaintext`].
    pub listen: SocketAddr,
    /// The address peers dial, if not the listening address (needed when
    /// listening on an unspecified address such as `0.0.0.0`). Default
    /// `None`: the listening address.
    pub advertise: Option<SocketAddr>,
    /// TLS or plaintext. No default: the constructor names it.
    pub security: Security,
    /// The driver's and the node's configuration. Default:
    /// [`DriverConfig`]'s.
    pub driver: DriverConfig,
    /// Contacts to join through once started (none: start alone, and let
    /// others join through this node). Default: none.
    pub contacts: Vec<SocketAddr>,
    /// Threads running the node's executor; at least one is used. Default
    /// `1`: one thread carries a node's loop and its links comfortably, and
    /// the loop is a single task anyway.
    pub threads: usize,
    /// TCP keepalive on every link: a peer that stops answering (a crashed
    /// host, a cut cable) is declared down after about this long, and
    /// HyParView replaces it. `None` leaves it to the operating system,
    /// which notices only when a write times out, often after many
    /// minutes. See [`keepalive`]. Default 10 s: the QUIC adapter's idle
    /// timeout, twice HyParView's neighbour timeout.
    pub keepalive: Option<epidemic_core::Duration>,
    /// Where the metadata store persists (a redb file in this directory),
    /// and what the node restores on start; `None` keeps nothing across
    /// restarts and acknowledges puts at once. Default `None`.
    pub data_dir: Option<PathBuf>,
}

impl TcpConfig {
    /// A node on `listen` protected by mutual TLS.
    pub fn tls(listen: SocketAddr, tls: TlsConfig) -> Self {
        Self::with_security(listen, Security::Tls(tls))
    }

    /// A node on `listen` in plaintext. See [`Security::Plaintext`].
    pub fn insecure_plaintext(listen: SocketAddr) -> Self {
        Self::with_security(listen, Security::Plaintext)
    }

    fn with_security(listen: SocketAddr, security: Security) -> Self {
        TcpConfig {
            listen,
            advertise: None,
            security,
            driver: DriverConfig::default(),
            contacts: Vec::new(),
            threads: 1,
            keepalive: Some(epidemic_core::Duration::from_secs(10)),
            data_dir: None,
        }
    }
}

/// Sets TCP keepalive on `stream` so that a silent link fails within about
/// `within`: the first probe after `within / 2` of silence, then [`KEEPALIVE_PROBES`] more
/// spread over the other half (where the platform lets the count be set;
/// elsewhere the system's count applies). Both periods are at least a
/// second, the kernels' granularity.
pub fn keepalive(stream: &TcpStream, within: StdDuration) -> io::Result<()> {
    // The kernels count in whole seconds, and refuse zero.
    let second = StdDuration::from_secs(1);
    let idle = (within / 2).max(second);
    let interval = (within.saturating_sub(idle) / KEEPALIVE_PROBES).max(second);
    let settings = socket2::TcpKeepalive::new().with_time(idle).with_interval(interval);
    #[cfg(any(
        target_os = "linux",
        target_os = "android",
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd"
    ))]
    let settings = settings.with_retries(KEEPALIVE_PROBES);
    socket2::SockRef::from(stream).set_tcp_keepalive(&settings)
}

/// Unanswered keepalive probes before a link is declared down.
pub const KEEPALIVE_PROBES: u32 = 5;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The listening socket could not be bound.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: io::Error,
    },
    /// The identity would be an unspecified address, which peers cannot
    /// dial: set [`TcpConfig::advertise`].
    #[error("listening on {0}: set an advertised address peers can dial")]
    Unspecified(SocketAddr),
    /// The TLS configuration was refused.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// An executor thread could not be started.
    #[error("starting a thread: {0}")]
    Thread(io::Error),
    /// The data directory's store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The node's configuration is inconsistent (its limits disagree).
    #[error("configuration: {0}")]
    Config(#[from] epidemic_core::node::ConfigError),
}

/// smol as the driver's runtime: an executor of the node's own. It holds the
/// executor weakly, so that the tasks it spawns (which hold the runtime) do
/// not keep the executor, and themselves, alive after the node is dropped.
struct SmolRuntime {
    executor: Weak<Executor<'static>>,
}

impl Runtime for SmolRuntime {
    fn spawn(&self, task: BoxFuture<()>) {
        if let Some(ex) = self.executor.upgrade() {
            ex.spawn(task).detach();
        }
    }

    fn sleep(&self, duration: StdDuration) -> BoxFuture<()> {
        Box::pin(async move {
            smol::Timer::after(duration).await;
        })
    }
}

struct TcpTransport {
    listener: TcpListener,
    tls: Option<(TlsConnector, TlsAcceptor)>,
    keepalive: Option<StdDuration>,
}

fn split_tls<S>(stream: S) -> Duplex
where
    S: futures_lite::AsyncRead + futures_lite::AsyncWrite + Send + Unpin + 'static,
{
    let (r, w) = futures_lite::io::split(stream);
    Duplex::new(r, w)
}

impl Transport for TcpTransport {
    fn connect(&self, peer: SocketAddr) -> BoxFuture<io::Result<Duplex>> {
        let connector = self.tls.as_ref().map(|(c, _)| c.clone());
        let within = self.keepalive;
        Box::pin(async move {
            let stream = TcpStream::connect(peer).await?;
            stream.set_nodelay(true)?;
            if let Some(within) = within {
                keepalive(&stream, within)?;
            }
            match connector {
                None => Ok(Duplex::new(stream.clone(), stream)),
                Some(c) => {
                    let name = ServerName::try_from(SERVER_NAME).map_err(io::Error::other)?;
                    Ok(split_tls(c.connect(name, stream).await?))
                }
            }
        })
    }

    fn accept(&self) -> BoxFuture<io::Result<Accepting>> {
        let listener = self.listener.clone();
        let acceptor = self.tls.as_ref().map(|(_, a)| a.clone());
        let within = self.keepalive;
        Box::pin(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, remote)) => {
                        let _ = stream.set_nodelay(true);
                        // Best effort, as for nodelay: a link without it
                        // still works, and notices a dead peer later.
                        if let Some(within) = within {
                            let _ = keepalive(&stream, within);
                        }
                        let handshake = Box::pin(async move {
                            match acceptor {
                                None => Ok(Duplex::new(stream.clone(), stream)),
                                Some(a) => Ok(split_tls(a.accept(stream).await?)),
                            }
                        });
                        return Ok(Accepting { remote, handshake });
                    }
                    // A client that reset before we accepted it, or a
                    // moment out of file descriptors: pause and go on, so an
                    // error never spins the loop and never stops the node.
                    Err(_) => {
                        smol::Timer::after(StdDuration::from_millis(50)).await;
                    }
                }
            }
        })
    }
}

/// Binds and starts the node's loop on `executor`.
fn launch(config: TcpConfig, executor: &Arc<Executor<'static>>) -> Result<Handle, Error> {
    config.driver.node.validate()?;
    let TcpConfig {
        listen,
        advertise,
        security,
        driver,
        contacts,
        threads: _,
        keepalive,
        data_dir,
    } = config;
    let store = data_dir.as_deref().map(Store::open).transpose()?;
    let std_listener = std::net::TcpListener::bind(listen).map_err(|source| Error::Bind { addr: listen, source })?;
    let local = std_listener
        .local_addr()
        .map_err(|source| Error::Bind { addr: listen, source })?;
    let identity = advertise.unwrap_or(local);
    if identity.ip().is_unspecified() {
        return Err(Error::Unspecified(identity));
    }
    let listener = TcpListener::try_from(std_listener).map_err(|source| Error::Bind { addr: listen, source })?;
    let tls = match security {
        Security::Plaintext => None,
        Security::Tls(tls) => Some((
            TlsConnector::from(Arc::new(tls.client_config()?)),
            TlsAcceptor::from(Arc::new(tls.server_config()?)),
        )),
    };
    Ok(epidemic_driver::start(
        identity,
        driver,
        contacts,
        store,
        Arc::new(TcpTransport {
            listener,
            tls,
            keepalive: keepalive.map(Into::into),
        }),
        Arc::new(SmolRuntime {
            executor: Arc::downgrade(executor),
        }),
    ))
}

/// Starts a node on the caller's smol executor, and returns its handle:
/// the node's loop and its links are tasks on `executor`, which the caller
/// runs (`executor.run(..)` on threads of its own, or inside
/// `smol::block_on`). [`TcpConfig::threads`] is unused. Binds and joins
/// through the configured contacts as [`TcpNode::start`] does.
///
/// Stop the node with [`Handle::shutdown`] (await it, or
/// [`block_on`] it from sync code). The node holds `executor` weakly: it
/// runs as long as the caller keeps the executor and runs it, and dropping
/// the executor stops it abruptly, as a crash would.
///
/// ```
/// use epidemic_tcp::{block_on, Executor, MembershipEvent, TcpConfig};
/// use std::sync::Arc;
///
/// let executor = Arc::new(Executor::new());
/// block_on(executor.run(async {
///     let config = |addr: &str| TcpConfig::insecure_plaintext(addr.parse().unwrap());
///     let a = epidemic_tcp::spawn(config("127.0.0.1:0"), &executor)?;
///     let b = epidemic_tcp::spawn(config("127.0.0.1:0"), &executor)?;
///     let mut membership = b.membership();
///     b.join([a.identity()]).await?;
///     while !matches!(membership.next().await, Some(Ok(MembershipEvent::NeighborUp(_)))) {}
///     a.shutdown().await?;
///     b.shutdown().await?;
///     Ok::<(), Box<dyn std::error::Error>>(())
/// }))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn spawn(config: TcpConfig, executor: &Arc<Executor<'static>>) -> Result<Handle, Error> {
    launch(config, executor)
}

/// A running TCP node on executor threads of its own. Share
/// [`TcpNode::handle`] with the application; stop it with
/// [`TcpNode::shutdown`] (async code) or [`TcpNode::shutdown_blocking`]
/// (sync code) for a graceful leave. Dropping it instead stops it
/// abruptly; the drop never panics, inside async code included, and
/// returns once the node has stopped.
pub struct TcpNode {
    handle: Handle,
    executor: Option<Arc<Executor<'static>>>,
    stop: Option<smol::channel::Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

impl fmt::Debug for TcpNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpNode").field("handle", &self.handle).finish()
    }
}

impl TcpNode {
    /// Binds, starts the node's executor threads and the node, and joins
    /// through the configured contacts.
    pub fn start(config: TcpConfig) -> Result<TcpNode, Error> {
        let threads = config.threads.max(1);
        let executor = Arc::new(Executor::new());
        let (stop, stopped) = smol::channel::bounded::<()>(1);
        let mut node = TcpNode {
            handle: launch(config, &executor)?,
            executor: Some(executor.clone()),
            stop: Some(stop),
            threads: Vec::new(),
        };
        for i in 0..threads {
            let (ex, stopped) = (executor.clone(), stopped.clone());
            let thread = std::thread::Builder::new()
                .name(format!("epidemic-tcp-{i}"))
                .spawn(move || {
                    let _ = smol::block_on(ex.run(stopped.recv()));
                })
                .map_err(Error::Thread)?;
            node.threads.push(thread);
        }
        Ok(node)
    }

    /// The handle: clone it into any thread or task.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// The node's identity, the address peers dial.
    pub fn identity(&self) -> SocketAddr {
        self.handle.identity()
    }

    /// Leaves gracefully (neighbours are told, queued frames drain, links
    /// close with a goodbye, the store closes), then stops the node's
    /// threads. Returns the handle's error, if the node failed (its store,
    /// for one); a node that had already stopped is `Ok`.
    ///
    /// Use this from async code, on any runtime (smol, tokio, or none):
    /// `node.shutdown().await?`. From sync code, use
    /// [`TcpNode::shutdown_blocking`].
    pub async fn shutdown(self) -> Result<(), HandleError> {
        let result = self.handle.shutdown().await;
        // The loop has ended: the drop stops the threads at once.
        drop(self);
        result
    }

    /// [`TcpNode::shutdown`] for sync code: blocks the calling thread until
    /// the node has left and stopped. Do not call it from async code (it
    /// would block that executor's thread); await
    /// [`shutdown`](TcpNode::shutdown) there instead.
    pub fn shutdown_blocking(self) -> Result<(), HandleError> {
        block_on(self.shutdown())
    }
}

fn wait_stopped(handle: &Handle) {
    let deadline = std::time::Instant::now() + StdDuration::from_secs(10);
    while !handle.is_stopped() && std::time::Instant::now() < deadline {
        std::thread::sleep(StdDuration::from_millis(1));
    }
}

impl Drop for TcpNode {
    fn drop(&mut self) {
        // Ends every executor thread's `run`, then drops the executor: every
        // task still on it (the loop, the links) is dropped with it, and
        // their sockets close.
        drop(self.stop.take());
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        drop(self.executor.take());
        // The store's writer finishes what was queued and closes the
        // database; wait for it, so the data directory can be reopened.
        wait_stopped(&self.handle);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalive_probes_a_silent_link_within_the_period() {
        smol::block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (stream, accepted) =
                futures_lite::future::zip(TcpStream::connect(addr), async { listener.accept().await.unwrap().0 }).await;
            let stream = stream.unwrap();
            let sock = socket2::SockRef::from(&stream);
            assert!(!sock.keepalive().unwrap(), "off until asked for");

            keepalive(&stream, StdDuration::from_secs(10)).unwrap();
            assert!(sock.keepalive().unwrap());
            assert_eq!(sock.tcp_keepalive_time().unwrap(), StdDuration::from_secs(5));
            assert_eq!(sock.tcp_keepalive_interval().unwrap(), StdDuration::from_secs(1));
            #[cfg(target_os = "linux")]
            assert_eq!(sock.tcp_keepalive_retries().unwrap(), KEEPALIVE_PROBES);

            // Shorter than the kernels' one-second granularity: clamped.
            keepalive(&accepted, StdDuration::from_millis(10)).unwrap();
            let sock = socket2::SockRef::from(&accepted);
            assert_eq!(sock.tcp_keepalive_time().unwrap(), StdDuration::from_secs(1));
            assert_eq!(sock.tcp_keepalive_interval().unwrap(), StdDuration::from_secs(1));
        });
    }

    #[test]
    fn a_configuration_whose_limits_disagree_is_refused_at_start() {
        let mut config = TcpConfig::insecure_plaintext("127.0.0.1:0".parse().unwrap());
        config.driver.node.max_frame = 60_000;
        let Err(e) = TcpNode::start(config) else {
            panic!("a node whose limits disagree started")
        };
        assert!(
            matches!(
                e,
                Error::Config(epidemic_core::node::ConfigError::PayloadAboveFrame { .. })
            ),
            "{e}"
        );
    }

    #[test]
    fn keepalive_is_on_by_default_and_can_be_turned_off() {
        let mut config = TcpConfig::insecure_plaintext("127.0.0.1:0".parse().unwrap());
        assert_eq!(config.keepalive, Some(epidemic_core::Duration::from_secs(10)));
        config.keepalive = None;
        assert_eq!(config.keepalive, None);
    }
}
