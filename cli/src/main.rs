//! The `epidemic` command.

use anyhow::Context;
use clap::{Parser, Subcommand};
use epidemic_cli::sim::{self, Format, Progress, SimArgs};
use std::io::Write;

mod certs;
mod node;

// The simulator allocates and frees a frame for every message between
// hundreds of thousands of small, scattered node states; mimalloc's
// thread-local free lists and size-segregated pages make that markedly
// faster and keep node memory denser than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Simulate epidemic clusters and run epidemic nodes.
#[derive(Debug, Parser)]
#[command(name = "epidemic", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Simulate a cluster on virtual time and measure its broadcasts
    /// (reliability, RMR, last delivery hop, messages), beside the
    /// published figures, or its metadata store's convergence after
    /// partitions. `epidemic sim` alone runs `stable` at 10,000 nodes.
    Sim(SimArgs),
    /// Run a real node on TCP or QUIC, reading line commands on stdin
    /// (put, get, delete, members, stats) and answering on stdout.
    Node(node::NodeArgs),
    /// Create a cluster CA and a certificate per node.
    Certs(certs::CertsArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Sim(args) => run_sim(&args),
        Command::Node(args) => node::run(&args),
        Command::Certs(args) => certs::run(&args),
    }
}

fn run_sim(args: &SimArgs) -> anyhow::Result<()> {
    for warning in args.check().map_err(|e| anyhow::anyhow!(e))? {
        eprintln!("warning: {warning}");
    }
    let progress = Progress::new(sim::total_work(args), !args.common.quiet);
    let report = sim::run(args, &progress);
    progress.finish();
    let report = report?;
    let mut stdout = std::io::stdout().lock();
    match args.common.format {
        Format::Table => {
            writeln!(stdout, "{}", report.table())?;
            writeln!(stdout, "wall time: {:.1} s", report.wall_ms() as f64 / 1000.0)?;
        }
        Format::Json => {
            serde_json::to_writer_pretty(&mut stdout, &report).context("writing JSON")?;
            writeln!(stdout)?;
        }
    }
    if let Some(dir) = &args.common.out {
        let written = report.write_out_dir(dir)?;
        if args.common.format == Format::Table {
            for path in written {
                writeln!(stdout, "wrote {}", path.display())?;
            }
        }
    }
    if let sim::ScenarioReport::Chaos(r) = &report {
        if !r.passed() {
            // A sweep with failing seeds fails, as a test run would.
            drop(stdout);
            std::process::exit(1);
        }
    }
    Ok(())
}
