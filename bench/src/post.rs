//! C concurrent posters, each on one keep-alive connection, sending M messages in total,
//! either flat out (each poster sends its next message as soon as the previous one is
//! acknowledged) or paced to a fixed total rate. Bounded by M and by a deadline.
//!
//! Web Push posts (`--target webpush`) carry a binary body of `WEBPUSH_BODY` bytes, sent as
//! an app server sends an RFC 8291 record; only a 201 counts as posted.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::subs::{Proto, Shared};
use crate::wire::{self, HttpConn};

pub struct Spec {
    pub proto: Proto,
    /// The servers (nodes of one cluster): poster p posts to `dests[p % len]`, and
    /// subscriber i listens on `dests[i % len]` (see `subs::Spec::dests`).
    pub dests: Vec<SocketAddr>,
    /// With several `dests`: each message goes to a subscriber on another node than its
    /// poster's (every delivery crosses nodes); without, to subscriber `seq % subscribers`.
    pub cross: bool,
    pub subscribers: usize,
    pub messages: usize,
    /// Messages per second in total; 0 = flat out.
    pub rate: f64,
    pub posters: usize,
    /// openpush routing tokens, one per subscriber (Web Push: `/push/<token>`).
    pub tokens: Vec<String>,
    /// nchan publisher path prefix (`/pub/`).
    pub path: String,
    pub deadline: Instant,
}

/// A Web Push body's size, about that of an encrypted notification of a chat app.
const WEBPUSH_BODY: usize = 200;

/// The check tag in clear (the subscribers read it), then binary filler: the server never
/// looks inside an aes128gcm body.
fn webpush_body(payload: &str) -> Vec<u8> {
    let mut body = payload.as_bytes().to_vec();
    body.extend((body.len()..WEBPUSH_BODY).map(|j| (j * 151) as u8 | 0x80));
    body
}

#[derive(Default)]
pub struct Outcome {
    pub ok: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub post_latencies_ns: Vec<u64>,
}

pub fn run(spec: Spec, shared: Arc<Shared>) -> Outcome {
    let spec = Arc::new(spec);
    let next = Arc::new(AtomicUsize::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let lat = Arc::new(Mutex::new(Vec::with_capacity(spec.messages)));
    let start = Instant::now();
    let threads: Vec<_> = (0..spec.posters)
        .map(|p| {
            let (spec, next, ok, errors, lat, shared) = (
                spec.clone(),
                next.clone(),
                ok.clone(),
                errors.clone(),
                lat.clone(),
                shared.clone(),
            );
            std::thread::spawn(move || poster(p, &spec, &next, &ok, &errors, &lat, &shared, start))
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    let elapsed = start.elapsed();
    let post_latencies_ns = std::mem::take(&mut *lat.lock().expect("lock"));
    Outcome {
        ok: ok.load(Relaxed),
        errors: errors.load(Relaxed),
        elapsed,
        post_latencies_ns,
    }
}

enum Conn {
    Http(HttpConn),
    Mqtt(std::net::TcpStream, Vec<u8>),
}

fn open(spec: &Spec, p: usize) -> std::io::Result<Conn> {
    let s = wire::connect_from(250 * 1000 + p, spec.dests[p % spec.dests.len()], false)?;
    Ok(match spec.proto {
        Proto::Mqtt => {
            let mut s = s;
            std::io::Write::write_all(
                &mut s,
                &wire::mqtt_connect(&format!("poster-{}-{p}", std::process::id())),
            )?;
            let mut buf = Vec::new();
            let (kind, body) = wire::mqtt_read(&mut s, &mut buf)?;
            if kind & 0xF0 != 0x20 || body.get(1) != Some(&0) {
                return Err(std::io::Error::other("CONNACK refused"));
            }
            Conn::Mqtt(s, buf)
        }
        _ => Conn::Http(HttpConn::new(s)),
    })
}

/// Message k's subscriber: `k % subscribers`, or with `cross` the next one after it that
/// listens on another node than poster p posts to.
fn recipient(spec: &Spec, p: usize, k: usize) -> usize {
    let nodes = spec.dests.len();
    let mut to = k % spec.subscribers;
    if spec.cross && nodes > 1 {
        for _ in 0..nodes {
            if to % nodes != p % nodes {
                break;
            }
            to = (to + 1) % spec.subscribers;
        }
    }
    to
}

#[allow(clippy::too_many_arguments)]
fn poster(
    p: usize,
    spec: &Spec,
    next: &AtomicUsize,
    ok: &AtomicU64,
    errors: &AtomicU64,
    lat: &Mutex<Vec<u64>>,
    shared: &Shared,
    start: Instant,
) {
    let mut conn = None;
    let mut mine = Vec::new();
    let mut packet_id: u16 = 0;
    loop {
        let k = next.fetch_add(1, Relaxed);
        if k >= spec.messages || Instant::now() > spec.deadline {
            break;
        }
        if spec.rate > 0.0 {
            let due = start + Duration::from_secs_f64(k as f64 / spec.rate);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        if conn.is_none() {
            match open(spec, p) {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    eprintln!("poster {p}: {e}");
                    errors.fetch_add(1, Relaxed);
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            }
        }
        let to = recipient(spec, p, k);
        let t = shared.now_ns();
        let payload = format!(
            "{{\"run\":{},\"seq\":{k},\"to\":{to},\"t\":{t}}}",
            shared.run_id
        );
        let result = match conn.as_mut().expect("opened") {
            Conn::Http(c) => {
                let r = match spec.proto {
                    Proto::Openpush => {
                        let body =
                            format!("{{\"token\":\"{}\",\"data\":{payload}}}", spec.tokens[to]);
                        c.request(
                            "POST",
                            "/message",
                            &[("Content-Type", "application/json")],
                            body.as_bytes(),
                        )
                    }
                    Proto::WebPush => c.request(
                        "POST",
                        &format!("/push/{}", spec.tokens[to]),
                        &[
                            ("Content-Type", "application/octet-stream"),
                            ("Content-Encoding", "aes128gcm"),
                            ("TTL", "60"),
                        ],
                        &webpush_body(&payload),
                    ),
                    _ => c.request(
                        "POST",
                        &format!("{}{to}", spec.path),
                        &[("Content-Type", "application/json")],
                        payload.as_bytes(),
                    ),
                };
                match r {
                    Ok(r) if r.status == 201 && spec.proto == Proto::WebPush => Ok(()),
                    Ok(r) if (200..300).contains(&r.status) && spec.proto != Proto::WebPush => {
                        Ok(())
                    }
                    Ok(r) => Err(format!(
                        "status {} {}",
                        r.status,
                        String::from_utf8_lossy(&r.body)
                    )),
                    Err(e) => Err(e.to_string()),
                }
            }
            Conn::Mqtt(s, buf) => {
                packet_id = packet_id.wrapping_add(1).max(1);
                let pkt =
                    wire::mqtt_publish_qos1(packet_id, &format!("b/{to}"), payload.as_bytes());
                match std::io::Write::write_all(s, &pkt).and_then(|_| wire::mqtt_read(s, buf)) {
                    Ok((kind, _)) if kind & 0xF0 == 0x40 => Ok(()),
                    Ok((kind, _)) => Err(format!("unexpected packet {kind:#x}")),
                    Err(e) => Err(e.to_string()),
                }
            }
        };
        match result {
            Ok(()) => {
                ok.fetch_add(1, Relaxed);
                mine.push(shared.now_ns() - t);
            }
            Err(e) => {
                if errors.fetch_add(1, Relaxed) < 5 {
                    eprintln!("poster {p}: message {k}: {e}");
                }
                conn = None;
            }
        }
    }
    lat.lock().expect("lock").extend(mine);
}
