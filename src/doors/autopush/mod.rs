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
//! Routes and guards: [`ROUTES`].
//!
//! The protocol's messages are in [`protocol`], the connection in [`session`], the
//! endpoints in [`endpoint`].

pub mod channels;
pub mod endpoint;
pub mod protocol;
pub mod session;

use crate::http::Request;
use crate::route::Guard::{self, Capability, Vapid};
use crate::route::Route;
use crate::route::Segment::{self, OneOf, Secret, Word};
use crate::state::ServerState;

/// The WebSocket at `autopush_path` (claimed by [`at_door`]), then the endpoints.
/// The door: its routes, with errors in the OpenPush form.
pub const DOOR: crate::route::Door = crate::route::Door {
    routes: ROUTES,
    errors: crate::error::ErrorForm::OpenPush,
    headers: &[],
    task: None,
};

pub const ROUTES: &[Route] = &[
    // The uaid is the capability; new uaids are limited per address.
    Route::new(&["GET"], &[], Capability, |s, r, _| {
        Box::pin(async { session::upgrade(s, r) })
    })
    .claimed_by(at_door),
    // UnifiedPush discovery.
    Route::new(&["GET"], ENDPOINT, Guard::None, |s, _, p| {
        Box::pin(async { endpoint::discovery(s, p[1], p[2]).await.map(Into::into) })
    }),
    // v1: the token is the capability; v2: VAPID signed by the channel's key.
    Route::new(&["POST", "PUT"], ENDPOINT, Vapid, |s, r, p| {
        Box::pin(async { endpoint::push(s, r, p[1], p[2]).await.map(Into::into) })
    })
    .posts(),
];

const ENDPOINT: &[Segment] = &[Word("wpush"), OneOf(&["v1", "v2"]), Secret];

/// A WebSocket upgrade at `autopush_path`.
fn at_door(state: &ServerState, req: &Request) -> bool {
    let is_upgrade = req
        .header("upgrade")
        .is_some_and(|u| u.trim().eq_ignore_ascii_case("websocket"));
    let at_door = state
        .config()
        .autopush_path
        .as_deref()
        .is_some_and(|door| door.trim_end_matches('/') == req.path.trim_end_matches('/'));
    is_upgrade && at_door
}
