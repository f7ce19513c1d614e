//! Shutdown and runtimes: a node stops cleanly from sync and async code,
//! dropping one never panics, and [`epidemic_quic::spawn`] runs nodes on the
//! caller's tokio runtime.

use epidemic_quic::{ClusterCa, QuicConfig, QuicNode, TlsConfig};
use std::time::Duration;

fn tls(ca: &ClusterCa) -> TlsConfig {
    ca.issue(&["127.0.0.1"]).and_then(|c| c.tls_config(ca)).unwrap()
}

fn config(ca: &ClusterCa) -> QuicConfig {
    QuicConfig::new("127.0.0.1:0".parse().unwrap(), tls(ca))
}

#[test]
fn dropping_a_node_inside_a_runtimes_block_on_does_not_panic() {
    let ca = ClusterCa::generate().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let node = QuicNode::start(config(&ca)).unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(node);
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let node = QuicNode::start(config(&ca)).unwrap();
        drop(node);
    });
}

#[tokio::test]
async fn dropping_a_node_inside_a_tokio_test_does_not_panic() {
    let ca = ClusterCa::generate().unwrap();
    let node = QuicNode::start(config(&ca)).unwrap();
    let identity = node.identity();
    drop(node);
    // The port is free again once the drop returns.
    std::net::UdpSocket::bind(identity).expect("the node's port was released");
}

#[tokio::test]
async fn shutdown_is_graceful_inside_a_tokio_test() {
    let ca = ClusterCa::generate().unwrap();
    let node = QuicNode::start(config(&ca)).unwrap();
    let handle = node.handle().clone();
    node.shutdown().await.expect("the node was running");
    assert!(handle.is_stopped());
}

#[test]
fn shutdown_blocking_is_graceful_from_sync_code() {
    let ca = ClusterCa::generate().unwrap();
    let node = QuicNode::start(config(&ca)).unwrap();
    let handle = node.handle().clone();
    node.shutdown_blocking().expect("the node was running");
    assert!(handle.is_stopped());
    std::net::UdpSocket::bind(handle.identity()).expect("the node's port was released");
}
