//! ntfy notifications that update, clear and delete (ntfy 2.16), and delayed delivery,
//! against the real binary over real sockets: what a publisher sends (sequence ids in every
//! form ntfy takes them, `clear`, `read` and `DELETE`, every delay form and its limits) and
//! what each kind of subscriber reads (`/json`, `/sse`, `/raw`, `/ws`, polls, `since=`,
//! filters, `scheduled=1`). The failure guarded above all: a delayed message that was
//! answered 200 is sent once, when due, also across `kill -9` and a server that was down at
//! its due time, and never before.

use crate::support;

use std::time::{Duration, Instant};

use support::push::{JsonStream, Obj};
use support::ws::WsClient;
use support::{Response, Server, TIMEOUT, basic, now_secs};

/// Request headers.
type Headers<'a> = &'a [(&'a str, &'a str)];

/// Delays of a second or two: the tests may not wait ntfy's 10 s minimum.
const QUICK: &str = "min_delay_secs = 0";

/// A server with `config` and the user alice; her auth header.
fn server(name: &str, config: &str) -> (Server, String) {
    let s = Server::start_with(name, config);
    s.add_user("alice", "apw");
    (s, basic("alice", "apw"))
}

fn send(
    s: &Server,
    auth: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Response {
    let mut all = vec![("Authorization", auth)];
    all.extend_from_slice(headers);
    s.request(method, path, &all, body)
}

/// A request that must be answered 200: the object it was answered with.
fn ok(r: Response) -> Obj {
    assert_eq!(r.status, 200, "{}", r.text());
    Obj::parse(&r.text())
}

fn publish(s: &Server, auth: &str, path: &str, headers: &[(&str, &str)], text: &str) -> Obj {
    ok(send(s, auth, "PUT", path, headers, text))
}

fn subscribe(s: &Server, auth: &str, path: &str) -> JsonStream {
    let mut stream = JsonStream::open(s.addr, path, &[("Authorization", auth)]);
    assert_eq!(stream.status, 200, "{path}: {}", stream.head);
    if !path.contains("poll=1") && path.contains("/json") {
        stream.opened();
    }
    stream
}

/// The next event of a `/json` stream that is not a keepalive.
fn next_event(stream: &mut JsonStream) -> Obj {
    loop {
        let o = stream.next_json();
        if o.event() != "keepalive" {
            return o;
        }
    }
}

/// Every object of `GET /<topic>/json?poll=1&<query>`, once the server closed it.
fn poll(s: &Server, auth: &str, topic: &str, query: &str) -> Vec<Obj> {
    let mut stream = subscribe(s, auth, &format!("/{topic}/json?poll=1&{query}"));
    stream.until_closed()
}

fn events(objects: &[Obj]) -> Vec<(String, Option<String>)> {
    objects
        .iter()
        .map(|o| {
            let seq = o
                .has("sequence_id")
                .then(|| o.str("sequence_id").to_owned());
            (o.event().to_owned(), seq)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Sequence ids.

#[test]
fn a_sequence_id_rides_on_the_message_in_every_form_ntfy_takes() {
    let (s, alice) = server("seq-forms", "");
    let mut stream = subscribe(&s, &alice, "/chores/json");
    let forms: [(&str, Headers, &str); 5] = [
        ("/chores", &[("X-Sequence-ID", "h1")], "h1"),
        ("/chores", &[("SID", "h2")], "h2"),
        ("/chores?sid=h3", &[], "h3"),
        ("/chores/h4", &[("X-Sequence-ID", "not-this")], "h4"),
        ("/chores?sequence_id=h5", &[], "h5"),
    ];
    for (path, headers, seq) in forms {
        let answered = publish(&s, &alice, path, headers, "progress");
        assert_eq!(
            answered.str("sequence_id"),
            seq,
            "{path}: {}",
            answered.text
        );
        let seen = next_event(&mut stream);
        assert_eq!(seen.str("id"), answered.str("id"));
        assert_eq!(seen.str("sequence_id"), seq);
        assert_eq!(seen.event(), "message");
    }
    let json = ok(send(
        &s,
        &alice,
        "POST",
        "/",
        &[],
        r#"{"topic":"chores","message":"from json","sequence_id":"h6"}"#,
    ));
    assert_eq!(json.str("sequence_id"), "h6");
    assert_eq!(next_event(&mut stream).str("sequence_id"), "h6");
    // Without one, the message's own id is its sequence id: ntfy leaves the field out.
    let plain = publish(&s, &alice, "/chores", &[], "plain");
    assert!(!plain.has("sequence_id"), "{}", plain.text);
    assert!(!next_event(&mut stream).has("sequence_id"));
}

#[test]
fn a_bad_sequence_id_is_refused_with_ntfy_json_and_stores_nothing() {
    let (s, alice) = server("seq-bad", "");
    for id in ["with space", &"x".repeat(65), "a.b"] {
        let r = send(&s, &alice, "PUT", "/chores", &[("X-Sequence-ID", id)], "x");
        r.assert_ntfy_error(400, 40000);
        assert!(r.text().contains("sequence id"), "{}", r.text());
    }
    // In a path, a sequence id has a topic name's shape; other paths there are no route.
    for (method, path) in [("PUT", "/chores/a.b"), ("DELETE", "/chores/a%20b")] {
        assert_eq!(
            send(&s, &alice, method, path, &[], "x").status,
            404,
            "{path}"
        );
    }
    let json = send(
        &s,
        &alice,
        "POST",
        "/",
        &[],
        r#"{"topic":"chores","sequence_id":"a/b"}"#,
    );
    json.assert_ntfy_error(400, 40000);
    assert!(poll(&s, &alice, "chores", "since=all").is_empty());
}

// ---------------------------------------------------------------------------------------
// Clear and delete.

#[test]
fn clear_and_delete_reach_json_and_websocket_streams_with_ntfys_fields() {
    let (s, alice) = server("seq-events", "");
    let mut json = subscribe(&s, &alice, "/chores/json");
    let mut ws = WsClient::connect(s.addr, "/chores/ws", &[("Authorization", &alice)]).unwrap();
    assert_eq!(
        Obj::parse(&ws.text_within(TIMEOUT).unwrap()).event(),
        "open"
    );
    let m = publish(&s, &alice, "/chores", &[], "Take out the bins");
    let id = m.str("id").to_owned();
    let cleared = ok(send(
        &s,
        &alice,
        "PUT",
        &format!("/chores/{id}/clear"),
        &[],
        "",
    ));
    let read = ok(send(
        &s,
        &alice,
        "PUT",
        &format!("/chores/{id}/read"),
        &[],
        "",
    ));
    let deleted = ok(send(
        &s,
        &alice,
        "DELETE",
        &format!("/chores/{id}"),
        &[],
        "",
    ));
    for (answer, event) in [
        (&cleared, "message_clear"),
        (&read, "message_clear"),
        (&deleted, "message_delete"),
    ] {
        assert_eq!(answer.event(), event, "{}", answer.text);
        assert_eq!(answer.str("sequence_id"), id);
        assert_eq!(answer.str("topic"), "chores");
        assert_ne!(answer.str("id"), id, "an event of its own");
        assert!(answer.int("time") > 0 && answer.int("expires") > answer.int("time"));
        assert!(!answer.has("message"), "{}", answer.text);
    }
    let mut seen_ws = Vec::new();
    for _ in 0..4 {
        seen_ws.push(Obj::parse(&ws.text_within(TIMEOUT).unwrap()));
    }
    let seen_json: Vec<Obj> = (0..4).map(|_| next_event(&mut json)).collect();
    for seen in [&seen_json, &seen_ws] {
        assert_eq!(
            events(seen),
            [
                ("message".to_owned(), None),
                ("message_clear".to_owned(), Some(id.clone())),
                ("message_clear".to_owned(), Some(id.clone())),
                ("message_delete".to_owned(), Some(id.clone())),
            ]
        );
        assert_eq!(seen[3].text, deleted.text);
    }
}

#[test]
fn sse_names_the_events_and_raw_writes_an_empty_line_as_ntfy_does() {
    let (s, alice) = server("seq-sse-raw", "");
    let m = publish(&s, &alice, "/chores", &[("X-Sequence-ID", "dl")], "10%");
    ok(send(&s, &alice, "PUT", "/chores/dl", &[], "100%"));
    let cleared = ok(send(&s, &alice, "PUT", "/chores/dl/clear", &[], ""));
    let deleted = ok(send(&s, &alice, "DELETE", "/chores/dl", &[], ""));

    let mut sse = subscribe(&s, &alice, "/chores/sse?since=all");
    let mut frames = Vec::new();
    let deadline = Instant::now() + TIMEOUT;
    while frames.len() < 5 && Instant::now() < deadline {
        let mut fields = Vec::new();
        while let Some(line) = sse.line_within(TIMEOUT) {
            if line.is_empty() {
                break;
            }
            fields.push(line);
        }
        if !fields.iter().all(|f| f.starts_with("retry:")) {
            frames.push(fields);
        }
    }
    assert!(frames[0].contains(&"event: open".to_owned()), "{frames:?}");
    assert_eq!(frames[1][0], format!("id: {}", m.str("id")));
    assert!(
        frames[1].iter().all(|f| !f.starts_with("event:")),
        "{:?}",
        frames[1]
    );
    assert_eq!(
        frames[3],
        [
            format!("id: {}", cleared.str("id")),
            "event: message_clear".to_owned(),
            format!("data: {}", cleared.text),
        ]
    );
    assert_eq!(frames[4][1], "event: message_delete");
    assert_eq!(frames[4][2], format!("data: {}", deleted.text));

    let mut raw = subscribe(&s, &alice, "/chores/raw?since=all");
    let lines: Vec<String> = (0..4).map(|_| raw.line_within(TIMEOUT).unwrap()).collect();
    assert_eq!(lines, ["10%", "100%", "", ""]);
}

#[test]
fn polls_since_and_filters_carry_the_events_as_ntfy_applies_them() {
    let (s, alice) = server("seq-poll", "");
    let first = publish(
        &s,
        &alice,
        "/chores",
        &[("Title", "bins")],
        "Take out the bins",
    );
    let id = first.str("id").to_owned();
    ok(send(
        &s,
        &alice,
        "PUT",
        &format!("/chores/{id}"),
        &[("Title", "bins")],
        "Done",
    ));
    ok(send(
        &s,
        &alice,
        "PUT",
        &format!("/chores/{id}/clear"),
        &[],
        "",
    ));
    ok(send(
        &s,
        &alice,
        "DELETE",
        &format!("/chores/{id}"),
        &[],
        "",
    ));
    let all = poll(&s, &alice, "chores", "since=all");
    assert_eq!(
        events(&all),
        [
            ("message".to_owned(), None),
            ("message".to_owned(), Some(id.clone())),
            ("message_clear".to_owned(), Some(id.clone())),
            ("message_delete".to_owned(), Some(id.clone())),
        ],
        "every revision is kept, as ntfy keeps them"
    );
    let after = poll(&s, &alice, "chores", &format!("since={}", all[1].str("id")));
    assert_eq!(after.len(), 2);
    assert_eq!(after[0].str("id"), all[2].str("id"));
    // A filter picks messages; the clear and delete events pass it, as in ntfy.
    let filtered = poll(&s, &alice, "chores", "since=all&title=other");
    assert_eq!(
        events(&filtered),
        [
            ("message_clear".to_owned(), Some(id.clone())),
            ("message_delete".to_owned(), Some(id.clone())),
        ]
    );
    let mut live = subscribe(&s, &alice, "/chores/json?priority=5");
    publish(&s, &alice, "/chores", &[], "not urgent");
    ok(send(&s, &alice, "DELETE", "/chores/other", &[], ""));
    let seen = next_event(&mut live);
    assert_eq!(seen.event(), "message_delete", "{}", seen.text);
    assert_eq!(seen.str("sequence_id"), "other");
}

#[test]
fn clear_and_delete_need_write_access_to_the_topic() {
    let (s, alice) = server("seq-access", "");
    s.add_user("bob", "bpw");
    let bob = basic("bob", "bpw");
    publish(&s, &alice, "/chores", &[], "mine");
    for (method, path) in [
        ("PUT", "/chores/x/clear"),
        ("DELETE", "/chores/x"),
        ("PUT", "/chores/x"),
    ] {
        send(&s, &bob, method, path, &[], "").assert_ntfy_error(403, 40301);
        let anonymous = s.request(method, path, &[], "");
        anonymous.assert_ntfy_error(401, 40101);
    }
    // Read access is not enough.
    let out = s.cli(&["topic", "grant", "chores", "bob", "--read"], "");
    assert!(out.status.success(), "{}", support::stderr(&out));
    send(&s, &bob, "DELETE", "/chores/x", &[], "").assert_ntfy_error(403, 40301);
    let out = s.cli(
        &["topic", "grant", "chores", "bob", "--read", "--write"],
        "",
    );
    assert!(out.status.success(), "{}", support::stderr(&out));
    ok(send(&s, &bob, "DELETE", "/chores/x", &[], ""));
    assert_eq!(poll(&s, &alice, "chores", "since=all").len(), 2);
}

// ---------------------------------------------------------------------------------------
// Delayed delivery.

#[test]
fn a_delayed_message_is_answered_at_once_and_sent_when_due_never_before() {
    let (s, alice) = server("delay-sent", QUICK);
    let mut stream = subscribe(&s, &alice, "/chores/json");
    let before = now_secs();
    let answered = publish(
        &s,
        &alice,
        "/chores",
        &[("X-Delay", "2s"), ("Title", "later")],
        "due",
    );
    let due = answered.int("time");
    assert!(
        (before + 2..=before + 3).contains(&due),
        "{}",
        answered.text
    );
    assert_eq!(answered.event(), "message");
    assert!(
        !answered.has("sequence_id"),
        "its own id is its sequence: {}",
        answered.text
    );
    assert!(answered.int("expires") >= due + 12 * 3600);
    assert!(
        poll(&s, &alice, "chores", "since=all").is_empty(),
        "not before it is due"
    );
    stream.assert_no_message(Duration::from_millis(1200));

    let sent = stream.message();
    assert!(
        now_secs() >= due,
        "sent at {} before its time {due}",
        now_secs()
    );
    assert_eq!(sent.str("message"), "due");
    assert_eq!(sent.str("title"), "later");
    assert_eq!(sent.int("time"), due);
    assert_ne!(
        sent.str("id"),
        answered.str("id"),
        "a new id in the topic's order"
    );
    assert_eq!(
        sent.str("sequence_id"),
        answered.str("id"),
        "the answered id is its sequence"
    );
    stream.assert_no_message(Duration::from_millis(700));
    let cached = poll(&s, &alice, "chores", "since=all");
    assert_eq!(cached.len(), 1, "sent once");
    assert_eq!(cached[0].text, sent.text);

    // The sender deletes what was sent by the id it was answered with.
    let deleted = ok(send(
        &s,
        &alice,
        "DELETE",
        &format!("/chores/{}", answered.str("id")),
        &[],
        "",
    ));
    assert_eq!(next_event(&mut stream).text, deleted.text);
    assert!(
        s.request("GET", "/metrics", &[], "")
            .text()
            .contains("openpush_scheduled_sent_total 1")
    );
}

#[test]
fn every_delay_form_ntfy_takes_schedules_the_message() {
    let (s, alice) = server("delay-forms", QUICK);
    let now = now_secs();
    let at = (now + 600).to_string();
    let forms: [(&str, Headers, u64); 6] = [
        ("/chores", &[("Delay", "30m")], now + 1800),
        ("/chores", &[("X-In", "2 hours")], now + 7200),
        ("/chores", &[("In", "1h30m")], now + 5400),
        ("/chores", &[("X-At", &at)], now + 600),
        ("/chores?at=1d", &[], now + 86_400),
        ("/chores?delay=10%20minutes", &[], now + 600),
    ];
    for (path, headers, due) in forms {
        let answered = publish(&s, &alice, path, headers, "later");
        let time = answered.int("time");
        assert!(
            (due..=due + 2).contains(&time),
            "{path} {headers:?}: {}",
            answered.text
        );
    }
    let json = ok(send(
        &s,
        &alice,
        "POST",
        "/",
        &[],
        r#"{"topic":"chores","message":"j","delay":"45s"}"#,
    ));
    assert!(
        (now + 45..=now + 47).contains(&json.int("time")),
        "{}",
        json.text
    );
    assert_eq!(poll(&s, &alice, "chores", "since=all&scheduled=1").len(), 7);
}

#[test]
fn delays_out_of_bounds_or_unreadable_get_ntfys_codes_and_store_nothing() {
    let (s, alice) = server("delay-refused", "max_delay_secs = 86400");
    let past = (now_secs() - 60).to_string();
    for (headers, code) in [
        (vec![("X-Delay", "5s")], 40005),
        (vec![("X-Delay", "2d")], 40006),
        (vec![("X-Delay", "tomorrow, 10am")], 40004),
        (vec![("X-Delay", past.as_str())], 40004),
        (vec![("X-Delay", "10 fortnights")], 40004),
        (vec![("X-Delay", "1h"), ("Cache", "no")], 40002),
    ] {
        let r = send(&s, &alice, "PUT", "/chores", &headers, "x");
        r.assert_ntfy_error(400, code);
    }
    let r = send(
        &s,
        &alice,
        "POST",
        "/",
        &[],
        r#"{"topic":"chores","delay":"1s"}"#,
    );
    r.assert_ntfy_error(400, 40005);
    assert!(poll(&s, &alice, "chores", "since=all&scheduled=1").is_empty());
}

#[test]
fn polls_with_scheduled_list_what_waits_and_live_streams_do_not_see_it() {
    let (s, alice) = server("delay-list", QUICK);
    publish(&s, &alice, "/chores", &[], "now");
    let later = publish(&s, &alice, "/chores", &[("In", "1h")], "in an hour");
    let sooner = publish(
        &s,
        &alice,
        "/chores",
        &[("In", "30m"), ("Priority", "5")],
        "in half an hour",
    );
    assert_eq!(poll(&s, &alice, "chores", "since=all").len(), 1);
    for query in ["since=all&scheduled=1", "since=all&sched=1"] {
        let listed = poll(&s, &alice, "chores", query);
        let texts: Vec<&str> = listed.iter().map(|o| o.str("message")).collect();
        assert_eq!(texts, ["now", "in half an hour", "in an hour"], "{query}");
        assert_eq!(listed[1].text, sooner.text, "as its sender was answered");
        assert_eq!(listed[2].text, later.text);
    }
    let filtered = poll(&s, &alice, "chores", "since=all&scheduled=1&priority=5");
    assert_eq!(filtered.len(), 1);
    assert_eq!(filtered[0].text, sooner.text);
    // Someone who may not read the topic learns nothing of it.
    s.add_user("bob", "bpw");
    let refused = JsonStream::open(
        s.addr,
        "/chores/json?poll=1&scheduled=1",
        &[("Authorization", &basic("bob", "bpw"))],
    );
    assert_eq!(refused.status, 403);
}

#[test]
fn a_sequence_keeps_one_scheduled_message_and_delete_cancels_it() {
    let (s, alice) = server("delay-sequence", QUICK);
    let mut stream = subscribe(&s, &alice, "/chores/json");
    // A dead man's switch: each heartbeat pushes the alert further out.
    publish(&s, &alice, "/chores/heartbeat", &[("In", "2s")], "first");
    let second = publish(&s, &alice, "/chores/heartbeat", &[("In", "1h")], "second");
    let listed = poll(&s, &alice, "chores", "scheduled=1");
    assert_eq!(listed.len(), 1, "the second replaced the first");
    assert_eq!(listed[0].text, second.text);
    assert_eq!(listed[0].str("sequence_id"), "heartbeat");
    // An update sent now replaces what waits too.
    let now = publish(&s, &alice, "/chores/heartbeat", &[], "now");
    assert_eq!(next_event(&mut stream).text, now.text);
    assert!(poll(&s, &alice, "chores", "scheduled=1&since=all").len() == 1);
    publish(&s, &alice, "/chores/beat2", &[("In", "2s")], "cancelled");
    ok(send(&s, &alice, "DELETE", "/chores/beat2", &[], ""));
    assert_eq!(next_event(&mut stream).event(), "message_delete");
    // Clearing leaves a waiting message alone.
    publish(&s, &alice, "/chores/beat3", &[("In", "1s")], "kept");
    ok(send(&s, &alice, "PUT", "/chores/beat3/clear", &[], ""));
    assert_eq!(next_event(&mut stream).event(), "message_clear");
    let kept = stream.message();
    assert_eq!(kept.str("message"), "kept");
    stream.assert_no_message(Duration::from_millis(2500));
}

#[test]
fn a_delayed_message_survives_kill_9_and_a_server_down_at_its_due_time() {
    let (mut s, alice) = server("delay-crash", QUICK);
    let due_while_down = publish(&s, &alice, "/chores", &[("In", "1s")], "while down");
    let due_after = publish(&s, &alice, "/chores", &[("In", "4s")], "after restart");
    s.kill9();
    std::thread::sleep(Duration::from_millis(1500));
    s.restart();
    let mut stream = subscribe(&s, &alice, "/chores/json?since=all");
    let first = stream.message();
    assert_eq!(first.str("message"), "while down", "sent at start");
    assert_eq!(first.str("sequence_id"), due_while_down.str("id"));
    assert_eq!(first.int("time"), due_while_down.int("time"));
    let second = stream.message();
    assert_eq!(second.str("message"), "after restart");
    assert!(now_secs() >= due_after.int("time"));
    // Killed again right after: nothing is sent twice, nothing is lost.
    s.kill9();
    s.restart();
    std::thread::sleep(Duration::from_millis(500));
    let all = poll(&s, &alice, "chores", "since=all&scheduled=1");
    let texts: Vec<&str> = all.iter().map(|o| o.str("message")).collect();
    assert_eq!(texts, ["while down", "after restart"]);
}

#[test]
fn a_graceful_restart_keeps_a_waiting_message_and_its_place_in_the_schedule() {
    let (mut s, alice) = server("delay-restart", QUICK);
    let answered = publish(&s, &alice, "/chores", &[("In", "1h")], "in an hour");
    s.restart_gracefully();
    let listed = poll(&s, &alice, "chores", "scheduled=1");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].text, answered.text);
}

#[test]
fn scheduled_messages_are_capped_per_user_and_per_address() {
    let (s, alice) = server(
        "delay-caps",
        "min_delay_secs = 0\nmax_scheduled_per_user = 2\nmax_scheduled_per_addr = 1\nanonymous_access = read-write",
    );
    publish(&s, &alice, "/chores/a", &[("In", "1h")], "1");
    publish(&s, &alice, "/chores", &[("In", "1h")], "2");
    let third = send(&s, &alice, "PUT", "/chores", &[("In", "1h")], "3");
    third.assert_ntfy_error(429, 42901);
    assert!(third.header("retry-after").is_some());
    // Replacing one of its own is no more.
    publish(&s, &alice, "/chores/a", &[("In", "2h")], "1 again");
    // Without a user: one per address.
    let open = [("In", "1h")];
    let first = s.request("PUT", "/opentopic", &open, "anonymous");
    assert_eq!(first.status, 200, "{}", first.text());
    s.request("PUT", "/opentopic", &open, "again")
        .assert_ntfy_error(429, 42901);
}

#[test]
fn a_server_may_schedule_for_its_users_only() {
    let (s, alice) = server(
        "delay-users-only",
        "max_scheduled_per_addr = 0\nanonymous_access = read-write",
    );
    // Without a user: log in (ntfy's 40101), as for anything a user may do.
    let r = s.request("PUT", "/opentopic", &[("In", "1h")], "anonymous");
    r.assert_ntfy_error(401, 40101);
    assert_eq!(s.request("PUT", "/opentopic", &[], "now").status, 200);
    publish(&s, &alice, "/chores", &[("In", "1h")], "alice may");
}

#[test]
fn waiting_messages_count_in_the_store_budget() {
    let (s, alice) = server(
        "delay-budget",
        "min_delay_secs = 0\nmax_store_bytes = 65536",
    );
    let big = "x".repeat(4000);
    let mut scheduled = 0;
    loop {
        let r = send(&s, &alice, "PUT", "/chores", &[("In", "1h")], &big);
        if r.status != 200 {
            r.assert_ntfy_error(507, 50701);
            break;
        }
        scheduled += 1;
        assert!(scheduled < 20, "the budget never refused");
    }
    assert!(
        (10..=16).contains(&scheduled),
        "{scheduled} messages of 4 kB in 64 kB"
    );
    send(&s, &alice, "PUT", "/chores", &[], &big).assert_ntfy_error(507, 50701);
    // Deleting one by its sequence (its answered id) makes room again.
    let listed = poll(&s, &alice, "chores", "scheduled=1");
    let id = listed[0].str("id");
    ok(send(
        &s,
        &alice,
        "DELETE",
        &format!("/chores/{id}"),
        &[],
        "",
    ));
    ok(send(&s, &alice, "PUT", "/chores", &[], "small"));
}

#[test]
fn deleting_a_topic_drops_what_waits_for_it() {
    let (s, alice) = server("delay-topic-gone", QUICK);
    publish(&s, &alice, "/chores", &[("In", "1s")], "never sent");
    let out = s.cli(&["topic", "del", "chores"], "");
    assert!(out.status.success(), "{}", support::stderr(&out));
    std::thread::sleep(Duration::from_millis(1500));
    let mut stream = subscribe(&s, &alice, "/chores/json?since=all");
    stream.assert_no_message(Duration::from_millis(500));
}
