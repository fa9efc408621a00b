//! The error paths of `POST /message`: bodies that are not the envelope, data that is not
//! an object or over 4096 bytes (compact), unknown tokens, bad fields; none of them stores
//! anything. Delivery lives in `delivery`.

use crate::support;

use support::api::{message, queued};
use support::*;

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
