//! Counters for `/metrics` (Prometheus text format) and the cheap `/health` check.
//!
//! Counters live on the event loop (`Cell`); commit latencies are recorded by the store
//! thread behind a mutex (see [`CommitStats`]). Rendering reads a handful of numbers and
//! one O(1) table length, so scraping costs next to nothing. Nothing here ever holds a
//! secret.

use std::cell::Cell;
use std::fmt::Write;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Upper bounds of the commit latency buckets, in seconds.
const COMMIT_BUCKETS: [f64; 11] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// The counters `/metrics` shows, bumped on the event loop.
#[derive(Default)]
pub struct Counters {
    /// Requests received.
    pub requests: Cell<u64>,
    /// Posts of a message that were accepted.
    pub posts_accepted: Cell<u64>,
    /// Posts refused (4xx).
    pub posts_refused: Cell<u64>,
    /// Posts that failed (5xx).
    pub posts_failed: Cell<u64>,
    /// Messages handed to a live stream as they were posted.
    pub delivered_live: Cell<u64>,
    /// Streams opened.
    pub streams_opened: Cell<u64>,
    /// Scheduled messages sent when they were due (moved into their topic's queue).
    pub scheduled_sent: Cell<u64>,
}

/// Adds one to `counter`.
pub fn bump(counter: &Cell<u64>) {
    counter.set(counter.get() + 1);
}

/// Commit latencies, written by the store thread. A mutex, not `AtomicU64`: 32-bit MIPS
/// (MT7621, ath79) has no 64-bit atomics, and it is taken once per group commit.
#[derive(Default)]
pub struct CommitStats(Mutex<CommitTotals>);

#[derive(Default, Clone, Copy)]
struct CommitTotals {
    buckets: [u64; COMMIT_BUCKETS.len()],
    count: u64,
    sum_micros: u64,
    writes: u64,
    /// The store's usage after the last commit: (all, anonymous, user agents), in bytes.
    usage: Option<(u64, u64, u64)>,
}

impl CommitStats {
    /// Records one commit: how long it took and how many writes it held.
    pub fn record(&self, took: Duration, writes: usize) {
        let secs = took.as_secs_f64();
        let mut t = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        for (bound, bucket) in COMMIT_BUCKETS.iter().zip(&mut t.buckets) {
            if secs <= *bound {
                *bucket += 1;
            }
        }
        t.count += 1;
        t.sum_micros += took.as_micros() as u64;
        t.writes += writes as u64;
    }

    /// The store's usage (see `store::budget`) as of the last commit.
    pub fn set_usage(&self, total: u64, anonymous: u64, uaids: u64) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).usage =
            Some((total, anonymous, uaids));
    }

    /// The store's usage as of the last commit: (all, anonymous, user agents), in bytes;
    /// `None` until it was first read.
    pub fn usage(&self) -> Option<(u64, u64, u64)> {
        self.totals().usage
    }

    fn totals(&self) -> CommitTotals {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The poll requests for ntfy's upstream server so far (`crate::upstream`), by what
/// became of them.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpstreamTotals {
    /// Answered 2xx by the upstream server.
    pub sent: u64,
    /// Given up: refused (4xx), or no answer or a 5xx after every retry.
    pub failed: u64,
    /// Dropped because the forwarder's queue was full.
    pub dropped: u64,
    /// Tries after a failed one.
    pub retried: u64,
}

/// What [`render`] shows, taken at one moment.
pub struct Snapshot<'a> {
    /// The event loop's counters.
    pub counters: &'a Counters,
    /// The store thread's commit figures.
    pub commits: &'a CommitStats,
    /// Open connections.
    pub connections: usize,
    /// Live streams.
    pub streams: usize,
    /// Messages in the store; `None` when the store did not answer.
    pub queued_messages: Option<u64>,
    /// The upstream poll requests; `None` without `upstream_base_url`.
    pub upstream: Option<UpstreamTotals>,
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}

/// The Prometheus text of `s`.
pub fn render(s: &Snapshot<'_>) -> String {
    let mut out = String::with_capacity(2048);
    gauges(&mut out, s);
    counters(&mut out, s.counters);
    commits(&mut out, s.commits);
    if let Some(upstream) = s.upstream {
        let _ = writeln!(
            out,
            "# HELP openpush_upstream_poll_requests_total Poll requests for ntfy's upstream server (iPhones), by result.\n\
             # TYPE openpush_upstream_poll_requests_total counter\n\
             openpush_upstream_poll_requests_total{{result=\"sent\"}} {}\n\
             openpush_upstream_poll_requests_total{{result=\"failed\"}} {}\n\
             openpush_upstream_poll_requests_total{{result=\"dropped\"}} {}",
            upstream.sent, upstream.failed, upstream.dropped
        );
        metric(
            &mut out,
            "openpush_upstream_retries_total",
            "counter",
            "Poll requests tried again after a failed try.",
            upstream.retried,
        );
    }
    if let Some(rss) = resident_bytes() {
        metric(
            &mut out,
            "openpush_resident_memory_bytes",
            "gauge",
            "Resident set size of the process.",
            rss,
        );
    }
    out
}

/// Connections, streams, and what the store holds.
fn gauges(out: &mut String, s: &Snapshot<'_>) {
    metric(
        out,
        "openpush_connections",
        "gauge",
        "Open TCP connections, streams included.",
        s.connections,
    );
    metric(
        out,
        "openpush_streams",
        "gauge",
        "Open device streams.",
        s.streams,
    );
    if let Some(queued) = s.queued_messages {
        metric(
            out,
            "openpush_queued_messages",
            "gauge",
            "Messages stored; confirmed ones leave with the next commit.",
            queued,
        );
    }
    if let Some((total, anonymous, uaids)) = s.commits.totals().usage {
        let _ = writeln!(
            out,
            "# HELP openpush_store_bytes Bytes of stored messages as max_store_bytes counts them, by share.\n\
             # TYPE openpush_store_bytes gauge\nopenpush_store_bytes{{share=\"all\"}} {total}\n\
             openpush_store_bytes{{share=\"anonymous\"}} {anonymous}\n\
             openpush_store_bytes{{share=\"uaids\"}} {uaids}"
        );
    }
}

/// Requests, posts by result, live deliveries, streams opened.
fn counters(out: &mut String, c: &Counters) {
    metric(
        out,
        "openpush_requests_total",
        "counter",
        "HTTP requests answered.",
        c.requests.get(),
    );
    let _ = writeln!(
        out,
        "# HELP openpush_posts_total Messages posted, by result.\n# TYPE openpush_posts_total counter\n\
         openpush_posts_total{{result=\"accepted\"}} {}\nopenpush_posts_total{{result=\"refused\"}} {}\n\
         openpush_posts_total{{result=\"failed\"}} {}",
        c.posts_accepted.get(),
        c.posts_refused.get(),
        c.posts_failed.get()
    );
    metric(
        out,
        "openpush_deliveries_live_total",
        "counter",
        "Messages handed to a live stream.",
        c.delivered_live.get(),
    );
    metric(
        out,
        "openpush_streams_opened_total",
        "counter",
        "Device streams opened.",
        c.streams_opened.get(),
    );
    metric(
        out,
        "openpush_scheduled_sent_total",
        "counter",
        "Scheduled (delayed) ntfy messages sent when they were due.",
        c.scheduled_sent.get(),
    );
}

/// The group commits: their durations as a histogram, and the writes they held.
fn commits(out: &mut String, stats: &CommitStats) {
    let commits = stats.totals();
    let _ = writeln!(
        out,
        "# HELP openpush_commit_seconds Duration of group commits.\n# TYPE openpush_commit_seconds histogram"
    );
    for (bound, bucket) in COMMIT_BUCKETS.iter().zip(&commits.buckets) {
        let _ = writeln!(
            out,
            "openpush_commit_seconds_bucket{{le=\"{bound}\"}} {}",
            bucket
        );
    }
    let count = commits.count;
    let _ = writeln!(out, "openpush_commit_seconds_bucket{{le=\"+Inf\"}} {count}");
    let _ = writeln!(
        out,
        "openpush_commit_seconds_sum {}\nopenpush_commit_seconds_count {count}",
        commits.sum_micros as f64 / 1e6
    );
    metric(
        out,
        "openpush_commit_writes_total",
        "counter",
        "Writes committed (several share one commit).",
        commits.writes,
    );
}

/// VmRSS from /proc/self/status (Linux), in bytes.
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let stats = CommitStats::default();
        stats.record(Duration::from_micros(1500), 3);
        stats.set_usage(300, 200, 100);
        let counters = Counters::default();
        let text = render(&Snapshot {
            counters: &counters,
            commits: &stats,
            connections: 1,
            streams: 0,
            queued_messages: Some(2),
            upstream: Some(UpstreamTotals {
                dropped: 5,
                ..UpstreamTotals::default()
            }),
        });
        assert!(
            text.contains("openpush_commit_seconds_bucket{le=\"0.001\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("openpush_commit_seconds_bucket{le=\"0.002\"} 1"),
            "{text}"
        );
        assert!(text.contains("openpush_commit_seconds_count 1"));
        assert!(text.contains("openpush_commit_writes_total 3"));
        assert!(text.contains("openpush_queued_messages 2"));
        assert!(
            text.contains("openpush_upstream_poll_requests_total{result=\"dropped\"} 5"),
            "{text}"
        );
        assert!(
            text.contains("openpush_store_bytes{share=\"anonymous\"} 200"),
            "{text}"
        );
    }
}
