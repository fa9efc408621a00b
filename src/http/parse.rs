//! Request parsing over httparse: pure functions of the bytes received so far and the
//! limits, with no socket I/O (that is [`read`](super::read)).
//!
//! Invariants:
//! - the answer depends on the bytes, not on how they arrived: every proper prefix of a
//!   complete head or chunked body is "need more" (`Ok(None)`), and the head or body
//!   itself parses the same alone as with bytes after it;
//! - nothing is believed that a proxy in front could read differently: bare-LF line ends,
//!   a second `Host`, `Authorization`, `X-Openpush-Key`, `Content-Length` or
//!   `Transfer-Encoding`, `Content-Length` beside `Transfer-Encoding`, a signed length,
//!   a transfer coding on HTTP/1.0 are all refused;
//! - sizes are bounded before the bytes are kept: a head that is not complete within
//!   `max_head_bytes` is refused (414 or 431), a declared length over `max_body_bytes`
//!   already at the head (413), a chunked body once it passes `max_body_bytes` or its wire
//!   form [`max_chunked_bytes`] (413);
//! - every refusal is a [`ParseError`] that names the status to answer; the connection is
//!   closed after it.

use std::net::IpAddr;

use crate::config::Limits;

/// A complete request: its head, parsed, and its whole body.
#[derive(Debug)]
pub struct Request {
    /// The method, as sent (case-sensitive, RFC 9110 9.1).
    pub method: String,
    /// The path without its query, as sent (not percent-decoded).
    pub path: String,
    /// The query after `?`, or empty; not percent-decoded.
    pub query: String,
    /// Header names in lower case, values as sent (non-UTF-8 bytes replaced).
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
    /// The client asked to keep the connection open after the response.
    pub keep_alive: bool,
    /// An HTTP/1.1 request: its response may be chunked (never to HTTP/1.0).
    pub http11: bool,
    /// The client's address for limits: the peer, or the client a trusted proxy names;
    /// `None` for the host itself (a trusted proxy's own requests). Set by the router.
    pub client_addr: Option<IpAddr>,
    /// The peer is a trusted proxy, so its `X-Forwarded-*` headers are believed.
    pub via_trusted_proxy: bool,
    /// The request came over TLS (`listen_tls`).
    pub tls: bool,
}

impl Request {
    /// The request of a parsed head and its body.
    pub fn from_head(head: Head, body: Vec<u8>) -> Request {
        let (path, query) = match head.target.split_once('?') {
            Some((p, q)) => (p.to_owned(), q.to_owned()),
            None => (head.target, String::new()),
        };
        Request {
            method: head.method,
            path,
            query,
            headers: head.headers,
            body,
            keep_alive: head.keep_alive,
            http11: head.http11,
            client_addr: None,
            via_trusted_proxy: false,
            tls: false,
        }
    }

    /// The first value of a header; `name` in lower case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, in the order of its lines: a list header (RFC 9110 5.3)
    /// sent on several lines is their values joined by commas.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A query parameter's raw value.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .split('&')
            .find_map(|pair| match pair.split_once('=') {
                Some((k, v)) if k == name => Some(v),
                None if pair == name => Some(""),
                _ => None,
            })
    }
}

/// Why no request could be read; [`status`](ParseError::status) names the answer.
#[derive(Debug, PartialEq)]
pub enum ParseError {
    /// The peer closed the connection between requests.
    Closed,
    /// The peer went quiet between requests for longer than the idle timeout.
    Idle,
    /// A started request did not complete in time (408).
    Timeout,
    /// No complete request line within the head limit (414).
    UriTooLong,
    /// Head over the size limit, or too many header lines (431).
    HeadTooLarge,
    /// Declared or actual body over the limit (413).
    BodyTooLarge,
    /// A framing the server does not implement, e.g. a transfer coding other than chunked (501).
    Unsupported,
    /// Malformed request (400).
    Malformed(&'static str),
    /// The socket failed.
    Io,
}

impl ParseError {
    /// The status to answer with, if the peer is still worth an answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            ParseError::Closed | ParseError::Idle | ParseError::Io => None,
            ParseError::Timeout => Some(408),
            ParseError::UriTooLong => Some(414),
            ParseError::HeadTooLarge => Some(431),
            ParseError::BodyTooLarge => Some(413),
            ParseError::Unsupported => Some(501),
            ParseError::Malformed(_) => Some(400),
        }
    }

    /// The sentence of the error body; empty where no answer is sent.
    pub fn detail(&self) -> &'static str {
        match self {
            ParseError::Timeout => "the request was not complete in time",
            ParseError::UriTooLong => "the request line is too long",
            ParseError::HeadTooLarge => "the request headers are too large or too many",
            ParseError::BodyTooLarge => "the request body is too large",
            ParseError::Unsupported => "only the chunked transfer coding is supported",
            ParseError::Malformed(why) => why,
            ParseError::Closed | ParseError::Idle | ParseError::Io => "",
        }
    }
}

/// How the body of a parsed head is delimited.
#[derive(Debug, PartialEq)]
pub enum Framing {
    /// `Content-Length` bytes (0 without the header).
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A parsed request head; public for the fuzz targets and property tests.
#[derive(Debug)]
pub struct Head {
    /// The method, as sent.
    pub method: String,
    /// The request target: path and query, as sent.
    pub target: String,
    /// Header names in lower case, values as sent (non-UTF-8 bytes replaced).
    pub headers: Vec<(String, String)>,
    /// How the body is delimited.
    pub framing: Framing,
    /// The client asked to keep the connection open.
    pub keep_alive: bool,
    /// HTTP/1.1 (or later): the response may be chunked.
    pub http11: bool,
    /// `Expect: 100-continue`: the client waits for a `100` before it sends the body.
    pub expect_continue: bool,
    /// Bytes of `buf` the head took; the body starts here.
    pub len: usize,
}

/// Parses a complete head from `buf`, or says that more bytes are needed.
///
/// The checks run in a fixed order (sizes, line endings, request line, each header line
/// in turn, then the body framing), so that a head that breaks several rules always gets
/// the same error.
pub fn parse_head(buf: &[u8], limits: &Limits) -> Result<Option<Head>, ParseError> {
    let mut slots = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut req = httparse::Request::new(&mut slots);
    let Some(len) = head_len(req.parse(buf), buf, limits)? else {
        return Ok(None);
    };
    if has_bare_lf(&buf[..len]) {
        return Err(ParseError::Malformed("lines must end with CRLF"));
    }
    let line = request_line(&req)?;
    let (headers, facts) = read_header_lines(req.headers, line.minor)?;
    let framing = body_framing(&facts, limits)?;
    Ok(Some(Head {
        method: line.method,
        target: line.target,
        headers,
        framing,
        keep_alive: facts.keep_alive(line.minor),
        http11: line.minor >= 1,
        expect_continue: facts.expect_continue,
        len,
    }))
}

/// The length of a complete head from httparse's verdict on `buf`; `None` while more
/// bytes may complete it. Past `max_head_bytes` a head without a line end is a request
/// line that is too long (414), any other a header section that is (431).
fn head_len(
    parsed: httparse::Result<usize>,
    buf: &[u8],
    limits: &Limits,
) -> Result<Option<usize>, ParseError> {
    let len = match parsed {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= limits.max_head_bytes => {
            let has_line = buf.windows(2).any(|w| w == b"\r\n") || buf.contains(&b'\n');
            return Err(if has_line {
                ParseError::HeadTooLarge
            } else {
                ParseError::UriTooLong
            });
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(ParseError::HeadTooLarge),
        Err(httparse::Error::Version) => {
            return Err(ParseError::Malformed("unsupported HTTP version"));
        }
        Err(_) => return Err(ParseError::Malformed("malformed request head")),
    };
    if len > limits.max_head_bytes {
        return Err(ParseError::HeadTooLarge);
    }
    Ok(Some(len))
}

/// The request line of a parsed head.
struct RequestLine {
    method: String,
    /// Path and query, in origin form.
    target: String,
    /// The `x` of `HTTP/1.x`.
    minor: u8,
}

fn request_line(req: &httparse::Request) -> Result<RequestLine, ParseError> {
    let target = origin_form(req.path.unwrap_or_default()).ok_or(ParseError::Malformed(
        "the request target must be a path starting with '/'",
    ))?;
    Ok(RequestLine {
        method: req.method.unwrap_or_default().to_owned(),
        target,
        minor: req.version.unwrap_or(1),
    })
}

/// What the header lines say about the body and the connection.
#[derive(Default)]
struct HeaderFacts {
    content_length: Option<usize>,
    chunked: bool,
    keep_alive_asked: bool,
    close_asked: bool,
    expect_continue: bool,
}

impl HeaderFacts {
    /// Notes what one header line says; refuses a value that makes the framing unclear.
    fn note(&mut self, name: &str, value: &str, minor: u8) -> Result<(), ParseError> {
        match name {
            "content-length" => self.content_length = Some(content_length(value)?),
            "transfer-encoding" => {
                check_transfer_coding(value, minor)?;
                self.chunked = true;
            }
            "connection" => {
                for token in value.split(',').map(str::trim) {
                    if token.eq_ignore_ascii_case("close") {
                        self.close_asked = true;
                    } else if token.eq_ignore_ascii_case("keep-alive") {
                        self.keep_alive_asked = true;
                    }
                }
            }
            "expect" => self.expect_continue = value.eq_ignore_ascii_case("100-continue"),
            _ => {}
        }
        Ok(())
    }

    /// HTTP/1.0 closes unless it asks for keep-alive; `close` anywhere wins over both.
    fn keep_alive(&self, minor: u8) -> bool {
        !(self.close_asked || (minor == 0 && !self.keep_alive_asked))
    }
}

/// The header lines with lower-case names and trimmed values, in order, and what they say;
/// a second line of a [`SINGLETONS`] header is refused.
fn read_header_lines(
    lines: &[httparse::Header],
    minor: u8,
) -> Result<(Vec<(String, String)>, HeaderFacts), ParseError> {
    let mut headers = Vec::with_capacity(lines.len());
    let mut facts = HeaderFacts::default();
    let mut seen = [false; SINGLETONS.len()];
    for line in lines {
        let name = line.name.to_ascii_lowercase();
        let value = String::from_utf8_lossy(line.value).trim().to_owned();
        if let Some(i) = SINGLETONS.iter().position(|s| *s == name)
            && std::mem::replace(&mut seen[i], true)
        {
            return Err(ParseError::Malformed(DUPLICATE[i]));
        }
        facts.note(&name, &value, minor)?;
        headers.push((name, value));
    }
    Ok((headers, facts))
}

/// A `Content-Length` value: digits only (RFC 9110), since `usize::from_str` would also
/// take a `+` sign that a proxy in front may read differently.
fn content_length(value: &str) -> Result<usize, ParseError> {
    Some(value)
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|v| v.parse().ok())
        .ok_or(ParseError::Malformed("invalid Content-Length"))
}

/// A `Transfer-Encoding` value: `chunked` alone (501 otherwise), and never on HTTP/1.0,
/// where RFC 9112 6.1 calls the framing faulty whatever the coding.
fn check_transfer_coding(value: &str, minor: u8) -> Result<(), ParseError> {
    if minor == 0 {
        return Err(ParseError::Malformed(
            "Transfer-Encoding is not allowed in HTTP/1.0",
        ));
    }
    if !value.eq_ignore_ascii_case("chunked") {
        return Err(ParseError::Unsupported);
    }
    Ok(())
}

/// How the body is delimited: chunked, or a length (0 without one). Both at once is
/// refused (a proxy may believe the other); a declared length over the limit is 413
/// before any of the body is read.
fn body_framing(facts: &HeaderFacts, limits: &Limits) -> Result<Framing, ParseError> {
    match (facts.chunked, facts.content_length) {
        (true, Some(_)) => Err(ParseError::Malformed(
            "both Content-Length and Transfer-Encoding are present",
        )),
        (true, None) => Ok(Framing::Chunked),
        (false, Some(n)) if n > limits.max_body_bytes => Err(ParseError::BodyTooLarge),
        (false, n) => Ok(Framing::Length(n.unwrap_or(0))),
    }
}

/// The body that follows `head` at the start of `available` and the bytes it took, or
/// `None` while it is incomplete.
pub fn complete_body(
    head: &Head,
    available: &[u8],
    limits: &Limits,
) -> Result<Option<(Vec<u8>, usize)>, ParseError> {
    match head.framing {
        Framing::Length(n) if available.len() >= n => Ok(Some((available[..n].to_vec(), n))),
        Framing::Length(_) => Ok(None),
        Framing::Chunked => decode_chunked(available, limits.max_body_bytes),
    }
}

/// Headers that may appear once: a second one is refused (400) rather than one of them
/// believed, since a proxy in front may have believed the other (RFC 9110 5.3).
const SINGLETONS: [&str; 5] = [
    "host",
    "authorization",
    "x-openpush-key",
    "content-length",
    "transfer-encoding",
];
const DUPLICATE: [&str; SINGLETONS.len()] = [
    "more than one Host header",
    "more than one Authorization header",
    "more than one X-Openpush-Key header",
    "more than one Content-Length header",
    "more than one Transfer-Encoding header",
];

/// A line of `bytes` ends with a bare LF (httparse accepts them, as RFC 9112 2.2 allows; a
/// proxy in front that does not could read different headers, so they are refused).
fn has_bare_lf(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'\n' && (i == 0 || bytes[i - 1] != b'\r'))
}

/// The most bytes a chunked body of at most `max_body` bytes may take on the wire: twice
/// the body (chunk-size lines of small chunks) plus 4 KiB of extensions and trailers. Past
/// it the body is refused (413), so endless extensions or trailers cannot grow the buffer.
pub fn max_chunked_bytes(max_body: usize) -> usize {
    max_body.saturating_mul(2).saturating_add(4096)
}

/// The path and query of a request target: origin form as is, absolute form (which
/// HTTP/1.1 servers must accept) without its scheme and authority.
fn origin_form(target: &str) -> Option<String> {
    if target.starts_with('/') {
        return Some(target.to_owned());
    }
    let rest = target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))?;
    Some(rest.find('/').map_or("/".into(), |i| rest[i..].to_owned()))
}

/// Decodes a chunked body at the start of `buf`: the body and the bytes it took, or `None`
/// while incomplete. Trailers are read and ignored.
pub fn decode_chunked(buf: &[u8], max: usize) -> Result<Option<(Vec<u8>, usize)>, ParseError> {
    let limit = max_chunked_bytes(max);
    if buf.len() > limit {
        // What completes within the limit is decoded; what does not never will be.
        return decode_chunked(&buf[..limit], max)?
            .ok_or(ParseError::BodyTooLarge)
            .map(Some);
    }
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        let (start, size) = match httparse::parse_chunk_size(&buf[pos..]) {
            Ok(httparse::Status::Complete(found)) => found,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err(ParseError::Malformed("invalid chunk size")),
        };
        // httparse takes any byte in a chunk extension, a bare LF too.
        if has_bare_lf(&buf[pos..pos + start]) {
            return Err(ParseError::Malformed("lines must end with CRLF"));
        }
        pos += start;
        if size == 0 {
            // Trailer section: lines until an empty one.
            loop {
                let rest = &buf[pos..];
                let end = rest.iter().position(|&b| b == b'\n');
                // Whole or not yet, so that the answer does not depend on how bytes arrived.
                if end.unwrap_or(rest.len()) > 4096 {
                    return Err(ParseError::HeadTooLarge);
                }
                let Some(end) = end else { return Ok(None) };
                let Some(line) = rest[..end].strip_suffix(b"\r") else {
                    return Err(ParseError::Malformed("lines must end with CRLF"));
                };
                pos += end + 1;
                if line.is_empty() {
                    return Ok(Some((body, pos)));
                }
            }
        }
        let size = usize::try_from(size).map_err(|_| ParseError::BodyTooLarge)?;
        if body.len().saturating_add(size) > max {
            return Err(ParseError::BodyTooLarge);
        }
        let need = pos.saturating_add(size).saturating_add(2);
        if buf.len() < need {
            return Ok(None);
        }
        body.extend_from_slice(&buf[pos..pos + size]);
        if &buf[pos + size..need] != b"\r\n" {
            return Err(ParseError::Malformed("chunk not followed by CRLF"));
        }
        pos = need;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_head_bytes: 256,
            max_headers: 4,
            max_body_bytes: 16,
            ..Limits::default()
        }
    }

    #[test]
    fn every_split_of_a_head_is_partial_until_complete() {
        let raw = b"POST /message?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n";
        for cut in 0..raw.len() {
            assert!(
                parse_head(&raw[..cut], &limits()).unwrap().is_none(),
                "cut {cut}"
            );
        }
        let head = parse_head(raw, &limits()).unwrap().unwrap();
        assert_eq!(head.len, raw.len());
        assert_eq!(head.framing, Framing::Length(3));
        assert!(head.keep_alive);
    }

    #[test]
    fn limits_map_to_statuses() {
        let long_line = [b"GET /".as_slice(), &[b'a'; 300]].concat();
        assert_eq!(
            parse_head(&long_line, &limits()).unwrap_err(),
            ParseError::UriTooLong
        );
        let many = b"GET / HTTP/1.1\r\na: 1\r\nb: 1\r\nc: 1\r\nd: 1\r\ne: 1\r\n\r\n";
        assert_eq!(
            parse_head(many, &limits()).unwrap_err(),
            ParseError::HeadTooLarge
        );
        let big = b"POST / HTTP/1.1\r\nContent-Length: 17\r\n\r\n";
        assert_eq!(
            parse_head(big, &limits()).unwrap_err(),
            ParseError::BodyTooLarge
        );
        let smuggle = b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(matches!(
            parse_head(smuggle, &limits()).unwrap_err(),
            ParseError::Malformed(_)
        ));
        let signed = b"POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n";
        assert!(matches!(
            parse_head(signed, &limits()).unwrap_err(),
            ParseError::Malformed(_)
        ));
        let gzip = b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n";
        assert_eq!(
            parse_head(gzip, &limits()).unwrap_err(),
            ParseError::Unsupported
        );
    }

    #[test]
    fn targets_are_origin_or_absolute_form() {
        let head = parse_head(
            b"GET http://example.org/version?a=1 HTTP/1.1\r\n\r\n",
            &limits(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(head.target, "/version?a=1");
        assert!(matches!(
            parse_head(b"GET version HTTP/1.1\r\n\r\n", &limits()).unwrap_err(),
            ParseError::Malformed(_)
        ));
    }

    #[test]
    fn http10_closes_unless_asked() {
        let head = parse_head(b"GET / HTTP/1.0\r\n\r\n", &limits())
            .unwrap()
            .unwrap();
        assert!(!head.keep_alive);
        let head = parse_head(
            b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            &limits(),
        )
        .unwrap()
        .unwrap();
        assert!(head.keep_alive);
    }

    fn malformed(raw: &[u8]) -> bool {
        matches!(parse_head(raw, &limits()), Err(ParseError::Malformed(_)))
    }

    // Regression (issue 10): each of these was accepted, the first header of a pair believed.
    #[test]
    fn ambiguous_heads_are_refused() {
        assert!(malformed(b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"));
        assert!(malformed(
            b"GET / HTTP/1.1\r\nAuthorization: a\r\nauthorization: b\r\n\r\n"
        ));
        assert!(malformed(
            b"GET / HTTP/1.1\r\nX-Openpush-Key: a\r\nX-OpenPush-Key: a\r\n\r\n"
        ));
        assert!(malformed(
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n"
        ));
        assert!(malformed(
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"
        ));
        assert!(malformed(b"GET / HTTP/1.1\nHost: a\n\n"));
        assert!(malformed(b"GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n"));
        // Lists of other headers may repeat.
        assert!(
            parse_head(
                b"GET / HTTP/1.1\r\nAccept: a\r\nAccept: b\r\n\r\n",
                &limits()
            )
            .unwrap()
            .is_some()
        );
    }

    #[test]
    fn close_wins_over_keep_alive() {
        for head in [
            b"GET / HTTP/1.1\r\nConnection: close, keep-alive\r\n\r\n".as_slice(),
            b"GET / HTTP/1.1\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n",
            b"GET / HTTP/1.0\r\nConnection: close, keep-alive\r\n\r\n",
        ] {
            assert!(!parse_head(head, &limits()).unwrap().unwrap().keep_alive);
        }
    }

    #[test]
    fn chunked_bodies_decode_at_every_split() {
        let raw = b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nTrailer: x\r\n\r\nNEXT";
        let (body, used) = decode_chunked(raw, 16).unwrap().unwrap();
        assert_eq!(body, b"abcde");
        assert_eq!(&raw[used..], b"NEXT");
        for cut in 0..used {
            assert_eq!(decode_chunked(&raw[..cut], 16).unwrap(), None, "cut {cut}");
        }
        assert_eq!(
            decode_chunked(b"11\r\n", 16).unwrap_err(),
            ParseError::BodyTooLarge
        );
        assert!(decode_chunked(b"3\r\nabcXY", 16).is_err());
        // Bare LF: in a chunk extension (which httparse skips) and ending a trailer.
        assert!(decode_chunked(b"3;a\nb\r\nabc\r\n0\r\n\r\n", 16).is_err());
        assert!(decode_chunked(b"0\r\nA: b\n\r\n", 16).is_err());
        assert!(decode_chunked(b"0\r\n\n", 16).is_err());
    }

    // Regression: endless chunk extensions or trailers kept a body incomplete while the
    // buffer grew until the request timeout.
    #[test]
    fn endless_extensions_and_trailers_are_refused() {
        let limit = max_chunked_bytes(16);
        let ext = [b"1;".as_slice(), &vec![b'x'; limit]].concat();
        assert_eq!(decode_chunked(&ext, 16), Err(ParseError::BodyTooLarge));
        let trailers = [b"0\r\n".as_slice(), &b"A: b\r\n".repeat(limit / 6)].concat();
        assert_eq!(decode_chunked(&trailers, 16), Err(ParseError::BodyTooLarge));
        let long_trailer = [b"0\r\nA: ".as_slice(), &[b'b'; 4100], b"\r\n\r\n"].concat();
        assert_eq!(
            decode_chunked(&long_trailer, 16),
            Err(ParseError::HeadTooLarge)
        );
    }
}
