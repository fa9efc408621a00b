//! `confirm` (openpush only): what one message's whole life costs the disk at one poster.
//! Each round posts one message to one client (`POST /message`, answered after its commit),
//! then reconnects that client's stream with `Last-Event-ID` of the message before (which
//! confirms it), reads the new message's event and closes the stream. So every message is
//! accepted once and confirmed once, the way a phone that wakes for each message uses it.
//! A final reconnect confirms the last message; the run then waits past the store's lazy
//! commit age so that the confirmations' flush is counted too.
//!
//! `write_bytes` of `/proc/PID/io` is sampled around each step: bytes dirtied while the post
//! was answered, and while the confirming reconnect was served (its confirmation is written,
//! without an fsync, before the stream's head is sent).

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::procstat;
use crate::setup;
use crate::wire::{self, HttpConn};

/// Opens `GET /subscribe` with `Last-Event-ID: last` (if any), reads until the event whose
/// payload holds `want` (if any), and returns its id (or `last` when nothing was wanted).
fn reconnect(dest: SocketAddr, key: &str, last: u64, want: Option<&str>) -> Result<u64, String> {
    let mut s = wire::connect_from(0, dest, false).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let req = format!(
        "GET /subscribe HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nX-Openpush-Key: {key}\r\n{}\r\n",
        if last > 0 { format!("Last-Event-ID: {last}\r\n") } else { String::new() }
    );
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let (mut raw, mut text) = (Vec::new(), Vec::new());
    let mut dechunk = wire::Dechunk::default();
    let mut head_done = false;
    let mut chunked = false;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 8192];
    loop {
        if !head_done {
            if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
                if !head.starts_with("http/1.1 200") {
                    return Err(head.lines().next().unwrap_or("").to_owned());
                }
                chunked = head.contains("transfer-encoding: chunked");
                raw.drain(..end + 4);
                head_done = true;
                if want.is_none() {
                    return Ok(last);
                }
            }
        }
        if head_done {
            if chunked {
                dechunk.feed(&mut raw, &mut text);
            } else {
                text.append(&mut raw);
            }
            let mut at = 0;
            while let Some(end) = text[at..].windows(2).position(|w| w == b"\n\n") {
                let block = &text[at..at + end];
                at += end + 2;
                let mut id = None;
                let mut hit = false;
                for line in block.split(|&b| b == b'\n') {
                    if let Some(v) = line.strip_prefix(b"id:") {
                        id = std::str::from_utf8(v)
                            .ok()
                            .and_then(|s| s.trim().parse::<u64>().ok());
                    } else if line.starts_with(b"data:") {
                        hit =
                            want.is_some_and(|w| line.windows(w.len()).any(|x| x == w.as_bytes()));
                    }
                }
                if hit {
                    return id.ok_or_else(|| "event without id".to_owned());
                }
            }
            text.drain(..at);
        }
        if Instant::now() > deadline {
            return Err("timed out waiting for the event".into());
        }
        let n = s.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("stream closed".into());
        }
        raw.extend_from_slice(&buf[..n]);
    }
}

pub fn main(get: &dyn Fn(&str, &str) -> String, pids: &[u32]) {
    let dest: SocketAddr = get("addr", "127.0.0.1:8080").parse().expect("--addr");
    wire::check_loopback(&dest);
    let m: usize = get("messages", "300").parse().expect("--messages");
    let gap = Duration::from_millis(get("gap-ms", "0").parse().expect("--gap-ms"));
    let settle = Duration::from_secs_f64(get("settle-secs", "3").parse().expect("--settle-secs"));
    let client: usize = get("client", "0").parse().expect("--client");
    let label = get("label", "openpush confirm");
    let creds_path = get("creds", "");
    let mut creds = setup::ensure(
        &creds_path,
        dest,
        client + 1,
        &get("users", "bench:1:bench"),
        get("per-user", "500").parse().expect("--per-user"),
    );
    let (key, token) = (creds.keys[client].clone(), creds.tokens[client].clone());
    let mut last = creds.last_ids[client];
    let run_id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(1);
    let mut poster = HttpConn::new(wire::connect_from(1, dest, false).expect("connect"));
    let start = procstat::sample(pids);
    let t0 = Instant::now();
    let (mut post_bytes, mut confirm_bytes, mut ok) = (0u64, 0u64, 0u64);
    for k in 0..m {
        if k > 0 && !gap.is_zero() {
            std::thread::sleep(gap);
        }
        let w0 = procstat::sample(pids).write_bytes;
        let seq = format!("\"seq\":{k},\"run\":{run_id}");
        let body = format!("{{\"token\":\"{token}\",\"data\":{{{seq}}}}}");
        let r = poster
            .request(
                "POST",
                "/message",
                &[("Content-Type", "application/json")],
                body.as_bytes(),
            )
            .expect("POST /message");
        assert!(
            (200..300).contains(&r.status),
            "POST /message: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
        let w1 = procstat::sample(pids).write_bytes;
        last = reconnect(dest, &key, last, Some(&seq)).expect("confirming reconnect");
        let w2 = procstat::sample(pids).write_bytes;
        post_bytes += w1 - w0;
        confirm_bytes += w2 - w1;
        ok += 1;
    }
    // The last message's confirmation, then past the lazy commit age for their flush.
    let w1 = procstat::sample(pids).write_bytes;
    reconnect(dest, &key, last, None).expect("last confirmation");
    confirm_bytes += procstat::sample(pids).write_bytes - w1;
    let secs = t0.elapsed().as_secs_f64();
    std::thread::sleep(settle);
    let end = procstat::sample(pids);
    creds.last_ids[client] = last;
    setup::save(&creds_path, &creds);
    let total = end.write_bytes - start.write_bytes;
    let per = |x: f64| x / ok.max(1) as f64;
    println!(
        "{{\"label\":\"{label}\",\"target\":\"openpush\",\"confirm\":true,\"messages\":{m},\"confirmed\":{ok},\"gap_ms\":{},\"secs\":{secs:.3},\
\"write_bytes\":{total},\"write_bytes_per_msg\":{:.1},\"post_bytes_per_msg\":{:.1},\"confirm_bytes_per_msg\":{:.1},\"flush_bytes_per_msg\":{:.1},\
\"cpu_us_per_msg\":{:.1},\"rss_after\":{}}}",
        gap.as_millis(),
        per(total as f64),
        per(post_bytes as f64),
        per(confirm_bytes as f64),
        per(total.saturating_sub(post_bytes + confirm_bytes) as f64),
        per((end.cpu_secs - start.cpu_secs) * 1e6),
        end.rss,
    );
    eprintln!(
        "{label:<28} {ok} messages accepted and confirmed one at a time (gap {} ms): disk {:.0} B/msg \
(post {:.0} + confirming reconnect {:.0} + later flush {:.0})",
        gap.as_millis(),
        per(total as f64),
        per(post_bytes as f64),
        per(confirm_bytes as f64),
        per(total.saturating_sub(post_bytes + confirm_bytes) as f64),
    );
}
