//! # epidemic-mem
//!
//! An in-memory bus that drives many [`Node`](epidemic_core::node::Node)s on virtual time: the
//! deterministic discrete-event simulator behind the tests, the conformance
//! suite and `epidemic sim`.
//!
//! - **Virtual time.** Nothing sleeps. The bus keeps one queue of scheduled
//!   deliveries and link events and one of node deadlines, and jumps from one
//!   to the next, like quinn-proto's test `Pair::step`.
//! - **Links.** A link between two nodes exists once a frame has been
//!   delivered between them; both ends then get [`LinkEvent::Up`](epidemic_core::node::LinkEvent::Up). A frame to a
//!   crashed node, or across a partition, is lost, and its sender gets
//!   [`LinkEvent::Down`](epidemic_core::node::LinkEvent::Down) after the detection delay, as a TCP connection
//!   attempt would fail. A crash tears down every link of the crashed node;
//!   each peer gets `Down` after the detection delay.
//! - **Faults.** Per-frame latency (fixed or uniform in a range), a drop
//!   probability, partitions into groups, crash and restart.
//! - **Determinism.** Everything random (latency, drops, node seeds) comes
//!   from one seed, and ties in time are broken by insertion order, so a seed
//!   reproduces a run bit for bit.
//!
//! ```
//! use epidemic_core::node::Config;
//! use epidemic_core::Duration;
//! use epidemic_mem::{Bus, BusConfig};
//! use bytes::Bytes;
//!
//! let mut bus = Bus::new(BusConfig::seeded(7));
//! bus.add_nodes(20, &Config::default());
//! bus.join_each_via_random_earlier(Duration::from_millis(20));
//! bus.run_for(Duration::from_secs(30));
//! assert_eq!(bus.components().len(), 1);
//!
//! let id = bus.broadcast(0, Bytes::from_static(b"hi")).unwrap();
//! assert!(bus.run_until_quiescent(Duration::from_secs(60)));
//! assert_eq!(bus.report(&id).unwrap().delivered, 20);
//! ```

mod bus;
pub mod chaos;
mod disk;
mod metrics;
pub mod scenarios;

pub use bus::{Bus, BusConfig, BusError, Latency, Observation};
pub use disk::Disk;
pub use metrics::{BroadcastReport, Metrics};

/// Node identities on the bus: indexes into its node table.
pub type Id = u32;
