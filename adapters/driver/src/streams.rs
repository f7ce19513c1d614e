//! The node's outputs as async streams, one kind per stream, with lag
//! reported in band.
//!
//! | stream | from | items |
//! |---|---|---|
//! | [`Handle::events`](crate::Handle::events) | every event | [`Event`] |
//! | [`Handle::subscribe`](crate::Handle::subscribe) | one prefix | [`Change`] |
//! | [`Handle::membership`](crate::Handle::membership) | neighbours | [`MembershipEvent`] |
//! | [`Handle::deliveries`](crate::Handle::deliveries) | broadcasts | [`Delivery`] |
//!
//! Every stream has its own bounded queue
//! ([`DriverConfig::event_queue`](crate::DriverConfig::event_queue) items),
//! filled by the node's loop, which never waits for a reader. A reader that
//! falls that far behind misses items, and the stream says so where they
//! went missing: the next item it yields is `Err(Lagged(n))`, n the count
//! missed, after which it carries on with what came next (tokio's
//! `broadcast` receiver reports lag the same way). A reader of a
//! subscription that lagged can re-read the prefix
//! ([`Handle::list`](crate::Handle::list)) to catch up. Nothing else is
//! dropped. A stream ends once the node has stopped and its queue is empty;
//! dropping it ends the subscription.

use crate::queue::{PushError, Queue};
use crate::sync::Arc;
use bytes::Bytes;
use epidemic_core::metadata::{self, SubscriptionId};
use epidemic_core::node::typed::{self, TypedError};
use epidemic_core::node::{BroadcastId, Event};
use futures_core::Stream;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A stream's reader fell behind and missed this many items, at this point
/// of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the reader fell behind and missed {0} items")]
pub struct Lagged(pub u64);

/// A change under a subscribed prefix ([`Handle::subscribe`](crate::Handle::subscribe)).
pub type Change = metadata::Change<SocketAddr>;

/// Reads a [`Change`]'s resolved value as a serde type.
pub trait ChangeExt {
    /// The resolved value decoded as `T`; `Ok(None)` when the change
    /// deleted the key.
    fn typed<T: DeserializeOwned>(&self) -> Result<Option<T>, TypedError>;
}

impl ChangeExt for Change {
    fn typed<T: DeserializeOwned>(&self) -> Result<Option<T>, TypedError> {
        self.resolved.as_deref().map(typed::decode::<T>).transpose()
    }
}

/// A neighbour came or went ([`Handle::membership`](crate::Handle::membership)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MembershipEvent {
    /// A peer became an overlay neighbour.
    NeighborUp(SocketAddr),
    /// A peer stopped being an overlay neighbour.
    NeighborDown(SocketAddr),
}

/// A broadcast from another node, delivered here for the first time
/// ([`Handle::deliveries`](crate::Handle::deliveries)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Delivery {
    /// The broadcast's id.
    pub id: BroadcastId<SocketAddr>,
    /// The payload.
    pub payload: Bytes,
    /// Hops it travelled; the origin's first send is hop 1.
    pub hops: u32,
}

/// One of the node's output streams; see the [module docs](self). Yields
/// `Ok(item)`, or `Err(Lagged(n))` where n items went missing.
pub struct Events<T = Event<SocketAddr>> {
    queue: Arc<Queue<Result<T, Lagged>>>,
}

impl<T> fmt::Debug for Events<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Events").field("queued", &self.queue.len()).finish()
    }
}

impl<T> Events<T> {
    /// The next item if one is queued, without waiting; `None` also when
    /// the stream has ended.
    pub fn try_next(&mut self) -> Option<Result<T, Lagged>> {
        self.queue.try_pop()
    }

    /// The next item, waiting for one; `None` once the node has stopped and
    /// every queued item was taken. The same as `StreamExt::next`, without
    /// importing a stream trait.
    pub async fn next(&mut self) -> Option<Result<T, Lagged>> {
        std::future::poll_fn(|cx| self.queue.poll_pop(cx)).await
    }

    /// Waits for the next item on this thread (for code outside async).
    pub fn blocking_next(&mut self) -> Option<Result<T, Lagged>> {
        futures_lite::future::block_on(self.next())
    }
}

impl<T> Stream for Events<T> {
    type Item = Result<T, Lagged>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.queue.poll_pop(cx)
    }
}

impl<T> Drop for Events<T> {
    fn drop(&mut self) {
        self.queue.close();
    }
}

/// The loop's end of one stream: its queue and the items it missed since
/// the last one it took.
pub(crate) struct Sink<T> {
    queue: Arc<Queue<Result<T, Lagged>>>,
    missed: u64,
}

/// What [`Sink::send`] did.
#[derive(Debug, PartialEq, Eq)]
enum Sent {
    Taken,
    /// The queue was full; counted as missed.
    Missed,
    /// The stream was dropped.
    Gone,
}

impl<T> Sink<T> {
    fn pair(capacity: usize) -> (Sink<T>, Events<T>) {
        let queue = Arc::new(Queue::new(capacity));
        (
            Sink {
                queue: queue.clone(),
                missed: 0,
            },
            Events { queue },
        )
    }

    /// Queues `item`, preceded by the count of items missed before it. Never
    /// waits.
    fn send(&mut self, item: T) -> Sent {
        if self.missed > 0 {
            match self.queue.try_push(Err(Lagged(self.missed))) {
                Ok(()) => self.missed = 0,
                Err(PushError::Full(_)) => {
                    self.missed += 1;
                    return Sent::Missed;
                }
                Err(PushError::Closed(_)) => return Sent::Gone,
            }
        }
        match self.queue.try_push(Ok(item)) {
            Ok(()) => Sent::Taken,
            Err(PushError::Full(_)) => {
                self.missed += 1;
                Sent::Missed
            }
            Err(PushError::Closed(_)) => Sent::Gone,
        }
    }
}

/// Sends `item` to every sink of `list`, dropping the sinks whose stream is
/// gone; returns how many missed it.
fn fan_out<T: Clone>(list: &mut Vec<Sink<T>>, item: &T) -> u64 {
    let mut missed = 0;
    list.retain_mut(|s| match s.send(item.clone()) {
        Sent::Taken => true,
        Sent::Missed => {
            missed += 1;
            true
        }
        Sent::Gone => false,
    });
    missed
}

/// Every open stream, by kind.
pub(crate) struct Subscribers {
    capacity: usize,
    closed: bool,
    all: Vec<Sink<Event<SocketAddr>>>,
    membership: Vec<Sink<MembershipEvent>>,
    deliveries: Vec<Sink<Delivery>>,
    prefixes: BTreeMap<SubscriptionId, Sink<Change>>,
}

/// What [`Subscribers::publish`] did.
#[derive(Debug, Default)]
pub(crate) struct Published {
    /// Items some stream missed because it was full.
    pub(crate) missed: u64,
    /// Prefix subscriptions whose stream was dropped: end them in the node.
    pub(crate) ended: Option<SubscriptionId>,
}

impl Subscribers {
    pub(crate) fn new(capacity: usize) -> Self {
        Subscribers {
            capacity,
            closed: false,
            all: Vec::new(),
            membership: Vec::new(),
            deliveries: Vec::new(),
            prefixes: BTreeMap::new(),
        }
    }

    pub(crate) fn events(&mut self) -> Events<Event<SocketAddr>> {
        let (sink, events) = Sink::pair(self.capacity);
        self.add(sink, |s| &mut s.all);
        events
    }

    pub(crate) fn membership(&mut self) -> Events<MembershipEvent> {
        let (sink, events) = Sink::pair(self.capacity);
        self.add(sink, |s| &mut s.membership);
        events
    }

    pub(crate) fn deliveries(&mut self) -> Events<Delivery> {
        let (sink, events) = Sink::pair(self.capacity);
        self.add(sink, |s| &mut s.deliveries);
        events
    }

    /// The stream of the node's subscription `id`.
    pub(crate) fn prefix(&mut self, id: SubscriptionId) -> Events<Change> {
        let (sink, events) = Sink::pair(self.capacity);
        if self.closed {
            sink.queue.close();
        } else {
            self.prefixes.insert(id, sink);
        }
        events
    }

    fn add<T>(&mut self, sink: Sink<T>, list: impl FnOnce(&mut Self) -> &mut Vec<Sink<T>>) {
        if self.closed {
            sink.queue.close();
        } else {
            list(self).push(sink);
        }
    }

    /// Hands `event` to every stream it belongs on.
    pub(crate) fn publish(&mut self, event: Event<SocketAddr>) -> Published {
        let mut out = Published {
            missed: fan_out(&mut self.all, &event),
            ended: None,
        };
        match event {
            Event::NeighborUp(peer) => out.missed += fan_out(&mut self.membership, &MembershipEvent::NeighborUp(peer)),
            Event::NeighborDown(peer) => {
                out.missed += fan_out(&mut self.membership, &MembershipEvent::NeighborDown(peer))
            }
            Event::Delivered { id, payload, hops } => {
                out.missed += fan_out(&mut self.deliveries, &Delivery { id, payload, hops })
            }
            Event::Metadata(metadata::Event::Changed(change)) => {
                let id = change.subscription;
                if let Some(sink) = self.prefixes.get_mut(&id) {
                    match sink.send(change) {
                        Sent::Taken => {}
                        Sent::Missed => out.missed += 1,
                        Sent::Gone => {
                            self.prefixes.remove(&id);
                            out.ended = Some(id);
                        }
                    }
                }
            }
            _ => {}
        }
        out
    }

    /// Ends every stream after the items it already holds; streams opened
    /// from now on end at once.
    pub(crate) fn close(&mut self) {
        fn close_all<T>(sinks: impl IntoIterator<Item = Sink<T>>) {
            for s in sinks {
                s.queue.close();
            }
        }
        self.closed = true;
        close_all(self.all.drain(..));
        close_all(self.membership.drain(..));
        close_all(self.deliveries.drain(..));
        close_all(std::mem::take(&mut self.prefixes).into_values());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lagging_reader_is_told_in_band_where_items_went_missing() {
        let (mut sink, mut events) = Sink::<u32>::pair(2);
        assert_eq!(sink.send(1), Sent::Taken);
        assert_eq!(sink.send(2), Sent::Taken);
        // Full: 3 and 4 are missed.
        assert_eq!(sink.send(3), Sent::Missed);
        assert_eq!(sink.send(4), Sent::Missed);
        assert_eq!(events.try_next(), Some(Ok(1)));
        // One slot: the lag report takes it, 5 is missed too.
        assert_eq!(sink.send(5), Sent::Missed);
        assert_eq!(events.try_next(), Some(Ok(2)));
        assert_eq!(events.try_next(), Some(Err(Lagged(2))));
        // Room again: the report of 5, then 6.
        assert_eq!(sink.send(6), Sent::Taken);
        assert_eq!(events.try_next(), Some(Err(Lagged(1))));
        assert_eq!(events.try_next(), Some(Ok(6)));
        assert_eq!(events.try_next(), None);
        drop(events);
        assert_eq!(sink.send(8), Sent::Gone);
    }
}
