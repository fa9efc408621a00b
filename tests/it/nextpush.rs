//! The NextPush door (`/index.php/apps/uppush/`), driven as the NextPush Android app and an
//! app server drive it: every route and status, the stream's events, a push byte for byte,
//! the replacement of a stream and a restart in between.

use crate::support;

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use support::api::{assert_unauthorized, queued};
use support::http::open_get;
use support::push::send;
use support::*;

const BASE: &str = "/index.php/apps/uppush";

/// A request of the app: Basic credentials, JSON body (Retrofit with Gson).
fn app(s: &Server, method: &str, path: &str, body: &str) -> Response {
    let auth = basic("ann", "secret");
    let mut headers = vec![("Authorization", auth.as_str())];
    if !body.is_empty() {
        headers.push(("Content-Type", "application/json; charset=UTF-8"));
    }
    s.request(method, &format!("{BASE}{path}"), &headers, body)
}

fn server(name: &str) -> Server {
    let s = Server::start_with(name, "keepalive_secs = 1");
    s.add_user("ann", "secret");
    s
}

fn new_device(s: &Server) -> String {
    let r = app(s, "PUT", "/device/", r#"{"deviceName":"Pixel 7"}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text().starts_with(r#"{"success":true,"deviceId":""#),
        "{}",
        r.text()
    );
    r.json_field("deviceId")
}

fn new_app(s: &Server, device: &str) -> String {
    let body = format!(r#"{{"deviceId":"{device}","appName":"org.example.chat"}}"#);
    let r = app(s, "PUT", "/app/", &body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text().starts_with(r#"{"success":true,"token":""#),
        "{}",
        r.text()
    );
    r.json_field("token")
}

fn push(s: &Server, token: &str, body: &[u8], headers: &[(&str, &str)]) -> Response {
    send(
        s.addr,
        "POST",
        &format!("{BASE}/push/{token}"),
        headers,
        body,
    )
}

/// A NextPush event stream: named events.
struct Stream {
    conn: TcpStream,
    status: u16,
    buf: Vec<u8>,
}

impl Stream {
    /// Opens `GET /device/<id>` without credentials, as the app does.
    fn open(addr: SocketAddr, device: &str) -> Stream {
        let path = format!("{BASE}/device/{device}");
        let accept = [("Accept", "text/event-stream")];
        let opened = open_get(addr, &path, &accept, Duration::from_millis(100))
            .unwrap_or_else(|what| panic!("no response head: {what}"));
        let status = opened.head.status;
        let content_type = opened.head.header("content-type").unwrap_or_default();
        assert!(
            status != 200 || content_type.starts_with("text/event-stream"),
            "{}",
            opened.head_text
        );
        Stream {
            conn: opened.conn,
            status,
            buf: opened.rest,
        }
    }

    /// The next event as (name, data); `None` if the server closed or nothing came.
    fn next_within(&mut self, wait: Duration) -> Option<(String, String)> {
        let deadline = Instant::now() + wait;
        loop {
            while let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buf.drain(..end + 2).collect();
                let text = String::from_utf8(block).unwrap();
                let name = text.lines().find_map(|l| l.strip_prefix("event: "));
                let data = text.lines().find_map(|l| l.strip_prefix("data: "));
                if let (Some(name), Some(data)) = (name, data) {
                    return Some((name.to_owned(), data.to_owned()));
                }
            }
            if !read_more(&mut self.conn, &mut self.buf, deadline) {
                return None;
            }
        }
    }

    fn next(&mut self) -> (String, String) {
        self.next_within(TIMEOUT).expect("an event")
    }

    /// The next event that is not a `ping`.
    fn next_not_ping(&mut self) -> (String, String) {
        loop {
            let event = self.next();
            if event.0 != "ping" {
                return event;
            }
        }
    }

    fn opened(&mut self) {
        assert_eq!(self.status, 200);
        assert_eq!(self.next(), ("start".into(), r#"{"type":"start"}"#.into()));
        assert_eq!(
            self.next(),
            (
                "keepalive".into(),
                r#"{"type":"keepalive","keepalive":1}"#.into()
            )
        );
    }

    fn closed_within(&mut self, wait: Duration) -> bool {
        closed_within(&mut self.conn, &mut self.buf, wait)
    }
}

fn message_event(token: &str, body: &[u8]) -> (String, String) {
    use base64ct::{Base64, Encoding};
    (
        "message".into(),
        format!(
            r#"{{"type":"message","token":"{token}","message":"{}"}}"#,
            Base64::encode_string(body)
        ),
    )
}

fn wait_queued(s: &Server, n: u64) {
    wait_until(&format!("a queue of {n} messages"), || queued(s) == n);
}

#[test]
fn health_and_auth_challenge() {
    let s = server("np-health");
    // The app sends credentials only after a challenge.
    let r = s.request("GET", &format!("{BASE}/"), &[], "");
    assert_unauthorized(&r);
    let r = s.request("PUT", &format!("{BASE}/device/"), &[], "{}");
    assert_unauthorized(&r);
    let wrong = basic("ann", "wrong");
    let r = s.request("GET", BASE, &[("Authorization", wrong.as_str())], "");
    assert_unauthorized(&r);
    let r = app(&s, "GET", "/", "");
    assert_eq!((r.status, r.text().as_str()), (200, r#"{"success":true}"#));
    // Other methods, other paths.
    let r = app(&s, "POST", "/", "");
    r.assert_error(405);
    assert_eq!(r.header("allow"), Some("GET"));
    app(&s, "GET", "/nothing", "").assert_error(404);
    let r = app(&s, "GET", "/device/", "");
    assert_eq!(r.header("allow"), Some("PUT"));
    // Bodies are JSON; a browser's cross-site request is refused.
    let auth = basic("ann", "secret");
    let form = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ];
    s.request("PUT", &format!("{BASE}/device/"), &form, "deviceName=x")
        .assert_error(415);
    let cross = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
        ("Origin", "https://evil.example"),
    ];
    let body = r#"{"deviceName":"x"}"#;
    s.request("PUT", &format!("{BASE}/device/"), &cross, body)
        .assert_error(403);
    app(&s, "PUT", "/device/", r#"{"name":"x"}"#).assert_error(400);
}

#[test]
fn devices_apps_and_pushes() {
    let s = server("np-flow");
    let device = new_device(&s);
    // The same phone registering again gets a device of its own.
    let again = new_device(&s);
    assert_ne!(device, again);
    let token = new_app(&s, &device);
    // Unknown devices are 401, also someone else's.
    app(&s, "PUT", "/app/", r#"{"deviceId":"nope","appName":"a"}"#).assert_error(401);
    s.add_user("bob", "secret2");
    let bob = basic("bob", "secret2");
    let bob_headers = [
        ("Authorization", bob.as_str()),
        ("Content-Type", "application/json"),
    ];
    let body = format!(r#"{{"deviceId":"{device}","appName":"a"}}"#);
    let r = s.request("PUT", &format!("{BASE}/app/"), &bob_headers, &body);
    assert_unauthorized(&r);
    let r = s.request("DELETE", &format!("{BASE}/app/{token}"), &bob_headers, "");
    assert_unauthorized(&r);
    let r = s.request(
        "DELETE",
        &format!("{BASE}/device/{device}"),
        &bob_headers,
        "",
    );
    assert_unauthorized(&r);
    // Discovery and pushes.
    let r = s.request("GET", &format!("{BASE}/push/{token}"), &[], "");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, r#"{"unifiedpush":{"version":1}}"#)
    );
    s.request("GET", &format!("{BASE}/push/unknown"), &[], "")
        .assert_error(404);
    let body: Vec<u8> = (0..=255u8).collect();
    let r = push(&s, &token, &body, &[("TTL", "60")]);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.text(), r#"{"success":true}"#);
    assert_eq!(r.header("ttl"), Some("60"));
    let r = push(&s, &token, b"later", &[("TTL", "99999999999")]);
    assert_eq!(r.status, 201);
    assert_ne!(r.header("ttl"), Some("99999999999"));
    push(&s, "unknown", b"x", &[]).assert_error(404);
    push(&s, &token, b"", &[]).assert_error(400);
    push(&s, &token, &[b'x'; 5000], &[]).assert_error(413);
    let r = s.request("PUT", &format!("{BASE}/push/{token}"), &[], "x");
    assert_eq!(r.header("allow"), Some("GET, POST"));
    // The stream: start, keepalive, then the messages, byte for byte, then pings.
    let mut stream = Stream::open(s.addr, &device);
    stream.opened();
    assert_eq!(stream.next_not_ping(), message_event(&token, &body));
    assert_eq!(stream.next_not_ping(), message_event(&token, b"later"));
    let r = push(&s, &token, b"live \r\n\"", &[]);
    assert_eq!(r.status, 201);
    assert_eq!(
        stream.next_not_ping(),
        message_event(&token, b"live \r\n\"")
    );
    assert_eq!(stream.next(), ("ping".into(), r#"{"type":"ping"}"#.into()));
    // Deleting the app: its device hears of it, its endpoint is gone.
    let r = app(&s, "DELETE", &format!("/app/{token}"), "");
    assert_eq!((r.status, r.text().as_str()), (200, r#"{"success":true}"#));
    assert_eq!(
        stream.next_not_ping(),
        (
            "deleteApp".into(),
            format!(r#"{{"type":"deleteApp","token":"{token}"}}"#)
        )
    );
    push(&s, &token, b"x", &[]).assert_error(404);
    app(&s, "DELETE", &format!("/app/{token}"), "").assert_error(401);
    // Deleting the device ends its stream; its id is no capability any more.
    let r = app(&s, "DELETE", &format!("/device/{device}"), "");
    assert_eq!((r.status, r.text().as_str()), (200, r#"{"success":true}"#));
    assert!(stream.closed_within(TIMEOUT));
    assert_eq!(Stream::open(s.addr, &device).status, 401);
    app(&s, "DELETE", &format!("/device/{device}"), "").assert_error(401);
    assert_eq!(Stream::open(s.addr, "unknown").status, 401);
}

#[test]
fn a_newer_stream_replaces_the_older_with_a_close_event() {
    let s = server("np-replace");
    let device = new_device(&s);
    let token = new_app(&s, &device);
    let mut first = Stream::open(s.addr, &device);
    first.opened();
    let mut second = Stream::open(s.addr, &device);
    second.opened();
    assert_eq!(
        first.next_not_ping(),
        ("close".into(), r#"{"type":"close"}"#.into())
    );
    assert!(first.closed_within(TIMEOUT));
    assert_eq!(push(&s, &token, b"to the new one", &[]).status, 201);
    assert_eq!(
        second.next_not_ping(),
        message_event(&token, b"to the new one")
    );
}

#[test]
fn a_device_that_reconnects_too_often_is_warned_after_start() {
    let s = Server::start_with(
        "np-warning",
        "keepalive_secs = 1\nnextpush_warning_connects = 2",
    );
    s.add_user("ann", "secret");
    let device = new_device(&s);
    let other = new_device(&s);
    for _ in 0..2 {
        Stream::open(s.addr, &device).opened();
    }
    let mut third = Stream::open(s.addr, &device);
    assert_eq!(third.status, 200);
    assert_eq!(third.next(), ("start".into(), r#"{"type":"start"}"#.into()));
    assert_eq!(
        third.next(),
        (
            "warning".into(),
            r#"{"type":"warning","message":"Connected 3 times in 12 hours"}"#.into()
        )
    );
    assert_eq!(third.next().0, "keepalive");
    drop(third);
    // Counted per device.
    Stream::open(s.addr, &other).opened();
}

#[test]
fn accepted_pushes_survive_a_restart_until_written_to_a_stream() {
    let mut s = server("np-restart");
    let device = new_device(&s);
    let token = new_app(&s, &device);
    for body in [&b"one"[..], b"two"] {
        assert_eq!(push(&s, &token, body, &[]).status, 201);
    }
    s.restart();
    let mut stream = Stream::open(s.addr, &device);
    stream.opened();
    assert_eq!(stream.next_not_ping(), message_event(&token, b"one"));
    assert_eq!(stream.next_not_ping(), message_event(&token, b"two"));
    // The server confirms a write once it is done, if the device still holds the
    // connection: a ping after it shows that moment has passed (a device that closes in
    // the instant after reading may get the message again).
    assert_eq!(stream.next().0, "ping");
    drop(stream);
    // Written once, not again: at once, and after a clean restart.
    let mut stream = Stream::open(s.addr, &device);
    stream.opened();
    assert_eq!(stream.next(), ("ping".into(), r#"{"type":"ping"}"#.into()));
    drop(stream);
    s.restart_gracefully();
    let mut stream = Stream::open(s.addr, &device);
    stream.opened();
    assert_eq!(stream.next(), ("ping".into(), r#"{"type":"ping"}"#.into()));
    wait_queued(&s, 0);
}

#[test]
fn the_matrix_gateway_delivers_to_nextpush_endpoints() {
    let s = server("np-matrix");
    let device = new_device(&s);
    let token = new_app(&s, &device);
    let r = s.request("GET", &format!("{BASE}/gateway/matrix"), &[], "");
    assert_eq!(r.text(), r#"{"unifiedpush":{"gateway":"matrix"}}"#);
    let body = format!(
        r#"{{"notification":{{"devices":[{{"pushkey":"http://test{BASE}/push/{token}"}},{{"pushkey":"http://test/elsewhere"}}]}}}}"#
    );
    let r = s.request(
        "POST",
        &format!("{BASE}/gateway/matrix"),
        &[("Content-Type", "application/json")],
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), r#"{"rejected":["http://test/elsewhere"]}"#);
    let mut stream = Stream::open(s.addr, &device);
    stream.opened();
    assert_eq!(
        stream.next_not_ping(),
        message_event(&token, body.as_bytes())
    );
}
