//! Real nodes on loopback as a [`Cluster`], for any transport with a
//! [`Launcher`].

use crate::{Cluster, Recv};
use bytes::Bytes;
use epidemic_core::crdt::PNCounter;
use epidemic_core::metadata::{self, Context, FullPrefix};
use epidemic_core::node::{BroadcastId, ChannelConfig, ChannelHandler, ChannelId};
use epidemic_driver::{Change, Delivery, Events, Handle};
use futures_lite::future::block_on;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

/// A raw connection to a node, after the transport's own setup.
pub trait RawConn {
    /// Sends bytes.
    fn send(&mut self, bytes: &[u8]);
    /// Ends the sending side.
    fn finish(&mut self);
    /// Waits up to `limit` for bytes or the end.
    fn recv(&mut self, limit: Duration) -> Recv;
}

/// A silent peer on loopback (see [`Launcher::raw_listen`]); dropping it
/// stops it and breaks its connections.
pub trait RawPeer {
    /// The address it listens on, which is also the identity it claims.
    fn addr(&self) -> SocketAddr;
}

/// Answers a dialler's hello from `decoder` + `stream` with an acceptance
/// naming `identity`, then reads and drops everything until the stream
/// ends or `stop` is set. What a [`RawPeer`] does with every connection, on
/// any blocking stream whose reads time out.
pub fn serve_silently(
    stream: &mut (impl io::Read + io::Write),
    identity: SocketAddr,
    stop: &std::sync::atomic::AtomicBool,
) {
    use epidemic_driver::codec::{FrameDecoder, HANDSHAKE_MAX};
    use std::sync::atomic::Ordering;
    let mut decoder = FrameDecoder::new(HANDSHAKE_MAX);
    let mut buf = [0u8; 4096];
    let mut answered = false;
    while !stop.load(Ordering::Relaxed) {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) if !answered => {
                decoder.extend(&buf[..n]).unwrap();
                if let Ok(Some(_hello)) = decoder.next_record() {
                    let ack = crate::accept_record(identity);
                    if stream.write_all(&ack).and_then(|()| stream.flush()).is_err() {
                        return;
                    }
                    answered = true;
                }
            }
            Ok(_) => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
    }
}

/// Starts nodes of one transport.
pub trait Launcher {
    /// A running node; dropping it must stop it abruptly (a crash).
    type Node;

    /// Starts a node listening on `listen` with its store in `data_dir`,
    /// joining through `contacts`.
    fn launch(&mut self, listen: SocketAddr, data_dir: &Path, contacts: Vec<SocketAddr>) -> io::Result<Self::Node>;

    /// The node's handle.
    fn handle(node: &Self::Node) -> &Handle;

    /// Opens a raw connection to the node at `addr`, with valid credentials.
    fn raw_connect(&mut self, addr: SocketAddr) -> Box<dyn RawConn>;

    /// Starts a silent peer on a fresh loopback port: with valid
    /// credentials, it completes the transport's setup and the node's
    /// handshake on every connection a node dials to it (claiming its
    /// address as its identity, at incarnation 1), then reads and drops
    /// everything and never answers.
    fn raw_listen(&mut self) -> Box<dyn RawPeer>;
}

struct Slot<N> {
    node: Option<N>,
    dir: tempfile::TempDir,
    handle: Handle,
    events: Events<Delivery>,
    /// Broadcasts delivered (or originated) in this life, with counts.
    delivered: HashMap<BroadcastId<SocketAddr>, u32>,
}

/// Nodes of one transport on `127.0.0.1`.
pub struct NetCluster<L: Launcher> {
    launcher: L,
    slots: Vec<Slot<L::Node>>,
    addrs: Vec<SocketAddr>,
    raws: Vec<Box<dyn RawConn>>,
    peers: Vec<Box<dyn RawPeer>>,
    subs: Vec<Events<Change>>,
    duplicates: usize,
    scale: usize,
}

/// How often conditions are polled.
const POLL: Duration = Duration::from_millis(20);

impl<L: Launcher> NetCluster<L> {
    /// An empty cluster; scenarios use 8 nodes.
    pub fn new(launcher: L) -> Self {
        NetCluster {
            launcher,
            slots: Vec::new(),
            addrs: Vec::new(),
            raws: Vec::new(),
            peers: Vec::new(),
            subs: Vec::new(),
            duplicates: 0,
            scale: 8,
        }
    }

    /// The launcher, to start nodes outside the cluster.
    pub fn launcher(&mut self) -> &mut L {
        &mut self.launcher
    }

    /// The handle of node `ix`.
    pub fn handle(&self, ix: usize) -> &Handle {
        &self.slots[ix].handle
    }

    /// The identity (address) of node `ix`.
    pub fn addr(&self, ix: usize) -> SocketAddr {
        self.addrs[ix]
    }

    fn slot(&mut self, node: L::Node, dir: tempfile::TempDir) -> Slot<L::Node> {
        let handle = L::handle(&node).clone();
        Slot {
            dir,
            events: handle.deliveries(),
            handle,
            node: Some(node),
            delivered: HashMap::new(),
        }
    }

    /// Moves node `ix`'s pending events into its delivery record.
    fn pump(&mut self, ix: usize) {
        let slot = &mut self.slots[ix];
        while let Some(delivery) = slot.events.try_next() {
            // A lag would hide deliveries (and duplicates): fail loudly.
            let Delivery { id, .. } = delivery.expect("the conformance suite reads every delivery");
            let n = slot.delivered.entry(id).or_insert(0);
            *n += 1;
            if *n > 1 {
                self.duplicates += 1;
            }
        }
    }

    /// Starts crashed node `ix` again on its address with `dir` as its store.
    fn relaunch(&mut self, ix: usize, contact: usize, dir: tempfile::TempDir) {
        let (addr, contact) = (self.addrs[ix], self.addrs[contact]);
        // The old sockets are closed by now; a port can still be held for
        // a moment, so retry briefly.
        let deadline = Instant::now() + Duration::from_secs(5);
        let node = loop {
            match self.launcher.launch(addr, dir.path(), vec![contact]) {
                Ok(node) => break node,
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                Err(e) => panic!("restarting on {addr}: {e}"),
            }
        };
        self.slots[ix] = self.slot(node, dir);
    }

    fn index(&self, addr: &SocketAddr) -> Option<usize> {
        self.addrs.iter().position(|a| a == addr)
    }
}

impl<L: Launcher> Cluster for NetCluster<L> {
    type Id = BroadcastId<SocketAddr>;
    type Identity = SocketAddr;

    fn fake_identity(&self) -> SocketAddr {
        crate::scenarios::raw_identity()
    }

    fn scale(&self) -> usize {
        self.scale
    }

    fn add_node(&mut self) -> usize {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let node = self
            .launcher
            .launch("127.0.0.1:0".parse().expect("valid address"), dir.path(), Vec::new())
            .expect("a node starts on a free loopback port");
        self.addrs.push(L::handle(&node).identity());
        let slot = self.slot(node, dir);
        self.slots.push(slot);
        self.slots.len() - 1
    }

    fn join(&mut self, ix: usize, contact: usize) {
        let contact = self.addrs[contact];
        block_on(self.slots[ix].handle.join([contact])).expect("node running");
    }

    fn broadcast(&mut self, ix: usize, payload: Bytes) -> Self::Id {
        let id = block_on(self.slots[ix].handle.broadcast(payload)).expect("node running, small payload");
        self.slots[ix].delivered.insert(id.clone(), 1);
        id
    }

    fn has_delivered(&mut self, ix: usize, id: &Self::Id) -> bool {
        self.pump(ix);
        self.slots[ix].delivered.contains_key(id)
    }

    fn duplicates(&mut self) -> usize {
        for ix in 0..self.slots.len() {
            self.pump(ix);
        }
        self.duplicates
    }

    fn neighbors(&mut self, ix: usize) -> Vec<usize> {
        if !self.is_alive(ix) {
            return Vec::new();
        }
        let addrs = block_on(self.slots[ix].handle.neighbors()).unwrap_or_default();
        // An address outside the cluster maps past its end, so that it is
        // never mistaken for a member.
        addrs.iter().map(|a| self.index(a).unwrap_or(usize::MAX)).collect()
    }

    fn is_alive(&self, ix: usize) -> bool {
        self.slots[ix].node.is_some()
    }

    fn crash(&mut self, ix: usize) {
        drop(self.slots[ix].node.take());
    }

    fn shut_down(&mut self, ix: usize) {
        let slot = &mut self.slots[ix];
        if let Some(node) = slot.node.take() {
            block_on(slot.handle.shutdown()).expect("the node was running");
            drop(node);
        }
    }

    fn restart(&mut self, ix: usize, contact: usize) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        self.relaunch(ix, contact, dir);
    }

    fn restart_from_disk(&mut self, ix: usize, contact: usize) {
        let dir = std::mem::replace(
            &mut self.slots[ix].dir,
            tempfile::tempdir().expect("a temporary directory"),
        );
        self.relaunch(ix, contact, dir);
    }

    fn put(&mut self, ix: usize, prefix: &FullPrefix, key: &str, value: &str) -> bool {
        block_on(self.slots[ix].handle.put(prefix, key, value, None)).is_ok()
    }

    fn context(&mut self, ix: usize, prefix: &FullPrefix, key: &str) -> Option<Context<SocketAddr>> {
        Some(block_on(self.slots[ix].handle.get(prefix, key)).ok()??.into_context())
    }

    fn put_with(
        &mut self,
        ix: usize,
        prefix: &FullPrefix,
        key: &str,
        value: &str,
        context: Option<Context<SocketAddr>>,
    ) -> bool {
        block_on(self.slots[ix].handle.put(prefix, key, value, context)).is_ok()
    }

    fn get_repaired(&mut self, ix: usize, prefix: &FullPrefix, key: &str) -> Option<Bytes> {
        block_on(self.slots[ix].handle.get_resolved_and_repair(prefix, key)).expect("node running, small repair write")
    }

    fn put_typed<T: Serialize>(&mut self, ix: usize, prefix: &FullPrefix, key: &str, value: &T) -> bool {
        block_on(self.slots[ix].handle.put_typed(prefix, key, value, None)).is_ok()
    }

    fn get_typed<T: DeserializeOwned>(&mut self, ix: usize, prefix: &FullPrefix, key: &str) -> Option<T> {
        block_on(self.slots[ix].handle.get_typed(prefix, key))
            .expect("node running, a stored value of the type written")
    }

    fn siblings(&mut self, ix: usize, prefix: &FullPrefix, key: &str) -> Option<Vec<Bytes>> {
        let read = block_on(self.slots[ix].handle.get(prefix, key)).ok()??;
        let mut live: Vec<Bytes> = read.live().cloned().collect();
        live.sort();
        Some(live)
    }

    fn register_channel(
        &mut self,
        ix: usize,
        channel: ChannelId,
        handler: Box<dyn ChannelHandler<SocketAddr>>,
        config: ChannelConfig,
    ) -> bool {
        block_on(self.slots[ix].handle.register_channel(channel, handler, config)).is_ok()
    }

    fn broadcast_on(&mut self, ix: usize, channel: ChannelId, id: Bytes, payload: Bytes) -> bool {
        block_on(self.slots[ix].handle.broadcast_on(channel, id, payload)).is_ok()
    }

    fn members(&mut self, ix: usize) -> Vec<usize> {
        if !self.is_alive(ix) {
            return Vec::new();
        }
        let addrs = block_on(self.slots[ix].handle.members()).unwrap_or_default();
        addrs.iter().map(|a| self.index(a).unwrap_or(usize::MAX)).collect()
    }

    fn add_member(&mut self, ix: usize, member: usize) -> bool {
        block_on(self.slots[ix].handle.add_member(self.addrs[member])).is_ok()
    }

    fn remove_member(&mut self, ix: usize, member: usize) -> bool {
        block_on(self.slots[ix].handle.remove_member(self.addrs[member])).is_ok()
    }

    fn delete(&mut self, ix: usize, prefix: &FullPrefix, key: &str) -> bool {
        let handle = &self.slots[ix].handle;
        let Ok(read) = block_on(handle.get(prefix, key)) else {
            return false;
        };
        block_on(handle.delete(prefix, key, read.map(|r| r.into_context()))).is_ok()
    }

    fn metadata_stats(&mut self, ix: usize) -> Option<metadata::Stats> {
        if !self.is_alive(ix) {
            return None;
        }
        Some(block_on(self.slots[ix].handle.stats()).ok()?.node.metadata)
    }

    fn subscribe(&mut self, ix: usize, prefix: &FullPrefix) -> usize {
        let events = block_on(self.slots[ix].handle.subscribe(prefix)).expect("node running");
        self.subs.push(events);
        self.subs.len() - 1
    }

    fn changes(&mut self, sub: usize) -> Vec<Change> {
        let mut out = Vec::new();
        while let Some(change) = self.subs[sub].try_next() {
            out.push(change.expect("the conformance suite reads every change"));
        }
        out
    }

    fn increment(&mut self, ix: usize, prefix: &FullPrefix, key: &str) -> bool {
        let me = self.addrs[ix];
        let update = self.slots[ix]
            .handle
            .update_typed::<PNCounter<SocketAddr>, _>(prefix, key, |c| c.increment(me));
        block_on(update).is_ok()
    }

    fn wait_until(&mut self, limit: Duration, mut cond: impl FnMut(&mut Self) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if cond(self) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(POLL);
        }
    }

    fn raw_open(&mut self, ix: usize) -> usize {
        let conn = self.launcher.raw_connect(self.addrs[ix]);
        self.raws.push(conn);
        self.raws.len() - 1
    }

    fn raw_peer(&mut self) -> SocketAddr {
        let peer = self.launcher.raw_listen();
        let addr = peer.addr();
        self.peers.push(peer);
        addr
    }

    fn raw_send(&mut self, raw: usize, bytes: &[u8]) {
        self.raws[raw].send(bytes);
    }

    fn raw_finish(&mut self, raw: usize) {
        self.raws[raw].finish();
    }

    fn raw_recv(&mut self, raw: usize, limit: Duration) -> Recv {
        self.raws[raw].recv(limit)
    }

    fn bad_input(&mut self, ix: usize) -> Option<u64> {
        let stats = block_on(self.slots[ix].handle.stats()).ok()?;
        Some(stats.driver.bad_input + stats.driver.handshake_failures)
    }

    fn stop(&mut self) {
        self.subs.clear();
        self.raws.clear();
        self.peers.clear();
        for slot in &mut self.slots {
            if let Some(node) = slot.node.take() {
                let _ = block_on(slot.handle.shutdown());
                drop(node);
            }
        }
    }
}

impl<L: Launcher> Drop for NetCluster<L> {
    fn drop(&mut self) {
        // After a failed assertion too: no node outlives its test.
        self.raws.clear();
        self.peers.clear();
        for slot in &mut self.slots {
            drop(slot.node.take());
        }
    }
}
