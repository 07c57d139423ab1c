//! The progress bar of a long `map`, `starmap` or `for_each` run from a
//! terminal: done, failed, rate and (when the number of inputs is known)
//! ETA, drawn on stderr by `indicatif`.
//!
//! Shown when stderr is a terminal, unless switched off for the whole
//! program ([`set_progress_bars`], or `MODAL_PROGRESS=0`) or for one map
//! ([`crate::MapStream::show_progress`]).

use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicU8, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Environment variable that switches progress bars off (`0`) or on.
pub const PROGRESS_ENV: &str = "MODAL_PROGRESS";

/// The program-wide switch: unset, off or on.
static PROGRAM: AtomicU8 = AtomicU8::new(UNSET);
const UNSET: u8 = 0;
const OFF: u8 = 1;
const ON: u8 = 2;

/// Switches the progress bars of maps off (or back on, where stderr is a
/// terminal) for this whole program; a map's own
/// [`show_progress`](crate::MapStream::show_progress) still wins.
pub fn set_progress_bars(enabled: bool) {
    PROGRAM.store(if enabled { ON } else { OFF }, Ordering::Relaxed);
}

/// Whether a map shows a bar: its own choice, else the program's (in
/// code, else `MODAL_PROGRESS`), else whether stderr is a terminal.
pub(crate) fn shown(
    own: Option<bool>,
    program: Option<bool>,
    env: Option<&str>,
    terminal: bool,
) -> bool {
    own.or(program)
        .or_else(|| env.map(|v| !matches!(v.trim(), "0" | "false" | "off" | "no")))
        .map_or(terminal, |on| on && terminal)
}

/// A map's bar; drawing nothing when hidden, yet counting.
pub(crate) struct Progress {
    bar: ProgressBar,
    failed: u64,
}

impl Progress {
    /// The bar of a map of `total` inputs (`None`: not known ahead), shown
    /// per [`shown`].
    pub(crate) fn new(total: Option<u64>, own: Option<bool>) -> Progress {
        let program = match PROGRAM.load(Ordering::Relaxed) {
            OFF => Some(false),
            ON => Some(true),
            _ => None,
        };
        let env = std::env::var(PROGRESS_ENV).ok();
        let visible = shown(
            own,
            program,
            env.as_deref(),
            std::io::stderr().is_terminal(),
        );
        let target = if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Progress::with_target(total, target)
    }

    fn with_target(total: Option<u64>, target: ProgressDrawTarget) -> Progress {
        let (bar, template) = match total {
            Some(n) => (
                ProgressBar::with_draw_target(Some(n), target),
                "{prefix} [{bar:30}] {pos}/{len} done, {msg} failed, {per_sec}, ETA {eta}",
            ),
            None => (
                ProgressBar::with_draw_target(None, target),
                "{prefix} {spinner} {pos} done, {msg} failed, {per_sec}",
            ),
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix("map");
        bar.set_message("0");
        Progress { bar, failed: 0 }
    }

    /// One more result.
    pub(crate) fn record(&mut self, ok: bool) {
        if !ok {
            self.failed += 1;
            self.bar.set_message(self.failed.to_string());
        }
        self.bar.inc(1);
    }

    /// The map ended: the bar stays with its final counts.
    pub(crate) fn finish(&self) {
        self.bar.finish();
    }

    #[cfg(test)]
    fn counts(&self) -> (u64, u64) {
        (self.bar.position(), self.failed)
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        // A map dropped before its end leaves its bar as it stood.
        if !self.bar.is_finished() {
            self.bar.abandon();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_on_terminals_unless_switched_off_most_specific_first() {
        assert!(shown(None, None, None, true));
        assert!(!shown(None, None, None, false));
        // Never drawn where nobody watches, whatever was asked.
        assert!(!shown(Some(true), None, None, false));
        assert!(!shown(None, Some(false), None, true));
        assert!(shown(Some(true), Some(false), None, true));
        assert!(!shown(Some(false), Some(true), None, true));
        assert!(!shown(None, None, Some("0"), true));
        assert!(shown(None, Some(true), Some("0"), true));
        assert!(shown(None, None, Some("1"), true));
    }

    #[test]
    fn counts_done_and_failed_while_hidden() {
        let mut progress = Progress::with_target(Some(4), ProgressDrawTarget::hidden());
        progress.record(true);
        progress.record(false);
        progress.record(true);
        assert_eq!(progress.counts(), (3, 1));
        progress.finish();
    }
}
