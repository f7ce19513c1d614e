//! Debug events for protocol decisions, through `tracing` when the
//! `tracing` feature is on, and nothing at all otherwise. Decisions only:
//! never one event per message, so a `debug` filter stays readable at
//! thousands of messages a second.

/// `tracing::debug!` under the `tracing` feature; nothing without it (the
/// arguments are not even evaluated).
macro_rules! decision {
    ($($arg:tt)*) => {
        #[cfg(feature = "tracing")]
        {
            tracing::debug!(target: "epidemic_core", $($arg)*);
        }
    };
}

pub(crate) use decision;
