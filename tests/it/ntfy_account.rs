//! ntfy accounts and access tokens against the real binary: Home Assistant's setup (the
//! account with the password, a token, then `Bearer` from then on), every way a token may
//! come (`Bearer`, Basic with an empty name, `?auth=`), labels, expiry, limits, the CLI's
//! listing and revocation, `/v1/version` for administrators, that a token's use writes no
//! commit of its own, and that revoking a token, or deleting its user, ends its streams.

use crate::support;

use std::time::{Duration, Instant};

use base64ct::Encoding;
use support::push::{JsonStream, Obj};
use support::{Response, Server, TIMEOUT, basic, now_secs, stdout};

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// `POST /v1/account/token` as `auth` with `body`: the token made.
fn make_token(s: &Server, auth: &str, body: &str) -> Obj {
    let r = s.request(
        "POST",
        "/v1/account/token",
        &[
            ("Authorization", auth),
            ("Content-Type", "application/json"),
        ],
        body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    Obj::parse(&r.text())
}

fn publish(s: &Server, auth: &str, path: &str, text: &str) -> Response {
    s.request("PUT", path, &[("Authorization", auth)], text)
}

fn account(s: &Server, auth: Option<&str>) -> Response {
    let headers: Vec<(&str, &str)> = auth.map(|a| ("Authorization", a)).into_iter().collect();
    s.request("GET", "/v1/account", &headers, "")
}

fn open(s: &Server, auth: &str, topic: &str) -> JsonStream {
    let mut stream = JsonStream::open(
        s.addr,
        &format!("/{topic}/json"),
        &[("Authorization", auth)],
    );
    assert_eq!(stream.status, 200, "{}", stream.head);
    stream.open_event();
    stream
}

#[test]
fn home_assistants_setup_makes_a_token_and_uses_it_from_then_on() {
    let s = Server::start("ntfy-account-ha");
    s.add_user("admin", "adminpw");
    s.add_user("alice", "apw");
    let alice = basic("alice", "apw");

    let anonymous = Obj::parse(&account(&s, None).text());
    assert_eq!(anonymous.str("username"), "*");
    assert_eq!(anonymous.str("role"), "anonymous");
    assert!(anonymous.has("stats") && anonymous.has("limits"));
    account(&s, Some(&basic("alice", "wrong"))).assert_ntfy_error(401, 40101);

    let me = Obj::parse(&account(&s, Some(&alice)).text());
    assert_eq!((me.str("username"), me.str("role")), ("alice", "user"));
    let made = make_token(&s, &alice, r#"{"label":"Home Assistant","expires":0}"#);
    let token = made.str("token").to_owned();
    assert!(token.starts_with("tk_") && token.len() == 32, "{token}");
    assert_eq!(made.str("label"), "Home Assistant");
    assert!(!made.has("expires"), "0 is never: {}", made.text);
    assert!(made.int("last_access") >= now_secs() - 5);

    // From now on the token, whichever way it comes.
    let r = account(&s, Some(&bearer(&token)));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text().contains(r#""label":"Home Assistant""#),
        "{}",
        r.text()
    );
    assert!(!r.text().contains(&token), "listings never show a token");
    assert_eq!(
        publish(&s, &bearer(&token), "/home", "by bearer").status,
        200
    );
    let empty_name = basic("", &token);
    assert_eq!(publish(&s, &empty_name, "/home", "by basic").status, 200);
    let auth = base64ct::Base64Unpadded::encode_string(bearer(&token).as_bytes());
    let r = s.request("PUT", &format!("/home?auth={auth}"), &[], "by query");
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s.request(
        "GET",
        "/home/auth",
        &[("Authorization", &bearer(&token))],
        "",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let polled = support::push::poll(s.addr, &bearer(&token), "home");
    let texts: Vec<&str> = polled.iter().map(|m| m.str("message")).collect();
    assert_eq!(texts, ["by bearer", "by basic", "by query"]);
    // The topic is alice's, whichever credential made it.
    let r = publish(&s, &basic("admin", "adminpw"), "/home", "x");
    r.assert_ntfy_error(403, 40301);

    for wrong in [
        bearer("tk_abcdefghijklmnopqrstuvwxyz012"),
        bearer(&token[..31]),
        basic("", "tk_abcdefghijklmnopqrstuvwxyz012"),
    ] {
        publish(&s, &wrong, "/home", "x").assert_ntfy_error(401, 40101);
    }
}

#[test]
fn tokens_are_listed_relabelled_and_revoked_and_expire() {
    let s = Server::start_with(
        "ntfy-account-tokens",
        "max_tokens_per_user = 3\nmax_token_label_bytes = 10",
    );
    s.add_user("alice", "apw");
    let alice = basic("alice", "apw");
    let first = make_token(&s, &alice, "");
    assert!(
        first.int("expires") >= now_secs() + 71 * 3600,
        "72 hours without `expires`: {}",
        first.text
    );
    let soon = now_secs() + 2;
    let brief = make_token(
        &s,
        &alice,
        &format!(r#"{{"label":"brief","expires":{soon}}}"#),
    );
    let third = make_token(&s, &alice, r#"{"label":null}"#);
    let r = s.request(
        "POST",
        "/v1/account/token",
        &[("Authorization", &alice)],
        "",
    );
    r.assert_ntfy_error(403, 40301);
    let r = s.request(
        "POST",
        "/v1/account/token",
        &[("Authorization", &alice)],
        r#"{"label":"far too long a label"}"#,
    );
    r.assert_ntfy_error(400, 40000);

    // A new label, by number; the token's own request changes itself.
    let numbered = format!(r##"{{"token":"#{}","label":"renamed"}}"##, first.int("id"));
    let r = s.request(
        "PATCH",
        "/v1/account/token",
        &[("Authorization", &alice)],
        &numbered,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let own = bearer(third.str("token"));
    let r = s.request(
        "PATCH",
        "/v1/account/token",
        &[("Authorization", &own)],
        r#"{"label":"mine"}"#,
    );
    assert_eq!(Obj::parse(&r.text()).str("label"), "mine");
    let listed = s.request("GET", "/v1/account/token", &[("Authorization", &alice)], "");
    let text = listed.text();
    assert!(text.contains("renamed") && text.contains("mine") && text.contains("brief"));

    // The CLI lists them (never the tokens) and revokes one.
    let out = stdout(&s.cli(&["token", "list", "--user", "alice"], ""));
    assert!(
        out.contains("renamed") && out.contains("never") || out.contains("renamed"),
        "{out}"
    );
    assert!(!out.contains(first.str("token")), "{out}");
    let del = s.cli(
        &[
            "token",
            "del",
            "--user",
            "alice",
            &first.int("id").to_string(),
        ],
        "",
    );
    assert!(del.status.success(), "{}", support::stderr(&del));
    publish(&s, &bearer(first.str("token")), "/t", "x").assert_ntfy_error(401, 40101);

    // Revoked by the API: named in X-Token, or the request's own.
    let r = s.request(
        "DELETE",
        "/v1/account/token",
        &[("Authorization", &own), ("X-Token", third.str("token"))],
        "",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    publish(&s, &own, "/t", "x").assert_ntfy_error(401, 40101);

    // Expired: refused once its time has come.
    let brief = bearer(brief.str("token"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while publish(&s, &brief, "/t", "x").status == 200 {
        assert!(Instant::now() < deadline, "the token never expired");
        std::thread::sleep(Duration::from_millis(200));
    }
    publish(&s, &brief, "/t", "x").assert_ntfy_error(401, 40101);
}

#[test]
fn the_version_is_for_administrators() {
    let s = Server::start("ntfy-account-version");
    s.add_user("admin", "adminpw");
    s.add_user("alice", "apw");
    s.request("GET", "/v1/version", &[], "")
        .assert_ntfy_error(401, 40101);
    s.request(
        "GET",
        "/v1/version",
        &[("Authorization", &basic("alice", "apw"))],
        "",
    )
    .assert_ntfy_error(403, 40301);
    let token = make_token(&s, &basic("admin", "adminpw"), "");
    let r = s.request(
        "GET",
        "/v1/version",
        &[("Authorization", &bearer(token.str("token")))],
        "",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = Obj::parse(&r.text());
    assert_eq!(v.str("version"), env!("CARGO_PKG_VERSION"));
    assert!(v.has("commit") && v.has("date"));
}

#[test]
fn a_tokens_use_costs_no_commit_of_its_own() {
    let s = Server::start("ntfy-account-commits");
    s.add_user("alice", "apw");
    let token = make_token(&s, &basic("alice", "apw"), "");
    let auth = bearer(token.str("token"));
    let commits = || s.metric("openpush_commit_seconds_count");
    let before = commits();
    for _ in 0..50 {
        let r = s.request("GET", "/v1/account", &[("Authorization", &auth)], "");
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let after = commits();
    assert!(
        after - before <= 1,
        "{before} → {after} commits for 50 reads"
    );
}

#[test]
fn revoking_a_token_or_deleting_its_user_ends_the_streams_opened_with_it() {
    let s = Server::start("ntfy-account-revoke");
    s.add_user("admin", "adminpw");
    s.add_user("alice", "apw");
    let alice = basic("alice", "apw");
    assert_eq!(publish(&s, &alice, "/alerts", "mine").status, 200);
    let one = make_token(&s, &alice, r#"{"label":"one"}"#);
    let two = make_token(&s, &alice, r#"{"label":"two"}"#);
    let mut by_one = open(&s, &bearer(one.str("token")), "alerts");
    let mut by_two = open(&s, &basic("", two.str("token")), "alerts");
    let mut by_password = open(&s, &alice, "alerts");

    let r = s.request(
        "DELETE",
        "/v1/account/token",
        &[("Authorization", &alice), ("X-Token", one.str("token"))],
        "",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        by_one.closed_within(TIMEOUT),
        "the revoked token's stream ends"
    );
    assert_eq!(publish(&s, &alice, "/alerts", "still here").status, 200);
    assert_eq!(by_two.message().str("message"), "still here");
    assert_eq!(by_password.message().str("message"), "still here");

    // The CLI's revocation ends streams too, while the server runs.
    let mut again = open(&s, &bearer(two.str("token")), "alerts");
    let del = s.cli(&["token", "del", "--user", "alice", two.str("token")], "");
    assert!(del.status.success(), "{}", support::stderr(&del));
    assert!(by_two.closed_within(TIMEOUT) && again.closed_within(TIMEOUT));

    let three = make_token(&s, &alice, "");
    let mut by_three = open(&s, &bearer(three.str("token")), "alerts");
    let out = s.cli(&["user", "del", "alice"], "");
    assert!(out.status.success(), "{}", support::stderr(&out));
    assert!(by_three.closed_within(TIMEOUT) && by_password.closed_within(TIMEOUT));
    publish(&s, &bearer(three.str("token")), "/alerts", "x").assert_ntfy_error(401, 40101);
}
