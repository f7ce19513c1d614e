//! Each node's simulated disk: the metadata records it persisted.

use bytes::Bytes;
use epidemic_core::metadata::{FullPrefix, Persist};
use std::collections::BTreeMap;

/// What one node has durably written: the latest encoded object per key,
/// exactly as its [`Persist`] records left it. It survives a crash; a
/// restart with [`Bus::restart_from_disk`](crate::Bus::restart_from_disk)
/// feeds it back with `Node::restore`.
///
/// The bus writes every record the moment the node emits it and confirms it
/// at once with `Node::persisted`, as a driver with a synchronous store
/// would.
#[derive(Debug, Default, Clone)]
pub struct Disk {
    objects: BTreeMap<(FullPrefix, Bytes), Bytes>,
    writes: u64,
}

impl Disk {
    /// Applies a record: stores the object, or removes a collected key.
    pub(crate) fn apply(&mut self, record: &Persist) {
        self.writes += 1;
        let key = (record.prefix.clone(), record.key.clone());
        match &record.object {
            Some(object) => {
                self.objects.insert(key, object.clone());
            }
            None => {
                self.objects.remove(&key);
            }
        }
    }

    /// The object stored under `(prefix, key)`.
    pub fn get(&self, prefix: &FullPrefix, key: &[u8]) -> Option<&Bytes> {
        self.objects.get(&(prefix.clone(), Bytes::copy_from_slice(key)))
    }

    /// Keys stored.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Records applied since the disk was created (or wiped).
    pub fn writes(&self) -> u64 {
        self.writes
    }

    /// Every stored `(prefix, key, object)`, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&FullPrefix, &Bytes, &Bytes)> + '_ {
        self.objects.iter().map(|((p, k), o)| (p, k, o))
    }
}
