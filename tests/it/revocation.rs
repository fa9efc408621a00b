//! Streams end when the access that let them open is taken away, against the real binary:
//! a grant taken back or narrowed to writing, a user deleted (CLI and API), a user's
//! password or name changed, a topic claimed under `anonymous_access = read-write`, the
//! anonymous door narrowed by a reload; in every ntfy stream format, multi-topic streams
//! included, and for streams that authorised just before the change but attached after it.
//! Streams that keep their access stay open, and ending a stream never deletes a message.

use crate::support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use support::push::{JsonStream, alice_and_bob, poll};
use support::ws::{TEXT, WsClient};
use support::{Response, Server, TIMEOUT, basic};

/// A live ntfy stream in any format: lines (`/json`, `/sse`, `/raw`) or WebSocket frames.
enum Stream {
    Lines(JsonStream),
    Ws(WsClient),
}

impl Stream {
    /// Opens `path` (`/<topics>/<format>`), as `auth` or anonymously; must be let in.
    fn open(s: &Server, auth: Option<&str>, path: &str) -> Stream {
        let headers: Vec<(&str, &str)> = auth.map(|a| ("Authorization", a)).into_iter().collect();
        if path.ends_with("/ws") {
            let ws = WsClient::connect(s.addr, path, &headers)
                .unwrap_or_else(|refusal| panic!("{path}: {refusal}"));
            return Stream::Ws(ws);
        }
        let stream = JsonStream::open(s.addr, path, &headers);
        assert_eq!(stream.status, 200, "{path}: {}", stream.head);
        Stream::Lines(stream)
    }

    /// The next line or text frame; `None` once the server closed or at the deadline.
    fn next_before(&mut self, deadline: Instant) -> Option<String> {
        let left = deadline.saturating_duration_since(Instant::now());
        match self {
            Stream::Lines(lines) => lines.line_within(left),
            Stream::Ws(ws) => loop {
                let frame =
                    ws.next_frame_within(deadline.saturating_duration_since(Instant::now()))?;
                if frame.opcode == TEXT {
                    return Some(String::from_utf8(frame.payload).expect("UTF-8 text"));
                }
            },
        }
    }

    /// Waits for a line or frame that holds `needle`.
    fn sees(&mut self, needle: &str) {
        let deadline = Instant::now() + TIMEOUT;
        while let Some(text) = self.next_before(deadline) {
            if text.contains(needle) {
                return;
            }
        }
        panic!("{needle:?} never came");
    }

    /// The server must close the stream soon, and send nothing that holds `needle` first.
    fn ends_without(&mut self, needle: &str) {
        if let Err(e) = self.ended_without(needle) {
            panic!("{e}");
        }
    }

    /// [`Stream::ends_without`] as a result, for checking several streams.
    fn ended_without(&mut self, needle: &str) -> Result<(), String> {
        let deadline = Instant::now() + TIMEOUT;
        while let Some(text) = self.next_before(deadline) {
            if text.contains(needle) {
                return Err(format!("a stream without access got {text}"));
            }
        }
        if Instant::now() >= deadline {
            return Err("the stream stayed open".into());
        }
        Ok(())
    }

    /// Whether the server closed the stream within `wait`, whatever it sent before.
    fn closed_within(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        while self.next_before(deadline).is_some() {}
        Instant::now() < deadline
    }
}

/// Every stream must end without `needle`; the failures are named together.
fn all_end_without<'a>(
    streams: impl IntoIterator<Item = (&'a &'a str, &'a mut Stream)>,
    needle: &str,
) {
    let kept_open: Vec<String> = streams
        .into_iter()
        .filter_map(|(name, stream)| {
            let ended = stream.ended_without(needle);
            ended.err().map(|e| format!("{name}: {e}"))
        })
        .collect();
    assert!(kept_open.is_empty(), "{kept_open:#?}");
}

fn publish(s: &Server, auth: &str, topic: &str, text: &str) -> Response {
    let r = s.request(
        "POST",
        &format!("/{topic}"),
        &[("Authorization", auth)],
        text,
    );
    assert_eq!(r.status, 200, "publish to {topic}: {}", r.text());
    r
}

fn poll_status(s: &Server, auth: Option<&str>, topic: &str) -> u16 {
    let headers: Vec<(&str, &str)> = auth.map(|a| ("Authorization", a)).into_iter().collect();
    s.request("GET", &format!("/{topic}/json?poll=1"), &headers, "")
        .status
}

fn json_as(s: &Server, method: &str, path: &str, auth: &str, body: &str) -> Response {
    s.request(
        method,
        path,
        &[
            ("Authorization", auth),
            ("Content-Type", "application/json"),
        ],
        body,
    )
}

#[test]
fn taking_back_a_grant_ends_the_users_streams_in_every_format() {
    let (s, alice, bob) = alice_and_bob("revoke-grant", "");
    publish(&s, &alice, "shared", "created");
    publish(&s, &bob, "bobown", "created");
    s.cli_ok(&["topic", "grant", "shared", "bob", "--read"], "");
    let paths = [
        "/shared/json",
        "/shared/sse",
        "/shared/raw",
        "/shared/ws",
        "/bobown,shared/json",
    ];
    let mut bobs: Vec<Stream> = paths
        .iter()
        .map(|path| Stream::open(&s, Some(&bob), path))
        .collect();
    let mut alices = Stream::open(&s, Some(&alice), "/shared/json");
    publish(&s, &alice, "shared", "before");
    for stream in bobs.iter_mut().chain([&mut alices]) {
        stream.sees("before");
    }

    s.cli_ok(&["topic", "grant", "shared", "bob"], "");
    publish(&s, &alice, "shared", "after");
    all_end_without(paths.iter().zip(&mut bobs), "after");
    alices.sees("after");
    assert_eq!(poll_status(&s, Some(&bob), "shared"), 403);
    let kept = poll(s.addr, &alice, "shared");
    assert_eq!(kept.len(), 3, "ending streams deletes nothing");
}

#[test]
fn a_grant_narrowed_to_writing_ends_the_users_streams_and_a_widened_one_keeps_them() {
    let (s, alice, bob) = alice_and_bob("revoke-narrow", "");
    publish(&s, &alice, "shared", "created");
    s.cli_ok(&["topic", "grant", "shared", "bob", "--read"], "");
    let mut stream = Stream::open(&s, Some(&bob), "/shared/ws");
    s.cli_ok(
        &["topic", "grant", "shared", "bob", "--read", "--write"],
        "",
    );
    publish(&s, &alice, "shared", "still reading");
    stream.sees("still reading");

    s.cli_ok(&["topic", "grant", "shared", "bob", "--write"], "");
    publish(&s, &bob, "shared", "written, not read");
    stream.ends_without("written, not read");
    assert_eq!(poll_status(&s, Some(&bob), "shared"), 403);
}

#[test]
fn deleting_a_user_ends_its_streams_on_other_users_topics() {
    let (s, alice, _) = alice_and_bob("revoke-user-del", "");
    publish(&s, &alice, "fam", "created");
    for name in ["carol", "dave"] {
        s.add_user(name, "pw");
        s.cli_ok(&["topic", "grant", "fam", name, "--read"], "");
    }
    let (carol, dave) = (basic("carol", "pw"), basic("dave", "pw"));
    let names = [
        "carol /fam/json",
        "carol /fam/ws",
        "dave /fam/json",
        "dave /fam/ws",
    ];
    let mut streams = [
        Stream::open(&s, Some(&carol), "/fam/json"),
        Stream::open(&s, Some(&carol), "/fam/ws"),
        Stream::open(&s, Some(&dave), "/fam/json"),
        Stream::open(&s, Some(&dave), "/fam/ws"),
    ];
    let mut alices = Stream::open(&s, Some(&alice), "/fam/json");
    publish(&s, &alice, "fam", "before");
    for stream in streams.iter_mut().chain([&mut alices]) {
        stream.sees("before");
    }

    s.cli_ok(&["user", "del", "carol"], "");
    let r = json_as(&s, "DELETE", "/user/dave", &alice, "");
    assert_eq!(r.status, 204, "{}", r.text());
    publish(&s, &alice, "fam", "after");
    all_end_without(names.iter().zip(&mut streams), "after");
    alices.sees("after");
    assert_eq!(poll_status(&s, Some(&carol), "fam"), 401);
}

#[test]
fn claiming_a_topic_ends_its_anonymous_streams() {
    let (s, alice, _) = alice_and_bob("revoke-claim", "anonymous_access = read-write");
    let mut by_publish = Stream::open(&s, None, "/family/json");
    let mut by_subscribe = Stream::open(&s, None, "/garden/sse");
    let mut elsewhere = Stream::open(&s, None, "/public/json");
    let anonymous = support::push::send(s.addr, "POST", "/family", &[], b"anonymous");
    assert_eq!(anonymous.status, 200, "{}", anonymous.text());
    by_publish.sees("anonymous");

    publish(&s, &alice, "family", "claimed");
    by_publish.ends_without("claimed");
    let _alices = Stream::open(&s, Some(&alice), "/garden/json");
    publish(&s, &alice, "garden", "claimed");
    by_subscribe.ends_without("claimed");
    assert_eq!(poll_status(&s, None, "family"), 401);
    assert_eq!(poll_status(&s, None, "garden"), 401);

    let still = support::push::send(s.addr, "POST", "/public", &[], b"still public");
    assert_eq!(still.status, 200, "{}", still.text());
    elsewhere.sees("still public");
    let kept = poll(s.addr, &alice, "family");
    assert_eq!(kept.len(), 2, "ending streams deletes nothing");
}

#[test]
fn a_new_password_or_name_ends_the_streams_opened_with_the_old_login() {
    let (s, alice, bob) = alice_and_bob("revoke-login", "");
    let key = s.add_client("bob", "phone");
    let token = s.add_app(&key, "app1");
    let mut device = s.subscribe(&key, None);
    let mut by_api = Stream::open(&s, Some(&bob), "/bobs/json");
    let r = json_as(&s, "PUT", "/user/bob", &bob, r#"{"password":"bpw-2"}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    let bob = basic("bob", "bpw-2");
    publish(&s, &bob, "bobs", "after the API change");
    by_api.ends_without("after the API change");

    let mut by_cli = Stream::open(&s, Some(&bob), "/bobs/ws");
    s.cli_ok(&["user", "passwd", "bob", "--password-stdin"], "bpw-3\n");
    let bob = basic("bob", "bpw-3");
    publish(&s, &bob, "bobs", "after the CLI change");
    by_cli.ends_without("after the CLI change");

    let mut renamed = Stream::open(&s, Some(&bob), "/bobs/sse");
    let r = json_as(&s, "PUT", "/user/bob", &alice, r#"{"name":"robert"}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    let robert = basic("robert", "bpw-3");
    publish(&s, &robert, "bobs", "after the rename");
    renamed.ends_without("after the rename");

    // A device's stream rests on its key, not on the password: it stays.
    let r = s.post_message(&format!(r#"{{"token":"{token}","data":{{"n":1}}}}"#));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(device.next().data.contains("\"n\":1"));
    let kept = poll(s.addr, &robert, "bobs");
    assert_eq!(kept.len(), 3, "ending streams deletes nothing");
}

#[test]
fn narrowing_anonymous_access_by_a_reload_ends_anonymous_streams() {
    let (s, alice, _) = alice_and_bob("revoke-reload", "anonymous_access = read-write");
    const ENDPOINT: &str = "upAbCdEf123456";
    let mut anonymous = Stream::open(&s, None, &format!("/{ENDPOINT}/json"));
    let mut alices = Stream::open(&s, Some(&alice), "/alices/json");
    let text = std::fs::read_to_string(&s.config).unwrap();
    std::fs::write(&s.config, text.replace("read-write", "endpoint-write")).unwrap();
    s.reload();
    s.wait_log("configuration reloaded");
    let r = support::push::send(s.addr, "POST", &format!("/{ENDPOINT}"), &[], b"web push");
    assert_eq!(r.status, 201, "{}", r.text());
    anonymous.ends_without("\"event\":\"message\"");
    publish(&s, &alice, "alices", "a user's stream stays");
    alices.sees("a user's stream stays");
}

/// Runs `open` and `change` at once, `rounds` times; `open` returns a stream when it was let
/// in. Every stream let in must end: before the change it is ended by it, after the change
/// it is refused, and one that authorised before but attached after ends once attached.
fn race(
    rounds: usize,
    setup: impl Fn(usize),
    open: impl Fn(usize) -> Option<Stream> + Sync,
    change: impl Fn(usize),
) {
    let mut left_open = Vec::new();
    for round in 0..rounds {
        setup(round);
        let barrier = std::sync::Barrier::new(2);
        let stream = std::thread::scope(|scope| {
            let opener = scope.spawn(|| {
                barrier.wait();
                open(round)
            });
            barrier.wait();
            change(round);
            opener.join().unwrap()
        });
        if let Some(mut stream) = stream
            && !stream.closed_within(Duration::from_secs(3))
        {
            left_open.push(round);
        }
    }
    assert!(left_open.is_empty(), "streams left open: {left_open:?}");
}

/// A stream that is let in, or `None` when it was refused.
fn try_open(addr: SocketAddr, auth: Option<&str>, path: &str) -> Option<Stream> {
    let headers: Vec<(&str, &str)> = auth.map(|a| ("Authorization", a)).into_iter().collect();
    let stream = JsonStream::open(addr, path, &headers);
    (stream.status == 200).then_some(Stream::Lines(stream))
}

#[test]
fn a_stream_opened_while_its_grant_is_taken_back_is_closed() {
    let (s, alice, bob) = alice_and_bob("revoke-grant-race", "");
    publish(&s, &alice, "shared", "created");
    assert_eq!(
        poll_status(&s, Some(&bob), "bobown"),
        200,
        "bob's login cached"
    );
    let addr = s.addr;
    race(
        20,
        |_| {
            s.cli_ok(&["topic", "grant", "shared", "bob", "--read"], "");
        },
        |_| try_open(addr, Some(&bob), "/shared/json"),
        |_| {
            s.cli_ok(&["topic", "grant", "shared", "bob"], "");
        },
    );
}

#[test]
fn an_anonymous_stream_opened_while_its_topic_is_claimed_is_closed() {
    let (s, alice, _) = alice_and_bob("revoke-claim-race", "anonymous_access = read-write");
    let addr = s.addr;
    race(
        20,
        |_| {},
        |round| try_open(addr, None, &format!("/t{round}/json")),
        |round| {
            publish(&s, &alice, &format!("t{round}"), "claimed");
        },
    );
}
