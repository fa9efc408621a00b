//! Message delivery as a client sees it: replay and live events, routing, confirmation by
//! `Last-Event-ID`, stream replacement, TTL, collapse keys, queue limits, SSE framing,
//! slow readers, and what survives a restart or SIGTERM.

use crate::support;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use support::*;

/// Posts `data` (JSON object text) to `token`; `extra` is appended to the envelope
/// (e.g. `,"time_to_live":1`).
fn post(server: &Server, token: &str, data: &str, extra: &str) -> Response {
    server.post_message(&format!(r#"{{"token":"{token}","data":{data}{extra}}}"#))
}

fn post_ok(server: &Server, token: &str, data: &str, extra: &str) -> u64 {
    let r = post(server, token, data, extra);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json_field("id").parse().unwrap()
}

/// Posts `{"n":1}` … `{"n":count}` to `token`; returns their ids.
fn post_numbered(server: &Server, token: &str, count: u64) -> Vec<u64> {
    (1..=count)
        .map(|n| post_ok(server, token, &format!(r#"{{"n":{n}}}"#), ""))
        .collect()
}

/// Reads events until one whose data contains `marker`; returns all of them, in order.
fn read_until(sse: &mut Sse, marker: &str) -> Vec<Event> {
    let deadline = Instant::now() + TIMEOUT;
    let mut events = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let e = sse
            .next_within(left)
            .unwrap_or_else(|| panic!("no event with {marker:?}; got {events:?}"));
        let done = e.data.contains(marker);
        events.push(e);
        if done {
            return events;
        }
    }
}

/// Posts a sentinel to `token` and reads up to it: everything the stream had to say
/// before the sentinel, without guessing how long to wait for it.
fn events_before_sentinel(server: &Server, sse: &mut Sse, token: &str) -> Vec<Event> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    post_ok(server, token, &format!(r#"{{"sentinel":{n}}}"#), "");
    let mut events = read_until(sse, &format!(r#""sentinel":{n}}}"#));
    events.pop();
    events
}

fn datas(events: &[Event]) -> Vec<&str> {
    events.iter().map(|e| e.data.as_str()).collect()
}

fn assert_increasing(events: &[Event]) {
    let ids: Vec<u64> = events
        .iter()
        .map(|e| e.id.expect("every event has an id"))
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids not increasing: {ids:?}"
    );
}

#[test]
fn message_posted_before_subscribe_is_replayed_and_later_ones_arrive_live() {
    let server = Server::start("replay-live");
    let (key, token) = server.device("ann");
    let first = post_ok(&server, &token, r#"{"n":1}"#, "");
    let mut sse = server.subscribe(&key, None);
    assert_eq!(sse.status, 200);
    let e = sse.next();
    assert_eq!(e.id, Some(first));
    assert_eq!(e.data, r#"{"data":{"n":1},"registration_id":"app1"}"#);
    let second = post_ok(&server, &token, r#"{"n":2}"#, r#","priority":"high""#);
    let e = sse.next();
    assert_eq!(e.id, Some(second));
    assert!(second > first);
    assert_eq!(
        e.data,
        r#"{"data":{"n":2},"registration_id":"app1","priority":"high"}"#
    );
    let third = post_ok(&server, &token, r#"{"n":3}"#, r#","priority":"normal""#);
    let e = sse.next();
    assert_eq!(e.id, Some(third));
    assert!(e.data.ends_with(r#","priority":"normal"}"#), "{}", e.data);
}

#[test]
fn payload_bytes_are_delivered_as_sent_minus_whitespace() {
    let server = Server::start("payload-bytes");
    let (key, token) = server.device("ann");
    let sent = "{ \"z\" : 1.50e+3 ,\n\t\"a\": [ -0.0, 1E2, true, null ],\r\n \"\\u00e9t\\u00E9\": \"caf\u{e9} \\\"q\\\" \\/ \\n\",\"m\":{ \"y\":{},\"x\":[ ] } }";
    let compact = r#"{"z":1.50e+3,"a":[-0.0,1E2,true,null],"\u00e9t\u00E9":"café \"q\" \/ \n","m":{"y":{},"x":[]}}"#;
    post_ok(&server, &token, sent, "");
    let mut sse = server.subscribe(&key, None);
    let e = sse.next();
    assert_eq!(
        e.data,
        format!(r#"{{"data":{compact},"registration_id":"app1"}}"#)
    );
}

#[test]
fn messages_for_two_apps_carry_their_registration_ids() {
    let server = Server::start("two-apps");
    let (key, token1) = server.device("ann");
    let token2 = server.add_app(&key, "org.example.chat");
    let mut sse = server.subscribe(&key, None);
    post_ok(&server, &token1, r#"{"to":1}"#, "");
    post_ok(&server, &token2, r#"{"to":2}"#, "");
    let events = read_until(&mut sse, r#""to":2"#);
    assert_eq!(
        datas(&events),
        [
            r#"{"data":{"to":1},"registration_id":"app1"}"#,
            r#"{"data":{"to":2},"registration_id":"org.example.chat"}"#,
        ]
    );
    assert_increasing(&events);
}

#[test]
fn messages_for_another_client_never_reach_this_stream() {
    let server = Server::start("misrouting");
    let (key, token) = server.device("ann");
    // Another client of the same user, with the same registration id, and another user's.
    let tablet = server.add_client("ann", "tablet");
    let tablet_token = server.add_app(&tablet, "app1");
    let (bob_key, bob_token) = server.device("bob");
    post_ok(&server, &tablet_token, r#"{"for":"tablet-offline"}"#, "");
    let mut sse = server.subscribe(&key, None);
    let mut bob = server.subscribe(&bob_key, None);
    post_ok(&server, &tablet_token, r#"{"for":"tablet"}"#, "");
    post_ok(&server, &bob_token, r#"{"for":"bob"}"#, "");
    post_ok(&server, &token, r#"{"for":"ann"}"#, "");
    let events = events_before_sentinel(&server, &mut sse, &token);
    assert_eq!(
        datas(&events),
        [r#"{"data":{"for":"ann"},"registration_id":"app1"}"#]
    );
    let events = events_before_sentinel(&server, &mut bob, &bob_token);
    assert_eq!(
        datas(&events),
        [r#"{"data":{"for":"bob"},"registration_id":"app1"}"#]
    );
}

#[test]
fn reconnect_without_last_event_id_gets_unconfirmed_messages_again() {
    let server = Server::start("at-least-once");
    let (key, token) = server.device("ann");
    let mut sse = server.subscribe(&key, None);
    let a = post_ok(&server, &token, r#"{"n":1}"#, "");
    let b = post_ok(&server, &token, r#"{"n":2}"#, "");
    let first: Vec<_> = read_until(&mut sse, r#""n":2"#);
    assert_eq!(
        first.iter().map(|e| e.id).collect::<Vec<_>>(),
        [Some(a), Some(b)]
    );
    drop(sse);
    let mut again = server.subscribe(&key, None);
    let replayed = read_until(&mut again, r#""n":2"#);
    assert_eq!(replayed, first);
}

#[test]
fn last_event_id_confirms_up_to_it_and_later_reconnects_skip_confirmed() {
    let server = Server::start("last-event-id");
    let (key, token) = server.device("ann");
    let ids = post_numbered(&server, &token, 4);
    let mut sse = server.subscribe(&key, Some(ids[1]));
    let events = read_until(&mut sse, r#""n":4"#);
    assert_eq!(
        events.iter().map(|e| e.id).collect::<Vec<_>>(),
        [Some(ids[2]), Some(ids[3])]
    );
    drop(sse);
    let mut later = server.subscribe(&key, None);
    let events = events_before_sentinel(&server, &mut later, &token);
    assert_eq!(
        events.iter().map(|e| e.id).collect::<Vec<_>>(),
        [Some(ids[2]), Some(ids[3])]
    );
}

#[test]
fn since_query_confirms_like_last_event_id() {
    let server = Server::start("since");
    let (key, token) = server.device("ann");
    let ids = post_numbered(&server, &token, 3);
    let mut sse = server.subscribe_with(&key, &format!("/subscribe?since={}", ids[0]), &[]);
    assert_eq!(sse.status, 200);
    let events = read_until(&mut sse, r#""n":3"#);
    assert_eq!(
        events.iter().map(|e| e.id).collect::<Vec<_>>(),
        [Some(ids[1]), Some(ids[2])]
    );
    drop(sse);
    let mut later = server.subscribe(&key, None);
    let events = events_before_sentinel(&server, &mut later, &token);
    assert_eq!(
        events.iter().map(|e| e.id).collect::<Vec<_>>(),
        [Some(ids[1]), Some(ids[2])]
    );
}

#[test]
fn malformed_last_event_id_is_rejected_and_confirms_nothing() {
    let server = Server::start("bad-last-event-id");
    let (key, token) = server.device("ann");
    let id = post_ok(&server, &token, r#"{"n":1}"#, "");
    for bad in ["abc", "-1", "1.5", "99999999999999999999999"] {
        let r = server.request(
            "GET",
            "/subscribe",
            &[("X-Openpush-Key", &key), ("Last-Event-ID", bad)],
            "",
        );
        r.assert_error(400);
    }
    let r = server.request(
        "GET",
        "/subscribe?since=x1",
        &[("X-Openpush-Key", &key)],
        "",
    );
    r.assert_error(400);
    let mut sse = server.subscribe(&key, None);
    assert_eq!(sse.next().id, Some(id));
}

#[test]
fn second_stream_with_the_same_key_replaces_the_first() {
    let server = Server::start("replace");
    let (key, token) = server.device("ann");
    let mut first = server.subscribe(&key, None);
    let mut second = server.subscribe(&key, None);
    assert_eq!(second.status, 200);
    assert!(
        first.closed_within(TIMEOUT),
        "the first stream was not closed"
    );
    post_ok(&server, &token, r#"{"n":1}"#, "");
    assert_eq!(
        second.next().data,
        r#"{"data":{"n":1},"registration_id":"app1"}"#
    );
}

#[test]
fn message_whose_ttl_ended_offline_is_never_delivered() {
    let server = Server::start("ttl-expired");
    let (key, token) = server.device("ann");
    post_ok(&server, &token, r#"{"short":true}"#, r#","time_to_live":1"#);
    post_ok(
        &server,
        &token,
        r#"{"long":true}"#,
        r#","time_to_live":600"#,
    );
    std::thread::sleep(Duration::from_millis(2500)); // let the 1 s TTL run out
    let mut sse = server.subscribe(&key, None);
    let events = events_before_sentinel(&server, &mut sse, &token);
    assert_eq!(
        datas(&events),
        [r#"{"data":{"long":true},"registration_id":"app1"}"#]
    );
}

#[test]
fn ttl_zero_reaches_a_live_stream_and_is_dropped_for_an_offline_device() {
    let server = Server::start("ttl-zero");
    let (key, token) = server.device("ann");
    post_ok(&server, &token, r#"{"offline":0}"#, r#","time_to_live":0"#);
    let mut sse = server.subscribe(&key, None);
    post_ok(&server, &token, r#"{"live":0}"#, r#","time_to_live":0"#);
    let events = events_before_sentinel(&server, &mut sse, &token);
    assert_eq!(
        datas(&events),
        [r#"{"data":{"live":0},"registration_id":"app1"}"#]
    );
    drop(sse);
    // Neither is kept for a later connection.
    let mut later = server.subscribe(&key, None);
    let events = events_before_sentinel(&server, &mut later, &token);
    assert_eq!(events.len(), 1, "{events:?}"); // only the first sentinel, unconfirmed
    assert!(events[0].data.contains("sentinel"));
}

#[test]
fn ttl_above_the_maximum_is_clamped() {
    let server = Server::start_with("ttl-clamp", "max_ttl_secs = 1\ndefault_ttl_secs = 1");
    let (key, token) = server.device("ann");
    post_ok(
        &server,
        &token,
        r#"{"huge":1}"#,
        r#","time_to_live":31536000000"#,
    );
    post_ok(&server, &token, r#"{"big":1}"#, r#","time_to_live":3600"#);
    std::thread::sleep(Duration::from_millis(2500)); // past the 1 s maximum
    let mut sse = server.subscribe(&key, None);
    let events = events_before_sentinel(&server, &mut sse, &token);
    assert_eq!(datas(&events), Vec::<&str>::new());
}

#[test]
fn default_ttl_applies_when_the_message_gives_none() {
    let server = Server::start_with("ttl-default", "default_ttl_secs = 1\nmax_ttl_secs = 600");
    let (key, token) = server.device("ann");
    post_ok(&server, &token, r#"{"default":1}"#, "");
    post_ok(
        &server,
        &token,
        r#"{"explicit":1}"#,
        r#","time_to_live":600"#,
    );
    std::thread::sleep(Duration::from_millis(2500)); // past the 1 s default
    let mut sse = server.subscribe(&key, None);
    let events = events_before_sentinel(&server, &mut sse, &token);
    assert_eq!(
        datas(&events),
        [r#"{"data":{"explicit":1},"registration_id":"app1"}"#]
    );
}

#[test]
fn collapse_key_leaves_only_the_newest_undelivered_message() {
    let server = Server::start("collapse");
    let (key, token) = server.device("ann");
    let other_app = server.add_app(&key, "app2");
    let ck = |k: &str| format!(r#","collapse_key":"{k}""#);
    post_ok(&server, &token, r#"{"v":"old"}"#, &ck("score"));
    post_ok(&server, &token, r#"{"v":"other-key"}"#, &ck("news"));
    post_ok(&server, &other_app, r#"{"v":"other-app"}"#, &ck("score"));
    post_ok(&server, &token, r#"{"v":"plain"}"#, "");
    let newest = post_ok(&server, &token, r#"{"v":"new"}"#, &ck("score"));
    let mut sse = server.subscribe(&key, None);
    let events = events_before_sentinel(&server, &mut sse, &token);
    assert_eq!(
        datas(&events),
        [
            r#"{"data":{"v":"other-key"},"registration_id":"app1"}"#,
            r#"{"data":{"v":"other-app"},"registration_id":"app2"}"#,
            r#"{"data":{"v":"plain"},"registration_id":"app1"}"#,
            r#"{"data":{"v":"new"},"registration_id":"app1"}"#,
        ]
    );
    assert_eq!(events.last().unwrap().id, Some(newest));
    assert_increasing(&events);
}

#[test]
fn full_queue_refuses_new_messages_but_not_collapse_replacements() {
    let server = Server::start_with("queue-full", "max_queued_per_client = 3");
    let (key, token) = server.device("ann");
    post_ok(&server, &token, r#"{"n":1}"#, "");
    post_ok(&server, &token, r#"{"n":2}"#, "");
    post_ok(
        &server,
        &token,
        r#"{"n":3,"v":"old"}"#,
        r#","collapse_key":"k""#,
    );
    let r = post(&server, &token, r#"{"n":4}"#, "");
    r.assert_error(429);
    let retry: u64 = r
        .header("retry-after")
        .expect("429 carries Retry-After")
        .parse()
        .expect("Retry-After in seconds");
    assert!(retry > 0);
    post_ok(
        &server,
        &token,
        r#"{"n":3,"v":"new"}"#,
        r#","collapse_key":"k""#,
    );
    post(&server, &token, r#"{"n":5}"#, r#","collapse_key":"other""#).assert_error(429);
    let mut sse = server.subscribe(&key, None);
    let events = read_until(&mut sse, r#""v":"new""#);
    assert_eq!(
        datas(&events),
        [
            r#"{"data":{"n":1},"registration_id":"app1"}"#,
            r#"{"data":{"n":2},"registration_id":"app1"}"#,
            r#"{"data":{"n":3,"v":"new"},"registration_id":"app1"}"#,
        ]
    );
    // Confirming makes room again.
    let last = events.last().unwrap().id.unwrap();
    drop(sse);
    let mut sse = server.subscribe(&key, Some(last));
    post_ok(&server, &token, r#"{"n":6}"#, "");
    assert_eq!(
        sse.next().data,
        r#"{"data":{"n":6},"registration_id":"app1"}"#
    );
}

#[test]
fn stream_has_sse_headers_retry_and_keepalives_while_idle() {
    let server = Server::start_with("sse-head", "keepalive_secs = 1\nretry_secs = 7");
    let (key, _) = server.device("ann");
    let mut sse = server.subscribe(&key, None);
    assert_eq!(sse.status, 200);
    assert_eq!(sse.header("content-type"), Some("text/event-stream"));
    assert_eq!(sse.header("cache-control"), Some("no-cache"));
    assert_eq!(sse.header("x-accel-buffering"), Some("no"));
    let deadline = Instant::now() + Duration::from_secs(5);
    while sse.comments < 2 && Instant::now() < deadline {
        assert_eq!(sse.next_within(Duration::from_millis(200)), None);
    }
    assert_eq!(sse.retry, Some(7000));
    assert!(sse.comments >= 2, "{} keepalives in 5 s", sse.comments);
}

#[test]
fn queued_messages_survive_a_restart() {
    let mut server = Server::start("restart");
    let (key, token) = server.device("ann");
    let ids = post_numbered(&server, &token, 3);
    server.restart();
    let mut sse = server.subscribe(&key, None);
    let events = read_until(&mut sse, r#""n":3"#);
    assert_eq!(
        events.iter().map(|e| e.id.unwrap()).collect::<Vec<_>>(),
        ids
    );
    // New ids after a restart stay above the old ones.
    let next = post_ok(&server, &token, r#"{"n":4}"#, "");
    assert!(next > ids[2]);
    assert_eq!(sse.next().id, Some(next));
}

/// A confirmation is no commit of its own: the database file is not written until the next
/// message's commit, which removes the confirmed message; later reconnects skip it all along.
#[test]
fn a_confirmation_rides_in_the_next_messages_commit() {
    let server = Server::start("confirm-rides");
    let (key, token) = server.device("ann");
    let first = post_ok(&server, &token, r#"{"n":1}"#, "");
    let modified = || std::fs::metadata(&server.db).unwrap().modified().unwrap();
    let before = modified();
    let mut sse = server.subscribe(&key, Some(first));
    assert!(events_before_sentinel(&server, &mut sse, &token).is_empty());
    assert_ne!(modified(), before, "the sentinel's post is a commit");
    drop(sse);
    let before = modified();
    std::thread::sleep(Duration::from_millis(200));
    let sentinel = {
        let mut sse = server.subscribe(&key, Some(first));
        let events = read_until(&mut sse, "sentinel");
        assert_eq!(events.len(), 1, "{events:?}");
        events[0].id.unwrap()
    };
    let mut sse = server.subscribe(&key, Some(sentinel));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        modified(),
        before,
        "two confirmations wrote to the database"
    );
    assert_eq!(
        support::api::queued(&server),
        1,
        "the sentinel waits for a commit"
    );
    let last = post_ok(&server, &token, r#"{"n":2}"#, "");
    assert_eq!(sse.next().id, Some(last));
    assert_eq!(support::api::queued(&server), 1, "only the newest is left");
}

/// A confirmation not yet committed is lost with a crash: the phone gets the message
/// again, with its id (at least once); a clean stop commits it.
#[test]
fn a_crash_before_the_confirmations_commit_delivers_again_a_clean_stop_does_not() {
    let mut server = Server::start("confirm-crash");
    let (key, token) = server.device("ann");
    let ids = post_numbered(&server, &token, 2);
    let sse = server.subscribe(&key, Some(ids[0]));
    drop(sse);
    server.restart();
    let mut sse = server.subscribe(&key, None);
    let again = read_until(&mut sse, r#""n":2"#);
    assert_eq!(again.iter().map(|e| e.id.unwrap()).collect::<Vec<_>>(), ids);
    drop(sse);
    let sse = server.subscribe(&key, Some(ids[0]));
    drop(sse);
    server.restart_gracefully();
    let mut sse = server.subscribe(&key, None);
    let after = read_until(&mut sse, r#""n":2"#);
    assert_eq!(
        after.iter().map(|e| e.id.unwrap()).collect::<Vec<_>>(),
        [ids[1]]
    );
}

/// `confirm_delay_secs` bounds how long a confirmation waits for another commit.
#[test]
fn a_lone_confirmation_is_committed_after_the_confirm_delay() {
    let mut server = Server::start_with("confirm-delay", "confirm_delay_secs = 1");
    let (key, token) = server.device("ann");
    let id = post_ok(&server, &token, r#"{"n":1}"#, "");
    drop(server.subscribe(&key, Some(id)));
    wait_until("the confirmation's commit", || {
        support::api::queued(&server) == 0
    });
    server.restart();
    let mut sse = server.subscribe(&key, None);
    assert!(events_before_sentinel(&server, &mut sse, &token).is_empty());
}

#[test]
fn deleting_a_client_closes_its_stream() {
    let server = Server::start("delete-client");
    let (key, token) = server.device("ann");
    let mut sse = server.subscribe(&key, None);
    let auth = basic("ann", "secret");
    let list = server.request("GET", "/client", &[("Authorization", &auth)], "");
    assert_eq!(list.status, 200, "{}", list.text());
    let id = list.json_field("id");
    let r = server.request(
        "DELETE",
        &format!("/client/{id}"),
        &[("Authorization", &auth)],
        "",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        sse.closed_within(TIMEOUT),
        "stream of a deleted client stays open"
    );
    post(&server, &token, r#"{"n":1}"#, "").assert_error(404);
    let again = server.subscribe(&key, None);
    assert_eq!(again.status, 401);
}

#[test]
fn sigterm_closes_streams_exits_zero_and_keeps_messages() {
    let mut server = Server::start("sigterm");
    let (key, token) = server.device("ann");
    let (other_key, other_token) = server.device("bob");
    let mut sse = server.subscribe(&key, None);
    let live = post_ok(&server, &token, r#"{"n":1}"#, "");
    assert_eq!(sse.next().id, Some(live));
    let queued = post_ok(&server, &other_token, r#"{"n":2}"#, "");
    let started = Instant::now();
    let status = server.terminate();
    assert!(status.success(), "exit status {status}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(sse.closed_within(Duration::from_secs(1)));
    server.restart();
    let mut sse = server.subscribe(&key, None);
    assert_eq!(sse.next().id, Some(live));
    let mut other = server.subscribe(&other_key, None);
    assert_eq!(other.next().id, Some(queued));
}

#[test]
fn client_that_stops_reading_is_cut_off_without_slowing_others_or_losing_messages() {
    // More than the kernel buffers on both ends hold (about 4 MB on loopback). Regression:
    // the queue limit check read the whole queue, so posts to a long queue took 60 ms each.
    const POSTS: usize = 1400;
    const RSS_BOUND_KIB: u64 = 64 * 1024;
    let server = Server::start_with(
        "slow-reader",
        "max_stream_buffer_bytes = 65536\nwrite_timeout_secs = 1\nmax_queued_per_client = 2000\nmax_queued_bytes_per_client = 16777216\nposts_per_sec_per_token = 0",
    );
    let (slow_key, slow_token) = server.device("ann");
    let (fast_key, fast_token) = server.device("bob");
    let idle_rss = rss_kib(server.pid());
    // Subscribed, then never read again.
    let mut slow = server.subscribe(&slow_key, None);
    let mut fast = server.subscribe(&fast_key, None);
    let filler = "x".repeat(4000);
    let mut peak_rss = idle_rss;
    let mut worst_latency = Duration::ZERO;
    let posted = AtomicUsize::new(0);
    let addr = server.addr;
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                loop {
                    let n = posted.fetch_add(1, Ordering::SeqCst);
                    if n >= POSTS {
                        break;
                    }
                    let body = format!(
                        r#"{{"token":"{slow_token}","data":{{"n":{n},"pad":"{filler}"}}}}"#
                    );
                    let r = request(addr, "POST", "/message", &[], &body);
                    assert_eq!(r.status, 200, "{}", r.text());
                }
            });
        }
        // Meanwhile the other client gets its messages promptly.
        let mut probe = 0;
        while posted.load(Ordering::SeqCst) < POSTS {
            let sent = Instant::now();
            post_ok(&server, &fast_token, &format!(r#"{{"probe":{probe}}}"#), "");
            read_until(&mut fast, &format!(r#""probe":{probe}}}"#));
            worst_latency = worst_latency.max(sent.elapsed());
            peak_rss = peak_rss.max(rss_kib(server.pid()));
            probe += 1;
        }
    });
    eprintln!(
        "slow reader: RSS idle {idle_rss} KiB, peak {peak_rss} KiB; worst probe latency {worst_latency:?}"
    );
    assert!(
        worst_latency < Duration::from_secs(2),
        "another client waited {worst_latency:?}"
    );
    assert!(
        peak_rss < RSS_BOUND_KIB,
        "server RSS reached {peak_rss} KiB"
    );
    let ended = server.wait_log("stream ended");
    assert!(ended.contains("too slow"), "{ended}");
    assert!(slow.closed_within(TIMEOUT), "the slow stream stayed open");
    // Everything is still in the store for the reconnect.
    let mut again = server.subscribe(&slow_key, None);
    // Posts from several threads commit in any order of `n`: read until all have come.
    let mut events = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < POSTS {
        let e = again.next();
        let n: usize = json_field(&e.data, "n").unwrap().parse().unwrap();
        assert!(seen.insert(n), "message {n} came twice on one stream");
        events.push(e);
    }
    assert_increasing(&events);
    assert_eq!(seen, (0..POSTS).collect());
    assert!(rss_kib(server.pid()) < RSS_BOUND_KIB);
}

#[test]
fn a_device_that_reconnects_while_eight_senders_post_loses_nothing() {
    // Regression: a stream that attached while a group commit was open took the group's
    // later messages live and moved its cursor past the ones staged before it attached, so
    // the next Last-Event-ID confirmed messages the device never got.
    const SENDERS: usize = 8;
    const POSTING: Duration = Duration::from_secs(4);
    let server = Server::start_with(
        "reconnect-race",
        "posts_per_sec_per_token = 0\nrequests_per_sec_per_addr = 0\nmax_queued_per_client = 100000",
    );
    let (key, token) = server.device("ann");
    let addr = server.addr;
    let stop = std::sync::atomic::AtomicBool::new(false);
    let mut acknowledged = std::collections::BTreeSet::new();
    let mut read = std::collections::BTreeSet::new();
    let mut reconnects = 0;
    let mut last = None;
    std::thread::scope(|s| {
        let senders: Vec<_> = (0..SENDERS)
            .map(|t| {
                let (token, stop) = (&token, &stop);
                s.spawn(move || {
                    let mut ids = Vec::new();
                    for n in 0.. {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let body = format!(r#"{{"token":"{token}","data":{{"s":"{t}-{n}"}}}}"#);
                        let r = request(addr, "POST", "/message", &[], &body);
                        assert_eq!(r.status, 200, "{}", r.text());
                        ids.push(r.json_field("id").parse::<u64>().unwrap());
                    }
                    ids
                })
            })
            .collect();
        // Reads 1 to 10 events, then drops the connection with whatever it has not read
        // and resumes from the last event it read, as a phone that loses its network does.
        let started = Instant::now();
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        while started.elapsed() < POSTING {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let mut sse = Sse::open(addr, &key, last);
            let mut ids = Vec::new();
            for _ in 0..1 + rng % 10 {
                let Some(e) = sse.next_within(Duration::from_secs(2)) else {
                    break;
                };
                ids.push(e.id.expect("an id"));
            }
            assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
            read.extend(&ids);
            last = ids.last().copied().or(last);
            reconnects += 1;
        }
        stop.store(true, Ordering::SeqCst);
        for sender in senders {
            acknowledged.extend(sender.join().unwrap());
        }
    });
    let mut drain = server.subscribe(&key, None);
    for e in events_before_sentinel(&server, &mut drain, &token) {
        read.insert(e.id.expect("an id"));
    }
    let lost: Vec<u64> = acknowledged.difference(&read).copied().collect();
    eprintln!(
        "{} acknowledged, {reconnects} reconnects, {} lost",
        acknowledged.len(),
        lost.len()
    );
    assert!(lost.is_empty(), "acknowledged, never delivered: {lost:?}");
}

/// A device whose cursor is above every id the store has handed out (its database was
/// restored from an older backup, or a Redis lost its data) confirms nothing with it and
/// reads its queue from the start; a cursor the store did hand out still confirms.
#[test]
fn a_cursor_from_a_lost_history_confirms_nothing() {
    let server = Server::start("lost-history");
    let (key, token) = server.device("ann");
    let ids = post_numbered(&server, &token, 3);
    let from_elsewhere = ids[2] + 1_000_000;
    let mut sse = server.subscribe(&key, Some(from_elsewhere));
    let got: Vec<Option<u64>> = (0..3).map(|_| sse.next().id).collect();
    assert_eq!(got, ids.iter().copied().map(Some).collect::<Vec<_>>());
    drop(sse);
    let mut again = server.subscribe(&key, Some(ids[1]));
    assert_eq!(
        again.next().id,
        Some(ids[2]),
        "a cursor it handed out confirms"
    );
    assert!(again.next_within(Duration::from_millis(300)).is_none());
    server.wait_log("from a history the store no longer has");
}
