//! The synchronisation primitives shared across threads, swapped for loom's
//! under `cfg(loom)` (as in tokio's `src/loom/mod.rs`).
//!
//! Everything in this crate that more than one thread touches (the bounded
//! queues, the one-shot replies, the close signals) is written against this
//! module and nothing else, so the loom tests in `tests/loom_*.rs` explore
//! every interleaving of exactly the code that ships.

#[cfg(not(loom))]
mod imp {
    pub(crate) use std::sync::Arc;

    /// `std::sync::Mutex` without poisoning: a panic while the lock is held
    /// is a bug in this crate, and the state behind every lock here is valid
    /// between any two statements, so the guard is simply taken back.
    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(std::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Mutex(std::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, T> {
            self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
        }
    }
}

#[cfg(loom)]
mod imp {
    pub(crate) use loom::sync::Arc;

    /// loom's mutex behind the same interface as the std one.
    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Mutex(loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> loom::sync::MutexGuard<'_, T> {
            self.0.lock().unwrap_or_else(|e| e.into_inner())
        }
    }
}

pub(crate) use imp::*;
