//! The conformance suite over TCP with mutual TLS, on loopback, with the
//! durability and credential tests, and what only TCP has: bytes that are
//! not TLS at all.

use epidemic_conformance::Cluster;
use epidemic_conformance::net::NetCluster;
use epidemic_conformance::scenarios::CLOSE_LIMIT;
use epidemic_conformance::tcp::Tcp;
use futures_lite::future::block_on;
use std::io::{ErrorKind, Read, Write};
use std::time::Instant;

epidemic_conformance::suite!(Tcp::tls_cluster());
epidemic_conformance::mesh_suite!(Tcp::tls_mesh_cluster());
epidemic_conformance::durability_suite!(Tcp::tls());
epidemic_conformance::credentials_suite!(Tcp::tls());

/// A plain TCP client that sends bytes that are no TLS ClientHello: the
/// node closes the connection (an alert, then the end; or a reset) and
/// counts the refused handshake.
#[test]
fn bytes_that_are_not_tls_close_the_connection() {
    let mut c = NetCluster::new(Tcp::tls());
    let member = c.add_node();
    let mut sock = std::net::TcpStream::connect(c.addr(member)).expect("the node accepts connections");
    sock.set_read_timeout(Some(CLOSE_LIMIT / 10)).expect("a read timeout");
    sock.write_all(b"\x00\x00\x00\x0cnot a TLS ClientHello at all")
        .expect("the bytes are sent");
    let deadline = Instant::now() + CLOSE_LIMIT;
    let mut buf = [0u8; 256];
    let closed = loop {
        match sock.read(&mut buf) {
            Ok(0) => break true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if Instant::now() >= deadline {
                    break false;
                }
            }
            Err(_) => break true,
        }
    };
    assert!(closed, "the node kept a connection that is not TLS open");
    let refused = c.wait_until(CLOSE_LIMIT, |c| {
        block_on(c.handle(member).stats()).is_ok_and(|s| s.driver.handshake_failures >= 1)
    });
    assert!(refused, "the refused handshake was not counted");
    c.stop();
}
