//! HTTP/1.1 as a client speaks it over one blocking stream: a request written, a response
//! head read, its body framed by `Content-Length`, `Transfer-Encoding: chunked` or the
//! connection's end.
//!
//! Invariants: nothing read is unbounded (a head is at most [`MAX_HEAD_BYTES`], a chunk-size
//! line 1 KiB, a body what the caller allows); a read that fails (a timeout, say) leaves the
//! body reader where it was, so the caller may read again and lose nothing. Requests are
//! written with `Connection: close`: one exchange per connection, no pooling.

use std::fmt;
use std::io::{self, BufRead, Read, Write};

use crate::url::Url;

/// The longest response head read (status line and headers).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// The longest chunk-size or trailer line.
const MAX_LINE_BYTES: usize = 1024;

#[derive(Debug)]
pub enum Error {
    Io(io::Error),
    /// The connection ended before the head was complete.
    Closed,
    StatusLine,
    Header,
    TooLarge,
    Chunk,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "{e}"),
            Error::Closed => f.write_str("the server closed the connection without an answer"),
            Error::StatusLine => f.write_str("the answer is not HTTP/1.x"),
            Error::Header => f.write_str("the answer has a malformed header"),
            Error::TooLarge => f.write_str("the answer is too large"),
            Error::Chunk => f.write_str("the answer's chunked body is malformed"),
        }
    }
}

impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::Io(e)
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        match e {
            Error::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}

/// Writes a request for `url` with `Host`, `Connection: close`, the given headers and, for
/// a body or a `POST`/`PUT`, `Content-Length`.
pub fn write_request<W: Write>(
    w: &mut W,
    method: &str,
    url: &Url,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<()> {
    let mut head = format!(
        "{method} {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
        url.path, url.authority
    );
    for (name, value) in headers {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    if !body.is_empty() || method == "POST" || method == "PUT" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    w.write_all(&out)?;
    w.flush()
}

/// A response's status line and headers.
#[derive(Clone, Debug)]
pub struct Head {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first header of that name (case-insensitive), trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// How the body is delimited (RFC 9112 section 6.3, for answers to requests that are not
    /// `HEAD`).
    pub fn framing(&self) -> Result<Framing, Error> {
        if self.status < 200 || self.status == 204 || self.status == 304 {
            return Ok(Framing::Length(0));
        }
        if let Some(te) = self.header("transfer-encoding") {
            let last = te.rsplit(',').next().unwrap_or("").trim();
            return Ok(if last.eq_ignore_ascii_case("chunked") {
                Framing::Chunked
            } else {
                Framing::Close
            });
        }
        match self.header("content-length") {
            Some(n) => n.parse().map(Framing::Length).map_err(|_| Error::Header),
            None => Ok(Framing::Close),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    Length(u64),
    Chunked,
    /// Until the server closes the connection (an SSE stream, say).
    Close,
}

/// Reads one line into `line` and strips its LF or CRLF. A read that fails half-way (a
/// timeout) returns its error and leaves what it had in `line`, for the next call to finish.
fn read_line<R: BufRead>(r: &mut R, line: &mut Vec<u8>, max: usize) -> Result<(), Error> {
    loop {
        let available = r.fill_buf()?;
        if available.is_empty() {
            return Err(Error::Io(io::ErrorKind::UnexpectedEof.into()));
        }
        let (take, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        if line.len() + take > max {
            return Err(Error::TooLarge);
        }
        line.extend_from_slice(&available[..take]);
        r.consume(take);
        if done {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(());
        }
    }
}

/// Reads a response head. `1xx` interim answers are skipped.
pub fn read_head<R: BufRead>(r: &mut R) -> Result<Head, Error> {
    loop {
        let head = read_one_head(r)?;
        if !(100..200).contains(&head.status) {
            return Ok(head);
        }
    }
}

/// Reads one response head, a `1xx` interim one included: the `100 Continue` a client that
/// sent `Expect` waits for, or the `101 Switching Protocols` that starts a WebSocket.
pub fn read_one_head<R: BufRead>(r: &mut R) -> Result<Head, Error> {
    let mut total = 0;
    let mut next_line = |r: &mut R| -> Result<String, Error> {
        let mut line = Vec::new();
        match read_line(r, &mut line, MAX_HEAD_BYTES - total) {
            Err(Error::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(Error::Closed);
            }
            other => other?,
        }
        total += line.len() + 2;
        String::from_utf8(line).map_err(|_| Error::Header)
    };
    let status_line = next_line(r)?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    let code = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") || code.len() != 3 {
        return Err(Error::StatusLine);
    }
    let status = code.parse().map_err(|_| Error::StatusLine)?;
    let reason = parts.next().unwrap_or("").to_owned();
    let mut headers = Vec::new();
    loop {
        let line = next_line(r)?;
        if line.is_empty() {
            return Ok(Head {
                status,
                reason,
                headers,
            });
        }
        let (name, value) = line.split_once(':').ok_or(Error::Header)?;
        if name.is_empty() || name.contains([' ', '\t']) {
            return Err(Error::Header);
        }
        headers.push((name.to_owned(), value.trim().to_owned()));
    }
}

enum Chunk {
    Size(Vec<u8>),
    Data(u64),
    DataEnd(Vec<u8>),
    Trailer(Vec<u8>),
    Done,
}

/// A response body as a reader: it ends where the framing says.
pub struct Body<R> {
    inner: R,
    framing: BodyState,
}

enum BodyState {
    Length(u64),
    Chunked(Chunk),
    Close,
}

impl<R: BufRead> Body<R> {
    pub fn new(inner: R, framing: Framing) -> Body<R> {
        let framing = match framing {
            Framing::Length(n) => BodyState::Length(n),
            Framing::Chunked => BodyState::Chunked(Chunk::Size(Vec::new())),
            Framing::Close => BodyState::Close,
        };
        Body { inner, framing }
    }

    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// Reads the whole body, refusing one longer than `max` bytes.
    pub fn read_all(&mut self, max: usize) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = self.read_some(&mut buf)?;
            if n == 0 {
                return Ok(out);
            }
            if out.len() + n > max {
                return Err(Error::TooLarge);
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    fn read_chunked(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        let BodyState::Chunked(state) = &mut self.framing else {
            unreachable!("read_chunked is called for chunked bodies only");
        };
        loop {
            match state {
                Chunk::Size(line) => {
                    read_line(&mut self.inner, line, MAX_LINE_BYTES)?;
                    let text = std::str::from_utf8(line).map_err(|_| Error::Chunk)?;
                    let hex = text.split(';').next().unwrap_or("").trim();
                    if hex.is_empty() || hex.len() > 15 {
                        return Err(Error::Chunk);
                    }
                    let size = u64::from_str_radix(hex, 16).map_err(|_| Error::Chunk)?;
                    *state = if size == 0 {
                        Chunk::Trailer(Vec::new())
                    } else {
                        Chunk::Data(size)
                    };
                }
                Chunk::Data(left) => {
                    if buf.is_empty() {
                        return Ok(0);
                    }
                    let available = self.inner.fill_buf()?;
                    if available.is_empty() {
                        return Err(Error::Io(io::ErrorKind::UnexpectedEof.into()));
                    }
                    let n = available
                        .len()
                        .min(buf.len())
                        .min(usize::try_from(*left).unwrap_or(usize::MAX));
                    buf[..n].copy_from_slice(&available[..n]);
                    self.inner.consume(n);
                    *left -= n as u64;
                    if *left == 0 {
                        *state = Chunk::DataEnd(Vec::new());
                    }
                    return Ok(n);
                }
                Chunk::DataEnd(line) => {
                    read_line(&mut self.inner, line, MAX_LINE_BYTES)?;
                    if !line.is_empty() {
                        return Err(Error::Chunk);
                    }
                    *state = Chunk::Size(Vec::new());
                }
                Chunk::Trailer(line) => {
                    read_line(&mut self.inner, line, MAX_LINE_BYTES)?;
                    *state = if line.is_empty() {
                        Chunk::Done
                    } else {
                        Chunk::Trailer(Vec::new())
                    };
                }
                Chunk::Done => return Ok(0),
            }
        }
    }
}

impl<R: BufRead> Body<R> {
    /// Like [`Read::read`], with this module's errors.
    pub fn read_some(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        match &mut self.framing {
            BodyState::Length(left) => {
                if *left == 0 || buf.is_empty() {
                    return Ok(0);
                }
                let max = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                let n = self.inner.read(&mut buf[..max])?;
                if n == 0 {
                    return Err(Error::Io(io::ErrorKind::UnexpectedEof.into()));
                }
                *left -= n as u64;
                Ok(n)
            }
            BodyState::Chunked(_) => self.read_chunked(buf),
            BodyState::Close => Ok(self.inner.read(buf)?),
        }
    }
}

impl<R: BufRead> Read for Body<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(self.read_some(buf)?)
    }
}

/// A whole response, for exchanges that are not streams.
#[derive(Debug)]
pub struct Response {
    pub head: Head,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Writes one request on `stream` and reads the whole answer, its body at most
/// `max_body` bytes.
pub fn exchange<S: Read + Write>(
    stream: S,
    method: &str,
    url: &Url,
    headers: &[(&str, &str)],
    body: &[u8],
    max_body: usize,
) -> Result<Response, Error> {
    let mut reader = io::BufReader::new(stream);
    write_request(reader.get_mut(), method, url, headers, body)?;
    let head = read_head(&mut reader)?;
    let framing = head.framing()?;
    let body = Body::new(reader, framing).read_all(max_body)?;
    Ok(Response { head, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_of(raw: &[u8], framing: Framing) -> Result<Vec<u8>, Error> {
        Body::new(raw, framing).read_all(1 << 20)
    }

    #[test]
    fn reads_a_head_after_an_interim_answer() {
        let mut raw: &[u8] =
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTTL: 60\r\nLocation:  /message/3 \r\n\r\n";
        let interim = read_one_head(&mut &raw[..]).unwrap();
        assert_eq!((interim.status, interim.reason.as_str()), (100, "Continue"));
        let head = read_head(&mut raw).unwrap();
        assert_eq!((head.status, head.reason.as_str()), (201, "Created"));
        assert_eq!(head.header("location"), Some("/message/3"));
        assert_eq!(head.header("ttl"), Some("60"));
    }

    #[test]
    fn refuses_what_is_not_http() {
        assert!(matches!(
            read_head(&mut &b"SSH-2.0\r\n\r\n"[..]),
            Err(Error::StatusLine)
        ));
        assert!(matches!(read_head(&mut &b""[..]), Err(Error::Closed)));
        assert!(matches!(
            read_head(&mut &b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n"[..]),
            Err(Error::Header)
        ));
    }

    #[test]
    fn decodes_chunked_at_every_split() {
        let raw =
            b"4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-T: 1\r\n\r\n";
        assert_eq!(
            body_of(raw, Framing::Chunked).unwrap(),
            b"Wikipedia in\r\n\r\nchunks."
        );
        // One byte at a time through a reader that times out between bytes.
        struct Trickle<'a>(&'a [u8], bool);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.1 = !self.1;
                if self.1 {
                    return Err(io::ErrorKind::TimedOut.into());
                }
                let n = self.0.len().min(1).min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut body = Body::new(
            io::BufReader::with_capacity(1, Trickle(raw, false)),
            Framing::Chunked,
        );
        let mut out = Vec::new();
        let mut buf = [0u8; 3];
        loop {
            match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(out, b"Wikipedia in\r\n\r\nchunks.");
    }

    #[test]
    fn bounds_bodies() {
        assert!(matches!(
            body_of(b"zz\r\n", Framing::Chunked),
            Err(Error::Chunk)
        ));
        assert!(matches!(
            body_of(b"3\r\nabcX\r\n", Framing::Chunked),
            Err(Error::Chunk)
        ));
        assert_eq!(body_of(b"abcdef", Framing::Length(3)).unwrap(), b"abc");
        assert!(body_of(b"ab", Framing::Length(3)).is_err());
        assert!(matches!(
            Body::new(&b"abcdef"[..], Framing::Close).read_all(5),
            Err(Error::TooLarge)
        ));
    }

    #[test]
    fn writes_requests() {
        let url = Url::parse("http://h:81/push/t").unwrap();
        let mut out = Vec::new();
        write_request(&mut out, "POST", &url, &[("TTL", "60")], b"xy").unwrap();
        assert_eq!(
            out,
            b"POST /push/t HTTP/1.1\r\nHost: h:81\r\nConnection: close\r\nTTL: 60\r\nContent-Length: 2\r\n\r\nxy"
        );
    }
}
