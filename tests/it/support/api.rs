//! What the OpenPush v0.1 API's tests (`api_*`, `cli`, `http_framing`) share: requests as a user or
//! a client, a message envelope, the queued-messages gauge and the shape of a 401.

use super::{Response, Server, basic};

/// A request with HTTP Basic credentials (and `Content-Type: application/json` if it has a
/// body).
pub fn as_user(s: &Server, method: &str, path: &str, who: (&str, &str), body: &str) -> Response {
    let auth = basic(who.0, who.1);
    let mut headers = vec![("Authorization", auth.as_str())];
    if !body.is_empty() {
        headers.push(("Content-Type", "application/json"));
    }
    s.request(method, path, &headers, body)
}

/// A request with a client key.
pub fn as_client(s: &Server, method: &str, path: &str, key: &str, body: &str) -> Response {
    s.request(method, path, &[("X-Openpush-Key", key)], body)
}

/// The body of a `POST /message`: `data` is JSON text.
pub fn message(token: &str, data: &str) -> String {
    format!(r#"{{"token":"{token}","data":{data}}}"#)
}

/// `openpush_queued_messages` from `/metrics`.
pub fn queued(s: &Server) -> u64 {
    s.metric("openpush_queued_messages")
}

/// A 401 in the error shape, with the Basic challenge.
pub fn assert_unauthorized(r: &Response) {
    r.assert_error(401);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Basic realm=\"openpush\""),
        "{r:?}"
    );
}
