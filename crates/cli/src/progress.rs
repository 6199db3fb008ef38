//! Progress lines on stderr for long commands, throttled to a few per second.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// A progress reporter writing `what: NN% (done/total MB)` to stderr.
pub struct Progress {
    what: &'static str,
    last: Option<Instant>,
    tty: bool,
    shown: bool,
}

impl Progress {
    /// A reporter for the operation `what`.
    pub fn new(what: &'static str) -> Self {
        Progress {
            what,
            last: None,
            tty: std::io::stderr().is_terminal(),
            shown: false,
        }
    }

    /// Reports `done` of `total` bytes (at most every 200 ms, or every 2 s when stderr is not a
    /// terminal).
    pub fn update(&mut self, done: u64, total: u64) {
        self.report(done, total, || {
            format!("{:.1}/{:.1} MB", done as f64 / 1e6, total as f64 / 1e6)
        });
    }

    /// Reports `done` of `total` counted in `unit` ("tokens"), throttled like [`Progress::update`].
    pub fn update_count(&mut self, done: u64, total: u64, unit: &str) {
        self.report(done, total, || format!("{done}/{total} {unit}"));
    }

    /// Writes `what: NN% (counts)` unless the last line is too recent.
    fn report(&mut self, done: u64, total: u64, counts: impl FnOnce() -> String) {
        let every = if self.tty {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(2)
        };
        let now = Instant::now();
        if self.last.is_some_and(|t| now.duration_since(t) < every) {
            return;
        }
        self.last = Some(now);
        let pct = if total == 0 {
            100.0
        } else {
            done as f64 * 100.0 / total as f64
        };
        let end = if self.tty { "\r" } else { "\n" };
        let _ = write!(
            std::io::stderr().lock(),
            "{}: {pct:5.1}% ({}){end}",
            self.what,
            counts()
        );
        self.shown = true;
    }

    /// Ends the progress display with a summary line.
    pub fn finish(&mut self, summary: &str) {
        let mut e = std::io::stderr().lock();
        let clear = if self.tty && self.shown {
            "\x1b[2K"
        } else {
            ""
        };
        let _ = writeln!(
            e,
            "{clear}{}: done: {}",
            self.what,
            crate::output::safe(summary)
        );
    }
}
