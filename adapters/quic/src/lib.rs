//! # epidemic-quic
//!
//! Runs an `epidemic-core` node over QUIC (quinn, on tokio). QUIC always
//! runs TLS 1.3; here both ends authenticate with certificates from the
//! cluster CA ([`epidemic_driver::tls`]), so a node without one, or with one
//! from another CA, never completes a handshake.
//!
//! Each pair of nodes shares one QUIC connection, and each connection one
//! bidirectional stream carrying length-prefixed frames; everything above
//! the stream (handshake, one connection per peer, link events, bounded
//! queues, reconnection, graceful leave) is the shared driver
//! ([`epidemic_driver`]). This crate supplies the tokio [`Runtime`] and the
//! quinn [`Transport`].
//!
//! Failure detection is QUIC's: a peer that vanishes without closing is
//! declared gone after [`QuicConfig::idle_timeout`] without packets, and
//! keep-alives every [`QuicConfig::keep_alive`] stop an idle but healthy
//! link from timing out. A peer that restarts on the same port is noticed
//! at once (a stateless reset, or its new handshake).
//!
//! An application depends on this crate alone: it re-exports the handle,
//! the events, the metadata types, the certificates and every
//! configuration ([`NodeConfig`], [`DriverConfig`]).
//!
//! ```
//! use epidemic_quic::{block_on, ClusterCa, MembershipEvent, QuicNode, QuicConfig};
//!
//! let ca = ClusterCa::generate()?;
//! let tls = |ca: &ClusterCa| ca.issue(&["127.0.0.1"]).and_then(|c| c.tls_config(ca));
//! let a = QuicNode::start(QuicConfig::new("127.0.0.1:0".parse()?, tls(&ca)?))?;
//! let b = QuicNode::start(QuicConfig::new("127.0.0.1:0".parse()?, tls(&ca)?))?;
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

#![forbid(unsafe_code)]

use epidemic_driver::store::{Store, StoreError};
use epidemic_driver::tls::SERVER_NAME;
use epidemic_driver::{Accepting, BoxFuture, Duplex, Runtime, Transport};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
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

/// How to run a QUIC node.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct QuicConfig {
    /// The UDP address to listen on; port 0 picks a free one. No default:
    /// given to [`QuicConfig::new`].
    pub listen: SocketAddr,
    /// The address peers dial, if not the listening address. Default
    /// `None`: the listening address.
    pub advertise: Option<SocketAddr>,
    /// This node's certificate and the cluster CA. No default: given to
    /// [`QuicConfig::new`].
    pub tls: TlsConfig,
    /// The driver's and the node's configuration. Default:
    /// [`DriverConfig`]'s.
    pub driver: DriverConfig,
    /// Contacts to join through once started. Default: none (start
    /// alone, and let others join through this node).
    pub contacts: Vec<SocketAddr>,
    /// Worker threads of the node's own tokio runtime ([`QuicNode::start`]);
    /// at least one is used. Default `1`: the loop is a single task, and one
    /// thread carries it and its connections.
    pub threads: usize,
    /// A connection without packets for this long is closed, and its peer
    /// reported down. Default 10 s: detection within 10 s of a silent crash,
    /// the figure of a TCP-like keep-alive, and twice HyParView's neighbour
    /// timeout.
    pub idle_timeout: epidemic_core::Duration,
    /// Keep-alive interval on every connection; below the idle timeout.
    /// Default 3 s: three keep-alives per idle period, so one lost packet
    /// never closes a healthy link.
    pub keep_alive: epidemic_core::Duration,
    /// Where the metadata store persists (a redb file in this directory),
    /// and what the node restores on start; `None` keeps nothing across
    /// restarts and acknowledges puts at once. Default `None`.
    pub data_dir: Option<PathBuf>,
}

impl QuicConfig {
    /// A node on `listen` with the given certificate and CA.
    pub fn new(listen: SocketAddr, tls: TlsConfig) -> Self {
        QuicConfig {
            listen,
            advertise: None,
            tls,
            driver: DriverConfig::default(),
            contacts: Vec::new(),
            threads: 1,
            idle_timeout: epidemic_core::Duration::from_secs(10),
            keep_alive: epidemic_core::Duration::from_secs(3),
            data_dir: None,
        }
    }
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The UDP socket could not be bound, or the runtime not started.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// The identity would be an unspecified address: set
    /// [`QuicConfig::advertise`].
    #[error("listening on {0}: set an advertised address peers can dial")]
    Unspecified(SocketAddr),
    /// The TLS configuration was refused.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The TLS configuration is not usable for QUIC.
    #[error("TLS configuration unusable for QUIC: {0}")]
    Quic(String),
    /// A timeout is out of QUIC's range.
    #[error("idle timeout out of range")]
    IdleTimeout,
    /// The data directory's store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The node's configuration is inconsistent (its limits disagree).
    #[error("configuration: {0}")]
    Config(#[from] epidemic_core::node::ConfigError),
}

struct TokioRuntime {
    handle: tokio::runtime::Handle,
}

impl Runtime for TokioRuntime {
    fn spawn(&self, task: BoxFuture<()>) {
        self.handle.spawn(task);
    }

    fn sleep(&self, duration: StdDuration) -> BoxFuture<()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

struct QuicTransport {
    endpoint: quinn::Endpoint,
}

/// The sending half of a link's stream. Closing it finishes the stream and
/// waits until the peer has every byte (or stops the stream, or the
/// connection ends), so a goodbye is not lost to the connection closing
/// under it.
struct QuicWriter {
    send: quinn::SendStream,
    closing: Option<BoxFuture<()>>,
}

impl futures_io::AsyncWrite for QuicWriter {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        futures_io::AsyncWrite::poll_write(Pin::new(&mut self.send), cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let closing = this.closing.get_or_insert_with(|| {
            let _ = this.send.finish();
            let stopped = this.send.stopped();
            Box::pin(async move {
                let _ = stopped.await;
            })
        });
        closing.as_mut().poll(cx).map(Ok)
    }
}

fn duplex(send: quinn::SendStream, recv: quinn::RecvStream) -> Duplex {
    Duplex::new(recv, QuicWriter { send, closing: None })
}

impl Transport for QuicTransport {
    fn connect(&self, peer: SocketAddr) -> BoxFuture<io::Result<Duplex>> {
        let connecting = self.endpoint.connect(peer, SERVER_NAME);
        Box::pin(async move {
            let unreachable = |e: quinn::ConnectError| io::Error::other(ContactFailure::Unreachable(e.to_string()));
            let conn = connecting.map_err(unreachable)?.await.map_err(connect_failure)?;
            let (send, recv) = conn.open_bi().await.map_err(connect_failure)?;
            Ok(duplex(send, recv))
        })
    }

    fn accept(&self) -> BoxFuture<io::Result<Accepting>> {
        let endpoint = self.endpoint.clone();
        Box::pin(async move {
            let Some(incoming) = endpoint.accept().await else {
                return Err(io::Error::new(io::ErrorKind::NotConnected, "endpoint closed"));
            };
            let remote = incoming.remote_address();
            let handshake = Box::pin(async move {
                // The TLS handshake, client certificate check included.
                let conn = incoming.await?;
                let (send, recv) = conn.accept_bi().await?;
                Ok(duplex(send, recv))
            });
            Ok(Accepting { remote, handshake })
        })
    }

    fn shutdown(&self) -> BoxFuture<()> {
        let endpoint = self.endpoint.clone();
        Box::pin(async move {
            endpoint.close(0u32.into(), b"shutdown");
            let _ = tokio::time::timeout(StdDuration::from_secs(1), endpoint.wait_idle()).await;
        })
    }
}

/// Why a dial failed, for the driver's join report ([`ContactFailure`]),
/// inside the I/O error it logs.
fn connect_failure(error: quinn::ConnectionError) -> io::Error {
    use quinn::ConnectionError as E;
    // QUIC carries a TLS alert as a "crypto" error code, 0x100 plus the
    // alert.
    let alert = |code: quinn::TransportErrorCode| {
        let code = u64::from(code);
        (0x100..0x200)
            .contains(&code)
            .then(|| rustls::AlertDescription::from((code & 0xff) as u8))
    };
    let failure = match &error {
        // Our own TLS refused the contact: rustls's reason.
        E::TransportError(e) if alert(e.code).is_some() => ContactFailure::TlsRefused(e.reason.clone()),
        // The contact's TLS refused us: the alert it sent.
        E::ConnectionClosed(close) => match alert(close.error_code) {
            Some(alert) => ContactFailure::TlsRefused(format!("received fatal alert: {alert:?}")),
            None => ContactFailure::HungUp(error.to_string()),
        },
        // Nothing answered the handshake: no QUIC endpoint there (a closed
        // UDP port, or a TCP node's port), or no route.
        E::TimedOut => ContactFailure::Unreachable("no answer to the QUIC handshake".into()),
        E::ApplicationClosed(_) | E::Reset => ContactFailure::HungUp(error.to_string()),
        _ => ContactFailure::Unreachable(error.to_string()),
    };
    let kind = io::Error::from(error).kind();
    io::Error::new(kind, failure)
}

/// Binds the endpoint and starts the node on the current tokio runtime.
fn launch(config: QuicConfig, rt: tokio::runtime::Handle) -> Result<Handle, Error> {
    config.driver.node.validate()?;
    let QuicConfig {
        listen,
        advertise,
        tls,
        driver,
        contacts,
        threads: _,
        idle_timeout,
        keep_alive,
        data_dir,
    } = config;
    let store = data_dir.as_deref().map(Store::open).transpose()?;
    let mut transport = quinn::TransportConfig::default();
    transport
        .max_idle_timeout(Some(
            StdDuration::from(idle_timeout)
                .try_into()
                .map_err(|_| Error::IdleTimeout)?,
        ))
        .keep_alive_interval(Some(keep_alive.into()))
        // One stream per connection is all a link uses; a peer may not open
        // more than a few, nor any unidirectional ones.
        .max_concurrent_bidi_streams(4u32.into())
        .max_concurrent_uni_streams(0u32.into());
    let transport = Arc::new(transport);
    let server_crypto = QuicServerConfig::try_from(tls.server_config()?).map_err(|e| Error::Quic(e.to_string()))?;
    let client_crypto = QuicClientConfig::try_from(tls.client_config()?).map_err(|e| Error::Quic(e.to_string()))?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(server_crypto));
    server.transport_config(transport.clone());
    let mut client = quinn::ClientConfig::new(Arc::new(client_crypto));
    client.transport_config(transport);
    let mut endpoint = {
        let _guard = rt.enter();
        quinn::Endpoint::server(server, listen)?
    };
    endpoint.set_default_client_config(client);
    let identity = advertise.unwrap_or(endpoint.local_addr()?);
    if identity.ip().is_unspecified() {
        return Err(Error::Unspecified(identity));
    }
    Ok(epidemic_driver::start(
        identity,
        driver,
        contacts,
        store,
        Arc::new(QuicTransport { endpoint }),
        Arc::new(TokioRuntime { handle: rt }),
    ))
}

/// Starts a node on the tokio runtime of the calling context (the caller
/// must be inside one), and returns its handle. Stop it with
/// [`Handle::shutdown`]; its tasks live as long as that runtime otherwise.
pub fn spawn(config: QuicConfig) -> Result<Handle, Error> {
    launch(config, tokio::runtime::Handle::current())
}

/// A running QUIC node with a tokio runtime of its own. Stop it with
/// [`QuicNode::shutdown`] (async code) or [`QuicNode::shutdown_blocking`]
/// (sync code) for a graceful leave.
///
/// Dropping it without shutting it down stops it abruptly, as a crash
/// would: the runtime and every task on it are dropped, and peers notice
/// only through QUIC's idle timeout or the node's next start on the same
/// port. It may be dropped anywhere, inside async code included: the drop
/// stops the runtime from a thread of its own and waits (up to about two
/// seconds) for its workers, so the UDP port is free when it returns.
pub struct QuicNode {
    handle: Handle,
    runtime: Option<tokio::runtime::Runtime>,
}

impl fmt::Debug for QuicNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuicNode").field("handle", &self.handle).finish()
    }
}

impl QuicNode {
    /// Starts a runtime, binds, starts the node, and joins through the
    /// configured contacts.
    pub fn start(config: QuicConfig) -> Result<QuicNode, Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.threads.max(1))
            .thread_name("epidemic-quic")
            .enable_all()
            .build()?;
        let handle = launch(config, runtime.handle().clone())?;
        Ok(QuicNode {
            handle,
            runtime: Some(runtime),
        })
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
    /// close, the store closes), then stops the node's runtime. Returns the
    /// handle's error, if the node failed (its store, for one); a node that
    /// had already stopped is `Ok`.
    ///
    /// Use this from async code, on any runtime (inside `#[tokio::main]`
    /// included): `node.shutdown().await?`. From sync code, use
    /// [`QuicNode::shutdown_blocking`].
    pub async fn shutdown(self) -> Result<(), HandleError> {
        let result = self.handle.shutdown().await;
        // The loop has ended: the drop stops the runtime (from a thread of
        // its own) at once.
        drop(self);
        result
    }

    /// [`QuicNode::shutdown`] for sync code: blocks the calling thread
    /// until the node has left and stopped. Do not call it from async code
    /// (it would block that runtime's thread); await
    /// [`shutdown`](QuicNode::shutdown) there instead.
    pub fn shutdown_blocking(self) -> Result<(), HandleError> {
        block_on(self.shutdown())
    }
}

impl Drop for QuicNode {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            // Waits (briefly) for the workers to stop, so the UDP port is
            // free again when this returns. On a thread of its own: tokio
            // refuses to stop a runtime from inside async code (this drop
            // may run in a task, or in a runtime's `block_on`), and that
            // thread is outside every runtime.
            if tokio::runtime::Handle::try_current().is_err() {
                rt.shutdown_timeout(StdDuration::from_secs(2));
            } else {
                let (give, take) = std::sync::mpsc::channel::<tokio::runtime::Runtime>();
                let stopper = std::thread::Builder::new()
                    .name("epidemic-quic-stop".into())
                    .spawn(move || {
                        if let Ok(rt) = take.recv() {
                            rt.shutdown_timeout(StdDuration::from_secs(2));
                        }
                    });
                match stopper {
                    Ok(t) => {
                        let _ = give.send(rt);
                        let _ = t.join();
                    }
                    // No thread to be had: stop without waiting for the
                    // workers, which never blocks and never panics.
                    Err(_) => rt.shutdown_background(),
                }
            }
        }
        // The store's writer finishes what was queued and closes the
        // database; wait for it, so the data directory can be reopened.
        let deadline = std::time::Instant::now() + StdDuration::from_secs(10);
        while !self.handle.is_stopped() && std::time::Instant::now() < deadline {
            std::thread::sleep(StdDuration::from_millis(1));
        }
    }
}
