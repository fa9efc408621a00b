//! The ntfy-compatible front door: what the ntfy Android app (as notification app and as
//! UnifiedPush distributor), ntfy's CLI, scripts and Home Assistant's ntfy integration speak.
//!
//! Routes and guards: [`ROUTES`]. A user is a name and password (HTTP Basic) or one of its
//! access tokens (`Bearer tk_…`, or Basic with an empty name; `account`), in
//! `Authorization` or in ntfy's `?auth=`. The `Topic` guard ("topic read/write") means: a user who owns the topic or
//! was granted it; the first user to use a topic owns it. Without a user, what
//! `anonymous_access` allows (`crate::store::topics::Anonymous`). Any `Authorization`
//! scheme other than Basic or Bearer (VAPID's `vapid t=…`, `WebPush …`) is not ours and is
//! ignored rather than answered with 401.

mod account;
mod delayed;
mod encode;
mod fields;
mod filter;
mod publish;
mod sequence;
mod subscribe;

use std::rc::Rc;

use base64ct::{Base64Url, Base64UrlUnpadded, Encoding};

use crate::auth::User;
use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::names::is_endpoint_topic;
use crate::route::Guard::{self, Topic};
use crate::route::Segment::{self, OneOf, Secret, Word};
use crate::route::{Outcome, Route};
use crate::state::ServerState;
use crate::store::TopicRecord;
use crate::store::topics::{self, Access};

pub use encode::{message_json, message_json_as};

/// Where a user's access tokens are.
const TOKENS: &[Segment] = &[Word("v1"), Word("account"), Word("token")];

/// The door: its routes, with errors in ntfy's form, which its clients read, and the task
/// that sends delayed messages when they are due.
pub const DOOR: crate::route::Door = crate::route::Door {
    routes: ROUTES,
    errors: crate::error::ErrorForm::Ntfy,
    headers: &[],
    task: Some(|s| Box::pin(delayed::run(s))),
};

/// The ntfy routes, in the order they are tried.
pub const ROUTES: &[Route] = &[
    Route::new(
        &["GET"],
        &[Word("v1"), Word("health")],
        Guard::None,
        |s, _, _| Box::pin(health(s)),
    ),
    Route::new(
        &["GET"],
        &[Word("v1"), Word("account")],
        Guard::None,
        |s, r, _| Box::pin(account::get(s, r)),
    ),
    Route::new(&["GET"], TOKENS, Guard::User, |s, r, _| {
        Box::pin(account::list(s, r))
    }),
    Route::new(&["POST"], TOKENS, Guard::UserChanging, |s, r, _| {
        Box::pin(account::create(s, r))
    }),
    Route::new(&["PATCH"], TOKENS, Guard::UserChanging, |s, r, _| {
        Box::pin(account::update(s, r))
    }),
    Route::new(&["DELETE"], TOKENS, Guard::UserChanging, |s, r, _| {
        Box::pin(account::delete(s, r))
    }),
    Route::new(
        &["GET"],
        &[Word("v1"), Word("version")],
        Guard::User,
        |s, r, _| Box::pin(account::version(s, r)),
    ),
    // The JSON body names the topic. `/` is also where a browser looks: another method
    // there is 404, not 405.
    Route::new(&["PUT", "POST"], &[], Topic, |s, r, _| {
        Box::pin(publish::json(s, r))
    })
    .posts()
    .unlisted(),
    // UnifiedPush discovery for endpoint topics and `?up=1`.
    Route::new(&["GET"], &[Segment::Topic], Guard::None, |_, r, p| {
        Box::pin(async { discovery(r, p[0]) })
    }),
    // An endpoint topic: none (Web Push rules, `crate::delivery::webpush`); else topic write.
    Route::new(&["PUT", "POST"], &[Segment::Topic], Topic, |s, r, p| {
        Box::pin(publish::to_topic(s, r, p[0], None))
    })
    .posts(),
    // A message of the sequence the path names (ntfy 2.16): topic write. A sequence id in
    // a path has a topic name's shape, so the server's own words (`json`, `auth` …) go in
    // `X-Sequence-ID` instead, and other paths under a topic stay 404.
    Route::new(
        &["PUT", "POST"],
        &[Segment::Topic, Segment::Topic],
        Topic,
        |s, r, p| Box::pin(publish::to_topic(s, r, p[0], Some(p[1]))),
    )
    .posts(),
    // The notification of a sequence, deleted or cleared (ntfy 2.16): topic write.
    Route::new(
        &["DELETE"],
        &[Segment::Topic, Segment::Topic],
        Topic,
        |s, r, p| Box::pin(sequence::delete(s, r, p[0], p[1])),
    )
    .posts(),
    Route::new(
        &["PUT"],
        &[Segment::Topic, Segment::Topic, OneOf(&["clear", "read"])],
        Topic,
        |s, r, p| Box::pin(sequence::clear(s, r, p[0], p[1])),
    )
    .posts(),
    // Topic read, every topic of the comma-separated list.
    Route::new(
        &["GET"],
        &[Secret, OneOf(&["json", "sse", "raw", "ws"])],
        Topic,
        |s, r, p| Box::pin(subscribe::start(s, r, p[0], p[1])),
    ),
    Route::new(
        &["GET"],
        &[Segment::Topic, Word("auth")],
        Topic,
        |s, r, p| Box::pin(auth(s, r, p[0])),
    ),
];

async fn health(state: &ServerState) -> Result<Outcome, ApiError> {
    state.store.read(|_| Ok(())).await?;
    Ok(Response::json(200, r#"{"healthy":true}"#).into())
}

fn discovery(req: &Request, topic: &str) -> Result<Outcome, ApiError> {
    if is_endpoint_topic(topic) || req.query_param("up") == Some("1") {
        Ok(crate::delivery::webpush::discovery().into())
    } else {
        Err(ApiError::NotFound(
            "this server has no web app; subscribe with /<topic>/json",
        ))
    }
}

async fn auth(state: &Rc<ServerState>, req: &Request, topic: &str) -> Result<Outcome, ApiError> {
    let user = user(state, req).await?;
    open_topics(state, vec![topic.to_owned()], user, Access::Read).await?;
    Ok(Response::json(200, r#"{"success":true}"#).into())
}

/// The request's user: HTTP Basic (a user name and password, or an empty name and an
/// access token) or `Bearer <access token>`, in `Authorization` or in ntfy's `?auth=` (the
/// base64 of an `Authorization` value); `None` without one, or with a scheme that is not
/// ours.
pub async fn user(state: &ServerState, req: &Request) -> Result<Option<User>, ApiError> {
    let from_query = match req.query_param("auth") {
        Some(encoded) if !encoded.is_empty() => {
            let decoded = Base64UrlUnpadded::decode_vec(encoded.trim_end_matches('='))
                .or_else(|_| Base64Url::decode_vec(encoded))
                .or_else(|_| base64ct::Base64::decode_vec(encoded))
                .map_err(|_| ApiError::Unauthorized)?;
            Some(String::from_utf8(decoded).map_err(|_| ApiError::Unauthorized)?)
        }
        _ => None,
    };
    let value = from_query.as_deref().or(req.header("authorization"));
    let Some(value) = value else {
        return Ok(None);
    };
    let scheme = value.split(' ').next().unwrap_or("");
    if scheme.eq_ignore_ascii_case("basic") {
        // Credentials in the header may be the browser's, sent for a foreign page (a form
        // posting to a topic, a WebSocket reading one); those in `?auth=` cannot be.
        if from_query.is_none() {
            crate::csrf::same_origin(state, req)?;
        }
        if let Some(token) = crate::auth::basic_token(value) {
            return Ok(Some(state.auth.token(&state.store, req, &token).await?));
        }
        return Ok(Some(state.auth.login(&state.store, req, value).await?));
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        let token = value[scheme.len()..].trim();
        return Ok(Some(state.auth.token(&state.store, req, token).await?));
    }
    Ok(None)
}

/// Opens (creating or claiming as the rules allow) every topic of a request, in one
/// transaction; the first refusal refuses them all.
pub async fn open_topics(
    state: &ServerState,
    names: Vec<String>,
    user: Option<User>,
    access: Access,
) -> Result<Vec<TopicRecord>, ApiError> {
    let rules = crate::delivery::topics::rules(state);
    let user_id = user.map(|u| u.id);
    let now = crate::clock::now_millis();
    let outcome = state
        .store
        .write(move |t, m| {
            let mut records = Vec::with_capacity(names.len());
            for name in &names {
                match topics::open(t, m, name, user_id, access, &rules, now)? {
                    Ok(record) => records.push(record),
                    Err(refused) => return Ok(Err(refused)),
                }
            }
            Ok(Ok(records))
        })
        .await?;
    outcome.map_err(|refused| anonymous_needs_login(ApiError::from(refused), user_id))
}

/// Sends the poll request of message `id` on `topic` to ntfy's upstream server, which
/// wakes the iPhones subscribed to it (`crate::upstream`), as ntfy does for every message
/// but UnifiedPush ones: never for an endpoint topic, whose readers are distributors, nor
/// for a publish that is itself a poll request (`X-Poll-ID`: another server's upstream
/// request, which sent on would go round between two servers that name each other).
pub fn wake_iphones(state: &ServerState, req: &Request, topic: &str, id: u64) {
    if fields::param(req, &["X-Poll-ID", "Poll-ID"]).is_none() {
        wake_iphones_for(state, topic, id);
    }
}

/// [`wake_iphones`] for a message no request publishes now: a delayed one, sent when it
/// is due (`delayed`), as ntfy forwards it then.
#[cfg_attr(not(feature = "upstream"), allow(unused_variables))]
pub fn wake_iphones_for(state: &ServerState, topic: &str, id: u64) {
    #[cfg(feature = "upstream")]
    if !is_endpoint_topic(topic) {
        state.upstream.forward(topic, &encode::message_id(id));
    }
}

/// A refusal for want of a user is a 401 to a request that gave none (it may log in).
pub fn anonymous_needs_login(e: ApiError, user: Option<u64>) -> ApiError {
    match e {
        ApiError::Forbidden(_) if user.is_none() => ApiError::Unauthorized,
        e => e,
    }
}
