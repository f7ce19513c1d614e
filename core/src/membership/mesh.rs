//! Full-mesh membership: every node knows every member (Riak's model).
//!
//! For clusters small enough that each node can hold the whole member list
//! (tens to a few hundred nodes). Membership is operator-controlled, as in
//! Riak: members are added and removed by command, never by a failure
//! detector. A member whose link is down stays a member; it only stops being
//! a broadcast neighbour until its link is back.
//!
//! # State
//!
//! - `members`: an [`OrSwot`] of identities whose writer is the node that
//!   made the change *in one life*, a [`Writer`] (identity, incarnation).
//!   Concurrent adds and removes resolve add-wins, and a stale copy never
//!   resurrects a removed member. A node restarted without its state starts
//!   its counter again at 1; as a new writer its adds are new dots, never
//!   mistaken for the adds of its earlier life that a removal already
//!   covered.
//! - `down`: members whose link the driver reported down.
//! - `neighbors`: `members − {me} − down`, the peers handed to the broadcast
//!   engine through [`Event::NeighborUp`] and [`Event::NeighborDown`].
//!
//! # Messages
//!
//! One: [`Message::State`], the sender's whole member set. A receiver merges
//! it; if the merge taught the sender something it lacked, the receiver
//! answers with its merged state (push-pull), so two nodes agree after one
//! exchange.
//!
//! # Timer
//!
//! Every `gossip_interval` the node sends its state to one member chosen at
//! random among *all* members, reachable or not. Gossiping to members whose
//! link is down is deliberate: it is how a member that came back after a
//! partition or a restart is noticed (the driver reports the link up again).
//! Every change made locally is also pushed at once to a few neighbours.
//!
//! With random gossip to one peer per interval, a change reaches all `n`
//! members in O(log n) intervals (push-pull rumour spreading, Karp et al.
//! 2000).

use crate::crdt::{Merge, OrSwot};
use crate::rng::{self, Rng};
use crate::wire::WireError;
use crate::{Duration, Identity, Instant};
use alloc::collections::{BTreeSet, VecDeque};
use alloc::vec::Vec;
use core::fmt;
use rand::seq::{IndexedRandom, SliceRandom};
use serde::{Deserialize, Serialize};

/// Full-mesh settings.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// How often the member set is gossiped to one random member.
    ///
    /// Default: `Duration::from_secs(1)`. One second: Riak's cluster-metadata
    /// lazy tick, the cadence at which its small clusters already exchange
    /// state.
    pub gossip_interval: Duration,
    /// How many neighbours a local change is pushed to at once.
    ///
    /// Default: `3`. Three pushes reach a 40-node mesh in about ln(40)/ln(3)
    /// ≈ 3.4 rounds even before periodic gossip helps.
    pub push_fanout: usize,
    /// The most members a node accepts; a larger set from a peer is refused.
    ///
    /// Default: `1024`. Full mesh is for small clusters; past a few hundred
    /// members use HyParView.
    pub max_members: usize,
    /// The most writers (a node in one life) the member set's clock may
    /// name; a state from a peer that would take it past this is refused
    /// ([`Stats::refused`]), so a peer cannot grow the set, and the state
    /// every node gossips, without bound.
    ///
    /// Default: `4096`: four lives of each of `max_members` members, at
    /// about 30 bytes a writer 120 KB, an eighth of a frame.
    pub max_writers: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            gossip_interval: Duration::from_secs(1),
            push_fanout: 3,
            max_members: 1024,
            max_writers: 4096,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Config {
            gossip_interval,
            push_fanout,
            max_members,
            max_writers,
        } = self;
        f.debug_struct("Config")
            .field("gossip_interval", gossip_interval)
            .field("push_fanout", push_fanout)
            .field("max_members", max_members)
            .field("max_writers", max_writers)
            .finish()
    }
}

/// A mesh membership message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound = "I: Identity")]
#[doc(hidden)]
pub enum Message<I: Identity> {
    /// The sender's whole member set.
    State {
        /// The member set.
        members: OrSwot<Writer<I>, I>,
    },
}

/// The writer of a change to the member set: a node in one life (its
/// identity and incarnation), so that no two lives of a node reuse a dot.
#[doc(hidden)]
pub type Writer<I> = (I, u32);

/// A change in the set of reachable members: a member became a reachable
/// neighbour, or stopped being one (removed, or its link is down).
#[doc(hidden)]
pub use super::Event;

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
#[doc(hidden)]
pub struct Stats {
    /// State messages sent.
    pub sent: u64,
    /// State messages received.
    pub received: u64,
    /// Received states that changed ours.
    pub merges_changed: u64,
    /// Received states refused: over `max_members` or `max_writers`, alone
    /// or merged with ours.
    pub refused: u64,
}

/// Full-mesh membership state machine. See the [module docs](self).
#[doc(hidden)]
pub struct Mesh<I: Identity> {
    me: I,
    writer: Writer<I>,
    config: Config,
    members: OrSwot<Writer<I>, I>,
    down: BTreeSet<I>,
    neighbors: BTreeSet<I>,
    next_gossip: Option<Instant>,
    rng: Rng,
    transmits: VecDeque<(I, Message<I>)>,
    events: VecDeque<Event<I>>,
    stats: Stats,
}

impl<I: Identity> Mesh<I> {
    /// A node that is the only member of its own cluster, in life
    /// `incarnation` (which must grow across restarts that lose the state).
    pub fn new(me: I, incarnation: u32, config: Config, seed: u64) -> Self {
        let writer = (me.clone(), incarnation);
        let mut members = OrSwot::new();
        members.add(writer.clone(), me.clone());
        Mesh {
            me,
            writer,
            config,
            members,
            down: BTreeSet::new(),
            neighbors: BTreeSet::new(),
            next_gossip: None,
            rng: rng::from_seed(seed),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Every member, this node included, in order.
    pub fn members(&self) -> impl Iterator<Item = &I> {
        self.members.iter()
    }

    /// Members this node can reach (its broadcast neighbours).
    pub fn reachable(&self) -> impl Iterator<Item = &I> {
        self.neighbors.iter()
    }

    /// Whether `peer` is a member.
    pub fn is_member(&self, peer: &I) -> bool {
        self.members.contains(peer)
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The operator adds `member`.
    pub fn add_member(&mut self, now: Instant, member: I) {
        self.arm(now);
        if member == self.me || self.members.len() >= self.config.max_members {
            return;
        }
        self.members.add(self.writer.clone(), member.clone());
        self.down.remove(&member);
        self.refresh();
        // The new member learns it belongs at once.
        self.send(member.clone());
        self.push(Some(&member));
    }

    /// The operator removes `member`.
    pub fn remove_member(&mut self, now: Instant, member: &I) {
        self.arm(now);
        if !self.members.contains(member) {
            return;
        }
        self.members.remove(member);
        self.down.remove(member);
        self.refresh();
        // The removed member learns it, so it stops gossiping to us.
        if member != &self.me {
            self.send(member.clone());
        }
        self.push(None);
    }

    /// This node removes itself and tells its neighbours.
    pub fn leave(&mut self, now: Instant) {
        let me = self.me.clone();
        self.remove_member(now, &me);
        let all: Vec<I> = self.neighbors.iter().cloned().collect();
        for peer in all {
            self.send(peer);
        }
        self.next_gossip = None;
    }

    /// Checks a message before it is handled.
    pub fn validate(&self, message: &Message<I>) -> Result<(), WireError> {
        let Message::State { members } = message;
        if members.len() > self.config.max_members {
            return Err(WireError::Invalid("member set larger than max_members"));
        }
        if members.clock().len() > self.config.max_writers {
            return Err(WireError::Invalid(
                "member set clock names more writers than max_writers",
            ));
        }
        Ok(())
    }

    /// A message from `from`.
    pub fn handle_message(&mut self, now: Instant, from: I, message: Message<I>) {
        if self.validate(&message).is_err() {
            self.arm(now);
            self.stats.refused += 1;
            return;
        }
        self.handle_validated(now, from, message);
    }

    /// [`handle_message`](Self::handle_message) for a message the caller
    /// has validated already (the node validates every frame once).
    pub(crate) fn handle_validated(&mut self, now: Instant, from: I, message: Message<I>) {
        self.arm(now);
        let Message::State { members } = message;
        self.stats.received += 1;
        let before = self.members.clone();
        self.members.merge(&members);
        if self.members.len() > self.config.max_members || self.members.clock().len() > self.config.max_writers {
            // Refuse a merge that would exceed a bound.
            self.members = before;
            self.stats.refused += 1;
            return;
        }
        if self.members != before {
            self.stats.merges_changed += 1;
            self.refresh();
            self.push(Some(&from));
        }
        // Push-pull: if the sender lacks something we hold, answer.
        if self.members != members {
            self.send(from.clone());
        }
        // Hearing from a member is evidence its link works.
        if self.down.remove(&from) {
            self.refresh();
        }
    }

    /// The driver reports the link to `peer` down.
    pub fn handle_link_down(&mut self, now: Instant, peer: &I) {
        self.arm(now);
        if self.members.contains(peer) && *peer != self.me && self.down.insert(peer.clone()) {
            self.refresh();
        }
    }

    /// The driver reports the link to `peer` up.
    pub fn handle_link_up(&mut self, now: Instant, peer: &I) {
        self.arm(now);
        if self.down.remove(peer) {
            self.refresh();
        }
    }

    /// Periodic gossip.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(due) = self.next_gossip else { return };
        if now < due {
            return;
        }
        self.next_gossip = Some(now + self.config.gossip_interval);
        let others: Vec<&I> = self.members.iter().filter(|m| **m != self.me).collect();
        if let Some(peer) = others.choose(&mut self.rng).map(|p| (*p).clone()) {
            self.send(peer);
        }
    }

    /// The next gossip deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_gossip
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<(I, Message<I>)> {
        self.transmits.pop_front()
    }

    /// The next neighbour change.
    pub fn poll_event(&mut self) -> Option<Event<I>> {
        self.events.pop_front()
    }

    /// Starts the gossip timer on the first input, at a random phase so that
    /// nodes started together do not gossip in lockstep.
    fn arm(&mut self, now: Instant) {
        if self.next_gossip.is_none() && self.members.contains(&self.me) {
            let micros = self.config.gossip_interval.as_micros().max(1);
            let phase = rng::index(&mut self.rng, usize::try_from(micros).unwrap_or(usize::MAX)).unwrap_or(0);
            self.next_gossip = Some(now + Duration::from_micros(phase as u64));
        }
    }

    fn send(&mut self, to: I) {
        if to == self.me {
            return;
        }
        self.stats.sent += 1;
        self.transmits.push_back((
            to,
            Message::State {
                members: self.members.clone(),
            },
        ));
    }

    /// Pushes our state to up to `push_fanout` random neighbours, skipping
    /// `except`.
    fn push(&mut self, except: Option<&I>) {
        let mut candidates: Vec<I> = self.neighbors.iter().filter(|p| Some(*p) != except).cloned().collect();
        let (chosen, _) = candidates.partial_shuffle(&mut self.rng, self.config.push_fanout);
        for peer in chosen.iter().cloned() {
            self.send(peer);
        }
    }

    /// Recomputes the neighbour set and emits the differences.
    fn refresh(&mut self) {
        let now_neighbors: BTreeSet<I> = self
            .members
            .iter()
            .filter(|m| **m != self.me && !self.down.contains(*m))
            .cloned()
            .collect();
        for gone in self.neighbors.difference(&now_neighbors) {
            self.events.push_back(Event::NeighborDown(gone.clone()));
        }
        for new in now_neighbors.difference(&self.neighbors) {
            self.events.push_back(Event::NeighborUp(new.clone()));
        }
        self.neighbors = now_neighbors;
    }
}
