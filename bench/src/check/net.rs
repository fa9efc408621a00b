//! Blocking sockets to the server under test (127.0.0.1 only): a keep-alive HTTP/1.1
//! client for posts and setup, and a stream connection for subscribers that reads a
//! response head and then raw bytes in small steps, so that a subscriber can stop after any
//! event and drop the socket with what is left unread, as a phone losing its network does.
//! Parsers take one SSE event, one line or one WebSocket frame at a time off a buffer.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use super::cluster::{Node, Picker};
use crate::wire;

/// How long one read waits before the caller looks at its clocks and flags again.
pub const TICK: Duration = Duration::from_millis(50);

pub fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    wire::check_loopback(&addr);
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    Ok(s)
}

/// Whether a kept-alive connection is still usable: open, and nothing unasked-for waiting
/// in it (a peek of one byte, MSG_DONTWAIT: EOF or bytes mean it is not).
fn reusable(s: &TcpStream) -> bool {
    let mut byte = 0u8;
    // SAFETY: recv of at most one byte into a byte we own.
    let n = unsafe {
        libc::recv(
            s.as_raw_fd(),
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    n < 0 && std::io::Error::last_os_error().kind() == ErrorKind::WouldBlock
}

pub struct Response {
    pub status: u16,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Why a request has no answer.
#[derive(Debug)]
pub enum Failed {
    /// Nothing reached the server (no connection).
    NotSent(io::Error),
    /// The request went out (or may have) and no whole answer came back.
    Unknown(io::Error),
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failed::NotSent(e) => write!(f, "not sent: {e}"),
            Failed::Unknown(e) => write!(f, "no answer: {e}"),
        }
    }
}

/// A keep-alive client; each new connection goes to the node its picker chooses.
pub struct Client {
    nodes: Picker,
    /// The node of the current (or last tried) connection.
    node: Node,
    host: String,
    conn: Option<TcpStream>,
    buf: Vec<u8>,
    timeout: Duration,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

pub struct Head {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn parse_head(bytes: &[u8]) -> Head {
    let text = String::from_utf8_lossy(bytes);
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Head { status, headers }
}

impl Client {
    /// A client that names `host` in its requests.
    pub fn new(host: &str, mut nodes: Picker, timeout: Duration) -> Client {
        Client {
            node: nodes.pick(),
            nodes,
            host: host.to_owned(),
            conn: None,
            buf: Vec::new(),
            timeout,
        }
    }

    /// The node of the last request's connection.
    pub fn node(&self) -> u16 {
        self.node.index
    }

    pub fn close(&mut self) {
        self.conn = None;
        self.buf.clear();
    }

    fn fill(&mut self) -> io::Result<()> {
        let mut tmp = [0u8; 16384];
        let conn = self.conn.as_mut().ok_or(ErrorKind::NotConnected)?;
        let n = conn.read(&mut tmp)?;
        if n == 0 {
            return Err(io::Error::new(ErrorKind::UnexpectedEof, "server closed"));
        }
        self.buf.extend_from_slice(&tmp[..n]);
        Ok(())
    }

    /// Sends one request and reads its answer. A kept connection that the server closed
    /// meanwhile (a restart) is noticed before the request is written, so that the
    /// request goes out on a new one instead of being lost unanswered. A new connection
    /// goes to the next node the picker chooses (a dead one: `NotSent`); after a failure,
    /// to another node.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response, Failed> {
        let leave = self.nodes.leave();
        if self.conn.as_ref().is_some_and(|c| leave || !reusable(c)) {
            self.close();
        }
        if self.conn.is_none() {
            self.node = self.nodes.pick();
            match connect(self.node.addr, self.timeout) {
                Ok(c) => self.conn = Some(c),
                Err(e) => {
                    self.nodes.shun(self.node);
                    return Err(Failed::NotSent(e));
                }
            }
            self.buf.clear();
        }
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.host);
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        let sent = self.conn.as_mut().expect("connected").write_all(&bytes);
        let result = sent.and_then(|()| self.read_response());
        match result {
            Ok((r, close)) => {
                if close {
                    self.close();
                }
                Ok(r)
            }
            Err(e) => {
                self.close();
                self.nodes.shun(self.node);
                Err(Failed::Unknown(e))
            }
        }
    }

    fn read_response(&mut self) -> io::Result<(Response, bool)> {
        let deadline = Instant::now() + self.timeout;
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            if Instant::now() > deadline {
                return Err(io::Error::new(ErrorKind::TimedOut, "no answer in time"));
            }
            self.fill()?;
        };
        let head = parse_head(&self.buf[..head_end]);
        self.buf.drain(..head_end);
        let close = head
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let body = if let Some(len) = head.header("content-length") {
            let len: usize = len
                .parse()
                .map_err(|_| io::Error::new(ErrorKind::InvalidData, "bad length"))?;
            while self.buf.len() < len {
                self.fill()?;
            }
            self.buf.drain(..len).collect()
        } else if head
            .header("transfer-encoding")
            .is_some_and(|v| v.contains("chunked"))
        {
            let mut d = wire::Dechunk::default();
            let mut body = Vec::new();
            let mut raw = std::mem::take(&mut self.buf);
            while d.feed(&mut raw, &mut body) {
                let mut tmp = [0u8; 16384];
                let n = self
                    .conn
                    .as_mut()
                    .ok_or(ErrorKind::NotConnected)?
                    .read(&mut tmp)?;
                if n == 0 {
                    return Err(io::Error::new(ErrorKind::UnexpectedEof, "server closed"));
                }
                raw.extend_from_slice(&tmp[..n]);
            }
            self.buf = raw;
            body
        } else if head.status == 204 || head.status == 304 || head.status < 200 {
            Vec::new()
        } else {
            // Close-delimited.
            loop {
                match self.fill() {
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::UnexpectedEof => break,
                    Err(e) => return Err(e),
                }
            }
            std::mem::take(&mut self.buf)
        };
        Ok((
            Response {
                status: head.status,
                headers: head.headers,
                body,
            },
            close,
        ))
    }
}

/// A subscriber's connection once its response head is read.
pub struct StreamConn {
    pub sock: TcpStream,
    /// The node it is connected to.
    pub node: u16,
    /// Read from the socket, not yet taken by a parser.
    pub buf: Vec<u8>,
    chunked: bool,
    dechunk: wire::Dechunk,
    raw: Vec<u8>,
}

pub enum Fill {
    /// New bytes in `buf`.
    Data,
    /// Nothing within one tick.
    Idle,
    /// The server closed the connection or it broke.
    Closed,
}

impl StreamConn {
    /// Connects to `node`, sends `request` and reads the response head (within `timeout`).
    pub fn open(
        node: Node,
        request: &[u8],
        timeout: Duration,
    ) -> Result<(StreamConn, Head), Failed> {
        let mut sock = connect(node.addr, TICK).map_err(Failed::NotSent)?;
        sock.write_all(request).map_err(Failed::Unknown)?;
        let deadline = Instant::now() + timeout;
        let mut buf = Vec::new();
        let head_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            if Instant::now() > deadline || buf.len() > 65536 {
                return Err(Failed::Unknown(io::Error::new(
                    ErrorKind::TimedOut,
                    "no response head",
                )));
            }
            let mut tmp = [0u8; 16384];
            match sock.read(&mut tmp) {
                Ok(0) => {
                    return Err(Failed::Unknown(io::Error::new(
                        ErrorKind::UnexpectedEof,
                        "closed before the head",
                    )))
                }
                Ok(n) => buf.extend_from_slice(&tmp[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(Failed::Unknown(e)),
            }
        };
        let head = parse_head(&buf[..head_end]);
        buf.drain(..head_end);
        let chunked = head
            .header("transfer-encoding")
            .is_some_and(|v| v.contains("chunked"));
        let mut conn = StreamConn {
            sock,
            node: node.index,
            buf: Vec::new(),
            chunked,
            dechunk: wire::Dechunk::default(),
            raw: Vec::new(),
        };
        conn.take_in(buf);
        Ok((conn, head))
    }

    fn take_in(&mut self, bytes: Vec<u8>) {
        if self.chunked {
            self.raw.extend_from_slice(&bytes);
            self.dechunk.feed(&mut self.raw, &mut self.buf);
        } else {
            self.buf.extend_from_slice(&bytes);
        }
    }

    /// Reads what arrives within one tick.
    pub fn fill(&mut self) -> Fill {
        let mut tmp = vec![0u8; 65536];
        match self.sock.read(&mut tmp) {
            Ok(0) => Fill::Closed,
            Ok(n) => {
                tmp.truncate(n);
                self.take_in(tmp);
                Fill::Data
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                Fill::Idle
            }
            Err(_) => Fill::Closed,
        }
    }

    pub fn send(&mut self, bytes: &[u8]) -> bool {
        self.sock.write_all(bytes).is_ok()
    }
}

/// One Server-Sent Event.
#[derive(Default, Debug)]
pub struct SseEvent {
    pub event: String,
    pub id: Option<String>,
    pub data: Vec<u8>,
    /// A comment or `retry:` only.
    pub empty: bool,
}

/// Takes one complete SSE event (up to a blank line) off the front of `buf`.
pub fn take_sse(buf: &mut Vec<u8>) -> Option<SseEvent> {
    let end = find(buf, b"\n\n")?;
    let block: Vec<u8> = buf.drain(..end + 2).collect();
    let mut ev = SseEvent::default();
    let mut data_lines = 0;
    for line in block[..end].split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.starts_with(b":") {
            continue;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"event" => ev.event = String::from_utf8_lossy(value).into_owned(),
            b"id" => ev.id = Some(String::from_utf8_lossy(value).into_owned()),
            b"data" => {
                if data_lines > 0 {
                    ev.data.push(b'\n');
                }
                ev.data.extend_from_slice(value);
                data_lines += 1;
            }
            _ => {}
        }
    }
    ev.empty = data_lines == 0 && ev.id.is_none();
    Some(ev)
}

/// Takes one line (without its `\n`) off the front of `buf`.
pub fn take_line(buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let end = buf.iter().position(|&b| b == b'\n')?;
    let mut line: Vec<u8> = buf.drain(..end + 1).collect();
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Some(line)
}

/// One server WebSocket frame: (opcode, FIN, payload).
pub fn take_frame(buf: &mut Vec<u8>) -> Option<(u8, bool, Vec<u8>)> {
    let ((first, payload), used) = wire::ws_take(buf)?;
    let out = (first & 0x0F, first & 0x80 != 0, payload.to_vec());
    buf.drain(..used);
    Some(out)
}

/// The upgrade headers of RFC 6455 with one fixed key (its accept value is checked by
/// status only: the bench needs no SHA-1).
pub const WS_UPGRADE: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

/// Standard or URL-safe base64, padded or not.
pub fn base64_any(text: &str) -> Option<Vec<u8>> {
    let std: String = text
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    wire::base64_decode(&std)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_events_one_at_a_time() {
        let mut buf = b"retry: 5000\n\nid: 7\ndata: {\"a\":1}\n\n: keepalive\n\nevent: message\ndata: x\ndata: y\n\nid: 9\nda".to_vec();
        assert!(take_sse(&mut buf).unwrap().empty);
        let e = take_sse(&mut buf).unwrap();
        assert_eq!(
            (e.id.as_deref(), &e.data[..]),
            (Some("7"), &b"{\"a\":1}"[..])
        );
        assert!(take_sse(&mut buf).unwrap().empty);
        let e = take_sse(&mut buf).unwrap();
        assert_eq!((e.event.as_str(), &e.data[..]), ("message", &b"x\ny"[..]));
        assert!(take_sse(&mut buf).is_none());
        assert_eq!(buf, b"id: 9\nda");
    }

    #[test]
    fn lines_and_base64() {
        let mut buf = b"{\"a\":1}\r\n{\"b\"".to_vec();
        assert_eq!(take_line(&mut buf).unwrap(), b"{\"a\":1}");
        assert!(take_line(&mut buf).is_none());
        assert_eq!(base64_any("-_8").unwrap(), vec![0xfb, 0xff]);
        assert_eq!(base64_any("+/8=").unwrap(), vec![0xfb, 0xff]);
    }
}
