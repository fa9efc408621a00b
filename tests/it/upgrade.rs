//! Upgrading a database written by an earlier release to the current schema (5): the real
//! binary started on a copy of a fixture (described in `tests/fixtures/README.md`) must say
//! so, keep everything the old binary stored, hand out new ids above the old high-water
//! mark, and gain the tables the old schema lacked; a second start changes nothing, and the
//! CLI upgrades such a file as well. (A schema newer than this binary's is refused:
//! `store_files`.)
//!
//! - `tests/fixtures/v1.redb`, schema 1 (openpush 0.1.0): users, passwords, clients, keys,
//!   applications, tokens and queued messages (with their ids, priority and collapse key);
//!   it gains the topic and autopush tables.
//! - `tests/fixtures/v2.redb`, schema 2 (commit 38ec87d): all of that, plus NextPush
//!   devices, Web Push messages, ntfy topics (owned, shared with grants, endpoint topics
//!   claimed and not) and their messages with ntfy's fields; it gains the autopush tables.
//!   Its tests are in [`schema_2`].
//! - `tests/fixtures/v3.redb`, schema 3 (the last release before ntfy access tokens):
//!   users and an ntfy topic; it gains the token tables.
//! - `tests/fixtures/v4.redb`, schema 4 (commit 1494fce, before ntfy's sequences and
//!   delayed delivery): users, an access token, a device message, ntfy topics and their
//!   messages; it gains the schedule tables. Its test is in [`schema_4`].

use crate::support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use redb::{ReadableDatabase, TableDefinition};
use support::push::{b64, poll, send};
use support::{Server, basic};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v1.redb");
const FIXTURE_V2: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v2.redb");
const FIXTURE_V3: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v3.redb");
const FIXTURE_V4: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v4.redb");
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

/// A copy of a fixture of schema `schema`, and its id high-water mark as the old release
/// left it.
fn fixture_copy(fixture: &str, schema: u64, name: &str) -> (PathBuf, u64) {
    let dir = support::temp_dir(name);
    let copy = dir.join(Path::new(fixture).file_name().unwrap());
    std::fs::copy(fixture, &copy).unwrap();
    assert_eq!(
        meta(&copy, "schema_version"),
        schema,
        "{fixture} is schema {schema}"
    );
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

/// The id that the stream of `key` gives the message whose event data is `data` (a Web
/// Push answer's `Location` does not tell it).
fn id_of(s: &Server, key: &str, data: &str) -> u64 {
    events(s, key)
        .into_iter()
        .find_map(|(id, d)| id.filter(|_| d == data))
        .unwrap_or_else(|| panic!("no event {data}"))
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
    let (copy, high_water) = fixture_copy(FIXTURE, 1, "upgrade");
    assert!(high_water > 3);

    let mut s = Server::start_on_db("upgrade", &copy, "");
    s.wait_log("database upgraded from schema 1 to 5");
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
    let pushed = id_of(
        &s,
        ALICE_KEY,
        &format!(
            r#"{{"data":"{}","encoding":"base64","registration_id":"chat"}}"#,
            b64(b"\x00web push\xff")
        ),
    );
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

    // A second start: already schema 5, nothing to upgrade, everything kept.
    restarted_without_upgrade(&mut s);
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

    stopped_at_current_schema(&mut s, after_restart, FIXTURE, &fixture_before);
}

/// Restarts the server (cleanly); the file, already at schema 5, is not upgraded again.
fn restarted_without_upgrade(s: &mut Server) {
    s.restart_keeping_startup_log();
    let log = s.log_lines(Duration::from_millis(300));
    assert!(
        log.iter().any(|l| l.contains("listening on")),
        "the startup log is kept: {log:?}"
    );
    assert!(
        !log.iter().any(|l| l.contains("upgraded")),
        "a schema-5 file is not upgraded again: {log:?}"
    );
}

/// Stops the server; the copy is at schema 5 with ids above `last_id`, and the fixture
/// it was copied from is as it was.
fn stopped_at_current_schema(s: &mut Server, last_id: u64, fixture: &str, fixture_before: &[u8]) {
    s.kill9();
    assert_eq!(meta(&s.db, "schema_version"), 5);
    assert!(meta(&s.db, "message_id_high_water") > last_id);
    assert_eq!(
        std::fs::read(fixture).unwrap(),
        fixture_before,
        "the fixture itself is never written"
    );
}

/// A schema-3 file gains the token tables in place: its users log in, keep their topics
/// and make access tokens, which work; a second start changes nothing.
#[test]
fn a_schema_3_database_gains_access_tokens_and_keeps_its_users() {
    let fixture_before = std::fs::read(FIXTURE_V3).unwrap();
    let (copy, high_water) = fixture_copy(FIXTURE_V3, 3, "upgrade-v3");
    let mut s = Server::start_on_db("upgrade-v3", &copy, "");
    s.wait_log("database upgraded from schema 3 to 5");
    let alice = basic("alice", "alicepw");
    let r = s.request(
        "POST",
        "/v1/account/token",
        &[("Authorization", &alice)],
        r#"{"label":"after the upgrade"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let bearer = format!("Bearer {}", r.json_field("token"));
    let r = s.request("PUT", "/news", &[("Authorization", &bearer)], "schema four");
    assert_eq!(r.status, 200, "alice's topic is still hers: {}", r.text());
    let id = support::push::Obj::parse(&r.text()).id_number();
    assert!(id >= high_water, "{id} after {high_water}");
    let r = s.request(
        "PUT",
        "/news",
        &[("Authorization", &basic("admin", "adminpw"))],
        "x",
    );
    assert_eq!(r.status, 403, "{}", r.text());
    restarted_without_upgrade(&mut s);
    let r = s.request("GET", "/v1/account", &[("Authorization", &bearer)], "");
    assert!(r.text().contains("after the upgrade"), "{}", r.text());
    stopped_at_current_schema(&mut s, id, FIXTURE_V3, &fixture_before);
}

/// A copy made by hand (the way an administrator would move a 0.1.0 database over) is
/// upgraded by the CLI as well as by the server, and then served unchanged.
#[test]
fn the_cli_upgrades_a_schema_1_file_too() {
    let (copy, _) = fixture_copy(FIXTURE, 1, "upgrade-cli");
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
    assert_eq!(meta(&copy, "schema_version"), 5);

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

/// `tests/fixtures/v2.redb`, written by commit 38ec87d (schema 2) through its CLI and HTTP
/// API; its contents, and the answers below, as that binary served them.
mod schema_2 {
    use std::time::{Duration, Instant};

    use support::api::{as_user, queued};
    use support::push::{Obj, b64, poll, send};
    use support::ws::WsClient;
    use support::{Server, TIMEOUT, basic, stdout};

    use super::{FIXTURE_V2, events, fixture_copy, id_of, meta, support};

    const LAPTOP_KEY: &str = "qC_An1k5hf5pd1xMHQzMVfjToAYZYT78";
    const PHONE_KEY: &str = "oVW2JFDMTfMhQo8yv6-08meP6_q0i8M-";
    /// The NextPush device "Pixel 7" of bob: its deviceId is its client key.
    const DEVICE_KEY: &str = "E1mVCVJaYDcb4hfXYoBR2qgkxaSvU-rY";
    const CHAT_TOKEN: &str = "cgOuopUva0XZm4-XZc-M65uB4v7Q89qe";
    const MAIL_TOKEN: &str = "Q-7M2ZRg5rEQNKvieOF-cd5GbOGHgDvo";
    const NEWS_TOKEN: &str = "UboqEtMYqOdl15Uoge1BIMcwe5doxXq-";
    /// The NextPush app on the device: its registration id is its routing token.
    const NEXTPUSH_TOKEN: &str = "hScYKlT6B-RrUpRLIdLSaeiMOjpF3Y_m";

    /// The Web Push bodies 38ec87d queued: message 4 (`/push/<chat>`), 6 (NextPush), 11
    /// (the endpoint topic of bob) and 12 (the endpoint topic of nobody).
    const CHAT_PUSH_4: &[u8] = b"\x00\x01v2 web push\xfe\xff";
    const NEXTPUSH_6: &[u8] = b"nextpush \xff body";
    const ENDPOINT_11: &[u8] = b"\x00\xff\x01aes128gcm ciphertext\x80";

    /// The queued device messages as the OpenPush stream carries them (message 2 was
    /// replaced by 3, collapse key `inbox`).
    const CHAT_1: &str = r#"{"data":{"text":"hello bob"},"registration_id":"chat"}"#;
    const MAIL_3: &str = r#"{"data":{"n":2},"registration_id":"mail","priority":"high"}"#;
    const NEWS_5: &str = r#"{"data":{"headline":"v2","n":[1,2.50,"x"]},"registration_id":"news"}"#;

    fn chat_push_4() -> String {
        format!(
            r#"{{"data":"{}","encoding":"base64","registration_id":"chat","urgency":"low"}}"#,
            b64(CHAT_PUSH_4)
        )
    }

    fn nextpush_6() -> String {
        format!(
            r#"{{"data":"{}","encoding":"base64","registration_id":"{NEXTPUSH_TOKEN}"}}"#,
            b64(NEXTPUSH_6)
        )
    }

    /// The topic messages as an ntfy poll returns them.
    const OP7: &str = r#"{"id":"op7","time":1796311947,"expires":4102444800,"event":"message","topic":"backups","message":"Backup done","priority":4,"title":"NAS","tags":["floppy_disk","white_check_mark"]}"#;
    const OP8: &str = r#"{"id":"op8","time":1796311947,"expires":4102444800,"event":"message","topic":"backups","message":"Disk 80% full","priority":5,"title":"NAS","tags":["warning"],"click":"https://nas.example.org/"}"#;
    const OP9: &str = r#"{"id":"op9","time":1796311947,"expires":4102444800,"event":"message","topic":"alerts","message":"**bob** was here","priority":1,"content_type":"text/markdown"}"#;
    const OP10: &str = r#"{"id":"op10","time":1796311947,"expires":4102444800,"event":"message","topic":"alerts","message":"admin writes","title":"from admin"}"#;
    const OP11: &str = r#"{"id":"op11","time":1796311947,"expires":4102444800,"event":"message","topic":"upBobPhone0123","message":"AP8BYWVzMTI4Z2NtIGNpcGhlcnRleHSA","encoding":"base64","priority":4}"#;
    const OP12: &str = r#"{"id":"op12","time":1796311947,"expires":4102444800,"event":"message","topic":"upNobody456789","message":"dW5jbGFpbWVk","encoding":"base64"}"#;

    /// `openpush topic list` of the fixture: owners, grants (`admin:w` write only, `bob:r`
    /// read only) and queued messages.
    const TOPICS: &str = "TOPIC\tOWNER\tGRANTS\tQUEUED\n\
                          alerts\tbob\tadmin:w\t2\n\
                          backups\tadmin\tbob:r\t2\n\
                          upBobPhone0123\tbob\t-\t1\n\
                          upNobody456789\t(nobody yet)\t-\t1\n";

    const ADMIN: (&str, &str) = ("admin", "adminpw");
    const BOB: (&str, &str) = ("bob", "bobpw");

    fn texts(messages: &[Obj]) -> Vec<&str> {
        messages.iter().map(|m| m.text.as_str()).collect()
    }

    /// A poll of `topic` as `who`: the message objects' text.
    fn polled(s: &Server, who: (&str, &str), topic: &str) -> Vec<String> {
        let messages = poll(s.addr, &basic(who.0, who.1), topic);
        texts(&messages).into_iter().map(str::to_owned).collect()
    }

    /// `openpush topic list` through the server's control socket.
    fn topic_list(s: &Server) -> String {
        let out = s.cli(&["topic", "list"], "");
        assert!(out.status.success(), "{}", support::stderr(&out));
        stdout(&out)
    }

    /// Users, passwords, clients (NextPush's device too), keys, applications and tokens.
    fn assert_accounts(s: &Server) {
        let admin = as_user(s, "GET", "/user", ADMIN, "");
        assert_eq!(admin.status, 200, "admin logs in: {}", admin.text());
        assert_eq!(
            admin.text(),
            format!(
                r#"[{{"id":1,"name":"admin","admin":true,"clients":[{{"id":1,"name":"laptop","token":"{LAPTOP_KEY}","applications":[{{"registration_id":"news","routing_token":"{NEWS_TOKEN}"}}]}}]}},{{"id":2,"name":"bob","admin":false,"clients":[{{"id":2,"name":"phone"}},{{"id":3,"name":"Pixel 7"}}]}}]"#
            )
        );
        let bob_clients = format!(
            r#"[{{"id":2,"name":"phone","token":"{PHONE_KEY}","applications":[{{"registration_id":"chat","routing_token":"{CHAT_TOKEN}"}},{{"registration_id":"mail","routing_token":"{MAIL_TOKEN}"}}]}},{{"id":3,"name":"Pixel 7","token":"{DEVICE_KEY}","applications":[{{"registration_id":"{NEXTPUSH_TOKEN}","routing_token":"{NEXTPUSH_TOKEN}"}}]}}]"#
        );
        let bob = as_user(s, "GET", "/user", BOB, "");
        assert_eq!(bob.status, 200, "bob logs in: {}", bob.text());
        assert_eq!(
            bob.text(),
            format!(r#"[{{"id":2,"name":"bob","admin":false,"clients":{bob_clients}}}]"#)
        );
        let clients = as_user(s, "GET", "/client", BOB, "");
        assert_eq!(clients.status, 200, "{}", clients.text());
        assert_eq!(clients.text(), bob_clients);
        let clients = as_user(s, "GET", "/client", ADMIN, "");
        assert_eq!(clients.status, 200, "{}", clients.text());
        assert!(
            clients.text().contains(LAPTOP_KEY) && !clients.text().contains(PHONE_KEY),
            "{}",
            clients.text()
        );
        let apps = s.request("GET", "/application", &[("X-Openpush-Key", PHONE_KEY)], "");
        assert_eq!(apps.status, 200, "{}", apps.text());
        for token in [CHAT_TOKEN, MAIL_TOKEN] {
            assert!(apps.text().contains(token), "{}", apps.text());
        }
        let nextpush = as_user(s, "GET", "/index.php/apps/uppush/", BOB, "");
        assert_eq!(nextpush.text(), r#"{"success":true}"#);
        for (user, password) in [("bob", "adminpw"), ("admin", "bobpw"), ("alice", "bobpw")] {
            let r = as_user(s, "GET", "/user", (user, password), "");
            assert_eq!(r.status, 401, "{user}:{password}: {}", r.text());
        }
    }

    /// The device queues as 38ec87d left them, with ids, data, priority and urgency.
    fn assert_device_queues(s: &Server) {
        assert_eq!(
            events(s, PHONE_KEY),
            [
                (Some(1), CHAT_1.to_owned()),
                (Some(3), MAIL_3.to_owned()),
                (Some(4), chat_push_4()),
            ]
        );
        assert_eq!(events(s, LAPTOP_KEY), [(Some(5), NEWS_5.to_owned())]);
        assert_eq!(events(s, DEVICE_KEY), [(Some(6), nextpush_6())]);
    }

    /// The topics' messages with their fields, and who may read them: the owners, bob by
    /// his read grant on `backups`; not admin, whose grant on `alerts` is write only, nor
    /// anyone but bob on his endpoint topic.
    fn assert_topics(s: &Server) {
        assert_eq!(polled(s, ADMIN, "backups"), [OP7, OP8]);
        assert_eq!(polled(s, BOB, "backups"), [OP7, OP8]);
        assert_eq!(polled(s, BOB, "alerts")[..2], [OP9, OP10]);
        let endpoint = poll(s.addr, &basic(BOB.0, BOB.1), "upBobPhone0123");
        assert_eq!(texts(&endpoint), [OP11]);
        assert_eq!(endpoint[0].message_bytes(), ENDPOINT_11);
        for (who, topic) in [(ADMIN, "alerts"), (ADMIN, "upBobPhone0123")] {
            let r = as_user(
                s,
                "GET",
                &format!("/{topic}/json?poll=1&since=all"),
                who,
                "",
            );
            assert_eq!(r.status, 403, "{} reads {topic}: {}", who.0, r.text());
        }
        let r = as_user(s, "GET", "/backups/json?poll=1&since=all", ("bob", "x"), "");
        assert_eq!(r.status, 401, "{}", r.text());
    }

    /// A new autopush user agent on the upgraded file: the uaid is the first of its queues
    /// (`next_uaid_id` starts at 1), a channel gets an endpoint, a push reaches the agent.
    fn autopush_works(s: &Server) -> String {
        let mut ws = WsClient::connect(s.addr, "/", &[]).expect("a 101 upgrade");
        ws.send_text(
            r#"{"messageType":"hello","uaid":"","channelIDs":[],"use_webpush":true,"broadcasts":{}}"#,
        )
        .unwrap();
        let hello = Obj::parse(&ws.text_within(TIMEOUT).expect("a hello answer"));
        assert_eq!(hello.int("status"), 200, "{}", hello.text);
        let uaid = hello.str("uaid").to_owned();
        assert!(uaid.starts_with("8000000000000001"), "{uaid}");
        let channel = "0c1d2e3f-4a5b-4c6d-8e7f-000000000001";
        ws.send_text(&format!(
            r#"{{"messageType":"register","channelID":"{channel}"}}"#
        ))
        .unwrap();
        let register = Obj::parse(&ws.text_within(TIMEOUT).expect("a register answer"));
        assert_eq!(register.int("status"), 200, "{}", register.text);
        let url = register.str("pushEndpoint");
        let path = &url[url.find("/wpush/").expect("a /wpush/ endpoint")..];
        let host = s.addr.to_string();
        let r = send(
            s.addr,
            "POST",
            path,
            &[("Host", &host), ("Content-Encoding", "aes128gcm")],
            b"autopush",
        );
        assert_eq!(r.status, 201, "{}", r.text());
        let n = Obj::parse(&ws.text_within(TIMEOUT).expect("a notification"));
        assert_eq!(n.str("messageType"), "notification", "{}", n.text);
        assert_eq!(n.str("channelID"), channel, "{}", n.text);
        uaid
    }

    /// The NextPush stream of the device: message 6 as a `message` event (written once:
    /// NextPush confirms on write, so it then leaves the queue).
    fn nextpush_delivers(s: &Server) {
        let path = format!("/index.php/apps/uppush/device/{DEVICE_KEY}");
        let mut sse = s.subscribe_with(DEVICE_KEY, &path, &[]);
        assert_eq!(sse.status, 200, "{}", sse.head);
        let mut data = Vec::new();
        while let Some(e) = sse.next_within(Duration::from_millis(400)) {
            data.push(e.data);
        }
        let message = format!(
            r#"{{"type":"message","token":"{NEXTPUSH_TOKEN}","message":"{}"}}"#,
            b64(NEXTPUSH_6)
        );
        assert!(data.contains(&message), "{data:?}");
        drop(sse);
        let deadline = Instant::now() + TIMEOUT;
        while !events(s, DEVICE_KEY).is_empty() {
            assert!(Instant::now() < deadline, "message 6 stays queued");
        }
    }

    #[test]
    fn a_schema_2_database_is_upgraded_and_keeps_everything() {
        let fixture_before = std::fs::read(FIXTURE_V2).unwrap();
        let (copy, high_water) = fixture_copy(FIXTURE_V2, 2, "upgrade-v2");
        assert!(high_water > 12);

        let mut s = Server::start_on_db("upgrade-v2", &copy, "");
        s.wait_log("database upgraded from schema 2 to 5");
        assert_accounts(&s);
        assert_device_queues(&s);
        assert_topics(&s);
        assert_eq!(topic_list(&s), TOPICS);
        assert_eq!(queued(&s), 11, "messages 1 and 3 to 12, no more, no fewer");

        // The collapse entries still work: message 3 (collapse key "inbox") and 4 (Web Push
        // Topic "sync") are replaced; new ids start at the old high-water mark.
        let r = s.post_message(&format!(
            r#"{{"token":"{MAIL_TOKEN}","data":{{"n":3}},"collapse_key":"inbox"}}"#
        ));
        assert_eq!(r.status, 200, "{}", r.text());
        let replaced: u64 = r.json_field("id").parse().unwrap();
        assert!(
            replaced > 12 && replaced >= high_water,
            "id {replaced} under the high-water mark {high_water}"
        );
        let r = send(
            s.addr,
            "POST",
            &format!("/push/{CHAT_TOKEN}"),
            &[("Topic", "sync")],
            b"sync 2",
        );
        assert_eq!(r.status, 201, "{}", r.text());
        let pushed = id_of(
            &s,
            PHONE_KEY,
            &format!(
                r#"{{"data":"{}","encoding":"base64","registration_id":"chat"}}"#,
                b64(b"sync 2")
            ),
        );
        assert!(pushed > replaced);
        let phone_after = vec![
            (Some(1), CHAT_1.to_owned()),
            (
                Some(replaced),
                r#"{"data":{"n":3},"registration_id":"mail"}"#.to_owned(),
            ),
            (
                Some(pushed),
                format!(
                    r#"{{"data":"{}","encoding":"base64","registration_id":"chat"}}"#,
                    b64(b"sync 2")
                ),
            ),
        ];
        assert_eq!(events(&s, PHONE_KEY), phone_after);

        // The grants still say what they said: admin may publish to bob's "alerts", bob
        // may not publish to admin's "backups".
        let r = as_user(&s, "PUT", "/alerts", ADMIN, "after the upgrade");
        assert_eq!(r.status, 200, "{}", r.text());
        let published = Obj::parse(&r.text());
        assert!(published.id_number() > pushed, "{}", published.text);
        let r = as_user(&s, "PUT", "/backups", BOB, "not mine");
        assert_eq!(r.status, 403, "{}", r.text());
        assert_eq!(
            polled(&s, BOB, "alerts"),
            [OP9, OP10, published.text.as_str()]
        );
        // The endpoint topic that belonged to nobody is bob's once he subscribes, with
        // the message an app server left there.
        assert_eq!(polled(&s, BOB, "upNobody456789"), [OP12]);
        let topics_after = TOPICS
            .replace("admin:w\t2", "admin:w\t3")
            .replace("(nobody yet)", "bob");
        assert_eq!(topic_list(&s), topics_after);

        // The autopush tables exist; NextPush still reaches its device.
        let uaid = autopush_works(&s);
        nextpush_delivers(&s);

        // A second start: already schema 5, nothing to upgrade, everything kept.
        super::restarted_without_upgrade(&mut s);
        assert_accounts(&s);
        assert_eq!(events(&s, PHONE_KEY), phone_after);
        assert_eq!(events(&s, LAPTOP_KEY), [(Some(5), NEWS_5.to_owned())]);
        assert_eq!(events(&s, DEVICE_KEY), []);
        assert_topics(&s);
        assert_eq!(
            polled(&s, BOB, "alerts"),
            [OP9, OP10, published.text.as_str()]
        );
        assert_eq!(polled(&s, BOB, "upNobody456789"), [OP12]);
        assert_eq!(topic_list(&s), topics_after);
        let mut ws = WsClient::connect(s.addr, "/", &[]).expect("a 101 upgrade");
        ws.send_text(&format!(
            r#"{{"messageType":"hello","uaid":"{uaid}","channelIDs":[],"use_webpush":true,"broadcasts":{{}}}}"#
        ))
        .unwrap();
        let hello = Obj::parse(&ws.text_within(TIMEOUT).expect("a hello answer"));
        assert_eq!(hello.str("uaid"), uaid, "the uaid is kept: {}", hello.text);
        drop(ws);
        let r = s.post_message(&format!(
            r#"{{"token":"{NEWS_TOKEN}","data":{{"headline":"v3"}}}}"#
        ));
        assert_eq!(r.status, 200, "{}", r.text());
        let after_restart: u64 = r.json_field("id").parse().unwrap();
        assert!(
            after_restart > published.id_number(),
            "ids keep increasing across restarts"
        );

        // The user, client and topic counters go on from where 38ec87d left them: new
        // ones meet nothing of the old ones.
        let r = as_user(
            &s,
            "POST",
            "/user",
            ADMIN,
            r#"{"name":"carol","password":"carolpw"}"#,
        );
        assert_eq!(
            (r.status, r.json_field("id")),
            (201, "3".into()),
            "{}",
            r.text()
        );
        let r = as_user(&s, "POST", "/client", BOB, r#"{"name":"tablet"}"#);
        assert_eq!(
            (r.status, r.json_field("id")),
            (201, "4".into()),
            "{}",
            r.text()
        );
        assert_eq!(events(&s, &r.json_field("token")), []);
        let r = as_user(&s, "PUT", "/fresh", ADMIN, "a new topic");
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(polled(&s, ADMIN, "fresh"), [r.text()]);
        assert_eq!(polled(&s, ADMIN, "backups"), [OP7, OP8]);
        assert_eq!(
            polled(&s, BOB, "alerts"),
            [OP9, OP10, published.text.as_str()]
        );
        assert_eq!(polled(&s, BOB, "upBobPhone0123"), [OP11]);
        assert_eq!(polled(&s, BOB, "upNobody456789"), [OP12]);

        super::stopped_at_current_schema(&mut s, after_restart, FIXTURE_V2, &fixture_before);
    }

    /// A schema-2 file moved over by hand is upgraded by the CLI as well as by the server,
    /// and then served unchanged.
    #[test]
    fn the_cli_upgrades_a_schema_2_file_too() {
        let (copy, _) = fixture_copy(FIXTURE_V2, 2, "upgrade-v2-cli");
        let db = copy.to_str().unwrap();
        let out = support::run_cli(&["user", "list", "--db", db], "");
        assert!(out.status.success(), "{}", support::stderr(&out));
        let users = stdout(&out);
        assert!(users.contains("admin") && users.contains("bob"), "{users}");
        assert_eq!(meta(&copy, "schema_version"), 5);
        let out = support::run_cli(&["topic", "list", "--db", db], "");
        assert!(out.status.success(), "{}", support::stderr(&out));
        assert_eq!(stdout(&out), TOPICS);

        let s = Server::start_on_db("upgrade-v2-cli", &copy, "");
        let log = s.log_lines(Duration::from_millis(300));
        assert!(!log.iter().any(|l| l.contains("upgraded")), "{log:?}");
        assert_accounts(&s);
        assert_device_queues(&s);
        assert_topics(&s);
        assert_eq!(topic_list(&s), TOPICS);
    }
}

/// `tests/fixtures/v4.redb`, written by commit 1494fce (schema 4) through its CLI and HTTP
/// API; its contents, and the answers below, as that binary served them.
mod schema_4 {
    use std::time::Duration;

    use super::support::push::{JsonStream, Obj};
    use super::support::{Server, basic};
    use super::{FIXTURE_V4, events, fixture_copy, meta};

    const TOKEN: &str = "Bearer tk_PYoMZ7vkbWjOQ1d3wcn0EFWg8kyYT";
    const PHONE: &str = "K1rSf7xpW_XnEodvAtvpfSCVhWtTIUdT";
    const HELLO: &str = r#"{"data":{"text":"hello v4"},"registration_id":"chat"}"#;
    /// The chores message as 1494fce answered its publish, with the expiry of the fixture.
    const OP2: &str = r#"{"id":"op2","time":1796680450,"expires":4102444800,"event":"message","topic":"chores","message":"Take out the bins","priority":4,"title":"Tuesday","tags":["wastebasket"]}"#;
    const WEB_PUSH: &[u8] = b"\x00\xffv4 web push\x80";

    fn poll(s: &Server, auth: &str, topic: &str, query: &str) -> Vec<Obj> {
        let path = format!("/{topic}/json?poll=1&{query}");
        let mut stream = JsonStream::open(s.addr, &path, &[("Authorization", auth)]);
        assert_eq!(stream.status, 200, "{path}: {}", stream.head);
        stream.until_closed()
    }

    fn texts(objects: &[Obj]) -> Vec<&str> {
        objects.iter().map(|o| o.text.as_str()).collect()
    }

    /// What 1494fce stored is served as it served it, by its users and alice's token.
    fn assert_kept(s: &Server) {
        assert_eq!(events(s, PHONE), [(Some(1), HELLO.to_owned())]);
        assert_eq!(texts(&poll(s, TOKEN, "chores", "since=all"))[0], OP2);
        let alice = basic("alice", "alicepw");
        let endpoint = poll(s, &alice, "upAlicePhone4567", "since=all");
        assert_eq!(endpoint.len(), 1);
        assert_eq!(endpoint[0].message_bytes(), WEB_PUSH);
        assert_eq!(endpoint[0].str("id"), "op3");
        let account = s.request("GET", "/v1/account", &[("Authorization", TOKEN)], "");
        assert!(
            account.text().contains("\"Home Assistant\""),
            "{}",
            account.text()
        );
    }

    /// A schema-4 file gains the schedule tables in place and keeps everything (the old
    /// chores message alone at first): then a
    /// message of a sequence, a clear of the old message by its id, and a delayed message
    /// that waits across a restart and is sent once, above the old ids.
    #[test]
    fn a_schema_4_database_gains_sequences_and_delayed_delivery_and_keeps_everything() {
        let fixture_before = std::fs::read(FIXTURE_V4).unwrap();
        let (copy, high_water) = fixture_copy(FIXTURE_V4, 4, "upgrade-v4");
        let mut s = Server::start_on_db("upgrade-v4", &copy, "min_delay_secs = 0");
        s.wait_log("database upgraded from schema 4 to 5");
        assert_kept(&s);
        assert_eq!(poll(&s, TOKEN, "chores", "since=all").len(), 1);

        let put = |s: &Server, path: &str, headers: &[(&str, &str)], body: &str| {
            let mut all = vec![("Authorization", TOKEN)];
            all.extend_from_slice(headers);
            let r = s.request("PUT", path, &all, body);
            assert_eq!(r.status, 200, "{path}: {}", r.text());
            Obj::parse(&r.text())
        };
        let cleared = put(&s, "/chores/op2/clear", &[], "");
        assert_eq!(cleared.str("sequence_id"), "op2");
        assert!(cleared.id_number() >= high_water, "above the old ids");
        let later = put(&s, "/chores/wednesday", &[("In", "2s")], "Recycling");
        super::restarted_without_upgrade(&mut s);
        let since_clear = format!("since={}&scheduled=1", cleared.str("id"));
        let waiting = poll(&s, TOKEN, "chores", &since_clear);
        assert_eq!(texts(&waiting), [later.text.as_str()]);

        let mut stream = JsonStream::open(s.addr, "/chores/json", &[("Authorization", TOKEN)]);
        stream.opened();
        let sent = stream.message();
        assert_eq!(sent.str("message"), "Recycling");
        assert_eq!(sent.str("sequence_id"), "wednesday");
        assert!(sent.id_number() > cleared.id_number());
        stream.assert_no_message(Duration::from_millis(500));
        let all = poll(&s, TOKEN, "chores", "since=all");
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].text, OP2);
        assert_kept(&s);
        super::stopped_at_current_schema(&mut s, sent.id_number(), FIXTURE_V4, &fixture_before);
        assert_eq!(meta(&s.db, "next_token_id"), 2, "the token counter is kept");
    }
}
