//! Connections that never finish their handshake (a slowloris: no
//! certificate needed, only a TCP connect) cannot keep a joiner out: they
//! hold handshake slots, bounded in all and per address, never the links.

use epidemic_tcp::{TcpConfig, TcpNode, block_on};
use socket2::{Domain, Socket, Type};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

fn lo() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A TCP connection to `to` from 127.0.0.2 (Linux routes all of 127/8 to
/// loopback), which then says nothing.
fn silent_connection(to: SocketAddr) -> Option<TcpStream> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).ok()?;
    let from: SocketAddr = "127.0.0.2:0".parse().unwrap();
    socket.bind(&from.into()).ok()?;
    socket.connect_timeout(&to.into(), Duration::from_millis(500)).ok()?;
    Some(socket.into())
}

#[test]
fn a_joiner_gets_in_while_500_connections_stall_their_handshakes() {
    let contact = TcpNode::start(TcpConfig::insecure_plaintext(lo())).unwrap();
    let target = contact.identity();
    let stop = Arc::new(AtomicBool::new(false));
    // Keep 500 silent connections open, reopening what the node closes.
    let attacker = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut open: Vec<TcpStream> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                open.retain(|c| {
                    let mut probe = [0u8; 1];
                    c.set_nonblocking(true).ok();
                    !matches!(std::io::Read::read(&mut &*c, &mut probe), Ok(0))
                });
                while open.len() < 500 {
                    match silent_connection(target) {
                        Some(c) => open.push(c),
                        None => break,
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            open.len()
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let mut config = TcpConfig::insecure_plaintext(lo());
    config.contacts = vec![target];
    let joiner = TcpNode::start(config).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let joined = loop {
        let neighbors = block_on(joiner.handle().neighbors()).unwrap();
        if neighbors == [target] {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    stop.store(true, Ordering::Relaxed);
    let held = attacker.join().unwrap();
    let stats = block_on(contact.handle().stats()).unwrap().driver;
    assert!(joined, "the joiner never got a link; contact stats {stats:?}");
    assert!(held > 0, "the attack opened no connection");
    assert!(stats.handshakes_refused > 0, "{stats:?}");
    joiner.shutdown_blocking().unwrap();
    contact.shutdown_blocking().unwrap();
}
