//! `/application` as a client sees it: a client registers, lists and deletes its apps
//! (by registration id or routing token) with its key alone; tokens are fresh and per client.

use crate::support;

use support::api::{as_client, as_user, assert_unauthorized, message, queued};
use support::*;

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
