//! N subscribers on one event loop (mio): SSE (openpush, nchan, any SSE server), MQTT, or
//! openpush's other doors (ntfy NDJSON and WebSocket, NextPush SSE, autopush WebSocket).
//! Each checks every event it gets: which run and message it is, and that it was meant for
//! this subscriber (the other doors' streams are held idle: what they get is read and
//! dropped). Nothing here blocks; connects are paced so the server's accept queue never
//! overflows. With `tls`, every stream is a TLS connection: handshake, then the same request.

use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::tls::{Client, Tls};
use crate::wire::{self, json_u64};

#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Proto {
    /// openpush `GET /subscribe` with `X-Openpush-Key` (and `Last-Event-ID`).
    Openpush,
    /// openpush subscribers as above; the posts are Web Push requests to `/push/<token>`.
    WebPush,
    /// openpush's ntfy door: `GET /<topic>/json` (NDJSON) with HTTP Basic, held idle.
    NtfyJson,
    /// openpush's ntfy door: `GET /<topic>/ws` (RFC 6455 upgrade) with HTTP Basic, held idle.
    NtfyWs,
    /// openpush's NextPush door: `GET /index.php/apps/uppush/device/<deviceId>` (SSE, no
    /// credentials), held idle. A deviceId is an OpenPush client's key.
    NextPush,
    /// openpush's autopush door: `GET {path}` (RFC 6455 upgrade), a `hello` for a new uaid,
    /// then held idle, answering the server's pings.
    Autopush,
    /// `GET {path}{i}` with `Accept: text/event-stream` (nchan, the tiny_http peer).
    Sse,
    /// MQTT 3.1.1: CONNECT, SUBSCRIBE `b/{i}` at QoS 0.
    Mqtt,
}

pub struct Shared {
    pub epoch: Instant,
    pub run_id: u64,
    pub ready: AtomicUsize,
    pub failed: AtomicUsize,
    /// Streams that ended after they were ready (the server closed them).
    pub dropped: AtomicUsize,
    /// Receipts per message sequence number (saturating at 255).
    pub received: Vec<AtomicU8>,
    pub delivered: AtomicUsize,
    pub misrouted: AtomicU64,
    /// Events of an earlier run (replayed backlog), not counted as this run's.
    pub stale: AtomicU64,
    pub unknown: AtomicU64,
    pub latencies_ns: Mutex<Vec<u64>>,
    pub stop: AtomicBool,
}

impl Shared {
    pub fn new(run_id: u64, messages: usize) -> Arc<Shared> {
        Arc::new(Shared {
            epoch: Instant::now(),
            run_id,
            ready: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            dropped: AtomicUsize::new(0),
            received: (0..messages).map(|_| AtomicU8::new(0)).collect(),
            delivered: AtomicUsize::new(0),
            misrouted: AtomicU64::new(0),
            stale: AtomicU64::new(0),
            unknown: AtomicU64::new(0),
            latencies_ns: Mutex::new(Vec::with_capacity(messages)),
            stop: AtomicBool::new(false),
        })
    }

    pub fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }
}

pub struct Spec {
    pub proto: Proto,
    /// The servers (nodes of one cluster): subscriber i connects to `dests[i % len]`.
    pub dests: Vec<SocketAddr>,
    pub n: usize,
    /// SSE path prefix; the subscriber index is appended (nchan: `/sub/`).
    pub path: String,
    /// openpush client keys and the last event id each has seen.
    pub keys: Vec<String>,
    pub last_ids: Vec<u64>,
    /// ntfy streams: `Authorization` values, one per user; topic j is user j / per_user's.
    pub auth: Vec<String>,
    pub per_user: usize,
    /// ntfy streams: 0 = a topic of its own for each (`ntfy_topic(i)`); T = stream i reads
    /// `ntfy_topic(i % T)` (T topics, made once, each shared by many streams).
    pub topics: usize,
    /// Handshakes in flight at once.
    pub max_pending: usize,
    /// Subscribers connect over TLS.
    pub tls: Option<Tls>,
}

impl Spec {
    /// ntfy streams: the index of stream i's topic (its user: that / `per_user`).
    fn topic_of(&self, i: usize) -> usize {
        if self.topics > 0 {
            i % self.topics
        } else {
            i
        }
    }
}

#[derive(PartialEq)]
enum State {
    Connecting,
    Head,
    /// autopush: the hello is sent, its answer awaited.
    AutopushHello,
    MqttConnack,
    MqttSuback,
    Ready,
    Dead,
}

struct Conn {
    stream: TcpStream,
    tls: Option<Client>,
    state: State,
    raw: Vec<u8>,
    text: Vec<u8>,
    chunked: bool,
    dechunk: wire::Dechunk,
    last_id: u64,
}

const MAX_EVENT_BYTES: usize = 1 << 20;

impl Conn {
    /// Writes all of `data` (plaintext under TLS); false if the socket did not take it.
    fn send(&mut self, data: &[u8]) -> bool {
        match self.tls.as_mut() {
            Some(tls) => tls.write_all(&mut self.stream, data).is_ok(),
            None => self.stream.write(data).ok() == Some(data.len()),
        }
    }

    /// Reads what has arrived (plaintext under TLS).
    fn recv(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.tls.as_mut() {
            Some(tls) => tls.read(&mut self.stream, buf),
            None => self.stream.read(buf),
        }
    }
}

/// The key of RFC 6455 §1.3 and its accept value (as the lowercased head shows it): one
/// fixed key for every connection, so the bench needs no SHA-1.
const WS_UPGRADE: &str =
    "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
const WS_ACCEPT: &str = "sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=";

/// The first message of a user agent without a uaid: the server makes one.
const AUTOPUSH_HELLO: &[u8] =
    br#"{"messageType":"hello","uaid":"","channelIDs":[],"use_webpush":true,"broadcasts":{}}"#;

/// Subscriber i's ntfy topic: an endpoint topic (`up` + 13 letters and digits).
pub fn ntfy_topic(i: usize) -> String {
    format!("upbench{i:08}")
}

/// Runs until `shared.stop`; returns each subscriber's last event id.
pub fn run(spec: Spec, shared: Arc<Shared>) -> Vec<u64> {
    let mut poll = Poll::new().expect("epoll");
    let mut events = Events::with_capacity(4096);
    let mut conns: Vec<Option<Conn>> = (0..spec.n).map(|_| None).collect();
    let mut started = 0usize;
    let mut scratch = vec![0u8; 64 * 1024];
    let mut last_ids = spec.last_ids.clone();
    last_ids.resize(spec.n, 0);
    while !shared.stop.load(Relaxed) {
        let settled = shared.ready.load(Relaxed) + shared.failed.load(Relaxed);
        while started < spec.n && started < settled + spec.max_pending {
            let i = started;
            started += 1;
            match wire::connect_from(i, spec.dests[i % spec.dests.len()], true) {
                Ok(std) => {
                    let mut stream = TcpStream::from_std(std);
                    poll.registry()
                        .register(
                            &mut stream,
                            Token(i),
                            Interest::READABLE | Interest::WRITABLE,
                        )
                        .expect("register");
                    conns[i] = Some(Conn {
                        stream,
                        tls: spec.tls.as_ref().map(Tls::client),
                        state: State::Connecting,
                        raw: Vec::new(),
                        text: Vec::new(),
                        chunked: false,
                        dechunk: wire::Dechunk::default(),
                        last_id: last_ids[i],
                    });
                }
                Err(e) => {
                    if shared.failed.load(Relaxed) < 3 {
                        eprintln!("subscriber {i}: connect: {e}");
                    }
                    shared.failed.fetch_add(1, Relaxed);
                }
            }
        }
        if poll
            .poll(&mut events, Some(Duration::from_millis(20)))
            .is_err()
        {
            continue;
        }
        for ev in events.iter() {
            let i = ev.token().0;
            let Some(conn) = conns[i].as_mut() else {
                continue;
            };
            let was_ready = conn.state == State::Ready;
            if conn.state == State::Connecting && (ev.is_writable() || ev.is_error()) {
                if conn.stream.peer_addr().is_err() || ev.is_error() {
                    conn.state = State::Dead;
                } else {
                    let req = match spec.proto {
                        Proto::Openpush | Proto::WebPush => format!(
                            "GET /subscribe HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nX-Openpush-Key: {}\r\n{}\r\n",
                            spec.keys[i],
                            if conn.last_id > 0 { format!("Last-Event-ID: {}\r\n", conn.last_id) } else { String::new() }
                        )
                        .into_bytes(),
                        Proto::Sse => format!(
                            "GET {}{i} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n",
                            spec.path
                        )
                        .into_bytes(),
                        Proto::NtfyJson | Proto::NtfyWs => format!(
                            "GET /{}/{} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {}\r\n{}\r\n",
                            ntfy_topic(spec.topic_of(i)),
                            if spec.proto == Proto::NtfyWs { "ws" } else { "json" },
                            spec.auth[spec.topic_of(i) / spec.per_user],
                            if spec.proto == Proto::NtfyWs { WS_UPGRADE } else { "" }
                        )
                        .into_bytes(),
                        Proto::NextPush => format!(
                            "GET /index.php/apps/uppush/device/{} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n",
                            spec.keys[i]
                        )
                        .into_bytes(),
                        Proto::Autopush => format!(
                            "GET {} HTTP/1.1\r\nHost: 127.0.0.1\r\n{WS_UPGRADE}\r\n",
                            spec.path
                        )
                        .into_bytes(),
                        Proto::Mqtt => wire::mqtt_connect(&format!("bench-{}-{i}", std::process::id())),
                    };
                    // Requests are far below a socket buffer: one write takes all of it (over
                    // TLS: the ClientHello now, the request once the handshake is done).
                    if conn.send(&req) {
                        conn.state = if spec.proto == Proto::Mqtt {
                            State::MqttConnack
                        } else {
                            State::Head
                        };
                        let _ = poll.registry().reregister(
                            &mut conn.stream,
                            Token(i),
                            Interest::READABLE,
                        );
                    } else {
                        conn.state = State::Dead;
                    }
                }
            }
            if ev.is_readable() && conn.state != State::Dead {
                loop {
                    match conn.recv(&mut scratch) {
                        Ok(0) => {
                            conn.state = State::Dead;
                            break;
                        }
                        Ok(n) => conn.raw.extend_from_slice(&scratch[..n]),
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                        Err(_) => {
                            conn.state = State::Dead;
                            break;
                        }
                    }
                }
                if !conn.raw.is_empty() {
                    process(conn, i, spec.proto, &shared);
                }
            }
            if conn.state == State::Ready && !was_ready {
                shared.ready.fetch_add(1, Relaxed);
            }
            if conn.state == State::Dead {
                if was_ready {
                    shared.dropped.fetch_add(1, Relaxed);
                } else {
                    shared.failed.fetch_add(1, Relaxed);
                }
                last_ids[i] = conn.last_id;
                let mut c = conns[i].take().expect("present");
                let _ = poll.registry().deregister(&mut c.stream);
            } else if conn.raw.capacity() > 4096 && conn.raw.is_empty() {
                conn.raw = Vec::new();
            }
        }
    }
    for (i, c) in conns.into_iter().enumerate() {
        if let Some(c) = c {
            last_ids[i] = c.last_id;
        }
    }
    last_ids
}

fn process(conn: &mut Conn, i: usize, proto: Proto, shared: &Shared) {
    match proto {
        Proto::Mqtt => process_mqtt(conn, i, shared),
        _ => {
            if conn.state == State::Head {
                let Some(end) = conn.raw.windows(4).position(|w| w == b"\r\n\r\n") else {
                    if conn.raw.len() > 16 * 1024 {
                        conn.state = State::Dead;
                    }
                    return;
                };
                let head = String::from_utf8_lossy(&conn.raw[..end]).to_ascii_lowercase();
                let ok = if matches!(proto, Proto::NtfyWs | Proto::Autopush) {
                    head.starts_with("http/1.1 101") && head.contains(WS_ACCEPT)
                } else {
                    head.starts_with("http/1.1 200") || head.starts_with("http/1.0 200")
                };
                if !ok {
                    if shared.failed.load(Relaxed) < 3 {
                        eprintln!("subscriber {i}: {}", head.lines().next().unwrap_or(""));
                    }
                    conn.state = State::Dead;
                    return;
                }
                conn.chunked = head.contains("transfer-encoding: chunked");
                conn.raw.drain(..end + 4);
                conn.state = if proto != Proto::Autopush {
                    State::Ready
                } else {
                    let hello = wire::ws_frame(0x1, AUTOPUSH_HELLO);
                    if conn.send(&hello) {
                        State::AutopushHello
                    } else {
                        State::Dead
                    }
                };
            }
            if proto == Proto::Autopush {
                return process_autopush(conn, i, shared);
            }
            if matches!(proto, Proto::NtfyJson | Proto::NtfyWs | Proto::NextPush) {
                // Idle streams: the open event and keepalives (and the server's pings, which
                // need no answer) are dropped.
                conn.raw.clear();
                return;
            }
            dechunk(conn);
            events(conn, i, shared);
        }
    }
}

/// Moves the payload bytes of `raw` to `text`, taking chunked framing off if present.
fn dechunk(conn: &mut Conn) {
    if !conn.chunked {
        if conn.text.is_empty() {
            std::mem::swap(&mut conn.text, &mut conn.raw);
        } else {
            conn.text.extend_from_slice(&conn.raw);
            conn.raw.clear();
        }
        return;
    }
    if !conn.dechunk.feed(&mut conn.raw, &mut conn.text) {
        conn.state = State::Dead;
    }
}

/// Takes every complete event (`...\n\n`) off the front of `text`.
fn events(conn: &mut Conn, i: usize, shared: &Shared) {
    let mut at = 0;
    while let Some(end) = conn.text[at..].windows(2).position(|w| w == b"\n\n") {
        let block = &conn.text[at..at + end];
        at += end + 2;
        let mut data: Vec<u8> = Vec::new();
        for line in block.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if let Some(v) = line.strip_prefix(b"id:") {
                if let Some(id) = std::str::from_utf8(v)
                    .ok()
                    .and_then(|s| s.trim().parse::<u64>().ok())
                {
                    conn.last_id = id;
                }
            } else if let Some(v) = line.strip_prefix(b"data:") {
                data.extend_from_slice(v.strip_prefix(b" ").unwrap_or(v));
            }
        }
        // A Web Push body reaches an OpenPush client as `{"data":"<b64>","encoding":"base64"…}`.
        if wire::json_str(&data, "encoding").as_deref() == Some("base64") {
            data = wire::json_str(&data, "data")
                .and_then(|b| wire::base64_decode(&b))
                .unwrap_or_default();
        }
        if !data.is_empty() {
            record(&data, i, shared);
        }
    }
    conn.text.drain(..at);
    if conn.text.len() > MAX_EVENT_BYTES {
        conn.state = State::Dead;
    }
    if conn.text.is_empty() && conn.text.capacity() > 4096 {
        conn.text = Vec::new();
    }
}

fn process_mqtt(conn: &mut Conn, i: usize, shared: &Shared) {
    let mut at = 0;
    while let Some(((kind, body), used)) = wire::mqtt_take(&conn.raw[at..]) {
        at += used;
        match (&conn.state, kind & 0xF0) {
            (State::MqttConnack, 0x20) => {
                if body.get(1) != Some(&0) {
                    conn.state = State::Dead;
                    break;
                }
                let sub = wire::mqtt_subscribe(1, &format!("b/{i}"));
                if !conn.send(&sub) {
                    conn.state = State::Dead;
                    break;
                }
                conn.state = State::MqttSuback;
            }
            (State::MqttSuback, 0x90) => {
                conn.state = if body.get(2) == Some(&0x80) {
                    State::Dead
                } else {
                    State::Ready
                };
            }
            (State::Ready, 0x30) => {
                let tlen = u16::from_be_bytes([body[0], body[1]]) as usize;
                let qos = (kind >> 1) & 3;
                let start = 2 + tlen + if qos > 0 { 2 } else { 0 };
                if let Some(payload) = body.get(start..) {
                    record(payload, i, shared);
                }
            }
            _ => {}
        }
    }
    conn.raw.drain(..at);
}

/// autopush: the hello answer (status 200) makes the stream ready; the server's pings are
/// answered, as a user agent does (a silent one is closed after `ws_idle_timeout_secs`);
/// anything else is dropped.
fn process_autopush(conn: &mut Conn, i: usize, shared: &Shared) {
    let mut at = 0;
    while let Some(((kind, payload), used)) = wire::ws_take(&conn.raw[at..]) {
        at += used;
        match kind & 0x0F {
            0x1 if conn.state == State::AutopushHello => {
                let hello = wire::json_str(payload, "messageType").as_deref() == Some("hello");
                if hello && json_u64(payload, b"status") == Some(200) {
                    conn.state = State::Ready;
                } else {
                    if shared.failed.load(Relaxed) < 3 {
                        eprintln!("subscriber {i}: {}", String::from_utf8_lossy(payload));
                    }
                    conn.state = State::Dead;
                    break;
                }
            }
            0x8 => {
                conn.state = State::Dead;
                break;
            }
            0x9 => {
                let pong = wire::ws_frame(0xA, payload);
                if !conn.send(&pong) {
                    conn.state = State::Dead;
                    break;
                }
            }
            _ => {}
        }
    }
    conn.raw.drain(..at);
    if conn.raw.len() > MAX_EVENT_BYTES {
        conn.state = State::Dead;
    }
}

fn record(data: &[u8], i: usize, shared: &Shared) {
    let now = shared.now_ns();
    if json_u64(data, b"run") != Some(shared.run_id) {
        shared.stale.fetch_add(1, Relaxed);
        return;
    }
    let (Some(seq), Some(to), Some(t)) = (
        json_u64(data, b"seq"),
        json_u64(data, b"to"),
        json_u64(data, b"t"),
    ) else {
        shared.unknown.fetch_add(1, Relaxed);
        return;
    };
    if to != i as u64 {
        shared.misrouted.fetch_add(1, Relaxed);
        return;
    }
    let Some(slot) = shared.received.get(seq as usize) else {
        shared.unknown.fetch_add(1, Relaxed);
        return;
    };
    let before = slot.fetch_add(1, Relaxed);
    if before == 255 {
        slot.store(255, Relaxed);
    }
    if before == 0 {
        shared.delivered.fetch_add(1, Relaxed);
        shared
            .latencies_ns
            .lock()
            .expect("lock")
            .push(now.saturating_sub(t));
    }
}
