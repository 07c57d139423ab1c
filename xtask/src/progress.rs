//! What a deploy shows while it works, on standard error: spinners and a
//! byte bar on a terminal; elsewhere (a log, CI, a test) one plain line per
//! step and never an escape code, since nobody redraws a file.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, ProgressBar, ProgressStyle};

/// Whether steps draw bars or print lines.
#[derive(Clone, Copy)]
pub(crate) struct Progress {
    terminal: bool,
}

impl Progress {
    /// Bars only when both standard error (where they are drawn) and
    /// standard output (where results go) are terminals: with either
    /// redirected, the output is someone's record.
    pub(crate) fn detect() -> Progress {
        Progress {
            terminal: std::io::stderr().is_terminal() && std::io::stdout().is_terminal(),
        }
    }

    pub(crate) fn is_terminal(self) -> bool {
        self.terminal
    }

    /// A step under way: `line` printed now where there are no bars, a
    /// spinner showing it on a terminal.
    pub(crate) fn step(self, line: String) -> Step {
        let bar = if self.terminal {
            let bar = ProgressBar::new_spinner().with_style(spinner_style());
            bar.set_message(line);
            bar.enable_steady_tick(Duration::from_millis(100));
            Some(bar)
        } else {
            eprintln!("{line}");
            None
        };
        Step {
            bar,
            started: Instant::now(),
        }
    }
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner:.cyan} {wide_msg} {elapsed:.dim}")
        .expect("a valid template")
}

/// A finished step: its mark and its last message, the bar gone.
fn ended_style(mark: &str) -> ProgressStyle {
    ProgressStyle::with_template(&format!("{mark} {{msg}}")).expect("a valid template")
}

fn bytes_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{spinner:.cyan} {msg} [{wide_bar:.cyan/blue}] {bytes}/{total_bytes} {bytes_per_sec}",
    )
    .expect("a valid template")
    .progress_chars("=> ")
}

/// One step of a deploy. Cloned handles update the same spinner (cargo's
/// standard error is read on a thread of its own).
#[derive(Clone)]
pub(crate) struct Step {
    bar: Option<ProgressBar>,
    started: Instant,
}

impl Step {
    /// What the spinner says now (terminal only: a log gets no chatter).
    pub(crate) fn status(&self, message: String) {
        if let Some(bar) = &self.bar {
            bar.set_message(message);
        }
    }

    /// A line to keep (a compiler warning, say): above the spinner on a
    /// terminal, as it is elsewhere.
    pub(crate) fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    /// Turns the spinner into a byte bar of `total` bytes: the upload
    /// begins. `line` is what a log gets instead.
    pub(crate) fn bytes(&self, total: u64, line: String) {
        match &self.bar {
            Some(bar) => {
                bar.set_style(bytes_style());
                bar.set_length(total);
                bar.set_position(0);
            }
            None => eprintln!("{line}"),
        }
    }

    /// Bytes sent so far, for the byte bar.
    pub(crate) fn position(&self, sent: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(sent);
        }
    }

    /// Ends the step with `line` (printed everywhere), and its time where
    /// the step took long enough for that to mean something.
    pub(crate) fn done(self, line: &str) {
        let took = self.started.elapsed();
        let line = if took >= Duration::from_millis(100) {
            format!("{line} ({:.1} s)", took.as_secs_f64())
        } else {
            line.to_owned()
        };
        match &self.bar {
            Some(bar) => {
                bar.set_style(ended_style("✓"));
                bar.finish_with_message(line);
            }
            None => eprintln!("{line}"),
        }
    }

    /// Ends the step without a line: what follows says it.
    pub(crate) fn clear(self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    /// Ends the step, marked as failed: an error about it follows.
    pub(crate) fn failed(self) {
        if let Some(bar) = &self.bar {
            bar.set_style(ended_style("✗"));
            bar.abandon();
        }
    }
}

/// `n` bytes the way people read them (`12.30 MiB`).
pub(crate) fn bytes(n: u64) -> String {
    HumanBytes(n).to_string()
}
