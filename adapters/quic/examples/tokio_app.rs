//! A tokio application with three epidemic nodes over QUIC and mutual TLS:
//! one cluster CA, a certificate per node, typed values, a subscription
//! stream, and a graceful leave. Run with
//! `cargo run -p epidemic-quic --example tokio_app`.

use epidemic_quic::{ChangeExt, ClusterCa, FullPrefix, Handle, MembershipEvent, QuicConfig};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio::time::timeout;

/// What the cluster shares: where each service lives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Endpoint {
    host: String,
    port: u16,
}

type AppResult<T> = Result<T, Box<dyn std::error::Error>>;

#[tokio::main]
async fn main() -> AppResult<()> {
    // One CA for the cluster; each node gets a certificate for its address
    // and accepts only peers whose certificate the CA signed.
    let ca = ClusterCa::generate()?;
    let mut nodes: Vec<Handle> = Vec::new();
    for _ in 0..3 {
        let tls = ca.issue(&["127.0.0.1"])?.tls_config(&ca)?;
        // `spawn` runs the node on this tokio runtime.
        nodes.push(epidemic_quic::spawn(QuicConfig::new("127.0.0.1:0".parse()?, tls))?);
    }
    let [a, b, c] = [&nodes[0], &nodes[1], &nodes[2]];

    // b and c join through a; wait until a sees both.
    let mut membership = a.membership();
    b.join([a.identity()]).await?;
    c.join([a.identity()]).await?;
    let mut up = 0;
    while up < 2 {
        match timeout(Duration::from_secs(20), membership.next()).await? {
            Some(Ok(MembershipEvent::NeighborUp(peer))) => {
                println!("a: neighbour up {peer}");
                up += 1;
            }
            Some(_) => {}
            None => return Err("a stopped".into()),
        }
    }

    // c follows the services prefix; a and b write to it.
    let services = FullPrefix::new("app", "services");
    let mut changes = c.subscribe(&services).await?;
    let db = Endpoint {
        host: "10.0.0.7".into(),
        port: 5432,
    };
    let cache = Endpoint {
        host: "10.0.0.9".into(),
        port: 6379,
    };
    a.put_typed(&services, "db", &db, None).await?;
    b.put_typed(&services, "cache", &cache, None).await?;
    let mut seen = 0;
    while seen < 2 {
        let change = timeout(Duration::from_secs(20), changes.next())
            .await?
            .ok_or("c stopped")??;
        let endpoint: Endpoint = change.typed()?.ok_or("deleted")?;
        println!(
            "c: {} is at {endpoint:?} ({:?})",
            String::from_utf8_lossy(&change.key),
            change.source
        );
        seen += 1;
    }
    assert_eq!(c.get_typed::<Endpoint>(&services, "db").await?, Some(db));

    // Leave gracefully: each node tells its neighbours, flushes and stops.
    for node in [c, b, a] {
        node.shutdown().await?;
    }
    println!("all three nodes left");
    Ok(())
}
