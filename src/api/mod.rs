//! The request router, and the OpenPush v0.1 API's route table.
//!
//! [`handle`] applies the per-address rate limit, then asks each front door's route table
//! in turn — autopush (`crate::autopush`: WebSocket upgrades at its path, `/wpush/…`),
//! OpenPush v0.1 (here), Web Push endpoints (`crate::webpush`), the Matrix
//! gateway (`crate::matrix`), NextPush (`crate::nextpush`), ntfy (`crate::ntfy`, last: its `/<topic>` takes any free
//! name) — and renders errors once. Handlers return `Result<Outcome, ApiError>`. A path
//! that exists with another method gets 405 and `Allow`; anything else 404.

pub mod application;
pub mod client;
pub mod message;
mod redaction;
pub mod subscribe;
pub mod user;

use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::Instant;

use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::limits::AddrKey;
use crate::metrics;
use crate::state::ServerState;
use redb::ReadableTableMetadata;

/// The API version the original OpenPush server reports.
pub const API_VERSION: &str = "0.1.1";

pub enum Outcome {
    Respond(Response),
    /// A stream: its response head, what it follows, and who opened it.
    Stream(Vec<u8>, crate::stream::Subscription, crate::hub::Reader),
    /// The connection changes protocol (a WebSocket upgrade): the door's task takes it.
    Upgrade(Upgrade),
}

/// A door's task for an upgraded connection; it writes the response head itself.
pub type Upgrade = Box<
    dyn FnOnce(
        async_io::Async<std::net::TcpStream>,
        crate::state::ConnectionGuard,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>,
>;

impl From<Response> for Outcome {
    fn from(r: Response) -> Outcome {
        Outcome::Respond(r)
    }
}

pub async fn handle(state: &Rc<ServerState>, mut req: Request, peer: SocketAddr) -> Outcome {
    metrics::bump(&state.counters.requests);
    req.client_addr = client_addr(state, &req, peer.ip());
    req.via_trusted_proxy = state.is_trusted_proxy(peer.ip());
    let limited = match req.client_addr {
        Some(ip) => state
            .request_rate
            .take(AddrKey::of(ip), Instant::now())
            .map_err(|wait| (ip, wait)),
        None => Ok(()),
    };
    let outcome = match limited {
        Ok(()) => route(state, &req).await,
        Err((ip, wait)) => {
            // A flood of refusals is one line a minute per address, with their count.
            let key = AddrKey::of(ip);
            if let Some(unlogged) = state.request_rate.refusal_to_log(key, Instant::now()) {
                log::info!("{ip}: request rate limit{unlogged}");
            }
            Err(ApiError::TooMany {
                detail: "too many requests from your address".into(),
                retry_after_secs: wait.as_secs() + 1,
            })
        }
    };
    match outcome {
        Ok(outcome) => outcome,
        Err(e) => {
            let status = e.status();
            if status >= 500 {
                log::warn!(
                    "{peer} {} {}: {status}",
                    req.method,
                    redaction::loggable(&req.path)
                );
            } else {
                log::debug!(
                    "{peer} {} {}: {status}",
                    req.method,
                    redaction::loggable(&req.path)
                );
            }
            Outcome::Respond(e.to_response())
        }
    }
}

async fn route(state: &Rc<ServerState>, req: &Request) -> Result<Outcome, ApiError> {
    let segments: Vec<String> = req
        .path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect::<Option<_>>()
        .ok_or(ApiError::BadRequest(
            "invalid percent-encoding in the path".into(),
        ))?;
    let path: Vec<&str> = segments.iter().map(String::as_str).collect();
    let path = path.as_slice();
    if let Some(outcome) = crate::autopush::route(state, req, path).await {
        return outcome;
    }
    if let Some(outcome) = openpush(state, req, path).await {
        return outcome;
    }
    if let Some(outcome) = crate::webpush::route(state, req, path).await {
        return outcome;
    }
    if let Some(outcome) = crate::matrix::route(state, req, path).await {
        return outcome;
    }
    if let Some(outcome) = crate::nextpush::route(state, req, path).await {
        return outcome;
    }
    if let Some(outcome) = crate::ntfy::route(state, req, path).await {
        return outcome;
    }
    Err(ApiError::NotFound("no such endpoint"))
}

/// The OpenPush v0.1 routes (and the server's own); `None` for a path that is not one.
/// Guards: `user` = HTTP Basic (admins for other users), `client` = `X-Openpush-Key`,
/// `token` = the routing token in the body, `local` = loopback unless `metrics_public`.
async fn openpush(
    state: &Rc<ServerState>,
    req: &Request,
    path: &[&str],
) -> Option<Result<Outcome, ApiError>> {
    let method = req.method.as_str();
    Some(Ok(match (method, path) {
        // none
        ("GET", ["version"]) => version().into(),
        ("GET", ["health"]) => return Some(health(state).await),
        // local
        ("GET", ["metrics"]) => return Some(metrics(state, req).await),
        // user
        ("GET", ["user"]) => return Some(user::list(state, req).await),
        ("POST", ["user"]) => return Some(user::create(state, req).await),
        ("GET", ["user", id]) => return Some(user::get(state, req, id).await),
        ("POST" | "PUT", ["user", id]) => return Some(user::update(state, req, id).await),
        ("DELETE", ["user", id]) => return Some(user::delete(state, req, id).await),
        ("GET", ["client"]) => return Some(client::list(state, req).await),
        ("POST", ["client"]) => return Some(client::create(state, req).await),
        // client
        ("DELETE", ["client"]) => return Some(client::delete_self(state, req).await),
        // user
        ("GET", ["client", id]) => return Some(client::get(state, req, id).await),
        ("PUT" | "POST", ["client", id]) => return Some(client::rename(state, req, id).await),
        ("DELETE", ["client", id]) => return Some(client::delete(state, req, id).await),
        // client
        ("GET", ["application"]) => return Some(application::list(state, req).await),
        ("POST", ["application"]) => return Some(application::register(state, req).await),
        ("DELETE", ["application", id]) => {
            return Some(application::delete(state, req, id).await);
        }
        ("GET", ["subscribe"]) => return Some(subscribe::start(state, req).await),
        // token
        ("POST", ["message"]) => {
            return Some(crate::delivery::counted(state, message::post(state, req)).await);
        }
        (_, path) => return allowed(path).map(|allow| Err(ApiError::MethodNotAllowed(allow))),
    }))
}

/// The address limits apply to: the peer, or for a trusted proxy the right-most address
/// in `X-Forwarded-For` (all its lines, in order, as one list) that is not itself a trusted
/// proxy; `None` for the host itself. Proxies append on the right, so everything left of
/// that is the client's own claim. An entry there that is no address counts as the
/// unspecified address (one shared budget, never local), not as the next one to its left.
fn client_addr(state: &ServerState, req: &Request, peer: IpAddr) -> Option<IpAddr> {
    if !state.is_trusted_proxy(peer) {
        return Some(peer);
    }
    let entries: Vec<&str> = req
        .header_values("x-forwarded-for")
        .flat_map(|line| line.split(','))
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .collect();
    for entry in entries.into_iter().rev() {
        // Some proxies add the port: `192.0.2.1:443`, `[2001:db8::1]:443`.
        let ip = entry
            .parse::<IpAddr>()
            .or_else(|_| entry.parse::<SocketAddr>().map(|a| a.ip()));
        match ip {
            Ok(ip) if state.is_trusted_proxy(ip) => {}
            Ok(ip) => return Some(ip),
            Err(_) => return Some(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)),
        }
    }
    None
}

fn allowed(path: &[&str]) -> Option<&'static str> {
    Some(match path {
        ["version"] | ["health"] | ["metrics"] => "GET",
        ["user"] => "GET, POST",
        ["user", _] => "GET, POST, PUT, DELETE",
        ["client"] => "GET, POST, DELETE",
        ["client", _] => "GET, PUT, POST, DELETE",
        ["application"] => "GET, POST",
        ["application", _] => "DELETE",
        ["message"] => "POST",
        ["subscribe"] => "GET",
        _ => return None,
    })
}

fn version() -> Response {
    Response::json(200, format!("{{\"version\":\"{API_VERSION}\"}}"))
}

/// 200 when the event loop and the store both answer; 503 otherwise.
async fn health(state: &Rc<ServerState>) -> Result<Outcome, ApiError> {
    state.store.read(|_| Ok(())).await?;
    Ok(Response::json(200, "{\"status\":\"ok\"}").into())
}

/// Local callers only, unless `metrics_public`: the host itself, or a loopback client named
/// by a trusted proxy; a request a local proxy forwards from the internet is not local.
async fn metrics(state: &Rc<ServerState>, req: &Request) -> Result<Outcome, ApiError> {
    let local = req.client_addr.is_none_or(|ip| ip.is_loopback());
    if !state.config().metrics_public && !local {
        return Err(ApiError::NotFound("no such endpoint"));
    }
    let queued = state
        .store
        .read(|t| Ok(t.open_table(crate::store::tables::MESSAGES)?.len()?))
        .await
        .ok();
    let text = metrics::render(&metrics::Snapshot {
        counters: &state.counters,
        commits: state.store.commit_stats(),
        connections: state.connections(),
        streams: state.hub.len(),
        queued_messages: queued,
    });
    Ok(Response::new(200)
        .with_body("text/plain; version=0.0.4", text)
        .into())
}

/// The request body as a miniserde type; what is wrong goes into the 400's detail.
pub fn body<T: miniserde::Deserialize>(req: &Request, expected: &str) -> Result<T, ApiError> {
    let text = std::str::from_utf8(&req.body)
        .map_err(|_| ApiError::BadRequest("the request body is not UTF-8".into()))?;
    if let Err(e) = crate::json::compact(text.as_bytes()) {
        return Err(ApiError::BadRequest(format!(
            "the request body is not valid JSON: {e}"
        )));
    }
    miniserde::json::from_str(text)
        .map_err(|_| ApiError::BadRequest(format!("the request body must be {expected}")))
}

pub fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            // Hex digits only: `from_str_radix` would also take a sign, as in "%+2".
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("Phone%201").as_deref(), Some("Phone 1"));
        assert_eq!(percent_decode("a%2"), None);
        assert_eq!(percent_decode("%ff"), None);
        // Regression: a sign was taken as part of the escape.
        assert_eq!(percent_decode("%+2"), None);
    }
}
