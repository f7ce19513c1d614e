//! Engine tests: single-node unit scenarios, an in-memory network over a
//! fixed overlay, and the memory bounds.

mod bounds;
mod net;
mod network;
mod unit;
