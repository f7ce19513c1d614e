//! Durability on real nodes, for any [`Launcher`]: a put is acknowledged
//! only once it is on disk, so a node killed in the middle of writes (no
//! leave, its runtime simply dropped) and restarted from its directory has
//! every acknowledged write; a node stopped gracefully comes back with its
//! writes, deletes and causal history. [`durability_suite!`] stamps these
//! out per adapter.
//!
//! [`durability_suite!`]: crate::durability_suite

use crate::Cluster;
use crate::net::{Launcher, NetCluster};
use crate::scenarios::LIMIT;
use epidemic_core::metadata::FullPrefix;
use futures_lite::future::block_on;
use std::sync::{Arc, Mutex};

/// Writes acknowledged before the kill, at least.
const ACKED_BEFORE_KILL: usize = 200;

/// Four threads put distinct keys as fast as the node acknowledges them;
/// once 200 are acknowledged the node is killed (its runtime and every
/// task on it dropped mid-write). Restarted from its directory on its
/// address, it restored at least every acknowledged object, refused no
/// stored record, and holds every acknowledged value.
pub fn killed_mid_writes<L: Launcher>(launcher: L) {
    let mut c = NetCluster::new(launcher);
    let n = c.add_node();
    let prefix = FullPrefix::new("test", "kill");
    let acked = Arc::new(Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (handle, acked, prefix) = (c.handle(n).clone(), acked.clone(), prefix.clone());
            std::thread::spawn(move || {
                for i in 0.. {
                    let key = format!("w{w}-{i}");
                    let value = format!("value of {key}");
                    // Err once the node is gone: stop there.
                    if block_on(handle.put(&prefix, key.clone(), value.clone(), None)).is_err() {
                        break;
                    }
                    acked.lock().expect("not poisoned").push((key, value));
                }
            })
        })
        .collect();
    // Let writes flow, then kill.
    let flowing = c.wait_until(LIMIT, |_| {
        acked.lock().expect("not poisoned").len() >= ACKED_BEFORE_KILL
    });
    assert!(flowing, "{ACKED_BEFORE_KILL} puts were not acknowledged");
    c.crash(n);
    for w in writers {
        w.join().expect("a writer thread");
    }
    let acked = acked.lock().expect("not poisoned").clone();

    // Through itself: a lone node joins no one.
    c.restart_from_disk(n, n);
    let stats = block_on(c.handle(n).stats()).expect("node running").driver;
    assert!(
        stats.restored as usize >= acked.len(),
        "{} acknowledged, {stats:?}",
        acked.len()
    );
    assert_eq!(stats.restore_failures, 0, "{stats:?}");
    for (key, value) in &acked {
        let got = block_on(c.handle(n).get_resolved(&prefix, key)).expect("node running");
        assert_eq!(got.as_deref(), Some(value.as_bytes()), "acknowledged {key} lost");
    }
    c.stop();
}

/// Writes, an overwrite and a delete survive a graceful stop; a write after
/// the restart continues the node's causal history (it overwrites rather
/// than becoming a sibling).
pub fn graceful_restart<L: Launcher>(launcher: L) {
    let mut c = NetCluster::new(launcher);
    let n = c.add_node();
    let prefix = FullPrefix::new("test", "restart");
    let h = c.handle(n).clone();
    block_on(async {
        h.put(&prefix, "a", "1", None).await.expect("put a");
        h.put(&prefix, "b", "2", None).await.expect("put b");
        h.put(&prefix, "a", "3", None).await.expect("overwrite a");
        h.delete(&prefix, "b", None).await.expect("delete b");
    });
    let before = block_on(h.list(&prefix)).expect("node running");
    c.shut_down(n);

    c.restart_from_disk(n, n);
    let h = c.handle(n).clone();
    assert_eq!(block_on(h.list(&prefix)).expect("node running"), before);
    assert_eq!(
        block_on(h.get_resolved(&prefix, "a")).expect("node running").as_deref(),
        Some(&b"3"[..])
    );
    assert!(
        block_on(h.get(&prefix, "b"))
            .expect("node running")
            .is_some_and(|r| r.is_deleted()),
        "the delete of b did not survive the restart"
    );
    block_on(h.put(&prefix, "a", "4", None)).expect("put a");
    assert_eq!(
        block_on(h.get(&prefix, "a"))
            .expect("node running")
            .map(|r| r.siblings()),
        Some(1),
        "a write after the restart became a sibling"
    );
    c.stop();
}
