//! The README's three terminals started in the wrong order: the joiner
//! starts before its contact. Its joins are retried with backoff until the
//! contact answers, and it ends in the cluster.

use epidemic_tcp::{TcpConfig, TcpNode, block_on};
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

#[test]
fn a_joiner_started_before_its_contact_gets_in() {
    // A port that is free now; the contact will listen there later.
    let contact_addr: SocketAddr = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let mut config = TcpConfig::insecure_plaintext("127.0.0.1:0".parse().unwrap());
    config.contacts = vec![contact_addr];
    let joiner = TcpNode::start(config).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert!(block_on(joiner.handle().neighbors()).unwrap().is_empty());
    let contact = TcpNode::start(TcpConfig::insecure_plaintext(contact_addr)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let joined = loop {
        let n = block_on(contact.handle().neighbors()).unwrap();
        if n == [joiner.identity()] {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stats = block_on(joiner.handle().stats()).unwrap().driver;
    assert!(joined, "the joiner never got in: {stats:?}");
    assert!(stats.dial_failures >= 1, "the first dials failed: {stats:?}");
    joiner.shutdown_blocking().unwrap();
    contact.shutdown_blocking().unwrap();
}
