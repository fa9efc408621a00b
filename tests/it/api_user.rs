//! `/user` as a client sees it: the first user is an administrator, who creates, reads,
//! renames and deletes users (with their clients, apps and queued messages); a user sees
//! only itself; password changes beat the login cache; credentials never leave the server;
//! every failed login is the same 401 with a Basic challenge.

use crate::support;

use support::api::{as_client, as_user, assert_unauthorized, message, queued};
use support::*;

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
    // (`security`).
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
    // Each answer is checked for what it must be, so that the scan reads real answers.
    let responses = [
        (201, created),
        (200, as_user(&s, "GET", "/user", ann, "")),
        (200, as_user(&s, "GET", "/user/ann", ann, "")),
        (200, as_user(&s, "GET", &format!("/user/{bob_id}"), ann, "")),
        (
            200,
            as_user(&s, "PUT", "/user/bob", ann, r#"{"password":"pw-bob2-XYZ"}"#),
        ),
        (
            409,
            as_user(
                &s,
                "POST",
                "/user",
                ann,
                r#"{"name":"bob","password":"pw-dup-XYZ"}"#,
            ),
        ),
        (401, as_user(&s, "GET", "/user", ("ann", "wrong-XYZ"), "")),
    ];
    for (status, r) in &responses {
        let text = r.text();
        assert_eq!(r.status, *status, "{text}");
        assert!(
            !text.contains("XYZ") && !text.contains("argon2") && !text.contains("password\":"),
            "{text}"
        );
    }
    let [_, (_, users), (_, ann_user), (_, bob), ..] = &responses;
    assert!(
        users.text().contains("\"ann\"") && users.text().contains("\"bob\""),
        "{}",
        users.text()
    );
    assert_eq!(ann_user.json_field("name"), "ann");
    assert_eq!(bob.json_field("name"), "bob");
    // The new password took: the change answered was a real one.
    let r = as_user(&s, "GET", "/user/bob", ("bob", "pw-bob2-XYZ"), "");
    assert_eq!(r.status, 200, "{}", r.text());
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
