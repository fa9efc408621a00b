//! The size limits of an ntfy message's fields (title, tags, click, icon, actions) and of
//! all of them together, over every way ntfy's clients publish: headers (`X-Title`,
//! `Title`, `t` …), query parameters (`?title=`, `?t=` …) and the JSON object to `/`,
//! with and without a user. A refusal stores nothing.

use crate::support;

use support::push::{JsonStream, Obj};
use support::{Response, Server, basic};

const ENDPOINT: &str = "upAbCdEf123456";

/// A field, its default limit in bytes, and the names ntfy takes it by.
struct Field {
    name: &'static str,
    limit: usize,
    headers: &'static [&'static str],
    params: &'static [&'static str],
}

const FIELDS: &[Field] = &[
    Field {
        name: "title",
        limit: 1024,
        headers: &["X-Title", "Title", "t"],
        params: &["title", "t"],
    },
    Field {
        name: "tags",
        limit: 512,
        headers: &["X-Tags", "Tags", "ta"],
        params: &["tags", "ta"],
    },
    Field {
        name: "click",
        limit: 2048,
        headers: &["X-Click", "Click"],
        params: &["click"],
    },
    Field {
        name: "icon",
        limit: 2048,
        headers: &["X-Icon", "Icon"],
        params: &["icon"],
    },
];

fn server(name: &str, config: &str) -> (Server, String) {
    let s = Server::start_with(name, config);
    s.add_user("alice", "apw");
    (s, basic("alice", "apw"))
}

/// The message objects a poll of `topic` answers.
fn stored(s: &Server, auth: &str, topic: &str) -> Vec<Obj> {
    let mut stream = JsonStream::open(
        s.addr,
        &format!("/{topic}/json?poll=1&since=all"),
        &[("Authorization", auth)],
    );
    assert_eq!(stream.status, 200, "{}", stream.head);
    stream
        .lines_until_closed()
        .iter()
        .map(|line| Obj::parse(line))
        .collect()
}

/// `value` as the JSON member `name`: a list of one tag for `tags`, else a string.
fn json_member(name: &str, value: &str) -> String {
    if name == "tags" {
        format!(r#""tags":["{value}"]"#)
    } else {
        format!(r#""{name}":"{value}""#)
    }
}

/// Publishes `value` as `field` in every form; each answer with how it was sent.
fn publish_every_way(
    s: &Server,
    auth: &str,
    field: &Field,
    value: &str,
) -> Vec<(String, Response)> {
    let mut answers = Vec::new();
    for header in field.headers {
        let r = s.request(
            "PUT",
            "/news",
            &[("Authorization", auth), (header, value)],
            "m",
        );
        answers.push((format!("header {header}"), r));
    }
    for param in field.params {
        let r = s.request(
            "POST",
            &format!("/news?{param}={value}"),
            &[("Authorization", auth)],
            "m",
        );
        answers.push((format!("?{param}="), r));
    }
    let body = format!(
        r#"{{"topic":"news","message":"m",{}}}"#,
        json_member(field.name, value)
    );
    let r = s.request("POST", "/", &[("Authorization", auth)], &body);
    answers.push(("JSON".into(), r));
    answers
}

// Regression: title, tags, click, icon and actions took any size (20,000 bytes and more),
// while a message over 4,096 bytes was 413.
#[test]
fn each_field_over_its_limit_is_413_in_every_publish_form() {
    let (s, alice) = server("ntfy-field-limits", "");
    let mut accepted = 0;
    for field in FIELDS {
        for (how, r) in publish_every_way(&s, &alice, field, &"a".repeat(field.limit)) {
            assert_eq!(
                r.status,
                200,
                "{} at its limit, {how}: {}",
                field.name,
                r.text()
            );
            accepted += 1;
        }
        for (how, r) in publish_every_way(&s, &alice, field, &"a".repeat(field.limit + 1)) {
            r.assert_error(413);
            assert!(r.text().contains(field.name), "{how}: {}", r.text());
        }
        // Bytes, not characters.
        let wide = "é".repeat(field.limit / 2 + 1);
        let body = format!(r#"{{"topic":"news",{}}}"#, json_member(field.name, &wide));
        s.request("POST", "/", &[("Authorization", &alice)], &body)
            .assert_error(413);
    }
    assert_eq!(
        stored(&s, &alice, "news").len(),
        accepted,
        "a refusal stored nothing"
    );

    // Without a user, to an endpoint topic: the same limits.
    let body = format!(
        r#"{{"topic":"{ENDPOINT}","title":"{}"}}"#,
        "t".repeat(60_000)
    );
    s.request("POST", "/", &[], &body).assert_error(413);
    let body = format!(r#"{{"topic":"{ENDPOINT}","title":"{}"}}"#, "t".repeat(1024));
    assert_eq!(s.request("POST", "/", &[], &body).status, 200);
}

#[test]
fn actions_are_bounded_in_bytes_and_in_number() {
    let (s, alice) = server("ntfy-action-limits", "");
    let view =
        |url_bytes: usize| format!("view, Open, https://example.com/{}", "p".repeat(url_bytes));
    let publish = |headers: &[(&str, &str)], body: &str| {
        let mut all = vec![("Authorization", alice.as_str())];
        all.extend_from_slice(headers);
        s.request("POST", "/news", &all, body)
    };
    assert_eq!(publish(&[("X-Actions", &view(1900))], "m").status, 200);
    let r = publish(&[("X-Actions", &view(2100))], "m");
    r.assert_error(413);
    assert!(r.text().contains("actions"), "{}", r.text());
    let r = s.request(
        "POST",
        &format!("/news?actions={}", view(2100).replace(' ', "%20")),
        &[("Authorization", &alice)],
        "m",
    );
    r.assert_error(413);
    let json = |actions: &str| format!(r#"{{"topic":"news","actions":{actions}}}"#);
    let long = format!(
        r#"[{{"action":"view","label":"Open","url":"https://example.com/{}"}}]"#,
        "p".repeat(2100)
    );
    s.request("POST", "/", &[("Authorization", &alice)], &json(&long))
        .assert_error(413);
    // At most three, as ntfy (and an Android notification's buttons).
    let three = [
        "view, A, https://a.example",
        "view, B, https://b.example",
        "view, C, https://c.example",
    ]
    .join("; ");
    assert_eq!(publish(&[("X-Actions", &three)], "m").status, 200);
    let four = format!("{three}; view, D, https://d.example");
    publish(&[("X-Actions", &four)], "m").assert_error(400);
    let four = r#"[{"action":"view","label":"A","url":"https://a.example"},{"action":"view","label":"B","url":"https://b.example"},{"action":"view","label":"C","url":"https://c.example"},{"action":"view","label":"D","url":"https://d.example"}]"#;
    s.request("POST", "/", &[("Authorization", &alice)], &json(four))
        .assert_error(400);
    assert_eq!(stored(&s, &alice, "news").len(), 2);
}

#[test]
fn the_fields_together_are_bounded_and_every_limit_is_configurable() {
    let (s, alice) = server("ntfy-fields-total", "");
    let body = format!(
        r#"{{"topic":"news","message":"m","title":"{}","tags":["{}"],"click":"{}","icon":"{}"}}"#,
        "t".repeat(1024),
        "g".repeat(512),
        "c".repeat(2048),
        "i".repeat(2048)
    );
    let r = s.request("POST", "/", &[("Authorization", &alice)], &body);
    r.assert_error(413);
    assert!(r.text().contains("4096"), "{}", r.text());
    // Escapes count as they are stored.
    let quotes = "\\\"".repeat(1000);
    let body =
        format!(r#"{{"topic":"news","title":"{quotes}","click":"{quotes}","icon":"{quotes}"}}"#);
    s.request("POST", "/", &[("Authorization", &alice)], &body)
        .assert_error(413);
    assert!(stored(&s, &alice, "news").is_empty());

    let (s, alice) = server(
        "ntfy-fields-config",
        "max_title_bytes = 8\nmax_tags_bytes = 8\nmax_url_bytes = 16\nmax_actions_bytes = 64\nmax_fields_bytes = 80",
    );
    let put = |headers: &[(&str, &str)]| {
        let mut all = vec![("Authorization", alice.as_str())];
        all.extend_from_slice(headers);
        s.request("PUT", "/news", &all, "m")
    };
    assert_eq!(put(&[("Title", "12345678")]).status, 200);
    put(&[("Title", "123456789")]).assert_error(413);
    put(&[("Tags", "1234,56789")]).assert_error(413);
    put(&[("Click", "https://x.example/")]).assert_error(413);
    put(&[("Actions", "view, Open, https://x.example/1234567890")]).assert_error(413);
    put(&[
        ("Title", "12345678"),
        ("Tags", "a,b"),
        ("Click", "https://x.example"),
        ("Icon", "https://i.example"),
    ])
    .assert_error(413);
}

/// Web Push into a topic carries the body alone: the presentation headers are not stored.
#[test]
fn web_push_to_an_endpoint_topic_stores_no_fields() {
    let (s, alice) = server("ntfy-webpush-fields", "");
    let title = "t".repeat(2000);
    let r = s.request(
        "POST",
        &format!("/{ENDPOINT}?title={title}"),
        &[
            ("Content-Encoding", "aes128gcm"),
            ("Title", &title),
            ("Tags", &title),
        ],
        "opaque",
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let messages = stored(&s, &alice, ENDPOINT);
    assert_eq!(messages.len(), 1);
    for field in ["title", "tags", "click", "icon", "actions"] {
        assert!(!messages[0].has(field), "{}", messages[0].text);
    }
}
