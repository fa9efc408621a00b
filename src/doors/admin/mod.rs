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
//! Every API call goes through one handler ([`api`]): the administrator, then the call's
//! [`Work`], one store read or write that also writes the answer's JSON, so that the door
//! instantiates the store's generic calls once (a router's flash counts every copy).
//!
//! Out of scope: renaming users, and the OpenPush applications of devices (made by the
//! devices themselves); the CLI and the OpenPush API do those.

mod assets;
mod status;
mod topics;
mod users;

use std::rc::Rc;
use std::time::Instant;

use crate::store::kv::{ReadTransaction, WriteTransaction};
use miniserde::Deserialize;

use crate::auth::User;
use crate::csrf;
use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::route::Guard::{self, None as Public};
use crate::route::Segment::{self, Name, Word};
use crate::route::{Outcome, Route};
use crate::state::ServerState;
use crate::store::{self, memory::Memory};

/// The door: its routes, errors in the OpenPush form, and the page's headers on every
/// answer.
pub const DOOR: crate::route::Door = crate::route::Door {
    routes: ROUTES,
    errors: crate::error::ErrorForm::OpenPush,
    headers: HEADERS,
    task: None,
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
const USERS: Segment = Word("users");

/// The routes. Every API route's handler is [`api`], whose first step is the
/// administrator ([`administrator`]): `User` reads, `UserChanging` changes (a JSON body).
pub const ROUTES: &[Route] = &[
    // `/admin` moves to `/admin/`, where the page's relative links work. Unlisted: a
    // publish to the ntfy topic `admin` is not this route's 405.
    Route::new(&["GET"], &[ADMIN], Public, |_, r, _| {
        Box::pin(async { Ok(assets::page(r)) })
    })
    .unlisted(),
    Route::new(&["GET"], &[ADMIN, Word("admin.js")], Public, |_, r, _| {
        Box::pin(async { assets::file(r, "admin.js") })
    }),
    Route::new(&["GET"], &[ADMIN, Word("admin.css")], Public, |_, r, _| {
        Box::pin(async { assets::file(r, "admin.css") })
    }),
    Route::new(&["GET"], &[ADMIN, API, Word("status")], Guard::User, call),
    Route::new(&["GET"], &[ADMIN, API, Word("setup")], Guard::User, call),
    Route::new(&["GET"], &[ADMIN, API, USERS], Guard::User, call),
    Route::new(&["POST"], &[ADMIN, API, USERS], Guard::UserChanging, call),
    Route::new(
        &["DELETE"],
        &[ADMIN, API, USERS, Name],
        Guard::UserChanging,
        call,
    ),
    Route::new(
        &["PUT"],
        &[ADMIN, API, USERS, Name, Word("password")],
        Guard::UserChanging,
        call,
    ),
    Route::new(
        &["POST"],
        &[ADMIN, API, USERS, Name, Word("devices")],
        Guard::UserChanging,
        call,
    ),
    Route::new(
        &["DELETE"],
        &[ADMIN, API, USERS, Name, Word("devices"), Name],
        Guard::UserChanging,
        call,
    ),
    Route::new(&["GET"], &[ADMIN, API, Word("tokens")], Guard::User, call),
    Route::new(
        &["DELETE"],
        &[ADMIN, API, USERS, Name, Word("tokens"), Name],
        Guard::UserChanging,
        call,
    ),
    Route::new(&["GET"], &[ADMIN, API, Word("topics")], Guard::User, call),
    // The topic is in the body: an endpoint topic's name is a capability.
    Route::new(
        &["DELETE"],
        &[ADMIN, API, Word("topics")],
        Guard::UserChanging,
        call,
    ),
    Route::new(
        &["PUT"],
        &[ADMIN, API, Word("grants")],
        Guard::UserChanging,
        call,
    ),
];

fn call<'a>(
    state: &'a Rc<ServerState>,
    req: &'a Request,
    path: &'a [&'a str],
) -> crate::route::Reply<'a> {
    Box::pin(api(state, req, path))
}

/// A call's answer, made in the store: its JSON, or why not. The type is the OpenPush
/// door's too, so that both share the store's calls and the channels under them.
pub type Answer = Result<String, ApiError>;

/// A read of a call, run on a snapshot.
pub type ReadWork = Box<dyn FnOnce(&ReadTransaction) -> store::Result<Answer> + Send>;
/// A write of a call, run in the next group commit.
pub type WriteWork =
    Box<dyn FnOnce(&WriteTransaction, &mut Memory) -> store::Result<Answer> + Send>;

/// What a call does in the store.
pub enum Work {
    /// A read on a snapshot.
    Read(ReadWork),
    /// A write in the next group commit.
    Write(WriteWork),
}

/// The body of every changing call: each takes the fields it needs.
#[derive(Deserialize, Default)]
pub struct Body {
    name: Option<String>,
    password: Option<String>,
    admin: Option<bool>,
    topic: Option<String>,
    user: Option<String>,
    read: Option<bool>,
    write: Option<bool>,
}

/// A field the call needs; 400 without it.
fn need<T>(field: Option<T>, name: &str) -> Result<T, ApiError> {
    field.ok_or_else(|| ApiError::BadRequest(format!("the request body needs `{name}`")))
}

/// Every call of `/admin/api/`: the administrator, the body, the work, the answer (`201`
/// for a `POST`, which makes something). A change that succeeded is logged with its path
/// (users, devices and tokens by number).
async fn api(state: &Rc<ServerState>, req: &Request, path: &[&str]) -> Result<Outcome, ApiError> {
    let me = administrator(state, req).await?;
    let mut body = match req.body.is_empty() {
        true => <Body as Default>::default(),
        false => crate::route::body::<Body>(req, "a JSON object")?,
    };
    let work = match (req.method.as_str(), &path[2..]) {
        ("GET", ["status"]) => status::status(state),
        ("GET", ["setup"]) => return Ok(Response::json(200, status::setup(state, req)).into()),
        ("GET", ["users"]) => users::list(state),
        ("POST", ["users"]) => {
            let hash = users::hash(state, need(body.password.take(), "password")?).await?;
            users::create(state, body, hash)?
        }
        ("DELETE", ["users", user]) => users::delete(&me, user),
        ("PUT", ["users", user, "password"]) => {
            let hash = users::hash(state, need(body.password.take(), "password")?).await?;
            users::password(user, hash)
        }
        ("POST", ["users", user, "devices"]) => users::add_device(state, user, body)?,
        ("DELETE", ["users", user, "devices", id]) => users::delete_device(user, id)?,
        ("GET", ["tokens"]) => users::tokens(),
        ("DELETE", ["users", user, "tokens", n]) => users::revoke_token(user, n)?,
        ("GET", ["topics"]) => topics::list(state),
        ("DELETE", ["topics"]) => topics::delete(body)?,
        ("PUT", ["grants"]) => topics::grant(body)?,
        _ => return Err(ApiError::NotFound("no such endpoint")),
    };
    let json = match work {
        Work::Read(read) => state.store.read(read).await??,
        Work::Write(write) => state.store.write(write).await??,
    };
    if req.method != "GET" {
        log::info!("admin page: {} {} by user {}", req.method, req.path, me.id);
    }
    // A user's new password or deletion: its cached logins go (all of them: the change is
    // an administrator's and rare, and the name in the path may not be the id).
    if matches!(
        (req.method.as_str(), &path[2..]),
        ("DELETE", ["users", _]) | ("PUT", ["users", _, "password"])
    ) {
        state.auth.forget();
    }
    let status = if req.method == "POST" { 201 } else { 200 };
    Ok(Response::json(status, json).into())
}

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

/// A JSON object written member by member.
pub struct Json(String);

impl Json {
    fn new() -> Json {
        Json(String::from("{"))
    }

    fn key(&mut self, key: &str) -> &mut String {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        self.0.push('"');
        self.0.push_str(key);
        self.0.push_str("\":");
        &mut self.0
    }

    fn str(&mut self, key: &str, value: &str) -> &mut Json {
        crate::json::push_string(self.key(key), value);
        self
    }

    fn num(&mut self, key: &str, value: u64) -> &mut Json {
        let out = self.key(key);
        out.push_str(&value.to_string());
        self
    }

    fn bool(&mut self, key: &str, value: bool) -> &mut Json {
        self.raw(key, if value { "true" } else { "false" })
    }

    fn opt(&mut self, key: &str, value: Option<u64>) -> &mut Json {
        match value {
            Some(n) => self.num(key, n),
            None => self.raw(key, "null"),
        }
    }

    fn raw(&mut self, key: &str, json: &str) -> &mut Json {
        self.key(key).push_str(json);
        self
    }

    fn end(&mut self) -> String {
        let mut out = std::mem::take(&mut self.0);
        out.push('}');
        out
    }
}

/// A JSON array of JSON texts.
fn array(items: &[String]) -> String {
    format!("[{}]", items.join(","))
}

/// A JSON array of strings.
fn strings(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| crate::json::string(s)).collect();
    array(&quoted)
}
