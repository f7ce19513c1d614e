//! The in-memory bus as a [`Cluster`]: virtual time, deterministic by seed.
//!
//! The bus has no byte streams, so a raw connection here is emulated with
//! the driver's own codec: bytes are decoded into records exactly as a real
//! link would (handshake first, then frames), frames go to the node through
//! `handle_frame` from an identity outside the bus, and whatever a real
//! link would close on closes this one, with `LinkEvent::Down` for the node.

use crate::{Cluster, Recv};
use bytes::Bytes;
use epidemic_core::Duration as CoreDuration;
use epidemic_core::crdt::PNCounter;
use epidemic_core::metadata::{self, Change, Context, FullPrefix, SubscriptionId};
use epidemic_core::node::typed;
use epidemic_core::node::{BroadcastId, ChannelConfig, ChannelHandler, ChannelId, Config, LinkEvent};
use epidemic_driver::codec::{Ack, FrameDecoder, HANDSHAKE_MAX, Hello, encode_record};
use epidemic_mem::Observation;
use epidemic_mem::{Bus, BusConfig, Id};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// Identities of raw connections start here, far above any node's.
const RAW_BASE: Id = 1 << 30;

struct Raw {
    target: Id,
    me: Id,
    decoder: FrameDecoder,
    handshaken: bool,
    outbox: Vec<u8>,
    closed: bool,
}

/// A [`Bus`] of nodes with the default configuration.
pub struct MemCluster {
    bus: Bus,
    config: Config,
    /// Subscriptions: the node and its id for each, and what each received.
    subs: Vec<(Id, SubscriptionId)>,
    received: Vec<Vec<Change<Id>>>,
    raws: Vec<Raw>,
    refused: Vec<u64>,
    scale: usize,
}

impl MemCluster {
    /// An empty bus seeded with `seed`; scenarios use 20 nodes.
    pub fn new(seed: u64) -> Self {
        Self::with_config(seed, crate::scenarios::node_config(false))
    }

    /// An empty bus of nodes in full-mesh membership, seeded with `seed`.
    pub fn mesh(seed: u64) -> Self {
        Self::with_config(seed, crate::scenarios::node_config(true))
    }

    fn with_config(seed: u64, config: Config) -> Self {
        MemCluster {
            bus: Bus::new(BusConfig::seeded(seed)),
            config,
            subs: Vec::new(),
            received: Vec::new(),
            raws: Vec::new(),
            refused: Vec::new(),
            scale: 20,
        }
    }

    /// The bus, for what only the bus can do (partitions).
    pub fn bus(&mut self) -> &mut Bus {
        &mut self.bus
    }

    fn close_raw(&mut self, raw: usize, bad: bool) {
        let r = &mut self.raws[raw];
        if r.closed {
            return;
        }
        r.closed = true;
        let (target, me) = (r.target, r.me);
        if bad {
            self.refused[target as usize] += 1;
        }
        if r.handshaken {
            self.bus
                .with_node(target, |n, now| n.handle_link(now, me, LinkEvent::Down));
        }
    }
}

impl Cluster for MemCluster {
    type Id = BroadcastId<Id>;
    type Identity = Id;

    fn fake_identity(&self) -> Id {
        RAW_BASE - 1
    }

    fn scale(&self) -> usize {
        self.scale
    }

    fn add_node(&mut self) -> usize {
        self.refused.push(0);
        self.bus.add_nodes(1, &self.config) as usize
    }

    fn join(&mut self, ix: usize, contact: usize) {
        self.bus.join(ix as Id, [contact as Id]);
    }

    fn broadcast(&mut self, ix: usize, payload: Bytes) -> Self::Id {
        self.bus.broadcast(ix as Id, payload).expect("live node, small payload")
    }

    fn has_delivered(&mut self, ix: usize, id: &Self::Id) -> bool {
        self.bus.metrics().has_delivered(id, ix as Id)
    }

    fn duplicates(&mut self) -> usize {
        self.bus.metrics().total_duplicates()
    }

    fn neighbors(&mut self, ix: usize) -> Vec<usize> {
        self.bus
            .node(ix as Id)
            .map(|n| n.active_view().into_iter().map(|p| p as usize).collect())
            .unwrap_or_default()
    }

    fn is_alive(&self, ix: usize) -> bool {
        self.bus.is_alive(ix as Id)
    }

    fn crash(&mut self, ix: usize) {
        self.bus.crash(ix as Id);
    }

    fn shut_down(&mut self, ix: usize) {
        // The bus has no connections to close: the node leaves, its notices
        // go out, and it stops; its links then break as a crash's do.
        self.bus.with_node(ix as Id, |n, now| n.leave(now));
        self.bus.run_for(CoreDuration::from_millis(100));
        self.bus.crash(ix as Id);
    }

    fn restart(&mut self, ix: usize, contact: usize) {
        self.bus.restart(ix as Id, [contact as Id]);
    }

    fn restart_from_disk(&mut self, ix: usize, contact: usize) {
        self.bus.restart_from_disk(ix as Id, [contact as Id]);
    }

    fn put(&mut self, ix: usize, prefix: &FullPrefix, key: &str, value: &str) -> bool {
        // The bus's disk is synchronous: the put is durable once drained,
        // which `with_node` does.
        let value = Bytes::copy_from_slice(value.as_bytes());
        self.bus
            .with_node(ix as Id, |n, now| {
                n.put(now, prefix, key.as_bytes(), value, None).is_ok()
            })
            .unwrap_or(false)
    }

    fn context(&mut self, ix: usize, prefix: &FullPrefix, key: &str) -> Option<Context<Id>> {
        Some(self.bus.node(ix as Id)?.get(prefix, key.as_bytes())?.into_context())
    }

    fn put_with(
        &mut self,
        ix: usize,
        prefix: &FullPrefix,
        key: &str,
        value: &str,
        context: Option<Context<Id>>,
    ) -> bool {
        let value = Bytes::copy_from_slice(value.as_bytes());
        self.bus
            .with_node(ix as Id, |n, now| {
                n.put(now, prefix, key.as_bytes(), value, context.as_ref()).is_ok()
            })
            .unwrap_or(false)
    }

    fn get_repaired(&mut self, ix: usize, prefix: &FullPrefix, key: &str) -> Option<Bytes> {
        // What `Handle::get_resolved_and_repair` does, on the node itself.
        self.bus.with_node(ix as Id, |n, now| {
            let read = n.get(prefix, key.as_bytes())?;
            let resolved = n.get_resolved(prefix, key.as_bytes());
            if read.siblings() > 1 {
                let context = read.into_context();
                let r = match &resolved {
                    Some(v) => n.put(now, prefix, key.as_bytes(), v.clone(), Some(&context)),
                    None => n.delete(now, prefix, key.as_bytes(), Some(&context)),
                };
                r.expect("a small repair write");
            }
            resolved
        })?
    }

    fn put_typed<T: Serialize>(&mut self, ix: usize, prefix: &FullPrefix, key: &str, value: &T) -> bool {
        let value = typed::encode(value).expect("a value that encodes");
        self.bus
            .with_node(ix as Id, |n, now| {
                n.put(now, prefix, key.as_bytes(), value, None).is_ok()
            })
            .unwrap_or(false)
    }

    fn get_typed<T: DeserializeOwned>(&mut self, ix: usize, prefix: &FullPrefix, key: &str) -> Option<T> {
        let bytes = self.bus.node(ix as Id)?.get_resolved(prefix, key.as_bytes())?;
        Some(typed::decode(&bytes).expect("a stored value of the type written"))
    }

    fn siblings(&mut self, ix: usize, prefix: &FullPrefix, key: &str) -> Option<Vec<Bytes>> {
        let read = self.bus.node(ix as Id)?.get(prefix, key.as_bytes())?;
        let mut live: Vec<Bytes> = read.live().cloned().collect();
        live.sort();
        Some(live)
    }

    fn register_channel(
        &mut self,
        ix: usize,
        channel: ChannelId,
        handler: Box<dyn ChannelHandler<Id>>,
        config: ChannelConfig,
    ) -> bool {
        self.bus
            .with_node(ix as Id, |n, now| {
                n.register_channel(now, channel, handler, config).is_ok()
            })
            .unwrap_or(false)
    }

    fn broadcast_on(&mut self, ix: usize, channel: ChannelId, id: Bytes, payload: Bytes) -> bool {
        self.bus
            .with_node(ix as Id, |n, now| n.broadcast_on(now, channel, id, payload).is_ok())
            .unwrap_or(false)
    }

    fn members(&mut self, ix: usize) -> Vec<usize> {
        self.bus
            .node(ix as Id)
            .map(|n| n.members().into_iter().map(|m| m as usize).collect())
            .unwrap_or_default()
    }

    fn add_member(&mut self, ix: usize, member: usize) -> bool {
        self.bus
            .with_node(ix as Id, |n, now| {
                n.add_member(now, member as Id);
                n.is_member(&(member as Id))
            })
            .unwrap_or(false)
    }

    fn remove_member(&mut self, ix: usize, member: usize) -> bool {
        self.bus
            .with_node(ix as Id, |n, now| {
                n.remove_member(now, member as Id);
                !n.is_member(&(member as Id))
            })
            .unwrap_or(false)
    }

    fn delete(&mut self, ix: usize, prefix: &FullPrefix, key: &str) -> bool {
        self.bus
            .with_node(ix as Id, |n, now| {
                let context = n.get(prefix, key.as_bytes()).map(|r| r.into_context());
                n.delete(now, prefix, key.as_bytes(), context.as_ref()).is_ok()
            })
            .unwrap_or(false)
    }

    fn metadata_stats(&mut self, ix: usize) -> Option<metadata::Stats> {
        Some(self.bus.node(ix as Id)?.stats().metadata)
    }

    fn subscribe(&mut self, ix: usize, prefix: &FullPrefix) -> usize {
        // The bus reports changes only while it observes.
        self.bus.set_observing(true);
        let id = self
            .bus
            .with_node(ix as Id, |n, _| n.subscribe(prefix.clone()))
            .expect("a running node");
        self.subs.push((ix as Id, id));
        self.received.push(Vec::new());
        self.subs.len() - 1
    }

    fn changes(&mut self, sub: usize) -> Vec<Change<Id>> {
        for o in self.bus.take_observations() {
            if let Observation::Changed { at, change } = o {
                if let Some(i) = self
                    .subs
                    .iter()
                    .position(|&(n, id)| n == at && id == change.subscription)
                {
                    self.received[i].push(change);
                }
            }
        }
        std::mem::take(&mut self.received[sub])
    }

    fn increment(&mut self, ix: usize, prefix: &FullPrefix, key: &str) -> bool {
        self.bus
            .with_node(ix as Id, |n, now| {
                let context = n.get(prefix, key.as_bytes()).map(|r| r.into_context());
                let mut counter: PNCounter<Id> = match n.get_resolved(prefix, key.as_bytes()) {
                    Some(bytes) => typed::decode(&bytes).expect("a counter"),
                    None => PNCounter::default(),
                };
                counter.increment(ix as Id);
                let value = typed::encode(&counter).expect("a counter encodes");
                n.put(now, prefix, key.as_bytes(), value, context.as_ref()).is_ok()
            })
            .unwrap_or(false)
    }

    fn wait_until(&mut self, limit: Duration, mut cond: impl FnMut(&mut Self) -> bool) -> bool {
        let end = self.bus.now() + CoreDuration::from(limit);
        loop {
            if cond(self) {
                return true;
            }
            if self.bus.now() >= end {
                return false;
            }
            self.bus.run_for(CoreDuration::from_millis(10));
        }
    }

    fn raw_open(&mut self, ix: usize) -> usize {
        self.raws.push(Raw {
            target: ix as Id,
            me: RAW_BASE + self.raws.len() as Id,
            decoder: FrameDecoder::new(HANDSHAKE_MAX),
            handshaken: false,
            outbox: Vec::new(),
            closed: false,
        });
        self.raws.len() - 1
    }

    fn raw_peer(&mut self) -> std::net::SocketAddr {
        // A raw connection here is an identity outside the bus: frames the
        // nodes send to it vanish without a link failure, which is what a
        // silent peer is.
        crate::scenarios::raw_identity()
    }

    fn raw_send(&mut self, raw: usize, bytes: &[u8]) {
        if self.raws[raw].closed {
            return;
        }
        self.raws[raw].decoder.extend(bytes).unwrap();
        loop {
            let r = &mut self.raws[raw];
            let record = match r.decoder.next_record() {
                Ok(Some(record)) => record,
                Ok(None) => return,
                Err(_) => return self.close_raw(raw, true),
            };
            if !r.handshaken {
                if Hello::decode(&record).is_err() {
                    return self.close_raw(raw, true);
                }
                r.handshaken = true;
                r.decoder.set_max(epidemic_core::wire::DEFAULT_MAX_FRAME);
                let ack = Ack::Accept {
                    identity: crate::scenarios::raw_identity(),
                    incarnation: 0,
                };
                encode_record(&ack.encode(), &mut r.outbox);
                continue;
            }
            if record.is_empty() {
                // Goodbye.
                return self.close_raw(raw, false);
            }
            let (target, me) = (r.target, r.me);
            let refused = self
                .bus
                .with_node(target, |n, now| n.handle_frame(now, me, &record).is_err())
                .unwrap_or(true);
            if refused {
                return self.close_raw(raw, true);
            }
        }
    }

    fn raw_finish(&mut self, raw: usize) {
        // The end of the stream: inside a record it is bad input; between
        // records, a link that broke.
        let partial = self.raws[raw].decoder.buffered() > 0;
        self.close_raw(raw, partial);
    }

    fn raw_recv(&mut self, raw: usize, _limit: Duration) -> Recv {
        let r = &mut self.raws[raw];
        if !r.outbox.is_empty() {
            Recv::Data(std::mem::take(&mut r.outbox))
        } else if r.closed {
            Recv::Closed
        } else {
            Recv::Nothing
        }
    }

    fn bad_input(&mut self, ix: usize) -> Option<u64> {
        self.refused.get(ix).copied()
    }

    fn stop(&mut self) {}
}
