//! What the push doors' tests (`ntfy`, `webpush`, `matrix`) share: requests with a body of raw
//! bytes (and any `Host`), ntfy JSON objects, polls and live `/json` streams, and JSON text without
//! insignificant whitespace.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use miniserde::json::{Number, Value};
use openpush_wire::base64;
use openpush_wire::http::Head;

use super::http::{Response, open_get, read_more, send_raw};
use super::{Server, TIMEOUT, basic};

/// Any request with a body of raw bytes. `Host: test` unless `headers` name a `Host`.
pub fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut raw = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        raw.push_str("Host: test\r\n");
    }
    for (name, value) in headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    raw.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut raw = raw.into_bytes();
    raw.extend_from_slice(body);
    send_raw(addr, &raw)
}

/// A JSON object as a client parsed it, with its text.
#[derive(Debug)]
pub struct Obj {
    pub text: String,
    pub map: BTreeMap<String, Value>,
}

impl Obj {
    pub fn parse(text: &str) -> Obj {
        match miniserde::json::from_str::<Value>(text) {
            Ok(Value::Object(object)) => Obj {
                text: text.to_owned(),
                map: object.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            },
            _ => panic!("not a JSON object: {text:?}"),
        }
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.map.get(key)
    }

    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    pub fn strings(&self, key: &str) -> Vec<String> {
        match self.get(key) {
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => panic!("{key} holds {other:?} in {}", self.text),
                })
                .collect(),
            other => panic!("{key} is not an array but {other:?} in {}", self.text),
        }
    }

    /// The numeric part of an `op<N>` message id.
    pub fn id_number(&self) -> u64 {
        let id = self.str("id");
        id.strip_prefix("op")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("message id {id:?} is not op<number>"))
    }

    pub fn str(&self, key: &str) -> &str {
        match self.map.get(key) {
            Some(Value::String(s)) => s,
            other => panic!("{key} is not a string but {other:?} in {}", self.text),
        }
    }

    pub fn int(&self, key: &str) -> u64 {
        match self.map.get(key) {
            Some(Value::Number(Number::U64(n))) => *n,
            other => panic!(
                "{key} is not an unsigned integer but {other:?} in {}",
                self.text
            ),
        }
    }

    pub fn event(&self) -> &str {
        self.str("event")
    }

    /// The bytes of an ntfy message: `message`, base64-decoded if `encoding` says so.
    pub fn message_bytes(&self) -> Vec<u8> {
        let message = self.str("message");
        match self.map.get("encoding") {
            None => message.as_bytes().to_vec(),
            Some(Value::String(e)) if e == "base64" => super::webpush::b64_decode(message),
            Some(other) => panic!("unknown encoding {other:?} in {}", self.text),
        }
    }
}

/// A streaming ntfy response (`/<topics>/json…`) read line by line from a raw socket.
pub struct JsonStream {
    pub conn: TcpStream,
    pub status: u16,
    pub head: String,
    parsed_head: Head,
    /// The body so far, not yet taken.
    buf: Vec<u8>,
    /// A chunked body's bytes as they came, before [`dechunk`].
    raw: Option<Vec<u8>>,
    /// The last chunk came: the body is complete.
    pub ended: bool,
}

/// Moves the whole chunks at the front of `raw` to `body`; true once the last chunk came.
/// Strict, as a test of the server: every chunk is well formed and holds whole lines (an
/// event is never split across chunks, so a client reading in blocks sees each at once).
fn dechunk(raw: &mut Vec<u8>, body: &mut Vec<u8>) -> bool {
    loop {
        let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") else {
            return false;
        };
        let line = std::str::from_utf8(&raw[..eol]).expect("a chunk-size line");
        let size =
            usize::from_str_radix(line, 16).unwrap_or_else(|_| panic!("chunk size {line:?}"));
        if raw.len() < eol + 2 + size + 2 {
            return false;
        }
        let data = &raw[eol + 2..eol + 2 + size];
        assert_eq!(&raw[eol + 2 + size..eol + 4 + size], b"\r\n", "chunk end");
        if size == 0 {
            raw.drain(..eol + 4);
            return true;
        }
        assert!(
            data.ends_with(b"\n"),
            "a chunk that ends inside an event: {data:?}"
        );
        body.extend_from_slice(data);
        raw.drain(..eol + 4 + size);
    }
}

impl JsonStream {
    pub fn open(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> JsonStream {
        let opened = open_get(addr, path, headers, Duration::from_millis(50))
            .unwrap_or_else(|what| panic!("no response head for {path}: {what}"));
        let chunked = opened
            .head
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
        let mut stream = JsonStream {
            conn: opened.conn,
            status: opened.head.status,
            head: opened.head_text,
            parsed_head: opened.head,
            buf: Vec::new(),
            raw: None,
            ended: false,
        };
        if chunked {
            stream.raw = Some(opened.rest);
            stream.take_chunks();
        } else {
            stream.buf = opened.rest;
        }
        stream
    }

    fn take_chunks(&mut self) {
        if let Some(raw) = &mut self.raw {
            self.ended |= dechunk(raw, &mut self.buf);
        }
    }

    /// Reads more of the body; false once nothing came by `deadline` or the server closed.
    fn read_body(&mut self, deadline: Instant) -> bool {
        match &mut self.raw {
            None => read_more(&mut self.conn, &mut self.buf, deadline),
            Some(raw) => {
                let more = read_more(&mut self.conn, raw, deadline);
                self.take_chunks();
                more
            }
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.parsed_head.header(name)
    }

    /// The next `\n`-terminated line; None if nothing came within `wait` or the server closed.
    pub fn line_within(&mut self, wait: Duration) -> Option<String> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=end).collect();
                let line = String::from_utf8(line[..end].to_vec()).expect("UTF-8 line");
                assert!(!line.contains('\r'), "CR in a line: {line:?}");
                return Some(line);
            }
            if !self.read_body(deadline) {
                return None;
            }
        }
    }

    /// The next NDJSON object: never a blank line, always a JSON object.
    pub fn json_within(&mut self, wait: Duration) -> Option<Obj> {
        let line = self.line_within(wait)?;
        assert!(!line.is_empty(), "a blank line on an NDJSON stream");
        Some(Obj::parse(&line))
    }

    pub fn next_json(&mut self) -> Obj {
        self.json_within(TIMEOUT).expect("a JSON line")
    }

    /// The next message event, skipping keepalives.
    pub fn message(&mut self) -> Obj {
        loop {
            let o = self.next_json();
            match o.event() {
                "keepalive" => continue,
                "message" => return o,
                other => panic!("expected a message, got {other}: {}", o.text),
            }
        }
    }

    pub fn open_event(&mut self) -> Obj {
        let o = self.next_json();
        assert_eq!(o.event(), "open", "the first line must be the open event");
        o
    }

    /// Asserts that no message arrives within `wait` (keepalives are fine).
    pub fn assert_no_message(&mut self, wait: Duration) {
        let deadline = Instant::now() + wait;
        while let Some(o) = self.json_within(deadline.saturating_duration_since(Instant::now())) {
            assert_ne!(o.event(), "message", "unexpected message: {}", o.text);
        }
    }

    /// The remaining lines, once the server closed the stream (which it must, soon).
    pub fn lines_until_closed(&mut self) -> Vec<String> {
        assert!(
            self.closed_within(TIMEOUT),
            "the server did not close the stream"
        );
        let text = String::from_utf8(std::mem::take(&mut self.buf)).unwrap();
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "unterminated line: {text:?}"
        );
        text.lines().map(str::to_owned).collect()
    }

    /// True once the server has closed the stream (within `wait`), whatever it sent first.
    pub fn closed_within(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        while self.read_body(deadline) {}
        Instant::now() < deadline
    }

    /// Waits for the `open` event that starts a live stream.
    pub fn opened(&mut self) {
        let o = self.json_within(TIMEOUT).expect("the open event");
        assert_eq!(o.event(), "open", "{}", o.text);
    }

    /// Every line until the server closes the stream (which it must, soon).
    pub fn until_closed(&mut self) -> Vec<Obj> {
        let mut out = Vec::new();
        let deadline = Instant::now() + TIMEOUT;
        while let Some(o) = self.json_within(deadline.saturating_duration_since(Instant::now())) {
            out.push(o);
        }
        assert!(
            Instant::now() < deadline,
            "the server did not close the stream"
        );
        out
    }
}

/// `GET /<topic>/json?poll=1&since=all` as `auth`: every cached message of the topic.
pub fn poll(addr: SocketAddr, auth: &str, topic: &str) -> Vec<Obj> {
    let path = format!("/{topic}/json?poll=1&since=all");
    let mut stream = JsonStream::open(addr, &path, &[("Authorization", auth)]);
    assert_eq!(stream.status, 200, "{path}: {}", stream.head);
    let messages = stream.until_closed();
    for m in &messages {
        assert_eq!(
            m.event(),
            "message",
            "a poll holds messages only: {}",
            m.text
        );
        assert_eq!(m.str("topic"), topic, "{}", m.text);
    }
    messages
}

/// JSON text without insignificant whitespace (outside strings), key order kept: what a
/// server that passes JSON on "as it is" may send instead of the pretty-printed original.
pub fn compact_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_ascii_whitespace() {
            out.push(c);
        }
    }
    out
}

/// Random bytes from the operating system.
pub fn random_bytes(len: usize) -> Vec<u8> {
    let mut out = vec![0; len];
    getrandom::fill(&mut out).expect("getrandom");
    out
}

/// Standard base64 with padding, as the OpenPush stream carries opaque bodies.
pub fn b64(data: &[u8]) -> String {
    base64::encode(data)
}

/// A server with alice (the first user: an administrator) and bob; their auth headers.
pub fn alice_and_bob(name: &str, config: &str) -> (Server, String, String) {
    let s = Server::start_with(name, config);
    s.add_user("alice", "apw");
    s.add_user("bob", "bpw");
    (s, basic("alice", "apw"), basic("bob", "bpw"))
}
