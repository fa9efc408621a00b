//! What the log may say: never a client key, a routing token or credentials, whatever the
//! request put them in (the test server logs at `debug`, so every refused request is logged).

use crate::support;

use support::ws;
use support::*;

// Regression (issue 10): `/client/<key>` and `/application/<token>` were logged whole.
#[test]
fn keys_tokens_and_credentials_in_request_targets_are_not_logged() {
    let s = Server::start("log-secrets");
    let (key, token) = s.device("ann");
    let (other_key, other_token) = s.device("bob");
    let ann = basic("ann", "secret");
    let credentials = basic("ann", "hunter2-not-logged")
        .trim_start_matches("Basic ")
        .to_owned();
    let user = "Authorization";
    let client = "X-Openpush-Key";
    let requests = [
        // A client named by its key: another user's key is 404; also percent-encoded.
        ("GET", format!("/client/{other_key}"), user, ann.as_str()),
        ("DELETE", format!("/client/{other_key}"), user, &ann),
        ("GET", format!("/%63lient/{other_key}"), user, &ann),
        // An app deleted by its routing token, with the wrong key: 404 and 401.
        (
            "DELETE",
            format!("/application/{other_token}"),
            client,
            &key,
        ),
        ("DELETE", format!("/application/{token}"), client, "wrong"),
        // ntfy's `?auth=` carries Basic credentials.
        (
            "GET",
            format!("/mytopic/json?poll=1&auth={credentials}"),
            "X-A",
            "b",
        ),
        // A key where a name is expected, and a bad escape after one (400).
        ("GET", format!("/user/{key}"), user, &ann),
        ("GET", format!("/client/{key}%zz"), user, &ann),
        ("POST", format!("/push/{token}"), "X-A", "b"),
    ];
    for (method, path, name, value) in &requests {
        let r = s.request(method, path, &[(name, value)], "");
        assert!(r.status >= 400, "{method} {path}: {}", r.status);
    }
    let lines = s.log_until_now();
    assert!(
        lines.iter().any(|l| l.contains("/client/")),
        "the refusals are logged: {lines:#?}"
    );
    for secret in [&key, &token, &other_key, &other_token, &credentials] {
        // Even a long part of one must not appear.
        let part = &secret[..12];
        for line in &lines {
            assert!(!line.contains(part), "{secret} in the log: {line}");
        }
    }
}

/// The `/wpush/v1/` endpoint of a new autopush channel, as a user agent registers it.
fn wpush_endpoint(s: &Server) -> String {
    let mut ws = ws::WsClient::connect(s.addr, "/", &[]).expect("a 101 upgrade");
    let mut say = |text: &str| {
        ws.send_text(text).unwrap();
        ws.text_within(TIMEOUT).expect("an answer")
    };
    say(r#"{"messageType":"hello","uaid":"","use_webpush":true}"#);
    let answer =
        say(r#"{"messageType":"register","channelID":"0c1d2e3f-4a5b-4c6d-8e7f-000000000001"}"#);
    let url = json_field(&answer, "pushEndpoint").expect(&answer);
    let path = url.split_once("/wpush/").expect(&url).1;
    format!("/wpush/{path}")
}

// Regression: a capability with anything else in its path segment (`<token>%0A`, `%20`,
// `.` …) no longer looked like a key and was logged whole.
#[test]
fn capabilities_are_cut_from_logged_paths_whatever_shares_their_segment() {
    let s = Server::start("log-positions");
    let (key, token) = s.device("ann");
    let endpoint = wpush_endpoint(&s);
    let wpush_token = endpoint.rsplit('/').next().unwrap().to_owned();
    let topic = "upK3yT0p1cS3cr3tQ";
    let nextpush = "/index.php/apps/uppush";
    let mut requests = Vec::new();
    for junk in ["%0A", "%20", ".", "%00", "%2F", "%3B", "%C3%A9", "%zz"] {
        requests.extend([
            ("POST", format!("{endpoint}{junk}")),
            ("DELETE", format!("{nextpush}/device/{key}{junk}")),
            ("DELETE", format!("{nextpush}/app/{token}{junk}")),
            ("POST", format!("{nextpush}/push/{token}{junk}")),
            ("PUT", format!("/{topic}{junk}")),
            ("GET", format!("/{topic}{junk}/json")),
            ("POST", format!("/push/{junk}{token}")),
            ("GET", format!("/wpush/v2/{junk}{wpush_token}")),
        ]);
    }
    for (method, path) in &requests {
        let r = s.request(method, path, &[], "x");
        assert!(r.status >= 400, "{method} {path}: {}", r.status);
    }
    let lines = s.log_until_now();
    assert!(
        lines.iter().any(|l| l.contains("/wpush/v1/")),
        "the refusals are logged: {lines:#?}"
    );
    let leaks: Vec<&String> = lines
        .iter()
        .filter(|line| {
            [&key, &token, &wpush_token, &topic.to_owned()]
                .iter()
                .any(|secret| line.contains(&secret[..12]))
        })
        .collect();
    assert!(leaks.is_empty(), "capabilities in the log: {leaks:#?}");
}
