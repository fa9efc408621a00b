//! ntfy's wire forms where the ntfy door answers: errors as ntfy's JSON with ntfy's codes
//! (its client libraries, Home Assistant's among them, map the code to an exception and
//! fail on any other shape), while the OpenPush API keeps its own; and UnifiedPush bodies
//! delivered as text when they are UTF-8, as base64 otherwise, as ntfy does.

use crate::support;

use support::push::{poll, send};
use support::{Server, basic};

const ENDPOINT: &str = "upErrText12345";

#[test]
fn ntfy_routes_answer_with_ntfy_errors_and_the_openpush_api_with_its_own() {
    let s = Server::start("ntfy-errors");
    s.add_user("alice", "apw");
    s.add_user("bob", "bpw");
    let (alice, bob) = (basic("alice", "apw"), basic("bob", "bpw"));
    let wrong = basic("alice", "nope");

    let r = s.request("GET", "/news/json?poll=1", &[("Authorization", &wrong)], "");
    r.assert_ntfy_error(401, 40101);
    assert_eq!(
        r.json_field("link"),
        "https://ntfy.sh/docs/publish/#authentication"
    );
    assert!(r.header("www-authenticate").is_some());
    let r = s.request("PUT", "/news", &[("Authorization", &alice)], "mine");
    assert_eq!(r.status, 200, "{}", r.text());
    s.request("PUT", "/news", &[("Authorization", &bob)], "not his")
        .assert_ntfy_error(403, 40301);
    s.request("GET", "/news/auth", &[("Authorization", &bob)], "")
        .assert_ntfy_error(403, 40301);
    s.request("GET", "/news", &[], "")
        .assert_ntfy_error(404, 40401);
    s.request("DELETE", "/v1/health", &[], "")
        .assert_ntfy_error(405, 40500);
    s.request("POST", "/", &[("Authorization", &alice)], "{not json")
        .assert_ntfy_error(400, 40000);
    let big = "x".repeat(5000);
    s.request("PUT", "/news", &[("Authorization", &alice)], &big)
        .assert_ntfy_error(413, 41300);

    // The OpenPush API keeps its problem JSON, and so do paths no door knows.
    s.request("GET", "/user", &[("Authorization", &wrong)], "")
        .assert_openpush_error(401);
    s.request("GET", "/no/such/path", &[], "")
        .assert_openpush_error(404);
}

#[test]
fn a_refusal_before_the_door_is_reached_has_the_doors_form() {
    let s = Server::start_with(
        "ntfy-errors-rate",
        "requests_per_sec_per_addr = 0.1\nrequest_burst_per_addr = 2",
    );
    let from = [("X-Forwarded-For", "192.0.2.7")];
    let mut last = None;
    for _ in 0..5 {
        let r = s.request("GET", "/v1/health", &from, "");
        if r.status == 429 {
            last = Some(r);
            break;
        }
    }
    let r = last.expect("the rate limit refuses");
    r.assert_ntfy_error(429, 42901);
    assert!(r.header("retry-after").is_some());
    let r = s.request("GET", "/health", &from, "");
    r.assert_openpush_error(429);
}

#[test]
fn a_unifiedpush_body_that_is_utf8_arrives_as_text_and_any_other_as_base64() {
    let s = Server::start("ntfy-up-text");
    s.add_user("alice", "apw");
    let alice = basic("alice", "apw");
    assert!(poll(s.addr, &alice, ENDPOINT).is_empty(), "alice claims it");
    let text = " {\"msg\":\"héllo ✓\"}\n";
    let binary = [0x01, 0x80, 0xfe, b'x'];
    for body in [text.as_bytes(), &binary[..], b"plain"] {
        let r = send(s.addr, "POST", &format!("/{ENDPOINT}?up=1"), &[], body);
        assert_eq!(r.status, 201, "{}", r.text());
    }
    // `?up=1` on another topic is UnifiedPush mode too.
    let r = send(
        s.addr,
        "POST",
        "/news?up=1",
        &[("Authorization", &alice)],
        b"up mode",
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let got = poll(s.addr, &alice, ENDPOINT);
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].str("message"), text, "untrimmed text");
    assert!(!got[0].has("encoding"), "{}", got[0].text);
    assert_eq!(got[1].str("encoding"), "base64");
    assert_eq!(got[1].message_bytes(), binary, "byte for byte");
    assert_eq!(got[2].str("message"), "plain");
    assert!(!got[2].has("encoding"));
    let news = poll(s.addr, &alice, "news");
    assert_eq!(news[0].str("message"), "up mode");
    assert!(!news[0].has("encoding"));
}
