//! What a stranger can make the server store, against the real binary: posts to queues
//! open to senders without an account stop at their share of `max_store_bytes` with 507
//! and never crowd out a user's own topics; the budget holds across a restart and frees
//! up as devices confirm; unclaimed endpoint topics hold a handful of messages until a
//! user subscribes, and each address may create only a few of them an hour.

use crate::support;

use std::time::Duration;

use support::push::send;
use support::{Response, Server, basic};

const BODY_BYTES: usize = 4000;

fn push(s: &Server, path: &str, from: Option<&str>) -> Response {
    let mut headers = vec![("Content-Encoding", "aes128gcm"), ("TTL", "259200")];
    if let Some(ip) = from {
        headers.push(("X-Forwarded-For", ip));
    }
    s.request("POST", path, &headers, &"x".repeat(BODY_BYTES))
}

fn publish_as(s: &Server, who: (&str, &str), topic: &str) -> Response {
    let auth = basic(who.0, who.1);
    s.request(
        "POST",
        &format!("/{topic}"),
        &[("Authorization", auth.as_str())],
        &"y".repeat(BODY_BYTES),
    )
}

/// Messages of a topic as a user polls them (which claims an unclaimed topic).
fn poll(s: &Server, who: (&str, &str), topic: &str) -> usize {
    let auth = basic(who.0, who.1);
    let r = s.request(
        "GET",
        &format!("/{topic}/json?poll=1&since=all"),
        &[("Authorization", auth.as_str())],
        "",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.text()
        .lines()
        .filter(|l| l.contains("\"event\":\"message\""))
        .count()
}

/// Posts until one is refused; how many were accepted, and the refusal.
fn fill(mut post: impl FnMut() -> Response) -> (usize, Response) {
    for accepted in 0..1000 {
        let r = post();
        if r.status >= 300 {
            return (accepted, r);
        }
    }
    panic!("no refusal after 1000 posts");
}

/// `openpush_store_bytes` of a share, from `/metrics`.
fn store_bytes(s: &Server, share: &str) -> u64 {
    s.metric(&format!("openpush_store_bytes{{share=\"{share}\"}}"))
}

/// The ids of the events a device's stream replays, until it is quiet.
fn replayed(s: &Server, key: &str) -> Vec<u64> {
    let mut sse = s.subscribe(key, None);
    let mut ids = Vec::new();
    while let Some(event) = sse.next_within(Duration::from_secs(2)) {
        ids.extend(event.id);
    }
    ids
}

#[test]
fn anonymous_posts_stop_at_their_share_and_never_crowd_out_a_users_topics() {
    let mut s = Server::start_with(
        "budget-share",
        "max_store_bytes = 262144\nanonymous_store_share_percent = 25\nposts_per_sec_per_token = 0",
    );
    let (key, token) = s.device("ann");
    let path = format!("/push/{token}");
    let (strangers, refused) = fill(|| push(&s, &path, None));
    refused.assert_error(507);
    assert!(
        refused.text().contains("without an account"),
        "{}",
        refused.text()
    );
    s.wait_log("post refused with 507");
    // A quarter of 256 KiB holds about 16 bodies of 4000 bytes, and not one more.
    assert!((14..=16).contains(&strangers), "{strangers}");
    let anonymous = store_bytes(&s, "anonymous");
    assert!((60_000..=65_536).contains(&anonymous), "{anonymous}");

    let ann = ("ann", "secret");
    let (family, refused) = fill(|| publish_as(&s, ann, "backups"));
    refused.assert_error(507);
    assert!(refused.text().contains("budget"), "{}", refused.text());
    assert!(family >= 40, "the users' topics keep the rest: {family}");
    assert!(store_bytes(&s, "all") <= 262_144);
    assert_eq!(poll(&s, ann, "backups"), family);

    s.kill9();
    s.restart();
    push(&s, &path, None).assert_error(507);
    let ids = replayed(&s, &key);
    assert_eq!(ids.len(), strangers, "nothing accepted was dropped");

    // The device confirms what it has: those leave the store, and room is made.
    let mut sse = s.subscribe(&key, ids.last().copied());
    assert!(sse.next_within(Duration::from_millis(300)).is_none());
    assert_eq!(push(&s, &path, None).status, 201);
}

#[test]
fn unclaimed_endpoint_topics_hold_a_handful_until_a_user_subscribes() {
    let s = Server::start_with("budget-unclaimed", "posts_per_sec_per_token = 0");
    s.add_user("ann", "secret");
    let topic = "upQ7fK2mZx9LbR4w";
    let path = format!("/{topic}");
    let (accepted, refused) = fill(|| push(&s, &path, Some("192.0.2.7")));
    assert_eq!(accepted, 4);
    refused.assert_error(429);

    assert_eq!(poll(&s, ("ann", "secret"), topic), 4);
    for _ in 0..4 {
        assert_eq!(push(&s, &path, Some("192.0.2.7")).status, 201);
    }
    assert_eq!(poll(&s, ("ann", "secret"), topic), 8);
}

#[test]
fn each_address_creates_only_a_few_unclaimed_topics_an_hour() {
    let s = Server::start_with(
        "budget-new-topics",
        "new_unclaimed_topics_per_hour_per_addr = 3\nposts_per_sec_per_token = 0",
    );
    let topic = |n: u32| format!("/upAAAAAAAAAAAA{n:02}");
    for n in 0..3 {
        assert_eq!(push(&s, &topic(n), Some("192.0.2.7")).status, 201);
    }
    let refused = push(&s, &topic(3), Some("192.0.2.7"));
    refused.assert_error(429);
    assert!(refused.header("retry-after").is_some());
    assert_eq!(
        push(&s, &topic(0), Some("192.0.2.7")).status,
        201,
        "posting to a topic it made is not creating one"
    );
    assert_eq!(push(&s, &topic(3), Some("192.0.2.8")).status, 201);
    assert_eq!(
        push(&s, &topic(4), Some("2001:db8::1")).status,
        201,
        "another address"
    );
    assert_eq!(
        push(&s, &topic(5), None).status,
        201,
        "the host itself is not limited"
    );
}

#[test]
fn the_matrix_gateway_and_post_message_count_in_the_same_share() {
    let s = Server::start_with(
        "budget-doors",
        "max_store_bytes = 262144\nposts_per_sec_per_token = 0",
    );
    let (_, token) = s.device("ann");
    let (_, refused) = fill(|| push(&s, &format!("/push/{token}"), None));
    refused.assert_error(507);

    let host = s.addr.to_string();
    let pushkey = format!("http://{host}/push/{token}");
    let notification = format!(
        r#"{{"notification":{{"devices":[{{"pushkey":"{pushkey}"}}],"event_id":"$e","room_id":"!r:example.org"}}}}"#
    );
    let (_, refused) = fill(|| {
        send(
            s.addr,
            "POST",
            "/_matrix/push/v1/notify",
            &[("Host", &host), ("Content-Type", "application/json")],
            notification.as_bytes(),
        )
    });
    refused.assert_error(507);

    let data = format!(r#"{{"text":"{}"}}"#, "m".repeat(500));
    s.post_message(&format!(r#"{{"token":"{token}","data":{data}}}"#))
        .assert_error(507);
}

#[test]
fn a_post_refused_for_its_size_leaves_no_unclaimed_topic_behind() {
    let s = Server::start_with(
        "budget-no-topic-left",
        "max_queued_bytes_per_unclaimed_topic = 1024\nmax_unclaimed_topics = 1",
    );
    push(&s, "/upAAAAAAAAAAAA01", Some("192.0.2.7")).assert_error(429);
    let small = s.request(
        "POST",
        "/upAAAAAAAAAAAA02",
        &[
            ("Content-Encoding", "aes128gcm"),
            ("X-Forwarded-For", "192.0.2.7"),
        ],
        "small",
    );
    assert_eq!(small.status, 201, "{}", small.text());
}
