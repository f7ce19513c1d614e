//! TCP nodes ([`epidemic_tcp`]) for [`NetCluster`], with mutual TLS or in
//! plaintext.

use crate::Recv;
use crate::credentials::Credentials;
use crate::net::{Launcher, NetCluster, RawConn, RawPeer, serve_silently};
use epidemic_driver::certs::ClusterCa;
use epidemic_driver::tls::{SERVER_NAME, TlsConfig};
use epidemic_driver::{DriverConfig, Handle};
use epidemic_tcp::{TcpConfig, TcpNode};
use rustls::pki_types::ServerName;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The driver settings every real-network conformance node uses: the
/// defaults, with a short linger so that stopping a cluster is quick, a
/// metadata anti-entropy exchange every second instead of every ten, and the
/// scenarios' CRDT prefix ([`crate::scenarios::counters`]). With `mesh`,
/// full-mesh membership ([`Config::mesh`](epidemic_core::node::Config::mesh))
/// and a tombstone collection tick every half second instead of every ten.
pub fn test_driver_config(mesh: bool) -> DriverConfig {
    let mut config = DriverConfig::default();
    config.linger = epidemic_core::Duration::from_millis(500);
    config.node = crate::scenarios::node_config(mesh);
    config.node.metadata.exchange_interval = epidemic_core::Duration::from_secs(1);
    config
}

/// Launches TCP nodes; with a cluster CA, every node gets a certificate
/// from it.
pub struct Tcp {
    ca: Option<ClusterCa>,
    mesh: bool,
}

impl Tcp {
    /// Nodes with mutual TLS against a fresh CA.
    pub fn tls() -> Self {
        Tcp {
            ca: Some(ClusterCa::generate().expect("a CA is generated")),
            mesh: false,
        }
    }

    /// Nodes in plaintext.
    pub fn plaintext() -> Self {
        Tcp { ca: None, mesh: false }
    }

    /// The same nodes in full-mesh membership.
    pub fn mesh(mut self) -> Self {
        self.mesh = true;
        self
    }

    /// A cluster of TLS nodes in full-mesh membership.
    pub fn tls_mesh_cluster() -> NetCluster<Tcp> {
        NetCluster::new(Self::tls().mesh())
    }

    /// A cluster of plaintext nodes in full-mesh membership.
    pub fn plaintext_mesh_cluster() -> NetCluster<Tcp> {
        NetCluster::new(Self::plaintext().mesh())
    }

    /// A cluster of TLS nodes.
    pub fn tls_cluster() -> NetCluster<Tcp> {
        NetCluster::new(Self::tls())
    }

    /// A cluster of plaintext nodes.
    pub fn plaintext_cluster() -> NetCluster<Tcp> {
        NetCluster::new(Self::plaintext())
    }

    /// The cluster CA; panics for a plaintext launcher.
    fn ca(&self) -> &ClusterCa {
        self.ca
            .as_ref()
            .expect("a TLS launcher (Tcp::tls): plaintext nodes have no credentials")
    }
}

/// A node certificate from `ca`.
fn credentials(ca: &ClusterCa) -> TlsConfig {
    ca.issue(&["127.0.0.1"])
        .and_then(|c| c.tls_config(ca))
        .expect("a node certificate is issued")
}

/// Starts a TCP node: with mutual TLS if `tls`, in plaintext otherwise.
fn start(
    listen: SocketAddr,
    tls: Option<TlsConfig>,
    mesh: bool,
    data_dir: &Path,
    contacts: Vec<SocketAddr>,
) -> io::Result<TcpNode> {
    let mut config = match tls {
        Some(tls) => TcpConfig::tls(listen, tls),
        None => TcpConfig::insecure_plaintext(listen),
    };
    config.driver = test_driver_config(mesh);
    config.contacts = contacts;
    config.data_dir = Some(data_dir.to_path_buf());
    TcpNode::start(config).map_err(io::Error::other)
}

impl Launcher for Tcp {
    type Node = TcpNode;

    fn launch(&mut self, listen: SocketAddr, data_dir: &Path, contacts: Vec<SocketAddr>) -> io::Result<TcpNode> {
        let tls = self.ca.as_ref().map(credentials);
        start(listen, tls, self.mesh, data_dir, contacts)
    }

    fn handle(node: &TcpNode) -> &Handle {
        node.handle()
    }

    fn raw_connect(&mut self, addr: SocketAddr) -> Box<dyn RawConn> {
        let sock = TcpStream::connect(addr).expect("the node accepts connections");
        match &self.ca {
            None => Box::new(PlainRaw(sock)),
            Some(ca) => {
                let config = credentials(ca).client_config().expect("client configuration");
                let name = ServerName::try_from(SERVER_NAME).expect("valid name");
                let conn = rustls::ClientConnection::new(Arc::new(config), name).expect("client connection");
                let mut tls = rustls::StreamOwned::new(conn, sock);
                while tls.conn.is_handshaking() {
                    tls.conn
                        .complete_io(&mut tls.sock)
                        .expect("TLS handshake with the node");
                }
                Box::new(TlsRaw(tls))
            }
        }
    }

    fn raw_listen(&mut self) -> Box<dyn RawPeer> {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("a bound address");
        listener.set_nonblocking(true).expect("a non-blocking listener");
        let tls = self
            .ca
            .as_ref()
            .map(|ca| Arc::new(credentials(ca).server_config().expect("server configuration")));
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((sock, _)) => {
                        let (tls, flag) = (tls.clone(), flag.clone());
                        std::thread::spawn(move || serve_tcp(sock, tls, addr, &flag));
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(_) => return,
                }
            }
        });
        Box::new(TcpPeer { addr, stop })
    }
}

/// For TLS launchers ([`Tcp::tls`]) only.
impl Credentials for Tcp {
    fn launch_stranger(
        &mut self,
        listen: SocketAddr,
        data_dir: &Path,
        contacts: Vec<SocketAddr>,
    ) -> io::Result<TcpNode> {
        let _ = self.ca();
        let other = ClusterCa::generate().map_err(io::Error::other)?;
        start(listen, Some(credentials(&other)), self.mesh, data_dir, contacts)
    }

    fn launch_plaintext(
        &mut self,
        listen: SocketAddr,
        data_dir: &Path,
        contacts: Vec<SocketAddr>,
    ) -> Option<io::Result<TcpNode>> {
        let _ = self.ca();
        Some(start(listen, None, self.mesh, data_dir, contacts))
    }

    fn raw_connect_anonymous(&mut self, addr: SocketAddr) -> Box<dyn RawConn> {
        let config = credentials(self.ca())
            .anonymous_client_config()
            .expect("client configuration");
        let name = ServerName::try_from(SERVER_NAME).expect("valid name");
        let conn = rustls::ClientConnection::new(Arc::new(config), name).expect("client connection");
        let sock = TcpStream::connect(addr).expect("the node accepts connections");
        // No handshake here: TLS 1.3 lets the client finish its side first,
        // so its first write may go through; the node's verdict arrives as
        // an alert on the next read.
        Box::new(TlsRaw(rustls::StreamOwned::new(conn, sock)))
    }
}

/// A silent TCP peer: one thread accepts, one per connection serves.
struct TcpPeer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl RawPeer for TcpPeer {
    fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for TcpPeer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve_tcp(sock: TcpStream, tls: Option<Arc<rustls::ServerConfig>>, addr: SocketAddr, stop: &AtomicBool) {
    let _ = sock.set_nonblocking(false);
    let _ = sock.set_read_timeout(Some(Duration::from_millis(50)));
    match tls {
        None => serve_silently(&mut { sock }, addr, stop),
        Some(config) => {
            let Ok(conn) = rustls::ServerConnection::new(config) else {
                return;
            };
            serve_silently(&mut rustls::StreamOwned::new(conn, sock), addr, stop);
        }
    }
}

fn recv_from(r: &mut dyn Read, sock: &TcpStream, limit: Duration) -> Recv {
    let _ = sock.set_read_timeout(Some(limit.max(Duration::from_millis(1))));
    let mut buf = [0u8; 4096];
    match r.read(&mut buf) {
        Ok(0) => Recv::Closed,
        Ok(n) => Recv::Data(buf[..n].to_vec()),
        Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => Recv::Nothing,
        Err(_) => Recv::Closed,
    }
}

struct PlainRaw(TcpStream);

impl RawConn for PlainRaw {
    fn send(&mut self, bytes: &[u8]) {
        // The node may have closed already; that is for `recv` to report.
        let _ = self.0.write_all(bytes);
    }

    fn finish(&mut self) {
        let _ = self.0.shutdown(Shutdown::Write);
    }

    fn recv(&mut self, limit: Duration) -> Recv {
        let sock = self.0.try_clone().expect("clone a socket");
        recv_from(&mut self.0, &sock, limit)
    }
}

struct TlsRaw(rustls::StreamOwned<rustls::ClientConnection, TcpStream>);

impl RawConn for TlsRaw {
    fn send(&mut self, bytes: &[u8]) {
        let _ = self.0.write_all(bytes).and_then(|()| self.0.flush());
    }

    fn finish(&mut self) {
        self.0.conn.send_close_notify();
        let _ = self.0.flush();
        let _ = self.0.sock.shutdown(Shutdown::Write);
    }

    fn recv(&mut self, limit: Duration) -> Recv {
        let sock = self.0.sock.try_clone().expect("clone a socket");
        recv_from(&mut self.0, &sock, limit)
    }
}
