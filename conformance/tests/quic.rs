//! The conformance suite over QUIC with mutual TLS, on loopback, with the
//! durability and credential tests.

use epidemic_conformance::quic::Quic;

epidemic_conformance::suite!(Quic::cluster());
epidemic_conformance::mesh_suite!(Quic::mesh_cluster());
epidemic_conformance::durability_suite!(Quic::new());
epidemic_conformance::credentials_suite!(Quic::new());

/// The wrong transport between the adapters: a QUIC node joining through a
/// TCP node's port, and a TCP node joining through a QUIC node's port.
/// Neither hears anything of the other transport (UDP datagrams to a port
/// only TCP listens on are dropped, and nothing accepts TCP on a QUIC
/// port), so each is told its contact is unreachable: that is all either
/// can know.
#[test]
fn a_quic_node_and_a_tcp_node_joining_each_other_are_told_unreachable() {
    use epidemic_conformance::credentials::FAILED_JOIN_WAIT;
    use epidemic_conformance::net::Launcher;
    use epidemic_conformance::tcp::Tcp;
    use epidemic_driver::{ContactFailure, JoinError, JoinWait};
    use futures_lite::future::{block_on, zip};

    let lo: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let (mut quic, mut tcp) = (Quic::new(), Tcp::tls());
    let tcp_node = tcp.launch(lo, dirs[0].path(), Vec::new()).unwrap();
    let quic_node = quic.launch(lo, dirs[1].path(), Vec::new()).unwrap();
    let tcp_addr = Tcp::handle(&tcp_node).identity();
    let quic_addr = Quic::handle(&quic_node).identity();
    let quic_joiner = quic.launch(lo, dirs[2].path(), vec![tcp_addr]).unwrap();
    let tcp_joiner = tcp.launch(lo, dirs[3].path(), vec![quic_addr]).unwrap();

    let mut wait = JoinWait::default();
    wait.timeout = FAILED_JOIN_WAIT;
    let (q, t) = block_on(zip(
        Quic::handle(&quic_joiner).joined(wait),
        Tcp::handle(&tcp_joiner).joined(wait),
    ));
    for (result, contact) in [(q, tcp_addr), (t, quic_addr)] {
        let Err(JoinError::Timeout { contacts, .. }) = result else {
            panic!("joined() through {contact} did not time out: {result:?}");
        };
        let why = contacts.iter().find(|(a, _)| *a == contact).map(|(_, why)| why);
        assert!(
            matches!(why, Some(ContactFailure::Unreachable(_))),
            "joining through {contact} over the other transport: {why:?}"
        );
    }
    for h in [Quic::handle(&quic_joiner), Quic::handle(&quic_node)] {
        let _ = block_on(h.shutdown());
    }
    for h in [Tcp::handle(&tcp_joiner), Tcp::handle(&tcp_node)] {
        let _ = block_on(h.shutdown());
    }
}
