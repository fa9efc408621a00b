//! Topic ownership and the `openpush topic` commands, against the real binary: who may
//! read and write a topic, grants given and taken back from the CLI, a deleted topic's
//! subscribers cut off and its messages gone, a deleted user's topics gone with it.

use crate::support;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::{Server, TIMEOUT, basic, closed_within, read_more};

fn publish(s: &Server, auth: &str, topic: &str, text: &str) -> u16 {
    s.request(
        "POST",
        &format!("/{topic}"),
        &[("Authorization", auth)],
        text,
    )
    .status
}

fn poll(s: &Server, auth: &str, topic: &str) -> (u16, String) {
    let r = s.request(
        "GET",
        &format!("/{topic}/json?poll=1&since=all"),
        &[("Authorization", auth)],
        "",
    );
    (r.status, r.text())
}

#[test]
fn grants_from_the_cli_open_a_topic_to_another_user_and_take_it_back() {
    let s = Server::start("topic-grants");
    s.add_user("alice", "apw");
    s.add_user("bob", "bpw");
    let (alice, bob) = (basic("alice", "apw"), basic("bob", "bpw"));
    assert_eq!(publish(&s, &alice, "family", "dinner"), 200);
    assert_eq!(publish(&s, &bob, "family", "hi"), 403);
    assert_eq!(poll(&s, &bob, "family").0, 403);

    s.cli_ok(&["topic", "grant", "family", "bob", "--read"], "");
    let (status, body) = poll(&s, &bob, "family");
    assert_eq!(status, 200);
    assert!(body.contains("\"message\":\"dinner\""), "{body}");
    assert_eq!(publish(&s, &bob, "family", "hi"), 403, "read only");

    s.cli_ok(
        &["topic", "grant", "family", "bob", "--read", "--write"],
        "",
    );
    assert_eq!(publish(&s, &bob, "family", "hi"), 200);
    let listing = s.cli_ok(&["topic", "list"], "");
    assert!(listing.contains("family\talice\tbob:rw\t2"), "{listing}");

    s.cli_ok(&["topic", "grant", "family", "bob"], "");
    assert_eq!(poll(&s, &bob, "family").0, 403, "grant taken back");
    let out = s.cli(&["topic", "grant", "nosuch", "bob", "--read"], "");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such topic"));
}

#[test]
fn deleting_a_topic_ends_its_streams_and_drops_its_messages() {
    let s = Server::start("topic-del");
    s.add_user("alice", "apw");
    let alice = basic("alice", "apw");
    assert_eq!(publish(&s, &alice, "news", "one"), 200);
    let mut stream = TcpStream::connect(s.addr).unwrap();
    write!(
        stream,
        "GET /news/json HTTP/1.1\r\nHost: t\r\nAuthorization: {alice}\r\n\r\n"
    )
    .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut seen = Vec::new();
    let deadline = Instant::now() + TIMEOUT;
    while !String::from_utf8_lossy(&seen).contains("\"event\":\"open\"") {
        assert!(read_more(&mut stream, &mut seen, deadline), "no open event");
    }
    s.cli_ok(&["topic", "del", "news"], "");
    assert!(
        closed_within(&mut stream, &mut seen, TIMEOUT),
        "the stream stayed open"
    );
    // The name is free again: alice takes it anew, and the old message is gone.
    let (status, body) = poll(&s, &alice, "news");
    assert_eq!(status, 200);
    assert!(!body.contains("\"one\""), "{body}");
}

#[test]
fn a_deleted_users_topics_go_with_it() {
    let s = Server::start("topic-user-del");
    s.add_user("admin", "pw");
    s.add_user("alice", "apw");
    s.add_user("bob", "bpw");
    assert_eq!(publish(&s, &basic("alice", "apw"), "alices", "x"), 200);
    assert_eq!(publish(&s, &basic("bob", "bpw"), "alices", "y"), 403);
    s.cli_ok(&["user", "del", "alice"], "");
    assert!(!s.cli_ok(&["topic", "list"], "").contains("alices"));
    assert_eq!(publish(&s, &basic("bob", "bpw"), "alices", "y"), 200);
    let (_, body) = poll(&s, &basic("bob", "bpw"), "alices");
    assert!(body.contains("\"y\"") && !body.contains("\"x\""), "{body}");
}
