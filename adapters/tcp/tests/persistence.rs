//! Durability: a put is acknowledged only once it is on disk, so a node
//! killed in the middle of writes (no leave, its runtime simply dropped)
//! and restarted from its directory has every acknowledged write.

use epidemic_core::metadata::FullPrefix;
use epidemic_tcp::{TcpConfig, TcpNode};
use futures_lite::future::block_on;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn start(listen: SocketAddr, dir: &Path) -> TcpNode {
    let mut config = TcpConfig::insecure_plaintext(listen);
    config.data_dir = Some(dir.to_path_buf());
    TcpNode::start(config).unwrap()
}

#[test]
fn a_node_killed_mid_writes_restarts_with_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let node = start("127.0.0.1:0".parse().unwrap(), dir.path());
    let addr = node.identity();
    let prefix = FullPrefix::new("test", "kill");
    let acked = Arc::new(Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (handle, acked, prefix) = (node.handle().clone(), acked.clone(), prefix.clone());
            std::thread::spawn(move || {
                for i in 0.. {
                    let key = format!("w{w}-{i}");
                    let value = format!("value of {key}");
                    // Err once the node is gone: stop there.
                    if block_on(handle.put(&prefix, key.clone(), value.clone(), None)).is_err() {
                        break;
                    }
                    acked.lock().unwrap().push((key, value));
                }
            })
        })
        .collect();
    // Let writes flow, then kill: the executor and every task on it are
    // dropped mid-write.
    while acked.lock().unwrap().len() < 200 {
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(node);
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();

    let node = start(addr, dir.path());
    let stats = block_on(node.handle().stats()).unwrap().driver;
    assert!(stats.restored as usize >= acked.len(), "{stats:?}");
    assert_eq!(stats.restore_failures, 0);
    for (key, value) in &acked {
        let got = block_on(node.handle().get_resolved(&prefix, key)).unwrap();
        assert_eq!(got.as_deref(), Some(value.as_bytes()), "acknowledged {key} lost");
    }
    node.shutdown();
}

#[test]
fn a_graceful_restart_keeps_writes_deletes_and_siblings() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = FullPrefix::new("test", "restart");
    let node = start("127.0.0.1:0".parse().unwrap(), dir.path());
    let addr = node.identity();
    let h = node.handle().clone();
    block_on(async {
        h.put(&prefix, "a", "1", None).await.unwrap();
        h.put(&prefix, "b", "2", None).await.unwrap();
        h.put(&prefix, "a", "3", None).await.unwrap();
        h.delete(&prefix, "b", None).await.unwrap();
    });
    let before = block_on(h.list(&prefix)).unwrap();
    node.shutdown();

    let node = start(addr, dir.path());
    let h = node.handle().clone();
    assert_eq!(block_on(h.list(&prefix)).unwrap(), before);
    assert_eq!(
        block_on(h.get_resolved(&prefix, "a")).unwrap().as_deref(),
        Some(&b"3"[..])
    );
    assert!(block_on(h.get(&prefix, "b")).unwrap().unwrap().is_deleted());
    // A write after the restart continues the node's causal history: it
    // overwrites rather than becoming a sibling.
    block_on(h.put(&prefix, "a", "4", None)).unwrap();
    assert_eq!(block_on(h.get(&prefix, "a")).unwrap().unwrap().siblings(), 1);
    node.shutdown();
}
