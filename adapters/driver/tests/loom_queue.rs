//! loom: the bounded queue under every interleaving (LOOM_MAX_PREEMPTIONS
//! bounds the search). Run with `RUSTFLAGS="--cfg loom"`.
#![cfg(loom)]

use epidemic_driver::loom_model::Queue;
use loom::future::block_on;
use loom::sync::Arc;
use loom::thread;

/// Two producers into a queue of one slot, one consumer: every item
/// arrives, and nobody sleeps through the wake-up it needed (a lost wake-up
/// shows as a loom deadlock).
#[test]
fn no_item_and_no_wakeup_is_lost_with_blocked_producers() {
    loom::model(|| {
        let q = Arc::new(Queue::new(1));
        let producers: Vec<_> = (0..2u32)
            .map(|p| {
                let q = q.clone();
                thread::spawn(move || block_on(q.push(p)).unwrap())
            })
            .collect();
        let mut got = vec![block_on(q.pop()), block_on(q.pop())];
        for p in producers {
            p.join().unwrap();
        }
        got.sort_unstable();
        assert_eq!(got, vec![Some(0), Some(1)]);
    });
}

/// One producer pushing two items through a one-slot queue: they arrive in
/// order, the producer blocking on the second until the first is taken.
#[test]
fn a_blocked_producer_is_woken_in_order() {
    loom::model(|| {
        let q = Arc::new(Queue::new(1));
        let q2 = q.clone();
        let producer = thread::spawn(move || {
            block_on(q2.push(1u8)).unwrap();
            block_on(q2.push(2u8)).unwrap();
        });
        assert_eq!(block_on(q.pop()), Some(1));
        assert_eq!(block_on(q.pop()), Some(2));
        producer.join().unwrap();
    });
}

/// A consumer waiting on an empty queue is woken by a push that never waits.
#[test]
fn try_push_wakes_a_sleeping_consumer() {
    loom::model(|| {
        let q = Arc::new(Queue::new(4));
        let q2 = q.clone();
        let consumer = thread::spawn(move || block_on(q2.pop()));
        q.try_push(7u8).unwrap();
        assert_eq!(consumer.join().unwrap(), Some(7));
    });
}

/// Closing wakes a consumer waiting on an empty queue and a producer waiting
/// on a full one; what was queued before is still delivered.
#[test]
fn close_wakes_every_waiter() {
    loom::model(|| {
        let q = Arc::new(Queue::new(1));
        q.try_push(1u8).unwrap();
        let qp = q.clone();
        let producer = thread::spawn(move || block_on(qp.push(2)));
        q.close();
        let pushed = producer.join().unwrap();
        assert_eq!(block_on(q.pop()), Some(1));
        match pushed {
            // The push got in before the close.
            Ok(()) => assert_eq!(block_on(q.pop()), Some(2)),
            Err(item) => assert_eq!(item, 2),
        }
        assert_eq!(block_on(q.pop()), None);
    });
}
