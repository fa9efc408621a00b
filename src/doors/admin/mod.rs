//! The admin page: `/admin/`, a page of the server itself for the household's
//! administrators (users, their devices, topics and grants, access tokens, the live status,
//! what to enter on a new phone), and the JSON API under `/admin/api/` it calls.
//!
//! Routes and guards: [`ROUTES`]. The page's files ([`assets`]) are public: they hold no
//! data. Every API call is an administrator's ([`administrator`]), checked on every request:
//! HTTP Basic with a name and password, or an ntfy access token (`Bearer tk_…`, or Basic
//! with an empty name), always in `Authorization`, never in the URL. A user who is not an
//! administrator gets 403 and nothing else. The API keeps `crate::csrf`'s rule for every
//! call, reading or changing: a browser's request for another site's page is refused
//! (403), and a body must be JSON (415), which a foreign page cannot send without a CORS
//! preflight the server never allows. Nothing here names a secret in a path: topics (an
//! endpoint topic is a capability) travel in bodies, users, devices and tokens by number.
//!
//! Every answer at these paths, errors included (the OpenPush form), carries
//! [`HEADERS`]: a `Content-Security-Policy` that lets the page load only its own script,
//! style and API (no inline code, no frames, no form posts, no other origin), `nosniff`,
//! no `Referer`, `Cache-Control: no-store` (the files say `no-cache` instead). The page
//! keeps its credentials in the tab's `sessionStorage` only, and sends them with
//! `credentials: "omit"` so the browser neither adds its own nor asks for any.
//!
//! Out of scope: renaming users, and the OpenPush applications of devices (made by the
//! devices themselves); the CLI and the OpenPush API do those.

mod assets;
mod status;
mod topics;
mod users;

use std::time::Instant;

use crate::auth::User;
use crate::csrf;
use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::route::Guard::{self, None as Public};
use crate::route::Segment::{self, Name, Word};
use crate::route::{Outcome, Route};
use crate::state::ServerState;

/// The door: its routes, errors in the OpenPush form, and the page's headers on every
/// answer.
pub const DOOR: crate::route::Door = crate::route::Door {
    routes: ROUTES,
    errors: crate::error::ErrorForm::OpenPush,
    headers: HEADERS,
};

/// The headers of every answer at `/admin/`.
pub const HEADERS: &[(&str, &str)] = &[
    (
        "Content-Security-Policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'; \
         require-trusted-types-for 'script'; trusted-types 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
    ("Cache-Control", "no-store"),
];

const ADMIN: Segment = Word("admin");
const API: Segment = Word("api");
const USERS: &[Segment] = &[ADMIN, API, Word("users")];
const USER: &[Segment] = &[ADMIN, API, Word("users"), Name];
/// A user's password, devices, one device, one token.
const PASSWORD: &[Segment] = &[ADMIN, API, Word("users"), Name, Word("password")];
const DEVICES: &[Segment] = &[ADMIN, API, Word("users"), Name, Word("devices")];
const DEVICE: &[Segment] = &[ADMIN, API, Word("users"), Name, Word("devices"), Name];
const TOKEN: &[Segment] = &[ADMIN, API, Word("users"), Name, Word("tokens"), Name];
const TOPICS: &[Segment] = &[ADMIN, API, Word("topics")];
const GRANTS: &[Segment] = &[ADMIN, API, Word("grants")];

/// The routes. `User` here means an administrator ([`administrator`]), the handler's first
/// step; `UserChanging` one whose request also has a JSON body if any.
pub const ROUTES: &[Route] = &[
    // `/admin` moves to `/admin/`, where the page's relative links work.
    Route::new(&["GET"], &[ADMIN], Public, |_, r, _| {
        Box::pin(async { Ok(assets::page(r)) })
    }),
    Route::new(&["GET"], &[ADMIN, Word("admin.js")], Public, |_, r, _| {
        Box::pin(async { assets::file(r, "admin.js") })
    }),
    Route::new(&["GET"], &[ADMIN, Word("admin.css")], Public, |_, r, _| {
        Box::pin(async { assets::file(r, "admin.css") })
    }),
    Route::new(
        &["GET"],
        &[ADMIN, API, Word("status")],
        Guard::User,
        |s, r, _| Box::pin(status::status(s, r)),
    ),
    Route::new(
        &["GET"],
        &[ADMIN, API, Word("setup")],
        Guard::User,
        |s, r, _| Box::pin(status::setup(s, r)),
    ),
    Route::new(&["GET"], USERS, Guard::User, |s, r, _| {
        Box::pin(users::list(s, r))
    }),
    Route::new(&["POST"], USERS, Guard::UserChanging, |s, r, _| {
        Box::pin(users::create(s, r))
    }),
    Route::new(&["DELETE"], USER, Guard::UserChanging, |s, r, p| {
        Box::pin(users::delete(s, r, p[3]))
    }),
    Route::new(&["PUT"], PASSWORD, Guard::UserChanging, |s, r, p| {
        Box::pin(users::password(s, r, p[3]))
    }),
    Route::new(&["POST"], DEVICES, Guard::UserChanging, |s, r, p| {
        Box::pin(users::add_device(s, r, p[3]))
    }),
    Route::new(&["DELETE"], DEVICE, Guard::UserChanging, |s, r, p| {
        Box::pin(users::delete_device(s, r, p[3], p[5]))
    }),
    Route::new(
        &["GET"],
        &[ADMIN, API, Word("tokens")],
        Guard::User,
        |s, r, _| Box::pin(users::tokens(s, r)),
    ),
    Route::new(&["DELETE"], TOKEN, Guard::UserChanging, |s, r, p| {
        Box::pin(users::revoke_token(s, r, p[3], p[5]))
    }),
    Route::new(&["GET"], TOPICS, Guard::User, |s, r, _| {
        Box::pin(topics::list(s, r))
    }),
    // The topic is in the body: an endpoint topic's name is a capability.
    Route::new(&["DELETE"], TOPICS, Guard::UserChanging, |s, r, _| {
        Box::pin(topics::delete(s, r))
    }),
    Route::new(&["PUT"], GRANTS, Guard::UserChanging, |s, r, _| {
        Box::pin(topics::grant(s, r))
    }),
];

/// The administrator a request of the API comes from. In this order: a browser's request
/// for another site's page is refused (403, before any credential is checked); the
/// credentials (401); the role (403); for a request that changes something (any method
/// but `GET`), a body that is not JSON (415).
pub async fn administrator(state: &ServerState, req: &Request) -> Result<User, ApiError> {
    csrf::same_origin(state, req)?;
    let user = login(state, req).await?;
    if !user.admin {
        let key = (
            req.client_addr.map(crate::limits::AddrKey::of),
            "admin page",
        );
        if let Some(unlogged) = state.auth.refusals_to_log(key, Instant::now()) {
            log::info!(
                "admin page refused to user {}: not an administrator{unlogged}",
                user.id
            );
        }
        return Err(ApiError::Forbidden(
            "the admin page is for administrators only".into(),
        ));
    }
    if req.method != "GET" {
        csrf::json_body(state, req)?;
    }
    Ok(user)
}

/// The user of `Authorization`: Basic with a name and password, or an access token as
/// `Bearer` or as Basic with an empty name (ntfy's two ways).
async fn login(state: &ServerState, req: &Request) -> Result<User, ApiError> {
    let value = req.header("authorization").ok_or(ApiError::Unauthorized)?;
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let token = if scheme.eq_ignore_ascii_case("bearer") {
        Some(rest.trim().to_owned())
    } else {
        crate::auth::basic_token(value)
    };
    Ok(match token {
        Some(token) => state.auth.token(&state.store, req, &token).await?,
        None => state.auth.login(&state.store, req, value).await?,
    })
}

/// A JSON answer of the API.
fn json(status: u16, body: String) -> Result<Outcome, ApiError> {
    Ok(Response::json(status, body).into())
}

/// The request body of a changing call as a miniserde type (400 with what was expected).
fn body<T: miniserde::Deserialize>(req: &Request, expected: &str) -> Result<T, ApiError> {
    crate::route::body(req, expected)
}
