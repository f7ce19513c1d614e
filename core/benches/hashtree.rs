//! Placeholder; the hash-tree bench is being written.
fn main() {}
