//! A bounded multi-producer, single-consumer queue with async ends.
//!
//! Every channel between the driver loop and the rest of the world is one of
//! these: application commands into the loop, connection inputs into the
//! loop, frames out to each peer's writer, events out to each subscriber.
//!
//! - **Bounded by count and by weight.** A queue holds at most `max_items`
//!   items and, when a weight function is given, at most `max_weight` of
//!   total weight (the bytes of queued frames). An item heavier than the
//!   whole budget is still accepted into an empty queue, so one large frame
//!   is never refused for its size alone (the frame limit bounds it).
//! - **Two ways in.** [`Queue::try_push`] never waits: it is what the driver
//!   loop uses, so a slow peer can never block the node (a full queue drops
//!   the item and the caller counts it). [`Queue::push`] waits for room: it is
//!   what connection readers and application handles use, so backpressure
//!   lands on a socket or a caller, never on the node.
//! - **Closing** wakes every waiter. Items already queued can still be
//!   popped; pushes fail and hand the item back.
//!
//! Wake-ups: the consumer's waker is stored under the same lock as the items,
//! so a push that happens between a failed pop and the consumer going to
//! sleep always sees the waker and wakes it. Blocked producers are all woken
//! whenever room appears; one that was cancelled meanwhile then cannot
//! swallow a wake-up the others needed. `tests/loom_queue.rs` checks both.
//!
//! The pop side is `poll_pop`/`poll_ready` only: the single consumer is
//! always a hand-written poll loop (the driver loop, a link writer, an event
//! stream).

use crate::sync::Mutex;
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// Why [`Queue::try_push`] handed an item back.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PushError<T> {
    /// The queue is at its bound.
    Full(T),
    /// The queue is closed.
    Closed(T),
}

struct Inner<T> {
    items: VecDeque<T>,
    weight: usize,
    closed: bool,
    consumer: Option<Waker>,
    producers: Vec<Waker>,
}

pub(crate) struct Queue<T> {
    inner: Mutex<Inner<T>>,
    max_items: usize,
    max_weight: usize,
    weigh: fn(&T) -> usize,
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.inner.lock();
        f.debug_struct("Queue")
            .field("len", &inner.items.len())
            .field("weight", &inner.weight)
            .field("closed", &inner.closed)
            .field("max_items", &self.max_items)
            .field("max_weight", &self.max_weight)
            .finish()
    }
}

fn no_weight<T>(_: &T) -> usize {
    0
}

impl<T> Queue<T> {
    /// A queue of at most `max_items` items (at least one).
    pub(crate) fn new(max_items: usize) -> Self {
        Self::weighted(max_items, usize::MAX, no_weight::<T>)
    }

    /// A queue of at most `max_items` items whose weights sum to at most
    /// `max_weight`.
    pub(crate) fn weighted(max_items: usize, max_weight: usize, weigh: fn(&T) -> usize) -> Self {
        Queue {
            inner: Mutex::new(Inner {
                items: VecDeque::new(),
                weight: 0,
                closed: false,
                consumer: None,
                producers: Vec::new(),
            }),
            max_items: max_items.max(1),
            max_weight,
            weigh,
        }
    }

    fn has_room(&self, inner: &Inner<T>, weight: usize) -> bool {
        inner.items.is_empty()
            || (inner.items.len() < self.max_items && inner.weight.saturating_add(weight) <= self.max_weight)
    }

    /// Appends `item` if there is room; never waits.
    pub(crate) fn try_push(&self, item: T) -> Result<(), PushError<T>> {
        let waker = {
            let mut inner = self.inner.lock();
            if inner.closed {
                return Err(PushError::Closed(item));
            }
            let weight = (self.weigh)(&item);
            if !self.has_room(&inner, weight) {
                return Err(PushError::Full(item));
            }
            inner.weight += weight;
            inner.items.push_back(item);
            inner.consumer.take()
        };
        // Woken outside the lock: the woken task may run at once on another
        // thread and would only contend for it.
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// Appends `item`, waiting for room. Fails with the item if the queue is
    /// or becomes closed.
    pub(crate) fn push(&self, item: T) -> Push<'_, T> {
        Push {
            queue: self,
            item: Some(item),
        }
    }

    fn poll_push(&self, cx: &mut Context<'_>, item: &mut Option<T>) -> Poll<Result<(), T>> {
        let Some(value) = item.take() else {
            return Poll::Ready(Ok(()));
        };
        let waker = {
            let mut inner = self.inner.lock();
            if inner.closed {
                return Poll::Ready(Err(value));
            }
            let weight = (self.weigh)(&value);
            if !self.has_room(&inner, weight) {
                if !inner.producers.iter().any(|w| w.will_wake(cx.waker())) {
                    inner.producers.push(cx.waker().clone());
                }
                *item = Some(value);
                return Poll::Pending;
            }
            inner.weight += weight;
            inner.items.push_back(value);
            inner.consumer.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        Poll::Ready(Ok(()))
    }

    /// Takes the oldest item, if any; never waits.
    pub(crate) fn try_pop(&self) -> Option<T> {
        let (item, producers) = {
            let mut inner = self.inner.lock();
            let item = inner.items.pop_front();
            if let Some(it) = &item {
                inner.weight -= (self.weigh)(it);
            }
            let producers = if item.is_some() {
                std::mem::take(&mut inner.producers)
            } else {
                Vec::new()
            };
            (item, producers)
        };
        producers.into_iter().for_each(Waker::wake);
        item
    }

    /// Takes the oldest item, or registers `cx` to be woken by the next push
    /// or by closing. `Ready(None)` means closed and empty.
    pub(crate) fn poll_pop(&self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let (item, producers) = {
            let mut inner = self.inner.lock();
            match inner.items.pop_front() {
                Some(it) => {
                    inner.weight -= (self.weigh)(&it);
                    (Some(it), std::mem::take(&mut inner.producers))
                }
                None if inner.closed => return Poll::Ready(None),
                None => {
                    inner.consumer = Some(cx.waker().clone());
                    return Poll::Pending;
                }
            }
        };
        producers.into_iter().for_each(Waker::wake);
        Poll::Ready(item)
    }

    /// Whether an item (or the end) is waiting; otherwise registers `cx` like
    /// [`Queue::poll_pop`] and returns false. Pops nothing.
    pub(crate) fn poll_ready(&self, cx: &mut Context<'_>) -> bool {
        let mut inner = self.inner.lock();
        if !inner.items.is_empty() || inner.closed {
            return true;
        }
        inner.consumer = Some(cx.waker().clone());
        false
    }

    /// Closes the queue and wakes everyone waiting on it.
    pub(crate) fn close(&self) {
        let (consumer, producers) = {
            let mut inner = self.inner.lock();
            inner.closed = true;
            (inner.consumer.take(), std::mem::take(&mut inner.producers))
        };
        consumer.into_iter().chain(producers).for_each(Waker::wake);
    }

    /// Closes the queue and returns what was still in it.
    pub(crate) fn close_and_drain(&self) -> Vec<T> {
        self.close();
        let mut inner = self.inner.lock();
        inner.weight = 0;
        inner.items.drain(..).collect()
    }

    /// Removes every queued item, returning how many there were.
    pub(crate) fn clear(&self) -> usize {
        let (n, producers) = {
            let mut inner = self.inner.lock();
            let n = inner.items.len();
            inner.items.clear();
            inner.weight = 0;
            (n, std::mem::take(&mut inner.producers))
        };
        producers.into_iter().for_each(Waker::wake);
        n
    }

    /// Whether the queue is closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.inner.lock().closed
    }

    /// Items queued.
    pub(crate) fn len(&self) -> usize {
        self.inner.lock().items.len()
    }

    /// Whether nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The future of [`Queue::push`].
pub(crate) struct Push<'a, T> {
    queue: &'a Queue<T>,
    item: Option<T>,
}

impl<T> Unpin for Push<'_, T> {}

impl<T> Future for Push<'_, T> {
    type Output = Result<(), T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.queue.poll_push(cx, &mut this.item)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use futures_lite::future;

    fn pop<T>(q: &Queue<T>) -> Option<T> {
        future::block_on(future::poll_fn(|cx| q.poll_pop(cx)))
    }

    #[test]
    fn bounds_by_count_and_weight() {
        let q: Queue<Vec<u8>> = Queue::weighted(3, 10, Vec::len);
        assert!(q.try_push(vec![0; 6]).is_ok());
        assert!(matches!(q.try_push(vec![0; 6]), Err(PushError::Full(_))));
        assert!(q.try_push(vec![0; 4]).is_ok());
        assert!(matches!(q.try_push(vec![]), Ok(())));
        assert!(matches!(q.try_push(vec![]), Err(PushError::Full(_))), "count bound");
        assert_eq!(q.try_pop().map(|v| v.len()), Some(6));
        assert_eq!(q.try_pop().map(|v| v.len()), Some(4));
        assert_eq!(q.try_pop().map(|v| v.len()), Some(0));
        // A single item heavier than the budget fits into an empty queue.
        assert!(q.try_push(vec![0; 64]).is_ok());
        assert!(matches!(q.try_push(vec![0; 1]), Err(PushError::Full(_))));
        assert_eq!(q.clear(), 1);
        assert!(q.is_empty());
    }

    #[test]
    fn close_hands_items_back_and_ends_the_consumer() {
        let q: Queue<u32> = Queue::new(2);
        q.try_push(1).unwrap();
        q.close();
        assert_eq!(q.try_push(2), Err(PushError::Closed(2)));
        assert_eq!(future::block_on(q.push(3)), Err(3));
        assert_eq!(pop(&q), Some(1));
        assert_eq!(pop(&q), None);
    }

    #[test]
    fn blocked_producer_resumes_after_a_pop() {
        let q = std::sync::Arc::new(Queue::new(1));
        q.try_push(1u32).unwrap();
        let q2 = q.clone();
        let t = std::thread::spawn(move || future::block_on(q2.push(2)));
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(q.try_pop(), Some(1));
        t.join().unwrap().unwrap();
        assert_eq!(q.try_pop(), Some(2));
    }
}
