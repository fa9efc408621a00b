//! The admin page (`/admin/`, feature `admin`) against the real binary: its files
//! (gzipped, with their entity tags and the page's security headers), who may call its API
//! (administrators only, by password or access token, never from another site's page, JSON
//! bodies only) and what each call does, as a client sees it: users added, given a new
//! password and deleted, devices added and deleted, topics shared and deleted, tokens
//! revoked, each ending the streams that lost their access; the live status counting
//! streams by user and by door, the store's budget and the certificate's end; the set-up
//! URLs. Bad input gets its status, a JSON error and no panic.

use crate::support;

use std::io::Read;
use std::process::{Command, Stdio};

use miniserde::json::{Number, Value};
use support::push::{JsonStream, Obj};
use support::{Response, Server, TIMEOUT, basic};

const ADMIN: (&str, &str) = ("ann", "ann's password");
const USER: (&str, &str) = ("ben", "ben's password");

/// A server with `ann` (administrator) and `ben`.
fn start(name: &str, config: &str) -> Server {
    let s = Server::start_with(name, config);
    s.add_user(ADMIN.0, ADMIN.1);
    s.add_user(USER.0, USER.1);
    s
}

/// A call of the admin API as `auth` (an `Authorization` value), with a JSON body if any.
fn call(s: &Server, method: &str, path: &str, auth: &str, body: &str) -> Response {
    let mut headers = vec![("Authorization", auth)];
    if !body.is_empty() {
        headers.push(("Content-Type", "application/json"));
    }
    s.request(method, &format!("/admin/api/{path}"), &headers, body)
}

fn admin() -> String {
    basic(ADMIN.0, ADMIN.1)
}

/// A call as the administrator that must succeed with `status`: its JSON.
fn ok(s: &Server, method: &str, path: &str, body: &str, status: u16) -> Value {
    let r = call(s, method, path, &admin(), body);
    assert_eq!(r.status, status, "{method} {path}: {}", r.text());
    parse(&r.text())
}

fn parse(text: &str) -> Value {
    miniserde::json::from_str(text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

fn get<'a>(v: &'a Value, key: &str) -> &'a Value {
    match v {
        Value::Object(o) => o.get(key).unwrap_or_else(|| panic!("no {key} in {v:?}")),
        _ => panic!("not an object: {v:?}"),
    }
}

fn items(v: &Value) -> &[Value] {
    match v {
        Value::Array(a) => a,
        _ => panic!("not an array: {v:?}"),
    }
}

fn int(v: &Value) -> u64 {
    match v {
        Value::Number(Number::U64(n)) => *n,
        _ => panic!("not an unsigned integer: {v:?}"),
    }
}

fn text(v: &Value) -> &str {
    match v {
        Value::String(s) => s,
        _ => panic!("not a string: {v:?}"),
    }
}

/// The item of a list whose `key` is `value`.
fn find<'a>(list: &'a Value, key: &str, value: &str) -> Option<&'a Value> {
    items(list)
        .iter()
        .find(|item| text(get(item, key)) == value)
}

fn user_id(s: &Server, name: &str) -> u64 {
    let users = ok(s, "GET", "users", "", 200);
    int(get(find(&users, "name", name).expect("the user"), "id"))
}

/// An ntfy subscription (`/<topic>/json`) as `who`, open.
fn subscribe(s: &Server, who: (&str, &str), topic: &str) -> JsonStream {
    let auth = basic(who.0, who.1);
    let mut stream = JsonStream::open(
        s.addr,
        &format!("/{topic}/json"),
        &[("Authorization", &auth)],
    );
    assert_eq!(stream.status, 200);
    stream.opened();
    stream
}

/// Whether the server ends the stream within the test timeout.
fn ends(stream: &mut JsonStream) -> bool {
    stream.closed_within(TIMEOUT)
}

fn gunzip(data: &[u8]) -> String {
    let mut child = Command::new("gzip")
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip is installed");
    let mut stdin = child.stdin.take().unwrap();
    let data = data.to_vec();
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &data));
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    writer.join().unwrap().unwrap();
    assert!(child.wait().unwrap().success(), "not gzip");
    out
}

fn assert_page_headers(r: &Response) {
    let csp = r.header("content-security-policy").expect("a CSP");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} missing: {csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
}

#[test]
fn the_page_and_its_files_are_served_gzipped_with_a_strict_policy() {
    let s = Server::start("admin-files");
    let r = s.request("GET", "/admin", &[], "");
    assert_eq!(r.status, 308);
    assert_eq!(r.header("location"), Some("admin/"));
    assert_page_headers(&r);
    let gzip = [("Accept-Encoding", "gzip, deflate")];
    for (path, content_type, contains) in [
        ("/admin/", "text/html", "<title>openpush admin</title>"),
        ("/admin/admin.js", "text/javascript", "function qrModules("),
        ("/admin/admin.css", "text/css", "prefers-color-scheme"),
    ] {
        let r = s.request("GET", path, &gzip, "");
        assert_eq!(r.status, 200, "{path}");
        assert_page_headers(&r);
        assert!(r.header("content-type").unwrap().starts_with(content_type));
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        assert_eq!(r.header("cache-control"), Some("no-cache"));
        assert_eq!(r.header("vary"), Some("Accept-Encoding"));
        let page = gunzip(&r.body);
        assert!(page.contains(contains), "{path}: {page}");
        assert!(
            !page.contains(" style=") && !page.contains("<script>"),
            "{path}"
        );
        let etag = r.header("etag").expect("an entity tag").to_owned();
        let again = s.request("GET", path, &[("If-None-Match", &etag)], "");
        assert_eq!(again.status, 304, "{path}");
        assert!(again.body.is_empty());
        assert_eq!(again.header("content-length"), None);
        assert_eq!(again.header("etag"), Some(etag.as_str()));
    }
    let r = s.request("GET", "/admin/", &[("Accept-Encoding", "identity")], "");
    r.assert_openpush_error(406);
    assert_page_headers(&r);
    assert_eq!(s.request("GET", "/admin/other.js", &[], "").status, 404);
    let r = s.request("POST", "/admin/admin.js", &[], "");
    assert_eq!((r.status, r.header("allow")), (405, Some("GET")));
}

/// Every API call: (method, path, body).
const CALLS: &[(&str, &str, &str)] = &[
    ("GET", "status", ""),
    ("GET", "setup", ""),
    ("GET", "users", ""),
    ("POST", "users", r#"{"name":"eve","password":"pw"}"#),
    ("DELETE", "users/ann", ""),
    ("PUT", "users/ann/password", r#"{"password":"new"}"#),
    ("POST", "users/ann/devices", r#"{"name":"tablet"}"#),
    ("DELETE", "users/ann/devices/1", ""),
    ("GET", "tokens", ""),
    ("DELETE", "users/ann/tokens/1", ""),
    ("GET", "topics", ""),
    ("DELETE", "topics", r#"{"topic":"news"}"#),
    (
        "PUT",
        "grants",
        r#"{"topic":"news","user":"ben","read":true,"write":true}"#,
    ),
];

#[test]
fn every_api_call_is_an_administrators_and_a_refusal_tells_nothing() {
    let s = start("admin-auth", "");
    let ann = user_id(&s, ADMIN.0);
    let before = miniserde::json::to_string(&ok(&s, "GET", "users", "", 200));
    for &(method, path, body) in CALLS {
        let r = s.request(method, &format!("/admin/api/{path}"), &[], "");
        r.assert_openpush_error(401);
        assert_eq!(
            r.header("www-authenticate"),
            Some("Basic realm=\"openpush\"")
        );
        assert_page_headers(&r);
        call(&s, method, path, &basic(ADMIN.0, "wrong"), body).assert_openpush_error(401);
        let r = call(&s, method, path, &basic(USER.0, USER.1), body);
        r.assert_openpush_error(403);
        assert_page_headers(&r);
        assert!(!r.text().contains(ADMIN.0), "{path}: {}", r.text());
    }
    // Nothing changed: the same users, devices, topics and passwords.
    let after = ok(&s, "GET", "users", "", 200);
    assert_eq!(miniserde::json::to_string(&after), before);
    assert_eq!(int(get(&items(&after)[0], "id")), ann);
    s.wait_log("admin page refused to user 2: not an administrator");
    assert!(s.log_until_now().iter().all(|l| !l.contains(USER.1)));
}

#[test]
fn access_tokens_log_in_but_never_in_the_url() {
    let s = start("admin-tokens", "");
    let token_of = |who: (&str, &str)| {
        let r = s.request(
            "POST",
            "/v1/account/token",
            &[("Authorization", &basic(who.0, who.1))],
            "",
        );
        assert_eq!(r.status, 200, "{}", r.text());
        Obj::parse(&r.text()).str("token").to_owned()
    };
    let token = token_of(ADMIN);
    for auth in [format!("Bearer {token}"), basic("", &token)] {
        assert_eq!(call(&s, "GET", "status", &auth, "").status, 200, "{auth}");
    }
    let bens = token_of(USER);
    call(&s, "GET", "users", &format!("Bearer {bens}"), "").assert_openpush_error(403);
    let encoded = support::push::b64(format!("Bearer {token}").as_bytes());
    let r = s.request("GET", &format!("/admin/api/status?auth={encoded}"), &[], "");
    r.assert_openpush_error(401);
    call(
        &s,
        "GET",
        "status",
        "Bearer tk_notatokenofthisserver123456789",
        "",
    )
    .assert_openpush_error(401);
}

#[test]
fn cross_site_requests_and_bodies_that_are_not_json_are_refused() {
    let s = start("admin-csrf", "");
    let auth = admin();
    for (name, value) in [
        ("Origin", "https://evil.example"),
        ("Origin", "null"),
        ("Sec-Fetch-Site", "cross-site"),
        ("Sec-Fetch-Site", "same-site"),
    ] {
        for (method, path, body) in [
            ("POST", "users", r#"{"name":"eve","password":"pw"}"#),
            ("GET", "users", ""),
        ] {
            let headers = [
                ("Authorization", auth.as_str()),
                ("Content-Type", "application/json"),
                (name, value),
            ];
            let r = s.request(method, &format!("/admin/api/{path}"), &headers, body);
            r.assert_openpush_error(403);
            assert!(r.text().contains("cross-site"), "{}", r.text());
        }
    }
    // Refused before the password is checked: a wrong one is 403 all the same.
    let headers = [
        ("Authorization", "Basic d3Jvbmc6d3Jvbmc="),
        ("Origin", "https://evil.example"),
    ];
    s.request("GET", "/admin/api/users", &headers, "")
        .assert_openpush_error(403);
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ] {
        let headers = [
            ("Authorization", auth.as_str()),
            ("Content-Type", content_type),
        ];
        let body = r#"{"name":"eve","password":"pw"}"#;
        s.request("POST", "/admin/api/users", &headers, body)
            .assert_openpush_error(415);
    }
    let same = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
        ("Origin", "http://test"),
        ("Sec-Fetch-Site", "same-origin"),
    ];
    let r = s.request(
        "POST",
        "/admin/api/users",
        &same,
        r#"{"name":"eve","password":"pw"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(find(&ok(&s, "GET", "users", "", 200), "name", "eve").is_some());
}

#[test]
fn users_are_added_given_new_passwords_and_deleted_and_their_streams_end() {
    let s = start("admin-users", "");
    let made = ok(
        &s,
        "POST",
        "users",
        r#"{"name":"cleo","password":"cleo's pw","admin":false}"#,
        201,
    );
    assert_eq!(text(get(&made, "name")), "cleo");
    assert!(matches!(get(&made, "admin"), Value::Bool(false)));
    let r = call(
        &s,
        "POST",
        "users",
        &admin(),
        r#"{"name":"cleo","password":"x"}"#,
    );
    r.assert_openpush_error(409);
    for (body, status) in [
        (r#"{"name":"a:b","password":"x"}"#, 400),
        (r#"{"name":"42","password":"x"}"#, 400),
        (r#"{"name":"dora","password":""}"#, 400),
        (r#"{"name":"dora"}"#, 400),
        (r#"{"name":"dora","password":"x""#, 400),
        ("[]", 400),
    ] {
        call(&s, "POST", "users", &admin(), body).assert_openpush_error(status);
    }
    let mut stream = subscribe(&s, ("cleo", "cleo's pw"), "garden");
    let cleo = user_id(&s, "cleo");
    ok(
        &s,
        "PUT",
        &format!("users/{cleo}/password"),
        r#"{"password":"new pw"}"#,
        200,
    );
    assert!(
        ends(&mut stream),
        "the stream opened with the old password ends"
    );
    assert_eq!(
        s.request(
            "GET",
            "/garden/json?poll=1",
            &[("Authorization", &basic("cleo", "cleo's pw"))],
            ""
        )
        .status,
        401
    );
    let mut stream = subscribe(&s, ("cleo", "new pw"), "garden");
    let deleted = ok(&s, "DELETE", "users/cleo", "", 200);
    assert_eq!(int(get(&deleted, "deleted_devices")), 0);
    assert!(ends(&mut stream), "the deleted user's stream ends");
    assert!(find(&ok(&s, "GET", "users", "", 200), "name", "cleo").is_none());
    call(&s, "DELETE", "users/cleo", &admin(), "").assert_openpush_error(404);
    let r = call(&s, "DELETE", "users/ann", &admin(), "");
    r.assert_openpush_error(409);
    assert!(r.text().contains("yourself"));
    let logged = s.log_until_now();
    assert!(
        logged
            .iter()
            .any(|l| l.contains("admin page: DELETE /admin/api/users/cleo by user 1"))
    );
    assert!(
        logged
            .iter()
            .all(|l| !l.contains("new pw") && !l.contains("cleo's pw"))
    );
}

#[test]
fn devices_are_added_with_their_key_shown_once_and_deleted() {
    let s = start("admin-devices", "");
    let ben = user_id(&s, USER.0);
    let made = ok(
        &s,
        "POST",
        &format!("users/{ben}/devices"),
        r#"{"name":"tablet"}"#,
        201,
    );
    let key = text(get(&made, "key")).to_owned();
    let device = int(get(&made, "id"));
    let token = s.add_app(&key, "org.example.chat");
    let mut sse = s.subscribe(&key, None);
    let users = ok(&s, "GET", "users", "", 200);
    let listed = &items(get(find(&users, "name", USER.0).unwrap(), "devices"))[0];
    assert_eq!(text(get(listed, "name")), "tablet");
    assert!(matches!(get(listed, "live"), Value::Bool(true)));
    assert_eq!(text(&items(get(listed, "apps"))[0]), "org.example.chat");
    let listing = miniserde::json::to_string(&users);
    assert!(
        !listing.contains(&key) && !listing.contains(&token),
        "{listing}"
    );
    let status = ok(&s, "GET", "status", "", 200);
    let bens = find(get(&status, "users"), "name", USER.0).unwrap();
    assert_eq!(int(get(bens, "streams")), 1);
    assert_eq!(
        int(get(
            find(get(bens, "doors"), "door", "OpenPush").unwrap(),
            "streams"
        )),
        1
    );
    // Another user's device, an id that is no number, a name that is too long: no.
    call(
        &s,
        "DELETE",
        &format!("users/1/devices/{device}"),
        &admin(),
        "",
    )
    .assert_openpush_error(404);
    call(
        &s,
        "DELETE",
        &format!("users/{ben}/devices/{key}"),
        &admin(),
        "",
    )
    .assert_openpush_error(404);
    let long = format!(r#"{{"name":"{}"}}"#, "x".repeat(300));
    call(&s, "POST", &format!("users/{ben}/devices"), &admin(), &long).assert_openpush_error(400);
    ok(
        &s,
        "DELETE",
        &format!("users/{ben}/devices/{device}"),
        "",
        200,
    );
    assert!(
        sse.closed_within(TIMEOUT),
        "the deleted device's stream ends"
    );
    let r = s.request("GET", "/subscribe", &[("X-Openpush-Key", &key)], "");
    assert_eq!(r.status, 401);
}

#[test]
fn topics_are_shared_and_deleted_by_the_name_in_the_body() {
    let s = start("admin-topics", "");
    let r = s.request(
        "PUT",
        "/news",
        &[("Authorization", &basic(ADMIN.0, ADMIN.1))],
        "hello",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let topics = ok(&s, "GET", "topics", "", 200);
    let news = find(&topics, "name", "news").expect("the topic");
    assert_eq!(text(get(news, "owner")), ADMIN.0);
    assert_eq!(int(get(news, "queued")), 1);
    assert!(matches!(get(news, "endpoint"), Value::Bool(false)));
    ok(
        &s,
        "PUT",
        "grants",
        r#"{"topic":"news","user":"ben","read":true,"write":false}"#,
        200,
    );
    let mut bens = subscribe(&s, USER, "news");
    let topics = ok(&s, "GET", "topics", "", 200);
    let news = find(&topics, "name", "news").unwrap();
    let grant = &items(get(news, "grants"))[0];
    assert_eq!(text(get(grant, "user")), USER.0);
    assert!(matches!(get(grant, "read"), Value::Bool(true)));
    assert_eq!(int(get(news, "streams")), 1);
    ok(
        &s,
        "PUT",
        "grants",
        r#"{"topic":"news","user":"ben","read":false,"write":true}"#,
        200,
    );
    assert!(ends(&mut bens), "a grant narrowed to write ends the read");
    for (body, status) in [
        (
            r#"{"topic":"nope","user":"ben","read":true,"write":true}"#,
            404,
        ),
        (
            r#"{"topic":"news","user":"nobody","read":true,"write":true}"#,
            404,
        ),
        (r#"{"topic":"news","user":"ben"}"#, 400),
    ] {
        call(&s, "PUT", "grants", &admin(), body).assert_openpush_error(status);
    }
    let mut anns = subscribe(&s, ADMIN, "news");
    ok(&s, "DELETE", "topics", r#"{"topic":"news"}"#, 200);
    assert!(ends(&mut anns), "a deleted topic's subscriptions end");
    call(&s, "DELETE", "topics", &admin(), r#"{"topic":"news"}"#).assert_openpush_error(404);
    // No route names a topic in its path.
    call(&s, "DELETE", "topics/news", &admin(), "").assert_openpush_error(404);
}

#[test]
fn tokens_are_listed_without_themselves_and_revoked() {
    let s = start("admin-token-list", "");
    let r = s.request(
        "POST",
        "/v1/account/token",
        &[
            ("Authorization", &basic(USER.0, USER.1)),
            ("Content-Type", "application/json"),
        ],
        r#"{"label":"Home Assistant"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let token = Obj::parse(&r.text()).str("token").to_owned();
    let bearer = format!("Bearer {token}");
    let mut stream = JsonStream::open(s.addr, "/home/json", &[("Authorization", &bearer)]);
    stream.opened();
    let r = call(&s, "GET", "tokens", &admin(), "");
    assert_eq!(r.status, 200);
    assert!(!r.text().contains(&token), "{}", r.text());
    let tokens = parse(&r.text());
    let listed = find(&tokens, "label", "Home Assistant").expect("the token");
    assert_eq!(text(get(listed, "user")), USER.0);
    let (user, number) = (int(get(listed, "user_id")), int(get(listed, "id")));
    call(
        &s,
        "DELETE",
        &format!("users/{user}/tokens/{token}"),
        &admin(),
        "",
    )
    .assert_openpush_error(404);
    call(
        &s,
        "DELETE",
        &format!("users/1/tokens/{number}"),
        &admin(),
        "",
    )
    .assert_openpush_error(404);
    ok(
        &s,
        "DELETE",
        &format!("users/{user}/tokens/{number}"),
        "",
        200,
    );
    assert!(ends(&mut stream), "the revoked token's stream ends");
    assert!(items(&ok(&s, "GET", "tokens", "", 200)).is_empty());
    call(&s, "GET", "status", &bearer, "").assert_openpush_error(401);
}

#[test]
fn the_live_status_counts_streams_by_user_and_door_and_the_store() {
    let s = start("admin-status", "anonymous_access = read-write");
    let status = ok(&s, "GET", "status", "", 200);
    assert_eq!(int(get(&status, "streams")), 0);
    assert_eq!(text(get(&status, "version")), env!("CARGO_PKG_VERSION"));
    assert!(matches!(get(&status, "certificate_expires"), Value::Null));
    let _anns = subscribe(&s, ADMIN, "ann_topic");
    let _anns_second = subscribe(&s, ADMIN, "ann_topic");
    let mut anonymous = JsonStream::open(s.addr, "/open_topic/json", &[]);
    anonymous.opened();
    let key = s.add_client(USER.0, "phone");
    let _bens = s.subscribe(&key, None);
    let r = s.request(
        "PUT",
        "/ann_topic",
        &[("Authorization", &admin())],
        "x".repeat(500).as_str(),
    );
    assert_eq!(r.status, 200);
    let status = ok(&s, "GET", "status", "", 200);
    assert_eq!(int(get(&status, "streams")), 4);
    let door = |name: &str| {
        int(get(
            find(get(&status, "doors"), "door", name).unwrap(),
            "streams",
        ))
    };
    assert_eq!(
        (
            door("ntfy"),
            door("OpenPush"),
            door("NextPush"),
            door("autopush")
        ),
        (3, 1, 0, 0)
    );
    let of = |name: &str| {
        int(get(
            find(get(&status, "users"), "name", name).unwrap(),
            "streams",
        ))
    };
    assert_eq!((of(ADMIN.0), of(USER.0)), (2, 1));
    assert_eq!(int(get(&status, "anonymous_streams")), 1);
    assert!(int(get(&status, "queued_messages")) >= 1);
    let store = get(&status, "store");
    assert!(int(get(store, "used_bytes")) >= 500, "{store:?}");
    assert_eq!(int(get(store, "max_bytes")), 32 * 1024 * 1024);
    assert!(int(get(&status, "uptime_secs")) < 60);
}

#[cfg(feature = "tls")]
#[test]
fn the_status_says_when_the_certificate_expires() {
    let config = format!(
        "listen_tls = 127.0.0.1:0\ntls_cert = {}\ntls_key = {}\n",
        support::tls_fixture("first.crt").display(),
        support::tls_fixture("first.key").display()
    );
    let s = start("admin-tls", &config);
    let status = ok(&s, "GET", "status", "", 200);
    // `openssl x509 -enddate` of first.crt: Nov 13 18:52:51 2126 GMT.
    assert_eq!(int(get(&status, "certificate_expires")), 4_950_269_571);
}

#[test]
fn setup_names_the_public_url_or_the_address_reached() {
    let s = start("admin-setup", "");
    let setup = ok(&s, "GET", "setup", "", 200);
    assert_eq!(text(get(&setup, "server_url")), "http://test");
    assert_eq!(text(get(&setup, "autopush_url")), "ws://test/");
    assert!(matches!(get(&setup, "public_url_set"), Value::Bool(false)));
    let s = start(
        "admin-setup-public",
        "public_url = https://push.example.org/\nautopush_path = /ap-1",
    );
    let setup = ok(&s, "GET", "setup", "", 200);
    assert_eq!(text(get(&setup, "server_url")), "https://push.example.org");
    assert_eq!(
        text(get(&setup, "autopush_url")),
        "wss://push.example.org/ap-1"
    );
    assert!(matches!(get(&setup, "ntfy"), Value::Bool(true)));
    let s = start("admin-setup-off", "autopush_path = off");
    assert!(matches!(
        get(&ok(&s, "GET", "setup", "", 200), "autopush_url"),
        Value::Null
    ));
}

#[test]
fn a_topic_named_admin_keeps_its_ntfy_paths_beside_the_page() {
    let s = start("admin-topic-name", "");
    let auth = admin();
    let r = s.request("PUT", "/admin", &[("Authorization", &auth)], "hello");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-security-policy"), None);
    let r = s.request("GET", "/admin/json?poll=1", &[("Authorization", &auth)], "");
    assert_eq!(r.status, 200, "{}", r.text());
    let message = parse(r.text().lines().next().expect("the message"));
    assert_eq!(
        (text(get(&message, "topic")), text(get(&message, "message"))),
        ("admin", "hello")
    );
    let r = s.request("GET", "/admin/", &[("Accept-Encoding", "gzip")], "");
    assert_page_headers(&r);
}
