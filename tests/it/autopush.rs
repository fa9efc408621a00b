//! The autopush door driven as Firefox and Sunup drive it: a WebSocket client speaking
//! Mozilla's autopush protocol to the real binary, and app servers posting to the
//! `/wpush/v1|v2/<token>` endpoints it hands out. What a client sees: hello (new and
//! resumed uaids), register (v1, v2, padded and bad keys), notifications byte for byte,
//! ack, nack, unregister, `{}` pings, broadcast_subscribe, protocol errors (1002), the hello
//! timeout (1008), replacement by a second connection (4000), re-sending of unacknowledged
//! messages after a reconnect and a restart, TTL 0, `Topic` replacement, VAPID on v2
//! endpoints (201, 401, 403) with tokens signed here, and the channel, uaid-per-address and
//! queue limits.

use crate::support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64ct::{Base64UrlUnpadded, Encoding};
use miniserde::json::Value;

use support::api::queued;
use support::push::{Obj, send};
use support::vapid::AppServer;
use support::webpush::Subscriber;
use support::ws::{CLOSE, PING, PONG, TEXT, WsClient};
use support::{Response, Server, TIMEOUT, closed_within, now_secs};

const AES128GCM: (&str, &str) = ("Content-Encoding", "aes128gcm");

/// A channel id as Firefox makes them: a lowercase hyphenated UUID.
fn channel(n: u8) -> String {
    format!("0c1d2e3f-4a5b-4c6d-8e7f-0000000000{n:02x}")
}

fn hello_text(uaid: &str) -> String {
    format!(
        r#"{{"messageType":"hello","uaid":"{uaid}","channelIDs":[],"use_webpush":true,"broadcasts":{{}}}}"#
    )
}

/// The next text message, answering pings; a close or silence fails with what came.
fn next_text(ws: &mut WsClient) -> String {
    loop {
        let frame = ws.next_frame_within(TIMEOUT).expect("a message in time");
        match frame.opcode {
            TEXT => return String::from_utf8(frame.payload).expect("UTF-8 text"),
            PING => ws.send_frame(0x80 | PONG, &frame.payload).unwrap(),
            CLOSE => panic!(
                "closed instead: {} {:?}",
                u16::from_be_bytes([frame.payload[0], frame.payload[1]]),
                String::from_utf8_lossy(&frame.payload[2..])
            ),
            other => panic!("unexpected frame {other}"),
        }
    }
}

fn open(s: &Server) -> WsClient {
    WsClient::connect(s.addr, "/", &[]).expect("a 101 upgrade")
}

/// A user agent after its hello.
struct Agent {
    ws: WsClient,
    uaid: String,
}

impl Agent {
    /// Connects and says hello with `uaid` ("" for a new one); checks the answer.
    fn hello(s: &Server, uaid: &str) -> Agent {
        let mut ws = open(s);
        ws.send_text(&hello_text(uaid)).unwrap();
        let answer = next_text(&mut ws);
        let uaid = Obj::parse(&answer).str("uaid").to_owned();
        assert_eq!(
            answer,
            format!(
                r#"{{"messageType":"hello","uaid":"{uaid}","status":200,"use_webpush":true,"broadcasts":{{}}}}"#
            )
        );
        assert_eq!(uaid.len(), 56, "{uaid}");
        assert!(uaid.bytes().all(|b| b.is_ascii_hexdigit()), "{uaid}");
        Agent { ws, uaid }
    }

    fn send(&mut self, text: &str) {
        self.ws.send_text(text).unwrap();
    }

    fn next(&mut self) -> Obj {
        Obj::parse(&next_text(&mut self.ws))
    }

    fn notification(&mut self) -> Obj {
        let n = self.next();
        assert_eq!(n.str("messageType"), "notification", "{}", n.text);
        n
    }

    fn register(&mut self, channel: &str, key: Option<&str>) -> Obj {
        let key = key.map_or(String::new(), |k| format!(r#","key":"{k}""#));
        self.send(&format!(
            r#"{{"messageType":"register","channelID":"{channel}"{key}}}"#
        ));
        let answer = self.next();
        assert_eq!(answer.str("messageType"), "register", "{}", answer.text);
        assert_eq!(answer.str("channelID"), channel, "{}", answer.text);
        answer
    }

    /// Registers `channel` and returns its endpoint's path, checking the URL it is in.
    fn endpoint(&mut self, s: &Server, channel: &str, key: Option<&str>) -> String {
        let answer = self.register(channel, key);
        assert_eq!(answer.int("status"), 200, "{}", answer.text);
        let url = answer.str("pushEndpoint");
        let version = if key.is_some() { "v2" } else { "v1" };
        let path = url
            .strip_prefix(&format!("http://{}", s.addr))
            .unwrap_or_else(|| panic!("endpoint {url} not on this server"));
        assert!(path.starts_with(&format!("/wpush/{version}/")), "{url}");
        path.to_owned()
    }

    fn unregister(&mut self, channel: &str) {
        self.send(&format!(
            r#"{{"messageType":"unregister","channelID":"{channel}","code":200}}"#
        ));
        assert_eq!(
            next_text(&mut self.ws),
            format!(r#"{{"messageType":"unregister","channelID":"{channel}","status":200}}"#)
        );
    }

    fn ack(&mut self, n: &Obj) {
        self.send(&format!(
            r#"{{"messageType":"ack","updates":[{{"channelID":"{}","version":"{}","code":100}}]}}"#,
            n.str("channelID"),
            n.str("version")
        ));
    }

    /// Sends a `{}` ping and returns what came before its `{}` answer: requests are
    /// answered in order, so everything sent or asked before it has been handled.
    fn sync(&mut self) -> Vec<Obj> {
        self.send("{}");
        let mut before = Vec::new();
        loop {
            let text = next_text(&mut self.ws);
            if text == "{}" {
                return before;
            }
            before.push(Obj::parse(&text));
        }
    }

    fn assert_nothing_more(&mut self) {
        let more = self.sync();
        assert!(more.is_empty(), "unexpected: {:?}", texts(&more));
    }
}

fn texts(objs: &[Obj]) -> Vec<&str> {
    objs.iter().map(|o| o.text.as_str()).collect()
}

/// The close frame that ends a connection (code, reason), once the server has also
/// closed the socket.
fn closed_with(ws: &mut WsClient) -> (u16, String) {
    let frame = ws.next_frame_within(TIMEOUT).expect("a close frame");
    assert_eq!(
        frame.opcode,
        CLOSE,
        "not a close: {:?}",
        String::from_utf8_lossy(&frame.payload)
    );
    let code = u16::from_be_bytes([frame.payload[0], frame.payload[1]]);
    let reason = String::from_utf8(frame.payload[2..].to_vec()).unwrap();
    let mut rest = Vec::new();
    assert!(
        closed_within(&mut ws.conn, &mut rest, TIMEOUT),
        "the server kept the socket open"
    );
    assert!(rest.is_empty(), "bytes after the close: {rest:?}");
    (code, reason)
}

/// A push as an app server sends it, to this server's own host.
fn push(s: &Server, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let host = s.addr.to_string();
    let mut all = vec![("Host", host.as_str())];
    all.extend_from_slice(headers);
    send(s.addr, "POST", path, &all, body)
}

fn push_body(s: &Server, path: &str, body: &[u8]) -> String {
    accepted(&push(s, path, &[AES128GCM, ("TTL", "60")], body), "60")
}

/// A 201 with the applied TTL; its `Location`, `/message/<16 hex digits>`.
#[track_caller]
fn accepted(r: &Response, ttl: &str) -> String {
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("ttl"), Some(ttl), "{:?}", r.headers);
    let location = r.header("location").expect("a Location");
    let name = location
        .strip_prefix("/message/")
        .unwrap_or_else(|| panic!("Location {location:?}"));
    assert!(
        name.len() == 16 && name.bytes().all(|b| b.is_ascii_hexdigit()),
        "Location {location:?}"
    );
    location.to_owned()
}

fn data(n: &Obj) -> Vec<u8> {
    let data = n.str("data");
    assert!(
        data.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "not unpadded base64url: {data}"
    );
    Base64UrlUnpadded::decode_vec(data).unwrap()
}

fn headers(n: &Obj) -> BTreeMap<String, String> {
    let Some(Value::Object(headers)) = n.get("headers") else {
        panic!("no headers in {}", n.text);
    };
    headers
        .iter()
        .map(|(k, v)| match v {
            Value::String(v) => (k.clone(), v.clone()),
            other => panic!("header {k} is {other:?}"),
        })
        .collect()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn version(n: &Obj) -> u64 {
    n.str("version").parse().expect("a decimal version")
}

fn bodies(notifications: &[Obj]) -> Vec<Vec<u8>> {
    notifications.iter().map(data).collect()
}

#[test]
fn hello_creates_a_uaid_and_resumes_it() {
    let s = Server::start("ap-hello");
    let first = Agent::hello(&s, "");
    let uaid = first.uaid.clone();
    drop(first);
    assert_eq!(Agent::hello(&s, &uaid).uaid, uaid);
    assert_eq!(Agent::hello(&s, &uaid.to_ascii_uppercase()).uaid, uaid);
    let forged = format!("{}{}", &uaid[..16], "0".repeat(40));
    for other in [forged.as_str(), "not-a-uaid"] {
        let fresh = Agent::hello(&s, other).uaid;
        assert_ne!(fresh, uaid);
        assert_ne!(fresh, other);
    }
}

#[test]
fn register_hands_out_v1_and_v2_endpoints() {
    let s = Server::start("ap-register");
    let mut agent = Agent::hello(&s, "");
    let v1 = agent.endpoint(&s, &channel(1), None);
    let token = v1.strip_prefix("/wpush/v1/").unwrap();
    let url_safe = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    assert!(token.len() >= 22 && token.bytes().all(url_safe), "{v1}");
    let key = AppServer::new(7).public();
    let v2 = agent.endpoint(&s, &channel(2), Some(&key));
    let padded = agent.endpoint(&s, &channel(3), Some(&format!("{key}=")));
    assert_ne!(v2, padded);
    for bad in ["AAAA", "not base64!", &key[..40]] {
        let answer = agent.register(&channel(4), Some(bad));
        assert_eq!(answer.int("status"), 400, "{}", answer.text);
        assert!(!answer.has("pushEndpoint"), "{}", answer.text);
    }
    for path in [&v1, &v2, &padded] {
        let r = s.request("GET", path, &[], "");
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, r#"{"unifiedpush":{"version":1}}"#)
        );
    }
    let crossed = v1.replace("/v1/", "/v2/");
    s.request("GET", &crossed, &[], "").assert_error(404);
    let r = push(&s, &v2.replace("/v2/", "/v1/"), &[AES128GCM], b"x");
    r.assert_error(404);
}

#[test]
fn registering_a_channel_again_keeps_or_renews_its_endpoint() {
    let s = Server::start("ap-reregister");
    let mut agent = Agent::hello(&s, "");
    let v1 = agent.endpoint(&s, &channel(1), None);
    let answer = agent.register(&channel(1), None);
    assert_eq!(
        answer.text,
        format!(
            r#"{{"messageType":"register","channelID":"{}","status":200,"pushEndpoint":"http://{}{v1}"}}"#,
            channel(1),
            s.addr
        ),
        "the same channel without a key keeps its endpoint"
    );
    let key = AppServer::new(7).public();
    let v2 = agent.endpoint(&s, &channel(1), Some(&key));
    assert_eq!(agent.endpoint(&s, &channel(1), Some(&key)), v2);
    s.request("GET", &v1, &[], "").assert_error(404);
    push(&s, &v1, &[AES128GCM], b"x").assert_error(404);
    push(&s, &v2, &[AES128GCM], b"x").assert_error(401);
    agent.assert_nothing_more();
}

#[test]
fn notifications_carry_bodies_byte_for_byte() {
    let s = Server::start("ap-bytes");
    let mut agent = Agent::hello(&s, "");
    let ch = channel(1);
    let path = agent.endpoint(&s, &ch, None);

    let every_byte: Vec<u8> = (0..=255u8).collect();
    let location = push_body(&s, &path, &every_byte);
    let n = agent.notification();
    assert_eq!(n.str("channelID"), ch);
    assert_ne!(
        location,
        format!("/message/{}", version(&n)),
        "the Location does not tell the version"
    );
    assert!((58..=60).contains(&n.int("ttl")), "{}", n.text);
    assert_eq!(data(&n), every_byte);
    assert_eq!(headers(&n), map(&[("encoding", "aes128gcm")]));

    let subscriber = Subscriber::new();
    let secret = b"an encrypted greeting".to_vec();
    push_body(&s, &path, &subscriber.encrypt(&secret));
    assert_eq!(subscriber.decrypt(&data(&agent.notification())), secret);

    let r = push(&s, &path, &[("TTL", "30")], b"");
    accepted(&r, "30");
    let empty = agent.notification();
    let keys: Vec<&str> = empty.map.keys().map(String::as_str).collect();
    assert_eq!(keys, ["channelID", "messageType", "ttl", "version"]);

    let aesgcm = [
        ("Content-Encoding", "aesgcm"),
        ("Encryption", "salt=c2FsdHNhbHRzYWx0c2FsdA"),
        ("Crypto-Key", "dh=BPublicKey"),
    ];
    accepted(&push(&s, &path, &aesgcm, b"old draft"), "2419200");
    let n = agent.notification();
    assert_eq!(data(&n), b"old draft");
    assert_eq!(
        headers(&n),
        map(&[
            ("encoding", "aesgcm"),
            ("encryption", "salt=c2FsdHNhbHRzYWx0c2FsdA"),
            ("crypto_key", "dh=BPublicKey"),
        ])
    );

    push(&s, &path, &aesgcm[..2], b"x").assert_error(400);
    push(&s, &path, &[], b"no encoding").assert_error(400);
    push(&s, &path, &[AES128GCM], &[0; 4097]).assert_error(413);
    push(&s, "/wpush/v1/unknown", &[AES128GCM], b"x").assert_error(404);
    accepted(&push(&s, &path, &[AES128GCM], &[0xab; 4096]), "2419200");
    assert_eq!(data(&agent.notification()), [0xab; 4096]);
    agent.assert_nothing_more();
}

#[test]
fn acknowledged_messages_are_not_sent_again() {
    let mut s = Server::start("ap-ack");
    let mut agent = Agent::hello(&s, "");
    let path = agent.endpoint(&s, &channel(1), None);
    push_body(&s, &path, b"one");
    push_body(&s, &path, b"two");
    let one = agent.notification();
    let two = agent.notification();
    agent.ack(&one);
    let mut wrong_channel = Obj::parse(&two.text);
    wrong_channel
        .map
        .insert("channelID".into(), Value::String(channel(9)));
    agent.ack(&wrong_channel);
    agent.assert_nothing_more();

    // The ack is in force at once, before the commit that deletes the message.
    let mut agent = reconnect(&s, agent);
    let again = agent.notification();
    assert_eq!((version(&again), data(&again)), (version(&two), data(&two)));
    agent.assert_nothing_more();
    agent.ack(&again);
    agent.assert_nothing_more();
    let uaid = agent.uaid.clone();
    reconnect(&s, agent).assert_nothing_more();
    s.restart_gracefully();
    assert_eq!(queued(&s), 0, "a clean stop commits the acks");
    Agent::hello(&s, &uaid).assert_nothing_more();
}

#[test]
fn unacknowledged_messages_are_sent_again_after_a_reconnect_and_a_restart() {
    let mut s = Server::start("ap-resend");
    let mut agent = Agent::hello(&s, "");
    let path = agent.endpoint(&s, &channel(1), None);
    push_body(&s, &path, b"keep me");
    let id = version(&agent.notification());

    let mut agent = reconnect(&s, agent);
    assert_eq!(version(&agent.notification()), id);
    agent.assert_nothing_more();

    let uaid = agent.uaid.clone();
    drop(agent);
    s.restart();
    let mut agent = Agent::hello(&s, &uaid);
    assert_eq!(agent.uaid, uaid);
    let n = agent.notification();
    assert_eq!((version(&n), data(&n)), (id, b"keep me".to_vec()));
    agent.assert_nothing_more();
    push_body(&s, &path, b"after the restart");
    let later = agent.notification();
    assert_eq!(data(&later), b"after the restart");
    agent.ack(&n);
    agent.ack(&later);
    agent.assert_nothing_more();
    drop(agent);
    s.restart_gracefully();
    Agent::hello(&s, &uaid).assert_nothing_more();
}

#[test]
fn acks_are_on_disk_within_the_confirm_delay_even_without_other_writes() {
    let mut s = Server::start_with("ap-lazy-ack", "confirm_delay_secs = 1\n");
    let mut agent = Agent::hello(&s, "");
    let path = agent.endpoint(&s, &channel(1), None);
    push_body(&s, &path, b"once");
    let n = agent.notification();
    agent.ack(&n);
    agent.assert_nothing_more();
    let uaid = agent.uaid.clone();
    drop(agent);
    std::thread::sleep(Duration::from_secs(2));
    s.restart();
    Agent::hello(&s, &uaid).assert_nothing_more();
}

#[test]
fn a_nack_keeps_the_message() {
    let s = Server::start("ap-nack");
    let mut agent = Agent::hello(&s, "");
    let path = agent.endpoint(&s, &channel(1), None);
    push_body(&s, &path, b"not now");
    let n = agent.notification();
    let id = version(&n);
    agent.send(&format!(
        r#"{{"messageType":"nack","version":"{}","code":301}}"#,
        n.str("version")
    ));
    agent.assert_nothing_more();
    assert_eq!(queued(&s), 1);
    let mut agent = reconnect(&s, agent);
    assert_eq!(version(&agent.notification()), id);
}

#[test]
fn unregister_ends_the_endpoint_and_drops_its_messages() {
    let s = Server::start("ap-unregister");
    let mut agent = Agent::hello(&s, "");
    let gone = agent.endpoint(&s, &channel(1), None);
    let kept = agent.endpoint(&s, &channel(2), None);
    push_body(&s, &gone, b"gone 1");
    push_body(&s, &gone, b"gone 2");
    push_body(&s, &kept, b"kept");
    let got = [
        agent.notification(),
        agent.notification(),
        agent.notification(),
    ];
    assert_eq!(bodies(&got), [&b"gone 1"[..], b"gone 2", b"kept"]);
    let kept_id = version(&got[2]);
    agent.unregister(&channel(1));
    assert_eq!(queued(&s), 1);
    push(&s, &gone, &[AES128GCM], b"late").assert_error(404);
    s.request("GET", &gone, &[], "").assert_error(404);
    agent.unregister(&channel(7));

    let mut agent = reconnect(&s, agent);
    assert_eq!(version(&agent.notification()), kept_id);
    agent.assert_nothing_more();
    let renewed = agent.endpoint(&s, &channel(1), None);
    assert_ne!(renewed, gone);
    push_body(&s, &renewed, b"new endpoint");
    assert_eq!(data(&agent.notification()), b"new endpoint");
}

#[test]
fn pings_and_broadcast_subscribe() {
    let s = Server::start("ap-ping");
    let mut agent = Agent::hello(&s, "");
    agent.assert_nothing_more();
    agent.send(r#"{"messageType":"broadcast_subscribe","broadcasts":{"remote-settings/monitor_changes":"v1"}}"#);
    agent.assert_nothing_more();
    agent.ws.send_ping(b"frame").unwrap();
    let pong = agent.ws.next_frame_within(TIMEOUT).expect("a pong");
    assert_eq!(
        (pong.opcode, pong.payload.as_slice()),
        (PONG, &b"frame"[..])
    );
    let path = agent.endpoint(&s, &channel(1), None);
    push_body(&s, &path, b"still listening");
    assert_eq!(data(&agent.notification()), b"still listening");
}

#[test]
fn protocol_errors_close_with_1002() {
    let s = Server::start("ap-1002");
    let cases = [
        (true, r#"{"messageType":"urgency","level":"high"}"#),
        (true, "not json"),
        (true, r#"["messageType","hello"]"#),
        (true, &hello_text("")),
        (
            false,
            r#"{"messageType":"register","channelID":"0c1d2e3f-4a5b-4c6d-8e7f-000000000001"}"#,
        ),
    ];
    for (say_hello, text) in cases {
        let mut ws = if say_hello {
            Agent::hello(&s, "").ws
        } else {
            open(&s)
        };
        ws.send_text(text).unwrap();
        let (code, reason) = closed_with(&mut ws);
        assert_eq!(code, 1002, "{text}: {reason}");
        assert!(!reason.is_empty(), "{text}");
    }
    let mut ws = Agent::hello(&s, "").ws;
    ws.send_text(r#"{"messageType":"urgency"}"#).unwrap();
    assert_eq!(closed_with(&mut ws), (1002, "unknown messageType".into()));
}

// Regression: a register `key` that was not a string (`5`, `{}`, `[1]`, `true`) was taken
// as no key, and the answer was an endpoint that takes pushes from anyone.
#[test]
fn a_key_or_uaid_that_is_not_a_string_closes_with_1002() {
    let s = Server::start("ap-key-type");
    for key in ["5", "{}", "[1]", "true"] {
        let mut agent = Agent::hello(&s, "");
        agent.send(&format!(
            r#"{{"messageType":"register","channelID":"{}","key":{key}}}"#,
            channel(1)
        ));
        let (code, reason) = closed_with(&mut agent.ws);
        assert_eq!(code, 1002, "key {key}: {reason}");
        assert!(reason.contains("key"), "key {key}: {reason}");
    }
    // A `null` key is no key, as a missing one.
    let mut agent = Agent::hello(&s, "");
    agent.send(&format!(
        r#"{{"messageType":"register","channelID":"{}","key":null}}"#,
        channel(1)
    ));
    let answer = agent.next();
    assert_eq!(answer.int("status"), 200, "{}", answer.text);
    assert!(answer.str("pushEndpoint").contains("/wpush/v1/"));
    for uaid in ["5", "{}", "[1]", "true"] {
        let mut ws = open(&s);
        ws.send_text(&format!(r#"{{"messageType":"hello","uaid":{uaid}}}"#))
            .unwrap();
        let (code, reason) = closed_with(&mut ws);
        assert_eq!(code, 1002, "uaid {uaid}: {reason}");
        assert!(reason.contains("uaid"), "uaid {uaid}: {reason}");
    }
}

#[test]
fn hello_must_come_in_time() {
    let s = Server::start_with("ap-hello-timeout", "hello_timeout_secs = 1");
    let started = Instant::now();
    let mut ws = open(&s);
    ws.send_ping(b"early").unwrap();
    let pong = ws
        .next_frame_within(TIMEOUT)
        .expect("a pong before the hello");
    assert_eq!(
        (pong.opcode, pong.payload.as_slice()),
        (PONG, &b"early"[..])
    );
    let (code, _) = closed_with(&mut ws);
    assert_eq!(code, 1008);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(8),
        "{waited:?}"
    );
    Agent::hello(&s, "").assert_nothing_more();
}

#[test]
fn a_second_hello_with_the_uaid_replaces_the_connection() {
    let s = Server::start("ap-replace");
    let mut first = Agent::hello(&s, "");
    let path = first.endpoint(&s, &channel(1), None);
    push_body(&s, &path, b"unacked");
    let id = version(&first.notification());

    let mut second = Agent::hello(&s, &first.uaid);
    assert_eq!(second.uaid, first.uaid);
    assert_eq!(version(&second.notification()), id);
    assert_eq!(closed_with(&mut first.ws).0, 4000);
    push_body(&s, &path, b"to the new one");
    assert_eq!(data(&second.notification()), b"to the new one");
    second.assert_nothing_more();
}

#[test]
fn ttl_zero_reaches_only_a_live_connection() {
    let s = Server::start("ap-ttl0");
    let mut agent = Agent::hello(&s, "");
    let path = agent.endpoint(&s, &channel(1), None);
    accepted(&push(&s, &path, &[AES128GCM, ("TTL", "0")], b"now"), "0");
    let n = agent.notification();
    assert_eq!((n.int("ttl"), data(&n)), (0, b"now".to_vec()));
    agent.assert_nothing_more();
    assert_eq!(queued(&s), 0);

    let uaid = agent.uaid.clone();
    drop(agent);
    accepted(&push(&s, &path, &[AES128GCM, ("TTL", "0")], b"missed"), "0");
    push_body(&s, &path, b"stored");
    assert_eq!(queued(&s), 1);
    let mut agent = Agent::hello(&s, &uaid);
    assert_eq!(data(&agent.notification()), b"stored");
    agent.assert_nothing_more();
}

#[test]
fn a_topic_replaces_an_undelivered_message_of_its_channel() {
    let s = Server::start("ap-topic");
    let mut agent = Agent::hello(&s, "");
    let a = agent.endpoint(&s, &channel(1), None);
    let b = agent.endpoint(&s, &channel(2), None);
    let uaid = agent.uaid.clone();
    drop(agent);
    let with_topic = |path: &str, topic: &str, body: &[u8]| {
        let r = push(
            &s,
            path,
            &[AES128GCM, ("TTL", "60"), ("Topic", topic)],
            body,
        );
        accepted(&r, "60")
    };
    with_topic(&a, "score", b"1:0");
    with_topic(&b, "score", b"other channel");
    with_topic(&a, "score", b"2:0");
    with_topic(&a, "weather", b"rain");
    push_body(&s, &a, b"no topic");
    assert_eq!(queued(&s), 4);
    let mut agent = Agent::hello(&s, &uaid);
    let got = [(); 4].map(|()| agent.notification());
    assert_eq!(
        bodies(&got),
        [&b"other channel"[..], b"2:0", b"rain", b"no topic"]
    );
    agent.assert_nothing_more();
}

#[test]
fn v2_endpoints_require_vapid_signed_by_their_key() {
    let s = Server::start("ap-vapid");
    let app = AppServer::new(7);
    let other = AppServer::new(9);
    let mut agent = Agent::hello(&s, "");
    let path = agent.endpoint(&s, &channel(1), Some(&app.public()));
    let origin = format!("http://{}", s.addr);
    let post = |auth: &[(&str, &str)]| {
        let mut headers = vec![AES128GCM, ("TTL", "60")];
        headers.extend_from_slice(auth);
        push(&s, &path, &headers, b"signed")
    };

    for aud in [origin.clone(), format!("{origin}/")] {
        accepted(&post(&[("Authorization", &app.vapid(&aud))]), "60");
        assert_eq!(data(&agent.notification()), b"signed");
    }
    let webpush = format!("WebPush {}", app.jwt(&origin, now_secs() + 600));
    let crypto_key = format!("p256ecdsa={}", app.public());
    accepted(
        &post(&[("Authorization", &webpush), ("Crypto-Key", &crypto_key)]),
        "60",
    );
    assert_eq!(data(&agent.notification()), b"signed");

    let unauthorized = [
        String::new(),
        app.vapid_until(&origin, now_secs() - 10),
        app.vapid_until(&origin, now_secs() + 25 * 3600),
        app.vapid("http://elsewhere.example"),
        app.vapid("https://127.0.0.1"),
        format!("vapid t=not.a.jwt, k={}", app.public()),
        format!(
            "vapid t={}, k={}",
            other.jwt(&origin, now_secs() + 600),
            app.public()
        ),
        webpush.clone(),
    ];
    for auth in &unauthorized {
        let headers: Vec<_> = Some(("Authorization", auth.as_str()))
            .filter(|_| !auth.is_empty())
            .into_iter()
            .collect();
        let r = post(&headers);
        r.assert_error(401);
        assert_eq!(r.header("www-authenticate"), Some("vapid"), "{auth}");
    }
    post(&[("Authorization", &other.vapid(&origin))]).assert_error(403);
    agent.assert_nothing_more();

    let v1 = agent.endpoint(&s, &channel(2), None);
    let headers = [AES128GCM, ("Authorization", "vapid t=garbage, k=garbage")];
    accepted(&push(&s, &v1, &headers, b"v1 ignores VAPID"), "2419200");
    assert_eq!(data(&agent.notification()), b"v1 ignores VAPID");
}

#[test]
fn vapid_aud_is_the_public_origin_with_or_without_its_default_port() {
    let s = Server::start_with("ap-vapid-origin", "public_url = http://push.example.net");
    let app = AppServer::new(5);
    let mut agent = Agent::hello(&s, "");
    let answer = agent.register(&channel(1), Some(&app.public()));
    let url = answer.str("pushEndpoint");
    let path = url
        .strip_prefix("http://push.example.net")
        .unwrap_or_else(|| panic!("{url}"))
        .to_owned();
    assert!(path.starts_with("/wpush/v2/"), "{url}");
    let post = |aud: &str| {
        push(
            &s,
            &path,
            &[AES128GCM, ("Authorization", &app.vapid(aud))],
            b"x",
        )
    };
    for aud in ["http://push.example.net", "http://push.example.net:80"] {
        accepted(&post(aud), "2419200");
        assert_eq!(data(&agent.notification()), b"x");
    }
    for aud in [
        "https://push.example.net",
        "http://push.example.net:8080",
        &format!("http://{}", s.addr),
    ] {
        post(aud).assert_error(401);
    }
}

#[test]
fn register_is_refused_past_the_channel_limit() {
    let s = Server::start_with("ap-channels", "max_channels_per_uaid = 2");
    let mut agent = Agent::hello(&s, "");
    agent.endpoint(&s, &channel(1), None);
    agent.endpoint(&s, &channel(2), None);
    let refused = agent.register(&channel(3), None);
    assert_eq!(
        refused.text,
        format!(
            r#"{{"messageType":"register","channelID":"{}","status":413}}"#,
            channel(3)
        )
    );
    agent.unregister(&channel(2));
    agent.endpoint(&s, &channel(3), None);
    assert_eq!(agent.register(&channel(4), None).int("status"), 413);
}

#[test]
fn new_uaids_per_address_are_limited() {
    let s = Server::start_with("ap-uaids", "max_uaids_per_addr = 2");
    let first = Agent::hello(&s, "").uaid;
    Agent::hello(&s, "");
    let mut ws = open(&s);
    ws.send_text(&hello_text("")).unwrap();
    assert_eq!(closed_with(&mut ws).0, 1013);
    assert_eq!(Agent::hello(&s, &first).uaid, first);
}

#[test]
fn a_full_queue_refuses_pushes_until_acknowledged() {
    let s = Server::start_with("ap-queue", "max_queued_per_uaid = 2");
    let mut agent = Agent::hello(&s, "");
    let path = agent.endpoint(&s, &channel(1), None);
    push_body(&s, &path, b"one");
    push_body(&s, &path, b"two");
    let r = push(&s, &path, &[AES128GCM], b"three");
    r.assert_error(429);
    assert!(r.header("retry-after").is_some(), "{:?}", r.headers);
    let one = agent.notification();
    agent.notification();
    agent.ack(&one);
    agent.assert_nothing_more();
    push_body(&s, &path, b"three");
    assert_eq!(data(&agent.notification()), b"three");
}

/// Drops the connection and says hello again with the same uaid.
fn reconnect(s: &Server, agent: Agent) -> Agent {
    let uaid = agent.uaid.clone();
    drop(agent);
    let again = Agent::hello(s, &uaid);
    assert_eq!(again.uaid, uaid);
    again
}

#[test]
fn the_matrix_gateway_delivers_to_v1_channels_and_rejects_v2() {
    let s = Server::start("ap-matrix");
    let mut agent = Agent::hello(&s, "");
    let v1 = agent.endpoint(&s, &channel(1), None);
    let app = AppServer::new(3);
    let v2 = agent.endpoint(&s, &channel(2), Some(&app.public()));
    let base = format!("http://{}", s.addr);
    let body = format!(
        r#"{{"notification":{{"event_id":"$e","counts":{{"unread":1}},"devices":[{{"app_id":"im.app","pushkey":"{base}{v1}"}},{{"app_id":"im.app","pushkey":"{base}{v2}"}}]}}}}"#
    );
    let host = s.addr.to_string();
    let r = send(
        s.addr,
        "POST",
        "/_matrix/push/v1/notify",
        &[("Host", &host), ("Content-Type", "application/json")],
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), format!(r#"{{"rejected":["{base}{v2}"]}}"#));
    let n = agent.notification();
    assert_eq!(n.str("channelID"), channel(1));
    assert!(
        n.get("headers").is_none(),
        "plain JSON has no encoding: {}",
        n.text
    );
    let delivered = String::from_utf8(data(&n)).unwrap();
    assert!(delivered.contains(r#""event_id":"$e""#), "{delivered}");
    agent.assert_nothing_more();
}

/// Group commits so far (`openpush_commit_seconds_count`): each is a write to the disk.
fn commits(s: &Server) -> u64 {
    s.metric("openpush_commit_seconds_count")
}

/// Bytes the server process has written to storage (`/proc/<pid>/io`).
fn disk_writes(s: &Server) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{}/io", s.pid())).unwrap();
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes: "))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn channel_requests_and_reconnects_that_change_nothing_write_nothing() {
    // Regression: registering a channel again with its key, unregistering an unknown one
    // and saying hello again each cost a commit.
    let s = Server::start("ap-no-op");
    let mut agent = Agent::hello(&s, "");
    let endpoint = agent.endpoint(&s, &channel(1), None);
    let before = commits(&s);
    for _ in 0..40 {
        let again = agent.register(&channel(1), None);
        assert!(
            again.str("pushEndpoint").ends_with(&endpoint),
            "{}",
            again.text
        );
        agent.unregister(&channel(2));
    }
    let uaid = agent.uaid.clone();
    let mut agent = reconnect(&s, agent);
    agent.assert_nothing_more();
    assert_eq!(
        commits(&s),
        before,
        "no commit for requests that change nothing"
    );
    drop(agent);
    Agent::hello(&s, &uaid).assert_nothing_more();
}

#[test]
fn a_flood_of_channel_changes_costs_a_bounded_number_of_commits() {
    // Regression: alternating register and unregister of one channel was answered about
    // 2,000 times a second, each a commit: 50 MB/s to a router's flash from one WebSocket.
    let s = Server::start_with(
        "ap-flood",
        "channel_change_burst_per_uaid = 20\nchannel_changes_per_sec_per_uaid = 1",
    );
    // From an address that is not a trusted proxy, as a stranger on the internet is.
    let mut ws = WsClient::connect(s.addr, "/", &[("X-Forwarded-For", "192.0.2.7")]).unwrap();
    ws.send_text(&hello_text("")).unwrap();
    next_text(&mut ws);
    let (commits_before, written_before) = (commits(&s), disk_writes(&s));
    let started = Instant::now();
    let mut statuses = BTreeMap::<u64, usize>::new();
    let mut closed = None;
    for n in 0..1000 {
        let request = if n % 2 == 0 { "register" } else { "unregister" };
        let sent = ws.send_text(&format!(
            r#"{{"messageType":"{request}","channelID":"{}"}}"#,
            channel(1)
        ));
        let frame = ws.next_frame_within(TIMEOUT);
        match frame {
            Some(f) if f.opcode == TEXT && sent.is_ok() => {
                let answer = Obj::parse(std::str::from_utf8(&f.payload).unwrap());
                *statuses.entry(answer.int("status")).or_default() += 1;
            }
            Some(f) if f.opcode == CLOSE => {
                closed = Some(u16::from_be_bytes([f.payload[0], f.payload[1]]));
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    let elapsed = started.elapsed().as_secs() as usize;
    let (made, written) = (
        commits(&s) - commits_before,
        disk_writes(&s) - written_before,
    );
    eprintln!("flood: {statuses:?}, closed {closed:?}, {made} commits, {written} bytes written");
    assert_eq!(
        closed,
        Some(1013),
        "the address's request budget ends the flood"
    );
    assert!(
        made as usize <= 20 + elapsed + 1,
        "{made} commits: {statuses:?}"
    );
    assert!(statuses.get(&429).is_some_and(|&n| n > 50), "{statuses:?}");
}

#[test]
fn channel_changes_sent_together_share_one_commit() {
    let s = Server::start("ap-batch");
    let mut agent = Agent::hello(&s, "");
    let before = commits(&s);
    for n in 0..12 {
        agent.send(&format!(
            r#"{{"messageType":"register","channelID":"{}"}}"#,
            channel(n)
        ));
    }
    for n in 0..12 {
        let answer = agent.next();
        assert_eq!(answer.str("channelID"), channel(n), "{}", answer.text);
        assert_eq!(answer.int("status"), 200, "{}", answer.text);
    }
    let made = commits(&s) - before;
    assert!(
        made <= 3,
        "{made} commits for 12 registrations sent together"
    );
}

/// A hello from `ip` (as a trusted proxy forwards it): the new uaid, or the close code.
fn hello_from(s: &Server, ip: &str) -> Result<String, u16> {
    let mut ws = WsClient::connect(s.addr, "/", &[("X-Forwarded-For", ip)]).unwrap();
    ws.send_text(&hello_text("")).unwrap();
    let frame = ws.next_frame_within(TIMEOUT).expect("an answer");
    match frame.opcode {
        TEXT => Ok(Obj::parse(std::str::from_utf8(&frame.payload).unwrap())
            .str("uaid")
            .to_owned()),
        CLOSE => Err(u16::from_be_bytes([frame.payload[0], frame.payload[1]])),
        other => panic!("unexpected frame {other}"),
    }
}

#[test]
fn user_agents_are_bounded_across_addresses_and_per_address_per_hour() {
    let s = Server::start_with(
        "ap-uaid-bounds",
        "max_uaids = 3\nnew_uaids_per_hour_per_addr = 2",
    );
    let first = hello_from(&s, "192.0.2.7").unwrap();
    hello_from(&s, "192.0.2.7").unwrap();
    assert_eq!(
        hello_from(&s, "192.0.2.7"),
        Err(1013),
        "two an hour per address"
    );
    hello_from(&s, "192.0.2.8").unwrap();
    assert_eq!(hello_from(&s, "192.0.2.9"), Err(1013), "three in all");
    assert_eq!(Agent::hello(&s, &first).uaid, first, "known ones come back");
}

/// `count` user agents with a channel each, pushed 4,000-byte bodies in turn until a push is
/// refused: the agents with their endpoints, how many each took, and the refusal.
fn fill_user_agents(s: &Server, count: usize) -> (Vec<(Agent, String)>, Vec<usize>, Response) {
    let agents: Vec<(Agent, String)> = (0..count)
        .map(|_| {
            let mut agent = Agent::hello(s, "");
            let path = agent.endpoint(s, &channel(1), None);
            (agent, path)
        })
        .collect();
    let body = vec![b'z'; 4000];
    let mut accepted = vec![0; agents.len()];
    let refused = 'fill: loop {
        for (i, (_, path)) in agents.iter().enumerate() {
            let r = push(s, path, &[AES128GCM, ("TTL", "259200")], &body);
            if r.status != 201 {
                break 'fill r;
            }
            accepted[i] += 1;
        }
    };
    (agents, accepted, refused)
}

#[test]
fn pushes_to_user_agents_of_every_address_stop_at_the_anonymous_share() {
    let s = Server::start_with(
        "ap-share",
        "max_store_bytes = 262144\nposts_per_sec_per_token = 0",
    );
    let (mut agents, accepted, refused) = fill_user_agents(&s, 3);
    refused.assert_error(507);
    let total: usize = accepted.iter().sum();
    assert!((14..=16).contains(&total), "{accepted:?}");
    for ((agent, _), n) in agents.iter_mut().zip(accepted) {
        for _ in 0..n {
            agent.notification();
        }
    }
}

#[test]
fn pushes_to_user_agents_of_every_address_stop_at_their_part_of_the_share() {
    let s = Server::start_with(
        "ap-uaid-bytes",
        "max_queued_bytes_all_uaids = 32768\nposts_per_sec_per_token = 0",
    );
    let (mut agents, accepted, refused) = fill_user_agents(&s, 2);
    refused.assert_error(507);
    assert!(refused.text().contains("user agents"), "{}", refused.text());
    assert_eq!(
        accepted.iter().sum::<usize>(),
        7,
        "32 KiB holds seven bodies of 4000 bytes with their records"
    );
    let (_, token) = s.device("ann");
    let r = send(
        s.addr,
        "POST",
        &format!("/push/{token}"),
        &[AES128GCM],
        &[b'z'; 4000],
    );
    assert_eq!(r.status, 201, "other doors keep the rest of the share");
    for ((agent, _), n) in agents.iter_mut().zip(accepted) {
        for _ in 0..n {
            agent.notification();
        }
    }
}
