//! Cutting announcements into IHAVE and IGNORED_IHAVE batches where the
//! batches are built, so that every batch fits one frame.
//!
//! A batch ends at [`Config::max_ihave_batch`](super::Config::max_ihave_batch)
//! items, or before the item that would take its encoded size past
//! [`Config::max_batch_bytes`](super::Config::max_batch_bytes). Plain
//! broadcast ids are a few bytes and only the count binds; a metadata id
//! carries a version vector, so a batch of them can outgrow a frame long
//! before the count does.

use alloc::vec::Vec;
use postcard::ser_flavors::Size;
use serde::Serialize;

/// What an IHAVE or IGNORED_IHAVE adds to its items' bytes: the message's
/// variant tag (one byte) and the list's length (a varint of at most ten).
pub(crate) const BATCH_OVERHEAD: usize = 11;

/// The bounds of one batch.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Batching {
    /// Items per batch, at least one.
    pub(crate) max_items: usize,
    /// Encoded bytes of a whole batch message.
    pub(crate) max_bytes: usize,
}

impl Batching {
    /// Cuts `items` into batches in order. Every batch holds at least one
    /// item, so an item too large for any frame still goes (alone) and is
    /// refused by the encoder, which counts it, rather than being lost here
    /// silently.
    pub(crate) fn split<T: Serialize>(self, items: impl IntoIterator<Item = T>) -> Vec<Vec<T>> {
        let max_items = self.max_items.max(1);
        let budget = self.max_bytes.saturating_sub(BATCH_OVERHEAD);
        let mut batches = Vec::new();
        let mut current: Vec<T> = Vec::new();
        let mut bytes = 0usize;
        for item in items {
            // An item that cannot be encoded is counted as unbounded: it
            // goes alone, and the encoder reports it.
            let size = postcard::serialize_with_flavor::<T, Size, usize>(&item, Size::default()).unwrap_or(usize::MAX);
            if !current.is_empty() && (current.len() == max_items || bytes.saturating_add(size) > budget) {
                batches.push(core::mem::take(&mut current));
                bytes = 0;
            }
            bytes = bytes.saturating_add(size);
            current.push(item);
        }
        if !current.is_empty() {
            batches.push(current);
        }
        batches
    }
}

/// The length of the frame that carries `payload` as a GOSSIP with `id`
/// from `root`, at the most hops a round can count (so it never grows on the
/// way): what a broadcast must fit in `max_frame` before it is accepted.
pub(crate) fn gossip_frame_len<I: Serialize, M: Serialize>(id: &M, root: &I, payload: &[u8]) -> usize {
    #[derive(Serialize)]
    enum Shape<'a, I, M> {
        Gossip {
            id: &'a M,
            root: &'a I,
            round: u32,
            #[serde(with = "serde_bytes_ref")]
            payload: &'a [u8],
        },
    }
    // `Bytes` serializes as bytes; so does this.
    mod serde_bytes_ref {
        pub(super) fn serialize<S: serde::Serializer>(b: &&[u8], s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(b)
        }
    }
    let shape = Shape::Gossip {
        id,
        root,
        round: u32::MAX,
        payload,
    };
    let body = postcard::serialize_with_flavor::<_, Size, usize>(&shape, Size::default()).unwrap_or(usize::MAX);
    body.saturating_add(crate::wire::HEADER_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn batches_end_at_the_count_or_the_byte_budget() {
        let count = Batching {
            max_items: 3,
            max_bytes: usize::MAX,
        };
        let batches = count.split(0u8..7);
        assert_eq!(batches, vec![vec![0, 1, 2], vec![3, 4, 5], vec![6]]);

        // Items of 101 bytes (a one-byte length and 100 bytes): three fit
        // 11 + 303 = 314 bytes, a fourth would not.
        let item = vec![7u8; 100];
        let bytes = Batching {
            max_items: 100,
            max_bytes: 314,
        };
        let batches = bytes.split(core::iter::repeat_n(item.clone(), 7));
        let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![3, 3, 1]);
        for b in &batches {
            let encoded = postcard::to_allocvec(&(0u8, b)).unwrap();
            assert!(encoded.len() <= 314, "{} bytes", encoded.len());
        }
    }

    #[test]
    fn the_gossip_frame_length_is_the_encoded_frame_at_the_most_rounds() {
        use crate::broadcast::{BroadcastId, Message};
        use bytes::Bytes;
        let id = BroadcastId {
            origin: 7u32,
            seq: 1 << 40,
        };
        let payload = Bytes::from(vec![1u8; 300]);
        let message: Message<u32, BroadcastId<u32>> = Message::Gossip {
            id: id.clone(),
            root: 7,
            round: u32::MAX,
            payload: payload.clone(),
        };
        let frame = crate::wire::encode(crate::wire::Kind::Plumtree, &message, usize::MAX).unwrap();
        assert_eq!(gossip_frame_len(&id, &7u32, &payload), frame.len());
    }

    #[test]
    fn an_item_larger_than_the_budget_goes_alone() {
        let b = Batching {
            max_items: 10,
            max_bytes: 20,
        };
        let batches = b.split([vec![1u8; 2], vec![2u8; 50], vec![3u8; 2]]);
        let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![1, 1, 1]);
        assert!(b.split(Vec::<u8>::new()).is_empty());
    }
}
