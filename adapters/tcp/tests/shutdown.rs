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

/// `fut`, or a panic naming `what` after 20 s.
async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    futures_lite::future::or(fut, async {
        smol::Timer::after(Duration::from_secs(20)).await;
        panic!("timed out waiting for {what}")
    })
    .await
}

/// Waits for the first event matching `pred`.
async fn wait_for(
    events: &mut epidemic_tcp::Events,
    what: &str,
    pred: impl Fn(&epidemic_tcp::Event<std::net::SocketAddr>) -> bool,
) {
    within(what, async {
        loop {
            match events.next().await {
                Some(Ok(e)) if pred(&e) => return,
                Some(_) => {}
                None => panic!("the events ended before {what}"),
            }
        }
    })
    .await
}

#[test]
fn two_nodes_on_the_callers_executor_join_and_deliver_a_broadcast() {
    use epidemic_tcp::{ClusterCa, Event};
    use std::sync::Arc;

    let ca = ClusterCa::generate().unwrap();
    let tls = || {
        let tls = ca.issue(&["127.0.0.1"]).and_then(|c| c.tls_config(&ca)).unwrap();
        TcpConfig::tls("127.0.0.1:0".parse().unwrap(), tls)
    };
    let executor = Arc::new(epidemic_tcp::Executor::new());
    smol::block_on(executor.run(async {
        let a = epidemic_tcp::spawn(tls(), &executor).unwrap();
        let b = epidemic_tcp::spawn(tls(), &executor).unwrap();
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
        a.broadcast(&b"on the caller's executor"[..]).await.unwrap();
        wait_for(
            &mut b_events,
            "the broadcast at b",
            |e| matches!(e, Event::Delivered { payload, .. } if &payload[..] == b"on the caller's executor"),
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
    }));
}

#[test]
fn a_node_whose_executor_is_dropped_unrun_is_stopped() {
    use std::sync::Arc;

    let executor = Arc::new(epidemic_tcp::Executor::new());
    let handle = epidemic_tcp::spawn(config(), &executor).unwrap();
    assert!(!handle.is_stopped());
    drop(executor);
    smol::block_on(within("the node to stop", handle.stopped()));
    assert!(smol::block_on(handle.neighbors()).is_err(), "a stopped node answered");
}
