//! The account side of the OpenPush v0.1 API as a client sees it: users, clients,
//! applications, the error paths of `POST /message`, HTTP edges sent as raw bytes, and the
//! administration CLI with the server running and stopped. Delivery lives in other files.

mod support;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::*;

// ---------------------------------------------------------------------------------------
// Helpers

/// A request with HTTP Basic credentials.
fn as_user(s: &Server, method: &str, path: &str, who: (&str, &str), body: &str) -> Response {
    let auth = basic(who.0, who.1);
    let mut headers = vec![("Authorization", auth.as_str())];
    if !body.is_empty() {
        headers.push(("Content-Type", "application/json"));
    }
    s.request(method, path, &headers, body)
}

/// A request with a client key.
fn as_client(s: &Server, method: &str, path: &str, key: &str, body: &str) -> Response {
    s.request(method, path, &[("X-Openpush-Key", key)], body)
}

fn message(token: &str, data: &str) -> String {
    format!(r#"{{"token":"{token}","data":{data}}}"#)
}

/// `openpush_queued_messages` from `/metrics` (served to loopback).
fn queued(s: &Server) -> u64 {
    let r = s.request("GET", "/metrics", &[], "");
    assert_eq!(r.status, 200, "{}", r.text());
    r.text()
        .lines()
        .find_map(|l| l.strip_prefix("openpush_queued_messages "))
        .expect("a queued gauge")
        .trim()
        .parse()
        .unwrap()
}

fn assert_unauthorized(r: &Response) {
    r.assert_error(401);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Basic realm=\"openpush\""),
        "{r:?}"
    );
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs the CLI and fails the test if it does not end within `TIMEOUT` (a hang is a bug).
fn run_cli_within(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("openpush {args:?} did not end within {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One raw connection that reads whole responses (Content-Length framed) as they come.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    fn send(&mut self, raw: &[u8]) {
        self.stream.write_all(raw).unwrap();
    }

    /// Reads until one complete response is buffered, then takes it.
    fn response(&mut self) -> Response {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                if self.buf.len() >= end + 4 + len {
                    let bytes: Vec<u8> = self.buf.drain(..end + 4 + len).collect();
                    return parse_response(&bytes).unwrap();
                }
            }
            assert!(
                self.fill(deadline),
                "no complete response; have {:?}",
                String::from_utf8_lossy(&self.buf)
            );
        }
    }

    /// Reads more bytes; false at the deadline or once the server closed.
    fn fill(&mut self, deadline: Instant) -> bool {
        read_more(&mut self.stream, &mut self.buf, deadline)
    }

    /// True once the server has closed the connection (within `TIMEOUT`).
    fn closed(&mut self) -> bool {
        let deadline = Instant::now() + TIMEOUT;
        while self.fill(deadline) {}
        Instant::now() < deadline
    }
}

// ---------------------------------------------------------------------------------------
// /version, routing, error shape

#[test]
fn version_needs_no_auth_and_reports_0_1() {
    let s = Server::start("version");
    let r = s.request("GET", "/version", &[], "");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("content-type").unwrap().contains("json"));
    let version = r.json_field("version");
    assert!(version.starts_with("0.1."), "{version}");
    assert_eq!(r.text(), format!(r#"{{"version":"{version}"}}"#));
}

#[test]
fn unknown_path_is_404_and_wrong_method_is_405_with_allow() {
    let s = Server::start("routing");
    for path in ["/nope", "/user/1/extra", "/", "/messages"] {
        s.request("GET", path, &[], "").assert_error(404);
    }
    for (method, path, allow) in [
        ("POST", "/version", "GET"),
        ("PATCH", "/user", "GET, POST"),
        ("GET", "/message", "POST"),
        ("PUT", "/application", "GET, POST"),
        ("GET", "/application/x", "DELETE"),
        ("DELETE", "/subscribe", "GET"),
    ] {
        let r = s.request(method, path, &[], "");
        r.assert_error(405);
        assert_eq!(r.header("allow"), Some(allow), "{method} {path}");
    }
}

// ---------------------------------------------------------------------------------------
// /user

#[test]
fn first_cli_user_is_admin_and_later_ones_only_with_flag() {
    let s = Server::start("user-admin");
    s.add_user("ann", "pw-ann");
    s.add_user("bob", "pw-bob");
    let out = s.cli(
        &["user", "add", "cat", "--admin", "--password-stdin"],
        "pw-cat\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));

    let all = as_user(&s, "GET", "/user", ("ann", "pw-ann"), "");
    assert_eq!(all.status, 200, "{}", all.text());
    let text = all.text();
    for name in ["ann", "bob", "cat"] {
        assert!(text.contains(&format!("\"name\":\"{name}\"")), "{text}");
    }
    assert_eq!(text.matches("\"admin\":true").count(), 2, "{text}");

    // A non-admin lists only itself.
    let own = as_user(&s, "GET", "/user", ("bob", "pw-bob"), "");
    assert_eq!(own.status, 200, "{}", own.text());
    assert!(own.text().contains("\"name\":\"bob\""));
    assert!(!own.text().contains("\"ann\"") && !own.text().contains("\"cat\""));
    assert!(own.text().contains("\"admin\":false"));

    // The --admin user may administer.
    let r = as_user(
        &s,
        "POST",
        "/user",
        ("cat", "pw-cat"),
        r#"{"name":"dan","password":"pw-dan"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
}

#[test]
fn admin_creates_users_and_non_admin_post_is_403() {
    let s = Server::start("user-create");
    s.add_user("ann", "pw-ann");
    s.add_user("bob", "pw-bob");
    let ann = ("ann", "pw-ann");

    let r = as_user(
        &s,
        "POST",
        "/user",
        ann,
        r#"{"name":"eve","password":"s3cret-eve"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(r.header("content-type").unwrap().contains("json"));
    assert_eq!(r.json_field("name"), "eve");
    r.json_field("id").parse::<u64>().unwrap();
    assert!(r.text().contains("\"admin\":false"), "{}", r.text());
    assert!(!r.text().contains("s3cret-eve") && !r.text().contains("password"));
    // The new user can log in.
    let me = as_user(&s, "GET", "/user/eve", ("eve", "s3cret-eve"), "");
    assert_eq!(me.status, 200, "{}", me.text());

    as_user(&s, "POST", "/user", ann, r#"{"name":"eve","password":"x"}"#).assert_error(409);
    as_user(
        &s,
        "POST",
        "/user",
        ("bob", "pw-bob"),
        r#"{"name":"fay","password":"x"}"#,
    )
    .assert_error(403);
    for bad in [
        "",
        "not json",
        r#"{"name":"fay"}"#,
        r#"{"password":"x"}"#,
        r#"{"name":"","password":"x"}"#,
        r#"{"name":"fay","password":""}"#,
        r#"{"name":5,"password":"x"}"#,
        r#"["fay","x"]"#,
    ] {
        as_user(&s, "POST", "/user", ann, bad).assert_error(400);
    }
    // None of the refused bodies created fay.
    as_user(&s, "GET", "/user/fay", ann, "").assert_error(404);
}

#[test]
fn user_is_found_by_id_or_name_and_others_are_404_to_non_admins() {
    let s = Server::start("user-get");
    s.add_user("ann", "pw-ann");
    s.add_user("bob", "pw-bob");
    let ann = ("ann", "pw-ann");
    let bob = ("bob", "pw-bob");
    let bob_key = s.add_client("bob", "bob-phone");

    let by_name = as_user(&s, "GET", "/user/bob", bob, "");
    assert_eq!(by_name.status, 200, "{}", by_name.text());
    let bob_id = by_name.json_field("id");
    let by_id = as_user(&s, "GET", &format!("/user/{bob_id}"), bob, "");
    assert_eq!(by_id.status, 200);
    assert_eq!(by_id.text(), by_name.text());
    // The owner sees its clients with their keys.
    assert!(by_name.text().contains(&bob_key), "{}", by_name.text());

    let ann_id = as_user(&s, "GET", "/user/ann", ann, "").json_field("id");
    for path in [
        "/user/ann".to_owned(),
        format!("/user/{ann_id}"),
        "/user/nobody".into(),
    ] {
        as_user(&s, "GET", &path, bob, "").assert_error(404);
        as_user(&s, "PUT", &path, bob, r#"{"name":"x"}"#).assert_error(404);
        as_user(&s, "DELETE", &path, bob, "").assert_error(404);
    }
    // Unknown and hidden users look alike.
    assert_eq!(
        as_user(&s, "GET", "/user/ann", bob, "").text(),
        as_user(&s, "GET", "/user/nobody", bob, "").text()
    );

    // An admin sees another user and its clients, but never their keys.
    let seen = as_user(&s, "GET", &format!("/user/{bob_id}"), ann, "");
    assert_eq!(seen.status, 200, "{}", seen.text());
    assert!(seen.text().contains("bob-phone"), "{}", seen.text());
    assert!(!seen.text().contains(&bob_key), "{}", seen.text());
    as_user(&s, "GET", "/user/nobody", ann, "").assert_error(404);
}

#[test]
fn renaming_a_user_to_a_taken_name_is_409() {
    let s = Server::start("user-rename");
    s.add_user("ann", "pw-ann");
    s.add_user("bob", "pw-bob");
    let ann = ("ann", "pw-ann");
    // Only administrators rename, so only they learn that a name is taken
    // (tests/security.rs).
    as_user(
        &s,
        "PUT",
        "/user/bob",
        ("bob", "pw-bob"),
        r#"{"name":"ann"}"#,
    )
    .assert_error(403);
    as_user(&s, "POST", "/user/bob", ann, r#"{"name":"ann"}"#).assert_error(409);
    // Renaming to one's own name is no conflict; a free name works and the login follows it.
    let r = as_user(
        &s,
        "PUT",
        "/user/bob",
        ("bob", "pw-bob"),
        r#"{"name":"bob"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = as_user(&s, "PUT", "/user/bob", ann, r#"{"name":"rob"}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json_field("name"), "rob");
    assert_unauthorized(&as_user(&s, "GET", "/user/bob", ("bob", "pw-bob"), ""));
    assert_eq!(
        as_user(&s, "GET", "/user/rob", ("rob", "pw-bob"), "").status,
        200
    );
    // The old name is free again.
    let r = as_user(&s, "POST", "/user", ann, r#"{"name":"bob","password":"x"}"#);
    assert_eq!(r.status, 201, "{}", r.text());
    as_user(&s, "PUT", "/user/rob", ann, r#"{"name":""}"#).assert_error(400);
    as_user(&s, "PUT", "/user/rob", ann, "{").assert_error(400);
}

#[test]
fn password_change_takes_effect_despite_the_login_cache() {
    let s = Server::start("user-passwd");
    s.add_user("ann", "pw-ann");
    s.add_user("bob", "old-pw");
    // Log in once so that the old password sits in the login cache.
    assert_eq!(
        as_user(&s, "GET", "/user", ("bob", "old-pw"), "").status,
        200
    );
    let r = as_user(
        &s,
        "PUT",
        "/user/bob",
        ("bob", "old-pw"),
        r#"{"password":"new-pw"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!r.text().contains("new-pw") && !r.text().contains("password"));
    assert_unauthorized(&as_user(&s, "GET", "/user", ("bob", "old-pw"), ""));
    assert_eq!(
        as_user(&s, "GET", "/user", ("bob", "new-pw"), "").status,
        200
    );

    // An admin sets it through POST /user/{id}, too.
    let bob_id = as_user(&s, "GET", "/user/bob", ("bob", "new-pw"), "").json_field("id");
    let r = as_user(
        &s,
        "POST",
        &format!("/user/{bob_id}"),
        ("ann", "pw-ann"),
        r#"{"password":"third-pw"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_unauthorized(&as_user(&s, "GET", "/user", ("bob", "new-pw"), ""));
    assert_eq!(
        as_user(&s, "GET", "/user", ("bob", "third-pw"), "").status,
        200
    );
}

#[test]
fn deleting_a_user_deletes_its_clients_apps_and_queued_messages() {
    let s = Server::start("user-delete");
    s.add_user("ann", "pw-ann");
    let (key, token) = s.device("bob");
    let key2 = s.add_client("bob", "tablet");
    let token2 = s.add_app(&key2, "app2");
    for t in [&token, &token2] {
        assert_eq!(s.post_message(&message(t, r#"{"n":1}"#)).status, 200);
    }
    assert_eq!(queued(&s), 2);
    let bob_id = as_user(&s, "GET", "/user/bob", ("bob", "secret"), "").json_field("id");

    let r = as_user(
        &s,
        "DELETE",
        &format!("/user/{bob_id}"),
        ("ann", "pw-ann"),
        "",
    );
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(r.body.is_empty());
    assert_eq!(queued(&s), 0);
    for k in [&key, &key2] {
        assert_unauthorized(&as_client(&s, "GET", "/application", k, ""));
    }
    for t in [&token, &token2] {
        s.post_message(&message(t, r#"{"n":2}"#)).assert_error(404);
    }
    assert_unauthorized(&as_user(&s, "GET", "/user", ("bob", "secret"), ""));
    as_user(&s, "GET", "/user/bob", ("ann", "pw-ann"), "").assert_error(404);
    as_user(&s, "DELETE", "/user/bob", ("ann", "pw-ann"), "").assert_error(404);

    // A user may delete itself, by name.
    s.add_user("cat", "pw-cat");
    let r = as_user(&s, "DELETE", "/user/cat", ("cat", "pw-cat"), "");
    assert_eq!(r.status, 204, "{}", r.text());
    assert_unauthorized(&as_user(&s, "GET", "/user", ("cat", "pw-cat"), ""));
}

#[test]
fn passwords_and_hashes_never_appear_in_responses() {
    let s = Server::start("user-secrets");
    s.add_user("ann", "pw-ann-XYZ");
    let ann = ("ann", "pw-ann-XYZ");
    let _ = s.add_client("ann", "phone");
    let created = as_user(
        &s,
        "POST",
        "/user",
        ann,
        r#"{"name":"bob","password":"pw-bob-XYZ"}"#,
    );
    let bob_id = created.json_field("id");
    let responses = [
        created,
        as_user(&s, "GET", "/user", ann, ""),
        as_user(&s, "GET", "/user/ann", ann, ""),
        as_user(&s, "GET", &format!("/user/{bob_id}"), ann, ""),
        as_user(&s, "PUT", "/user/bob", ann, r#"{"password":"pw-bob2-XYZ"}"#),
        as_user(
            &s,
            "POST",
            "/user",
            ann,
            r#"{"name":"bob","password":"pw-dup-XYZ"}"#,
        ),
        as_user(&s, "GET", "/user", ("ann", "wrong-XYZ"), ""),
    ];
    for r in responses {
        let text = r.text();
        assert!(
            !text.contains("XYZ") && !text.contains("argon2") && !text.contains("password\":"),
            "{text}"
        );
    }
}

#[test]
fn bad_credentials_are_401_with_a_basic_challenge_and_one_body() {
    let s = Server::start("user-auth");
    s.add_user("ann", "pw-ann");
    let wrong = as_user(&s, "GET", "/user", ("ann", "nope"), "");
    let unknown = as_user(&s, "GET", "/user", ("zed", "pw-ann"), "");
    assert_unauthorized(&wrong);
    assert_unauthorized(&unknown);
    assert_eq!(wrong.text(), unknown.text());

    assert_unauthorized(&s.request("GET", "/user", &[], ""));
    for header in [
        "Basic",
        "Basic !!!not-base64!!!",
        "Basic YW5u", // "ann": no colon
        "Bearer abc",
        &basic("ann", "pw-ann").replace("Basic", "Digest"),
        "",
    ] {
        let r = s.request("GET", "/user", &[("Authorization", header)], "");
        assert_unauthorized(&r);
    }
    // Every user endpoint asks for credentials first.
    for (method, path) in [
        ("POST", "/user"),
        ("GET", "/user/ann"),
        ("PUT", "/user/ann"),
        ("DELETE", "/user/ann"),
        ("GET", "/client"),
        ("POST", "/client"),
        ("GET", "/client/1"),
        ("PUT", "/client/1"),
        ("DELETE", "/client/1"),
    ] {
        assert_unauthorized(&s.request(method, path, &[], "{}"));
        assert_unauthorized(&as_user(&s, method, path, ("ann", "nope"), "{}"));
    }
    // Still logged in fine afterwards.
    assert_eq!(
        as_user(&s, "GET", "/user", ("ann", "pw-ann"), "").status,
        200
    );
}

// ---------------------------------------------------------------------------------------
// /client

#[test]
fn client_is_created_listed_read_and_renamed() {
    let s = Server::start("client-crud");
    s.add_user("ann", "pw-ann");
    s.add_user("bob", "pw-bob");
    let ann = ("ann", "pw-ann");
    let bob_key = s.add_client("bob", "bob-phone");

    let r = as_user(&s, "POST", "/client", ann, r#"{"name":"Ann's phone"}"#);
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json_field("id");
    let key = r.json_field("token");
    assert_eq!(r.json_field("name"), "Ann's phone");
    assert!(r.text().contains("\"applications\":[]"), "{}", r.text());
    assert!(key.len() >= 27, "a key of 160 bits or more: {key}");
    // The key works as a client key.
    assert_eq!(as_client(&s, "GET", "/application", &key, "").status, 200);

    as_user(&s, "POST", "/client", ann, r#"{"name":"Ann's phone"}"#).assert_error(409);
    for bad in ["", "{", r#"{"name":""}"#, r#"{"name":7}"#, r#"{}"#] {
        as_user(&s, "POST", "/client", ann, bad).assert_error(400);
    }

    let r = as_user(&s, "POST", "/client", ann, r#"{"name":"tablet"}"#);
    assert_eq!(r.status, 201, "{}", r.text());
    let list = as_user(&s, "GET", "/client", ann, "");
    assert_eq!(list.status, 200, "{}", list.text());
    let text = list.text();
    assert!(text.starts_with('[') && text.contains("Ann's phone") && text.contains("tablet"));
    assert!(
        !text.contains("bob-phone") && !text.contains(&bob_key),
        "{text}"
    );

    let token = s.add_app(&key, "app1");
    for ident in [id.as_str(), "Ann%27s%20phone"] {
        let r = as_user(&s, "GET", &format!("/client/{ident}"), ann, "");
        assert_eq!(r.status, 200, "{ident}: {}", r.text());
        assert_eq!(r.json_field("id"), id);
        assert_eq!(r.json_field("token"), key);
        assert_eq!(r.json_field("routing_token"), token);
    }
    as_user(&s, "GET", "/client/nothing", ann, "").assert_error(404);

    let r = as_user(
        &s,
        "PUT",
        &format!("/client/{id}"),
        ann,
        r#"{"name":"old phone"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json_field("name"), "old phone");
    assert_eq!(r.json_field("token"), key);
    let r = as_user(&s, "GET", "/client/old%20phone", ann, "");
    assert_eq!(r.json_field("id"), id);
    as_user(
        &s,
        "PUT",
        &format!("/client/{id}"),
        ann,
        r#"{"name":"tablet"}"#,
    )
    .assert_error(409);
    as_user(&s, "PUT", "/client/nothing", ann, r#"{"name":"x"}"#).assert_error(404);
    as_user(&s, "PUT", &format!("/client/{id}"), ann, r#"{"name":""}"#).assert_error(400);
    // Renaming keeps the key and the routing token.
    assert_eq!(as_client(&s, "GET", "/application", &key, "").status, 200);
    assert_eq!(s.post_message(&message(&token, "{}")).status, 200);
}

#[test]
fn deleting_a_client_revokes_its_key_and_routing_tokens() {
    let s = Server::start("client-delete");
    let (key, token) = s.device("ann");
    let ann = ("ann", "secret");
    let id = as_user(&s, "GET", "/client/phone", ann, "").json_field("id");
    assert_eq!(s.post_message(&message(&token, r#"{"a":1}"#)).status, 200);

    let r = as_user(&s, "DELETE", &format!("/client/{id}"), ann, "");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json_field("id"), id);
    assert_eq!(queued(&s), 0);
    assert_unauthorized(&as_client(&s, "GET", "/application", &key, ""));
    s.post_message(&message(&token, r#"{"a":2}"#))
        .assert_error(404);
    as_user(&s, "GET", &format!("/client/{id}"), ann, "").assert_error(404);
    as_user(&s, "DELETE", &format!("/client/{id}"), ann, "").assert_error(404);
    // The name is free again.
    let r = as_user(&s, "POST", "/client", ann, r#"{"name":"phone"}"#);
    assert_eq!(r.status, 201, "{}", r.text());

    // Delete by name works as well.
    let r = as_user(&s, "DELETE", "/client/phone", ann, "");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(as_user(&s, "GET", "/client", ann, "").text(), "[]");
}

#[test]
fn client_deletes_itself_with_its_key() {
    let s = Server::start("client-self");
    let (key, token) = s.device("ann");
    let other = s.add_client("ann", "tablet");
    let r = as_client(&s, "DELETE", "/client", &key, "");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json_field("name"), "phone");
    assert_unauthorized(&as_client(&s, "GET", "/application", &key, ""));
    assert_unauthorized(&as_client(&s, "DELETE", "/client", &key, ""));
    s.post_message(&message(&token, "{}")).assert_error(404);
    // Only the caller went.
    assert_eq!(as_client(&s, "GET", "/application", &other, "").status, 200);
    assert_unauthorized(&s.request("DELETE", "/client", &[], ""));
    assert_unauthorized(&as_client(&s, "DELETE", "/client", "not-a-key", ""));
}

#[test]
fn another_users_client_is_404() {
    let s = Server::start("client-other");
    let (bob_key, bob_token) = s.device("bob");
    s.add_user("eve", "pw-eve");
    let eve = ("eve", "pw-eve");
    let bob_id = as_user(&s, "GET", "/client/phone", ("bob", "secret"), "").json_field("id");
    for ident in [bob_id.as_str(), "phone", bob_key.as_str()] {
        let path = format!("/client/{ident}");
        as_user(&s, "GET", &path, eve, "").assert_error(404);
        as_user(&s, "PUT", &path, eve, r#"{"name":"mine"}"#).assert_error(404);
        as_user(&s, "DELETE", &path, eve, "").assert_error(404);
    }
    // Bob's client is untouched.
    let r = as_user(
        &s,
        "GET",
        &format!("/client/{bob_id}"),
        ("bob", "secret"),
        "",
    );
    assert_eq!(r.json_field("name"), "phone");
    assert_eq!(s.post_message(&message(&bob_token, "{}")).status, 200);
    // Bob, the first user, is an administrator; the client API is still per user.
    let eve_key = s.add_client("eve", "eve-phone");
    let r = as_user(&s, "GET", "/client/eve-phone", eve, "");
    let eve_id = r.json_field("id");
    as_user(
        &s,
        "GET",
        &format!("/client/{eve_id}"),
        ("bob", "secret"),
        "",
    )
    .assert_error(404);
    as_user(
        &s,
        "DELETE",
        &format!("/client/{eve_id}"),
        ("bob", "secret"),
        "",
    )
    .assert_error(404);
    assert_eq!(
        as_client(&s, "GET", "/application", &eve_key, "").status,
        200
    );
}

// ---------------------------------------------------------------------------------------
// /application

#[test]
fn application_is_registered_listed_and_deleted() {
    let s = Server::start("app-crud");
    s.add_user("ann", "pw");
    let key = s.add_client("ann", "phone");
    let r = as_client(
        &s,
        "POST",
        "/application",
        &key,
        r#"{"registration_id":"chat"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json_field("registration_id"), "chat");
    let chat = r.json_field("routing_token");
    assert!(chat.len() >= 27, "{chat}");
    let mail = s.add_app(&key, "mail");
    assert_ne!(chat, mail);

    let list = as_client(&s, "GET", "/application", &key, "");
    assert_eq!(list.status, 200, "{}", list.text());
    for part in ["chat", "mail", &chat, &mail] {
        assert!(list.text().contains(part), "{}", list.text());
    }

    let r = as_client(&s, "DELETE", "/application/chat", &key, "");
    assert_eq!(r.status, 204, "{}", r.text());
    s.post_message(&message(&chat, "{}")).assert_error(404);
    assert_eq!(s.post_message(&message(&mail, "{}")).status, 200);
    let r = as_client(&s, "DELETE", &format!("/application/{mail}"), &key, "");
    assert_eq!(r.status, 204, "{}", r.text());
    s.post_message(&message(&mail, "{}")).assert_error(404);
    assert_eq!(queued(&s), 0);
    as_client(&s, "DELETE", "/application/chat", &key, "").assert_error(404);
    assert_eq!(as_client(&s, "GET", "/application", &key, "").text(), "[]");
    // Registering again gives a fresh token.
    let again = s.add_app(&key, "chat");
    assert_ne!(again, chat);

    for bad in [
        "",
        "{",
        r#"{"registration_id":""}"#,
        r#"{"registration_id":1}"#,
        "{}",
    ] {
        as_client(&s, "POST", "/application", &key, bad).assert_error(400);
    }
}

#[test]
fn duplicate_registration_id_on_same_client_is_400() {
    let s = Server::start("app-dup");
    let (key, token) = s.device("ann");
    as_client(
        &s,
        "POST",
        "/application",
        &key,
        r#"{"registration_id":"app1"}"#,
    )
    .assert_error(400);
    // The first registration is unharmed.
    let list = as_client(&s, "GET", "/application", &key, "").text();
    assert_eq!(list.matches("app1").count(), 1, "{list}");
    assert!(list.contains(&token));
}

#[test]
fn same_registration_id_on_two_clients_gets_distinct_tokens() {
    let s = Server::start("app-two");
    let (key1, token1) = s.device("ann");
    let key2 = s.add_client("ann", "tablet");
    let token2 = s.add_app(&key2, "app1");
    assert_ne!(token1, token2);
    // Deleting it on one client leaves the other.
    let r = as_client(&s, "DELETE", "/application/app1", &key1, "");
    assert_eq!(r.status, 204);
    s.post_message(&message(&token1, "{}")).assert_error(404);
    assert_eq!(s.post_message(&message(&token2, "{}")).status, 200);
    // A client cannot delete another client's app by its routing token.
    let key3 = s.add_client("ann", "laptop");
    as_client(&s, "DELETE", &format!("/application/{token2}"), &key3, "").assert_error(404);
    assert_eq!(s.post_message(&message(&token2, "{}")).status, 200);
}

#[test]
fn application_without_a_valid_key_is_401() {
    let s = Server::start("app-auth");
    let (key, token) = s.device("ann");
    for (method, path, body) in [
        ("GET", "/application", ""),
        ("POST", "/application", r#"{"registration_id":"x"}"#),
        ("DELETE", "/application/app1", ""),
    ] {
        assert_unauthorized(&s.request(method, path, &[], body));
        assert_unauthorized(&as_client(&s, method, path, "wrong-key", body));
        assert_unauthorized(&as_client(&s, method, path, &key[..key.len() - 1], body));
        assert_unauthorized(&as_client(&s, method, path, &token, body));
        // Basic auth is not a client key.
        assert_unauthorized(&as_user(&s, method, path, ("ann", "secret"), body));
    }
    assert_eq!(s.post_message(&message(&token, "{}")).status, 200);
}

// ---------------------------------------------------------------------------------------
// POST /message error paths

#[test]
fn message_that_is_not_json_is_400() {
    let s = Server::start("msg-json");
    let (_, token) = s.device("ann");
    for bad in [
        "",
        "{",
        "not json",
        &format!(r#"{{"token":"{token}","data":{{}}"#),
        &format!(r#"{{"token":"{token}","data":{{}}}} trailing"#),
        &format!(r#"{{"token":"{token}","data":{{"a":01}}}}"#),
        "[]",
        "null",
        r#"{"data":{}}"#,
        r#"{"token":5,"data":{}}"#,
    ] {
        s.post_message(bad).assert_error(400);
    }
    assert_eq!(queued(&s), 0);
}

#[test]
fn message_data_that_is_not_an_object_is_400() {
    let s = Server::start("msg-data");
    let (_, token) = s.device("ann");
    for data in [r#""text""#, "[1,2]", "null", "42", "true"] {
        s.post_message(&message(&token, data)).assert_error(400);
    }
    s.post_message(&format!(r#"{{"token":"{token}"}}"#))
        .assert_error(400);
    assert_eq!(queued(&s), 0);
}

#[test]
fn message_data_over_4096_bytes_is_413_and_nothing_is_stored() {
    let s = Server::start("msg-big");
    let (_, token) = s.device("ann");
    // {"k":"…"} is 8 bytes plus the string.
    let data = |n: usize| format!(r#"{{"k":"{}"}}"#, "x".repeat(n));
    assert_eq!(data(4088).len(), 4096);
    let r = s.post_message(&message(&token, &data(4089)));
    r.assert_error(413);
    assert!(r.json_field("detail").contains("4096"), "{}", r.text());
    assert_eq!(queued(&s), 0);

    let r = s.post_message(&message(&token, &data(4088)));
    assert_eq!(r.status, 200, "exactly 4096 bytes: {}", r.text());
    assert_eq!(queued(&s), 1);
}

#[test]
fn whitespace_in_the_request_does_not_count_toward_the_data_limit() {
    let s = Server::start("msg-pretty");
    let (_, token) = s.device("ann");
    let pretty = format!(
        "{{\n  \"token\" : \"{token}\",\n  \"data\" : {{\n    \"k\" : \"{}\",\n    \"n\" : [ 1 , 2 ]\n  }}\n}}\n",
        "x".repeat(4096 - 18)
    );
    // Compact data: {"k":"…","n":[1,2]} is 18 bytes plus the string: exactly 4096.
    let r = s.post_message(&pretty);
    assert_eq!(r.status, 200, "{}", r.text());
    let over = pretty.replacen("\"k\" : \"", "\"k\" : \"x", 1);
    s.post_message(&over).assert_error(413);
    assert_eq!(queued(&s), 1);
}

#[test]
fn message_to_an_unknown_token_is_404() {
    let s = Server::start("msg-token");
    let (_, token) = s.device("ann");
    s.post_message(&message("no-such-token", "{}"))
        .assert_error(404);
    s.post_message(&message(&format!("{token}x"), "{}"))
        .assert_error(404);
    s.post_message(&message(&token[..token.len() - 1], "{}"))
        .assert_error(404);
    // An empty or absurdly long token is a bad request or unknown, never stored.
    let r = s.post_message(&message("", "{}"));
    assert!(r.status == 400 || r.status == 404, "{}", r.text());
    r.assert_error(r.status);
    let r = s.post_message(&message(&"t".repeat(5000), "{}"));
    r.assert_error(r.status);
    assert!(r.status == 400 || r.status == 404);
    assert_eq!(queued(&s), 0);
}

#[test]
fn message_with_bad_priority_or_time_to_live_is_400() {
    let s = Server::start("msg-fields");
    let (_, token) = s.device("ann");
    let with = |extra: &str| format!(r#"{{"token":"{token}","data":{{}},{extra}}}"#);
    for extra in [
        r#""priority":"urgent""#,
        r#""priority":"""#,
        r#""priority":5"#,
        r#""priority":"HIGH""#,
        r#""time_to_live":-1"#,
        r#""time_to_live":1.5"#,
        r#""time_to_live":"60""#,
        r#""time_to_live":1e3"#,
        r#""time_to_live":true"#,
        r#""collapse_key":5"#,
        r#""collapse_key":"""#,
    ] {
        s.post_message(&with(extra)).assert_error(400);
    }
    assert_eq!(queued(&s), 0);
    for extra in [
        r#""priority":"high""#,
        r#""priority":"normal""#,
        r#""time_to_live":60"#,
        r#""time_to_live":99999999999"#,
    ] {
        let r = s.post_message(&with(extra));
        assert_eq!(r.status, 200, "{extra}: {}", r.text());
    }
}

// ---------------------------------------------------------------------------------------
// HTTP edges, as raw bytes

#[test]
fn header_section_over_8_kib_is_431() {
    let s = Server::start("http-431");
    let raw = format!(
        "GET /version HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "a".repeat(9000)
    );
    send_raw(s.addr, raw.as_bytes()).assert_error(431);
    let many: String = (0..100).map(|i| format!("X-H{i}: v\r\n")).collect();
    let raw = format!("GET /version HTTP/1.1\r\nHost: t\r\n{many}\r\n");
    send_raw(s.addr, raw.as_bytes()).assert_error(431);
}

#[test]
fn request_line_over_the_limit_is_414() {
    let s = Server::start("http-414");
    let raw = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(9000));
    send_raw(s.addr, raw.as_bytes()).assert_error(414);
}

#[test]
fn body_over_the_limit_is_413() {
    let s = Server::start("http-413");
    let (_, token) = s.device("ann");
    let raw = "POST /message HTTP/1.1\r\nHost: t\r\nContent-Length: 70000\r\n\r\n";
    send_raw(s.addr, raw.as_bytes()).assert_error(413);
    // A chunked body that grows past the limit.
    let chunk = "x".repeat(40_000);
    let raw = format!(
        "POST /message HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len(),
        chunk.len()
    );
    send_raw(s.addr, raw.as_bytes()).assert_error(413);
    // A real body over the limit with a valid envelope.
    let body = message(&token, &format!(r#"{{"k":"{}"}}"#, "x".repeat(70_000)));
    s.post_message(&body).assert_error(413);
    assert_eq!(queued(&s), 0);
}

#[test]
fn malformed_requests_are_400() {
    let s = Server::start("http-400");
    for raw in [
        "GARBAGE\r\n\r\n".to_owned(),
        "GET /version HTTP/1.1\r\nBad Header\r\n\r\n".into(),
        "POST /message HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n".into(),
        "POST /message HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}"
            .into(),
        "POST /message HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            .into(),
        "POST /message HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"
            .into(),
        "GET /user/%zz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".into(),
    ] {
        let r = send_raw(s.addr, raw.as_bytes());
        r.assert_error(400);
    }
    // Content-Length is digits only; a sign would let a proxy and the server disagree.
    let (_, token) = s.device("ann");
    let body = message(&token, "{}");
    for length in [
        format!("+{}", body.len()),
        format!(" {} ", body.len()),
        "-0".into(),
    ] {
        let raw = format!(
            "POST /message HTTP/1.1\r\nHost: t\r\nContent-Length:{length}\r\nConnection: close\r\n\r\n{body}"
        );
        let r = send_raw(s.addr, raw.as_bytes());
        if length.trim().starts_with(|c: char| c.is_ascii_digit()) {
            assert_eq!(r.status, 200, "{length:?}: {}", r.text());
        } else {
            r.assert_error(400);
        }
    }
    // The server is still fine.
    assert_eq!(s.request("GET", "/version", &[], "").status, 200);
}

#[test]
fn chunked_request_body_works_for_post_message() {
    let s = Server::start("http-chunked");
    let (_, token) = s.device("ann");
    let body = message(&token, r#"{"chunked":true}"#);
    let (a, b) = body.split_at(10);
    let raw = format!(
        "POST /message HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{a}\r\n{:X};ext=1\r\n{b}\r\n0\r\n\r\n",
        a.len(),
        b.len()
    );
    let r = send_raw(s.addr, raw.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(queued(&s), 1);
}

#[test]
fn expect_100_continue_gets_continue_then_the_answer() {
    let s = Server::start("http-continue");
    let (_, token) = s.device("ann");
    let body = message(&token, r#"{"a":1}"#);
    let mut conn = Conn::open(s.addr);
    conn.send(
        format!(
            "POST /message HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    let interim = conn.response();
    assert_eq!(interim.status, 100);
    conn.send(body.as_bytes());
    let r = conn.response();
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(conn.closed());
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let s = Server::start("http-pipeline");
    let (key, token) = s.device("ann");
    let body = message(&token, "{}");
    let raw = format!(
        "GET /application HTTP/1.1\r\nHost: t\r\nX-Openpush-Key: {key}\r\n\r\n\
         POST /message HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}\
         GET /nope HTTP/1.1\r\nHost: t\r\n\r\n\
         GET /version HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut conn = Conn::open(s.addr);
    conn.send(raw.as_bytes());
    let statuses: Vec<u16> = (0..4).map(|_| conn.response().status).collect();
    assert_eq!(statuses, [200, 200, 404, 200]);
    assert!(conn.closed());
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let s = Server::start("http-keepalive");
    let mut conn = Conn::open(s.addr);
    for _ in 0..3 {
        conn.send(b"GET /version HTTP/1.1\r\nHost: t\r\n\r\n");
        let r = conn.response();
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("connection"), Some("keep-alive"));
    }
    // An error answer keeps the connection, too.
    conn.send(b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\n");
    conn.response().assert_error(404);
    conn.send(b"GET /version HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let r = conn.response();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(conn.closed());
}

#[test]
fn client_that_stalls_mid_head_gets_408() {
    let s = Server::start_with("http-408", "request_timeout_secs = 1");
    let started = Instant::now();
    let mut conn = Conn::open(s.addr);
    conn.send(b"GET /version HTTP/1.1\r\nHost: t\r\nX-Half: ");
    let r = conn.response();
    r.assert_error(408);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    assert!(conn.closed());
    // A stalled body times out the same way.
    let mut conn = Conn::open(s.addr);
    conn.send(b"POST /message HTTP/1.1\r\nHost: t\r\nContent-Length: 50\r\n\r\n{\"tok");
    conn.response().assert_error(408);
}

// ---------------------------------------------------------------------------------------
// CLI

#[test]
fn cli_version_and_help_describe_the_commands() {
    let out = run_cli_within(&["--version"], "");
    assert!(out.status.success());
    assert!(stdout(&out).starts_with("openpush 0.1"), "{}", stdout(&out));

    let out = run_cli_within(&["--help"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let help = stdout(&out);
    for word in ["serve", "user", "client", "--version"] {
        assert!(help.contains(word), "{help}");
    }
    for (args, words) in [
        (
            &["user", "--help"][..],
            &["add", "list", "passwd", "del"][..],
        ),
        (&["client", "--help"], &["add", "list", "del"]),
        (&["serve", "--help"], &["--listen", "--db", "--config"]),
        (
            &["user", "add", "--help"],
            &["--password-stdin", "--admin", "--db"],
        ),
        (&["client", "add", "--help"], &["--user", "--db"]),
    ] {
        let out = run_cli_within(args, "");
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        for word in words {
            assert!(stdout(&out).contains(word), "{args:?}: {}", stdout(&out));
        }
    }
    let out = run_cli_within(&["frobnicate"], "");
    assert!(!out.status.success());
    let out = run_cli_within(&[], "");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--help"), "{}", stderr(&out));
}

/// The CLI commands against `config`, whether a server runs or not; checks their output.
fn exercise_cli(config: &std::path::Path) -> String {
    let ok = |args: &[&str], stdin: &str| {
        let out = cli(config, args, stdin);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out)
    };
    let fails = |args: &[&str], stdin: &str| {
        let out = cli(config, args, stdin);
        assert!(
            !out.status.success(),
            "{args:?} succeeded: {}",
            stdout(&out)
        );
        assert!(!stderr(&out).trim().is_empty());
        stderr(&out)
    };
    ok(&["user", "add", "bob", "--password-stdin"], "pw-bob\n");
    fails(&["user", "add", "bob", "--password-stdin"], "again\n");
    let list = ok(&["user", "list"], "");
    assert!(list.contains("\tann\tadmin"), "{list}");
    assert!(list.contains("\tbob\tuser"), "{list}");
    assert!(
        !list.contains("argon2") && !list.contains("pw-bob"),
        "{list}"
    );

    ok(&["user", "passwd", "bob", "--password-stdin"], "pw-bob-2\n");
    fails(&["user", "passwd", "nobody", "--password-stdin"], "x\n");

    let key = ok(&["client", "add", "--user", "bob", "laptop"], "");
    let key = key.trim().to_owned();
    assert!(key.len() >= 27, "{key}");
    fails(&["client", "add", "--user", "bob", "laptop"], "");
    fails(&["client", "add", "--user", "nobody", "laptop"], "");
    let list = ok(&["client", "list"], "");
    assert!(
        list.contains("\tbob\tlaptop\t0\t") && list.contains(&key),
        "{list}"
    );
    assert!(list.contains("\tann\tphone\t"), "{list}");
    let list = ok(&["client", "list", "--user", "bob"], "");
    assert!(!list.contains("\tann\t"), "{list}");

    ok(&["client", "del", "--user", "ann", "phone"], "");
    fails(&["client", "del", "--user", "ann", "phone"], "");
    assert!(!ok(&["client", "list"], "").contains("\tphone\t"));

    ok(&["user", "add", "gone", "--password-stdin"], "pw\n");
    ok(&["client", "add", "--user", "gone", "dev"], "");
    ok(&["user", "del", "gone"], "");
    fails(&["user", "del", "gone"], "");
    let list = ok(&["user", "list"], "");
    assert!(!list.contains("gone"), "{list}");
    assert!(!ok(&["client", "list"], "").contains("gone"));
    key
}

#[test]
fn cli_manages_accounts_while_the_server_runs() {
    let s = Server::start("cli-live");
    let (phone_key, phone_token) = s.device("ann");
    s.add_user("cat", "pw-cat");
    // Log bob in once after creating him, so that the password change must clear the cache.
    let out = s.cli(&["user", "add", "pre", "--password-stdin"], "pw-pre\n");
    assert!(out.status.success());
    assert_eq!(
        as_user(&s, "GET", "/user", ("pre", "pw-pre"), "").status,
        200
    );
    let out = s.cli(&["user", "passwd", "pre", "--password-stdin"], "pw-pre-2\n");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_unauthorized(&as_user(&s, "GET", "/user", ("pre", "pw-pre"), ""));
    assert_eq!(
        as_user(&s, "GET", "/user", ("pre", "pw-pre-2"), "").status,
        200
    );

    let key = exercise_cli(&s.config);
    // Every change is visible through the API at once.
    assert_unauthorized(&as_user(&s, "GET", "/user", ("bob", "pw-bob"), ""));
    assert_eq!(
        as_user(&s, "GET", "/user", ("bob", "pw-bob-2"), "").status,
        200
    );
    assert_eq!(as_client(&s, "GET", "/application", &key, "").status, 200);
    assert_unauthorized(&as_client(&s, "GET", "/application", &phone_key, ""));
    s.post_message(&message(&phone_token, "{}"))
        .assert_error(404);
    assert_unauthorized(&as_user(&s, "GET", "/user", ("gone", "pw"), ""));
    // A deleted user's cached login is gone too.
    assert_eq!(
        as_user(&s, "GET", "/user", ("cat", "pw-cat"), "").status,
        200
    );
    assert!(s.cli(&["user", "del", "cat"], "").status.success());
    assert_unauthorized(&as_user(&s, "GET", "/user", ("cat", "pw-cat"), ""));
}

#[test]
fn cli_manages_accounts_while_the_server_is_stopped() {
    let mut s = Server::start("cli-stopped");
    let (phone_key, phone_token) = s.device("ann");
    s.kill9();
    let key = exercise_cli(&s.config);
    s.restart();
    assert_unauthorized(&as_user(&s, "GET", "/user", ("bob", "pw-bob"), ""));
    assert_eq!(
        as_user(&s, "GET", "/user", ("bob", "pw-bob-2"), "").status,
        200
    );
    assert_eq!(as_client(&s, "GET", "/application", &key, "").status, 200);
    assert_unauthorized(&as_client(&s, "GET", "/application", &phone_key, ""));
    s.post_message(&message(&phone_token, "{}"))
        .assert_error(404);
    assert_unauthorized(&as_user(&s, "GET", "/user", ("gone", "pw"), ""));
}

#[test]
fn cli_with_a_db_in_a_missing_directory_fails_clearly() {
    let dir = temp_dir("cli-missing");
    let db = dir.join("no/such/dir/openpush.redb");
    let db = db.to_str().unwrap();
    for (args, stdin) in [
        (&["user", "list", "--db", db][..], ""),
        (
            &["user", "add", "ann", "--password-stdin", "--db", db],
            "pw\n",
        ),
        (&["client", "list", "--db", db], ""),
    ] {
        let out = run_cli_within(args, stdin);
        assert!(!out.status.success(), "{args:?}");
        let err = stderr(&out);
        assert!(err.contains("no/such/dir"), "{args:?}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cli_with_a_file_that_is_not_a_database_fails_clearly() {
    let dir = temp_dir("cli-garbage");
    let db = dir.join("openpush.redb");
    std::fs::write(&db, "this is not a database\n".repeat(100)).unwrap();
    let db = db.to_str().unwrap();
    for (args, stdin) in [
        (&["user", "list", "--db", db][..], ""),
        (
            &["user", "add", "ann", "--password-stdin", "--db", db],
            "pw\n",
        ),
        (&["client", "add", "--user", "ann", "x", "--db", db], ""),
    ] {
        let out = run_cli_within(args, stdin);
        assert!(!out.status.success(), "{args:?}");
        let err = stderr(&out);
        assert!(err.contains(db), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    // The file is left as it was.
    assert_eq!(
        std::fs::read_to_string(db).unwrap(),
        "this is not a database\n".repeat(100)
    );
    // An empty file and a directory are refused the same way.
    let empty = dir.join("empty.redb");
    std::fs::write(&empty, "").unwrap();
    for path in [empty.to_str().unwrap(), dir.to_str().unwrap()] {
        let out = run_cli_within(&["user", "list", "--db", path], "");
        let err = stderr(&out);
        assert!(!out.status.success() || err.is_empty(), "{path}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn user_name_with_a_colon_is_400_since_basic_auth_cannot_carry_it() {
    let s = Server::start("user-colon");
    s.add_user("ann", "pw-ann");
    let ann = ("ann", "pw-ann");
    as_user(
        &s,
        "POST",
        "/user",
        ann,
        r#"{"name":"a:b","password":"pw"}"#,
    )
    .assert_error(400);
    as_user(&s, "PUT", "/user/ann", ann, r#"{"name":"a:b"}"#).assert_error(400);
    let out = s.cli(&["user", "add", "c:d", "--password-stdin"], "pw\n");
    assert!(!out.status.success());
    assert!(stderr(&out).contains(':'), "{}", stderr(&out));
    let list = stdout(&s.cli(&["user", "list"], ""));
    assert!(!list.contains("a:b") && !list.contains("c:d"), "{list}");
}

#[test]
fn login_racing_a_password_change_does_not_cache_the_old_password() {
    let s = Server::start("user-passwd-race");
    s.add_user("ann", "pw-ann");
    s.add_user("bob", "pw-0");
    let ann = ("ann", "pw-ann");
    assert_eq!(as_user(&s, "GET", "/user", ann, "").status, 200);
    for round in 1..=3 {
        let old = format!("pw-{}", round - 1);
        let new = format!("pw-{round}");
        std::thread::scope(|scope| {
            let (addr, auth) = (s.addr, basic("bob", &old));
            for _ in 0..8 {
                let auth = auth.clone();
                scope.spawn(move || request(addr, "GET", "/user", &[("Authorization", &auth)], ""));
            }
            let body = format!(r#"{{"password":"{new}"}}"#);
            let r = as_user(&s, "PUT", "/user/bob", ann, &body);
            assert_eq!(r.status, 200, "{}", r.text());
        });
        // Once the change is answered and the racing logins are done, the old password is dead.
        assert_unauthorized(&as_user(&s, "GET", "/user", ("bob", &old), ""));
        assert_eq!(as_user(&s, "GET", "/user", ("bob", &new), "").status, 200);
    }
}

#[test]
fn cli_fails_clearly_when_the_server_holds_the_db_but_its_socket_is_gone() {
    let s = Server::start("cli-no-socket");
    s.add_user("ann", "pw-ann");
    let mut socket = s.db.as_os_str().to_owned();
    socket.push(".sock");
    std::fs::remove_file(&socket).unwrap();
    let config = s.config.to_str().unwrap();
    let out = run_cli_within(&["user", "list", "--config", config], "");
    assert!(!out.status.success(), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("control socket") && err.contains(".sock"),
        "{err}"
    );
    // The server is unharmed.
    assert_eq!(
        as_user(&s, "GET", "/user", ("ann", "pw-ann"), "").status,
        200
    );
}

#[test]
fn http10_keep_alive_is_confirmed_so_the_client_does_not_wait_for_a_close() {
    let s = Server::start("http10-keepalive");
    let mut conn = Conn::open(s.addr);
    conn.send(b"GET /version HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let r = conn.response();
    assert_eq!(r.status, 200);
    assert!(
        r.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("keep-alive")),
        "{r:?}"
    );
    conn.send(b"GET /version HTTP/1.0\r\n\r\n");
    let r = conn.response();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(conn.closed());
}
