//! Eager and lazy sets: the shared pair and the per-root pairs (Riak's
//! sender-based trees) in a bounded LRU.

use super::bounded::BoundedMap;
use super::config::TreeMode;
use crate::identity::Identity;
use crate::rng::{self, Rng};
use alloc::vec::Vec;

/// One eager/lazy pair. Small vectors: a node's degree is about 5 over
/// HyParView and `ln(n) + 2` in a mesh, so a linear scan beats hashing.
/// Insertion order is kept, so forwarding order is deterministic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sets<I> {
    pub(crate) eager: Vec<I>,
    pub(crate) lazy: Vec<I>,
}

impl<I> Default for Sets<I> {
    fn default() -> Self {
        Sets {
            eager: Vec::new(),
            lazy: Vec::new(),
        }
    }
}

impl<I: PartialEq + Clone> Sets<I> {
    pub(crate) fn is_eager(&self, p: &I) -> bool {
        self.eager.contains(p)
    }

    pub(crate) fn is_lazy(&self, p: &I) -> bool {
        self.lazy.contains(p)
    }

    fn make_eager(&mut self, p: &I) {
        self.lazy.retain(|q| q != p);
        if !self.eager.contains(p) {
            self.eager.push(p.clone());
        }
    }

    fn make_lazy(&mut self, p: &I) {
        self.eager.retain(|q| q != p);
        if !self.lazy.contains(p) {
            self.lazy.push(p.clone());
        }
    }

    /// Removes `p` from both sets; whether it was eager.
    fn remove(&mut self, p: &I) -> bool {
        let was_eager = self.is_eager(p);
        self.eager.retain(|q| q != p);
        self.lazy.retain(|q| q != p);
        was_eager
    }

    /// Where a neighbour that just came up goes, under the mesh caps.
    fn place(&mut self, p: &I, eager_cap: Option<usize>, lazy_cap: Option<usize>) {
        if eager_cap.is_none_or(|k| self.eager.len() < k) {
            self.eager.push(p.clone());
        } else if lazy_cap.is_none_or(|l| self.lazy.len() < l) {
            self.lazy.push(p.clone());
        }
    }
}

/// The shared pair and the tracked roots.
///
/// A root is tracked only once its sets must differ from the shared pair;
/// until then, and after it is evicted, it uses the shared pair. In
/// [`TreeMode::Shared`] nothing is ever tracked.
pub(crate) struct Trees<I> {
    per_root: bool,
    shared: Sets<I>,
    roots: BoundedMap<I, Sets<I>>,
    pub(crate) evicted: u64,
}

impl<I: Identity> Trees<I> {
    pub(crate) fn new(mode: TreeMode) -> Self {
        let (per_root, max_roots) = match mode {
            TreeMode::Shared => (false, 0),
            TreeMode::PerRoot { max_roots } => (true, max_roots),
        };
        Trees {
            per_root,
            shared: Sets::default(),
            roots: BoundedMap::new(max_roots),
            evicted: 0,
        }
    }

    pub(crate) fn tracked(&self) -> usize {
        self.roots.len()
    }

    pub(crate) fn is_tracked(&self, root: &I) -> bool {
        self.roots.contains_key(root)
    }

    #[cfg(test)]
    pub(crate) fn queue_len(&self) -> usize {
        self.roots.queue_len()
    }

    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.roots.capacity()
    }

    /// The sets for `root`, marking it recently used.
    pub(crate) fn sets(&mut self, root: &I) -> &Sets<I> {
        match self.roots.touch(root) {
            Some(sets) => sets,
            None => &self.shared,
        }
    }

    /// The sets for `root`, without touching the LRU order.
    pub(crate) fn peek(&self, root: &I) -> &Sets<I> {
        self.roots.get(root).unwrap_or(&self.shared)
    }

    /// Moves `peer` to the eager set for `root`.
    pub(crate) fn set_eager(&mut self, root: &I, peer: &I) {
        if !self.per_root {
            self.shared.make_eager(peer);
        } else if let Some(sets) = self.roots.touch(root) {
            sets.make_eager(peer);
        } else if !self.shared.is_eager(peer) {
            let mut sets = self.shared.clone();
            sets.make_eager(peer);
            self.track(root, sets);
        }
    }

    /// Moves `peer` to the lazy set for `root`.
    pub(crate) fn set_lazy(&mut self, root: &I, peer: &I) {
        if !self.per_root {
            self.shared.make_lazy(peer);
        } else if let Some(sets) = self.roots.touch(root) {
            sets.make_lazy(peer);
        } else if !self.shared.is_lazy(peer) {
            let mut sets = self.shared.clone();
            sets.make_lazy(peer);
            self.track(root, sets);
        }
    }

    fn track(&mut self, root: &I, sets: Sets<I>) {
        if self.roots.insert(root.clone(), sets).is_some() {
            self.evicted += 1;
        }
    }

    /// A neighbour came up. `count` is how many neighbours there are now,
    /// this one included.
    ///
    /// In the shared pair, when the eager set is full the newcomer replaces a
    /// random eager member with probability `k / count` (reservoir
    /// sampling), so the eager set is a uniform sample of the neighbours and
    /// not simply the first `k` to come up: in a simulation every node would
    /// otherwise pick the same low-numbered nodes. Tracked roots keep the
    /// trees they learned and only place the newcomer.
    pub(crate) fn add_neighbor(
        &mut self,
        peer: &I,
        count: usize,
        eager_cap: Option<usize>,
        lazy_cap: Option<usize>,
        rng: &mut Rng,
    ) {
        for sets in self.roots.values_mut() {
            sets.place(peer, eager_cap, lazy_cap);
        }
        let shared = &mut self.shared;
        let Some(k) = eager_cap else {
            shared.eager.push(peer.clone());
            return;
        };
        if shared.eager.len() < k {
            shared.eager.push(peer.clone());
            return;
        }
        let mut candidate = peer.clone();
        if let Some(slot) = rng::index(rng, count).and_then(|j| shared.eager.get_mut(j)) {
            candidate = core::mem::replace(slot, candidate);
        }
        match lazy_cap {
            None => shared.lazy.push(candidate),
            Some(l) if shared.lazy.len() < l => shared.lazy.push(candidate),
            Some(_) => {
                // Same sampling for the lazy set among the non-eager.
                let others = count.saturating_sub(shared.eager.len());
                if let Some(slot) = rng::index(rng, others).and_then(|j| shared.lazy.get_mut(j)) {
                    *slot = candidate;
                }
            }
        }
    }

    /// A neighbour went down: it leaves every set. In mesh mode the shared
    /// pair keeps its eager fanout by promoting a random other neighbour.
    pub(crate) fn remove_neighbor(&mut self, peer: &I, neighbors: &[I], eager_cap: Option<usize>, rng: &mut Rng) {
        for sets in self.roots.values_mut() {
            sets.remove(peer);
        }
        let was_eager = self.shared.remove(peer);
        let Some(k) = eager_cap else { return };
        if !was_eager || self.shared.eager.len() >= k {
            return;
        }
        let candidates: Vec<&I> = neighbors
            .iter()
            .filter(|n| *n != peer && !self.shared.is_eager(n))
            .collect();
        if let Some(j) = rng::index(rng, candidates.len()) {
            let promoted = candidates[j].clone();
            self.shared.make_eager(&promoted);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_are_tracked_only_when_they_diverge() {
        let mut t = Trees::new(TreeMode::PerRoot { max_roots: 2 });
        let mut rng = rng::from_seed(1);
        for (i, p) in [1u32, 2, 3].iter().enumerate() {
            t.add_neighbor(p, i + 1, None, None, &mut rng);
        }
        t.set_eager(&10, &1);
        assert_eq!(t.tracked(), 0, "already eager in the shared pair");
        t.set_lazy(&10, &1);
        assert_eq!(t.tracked(), 1);
        assert_eq!(t.peek(&10).eager, [2, 3]);
        assert_eq!(t.peek(&11).eager, [1, 2, 3]);
        t.set_lazy(&11, &2);
        t.set_lazy(&12, &3);
        assert_eq!((t.tracked(), t.evicted), (2, 1));
        assert!(!t.is_tracked(&10), "least recently used evicted");
        assert_eq!(t.peek(&10).eager, [1, 2, 3], "falls back to the shared pair");
    }

    #[test]
    fn mesh_caps_and_reservoir() {
        let mut t = Trees::new(TreeMode::Shared);
        let mut rng = rng::from_seed(3);
        for p in 0u32..50 {
            t.add_neighbor(&p, p as usize + 1, Some(3), Some(1), &mut rng);
            assert!(t.peek(&0).eager.len() <= 3);
            assert!(t.peek(&0).lazy.len() <= 1);
        }
        assert!(
            t.peek(&0).eager.iter().any(|p| *p >= 3),
            "the eager set is a sample, not the first three"
        );
        let neighbors: Vec<u32> = (0..50).collect();
        let gone = t.peek(&0).eager[0];
        t.remove_neighbor(&gone, &neighbors, Some(3), &mut rng);
        assert_eq!(t.peek(&0).eager.len(), 3, "fanout kept");
        assert!(!t.peek(&0).eager.contains(&gone));
    }
}
