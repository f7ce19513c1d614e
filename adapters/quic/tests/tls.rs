//! Mutual TLS 1.3 over QUIC: members of one CA link up; a node with a
//! certificate from another CA and a client with no certificate are refused
//! in the QUIC handshake and never reach the node.

use epidemic_driver::certs::ClusterCa;
use epidemic_driver::tls::{SERVER_NAME, TlsConfig};
use epidemic_quic::{QuicConfig, QuicNode};
use futures_lite::future::block_on;
use quinn::crypto::rustls::QuicClientConfig;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn cert(ca: &ClusterCa) -> TlsConfig {
    ca.issue(&["127.0.0.1"]).unwrap().tls_config(ca).unwrap()
}

fn start(tls: TlsConfig, contacts: Vec<SocketAddr>) -> QuicNode {
    let mut config = QuicConfig::new("127.0.0.1:0".parse().unwrap(), tls);
    config.contacts = contacts;
    QuicNode::start(config).unwrap()
}

fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn a_node_from_another_ca_is_refused() {
    let ca = ClusterCa::generate().unwrap();
    let other = ClusterCa::generate().unwrap();
    let member = start(cert(&ca), vec![]);
    let peer = start(cert(&ca), vec![member.identity()]);
    let stranger = start(cert(&other), vec![member.identity()]);
    let m = member.handle();
    assert!(eventually(|| block_on(m.neighbors())
        .unwrap()
        .contains(&peer.identity())));
    assert!(eventually(|| {
        block_on(stranger.handle().stats()).unwrap().driver.dial_failures >= 1
    }));
    assert!(eventually(
        || block_on(m.stats()).unwrap().driver.handshake_failures >= 1
    ));
    assert_eq!(block_on(m.neighbors()).unwrap(), vec![peer.identity()]);
    assert!(block_on(stranger.handle().neighbors()).unwrap().is_empty());
    for n in [member, peer, stranger] {
        n.shutdown();
    }
}

#[test]
fn a_client_without_a_certificate_is_refused() {
    let ca = ClusterCa::generate().unwrap();
    let member = start(cert(&ca), vec![]);
    let addr = member.identity();
    let anonymous = cert(&ca).anonymous_client_config().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let outcome = rt.block_on(async {
        let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(
            QuicClientConfig::try_from(anonymous).unwrap(),
        )));
        let attempt = async {
            let conn = endpoint.connect(addr, SERVER_NAME).unwrap().await?;
            let (mut send, mut recv) = conn.open_bi().await?;
            send.write_all(b"\x00\x00\x00\x05hello").await?;
            let mut buf = [0u8; 16];
            let n = recv.read(&mut buf).await?;
            Ok::<_, Box<dyn std::error::Error>>(n)
        };
        tokio::time::timeout(Duration::from_secs(10), attempt).await
    });
    match outcome {
        Ok(Err(_)) => {}
        other => panic!("the node answered a client without a certificate: {other:?}"),
    }
    let m = member.handle();
    assert!(eventually(
        || block_on(m.stats()).unwrap().driver.handshake_failures >= 1
    ));
    assert_eq!(block_on(m.stats()).unwrap().driver.links_opened, 0);
    member.shutdown();
}
