//! Counters and sizes.

/// Messages of each kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Counts {
    /// GOSSIP messages (payloads).
    pub gossip: u64,
    /// IHAVE messages (each a batch).
    pub ihave: u64,
    /// GRAFT messages.
    pub graft: u64,
    /// ATTACH messages (the optimisation's payload-less graft).
    pub attach: u64,
    /// PRUNE messages.
    pub prune: u64,
    /// IGNORED_IHAVE messages (each a batch).
    pub ignored_ihave: u64,
}

/// What a [`Plumtree`](super::Plumtree) has done, and how big its bounded
/// structures are now.
///
/// Counters only grow. The size fields are the state at the time of
/// [`Plumtree::stats`](super::Plumtree::stats); each has a bound in
/// [`Config`](super::Config).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Stats {
    /// Messages sent, by kind.
    pub sent: Counts,
    /// Valid messages received, by kind.
    pub received: Counts,
    /// Payload bytes sent in GOSSIP messages.
    pub payload_bytes_sent: u64,
    /// Payload bytes received in GOSSIP messages.
    pub payload_bytes_received: u64,
    /// Announcements sent for the first time.
    pub announcements_sent: u64,
    /// Announcements re-sent from the outstanding set on a lazy tick.
    pub announcements_resent: u64,
    /// Announcements received.
    pub announcements_received: u64,
    /// Messages broadcast from this node.
    pub broadcasts: u64,
    /// Messages delivered (new to us, received from a peer).
    pub delivered: u64,
    /// GOSSIP messages that brought nothing new (each answered by a PRUNE).
    pub duplicates: u64,
    /// Grafts sent because a missing timer fired.
    pub timer_grafts: u64,
    /// Grafts sent at once because the root's parent in its tree went down
    /// (its announcements are not given `ihave_timeout` to be pushed).
    pub orphan_grafts: u64,
    /// Grafts sent early because a missing id that had not been grafted yet
    /// was evicted to make room ([`Config::max_missing`](super::Config::max_missing)).
    pub eviction_grafts: u64,
    /// Duplicates from an eager peer that did not prune it, because the
    /// copy delivered first was a push still in flight from a peer already
    /// pruned.
    pub leftovers: u64,
    /// GRAFTs we could not answer with a payload (stale or missing).
    pub grafts_unanswered: u64,
    /// Tree rewirings by the hop-count optimisation.
    pub optimisations: u64,
    /// Messages dropped because they broke a limit or came from ourselves.
    pub invalid: u64,
    /// Announcements dropped from a full lazy queue before being sent.
    pub lazy_dropped: u64,
    /// Recent messages announced to neighbours as they came up
    /// ([`Config::catch_up_window`](super::Config::catch_up_window)).
    pub catch_up_announcements: u64,
    /// Outstanding announcements dropped from a full outstanding set.
    pub outstanding_dropped: u64,
    /// Missing ids forgotten to make room for newer ones.
    pub missing_evicted: u64,
    /// Announcers not recorded because the id had enough already.
    pub announcers_dropped: u64,
    /// Tracked roots evicted (least recently used) for new ones.
    pub roots_evicted: u64,

    /// Current neighbours.
    pub neighbors: usize,
    /// Roots with sets of their own.
    pub tracked_roots: usize,
    /// Missing ids being waited for.
    pub missing: usize,
    /// The most announcers held for one missing id.
    pub max_announcers: usize,
    /// Outstanding announcements, all peers together.
    pub outstanding: usize,
    /// The most outstanding announcements held for one peer.
    pub max_outstanding: usize,
    /// Queued announcements, all peers together.
    pub lazy_queue: usize,
    /// The most queued announcements held for one peer.
    pub max_lazy_queue: usize,
    /// Entries in the received cache.
    pub received_cache: usize,
    /// Recent messages kept for neighbours that come up.
    pub catch_up_recent: usize,
    /// Messages waiting in `poll_transmit`.
    pub pending_transmits: usize,
    /// Events waiting in `poll_event`.
    pub pending_events: usize,
}
