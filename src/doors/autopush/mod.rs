//! Mozilla's autopush protocol, the push service of Firefox and of the Sunup UnifiedPush
//! distributor: a WebSocket at `autopush_path` (default `/`; `off` closes the door) and
//! the channels' endpoints under `/wpush/`.
//!
//! A user agent is named by a `uaid` that the server gives in its first `hello`; it is the
//! capability to read the user agent's queue (`crate::store::autopush`). Its apps
//! subscribe with `register` (a channel id it picks, optionally the app server's VAPID
//! key) and get an endpoint each. A message stays queued until the user agent acks it or
//! its TTL ends: it is sent on every connection (after each `hello`) until then, and a
//! `nack` keeps it. Only one connection per uaid is live; a newer hello replaces it.
//!
//! | method | path | guard |
//! |---|---|---|
//! | GET (WebSocket upgrade) | `autopush_path` | none; the uaid is the capability, new uaids are limited per address |
//! | POST, PUT | `/wpush/v1/<token>` | none: the token is the capability |
//! | POST, PUT | `/wpush/v2/<token>` | VAPID signed by the channel's key (`crate::vapid`) |
//! | GET | `/wpush/v1/<token>`, `/wpush/v2/<token>` | none: UnifiedPush discovery |
//!
//! The protocol's messages are in [`protocol`], the connection in [`session`], the
//! endpoints in [`endpoint`].

pub mod channels;
pub mod endpoint;
pub mod protocol;
pub mod session;

use std::rc::Rc;

use crate::error::ApiError;
use crate::http::Request;
use crate::route::Outcome;
use crate::state::ServerState;

pub async fn route(
    state: &Rc<ServerState>,
    req: &Request,
    path: &[&str],
) -> Option<Result<Outcome, ApiError>> {
    if let ["wpush", version @ ("v1" | "v2"), token] = path {
        return Some(
            endpoint::route(state, req, version, token)
                .await
                .map(Into::into),
        );
    }
    let is_upgrade = req
        .header("upgrade")
        .is_some_and(|u| u.trim().eq_ignore_ascii_case("websocket"));
    let at_door = state
        .config()
        .autopush_path
        .as_deref()
        .is_some_and(|door| door.trim_end_matches('/') == req.path.trim_end_matches('/'));
    (is_upgrade && at_door && req.method == "GET").then(|| session::upgrade(state, req))
}
