//! What the log may say: never a client key, a routing token or credentials, whatever the
//! request put them in (the test server logs at `debug`, so every refused request is logged).

mod support;

use std::time::Duration;

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
    // A marker request, so that every line before it has arrived.
    s.request("GET", "/no-such-marker", &[], "");
    let mut lines = Vec::new();
    for line in s.log_lines(Duration::from_millis(500)) {
        let done = line.contains("no-such-marker");
        lines.push(line);
        if done {
            break;
        }
    }
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
