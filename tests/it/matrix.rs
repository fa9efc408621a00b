//! The Matrix push gateway (`/_matrix/push/v1/notify`) against the real binary: what a
//! homeserver (Synapse, Dendrite, Conduit) sends for a UnifiedPush Matrix client, and what
//! reaches that client's distributor: the homeserver's JSON itself, on an endpoint topic's
//! ntfy stream or an OpenPush application's SSE stream; pushkeys that are not endpoints of
//! this server are listed in `rejected`, so that the homeserver drops those pushers.

use crate::support;

use std::time::Duration;

use support::api::as_client;
use support::push::{compact_json, poll, send};
use support::{Response, Server, basic};

const NOTIFY: &str = "/_matrix/push/v1/notify";
const ENDPOINT: &str = "upAbCdEf123456";

/// The example request of the Matrix Push Gateway API
/// (https://spec.matrix.org/latest/push-gateway-api/#post_matrixpushv1notify), with the
/// `devices` given, pretty-printed as a homeserver may send it.
fn notification(pushkeys: &[&str]) -> String {
    let devices: Vec<String> = pushkeys
        .iter()
        .map(|key| {
            format!(
                r#"
      {{
        "app_id": "org.matrix.matrixConsole.ios",
        "data": {{}},
        "pushkey": "{key}",
        "pushkey_ts": 12345678,
        "tweaks": {{
          "sound": "bing"
        }}
      }}"#
            )
        })
        .collect();
    format!(
        r##"{{
  "notification": {{
    "content": {{
      "body": "I'm floating in a most peculiar way.",
      "msgtype": "m.text"
    }},
    "counts": {{
      "missed_calls": 1,
      "unread": 2
    }},
    "devices": [{}
    ],
    "event_id": "$3957tyerfgewrf384",
    "prio": "high",
    "room_alias": "#exampleroom:matrix.org",
    "room_id": "!slw48wfj34rtnrf:example.com",
    "room_name": "Mission Control",
    "sender": "@exampleuser:matrix.org",
    "sender_display_name": "Major Tom",
    "type": "m.room.message",
    "user_is_target": true
  }}
}}
"##,
        devices.join(",")
    )
}

/// `POST /_matrix/push/v1/notify` as a homeserver sends it to the host of its pushkeys.
fn notify(s: &Server, body: &str) -> Response {
    let host = s.addr.to_string();
    let r = send(
        s.addr,
        "POST",
        NOTIFY,
        &[("Host", &host), ("Content-Type", "application/json")],
        body.as_bytes(),
    );
    assert!(!(300..400).contains(&r.status), "never a redirect: {r:?}");
    r
}

/// The `{"rejected":[…]}` answer `r` must be.
#[track_caller]
fn assert_rejected(r: &Response, rejected: &[&str]) {
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("content-type").unwrap_or("").contains("json"));
    let list: Vec<String> = rejected.iter().map(|k| format!("\"{k}\"")).collect();
    assert_eq!(r.text(), format!(r#"{{"rejected":[{}]}}"#, list.join(",")));
}

#[test]
fn get_answers_that_this_is_a_matrix_gateway() {
    let s = Server::start("mx-get");
    let r = s.request("GET", NOTIFY, &[], "");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), r#"{"unifiedpush":{"gateway":"matrix"}}"#);
    assert!(r.header("content-type").unwrap_or("").contains("json"));
    let r = s.request("PUT", NOTIFY, &[], "{}");
    assert_eq!(r.status, 405, "{}", r.text());
}

#[test]
fn an_endpoint_topic_gets_the_homeservers_json_and_other_pushkeys_are_rejected() {
    let s = Server::start("mx-topic");
    s.add_user("alice", "apw");
    let alice = basic("alice", "apw");
    let good = format!("http://{}/{ENDPOINT}?up=1", s.addr);
    let unknown_token = format!("http://{}/push/NoSuchToken0000000000000000000", s.addr);
    let other_host = format!("https://matrix-gateway.example.org/{ENDPOINT}?up=1");
    let body = notification(&[&good, &unknown_token, &other_host]);

    assert_rejected(&notify(&s, &body), &[&unknown_token, &other_host]);

    let got = poll(s.addr, &alice, ENDPOINT);
    assert_eq!(got.len(), 1, "one message for the one good pushkey");
    let m = &got[0];
    assert!(!m.has("encoding"), "the JSON travels as text: {}", m.text);
    assert_eq!(
        m.str("message"),
        compact_json(&body),
        "the homeserver's JSON, as it sent it"
    );
    // What Element's UnifiedPush receiver reads from it.
    let message = support::push::Obj::parse(m.str("message"));
    assert!(message.has("notification"), "{}", m.text);
    assert!(
        m.str("message")
            .contains(r#""event_id":"$3957tyerfgewrf384""#)
    );
    assert!(
        m.str("message")
            .contains(r#""counts":{"missed_calls":1,"unread":2}"#)
    );
    // Kept like a Web Push without TTL on an endpoint topic (topic_default_ttl_secs).
    assert!((m.int("expires") - m.int("time")).abs_diff(43200) <= 1);

    // The same endpoint without `?up=1`, as ntfy-less distributors hand it out.
    let plain = format!("http://{}/{ENDPOINT}", s.addr);
    assert_rejected(&notify(&s, &notification(&[&plain])), &[]);
    assert_eq!(poll(s.addr, &alice, ENDPOINT).len(), 2);
}

#[test]
fn an_application_pushkey_reaches_the_device_stream_as_json() {
    let s = Server::start("mx-app");
    let (key, token) = s.device("alice");
    let pushkey = format!("http://{}/push/{token}", s.addr);
    let body = notification(&[&pushkey]);

    assert_rejected(&notify(&s, &body), &[]);
    let mut sse = s.subscribe(&key, None);
    let event = sse.next();
    assert!(event.id.is_some(), "a stored message has an event id");
    assert_eq!(
        event.data,
        format!(
            r#"{{"data":{},"registration_id":"app1"}}"#,
            compact_json(&body)
        )
    );

    // An https pushkey for the same host (a TLS proxy in front) is ours too.
    let https = format!("https://{}/push/{token}", s.addr);
    assert_rejected(&notify(&s, &notification(&[&https])), &[]);
    assert!(sse.next().data.starts_with(r#"{"data":{"notification":"#));

    // Once the app is gone, the homeserver is told to drop the pusher.
    let r = as_client(&s, "DELETE", "/application/app1", &key, "");
    assert_eq!(r.status, 204, "{}", r.text());
    assert_rejected(&notify(&s, &body), &[&pushkey]);
    assert!(sse.next_within(Duration::from_millis(300)).is_none());
}

#[test]
fn pushkeys_that_are_not_endpoints_here_are_all_rejected() {
    let s = Server::start("mx-reject");
    let addr = s.addr;
    let keys = [
        format!("http://{addr}.evil.example/{ENDPOINT}"),
        format!("http://{addr}/not-an-endpoint-topic"),
        format!("http://{addr}/{ENDPOINT}?up=1&x=2"),
        format!("http://{addr}/push/"),
        format!("ftp://{addr}/{ENDPOINT}"),
        "V2h5IG9uIGVhcnRoIGRpZCB5b3UgZGVjb2RlIHRoaXM/".to_owned(),
    ];
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    assert_rejected(&notify(&s, &notification(&refs)), &refs);
    assert_rejected(&notify(&s, &notification(&[])), &[]);
}

#[test]
fn a_body_that_is_not_a_matrix_notification_is_400() {
    let s = Server::start("mx-bad");
    for body in [
        "not json",
        r#"{"notification":{"devices":[{"pushkey":"x"}]}"#,
        r#"{"notification":{"devices":[{"pushkey":"x"}]}} trailing"#,
        "",
        "{}",
        r#"{"notification":{}}"#,
        r#"{"notification":{"devices":[{"pushkey":1}]}}"#,
        "[]",
    ] {
        notify(&s, body).assert_error(400);
    }
}

#[test]
fn a_flooded_endpoint_gets_429_like_its_web_push_posts() {
    let s = Server::start_with(
        "mx-rate",
        "posts_per_sec_per_token = 0.01\npost_burst_per_token = 2",
    );
    let pushkey = format!("http://{}/upAbCdEf123456?up=1", s.addr);
    let body = notification(&[&pushkey]);
    assert_rejected(&notify(&s, &body), &[]);
    assert_rejected(&notify(&s, &body), &[]);
    let r = notify(&s, &body);
    r.assert_error(429);
    assert!(r.header("retry-after").is_some(), "{r:?}");
}

/// `openpush_posts_total{result="…"}` from `/metrics`.
fn posts(s: &Server, result: &str) -> u64 {
    s.metric(&format!("openpush_posts_total{{result=\"{result}\"}}"))
}

// Regression: the gateway's posts were missing from the posts counter.
#[test]
fn a_notification_counts_once_in_the_metrics_as_every_door_post_does() {
    let s = Server::start("mx-metrics");
    let good = format!("http://{}/{ENDPOINT}?up=1", s.addr);
    assert_rejected(&notify(&s, &notification(&[&good, &good])), &[]);
    assert_eq!((posts(&s, "accepted"), posts(&s, "refused")), (1, 0));
    notify(&s, "{not json").assert_error(400);
    assert_eq!((posts(&s, "accepted"), posts(&s, "refused")), (1, 1));
    let at_nextpush = s.request("POST", "/index.php/apps/uppush/gateway/matrix", &[], "[]");
    assert_eq!(at_nextpush.status, 400, "{}", at_nextpush.text());
    assert_eq!((posts(&s, "accepted"), posts(&s, "refused")), (1, 2));
}
