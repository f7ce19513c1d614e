//! The progress bar: on stderr, and only for runs that last.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Runs shorter than this never show a bar.
const SHOW_AFTER: Duration = Duration::from_secs(1);

/// Counts units of work (cycles, unless [`Progress::set_unit`] says
/// otherwise) done across every worker. Hidden until the run has lasted
/// `SHOW_AFTER` (one second), and for good when disabled or when stderr is not a
/// terminal, so it never mixes with `--format json` on stdout nor litters a
/// log.
pub struct Progress {
    bar: ProgressBar,
    started: Instant,
    enabled: bool,
    shown: Mutex<bool>,
}

impl Progress {
    /// A bar for `total` units of work; `enabled: false` keeps it hidden.
    pub fn new(total: u64, enabled: bool) -> Self {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} {prefix}  {msg}")
                .expect("a valid template"),
        );
        bar.set_prefix("cycles");
        Progress {
            bar,
            started: Instant::now(),
            enabled: enabled && std::io::stderr().is_terminal(),
            shown: Mutex::new(false),
        }
    }

    /// A bar that never shows.
    pub fn hidden() -> Self {
        Progress::new(0, false)
    }

    /// `n` more units done.
    pub fn inc(&self, n: u64) {
        self.bar.inc(n);
        self.maybe_show();
    }

    /// What the units of work are: `cycles` unless set.
    pub fn set_unit(&self, unit: &'static str) {
        self.bar.set_prefix(unit);
    }

    /// What is being done now.
    pub fn message(&self, msg: impl Into<String>) {
        self.bar.set_message(msg.into());
        self.maybe_show();
    }

    fn maybe_show(&self) {
        if !self.enabled || self.started.elapsed() < SHOW_AFTER {
            return;
        }
        let mut shown = self.shown.lock().expect("not poisoned");
        if !*shown {
            *shown = true;
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
            self.bar.enable_steady_tick(Duration::from_millis(200));
        }
    }

    /// Removes the bar from the terminal.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
