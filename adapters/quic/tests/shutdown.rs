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

/// Waits (up to 20 s) for the first event matching `pred`.
async fn wait_for(
    events: &mut epidemic_quic::Events,
    what: &str,
    pred: impl Fn(&epidemic_quic::Event<std::net::SocketAddr>) -> bool,
) {
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match events.next().await {
                Some(Ok(e)) if pred(&e) => return,
                Some(_) => {}
                None => panic!("the events ended before {what}"),
            }
        }
    })
    .await;
    assert!(found.is_ok(), "timed out waiting for {what}");
}

async fn two_nodes_join_deliver_and_leave(ca: &ClusterCa) {
    use epidemic_quic::Event;

    let a = epidemic_quic::spawn(config(ca)).unwrap();
    let b = epidemic_quic::spawn(config(ca)).unwrap();
    let (mut a_events, mut b_events) = (a.events(), b.events());
    b.join([a.identity()]).await.unwrap();
    let (a_id, b_id) = (a.identity(), b.identity());
    wait_for(
        &mut b_events,
        "b's neighbour a",
        |e| matches!(e, Event::NeighborUp(p) if *p == a_id),
    )
    .await;
    wait_for(
        &mut a_events,
        "a's neighbour b",
        |e| matches!(e, Event::NeighborUp(p) if *p == b_id),
    )
    .await;
    a.broadcast(&b"on the caller's runtime"[..]).await.unwrap();
    wait_for(
        &mut b_events,
        "the broadcast at b",
        |e| matches!(e, Event::Delivered { payload, .. } if &payload[..] == b"on the caller's runtime"),
    )
    .await;
    // A graceful leave: a's neighbour hears it, and both stop.
    a.shutdown().await.expect("a was running");
    wait_for(
        &mut b_events,
        "a's leave at b",
        |e| matches!(e, Event::NeighborDown(p) if *p == a_id),
    )
    .await;
    b.shutdown().await.expect("b was running");
    assert!(a.is_stopped() && b.is_stopped());
}

#[tokio::test]
async fn spawn_on_the_callers_current_thread_runtime_joins_delivers_and_leaves() {
    two_nodes_join_deliver_and_leave(&ClusterCa::generate().unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawn_on_the_callers_multi_thread_runtime_joins_delivers_and_leaves() {
    two_nodes_join_deliver_and_leave(&ClusterCa::generate().unwrap()).await;
}
