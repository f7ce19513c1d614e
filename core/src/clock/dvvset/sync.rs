//! Merging replicas: [`DVVSet::sync`] and the server-side
//! [`DVVSet::update_with`], over the entry-wise merge walk.

use alloc::vec::Vec;
use core::cmp::Ordering;

use super::{DVVSet, Entry};

/// Merging. Anonymous values are deduplicated, hence `V: PartialEq`.
impl<A: Ord + Clone, V: Clone + PartialEq> DVVSet<A, V> {
    /// Merges two replicas of a key: the union of their causal histories,
    /// keeping every value that neither side's context has overwritten.
    ///
    /// For one server id, the side with the higher counter has the newer
    /// values; of those, the ones the other side has seen (events up to its
    /// counter) survive only if the other side still holds them too.
    pub fn sync(&self, other: &Self) -> Self {
        let anonymous = if self.less(other) {
            other.anonymous.clone()
        } else if other.less(self) {
            self.anonymous.clone()
        } else {
            let mut union: Vec<V> = Vec::with_capacity(self.anonymous.len() + other.anonymous.len());
            for value in self.anonymous.iter().chain(&other.anonymous) {
                if !union.contains(value) {
                    union.push(value.clone());
                }
            }
            union
        };
        DVVSet {
            entries: sync_entries(&self.entries, &other.entries),
            anonymous,
        }
    }

    /// [`sync`](Self::sync) over any number of sets; the empty set for none.
    pub fn sync_all<'a, I>(sets: I) -> Self
    where
        I: IntoIterator<Item = &'a Self>,
        Self: 'a,
    {
        sets.into_iter().fold(Self::default(), |acc, set| acc.sync(set))
    }

    /// Stores a client's write (Riak's `update/3`): `self` is the write, from
    /// [`new_with`](Self::new_with) or [`new`](Self::new); `stored` is the
    /// coordinating server's current copy; `server_id` is that server.
    ///
    /// The stored values whose dots the write's context covers are dropped
    /// (the client saw them), the others stay as siblings, and the new value
    /// gets `server_id`'s next dot. The result descends both `stored` and the
    /// write's context.
    ///
    /// A write normally carries one value. With several, each gets its own
    /// dot (they are siblings); with none, the context only drops what it
    /// covers.
    pub fn update_with(self, stored: &Self, server_id: A) -> Self {
        let context = DVVSet {
            entries: self.entries,
            anonymous: Vec::new(),
        };
        let mut out = context.sync(stored);
        for value in self.anonymous {
            out.event(server_id.clone(), value);
        }
        out
    }
}

/// The entry-wise merge of two sorted entry lists.
fn sync_entries<A: Ord + Clone, V: Clone>(xs: &[Entry<A, V>], ys: &[Entry<A, V>]) -> Vec<Entry<A, V>> {
    let mut out = Vec::with_capacity(xs.len().max(ys.len()));
    let mut xs = xs.iter().peekable();
    let mut ys = ys.iter().peekable();
    loop {
        let next = match (xs.peek(), ys.peek()) {
            (Some(x), Some(y)) => match x.id.cmp(&y.id) {
                Ordering::Less => xs.next().cloned(),
                Ordering::Greater => ys.next().cloned(),
                Ordering::Equal => {
                    let merged = merge_entry(x, y);
                    xs.next();
                    ys.next();
                    Some(merged)
                }
            },
            (Some(_), None) => xs.next().cloned(),
            (None, Some(_)) => ys.next().cloned(),
            (None, None) => None,
        };
        match next {
            Some(entry) => out.push(entry),
            None => return out,
        }
    }
}

/// Merges two entries of the same id.
///
/// Let `new` have the higher counter. Its live dots are the last
/// `new.values.len()` events. Of those, events after `old.counter` are news
/// to `old` and survive; events up to `old.counter` survive only if they are
/// among `old`'s live ones too. Both ranges end at `new.counter`, so the
/// survivors are the newest `min(len(new), new.counter - old.counter +
/// len(old))` values of `new`.
fn merge_entry<A: Clone, V: Clone>(x: &Entry<A, V>, y: &Entry<A, V>) -> Entry<A, V> {
    let (new, old) = if x.counter >= y.counter { (x, y) } else { (y, x) };
    let unseen = usize::try_from(new.counter - old.counter).unwrap_or(usize::MAX);
    let keep = new.values.len().min(unseen.saturating_add(old.values.len()));
    let skip = new.values.len() - keep;
    Entry {
        id: new.id.clone(),
        counter: new.counter,
        values: new.values.iter().skip(skip).cloned().collect(),
    }
}
