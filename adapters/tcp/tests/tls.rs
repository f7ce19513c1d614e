//! Mutual TLS: members of one CA link up; a node with a certificate from
//! another CA, a client with no certificate, and a plaintext node are all
//! refused before they reach the node.

use epidemic_driver::certs::ClusterCa;
use epidemic_driver::tls::{SERVER_NAME, TlsConfig};
use epidemic_tcp::{TcpConfig, TcpNode};
use futures_lite::future::block_on;
use rustls::pki_types::ServerName;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn lo() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn cert(ca: &ClusterCa) -> TlsConfig {
    ca.issue(&["127.0.0.1"]).unwrap().tls_config(ca).unwrap()
}

fn start(tls: Option<TlsConfig>, contacts: Vec<SocketAddr>) -> TcpNode {
    let mut config = match tls {
        Some(tls) => TcpConfig::tls(lo(), tls),
        None => TcpConfig::insecure_plaintext(lo()),
    };
    config.contacts = contacts;
    TcpNode::start(config).unwrap()
}

/// Polls `cond` every 20 ms for up to 10 s.
fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn strangers_are_refused_and_members_link_up() {
    let ca = ClusterCa::generate().unwrap();
    let other = ClusterCa::generate().unwrap();
    let member = start(Some(cert(&ca)), vec![]);
    let peer = start(Some(cert(&ca)), vec![member.identity()]);
    let stranger = start(Some(cert(&other)), vec![member.identity()]);
    let plaintext = start(None, vec![member.identity()]);

    let m = member.handle();
    assert!(
        eventually(|| block_on(m.neighbors()).unwrap().contains(&peer.identity())),
        "a member of the CA joins"
    );
    // Both strangers' dials fail in the handshake, so their joins fail...
    assert!(eventually(|| {
        block_on(stranger.handle().stats()).unwrap().driver.dial_failures >= 1
            && block_on(plaintext.handle().stats()).unwrap().driver.dial_failures >= 1
    }));
    // ...and the member refused both handshakes.
    assert!(eventually(
        || block_on(m.stats()).unwrap().driver.handshake_failures >= 2
    ));
    let neighbors = block_on(m.neighbors()).unwrap();
    assert_eq!(neighbors, vec![peer.identity()]);
    assert!(block_on(stranger.handle().neighbors()).unwrap().is_empty());
    assert!(block_on(plaintext.handle().neighbors()).unwrap().is_empty());
    // Nothing the stranger broadcasts reaches the cluster.
    let mut events = peer.handle().events();
    block_on(stranger.handle().broadcast(&b"let me in"[..])).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    while let Some(e) = events.try_next() {
        assert!(
            !matches!(e, epidemic_core::node::Event::Delivered { .. }),
            "stranger delivered {e:?}"
        );
    }
    for n in [member, peer, stranger, plaintext] {
        n.shutdown();
    }
}

#[test]
fn a_client_without_a_certificate_never_gets_past_tls() {
    let ca = ClusterCa::generate().unwrap();
    let member = start(Some(cert(&ca)), vec![]);
    let anonymous = cert(&ca).anonymous_client_config().unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(anonymous), ServerName::try_from(SERVER_NAME).unwrap()).unwrap();
    let sock = std::net::TcpStream::connect(member.identity()).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    // TLS 1.3: the client finishes its side first, so its first write may
    // go through; the server's verdict arrives as an alert on the next read.
    let _ = tls.write_all(b"\x00\x00\x00\x05hello").and_then(|()| tls.flush());
    let mut buf = [0u8; 64];
    let read = tls.read(&mut buf);
    assert!(
        matches!(read, Err(_) | Ok(0)),
        "the node answered a client without a certificate: {read:?}"
    );
    let m = member.handle();
    assert!(eventually(
        || block_on(m.stats()).unwrap().driver.handshake_failures >= 1
    ));
    assert_eq!(block_on(m.stats()).unwrap().driver.links_opened, 0);
    member.shutdown();
}

#[test]
fn bytes_that_are_not_tls_close_the_connection() {
    let ca = ClusterCa::generate().unwrap();
    let member = start(Some(cert(&ca)), vec![]);
    let mut sock = std::net::TcpStream::connect(member.identity()).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    sock.write_all(b"\x00\x00\x00\x0cnot a TLS ClientHello at all").unwrap();
    let mut buf = [0u8; 256];
    // An alert, then the end; or a reset.
    let closed = loop {
        match sock.read(&mut buf) {
            Ok(0) | Err(_) => break true,
            Ok(_) => {}
        }
    };
    assert!(closed);
    let m = member.handle();
    assert!(eventually(
        || block_on(m.stats()).unwrap().driver.handshake_failures >= 1
    ));
    member.shutdown();
}
