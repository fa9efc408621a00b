//! A minimal `log` backend: one line per record on stderr.
//!
//! Under systemd (`JOURNAL_STREAM` set) each line starts with its syslog priority (`<3>`…)
//! so the journal keeps the level and no timestamp is added (the journal has its own).
//! Callers never log secrets: keys, tokens and passwords stay out of every message.

use std::cell::Cell;
use std::fmt;
use std::io::Write;
use std::time::{Duration, Instant};

struct StderrLogger {
    journal: bool,
}

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let mut err = std::io::stderr().lock();
        let _ = if self.journal {
            writeln!(
                err,
                "<{}>{}",
                syslog_priority(record.level()),
                record.args()
            )
        } else {
            writeln!(err, "{:5} {}", record.level(), record.args())
        };
    }

    fn flush(&self) {}
}

fn syslog_priority(level: log::Level) -> u8 {
    match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    }
}

/// Logs to stderr from `level` up, with syslog priorities when systemd's journal reads it.
pub fn init(level: log::LevelFilter) {
    let journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let logger = Box::leak(Box::new(StderrLogger { journal }));
    if log::set_logger(logger).is_ok() {
        log::set_max_level(level);
    }
}

/// Sums up an event that can repeat many times a second (a failed accept, a refused
/// connection), so that it cannot flood the log: the first one is logged, then at most one
/// line per `every`, which says how many went unlogged since the line before.
pub struct Tally {
    every: Duration,
    last: Cell<Option<Instant>>,
    unlogged: Cell<u64>,
}

impl Tally {
    /// A tally that logs at most one line per `every`.
    pub const fn new(every: Duration) -> Tally {
        Tally {
            every,
            last: Cell::new(None),
            unlogged: Cell::new(0),
        }
    }

    /// Counts one event: `Some` when it is to be logged now, with what to append to its line.
    pub fn count(&self, now: Instant) -> Option<Unlogged> {
        match self.last.get() {
            Some(last) if now.saturating_duration_since(last) < self.every => {
                self.unlogged.set(self.unlogged.get() + 1);
                None
            }
            _ => {
                self.last.set(Some(now));
                Some(Unlogged(self.unlogged.replace(0)))
            }
        }
    }
}

/// How many events of a [`Tally`] went unlogged since its previous line; displays as a
/// suffix for the line (nothing when none did).
pub struct Unlogged(pub u64);

impl fmt::Display for Unlogged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => Ok(()),
            n => write!(f, " (and {n} more since the last such line)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tally_logs_the_first_then_one_line_per_period_with_the_count() {
        let tally = Tally::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(tally.count(t0).map(|u| u.0), Some(0));
        for ms in 1..=500 {
            assert!(tally.count(t0 + Duration::from_millis(ms)).is_none());
        }
        let next = tally.count(t0 + Duration::from_secs(10)).unwrap();
        assert_eq!(next.to_string(), " (and 500 more since the last such line)");
        assert!(tally.count(t0 + Duration::from_secs(11)).is_none());
    }
}
