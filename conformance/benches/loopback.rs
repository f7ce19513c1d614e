//! Five nodes on loopback, over each transport: broadcasts per second
//! delivered to every node, and delivery latency, for 256-byte and 64 KiB
//! payloads; with raw loopback TCP moving the same bytes as the physical
//! reference. Prints Markdown rows for BENCHMARKS.md.
//!
//! `cargo bench -p epidemic-conformance --bench loopback`
//! (`-- --quick` for a shorter run).

use bytes::Bytes;
use epidemic_conformance::Cluster as _;
use epidemic_conformance::net::{Launcher, NetCluster};
use epidemic_conformance::quic::Quic;
use epidemic_conformance::scenarios::form;
use epidemic_conformance::tcp::Tcp;
use futures_lite::future::block_on;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

const NODES: usize = 5;

struct Shape {
    size: usize,
    /// Broadcasts measured.
    messages: usize,
    /// Broadcasts in flight at most (sent and not yet delivered everywhere).
    window: usize,
    /// Broadcasts sent first and not measured: Plumtree prunes its tree on
    /// the first duplicates, and until it has, some deliveries take the
    /// lazy path (IHAVE, then GRAFT after the IHAVE timeout).
    warmup: usize,
}

struct Outcome {
    per_sec: f64,
    p50: Duration,
    p99: Duration,
    complete: usize,
    overflows: u64,
}

/// Delivery bookkeeping shared by the receivers and the sender.
struct Tally {
    counts: Mutex<Vec<u8>>,
    complete: AtomicU64,
    cv: Condvar,
    gate: Mutex<()>,
    latencies: Mutex<Vec<Duration>>,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn run<L: Launcher + 'static>(cluster: &mut NetCluster<L>, shape: &Shape) -> Outcome {
    let epoch = Instant::now();
    let receivers = NODES - 1;
    let tally = Arc::new(Tally {
        counts: Mutex::new(vec![0; shape.warmup + shape.messages]),
        complete: AtomicU64::new(0),
        cv: Condvar::new(),
        gate: Mutex::new(()),
        latencies: Mutex::new(Vec::with_capacity(shape.messages * receivers)),
    });
    let warmup = shape.warmup;
    let total = shape.warmup + shape.messages;
    let mut threads = Vec::new();
    for ix in 1..NODES {
        let mut events = cluster.handle(ix).deliveries();
        let tally = tally.clone();
        // Each receiver blocks on its stream; the streams end when the
        // cluster stops.
        threads.push(std::thread::spawn(move || {
            let mut local = Vec::new();
            while let Some(delivery) = block_on(events.next()) {
                // A lag would leave a message short of receivers for ever.
                let payload = delivery.expect("the reader keeps up with the stream").payload;
                let seq = u64::from_le_bytes(payload[..8].try_into().unwrap()) as usize;
                let sent = u64::from_le_bytes(payload[8..16].try_into().unwrap());
                if seq >= warmup {
                    local.push(epoch.elapsed().saturating_sub(Duration::from_nanos(sent)));
                }
                let mut counts = tally.counts.lock().unwrap();
                counts[seq] += 1;
                if counts[seq] as usize == receivers {
                    drop(counts);
                    tally.complete.fetch_add(1, Ordering::SeqCst);
                    let _g = tally.gate.lock().unwrap();
                    tally.cv.notify_all();
                }
            }
            tally.latencies.lock().unwrap().extend(local);
        }));
    }
    let origin = cluster.handle(0).clone();
    let mut body = vec![0u8; shape.size];
    let give_up = Instant::now() + Duration::from_secs(30);
    let wait_until_complete = |n: usize| {
        let mut g = tally.gate.lock().unwrap();
        while (tally.complete.load(Ordering::SeqCst) as usize) < n && Instant::now() < give_up {
            g = tally.cv.wait_timeout(g, Duration::from_millis(50)).unwrap().0;
        }
    };
    let mut started = Instant::now();
    for seq in 0..total {
        if seq == warmup {
            wait_until_complete(warmup);
            started = Instant::now();
        }
        wait_until_complete((seq + 1).saturating_sub(shape.window));
        body[..8].copy_from_slice(&(seq as u64).to_le_bytes());
        body[8..16].copy_from_slice(&(epoch.elapsed().as_nanos() as u64).to_le_bytes());
        block_on(origin.broadcast(Bytes::copy_from_slice(&body))).unwrap();
    }
    wait_until_complete(total);
    let elapsed = started.elapsed();
    let overflows = block_on(cluster.handle(0).stats()).map_or(0, |s| s.driver.queue_overflows);
    if (tally.complete.load(Ordering::SeqCst) as usize) < total {
        // Not every broadcast reached every node: show what the broadcast
        // engines dropped or gave up on.
        for ix in 0..NODES {
            if let Ok(s) = block_on(cluster.handle(ix).stats()) {
                let p = &s.node.plumtree;
                eprintln!("node {ix} driver: {:?}", s.driver);
                eprintln!(
                    "node {ix}: delivered {} lazy_dropped {} outstanding_dropped {} missing_evicted {} \
                     grafts_unanswered {} announcers_dropped {} timer_grafts {} invalid {} overflows {}",
                    p.delivered,
                    p.lazy_dropped,
                    p.outstanding_dropped,
                    p.missing_evicted,
                    p.grafts_unanswered,
                    p.announcers_dropped,
                    p.timer_grafts,
                    p.invalid,
                    s.driver.queue_overflows,
                );
            }
        }
    }
    cluster.stop();
    for t in threads {
        t.join().unwrap();
    }
    let complete = (tally.complete.load(Ordering::SeqCst) as usize).saturating_sub(warmup);
    let mut lat = std::mem::take(&mut *tally.latencies.lock().unwrap());
    lat.sort_unstable();
    Outcome {
        per_sec: complete as f64 / elapsed.as_secs_f64(),
        p50: percentile(&lat, 0.5),
        p99: percentile(&lat, 0.99),
        complete,
        overflows,
    }
}

fn transport<L: Launcher + 'static>(name: &str, make: impl Fn() -> L, shapes: &[Shape]) {
    for shape in shapes {
        let mut cluster = NetCluster::new(make());
        form(&mut cluster, NODES);
        let o = run(&mut cluster, shape);
        println!(
            "| {name} | {} | {} | {:.0} | {:.1} | {:.2} ms | {:.2} ms | {} |",
            human(shape.size),
            o.complete,
            o.per_sec,
            o.per_sec * shape.size as f64 * (NODES - 1) as f64 / 1e6,
            o.p50.as_secs_f64() * 1e3,
            o.p99.as_secs_f64() * 1e3,
            o.overflows,
        );
    }
}

fn human(size: usize) -> String {
    if size >= 1024 {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

/// Raw loopback TCP: one connection moving the same records (4-byte length
/// and payload) as fast as it can, in one direction.
fn raw_tcp(size: usize, messages: usize) -> (f64, f64) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let reader = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 4 + size];
        for _ in 0..messages {
            s.read_exact(&mut buf).unwrap();
        }
    });
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    let mut record = (size as u32).to_be_bytes().to_vec();
    record.resize(4 + size, 7);
    let started = Instant::now();
    let mut batch = Vec::new();
    let per_write = (256 * 1024 / record.len()).max(1);
    let mut sent = 0;
    while sent < messages {
        batch.clear();
        for _ in 0..per_write.min(messages - sent) {
            batch.extend_from_slice(&record);
            sent += 1;
        }
        s.write_all(&batch).unwrap();
    }
    reader.join().unwrap();
    let secs = started.elapsed().as_secs_f64();
    (messages as f64 / secs, (messages * size) as f64 / secs / 1e6)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let scale = if quick { 1 } else { 4 };
    let shapes = [
        Shape {
            size: 256,
            messages: 5_000 * scale,
            window: 256,
            warmup: 1_000,
        },
        Shape {
            size: 64 * 1024,
            messages: 500 * scale,
            window: 32,
            warmup: 100,
        },
    ];
    println!("| transport | payload | broadcasts | delivered to all /s | MB/s delivered | p50 | p99 | overflows |");
    println!("|---|---|---|---|---|---|---|---|");
    transport("tcp plaintext", Tcp::plaintext, &shapes);
    transport("tcp+tls", Tcp::tls, &shapes);
    transport("quic", Quic::new, &shapes);
    println!();
    println!("| raw loopback TCP | payload | records/s | MB/s |");
    println!("|---|---|---|---|");
    for shape in &shapes {
        let (per_sec, mbs) = raw_tcp(shape.size, shape.messages * 20);
        println!("| one stream | {} | {:.0} | {:.0} |", human(shape.size), per_sec, mbs);
    }
}
