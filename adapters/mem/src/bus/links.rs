//! The table of a node's established links.

use crate::Id;

/// The peers a node has an established link with, sorted: every delivered
/// frame checks membership here, and a sorted vector answers from one or two
/// cache lines where a B-tree walked several (it was the simulator's largest
/// single cost at 10,000 nodes).
#[derive(Default)]
pub(super) struct Links(pub(super) Vec<Id>);

impl Links {
    /// Adds `peer`; whether it was new.
    pub(super) fn insert(&mut self, peer: Id) -> bool {
        match self.0.binary_search(&peer) {
            Ok(_) => false,
            Err(at) => {
                self.0.insert(at, peer);
                true
            }
        }
    }

    /// Removes `peer`; whether it was there.
    pub(super) fn remove(&mut self, peer: &Id) -> bool {
        match self.0.binary_search(peer) {
            Ok(at) => {
                self.0.remove(at);
                true
            }
            Err(_) => false,
        }
    }

    pub(super) fn iter(&self) -> std::slice::Iter<'_, Id> {
        self.0.iter()
    }
}
