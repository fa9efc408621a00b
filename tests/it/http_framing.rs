//! The HTTP/1.1 layer as raw bytes show it: the size and time limits (414, 431, 413, 408),
//! malformed heads (400), chunked bodies, `100 Continue`, pipelining and keep-alive; and the
//! framing edges a front proxy and openpush could read differently (request smuggling,
//! header confusion): what the server refuses, and how it ends a connection.

use crate::support;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use support::api::{message, queued};
use support::conn::Conn;
use support::*;

/// Sends `raw` and reads for up to `wait`: what came, and whether the server closed.
fn exchange(addr: SocketAddr, raw: &[u8], wait: Duration) -> (String, bool) {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    conn.write_all(raw).unwrap();
    let mut data = Vec::new();
    let closed = closed_within(&mut conn, &mut data, wait);
    (String::from_utf8_lossy(&data).into_owned(), closed)
}

#[test]
fn transfer_encoding_on_http10_is_400() {
    // RFC 9112 6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing.
    let s = Server::start("te-http10");
    let (_, token) = s.device("ann");
    let body = format!(r#"{{"token":"{token}","data":{{}}}}"#);
    let raw = format!(
        "POST /message HTTP/1.0\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    );
    send_raw(s.addr, raw.as_bytes()).assert_error(400);
    let with_length = "POST /message HTTP/1.0\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n";
    send_raw(s.addr, with_length.as_bytes()).assert_error(400);
    // HTTP/1.1 chunked still works.
    let ok = raw.replace("HTTP/1.0", "HTTP/1.1").replace(
        "Transfer-Encoding",
        "Connection: close\r\nTransfer-Encoding",
    );
    assert_eq!(send_raw(s.addr, ok.as_bytes()).status, 200);
}

#[test]
fn connection_close_wins_over_keep_alive() {
    let s = Server::start("conn-close-wins");
    for connection in ["close, keep-alive", "keep-alive, close", "Keep-Alive,CLOSE"] {
        for version in ["1.1", "1.0"] {
            let raw = format!(
                "GET /version HTTP/{version}\r\nHost: t\r\nConnection: {connection}\r\n\r\n\
                 GET /version HTTP/1.1\r\nHost: t\r\n\r\n"
            );
            let (answer, closed) = exchange(s.addr, raw.as_bytes(), Duration::from_secs(3));
            assert!(
                closed,
                "{connection:?} on {version}: the connection stayed open"
            );
            assert_eq!(
                answer.matches("HTTP/1.1 200").count(),
                1,
                "{connection:?} on {version}: {answer}"
            );
            let response = parse_response(answer.as_bytes()).unwrap();
            assert_eq!(response.header("connection"), Some("close"));
        }
    }
}

#[test]
fn duplicate_singleton_headers_are_400() {
    let s = Server::start("dup-headers");
    let (key, _) = s.device("ann");
    let auth = basic("ann", "secret");
    for (what, raw) in [
        ("Host", "GET /version HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".to_owned()),
        ("same Host twice", "GET /version HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n".into()),
        (
            "Authorization",
            format!("GET /user HTTP/1.1\r\nHost: t\r\nAuthorization: {auth}\r\nAuthorization: Basic eDp5\r\n\r\n"),
        ),
        (
            "X-Openpush-Key",
            format!("GET /application HTTP/1.1\r\nHost: t\r\nX-Openpush-Key: {key}\r\nX-Openpush-Key: other\r\n\r\n"),
        ),
        (
            "equal Content-Lengths",
            "POST /message HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}"
                .into(),
        ),
        (
            "Transfer-Encoding twice",
            "POST /message HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                .into(),
        ),
    ] {
        let r = send_raw(s.addr, raw.as_bytes());
        assert_eq!(r.status, 400, "{what}: {}", r.text());
        r.assert_error(400);
    }
    // One of each is fine.
    let r = s.request("GET", "/application", &[("X-Openpush-Key", &key)], "");
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s.request("GET", "/user", &[("Authorization", &auth)], "");
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn bare_lf_line_endings_are_400() {
    let s = Server::start("bare-lf");
    let (_, token) = s.device("ann");
    let body = format!(r#"{{"token":"{token}","data":{{}}}}"#);
    for (what, raw) in [
        ("all LF", "GET /version HTTP/1.1\nHost: t\n\n".to_owned()),
        (
            "one header line",
            "GET /version HTTP/1.1\r\nHost: t\nX-A: b\r\n\r\n".into(),
        ),
        (
            "request line",
            "GET /version HTTP/1.1\nHost: t\r\n\r\n".into(),
        ),
        (
            "chunk extension",
            format!(
                "POST /message HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n{:x};a\nb\r\n{body}\r\n0\r\n\r\n",
                body.len()
            ),
        ),
        (
            "trailer",
            format!(
                "POST /message HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\nX-T: 1\n\r\n",
                body.len()
            ),
        ),
    ] {
        let r = send_raw(s.addr, raw.as_bytes());
        assert_eq!(r.status, 400, "{what}: {}", r.text());
    }
    assert_eq!(s.request("GET", "/version", &[], "").status, 200);
}

#[test]
fn header_section_over_8_kib_is_431() {
    let s = Server::start("http-431");
    let raw = format!(
        "GET /version HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "a".repeat(9000)
    );
    send_raw(s.addr, raw.as_bytes()).assert_error(431);
    let many: String = (0..100).map(|i| format!("X-H{i}: v\r\n")).collect();
    let raw = format!("GET /version HTTP/1.1\r\nHost: t\r\n{many}\r\n");
    send_raw(s.addr, raw.as_bytes()).assert_error(431);
}

#[test]
fn request_line_over_the_limit_is_414() {
    let s = Server::start("http-414");
    let raw = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(9000));
    send_raw(s.addr, raw.as_bytes()).assert_error(414);
}

#[test]
fn body_over_the_limit_is_413() {
    let s = Server::start("http-413");
    let (_, token) = s.device("ann");
    let raw = "POST /message HTTP/1.1\r\nHost: t\r\nContent-Length: 70000\r\n\r\n";
    send_raw(s.addr, raw.as_bytes()).assert_error(413);
    // A chunked body that grows past the limit.
    let chunk = "x".repeat(40_000);
    let raw = format!(
        "POST /message HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len(),
        chunk.len()
    );
    send_raw(s.addr, raw.as_bytes()).assert_error(413);
    // A real body over the limit with a valid envelope.
    let body = message(&token, &format!(r#"{{"k":"{}"}}"#, "x".repeat(70_000)));
    s.post_message(&body).assert_error(413);
    assert_eq!(queued(&s), 0);
}

#[test]
fn malformed_requests_are_400() {
    let s = Server::start("http-400");
    for raw in [
        "GARBAGE\r\n\r\n".to_owned(),
        "GET /version HTTP/1.1\r\nBad Header\r\n\r\n".into(),
        "POST /message HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n".into(),
        "POST /message HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}"
            .into(),
        "POST /message HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            .into(),
        "POST /message HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"
            .into(),
        "GET /user/%zz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".into(),
    ] {
        let r = send_raw(s.addr, raw.as_bytes());
        r.assert_error(400);
    }
    // Content-Length is digits only; a sign would let a proxy and the server disagree.
    let (_, token) = s.device("ann");
    let body = message(&token, "{}");
    for length in [
        format!("+{}", body.len()),
        format!(" {} ", body.len()),
        "-0".into(),
    ] {
        let raw = format!(
            "POST /message HTTP/1.1\r\nHost: t\r\nContent-Length:{length}\r\nConnection: close\r\n\r\n{body}"
        );
        let r = send_raw(s.addr, raw.as_bytes());
        if length.trim().starts_with(|c: char| c.is_ascii_digit()) {
            assert_eq!(r.status, 200, "{length:?}: {}", r.text());
        } else {
            r.assert_error(400);
        }
    }
    // The server is still fine.
    assert_eq!(s.request("GET", "/version", &[], "").status, 200);
}

#[test]
fn chunked_request_body_works_for_post_message() {
    let s = Server::start("http-chunked");
    let (_, token) = s.device("ann");
    let body = message(&token, r#"{"chunked":true}"#);
    let (a, b) = body.split_at(10);
    let raw = format!(
        "POST /message HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{a}\r\n{:X};ext=1\r\n{b}\r\n0\r\n\r\n",
        a.len(),
        b.len()
    );
    let r = send_raw(s.addr, raw.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(queued(&s), 1);
}

#[test]
fn expect_100_continue_gets_continue_then_the_answer() {
    let s = Server::start("http-continue");
    let (_, token) = s.device("ann");
    let body = message(&token, r#"{"a":1}"#);
    let mut conn = Conn::open(s.addr);
    conn.send(
        format!(
            "POST /message HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    let interim = conn.response();
    assert_eq!(interim.status, 100);
    conn.send(body.as_bytes());
    let r = conn.response();
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(conn.closed());
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let s = Server::start("http-pipeline");
    let (key, token) = s.device("ann");
    let body = message(&token, "{}");
    let raw = format!(
        "GET /application HTTP/1.1\r\nHost: t\r\nX-Openpush-Key: {key}\r\n\r\n\
         POST /message HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}\
         GET /nope HTTP/1.1\r\nHost: t\r\n\r\n\
         GET /version HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut conn = Conn::open(s.addr);
    conn.send(raw.as_bytes());
    let statuses: Vec<u16> = (0..4).map(|_| conn.response().status).collect();
    assert_eq!(statuses, [200, 200, 404, 200]);
    assert!(conn.closed());
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let s = Server::start("http-keepalive");
    let mut conn = Conn::open(s.addr);
    for _ in 0..3 {
        conn.send(b"GET /version HTTP/1.1\r\nHost: t\r\n\r\n");
        let r = conn.response();
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("connection"), Some("keep-alive"));
    }
    // An error answer keeps the connection, too.
    conn.send(b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\n");
    conn.response().assert_error(404);
    conn.send(b"GET /version HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let r = conn.response();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(conn.closed());
}

#[test]
fn http10_keep_alive_is_confirmed_so_the_client_does_not_wait_for_a_close() {
    let s = Server::start("http10-keepalive");
    let mut conn = Conn::open(s.addr);
    conn.send(b"GET /version HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let r = conn.response();
    assert_eq!(r.status, 200);
    assert!(
        r.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("keep-alive")),
        "{r:?}"
    );
    conn.send(b"GET /version HTTP/1.0\r\n\r\n");
    let r = conn.response();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(conn.closed());
}

#[test]
fn client_that_stalls_mid_head_gets_408() {
    let s = Server::start_with("http-408", "request_timeout_secs = 1");
    let started = Instant::now();
    let mut conn = Conn::open(s.addr);
    conn.send(b"GET /version HTTP/1.1\r\nHost: t\r\nX-Half: ");
    let r = conn.response();
    r.assert_error(408);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    assert!(conn.closed());
    // A stalled body times out the same way.
    let mut conn = Conn::open(s.addr);
    conn.send(b"POST /message HTTP/1.1\r\nHost: t\r\nContent-Length: 50\r\n\r\n{\"tok");
    conn.response().assert_error(408);
}
