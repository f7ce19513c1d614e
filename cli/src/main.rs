//! The `epidemic` command.

use clap::Parser;

/// Simulate epidemic clusters and run epidemic nodes.
#[derive(Debug, Parser)]
#[command(name = "epidemic", version, about)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
}
