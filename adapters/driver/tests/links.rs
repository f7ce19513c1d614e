//! The driver's link management over an in-memory transport: one
//! connection per peer when two nodes dial each other at the same moment.
#![cfg(not(loom))]

use epidemic_core::node::Event;
use epidemic_driver::{Accepting, BoxFuture, DriverConfig, Duplex, Handle, Runtime, Transport};
use futures_lite::future::block_on;
use smol::channel::{Receiver, Sender, unbounded};
use smol::lock::Barrier;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct SmolGlobal;

impl Runtime for SmolGlobal {
    fn spawn(&self, task: BoxFuture<()>) {
        smol::spawn(task).detach();
    }

    fn sleep(&self, d: Duration) -> BoxFuture<()> {
        Box::pin(async move {
            smol::Timer::after(d).await;
        })
    }
}

/// Listeners by address; every connection is a pair of in-memory pipes.
#[derive(Default)]
struct Net {
    listeners: Mutex<HashMap<SocketAddr, Sender<Duplex>>>,
}

struct PipeTransport {
    net: Arc<Net>,
    incoming: Receiver<Duplex>,
    /// The first dial waits here until every gated node has started its
    /// own: simultaneous dials, for certain.
    gate: Arc<Barrier>,
    gated: AtomicBool,
}

impl Transport for PipeTransport {
    fn connect(&self, peer: SocketAddr) -> BoxFuture<io::Result<Duplex>> {
        let net = self.net.clone();
        let gate = (!self.gated.swap(true, Ordering::SeqCst)).then(|| self.gate.clone());
        Box::pin(async move {
            if let Some(gate) = gate {
                gate.wait().await;
            }
            let listener = net.listeners.lock().unwrap().get(&peer).cloned();
            let listener = listener.ok_or(io::ErrorKind::ConnectionRefused)?;
            let (r1, w1) = piper::pipe(64 * 1024);
            let (r2, w2) = piper::pipe(64 * 1024);
            listener
                .send(Duplex::new(r1, w2))
                .await
                .map_err(|_| io::Error::from(io::ErrorKind::ConnectionRefused))?;
            Ok(Duplex::new(r2, w1))
        })
    }

    fn accept(&self) -> BoxFuture<io::Result<Accepting>> {
        let incoming = self.incoming.clone();
        Box::pin(async move {
            let duplex = incoming
                .recv()
                .await
                .map_err(|_| io::Error::from(io::ErrorKind::NotConnected))?;
            // Pipes have no source address; the logs show the unspecified one.
            Ok(Accepting {
                remote: ([0, 0, 0, 0], 0).into(),
                handshake: Box::pin(async move { Ok(duplex) }),
            })
        })
    }
}

fn node(net: &Arc<Net>, gate: &Arc<Barrier>, port: u16) -> Handle {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let (tx, rx) = unbounded();
    net.listeners.lock().unwrap().insert(addr, tx);
    let transport = PipeTransport {
        net: net.clone(),
        incoming: rx,
        gate: gate.clone(),
        gated: AtomicBool::new(false),
    };
    epidemic_driver::start(
        addr,
        DriverConfig::default(),
        Vec::new(),
        None,
        Arc::new(transport),
        Arc::new(SmolGlobal),
    )
}

fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[test]
fn simultaneous_dials_settle_on_one_connection() {
    let net = Arc::new(Net::default());
    let gate = Arc::new(Barrier::new(2));
    let (a, b) = (node(&net, &gate, 1000), node(&net, &gate, 2000));
    let (mut a_events, mut b_events) = (a.events(), b.events());
    // Each joins through the other: both dial at once (the gate holds each
    // dial until the other has started).
    block_on(a.join([b.identity()])).unwrap();
    block_on(b.join([a.identity()])).unwrap();

    let linked = |h: &Handle, peer| block_on(h.neighbors()).unwrap().contains(&peer);
    assert!(eventually(|| linked(&a, b.identity()) && linked(&b, a.identity())));
    let stats = |h: &Handle| block_on(h.stats()).unwrap().driver;
    assert!(
        eventually(|| stats(&a).open_links == 1 && stats(&b).open_links == 1),
        "one connection each: {:?} {:?}",
        stats(&a),
        stats(&b)
    );
    // Both dials were refused as duplicates by the other side, or one was
    // and the other's acceptance won: either way the crossing was seen.
    let (sa, sb) = (stats(&a), stats(&b));
    assert!(sa.duplicate_dials + sb.duplicate_dials >= 1, "{sa:?} {sb:?}");
    assert_eq!(sa.dial_failures + sb.dial_failures, 0, "a duplicate is not a failure");
    assert_eq!(sa.links_failed + sb.links_failed, 0);

    // The surviving connection carries traffic both ways.
    block_on(a.broadcast(&b"from a"[..])).unwrap();
    block_on(b.broadcast(&b"from b"[..])).unwrap();
    let delivered = |events: &mut epidemic_driver::Events, want: &[u8]| {
        eventually(|| {
            std::iter::from_fn(|| events.try_next())
                .any(|e| matches!(e, Event::Delivered { ref payload, .. } if &payload[..] == want))
        })
    };
    assert!(delivered(&mut b_events, b"from a"));
    assert!(delivered(&mut a_events, b"from b"));
    block_on(a.shutdown()).unwrap();
    block_on(b.shutdown()).unwrap();
}
