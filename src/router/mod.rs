//! The request router: the only module that names the doors.
//!
//! [`handle`] applies the per-address rate limit, then asks each door's route table in
//! the order of [`DOORS`] and renders errors once, in the form of the door at the path,
//! with that door's headers on every answer. Handlers return
//! `Result<Outcome, ApiError>`. A path that exists with another method gets 405 and
//! `Allow` (the methods of that door's routes at the path); anything else 404. The routes
//! that post messages are counted here, once, whatever the door. The log shows paths with
//! their capabilities cut ([`redaction`]), by the same tables.

mod redaction;

use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::Instant;

use crate::delivery;
use crate::doors;
use crate::error::ApiError;
use crate::error::ErrorForm;
use crate::http::{Request, percent_decode};
use crate::limits::AddrKey;
use crate::metrics;
use crate::route::{Door, Guard, Outcome};
use crate::state::ServerState;

/// Answers one request: the rate limit, the doors in order, one rendering of errors.
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
    let segments = path_segments(&req.path);
    let door = segments
        .as_ref()
        .ok()
        .and_then(|segments| door_at(state, &req, segments));
    let form = door.map_or(ErrorForm::OpenPush, |door| door.errors);
    let outcome = match (limited, segments) {
        (Ok(()), Ok(segments)) => route_to_doors(state, &req, &segments).await,
        (Ok(()), Err(e)) => Err(e),
        (Err((ip, wait)), _) => {
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
    let mut outcome = match outcome {
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
            Outcome::Respond(e.render(form))
        }
    };
    if let (Some(door), Outcome::Respond(response)) = (door, &mut outcome) {
        for &(name, value) in door.headers {
            if !response.has_header(name) {
                response.headers.push((name, value.to_owned()));
            }
        }
    }
    outcome
}

/// The doors' route tables, in the order they are asked: the first door with a route at
/// the path answers (or, with no route for the method, answers 405 with every method it
/// has there). Autopush comes first (its WebSocket may sit at any path, `/` by default);
/// ntfy comes last, since its `/<topic>` takes any free name.
pub const DOORS: &[Door] = &[
    #[cfg(feature = "autopush")]
    doors::autopush::DOOR,
    doors::status::DOOR,
    #[cfg(feature = "admin")]
    doors::admin::DOOR,
    #[cfg(feature = "openpush")]
    doors::openpush::DOOR,
    #[cfg(feature = "webpush")]
    doors::webpush::DOOR,
    #[cfg(feature = "matrix")]
    doors::matrix::DOOR,
    #[cfg(feature = "nextpush")]
    doors::nextpush::DOOR,
    #[cfg(feature = "ntfy")]
    doors::ntfy::DOOR,
];

/// Starts the task of every door that has one.
pub fn start_door_tasks(state: &Rc<ServerState>) {
    for task in DOORS.iter().filter_map(|door| door.task) {
        state.executor.spawn(task(state.clone())).detach();
    }
}

/// The path's segments, percent-decoded, empty ones dropped.
fn path_segments(path: &str) -> Result<Vec<String>, ApiError> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect::<Option<_>>()
        .ok_or(ApiError::BadRequest(
            "invalid percent-encoding in the path".into(),
        ))
}

/// The door that answers at a path: the first with a route there for the request's method
/// (the one [`route_to_doors`] calls), else the first with a route there at all. Its errors
/// and headers are the request's, also when it is refused before it reaches the door.
fn door_at(state: &ServerState, req: &Request, segments: &[String]) -> Option<&'static Door> {
    let path: Vec<&str> = segments.iter().map(String::as_str).collect();
    let at = |door: &&Door, method: Option<&str>| {
        door.routes
            .iter()
            .any(|r| r.is_at(state, req, &path) && method.is_none_or(|m| r.methods.contains(&m)))
    };
    let method = Some(req.method.as_str());
    DOORS
        .iter()
        .find(|door| at(door, method))
        .or_else(|| DOORS.iter().find(|door| at(door, None)))
}

async fn route_to_doors(
    state: &Rc<ServerState>,
    req: &Request,
    segments: &[String],
) -> Result<Outcome, ApiError> {
    let path: Vec<&str> = segments.iter().map(String::as_str).collect();
    let (path, method) = (path.as_slice(), req.method.as_str());
    for door in DOORS {
        let mut allow: Vec<&str> = Vec::new();
        for route in door.routes.iter().filter(|r| r.is_at(state, req, path)) {
            if route.methods.contains(&method) {
                if route.guard == Guard::Local && !is_local(state, req) {
                    return Err(ApiError::NotFound("no such endpoint"));
                }
                let reply = (route.handler)(state, req, path);
                return match route.post {
                    true => delivery::counted(state, reply).await,
                    false => reply.await,
                };
            }
            if route.listed {
                for m in route.methods {
                    if !allow.contains(m) {
                        allow.push(m);
                    }
                }
            }
        }
        if !allow.is_empty() {
            return Err(ApiError::MethodNotAllowed(allow.join(", ")));
        }
    }
    Err(ApiError::NotFound("no such endpoint"))
}

/// For [`Guard::Local`], unless `metrics_public`: the host itself, or a loopback client
/// named by a trusted proxy; a request a local proxy forwards from the internet is not
/// local.
fn is_local(state: &ServerState, req: &Request) -> bool {
    state.config().metrics_public || req.client_addr.is_none_or(|ip| ip.is_loopback())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_route_hides_behind_another_of_its_door() {
        for door in DOORS {
            for (i, a) in door.routes.iter().enumerate() {
                for b in &door.routes[i + 1..] {
                    let shadowed = a.claims.is_none()
                        && b.claims.is_none()
                        && a.path == b.path
                        && a.methods.iter().any(|m| b.methods.contains(m));
                    assert!(!shadowed, "{:?} {:?} twice", b.methods, b.path);
                }
            }
        }
    }
}
