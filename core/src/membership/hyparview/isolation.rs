//! Closed components: how a node notices that its component may be cut off
//! from the rest of the overlay, and what it does about it. Not in the
//! paper; the module docs ("Closed components") explain why it is needed.

use super::repair::{Probe, ProbeKind};
use super::views::pick;
use super::{HyParView, Message, Priority};
use crate::identity::Identity;
use crate::time::Instant;
use alloc::collections::VecDeque;

/// How many times the suspicion threshold may double: up to 32 times
/// [`Config::isolation_replies`](super::Config::isolation_replies).
const MAX_DOUBLINGS: u32 = 5;

/// What a node has observed of the shuffles that reach it.
#[derive(Debug, Clone)]
pub(super) struct Suspicion<I> {
    /// Replies to our shuffles in a row that came from a neighbor.
    familiar: u32,
    /// Replies to our shuffles in a row that came from a node that was not
    /// a neighbor.
    unfamiliar: u32,
    /// How many times the threshold has doubled.
    doublings: u32,
    /// The latest shuffle origins and repliers, most recent last, at most
    /// as many as the passive view holds. A shuffle only walks along
    /// active links, so each of them was in this node's component when
    /// its shuffle passed: no way out.
    members: VecDeque<I>,
}

impl<I> Default for Suspicion<I> {
    fn default() -> Self {
        Suspicion {
            familiar: 0,
            unfamiliar: 0,
            doublings: 0,
            members: VecDeque::new(),
        }
    }
}

impl<I: PartialEq + core::fmt::Debug> Suspicion<I> {
    /// Checks the bounds of [`HyParView::check_invariants`](super::HyParView).
    #[cfg(test)]
    pub(super) fn check_invariants(&self, config: &super::Config) {
        assert!(self.doublings <= MAX_DOUBLINGS, "threshold doubled too often");
        assert!(
            self.members.len() <= config.passive_view_capacity.max(1),
            "too many component members remembered"
        );
        for (i, m) in self.members.iter().enumerate() {
            assert!(
                self.members.iter().take(i).all(|o| o != m),
                "duplicate component member {m:?}"
            );
        }
    }
}

impl<I: Identity> HyParView<I> {
    /// Whether the active view holds fewer than half its capacity.
    pub(super) fn very_short(&self) -> bool {
        2 * self.active.len() < self.config.active_view_capacity
    }

    /// Replies from a neighbor needed, in a row, to suspect a closed
    /// component; `None` when the check is off.
    fn suspicion_threshold(&self) -> Option<u32> {
        let base = self.config.isolation_replies;
        (base > 0).then(|| base.saturating_mul(1 << self.isolation.doublings))
    }

    /// Notes that `peer` was in this node's component just now: it started
    /// or answered a shuffle that reached us.
    pub(super) fn seen_in_component(&mut self, peer: &I) {
        let members = &mut self.isolation.members;
        if let Some(i) = members.iter().position(|p| p == peer) {
            members.remove(i);
        }
        while members.len() >= self.config.passive_view_capacity.max(1) {
            members.pop_front();
        }
        members.push_back(peer.clone());
    }

    /// Whether `peer` may be outside this node's component: it was not seen
    /// in a shuffle lately.
    pub(super) fn maybe_outside(&self, peer: &I) -> bool {
        !self.isolation.members.contains(peer)
    }

    /// Whether enough replies in a row came from neighbors to suspect
    /// that this node's component is closed.
    pub(super) fn suspects_closed(&self) -> bool {
        self.suspicion_threshold().is_some_and(|k| self.isolation.familiar >= k)
    }

    /// One suspicion acted on: start counting again, and ask for twice as
    /// much evidence next time, so that a cluster that is simply small (where
    /// every reply comes from a neighbor too) probes less and less often.
    fn acted_on_suspicion(&mut self) {
        self.isolation.familiar = 0;
        self.isolation.doublings = (self.isolation.doublings + 1).min(MAX_DOUBLINGS);
    }

    /// A reply to our shuffle came from `from`, listing `nodes`. It is
    /// familiar if it comes from a neighbor, or from a passive peer and
    /// teaches us no peer we did not know. In a large overlay the walk (six
    /// hops) almost never ends at a neighbor, and a reply nearly always
    /// brings someone new; in a component of a few nodes the walk nearly
    /// always ends at a neighbor, and in one of a few dozen, whose members
    /// all know each other, the reply has nothing new to tell.
    pub(super) fn observe_shuffle_reply(&mut self, now: Instant, from: &I, nodes: &[I]) {
        let known = |p: &I| *p == self.me || self.is_active(p) || self.is_passive(p);
        let familiar = self.is_active(from) || (self.is_passive(from) && nodes.iter().all(known));
        self.seen_in_component(from);
        let base = self.config.isolation_replies;
        if base == 0 {
            return;
        }
        if familiar {
            self.isolation.familiar = self.isolation.familiar.saturating_add(1);
            self.isolation.unfamiliar = 0;
        } else {
            self.isolation.familiar = 0;
            self.isolation.unfamiliar = self.isolation.unfamiliar.saturating_add(1);
            if self.isolation.unfamiliar >= base.saturating_mul(1 << MAX_DOUBLINGS) {
                // Long enough among strangers: back to the base threshold.
                self.isolation.doublings = 0;
            }
        }
        if self.suspects_closed() {
            self.start_isolation_probe(now);
        }
    }

    /// Asks a random passive peer to become a neighbor with high priority:
    /// it accepts whatever its view, and on its yes we connect, evicting a
    /// random neighbor if the view is full. If the passive peer is outside
    /// the component, the component is closed no more.
    fn start_isolation_probe(&mut self, now: Instant) {
        if self.probe.is_some() {
            // One high-priority probe at a time; the next reply retries.
            return;
        }
        let (members, pending) = (&self.isolation.members, &self.pending);
        let candidates = self
            .passive
            .iter()
            .filter(|p| !members.contains(p) && !pending.iter().any(|q| q.peer == **p));
        let target = pick(&mut self.rng, candidates);
        // No candidate: the suspicion stands, and a stranger's
        // low-priority request is accepted instead (`on_neighbor`). In a
        // cluster that is simply small, every passive peer is soon seen in
        // a shuffle, and nothing changes.
        let Some(target) = target else { return };
        self.acted_on_suspicion();
        self.stats.isolation_probes += 1;
        self.probe = Some(Probe {
            contact: target.clone(),
            deadline: now + self.config.neighbor_timeout,
            kind: ProbeKind::Isolation,
        });
        self.send(
            target,
            Message::Neighbor {
                priority: Priority::High,
            },
        );
    }

    /// The answer to an isolation probe.
    pub(super) fn on_isolation_reply(&mut self, from: I, accepted: bool) {
        if accepted && !self.is_active(&from) && self.open(from) {
            self.stats.isolation_probes_succeeded += 1;
        }
    }

    /// A full node that suspects a closed component accepts a stranger's
    /// low-priority request: the stranger will connect, and the node will
    /// evict a random neighbor to make room.
    pub(super) fn accept_as_way_out(&mut self) {
        self.acted_on_suspicion();
        self.stats.isolation_accepts += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Config, HyParView, Message, Priority};
    use crate::time::Instant;
    use alloc::vec::Vec;

    type Node = HyParView<u32>;
    type Out = Vec<(u32, Message<u32>)>;

    fn drain(n: &mut Node) -> Out {
        while n.poll_event().is_some() {}
        core::iter::from_fn(|| n.poll_transmit()).collect()
    }

    /// Node 0 with `neighbors` (each connected from its side) and `passive`.
    fn node(config: Config, neighbors: &[u32], passive: &[u32]) -> Node {
        let mut n = HyParView::new(0, config, 7);
        for &p in neighbors {
            n.handle_message(
                Instant::ZERO,
                p,
                Message::Connect {
                    link: 100 + u64::from(p),
                },
            );
        }
        for &p in passive {
            n.insert_passive(p);
        }
        drain(&mut n);
        n
    }

    /// Runs the node's timers up to and including its next shuffle tick.
    fn tick(n: &mut Node) -> (Instant, Out) {
        let at = n.next_shuffle.expect("shuffle armed");
        n.handle_timeout(at);
        (at, drain(n))
    }

    /// One shuffle tick, its reply coming from `replier`; what the node
    /// sent after the reply.
    fn shuffle_answered_by(n: &mut Node, replier: u32) -> Out {
        let (at, out) = tick(n);
        assert!(out.iter().any(|(_, m)| matches!(m, Message::Shuffle { .. })));
        n.handle_message(at, replier, Message::ShuffleReply { nodes: Vec::new() });
        drain(n)
    }

    fn high_requests(out: &Out) -> Vec<u32> {
        out.iter()
            .filter(|(_, m)| {
                *m == Message::Neighbor {
                    priority: Priority::High,
                }
            })
            .map(|(to, _)| *to)
            .collect()
    }

    #[test]
    fn a_node_left_with_few_neighbors_by_a_refused_round_insists_at_the_next_tick() {
        // One neighbor of five (the stranded pair of the report).
        let mut n = node(Config::default(), &[1], &[10, 11]);
        n.handle_timeout(Instant::ZERO);
        let out = drain(&mut n);
        assert_eq!(out.len(), 2, "both passive peers asked: {out:?}");
        assert!(high_requests(&out).is_empty(), "a node with a neighbor asks Low first");
        for p in [10, 11] {
            n.handle_message(Instant::ZERO, p, Message::NeighborReply { accepted: false });
        }
        assert!(drain(&mut n).is_empty());
        let (at, out) = tick(&mut n);
        let high = high_requests(&out);
        assert_eq!(high.len(), 1, "one High per round: {out:?}");
        assert_eq!(n.stats().escalations, 1);
        // High is always accepted; the node connects.
        n.handle_message(at, high[0], Message::NeighborReply { accepted: true });
        assert!(n.is_active(&high[0]));

        // Three neighbors of five is not few: it keeps asking Low.
        let mut n = node(Config::default(), &[1, 2, 3], &[10, 11]);
        n.handle_timeout(Instant::ZERO);
        for p in [10, 11] {
            n.handle_message(Instant::ZERO, p, Message::NeighborReply { accepted: false });
        }
        drain(&mut n);
        let (_, out) = tick(&mut n);
        assert!(high_requests(&out).is_empty(), "{out:?}");
        assert_eq!(n.stats().escalations, 0);
    }

    #[test]
    fn a_full_node_whose_shuffles_end_at_its_neighbors_rotates_in_a_passive_peer() {
        // The report's clique: a full view, every shuffle answered from
        // inside it, a passive peer outside.
        let mut n = node(Config::default(), &[1, 2, 3, 4, 5], &[10]);
        assert!(high_requests(&shuffle_answered_by(&mut n, 2)).is_empty());
        let out = shuffle_answered_by(&mut n, 3);
        assert_eq!(high_requests(&out), [10]);
        assert_eq!(n.stats().isolation_probes, 1);
        // Only once the peer accepts does a neighbor make room for it.
        assert_eq!(n.active_view().count(), 5);
        n.handle_message(Instant::ZERO, 10, Message::NeighborReply { accepted: true });
        let out = drain(&mut n);
        assert!(n.is_active(&10));
        assert_eq!(n.active_view().count(), 5);
        let dropped: Vec<u32> = (1..=5).filter(|p| !n.is_active(p)).collect();
        let [dropped] = dropped[..] else { panic!("{dropped:?}") };
        assert!(n.is_passive(&dropped), "the dropped neighbor stays a backup");
        assert!(
            out.iter()
                .any(|(to, m)| *to == dropped && matches!(m, Message::Disconnect { .. }))
        );
        assert!(
            out.iter()
                .any(|(to, m)| *to == 10 && matches!(m, Message::Connect { .. }))
        );
        assert_eq!(n.stats().isolation_probes_succeeded, 1);

        // The threshold has doubled: two more replies from neighbors are
        // not enough, four are.
        let neighbor = *n.active_view().next().unwrap();
        for round in 1..=4 {
            let out = shuffle_answered_by(&mut n, neighbor);
            assert_eq!(
                high_requests(&out).len(),
                usize::from(round == 4),
                "round {round}: {out:?}"
            );
        }
        assert_eq!(n.stats().isolation_probes, 2);
    }

    #[test]
    fn shuffles_answered_by_strangers_raise_no_suspicion() {
        let mut n = node(Config::default(), &[1, 2, 3, 4, 5], &[10, 11]);
        for stranger in 20..40 {
            assert!(high_requests(&shuffle_answered_by(&mut n, stranger)).is_empty());
        }
        // Neither do replies from neighbors that never come twice in a row.
        for round in 0..20 {
            let replier = if round % 2 == 0 { 1 } else { 50 + round };
            assert!(high_requests(&shuffle_answered_by(&mut n, replier)).is_empty());
        }
        assert_eq!(n.stats().isolation_probes, 0);
    }

    #[test]
    fn a_suspicious_node_with_no_passive_peer_lets_one_stranger_in() {
        let mut n = node(Config::default(), &[1, 2, 3, 4, 5], &[]);
        shuffle_answered_by(&mut n, 1);
        shuffle_answered_by(&mut n, 2);
        assert!(n.suspects_closed());
        let low = Message::Neighbor {
            priority: Priority::Low,
        };
        n.handle_message(Instant::ZERO, 9, low.clone());
        assert_eq!(drain(&mut n), [(9, Message::NeighborReply { accepted: true })]);
        assert_eq!(n.stats().isolation_accepts, 1);
        // The stranger connects; a neighbor makes room.
        n.handle_message(Instant::ZERO, 9, Message::Connect { link: 9 });
        let out = drain(&mut n);
        assert!(matches!(out[..], [(_, Message::Disconnect { .. })]), "{out:?}");
        assert!(n.is_active(&9));
        assert_eq!(n.active_view().count(), 5);
        // Acted on: the next stranger is refused as usual.
        n.handle_message(Instant::ZERO, 8, low);
        assert_eq!(drain(&mut n), [(8, Message::NeighborReply { accepted: false })]);
    }

    #[test]
    fn zero_isolation_replies_turns_the_check_off() {
        let config = Config {
            isolation_replies: 0,
            ..Config::default()
        };
        let mut n = node(config, &[1, 2, 3, 4, 5], &[]);
        for _ in 0..10 {
            assert!(high_requests(&shuffle_answered_by(&mut n, 1)).is_empty());
        }
        assert!(!n.suspects_closed());
        n.handle_message(
            Instant::ZERO,
            9,
            Message::Neighbor {
                priority: Priority::Low,
            },
        );
        assert_eq!(drain(&mut n), [(9, Message::NeighborReply { accepted: false })]);
    }
}
