//! A one-shot channel: one value, once, from one side to the other.
//!
//! Used for every reply the driver loop owes (a command's result, a
//! connection's accept decision) and for telling a connection task how to
//! close. Dropping the [`Sender`] without sending completes the
//! [`Receiver`] with [`Canceled`], so a reply is never waited for in vain:
//! when the loop stops, or its runtime is dropped, every pending request
//! resolves.

use crate::sync::{Arc, Mutex};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// The sender went away without sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Canceled;

struct Slot<T> {
    value: Option<T>,
    /// The sender sent or was dropped.
    done: bool,
    /// The receiver was dropped.
    abandoned: bool,
    waker: Option<Waker>,
}

pub(crate) struct Sender<T> {
    slot: Arc<Mutex<Slot<T>>>,
}

pub(crate) struct Receiver<T> {
    slot: Arc<Mutex<Slot<T>>>,
}

pub(crate) fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let slot = Arc::new(Mutex::new(Slot {
        value: None,
        done: false,
        abandoned: false,
        waker: None,
    }));
    (Sender { slot: slot.clone() }, Receiver { slot })
}

impl<T> Sender<T> {
    /// Whether the receiver is gone (nobody waits for the value).
    pub(crate) fn is_abandoned(&self) -> bool {
        self.slot.lock().abandoned
    }

    /// Sends `value`; hands it back if the receiver is gone.
    pub(crate) fn send(self, value: T) -> Result<(), T> {
        let waker = {
            let mut slot = self.slot.lock();
            if slot.abandoned {
                return Err(value);
            }
            slot.value = Some(value);
            slot.done = true;
            slot.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let waker = {
            let mut slot = self.slot.lock();
            if slot.done {
                return;
            }
            slot.done = true;
            slot.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Future for Receiver<T> {
    type Output = Result<T, Canceled>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut slot = self.slot.lock();
        match slot.value.take() {
            Some(v) => Poll::Ready(Ok(v)),
            None if slot.done => Poll::Ready(Err(Canceled)),
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut slot = self.slot.lock();
        slot.abandoned = true;
        // A value sent but never received is dropped here, with the receiver.
        slot.value = None;
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use futures_lite::future;

    #[test]
    fn delivers_once_or_cancels() {
        let (tx, rx) = channel();
        tx.send(5u8).unwrap();
        assert_eq!(future::block_on(rx), Ok(5));

        let (tx, rx) = channel::<u8>();
        drop(tx);
        assert_eq!(future::block_on(rx), Err(Canceled));

        let (tx, rx) = channel::<u8>();
        drop(rx);
        assert_eq!(tx.send(1), Err(1));
    }
}
