//! The ntfy-compatible front door against the real binary, over real sockets: what the ntfy
//! Android app, ntfy's CLI and scripts send, and what they read back. Publishing (headers,
//! query parameters, JSON, bodies that are not UTF-8, refused features), the four stream
//! formats (`/json`, `/sse`, `/raw`, `/ws`), every `since=` form, polls, keepalives, a
//! restart, who may read and write which topic, and the topic limits.

use crate::support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64ct::Encoding;
use miniserde::json::Value;
use support::push::{JsonStream, Obj, alice_and_bob, send};
use support::ws::{CLOSE, PING, PONG, TEXT, WsClient};
use support::{Response, Server, TIMEOUT, basic, closed_within, now_secs};

// ---------------------------------------------------------------------------------------
// Helpers: JSON objects, publishing, and a stream reader over a raw socket.

/// The objects of an array field.
fn objects(value: Option<&Value>) -> Vec<BTreeMap<String, Value>> {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::Object(o) => o.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                other => panic!("not an object: {other:?}"),
            })
            .collect(),
        other => panic!("not an array: {other:?}"),
    }
}

fn text_of(map: &BTreeMap<String, Value>, key: &str) -> String {
    match map.get(key) {
        Some(Value::String(s)) => s.clone(),
        other => panic!("{key}: {other:?} in {map:?}"),
    }
}

/// Publishes `text` with `PUT /<path>` and the given headers.
fn put(s: &Server, auth: &str, path: &str, headers: &[(&str, &str)], text: &str) -> Response {
    let mut all = vec![("Authorization", auth)];
    all.extend_from_slice(headers);
    s.request("PUT", path, &all, text)
}

/// A publish that must succeed: the message object it answered with.
fn publish(s: &Server, auth: &str, topic: &str, text: &str) -> Obj {
    let r = put(s, auth, &format!("/{topic}"), &[], text);
    assert_eq!(r.status, 200, "publish to {topic}: {}", r.text());
    let m = Obj::parse(&r.text());
    assert_eq!(m.event(), "message");
    assert_eq!(m.str("topic"), topic);
    m
}

/// The refusal `r` must be: status and a detail mentioning `needle`.
fn assert_refused(r: &Response, status: u16, needle: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    // ntfy's error JSON: `{"code":…,"http":…,"error":…}`.
    assert_eq!(
        support::json_field(&r.text(), "http").as_deref(),
        Some(status.to_string().as_str()),
        "{}",
        r.text()
    );
    let detail = support::json_field(&r.text(), "error").unwrap_or_default();
    assert!(
        detail.to_lowercase().contains(needle),
        "the refusal should name {needle:?}: {}",
        r.text()
    );
}

fn subscribe(s: &Server, auth: &str, path: &str) -> JsonStream {
    let stream = JsonStream::open(s.addr, path, &[("Authorization", auth)]);
    assert_eq!(stream.status, 200, "{path}: {}", stream.head);
    stream
}

/// `GET /<topics>/json?poll=1&<query>`: the messages, after checking the framing and that
/// the server closed the response.
fn poll(s: &Server, auth: &str, topics: &str, query: &str) -> Vec<Obj> {
    let mut stream = subscribe(s, auth, &format!("/{topics}/json?poll=1&{query}"));
    assert!(
        stream
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/x-ndjson")),
        "{}",
        stream.head
    );
    stream
        .lines_until_closed()
        .iter()
        .map(|line| {
            assert!(!line.is_empty(), "a blank line in a poll answer");
            let o = Obj::parse(line);
            assert_eq!(o.event(), "message", "a poll holds messages only: {line}");
            o
        })
        .collect()
}

fn texts(messages: &[Obj]) -> Vec<String> {
    messages
        .iter()
        .map(|m| String::from_utf8(m.message_bytes()).unwrap())
        .collect()
}

fn ids(messages: &[Obj]) -> Vec<String> {
    messages.iter().map(|m| m.str("id").to_owned()).collect()
}

const ENDPOINT: &str = "upAbCdEf123456";

// ---------------------------------------------------------------------------------------
// Health and publishing.

#[test]
fn health_says_healthy() {
    let s = Server::start("ntfy-health");
    let r = s.request("GET", "/v1/health", &[], "");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("content-type").unwrap_or("").contains("json"));
    assert_eq!(r.text(), r#"{"healthy":true}"#);
}

#[test]
fn put_and_post_answer_with_the_message_object() {
    let (s, alice, _) = alice_and_bob("ntfy-publish", "");
    let before = now_secs();
    let r = put(&s, &alice, "/news", &[], "hello world");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("content-type").unwrap_or("").contains("json"));
    let first = Obj::parse(&r.text());
    assert!(first.str("id").starts_with("op"), "{}", first.text);
    let time = first.int("time");
    assert!(
        (before..=now_secs() + 1).contains(&time),
        "time {time} is not now"
    );
    let expires = first.int("expires");
    assert!(
        (time + 12 * 3600 - 2..=time + 12 * 3600 + 2).contains(&expires),
        "expires {expires} is not 12 h after {time}"
    );
    assert_eq!(first.event(), "message");
    assert_eq!(first.str("topic"), "news");
    assert_eq!(first.str("message"), "hello world");
    assert!(!first.has("encoding"), "{}", first.text);
    for absent in [
        "title",
        "priority",
        "tags",
        "click",
        "actions",
        "content_type",
    ] {
        assert!(
            !first.has(absent),
            "{absent} without a sender: {}",
            first.text
        );
    }

    let r = s.request(
        "POST",
        "/news",
        &[("Authorization", &alice)],
        "  second, with spaces \n",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let second = Obj::parse(&r.text());
    assert_eq!(
        second.str("message"),
        "  second, with spaces \n",
        "untrimmed"
    );
    assert!(second.id_number() > first.id_number(), "ids grow");

    // What a subscriber reads back is the very object the publisher got.
    let polled = poll(&s, &alice, "news", "since=all");
    assert_eq!(polled.len(), 2);
    assert_eq!(polled[0].text, first.text);
    assert_eq!(polled[1].text, second.text);
}

#[test]
fn headers_set_title_priority_tags_click_icon_markdown_and_actions() {
    let (s, alice, _) = alice_and_bob("ntfy-headers", "");
    let r = put(
        &s,
        &alice,
        "/door",
        &[
            ("X-Title", "Front door"),
            ("X-Priority", "high"),
            ("X-Tags", "warning, skull"),
            ("X-Click", "https://example.com/cam"),
            ("X-Icon", "https://example.com/icon.png"),
            ("X-Markdown", "yes"),
            (
                "X-Actions",
                "view, Open portal, https://example.com/p, clear=true; \
                 http, \"Close door\", https://example.com/d, method=PUT, body=close",
            ),
        ],
        "**opened**",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let m = Obj::parse(&r.text());
    assert_eq!(m.str("title"), "Front door");
    assert_eq!(m.int("priority"), 4);
    assert_eq!(m.strings("tags"), ["warning", "skull"]);
    assert_eq!(m.str("click"), "https://example.com/cam");
    assert_eq!(m.str("icon"), "https://example.com/icon.png");
    assert_eq!(m.str("content_type"), "text/markdown");
    assert_eq!(m.str("message"), "**opened**");
    let actions = objects(m.get("actions"));
    assert_eq!(actions.len(), 2, "{}", m.text);
    assert_eq!(text_of(&actions[0], "action"), "view");
    assert_eq!(text_of(&actions[0], "label"), "Open portal");
    assert_eq!(text_of(&actions[0], "url"), "https://example.com/p");
    assert!(matches!(actions[0].get("clear"), Some(Value::Bool(true))));
    assert_eq!(text_of(&actions[1], "action"), "http");
    assert_eq!(text_of(&actions[1], "label"), "Close door");
    assert_eq!(text_of(&actions[1], "method"), "PUT");
    assert_eq!(text_of(&actions[1], "body"), "close");
    // Stored with the message: a later subscriber sees the same fields.
    let polled = poll(&s, &alice, "door", "since=all");
    assert_eq!(polled.len(), 1);
    assert_eq!(polled[0].text, m.text);

    // The short header names, and priorities by number and by name.
    let r = put(
        &s,
        &alice,
        "/door",
        &[("Title", "Plain"), ("Tags", "one")],
        "x",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let m = Obj::parse(&r.text());
    assert_eq!(m.str("title"), "Plain");
    assert_eq!(m.strings("tags"), ["one"]);
    for (given, level) in [
        ("1", 1),
        ("min", 1),
        ("2", 2),
        ("low", 2),
        ("3", 3),
        ("default", 3),
        ("4", 4),
        ("HIGH", 4),
        ("5", 5),
        ("max", 5),
        ("urgent", 5),
    ] {
        let r = put(&s, &alice, "/door", &[("X-Priority", given)], "p");
        assert_eq!(r.status, 200, "priority {given}: {}", r.text());
        assert_eq!(Obj::parse(&r.text()).int("priority"), level, "{given}");
    }
    let r = put(&s, &alice, "/door", &[("Priority", "2")], "p");
    assert_eq!(Obj::parse(&r.text()).int("priority"), 2);
    for bad in ["6", "0x", "loud"] {
        let r = put(&s, &alice, "/door", &[("X-Priority", bad)], "p");
        assert_refused(&r, 400, "priority");
    }
    let r = put(&s, &alice, "/door", &[("X-Actions", "jump, Away")], "p");
    assert_refused(&r, 400, "action");
}

#[test]
fn query_parameters_set_the_same_fields() {
    let (s, alice, _) = alice_and_bob("ntfy-query", "");
    let r = put(&s, &alice, "/news?title=Hi%20there&p=5&ta=a,b", &[], "body");
    assert_eq!(r.status, 200, "{}", r.text());
    let m = Obj::parse(&r.text());
    assert_eq!(m.str("title"), "Hi there");
    assert_eq!(m.int("priority"), 5);
    assert_eq!(m.strings("tags"), ["a", "b"]);
    assert_eq!(m.str("message"), "body");

    // The long names, as the ntfy app's publish dialog sends them.
    let r = put(
        &s,
        &alice,
        "/news?t=Short+title&priority=low&tags=x&click=https%3A%2F%2Fexample.com%2F&icon=https://example.com/i.png&markdown=1&message=from%20the%20query",
        &[],
        "",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let m = Obj::parse(&r.text());
    assert_eq!(m.str("title"), "Short title");
    assert_eq!(m.int("priority"), 2);
    assert_eq!(m.strings("tags"), ["x"]);
    assert_eq!(m.str("click"), "https://example.com/");
    assert_eq!(m.str("icon"), "https://example.com/i.png");
    assert_eq!(m.str("content_type"), "text/markdown");
    assert_eq!(m.str("message"), "from the query");

    let r = put(&s, &alice, "/news?p=6", &[], "x");
    assert_refused(&r, 400, "priority");
}

/// What apprise's ntfy plugin sends: the text as JSON, priority and tags as headers.
#[test]
fn json_publish_takes_headers_for_what_the_json_leaves_out() {
    let (s, alice, _) = alice_and_bob("ntfy-json-headers", "");
    let r = s.request(
        "POST",
        "/",
        &[
            ("Authorization", &alice),
            ("X-Priority", "high"),
            ("X-Tags", "floppy_disk,nas"),
            ("X-Title", "from the header"),
        ],
        r#"{"topic":"backups","title":"from json","message":"Backup done"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let m = Obj::parse(&r.text());
    assert_eq!(m.str("title"), "from json", "the JSON's field wins");
    assert_eq!(m.int("priority"), 4);
    assert_eq!(m.strings("tags"), ["floppy_disk", "nas"]);
    let r = s.request(
        "POST",
        "/",
        &[("Authorization", &alice), ("X-Delay", "10m")],
        r#"{"topic":"backups","message":"later"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        Obj::parse(&r.text()).int("time") >= now_secs() + 599,
        "sent later"
    );
}

#[test]
fn json_publish_to_the_root() {
    let (s, alice, _) = alice_and_bob("ntfy-json", "");
    let body = r#"{"topic":"news","message":"from json","title":"T","priority":4,
        "tags":["a","b"],"click":"https://example.com/","icon":"https://example.com/i.png",
        "actions":[{"action":"view","label":"Open","url":"https://example.com/o"}],
        "markdown":true}"#;
    let r = s.request(
        "POST",
        "/",
        &[
            ("Authorization", &alice),
            ("Content-Type", "application/json"),
        ],
        body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let m = Obj::parse(&r.text());
    assert_eq!(m.event(), "message");
    assert_eq!(m.str("topic"), "news");
    assert_eq!(m.str("message"), "from json");
    assert_eq!(m.str("title"), "T");
    assert_eq!(m.int("priority"), 4);
    assert_eq!(m.strings("tags"), ["a", "b"]);
    assert_eq!(m.str("click"), "https://example.com/");
    assert_eq!(m.str("icon"), "https://example.com/i.png");
    assert_eq!(m.str("content_type"), "text/markdown");
    let actions = objects(m.get("actions"));
    assert_eq!(actions.len(), 1);
    assert_eq!(text_of(&actions[0], "label"), "Open");
    assert_eq!(text_of(&actions[0], "url"), "https://example.com/o");
    assert_eq!(texts(&poll(&s, &alice, "news", "since=all")), ["from json"]);

    // ntfy takes the JSON object with PUT as well.
    let r = s.request(
        "PUT",
        "/",
        &[("Authorization", &alice)],
        r#"{"topic":"news","message":"put json"}"#,
    );
    assert_eq!(r.status, 200, "PUT /: {}", r.text());
    assert_eq!(Obj::parse(&r.text()).str("message"), "put json");

    let post = |body: &str| s.request("POST", "/", &[("Authorization", &alice)], body);
    let r = post(r#"{"topic":"news"}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(Obj::parse(&r.text()).str("message"), "triggered");
    assert_refused(&post(r#"{"topic":"news","priority":6}"#), 400, "priority");
    assert_refused(&post(r#"{"topic":"a.b","message":"x"}"#), 400, "topic");
    assert_eq!(post(r#"{"message":"no topic"}"#).status, 400);
    assert_eq!(post("not json").status, 400);
    let r = s.request("POST", "/", &[], r#"{"topic":"news","message":"x"}"#);
    assert_eq!(r.status, 401, "anonymous: {}", r.text());
}

#[test]
fn unsupported_features_are_refused_naming_the_feature() {
    let (s, alice, _) = alice_and_bob("ntfy-unsupported", "");
    for (header, value, feature) in [
        ("X-Attach", "https://example.com/f.jpg", "attach"),
        ("X-Email", "a@example.com", "email"),
        ("X-Call", "yes", "call"),
        ("X-Filename", "f.txt", "filename"),
    ] {
        let r = put(&s, &alice, "/news", &[(header, value)], "x");
        assert_refused(&r, 400, feature);
    }
    // Delays are taken (`ntfy_updates`), but not in words.
    let r = put(&s, &alice, "/news?delay=tomorrow", &[], "x");
    assert_refused(&r, 400, "delay");
    let r = s.request(
        "POST",
        "/",
        &[("Authorization", &alice)],
        r#"{"topic":"news","message":"x","attach":"https://example.com/f.jpg"}"#,
    );
    assert_refused(&r, 400, "attach");
    // Nothing of it was stored, but the topic works.
    assert!(poll(&s, &alice, "news", "since=all").is_empty());
    // `Firebase: no` is no feature we lack: accepted.
    let r = put(&s, &alice, "/news", &[("Firebase", "no")], "ok");
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn a_body_that_is_not_utf8_comes_back_as_base64_of_the_same_bytes() {
    let (s, alice, _) = alice_and_bob("ntfy-binary", "");
    let bytes = [0xff, 0xfe, 0x00, b'a', 0x80, b'\n', 0xc3];
    let r = send(s.addr, "PUT", "/bin", &[("Authorization", &alice)], &bytes);
    assert_eq!(r.status, 200, "{}", r.text());
    let m = Obj::parse(&r.text());
    assert_eq!(m.str("encoding"), "base64");
    assert_eq!(m.message_bytes(), bytes);
    let polled = poll(&s, &alice, "bin", "since=all");
    assert_eq!(polled.len(), 1);
    assert_eq!(polled[0].str("encoding"), "base64");
    assert_eq!(polled[0].message_bytes(), bytes);
}

#[test]
fn an_empty_body_triggers_and_an_oversized_one_is_413() {
    let (s, alice, _) = alice_and_bob("ntfy-sizes", "");
    assert_eq!(publish(&s, &alice, "news", "").str("message"), "triggered");
    let full = "a".repeat(4096);
    assert_eq!(publish(&s, &alice, "news", &full).str("message"), full);
    let r = put(&s, &alice, "/news", &[], &"a".repeat(4097));
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(
        texts(&poll(&s, &alice, "news", "since=all")),
        ["triggered", full.as_str()]
    );
}

#[test]
fn cache_no_reaches_live_subscribers_but_is_never_replayed() {
    let (s, alice, _) = alice_and_bob("ntfy-cache-no", "");
    publish(&s, &alice, "news", "before");
    let mut live = subscribe(&s, &alice, "/news/json");
    live.open_event();
    let r = put(&s, &alice, "/news", &[("Cache", "no")], "ephemeral");
    assert_eq!(r.status, 200, "{}", r.text());
    let r = put(&s, &alice, "/news?cache=no", &[], "ephemeral too");
    assert_eq!(r.status, 200, "{}", r.text());
    publish(&s, &alice, "news", "kept");
    assert_eq!(live.message().str("message"), "ephemeral");
    assert_eq!(live.message().str("message"), "ephemeral too");
    assert_eq!(live.message().str("message"), "kept");
    assert_eq!(
        texts(&poll(&s, &alice, "news", "since=all")),
        ["before", "kept"]
    );
}

// ---------------------------------------------------------------------------------------
// Subscribing.

#[test]
fn json_stream_sends_open_then_cached_then_live_as_ndjson() {
    let (s, alice, _) = alice_and_bob("ntfy-json-stream", "");
    let m1 = publish(&s, &alice, "t1", "one");
    let m2 = publish(&s, &alice, "t2", "two");
    let m3 = publish(&s, &alice, "t1", "three");
    let mut stream = subscribe(&s, &alice, "/t1,t2/json?since=all");
    assert!(
        stream
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/x-ndjson")),
        "{}",
        stream.head
    );
    let open = stream.open_event();
    assert_eq!(open.str("topic"), "t1,t2");
    assert!(open.has("id") && open.int("time") > 0, "{}", open.text);
    for expected in [&m1, &m2, &m3] {
        let m = stream.message();
        assert_eq!(
            m.text, expected.text,
            "cached, in order, each with its topic"
        );
    }
    stream.assert_no_message(Duration::from_millis(200));
    let m4 = publish(&s, &alice, "t2", "four");
    let m5 = publish(&s, &alice, "t1", "five");
    let got = stream.message();
    assert_eq!((got.str("id"), got.str("topic")), (m4.str("id"), "t2"));
    let got = stream.message();
    assert_eq!((got.str("id"), got.str("topic")), (m5.str("id"), "t1"));
    assert_eq!(got.str("message"), "five");
}

#[test]
fn since_picks_the_cached_messages() {
    let (s, alice, _) = alice_and_bob("ntfy-since", "");
    let a = publish(&s, &alice, "news", "a");
    // The next message is posted in a later second than `a`.
    while now_secs() <= a.int("time") {
        std::thread::sleep(Duration::from_millis(20));
    }
    let b = publish(&s, &alice, "news", "b");
    let c = publish(&s, &alice, "news", "c");
    assert!(b.int("time") > a.int("time"));
    let all = ["a", "b", "c"];

    let check = |query: &str, expected: &[&str]| {
        let got = poll(&s, &alice, "news", query);
        assert_eq!(texts(&got), expected, "poll with {query}");
        got
    };
    let got = check("since=all", &all);
    assert_eq!(
        ids(&got),
        ids(&[a, b, c]),
        "the ids the publisher was given"
    );
    check("since=none", &[]);
    check(&format!("since={}", got[0].str("id")), &["b", "c"]);
    check(&format!("since={}", got[2].str("id")), &[]);
    check("since=Xq3ZmAbc81Pd", &all);
    check(&format!("since={}", got[0].int("time")), &all);
    check(&format!("since={}", got[1].int("time")), &["b", "c"]);
    check(&format!("since={}", now_secs() + 100), &[]);
    check("since=10m", &all);
    check("since=0s", &[]);
    check("since=latest", &["c"]);
    check("", &all);

    // A live stream without `since`, or with `since=none`, starts with nothing cached but
    // gets what comes next.
    for path in ["/news/json", "/news/json?since=none"] {
        let mut stream = subscribe(&s, &alice, path);
        stream.open_event();
        stream.assert_no_message(Duration::from_millis(300));
        let d = publish(&s, &alice, "news", "live");
        assert_eq!(stream.message().str("id"), d.str("id"), "{path}");
    }
    // A live stream with `since=<id>` gets the later ones, then live ones.
    let mut stream = subscribe(
        &s,
        &alice,
        &format!("/news/json?since={}", got[1].str("id")),
    );
    stream.open_event();
    assert_eq!(stream.message().str("message"), "c");
    assert_eq!(stream.message().str("message"), "live");
    assert_eq!(stream.message().str("message"), "live");
    stream.assert_no_message(Duration::from_millis(200));
    publish(&s, &alice, "news", "later");
    assert_eq!(stream.message().str("message"), "later");
}

#[test]
fn poll_answers_the_cached_messages_and_closes() {
    let (s, alice, _) = alice_and_bob("ntfy-poll", "");
    publish(&s, &alice, "news", "one");
    publish(&s, &alice, "news", "two");
    let started = Instant::now();
    let got = poll(&s, &alice, "news", "since=all");
    assert_eq!(texts(&got), ["one", "two"]);
    assert!(started.elapsed() < Duration::from_secs(3), "poll lingered");
    // A poll of several topics, each message with its own topic.
    publish(&s, &alice, "other", "three");
    let got = poll(&s, &alice, "news,other", "since=all");
    assert_eq!(texts(&got), ["one", "two", "three"]);
    assert_eq!(got[2].str("topic"), "other");
    assert_eq!(got[0].str("topic"), "news");
}

/// One SSE event: its `name: value` fields up to the blank line; `retry:` blocks skipped.
fn sse_event(stream: &mut JsonStream) -> Vec<(String, String)> {
    loop {
        let mut fields = Vec::new();
        loop {
            let line = stream.line_within(TIMEOUT).expect("an SSE line");
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(": ").expect("name: value");
            fields.push((name.to_owned(), value.to_owned()));
        }
        if fields.iter().any(|(n, _)| n != "retry") {
            return fields;
        }
    }
}

#[test]
fn sse_stream_frames_events() {
    let (s, alice, _) = alice_and_bob("ntfy-sse", "");
    let cached = publish(&s, &alice, "news", "cached");
    let mut stream = subscribe(&s, &alice, "/news/sse?since=all");
    assert!(
        stream
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/event-stream")),
        "{}",
        stream.head
    );
    let open = sse_event(&mut stream);
    assert_eq!(open[0], ("event".to_owned(), "open".to_owned()), "{open:?}");
    assert_eq!(open.len(), 2, "{open:?}");
    assert_eq!(open[1].0, "data");
    assert_eq!(Obj::parse(&open[1].1).event(), "open");

    let message = sse_event(&mut stream);
    assert_eq!(message.len(), 2, "{message:?}");
    assert_eq!(message[0], ("id".to_owned(), cached.str("id").to_owned()));
    assert_eq!(message[1].0, "data");
    assert_eq!(message[1].1, cached.text);

    let live = publish(&s, &alice, "news", "live\nwith two lines");
    let message = sse_event(&mut stream);
    assert_eq!(message[0], ("id".to_owned(), live.str("id").to_owned()));
    let data = Obj::parse(&message[1].1);
    assert_eq!(data.str("message"), "live\nwith two lines");
    assert_eq!(data.str("id"), live.str("id"));
}

#[test]
fn raw_stream_sends_the_text_alone() {
    let (s, alice, _) = alice_and_bob("ntfy-raw", "");
    publish(&s, &alice, "news", "cached");
    let mut stream = subscribe(&s, &alice, "/news/raw?since=all");
    assert!(
        stream
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/plain")),
        "{}",
        stream.head
    );
    assert_eq!(stream.line_within(TIMEOUT).unwrap(), "cached");
    publish(&s, &alice, "news", "two\nlines");
    assert_eq!(stream.line_within(TIMEOUT).unwrap(), "two lines");
    publish(&s, &alice, "news", "third");
    assert_eq!(stream.line_within(TIMEOUT).unwrap(), "third");
}

#[test]
fn websocket_stream_sends_frames_and_answers_ping_and_close() {
    let (s, alice, _) = alice_and_bob("ntfy-ws", "");
    let cached = publish(&s, &alice, "news", "cached");
    let mut ws = WsClient::connect(s.addr, "/news/ws?since=all", &[("Authorization", &alice)])
        .expect("a 101 upgrade");
    let open = Obj::parse(&ws.text_within(TIMEOUT).expect("the open frame"));
    assert_eq!(open.event(), "open");
    assert_eq!(open.str("topic"), "news");
    let m = ws.text_within(TIMEOUT).expect("the cached message");
    assert_eq!(m, cached.text);
    let live = publish(&s, &alice, "news", "live");
    let m = Obj::parse(&ws.text_within(TIMEOUT).expect("the live message"));
    assert_eq!(m.str("id"), live.str("id"));
    assert_eq!(m.str("message"), "live");

    ws.send_ping(b"are you there").unwrap();
    let pong = ws.next_frame_within(TIMEOUT).expect("a pong");
    assert_eq!(pong.opcode, PONG);
    assert_eq!(pong.payload, b"are you there");

    ws.send_close(1000).unwrap();
    let close = ws.next_frame_within(TIMEOUT).expect("a close frame");
    assert_eq!(close.opcode, CLOSE);
    assert_eq!(close.payload[..2], 1000u16.to_be_bytes());
    let mut rest = Vec::new();
    assert!(
        closed_within(&mut ws.conn, &mut rest, TIMEOUT),
        "the server kept the socket open"
    );
    assert!(rest.is_empty(), "bytes after the close: {rest:?}");

    // Without credentials: no upgrade.
    let refused = WsClient::connect(s.addr, "/news/ws", &[])
        .err()
        .expect("a refusal");
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    // Not an upgrade at all: 400.
    let plain = JsonStream::open(s.addr, "/news/ws", &[("Authorization", &alice)]);
    assert_eq!(plain.status, 400, "{}", plain.head);
}

#[test]
fn two_subscribers_of_a_topic_both_get_a_message() {
    let (s, alice, _) = alice_and_bob("ntfy-fanout", "");
    let mut first = subscribe(&s, &alice, "/news/json");
    let mut second = subscribe(&s, &alice, "/news,other/json");
    first.open_event();
    second.open_event();
    let m = publish(&s, &alice, "news", "for both");
    assert_eq!(first.message().text, m.text);
    assert_eq!(second.message().text, m.text);
    let other = publish(&s, &alice, "other", "for the second");
    assert_eq!(second.message().str("id"), other.str("id"));
    first.assert_no_message(Duration::from_millis(200));
}

#[test]
fn keepalives_come_at_the_configured_interval() {
    let (s, alice, _) = alice_and_bob("ntfy-keepalive", "keepalive_secs = 1");
    let mut stream = subscribe(&s, &alice, "/news/json");
    stream.open_event();
    let keepalive = stream
        .json_within(Duration::from_secs(3))
        .expect("a keepalive within 3 s");
    assert_eq!(keepalive.event(), "keepalive", "{}", keepalive.text);
    assert_eq!(keepalive.str("topic"), "news");
    assert!(keepalive.int("time") > 0 && keepalive.has("id"));
    // The stream goes on after it, still without blank lines.
    let m = publish(&s, &alice, "news", "after the keepalive");
    assert_eq!(stream.message().str("id"), m.str("id"));
    // And on /ws: a keepalive event and a ping frame.
    let mut ws = WsClient::connect(s.addr, "/news/ws", &[("Authorization", &alice)]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    let (mut text_keepalive, mut ping) = (false, false);
    while !(text_keepalive && ping) {
        let left = deadline.saturating_duration_since(Instant::now());
        let frame = ws
            .next_frame_within(left)
            .unwrap_or_else(|| panic!("keepalive {text_keepalive}, ping {ping} within 3 s"));
        match frame.opcode {
            PING => ping = true,
            TEXT => {
                let o = Obj::parse(std::str::from_utf8(&frame.payload).unwrap());
                text_keepalive |= o.event() == "keepalive";
            }
            other => panic!("unexpected frame {other}"),
        }
    }
    // Pongs from the client (text_within answers pings) do not disturb the stream.
    let _ = ws.send_frame(0x80 | PONG, b"");
    let m = publish(&s, &alice, "news", "after the pings");
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let o = Obj::parse(&ws.text_within(left).expect("the message after the pings"));
        if o.event() == "message" {
            assert_eq!(o.str("id"), m.str("id"));
            break;
        }
    }
}

#[test]
fn after_a_crash_since_id_gives_exactly_the_later_messages() {
    let (mut s, alice, _) = alice_and_bob("ntfy-restart", "");
    let sent: Vec<Obj> = ["one", "two", "three"]
        .iter()
        .map(|t| publish(&s, &alice, "news", t))
        .collect();
    s.restart();
    let got = poll(&s, &alice, "news", &format!("since={}", sent[0].str("id")));
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].text, sent[1].text, "same id, time and text");
    assert_eq!(got[1].text, sent[2].text);
    let after = publish(&s, &alice, "news", "four");
    assert!(
        after.id_number() > sent[2].id_number(),
        "an id given before the crash was given again"
    );
}

// ---------------------------------------------------------------------------------------
// Who may read and write.

#[test]
fn default_access_needs_a_user_except_to_post_to_endpoint_topics() {
    let (s, alice, bob) = alice_and_bob("ntfy-access", "");
    // Anonymous: no subscription, no publish, with a challenge.
    for path in ["/news/json", "/news/sse", "/news/raw", "/news/json?poll=1"] {
        let r = s.request("GET", path, &[], "");
        assert_eq!(r.status, 401, "{path}: {}", r.text());
        assert!(r.header("www-authenticate").is_some(), "{path}");
    }
    let r = s.request("PUT", "/news", &[], "hi");
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.header("www-authenticate").is_some());

    // alice's topic: not bob's.
    publish(&s, &alice, "private", "mine");
    assert_eq!(put(&s, &bob, "/private", &[], "hi").status, 403);
    let r = s.request(
        "GET",
        "/private/json?poll=1",
        &[("Authorization", &bob)],
        "",
    );
    assert_eq!(r.status, 403, "{}", r.text());
    let r = s.request("GET", "/private/json", &[], "");
    assert_eq!(r.status, 401, "{}", r.text());
    let r = s.request("GET", "/private/auth", &[("Authorization", &alice)], "");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), r#"{"success":true}"#);
    let r = s.request("GET", "/private/auth", &[("Authorization", &bob)], "");
    assert_eq!(r.status, 403, "{}", r.text());

    // ntfy's `?auth=`: the base64url of an Authorization value.
    let auth_param = base64ct::Base64UrlUnpadded::encode_string(alice.as_bytes());
    let r = s.request(
        "GET",
        &format!("/private/json?poll=1&since=all&auth={auth_param}"),
        &[],
        "",
    );
    assert_eq!(r.status, 200, "?auth=: {}", r.text());
    assert!(r.text().contains("\"message\":\"mine\""), "{}", r.text());
    let bob_param = base64ct::Base64UrlUnpadded::encode_string(bob.as_bytes());
    let r = s.request(
        "GET",
        &format!("/private/json?poll=1&auth={bob_param}"),
        &[],
        "",
    );
    assert_eq!(r.status, 403, "?auth= as bob: {}", r.text());

    // Wrong password, or a token this server never gave.
    let wrong = basic("alice", "nope");
    assert_eq!(put(&s, &wrong, "/private", &[], "hi").status, 401);
    let r = s.request("GET", "/private/json", &[("Authorization", &wrong)], "");
    assert_eq!(r.status, 401, "{}", r.text());
    let r = put(
        &s,
        "Bearer tk_abcdefghijklmnopqrstuvwxyz012",
        "/private",
        &[],
        "hi",
    );
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(texts(&poll(&s, &alice, "private", "since=all")), ["mine"]);

    // An endpoint topic: any app server may post, the first user to subscribe claims it.
    let push = [0x01, 0x80, 0xfe, b'x'];
    let r = send(s.addr, "POST", &format!("/{ENDPOINT}"), &[], &push);
    assert_eq!(r.status, 201, "{}", r.text());
    let r = send(
        s.addr,
        "POST",
        &format!("/{ENDPOINT}"),
        &[
            (
                "Authorization",
                "vapid t=eyJhbGciOiJFUzI1NiJ9.e30.c2ln, k=BAbc",
            ),
            ("Content-Encoding", "aes128gcm"),
            ("TTL", "60"),
        ],
        b"second",
    );
    assert_eq!(
        r.status,
        201,
        "a VAPID header is not ours to check: {}",
        r.text()
    );
    let got = poll(&s, &alice, ENDPOINT, "since=all");
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].message_bytes(), push);
    assert_eq!(got[0].str("topic"), ENDPOINT);
    assert_eq!(got[1].message_bytes(), b"second");
    // Now alice's: bob may not read it, app servers may still post to it.
    let r = s.request(
        "GET",
        &format!("/{ENDPOINT}/json?poll=1"),
        &[("Authorization", &bob)],
        "",
    );
    assert_eq!(r.status, 403, "{}", r.text());
    let r = s.request(
        "GET",
        &format!("/{ENDPOINT}/auth"),
        &[("Authorization", &bob)],
        "",
    );
    assert_eq!(r.status, 403, "{}", r.text());
    let r = send(s.addr, "POST", &format!("/{ENDPOINT}"), &[], b"third");
    assert_eq!(r.status, 201, "{}", r.text());
    let mut live = subscribe(&s, &alice, &format!("/{ENDPOINT}/json?since=all"));
    live.open_event();
    assert_eq!(live.message().message_bytes(), push);
    assert_eq!(live.message().message_bytes(), b"second");
    assert_eq!(live.message().message_bytes(), b"third");

    // A short `up…` name is no endpoint topic.
    let r = s.request("PUT", "/upShort", &[], "x");
    assert_eq!(r.status, 401, "{}", r.text());
}

#[test]
fn an_anonymous_publish_to_an_endpoint_topic_gets_a_name_not_the_readers_id() {
    // Regression: the answer's `op<id>` showed any stranger the global message counter.
    let (s, alice, _) = alice_and_bob("ntfy-anonymous-id", "");
    let json = format!(r#"{{"topic":"{ENDPOINT}","message":"from an app server"}}"#);
    let mut names = Vec::new();
    for _ in 0..2 {
        let r = s.request("POST", "/", &[], &json);
        assert_eq!(r.status, 200, "{}", r.text());
        names.push(Obj::parse(&r.text()).str("id").to_owned());
        publish(&s, &alice, "news", "in between");
    }
    let got = poll(&s, &alice, ENDPOINT, "since=all");
    assert_eq!(got.len(), 2);
    for (name, m) in names.iter().zip(&got) {
        assert!(m.str("id").starts_with("op"), "{}", m.text);
        let hex = name.strip_prefix('m').unwrap_or_else(|| panic!("{name}"));
        assert_eq!(hex.len(), 16, "{name}");
        assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()), "{name}");
    }
    assert_ne!(names[0], names[1]);

    let mine = s.request("POST", "/", &[("Authorization", &alice)], &json);
    let id = Obj::parse(&mine.text()).str("id").to_owned();
    assert!(id.starts_with("op"), "a reader gets the id it reads: {id}");
}

#[test]
fn endpoint_topics_answer_unifiedpush_discovery() {
    let s = Server::start("ntfy-discovery");
    for path in [format!("/{ENDPOINT}"), "/anything?up=1".to_owned()] {
        let r = s.request("GET", &path, &[], "");
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_eq!(r.text(), r#"{"unifiedpush":{"version":1}}"#);
    }
    assert_eq!(s.request("GET", "/anything", &[], "").status, 404);
}

#[test]
fn read_write_lets_anonymous_use_unowned_topics_only() {
    let (s, alice, _) = alice_and_bob("ntfy-anon-rw", "anonymous_access = read-write");
    publish(&s, &alice, "private", "mine");
    let r = s.request("PUT", "/open", &[], "anyone");
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s.request("GET", "/open/json?poll=1&since=all", &[], "");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("\"message\":\"anyone\""), "{}", r.text());
    let mut live = JsonStream::open(s.addr, "/open/json", &[]);
    assert_eq!(live.status, 200);
    live.open_event();
    assert_eq!(s.request("PUT", "/open", &[], "live").status, 200);
    assert_eq!(live.message().str("message"), "live");

    let r = s.request("PUT", "/private", &[], "intruder");
    assert_eq!(r.status, 401, "{}", r.text());
    let r = s.request("GET", "/private/json?poll=1", &[], "");
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(texts(&poll(&s, &alice, "private", "since=all")), ["mine"]);
}

#[test]
fn no_anonymous_access_refuses_even_endpoint_topics() {
    let (s, alice, _) = alice_and_bob("ntfy-anon-none", "anonymous_access = none");
    let r = send(s.addr, "POST", &format!("/{ENDPOINT}"), &[], b"push");
    assert_eq!(r.status, 401, "{}", r.text());
    let r = send(
        s.addr,
        "POST",
        &format!("/{ENDPOINT}"),
        &[("Authorization", &alice)],
        b"push",
    );
    assert_eq!(r.status, 201, "with a user: {}", r.text());
    let got = poll(&s, &alice, ENDPOINT, "since=all");
    assert_eq!(texts(&got), ["push"]);
}

// ---------------------------------------------------------------------------------------
// Limits and names.

#[test]
fn a_full_topic_queue_is_429_with_retry_after() {
    let (s, alice, _) = alice_and_bob("ntfy-queue-full", "max_queued_per_topic = 2");
    publish(&s, &alice, "news", "one");
    publish(&s, &alice, "news", "two");
    let r = put(&s, &alice, "/news", &[], "three");
    assert_eq!(r.status, 429, "{}", r.text());
    let retry: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("Retry-After in seconds");
    assert!(retry > 0);
    assert_eq!(
        texts(&poll(&s, &alice, "news", "since=all")),
        ["one", "two"]
    );
}

#[test]
fn a_topic_queue_is_also_capped_in_bytes() {
    let (s, alice, _) = alice_and_bob("ntfy-queue-bytes", "max_queued_bytes_per_topic = 4096");
    publish(&s, &alice, "news", &"a".repeat(3000));
    let r = put(&s, &alice, "/news", &[], &"b".repeat(3000));
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.header("retry-after").is_some());
    assert_eq!(poll(&s, &alice, "news", "since=all").len(), 1);
}

#[test]
fn ttls_follow_the_topic_settings() {
    let (s, alice, _) = alice_and_bob(
        "ntfy-ttl",
        "topic_default_ttl_secs = 60\ntopic_max_ttl_secs = 120",
    );
    let m = publish(&s, &alice, "news", "x");
    let ttl = m.int("expires") - m.int("time");
    assert!(
        (59..=61).contains(&ttl),
        "ntfy publish lives 60 s, not {ttl}: {}",
        m.text
    );

    let post =
        |headers: &[(&str, &str)]| send(s.addr, "POST", &format!("/{ENDPOINT}"), headers, b"p");
    let r = post(&[]);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("ttl"), Some("60"), "the default TTL");
    let r = post(&[("TTL", "100000")]);
    assert_eq!(r.header("ttl"), Some("120"), "shortened to the maximum");
    let r = post(&[("TTL", "30")]);
    assert_eq!(r.header("ttl"), Some("30"));
    let got = poll(&s, &alice, ENDPOINT, "since=all");
    let lives: Vec<u64> = got
        .iter()
        .map(|m| m.int("expires") - m.int("time"))
        .collect();
    assert_eq!(got.len(), 3, "{lives:?}");
    for (life, want) in lives.iter().zip([60, 120, 30]) {
        assert!(life.abs_diff(want) <= 1, "{lives:?}");
    }
    // An app server's publish to an ordinary topic with `?up=1` is a Web Push request too.
    let r = send(
        s.addr,
        "POST",
        "/news?up=1",
        &[("Authorization", &alice)],
        b"up",
    );
    assert_eq!(r.status, 201, "{}", r.text());
}

#[test]
fn an_expired_message_is_not_replayed() {
    let (s, alice, _) = alice_and_bob("ntfy-expiry", "topic_default_ttl_secs = 1");
    publish(&s, &alice, "news", "short-lived");
    assert_eq!(poll(&s, &alice, "news", "since=all").len(), 1);
    std::thread::sleep(Duration::from_millis(1300));
    assert!(poll(&s, &alice, "news", "since=all").is_empty());
}

#[test]
fn a_user_has_at_most_max_topics_per_user() {
    let (s, alice, _) = alice_and_bob("ntfy-topic-cap", "max_topics_per_user = 1");
    publish(&s, &alice, "one", "x");
    assert_eq!(put(&s, &alice, "/two", &[], "x").status, 403);
    let r = s.request("GET", "/two/json?poll=1", &[("Authorization", &alice)], "");
    assert_eq!(r.status, 403, "{}", r.text());
    publish(&s, &alice, "one", "still fine");
}

#[test]
fn unclaimed_endpoint_topics_are_capped() {
    let s = Server::start_with("ntfy-unclaimed-cap", "max_unclaimed_topics = 1");
    let r = send(s.addr, "POST", "/upAAAAAAAAAAAA", &[], b"x");
    assert_eq!(r.status, 201, "{}", r.text());
    let r = send(s.addr, "POST", "/upBBBBBBBBBBBB", &[], b"x");
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.header("retry-after").is_some());
    let r = send(s.addr, "POST", "/upAAAAAAAAAAAA", &[], b"again");
    assert_eq!(r.status, 201, "an existing one: {}", r.text());
}

#[test]
fn subscriptions_are_checked_for_topic_count_and_names() {
    let (s, alice, _) = alice_and_bob("ntfy-sub-checks", "max_topics_per_stream = 2");
    let get = |path: &str| {
        s.request("GET", path, &[("Authorization", &alice)], "")
            .status
    };
    assert_eq!(get("/a,b,c/json?poll=1"), 400);
    assert_eq!(get("/a,b/json?poll=1"), 200);
    assert_eq!(get("/a.b/json?poll=1"), 400);
    assert_eq!(get("/a,a.b/json?poll=1"), 400);
    assert_eq!(get(&format!("/{}/json?poll=1", "x".repeat(65))), 400);
    assert_eq!(get(&format!("/{}/json?poll=1", "x".repeat(64))), 200);
    assert_eq!(get("/a,,b/json?poll=1"), 400);
    assert_eq!(
        get("/a,user/json?poll=1"),
        400,
        "a reserved name is no topic"
    );
    let r = s.request("GET", "/a,b,c/json?poll=1", &[], "");
    assert_eq!(r.status, 400, "checked before credentials: {}", r.text());
}

#[test]
fn reserved_names_still_route_to_the_openpush_api() {
    let (s, alice, _) = alice_and_bob("ntfy-reserved", "");
    let r = s.request("GET", "/user", &[("Authorization", &alice)], "");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text().contains("\"name\":\"bob\""),
        "the user list: {}",
        r.text()
    );
    assert!(!r.text().contains("\"event\""), "{}", r.text());
    let r = s.request(
        "POST",
        "/user",
        &[
            ("Authorization", &alice),
            ("Content-Type", "application/json"),
        ],
        r#"{"name":"carol","password":"cpw"}"#,
    );
    assert_eq!(r.status, 201, "a user was created: {}", r.text());
    publish(&s, &basic("carol", "cpw"), "carols", "works");
    let r = s.request("GET", "/version", &[], "");
    assert_eq!(r.status, 200);
    assert!(!r.text().contains("\"event\""), "{}", r.text());
    let r = s.request("PUT", "/health", &[("Authorization", &alice)], "x");
    assert_eq!(
        r.status,
        405,
        "no message to a topic named health: {}",
        r.text()
    );
}

#[test]
fn streams_are_chunked_one_event_per_chunk_and_a_poll_ends_with_the_last_chunk() {
    // Regression: the bodies were close-delimited, so a client that reads in blocks (Python
    // requests' iter_lines: 512 bytes) saw neither the open event nor a short message.
    let (s, alice, _) = alice_and_bob("ntfy-chunked", "");
    publish(&s, &alice, "news", "cached");
    for format in ["json", "sse", "raw"] {
        let mut stream = subscribe(&s, &alice, &format!("/news/{format}?since=all"));
        assert_eq!(
            stream.header("transfer-encoding"),
            Some("chunked"),
            "{format}: {}",
            stream.head
        );
        // The strict reader refuses a chunk that ends inside an event.
        let first = stream.line_within(TIMEOUT).expect("the first line");
        assert!(!first.is_empty() || format == "sse", "{format}: {first:?}");
        publish(&s, &alice, "news", &format!("live on {format}"));
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let line = stream
                .line_within(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|| panic!("{format}: no live message"));
            if line.contains(&format!("live on {format}")) {
                break;
            }
        }
        assert!(!stream.ended, "{format}: a live stream ended its body");
    }

    let mut polled = subscribe(&s, &alice, "/news/json?poll=1&since=all");
    assert_eq!(polled.header("transfer-encoding"), Some("chunked"));
    assert_eq!(polled.lines_until_closed().len(), 4);
    assert!(polled.ended, "a poll's body ends with the last chunk");

    // HTTP/1.0 has no chunked coding: the body ends with the connection, as before.
    let raw = format!("GET /news/json?poll=1&since=all HTTP/1.0\r\nAuthorization: {alice}\r\n\r\n");
    let r = support::send_raw(s.addr, raw.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("transfer-encoding"), None);
    assert_eq!(r.text().lines().count(), 4, "{}", r.text());
}

#[test]
fn subscriber_filters_pick_messages_on_polls_and_live_streams() {
    let (s, alice, _) = alice_and_bob("ntfy-filters", "");
    let post = |text: &str, headers: &[(&str, &str)]| {
        let r = put(&s, &alice, "/home", headers, text);
        assert_eq!(r.status, 200, "{}", r.text());
    };
    post(
        "door open",
        &[
            ("Title", "Door"),
            ("Tags", "door,warning"),
            ("Priority", "high"),
        ],
    );
    post("door closed", &[("Title", "Door"), ("Tags", "door")]);
    post(
        "smoke",
        &[
            ("Title", "Alarm"),
            ("Tags", "warning,fire"),
            ("Priority", "5"),
        ],
    );
    post("plain", &[]);

    let cases = [
        ("title=Door", vec!["door open", "door closed"]),
        ("tags=warning", vec!["door open", "smoke"]),
        ("tags=door,warning", vec!["door open"]),
        ("ta=fire", vec!["smoke"]),
        ("priority=high,urgent", vec!["door open", "smoke"]),
        ("p=3", vec!["door closed", "plain"]),
        ("message=plain", vec!["plain"]),
        ("t=Door&p=default", vec!["door closed"]),
        ("title=Nobody", vec![]),
    ];
    for (query, want) in cases {
        let got = texts(&poll(&s, &alice, "home", &format!("since=all&{query}")));
        assert_eq!(got, want, "{query}");
    }
    let r = support::request(
        s.addr,
        "GET",
        "/home/json?poll=1&priority=loud",
        &[("Authorization", &alice)],
        "",
    );
    assert_eq!(r.status, 400, "{}", r.text());

    // A live stream with a header filter gets only what matches, keepalives and open pass.
    let mut stream = JsonStream::open(
        s.addr,
        "/home/json",
        &[("Authorization", &alice), ("X-Tags", "fire")],
    );
    stream.opened();
    post("not this", &[("Tags", "door")]);
    post("this", &[("Tags", "fire,garage")]);
    assert_eq!(stream.message().str("message"), "this");
}

/// `since=<id>` above every id the server has handed out (a restored backup) reads the
/// topic from the start instead of skipping what came since.
#[test]
fn since_an_id_from_a_lost_history_reads_from_the_start() {
    let (s, alice, _) = alice_and_bob("ntfy-lost-history", "");
    publish(&s, &alice, "lost", "one");
    let two = publish(&s, &alice, "lost", "two");
    let future = format!("op{}", two.id_number() + 1_000_000);
    let got = poll(&s, &alice, "lost", &format!("since={future}"));
    assert_eq!(texts(&got), ["one", "two"]);
    let after_one = poll(&s, &alice, "lost", &format!("since={}", got[0].str("id")));
    assert_eq!(
        texts(&after_one),
        ["two"],
        "an id it handed out still counts"
    );
}
