//! [`Siblings`], the iterator over a [`DVVSet`]'s values.

use core::iter::FusedIterator;

#[cfg(doc)]
use super::DVVSet;
use super::Entry;

/// The values of a [`DVVSet`], from [`DVVSet::values`]: the dotted ones by
/// server id (oldest first within a server), then the anonymous ones.
#[derive(Debug)]
pub struct Siblings<'a, A, V> {
    pub(super) entries: core::slice::Iter<'a, Entry<A, V>>,
    pub(super) current: core::slice::Iter<'a, V>,
    pub(super) anonymous: core::slice::Iter<'a, V>,
}

impl<A, V> Clone for Siblings<'_, A, V> {
    fn clone(&self) -> Self {
        Siblings {
            entries: self.entries.clone(),
            current: self.current.clone(),
            anonymous: self.anonymous.clone(),
        }
    }
}

impl<'a, A, V> Iterator for Siblings<'a, A, V> {
    type Item = &'a V;

    fn next(&mut self) -> Option<&'a V> {
        loop {
            if let Some(value) = self.current.next() {
                return Some(value);
            }
            match self.entries.next() {
                Some(entry) => self.current = entry.values.iter(),
                None => return self.anonymous.next(),
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let dotted: usize = self.entries.as_slice().iter().map(|e| e.values.len()).sum();
        let n = self.current.len() + dotted + self.anonymous.len();
        (n, Some(n))
    }
}

impl<A, V> ExactSizeIterator for Siblings<'_, A, V> {}

impl<A, V> FusedIterator for Siblings<'_, A, V> {}
