//! # epidemic-driver
//!
//! The part of a real-network node that does not depend on the transport:
//! the TCP (`epidemic-tcp`, in `adapters/tcp`) and QUIC (`epidemic-quic`,
//! in `adapters/quic`) adapters are thin layers over it.
//!
//! ```text
//!  application threads/tasks            driver loop (one task)            connection tasks
//!  ─────────────────────────            ──────────────────────            ────────────────
//!  Handle::broadcast ──▶ command queue ──▶ Node::broadcast …
//!                                          drain poll_transmit ──▶ per-peer frame queue ──▶ writer ──▶ socket
//!  Events (Stream) ◀── per-subscriber ◀── drain poll_event
//!                      event queue
//!                                          Node::handle_frame ◀── input queue ◀── reader ◀── socket
//!                                          Node::handle_link  ◀──             ◀── handshakes, closes
//!                                          Node::handle_timeout ◀─ runtime sleep until poll_timeout
//! ```
//!
//! - **The loop** ([`start`]) owns the sans-IO `Node<SocketAddr>` and keeps its
//!   contract: after every input (a command, a frame, a link event, a
//!   timeout) it drains every transmit and event, and re-arms its one timer
//!   from `poll_timeout`. It never waits on anything but its own inputs: a
//!   frame for a peer goes into that peer's bounded queue without waiting,
//!   and a full queue drops the frame and counts it
//!   ([`DriverStats::queue_overflows`]). Plumtree's lazy IHAVE/GRAFT repair
//!   and HyParView's timers cover what is dropped. Identities are socket
//!   addresses: each node is known by the address it listens on.
//! - **Links.** One connection per peer, opened on demand when the node
//!   first sends to it, and re-opened on demand after it closes
//!   (reconnection), with exponential backoff after failed dials. Each
//!   connection starts with a handshake ([`codec::Hello`], [`codec::Ack`])
//!   naming both ends and their incarnations. When two nodes dial each other
//!   at once, the connection dialled by the smaller address wins on both
//!   sides; the other is answered [`codec::Ack::Duplicate`] and closed. A link
//!   that breaks, or a dial that fails, is reported to the node as
//!   `LinkEvent::Down`; a new link as `LinkEvent::Up`. A link closed on
//!   purpose (idle, or leaving) ends with a goodbye record and is not a
//!   failure. Links to peers that are not overlay neighbours close after
//!   [`DriverConfig::idle_timeout`] without traffic.
//! - **Framing** ([`codec`]): a 4-byte length prefix, checked against the
//!   node's maximum frame before anything is allocated. Anything that is not
//!   a valid record or frame closes that link, reports it down, and touches
//!   nothing else.
//! - **The handle** ([`Handle`]) is a cheap clone usable from any thread or
//!   task on any runtime: requests are futures completed by the loop, events
//!   are an async [`Stream`](futures_core::Stream) ([`Events`]), and
//!   [`Handle::shutdown`] leaves gracefully. It is the whole store: byte
//!   keys and values borrowed or owned ([`IntoBytes`]), typed (serde)
//!   values ([`Handle::put_typed`], [`Handle::get_typed`],
//!   [`Handle::list_typed`], [`Handle::update_typed`]), CRDT prefixes
//!   ([`Handle::register_crdt_typed`]), read-repair
//!   ([`Handle::get_resolved_and_repair`], [`Handle::resolve_and_repair`]),
//!   [`Handle::fold`] and [`Handle::prefix_hash`], and in mesh mode
//!   [`Handle::add_member`] and [`Handle::remove_member`].
//! - **Joins never fail silently** ([`Handle::joined`]): the loop keeps the
//!   last failure of each join contact (a typed [`ContactFailure`]: the I/O
//!   error, rustls's reason, a wrong transport, a refusal, silence), and a
//!   wait for neighbours that times out returns them in
//!   [`JoinError::Timeout`].
//! - **Shared state** (queues, one-shot replies) is written against a small
//!   sync shim that loom replaces under `cfg(loom)`; `tests/loom_*.rs` check
//!   that no command and no wake-up is lost and that shutdown is clean.
//! - **Runtimes** plug in through two traits, [`Runtime`] and [`Transport`],
//!   as in quinn; the byte streams are `futures-io`.
//! - **Persistence** ([`store`]): the metadata store's objects in redb,
//!   written by a thread of their own in group commits; a put is
//!   acknowledged only once durable, and a restart restores everything.
//! - **Security** ([`tls`], [`certs`]): rustls configurations for mutual TLS
//!   1.3 against a cluster CA, and rcgen-generated CAs and node certificates.

#![forbid(unsafe_code)]

pub mod certs;
pub mod codec;
mod config;
mod driver;
mod handle;
mod joined;
mod link;
#[cfg(feature = "metrics")]
mod metrics;
mod oneshot;
mod queue;
mod runtime;
mod stats;
pub mod store;
pub mod streams;
mod sync;
pub mod tls;

pub use config::DriverConfig;
pub use driver::start;
pub use handle::{Error, Handle, IntoBytes};
pub use joined::{ContactFailure, JoinError, JoinWait, MAX_CONTACTS};
pub use runtime::{Accepting, BoxFuture, BoxReader, BoxWriter, Duplex, Runtime, Transport};
pub use stats::{DriverStats, NodeStats};
pub use streams::{Change, ChangeExt, Delivery, Events, Lagged, MembershipEvent};

/// The internals the loom tests exercise directly (only under `cfg(loom)`).
#[cfg(loom)]
#[doc(hidden)]
pub mod loom_model {
    use futures_lite::future;

    /// [`crate::queue::Queue`] behind a public face.
    #[derive(Debug)]
    pub struct Queue<T>(crate::queue::Queue<T>);

    impl<T> Queue<T> {
        /// A queue of at most `n` items.
        pub fn new(n: usize) -> Self {
            Queue(crate::queue::Queue::new(n))
        }

        /// Appends without waiting; hands the item back if full or closed.
        pub fn try_push(&self, item: T) -> Result<(), T> {
            self.0.try_push(item).map_err(|e| match e {
                crate::queue::PushError::Full(t) | crate::queue::PushError::Closed(t) => t,
            })
        }

        /// Appends, waiting for room.
        pub async fn push(&self, item: T) -> Result<(), T> {
            self.0.push(item).await
        }

        /// The oldest item, waiting for one; `None` once closed and empty.
        pub async fn pop(&self) -> Option<T> {
            future::poll_fn(|cx| self.0.poll_pop(cx)).await
        }

        /// Closes the queue.
        pub fn close(&self) {
            self.0.close();
        }
    }
}
