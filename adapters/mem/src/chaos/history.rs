//! The model of the acknowledged history: every write, what it saw, which
//! are acknowledged, which were collected, and which were legitimately lost
//! with a wiped disk.
//!
//! # Identifying writes in a read
//!
//! Every put carries a unique payload, `w<index>/n<node>`, so a live
//! sibling names its write. A tombstone carries no value; it is named by its
//! LWW timestamp. The runner issues every write at a distinct virtual
//! microsecond, and a write's timestamp is its `now` (raised only above a
//! stored timestamp, which is always earlier), so `(key, timestamp)` names
//! one delete.
//!
//! # Superseded
//!
//! A write *saw* the writes present in the read its context came from (for
//! a blind write, a `get` at its node just before it), and transitively what
//! those saw. Write `w` is *accounted for* in a final state of its key when
//! `w` is in the closure, under "saw", of the writes present there (a live
//! value, or a tombstone) together with the objects any node was observed to
//! garbage-collect under that key: a collected tombstone is a delete that
//! took effect, and what it saw is legitimately gone.

use crate::Id;
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet};

/// One sibling as the model sees it: a value (`None` for a tombstone) and
/// its LWW timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sibling {
    /// The value, or `None` for a tombstone.
    pub value: Option<Bytes>,
    /// The writer's timestamp.
    pub timestamp: u64,
}

/// One put or delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// The coordinating node.
    pub node: Id,
    /// Key index.
    pub key: usize,
    /// A delete (tombstone).
    pub delete: bool,
    /// Its LWW timestamp (names a tombstone).
    pub timestamp: u64,
    /// Acknowledged: `PutDurable` seen, or `put` returned for a non-durable
    /// store.
    pub acked: bool,
    /// The writes present in the read its context came from.
    pub saw: BTreeSet<usize>,
    /// Why its loss is allowed, if it is: its only copies were on a disk the
    /// schedule wiped, or on a member the operator removed.
    pub excused: Option<String>,
}

/// Every write of a run.
#[derive(Debug, Clone, Default)]
pub struct History {
    writes: Vec<Write>,
    /// Deletes by (key, timestamp).
    tombstones: BTreeMap<(usize, u64), usize>,
    /// Per key, the writes present in objects some node garbage-collected.
    collected: BTreeMap<usize, BTreeSet<usize>>,
}

impl History {
    /// An empty history.
    pub fn new() -> Self {
        History::default()
    }

    /// The payload of write `index` at `node`.
    pub fn payload(index: usize, node: Id) -> Bytes {
        Bytes::from(format!("w{index}/n{node}"))
    }

    /// The write a payload names.
    pub fn parse(payload: &[u8]) -> Option<usize> {
        let s = std::str::from_utf8(payload).ok()?;
        s.strip_prefix('w')?.split('/').next()?.parse().ok()
    }

    /// Records a write about to be issued; its index (for its payload).
    pub fn begin(&mut self, node: Id, key: usize, delete: bool, timestamp: u64, saw: BTreeSet<usize>) -> usize {
        let index = self.writes.len();
        self.writes.push(Write {
            node,
            key,
            delete,
            timestamp,
            acked: false,
            saw,
            excused: None,
        });
        if delete {
            self.tombstones.insert((key, timestamp), index);
        }
        index
    }

    /// Marks write `index` acknowledged.
    pub fn ack(&mut self, index: usize) {
        self.writes[index].acked = true;
    }

    /// Marks write `index` as allowed to be lost.
    pub fn excuse(&mut self, index: usize, why: impl Into<String>) {
        let w = &mut self.writes[index];
        if w.excused.is_none() {
            w.excused = Some(why.into());
        }
    }

    /// Every write, by index.
    pub fn writes(&self) -> &[Write] {
        &self.writes
    }

    /// The writes present in a state of `key` (siblings as read).
    pub fn present<'a>(&self, key: usize, siblings: impl IntoIterator<Item = &'a Sibling>) -> BTreeSet<usize> {
        siblings
            .into_iter()
            .filter_map(|s| match &s.value {
                Some(v) => History::parse(v).filter(|&i| i < self.writes.len()),
                None => self.tombstones.get(&(key, s.timestamp)).copied(),
            })
            .collect()
    }

    /// `roots` and everything they transitively saw.
    pub fn closure(&self, roots: impl IntoIterator<Item = usize>) -> BTreeSet<usize> {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<usize> = roots.into_iter().collect();
        while let Some(w) = todo.pop() {
            if w < self.writes.len() && seen.insert(w) {
                todo.extend(self.writes[w].saw.iter().copied());
            }
        }
        seen
    }

    /// A node garbage-collected an object of `key` holding `present`.
    pub fn collected(&mut self, key: usize, present: BTreeSet<usize>) {
        self.collected.entry(key).or_default().extend(present);
    }

    /// Whether anything of `key` was observed collected.
    pub fn was_collected(&self, key: usize) -> bool {
        self.collected.get(&key).is_some_and(|c| !c.is_empty())
    }

    /// Everything that counts as still accounted for in a state of `key`
    /// where `present` is held: the closure of `present` and the collected
    /// objects.
    pub fn covered(&self, key: usize, present: &BTreeSet<usize>) -> BTreeSet<usize> {
        let collected = self.collected.get(&key).into_iter().flatten().copied();
        self.closure(present.iter().copied().chain(collected))
    }

    /// Acknowledged, unexcused writes to `key` not accounted for when the
    /// final state holds `present`.
    pub fn lost(&self, key: usize, present: &BTreeSet<usize>) -> Vec<usize> {
        let covered = self.covered(key, present);
        (0..self.writes.len())
            .filter(|&i| {
                let w = &self.writes[i];
                w.key == key && w.acked && w.excused.is_none() && !covered.contains(&i)
            })
            .collect()
    }

    /// Puts in `present` that a collected tombstone of `key` saw: values
    /// that came back after their delete was collected.
    pub fn resurrected(&self, key: usize, present: &BTreeSet<usize>) -> Vec<usize> {
        if !self.was_collected(key) {
            return Vec::new();
        }
        let dead = self.closure(self.collected.get(&key).into_iter().flatten().copied());
        present
            .iter()
            .copied()
            .filter(|i| !self.writes[*i].delete && dead.contains(i))
            .collect()
    }

    /// Describes write `i` for a report.
    pub fn describe(&self, i: usize) -> String {
        let w = &self.writes[i];
        format!(
            "w{i} ({} k{} at node {}, ts {}, saw {:?}{})",
            if w.delete { "delete" } else { "put" },
            w.key,
            w.node,
            w.timestamp,
            w.saw,
            if w.acked { ", acked" } else { "" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(h: &mut History, node: Id, ts: u64, saw: &[usize]) -> usize {
        let i = h.begin(node, 0, false, ts, saw.iter().copied().collect());
        h.ack(i);
        i
    }

    fn value(i: usize, node: Id, ts: u64) -> Sibling {
        Sibling {
            value: Some(History::payload(i, node)),
            timestamp: ts,
        }
    }

    #[test]
    fn an_acked_write_missing_from_the_final_state_is_lost() {
        let mut h = History::new();
        let a = put(&mut h, 1, 10, &[]);
        let b = put(&mut h, 2, 11, &[]);
        // Only b survives, and b never saw a.
        let present = h.present(0, &[value(b, 2, 11)]);
        assert_eq!(h.lost(0, &present), vec![a]);
        // The key vanished without any collection: both are lost.
        assert_eq!(h.lost(0, &BTreeSet::new()), vec![a, b]);
    }

    #[test]
    fn a_write_superseded_by_one_that_saw_it_is_not_lost() {
        let mut h = History::new();
        let a = put(&mut h, 1, 10, &[]);
        let b = put(&mut h, 2, 11, &[a]);
        let c = put(&mut h, 3, 12, &[b]);
        let present = h.present(0, &[value(c, 3, 12)]);
        assert!(h.lost(0, &present).is_empty(), "a and b are superseded, transitively");
        // A tombstone that saw c accounts for all three.
        let d = h.begin(4, 0, true, 13, [c].into());
        h.ack(d);
        let tomb = Sibling {
            value: None,
            timestamp: 13,
        };
        let present = h.present(0, &[tomb]);
        assert_eq!(present, [d].into());
        assert!(h.lost(0, &present).is_empty());
        // An unacknowledged write may be lost.
        let e = h.begin(5, 0, false, 14, BTreeSet::new());
        assert!(h.lost(0, &present).is_empty(), "w{e} was never acknowledged");
    }

    #[test]
    fn collection_accounts_for_what_the_tombstone_saw_and_forbids_it_back() {
        let mut h = History::new();
        let a = put(&mut h, 1, 10, &[]);
        let d = h.begin(2, 0, true, 11, [a].into());
        h.ack(d);
        assert_eq!(h.lost(0, &BTreeSet::new()), vec![a, d], "gone without collection");
        h.collected(0, [d].into());
        assert!(h.lost(0, &BTreeSet::new()).is_empty(), "collected: legitimately gone");
        // A later write not seeing the delete is fine; a's value coming back
        // is a resurrection.
        let b = put(&mut h, 3, 20, &[]);
        let present = h.present(0, &[value(b, 3, 20)]);
        assert!(h.lost(0, &present).is_empty());
        assert!(h.resurrected(0, &present).is_empty());
        let back = h.present(0, &[value(a, 1, 10), value(b, 3, 20)]);
        assert_eq!(h.resurrected(0, &back), vec![a]);
    }

    #[test]
    fn an_excused_write_may_be_lost() {
        let mut h = History::new();
        let a = put(&mut h, 1, 10, &[]);
        h.excuse(a, "wiped");
        assert!(h.lost(0, &BTreeSet::new()).is_empty());
    }
}
