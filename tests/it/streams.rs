//! Streams that end from the server's side: a replaced or revoked stream lets go of its
//! connection and its buffer at once, even while a write to a client that does not read
//! is pending.

use crate::support;

use std::time::{Duration, Instant};

use support::*;

/// Posts `count` messages to `token`, each padded with `pad_bytes` bytes.
fn post_padded(s: &Server, token: &str, count: usize, pad_bytes: usize) {
    let pad = "x".repeat(pad_bytes);
    for n in 0..count {
        let r = s.post_message(&format!(
            r#"{{"token":"{token}","data":{{"n":{n},"pad":"{pad}"}}}}"#
        ));
        assert_eq!(r.status, 200, "{}", r.text());
    }
}

// Regression (issue 10): a stream whose write was pending never looked at its slot, so a
// replacement or a deletion was noticed only when the write timed out (30 s), and each
// such connection kept a page of messages (256 KiB) and its socket until then.
#[test]
fn replaced_and_revoked_streams_close_at_once_while_a_write_is_pending() {
    const STREAMS: usize = 10;
    let s = Server::start_with(
        "stream-replaced",
        "write_timeout_secs = 30\nmax_data_bytes = 65536\nmax_body_bytes = 131072\n\
         max_queued_bytes_per_client = 16777216",
    );
    let (key, token) = s.device("ann");
    // About 7.7 MB of large messages: more than the socket buffers of a client that never
    // reads take, so every stream's write stays pending.
    post_padded(&s, &token, 128, 60_000);
    let idle_rss = rss_kib(s.pid());
    // The same device opens stream after stream and reads none of them.
    let mut streams: Vec<Sse> = Vec::new();
    for _ in 0..STREAMS {
        let sse = s.subscribe(&key, None);
        assert_eq!(sse.status, 200);
        streams.push(sse);
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(500));
    let rss = rss_kib(s.pid());
    eprintln!("{STREAMS} replaced streams: RSS {idle_rss} -> {rss} KiB");
    assert_eq!(s.metric("openpush_streams"), 1);
    assert!(
        s.metric("openpush_connections") <= 2,
        "the replaced streams' connections are still open"
    );
    // Each replaced connection ends: what the kernel already took arrives, then the end.
    let deadline = Instant::now() + Duration::from_secs(2);
    let last = streams.pop().unwrap();
    for (i, old) in streams.iter_mut().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(old.closed_within(left), "replaced stream {i} still open");
    }
    assert!(
        rss < idle_rss + 24 * 1024,
        "server RSS grew from {idle_rss} to {rss} KiB"
    );

    // Deleting the client ends its pending stream at once too.
    let mut last = last;
    let started = Instant::now();
    let out = s.cli(&["client", "del", "--user", "ann", "phone"], "");
    assert!(out.status.success(), "{out:?}");
    assert!(
        last.closed_within(Duration::from_secs(2)),
        "the revoked stream stayed open"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(s.metric("openpush_streams"), 0);
}

// Regression: 200 streams opened at once on one key that read nothing took the server from
// 12.6 to 38.4 MiB: each replaced stream still read its page of the backlog and encoded it
// before it looked at its slot.
#[test]
fn streams_opened_at_once_on_one_key_cost_a_small_constant_each() {
    const STREAMS: usize = 200;
    let s = Server::start_with(
        "stream-burst",
        "max_connections_per_addr = 1000\nposts_per_sec_per_token = 0",
    );
    let (key, token) = s.device("ann");
    post_padded(&s, &token, 300, 3_900);
    let idle_rss = rss_kib(s.pid());
    let pid = s.pid();
    let done = std::sync::atomic::AtomicBool::new(false);
    let peak = std::thread::scope(|scope| {
        let sampler = scope.spawn(|| {
            let mut peak = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                peak = peak.max(rss_kib(pid));
                std::thread::sleep(Duration::from_millis(2));
            }
            peak
        });
        let streams: Vec<std::net::TcpStream> = (0..STREAMS)
            .map(|_| {
                let mut conn = std::net::TcpStream::connect(s.addr).unwrap();
                let head =
                    format!("GET /subscribe HTTP/1.1\r\nHost: t\r\nX-Openpush-Key: {key}\r\n\r\n");
                std::io::Write::write_all(&mut conn, head.as_bytes()).unwrap();
                conn
            })
            .collect();
        std::thread::sleep(Duration::from_millis(1500));
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        let peak = sampler.join().unwrap();
        drop(streams);
        peak
    });
    eprintln!("{STREAMS} streams on one key: RSS {idle_rss} KiB, peak {peak} KiB");
    assert!(
        peak < idle_rss + 6 * 1024,
        "server RSS grew from {idle_rss} to {peak} KiB"
    );
}
