//! HTTP/1.1 as the tests speak it: requests written as raw bytes, so that a test can send
//! anything, and answers read as a client reads them, by `openpush-wire` (heads, bodies
//! framed by `Content-Length`, chunks or the close). Sockets that a test reads from have a
//! short read timeout; every read here ends at a deadline, never blocks past it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use openpush_wire::http::{self, Framing, Head};
use openpush_wire::url::Url;
use openpush_wire::{base64, json};

use super::TIMEOUT;

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Names in lower case, values trimmed, in the order sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    fn from_wire(head: Head, body: Vec<u8>) -> Response {
        let headers = head
            .headers
            .into_iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value))
            .collect();
        Response {
            status: head.status,
            headers,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A top-level string or number field of a JSON object body, as text.
    pub fn json_field(&self, field: &str) -> String {
        json_field(&self.text(), field).unwrap_or_else(|| panic!("no {field} in {}", self.text()))
    }

    /// Asserts ntfy's error shape, `{"code":…,"http":…,"error":…}`, with this code.
    pub fn assert_ntfy_error(&self, status: u16, code: u32) {
        assert_eq!(self.status, status, "{}", self.text());
        let body = self.text();
        assert!(
            body.starts_with(&format!("{{\"code\":{code},\"http\":{status},\"error\":")),
            "{body}"
        );
        assert!(!body.contains("\"detail\""), "{body}");
        assert!(self.header("content-type").unwrap_or("").contains("json"));
    }

    /// Asserts an error of this status in the form of the door that answered: OpenPush's
    /// problem JSON, or ntfy's `{"code","http","error"}` on the ntfy door's routes.
    pub fn assert_error(&self, status: u16) {
        if self.text().starts_with("{\"code\":") {
            assert_eq!(self.status, status, "{}", self.text());
            assert!(
                self.text().contains(&format!("\"http\":{status},")),
                "{}",
                self.text()
            );
            assert!(self.header("content-type").unwrap_or("").contains("json"));
        } else {
            self.assert_openpush_error(status);
        }
    }

    /// Asserts the OpenPush error shape.
    pub fn assert_openpush_error(&self, status: u16) {
        assert_eq!(self.status, status, "{}", self.text());
        let body = self.text();
        for field in ["\"status\":", "\"title\":", "\"detail\":", "\"type\":"] {
            assert!(body.contains(field), "error body lacks {field}: {body}");
        }
        assert!(body.contains(&format!("\"status\":{status}")), "{body}");
        assert!(self.header("content-type").unwrap_or("").contains("json"));
    }
}

/// The value of the first `"field":` in JSON text, at any depth (an id in a list, a field of
/// an event's `data`): a string unescaped, anything else as its raw text. The key is found by
/// its text, as the tests' look-ups need; the value is read by the wire's JSON scanner.
pub fn json_field(text: &str, field: &str) -> Option<String> {
    let at = text.find(&format!("{}:", json::quote(field)))?;
    // From the key on, the text is an object's first member as far as the scanner reads it.
    let member = format!("{{{}", &text[at..]);
    let raw = json::field(&member, field)?;
    Some(json::string(raw).unwrap_or_else(|| raw.to_owned()))
}

pub fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::encode(format!("{user}:{password}").as_bytes())
    )
}

/// A request as the wire's client writes it (`Host: test`, `Connection: close`, a
/// `Content-Length` for a body, a `POST` or a `PUT`), sent by [`send_raw`].
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Response {
    let url = Url {
        host: addr.ip().to_string(),
        port: addr.port(),
        authority: "test".to_owned(),
        path: path.to_owned(),
    };
    let mut raw = Vec::new();
    http::write_request(&mut raw, method, &url, headers, body.as_bytes()).expect("a Vec");
    send_raw(addr, &raw)
}

/// Sends raw bytes and reads one response until the server closes.
pub fn send_raw(addr: SocketAddr, raw: &[u8]) -> Response {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(TIMEOUT)).unwrap();
    conn.write_all(raw).unwrap();
    let mut data = Vec::new();
    let _ = conn.read_to_end(&mut data);
    parse_response(&data)
        .unwrap_or_else(|| panic!("unparsable response: {:?}", String::from_utf8_lossy(&data)))
}

/// The response at the start of `data` (a `1xx` one on its own), `None` unless it is
/// complete HTTP/1.x.
pub fn parse_response(data: &[u8]) -> Option<Response> {
    response_at(data).map(|(response, _)| response)
}

/// The complete response at the start of `data` and how many bytes it took: its body framed
/// by `Content-Length` or chunked, or (a body delimited by the close) the rest of `data`.
pub fn response_at(data: &[u8]) -> Option<(Response, usize)> {
    let (head, head_len) = head_at(data).ok()?;
    let mut body = http::Body::new(&data[head_len..], head.framing().ok()?);
    let bytes = body.read_all(usize::MAX).ok()?;
    let len = data.len() - body.get_ref().len();
    Some((Response::from_wire(head, bytes), len))
}

/// The response head at the start of `data` (a `1xx` one too) and its length in bytes;
/// `Err(Closed)` while it is incomplete.
fn head_at(data: &[u8]) -> Result<(Head, usize), http::Error> {
    let mut rest = data;
    let head = http::read_one_head(&mut rest)?;
    Ok((head, data.len() - rest.len()))
}

/// A `GET` whose answer a test reads as it comes (a stream, an upgrade): the connection,
/// the response head and its text, and the bytes that came after the head.
pub struct Opened {
    pub conn: TcpStream,
    pub head: Head,
    pub head_text: String,
    pub rest: Vec<u8>,
}

/// Connects, sets the read timeout to `poll` (how often a read looks at its deadline), sends
/// `GET path` with `headers` (and `Host: test` unless they name a `Host`) and reads the
/// response head. `Err` with what came if no head did within [`TIMEOUT`].
pub fn open_get(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    poll: Duration,
) -> Result<Opened, String> {
    let mut conn = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    conn.set_read_timeout(Some(poll)).unwrap();
    let mut raw = format!("GET {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        raw.push_str("Host: test\r\n");
    }
    for (name, value) in headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    raw.push_str("\r\n");
    conn.write_all(raw.as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let mut rest = Vec::new();
    let (head, head_text) = read_head(&mut conn, &mut rest, Instant::now() + TIMEOUT)?;
    Ok(Opened {
        conn,
        head,
        head_text,
        rest,
    })
}

/// Reads from `stream` into `buf` until a response head is complete and takes it out of
/// `buf`: the head, and its text without the blank line. `Err` with what came, if no head
/// did by the deadline or what came is not one.
pub fn read_head(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    deadline: Instant,
) -> Result<(Head, String), String> {
    loop {
        match head_at(buf) {
            Ok((head, len)) => {
                let text = String::from_utf8_lossy(&buf[..len]).trim_end().to_owned();
                buf.drain(..len);
                return Ok((head, text));
            }
            Err(http::Error::Closed) if read_more(stream, buf, deadline) => {}
            Err(http::Error::Closed) => return Err(format!("{:?}", String::from_utf8_lossy(buf))),
            Err(e) => return Err(format!("{e}: {:?}", String::from_utf8_lossy(buf))),
        }
    }
}

/// Reads from `stream` into `buf` until the body at its start, framed as `framing` says, is
/// complete, the server closed or the deadline passed: the body, or as much of it as came.
pub fn read_body(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    framing: Framing,
    deadline: Instant,
) -> Vec<u8> {
    loop {
        let mut body = Vec::new();
        let complete = http::Body::new(&buf[..], framing)
            .read_to_end(&mut body)
            .is_ok();
        if (complete && framing != Framing::Close) || !read_more(stream, buf, deadline) {
            return body;
        }
    }
}

/// Reads what `stream` has into `buf`; false at the deadline or once the peer closed.
/// The stream must have a short read timeout, so that the deadline is checked.
pub fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>, deadline: Instant) -> bool {
    let mut chunk = [0u8; 65536];
    while Instant::now() < deadline {
        match stream.read(&mut chunk) {
            Ok(0) => return false,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return true;
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return false,
        }
    }
    false
}

/// Reads from `stream` into `buf` until the peer closes; true if it closed within `wait`.
pub fn closed_within(stream: &mut TcpStream, buf: &mut Vec<u8>, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    while read_more(stream, buf, deadline) {}
    Instant::now() < deadline
}
