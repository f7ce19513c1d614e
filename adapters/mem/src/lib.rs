//! # epidemic-mem
//!
//! The in-memory bus and deterministic discrete-event simulator.
//!
//! **Not implemented yet.**
