//! The OpenPush v0.1 API's own routes and routing: `GET /version`, and 404 or 405 (with
//! `Allow`) in the error shape for anything else.

use crate::support;

use support::*;

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
    for path in ["/user/1/extra", "/a/b/c"] {
        s.request("GET", path, &[], "").assert_openpush_error(404);
    }
    // A path the ntfy door takes (a topic, `/`) answers in ntfy's form.
    for path in ["/nope", "/", "/messages"] {
        s.request("GET", path, &[], "")
            .assert_ntfy_error(404, 40401);
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
        r.assert_openpush_error(405);
        assert_eq!(r.header("allow"), Some(allow), "{method} {path}");
    }
}
