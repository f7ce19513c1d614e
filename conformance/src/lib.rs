//! # epidemic-conformance
//!
//! One scenario suite, written once against a harness trait and run over
//! every adapter.
//!
//! **Not implemented yet.** The suite is tracked by the "Real networks"
//! issue; until then it has no API.
