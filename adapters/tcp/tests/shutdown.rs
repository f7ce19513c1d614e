//! Shutdown and runtimes: a node stops cleanly from sync and async code,
//! dropping one never panics nor stalls on either runtime, and
//! [`epidemic_tcp::spawn`] runs nodes on the caller's executor.

use epidemic_tcp::{TcpConfig, TcpNode};
use std::time::Duration;

fn config() -> TcpConfig {
    TcpConfig::insecure_plaintext("127.0.0.1:0".parse().unwrap())
}

/// Drops `node` and checks that it stopped entirely by the time the drop
/// returned, and that its port is free again.
fn drop_and_check(node: TcpNode) {
    let handle = node.handle().clone();
    drop(node);
    assert!(handle.is_stopped(), "the drop returned before the node had stopped");
    std::net::TcpListener::bind(handle.identity()).expect("the node's port was released");
}

#[test]
fn dropping_a_node_inside_smol_block_on_does_not_panic() {
    smol::block_on(async {
        let node = TcpNode::start(config()).unwrap();
        smol::Timer::after(Duration::from_millis(10)).await;
        drop_and_check(node);
        // At once, before its loop has run.
        drop_and_check(TcpNode::start(config()).unwrap());
    });
}

#[test]
fn dropping_a_node_inside_a_tokio_runtime_does_not_panic() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let node = TcpNode::start(config()).unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop_and_check(node);
        drop_and_check(TcpNode::start(config()).unwrap());
    });
}

#[tokio::test]
async fn dropping_a_node_inside_a_tokio_test_does_not_panic() {
    drop_and_check(TcpNode::start(config()).unwrap());
}

#[test]
fn dropping_a_node_at_once_leaves_it_stopped() {
    for _ in 0..20 {
        drop_and_check(TcpNode::start(config()).unwrap());
    }
}

#[test]
fn shutdown_is_graceful_from_smol_tokio_and_sync_code() {
    let node = TcpNode::start(config()).unwrap();
    let handle = node.handle().clone();
    smol::block_on(node.shutdown()).expect("the node was running");
    assert!(handle.is_stopped());

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let node = TcpNode::start(config()).unwrap();
    let handle = node.handle().clone();
    rt.block_on(node.shutdown()).expect("the node was running");
    assert!(handle.is_stopped());

    let node = TcpNode::start(config()).unwrap();
    let handle = node.handle().clone();
    node.shutdown_blocking().expect("the node was running");
    assert!(handle.is_stopped());
    std::net::TcpListener::bind(handle.identity()).expect("the node's port was released");
}
