//! A minimal `log` backend: one line per record on stderr.
//!
//! Under systemd (`JOURNAL_STREAM` set) each line starts with its syslog priority (`<3>`…)
//! so the journal keeps the level and no timestamp is added (the journal has its own).
//! Callers never log secrets: keys, tokens and passwords stay out of every message.

use std::io::Write;

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

pub fn init(level: log::LevelFilter) {
    let journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let logger = Box::leak(Box::new(StderrLogger { journal }));
    if log::set_logger(logger).is_ok() {
        log::set_max_level(level);
    }
}
