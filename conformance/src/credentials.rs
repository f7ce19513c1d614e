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
use epidemic_driver::{ContactFailure, Delivery, DriverStats, Events, Handle, JoinError, JoinWait};
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

/// How long a test waits for a join it expects to fail: past the driver's
/// default connect timeout (5 s), so that a dial nothing answers (a QUIC
/// handshake to a closed UDP port) has failed by then too.
pub const FAILED_JOIN_WAIT: Duration = Duration::from_secs(8);

/// A wait for one neighbour, for `timeout`.
fn wait_for_one(timeout: Duration) -> JoinWait {
    let mut wait = JoinWait::default();
    wait.timeout = timeout;
    wait
}

/// The reason `result` (a [`Handle::joined`] that must have timed out)
/// gives for `contact`.
fn reason_for(result: Result<(), JoinError>, contact: SocketAddr) -> ContactFailure {
    if let Err(e) = &result {
        eprintln!("joined() ended: {e}");
    }
    match result {
        Err(JoinError::Timeout {
            neighbors, contacts, ..
        }) => {
            assert_eq!(neighbors, 0, "a node that should not have joined has neighbours");
            contacts
                .into_iter()
                .find(|(addr, _)| *addr == contact)
                .map(|(_, why)| why)
                .unwrap_or_else(|| panic!("the timeout does not name the contact {contact}"))
        }
        other => panic!("joined() did not time out: {other:?}"),
    }
}

/// A loopback port free for both TCP and UDP now, for a node that starts
/// later (or never).
pub fn free_port() -> SocketAddr {
    for _ in 0..100 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind a UDP port");
        let addr = udp.local_addr().expect("a bound address");
        if std::net::TcpListener::bind(addr).is_ok() {
            return addr;
        }
    }
    panic!("no loopback port free for both TCP and UDP");
}

/// `joined()` through a contact that is not there yet times out naming it
/// unreachable; once the contact starts on that address, the node's
/// retries reach it and `joined()` resolves.
pub fn joined_waits_for_a_late_contact<L: Launcher>(launcher: L) {
    let mut c = NetCluster::new(launcher);
    let late = free_port();
    let lo: SocketAddr = "127.0.0.1:0".parse().expect("valid address");
    let dirs = [
        tempfile::tempdir().expect("a temporary directory"),
        tempfile::tempdir().expect("a temporary directory"),
    ];
    let joiner = c
        .launcher()
        .launch(lo, dirs[0].path(), vec![late])
        .expect("the joiner starts");
    let handle = L::handle(&joiner).clone();
    let why = reason_for(block_on(handle.joined(wait_for_one(FAILED_JOIN_WAIT))), late);
    assert!(
        matches!(why, ContactFailure::Unreachable(_)),
        "a closed port is not reported unreachable: {why:?}"
    );

    let contact = c
        .launcher()
        .launch(late, dirs[1].path(), Vec::new())
        .expect("the late contact starts");
    // The joiner retries with a backoff that has grown while the contact
    // was away (up to 20 s by now): twice the usual limit.
    let joined = block_on(handle.joined(wait_for_one(2 * LIMIT)));
    assert_eq!(joined, Ok(()), "the joiner never got in");
    assert_eq!(neighbors(&handle), vec![late]);
    // Already joined: at once.
    assert_eq!(block_on(handle.joined(JoinWait::default())), Ok(()));

    let _ = block_on(handle.shutdown());
    assert_eq!(block_on(handle.joined(JoinWait::default())), Err(JoinError::Shutdown));
    let _ = block_on(L::handle(&contact).shutdown());
    drop((joiner, contact));
    c.stop();
}

/// Each way a join fails is named: a node with another CA's certificate
/// joining a member gets the TLS refusal with rustls's reason; a node whose
/// contact completes the handshake but never answers the join is told the
/// contact is silent; where the
/// transport has a plaintext mode, a plaintext node joining a TLS member,
/// and a TLS node joining a plaintext node, get what each can tell.
pub fn joined_names_why_each_contact_failed<L: Credentials>(launcher: L) {
    let mut c = NetCluster::new(launcher);
    let member = c.add_node();
    let member_addr = c.addr(member);
    let lo: SocketAddr = "127.0.0.1:0".parse().expect("valid address");
    let dirs: Vec<_> = (0..5)
        .map(|_| tempfile::tempdir().expect("a temporary directory"))
        .collect();
    // A contact that completes every handshake and never answers a join.
    let silent = c.launcher().raw_listen();
    let silent_addr = silent.addr();
    let hopeful = c
        .launcher()
        .launch(lo, dirs[4].path(), vec![silent_addr])
        .expect("a node starts");
    let stranger = c
        .launcher()
        .launch_stranger(lo, dirs[0].path(), vec![member_addr])
        .expect("a node of another CA starts");
    let plaintext = c.launcher().launch_plaintext(lo, dirs[1].path(), vec![member_addr]);
    let plaintext = plaintext.map(|n| n.expect("a plaintext node starts"));
    // A TLS member of the cluster whose contact runs in plaintext.
    let plain_contact = c.launcher().launch_plaintext(lo, dirs[2].path(), Vec::new());
    let plain_contact = plain_contact.map(|n| n.expect("a plaintext contact starts"));
    let tls_joiner = plain_contact.as_ref().map(|contact| {
        let addr = L::handle(contact).identity();
        c.launcher()
            .launch(lo, dirs[3].path(), vec![addr])
            .expect("a TLS node starts")
    });

    let wait = wait_for_one(FAILED_JOIN_WAIT);
    let stranger_h = L::handle(&stranger).clone();
    let plaintext_h = plaintext.as_ref().map(|n| L::handle(n).clone());
    let tls_joiner_h = tls_joiner.as_ref().map(|n| L::handle(n).clone());
    let hopeful_h = L::handle(&hopeful).clone();
    // The waits run at once.
    let ((stranger_r, hopeful_r), (plaintext_r, tls_joiner_r)) = block_on(futures_lite::future::zip(
        futures_lite::future::zip(stranger_h.joined(wait), hopeful_h.joined(wait)),
        futures_lite::future::zip(
            async {
                match &plaintext_h {
                    Some(h) => Some(h.joined(wait).await),
                    None => None,
                }
            },
            async {
                match &tls_joiner_h {
                    Some(h) => Some(h.joined(wait).await),
                    None => None,
                }
            },
        ),
    ));

    match reason_for(stranger_r, member_addr) {
        // Two rcgen CAs share their subject name, so webpki finds the
        // "issuer" and fails its signature (`BadSignature`); a CA of
        // another name would give `UnknownIssuer`; the contact refusing
        // first, its alert.
        ContactFailure::TlsRefused(why) => assert!(
            ["BadSignature", "UnknownIssuer", "UnknownCA", "BadCertificate"]
                .iter()
                .any(|reason| why.contains(reason)),
            "the TLS refusal does not give rustls's reason: {why}"
        ),
        other => panic!("another CA's node is not told TLS refused: {other:?}"),
    }
    let why = reason_for(hopeful_r, silent_addr);
    assert!(
        matches!(why, ContactFailure::Silent(_)),
        "a contact that never answers the join is not reported silent: {why:?}"
    );
    if let Some(r) = plaintext_r {
        let why = reason_for(r, member_addr);
        assert!(
            matches!(why, ContactFailure::WrongTransport(_)),
            "a plaintext node joining a TLS member is not told wrong transport: {why:?}"
        );
    }
    if let (Some(r), Some(contact)) = (tls_joiner_r, &plain_contact) {
        let why = reason_for(r, L::handle(contact).identity());
        assert!(
            matches!(why, ContactFailure::HungUp(_)),
            "a TLS node joining a plaintext node is not told the contact hung up: {why:?}"
        );
    }
    assert!(neighbors(c.handle(member)).is_empty(), "the member took a stranger");

    let handles = [Some(stranger_h), Some(hopeful_h), plaintext_h, tls_joiner_h];
    for h in handles.iter().flatten() {
        let _ = block_on(h.shutdown());
    }
    if let Some(n) = &plain_contact {
        let _ = block_on(L::handle(n).shutdown());
    }
    drop((stranger, hopeful, silent, plaintext, tls_joiner, plain_contact));
    c.stop();
}
