//! HTTP/1.1 framing edges a front proxy and openpush could read differently (request
//! smuggling, header confusion): what the server refuses, and how it ends a connection.

mod support;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use support::*;

/// Sends `raw` and reads for up to `wait`: what came, and whether the server closed.
fn exchange(addr: SocketAddr, raw: &[u8], wait: Duration) -> (String, bool) {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    conn.write_all(raw).unwrap();
    let deadline = Instant::now() + wait;
    let mut data = Vec::new();
    while read_more(&mut conn, &mut data, deadline) {}
    let closed = Instant::now() < deadline;
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
