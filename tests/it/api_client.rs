//! `/client` as a client sees it: a user creates, lists, reads, renames and deletes its
//! clients (by id or name); a client deletes itself with its key; another user's clients are
//! 404; deleting one revokes its key, its routing tokens and its queued messages.

use crate::support;

use support::api::{as_client, as_user, assert_unauthorized, message, queued};
use support::*;

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
