//! `epidemic_mem::scenarios::metadata` with and without anti-entropy,
//! printed as JSON lines (the CLI's `epidemic sim metadata` runs the same
//! function).
//!
//! `cargo run --release -p epidemic-mem --example metadata_partitions [nodes] [partitions] [writes] [hyparview]`

use epidemic_mem::scenarios::{self, MetadataParams};

fn main() {
    let arg = |i: usize, default: usize| std::env::args().nth(i).and_then(|s| s.parse().ok()).unwrap_or(default);
    let mut params = MetadataParams::default();
    params.nodes = arg(1, params.nodes);
    params.partitions = arg(2, params.partitions);
    params.writes = arg(3, params.writes);
    params.hyparview = std::env::args().nth(4).is_some_and(|s| s == "hyparview");
    for anti_entropy in [true, false] {
        params.anti_entropy = anti_entropy;
        let started = std::time::Instant::now();
        let report = scenarios::metadata(&params);
        eprintln!("anti_entropy={anti_entropy}: {:.2?} wall", started.elapsed());
        println!("{}", serde_json::to_string(&report).expect("serializable"));
    }
}
