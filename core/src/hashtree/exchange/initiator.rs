//! The initiator's side of the compare-exchange: [`Exchange`] walks both
//! trees down together and reports the [`Diff`].
//!
//! It owns the driving half of every protocol step: it sends the root
//! request and compares the root (step 1), asks for and compares the child
//! digests of the differing nodes level by level (step 2), asks for and
//! checks the key listings of the differing segments, resuming listings cut
//! short (step 3), and merges them with its own segments into the [`Diff`]
//! it reports (step 4), within its [`Limits`].

use alloc::vec::Vec;
use core::cmp::Ordering;
use core::ops::Range;

use super::super::MAX_KEY_LEN;
use super::super::digest::{self, Digest};
use super::super::message::{self, MAX_SEGMENTS_PER_REQUEST, Message, SegmentKeys};
use super::super::tree::{Config, Entry, HashTree};
use super::{Diff, ExchangeError, Limits, Position, Step, after_position};

/// The initiator's side of one compare-exchange with one peer.
///
/// The exchange walks down both trees together, asking the peer only for
/// what differs, and finishes with a [`Diff`]. It holds no reference to the
/// local tree; each call gets the tree again, so the tree may be edited
/// between calls (the diff then reflects the tree as it was when each part
/// was compared, and the next exchange catches the rest).
///
/// ```
/// use epidemic_core::hashtree::{Digest, Exchange, HashTree, Step, respond};
///
/// let mut local = HashTree::default();
/// let mut remote = HashTree::default();
/// for tree in [&mut local, &mut remote] {
///     tree.insert(b"apple", Digest::of(b"red")).unwrap();
///     tree.insert(b"banana", Digest::of(b"yellow")).unwrap();
/// }
/// remote.insert(b"cherry", Digest::of(b"dark red")).unwrap();
/// local.update();
/// remote.update();
///
/// let (mut exchange, mut request) = Exchange::start(&local);
/// let diff = loop {
///     // In a node, `request` crosses the wire and `reply` comes back.
///     let reply = respond(&remote, &request).unwrap();
///     match exchange.handle(&local, reply).unwrap() {
///         Step::Send(next) => request = next,
///         Step::Done(diff) => break diff,
///     }
/// };
/// assert_eq!(diff.missing_locally, vec![b"cherry".to_vec()]);
/// assert!(diff.missing_remotely.is_empty() && diff.different.is_empty());
/// assert!(diff.complete);
/// ```
#[derive(Debug)]
pub struct Exchange {
    config: Config,
    levels: u32,
    limits: Limits,
    phase: Phase,
    rounds: u32,
    diff: Diff,
}

#[derive(Debug)]
enum Phase {
    /// Waiting for the root.
    Root,
    /// Comparing the children of `pending` nodes at `level`.
    Children {
        level: u32,
        /// Differing nodes at `level`, ascending.
        pending: Vec<u32>,
        /// The part of `pending` asked for; everything before it is done.
        sent: Range<usize>,
        /// Differing children found so far (at `level + 1`), ascending.
        found: Vec<u32>,
    },
    /// Comparing the keys of `pending` segments.
    Keys {
        /// Differing segments, ascending.
        pending: Vec<u32>,
        /// The part of `pending` asked for; everything before it is done.
        sent: Range<usize>,
        /// Where the first segment asked for resumes.
        after: Option<Vec<u8>>,
    },
    /// Finished, failed or given up.
    Done,
}

impl Exchange {
    /// Starts an exchange from `local` with the default [`Limits`]; send the
    /// message to the peer.
    pub fn start(local: &HashTree) -> (Exchange, Message) {
        Exchange::with_limits(local, Limits::default())
    }

    /// Starts an exchange from `local` with the given limits.
    pub fn with_limits(local: &HashTree, limits: Limits) -> (Exchange, Message) {
        let exchange = Exchange {
            config: local.config(),
            levels: local.inner_levels(),
            limits,
            phase: Phase::Root,
            rounds: 1,
            diff: Diff {
                complete: true,
                ..Diff::default()
            },
        };
        (exchange, Message::RootRequest)
    }

    /// Requests sent so far (the root request included).
    pub fn rounds(&self) -> u32 {
        self.rounds
    }

    /// Whether the exchange has ended (done or failed).
    pub fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Done)
    }

    /// Feeds the peer's reply to the last request, comparing it with
    /// `local`. Returns the next request, or the diff once done.
    ///
    /// On error the exchange is over; `local` is never changed.
    pub fn handle(&mut self, local: &HashTree, reply: Message) -> Result<Step, ExchangeError> {
        if matches!(self.phase, Phase::Done) {
            return Err(ExchangeError::Finished);
        }
        let result = self.process(local, reply);
        match result {
            Ok(()) => Ok(self.advance()),
            Err(e) => {
                self.phase = Phase::Done;
                Err(e)
            }
        }
    }

    fn process(&mut self, local: &HashTree, reply: Message) -> Result<(), ExchangeError> {
        if local.config() != self.config {
            return Err(ExchangeError::WrongTree);
        }
        let width = self.config.width;
        match (&mut self.phase, reply) {
            (Phase::Root, Message::Root { segments, width, root }) => {
                if segments != self.config.segments || width != self.config.width {
                    return Err(ExchangeError::ConfigMismatch { segments, width });
                }
                // The root is node 0 of level 0: walk down from it if it
                // differs (when it is empty nothing is asked, and the walk
                // ends at once).
                let mut pending = Vec::new();
                diverge(
                    &mut self.diff,
                    &self.limits,
                    local,
                    0,
                    0,
                    local.root(),
                    root,
                    &mut pending,
                );
                self.phase = Phase::Children {
                    level: 0,
                    pending,
                    sent: 0..0,
                    found: Vec::new(),
                };
                Ok(())
            }
            (
                Phase::Children {
                    level,
                    pending,
                    sent,
                    found,
                },
                Message::Children { level: got, nodes },
            ) => {
                if got != *level {
                    return Err(ExchangeError::Invalid("children reply for another level"));
                }
                let asked = &pending[sent.clone()];
                if nodes.len() != asked.len() {
                    return Err(ExchangeError::Invalid("children reply of the wrong length"));
                }
                // Check everything before comparing anything.
                for node in &nodes {
                    if let Err(why) = node.unpack(width) {
                        return Err(ExchangeError::Invalid(why));
                    }
                }
                let child_level = *level + 1;
                for (&bucket, node) in asked.iter().zip(&nodes) {
                    let remote = node.unpack(width).map_err(ExchangeError::Invalid)?;
                    let first = bucket * width;
                    for (position, mine, theirs) in merge_children(local.children(*level, bucket), remote) {
                        diverge(
                            &mut self.diff,
                            &self.limits,
                            local,
                            child_level,
                            first + position,
                            mine,
                            theirs,
                            found,
                        );
                    }
                }
                sent.start = sent.end;
                Ok(())
            }
            (Phase::Keys { pending, sent, after }, Message::Keys { sections }) => {
                let asked = &pending[sent.clone()];
                let hashes = check_sections(local, asked, after.as_deref(), &sections)?;
                for (i, (section, hashes)) in sections.into_iter().zip(hashes).enumerate() {
                    let lower = if i == 0 { after.take() } else { None };
                    let lower = lower.as_deref().map(|k| (digest::key_hash(k), k));
                    let upper = match (section.complete, section.entries.last(), hashes.last()) {
                        (false, Some((key, _)), Some(&hash)) => Some((hash, key.as_slice())),
                        _ => None,
                    };
                    compare_segment(
                        &mut self.diff,
                        &self.limits,
                        local.segment_slice(section.segment),
                        (&section.entries, &hashes),
                        lower,
                        upper,
                    );
                    if section.complete {
                        sent.start += 1;
                    } else {
                        *after = upper.map(|(_, k)| k.to_vec());
                    }
                }
                sent.end = sent.start;
                Ok(())
            }
            (Phase::Done, _) => Err(ExchangeError::Finished),
            (phase, other) => Err(ExchangeError::Unexpected {
                got: other.name(),
                expected: match phase {
                    Phase::Root => "Root",
                    Phase::Children { .. } => "Children",
                    _ => "Keys",
                },
            }),
        }
    }

    /// Moves to the next level or phase when the current one is answered,
    /// and produces the next request or the diff.
    fn advance(&mut self) -> Step {
        loop {
            match &mut self.phase {
                Phase::Children {
                    level,
                    pending,
                    sent,
                    found,
                } if sent.start == pending.len() => {
                    let next = core::mem::take(found);
                    self.phase = if next.is_empty() {
                        Phase::Done
                    } else if *level + 1 == self.levels {
                        Phase::Keys {
                            pending: next,
                            sent: 0..0,
                            after: None,
                        }
                    } else {
                        Phase::Children {
                            level: *level + 1,
                            pending: next,
                            sent: 0..0,
                            found: Vec::new(),
                        }
                    };
                }
                Phase::Keys { pending, sent, .. } if sent.start == pending.len() => self.phase = Phase::Done,
                Phase::Done => return self.finish(true),
                _ => break,
            }
        }
        let full = self.diff.len() >= self.limits.max_diff_keys;
        if full || !self.diff.complete || self.rounds >= self.limits.max_rounds {
            return self.finish(false);
        }
        self.rounds += 1;
        let width = self.config.width;
        match &mut self.phase {
            Phase::Children {
                level, pending, sent, ..
            } => {
                let end = pending.len().min(sent.start + message::max_buckets_per_request(width));
                *sent = sent.start..end;
                Step::Send(Message::ChildrenRequest {
                    level: *level,
                    buckets: pending[sent.clone()].to_vec(),
                })
            }
            Phase::Keys { pending, sent, after } => {
                let end = pending.len().min(sent.start + MAX_SEGMENTS_PER_REQUEST);
                *sent = sent.start..end;
                Step::Send(Message::KeysRequest {
                    segments: pending[sent.clone()].to_vec(),
                    after: after.clone(),
                })
            }
            // Root waits for a reply and Done returned above.
            Phase::Root | Phase::Done => self.finish(false),
        }
    }

    fn finish(&mut self, complete: bool) -> Step {
        self.phase = Phase::Done;
        let mut diff = core::mem::take(&mut self.diff);
        diff.complete &= complete;
        Step::Done(diff)
    }
}

/// Records a difference between the local and remote digests of node `index`
/// at `level`: a subtree the peer lacks is all missing remotely, anything
/// else is looked into further (`found`).
#[allow(clippy::too_many_arguments)]
fn diverge(
    diff: &mut Diff,
    limits: &Limits,
    local: &HashTree,
    level: u32,
    index: u32,
    mine: Digest,
    theirs: Digest,
    found: &mut Vec<u32>,
) {
    if mine == theirs {
        return;
    }
    if theirs.is_empty() {
        for key in local.subtree_keys(level, index) {
            if !push(diff, limits, Side::MissingRemotely, key) {
                return;
            }
        }
    } else {
        found.push(index);
    }
}

/// Which list of a [`Diff`] a key goes to.
#[derive(Clone, Copy)]
enum Side {
    MissingLocally,
    MissingRemotely,
    Different,
}

/// Adds `key` unless the diff is full (which marks it incomplete); whether
/// it was added.
fn push(diff: &mut Diff, limits: &Limits, side: Side, key: &[u8]) -> bool {
    if diff.len() >= limits.max_diff_keys {
        diff.complete = false;
        return false;
    }
    let list = match side {
        Side::MissingLocally => &mut diff.missing_locally,
        Side::MissingRemotely => &mut diff.missing_remotely,
        Side::Different => &mut diff.different,
    };
    list.push(key.to_vec());
    true
}

/// (position, local, remote) for every position where the two sorted
/// child lists differ.
fn merge_children(
    mine: impl Iterator<Item = (u32, Digest)>,
    theirs: impl Iterator<Item = (u32, Digest)>,
) -> impl Iterator<Item = (u32, Digest, Digest)> {
    let mut mine = mine.peekable();
    let mut theirs = theirs.peekable();
    core::iter::from_fn(move || {
        loop {
            let next = match (mine.peek(), theirs.peek()) {
                (None, None) => return None,
                (Some(&(p, d)), None) => {
                    mine.next();
                    (p, d, Digest::EMPTY)
                }
                (None, Some(&(p, d))) => {
                    theirs.next();
                    (p, Digest::EMPTY, d)
                }
                (Some(&(p, a)), Some(&(q, b))) => {
                    if p < q {
                        mine.next();
                        (p, a, Digest::EMPTY)
                    } else if q < p {
                        theirs.next();
                        (q, Digest::EMPTY, b)
                    } else {
                        mine.next();
                        theirs.next();
                        (p, a, b)
                    }
                }
            };
            if next.1 != next.2 {
                return Some(next);
            }
        }
    })
}

/// Checks a keys reply against the request it answers; on success, the key
/// hashes of each section's entries.
fn check_sections(
    local: &HashTree,
    asked: &[u32],
    after: Option<&[u8]>,
    sections: &[SegmentKeys],
) -> Result<Vec<Vec<u64>>, ExchangeError> {
    if sections.is_empty() {
        return Err(ExchangeError::Invalid("keys reply with no sections"));
    }
    if sections.len() > asked.len() {
        return Err(ExchangeError::Invalid("keys reply with more sections than asked"));
    }
    let segments = local.config().segments;
    let last = sections.len() - 1;
    let mut all = Vec::with_capacity(sections.len());
    for (i, (section, &segment)) in sections.iter().zip(asked).enumerate() {
        if section.segment != segment {
            return Err(ExchangeError::Invalid("keys section for a segment not asked for"));
        }
        if !section.complete && (i != last || section.entries.is_empty()) {
            return Err(ExchangeError::Invalid("incomplete keys section not last or empty"));
        }
        let mut previous = if i == 0 {
            after.map(|k| (digest::key_hash(k), k))
        } else {
            None
        };
        let mut hashes = Vec::with_capacity(section.entries.len());
        for (key, _) in &section.entries {
            if key.len() > MAX_KEY_LEN {
                return Err(ExchangeError::Invalid("key too long"));
            }
            let hash = digest::key_hash(key);
            if digest::segment_of(hash, segments) != segment {
                return Err(ExchangeError::Invalid("key listed in the wrong segment"));
            }
            let here = (hash, key.as_slice());
            if previous.is_some_and(|p| p >= here) {
                return Err(ExchangeError::Invalid("keys not strictly ascending in segment order"));
            }
            previous = Some(here);
            hashes.push(hash);
        }
        all.push(hashes);
    }
    Ok(all)
}

/// Compares the local entries of a segment with the remote ones (with their
/// key hashes) over the range (`lower`, `upper`] of segment order, unbounded
/// where `None`.
fn compare_segment(
    diff: &mut Diff,
    limits: &Limits,
    mine: &[Entry],
    (theirs, hashes): (&[(Vec<u8>, Digest)], &[u64]),
    lower: Option<Position<'_>>,
    upper: Option<Position<'_>>,
) {
    let mine = after_position(mine, lower);
    let mine = match upper {
        Some(upper) => &mine[..mine.partition_point(|e| e.position() <= upper)],
        None => mine,
    };
    let (mut i, mut j) = (0, 0);
    loop {
        let added = match (mine.get(i), theirs.get(j).zip(hashes.get(j))) {
            (None, None) => return,
            (Some(e), None) => {
                i += 1;
                push(diff, limits, Side::MissingRemotely, &e.key)
            }
            (None, Some(((k, _), _))) => {
                j += 1;
                push(diff, limits, Side::MissingLocally, k)
            }
            (Some(e), Some(((k, d), &h))) => match e.position().cmp(&(h, k.as_slice())) {
                Ordering::Less => {
                    i += 1;
                    push(diff, limits, Side::MissingRemotely, &e.key)
                }
                Ordering::Greater => {
                    j += 1;
                    push(diff, limits, Side::MissingLocally, k)
                }
                Ordering::Equal => {
                    i += 1;
                    j += 1;
                    e.digest == *d || push(diff, limits, Side::Different, k)
                }
            },
        };
        if !added {
            return;
        }
    }
}
