//! A peer that completes its handshake and then falls silent (a stopped
//! process whose kernel still answers TCP keepalives) is reported down
//! after the liveness timeout, and the node's own keepalives keep a quiet
//! but healthy link open.

use epidemic_driver::codec::{Hello, PREFIX_LEN, encode_record};
use epidemic_tcp::{Duration, TcpConfig, TcpNode, block_on};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Instant;

fn lo() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn node(liveness: Duration) -> TcpNode {
    let mut config = TcpConfig::insecure_plaintext(lo());
    config.driver.liveness_timeout = liveness;
    TcpNode::start(config).unwrap()
}

/// Dials `node` as `claimed`, says hello, and reads the acknowledgement.
fn handshake(node: &TcpNode, claimed: SocketAddr) -> TcpStream {
    let mut raw = TcpStream::connect(node.identity()).unwrap();
    let mut hello = Vec::new();
    encode_record(&Hello::new(claimed, 7).encode(), &mut hello);
    raw.write_all(&hello).unwrap();
    let mut len = [0u8; PREFIX_LEN];
    raw.read_exact(&mut len).unwrap();
    let mut ack = vec![0u8; u32::from_be_bytes(len) as usize];
    raw.read_exact(&mut ack).unwrap();
    raw
}

#[test]
fn a_silent_peer_is_dropped_after_the_liveness_timeout() {
    let node = node(Duration::from_millis(600));
    // An identity nobody answers at, so a re-dial fails rather than
    // bringing the peer back.
    let gone = TcpListener::bind(lo()).unwrap().local_addr().unwrap();
    let mut raw = handshake(&node, gone);
    raw.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
    // The node sends keepalives while it has nothing else for us ([len 1][0]),
    // then closes the link once we have been silent for 600 ms.
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        match raw.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => received.extend_from_slice(&buf[..n]),
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "never closed");
    }
    assert!(
        received.windows(5).any(|w| w == [0, 0, 0, 1, 0]),
        "no keepalive record among {received:?}"
    );
    // The socket closes before the loop has counted the link down: wait.
    let deadline = Instant::now() + std::time::Duration::from_secs(20);
    let mut stats = block_on(node.handle().stats()).unwrap();
    while stats.driver.links_failed == 0 && Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
        stats = block_on(node.handle().stats()).unwrap();
    }
    assert_eq!(stats.driver.links_failed, 1, "{:?}", stats.driver);
    node.shutdown_blocking().unwrap();
}

#[test]
fn keepalives_hold_a_quiet_link_between_two_nodes() {
    // Two seconds: a keepalive every 667 ms, so only a stall of over a
    // second on a loaded machine could break the link.
    let (a, b) = (node(Duration::from_secs(2)), node(Duration::from_secs(2)));
    block_on(b.handle().join([a.identity()])).unwrap();
    let deadline = Instant::now() + std::time::Duration::from_secs(20);
    while block_on(a.handle().neighbors()).unwrap().is_empty() && Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(block_on(a.handle().neighbors()).unwrap(), [b.identity()]);
    // Two and a half liveness timeouts with nothing but membership
    // traffic (a shuffle every 10 s): the keepalives keep the link up.
    std::thread::sleep(std::time::Duration::from_millis(5000));
    assert_eq!(block_on(a.handle().neighbors()).unwrap(), [b.identity()]);
    let stats = block_on(a.handle().stats()).unwrap();
    assert_eq!(stats.driver.links_failed, 0, "{:?}", stats.driver);
    b.shutdown_blocking().unwrap();
    a.shutdown_blocking().unwrap();
}
