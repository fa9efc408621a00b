//! Blocking HTTP exchanges with a server: one TCP connection per request, with a deadline
//! on connecting and on every read and write, so no command hangs on a dead server.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use openpush_wire::http::{self, Response};
use openpush_wire::json;
use openpush_wire::url::Url;

use crate::Failure;

/// Connecting, and each read or write of a request that is not a stream.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// The longest answer body read (a stream is read by `listen` itself).
const MAX_ANSWER_BYTES: usize = 1 << 20;

pub fn parse_url(text: &str, what: &str) -> Result<Url, Failure> {
    Url::parse(text).map_err(|e| Failure::usage(format!("{what} {text:?}: {e}")))
}

/// A connection to `url`'s host, trying each address it resolves to.
pub fn connect(url: &Url, io_timeout: Duration) -> Result<TcpStream, String> {
    let addrs = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", url.host))?;
    let mut last = format!("{} resolves to no address", url.host);
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, TIMEOUT) {
            Ok(stream) => {
                stream
                    .set_read_timeout(Some(io_timeout))
                    .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
                    .map_err(|e| e.to_string())?;
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) => last = format!("cannot connect to {}: {e}", url.authority),
        }
    }
    Err(last)
}

/// One request and its whole answer.
pub fn request(
    url: &Url,
    method: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Response, Failure> {
    let stream = connect(url, TIMEOUT)
        .map_err(|e| Failure::runtime(format!("{e}: is the server running and the URL right?")))?;
    http::exchange(stream, method, url, headers, body, MAX_ANSWER_BYTES)
        .map_err(|e| Failure::runtime(format!("{method} {}: {e}", url.origin())))
}

/// What a refusal says: the `detail` of an OpenPush error body, or the body itself.
pub fn explain(response: &Response) -> String {
    let text = response.text();
    let detail = json::string_field(&text, "detail")
        .or_else(|| json::string_field(&text, "title"))
        .unwrap_or_else(|| text.trim().chars().take(200).collect());
    format!(
        "{} {}: {detail}",
        response.head.status, response.head.reason
    )
}

/// `response` if its status is one of `expected`; otherwise a failure that names what was
/// being done (`doing`) and what the server answered.
pub fn expect_status(
    response: Response,
    expected: &[u16],
    doing: &str,
) -> Result<Response, Failure> {
    if expected.contains(&response.head.status) {
        Ok(response)
    } else {
        Err(Failure::runtime(format!("{doing}: {}", explain(&response))))
    }
}

/// A path segment with everything but unreserved characters percent-encoded.
pub fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
