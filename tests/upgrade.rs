//! Upgrading a database written by openpush 0.1.0 (schema 1, `tests/fixtures/v1.redb`,
//! described in `tests/fixtures/README.md`) to the current schema: the real binary started
//! on a copy of it must say so, keep every user, password, client, key, application, token
//! and queued message (with its id, priority and collapse key), hand out new ids above the
//! old high-water mark, and gain the topic tables; a second start changes nothing. (A
//! schema newer than this binary's is refused: `tests/store_files.rs`.)

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use redb::{ReadableDatabase, TableDefinition};
use support::push::{b64, poll, send};
use support::{Server, basic};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v1.redb");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

const ALICE_KEY: &str = "1bhJbBgVDiyBrzcDgHmhiuK52U2rsGHG";
const ADMIN_KEY: &str = "xbazYwNWD2hvlWby2tNkn0MzMiUKEuLW";
const CHAT_TOKEN: &str = "MnROQ-LHff-pjIcAde5GSRn01J-aDEAk";
const MAIL_TOKEN: &str = "1UY-cSmOfunMa9RJvRIeFfdigS8bBRf0";
const NEWS_TOKEN: &str = "rMEqGBL-DwwbQ9yp2mxtwRz9hOiuG9NZ";

/// The three messages 0.1.0 queued, as the OpenPush stream carries them.
const CHAT_1: &str = r#"{"data":{"text":"hello alice"},"registration_id":"chat"}"#;
const MAIL_2: &str = r#"{"data":{"n":2},"registration_id":"mail","priority":"high"}"#;
const NEWS_3: &str = r#"{"data":{"headline":"v1"},"registration_id":"news"}"#;

/// A meta counter of a database file the server is not running on.
fn meta(db: &Path, key: &str) -> u64 {
    let d = redb::Database::open(db).unwrap();
    let read = d.begin_read().unwrap();
    let table = read.open_table(META).unwrap();
    table.get(key).unwrap().unwrap().value()
}

/// A copy of the fixture, and its schema version and id high-water mark as 0.1.0 left them.
fn fixture_copy(name: &str) -> (PathBuf, u64) {
    let dir = support::temp_dir(name);
    let copy = dir.join("v1.redb");
    std::fs::copy(FIXTURE, &copy).unwrap();
    assert_eq!(meta(&copy, "schema_version"), 1, "the fixture is schema 1");
    (copy.clone(), meta(&copy, "message_id_high_water"))
}

/// The events of a device's stream (from the start, confirming nothing), until it is quiet.
fn events(s: &Server, key: &str) -> Vec<(Option<u64>, String)> {
    let mut sse = s.subscribe(key, None);
    assert_eq!(sse.status, 200, "{}", sse.head);
    let mut out = Vec::new();
    while let Some(e) = sse.next_within(Duration::from_millis(400)) {
        out.push((e.id, e.data));
    }
    out
}

/// Users, passwords, clients, keys, applications and tokens, as 0.1.0 made them.
fn assert_accounts(s: &Server) {
    let alice = s.request(
        "GET",
        "/user",
        &[("Authorization", &basic("alice", "alicepw"))],
        "",
    );
    assert_eq!(alice.status, 200, "alice logs in: {}", alice.text());
    assert_eq!(
        alice.text(),
        format!(
            r#"[{{"id":2,"name":"alice","admin":false,"clients":[{{"id":1,"name":"phone","token":"{ALICE_KEY}","applications":[{{"registration_id":"chat","routing_token":"{CHAT_TOKEN}"}},{{"registration_id":"mail","routing_token":"{MAIL_TOKEN}"}}]}}]}}]"#
        )
    );
    let admin = s.request(
        "GET",
        "/user",
        &[("Authorization", &basic("admin", "adminpw"))],
        "",
    );
    assert_eq!(admin.status, 200, "admin logs in: {}", admin.text());
    assert!(
        admin.text().starts_with(&format!(
            r#"[{{"id":1,"name":"admin","admin":true,"clients":[{{"id":2,"name":"tablet","token":"{ADMIN_KEY}","applications":[{{"registration_id":"news","routing_token":"{NEWS_TOKEN}"}}]}}]}}"#
        )),
        "{}",
        admin.text()
    );
    assert!(
        admin
            .text()
            .contains(r#"{"id":2,"name":"alice","admin":false"#)
    );
    for (user, password) in [
        ("alice", "adminpw"),
        ("admin", "alicepw"),
        ("bob", "alicepw"),
    ] {
        let r = s.request(
            "GET",
            "/user",
            &[("Authorization", &basic(user, password))],
            "",
        );
        assert_eq!(r.status, 401, "{user}:{password}: {}", r.text());
    }
    let clients = s.request(
        "GET",
        "/client",
        &[("Authorization", &basic("alice", "alicepw"))],
        "",
    );
    assert_eq!(clients.status, 200, "{}", clients.text());
    assert!(
        clients.text().contains(r#""name":"phone""#),
        "{}",
        clients.text()
    );
}

#[test]
fn a_schema_1_database_is_upgraded_and_keeps_everything() {
    let fixture_before = std::fs::read(FIXTURE).unwrap();
    let (copy, high_water) = fixture_copy("upgrade");
    assert!(high_water > 3);

    let mut s = Server::start_on_db("upgrade", &copy, "");
    s.wait_log("database upgraded from schema 1 to 3");
    assert_accounts(&s);

    // The queued messages, with their ids, data, registration ids and priority.
    assert_eq!(
        events(&s, ALICE_KEY),
        [(Some(1), CHAT_1.to_owned()), (Some(2), MAIL_2.to_owned())]
    );
    assert_eq!(events(&s, ADMIN_KEY), [(Some(3), NEWS_3.to_owned())]);

    // The old routing tokens still work, and new ids start at the old high-water mark.
    let r = s.post_message(&format!(r#"{{"token":"{CHAT_TOKEN}","data":{{"x":1}}}}"#));
    assert_eq!(r.status, 200, "{}", r.text());
    let posted: u64 = r.json_field("id").parse().unwrap();
    assert!(
        posted > 3 && posted >= high_water,
        "id {posted} under the high-water mark {high_water}"
    );
    let r = send(
        s.addr,
        "POST",
        &format!("/push/{CHAT_TOKEN}"),
        &[],
        b"\x00web push\xff",
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let pushed: u64 = r.header("location").unwrap()["/message/".len()..]
        .parse()
        .unwrap();
    assert!(pushed > posted);
    // The old collapse entry still works: message 2 (collapse key "inbox") is replaced.
    let r = s.post_message(&format!(
        r#"{{"token":"{MAIL_TOKEN}","data":{{"n":3}},"collapse_key":"inbox"}}"#
    ));
    assert_eq!(r.status, 200, "{}", r.text());
    let replaced: u64 = r.json_field("id").parse().unwrap();
    let alice_after = vec![
        (Some(1), CHAT_1.to_owned()),
        (
            Some(posted),
            r#"{"data":{"x":1},"registration_id":"chat"}"#.to_owned(),
        ),
        (
            Some(pushed),
            format!(
                r#"{{"data":"{}","encoding":"base64","registration_id":"chat"}}"#,
                b64(b"\x00web push\xff")
            ),
        ),
        (
            Some(replaced),
            r#"{"data":{"n":3},"registration_id":"mail"}"#.to_owned(),
        ),
    ];
    assert_eq!(events(&s, ALICE_KEY), alice_after);

    // The topic tables exist: the ntfy door works on the upgraded file.
    let alice = basic("alice", "alicepw");
    let r = s.request(
        "PUT",
        "/news",
        &[("Authorization", &alice)],
        "after the upgrade",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = send(s.addr, "POST", "/upAbCdEf123456", &[], b"endpoint");
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(poll(s.addr, &alice, "news").len(), 1);
    assert_eq!(poll(s.addr, &alice, "upAbCdEf123456").len(), 1);

    // A second start: already schema 3, nothing to upgrade, everything kept.
    s.restart_keeping_startup_log();
    let log = s.log_lines(Duration::from_millis(300));
    assert!(
        log.iter().any(|l| l.contains("listening on")),
        "the startup log is kept: {log:?}"
    );
    assert!(
        !log.iter().any(|l| l.contains("upgraded")),
        "a schema-3 file is not upgraded again: {log:?}"
    );
    assert_accounts(&s);
    assert_eq!(events(&s, ALICE_KEY), alice_after);
    assert_eq!(events(&s, ADMIN_KEY), [(Some(3), NEWS_3.to_owned())]);
    assert_eq!(poll(s.addr, &alice, "news").len(), 1);
    let r = s.post_message(&format!(
        r#"{{"token":"{NEWS_TOKEN}","data":{{"headline":"v2"}}}}"#
    ));
    assert_eq!(r.status, 200, "{}", r.text());
    let after_restart: u64 = r.json_field("id").parse().unwrap();
    assert!(
        after_restart > replaced,
        "ids keep increasing across restarts"
    );

    s.kill9();
    assert_eq!(meta(&s.db, "schema_version"), 3);
    assert!(meta(&s.db, "message_id_high_water") > after_restart);
    assert_eq!(
        std::fs::read(FIXTURE).unwrap(),
        fixture_before,
        "the fixture itself is never written"
    );
}

/// A copy made by hand (the way an administrator would move a 0.1.0 database over) is
/// upgraded by the CLI as well as by the server, and then served unchanged.
#[test]
fn the_cli_upgrades_a_schema_1_file_too() {
    let (copy, _) = fixture_copy("upgrade-cli");
    let out = support::run_cli(&["user", "list", "--db", copy.to_str().unwrap()], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let users = String::from_utf8_lossy(&out.stdout);
    assert!(
        users.contains("admin") && users.contains("alice"),
        "{users}"
    );
    assert_eq!(meta(&copy, "schema_version"), 3);

    let s = Server::start_on_db("upgrade-cli", &copy, "");
    let log = s.log_lines(Duration::from_millis(300));
    assert!(!log.iter().any(|l| l.contains("upgraded")), "{log:?}");
    assert_accounts(&s);
    assert_eq!(
        events(&s, ALICE_KEY),
        [(Some(1), CHAT_1.to_owned()), (Some(2), MAIL_2.to_owned())]
    );
    assert_eq!(events(&s, ADMIN_KEY), [(Some(3), NEWS_3.to_owned())]);
}
