//! `openpush-bench soak`: hours (bounded) of churn against one openpush server.
//!
//! - Subscribers: one per client, on one mio event loop. Each connects, reads for a random
//!   time, disconnects and comes back after a random pause; half the reconnects send
//!   `Last-Event-ID` with the highest id that client has seen (the server then deletes
//!   everything up to it), half send none (the server replays the whole queue).
//! - Posters: a steady total rate of `POST /message` to random clients, each message carrying
//!   its sequence number and its client, so every delivery is checked against its post.
//! - Garbage: malformed and oversized requests, invalid JSON, unknown tokens and keys, random
//!   bytes, abrupt closes and slowloris heads, at a bounded rate from other source addresses.
//! - Every 10 s the server's VmRSS, open fds and threads are sampled.
//! - At the end: posting stops, every client reconnects with no `Last-Event-ID` and reads
//!   its queue, then everything disconnects and the fd count must come back to its baseline.
//!
//! Only 127.0.0.0/8 is ever connected to; every loop is bounded by a count and a deadline.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use socket2::{Domain, Socket, Type};

use crate::procstat;
use crate::setup;
use crate::wire::{self, json_u64, HttpConn};

// ---------------------------------------------------------------- small helpers

/// xorshift64*: good enough to pick clients and durations.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    pub fn secs(&mut self, lo: f64, hi: f64) -> Duration {
        let f = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        Duration::from_secs_f64(lo + (hi - lo) * f)
    }
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

fn seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(7)
}

fn src(third: u8, i: usize) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(
        Ipv4Addr::new(127, 0, third, 1 + (i % 250) as u8),
        0,
    ))
}

/// A blocking socket from `from` to `dest` with read/write timeouts.
fn connect_blocking(
    from: SocketAddr,
    dest: SocketAddr,
    timeout: Duration,
) -> std::io::Result<std::net::TcpStream> {
    wire::check_loopback(&dest);
    let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    s.bind(&from.into())?;
    s.set_nodelay(true)?;
    s.connect_timeout(&dest.into(), Duration::from_secs(5))?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    Ok(s.into())
}

/// Reads the server process's readings: (VmRSS bytes, open fds, threads, start time).
#[derive(Clone, Copy, Debug, Default)]
pub struct Reading {
    pub t: f64,
    pub rss: u64,
    pub fds: u64,
    pub threads: u64,
    pub alive: bool,
}

fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    // starttime is field 22 of the whole line: index 19 after the command.
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn read_proc(pid: u32, epoch: Instant, started: u64) -> Reading {
    let s = procstat::sample(&[pid]);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count() as u64)
        .unwrap_or(0);
    Reading {
        t: epoch.elapsed().as_secs_f64(),
        rss: s.rss,
        fds,
        threads: s.threads,
        alive: start_time(pid) == Some(started),
    }
}

// ---------------------------------------------------------------- shared state

/// Post outcome per sequence number.
const UNSENT: u8 = 0;
const OK: u8 = 1;
const REFUSED: u8 = 2;
const UNKNOWN: u8 = 3;

struct Shared {
    run: u64,
    clients: usize,
    /// Per sequence number: which client, the outcome, the server's id, receipts.
    to: Vec<AtomicU64>,
    status: Vec<AtomicU8>,
    ids: Vec<AtomicU64>,
    seen: Vec<AtomicU8>,
    posted: AtomicUsize,
    post_ok: AtomicU64,
    post_refused: AtomicU64,
    post_unknown: AtomicU64,
    refused_status: Mutex<BTreeMap<u16, u64>>,
    // Subscriber side.
    connected: AtomicUsize,
    connects: AtomicU64,
    connects_with_id: AtomicU64,
    connect_failures: AtomicU64,
    connect_status: Mutex<BTreeMap<u16, u64>>,
    server_closed: AtomicU64,
    events: AtomicU64,
    delivered_unique: AtomicU64,
    duplicates: AtomicU64,
    misrouted: AtomicU64,
    id_mismatch: AtomicU64,
    foreign: AtomicU64,
    stale: AtomicU64,
    delivered_refused: AtomicU64,
    out_of_order: AtomicU64,
    // Garbage side.
    garbage: AtomicU64,
    garbage_status: Mutex<BTreeMap<String, u64>>,
    slowloris: AtomicU64,
    slowloris_closed_by_server: AtomicU64,
    slowloris_outlived: AtomicU64,
    // Phases.
    stop_posting: AtomicBool,
    stop_garbage: AtomicBool,
}

impl Shared {
    fn bump(map: &Mutex<BTreeMap<u16, u64>>, k: u16) {
        *map.lock().expect("lock").entry(k).or_default() += 1;
    }
}

// ---------------------------------------------------------------- posters

#[allow(clippy::too_many_arguments)]
fn poster(
    p: usize,
    dest: SocketAddr,
    tokens: Arc<Vec<String>>,
    rate: f64,
    posters: usize,
    sh: Arc<Shared>,
    start: Instant,
    deadline: Instant,
) {
    let mut rng = Rng::new(seed() ^ ((p as u64 + 1) * 7919));
    let mut conn: Option<HttpConn> = None;
    let cap = sh.to.len();
    let mut nth = 0u64;
    loop {
        if sh.stop_posting.load(Relaxed) || Instant::now() > deadline {
            break;
        }
        // Each poster keeps its own schedule: message n of poster p is due at (n*P+p)/rate.
        let due = start + Duration::from_secs_f64((nth * posters as u64 + p as u64) as f64 / rate);
        nth += 1;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let k = sh.posted.fetch_add(1, Relaxed);
        if k >= cap {
            break;
        }
        if conn.is_none() {
            // 127.0.0.1 is a trusted proxy: no per-address rate limit on the posters.
            match connect_blocking(
                SocketAddr::from(([127, 0, 0, 1], 0)),
                dest,
                Duration::from_secs(30),
            ) {
                Ok(s) => conn = Some(HttpConn::new(s)),
                Err(e) => {
                    eprintln!("poster {p}: connect: {e}");
                    sh.status[k].store(REFUSED, Relaxed);
                    sh.post_refused.fetch_add(1, Relaxed);
                    Shared::bump(&sh.refused_status, 0);
                    std::thread::sleep(Duration::from_millis(200));
                    continue;
                }
            }
        }
        let to = rng.below(sh.clients as u64) as usize;
        sh.to[k].store(to as u64, Relaxed);
        let body = format!(
            "{{\"token\":\"{}\",\"data\":{{\"r\":{},\"s\":{k},\"c\":{to}}}}}",
            tokens[to], sh.run
        );
        let c = conn.as_mut().expect("open");
        match c.request(
            "POST",
            "/message",
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        ) {
            Ok(r) if r.status == 200 => {
                sh.ids[k].store(json_u64(&r.body, b"id").unwrap_or(0), Relaxed);
                sh.status[k].store(OK, Relaxed);
                sh.post_ok.fetch_add(1, Relaxed);
            }
            Ok(r) => {
                sh.status[k].store(REFUSED, Relaxed);
                sh.post_refused.fetch_add(1, Relaxed);
                Shared::bump(&sh.refused_status, r.status);
                if sh.post_refused.load(Relaxed) <= 5 {
                    eprintln!(
                        "poster {p}: status {} {}",
                        r.status,
                        String::from_utf8_lossy(&r.body)
                    );
                }
            }
            Err(e) => {
                // The post may or may not have been committed: neither counted as
                // acknowledged nor as refused.
                sh.status[k].store(UNKNOWN, Relaxed);
                sh.post_unknown.fetch_add(1, Relaxed);
                eprintln!("poster {p}: message {k}: {e}");
                conn = None;
            }
        }
        // Now and then a poster starts a new connection, as app servers do.
        if rng.chance(0.002) {
            conn = None;
        }
    }
}

// ---------------------------------------------------------------- garbage

const KINDS: &[&str] = &[
    "bad-request-line",
    "oversized-head",
    "too-many-headers",
    "long-uri",
    "oversized-body",
    "oversized-chunked",
    "bad-chunk-size",
    "invalid-json",
    "oversized-data",
    "unknown-token",
    "unknown-key-subscribe",
    "bad-last-event-id",
    "bad-basic-auth",
    "unknown-method",
    "random-bytes",
    "close-at-once",
    "reset-mid-head",
    "close-mid-body",
    "binary-header",
    "pipelined-garbage",
];

fn garbage_request(kind: &str, rng: &mut Rng, token: &str) -> (Vec<u8>, bool) {
    // (bytes to send, reset the connection after sending instead of reading)
    let post = |path: &str, body: &[u8]| {
        let mut v = format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        v.extend_from_slice(body);
        v
    };
    match kind {
        "bad-request-line" => (b"HELLO THERE\r\n\r\n".to_vec(), false),
        "oversized-head" => (format!("GET /health HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(20_000 + rng.below(40_000) as usize)).into_bytes(), false),
        "too-many-headers" => {
            let mut h = String::from("GET /health HTTP/1.1\r\n");
            for i in 0..200 {
                h.push_str(&format!("X-H{i}: v\r\n"));
            }
            h.push_str("\r\n");
            (h.into_bytes(), false)
        }
        "long-uri" => (format!("GET /{} HTTP/1.1\r\n\r\n", "u".repeat(30_000)).into_bytes(), false),
        "oversized-body" => {
            let mut v = b"POST /message HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n\r\n".to_vec();
            v.extend(std::iter::repeat_n(b'{', 100_000));
            (v, false)
        }
        "oversized-chunked" => {
            let mut v = b"POST /message HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            for _ in 0..20 {
                v.extend_from_slice(b"2000\r\n");
                v.extend(std::iter::repeat_n(b'x', 0x2000));
                v.extend_from_slice(b"\r\n");
            }
            v.extend_from_slice(b"0\r\n\r\n");
            (v, false)
        }
        "bad-chunk-size" => (b"POST /message HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n".to_vec(), false),
        "invalid-json" => {
            let bodies: [&[u8]; 5] = [b"{\"token\":", b"{{{{", b"[1,2,", b"{\"token\":\"x\",\"data\":{\"a\":\xff}}", b"nul"];
            (post("/message", bodies[rng.below(5) as usize]), false)
        }
        // A real routing token with data past max_data_bytes: refused, never delivered.
        "oversized-data" => (post("/message", format!("{{\"token\":\"{token}\",\"data\":{{\"g\":\"{}\"}}}}", "g".repeat(8000)).as_bytes()), false),
        "unknown-token" => (post("/message", format!("{{\"token\":\"nosuchtoken{}\",\"data\":{{\"g\":1}}}}", rng.next()).as_bytes()), false),
        "unknown-key-subscribe" => (format!("GET /subscribe HTTP/1.1\r\nX-Openpush-Key: nosuchkey{}\r\n\r\n", rng.next()).into_bytes(), false),
        "bad-last-event-id" => (b"GET /subscribe HTTP/1.1\r\nX-Openpush-Key: nosuchkey\r\nLast-Event-ID: -1x\r\n\r\n".to_vec(), false),
        "bad-basic-auth" => {
            let auth = wire::base64(format!("nobody{}:wrong", rng.below(1000)).as_bytes());
            let mut v = format!("POST /client HTTP/1.1\r\nAuthorization: Basic {auth}\r\nContent-Length: 13\r\n\r\n").into_bytes();
            v.extend_from_slice(b"{\"name\":\"x\"}\n");
            (v, false)
        }
        "unknown-method" => (b"BREW /message HTTP/1.1\r\nContent-Length: 0\r\n\r\n".to_vec(), false),
        "random-bytes" => ((0..1 + rng.below(4096)).map(|_| rng.next() as u8).collect(), false),
        "close-at-once" => (Vec::new(), true),
        "reset-mid-head" => (b"POST /message HTTP/1.1\r\nHost: x\r\nContent-Le".to_vec(), true),
        "close-mid-body" => {
            let mut v = b"POST /message HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"token\":\"".to_vec();
            v.extend_from_slice(token.as_bytes());
            (v, true)
        }
        "binary-header" => (b"GET /health HTTP/1.1\r\nX-\x00\xff: \x01\x02\r\n\r\n".to_vec(), false),
        _ => (b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n".to_vec(), false),
    }
}

/// One garbage request on its own connection: returns the status seen ("none" when the server
/// closed without answering, "timeout" when it did neither within 15 s, "reset" when we closed).
fn garbage_one(
    dest: SocketAddr,
    from: SocketAddr,
    kind: &str,
    rng: &mut Rng,
    token: &str,
) -> String {
    let (bytes, reset) = garbage_request(kind, rng, token);
    let Ok(mut s) = connect_blocking(from, dest, Duration::from_secs(15)) else {
        return "connect-failed".into();
    };
    let _ = s.write_all(&bytes);
    if reset {
        let sock = Socket::from(s);
        let _ = sock.set_linger(Some(Duration::ZERO));
        drop(sock);
        return "reset".into();
    }
    let mut buf = [0u8; 4096];
    let mut got = Vec::new();
    let t = Instant::now();
    while got.len() < 64 && t.elapsed() < Duration::from_secs(15) {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {
                return "timeout".into()
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    if got.starts_with(b"HTTP/1.") && got.len() >= 12 {
        String::from_utf8_lossy(&got[9..12]).into_owned()
    } else {
        "none".into()
    }
}

fn garbage(
    g: usize,
    dest: SocketAddr,
    rate: f64,
    threads: usize,
    tokens: Arc<Vec<String>>,
    sh: Arc<Shared>,
    deadline: Instant,
) {
    let mut rng = Rng::new(seed() ^ ((g as u64 + 17) * 104_729));
    let start = Instant::now();
    let mut n = 0u64;
    while !sh.stop_garbage.load(Relaxed) && Instant::now() < deadline {
        let due = start + Duration::from_secs_f64((n * threads as u64 + g as u64) as f64 / rate);
        n += 1;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let kind = KINDS[rng.below(KINDS.len() as u64) as usize];
        let token = tokens[rng.below(tokens.len() as u64) as usize].clone();
        let from = src(2, rng.below(250) as usize);
        let status = garbage_one(dest, from, kind, &mut rng, &token);
        sh.garbage.fetch_add(1, Relaxed);
        *sh.garbage_status
            .lock()
            .expect("lock")
            .entry(format!("{kind} {status}"))
            .or_default() += 1;
    }
}

/// Up to `max` slowloris connections at once: a request head sent a byte a second, never
/// finished. The server must close each (408) after its request timeout; we give up on one
/// after 60 s and count it as outlived.
fn slowloris(dest: SocketAddr, max: usize, sh: Arc<Shared>, deadline: Instant) {
    const HEAD: &[u8] = b"POST /message HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut rng = Rng::new(seed() ^ 31337);
    let mut conns: Vec<(std::net::TcpStream, usize, Instant)> = Vec::new();
    let mut n = 0usize;
    while !sh.stop_garbage.load(Relaxed) && Instant::now() < deadline {
        while conns.len() < max && rng.chance(0.5) {
            if let Ok(s) = connect_blocking(src(3, n), dest, Duration::from_millis(50)) {
                let _ = s.set_nonblocking(true);
                conns.push((s, 0, Instant::now()));
                sh.slowloris.fetch_add(1, Relaxed);
            }
            n += 1;
        }
        let mut keep = Vec::with_capacity(conns.len());
        for (mut s, at, born) in conns.drain(..) {
            let mut buf = [0u8; 512];
            let closed = match s.read(&mut buf) {
                Ok(_) => true, // a response (408) or EOF: the server ended it
                Err(e) if e.kind() == ErrorKind::WouldBlock => false,
                Err(_) => true,
            };
            if closed {
                sh.slowloris_closed_by_server.fetch_add(1, Relaxed);
                continue;
            }
            if born.elapsed() > Duration::from_secs(60) {
                sh.slowloris_outlived.fetch_add(1, Relaxed);
                continue;
            }
            let _ = s.write(&HEAD[at % HEAD.len()..at % HEAD.len() + 1]);
            keep.push((s, at + 1, born));
        }
        conns = keep;
        std::thread::sleep(Duration::from_secs(1));
    }
}

// ---------------------------------------------------------------- subscribers

#[derive(PartialEq, Clone, Copy)]
enum St {
    Offline,
    Connecting,
    Head,
    Ready,
    Done,
}

struct Slot {
    st: St,
    until: Instant,
    stream: Option<TcpStream>,
    raw: Vec<u8>,
    text: Vec<u8>,
    chunked: bool,
    dechunk: wire::Dechunk,
    /// Highest stored event id seen on any connection of this client.
    max_seen: u64,
    /// Highest id sent as Last-Event-ID (everything up to it is deleted by the server).
    acked: u64,
    /// Highest event id on the current connection (ids must rise within a stream).
    conn_last: u64,
    last_event_at: Instant,
    send_id: bool,
    /// The read time of the current stream has been picked.
    read_picked: bool,
}

#[derive(PartialEq, Clone, Copy)]
enum Phase {
    Churn,
    Drain,
}

struct Loop {
    poll: Poll,
    slots: Vec<Slot>,
    keys: Vec<String>,
    dest: SocketAddr,
    rng: Rng,
    read_lo: f64,
    read_hi: f64,
    off_lo: f64,
    off_hi: f64,
    scratch: Vec<u8>,
}

impl Loop {
    fn close(&mut self, i: usize, sh: &Shared) {
        let s = &mut self.slots[i];
        if let Some(mut st) = s.stream.take() {
            let _ = self.poll.registry().deregister(&mut st);
        }
        if s.st == St::Ready {
            sh.connected.fetch_sub(1, Relaxed);
        }
        s.raw = Vec::new();
        s.text = Vec::new();
        s.st = St::Offline;
        s.until = Instant::now() + self.rng.secs(self.off_lo, self.off_hi);
    }

    fn open(&mut self, i: usize, sh: &Shared, send_id: bool) {
        let s = &mut self.slots[i];
        match wire::connect_from(i, self.dest, true) {
            Ok(std) => {
                let mut stream = TcpStream::from_std(std);
                if self
                    .poll
                    .registry()
                    .register(
                        &mut stream,
                        Token(i),
                        Interest::READABLE | Interest::WRITABLE,
                    )
                    .is_err()
                {
                    sh.connect_failures.fetch_add(1, Relaxed);
                    s.until = Instant::now() + Duration::from_secs(1);
                    return;
                }
                s.stream = Some(stream);
                s.st = St::Connecting;
                s.chunked = false;
                s.dechunk = wire::Dechunk::default();
                s.conn_last = 0;
                s.send_id = send_id && s.max_seen > 0;
                s.until = Instant::now() + Duration::from_secs(20); // handshake deadline
            }
            Err(e) => {
                if sh.connect_failures.fetch_add(1, Relaxed) < 5 {
                    eprintln!("subscriber {i}: connect: {e}");
                }
                s.until = Instant::now() + Duration::from_secs(1);
            }
        }
    }

    fn on_event(
        &mut self,
        i: usize,
        writable: bool,
        readable: bool,
        error: bool,
        sh: &Shared,
        phase: Phase,
    ) {
        let mut dead = false;
        {
            let s = &mut self.slots[i];
            let Some(stream) = s.stream.as_mut() else {
                return;
            };
            if s.st == St::Connecting && (writable || error) {
                if error || stream.peer_addr().is_err() {
                    dead = true;
                } else {
                    let id_line = if s.send_id {
                        format!("Last-Event-ID: {}\r\n", s.max_seen)
                    } else {
                        String::new()
                    };
                    let req = format!(
                        "GET /subscribe HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nX-Openpush-Key: {}\r\n{id_line}\r\n",
                        self.keys[i]
                    );
                    match stream.write(req.as_bytes()) {
                        Ok(n) if n == req.len() => {
                            if s.send_id {
                                s.acked = s.acked.max(s.max_seen);
                                sh.connects_with_id.fetch_add(1, Relaxed);
                            }
                            sh.connects.fetch_add(1, Relaxed);
                            s.st = St::Head;
                            let _ = self.poll.registry().reregister(
                                stream,
                                Token(i),
                                Interest::READABLE,
                            );
                        }
                        _ => dead = true,
                    }
                }
            }
            if readable && !dead && s.st != St::Connecting {
                loop {
                    match stream.read(&mut self.scratch) {
                        Ok(0) => {
                            dead = true;
                            break;
                        }
                        Ok(n) => s.raw.extend_from_slice(&self.scratch[..n]),
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                        Err(_) => {
                            dead = true;
                            break;
                        }
                    }
                }
                if !s.raw.is_empty() && !process(s, i, sh) {
                    dead = true;
                }
            }
        }
        let s = &mut self.slots[i];
        if dead {
            if s.st == St::Ready {
                // The server ended a stream we were still reading.
                sh.server_closed.fetch_add(1, Relaxed);
            } else {
                sh.connect_failures.fetch_add(1, Relaxed);
            }
            let done = phase == Phase::Drain && s.st == St::Ready;
            self.close(i, sh);
            if phase == Phase::Drain && done {
                // Reconnect once more in the drain: the queue must still be read.
                self.slots[i].until = Instant::now();
            }
        }
    }
}

/// Handles the bytes read; false when the stream must be closed (non-200 answer, bad framing).
fn process(s: &mut Slot, i: usize, sh: &Shared) -> bool {
    if s.st == St::Head {
        let Some(end) = s.raw.windows(4).position(|w| w == b"\r\n\r\n") else {
            return s.raw.len() <= 16 * 1024;
        };
        let head = String::from_utf8_lossy(&s.raw[..end]).to_ascii_lowercase();
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if status != 200 {
            Shared::bump(&sh.connect_status, status);
            if sh.connect_failures.load(Relaxed) < 5 {
                eprintln!("subscriber {i}: {}", head.lines().next().unwrap_or(""));
            }
            return false;
        }
        s.chunked = head.contains("transfer-encoding: chunked");
        s.raw.drain(..end + 4);
        s.st = St::Ready;
        s.last_event_at = Instant::now();
        sh.connected.fetch_add(1, Relaxed);
        s.read_picked = false; // the loop picks the read time
    }
    if !dechunk(s) {
        return false;
    }
    events(s, i, sh);
    s.text.len() <= 1 << 20
}

fn dechunk(s: &mut Slot) -> bool {
    if !s.chunked {
        s.text.extend_from_slice(&s.raw);
        s.raw.clear();
        return true;
    }
    s.dechunk.feed(&mut s.raw, &mut s.text)
}

fn events(s: &mut Slot, i: usize, sh: &Shared) {
    let mut at = 0;
    while let Some(end) = s.text[at..].windows(2).position(|w| w == b"\n\n") {
        let block = &s.text[at..at + end];
        at += end + 2;
        let mut data: Vec<u8> = Vec::new();
        let mut id = None;
        for line in block.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if let Some(v) = line.strip_prefix(b"id:") {
                id = std::str::from_utf8(v)
                    .ok()
                    .and_then(|v| v.trim().parse::<u64>().ok());
            } else if let Some(v) = line.strip_prefix(b"data:") {
                data.extend_from_slice(v.strip_prefix(b" ").unwrap_or(v));
            }
        }
        if data.is_empty() {
            continue;
        }
        sh.events.fetch_add(1, Relaxed);
        s.last_event_at = Instant::now();
        if let Some(id) = id {
            if id <= s.conn_last {
                sh.out_of_order.fetch_add(1, Relaxed);
            }
            s.conn_last = id;
            s.max_seen = s.max_seen.max(id);
        }
        record(&data, id, i, sh);
    }
    s.text.drain(..at);
}

fn record(data: &[u8], id: Option<u64>, i: usize, sh: &Shared) {
    if json_u64(data, b"r") != Some(sh.run) {
        // Not one of this run's messages: garbage that got through, or an earlier run's.
        if json_u64(data, b"r").is_some() {
            sh.stale.fetch_add(1, Relaxed)
        } else {
            sh.foreign.fetch_add(1, Relaxed)
        };
        return;
    }
    let (Some(seq), Some(c)) = (json_u64(data, b"s"), json_u64(data, b"c")) else {
        sh.foreign.fetch_add(1, Relaxed);
        return;
    };
    let seq = seq as usize;
    if c != i as u64 || seq >= sh.to.len() || sh.to[seq].load(Relaxed) != i as u64 {
        sh.misrouted.fetch_add(1, Relaxed);
        return;
    }
    let want = sh.ids[seq].load(Relaxed);
    if want != 0 && id != Some(want) {
        sh.id_mismatch.fetch_add(1, Relaxed);
    }
    if sh.status[seq].load(Relaxed) == REFUSED {
        sh.delivered_refused.fetch_add(1, Relaxed);
    }
    let before = sh.seen[seq].fetch_add(1, Relaxed);
    if before == 255 {
        sh.seen[seq].store(255, Relaxed);
    }
    if before == 0 {
        sh.delivered_unique.fetch_add(1, Relaxed);
    } else {
        sh.duplicates.fetch_add(1, Relaxed);
    }
}

/// The subscriber loop: churn until `churn_until`, then (when `drain` is set) close all,
/// reconnect every client once without Last-Event-ID and read until it is quiet.
/// Returns each client's highest acknowledged id.
fn subscribers(
    mut lp: Loop,
    sh: Arc<Shared>,
    churn_end: Arc<AtomicBool>,
    drain_max: Duration,
    quiet: Duration,
    max_pending: usize,
) -> (Vec<u64>, f64, usize) {
    let mut events = Events::with_capacity(4096);
    let n = lp.slots.len();
    // Stagger the first connects over the first 20 s.
    let t0 = Instant::now();
    for i in 0..n {
        lp.slots[i].until = t0 + Duration::from_millis((i as u64 * 20_000) / n as u64);
    }
    let mut phase = Phase::Churn;
    let mut drain_start = t0;
    let mut drained = 0usize;
    loop {
        let now = Instant::now();
        if phase == Phase::Churn && churn_end.load(Relaxed) {
            phase = Phase::Drain;
            drain_start = now;
            for i in 0..n {
                lp.close(i, &sh);
                lp.slots[i].until = now + Duration::from_secs(2);
            }
        }
        if phase == Phase::Drain && (drained == n || now > drain_start + drain_max) {
            break;
        }
        let pending = lp
            .slots
            .iter()
            .filter(|s| s.st == St::Connecting || s.st == St::Head)
            .count();
        let mut budget = max_pending.saturating_sub(pending);
        for i in 0..n {
            let s = &lp.slots[i];
            match s.st {
                St::Offline if s.until <= now && budget > 0 => {
                    budget -= 1;
                    let send_id = phase == Phase::Churn && lp.rng.chance(0.5);
                    lp.open(i, &sh, send_id);
                }
                St::Connecting | St::Head if s.until <= now => {
                    sh.connect_failures.fetch_add(1, Relaxed);
                    lp.close(i, &sh);
                }
                St::Ready => {
                    if phase == Phase::Churn {
                        if !s.read_picked {
                            let d = lp.rng.secs(lp.read_lo, lp.read_hi);
                            lp.slots[i].until = now + d;
                            lp.slots[i].read_picked = true;
                        } else if s.until <= now {
                            lp.close(i, &sh);
                        }
                    } else if now.duration_since(s.last_event_at) > quiet {
                        lp.close(i, &sh);
                        lp.slots[i].st = St::Done;
                        drained += 1;
                    }
                }
                _ => {}
            }
        }
        if lp
            .poll
            .poll(&mut events, Some(Duration::from_millis(50)))
            .is_err()
        {
            continue;
        }
        for ev in events.iter() {
            let (i, w, r, e) = (
                ev.token().0,
                ev.is_writable(),
                ev.is_readable() || ev.is_read_closed(),
                ev.is_error(),
            );
            lp.on_event(i, w, r, e, &sh, phase);
        }
    }
    let drain_secs = drain_start.elapsed().as_secs_f64();
    for i in 0..n {
        if lp.slots[i].stream.is_some() {
            lp.close(i, &sh);
        }
    }
    (
        lp.slots.iter().map(|s| s.acked).collect(),
        drain_secs,
        drained,
    )
}

// ---------------------------------------------------------------- the run

pub fn main(get: &dyn Fn(&str, &str) -> String) {
    let nofile = procstat::raise_nofile();
    let dest: SocketAddr = get("addr", "127.0.0.1:8080").parse().expect("--addr");
    wire::check_loopback(&dest);
    let pid: u32 = get("pid", "0").parse().expect("--pid");
    assert!(pid > 0, "--pid of the server is required");
    let minutes: f64 = get("minutes", "10").parse().expect("--minutes");
    let clients: usize = get("clients", "2000").parse().expect("--clients");
    let rate: f64 = get("rate", "200").parse().expect("--rate");
    let posters: usize = get("posters", "4").parse().expect("--posters");
    let garbage_rate: f64 = get("garbage-rate", "20").parse().expect("--garbage-rate");
    let garbage_threads: usize = get("garbage-threads", "4")
        .parse()
        .expect("--garbage-threads");
    let slowloris_max: usize = get("slowloris", "32").parse().expect("--slowloris");
    let read_lo: f64 = get("read-min-secs", "2").parse().expect("--read-min-secs");
    let read_hi: f64 = get("read-max-secs", "90").parse().expect("--read-max-secs");
    let off_lo: f64 = get("off-min-secs", "0.2").parse().expect("--off-min-secs");
    let off_hi: f64 = get("off-max-secs", "20").parse().expect("--off-max-secs");
    let sample_secs: f64 = get("sample-secs", "10").parse().expect("--sample-secs");
    let samples_path = get("samples", "");
    let duration = Duration::from_secs_f64(minutes * 60.0);
    let warmup = Duration::from_secs_f64(
        get(
            "warmup-secs",
            &format!("{}", (minutes * 6.0).clamp(60.0, 300.0)),
        )
        .parse()
        .expect("--warmup-secs"),
    );
    assert!(clients > 0 && rate > 0.0 && posters > 0 && garbage_threads > 0);
    assert!(
        clients + 512 < nofile as usize,
        "RLIMIT_NOFILE {nofile} too low for {clients} clients"
    );

    let creds = setup::ensure(
        &get("creds", "soak.creds"),
        dest,
        clients,
        &get("users", "soak:4:soakpw"),
        get("per-user", "500").parse().expect("--per-user"),
    );
    let keys: Vec<String> = creds.keys[..clients].to_vec();
    let tokens = Arc::new(creds.tokens[..clients].to_vec());

    let epoch = Instant::now();
    let started = start_time(pid).expect("server pid not running");
    // Let setup's connections close before the baseline.
    std::thread::sleep(Duration::from_secs(3));
    let baseline = read_proc(pid, epoch, started);
    eprintln!(
        "soak: baseline rss {:.1} MiB fds {} threads {}; {clients} clients, {rate} msg/s, {garbage_rate} garbage/s, {minutes} min",
        baseline.rss as f64 / 1048576.0, baseline.fds, baseline.threads
    );

    let cap = (rate * duration.as_secs_f64() * 1.05) as usize + 1000;
    let sh = Arc::new(Shared {
        run: seed() / 1000,
        clients,
        to: (0..cap).map(|_| AtomicU64::new(u64::MAX)).collect(),
        status: (0..cap).map(|_| AtomicU8::new(UNSENT)).collect(),
        ids: (0..cap).map(|_| AtomicU64::new(0)).collect(),
        seen: (0..cap).map(|_| AtomicU8::new(0)).collect(),
        posted: AtomicUsize::new(0),
        post_ok: AtomicU64::new(0),
        post_refused: AtomicU64::new(0),
        post_unknown: AtomicU64::new(0),
        refused_status: Mutex::default(),
        connected: AtomicUsize::new(0),
        connects: AtomicU64::new(0),
        connects_with_id: AtomicU64::new(0),
        connect_failures: AtomicU64::new(0),
        connect_status: Mutex::default(),
        server_closed: AtomicU64::new(0),
        events: AtomicU64::new(0),
        delivered_unique: AtomicU64::new(0),
        duplicates: AtomicU64::new(0),
        misrouted: AtomicU64::new(0),
        id_mismatch: AtomicU64::new(0),
        foreign: AtomicU64::new(0),
        stale: AtomicU64::new(0),
        delivered_refused: AtomicU64::new(0),
        out_of_order: AtomicU64::new(0),
        garbage: AtomicU64::new(0),
        garbage_status: Mutex::default(),
        slowloris: AtomicU64::new(0),
        slowloris_closed_by_server: AtomicU64::new(0),
        slowloris_outlived: AtomicU64::new(0),
        stop_posting: AtomicBool::new(false),
        stop_garbage: AtomicBool::new(false),
    });

    let t_start = Instant::now();
    let deadline = t_start + duration;
    let churn_end = Arc::new(AtomicBool::new(false));
    let now = Instant::now();
    let lp = Loop {
        poll: Poll::new().expect("epoll"),
        slots: (0..clients)
            .map(|_| Slot {
                st: St::Offline,
                until: now,
                stream: None,
                raw: Vec::new(),
                text: Vec::new(),
                chunked: false,
                dechunk: wire::Dechunk::default(),
                max_seen: 0,
                acked: 0,
                conn_last: 0,
                last_event_at: now,
                send_id: false,
                read_picked: false,
            })
            .collect(),
        keys,
        dest,
        rng: Rng::new(seed() ^ 99),
        read_lo,
        read_hi,
        off_lo,
        off_hi,
        scratch: vec![0u8; 64 * 1024],
    };
    let sub_thread = {
        let (sh, ce) = (sh.clone(), churn_end.clone());
        std::thread::spawn(move || {
            subscribers(
                lp,
                sh,
                ce,
                Duration::from_secs(300),
                Duration::from_secs(5),
                128,
            )
        })
    };
    // Posters start once most subscribers are up (the first connects are staggered over 20 s).
    std::thread::sleep(Duration::from_secs(5));
    let post_start = Instant::now();
    let poster_threads: Vec<_> = (0..posters)
        .map(|p| {
            let (sh, tokens) = (sh.clone(), tokens.clone());
            std::thread::spawn(move || {
                poster(p, dest, tokens, rate, posters, sh, post_start, deadline)
            })
        })
        .collect();
    let garbage_threads_h: Vec<_> = (0..garbage_threads)
        .map(|g| {
            let (sh, tokens) = (sh.clone(), tokens.clone());
            std::thread::spawn(move || {
                garbage(g, dest, garbage_rate, garbage_threads, tokens, sh, deadline)
            })
        })
        .collect();
    let slow_h = {
        let sh = sh.clone();
        std::thread::spawn(move || slowloris(dest, slowloris_max, sh, deadline))
    };

    // Sampling until the deadline.
    let mut series: Vec<Reading> = vec![baseline];
    let mut lines = String::new();
    let push_line = |lines: &mut String, r: &Reading, sh: &Shared, phase: &str| {
        let line = format!(
            "{{\"t\":{:.0},\"phase\":\"{phase}\",\"rss\":{},\"fds\":{},\"threads\":{},\"alive\":{},\"connected\":{},\"connects\":{},\"posted_ok\":{},\"delivered\":{},\"garbage\":{}}}",
            r.t, r.rss, r.fds, r.threads, r.alive,
            sh.connected.load(Relaxed), sh.connects.load(Relaxed), sh.post_ok.load(Relaxed),
            sh.delivered_unique.load(Relaxed), sh.garbage.load(Relaxed)
        );
        eprintln!("{line}");
        lines.push_str(&line);
        lines.push('\n');
    };
    let mut next_sample = Instant::now();
    let mut crashed = false;
    while Instant::now() < deadline {
        if Instant::now() >= next_sample {
            let r = read_proc(pid, epoch, started);
            push_line(&mut lines, &r, &sh, "load");
            if !r.alive {
                eprintln!("soak: the server process is gone");
                crashed = true;
                series.push(r);
                break;
            }
            series.push(r);
            next_sample += Duration::from_secs_f64(sample_secs);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let load_secs = t_start.elapsed().as_secs_f64();
    sh.stop_posting.store(true, Relaxed);
    sh.stop_garbage.store(true, Relaxed);
    for t in poster_threads {
        let _ = t.join();
    }
    for t in garbage_threads_h {
        let _ = t.join();
    }
    let _ = slow_h.join();
    let at_load_end = read_proc(pid, epoch, started);
    // Drain: every client reconnects without Last-Event-ID and reads its queue.
    churn_end.store(true, Relaxed);
    let drain_t = Instant::now();
    let mut drain_samples = 0;
    while !sub_thread.is_finished() && drain_t.elapsed() < Duration::from_secs(400) {
        std::thread::sleep(Duration::from_millis(500));
        if drain_t.elapsed().as_secs_f64() > sample_secs * (drain_samples + 1) as f64 {
            drain_samples += 1;
            let r = read_proc(pid, epoch, started);
            push_line(&mut lines, &r, &sh, "drain");
        }
    }
    let (acked, drain_secs, drained) = sub_thread.join().expect("subscriber loop");
    // Everything is disconnected: the fd count must come back to the baseline.
    let fd_t = Instant::now();
    let mut idle = read_proc(pid, epoch, started);
    while idle.fds > baseline.fds && fd_t.elapsed() < Duration::from_secs(90) {
        std::thread::sleep(Duration::from_secs(1));
        idle = read_proc(pid, epoch, started);
    }
    let fd_wait = fd_t.elapsed().as_secs_f64();
    push_line(&mut lines, &idle, &sh, "idle");
    if !samples_path.is_empty() {
        let _ = std::fs::write(&samples_path, &lines);
    }

    // ---- checks
    let posted = sh.posted.load(Relaxed).min(cap);
    let mut lost = Vec::new();
    let mut lost_acked = 0u64;
    let mut unknown_delivered = 0u64;
    for k in 0..posted {
        let st = sh.status[k].load(Relaxed);
        let seen = sh.seen[k].load(Relaxed) > 0;
        if st == OK && !seen {
            let to = sh.to[k].load(Relaxed) as usize;
            let id = sh.ids[k].load(Relaxed);
            if id <= acked[to] {
                lost_acked += 1;
            }
            lost.push((k, to, id));
        }
        if st == UNKNOWN && seen {
            unknown_delivered += 1;
        }
    }
    for (k, to, id) in lost.iter().take(20) {
        eprintln!(
            "LOST: seq {k} to client {to} id {id} (client acknowledged up to {})",
            acked[*to]
        );
    }
    let warm: Vec<&Reading> = series
        .iter()
        .filter(|r| r.t >= warmup.as_secs_f64() + (t_start - epoch).as_secs_f64())
        .collect();
    let rss_start = warm.first().map(|r| r.rss).unwrap_or(baseline.rss);
    let rss_end = warm.last().map(|r| r.rss).unwrap_or(at_load_end.rss);
    let rss_max = series.iter().map(|r| r.rss).max().unwrap_or(0);
    let rss_min_warm = warm.iter().map(|r| r.rss).min().unwrap_or(0);
    let slope = slope_per_hour(&warm);
    let fd_max = series.iter().map(|r| r.fds).max().unwrap_or(0);
    let th_min = series.iter().map(|r| r.threads).min().unwrap_or(0);
    let th_max = series.iter().map(|r| r.threads).max().unwrap_or(0);
    let alive = !crashed && read_proc(pid, epoch, started).alive;
    let rss_growth = rss_end as f64 - rss_start as f64;
    // Flat: under 10% + 2 MiB growth from the first post-warm-up sample to the last.
    let rss_flat = rss_growth <= rss_start as f64 * 0.10 + 2.0 * 1048576.0;
    let fds_back = idle.fds <= baseline.fds;
    let ok_posts = sh.post_ok.load(Relaxed);
    let pass = alive
        && lost.is_empty()
        && sh.misrouted.load(Relaxed) == 0
        && sh.id_mismatch.load(Relaxed) == 0
        && sh.delivered_refused.load(Relaxed) == 0
        && sh.foreign.load(Relaxed) == 0
        && rss_flat
        && fds_back
        && drained == clients;

    let garbage_map = sh.garbage_status.lock().expect("lock").clone();
    let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
    for (k, v) in &garbage_map {
        let st = k.rsplit(' ').next().unwrap_or("?").to_owned();
        *by_status.entry(st).or_default() += v;
    }
    let g5xx: u64 = by_status
        .iter()
        .filter(|(k, _)| k.starts_with('5') && k.as_str() != "503")
        .map(|(_, v)| *v)
        .sum();

    eprintln!("\n==== soak summary ====");
    eprintln!(
        "duration: {:.1} min of load, drain {:.1} s ({drained}/{clients} clients drained)",
        load_secs / 60.0,
        drain_secs
    );
    eprintln!(
        "messages: posted {posted}, acknowledged (200) {ok_posts}, refused {} {:?}, unknown outcome {} ({unknown_delivered} of them delivered)",
        sh.post_refused.load(Relaxed), sh.refused_status.lock().expect("lock"), sh.post_unknown.load(Relaxed)
    );
    eprintln!(
        "delivered: {} unique of {ok_posts} acknowledged, LOST {} ({} under the client's own Last-Event-ID), {} duplicate receipts, {} events",
        sh.delivered_unique.load(Relaxed), lost.len(), lost_acked, sh.duplicates.load(Relaxed), sh.events.load(Relaxed)
    );
    eprintln!(
        "routing: misrouted {}, id mismatch {}, out of order {}, refused-but-delivered {}, foreign events {}, stale {}",
        sh.misrouted.load(Relaxed), sh.id_mismatch.load(Relaxed), sh.out_of_order.load(Relaxed),
        sh.delivered_refused.load(Relaxed), sh.foreign.load(Relaxed), sh.stale.load(Relaxed)
    );
    eprintln!(
        "subscribers: {} connects ({} with Last-Event-ID), {} failures {:?}, {} streams ended by the server",
        sh.connects.load(Relaxed), sh.connects_with_id.load(Relaxed), sh.connect_failures.load(Relaxed),
        sh.connect_status.lock().expect("lock"), sh.server_closed.load(Relaxed)
    );
    eprintln!(
        "garbage: {} requests, by answer {:?}; slowloris {} opened, {} closed by the server, {} outlived 60 s",
        sh.garbage.load(Relaxed), by_status, sh.slowloris.load(Relaxed),
        sh.slowloris_closed_by_server.load(Relaxed), sh.slowloris_outlived.load(Relaxed)
    );
    for (k, v) in &garbage_map {
        eprintln!("  garbage {k}: {v}");
    }
    eprintln!(
        "server: pid {pid} alive and the same process: {alive}; rss baseline {:.1} MiB, after warm-up {:.1} MiB, end of load {:.1} MiB (min {:.1}, max {:.1}, slope {:+.2} MiB/h), idle {:.1} MiB",
        baseline.rss as f64 / 1048576.0, rss_start as f64 / 1048576.0, rss_end as f64 / 1048576.0,
        rss_min_warm as f64 / 1048576.0, rss_max as f64 / 1048576.0, slope / 1048576.0, idle.rss as f64 / 1048576.0
    );
    eprintln!(
        "fds: baseline {}, max {fd_max}, after all disconnected {} (waited {fd_wait:.0} s); threads {}..{} (baseline {}, idle {})",
        baseline.fds, idle.fds, th_min, th_max, baseline.threads, idle.threads
    );
    eprintln!("verdict: {}", if pass { "PASS" } else { "FAIL" });
    let gjson: Vec<String> = by_status
        .iter()
        .map(|(k, v)| format!("\"{k}\":{v}"))
        .collect();
    println!(
        "{{\"soak\":true,\"pass\":{pass},\"minutes\":{:.2},\"clients\":{clients},\"rate\":{rate},\"posted\":{posted},\"acknowledged\":{ok_posts},\
\"refused\":{},\"unknown\":{},\"delivered_unique\":{},\"lost\":{},\"lost_under_ack\":{lost_acked},\"duplicates\":{},\"misrouted\":{},\"id_mismatch\":{},\
\"out_of_order\":{},\"refused_delivered\":{},\"foreign\":{},\"connects\":{},\"connects_with_id\":{},\"connect_failures\":{},\"server_closed\":{},\
\"garbage\":{},\"garbage_by_answer\":{{{}}},\"garbage_5xx_not_503\":{g5xx},\"slowloris\":{},\"slowloris_closed_by_server\":{},\"slowloris_outlived\":{},\
\"alive\":{alive},\"rss_baseline\":{},\"rss_start\":{rss_start},\"rss_end\":{rss_end},\"rss_max\":{rss_max},\"rss_slope_bytes_per_hour\":{slope:.0},\"rss_idle\":{},\
\"rss_flat\":{rss_flat},\"fds_baseline\":{},\"fds_max\":{fd_max},\"fds_end\":{},\"fds_back\":{fds_back},\"threads_min\":{th_min},\"threads_max\":{th_max},\
\"threads_end\":{},\"drained\":{drained},\"drain_secs\":{drain_secs:.1}}}",
        load_secs / 60.0, sh.post_refused.load(Relaxed), sh.post_unknown.load(Relaxed), sh.delivered_unique.load(Relaxed), lost.len(),
        sh.duplicates.load(Relaxed), sh.misrouted.load(Relaxed), sh.id_mismatch.load(Relaxed), sh.out_of_order.load(Relaxed),
        sh.delivered_refused.load(Relaxed), sh.foreign.load(Relaxed), sh.connects.load(Relaxed), sh.connects_with_id.load(Relaxed),
        sh.connect_failures.load(Relaxed), sh.server_closed.load(Relaxed), sh.garbage.load(Relaxed), gjson.join(","),
        sh.slowloris.load(Relaxed), sh.slowloris_closed_by_server.load(Relaxed), sh.slowloris_outlived.load(Relaxed),
        baseline.rss, idle.rss, baseline.fds, idle.fds, idle.threads,
    );
    std::process::exit(if pass { 0 } else { 1 });
}

/// Least-squares slope of RSS over time, bytes per hour.
fn slope_per_hour(rs: &[&Reading]) -> f64 {
    if rs.len() < 2 {
        return 0.0;
    }
    let n = rs.len() as f64;
    let mt = rs.iter().map(|r| r.t).sum::<f64>() / n;
    let mr = rs.iter().map(|r| r.rss as f64).sum::<f64>() / n;
    let num: f64 = rs.iter().map(|r| (r.t - mt) * (r.rss as f64 - mr)).sum();
    let den: f64 = rs.iter().map(|r| (r.t - mt) * (r.t - mt)).sum();
    if den == 0.0 {
        0.0
    } else {
        num / den * 3600.0
    }
}
