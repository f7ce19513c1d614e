//! `epidemic sim`: epidemic broadcast on a simulated cluster, measured the
//! way the Plumtree paper measures it and set beside the published figures;
//! and the replicated metadata store through partitions.
//!
//! Every scenario runs real [`Node`](epidemic_core::node::Node)s (HyParView
//! under Plumtree; for `metadata`, a full mesh unless `--hyparview`) on the
//! deterministic [`Bus`](epidemic_mem::Bus) of `epidemic-mem`, on virtual
//! time, from one seed.
//!
//! # Cycles
//!
//! As in the paper, time advances in *cycles*. A cycle is: the cycle's
//! failures (if any), at one instant; then one broadcast, run until it is
//! quiescent (no broadcast frame in flight and every node idle; membership
//! traffic goes on meanwhile); then a membership step, one HyParView shuffle
//! interval of virtual time, in which every node shuffles once and repairs
//! its views. A *round*, in the failure scenario's healing time, is one
//! cycle.
//!
//! # Scenarios
//!
//! - [`stable`]: the paper's stable-state runs, single and multiple senders,
//!   with and without the tree optimisation, beside eager flooding.
//! - [`failure`]: a massive failure at one instant, swept over a range of
//!   sizes: the next broadcast's reliability and the rounds to heal.
//! - [`churn`]: a few nodes fail in every cycle.
//! - [`compare`]: the strategies of the RICON 2014 talk side by side on one
//!   overlay, before and after failures.
//! - [`metadata`]: the replicated metadata store through partitions, with
//!   and without anti-entropy: whether every node converges after the last
//!   heal, how fast, and what anti-entropy costs. Not measured in cycles;
//!   50 nodes unless `--nodes` says otherwise.
//! - [`chaos`]: a deterministic fault sweep over many seeds (crashes,
//!   restarts, partitions, loss, membership changes, writes and broadcasts),
//!   checked against a model of the acknowledged history; failures are
//!   listed by seed and invariant, and shrunk.

mod args;
pub mod chaos;
pub mod churn;
mod cluster;
pub mod compare;
pub mod failure;
pub mod metadata;
mod output;
mod plot;
mod progress;
mod report;
mod runner;
mod setup;
pub mod stable;
mod strategies;

pub use args::{Common, Format, LatencyMs, Percentages, Scenario, SimArgs, Tree};
pub use metadata::{MetadataDocument, MetadataRow, MetadataSummary};
pub use output::write_out_dir;
pub use progress::Progress;
pub use report::{LoadDistribution, Measure, Report, Row, Summary};
pub use runner::{ScenarioReport, run, total_work};

use output::thousands;
use runner::parallel;
pub(crate) use setup::MESSAGE_CACHE;
use setup::{MULTI_SENDER_THRESHOLD, SINGLE_SENDER_THRESHOLD, take_pct};
