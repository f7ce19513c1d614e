//! # epidemic-conformance
//!
//! One scenario suite, written once against the [`Cluster`] trait and run
//! over every adapter, the way rustls runs one API suite per crypto
//! provider: [`suite!`] stamps out one `#[test]` per scenario for a given
//! cluster constructor, and [`mesh_suite!`] the mesh-mode scenarios for a
//! constructor of full-mesh clusters.
//!
//! Two smaller suites cover what only real nodes have, written once
//! against the [`Launcher`](net::Launcher) and stamped out per transport:
//! [`durability_suite!`] (a node's store across a kill and a graceful
//! restart, [`durability`]) and, for transports with mutual TLS,
//! [`credentials_suite!`] (who is refused, [`credentials`], through the
//! companion trait [`Credentials`](credentials::Credentials)).
//!
//! | instance | time | nodes | suites | file |
//! |---|---|---|---|---|
//! | [`mem::MemCluster`] | virtual | 20 | `suite!`, `mesh_suite!` (plus partitions) | `tests/mem.rs` |
//! | [`net::NetCluster`] over [`tcp::Tcp`] (mutual TLS) | real, loopback | 8 | `suite!`, `mesh_suite!`, `durability_suite!`, `credentials_suite!` (plus bytes that are not TLS) | `tests/tcp.rs` |
//! | [`net::NetCluster`] over [`tcp::Tcp`] (plaintext) | real, loopback | 8 | `suite!`, `mesh_suite!`, `durability_suite!` | `tests/tcp_plaintext.rs` |
//! | [`net::NetCluster`] over [`quic::Quic`] | real, loopback | 8 | `suite!`, `mesh_suite!`, `durability_suite!`, `credentials_suite!` | `tests/quic.rs` |
//!
//! Real-network instances bind `127.0.0.1:0` only, wait for every
//! condition by polling with a bounded timeout (never by asserting how long
//! something took), and stop every node they started, so their outcome is
//! deterministic even though their timing is not.
//!
//! The scenarios ([`scenarios`]):
//!
//! - **join**: nodes join one after another through earlier nodes and form
//!   one connected overlay;
//! - **broadcast**: broadcasts from several nodes reach every node, each
//!   exactly once;
//! - **crash and rejoin**: a node crashes (no leave, its runtime simply
//!   dropped), the survivors heal and keep delivering, the node restarts on
//!   the same address and delivers again;
//! - **graceful leave**: a node shuts down (it leaves, says goodbye on
//!   its links and stops); its contact no longer holds it as a neighbour,
//!   takes a new joiner and delivers with it;
//! - **goodbye from a neighbour**: a neighbour (a raw connection) says
//!   goodbye on its link without the `Disconnect` a leave sends first, and
//!   its identity is a silent peer that accepts dials and never answers, so
//!   only the goodbye can tell the node it is gone: the node drops it (the
//!   driver reports the link down), then takes a new joiner;
//! - **metadata convergence**: writes from several nodes, concurrent ones
//!   to one key among them, reach every node, which end up holding the same
//!   siblings; a write with the read's context resolves them everywhere;
//! - **anti-entropy after a restart**: a node crashes, the others write
//!   while it is down, it restarts from its disk (everything it had is back
//!   at once) and Merkle anti-entropy brings it what it missed (the
//!   broadcast never will);
//! - **typed values**: serde values written at one node read back, typed,
//!   at every node, and an overwrite from another node replaces them;
//! - **read-repair**: two nodes overwrite one key with the same earlier
//!   context, so their writes are siblings whatever the timing; a read
//!   with repair at a third node returns one of them and writes it back,
//!   and every node ends up with that one value;
//! - **user handler**: an application's own broadcast handler, a
//!   last-writer-wins register map ([`lww`]), registered on a channel of
//!   every node: writes from several nodes, two of them to one key at
//!   once, converge on every node; a node crashes, writes go on without it,
//!   and it restarts with its store (as an application's store would
//!   survive) and gets what it missed through the handler's exchange
//!   (the channel announces nothing to neighbours that come up);
//! - **subscriptions**: a subscriber sees one change per write under its
//!   prefix, with the key, the resolved value and how it came (a broadcast
//!   for another node's write, local for its own), a delete as no value,
//!   and nothing for another prefix;
//! - **CRDT prefix**: three nodes increment one PN-counter of a prefix
//!   every node names in its configuration, in turn and without waiting;
//!   every node converges on the exact sum with one sibling;
//! - **bad input** from a raw connection: garbage bytes, a length prefix of
//!   4 GiB, a wrong protocol version, a record cut off half-way, a frame cut
//!   off half-way. Each closes that connection; the node keeps its
//!   neighbours and keeps delivering in both directions.
//!
//! The mesh-mode scenarios ([`mesh_suite!`], nodes in full-mesh
//! membership):
//!
//! - **mesh membership**: nodes form a mesh through one contact and each
//!   lists every member; a node added at one member becomes a member
//!   everywhere; a node removed at one member is dropped everywhere, and
//!   its metadata writes are no longer accepted;
//! - **tombstone collection**: a deleted key's tombstone is not collected
//!   while a member is down; that member returns from its disk holding the
//!   deleted value, the tombstone is collected on every node and the key
//!   stays absent; a new write to it spreads as any write does.
//!
//! The durability tests ([`durability`]):
//!
//! - **killed mid-writes**: four threads put as fast as acknowledged; the
//!   node is killed mid-write and restarted from its directory: it restored
//!   at least every acknowledged object, refused no stored record, and holds
//!   every acknowledged value;
//! - **graceful restart**: writes, an overwrite and a delete survive a
//!   graceful stop, and a write after the restart overwrites (the causal
//!   history continues) rather than becoming a sibling.
//!
//! The credential tests ([`credentials`]):
//!
//! - **strangers refused**: a member of the CA links up; a node with another
//!   CA's certificate, and a plaintext node where the transport has a
//!   plaintext mode, fail their dials, the member counts each refused
//!   handshake, neither holds or is held as a neighbour, and nothing they
//!   broadcast reaches the cluster;
//! - **anonymous client refused**: a client without a certificate is never
//!   answered, its connection closes, the refusal is counted and no link
//!   opens.

use bytes::Bytes;
use epidemic_core::metadata::{self, Change, Context, FullPrefix};
use epidemic_core::node::{ChannelConfig, ChannelHandler, ChannelId};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;

pub mod credentials;
pub mod durability;
pub mod lww;
pub mod mem;
pub mod net;
pub mod quic;
pub mod scenarios;
pub mod tcp;

/// What a raw connection heard from the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recv {
    /// Bytes.
    Data(Vec<u8>),
    /// The node closed the connection.
    Closed,
    /// Nothing yet.
    Nothing,
}

/// A cluster of nodes under test, all of one adapter. Nodes are numbered
/// from 0 in the order they were added.
pub trait Cluster {
    /// How a broadcast is named.
    type Id: Clone + std::fmt::Debug;

    /// How nodes are named on the wire.
    type Identity: epidemic_core::Identity;

    /// An identity no node of the cluster has (for crafted frames).
    fn fake_identity(&self) -> Self::Identity;

    /// How many nodes the scenarios should use (5 to 20).
    fn scale(&self) -> usize;

    /// Starts a node that knows no one; returns its number.
    fn add_node(&mut self) -> usize;

    /// Node `ix` joins through node `contact`.
    fn join(&mut self, ix: usize, contact: usize);

    /// Broadcasts `payload` from node `ix`.
    fn broadcast(&mut self, ix: usize, payload: Bytes) -> Self::Id;

    /// Whether node `ix` delivered (or originated) broadcast `id` in its
    /// current life.
    fn has_delivered(&mut self, ix: usize, id: &Self::Id) -> bool;

    /// Deliveries of a broadcast to a node that had already delivered it,
    /// over the whole run. The protocol promises zero.
    fn duplicates(&mut self) -> usize;

    /// Node `ix`'s overlay neighbours.
    fn neighbors(&mut self, ix: usize) -> Vec<usize>;

    /// Whether node `ix` is running.
    fn is_alive(&self, ix: usize) -> bool;

    /// Crashes node `ix`: no leave, nothing flushed; peers see its
    /// connections break.
    fn crash(&mut self, ix: usize);

    /// Stops node `ix` gracefully: it leaves (telling its neighbours),
    /// closes its links in an orderly way, and stops. Like a crashed node,
    /// it may be restarted.
    fn shut_down(&mut self, ix: usize);

    /// Restarts crashed node `ix` on its old address with nothing of its
    /// past (its store wiped); it joins through `contact`.
    fn restart(&mut self, ix: usize, contact: usize);

    /// Restarts crashed node `ix` on its old address from what it
    /// persisted; it joins through `contact`.
    fn restart_from_disk(&mut self, ix: usize, contact: usize);

    /// Writes `value` under `key` in `prefix` at node `ix`; true once the
    /// node acknowledged it durable.
    fn put(&mut self, ix: usize, prefix: &FullPrefix, key: &str, value: &str) -> bool;

    /// The live siblings of `key` at node `ix`, sorted; `None` if the node
    /// holds nothing under the key.
    fn siblings(&mut self, ix: usize, prefix: &FullPrefix, key: &str) -> Option<Vec<Bytes>>;

    /// The context of node `ix`'s read of `key` ([`Read::context`](epidemic_core::metadata::Read::context));
    /// `None` if the node holds nothing under it.
    fn context(&mut self, ix: usize, prefix: &FullPrefix, key: &str) -> Option<Context<Self::Identity>>;

    /// Writes `value` under `key` at node `ix` with `context` (overwriting
    /// what the read that gave it saw); true once acknowledged durable.
    fn put_with(
        &mut self,
        ix: usize,
        prefix: &FullPrefix,
        key: &str,
        value: &str,
        context: Option<Context<Self::Identity>>,
    ) -> bool;

    /// Read-repair at node `ix`: `key` resolved (last-writer-wins here) and,
    /// if it has siblings, the resolved value written back with the read's
    /// context; returns the resolved value.
    fn get_repaired(&mut self, ix: usize, prefix: &FullPrefix, key: &str) -> Option<Bytes>;

    /// Writes the typed `value` under `key` at node `ix`; true once
    /// acknowledged durable.
    fn put_typed<T: Serialize>(&mut self, ix: usize, prefix: &FullPrefix, key: &str, value: &T) -> bool;

    /// The typed value of `key` at node `ix`, resolved; `None` if absent.
    /// Panics if the stored value is not a `T`.
    fn get_typed<T: DeserializeOwned>(&mut self, ix: usize, prefix: &FullPrefix, key: &str) -> Option<T>;

    /// Registers `handler` on `channel` at node `ix`
    /// ([`Node::register_channel`](epidemic_core::Node::register_channel));
    /// true if the node took it.
    fn register_channel(
        &mut self,
        ix: usize,
        channel: ChannelId,
        handler: Box<dyn ChannelHandler<Self::Identity>>,
        config: ChannelConfig,
    ) -> bool;

    /// Spreads message `id` with `payload` on `channel` from node `ix`
    /// ([`Node::broadcast_on`](epidemic_core::Node::broadcast_on)), after
    /// the caller applied it to that node's handler store; true if the node
    /// took it.
    fn broadcast_on(&mut self, ix: usize, channel: ChannelId, id: Bytes, payload: Bytes) -> bool;

    /// The members node `ix` knows ([`Node::members`](epidemic_core::Node::members)),
    /// itself included, as node numbers; a member outside the cluster is
    /// `usize::MAX`.
    fn members(&mut self, ix: usize) -> Vec<usize>;

    /// Mesh mode: node `ix` adds node `member` to the cluster
    /// ([`Node::add_member`](epidemic_core::Node::add_member)); true if the
    /// node took it.
    fn add_member(&mut self, ix: usize, member: usize) -> bool;

    /// Mesh mode: node `ix` removes node `member` from the cluster
    /// ([`Node::remove_member`](epidemic_core::Node::remove_member)); true
    /// if the node took it.
    fn remove_member(&mut self, ix: usize, member: usize) -> bool;

    /// Deletes `key` at node `ix` with the context of the node's own read
    /// (so the tombstone supersedes every sibling it holds); true once
    /// acknowledged durable.
    fn delete(&mut self, ix: usize, prefix: &FullPrefix, key: &str) -> bool;

    /// Node `ix`'s metadata counters; `None` if it is not running.
    fn metadata_stats(&mut self, ix: usize) -> Option<metadata::Stats>;

    /// Subscribes node `ix` to changes under `prefix`; returns the
    /// subscription's number for [`Cluster::changes`].
    fn subscribe(&mut self, ix: usize, prefix: &FullPrefix) -> usize;

    /// The changes subscription `sub` received since the last call, in
    /// order. Panics if some went missing (a lag).
    fn changes(&mut self, sub: usize) -> Vec<Change<Self::Identity>>;

    /// Read-modify-write at node `ix` of the
    /// [`PNCounter`](epidemic_core::crdt::PNCounter) under `key` (a
    /// [`typed`](epidemic_core::node::typed) value, the default if absent):
    /// one increment by the node's identity, written with the read's
    /// context. True once acknowledged durable.
    fn increment(&mut self, ix: usize, prefix: &FullPrefix, key: &str) -> bool;

    /// Lets time pass until `cond` holds or `limit` has passed (virtual time
    /// on the bus, wall time on real networks); returns whether it held.
    fn wait_until(&mut self, limit: Duration, cond: impl FnMut(&mut Self) -> bool) -> bool;

    /// Opens a raw connection to node `ix`: the transport's own setup (TLS,
    /// QUIC) done with valid credentials, nothing of the node's protocol
    /// sent yet. Returns its number.
    fn raw_open(&mut self, ix: usize) -> usize;

    /// Starts a silent peer: it accepts the links nodes dial to it, with
    /// the transport's setup and the node's handshake, then never answers.
    /// Returns the identity it claims, which a raw connection may claim too
    /// ([`scenarios::handshake_as`]).
    fn raw_peer(&mut self) -> std::net::SocketAddr;

    /// Sends bytes on a raw connection.
    fn raw_send(&mut self, raw: usize, bytes: &[u8]);

    /// Ends the sending side of a raw connection.
    fn raw_finish(&mut self, raw: usize);

    /// Waits up to `limit` for what the node sends or does next.
    fn raw_recv(&mut self, raw: usize, limit: Duration) -> Recv;

    /// Connections node `ix` closed because of bad input, failed
    /// handshakes included, if the adapter counts them.
    fn bad_input(&mut self, ix: usize) -> Option<u64>;

    /// Stops every node.
    fn stop(&mut self);
}

/// Stamps out one `#[test]` per scenario for the cluster built by `$make`.
///
/// In a test file (`tests/mem.rs`):
///
/// ```text
/// epidemic_conformance::suite!(epidemic_conformance::mem::MemCluster::new(7));
/// ```
#[macro_export]
macro_rules! suite {
    ($make:expr) => {
        #[test]
        fn join_forms_one_overlay() {
            $crate::scenarios::join(&mut $make);
        }

        #[test]
        fn broadcasts_reach_every_node_once() {
            $crate::scenarios::broadcast(&mut $make);
        }

        #[test]
        fn crashed_node_rejoins_and_survivors_keep_delivering() {
            $crate::scenarios::crash_and_rejoin(&mut $make);
        }

        #[test]
        fn a_node_that_leaves_is_dropped_and_its_contact_takes_a_new_joiner() {
            $crate::scenarios::graceful_leave(&mut $make);
        }

        #[test]
        fn a_goodbye_from_a_neighbour_drops_it() {
            $crate::scenarios::goodbye_from_a_neighbour(&mut $make);
        }

        #[test]
        fn metadata_converges_on_every_node() {
            $crate::scenarios::metadata_convergence(&mut $make);
        }

        #[test]
        fn anti_entropy_repairs_a_node_restarted_from_disk() {
            $crate::scenarios::anti_entropy_after_restart(&mut $make);
        }

        #[test]
        fn siblings_larger_than_a_repair_frame_converge() {
            $crate::scenarios::large_siblings(&mut $make);
        }

        #[test]
        fn typed_values_reach_every_node() {
            $crate::scenarios::typed_values(&mut $make);
        }

        #[test]
        fn read_repair_collapses_concurrent_siblings_everywhere() {
            $crate::scenarios::read_repair(&mut $make);
        }

        #[test]
        fn a_user_handler_converges_and_catches_up_by_its_exchange() {
            $crate::scenarios::user_handler(&mut $make);
        }

        #[test]
        fn a_subscriber_sees_each_change_under_its_prefix_only() {
            $crate::scenarios::subscriptions(&mut $make);
        }

        #[test]
        fn racing_increments_of_a_crdt_prefix_converge_on_the_sum() {
            $crate::scenarios::crdt_counter(&mut $make);
        }

        #[test]
        fn garbage_bytes_close_the_link_only() {
            $crate::scenarios::bad_input(&mut $make, $crate::scenarios::BadInput::Garbage);
        }

        #[test]
        fn length_prefix_of_4_gib_closes_the_link_only() {
            $crate::scenarios::bad_input(&mut $make, $crate::scenarios::BadInput::HugePrefix);
        }

        #[test]
        fn wrong_protocol_version_closes_the_link_only() {
            $crate::scenarios::bad_input(&mut $make, $crate::scenarios::BadInput::WrongVersion);
        }

        #[test]
        fn record_cut_off_half_way_closes_the_link_only() {
            $crate::scenarios::bad_input(&mut $make, $crate::scenarios::BadInput::CutRecord);
        }

        #[test]
        fn frame_cut_off_half_way_closes_the_link_only() {
            $crate::scenarios::bad_input(&mut $make, $crate::scenarios::BadInput::CutFrame);
        }
    };
}

/// Stamps out the mesh-mode scenarios ([`scenarios::stores`]) for the
/// cluster of full-mesh nodes built by `$make`.
///
/// ```text
/// epidemic_conformance::mesh_suite!(epidemic_conformance::mem::MemCluster::mesh(7));
/// ```
#[macro_export]
macro_rules! mesh_suite {
    ($make:expr) => {
        #[test]
        fn mesh_members_are_added_and_removed_everywhere() {
            $crate::scenarios::mesh_membership(&mut $make);
        }

        #[test]
        fn tombstones_are_collected_everywhere_and_stay_collected() {
            $crate::scenarios::tombstone_gc(&mut $make);
        }
    };
}

/// Stamps out the [`durability`] tests for real nodes started by the
/// [`Launcher`](net::Launcher) `$launcher` (an expression evaluated afresh
/// for each test).
///
/// ```text
/// epidemic_conformance::durability_suite!(epidemic_conformance::quic::Quic::new());
/// ```
#[macro_export]
macro_rules! durability_suite {
    ($launcher:expr) => {
        #[test]
        fn a_node_killed_mid_writes_restarts_with_every_acknowledged_write() {
            $crate::durability::killed_mid_writes($launcher);
        }

        #[test]
        fn a_graceful_restart_keeps_writes_deletes_and_siblings() {
            $crate::durability::graceful_restart($launcher);
        }
    };
}

/// Stamps out the [`credentials`] tests for real nodes started by the
/// [`Credentials`](credentials::Credentials) launcher `$launcher` (an
/// expression evaluated afresh for each test).
///
/// ```text
/// epidemic_conformance::credentials_suite!(epidemic_conformance::quic::Quic::new());
/// ```
#[macro_export]
macro_rules! credentials_suite {
    ($launcher:expr) => {
        #[test]
        fn strangers_are_refused_and_members_link_up() {
            $crate::credentials::strangers_are_refused_and_members_link_up($launcher);
        }

        #[test]
        fn a_client_without_a_certificate_is_refused() {
            $crate::credentials::anonymous_client_is_refused($launcher);
        }

        #[test]
        fn joined_names_why_each_contact_failed() {
            $crate::credentials::joined_names_why_each_contact_failed($launcher);
        }

        #[test]
        fn joined_waits_for_a_late_contact() {
            $crate::credentials::joined_waits_for_a_late_contact($launcher);
        }
    };
}

/// The record a node sends to accept a dial: what a raw peer that pretends
/// to be the node `identity` answers a hello with.
pub fn accept_record(identity: std::net::SocketAddr) -> Vec<u8> {
    use epidemic_driver::codec::{Ack, encode_record};
    let mut ack = Vec::new();
    encode_record(
        &Ack::Accept {
            identity,
            incarnation: 1,
        }
        .encode(),
        &mut ack,
    );
    ack
}

/// A distinct payload for scenario broadcasts.
pub fn payload(tag: &str, n: usize) -> Bytes {
    Bytes::from(format!("{tag}-{n}"))
}
