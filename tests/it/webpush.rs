//! Web Push (RFC 8030, RFC 8291 bodies) against the real binary, over real sockets, at both
//! kinds of endpoint: endpoint topics (`/up…`, with or without `?up=1`, read back through
//! ntfy's `/json` stream) and OpenPush applications' `/push/<token>` (read back through the
//! device's OpenPush SSE stream). What app servers such as Mastodon send and what they must
//! get back: 201 + `TTL` + `Location`, 400/404/413/429 and nothing else, never a redirect;
//! TTL, Urgency and Topic; byte-exact opaque bodies, and bodies encrypted by a real library
//! (Mozilla's `ece`) that decrypt on the other side.

use crate::support;

use std::time::Duration;

use support::api::{as_client, queued};
use support::push::{JsonStream, Obj, b64, poll, random_bytes, send};
use support::webpush::{Subscriber, body_len};
use support::{Response, Server, basic};

const ENDPOINT: &str = "upAbCdEf123456";
/// `topic_default_ttl_secs` and `topic_max_ttl_secs` by default.
const TOPIC_DEFAULT_TTL: &str = "43200";
const TOPIC_MAX_TTL: &str = "259200";
/// `default_ttl_secs` and `max_ttl_secs` by default (four weeks), for application endpoints.
const APP_DEFAULT_TTL: &str = "2419200";

/// A push request (POST) with a body of raw bytes.
fn push(s: &Server, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let r = send(s.addr, "POST", path, headers, body);
    assert_no_redirect(&r);
    r
}

fn assert_no_redirect(r: &Response) {
    assert!(
        !(300..400).contains(&r.status),
        "an endpoint must never redirect: {} {:?}",
        r.status,
        r.headers
    );
}

/// A 201 with the applied TTL and a `Location` that names the message without its id
/// (`/message/<16 hex digits>`); the `Location`.
#[track_caller]
fn assert_created(r: &Response, ttl: &str) -> String {
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        r.header("ttl"),
        Some(ttl),
        "the applied TTL: {:?}",
        r.headers
    );
    let location = r.header("location").expect("a Location header");
    let name = location
        .strip_prefix("/message/")
        .unwrap_or_else(|| panic!("Location {location:?} is not /message/<name>"));
    assert!(
        name.len() == 16 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        "Location {location:?} is not /message/<16 hex digits>"
    );
    location.to_owned()
}

/// The numeric message id of an ntfy message object (`op<id>`).
fn ntfy_id(m: &Obj) -> u64 {
    let id = m.str("id");
    id.strip_prefix("op")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("ntfy id {id:?}"))
}

/// The event data an OpenPush stream carries for an opaque body.
fn opaque_event(body: &[u8], registration_id: &str, urgency: Option<&str>) -> String {
    let urgency = urgency
        .map(|u| format!(r#","urgency":"{u}""#))
        .unwrap_or_default();
    format!(
        r#"{{"data":"{}","encoding":"base64","registration_id":"{registration_id}"{urgency}}}"#,
        b64(body)
    )
}

/// The bytes of an opaque body from an OpenPush event's data.
fn opaque_bytes(data: &str) -> Vec<u8> {
    let o = Obj::parse(data);
    assert_eq!(o.str("encoding"), "base64", "{data}");
    support::webpush::b64_decode(o.str("data"))
}

/// A server with the user alice (who reads endpoint topics) and bob's device with app
/// `app1`: (server, alice's auth, bob's client key, app1's routing token).
fn setup(name: &str, config: &str) -> (Server, String, String, String) {
    let s = Server::start_with(name, config);
    s.add_user("alice", "apw");
    let (key, token) = s.device("bob");
    (s, basic("alice", "apw"), key, token)
}

fn seconds_kept(m: &Obj) -> u64 {
    m.int("expires") - m.int("time")
}

// ---------------------------------------------------------------------------------------
// Endpoint topics.

#[test]
fn endpoint_topic_takes_post_and_put_of_1_to_4096_bytes_with_ttl_and_location() {
    let (s, alice, _, _) = setup("wp-sizes", "");
    assert!(
        poll(s.addr, &alice, ENDPOINT).is_empty(),
        "the phone subscribes"
    );
    let mut sent = Vec::new();
    for path in [format!("/{ENDPOINT}"), format!("/{ENDPOINT}?up=1")] {
        for method in ["POST", "PUT"] {
            for len in [1, 2, 100, 4095, 4096] {
                let body = random_bytes(len);
                let r = send(s.addr, method, &path, &[], &body);
                assert_no_redirect(&r);
                let location = assert_created(&r, TOPIC_DEFAULT_TTL);
                assert!(
                    sent.iter().all(|(other, _)| *other != location),
                    "a Location of its own: {location}"
                );
                sent.push((location, body));
            }
        }
    }
    let got = poll(s.addr, &alice, ENDPOINT);
    assert_eq!(
        got.len(),
        sent.len(),
        "every accepted push is kept, in order"
    );
    for (m, (_, body)) in got.iter().zip(&sent) {
        // As ntfy's UnifiedPush mode: UTF-8 as text, anything else as base64.
        let base64 = std::str::from_utf8(body).is_err();
        assert_eq!(m.has("encoding"), base64, "{}", m.text);
        assert_eq!(&m.message_bytes(), body, "byte for byte");
    }
}

#[test]
fn ttl_missing_gets_the_topic_default_and_a_longer_one_is_clamped() {
    let (s, alice, _, _) = setup("wp-ttl", "");
    let path = format!("/{ENDPOINT}");
    let cases: [(Option<&str>, &str); 4] = [
        (None, TOPIC_DEFAULT_TTL),
        (Some("999999"), TOPIC_MAX_TTL),
        (Some("60"), "60"),
        (Some(TOPIC_MAX_TTL), TOPIC_MAX_TTL),
    ];
    for (given, applied) in cases {
        let headers: Vec<(&str, &str)> = given.iter().map(|t| ("TTL", *t)).collect();
        let r = push(&s, &path, &headers, format!("ttl {given:?}").as_bytes());
        assert_created(&r, applied);
    }
    // The message is kept for the applied TTL, not the one asked for.
    let got = poll(s.addr, &alice, ENDPOINT);
    let kept: Vec<u64> = got.iter().map(seconds_kept).collect();
    let expected: Vec<u64> = cases.iter().map(|(_, a)| a.parse().unwrap()).collect();
    for (k, e) in kept.iter().zip(&expected) {
        assert!(k.abs_diff(*e) <= 1, "kept {kept:?}, applied {expected:?}");
    }
    assert_eq!(kept.len(), expected.len());
}

/// Every refusal a well-formed-looking push can get on either door, and that none of
/// them stores anything.
#[test]
fn refusals_are_400_413_and_store_nothing() {
    let (s, alice, key, token) = setup("wp-refusals", "");
    let app = format!("/push/{token}");
    for (i, path) in [
        format!("/{ENDPOINT}"),
        format!("/{ENDPOINT}?up=1"),
        app.clone(),
    ]
    .into_iter()
    .enumerate()
    {
        let refused = |headers: &[(&str, &str)], body: &[u8], status: u16| {
            let r = push(&s, &path, headers, body);
            r.assert_error(status);
            assert!(r.header("ttl").is_none(), "no TTL on a refusal");
        };
        refused(&[], &random_bytes(4097), 413);
        refused(&[], &random_bytes(65536), 413);
        refused(&[], b"", 400);
        refused(&[("Content-Encoding", "aesgcm")], b"legacy", 400);
        refused(&[("Content-Encoding", "AESGCM")], b"legacy", 400);
        refused(&[("Urgency", "bogus")], b"x", 400);
        refused(&[("Topic", &"a".repeat(33))], b"x", 400);
        refused(&[("Topic", "not.base64url")], b"x", 400);
        refused(&[("TTL", "soon")], b"x", 400);
        refused(&[("TTL", "-1")], b"x", 400);
        // The limits' edges are accepted (a Topic of 32 characters, distinct per path so
        // that none replaces another).
        let edge_topic = format!("{}abc{i}", "A-_9".repeat(7));
        assert_eq!(edge_topic.len(), 32);
        let ttl = if path == app {
            APP_DEFAULT_TTL
        } else {
            TOPIC_DEFAULT_TTL
        };
        let r = push(&s, &path, &[("Topic", &edge_topic)], b"edge");
        assert_created(&r, ttl);
    }
    let got = poll(s.addr, &alice, ENDPOINT);
    let bodies: Vec<Vec<u8>> = got.iter().map(Obj::message_bytes).collect();
    assert_eq!(
        bodies,
        [b"edge".to_vec(), b"edge".to_vec()],
        "only the accepted ones"
    );
    let mut sse = s.subscribe(&key, None);
    assert_eq!(opaque_bytes(&sse.next().data), b"edge");
    assert!(sse.next_within(Duration::from_millis(300)).is_none());
}

#[test]
fn get_on_an_endpoint_is_the_unifiedpush_discovery_answer() {
    let (s, _, _, token) = setup("wp-discovery", "");
    for path in [
        format!("/{ENDPOINT}"),
        format!("/{ENDPOINT}?up=1"),
        format!("/push/{token}"),
    ] {
        let r = s.request("GET", &path, &[], "");
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_eq!(r.text(), r#"{"unifiedpush":{"version":1}}"#, "{path}");
        assert!(r.header("content-type").unwrap_or("").contains("json"));
    }
    s.request("GET", "/push/NoSuchToken0000000000000000000", &[], "")
        .assert_error(404);
}

#[test]
fn vapid_and_webpush_authorization_headers_are_ignored() {
    let (s, alice, key, token) = setup("wp-vapid", "");
    let headers = [
        "vapid t=x,k=y",
        "vapid t=eyJ0eXAiOiJKV1QiLCJhbGciOiJFUzI1NiJ9.e30.sig, k=BAAA",
        "WebPush eyJ0eXAiOiJKV1QiLCJhbGciOiJFUzI1NiJ9.e30.sig",
    ];
    for auth in headers {
        for path in [format!("/{ENDPOINT}"), format!("/push/{token}")] {
            let r = push(&s, &path, &[("Authorization", auth)], auth.as_bytes());
            assert_eq!(r.status, 201, "{auth} on {path}: {}", r.text());
        }
    }
    assert_eq!(poll(s.addr, &alice, ENDPOINT).len(), headers.len());
    let mut sse = s.subscribe(&key, None);
    for auth in headers {
        assert_eq!(opaque_bytes(&sse.next().data), auth.as_bytes());
    }
}

/// A push waits for its device (on both doors) until its TTL ends, and not longer.
#[test]
fn a_push_waits_for_its_subscriber_until_its_ttl_ends() {
    let (s, alice, key, token) = setup("wp-later", "");
    let app = format!("/push/{token}");
    for path in [format!("/{ENDPOINT}"), app.clone()] {
        assert_eq!(push(&s, &path, &[("TTL", "1")], b"short").status, 201);
        assert_eq!(push(&s, &path, &[], b"default").status, 201);
        assert_eq!(push(&s, &path, &[("TTL", "3600")], b"an hour").status, 201);
    }
    std::thread::sleep(Duration::from_millis(1300));
    let got = poll(s.addr, &alice, ENDPOINT);
    let bodies: Vec<Vec<u8>> = got.iter().map(Obj::message_bytes).collect();
    assert_eq!(bodies, [b"default".to_vec(), b"an hour".to_vec()]);
    let mut sse = s.subscribe(&key, None);
    assert_eq!(opaque_bytes(&sse.next().data), b"default");
    assert_eq!(opaque_bytes(&sse.next().data), b"an hour");
    assert!(
        sse.next_within(Duration::from_millis(300)).is_none(),
        "an expired push is never delivered"
    );
}

/// The expiry sweep removes a push whose TTL has ended, and a server with nothing to remove
/// writes nothing: its database file is left alone between sweeps (no commit, no fsync).
#[test]
fn the_expiry_sweep_removes_expired_pushes_and_leaves_an_idle_store_alone() {
    let (s, _, _, token) = setup("wp-sweep", "sweep_interval_secs = 1");
    let app = format!("/push/{token}");
    assert_eq!(push(&s, &app, &[("TTL", "1")], b"short").status, 201);
    assert_eq!(queued(&s), 1);
    s.wait_log("removed 1 expired messages");
    assert_eq!(queued(&s), 0);
    let modified = || std::fs::metadata(&s.db).unwrap().modified().unwrap();
    let before = modified();
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(
        modified(),
        before,
        "three sweeps with nothing to do wrote to the store"
    );
}

/// RFC 8030 §5.4: a push with the Topic of an undelivered one replaces it, TTL and
/// urgency included; other topics are untouched.
#[test]
fn topic_header_replaces_the_undelivered_message_with_that_topic() {
    let (s, alice, key, token) = setup("wp-topic", "");
    let app = format!("/push/{token}");
    for path in [format!("/{ENDPOINT}"), app.clone()] {
        let first = [("Topic", "news"), ("Urgency", "low")];
        assert_eq!(push(&s, &path, &first, b"news v1").status, 201);
        assert_eq!(
            push(&s, &path, &[("Topic", "weather")], b"rain").status,
            201
        );
        let second = [("Topic", "news"), ("Urgency", "high"), ("TTL", "100")];
        assert_eq!(push(&s, &path, &second, b"news v2").status, 201);
    }
    let got = poll(s.addr, &alice, ENDPOINT);
    let bodies: Vec<Vec<u8>> = got.iter().map(Obj::message_bytes).collect();
    assert_eq!(bodies, [b"rain".to_vec(), b"news v2".to_vec()]);
    assert!(seconds_kept(&got[1]).abs_diff(100) <= 1, "{}", got[1].text);
    assert_eq!(got[1].int("priority"), 4, "Urgency high is ntfy priority 4");

    let mut sse = s.subscribe(&key, None);
    assert_eq!(sse.next().data, opaque_event(b"rain", "app1", None));
    let v2 = sse.next();
    assert_eq!(v2.data, opaque_event(b"news v2", "app1", Some("high")));
    assert!(sse.next_within(Duration::from_millis(300)).is_none());
    drop(sse);

    // Once delivered and confirmed, the same Topic is a new message again.
    assert_eq!(push(&s, &app, &[("Topic", "news")], b"news v3").status, 201);
    let mut sse = s.subscribe(&key, v2.id);
    assert_eq!(sse.next().data, opaque_event(b"news v3", "app1", None));
}

#[test]
fn a_ttl_0_push_with_a_topic_still_replaces_the_undelivered_one() {
    let (s, alice, key, token) = setup("wp-ttl0-topic", "");
    for path in [format!("/{ENDPOINT}"), format!("/push/{token}")] {
        assert_eq!(
            push(&s, &path, &[("Topic", "call")], b"ringing").status,
            201
        );
        let hang_up = [("Topic", "call"), ("TTL", "0")];
        assert_created(&push(&s, &path, &hang_up, b"missed"), "0");
    }
    assert!(
        poll(s.addr, &alice, ENDPOINT).is_empty(),
        "the replaced message is gone and the TTL-0 one was not kept"
    );
    let mut sse = s.subscribe(&key, None);
    assert!(sse.next_within(Duration::from_millis(300)).is_none());
}

#[test]
fn ttl_0_reaches_a_live_subscriber_and_is_never_replayed() {
    let (s, alice, key, token) = setup("wp-ttl0", "");
    let app = format!("/push/{token}");
    let topic = format!("/{ENDPOINT}");
    for path in [&topic, &app] {
        assert_created(&push(&s, path, &[("TTL", "0")], b"nobody listens"), "0");
    }
    assert!(
        poll(s.addr, &alice, ENDPOINT).is_empty(),
        "a TTL of 0 is not kept"
    );

    let mut stream = JsonStream::open(
        s.addr,
        &format!("/{ENDPOINT}/json"),
        &[("Authorization", &alice)],
    );
    assert_eq!(stream.status, 200, "{}", stream.head);
    stream.opened();
    let mut sse = s.subscribe(&key, None);
    assert!(sse.next_within(Duration::from_millis(200)).is_none());
    for path in [&topic, &app] {
        assert_created(&push(&s, path, &[("TTL", "0")], b"live only"), "0");
    }
    assert_eq!(stream.message().message_bytes(), b"live only");
    let live = sse.next();
    assert_eq!(live.data, opaque_event(b"live only", "app1", None));
    assert_eq!(live.id, None, "an unstored message has no event id");
    drop(stream);
    drop(sse);

    assert!(poll(s.addr, &alice, ENDPOINT).is_empty(), "nor replayed");
    let mut sse = s.subscribe(&key, None);
    assert!(sse.next_within(Duration::from_millis(300)).is_none());
}

#[test]
fn locations_tell_a_sender_nothing_about_other_messages() {
    // Regression: `Location: /message/<id>` showed every sender the one message counter of
    // all queues: two pushes 4 ids apart meant three other messages in between.
    let (s, alice, _, token) = setup("wp-opaque", "");
    s.add_user("carol", "cpw");
    for (login, topic) in [
        (&alice, ENDPOINT),
        (&basic("carol", "cpw"), "upSomeoneElse123"),
    ] {
        assert!(
            poll(s.addr, login, topic).is_empty(),
            "the phones subscribe"
        );
    }
    let path = format!("/{ENDPOINT}");
    let mut locations = Vec::new();
    for n in 0..24 {
        let r = push(&s, &path, &[], format!("push {n}").as_bytes());
        locations.push(assert_created(&r, TOPIC_DEFAULT_TTL));
        match n % 3 {
            0 => assert_created(
                &push(&s, &format!("/push/{token}"), &[], b"x"),
                APP_DEFAULT_TTL,
            ),
            1 => assert_created(&push(&s, "/upSomeoneElse123", &[], b"x"), TOPIC_DEFAULT_TTL),
            _ => {
                let r = s.post_message(&support::api::message(&token, r#"{"n":1}"#));
                assert_eq!(r.status, 200, "{}", r.text());
                String::new()
            }
        };
    }
    let ids: Vec<u64> = poll(s.addr, &alice, ENDPOINT).iter().map(ntfy_id).collect();
    assert_eq!(ids.len(), locations.len());
    let names: Vec<u64> = locations
        .iter()
        .zip(&ids)
        .map(|(location, id)| {
            let name = location.strip_prefix("/message/").unwrap();
            assert_ne!(name, id.to_string(), "the Location is not the id");
            u64::from_str_radix(name, 16).unwrap()
        })
        .collect();
    assert!(
        names.windows(2).any(|w| w[1] < w[0]),
        "names rise with the counter: {locations:?}"
    );
    let distinct: std::collections::BTreeSet<_> = names.iter().collect();
    assert_eq!(distinct.len(), names.len(), "{locations:?}");

    for resource in [locations[0].clone(), format!("/message/{}", ids[0])] {
        s.request("GET", &resource, &[], "").assert_error(404);
        s.request("DELETE", &resource, &[], "").assert_error(404);
    }
}

// ---------------------------------------------------------------------------------------
// Application endpoints.

#[test]
fn application_endpoint_delivers_to_the_device_stream_until_the_app_is_deleted() {
    let (s, _, key, token) = setup("wp-app", "");
    let path = format!("/push/{token}");

    let r = push(&s, &path, &[("Urgency", "high")], b"hello device");
    assert_created(&r, APP_DEFAULT_TTL);
    let mut sse = s.subscribe(&key, None);
    let event = sse.next();
    assert_eq!(
        event.data,
        format!(
            r#"{{"data":"{}","encoding":"base64","registration_id":"app1","urgency":"high"}}"#,
            b64(b"hello device")
        )
    );

    // PUT as well; a TTL over max_ttl is shortened to it; the stream is live.
    let r = send(s.addr, "PUT", &path, &[("TTL", "999999999")], b"put");
    assert_created(&r, APP_DEFAULT_TTL);
    assert_eq!(sse.next().data, opaque_event(b"put", "app1", None));
    for urgency in ["very-low", "low", "normal", " HIGH "] {
        assert_eq!(push(&s, &path, &[("Urgency", urgency)], b"u").status, 201);
        let expected = urgency.trim().to_ascii_lowercase();
        assert_eq!(sse.next().data, opaque_event(b"u", "app1", Some(&expected)));
    }
    // Empty TTL, Urgency and Topic headers count as not given (no 400 to drop an app
    // server's subscription over).
    let empty = [("TTL", ""), ("Urgency", ""), ("Topic", "")];
    assert_created(&push(&s, &path, &empty, b"empty headers"), APP_DEFAULT_TTL);
    assert_eq!(
        sse.next().data,
        opaque_event(b"empty headers", "app1", None)
    );

    for unknown in ["/push/NoSuchToken0000000000000000000", "/push/x"] {
        push(&s, unknown, &[], b"x").assert_error(404);
        s.request("GET", unknown, &[], "").assert_error(404);
    }

    let r = as_client(&s, "DELETE", "/application/app1", &key, "");
    assert_eq!(r.status, 204, "{}", r.text());
    push(&s, &path, &[], b"after delete").assert_error(404);
    send(s.addr, "PUT", &path, &[], b"after delete").assert_error(404);
    s.request("GET", &path, &[], "").assert_error(404);
}

// ---------------------------------------------------------------------------------------
// Real encryption, end to end.

/// RFC 8291 §5's example: the receiver's key pair and auth secret, the body its sender
/// posted (minimum padding, 144 bytes) and the cleartext.
mod rfc8291 {
    pub const PRIVATE_KEY: &str =
        "ab5757a70dd4a53e553a6bbf71ffefea2874ec07a6b379e3c48f895a02dc33de";
    pub const PUBLIC_KEY: &str = "042571b2becdfde360551aaf1ed0f4cd366c11cebe555f89bcb7b186a53339173168ece2ebe018597bd30479b86e3c8f8eced577ca59187e9246990db682008b0e";
    pub const AUTH: &str = "05305932a1c7eabe13b6cec9fda48882";
    pub const BODY: &str = "0c6bfaadad67958803092d454676f397000010004104fe33f4ab0dea71914db55823f73b54948f41306d920732dbb9a59a53286482200e597a7b7bc260ba1c227998580992e93973002f3012a28ae8f06bbb78e5ec0ff297de5b429bba7153d3a4ae0caa091fd425f3b4b5414add8ab37a19c1bbb05cf5cb5b2a2e0562d558635641ec52812c6c8ff42e95ccb86be7cd";
    pub const CLEARTEXT: &[u8] = b"When I grow up, I want to be a watermelon";

    pub fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    pub fn decrypt(body: &[u8]) -> Vec<u8> {
        let keys = ece::EcKeyComponents::new(hex(PRIVATE_KEY), hex(PUBLIC_KEY));
        ece::decrypt(&keys, &hex(AUTH), body).expect("the RFC 8291 example decrypts")
    }
}

/// A Mastodon-style notification, as its app server encrypts it.
const NOTIFICATION: &str = r#"{"access_token":"d4e5f6","preferred_locale":"en","notification_id":"109876","notification_type":"mention","icon":"https://social.example/avatars/alice.png","title":"Alice mentioned you","body":"@bob are you coming tonight? 🎉"}"#;

/// The largest cleartext `ece::encrypt` fits in a 4096-byte body (it pads to 128 bytes).
const ECE_MAX_CLEARTEXT: usize = 3967;

/// Cleartexts, and what an app server posts for them: encrypted by `ece` for `ua`, plus the
/// RFC's own example (for its receiver).
fn encrypted_pushes(ua: &Subscriber) -> Vec<(Vec<u8>, Vec<u8>)> {
    assert_eq!(body_len(ECE_MAX_CLEARTEXT), 4070);
    let mut out = Vec::new();
    for cleartext in [
        NOTIFICATION.as_bytes().to_vec(),
        random_bytes(ECE_MAX_CLEARTEXT),
    ] {
        let body = ua.encrypt(&cleartext);
        assert!(body.len() <= 4096, "{}", body.len());
        out.push((cleartext, body));
    }
    let rfc_body = rfc8291::hex(rfc8291::BODY);
    assert_eq!(rfc_body.len(), 144);
    out.push((rfc8291::CLEARTEXT.to_vec(), rfc_body));
    out
}

/// Decrypts a received body the way its cleartext was encrypted.
fn decrypt(ua: &Subscriber, index: usize, body: &[u8]) -> Vec<u8> {
    if index == 2 {
        rfc8291::decrypt(body)
    } else {
        ua.decrypt(body)
    }
}

const AES128GCM: (&str, &str) = ("Content-Encoding", "aes128gcm");

#[test]
fn encrypted_push_to_an_endpoint_topic_decrypts_from_the_ntfy_stream() {
    let (s, alice, _, _) = setup("wp-e2e-topic", "");
    let ua = Subscriber::new();
    let pushes = encrypted_pushes(&ua);
    for (_, body) in &pushes {
        let r = push(
            &s,
            &format!("/{ENDPOINT}?up=1"),
            &[AES128GCM, ("TTL", "3600"), ("Urgency", "normal")],
            body,
        );
        assert_created(&r, "3600");
    }
    // ntfy's rule: aes128gcm makes any topic's publish a Web Push one (201, opaque).
    let (_, body) = &pushes[0];
    let r = push(&s, "/alerts", &[AES128GCM, ("Authorization", &alice)], body);
    assert_created(&r, TOPIC_DEFAULT_TTL);

    let got = poll(s.addr, &alice, ENDPOINT);
    assert_eq!(got.len(), pushes.len());
    for (i, (m, (cleartext, body))) in got.iter().zip(&pushes).enumerate() {
        let received = m.message_bytes();
        assert_eq!(&received, body, "push {i}: the body byte for byte");
        assert_eq!(&decrypt(&ua, i, &received), cleartext, "push {i}");
    }
    let alerts = poll(s.addr, &alice, "alerts");
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        ua.decrypt(&alerts[0].message_bytes()),
        NOTIFICATION.as_bytes()
    );

    // UnifiedPush's 3993-byte cleartext needs minimum padding; ece pads to 128 bytes, so
    // its body is over 4096 bytes and refused as such.
    let big = ua.encrypt(&random_bytes(3993));
    assert_eq!(big.len(), 4214);
    push(&s, &format!("/{ENDPOINT}"), &[AES128GCM], &big).assert_error(413);
}

#[test]
fn encrypted_push_to_an_application_decrypts_from_the_openpush_stream() {
    let (s, _, key, token) = setup("wp-e2e-app", "");
    let ua = Subscriber::new();
    let pushes = encrypted_pushes(&ua);
    let path = format!("/push/{token}");
    for (_, body) in &pushes {
        let r = push(
            &s,
            &path,
            &[AES128GCM, ("TTL", "3600"), ("Urgency", "high")],
            body,
        );
        assert_created(&r, "3600");
    }
    let mut sse = s.subscribe(&key, None);
    let mut last_id = 0;
    for (i, (cleartext, body)) in pushes.iter().enumerate() {
        let event = sse.next();
        let id = event.id.expect("a stored message has an id");
        assert!(id > last_id, "in order: {id} after {last_id}");
        last_id = id;
        let o = Obj::parse(&event.data);
        assert_eq!(o.str("registration_id"), "app1");
        assert_eq!(o.str("urgency"), "high");
        let received = opaque_bytes(&event.data);
        assert_eq!(&received, body, "push {i}: the body byte for byte");
        assert_eq!(&decrypt(&ua, i, &received), cleartext, "push {i}");
    }
}

// ---------------------------------------------------------------------------------------
// Opaque bytes and rate limits.

#[test]
fn opaque_bodies_arrive_byte_for_byte_on_both_streams() {
    let (s, alice, key, token) = setup("wp-bytes", "");
    assert!(
        poll(s.addr, &alice, ENDPOINT).is_empty(),
        "the phone subscribes"
    );
    let all_bytes: Vec<u8> = (0..=255).collect();
    let bodies: Vec<Vec<u8>> = vec![
        all_bytes.iter().rev().copied().collect(),
        all_bytes,
        b"\r\n\0line\r\n\r\n\0\n\n\r".to_vec(),
        b"data: not an event\n\nid: 99\n\n".to_vec(),
        b"  text with spaces and a trailing newline \n".to_vec(),
        "\u{feff}caf\u{e9} \u{1f600}".as_bytes().to_vec(),
        vec![0; 4096],
        vec![0xff; 4096],
        random_bytes(4096),
    ];
    for body in &bodies {
        for path in [format!("/{ENDPOINT}"), format!("/push/{token}")] {
            assert_eq!(push(&s, &path, &[], body).status, 201, "{path}");
        }
    }
    let got: Vec<Vec<u8>> = poll(s.addr, &alice, ENDPOINT)
        .iter()
        .map(Obj::message_bytes)
        .collect();
    assert_eq!(got, bodies, "the ntfy stream");
    let mut sse = s.subscribe(&key, None);
    for body in &bodies {
        assert_eq!(&opaque_bytes(&sse.next().data), body, "the OpenPush stream");
    }
}

#[test]
fn too_many_pushes_to_one_endpoint_get_429_with_retry_after() {
    let (s, _, _, token) = setup(
        "wp-rate",
        "posts_per_sec_per_token = 1\npost_burst_per_token = 2",
    );
    for path in [format!("/{ENDPOINT}"), format!("/push/{token}")] {
        assert_eq!(push(&s, &path, &[], b"1").status, 201, "{path}");
        assert_eq!(push(&s, &path, &[], b"2").status, 201, "{path}");
        let r = push(&s, &path, &[], b"3");
        r.assert_error(429);
        let wait: u64 = r
            .header("retry-after")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("a numeric Retry-After: {:?}", r.headers));
        assert!((1..=2).contains(&wait), "Retry-After {wait}");
    }
    // The limit is per endpoint: another one is not slowed down.
    assert_eq!(push(&s, "/upZyXwVu987654", &[], b"other").status, 201);
    // And it refills.
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(push(&s, &format!("/{ENDPOINT}"), &[], b"4").status, 201);
}
