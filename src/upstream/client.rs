//! One HTTPS connection to the upstream server, on the forwarder's thread: blocking I/O
//! over rustls' client, the server's certificate checked against the configured CA file.
//!
//! Invariants:
//! - every step (resolving aside, which the system resolver bounds), connecting, each read
//!   and each write, fails after the configured timeout;
//! - an answer is read whole (its head at most [`MAX_HEAD_BYTES`], its body at most
//!   [`MAX_BODY_BYTES`]) before the connection carries another request; a connection whose
//!   answer was not read whole, or that asked to close, is never used again;
//! - a connection idle for [`MAX_IDLE`] is not reused: servers close theirs after about a
//!   minute, and a request on a half-closed one would be lost.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

/// The longest answer head read.
const MAX_HEAD_BYTES: usize = 8 * 1024;
/// The longest answer body read (ntfy answers with the poll request's JSON, ~200 bytes).
const MAX_BODY_BYTES: usize = 64 * 1024;
/// Header lines of an answer.
const MAX_HEADERS: usize = 32;
/// How long an idle connection is kept for the next request.
const MAX_IDLE: Duration = Duration::from_secs(30);

/// Where the requests go, from `upstream_base_url`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    host: String,
    port: u16,
    /// The `Host` header: the host, and the port unless it is 443.
    authority: String,
    /// The base URL's path (`""`, or `/ntfy`); a request's path follows it.
    prefix: String,
}

impl Target {
    /// Parses an `https://host[:port][/path]` URL (as `config` validated it).
    pub fn parse(base_url: &str) -> Result<Target, String> {
        let bad = || format!("{base_url:?} is not an https:// address");
        let rest = base_url.strip_prefix("https://").ok_or_else(bad)?;
        let (authority, prefix) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (host, port) = match authority.strip_prefix('[') {
            Some(v6) => {
                let (host, after) = v6.split_once(']').ok_or_else(bad)?;
                (host, after.strip_prefix(':'))
            }
            None => match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            },
        };
        let port = match port {
            Some(port) => port.parse().map_err(|_| bad())?,
            None => 443,
        };
        if host.is_empty() {
            return Err(bad());
        }
        Ok(Target {
            host: host.to_owned(),
            port,
            authority: authority.to_owned(),
            prefix: prefix.trim_end_matches('/').to_owned(),
        })
    }
}

/// Why a request got no answer, or none that counts.
#[derive(Debug)]
pub enum Failure {
    /// The name did not resolve, or no address took the connection in time.
    Connect(String),
    /// The server's certificate is not one the CA file vouches for (or not for its name).
    Certificate(String),
    /// The connection failed or timed out after it was made.
    Io(io::Error),
    /// The answer is not HTTP/1.x or is over the limits.
    Answer(&'static str),
}

impl Failure {
    /// Whether trying again later may help (a certificate stays wrong).
    pub fn transient(&self) -> bool {
        !matches!(self, Failure::Certificate(_))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Connect(e) => write!(f, "cannot connect: {e}"),
            Failure::Certificate(e) => write!(f, "certificate refused: {e}"),
            Failure::Io(e) => write!(f, "{e}"),
            Failure::Answer(e) => write!(f, "bad answer: {e}"),
        }
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Failure {
        match e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            Some(rustls::Error::InvalidCertificate(why)) => Failure::Certificate(why.to_string()),
            _ => Failure::Io(e),
        }
    }
}

type Connection = StreamOwned<ClientConnection, TcpStream>;

/// A client of one upstream server, keeping one connection open between requests.
pub struct Client {
    target: Target,
    tls: Arc<ClientConfig>,
    timeout: Duration,
    /// The open connection and when its last answer was read.
    open: Option<(Connection, Instant)>,
}

impl Client {
    /// A client that connects when it first sends.
    pub fn new(target: Target, tls: Arc<ClientConfig>, timeout: Duration) -> Client {
        Client {
            target,
            tls,
            timeout,
            open: None,
        }
    }

    /// Sends `POST <prefix><path>` with `headers` (each line ending in CRLF) and no body;
    /// returns the answer's status. A kept connection that turns out closed before any
    /// answer is replaced by a new one, once.
    pub fn post(&mut self, path: &str, headers: &str) -> Result<u16, Failure> {
        let request = format!(
            "POST {}{path} HTTP/1.1\r\nHost: {}\r\n{headers}Content-Length: 0\r\n\r\n",
            self.target.prefix, self.target.authority
        );
        let kept = self.open.take().filter(|(_, at)| at.elapsed() < MAX_IDLE);
        if let Some((mut conn, _)) = kept {
            match exchange(&mut conn, request.as_bytes()) {
                Ok(Some(answer)) => return Ok(self.keep(conn, answer)),
                Ok(None) => log::debug!("upstream closed the kept connection; connecting again"),
                Err(e) => {
                    log::debug!("the kept upstream connection failed ({e}); connecting again")
                }
            }
        }
        let mut conn = self.connect()?;
        match exchange(&mut conn, request.as_bytes())? {
            Some(answer) => Ok(self.keep(conn, answer)),
            None => Err(Failure::Answer("closed without an answer")),
        }
    }

    fn keep(&mut self, conn: Connection, answer: Answer) -> u16 {
        if answer.reusable {
            self.open = Some((conn, Instant::now()));
        }
        answer.status
    }

    fn connect(&self) -> Result<Connection, Failure> {
        let Target { host, port, .. } = &self.target;
        let addrs = (host.as_str(), *port)
            .to_socket_addrs()
            .map_err(|e| Failure::Connect(format!("{host}: {e}")))?;
        let mut last = format!("{host} has no address");
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, self.timeout) {
                Ok(tcp) => {
                    tcp.set_read_timeout(Some(self.timeout))?;
                    tcp.set_write_timeout(Some(self.timeout))?;
                    tcp.set_nodelay(true)?;
                    let name = ServerName::try_from(host.clone())
                        .map_err(|e| Failure::Connect(format!("{host}: {e}")))?;
                    let tls = ClientConnection::new(self.tls.clone(), name)
                        .map_err(|e| Failure::Connect(e.to_string()))?;
                    return Ok(StreamOwned::new(tls, tcp));
                }
                Err(e) => last = format!("{addr}: {e}"),
            }
        }
        Err(Failure::Connect(last))
    }
}

/// What an answer said, and whether its connection may carry another request.
struct Answer {
    status: u16,
    reusable: bool,
}

/// Writes `request` and reads the whole answer; `None` when the connection ended before
/// any byte of one (a kept connection the server had closed).
fn exchange(conn: &mut Connection, request: &[u8]) -> Result<Option<Answer>, Failure> {
    conn.write_all(request)?;
    conn.flush()?;
    let mut buf = Vec::with_capacity(1024);
    let (status, framing, head_len) = loop {
        if read_some(conn, &mut buf)? == 0 {
            if buf.is_empty() {
                return Ok(None);
            }
            return Err(Failure::Answer("closed within the head"));
        }
        if let Some(head) = parse_head(&buf)? {
            break head;
        }
        if buf.len() > MAX_HEAD_BYTES {
            return Err(Failure::Answer("head too long"));
        }
    };
    buf.drain(..head_len);
    let reusable = read_body(conn, buf, framing)?;
    Ok(Some(Answer { status, reusable }))
}

/// How an answer's body ends.
#[derive(Clone, Copy)]
enum Framing {
    Length(usize),
    Chunked,
    /// At the end of the connection (or `Connection: close`): read up to the limit, then
    /// the connection is dropped.
    Close,
}

/// The status, the body's framing and the head's length, once the head is complete.
fn parse_head(buf: &[u8]) -> Result<Option<(u16, Framing, usize)>, Failure> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(Failure::Answer("not an HTTP/1.x answer")),
    };
    let status = response.code.unwrap_or(0);
    let mut framing = Framing::Close;
    let mut close = response.version == Some(0);
    for header in response.headers.iter() {
        let value = std::str::from_utf8(header.value).unwrap_or("").trim();
        if header.name.eq_ignore_ascii_case("content-length") {
            let length = value.parse().map_err(|_| Failure::Answer("bad length"))?;
            framing = Framing::Length(length);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            framing = Framing::Chunked;
        } else if header.name.eq_ignore_ascii_case("connection") {
            close |= value.eq_ignore_ascii_case("close");
        }
    }
    if close || matches!(framing, Framing::Length(n) if n > MAX_BODY_BYTES) {
        framing = Framing::Close;
    }
    if status == 204 || status == 304 || (100..200).contains(&status) {
        framing = Framing::Length(0);
    }
    Ok(Some((status, framing, len)))
}

/// Reads the body that starts in `buf`; whether the connection can carry another request.
fn read_body(conn: &mut Connection, mut buf: Vec<u8>, framing: Framing) -> Result<bool, Failure> {
    match framing {
        Framing::Length(length) => {
            while buf.len() < length {
                if read_some(conn, &mut buf)? == 0 {
                    return Err(Failure::Answer("closed within the body"));
                }
            }
            Ok(buf.len() == length)
        }
        Framing::Chunked => loop {
            match chunked_end(&buf)? {
                Some(end) => return Ok(end == buf.len()),
                None if buf.len() > MAX_BODY_BYTES => return Err(Failure::Answer("body too long")),
                None if read_some(conn, &mut buf)? == 0 => {
                    return Err(Failure::Answer("closed within the body"));
                }
                None => {}
            }
        },
        Framing::Close => {
            while buf.len() <= MAX_BODY_BYTES && read_some(conn, &mut buf)? > 0 {}
            Ok(false)
        }
    }
}

/// Where a chunked body in `buf` ends (after its last chunk and empty trailer), once it is
/// all there.
fn chunked_end(buf: &[u8]) -> Result<Option<usize>, Failure> {
    let mut at = 0;
    loop {
        let (size_len, size) = match httparse::parse_chunk_size(&buf[at..]) {
            Ok(httparse::Status::Complete(found)) => found,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err(Failure::Answer("bad chunk")),
        };
        at += size_len;
        if size == 0 {
            // No trailers are expected: the empty line ends the body.
            return Ok((buf.len() >= at + 2).then_some(at + 2));
        }
        let next = usize::try_from(size)
            .ok()
            .and_then(|size| at.checked_add(size)?.checked_add(2))
            .ok_or(Failure::Answer("bad chunk"))?;
        if buf.len() < next {
            return Ok(None);
        }
        at = next;
    }
}

/// Reads what comes into `buf`; 0 at the end of the connection (a close without TLS's
/// `close_notify` counts as one: the answer's framing tells whether it was whole).
fn read_some(conn: &mut Connection, buf: &mut Vec<u8>) -> Result<usize, Failure> {
    let mut chunk = [0u8; 4096];
    match conn.read(&mut chunk) {
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Ok(n)
        }
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_name_host_port_and_path() {
        let t = Target::parse("https://ntfy.sh").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.prefix.as_str()),
            ("ntfy.sh", 443, "")
        );
        assert_eq!(t.authority, "ntfy.sh");
        let t = Target::parse("https://localhost:8443/ntfy").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("localhost", 8443));
        assert_eq!(
            (t.authority.as_str(), t.prefix.as_str()),
            ("localhost:8443", "/ntfy")
        );
        let t = Target::parse("https://[::1]:9").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 9));
        assert!(Target::parse("https://host:port").is_err());
        assert!(Target::parse("http://ntfy.sh").is_err());
    }

    #[test]
    fn heads_give_status_and_framing() {
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        let (status, framing, len) = parse_head(head).unwrap().unwrap();
        assert_eq!((status, len), (200, head.len() - 5));
        assert!(matches!(framing, Framing::Length(5)));
        let head = b"HTTP/1.1 429 Too Many\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(matches!(
            parse_head(head).unwrap(),
            Some((429, Framing::Chunked, _))
        ));
        let head = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n";
        assert!(matches!(
            parse_head(head).unwrap(),
            Some((200, Framing::Close, _))
        ));
        assert!(parse_head(b"HTTP/1.1 200 OK\r\n").unwrap().is_none());
        assert!(parse_head(b"SSH-2.0-x\r\n\r\n").is_err());
    }

    #[test]
    fn a_chunked_body_ends_after_its_last_chunk() {
        assert_eq!(chunked_end(b"3\r\nabc\r\n0\r\n\r\n").unwrap(), Some(13));
        assert_eq!(chunked_end(b"3\r\nabc\r\n0\r\n").unwrap(), None);
        assert_eq!(chunked_end(b"3\r\nab").unwrap(), None);
        assert!(chunked_end(b"zz\r\n").is_err());
    }
}
