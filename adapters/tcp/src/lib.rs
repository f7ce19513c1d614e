//! # epidemic-tcp
//!
//! The TCP transport (smol) for `epidemic-core` nodes.
//!
//! **Not implemented yet.** This crate has no API: the transport, its
//! conformance run and its benchmarks are tracked by the "Real networks"
//! issue. It exists so the workspace layout is fixed from the start.
