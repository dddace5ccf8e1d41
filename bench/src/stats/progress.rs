//! The progress line on stderr.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// One progress line on stderr: rewritten in place on a terminal, else printed at most every
/// few seconds so logs stay short.
#[derive(Debug)]
pub struct Progress {
    tty: bool,
    last: Option<Instant>,
    width: usize,
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress {
    pub fn new() -> Self {
        Self {
            tty: std::io::stderr().is_terminal(),
            last: None,
            width: 0,
        }
    }

    /// Shows `line` now if enough time passed since the last one.
    pub fn update(&mut self, line: &str) {
        let every = if self.tty {
            Duration::from_millis(250)
        } else {
            Duration::from_secs(3)
        };
        if self.last.is_some_and(|t| t.elapsed() < every) {
            return;
        }
        self.last = Some(Instant::now());
        let mut err = std::io::stderr().lock();
        if self.tty {
            let pad = self.width.saturating_sub(line.chars().count());
            let _ = write!(err, "\r{line}{}", " ".repeat(pad));
            self.width = line.chars().count();
        } else {
            let _ = writeln!(err, "  … {line}");
        }
        let _ = err.flush();
    }

    /// A line that stays (a finished step).
    pub fn done(&mut self, line: &str) {
        let mut err = std::io::stderr().lock();
        if self.tty && self.width > 0 {
            let pad = self.width.saturating_sub(line.chars().count());
            let _ = writeln!(err, "\r{line}{}", " ".repeat(pad));
        } else {
            let _ = writeln!(err, "{line}");
        }
        self.width = 0;
        self.last = None;
    }
}
