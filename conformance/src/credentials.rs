//! Mutual TLS on real nodes, for any [`Launcher`] with [`Credentials`]:
//! members of one CA link up; a node with a certificate from another CA, a
//! node in plaintext (where the transport has a plaintext mode) and a
//! client with no certificate are all refused in the transport's handshake
//! and never reach the node. [`credentials_suite!`] stamps these out per
//! adapter.
//!
//! [`credentials_suite!`]: crate::credentials_suite

use crate::net::{Launcher, NetCluster, RawConn};
use crate::scenarios::{CLOSE_LIMIT, LIMIT};
use crate::{Cluster, Recv, payload};
use epidemic_driver::{Delivery, DriverStats, Events, Handle};
use futures_lite::future::block_on;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// What a [`Launcher`] of a transport with mutual TLS also starts: nodes
/// and clients without the cluster's credentials.
pub trait Credentials: Launcher {
    /// Starts a node like [`Launcher::launch`], but with a certificate from
    /// a CA other than the cluster's.
    fn launch_stranger(
        &mut self,
        listen: SocketAddr,
        data_dir: &Path,
        contacts: Vec<SocketAddr>,
    ) -> io::Result<Self::Node>;

    /// Starts a node like [`Launcher::launch`], but with no TLS at all, if
    /// the transport has a plaintext mode (TCP); `None` if it has not
    /// (QUIC).
    fn launch_plaintext(
        &mut self,
        listen: SocketAddr,
        data_dir: &Path,
        contacts: Vec<SocketAddr>,
    ) -> Option<io::Result<Self::Node>>;

    /// Opens a raw connection to the node at `addr` as a client with no
    /// certificate. Its setup may already fail (the node refuses in the
    /// handshake): the connection then reads as closed.
    fn raw_connect_anonymous(&mut self, addr: SocketAddr) -> Box<dyn RawConn>;
}

/// A raw connection the node refused while it was being set up.
pub struct Refused;

impl RawConn for Refused {
    fn send(&mut self, _bytes: &[u8]) {}

    fn finish(&mut self) {}

    fn recv(&mut self, _limit: Duration) -> Recv {
        Recv::Closed
    }
}

fn driver_stats(handle: &Handle) -> DriverStats {
    block_on(handle.stats()).expect("node running").driver
}

fn neighbors(handle: &Handle) -> Vec<SocketAddr> {
    block_on(handle.neighbors()).expect("node running")
}

/// Whether `events` hold a delivery of `payload`.
fn delivered(events: &mut Events<Delivery>, payload: &[u8]) -> bool {
    std::iter::from_fn(|| events.try_next())
        .any(|d| &d.expect("the delivery stream never lags here").payload[..] == payload)
}

/// A member of the cluster's CA joins a member; a node with another CA's
/// certificate (and a plaintext node, where the transport has them) joins
/// the same member. The member takes its peer; every stranger's dial fails
/// in the handshake and the member counts each refusal; the member's only
/// neighbour is its peer and the strangers have none; nothing a stranger
/// broadcasts reaches the cluster.
pub fn strangers_are_refused_and_members_link_up<L: Credentials>(launcher: L) {
    let mut c = NetCluster::new(launcher);
    let member = c.add_node();
    let peer = c.add_node();
    c.join(peer, member);
    let lo: SocketAddr = "127.0.0.1:0".parse().expect("valid address");
    let contacts = vec![c.addr(member)];
    let dirs = [
        tempfile::tempdir().expect("a temporary directory"),
        tempfile::tempdir().expect("a temporary directory"),
    ];
    let mut strangers = vec![
        c.launcher()
            .launch_stranger(lo, dirs[0].path(), contacts.clone())
            .expect("a node of another CA starts"),
    ];
    if let Some(plaintext) = c.launcher().launch_plaintext(lo, dirs[1].path(), contacts) {
        strangers.push(plaintext.expect("a plaintext node starts"));
    }
    let handles: Vec<Handle> = strangers.iter().map(|n| L::handle(n).clone()).collect();

    let peer_addr = c.addr(peer);
    assert!(
        c.wait_until(LIMIT, |c| c.neighbors(member).contains(&peer)),
        "a member of the CA did not join"
    );
    // Every stranger's dial fails in the handshake, so its join fails...
    assert!(
        c.wait_until(CLOSE_LIMIT, |_| handles
            .iter()
            .all(|h| driver_stats(h).dial_failures >= 1)),
        "a stranger's dial did not fail"
    );
    // ...and the member refused every one of those handshakes.
    let refusals = handles.len() as u64;
    assert!(
        c.wait_until(CLOSE_LIMIT, |c| driver_stats(c.handle(member)).handshake_failures
            >= refusals),
        "the member did not count {refusals} refused handshakes: {:?}",
        driver_stats(c.handle(member))
    );
    assert_eq!(neighbors(c.handle(member)), vec![peer_addr]);
    for h in &handles {
        assert!(neighbors(h).is_empty(), "a stranger has neighbours: {:?}", neighbors(h));
        assert!(!neighbors(c.handle(peer)).contains(&h.identity()));
    }

    // Nothing a stranger broadcasts reaches the cluster: the member's own
    // broadcast, sent after, reaches the peer; the strangers' never do.
    let mut events = c.handle(peer).deliveries();
    for (i, h) in handles.iter().enumerate() {
        block_on(h.broadcast(payload("let me in", i))).expect("a stranger broadcasts");
    }
    let after = c.broadcast(member, payload("members only", 0));
    assert!(
        c.wait_until(LIMIT, |c| c.has_delivered(peer, &after)),
        "the member's broadcast did not reach its peer"
    );
    for i in 0..handles.len() {
        assert!(
            !delivered(&mut events, &payload("let me in", i)),
            "a stranger's broadcast was delivered"
        );
    }

    for (n, h) in strangers.into_iter().zip(&handles) {
        let _ = block_on(h.shutdown());
        drop(n);
    }
    c.stop();
}

/// A client with no certificate never gets past the transport's handshake:
/// a record it sends is not answered and the connection closes; the node
/// counts the refusal and opens no link.
pub fn anonymous_client_is_refused<L: Credentials>(launcher: L) {
    let mut c = NetCluster::new(launcher);
    let member = c.add_node();
    let addr = c.addr(member);
    let mut raw = c.launcher().raw_connect_anonymous(addr);
    raw.send(b"\x00\x00\x00\x05hello");
    let got = raw.recv(CLOSE_LIMIT);
    assert_eq!(
        got,
        Recv::Closed,
        "the node answered (or kept open) a client without a certificate"
    );
    assert!(
        c.wait_until(CLOSE_LIMIT, |c| driver_stats(c.handle(member)).handshake_failures >= 1),
        "the refusal was not counted"
    );
    assert_eq!(driver_stats(c.handle(member)).links_opened, 0);
    drop(raw);
    c.stop();
}
