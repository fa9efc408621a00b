//! Regressions for the security review of issue 10 (items 1, 2, 3 and 8), as a client sees
//! them: cross-site requests and non-JSON bodies with Basic auth, names that read as ids,
//! login backoff under concurrency and idleness, the user-name probe by rename, the login
//! cache surviving other users' changes, sampled rate-limit logging, a stream racing its
//! client's deletion, and the database file's mode.

use crate::support;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use support::push::{poll, send};
use support::*;

const ROOT: (&str, &str) = ("root", "pw-root");
const EVIL: &str = "http://evil.example";

/// A request as `who`, with a Content-Type (if any) and extra headers.
fn as_user(
    s: &Server,
    method: &str,
    path: &str,
    who: (&str, &str),
    content_type: Option<&str>,
    extra: &[(&str, &str)],
    body: &str,
) -> Response {
    let auth = basic(who.0, who.1);
    let mut headers = vec![("Authorization", auth.as_str())];
    headers.extend(content_type.map(|ct| ("Content-Type", ct)));
    headers.extend_from_slice(extra);
    s.request(method, path, &headers, body)
}

/// A JSON request as `who`.
fn json_as(s: &Server, method: &str, path: &str, who: (&str, &str), body: &str) -> Response {
    as_user(s, method, path, who, Some("application/json"), &[], body)
}

fn logs_in(s: &Server, who: (&str, &str)) -> bool {
    as_user(s, "GET", "/user", who, None, &[], "").status == 200
}

// ---------------------------------------------------------------------------------------
// 1. CSRF

#[test]
fn basic_auth_changes_refuse_bodies_that_are_not_json_with_415() {
    let s = Server::start("csrf-json");
    s.add_user(ROOT.0, ROOT.1);
    // The review's attack: a form-encoded password change for the admin.
    for content_type in [
        Some("application/x-www-form-urlencoded"),
        Some("text/plain"),
        Some("text/plain; charset=utf-8"),
        Some("multipart/form-data; boundary=x"),
        Some("application/jsonx"),
        None,
    ] {
        let r = as_user(
            &s,
            "POST",
            "/user/root",
            ROOT,
            content_type,
            &[],
            r#"{"password":"pwned"}"#,
        );
        r.assert_error(415);
        assert!(r.text().contains("application/json"), "{}", r.text());
    }
    assert!(!logs_in(&s, ("root", "pwned")));
    assert!(logs_in(&s, ROOT));
    s.wait_log("not application/json");

    // Every Basic-auth change, the same.
    for (method, path, body) in [
        ("POST", "/user", r#"{"name":"eve","password":"pw"}"#),
        ("PUT", "/user/root", r#"{"name":"toor"}"#),
        ("POST", "/client", r#"{"name":"phone"}"#),
    ] {
        as_user(&s, method, path, ROOT, Some("text/plain"), &[], body).assert_error(415);
    }
    as_user(&s, "GET", "/user/eve", ROOT, None, &[], "").assert_error(404);
    assert_eq!(
        as_user(&s, "GET", "/client", ROOT, None, &[], "").text(),
        "[]"
    );

    // JSON, with or without parameters and in any case, is what they take.
    let r = as_user(
        &s,
        "POST",
        "/client",
        ROOT,
        Some("Application/JSON; charset=utf-8"),
        &[],
        r#"{"name":"phone"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json_field("id");
    as_user(
        &s,
        "PUT",
        &format!("/client/{id}"),
        ROOT,
        Some("application/x-www-form-urlencoded"),
        &[],
        r#"{"name":"tablet"}"#,
    )
    .assert_error(415);
    let r = json_as(
        &s,
        "PUT",
        &format!("/client/{id}"),
        ROOT,
        r#"{"name":"tablet"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // Without credentials it is still 401 first, whatever the body.
    assert_eq!(
        s.request(
            "POST",
            "/user/root",
            &[("Content-Type", "text/plain")],
            "{}"
        )
        .status,
        401
    );
}

#[test]
fn cross_site_browser_requests_with_basic_auth_are_403() {
    let s = Server::start("csrf-site");
    s.add_user(ROOT.0, ROOT.1);
    s.add_user("bob", "pw-bob");
    let create = |extra: &[(&str, &str)]| {
        as_user(
            &s,
            "POST",
            "/client",
            ROOT,
            Some("application/json"),
            extra,
            r#"{"name":"c"}"#,
        )
    };
    for refused in [
        &[("Sec-Fetch-Site", "cross-site")][..],
        &[("Sec-Fetch-Site", "same-site")],
        &[("Origin", EVIL)],
        &[("Origin", "null")],
        &[("Origin", "http://test.evil.example")],
        &[("Origin", "http://test:8080")],
        &[("Origin", "http://test"), ("Sec-Fetch-Site", "cross-site")],
    ] {
        let r = create(refused);
        r.assert_error(403);
        assert!(r.text().contains("cross-site"), "{}", r.text());
    }
    s.wait_log("cross-site request refused");
    let r = as_user(
        &s,
        "DELETE",
        "/user/bob",
        ROOT,
        None,
        &[("Origin", EVIL)],
        "",
    );
    r.assert_error(403);
    assert!(logs_in(&s, ("bob", "pw-bob")), "bob was not deleted");
    as_user(
        &s,
        "POST",
        "/user/root",
        ROOT,
        Some("application/json"),
        &[("Origin", EVIL)],
        r#"{"password":"pwned"}"#,
    )
    .assert_error(403);
    assert!(logs_in(&s, ROOT));
    assert_eq!(
        as_user(&s, "GET", "/client", ROOT, None, &[], "").text(),
        "[]"
    );

    // The same origin, a typed address, and clients that are not browsers are fine.
    for allowed in [
        &[("Origin", "http://test")][..],
        &[("Origin", "HTTP://TEST:80")],
        &[("Sec-Fetch-Site", "same-origin")],
        &[("Sec-Fetch-Site", "none")],
        &[],
    ] {
        let r = create(allowed);
        assert_eq!(r.status, 201, "{allowed:?}: {}", r.text());
        let id = r.json_field("id");
        let r = as_user(
            &s,
            "DELETE",
            &format!("/client/{id}"),
            ROOT,
            None,
            allowed,
            "",
        );
        assert_eq!(r.status, 200, "{allowed:?}: {}", r.text());
    }
}

#[test]
fn public_url_is_a_same_origin_too() {
    let s = Server::start_with("csrf-public-url", "public_url = https://push.example.org");
    s.add_user(ROOT.0, ROOT.1);
    let create = |origin: &str| {
        as_user(
            &s,
            "POST",
            "/client",
            ROOT,
            Some("application/json"),
            &[("Origin", origin)],
            r#"{"name":"c"}"#,
        )
    };
    assert_eq!(create("https://push.example.org").status, 201);
    create("http://push.example.org").assert_error(403);
    create(EVIL).assert_error(403);
}

#[test]
fn ntfy_requests_with_basic_auth_refuse_cross_site_browsers() {
    let s = Server::start("csrf-ntfy");
    s.add_user(ROOT.0, ROOT.1);
    let auth = basic(ROOT.0, ROOT.1);
    let publish = |path: &str, extra: &[(&str, &str)], body: &str| {
        let mut headers = vec![("Authorization", auth.as_str())];
        headers.extend_from_slice(extra);
        send(s.addr, "POST", path, &headers, body.as_bytes())
    };
    // ntfy's clients publish with any Content-Type: that stays.
    let r = publish("/alerts", &[("Content-Type", "text/plain")], "legit");
    assert_eq!(r.status, 200, "{}", r.text());
    let r = publish(
        "/alerts",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        "also legit",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // A form on a hostile page, posting with the browser's cached credentials: refused.
    for extra in [
        &[("Origin", EVIL), ("Content-Type", "text/plain")][..],
        &[("Sec-Fetch-Site", "cross-site")],
    ] {
        publish("/alerts", extra, "forged").assert_error(403);
        publish("/", extra, r#"{"topic":"alerts","message":"forged"}"#).assert_error(403);
    }
    let messages: Vec<String> = poll(s.addr, &auth, "alerts")
        .iter()
        .map(|m| m.str("message").to_owned())
        .collect();
    assert_eq!(messages, ["legit", "also legit"]);

    // Reading with ambient credentials from a foreign page (a WebSocket can): refused;
    // with the credentials in `?auth=` (which a foreign page cannot know): allowed.
    let r = s.request(
        "GET",
        "/alerts/json?poll=1",
        &[("Authorization", &auth), ("Origin", EVIL)],
        "",
    );
    r.assert_error(403);
    // `?auth=` is the base64 (URL alphabet, unpadded) of the Authorization value.
    let query = support::push::b64(auth.as_bytes())
        .replace('+', "-")
        .replace('/', "_")
        .trim_end_matches('=')
        .to_owned();
    let r = s.request(
        "GET",
        &format!("/alerts/json?poll=1&auth={query}"),
        &[("Origin", EVIL)],
        "",
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn anonymous_capability_posts_stay_lenient() {
    let s = Server::start("csrf-lenient");
    let (_key, token) = s.device("ann");
    let cross = [("Origin", EVIL), ("Sec-Fetch-Site", "cross-site")];
    let mut headers = vec![("Content-Type", "text/plain")];
    headers.extend_from_slice(&cross);
    let r = s.request(
        "POST",
        "/message",
        &headers,
        &format!(r#"{{"token":"{token}","data":{{"n":1}}}}"#),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let mut headers = vec![("Content-Type", "application/octet-stream")];
    headers.extend_from_slice(&cross);
    let r = send(
        s.addr,
        "POST",
        &format!("/push/{token}"),
        &headers,
        b"opaque",
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let r = send(s.addr, "POST", "/upAbCdEf123456", &headers, b"opaque");
    assert_eq!(r.status, 201, "{}", r.text());
}

// ---------------------------------------------------------------------------------------
// 2. Names and ids

#[test]
fn names_never_read_as_ids_and_ids_are_canonical_digits() {
    let s = Server::start("names-ids");
    s.add_user(ROOT.0, ROOT.1);
    s.add_user("bob", "pw-bob");
    assert_eq!(
        json_as(&s, "GET", "/user/root", ROOT, "").json_field("id"),
        "1"
    );
    let bob = ("bob", "pw-bob");

    // The review's attack: bob becomes "+1", and the admin deletes "+1".
    for name in ["+1", "+01", " 1", "1 ", "-1", "+2", " 2 "] {
        let body = format!(r#"{{"name":"{name}"}}"#);
        json_as(&s, "PUT", "/user/bob", ROOT, &body).assert_error(400);
        let body = format!(r#"{{"name":"{name}","password":"pw"}}"#);
        json_as(&s, "POST", "/user", ROOT, &body).assert_error(400);
        json_as(
            &s,
            "POST",
            "/client",
            bob,
            &format!(r#"{{"name":"{name}"}}"#),
        )
        .assert_error(400);
    }
    let out = s.cli(&["user", "add", "+1", "--password-stdin"], "pw\n");
    assert!(!out.status.success());
    for ident in ["+1", "%2B1", "+01", "01", "%201", "1%20", "%2B%31"] {
        json_as(&s, "GET", &format!("/user/{ident}"), ROOT, "").assert_error(404);
        json_as(&s, "DELETE", &format!("/user/{ident}"), ROOT, "").assert_error(404);
    }
    assert!(logs_in(&s, ROOT), "the admin (id 1) was not deleted");
    assert_eq!(json_as(&s, "GET", "/user/1", ROOT, "").status, 200);

    // Clients: bob's first client has id 1.
    let r = json_as(&s, "POST", "/client", bob, r#"{"name":"phone"}"#);
    assert_eq!(r.json_field("id"), "1", "{}", r.text());
    for ident in ["+1", "%2B1", "01", "%201"] {
        json_as(&s, "GET", &format!("/client/{ident}"), bob, "").assert_error(404);
        json_as(
            &s,
            "PUT",
            &format!("/client/{ident}"),
            bob,
            r#"{"name":"x"}"#,
        )
        .assert_error(404);
        json_as(&s, "DELETE", &format!("/client/{ident}"), bob, "").assert_error(404);
    }
    let out = s.cli(&["client", "del", "--user", "bob", "+1"], "");
    assert!(!out.status.success());
    let out = s.cli(&["client", "del", "--user", "bob", "01"], "");
    assert!(!out.status.success());
    assert_eq!(json_as(&s, "GET", "/client/1", bob, "").status, 200);
    assert_eq!(json_as(&s, "GET", "/client/phone", bob, "").status, 200);
}

// ---------------------------------------------------------------------------------------
// 3. Login backoff

/// `n` logins as `name`/`password` from `ip` at once; their statuses.
fn parallel_logins(s: &Server, n: usize, name: &str, password: &str, ip: &str) -> Vec<u16> {
    let auth = basic(name, password);
    let barrier = std::sync::Barrier::new(n);
    let addr = s.addr;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let (auth, barrier) = (&auth, &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    request(
                        addr,
                        "GET",
                        "/user",
                        &[("Authorization", auth), ("X-Forwarded-For", ip)],
                        "",
                    )
                    .status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|&&s| s == status).count()
}

#[test]
fn parallel_wrong_passwords_are_counted_before_they_are_checked() {
    let s = Server::start_with("backoff-parallel", "login_free_failures = 3");
    s.add_user(ROOT.0, ROOT.1);
    let first = parallel_logins(&s, 64, "root", "wrong", "192.0.2.33");
    assert!(count(&first, 401) <= 3, "{first:?}");
    assert_eq!(count(&first, 429), 64 - count(&first, 401), "{first:?}");
    // Once the wait is over, one more try, not another 64.
    std::thread::sleep(Duration::from_millis(1100));
    let second = parallel_logins(&s, 64, "root", "wrong", "192.0.2.33");
    assert!(count(&second, 401) <= 1, "{second:?}");
    assert_eq!(count(&second, 429), 64 - count(&second, 401), "{second:?}");
}

#[test]
fn an_idle_backoff_record_keeps_its_count() {
    let s = Server::start_with(
        "backoff-idle",
        "login_free_failures = 2\nlogin_max_delay_secs = 1",
    );
    s.add_user(ROOT.0, ROOT.1);
    let login = |password: &str| {
        as_user(
            &s,
            "GET",
            "/user",
            ("root", password),
            None,
            &[("X-Forwarded-For", "192.0.2.44")],
            "",
        )
        .status
    };
    assert_eq!(login("wrong"), 401);
    assert_eq!(login("wrong"), 401);
    // Idle for longer than the longest wait: the next try is allowed, but it is not a
    // fresh start with free failures again.
    std::thread::sleep(Duration::from_millis(2200));
    assert_eq!(login("wrong"), 401);
    assert_eq!(login("wrong"), 429);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(login(ROOT.1), 200, "success still clears it");
    assert_eq!(login("wrong"), 401);
}

// ---------------------------------------------------------------------------------------
// 8. Low

#[test]
fn a_non_admin_cannot_probe_user_names_by_renaming() {
    let s = Server::start("rename-probe");
    s.add_user(ROOT.0, ROOT.1);
    s.add_user("bob", "pw-bob");
    let bob = ("bob", "pw-bob");
    let taken = json_as(&s, "PUT", "/user/bob", bob, r#"{"name":"root"}"#);
    let free = json_as(&s, "PUT", "/user/bob", bob, r#"{"name":"nobody"}"#);
    taken.assert_error(403);
    assert_eq!(taken.text(), free.text());
    assert!(!taken.text().contains("root"), "{}", taken.text());
    assert!(logs_in(&s, bob), "bob kept his name");
    // bob still changes his password, and "renames" to his own name.
    let r = json_as(&s, "PUT", "/user/bob", bob, r#"{"name":"bob"}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    let r = json_as(&s, "PUT", "/user/bob", bob, r#"{"password":"pw-bob2"}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    // An administrator sees the conflict.
    let r = json_as(&s, "PUT", "/user/bob", ROOT, r#"{"name":"root"}"#);
    r.assert_error(409);
}

#[test]
fn one_users_change_keeps_the_other_users_logins_cached() {
    let s = Server::start_with("cache-per-user", "login_free_failures = 1");
    s.add_user(ROOT.0, ROOT.1);
    for name in ["alice", "bob", "carol"] {
        s.add_user(name, &format!("pw-{name}"));
    }
    let from = |who: (&str, &str)| {
        as_user(
            &s,
            "GET",
            "/user",
            who,
            None,
            &[("X-Forwarded-For", "192.0.2.60")],
            "",
        )
        .status
    };
    assert_eq!(from(("alice", "pw-alice")), 200);
    let r = json_as(
        &s,
        "PUT",
        "/user/bob",
        ("bob", "pw-bob"),
        r#"{"password":"new"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // One failure puts the address into backoff for a second: only a cached login passes.
    assert_eq!(from(("nobody", "x")), 401);
    assert_eq!(
        from(("alice", "pw-alice")),
        200,
        "alice's login stayed cached"
    );
    assert_eq!(from(("carol", "pw-carol")), 429, "the backoff is on");
    // bob's own old password is gone.
    assert_eq!(
        as_user(&s, "GET", "/user", ("bob", "pw-bob"), None, &[], "").status,
        401
    );
}

#[test]
fn rate_limited_requests_are_logged_once_per_address_and_minute() {
    let s = Server::start_with(
        "rate-log",
        "requests_per_sec_per_addr = 0.1\nrequest_burst_per_addr = 1",
    );
    let from = |ip: &str| s.request("GET", "/version", &[("X-Forwarded-For", ip)], "");
    assert_eq!(from("192.0.2.70").status, 200);
    for _ in 0..50 {
        assert_eq!(from("192.0.2.70").status, 429);
    }
    assert_eq!(from("192.0.2.71").status, 200);
    assert_eq!(from("192.0.2.71").status, 429);
    let lines: Vec<String> = s
        .log_until_now()
        .into_iter()
        .filter(|l| l.contains("rate limit"))
        .collect();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(lines[0].contains("192.0.2.70"), "{lines:#?}");
    assert!(lines[1].contains("192.0.2.71"), "{lines:#?}");
}

#[test]
fn a_stream_opened_while_its_client_is_deleted_is_closed() {
    let s = Server::start("stream-delete-race");
    s.add_user(ROOT.0, ROOT.1);
    let mut left_open = Vec::new();
    for round in 0..20 {
        let r = json_as(
            &s,
            "POST",
            "/client",
            ROOT,
            &format!(r#"{{"name":"c{round}"}}"#),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        let (id, key) = (r.json_field("id"), r.json_field("token"));
        let barrier = std::sync::Barrier::new(2);
        let (addr, key) = (s.addr, key.as_str());
        let mut sse = std::thread::scope(|scope| {
            let subscriber = scope.spawn(|| {
                barrier.wait();
                Sse::open(addr, key, Some(1))
            });
            barrier.wait();
            let r = json_as(&s, "DELETE", &format!("/client/{id}"), ROOT, "");
            assert_eq!(r.status, 200, "{}", r.text());
            subscriber.join().unwrap()
        });
        if sse.status == 200 && !sse.closed_within(Duration::from_secs(3)) {
            left_open.push(round);
        }
    }
    assert!(left_open.is_empty(), "streams left open: {left_open:?}");
}

#[test]
fn an_ntfy_stream_opened_while_its_user_is_deleted_is_closed() {
    let s = Server::start("ntfy-delete-race");
    s.add_user(ROOT.0, ROOT.1);
    let mut left_open = Vec::new();
    for round in 0..20 {
        let name = format!("u{round}");
        let body = format!(r#"{{"name":"{name}","password":"pw"}}"#);
        assert_eq!(json_as(&s, "POST", "/user", ROOT, &body).status, 201);
        // Logged in once, so that the stream's login is cached and quick.
        assert!(logs_in(&s, (&name, "pw")));
        let auth = basic(&name, "pw");
        let barrier = std::sync::Barrier::new(2);
        let addr = s.addr;
        let mut stream = std::thread::scope(|scope| {
            let subscriber = scope.spawn(|| {
                barrier.wait();
                support::push::JsonStream::open(
                    addr,
                    &format!("/t{round}/json"),
                    &[("Authorization", &auth)],
                )
            });
            barrier.wait();
            let r = json_as(&s, "DELETE", &format!("/user/{name}"), ROOT, "");
            assert_eq!(r.status, 204, "{}", r.text());
            subscriber.join().unwrap()
        });
        if stream.status == 200 {
            let deadline = Instant::now() + Duration::from_secs(3);
            while stream
                .line_within(deadline.saturating_duration_since(Instant::now()))
                .is_some()
            {}
            if Instant::now() >= deadline {
                left_open.push(round);
            }
        }
    }
    assert!(left_open.is_empty(), "streams left open: {left_open:?}");
}

#[test]
fn the_database_file_is_created_0600_whatever_the_umask() {
    let dir = temp_dir("db-mode");
    let db = dir.join("fresh.redb");
    let script = format!(
        "umask 022 && exec '{BIN}' user add ann --password-stdin --db '{}'",
        db.display()
    );
    let out = run_cli_sh(&script, "pw-ann\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = std::fs::metadata(&db).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");
    let _ = std::fs::remove_dir_all(&dir);

    let s = Server::start("db-mode-server");
    let mode = std::fs::metadata(&s.db).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");
}

fn run_cli_sh(script: &str, stdin: &str) -> std::process::Output {
    let mut sh = std::process::Command::new("sh");
    run_with_stdin(
        without_service_variables(&mut sh).args(["-c", script]),
        stdin,
    )
}

#[test]
fn the_last_administrator_cannot_be_deleted() {
    let s = Server::start("sec-last-admin");
    s.add_user(ROOT.0, ROOT.1);
    s.add_user("ann", "pw-ann");
    let r = json_as(&s, "DELETE", "/user/1", ROOT, "");
    r.assert_error(409);
    assert!(r.text().contains("last administrator"), "{}", r.text());
    let out = s.cli(&["user", "del", "root"], "");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("last administrator"));
    assert!(logs_in(&s, ROOT), "the administrator is still there");

    // With a second administrator, the first may go.
    let out = s.cli(
        &["user", "add", "second", "--admin", "--password-stdin"],
        "pw-second\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json_as(&s, "DELETE", "/user/1", ROOT, "").status, 204);
}

#[test]
fn names_that_look_like_other_names_are_refused() {
    let s = Server::start("sec-spoof");
    s.add_user(ROOT.0, ROOT.1);
    for name in [
        " ann",
        "ann ",
        "an\u{200B}n",
        "\u{202E}nna",
        "ann\u{2066}",
        "a\u{FEFF}nn",
    ] {
        let body = format!(r#"{{"name":"{name}","password":"longenough"}}"#);
        let r = json_as(&s, "POST", "/user", ROOT, &body);
        r.assert_error(400);
        assert!(r.text().contains("invisible"), "{name:?}: {}", r.text());
        let out = s.cli(&["user", "add", name, "--password-stdin"], "longenough\n");
        assert!(!out.status.success(), "CLI took {name:?}");
    }
    let r = json_as(
        &s,
        "POST",
        "/user",
        ROOT,
        r#"{"name":"Ann Lee","password":"longenough"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
}
