//! Durability over QUIC: a node killed in the middle of writes (its tokio
//! runtime dropped, no leave) restarts from its directory with every
//! acknowledged write.

use epidemic_core::metadata::FullPrefix;
use epidemic_driver::certs::ClusterCa;
use epidemic_quic::{QuicConfig, QuicNode};
use futures_lite::future::block_on;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn start(ca: &ClusterCa, listen: SocketAddr, dir: &Path) -> QuicNode {
    let tls = ca.issue(&["127.0.0.1"]).unwrap().tls_config(ca).unwrap();
    let mut config = QuicConfig::new(listen, tls);
    config.data_dir = Some(dir.to_path_buf());
    QuicNode::start(config).unwrap()
}

#[test]
fn a_node_killed_mid_writes_restarts_with_every_acknowledged_write() {
    let ca = ClusterCa::generate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let node = start(&ca, "127.0.0.1:0".parse().unwrap(), dir.path());
    let addr = node.identity();
    let prefix = FullPrefix::new("test", "kill");
    let acked = Arc::new(Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (handle, acked, prefix) = (node.handle().clone(), acked.clone(), prefix.clone());
            std::thread::spawn(move || {
                for i in 0.. {
                    let key = format!("w{w}-{i}");
                    if block_on(handle.put(&prefix, key.clone(), key.clone(), None)).is_err() {
                        break;
                    }
                    acked.lock().unwrap().push(key);
                }
            })
        })
        .collect();
    while acked.lock().unwrap().len() < 200 {
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(node);
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();

    let node = start(&ca, addr, dir.path());
    for key in &acked {
        let got = block_on(node.handle().get_resolved(&prefix, key)).unwrap();
        assert_eq!(got.as_deref(), Some(key.as_bytes()), "acknowledged {key} lost");
    }
    node.shutdown();
}
