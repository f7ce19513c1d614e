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
    node_with(net, gate, port, DriverConfig::default())
}

fn node_with(net: &Arc<Net>, gate: &Arc<Barrier>, port: u16, config: DriverConfig) -> Handle {
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
        config,
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
                .any(|e| matches!(e, Ok(Event::Delivered { ref payload, .. }) if &payload[..] == want))
        })
    };
    assert!(delivered(&mut b_events, b"from a"));
    assert!(delivered(&mut a_events, b"from b"));
    block_on(a.shutdown()).unwrap();
    block_on(b.shutdown()).unwrap();
}

fn mesh_node(net: &Arc<Net>, port: u16) -> Handle {
    let mut config = DriverConfig::default();
    config.node = epidemic_core::node::Config::mesh(3);
    // A barrier of one holds no dial.
    node_with(net, &Arc::new(Barrier::new(1)), port, config)
}

#[test]
fn mesh_members_are_added_and_removed_through_the_handle() {
    let net = Arc::new(Net::default());
    let (a, b, c) = (mesh_node(&net, 3000), mesh_node(&net, 3001), mesh_node(&net, 3002));
    let (ia, ib, ic) = (a.identity(), b.identity(), c.identity());
    block_on(a.add_member(ib)).unwrap();
    block_on(a.add_member(ic)).unwrap();
    // Adding a member twice, or the node itself, changes nothing.
    block_on(a.add_member(ib)).unwrap();
    block_on(a.add_member(ia)).unwrap();

    let members = |h: &Handle| {
        let mut m = block_on(h.members()).unwrap();
        m.sort();
        m
    };
    let all = {
        let mut v = vec![ia, ib, ic];
        v.sort();
        v
    };
    assert!(
        eventually(|| [&a, &b, &c].iter().all(|h| members(h) == all)),
        "every node holds the three members: {:?} {:?} {:?}",
        members(&a),
        members(&b),
        members(&c)
    );
    // The mesh carries the store: a write at c reaches a.
    let prefix = epidemic_core::metadata::FullPrefix::new("mesh", "t");
    block_on(c.put(&prefix, "k", "from c", None)).unwrap();
    assert!(eventually(|| block_on(a.get_resolved(&prefix, "k"))
        .unwrap()
        .as_deref()
        == Some(&b"from c"[..])));

    // Both hold the same objects there, and a fold sees the one key.
    let hash = |h: &Handle| block_on(h.prefix_hash(&prefix)).unwrap();
    assert!(hash(&a).is_some());
    assert!(eventually(|| hash(&a) == hash(&c)));
    let before = hash(&a);
    block_on(a.put(&prefix, "k2", "from a", None)).unwrap();
    assert_ne!(hash(&a), before, "a write changes the hash");
    let keys = block_on(a.fold(&prefix, Vec::new(), |mut keys, k, read| {
        keys.push((k.clone(), read.siblings()));
        keys
    }))
    .unwrap();
    assert_eq!(keys, [(bytes::Bytes::from("k"), 1), (bytes::Bytes::from("k2"), 1)]);
    assert!(eventually(|| hash(&a) == hash(&b) && hash(&b) == hash(&c)));

    // b removes c; the removal spreads to a, and c learns it too.
    assert!(block_on(b.remove_member(ic)).unwrap(), "c was a member");
    let without_c = {
        let mut v = vec![ia, ib];
        v.sort();
        v
    };
    assert!(
        eventually(|| members(&a) == without_c && members(&b) == without_c),
        "c is removed everywhere: {:?} {:?}",
        members(&a),
        members(&b)
    );
    assert!(!block_on(a.remove_member(ic)).unwrap(), "c is no longer a member");
    for h in [a, b, c] {
        block_on(h.shutdown()).unwrap();
    }
}

#[test]
fn mesh_operations_on_a_hyparview_node_are_refused() {
    let net = Arc::new(Net::default());
    let gate = Arc::new(Barrier::new(1));
    let (a, b) = (node(&net, &gate, 4000), node(&net, &gate, 4001));
    assert_eq!(
        block_on(a.add_member(b.identity())),
        Err(epidemic_driver::Error::NotMesh)
    );
    assert_eq!(
        block_on(a.remove_member(b.identity())),
        Err(epidemic_driver::Error::NotMesh)
    );
    assert_eq!(block_on(a.members()).unwrap(), vec![a.identity()], "nothing was added");
    for h in [a, b] {
        block_on(h.shutdown()).unwrap();
    }
}

/// Two HyParView nodes linked over pipes.
fn pair(base: u16) -> (Handle, Handle) {
    let net = Arc::new(Net::default());
    let gate = Arc::new(Barrier::new(1));
    let (a, b) = (node(&net, &gate, base), node(&net, &gate, base + 1));
    block_on(b.join([a.identity()])).unwrap();
    assert!(eventually(|| block_on(a.neighbors()).unwrap().contains(&b.identity())));
    (a, b)
}

#[test]
fn keys_and_values_take_borrowed_and_owned_data_alike() {
    let (a, b) = pair(5000);
    let prefix = epidemic_core::metadata::FullPrefix::new("borrowed", "t");
    let name = String::from("by-str");
    let value = String::from("v-str");
    // Every form of key and value, borrowed and owned.
    block_on(a.put(&prefix, name.as_str(), value.as_str(), None)).unwrap();
    block_on(a.put(&prefix, &name[..3], &value, None)).unwrap();
    block_on(a.put(&prefix, name.clone(), value.clone(), None)).unwrap();
    block_on(a.put(&prefix, b"by-array", b"v-array", None)).unwrap();
    block_on(a.put(&prefix, &b"by-slice"[..], &b"v-slice"[..], None)).unwrap();
    block_on(a.put(&prefix, b"by-vec".to_vec(), b"v-vec".to_vec(), None)).unwrap();
    let key = bytes::Bytes::from("by-bytes");
    block_on(a.put(&prefix, &key, bytes::Bytes::from("v-bytes"), None)).unwrap();
    // Read back at the other node with another form of each key.
    let at_b = |k: &[u8]| block_on(b.get_resolved(&prefix, k)).unwrap();
    assert!(eventually(|| at_b(b"by-bytes").is_some()));
    let expect: [(&[u8], &[u8]); 6] = [
        (b"by-str", b"v-str"),
        (b"by-", b"v-str"),
        (b"by-array", b"v-array"),
        (b"by-slice", b"v-slice"),
        (b"by-vec", b"v-vec"),
        (b"by-bytes", b"v-bytes"),
    ];
    for (k, v) in expect {
        assert!(eventually(|| at_b(k).as_deref() == Some(v)), "{k:?}");
    }
    assert_eq!(block_on(b.get(&prefix, &name)).unwrap().unwrap().live().count(), 1);
    assert_eq!(
        block_on(b.get(&prefix, key)).unwrap().unwrap().lww().unwrap(),
        "v-bytes"
    );
    // Deletes take the same forms.
    block_on(a.delete(&prefix, name.as_str(), None)).unwrap();
    block_on(a.delete(&prefix, b"by-vec".to_vec(), None)).unwrap();
    assert!(eventually(|| at_b(b"by-str").is_none() && at_b(b"by-vec").is_none()));
    assert_eq!(at_b(b"by-array").as_deref(), Some(&b"v-array"[..]));
    for h in [a, b] {
        block_on(h.shutdown()).unwrap();
    }
}

#[test]
fn typed_values_cross_nodes_and_crdt_prefixes_merge() {
    use epidemic_core::crdt::GCounter;
    let (a, b) = pair(6000);
    let prefix = epidemic_core::metadata::FullPrefix::new("typed", "t");
    let port: (String, u16) = ("http".into(), 8080);
    block_on(a.put_typed(&prefix, "svc", &port, None)).unwrap();
    let at_b = || block_on(b.get_typed::<(String, u16)>(&prefix, "svc")).unwrap();
    assert!(eventually(|| at_b() == Some(port.clone())));
    let listed = block_on(b.list_typed::<(String, u16)>(&prefix)).unwrap();
    assert_eq!(listed, [(bytes::Bytes::from("svc"), port.clone())]);
    let read = block_on(b.get_typed_siblings::<(String, u16)>(&prefix, "svc"))
        .unwrap()
        .unwrap();
    assert_eq!(read.values(), std::slice::from_ref(&port));
    // A value of another type is a typed error, not a panic or garbage.
    block_on(a.put(&prefix, "raw", "\u{ff}\u{ff}\u{ff}", None)).unwrap();
    assert!(matches!(
        block_on(a.get_typed::<(String, u16)>(&prefix, "raw")),
        Err(epidemic_driver::Error::Typed(_))
    ));
    assert!(matches!(
        block_on(a.list_typed::<(String, u16)>(&prefix)),
        Err(epidemic_driver::Error::Typed(_))
    ));
    // Typed delete is the plain delete.
    block_on(a.delete(&prefix, "svc", None)).unwrap();
    assert!(eventually(|| at_b().is_none()));

    // A CRDT prefix registered through the handle on both nodes: counter
    // increments at both merge instead of overwriting.
    let counters = epidemic_core::metadata::FullPrefix::new("typed", "counters");
    for h in [&a, &b] {
        block_on(h.register_crdt_typed::<GCounter<SocketAddr>>(&counters)).unwrap();
    }
    let (ia, ib) = (a.identity(), b.identity());
    block_on(a.update_typed(&counters, "hits", |c: &mut GCounter<SocketAddr>| c.increment_by(ia, 2))).unwrap();
    block_on(b.update_typed(&counters, "hits", |c: &mut GCounter<SocketAddr>| c.increment_by(ib, 3))).unwrap();
    let total = |h: &Handle| {
        block_on(h.get_typed::<GCounter<SocketAddr>>(&counters, "hits"))
            .unwrap()
            .map(|c| c.value())
    };
    assert!(
        eventually(|| total(&a) == Some(5) && total(&b) == Some(5)),
        "{:?} {:?}",
        total(&a),
        total(&b)
    );
    for h in [a, b] {
        block_on(h.shutdown()).unwrap();
    }
}

#[test]
fn read_repair_with_a_resolver_of_ones_own_collapses_siblings() {
    let (a, b) = pair(7000);
    let prefix = epidemic_core::metadata::FullPrefix::new("repair", "t");
    block_on(a.put(&prefix, "k", "base", None)).unwrap();
    let read = |h: &Handle| block_on(h.get(&prefix, "k")).unwrap();
    let live = |h: &Handle| -> Vec<Vec<u8>> {
        let mut v: Vec<Vec<u8>> = read(h)
            .map(|r| r.live().map(|b| b.to_vec()).collect())
            .unwrap_or_default();
        v.sort();
        v
    };
    assert!(eventually(|| live(&b) == [b"base".to_vec()]));
    // Both overwrite the base with its context: siblings whatever the timing.
    let base = read(&a).unwrap().into_context();
    block_on(a.put(&prefix, "k", "from-a", Some(base.clone()))).unwrap();
    block_on(b.put(&prefix, "k", "from-b", Some(base))).unwrap();
    let both = [b"from-a".to_vec(), b"from-b".to_vec()];
    assert!(eventually(|| live(&a) == both && live(&b) == both));
    let resolved = block_on(b.resolve_and_repair(&prefix, "k", |values| {
        let mut v: Vec<&[u8]> = values.iter().map(|b| &b[..]).collect();
        v.sort();
        bytes::Bytes::from(v.join(&b"+"[..]))
    }))
    .unwrap();
    assert_eq!(resolved.as_deref(), Some(&b"from-a+from-b"[..]));
    let merged = [b"from-a+from-b".to_vec()];
    assert!(eventually(|| live(&a) == merged && live(&b) == merged));
    // With one value there is nothing to repair: the value comes back as is.
    let resolved = block_on(a.resolve_and_repair(&prefix, "k", |_| unreachable!("one value"))).unwrap();
    assert_eq!(resolved.as_deref(), Some(&b"from-a+from-b"[..]));
    assert_eq!(block_on(a.get_resolved_and_repair(&prefix, "absent")).unwrap(), None);
    for h in [a, b] {
        block_on(h.shutdown()).unwrap();
    }
}
