//! A smol application with three epidemic nodes over TCP and mutual TLS,
//! on the application's own executor: one cluster CA, a certificate per
//! node, typed values, a subscription stream, and a graceful leave. Run with
//! `cargo run -p epidemic-tcp --example smol_app`.

use epidemic_tcp::{ChangeExt, ClusterCa, Executor, FullPrefix, Handle, MembershipEvent, TcpConfig};
use futures_lite::FutureExt;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// What the cluster shares: where each service lives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Endpoint {
    host: String,
    port: u16,
}

type AppResult<T> = Result<T, Box<dyn std::error::Error>>;

/// `future`, or an error once `secs` have passed.
async fn within<T>(secs: u64, future: impl std::future::Future<Output = T>) -> AppResult<T> {
    let timer = async {
        smol::Timer::after(Duration::from_secs(secs)).await;
        Err("timed out".into())
    };
    async { Ok(future.await) }.or(timer).await
}

fn main() -> AppResult<()> {
    let executor = Arc::new(Executor::new());
    smol::block_on(executor.run(app(&executor)))
}

async fn app(executor: &Arc<Executor<'static>>) -> AppResult<()> {
    // One CA for the cluster; each node gets a certificate for its address
    // and accepts only peers whose certificate the CA signed.
    let ca = ClusterCa::generate()?;
    let mut nodes: Vec<Handle> = Vec::new();
    for _ in 0..3 {
        let tls = ca.issue(&["127.0.0.1"])?.tls_config(&ca)?;
        // `spawn` runs the node on this executor.
        nodes.push(epidemic_tcp::spawn(
            TcpConfig::tls("127.0.0.1:0".parse()?, tls),
            executor,
        )?);
    }
    let [a, b, c] = [&nodes[0], &nodes[1], &nodes[2]];

    // b and c join through a; wait until a sees both.
    let mut membership = a.membership();
    b.join([a.identity()]).await?;
    c.join([a.identity()]).await?;
    let mut up = 0;
    while up < 2 {
        match within(20, membership.next()).await? {
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
        let change = within(20, changes.next()).await?.ok_or("c stopped")??;
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
