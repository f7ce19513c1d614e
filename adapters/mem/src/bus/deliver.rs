//! Delivery: moving a node's outputs (frames, events, persist records,
//! deadlines) onto the bus, and handing frames and link events to nodes.

use crate::Id;
use epidemic_core::Duration;
use epidemic_core::node::{Event, LinkEvent, Node};
use rand::Rng;
use std::cmp::Reverse;

use super::Bus;
use super::config::{Latency, Observation};
use super::queue::What;

impl Bus {
    pub(super) fn latency(&mut self) -> Duration {
        match self.config.latency {
            Latency::Fixed(d) => d,
            Latency::Uniform { min, max } => Duration::from_micros(
                self.rng
                    .random_range(min.as_micros()..=max.as_micros().max(min.as_micros())),
            ),
        }
    }

    /// Moves a node's outputs onto the bus.
    pub(super) fn drain(&mut self, id: Id) {
        let now = self.now;
        let mut persisted = Vec::new();
        let from_inc = self.slots[id as usize].incarnation;
        loop {
            let Some(node) = self.slots[id as usize].node.as_mut() else {
                return;
            };
            let Some(t) = node.poll_transmit() else { break };
            if self.config.drop_probability > 0.0 && self.rng.random_bool(self.config.drop_probability) {
                self.dropped_frames += 1;
                continue;
            }
            let mut at = now + self.latency();
            let arrivals = &mut self.slots[id as usize].arrivals;
            arrivals.retain(|&(_, last)| last > now);
            match arrivals.iter_mut().find(|(to, _)| *to == t.to) {
                Some((_, last)) => {
                    at = at.max(*last);
                    *last = at;
                }
                None => arrivals.push((t.to, at)),
            }
            let to_inc = self.slots.get(t.to as usize).map_or(0, |s| s.incarnation);
            self.push(
                at,
                What::Frame {
                    from: id,
                    to: t.to,
                    from_inc,
                    to_inc,
                    frame: t.frame,
                },
            );
        }
        loop {
            let Some(node) = self.slots[id as usize].node.as_mut() else {
                return;
            };
            let Some(event) = node.poll_event() else { break };
            match &event {
                Event::Delivered { id: bid, hops, .. } => {
                    self.metrics.delivered(bid, id, *hops, now);
                    if let Some(log) = &mut self.observations {
                        log.push(Observation::Delivered {
                            at: id,
                            incarnation: from_inc,
                            id: bid.clone(),
                        });
                    }
                }
                Event::Metadata(epidemic_core::metadata::Event::Persist(record)) => persisted.push(record.clone()),
                Event::Metadata(epidemic_core::metadata::Event::PutDurable(put)) => {
                    if let Some(log) = &mut self.observations {
                        log.push(Observation::PutDurable { at: id, put: *put });
                    }
                }
                Event::Metadata(epidemic_core::metadata::Event::Changed(change)) => {
                    if let Some(log) = &mut self.observations {
                        log.push(Observation::Changed {
                            at: id,
                            change: change.clone(),
                        });
                    }
                }
                _ => {}
            }
        }
        if !persisted.is_empty() {
            // A synchronous disk: write, confirm, and drain what the
            // confirmations release.
            let slot = &mut self.slots[id as usize];
            for record in &persisted {
                if let (None, Some(log)) = (&record.object, &mut self.observations) {
                    if let Some(object) = slot.disk.get(&record.prefix, &record.key) {
                        log.push(Observation::Collected {
                            at: id,
                            prefix: record.prefix.clone(),
                            key: record.key.clone(),
                            object: object.clone(),
                        });
                    }
                }
                slot.disk.apply(record);
            }
            if let Some(node) = slot.node.as_mut() {
                for record in persisted {
                    node.persisted(now, record.id);
                }
            }
            return self.drain(id);
        }
        let slot = &mut self.slots[id as usize];
        if let Some(deadline) = slot.node.as_ref().and_then(Node::poll_timeout) {
            if slot.armed != Some(deadline) {
                slot.armed = Some(deadline);
                self.timers.push(Reverse((deadline, id, slot.incarnation)));
            }
        }
        // Every input ends here: the node may have work now.
        if !slot.touched {
            slot.touched = true;
            self.touched.push(id);
        }
    }

    pub(super) fn deliver(&mut self, what: What) {
        let now = self.now;
        match what {
            What::Frame {
                from,
                to,
                from_inc,
                to_inc,
                frame,
            } => {
                let Some(to_slot) = self.slots.get(to as usize) else {
                    return;
                };
                let sender_alive = self.slots[from as usize].incarnation == from_inc && self.is_alive(from);
                if !sender_alive {
                    // Sent by a past life: its connection died with it.
                    self.lost_frames += 1;
                    return;
                }
                if to_slot.node.is_none() || to_slot.incarnation != to_inc || self.partitioned(from, to) {
                    self.lost_frames += 1;
                    self.slots[from as usize].links.remove(&to);
                    self.schedule_down(now + self.config.detection_delay, from, to);
                    return;
                }
                if self.slots[to as usize].links.insert(from) {
                    self.slots[from as usize].links.insert(to);
                    self.notify(to, from, LinkEvent::Up);
                    self.notify(from, to, LinkEvent::Up);
                }
                let node = self.slots[to as usize].node.as_mut().expect("checked alive");
                if node.handle_frame(now, from, &frame).is_err() {
                    // A malformed frame closes that one link.
                    self.refused_frames += 1;
                    self.slots[to as usize].links.remove(&from);
                    self.slots[from as usize].links.remove(&to);
                    self.notify(to, from, LinkEvent::Down);
                    self.schedule_down(now + self.config.detection_delay, from, to);
                }
                self.drain(to);
            }
            What::Link {
                at,
                at_inc,
                peer,
                event,
            } => {
                if event == LinkEvent::Down {
                    self.pending_down.remove(&(at, peer));
                }
                if self.slots[at as usize].incarnation == at_inc {
                    self.notify(at, peer, event);
                }
            }
        }
    }

    pub(super) fn notify(&mut self, at: Id, peer: Id, event: LinkEvent) {
        let now = self.now;
        if let Some(node) = self.slots[at as usize].node.as_mut() {
            node.handle_link(now, peer, event);
            self.drain(at);
        }
    }
}
