//! Backpressure never reaches the node's loop: a neighbour that stops
//! reading fills its own bounded queue, the overflow is dropped and
//! counted, and the node keeps serving everyone else at full speed.

use bytes::Bytes;
use epidemic_core::membership::hyparview;
use epidemic_core::node::Event;
use epidemic_core::node::Message;
use epidemic_core::wire::DEFAULT_MAX_FRAME;
use epidemic_driver::DriverConfig;
use epidemic_driver::codec::{Ack, FrameDecoder, HANDSHAKE_MAX, Hello, encode_record};
use epidemic_tcp::{TcpConfig, TcpNode};
use futures_lite::future::block_on;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

#[test]
fn a_neighbour_that_never_reads_costs_dropped_frames_not_a_stalled_node() {
    let lo: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut driver = DriverConfig::default();
    // Small per-peer queues, so the test fills one quickly.
    driver.peer_queue_frames = 64;
    driver.peer_queue_bytes = 1 << 20;
    let mut config = TcpConfig::insecure_plaintext(lo);
    config.driver = driver;
    let a = TcpNode::start(config).unwrap();
    let mut config = TcpConfig::insecure_plaintext(lo);
    config.contacts = vec![a.identity()];
    let c = TcpNode::start(config).unwrap();
    assert!(eventually(|| block_on(a.handle().neighbors())
        .unwrap()
        .contains(&c.identity())));

    // The black hole: a raw connection that says hello as 127.0.0.1:9,
    // joins (so it becomes a neighbour of `a` and gets every broadcast
    // pushed to it), then never reads again.
    let hole_id: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let mut hole = TcpStream::connect(a.identity()).unwrap();
    let mut out = Vec::new();
    encode_record(&Hello::new(hole_id, 1).encode(), &mut out);
    let join: Message<SocketAddr> = Message::HyParView(hyparview::Message::Join);
    let mut frame = Vec::new();
    join.encode_into(DEFAULT_MAX_FRAME, &mut frame).unwrap();
    encode_record(&frame, &mut out);
    hole.write_all(&out).unwrap();
    let mut decoder = FrameDecoder::new(HANDSHAKE_MAX);
    let mut buf = [0u8; 512];
    let ack = loop {
        if let Some(r) = decoder.next_record().unwrap() {
            break r;
        }
        let n = hole.read(&mut buf).unwrap();
        assert!(n > 0, "the node hung up");
        decoder.extend(&buf[..n]).unwrap();
    };
    assert!(matches!(Ack::decode(&ack), Ok(Ack::Accept { .. })));
    assert!(eventually(|| block_on(a.handle().neighbors())
        .unwrap()
        .contains(&hole_id)));

    // 400 broadcasts of 64 KiB (25 MiB), each waited for at `c`: far more
    // than the black hole's socket buffers and queue hold.
    let mut events = c.handle().events();
    let payload = Bytes::from(vec![7u8; 64 * 1024]);
    for i in 0..400u32 {
        let started = Instant::now();
        let id = block_on(a.handle().broadcast(payload.clone())).unwrap();
        assert!(
            eventually(|| std::iter::from_fn(|| events.try_next())
                .any(|e| matches!(e, Ok(Event::Delivered { id: ref d, .. }) if *d == id))),
            "broadcast {i} did not reach the healthy neighbour"
        );
        // Not a timing assertion: a generous bound that only a loop
        // blocked behind the black hole would break.
        assert!(started.elapsed() < Duration::from_secs(10), "broadcast {i} stalled");
    }
    let stats = block_on(a.handle().stats()).unwrap().driver;
    assert!(
        stats.queue_overflows > 0,
        "the black hole's queue overflowed: {stats:?}"
    );
    // The black hole is still a neighbour: backpressure is not a failure.
    assert!(block_on(a.handle().neighbors()).unwrap().contains(&hole_id));
    drop(hole);
    a.shutdown_blocking().expect("a was running");
    c.shutdown_blocking().expect("c was running");
}
