//! The dissemination strategies of the RICON 2014 talk on Riak's cluster
//! metadata, as a round-based simulation over a fixed overlay graph.
//!
//! Every strategy starts at `origin` at hop 0 and runs in synchronous
//! rounds: a node that receives the message for the first time in round `r`
//! (at hop `r`) sends in round `r + 1`. A message to a dead node is sent
//! (and counted) but lost; a dead node forwards nothing. Nothing is
//! repaired: these are the strategies without Plumtree's lazy path, measured
//! the instant after a failure, on the overlay as it was before it.
//! Randomness (gossip targets) comes from the caller's seeded generator, so
//! a seed reproduces every figure.

use super::report::Shot;
use epidemic_mem::Id;
use rand::Rng;
use rand::seq::{IndexedRandom, SliceRandom};
use std::collections::VecDeque;

/// A node's neighbours, by id.
pub(crate) type Graph = Vec<Vec<Id>>;

/// Tracks deliveries and sends while a strategy runs.
struct Run<'a> {
    dead: &'a [bool],
    hop: Vec<Option<u32>>,
    loads: Vec<u32>,
    payload: u64,
}

impl<'a> Run<'a> {
    fn new(origin: Id, dead: &'a [bool]) -> Self {
        let mut hop = vec![None; dead.len()];
        hop[origin as usize] = Some(0);
        Run {
            dead,
            hop,
            loads: vec![0; dead.len()],
            payload: 0,
        }
    }

    /// `from` sends the payload to `to` at hop `hop`; true if `to` is alive
    /// and had not got it yet.
    fn send(&mut self, from: Id, to: Id, hop: u32) -> bool {
        self.loads[from as usize] += 1;
        self.payload += 1;
        if self.dead[to as usize] || self.hop[to as usize].is_some() {
            return false;
        }
        self.hop[to as usize] = Some(hop);
        true
    }

    fn finish(self) -> Shot {
        let alive = self.dead.iter().filter(|d| !**d).count();
        let delivered = self.hop.iter().filter(|h| h.is_some()).count();
        Shot {
            alive,
            delivered,
            payload: self.payload,
            ldh: self.hop.iter().flatten().copied().max().unwrap_or(0),
            loads: self.loads,
            ..Shot::default()
        }
    }
}

/// The origin sends to every other node it knew of before the failure.
pub(crate) fn one_to_all(n: usize, origin: Id, dead: &[bool]) -> Shot {
    let mut run = Run::new(origin, dead);
    for to in (0..n as Id).filter(|&i| i != origin) {
        run.send(origin, to, 1);
    }
    run.finish()
}

/// A breadth-first spanning tree of `graph` rooted at `origin`: each node's
/// children. Built once, in the stable state, and never repaired.
pub(crate) fn bfs_tree(graph: &Graph, origin: Id) -> Graph {
    let mut children = vec![Vec::new(); graph.len()];
    let mut seen = vec![false; graph.len()];
    seen[origin as usize] = true;
    let mut queue = VecDeque::from([origin]);
    while let Some(p) = queue.pop_front() {
        for &q in &graph[p as usize] {
            if !seen[q as usize] {
                seen[q as usize] = true;
                children[p as usize].push(q);
                queue.push_back(q);
            }
        }
    }
    children
}

/// Pushes along `edges` from `origin`: every node that gets the message for
/// the first time sends it to the targets `pick` chooses among its edges,
/// given the node it came from.
fn push(edges: &Graph, origin: Id, dead: &[bool], mut pick: impl FnMut(Id, Option<Id>, &[Id]) -> Vec<Id>) -> Shot {
    let mut run = Run::new(origin, dead);
    let mut queue = VecDeque::from([(origin, None, 0u32)]);
    while let Some((node, from, hop)) = queue.pop_front() {
        for to in pick(node, from, &edges[node as usize]) {
            if run.send(node, to, hop + 1) {
                queue.push_back((to, Some(node), hop + 1));
            }
        }
    }
    run.finish()
}

/// The message follows a fixed spanning tree (see [`bfs_tree`]).
pub(crate) fn tree(children: &Graph, origin: Id, dead: &[bool]) -> Shot {
    push(children, origin, dead, |_, _, kids| kids.to_vec())
}

/// Every node sends to every neighbour but the one it got the message from
/// (eager push over the overlay: the Plumtree paper's "eager" protocol).
pub(crate) fn flood(graph: &Graph, origin: Id, dead: &[bool]) -> Shot {
    push(graph, origin, dead, |_, from, peers| {
        peers.iter().copied().filter(|&p| Some(p) != from).collect()
    })
}

/// Every node sends to `fanout` neighbours chosen at random, never the one
/// it got the message from. With `fanout` at least the degree minus one it
/// is [`flood`]: over a HyParView overlay with an active view of 5 and a
/// fanout of 4 the two coincide, which is the HyParView paper's design.
pub(crate) fn gossip(graph: &Graph, origin: Id, dead: &[bool], fanout: usize, rng: &mut impl Rng) -> Shot {
    push(graph, origin, dead, |_, from, peers| {
        let candidates: Vec<Id> = peers.iter().copied().filter(|&p| Some(p) != from).collect();
        candidates.choose_multiple(rng, fanout).copied().collect()
    })
}

/// Logarithmic broadcast: the origin holds the list of every other node (in
/// an order drawn from `rng`). Each round a holder of a list splits it in
/// two, sends the message with the second half to that half's first node,
/// which takes charge of the rest of it, and keeps the first half. Every
/// node gets one message and the last one is ⌈log2 n⌉ hops away, but a dead
/// node loses its whole half.
pub(crate) fn logarithmic(n: usize, origin: Id, dead: &[bool], rng: &mut impl Rng) -> Shot {
    let mut list: Vec<Id> = (0..n as Id).filter(|&i| i != origin).collect();
    list.shuffle(rng);
    let mut run = Run::new(origin, dead);
    // (holder, its hop, its list): rounds are implicit, hops are what LDH
    // counts.
    let mut work = VecDeque::from([(origin, 0u32, list)]);
    while let Some((holder, hop, mut list)) = work.pop_front() {
        while !list.is_empty() {
            let half = list.split_off(list.len() / 2);
            let (&head, rest) = half.split_first().expect("split_off of a non-empty list");
            if run.send(holder, head, hop + 1) {
                work.push_back((head, hop + 1, rest.to_vec()));
            }
        }
    }
    run.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    /// A ring of `n` nodes with chords to the node opposite.
    fn ring(n: usize) -> Graph {
        (0..n)
            .map(|i| {
                let mut v = vec![((i + 1) % n) as Id, ((i + n - 1) % n) as Id];
                let opposite = ((i + n / 2) % n) as Id;
                if !v.contains(&opposite) {
                    v.push(opposite);
                }
                v
            })
            .collect()
    }

    #[test]
    fn stable_state_figures() {
        let g = ring(64);
        let none = vec![false; 64];
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);

        let s = one_to_all(64, 0, &none);
        assert_eq!((s.reliability(), s.rmr(), s.ldh, s.max_load()), (100.0, 0.0, 1, 63));

        let t = tree(&bfs_tree(&g, 0), 0, &none);
        assert_eq!((t.reliability(), t.rmr()), (100.0, 0.0));
        assert!(t.max_load() <= 3);

        let f = flood(&g, 0, &none);
        assert_eq!(f.reliability(), 100.0);
        assert_eq!(f.ldh, t.ldh, "a BFS tree is as deep as the flood");
        // Every node sends to its degree (3) minus the sender, the origin to all 3.
        assert_eq!(f.payload, 3 + 63 * 2);

        let l = logarithmic(64, 0, &none, &mut rng);
        assert_eq!((l.reliability(), l.rmr(), l.ldh, l.max_load()), (100.0, 0.0, 6, 6));

        let gsp = gossip(&g, 0, &none, 1, &mut rng);
        assert!(gsp.payload <= 64, "fanout 1 sends at most once per node");
    }

    #[test]
    fn failures_cut_trees_but_not_floods() {
        let g = ring(64);
        let mut dead = vec![false; 64];
        dead[1] = true;
        let f = flood(&g, 0, &dead);
        assert_eq!((f.alive, f.delivered), (63, 63));
        let t = tree(&bfs_tree(&g, 0), 0, &dead);
        assert!(t.delivered < 63, "the dead node's subtree is cut off");
        let o = one_to_all(64, 0, &dead);
        assert_eq!(o.delivered, 63);
        assert_eq!(o.payload, 63, "the send to the dead node counts");
    }
}
