//! QUIC nodes ([`epidemic_quic`]) for [`NetCluster`].

use crate::Recv;
use crate::credentials::{Credentials, Refused};
use crate::net::{Launcher, NetCluster, RawConn, RawPeer};
use crate::tcp::test_driver_config;
use epidemic_driver::Handle;
use epidemic_driver::certs::ClusterCa;
use epidemic_driver::tls::{SERVER_NAME, TlsConfig};
use epidemic_quic::{QuicConfig, QuicNode};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// QUIC's liveness in the conformance runs: a crashed node is noticed
/// after 1.5 s of silence rather than the default 10 s.
pub const TEST_IDLE_TIMEOUT: Duration = Duration::from_millis(1500);

/// Launches QUIC nodes with certificates from one CA.
pub struct Quic {
    ca: ClusterCa,
    mesh: bool,
}

impl Quic {
    /// Nodes of a fresh CA.
    pub fn new() -> Self {
        Quic {
            ca: ClusterCa::generate().expect("a CA is generated"),
            mesh: false,
        }
    }

    /// The same nodes in full-mesh membership.
    pub fn mesh(mut self) -> Self {
        self.mesh = true;
        self
    }

    /// A cluster of QUIC nodes in full-mesh membership.
    pub fn mesh_cluster() -> NetCluster<Quic> {
        NetCluster::new(Self::new().mesh())
    }

    /// A cluster of QUIC nodes.
    pub fn cluster() -> NetCluster<Quic> {
        NetCluster::new(Self::new())
    }

    fn credentials(&self) -> TlsConfig {
        self.ca
            .issue(&["127.0.0.1"])
            .and_then(|c| c.tls_config(&self.ca))
            .expect("a node certificate is issued")
    }

    /// Starts a node with `tls` and the conformance settings.
    fn start(
        &self,
        listen: SocketAddr,
        tls: TlsConfig,
        data_dir: &Path,
        contacts: Vec<SocketAddr>,
    ) -> io::Result<QuicNode> {
        let mut config = QuicConfig::new(listen, tls);
        config.driver = test_driver_config(self.mesh);
        config.contacts = contacts;
        config.data_dir = Some(data_dir.to_path_buf());
        config.idle_timeout = TEST_IDLE_TIMEOUT.into();
        config.keep_alive = epidemic_core::Duration::from_millis(300);
        QuicNode::start(config).map_err(io::Error::other)
    }
}

impl Default for Quic {
    fn default() -> Self {
        Self::new()
    }
}

impl Launcher for Quic {
    type Node = QuicNode;

    fn launch(&mut self, listen: SocketAddr, data_dir: &Path, contacts: Vec<SocketAddr>) -> io::Result<QuicNode> {
        let tls = self.credentials();
        self.start(listen, tls, data_dir, contacts)
    }

    fn handle(node: &QuicNode) -> &Handle {
        node.handle()
    }

    fn raw_connect(&mut self, addr: SocketAddr) -> Box<dyn RawConn> {
        let tls = self.credentials().client_config().expect("client configuration");
        connect_raw(addr, tls).expect("QUIC handshake with the node")
    }

    fn raw_listen(&mut self) -> Box<dyn RawPeer> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        let tls = self.credentials().server_config().expect("server configuration");
        let server = quinn::ServerConfig::with_crypto(Arc::new(QuicServerConfig::try_from(tls).expect("TLS 1.3")));
        let endpoint = rt.block_on(async {
            quinn::Endpoint::server(server, "127.0.0.1:0".parse().expect("address")).expect("bind")
        });
        let addr = endpoint.local_addr().expect("a bound address");
        let accepting = endpoint.clone();
        rt.spawn(async move {
            while let Some(incoming) = accepting.accept().await {
                tokio::spawn(async move {
                    let Ok(conn) = incoming.await else { return };
                    while let Ok((send, recv)) = conn.accept_bi().await {
                        tokio::spawn(serve_stream(send, recv, addr));
                    }
                });
            }
        });
        Box::new(QuicPeer {
            addr,
            endpoint,
            _rt: rt,
        })
    }
}

/// A silent QUIC peer: an endpoint on its own runtime, dropped with it.
struct QuicPeer {
    addr: SocketAddr,
    endpoint: quinn::Endpoint,
    // Dropped last.
    _rt: tokio::runtime::Runtime,
}

impl RawPeer for QuicPeer {
    fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for QuicPeer {
    fn drop(&mut self) {
        self.endpoint.close(0u32.into(), b"gone");
    }
}

/// Answers the hello on one stream as `identity`, then reads and drops
/// everything.
async fn serve_stream(mut send: quinn::SendStream, mut recv: quinn::RecvStream, identity: SocketAddr) {
    use epidemic_driver::codec::{FrameDecoder, HANDSHAKE_MAX};
    let mut decoder = FrameDecoder::new(HANDSHAKE_MAX);
    let mut buf = [0u8; 4096];
    loop {
        match recv.read(&mut buf).await {
            Ok(Some(n)) => decoder.extend(&buf[..n]).unwrap(),
            _ => return,
        }
        if let Ok(Some(_hello)) = decoder.next_record() {
            break;
        }
    }
    let ack = crate::accept_record(identity);
    if send.write_all(&ack).await.is_err() {
        return;
    }
    while let Ok(Some(_)) = recv.read(&mut buf).await {}
}

impl Credentials for Quic {
    fn launch_stranger(
        &mut self,
        listen: SocketAddr,
        data_dir: &Path,
        contacts: Vec<SocketAddr>,
    ) -> io::Result<QuicNode> {
        let other = ClusterCa::generate().map_err(io::Error::other)?;
        let tls = other
            .issue(&["127.0.0.1"])
            .and_then(|c| c.tls_config(&other))
            .map_err(io::Error::other)?;
        self.start(listen, tls, data_dir, contacts)
    }

    fn launch_plaintext(
        &mut self,
        _listen: SocketAddr,
        _data_dir: &Path,
        _contacts: Vec<SocketAddr>,
    ) -> Option<io::Result<QuicNode>> {
        // QUIC has no plaintext mode.
        None
    }

    fn raw_connect_anonymous(&mut self, addr: SocketAddr) -> Box<dyn RawConn> {
        let tls = self
            .credentials()
            .anonymous_client_config()
            .expect("client configuration");
        // Refused in the QUIC handshake, or right after it; a handshake
        // that neither completes nor fails in time is no refusal.
        match connect_raw(addr, tls) {
            Ok(raw) => raw,
            Err(e) if e == TIMED_OUT => Box::new(Silent),
            Err(_) => Box::new(Refused),
        }
    }
}

/// [`connect_raw`]'s error when the node neither accepted nor refused.
const TIMED_OUT: &str = "timed out";

/// A connection on which the node neither accepted nor refused anything.
struct Silent;

impl RawConn for Silent {
    fn send(&mut self, _bytes: &[u8]) {}

    fn finish(&mut self) {}

    fn recv(&mut self, _limit: Duration) -> Recv {
        Recv::Nothing
    }
}

/// A raw QUIC connection to the node at `addr` with the client
/// configuration `tls`: the connection and one stream opened; the error if
/// either fails.
fn connect_raw(addr: SocketAddr, tls: rustls::ClientConfig) -> Result<Box<dyn RawConn>, String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    let client = quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls).expect("TLS 1.3")));
    let opened = rt.block_on(async {
        let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().expect("address")).expect("bind");
        endpoint.set_default_client_config(client);
        let attempt = async {
            let conn = endpoint
                .connect(addr, SERVER_NAME)
                .map_err(|e| e.to_string())?
                .await
                .map_err(|e| e.to_string())?;
            conn.open_bi().await.map_err(|e| e.to_string())
        };
        match tokio::time::timeout(crate::scenarios::CLOSE_LIMIT, attempt).await {
            Ok(Ok((send, recv))) => Ok((endpoint, send, recv)),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(TIMED_OUT.to_owned()),
        }
    });
    let (endpoint, send, recv) = opened?;
    Ok(Box::new(QuicRaw {
        _endpoint: endpoint,
        send,
        recv,
        rt,
    }))
}

struct QuicRaw {
    send: quinn::SendStream,
    recv: quinn::RecvStream,
    _endpoint: quinn::Endpoint,
    // Dropped last: the streams and endpoint need it to close.
    rt: tokio::runtime::Runtime,
}

impl RawConn for QuicRaw {
    fn send(&mut self, bytes: &[u8]) {
        let _ = self.rt.block_on(self.send.write_all(bytes));
    }

    fn finish(&mut self) {
        let _ = self.send.finish();
    }

    fn recv(&mut self, limit: Duration) -> Recv {
        let mut buf = [0u8; 4096];
        let read = self
            .rt
            .block_on(async { tokio::time::timeout(limit, self.recv.read(&mut buf)).await });
        match read {
            Err(_) => Recv::Nothing,
            Ok(Ok(Some(n))) => Recv::Data(buf[..n].to_vec()),
            Ok(Ok(None)) | Ok(Err(_)) => Recv::Closed,
        }
    }
}
