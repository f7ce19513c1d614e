//! A deterministic virtual-time network for tests, fuzzers and examples.
//!
//! [`Network`] runs any number of sans-IO state machines against each other
//! in one thread, with no clock and no sockets: a message sent at virtual
//! time `t` is handed to its destination at `t + latency`, and the clock
//! jumps straight to the next thing that happens, a message arriving or the
//! earliest [`Machine::poll_timeout`]. A test that waits out a minute of
//! timers finishes at once, and the same seed always gives the same run
//! (quinn-proto's test `Pair` works the same way).
//!
//! One harness serves every layer through the small [`Machine`] trait: it is
//! implemented for [`Node`] (messages are encoded frames), and the Plumtree
//! engine's tests implement it for the bare engine (typed messages).
//! Latency and loss are optional and drawn from the network's own seeded
//! generator; [`Network::hold`] stops automatic delivery so that a fuzzer can
//! pick which message arrives next, duplicate it or corrupt it.
//!
//! Three mesh nodes join through node 0, and a broadcast from node 2 reaches
//! the other two:
//!
//! ```
//! use epidemic_core::testing::Network;
//! use epidemic_core::{Config, Duration, Event, Node};
//!
//! let mut net = Network::new(7);
//! net.set_latency(Duration::from_millis(1), Duration::from_millis(20));
//! for id in 0..3u32 {
//!     let mut config = Config::mesh(3);
//!     config.seed = u64::from(id);
//!     net.add(id, Node::new(id, config));
//! }
//! for id in 1..3 {
//!     net.with(&id, |node, now| node.join(now, [0]));
//! }
//! net.run_for(Duration::from_secs(5));
//! assert!((0..3).all(|id| net.node(&id).members().len() == 3));
//!
//! let sent = net
//!     .with(&2, |node, now| node.broadcast(now, "hello".into()))
//!     .unwrap();
//! // Nodes keep periodic timers, so a cluster is never idle: run a while.
//! net.run_for(Duration::from_secs(1));
//! for id in [0, 1] {
//!     let delivered = net.events(&id).iter().any(|e| {
//!         matches!(e, Event::Delivered { id, payload, .. } if *id == sent && payload == "hello")
//!     });
//!     assert!(delivered, "node {id} delivered the broadcast");
//! }
//! ```

use crate::identity::Identity;
use crate::node::{Event, Node};
use crate::rng::{self, Rng};
use crate::time::{Duration, Instant};
use crate::wire::WireError;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;
use core::fmt::Debug;
use rand::Rng as _;

/// A sans-IO state machine the [`Network`] can drive.
///
/// The methods mirror the driving contract of [`Node`]: inputs carry `now`,
/// and outputs are drained with `poll_*` after every input.
pub trait Machine {
    /// How machines address each other.
    type Id: Clone + Ord + Debug;
    /// What travels between machines: a frame, or a typed message.
    type Message: Clone;
    /// What a machine tells its application.
    type Event;
    /// Why a machine refused a message.
    type Error: Debug;

    /// A message from `from` arrived.
    fn handle_message(&mut self, now: Instant, from: Self::Id, message: Self::Message) -> Result<(), Self::Error>;
    /// A deadline returned by [`Machine::poll_timeout`] passed.
    fn handle_timeout(&mut self, now: Instant);
    /// The next message to send, and to whom.
    fn poll_transmit(&mut self) -> Option<(Self::Id, Self::Message)>;
    /// The next event for the application.
    fn poll_event(&mut self) -> Option<Self::Event>;
    /// When [`Machine::handle_timeout`] is next due.
    fn poll_timeout(&self) -> Option<Instant>;
}

impl<I: Identity> Machine for Node<I> {
    type Id = I;
    type Message = Vec<u8>;
    type Event = Event<I>;
    type Error = WireError;

    fn handle_message(&mut self, now: Instant, from: I, frame: Vec<u8>) -> Result<(), WireError> {
        self.handle_frame(now, from, &frame)
    }

    fn handle_timeout(&mut self, now: Instant) {
        Node::handle_timeout(self, now);
    }

    fn poll_transmit(&mut self) -> Option<(I, Vec<u8>)> {
        Node::poll_transmit(self).map(|t| (t.to, t.frame))
    }

    fn poll_event(&mut self) -> Option<Event<I>> {
        Node::poll_event(self)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        Node::poll_timeout(self)
    }
}

/// A message in flight.
pub struct Flight<M: Machine> {
    /// The sender.
    pub from: M::Id,
    /// The destination.
    pub to: M::Id,
    /// What was sent.
    pub message: M::Message,
}

impl<M: Machine> Clone for Flight<M> {
    fn clone(&self) -> Self {
        Flight {
            from: self.from.clone(),
            to: self.to.clone(),
            message: self.message.clone(),
        }
    }
}

/// One machine with what it reported so far.
struct Slot<M: Machine> {
    id: M::Id,
    machine: M,
    events: Vec<M::Event>,
    deadline: Option<Instant>,
}

/// Machines on a virtual-time network: see the [module docs](self).
///
/// Machines are stepped in a fixed order: the earliest message first (ties in
/// sending order), and a message before a timer due at the same instant;
/// timers due together fire in the order the machines were added.
pub struct Network<M: Machine> {
    slots: Vec<Slot<M>>,
    index: BTreeMap<M::Id, usize>,
    /// In flight, by arrival time and sending order.
    queue: BTreeMap<(Instant, u64), Flight<M>>,
    /// Pending deadlines, by time and slot.
    timers: BTreeSet<(Instant, usize)>,
    seq: u64,
    now: Instant,
    rng: Rng,
    latency: (Duration, Duration),
    loss: f64,
    held: bool,
    lost: u64,
    undeliverable: u64,
}

impl<M: Machine> Network<M> {
    /// An empty network at [`Instant::ZERO`], with no latency, no loss, and
    /// its randomness from `seed`.
    pub fn new(seed: u64) -> Self {
        Network {
            slots: Vec::new(),
            index: BTreeMap::new(),
            queue: BTreeMap::new(),
            timers: BTreeSet::new(),
            seq: 0,
            now: Instant::ZERO,
            rng: rng::from_seed(seed),
            latency: (Duration::ZERO, Duration::ZERO),
            loss: 0.0,
            held: false,
            lost: 0,
            undeliverable: 0,
        }
    }

    // ---- configuration ----------------------------------------------------

    /// Adds `machine` under `id`, draining what it has to say. Panics if `id`
    /// is taken.
    pub fn add(&mut self, id: M::Id, machine: M) {
        let i = self.slots.len();
        assert!(self.index.insert(id.clone(), i).is_none(), "{id:?} added twice");
        self.slots.push(Slot {
            id,
            machine,
            events: Vec::new(),
            deadline: None,
        });
        self.drain(i);
    }

    /// Each message takes a latency drawn uniformly from `min..=max`
    /// (whole microseconds). Both zero, the default, delivers at once, in
    /// sending order.
    pub fn set_latency(&mut self, min: Duration, max: Duration) {
        assert!(min <= max, "latency range {min:?}..={max:?}");
        self.latency = (min, max);
    }

    /// Each message is lost with probability `p` (0 by default).
    pub fn set_loss(&mut self, p: f64) {
        assert!((0.0..=1.0).contains(&p), "loss probability {p}");
        self.loss = p;
    }

    /// While held, messages stay in flight until taken with
    /// [`Network::take`]; stepping fires timers only.
    pub fn hold(&mut self, held: bool) {
        self.held = held;
    }

    /// The network's generator, for building a topology from the same seed.
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    // ---- getters ----------------------------------------------------------

    /// The virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The machine `id`. Panics if there is none.
    pub fn node(&self, id: &M::Id) -> &M {
        &self.slots[self.slot(id)].machine
    }

    /// Every machine with its id, in the order they were added.
    pub fn nodes(&self) -> impl Iterator<Item = (&M::Id, &M)> + '_ {
        self.slots.iter().map(|s| (&s.id, &s.machine))
    }

    /// The events `id` reported so far, oldest first.
    pub fn events(&self, id: &M::Id) -> &[M::Event] {
        &self.slots[self.slot(id)].events
    }

    /// Takes the events `id` reported so far, oldest first.
    pub fn take_events(&mut self, id: &M::Id) -> Vec<M::Event> {
        let i = self.slot(id);
        core::mem::take(&mut self.slots[i].events)
    }

    /// Messages lost to [`Network::set_loss`].
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Messages sent to an id that is not on the network (dropped when
    /// sent).
    pub fn undeliverable(&self) -> u64 {
        self.undeliverable
    }

    /// Messages in flight.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }

    /// When the next step happens: the earliest arrival (unless held) or
    /// deadline.
    pub fn next_wakeup(&self) -> Option<Instant> {
        let arrival = self.queue.first_key_value().filter(|_| !self.held).map(|(k, _)| k.0);
        let timer = self.timers.first().map(|t| t.0);
        [arrival, timer].into_iter().flatten().min()
    }

    // ---- inputs -----------------------------------------------------------

    /// Runs `f` on machine `id` at the current time, then drains its outputs.
    pub fn with<R>(&mut self, id: &M::Id, f: impl FnOnce(&mut M, Instant) -> R) -> R {
        let i = self.slot(id);
        let r = f(&mut self.slots[i].machine, self.now);
        self.drain(i);
        r
    }

    /// Takes the earliest message in flight towards `to`, if any.
    pub fn take(&mut self, to: &M::Id) -> Option<Flight<M>> {
        let key = *self.queue.iter().find(|(_, f)| &f.to == to)?.0;
        self.queue.remove(&key)
    }

    /// The earliest message in flight towards `to`, if any, left in flight.
    pub fn peek(&self, to: &M::Id) -> Option<&Flight<M>> {
        self.queue.values().find(|f| &f.to == to)
    }

    /// Drops every message in flight, as a closed link would.
    pub fn clear(&mut self) {
        self.queue.clear();
    }

    /// Hands `flight` to its destination now, whatever its arrival time, and
    /// drains the destination's outputs; what the destination said about it.
    pub fn deliver(&mut self, flight: Flight<M>) -> Result<(), M::Error> {
        let Some(&i) = self.index.get(&flight.to) else {
            self.undeliverable += 1;
            return Ok(());
        };
        let r = self.slots[i]
            .machine
            .handle_message(self.now, flight.from, flight.message);
        self.drain(i);
        r
    }

    // ---- time -------------------------------------------------------------

    /// Delivers the next message or fires the next deadline, moving the clock
    /// to it; false when nothing is pending. A message refused on automatic
    /// delivery panics: machines on a lossless wire send valid messages.
    pub fn step(&mut self) -> bool {
        let arrival = self.queue.first_key_value().filter(|_| !self.held).map(|(k, _)| k.0);
        let timer = self.timers.first().copied();
        match (arrival, timer) {
            (Some(at), t) if t.is_none_or(|(t, _)| at <= t) => {
                let Some((_, flight)) = self.queue.pop_first() else {
                    return false;
                };
                self.now = self.now.max(at);
                let (from, to) = (flight.from.clone(), flight.to.clone());
                if let Err(e) = self.deliver(flight) {
                    panic!("{to:?} refused a message from {from:?}: {e:?}");
                }
                true
            }
            (_, Some((at, i))) => {
                self.timers.remove(&(at, i));
                self.slots[i].deadline = None;
                self.now = self.now.max(at);
                self.slots[i].machine.handle_timeout(self.now);
                self.drain(i);
                true
            }
            _ => false,
        }
    }

    /// Steps until nothing is pending, or the next step lies more than
    /// `limit` past the current time; whether it went idle. The clock stays
    /// at the last step.
    pub fn run_until_idle(&mut self, limit: Duration) -> bool {
        let end = self.now + limit;
        loop {
            match self.next_wakeup() {
                None => return true,
                Some(at) if at > end => return false,
                Some(_) => {
                    self.step();
                }
            }
        }
    }

    /// Steps through everything due within `d`, then sets the clock to
    /// `d` from now.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.next_wakeup().is_some_and(|at| at <= end) {
            self.step();
        }
        self.now = end;
    }

    /// Moves the clock forward to `at` without stepping. Panics if `at` is in
    /// the past.
    pub fn advance_to(&mut self, at: Instant) {
        assert!(at >= self.now, "time never goes backwards");
        self.now = at;
    }

    // ---- internals --------------------------------------------------------

    fn slot(&self, id: &M::Id) -> usize {
        match self.index.get(id) {
            Some(&i) => i,
            None => panic!("no machine {id:?}"),
        }
    }

    /// Puts slot `i`'s messages in flight, logs its events and re-files its
    /// deadline.
    fn drain(&mut self, i: usize) {
        let slot = &mut self.slots[i];
        while let Some((to, message)) = slot.machine.poll_transmit() {
            if !self.index.contains_key(&to) {
                self.undeliverable += 1;
                continue;
            }
            if self.loss > 0.0 && self.rng.random_bool(self.loss) {
                self.lost += 1;
                continue;
            }
            let (min, max) = self.latency;
            let latency = if min == max {
                min
            } else {
                Duration::from_micros(self.rng.random_range(min.as_micros()..=max.as_micros()))
            };
            self.seq += 1;
            let flight = Flight {
                from: slot.id.clone(),
                to,
                message,
            };
            self.queue.insert((self.now + latency, self.seq), flight);
        }
        while let Some(event) = slot.machine.poll_event() {
            slot.events.push(event);
        }
        if let Some(old) = slot.deadline.take() {
            self.timers.remove(&(old, i));
        }
        if let Some(at) = slot.machine.poll_timeout() {
            assert!(at >= self.now, "{:?} set a deadline in the past", slot.id);
            slot.deadline = Some(at);
            self.timers.insert((at, i));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bounces a countdown back to its sender until it reaches zero; reports
    /// every number received, and `u32::MAX` when its one timer fires.
    struct Bounce {
        out: Vec<(u32, u32)>,
        events: Vec<u32>,
        timer: Option<Instant>,
    }

    impl Bounce {
        fn new(timer: Option<Instant>) -> Self {
            Bounce {
                out: Vec::new(),
                events: Vec::new(),
                timer,
            }
        }
    }

    impl Machine for Bounce {
        type Id = u32;
        type Message = u32;
        type Event = u32;
        type Error = ();

        fn handle_message(&mut self, _: Instant, from: u32, n: u32) -> Result<(), ()> {
            self.events.push(n);
            if n > 0 {
                self.out.push((from, n - 1));
            }
            Ok(())
        }

        fn handle_timeout(&mut self, now: Instant) {
            assert!(self.timer.is_some_and(|t| t <= now), "fired early");
            self.timer = None;
            self.events.push(u32::MAX);
        }

        fn poll_transmit(&mut self) -> Option<(u32, u32)> {
            (!self.out.is_empty()).then(|| self.out.remove(0))
        }

        fn poll_event(&mut self) -> Option<u32> {
            (!self.events.is_empty()).then(|| self.events.remove(0))
        }

        fn poll_timeout(&self) -> Option<Instant> {
            self.timer
        }
    }

    fn pair(seed: u64, timer: Option<Instant>) -> Network<Bounce> {
        let mut net = Network::new(seed);
        net.add(0, Bounce::new(timer));
        net.add(1, Bounce::new(None));
        net
    }

    #[test]
    fn the_clock_jumps_to_the_next_deadline() {
        let mut net = pair(1, Some(Instant::from_millis(3_600_000)));
        assert!(net.run_until_idle(Duration::from_secs(7200)));
        assert_eq!(net.now(), Instant::from_millis(3_600_000), "an hour, at once");
        assert_eq!(net.events(&0), [u32::MAX]);
        assert!(net.events(&1).is_empty());
    }

    #[test]
    fn without_latency_messages_arrive_at_once_in_order() {
        let mut net = pair(1, None);
        net.with(&0, |b, _| b.out.extend([(1, 3), (1, 0)]));
        assert!(net.run_until_idle(Duration::ZERO));
        assert_eq!(net.now(), Instant::ZERO);
        assert_eq!(net.events(&1), [3, 0, 1]);
        assert_eq!(net.events(&0), [2, 0]);
    }

    #[test]
    fn latency_and_loss_are_drawn_from_the_seed() {
        let run = |seed| {
            let mut net = pair(seed, None);
            net.set_latency(Duration::from_millis(1), Duration::from_millis(10));
            net.set_loss(0.3);
            net.with(&0, |b, _| b.out.extend((0..50).map(|n| (1, n))));
            assert!(net.run_until_idle(Duration::from_secs(1)));
            assert!(net.now() > Instant::ZERO && net.now() <= Instant::from_millis(10 * 50));
            (net.take_events(&0), net.take_events(&1), net.lost(), net.now())
        };
        let a = run(5);
        assert!(a.2 > 0, "some messages were lost");
        assert_eq!(a, run(5), "the same seed gives the same run");
        assert_ne!(a, run(6));
    }

    #[test]
    fn held_messages_wait_to_be_taken() {
        let mut net = pair(1, Some(Instant::from_millis(10)));
        net.hold(true);
        net.with(&0, |b, _| b.out.extend([(1, 1), (1, 0), (7, 0)]));
        assert_eq!((net.in_flight(), net.undeliverable()), (2, 1));
        net.run_for(Duration::from_secs(1));
        assert_eq!(net.events(&0), [u32::MAX], "timers still fire");
        assert!(net.events(&1).is_empty(), "nothing delivered");
        assert_eq!(net.peek(&1).map(|f| f.message), Some(1));
        let first = net.take(&1).unwrap();
        assert_eq!((first.from, first.message), (0, 1));
        assert_eq!(net.deliver(first.clone()), Ok(()));
        assert_eq!(net.deliver(first), Ok(()));
        assert_eq!(net.events(&1), [1, 1]);
        assert_eq!(net.in_flight(), 3, "one left, and two replies");
        net.clear();
        assert_eq!(net.in_flight(), 0);
    }
}
