//! Bring your own runtime: three nodes over UDP, one plain thread each, no
//! async and no epidemic driver. The node is sans-IO, so the whole driver
//! is the loop in `drive`: hand in what arrived and the time, send what it
//! asks, sleep until its next timer. Run with
//! `cargo run -p epidemic-core --example udp_threads`.

use epidemic_core::{Config, Duration, Event, Node, time::MonotonicClock};
use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc::{Sender, channel};

/// A UDP datagram holds at most 65,507 bytes: frames, payloads and
/// objects are sized to fit one (and `Config::validate` checks they agree).
fn config(seed: u64) -> Config {
    let mut c = Config::mesh(3);
    c.seed = seed;
    c.max_frame = 65_000;
    c.plumtree.max_payload = 32 * 1024;
    c.metadata.max_value_len = 16 * 1024;
    c.metadata.max_object_len = 32 * 1024;
    c.metadata.plumtree.max_payload = 32 * 1024;
    c
}

// ---- the driver: 35 lines ----------------------------------------------------
fn drive(
    socket: UdpSocket,
    mut node: Node<SocketAddr>,
    contact: Option<SocketAddr>,
    mut say: Option<&str>,
    out: Sender<String>,
) {
    let clock = MonotonicClock::new();
    let mut buf = vec![0u8; 65_535];
    if let Some(contact) = contact {
        node.join(clock.now(), [contact]);
    }
    let started = clock.now();
    while clock.now().saturating_since(started) < Duration::from_secs(3) {
        // An application command: broadcast once there is someone to hear it.
        if let Some(text) = say.take_if(|_| !node.active_view().is_empty()) {
            node.broadcast(clock.now(), text.as_bytes().to_vec().into())
                .expect("small enough");
        }
        while let Some(t) = node.poll_transmit() {
            let _ = socket.send_to(&t.frame, t.to);
        }
        while let Some(event) = node.poll_event() {
            if let Event::Delivered { payload, .. } = event {
                let _ = out.send(String::from_utf8_lossy(&payload).into_owned());
            }
        }
        // Wake for the next datagram or the node's next timer.
        let wait = node
            .poll_timeout()
            .map_or(Duration::from_millis(50), |t| t.saturating_since(clock.now()));
        let wait = std::time::Duration::from(wait).clamp(
            std::time::Duration::from_millis(1),
            std::time::Duration::from_millis(50),
        );
        socket.set_read_timeout(Some(wait)).expect("a non-zero timeout");
        if let Ok((n, from)) = socket.recv_from(&mut buf) {
            // A bad datagram is refused by the node, which goes on.
            let _ = node.handle_frame(clock.now(), from, &buf[..n]);
        }
        node.handle_timeout(clock.now());
    }
}
// -----------------------------------------------------------------------------

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sockets: Vec<UdpSocket> = (0..3)
        .map(|_| UdpSocket::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()?;
    let addrs: Vec<SocketAddr> = sockets.iter().map(UdpSocket::local_addr).collect::<Result<_, _>>()?;
    let (tx, rx) = channel();
    let mut threads = Vec::new();
    for (i, socket) in sockets.into_iter().enumerate() {
        let node = Node::try_new(addrs[i], config(i as u64 + 1))?;
        // Node 2 says hello (and never delivers its own broadcast).
        let say = (i == 2).then_some("hello over UDP");
        let (tx, contact) = (tx.clone(), (i > 0).then_some(addrs[0]));
        threads.push(std::thread::spawn(move || drive(socket, node, contact, say, tx)));
    }
    drop(tx);
    for t in threads {
        t.join().expect("a driver thread panicked");
    }
    let delivered: Vec<String> = rx.iter().collect();
    println!("delivered {delivered:?}");
    assert_eq!(
        delivered,
        ["hello over UDP", "hello over UDP"],
        "nodes 0 and 1 each delivered it once"
    );
    Ok(())
}
