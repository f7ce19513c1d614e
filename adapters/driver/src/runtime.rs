//! What the driver needs from an async runtime and from a transport.
//!
//! As in quinn's `runtime` module, the driver is written once against two
//! small traits; the TCP adapter implements them with smol, the QUIC adapter
//! with tokio and quinn. Byte streams are `futures-io` traits, which smol,
//! futures-rustls and quinn (feature `futures-io`) all speak.

use futures_io::{AsyncRead, AsyncWrite};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The reading half of a link.
pub type BoxReader = Pin<Box<dyn AsyncRead + Send + 'static>>;

/// The writing half of a link. Closing it (`poll_close`) must end the
/// stream in an orderly way: for TCP a TLS `close_notify` and a FIN; for
/// QUIC a FIN, waiting until the peer has the data.
pub type BoxWriter = Pin<Box<dyn AsyncWrite + Send + 'static>>;

/// An established, authenticated byte stream to a peer, split in halves so
/// that reading and writing run concurrently.
pub struct Duplex {
    /// The reading half.
    pub reader: BoxReader,
    /// The writing half.
    pub writer: BoxWriter,
}

impl Duplex {
    /// A duplex from its halves.
    pub fn new(reader: impl AsyncRead + Send + 'static, writer: impl AsyncWrite + Send + 'static) -> Self {
        Duplex {
            reader: Box::pin(reader),
            writer: Box::pin(writer),
        }
    }
}

impl std::fmt::Debug for Duplex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Duplex").finish_non_exhaustive()
    }
}

/// An inbound connection whose transport handshake (TLS, QUIC) has not run
/// yet. The driver runs it in its own task, under a timeout, so a slow or
/// hostile client never holds up the accept loop.
pub struct Accepting {
    /// The address the connection came from, for the logs.
    pub remote: SocketAddr,
    /// Runs the transport handshake; its error says why it failed (the
    /// TLS alert or certificate problem, for a refused client).
    pub handshake: BoxFuture<io::Result<Duplex>>,
}

impl std::fmt::Debug for Accepting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accepting")
            .field("remote", &self.remote)
            .finish_non_exhaustive()
    }
}

/// Spawning and sleeping.
pub trait Runtime: Send + Sync + 'static {
    /// Runs `task` to completion in the background.
    fn spawn(&self, task: BoxFuture<()>);

    /// A future that completes after `duration`.
    fn sleep(&self, duration: Duration) -> BoxFuture<()>;
}

/// Connections to and from peers.
pub trait Transport: Send + Sync + 'static {
    /// Opens a connection to the node listening on `peer` and completes the
    /// transport's own handshake (TLS, QUIC). The driver applies its connect
    /// timeout around it.
    ///
    /// Why it failed is reported for join contacts
    /// ([`ContactFailure`](crate::ContactFailure)): an error carrying one
    /// (`io::Error::new(kind, failure)`) says so itself; otherwise a rustls
    /// error inside is a TLS refusal, and the error's kind tells the rest.
    fn connect(&self, peer: SocketAddr) -> BoxFuture<io::Result<Duplex>>;

    /// Waits for the next inbound connection. Transient errors (a client
    /// that reset the connection, running out of file descriptors for a
    /// moment) are the transport's to absorb; an error here means the
    /// listener is gone for good, and the node stops accepting.
    fn accept(&self) -> BoxFuture<io::Result<Accepting>>;

    /// Stops listening and releases the transport's resources once every
    /// link is closed. Called once, when the node shuts down.
    fn shutdown(&self) -> BoxFuture<()> {
        Box::pin(async {})
    }
}
