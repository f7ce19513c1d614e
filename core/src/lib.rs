//! # epidemic-core
//!
//! Pure, deterministic state machines for keeping a cluster's shared state
//! eventually consistent over gossip: HyParView and full-mesh membership,
//! Plumtree epidemic broadcast trees, Merkle hash-tree anti-entropy, dotted
//! version vectors and CRDTs, and a replicated metadata store built from
//! them.
//!
//! The crate does no I/O, reads no clock and starts no thread. Every input
//! carries the current time as an [`Instant`]; every output is
//! a value the caller drains: frames to send, events to act on, and the next
//! deadline. The same seed and the same inputs always give the same outputs,
//! which is what makes the simulator in `epidemic-mem` and the fuzzers worth
//! anything.
//!
//! ```text
//!            driver (mem bus, TCP, QUIC, your own runtime)
//!   frames ──► handle_frame ┐                ┌─► poll_transmit ──► frames
//!   timers ──► handle_timeout├─► state machine├─► poll_event    ──► application
//!   links  ──► handle_link  ┘                └─► poll_timeout  ──► next wake-up
//! ```
//!
//! ## What an embedder needs
//!
//! Everything a driver or an application touches is re-exported here:
//! [`Node`] with its [`Config`], inputs ([`LinkEvent`], [`Instant`]) and
//! outputs ([`Transmit`], [`Event`]); broadcast ids ([`BroadcastId`]); the
//! metadata store's keys, reads and durability records ([`FullPrefix`],
//! [`Read`], [`Value`], [`Context`], [`Persist`]); the typed layer
//! ([`Typed`]); and every error ([`PutError`], [`RestoreError`],
//! [`BroadcastError`], [`WireError`]). The building blocks
//! that are useful alone stay public in their modules: [`clock`], [`crdt`]
//! and [`hashtree`]. The membership and broadcast state machines are driven
//! by the node; they are public for the project's own tests and tools but
//! not a supported stand-alone API, and hidden from these docs.
//!
//! ## Modules
//!
//! - [`time`]: `Instant` and `Duration`, monotonic microseconds.
//! - [`clock`]: vector clocks, dots and DVVSets.
//! - [`crdt`]: state-based CRDTs under one [`crdt::Merge`] trait.
//! - [`hashtree`]: a segmented Merkle tree and its compare-exchange.
//! - [`membership`]: HyParView partial views and full-mesh membership.
//! - [`broadcast`]: Plumtree epidemic broadcast trees.
//! - [`metadata`]: the replicated key-value store (Riak's cluster metadata):
//!   DVVSet siblings, Plumtree dissemination, anti-entropy, tombstone
//!   collection, durability events and a typed layer.
//! - [`wire`]: versioned frames with typed decode errors.
//! - [`node`]: the [`Node`], which composes them behind one
//!   sans-IO contract.
//! - `testing` (feature `testing`): a deterministic virtual-time network
//!   for tests, fuzzers and examples.
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs, unreachable_pub)]
#![deny(rustdoc::broken_intra_doc_links)]

extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

pub mod broadcast;
pub mod clock;
pub mod crdt;
pub mod hashtree;
pub mod identity;
mod log;
pub mod membership;
pub mod metadata;
pub mod node;
#[doc(hidden)]
pub mod rng;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod time;
pub mod wire;

pub use broadcast::{BroadcastError, BroadcastId};
pub use identity::Identity;
pub use membership::LinkEvent;
pub use metadata::{
    Actor, ChangeSource, Context, FullPrefix, Persist, PersistId, PutError, PutId, Read, RestoreError, SubscriptionId,
    Value,
};
pub use node::typed::{Typed, TypedError, TypedRead};
pub use node::{Config, Event, Node, Transmit};
pub use time::{Duration, Instant};
#[doc(hidden)]
pub use wire::EncodeError;
pub use wire::WireError;
