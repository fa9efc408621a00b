//! Requests that a hostile web page could make a browser send with the browser's own
//! credentials (cross-site request forgery), refused in one place.
//!
//! A browser that once logged in to the server with HTTP Basic (the router's address,
//! opened to look at `/health`, say) keeps the credentials and sends them with every later
//! request to that origin, also with one that a page of another site makes: a form posting
//! `application/x-www-form-urlencoded`, `multipart/form-data` or `text/plain`, or a
//! WebSocket. The page cannot read the answer (the server sends no CORS headers), but it
//! can change things, and it can read what a WebSocket carries. So a request that HTTP
//! Basic in its `Authorization` header authenticates:
//! - is refused with 403 when a browser says that it comes from elsewhere:
//!   `Sec-Fetch-Site: cross-site` or `same-site`, or an `Origin` that is neither the
//!   request's own (its `Host`) nor `public_url`'s. Programs send neither header;
//! - in the OpenPush user and client API, which takes JSON only, is refused with 415 when
//!   it has a body that does not say `Content-Type: application/json`: a page can send
//!   that only after the browser asked the server first (a CORS preflight), which the
//!   server never allows.
//!
//! The ntfy door keeps taking any Content-Type (ntfy's clients publish with `text/plain`,
//! form types or none), so there the first rule holds alone, for publishing and for
//! subscribing alike. Credentials in ntfy's `?auth=` are exempt: a foreign page cannot
//! know them. Requests without a user (`POST /message` with a routing token, Web Push to
//! an endpoint, the Matrix gateway) are not guarded: their capability is in the request,
//! not in the browser, and app servers post with any Content-Type.

use std::net::IpAddr;
use std::time::Instant;

use crate::auth::User;
use crate::error::ApiError;
use crate::http::Request;
use crate::state::ServerState;

/// The user of an OpenPush API request that changes something (`POST`, `PUT`, `DELETE`
/// on `/user…` and `/client…`): a browser's cross-site request is refused before the
/// password is checked, then HTTP Basic, then a body that is not JSON.
pub async fn user_for_change(state: &ServerState, req: &Request) -> Result<User, ApiError> {
    same_origin(state, req)?;
    let user = state.auth.user(&state.store, req).await?;
    json_body(state, req)?;
    Ok(user)
}

/// Refuses a request that a browser sent for a page of another origin.
pub fn same_origin(state: &ServerState, req: &Request) -> Result<(), ApiError> {
    let site = req.header("sec-fetch-site").map(str::trim);
    let cross_site = site.is_some_and(|s| {
        s.eq_ignore_ascii_case("cross-site") || s.eq_ignore_ascii_case("same-site")
    });
    let origin = req.header("origin").map(str::trim);
    let foreign_origin = origin.is_some_and(|o| !own_origin(state, req, o));
    if !cross_site && !foreign_origin {
        return Ok(());
    }
    let origin = origin.map(|o| o.chars().take(100).collect::<String>());
    log_refusal(state, req.client_addr, "cross-site", || {
        format!(
            "cross-site request refused: {} with Origin {origin:?}, Sec-Fetch-Site {site:?}",
            req.method
        )
    });
    Err(ApiError::Forbidden(
        "cross-site requests from browsers are refused (CSRF): call this API from a \
         program, not from a web page of another site"
            .into(),
    ))
}

/// Refuses a body that does not say it is JSON (`application/json`, any parameters).
pub fn json_body(state: &ServerState, req: &Request) -> Result<(), ApiError> {
    if req.body.is_empty() {
        return Ok(());
    }
    let content_type = req.header("content-type");
    let media_type = content_type.map(|ct| ct.split(';').next().unwrap_or("").trim());
    if media_type.is_some_and(|m| m.eq_ignore_ascii_case("application/json")) {
        return Ok(());
    }
    let content_type = content_type.map(|ct| ct.chars().take(100).collect::<String>());
    log_refusal(state, req.client_addr, "not json", || {
        format!(
            "{} refused: its body is not application/json (Content-Type {content_type:?})",
            req.method
        )
    });
    Err(ApiError::UnsupportedMediaType(
        "the request body must be JSON, sent with Content-Type: application/json".into(),
    ))
}

/// Whether `origin` (`scheme://host[:port]`) is the request's own: its `Host`, or the
/// configured `public_url`'s scheme, host and port. `null` (a sandboxed page, a `data:`
/// URL) is nobody's own.
fn own_origin(state: &ServerState, req: &Request, origin: &str) -> bool {
    let Some((scheme, authority)) = split_origin(origin) else {
        return false;
    };
    let host = req
        .header("host")
        .map(|host| normalize(&scheme, &host.trim().to_ascii_lowercase()));
    if host.as_deref() == Some(authority.as_str()) {
        return true;
    }
    state
        .config()
        .public_url
        .as_deref()
        .and_then(split_origin)
        .is_some_and(|public| public == (scheme, authority))
}

/// `(scheme, authority)` of an origin or URL, lower case, without a default port.
fn split_origin(url: &str) -> Option<(String, String)> {
    let url = url.to_ascii_lowercase();
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = rest.split('/').next().unwrap_or("");
    if authority.is_empty() {
        return None;
    }
    Some((scheme.to_owned(), normalize(scheme, authority)))
}

fn normalize(scheme: &str, authority: &str) -> String {
    let default = if scheme == "https" { ":443" } else { ":80" };
    authority
        .strip_suffix(default)
        .unwrap_or(authority)
        .to_owned()
}

/// Logs a refusal: at most one line a minute per address and kind, with a count.
fn log_refusal(
    state: &ServerState,
    addr: Option<IpAddr>,
    kind: &'static str,
    line: impl Fn() -> String,
) {
    let key = (addr.map(crate::limits::AddrKey::of), kind);
    if let Some(unlogged) = state.auth.refusals_to_log(key, Instant::now()) {
        let from = addr.map_or("this host".into(), |a| a.to_string());
        log::info!("{from}: {}{unlogged}", line());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_split_into_scheme_and_authority_without_default_ports() {
        let split = |o: &str| split_origin(o).map(|(s, a)| format!("{s} {a}"));
        assert_eq!(split("http://Test:80").as_deref(), Some("http test"));
        assert_eq!(
            split("https://x.org:443/path").as_deref(),
            Some("https x.org")
        );
        assert_eq!(
            split("https://x.org:8443").as_deref(),
            Some("https x.org:8443")
        );
        assert_eq!(split("http://[::1]:80").as_deref(), Some("http [::1]"));
        assert_eq!(split("null"), None);
        assert_eq!(split("chrome-extension://abc"), None);
        assert_eq!(split("http://"), None);
    }
}
