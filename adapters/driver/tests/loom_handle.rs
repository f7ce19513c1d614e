//! loom: the handle and the driver loop under every interleaving
//! (LOOM_MAX_PREEMPTIONS bounds the search). Run with
//! `RUSTFLAGS="--cfg loom"`.
//!
//! The loop runs for real (a real `Node`, the real command queue, replies
//! and event streams) on loom threads; the network is absent.
#![cfg(loom)]

use epidemic_driver::{Accepting, BoxFuture, DriverConfig, Duplex, Error, Handle, Runtime, Transport};
use futures_lite::StreamExt;
use loom::future::block_on;
use loom::thread;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Every spawned task gets a loom thread; timers never fire (nothing in
/// these tests waits for time).
struct LoomRuntime;

impl Runtime for LoomRuntime {
    fn spawn(&self, task: BoxFuture<()>) {
        thread::spawn(move || block_on(task));
    }

    fn sleep(&self, _: Duration) -> BoxFuture<()> {
        Box::pin(std::future::pending())
    }
}

/// No peers: nobody dials in, and dialling out is refused.
struct NoNetwork;

impl Transport for NoNetwork {
    fn connect(&self, _: SocketAddr) -> BoxFuture<io::Result<Duplex>> {
        Box::pin(async { Err(io::ErrorKind::ConnectionRefused.into()) })
    }

    fn accept(&self) -> BoxFuture<io::Result<Accepting>> {
        Box::pin(std::future::pending())
    }
}

fn node() -> Handle {
    let mut config = DriverConfig::default();
    config.node.seed = 1;
    epidemic_driver::start(
        "127.0.0.1:7000".parse().unwrap(),
        config,
        Vec::new(),
        None,
        Arc::new(NoNetwork),
        Arc::new(LoomRuntime),
    )
}

/// Commands from two threads at once are all executed, each exactly once,
/// and every caller gets its reply (a lost command or a lost wake-up of the
/// loop shows as a loom deadlock).
#[test]
fn no_command_is_lost() {
    loom::model(|| {
        let handle = node();
        let h2 = handle.clone();
        let other = thread::spawn(move || block_on(h2.broadcast(&b"from a thread"[..])).unwrap().seq);
        let mine = block_on(handle.broadcast(&b"from main"[..])).unwrap().seq;
        let theirs = other.join().unwrap();
        let mut seqs = [mine, theirs];
        seqs.sort_unstable();
        // Sequences start at this life's incarnation << 32.
        let first = seqs[0] & !0xffff_ffff;
        assert_eq!(seqs, [first, first + 1], "each broadcast taken once, in some order");
        block_on(handle.shutdown()).unwrap();
    });
}

/// A shutdown racing a command: the command either ran or failed with
/// `Shutdown`, its caller never hangs, and everything after fails cleanly.
#[test]
fn shutdown_is_clean_under_concurrent_commands() {
    loom::model(|| {
        let handle = node();
        let h2 = handle.clone();
        let other = thread::spawn(move || block_on(h2.broadcast(&b"racing"[..])));
        block_on(handle.shutdown()).unwrap();
        match other.join().unwrap() {
            Ok(id) => assert_eq!(id.seq & 0xffff_ffff, 0, "the first broadcast of this life"),
            Err(e) => assert_eq!(e, Error::Shutdown),
        }
        assert!(!handle.is_running());
        assert_eq!(block_on(handle.members()), Err(Error::Shutdown));
        // A second shutdown is a no-op.
        block_on(handle.shutdown()).unwrap();
    });
}

/// An event stream waiting for events ends when the node shuts down, from
/// whichever thread; a stream opened afterwards is already ended.
#[test]
fn event_streams_end_at_shutdown() {
    loom::model(|| {
        let handle = node();
        let mut events = handle.events();
        let waiter = thread::spawn(move || block_on(events.next()).is_none());
        block_on(handle.shutdown()).unwrap();
        assert!(waiter.join().unwrap(), "the stream ended");
        assert!(block_on(handle.events().next()).is_none());
    });
}
