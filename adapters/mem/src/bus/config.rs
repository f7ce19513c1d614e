//! The bus's settings and what it reports to an observer.

use crate::Id;
use bytes::Bytes;
use epidemic_core::Duration;
use epidemic_core::metadata::{FullPrefix, PutId};
use epidemic_core::node::BroadcastId;
#[cfg(doc)]
use epidemic_core::node::{Event, LinkEvent};

#[cfg(doc)]
use super::Bus;

/// How long a frame takes from sender to receiver. In a configuration file:
/// `latency = { fixed = "5ms" }` or `latency = { uniform = { min = "1ms",
/// max = "10ms" } }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Latency {
    /// Always this long.
    Fixed(Duration),
    /// Uniform in `[min, max]`, drawn per frame.
    Uniform {
        /// Shortest.
        min: Duration,
        /// Longest.
        max: Duration,
    },
}

/// The bus's settings.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct BusConfig {
    /// Seeds latency, drops and every node's seed.
    ///
    /// Default: `0`. Every run with one seed is the same run.
    pub seed: u64,
    /// Per-frame latency.
    ///
    /// Default: `Latency::Uniform { min: Duration::from_millis(1), max:
    /// Duration::from_millis(10) }`. A few milliseconds: a LAN or a single
    /// cloud region.
    pub latency: Latency,
    /// Probability that a frame is silently lost, in `[0, 1]`.
    ///
    /// Default: `0.0`: loss is a scenario's choice
    /// ([`Bus::set_drop_probability`]).
    pub drop_probability: f64,
    /// How long after a link breaks (crash, partition, dead destination) its
    /// surviving end hears [`LinkEvent::Down`].
    ///
    /// Default: `Duration::from_secs(1)`. A keep-alive or connect timeout of
    /// about a second.
    pub detection_delay: Duration,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            seed: 0,
            latency: Latency::Uniform {
                min: Duration::from_millis(1),
                max: Duration::from_millis(10),
            },
            drop_probability: 0.0,
            detection_delay: Duration::from_secs(1),
        }
    }
}

impl BusConfig {
    /// The defaults with `seed`: the usual way to start a bus.
    pub fn seeded(seed: u64) -> Self {
        BusConfig {
            seed,
            ..BusConfig::default()
        }
    }
}

/// An application-facing event the bus saw while
/// [`Bus::set_observing`] was on: what a test harness needs to check a run
/// against a model (the chaos sweep's acknowledged history and delivery
/// log).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Observation {
    /// Node `at`, in its life `incarnation`, emitted
    /// [`Event::Delivered`] for `id`.
    Delivered {
        /// The node that delivered.
        at: Id,
        /// Its incarnation (bumped at every crash).
        incarnation: u32,
        /// The broadcast.
        id: BroadcastId<Id>,
    },
    /// Node `at` emitted [`metadata::Event::PutDurable`](epidemic_core::metadata::Event::PutDurable): the put or delete is
    /// acknowledged.
    PutDurable {
        /// The node that coordinated the write.
        at: Id,
        /// The id its `put` or `delete` returned.
        put: PutId,
    },
    /// Node `at` persisted the removal of a key: it garbage-collected the
    /// object it had stored there, `object` (encoded, as persisted).
    Collected {
        /// The node that collected.
        at: Id,
        /// The key's full prefix.
        prefix: FullPrefix,
        /// The key.
        key: Bytes,
        /// The object it held until then.
        object: Bytes,
    },
    /// Node `at` emitted [`metadata::Event::Changed`](epidemic_core::metadata::Event::Changed):
    /// a key under one of its subscriptions changed.
    Changed {
        /// The subscribing node.
        at: Id,
        /// The change.
        change: epidemic_core::metadata::Change<Id>,
    },
}
