//! The responder's side of the compare-exchange: stateless, it answers
//! each request from its own tree.
//!
//! It owns the answering half of every protocol step: the root and the
//! tree's shape for a [`Message::RootRequest`] (step 1), the child digests
//! of the asked-for inner nodes for a [`Message::ChildrenRequest`] (step 2),
//! and the (key, object digest) listings of the asked-for segments for a
//! [`Message::KeysRequest`] (step 3), stopping early within
//! [`MAX_MESSAGE_LEN`](super::super::MAX_MESSAGE_LEN) and resuming from the
//! request's cursor. Every request is checked before it is answered.

use alloc::vec::Vec;

use super::super::MAX_KEY_LEN;
use super::super::digest;
use super::super::message::{
    self, ChildDigests, KEYS_BUDGET, MAX_SEGMENTS_PER_REQUEST, Message, SECTION_OVERHEAD, SegmentKeys,
};
use super::super::tree::HashTree;
use super::{ExchangeError, after_position};

/// Answers one request from `tree`. Stateless: every request carries all the
/// responder needs, so any number of exchanges can be served at once.
///
/// Call [`HashTree::update`] first: digests are those of the last update.
pub fn respond(tree: &HashTree, request: &Message) -> Result<Message, ExchangeError> {
    let config = tree.config();
    match request {
        Message::RootRequest => Ok(Message::Root {
            segments: config.segments,
            width: config.width,
            root: tree.root(),
        }),
        Message::ChildrenRequest { level, buckets } => {
            if *level >= tree.inner_levels() {
                return Err(ExchangeError::Invalid("level is not an inner level"));
            }
            check_indices(
                buckets,
                message::max_buckets_per_request(config.width),
                tree.nodes_at(*level),
            )?;
            let nodes = buckets
                .iter()
                .map(|&b| ChildDigests::pack(config.width, tree.children(*level, b)))
                .collect();
            Ok(Message::Children { level: *level, nodes })
        }
        Message::KeysRequest { segments, after } => {
            check_indices(segments, MAX_SEGMENTS_PER_REQUEST, config.segments)?;
            if after.as_ref().is_some_and(|k| k.len() > MAX_KEY_LEN) {
                return Err(ExchangeError::Invalid("cursor key too long"));
            }
            Ok(Message::Keys {
                sections: list_keys(tree, segments, after.as_deref()),
            })
        }
        other => Err(ExchangeError::Unexpected {
            got: other.name(),
            expected: "a request",
        }),
    }
}

/// Non-empty, at most `max` long, strictly ascending, each below `bound`.
fn check_indices(indices: &[u32], max: usize, bound: u32) -> Result<(), ExchangeError> {
    if indices.is_empty() {
        return Err(ExchangeError::Invalid("empty request"));
    }
    if indices.len() > max {
        return Err(ExchangeError::Invalid("too many indices in one request"));
    }
    if indices.windows(2).any(|w| w[0] >= w[1]) {
        return Err(ExchangeError::Invalid("indices not strictly ascending"));
    }
    if indices.iter().any(|&i| i >= bound) {
        return Err(ExchangeError::Invalid("index out of range"));
    }
    Ok(())
}

/// The sections answering a keys request, within the reply budget.
fn list_keys(tree: &HashTree, segments: &[u32], after: Option<&[u8]>) -> Vec<SegmentKeys> {
    let mut budget = KEYS_BUDGET;
    let mut sections = Vec::new();
    for (i, &segment) in segments.iter().enumerate() {
        if budget < SECTION_OVERHEAD {
            break;
        }
        let lower = if i == 0 {
            after.map(|k| (digest::key_hash(k), k))
        } else {
            None
        };
        let mut entries = after_position(tree.segment_slice(segment), lower);
        let fits = entries
            .iter()
            .take_while(|e| {
                let cost = message::entry_bound(&e.key);
                if cost + SECTION_OVERHEAD <= budget {
                    budget -= cost;
                    true
                } else {
                    false
                }
            })
            .count();
        let complete = fits == entries.len();
        if !complete && fits == 0 {
            // Not even one entry of this segment fits; it goes first next
            // time. (Never the first segment: the largest entry is far below
            // the budget, so every reply makes progress.)
            break;
        }
        entries = &entries[..fits];
        budget = budget.saturating_sub(SECTION_OVERHEAD);
        sections.push(SegmentKeys {
            segment,
            entries: entries.iter().map(|e| (e.key.to_vec(), e.digest)).collect(),
            complete,
        });
        if !complete {
            break;
        }
    }
    sections
}
