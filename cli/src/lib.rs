//! The library behind the `epidemic` command: the simulator scenarios of
//! `epidemic sim`.

pub mod sim;
