//! Reading requests off a connection: the HTTP layer's socket I/O on the way in.
//!
//! [`parse`](super::parse) decides, without touching the socket, whether the bytes so far
//! hold a complete head or body; this module reads until they do, under the limits:
//! - between requests the peer may stay quiet for `idle_timeout`; once a request has
//!   started, all of it must arrive within `request_timeout` (408 otherwise);
//! - bytes are added to the connection's buffer only here, at most one read (2 KiB) at a
//!   time, and `parse` is asked after each: so the buffer never holds more than one read
//!   past a limit `parse` enforces (`max_head_bytes`, then the body's);
//! - a request is taken out of the buffer whole; the bytes after it stay for the next
//!   one (pipelining);
//! - the one thing written is `100 Continue`, once per request, when the client asked
//!   for it and the body has not come yet; responses are written by the server.

use std::time::Instant;

use async_io::Timer;
use futures_lite::{AsyncReadExt, AsyncWriteExt, future};

use super::parse::{ParseError, Request, complete_body, parse_head};
use crate::config::Limits;
use crate::transport::Conn;

/// Reads the next request from `conn`. `buf` carries bytes between requests.
pub async fn read_request(
    conn: &mut Conn,
    buf: &mut Vec<u8>,
    limits: &Limits,
) -> Result<Request, ParseError> {
    if buf.is_empty() {
        await_next_request(conn, buf, limits).await?;
    }
    let deadline = Instant::now() + limits.request_timeout;
    let head = loop {
        if let Some(head) = parse_head(buf, limits)? {
            break head;
        }
        read_more_before(conn, buf, deadline).await?;
    };
    let mut continued = false;
    let (body, body_len) = loop {
        if let Some(done) = complete_body(&head, &buf[head.len..], limits)? {
            break done;
        }
        if head.expect_continue && !continued {
            continued = true;
            send_continue(conn).await?;
        }
        read_more_before(conn, buf, deadline).await?;
    };
    buf.drain(..head.len + body_len);
    Ok(Request::from_head(head, body))
}

/// Waits up to `idle_timeout` for the first bytes of a request.
async fn await_next_request(
    conn: &mut Conn,
    buf: &mut Vec<u8>,
    limits: &Limits,
) -> Result<(), ParseError> {
    let idle_deadline = Instant::now() + limits.idle_timeout;
    match read_more(conn, buf, idle_deadline).await {
        Ok(0) => Err(ParseError::Closed),
        Ok(_) => Ok(()),
        Err(ParseError::Timeout) => Err(ParseError::Idle),
        Err(e) => Err(e),
    }
}

/// Reads more of a started request; the peer closing now is [`ParseError::Closed`].
async fn read_more_before(
    conn: &mut Conn,
    buf: &mut Vec<u8>,
    deadline: Instant,
) -> Result<(), ParseError> {
    match read_more(conn, buf, deadline).await? {
        0 => Err(ParseError::Closed),
        _ => Ok(()),
    }
}

/// Tells a client that sent `Expect: 100-continue` to send its body.
async fn send_continue(conn: &mut Conn) -> Result<(), ParseError> {
    conn.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
        .await
        .map_err(|_| ParseError::Io)?;
    conn.flush().await.map_err(|_| ParseError::Io)
}

/// Reads into `buf` until `deadline`; `Ok(0)` means the peer closed.
async fn read_more(
    conn: &mut Conn,
    buf: &mut Vec<u8>,
    deadline: Instant,
) -> Result<usize, ParseError> {
    let mut chunk = [0u8; 2048];
    let read = async { conn.read(&mut chunk).await.map_err(|_| ParseError::Io) };
    let timeout = async {
        Timer::at(deadline).await;
        Err(ParseError::Timeout)
    };
    let n = future::or(read, timeout).await?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}
