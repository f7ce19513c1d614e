//! # epidemic-quic
//!
//! The QUIC transport (quinn on tokio) for `epidemic-core` nodes.
//!
//! **Not implemented yet.** This crate has no API: the transport, mutual TLS
//! and the conformance run are tracked by the "Real networks" issue. It exists
//! so the workspace layout is fixed from the start.
