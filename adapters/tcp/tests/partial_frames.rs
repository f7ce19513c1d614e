//! Links that each hold an unfinished large frame cannot take a node's
//! memory: what partial records pin across all links is bounded by
//! `DriverConfig::partial_frame_budget`, the node keeps accepting joins
//! meanwhile, and its memory comes back down once the links leave.
//!
//! Measured on the process's resident set (Linux `/proc/self/statm`), so
//! this file holds a single test: nothing else runs in its process.
#![cfg(target_os = "linux")]

use epidemic_tcp::epidemic_driver::codec::{Ack, Hello, PREFIX_LEN, encode_record, prefix};
use epidemic_tcp::{Duration as CoreDuration, TcpConfig, TcpNode, block_on};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

const LINKS: usize = 250;
const MIB: usize = 1 << 20;

fn lo() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// The process's resident set, in bytes.
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// The highest resident set seen over `period`.
fn peak_rss(period: Duration) -> usize {
    let end = Instant::now() + period;
    let mut peak = rss();
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
        peak = peak.max(rss());
    }
    peak
}

/// A plaintext link to `to` under the identity `me`: hello, then the ack.
fn handshaken(to: SocketAddr, me: SocketAddr) -> Option<TcpStream> {
    let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.set_write_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut hello = Vec::new();
    encode_record(&Hello::new(me, 7).encode(), &mut hello);
    s.write_all(&hello).ok()?;
    let mut len = [0u8; PREFIX_LEN];
    s.read_exact(&mut len).ok()?;
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).ok()?;
    matches!(Ack::decode(&body), Ok(Ack::Accept { .. })).then_some(s)
}

#[test]
fn two_hundred_fifty_unfinished_1_mib_frames_pin_at_most_the_budget() {
    let mut config = TcpConfig::insecure_plaintext(lo());
    // Hold the links for the whole test: neither the liveness check nor the
    // idle timeout may be what frees the memory here.
    config.driver.liveness_timeout = CoreDuration::from_secs(120);
    config.driver.idle_timeout = CoreDuration::from_secs(120);
    let budget = config.driver.partial_frame_budget;
    let max_frame = config.driver.node.max_frame;
    assert_eq!(max_frame, MIB);
    let contact = TcpNode::start(config).unwrap();
    let target = contact.identity();
    std::thread::sleep(Duration::from_millis(300));
    let baseline = rss();

    // Each link announces a frame of the maximum size and sends all of it
    // but its last byte.
    let mut record = prefix(MIB).unwrap().to_vec();
    record.resize(PREFIX_LEN + MIB - 1, 0x5a);
    let mut links = Vec::new();
    let mut refused = 0;
    for i in 0..LINKS {
        let me: SocketAddr = format!("127.0.0.3:{}", 20_000 + i).parse().unwrap();
        let Some(mut s) = handshaken(target, me) else {
            panic!("link {i} was not handshaken");
        };
        if s.write_all(&record).is_err() {
            refused += 1;
        }
        links.push(s);
    }
    let held = peak_rss(Duration::from_secs(2)).saturating_sub(baseline);

    // A joiner still gets in.
    let mut joiner_config = TcpConfig::insecure_plaintext(lo());
    joiner_config.contacts = vec![target];
    let joiner = TcpNode::start(joiner_config).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let joined = loop {
        if block_on(joiner.handle().neighbors()).unwrap() == [target] {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stats = block_on(contact.handle().stats()).unwrap().driver;

    drop(links);
    std::thread::sleep(Duration::from_secs(1));
    let after = peak_rss(Duration::from_secs(1)).saturating_sub(baseline);
    eprintln!(
        "baseline {} MiB; with {LINKS} unfinished frames +{} MiB (budget {} MiB); after they left +{} MiB; \
         writes refused {refused}; links over budget {}",
        baseline / MIB,
        held / MIB,
        budget / MIB,
        after / MIB,
        stats.over_budget,
    );
    // What the links may pin: the budget, plus each link's free allowance
    // of one read buffer (64 KiB), plus slack for the joiner and the
    // allocator. Before the budget this was 268 MiB.
    let bound = budget + LINKS * 64 * 1024 + 24 * MIB;
    assert!(held < bound, "{} MiB held, bound {} MiB", held / MIB, bound / MIB);
    // And it comes back: what the links pinned is freed with them.
    assert!(
        after < budget / 2,
        "{} MiB still held after the links left",
        after / MIB
    );
    assert!(stats.over_budget > 0, "no link was refused for the budget: {stats:?}");
    assert!(joined, "the joiner never got a link; contact stats {stats:?}");
    joiner.shutdown_blocking().unwrap();
    contact.shutdown_blocking().unwrap();
}
