//! What a node logs when something fails: an operator reading the logs
//! learns which peer, and why, without a debugger.

use epidemic_driver::certs::ClusterCa;
use epidemic_tcp::{TcpConfig, TcpNode};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Every log line of this test binary, captured once for all its tests.
fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = buffer.clone();
        tracing_subscriber::fmt()
            .with_env_filter("info,epidemic_core=debug")
            .with_ansi(false)
            .with_writer(move || Capture(sink.clone()))
            .init();
        buffer
    })
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The first captured line holding every one of `parts`, waiting up to 20 s.
fn line_with(parts: &[&str]) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = String::from_utf8_lossy(&logs().lock().unwrap()).into_owned();
        if let Some(line) = text.lines().find(|l| parts.iter().all(|p| l.contains(p))) {
            return Some(line.to_owned());
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn lo() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

#[test]
fn an_unreachable_contact_is_a_warning_that_names_it() {
    logs();
    // A port that was just free: nothing listens there.
    let dead = std::net::TcpListener::bind(lo()).unwrap().local_addr().unwrap();
    let mut config = TcpConfig::insecure_plaintext(lo());
    config.contacts = vec![dead];
    let node = TcpNode::start(config).unwrap();
    let line = line_with(&["WARN", "dial failed", &dead.to_string()]);
    assert!(
        line.is_some(),
        "no warning names {dead}:\n{}",
        String::from_utf8_lossy(&logs().lock().unwrap())
    );
    node.shutdown_blocking().expect("the node was running");
}

#[test]
fn a_certificate_from_another_ca_is_refused_with_the_reason_on_both_sides() {
    logs();
    let (ours, theirs) = (ClusterCa::generate().unwrap(), ClusterCa::generate().unwrap());
    let tls = |ca: &ClusterCa| ca.issue(&["127.0.0.1"]).unwrap().tls_config(ca).unwrap();
    let member = TcpNode::start(TcpConfig::tls(lo(), tls(&ours))).unwrap();
    let mut config = TcpConfig::tls(lo(), tls(&theirs));
    config.contacts = vec![member.identity()];
    let stranger = TcpNode::start(config).unwrap();
    // The stranger, as the TLS client, checks the member's certificate
    // first and refuses it: its dial fails, naming the member and rustls's
    // reason.
    let member_addr = member.identity().to_string();
    let failed = line_with(&["WARN", "dial failed", &member_addr, "invalid peer certificate"]);
    assert!(failed.is_some(), "{}", String::from_utf8_lossy(&logs().lock().unwrap()));
    // The member logs the refusal too, with the alert the stranger sent.
    let refused = line_with(&["WARN", "inbound connection refused", "alert"]);
    assert!(
        refused.is_some(),
        "{}",
        String::from_utf8_lossy(&logs().lock().unwrap())
    );
    stranger.shutdown_blocking().expect("the stranger was running");
    member.shutdown_blocking().expect("the member was running");
}

#[test]
fn bad_bytes_close_the_connection_with_a_warning_that_names_the_sender() {
    logs();
    let node = TcpNode::start(TcpConfig::insecure_plaintext(lo())).unwrap();
    let mut raw = TcpStream::connect(node.identity()).unwrap();
    // A length prefix of 4 GiB where a hello should be.
    raw.write_all(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3]).unwrap();
    let from = raw.local_addr().unwrap().to_string();
    let line = line_with(&["WARN", "inbound connection refused", &from]);
    assert!(line.is_some(), "{}", String::from_utf8_lossy(&logs().lock().unwrap()));
    node.shutdown_blocking().expect("the node was running");
}

#[test]
fn the_core_logs_its_protocol_decisions_at_debug() {
    logs();
    let a = TcpNode::start(TcpConfig::insecure_plaintext(lo())).unwrap();
    let mut config = TcpConfig::insecure_plaintext(lo());
    config.contacts = vec![a.identity()];
    let b = TcpNode::start(config).unwrap();
    let (a_id, b_id) = (a.identity().to_string(), b.identity().to_string());
    // The joiner's decision, and both sides' new neighbour, with identities.
    assert!(
        line_with(&["DEBUG", "joining", &b_id, &a_id]).is_some(),
        "{}",
        String::from_utf8_lossy(&logs().lock().unwrap())
    );
    assert!(line_with(&["DEBUG", "neighbour up", &a_id, &b_id]).is_some());
    b.shutdown_blocking().unwrap();
    a.shutdown_blocking().unwrap();
}

#[test]
fn a_frame_the_node_refuses_closes_the_link_with_a_warning() {
    use epidemic_driver::codec::{Hello, PREFIX_LEN, encode_record};
    use std::io::Read;
    logs();
    let node = TcpNode::start(TcpConfig::insecure_plaintext(lo())).unwrap();
    let mut raw = TcpStream::connect(node.identity()).unwrap();
    let claimed: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let mut records = Vec::new();
    encode_record(&Hello::new(claimed, 1).encode(), &mut records);
    raw.write_all(&records).unwrap();
    let mut len = [0u8; PREFIX_LEN];
    raw.read_exact(&mut len).unwrap();
    let mut ack = vec![0u8; u32::from_be_bytes(len) as usize];
    raw.read_exact(&mut ack).unwrap();
    // A frame of the right version and an unknown kind.
    records.clear();
    encode_record(&[1, 99, 1, 2, 3], &mut records);
    raw.write_all(&records).unwrap();
    let line = line_with(&["WARN", "the node refused a frame", "127.0.0.1:9"]);
    assert!(line.is_some(), "{}", String::from_utf8_lossy(&logs().lock().unwrap()));
    println!("{}", line.unwrap());
    node.shutdown_blocking().unwrap();
}
