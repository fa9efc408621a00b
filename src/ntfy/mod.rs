//! The ntfy-compatible front door: what the ntfy Android app (as notification app and as
//! UnifiedPush distributor), ntfy's CLI, scripts and Home Assistant's ntfy integration speak.
//!
//! Routes, each with its guard (who may use it):
//!
//! | method | path | guard |
//! |---|---|---|
//! | GET | `/v1/health` | none |
//! | PUT, POST | `/<topic>` | endpoint topic: none (Web Push rules, `crate::webpush`); else topic write |
//! | PUT, POST | `/` (JSON body naming the topic) | topic write |
//! | GET | `/<topic>` | none: UnifiedPush discovery for endpoint topics and `?up=1` |
//! | GET | `/<t1,t2,…>/json`, `/sse`, `/raw`, `/ws` | topic read, every topic |
//! | GET | `/<topic>/auth` | topic read |
//!
//! "Topic read/write" means: a user (HTTP Basic, or ntfy's `?auth=`) who owns the topic or
//! was granted it; the first user to use a topic owns it. Without a user, what
//! `anonymous_access` allows (`crate::store::topics::Anonymous`). Any `Authorization`
//! scheme other than Basic or Bearer (VAPID's `vapid t=…`, `WebPush …`) is not ours and is
//! ignored rather than answered with 401.

mod encode;
mod fields;
mod publish;
mod subscribe;

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use base64ct::{Base64Url, Base64UrlUnpadded, Encoding};

use crate::api::Outcome;
use crate::auth::User;
use crate::delivery::Published;
use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::limits::AddrKey;
use crate::names::{is_endpoint_topic, is_topic_name};
use crate::state::ServerState;
use crate::store::TopicRecord;
use crate::store::budget::message_bytes;
use crate::store::memory::QueueSize;
use crate::store::queue::{self, Destination, NewMessage, Refused};
use crate::store::topics::{self, Access, Rules};

pub use encode::{message_json, message_json_as};

pub async fn route(
    state: &Rc<ServerState>,
    req: &Request,
    path: &[&str],
) -> Option<Result<Outcome, ApiError>> {
    let method = req.method.as_str();
    Some(match (method, path) {
        ("GET", ["v1", "health"]) => health(state).await,
        ("PUT" | "POST", []) => publish::json(state, req).await,
        ("PUT" | "POST", [topic]) if is_topic_name(topic) => {
            publish::to_topic(state, req, topic).await
        }
        ("GET", [topic]) if is_topic_name(topic) => discovery(req, topic),
        ("GET", [topics, format @ ("json" | "sse" | "raw" | "ws")]) => {
            subscribe::start(state, req, topics, format).await
        }
        ("GET", [topic, "auth"]) if is_topic_name(topic) => auth(state, req, topic).await,
        (_, [topic]) if is_topic_name(topic) => Err(ApiError::MethodNotAllowed("GET, PUT, POST")),
        _ => return None,
    })
}

async fn health(state: &ServerState) -> Result<Outcome, ApiError> {
    state.store.read(|_| Ok(())).await?;
    Ok(Response::json(200, r#"{"healthy":true}"#).into())
}

fn discovery(req: &Request, topic: &str) -> Result<Outcome, ApiError> {
    if is_endpoint_topic(topic) || req.query_param("up") == Some("1") {
        Ok(crate::webpush::discovery().into())
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

/// The request's user: HTTP Basic in `Authorization` or in ntfy's `?auth=` (the base64 of
/// an `Authorization` value); `None` without one, or with a scheme that is not ours.
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
        return state.auth.login(&state.store, req, value).await.map(Some);
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        // ntfy access tokens: this server has none, so no token is valid.
        return Err(ApiError::Unauthorized);
    }
    Ok(None)
}

fn rules(state: &ServerState) -> Rules {
    let config = state.config();
    Rules {
        anonymous: config.anonymous,
        max_topics_per_user: config.limits.max_topics_per_user,
        max_unclaimed_topics: config.limits.max_unclaimed_topics,
    }
}

/// Opens (creating or claiming as the rules allow) every topic of a request, in one
/// transaction; the first refusal refuses them all.
pub async fn open_topics(
    state: &ServerState,
    names: Vec<String>,
    user: Option<User>,
    access: Access,
) -> Result<Vec<TopicRecord>, ApiError> {
    let rules = rules(state);
    let user_id = user.map(|u| u.id);
    let now = crate::state::now_millis();
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
    outcome.map_err(|refused| anonymous_needs_login(crate::delivery::refusal(refused), user_id))
}

/// A refusal for want of a user is a 401 to a request that gave none (it may log in).
pub fn anonymous_needs_login(e: ApiError, user: Option<u64>) -> ApiError {
    match e {
        ApiError::Forbidden(_) if user.is_none() => ApiError::Unauthorized,
        e => e,
    }
}

/// Publishes `message` to the topic `name` for `user` (None: anonymous, from `from`).
///
/// A topic an anonymous post creates belongs to nobody until a user subscribes: while it
/// is an endpoint topic of nobody's, its queue holds only `max_queued_per_unclaimed_topic`
/// messages; each address may create only `new_unclaimed_topics_per_hour_per_addr` of
/// them; and one is created only if the message fits the store's share for anonymous
/// queues and its queue, so that a refused post leaves no topic behind.
pub async fn post_to_topic(
    state: &ServerState,
    name: String,
    user: Option<u64>,
    from: Option<AddrKey>,
    message: NewMessage,
) -> Result<Published, ApiError> {
    let creator = from.filter(|_| user.is_none());
    let may_create = match creator {
        Some(addr) => state
            .new_unclaimed_topics
            .take(addr, std::time::Instant::now())
            .is_ok(),
        None => true,
    };
    let created = Arc::new(AtomicBool::new(false));
    let resolve = topic_queue(state, name, user, may_create, &message, created.clone());
    let outcome = crate::delivery::publish(state, resolve, message).await;
    if let Some(addr) = creator
        && may_create
        && !created.load(Ordering::Relaxed)
    {
        state.new_unclaimed_topics.give_back(addr);
    }
    outcome
}

/// The resolver of a publish to `name`: the topic's queue, opened for writing (see
/// [`post_to_topic`]); sets `created` when it creates the topic.
fn topic_queue(
    state: &ServerState,
    name: String,
    user: Option<u64>,
    may_create: bool,
    message: &NewMessage,
    created: Arc<AtomicBool>,
) -> impl crate::delivery::Resolve {
    let rules = rules(state);
    let config = state.config();
    let limits = &config.limits;
    let limit = QueueSize {
        messages: limits.max_queued_per_topic,
        bytes: limits.max_queued_bytes_per_topic,
    };
    let unclaimed = QueueSize {
        messages: limits.max_queued_per_unclaimed_topic,
        bytes: limits.max_queued_bytes_per_unclaimed_topic,
    };
    let per_hour = limits.new_unclaimed_topics_per_hour_per_addr;
    let record_len = match message.ttl_secs {
        0 => 0,
        _ => queue::stored_len(message, "") as u64,
    };
    let stored = if record_len == 0 {
        0
    } else {
        message_bytes(record_len as usize)
    };
    let budget = crate::delivery::store_budget(state);
    let now = crate::state::now_millis();
    move |t, m| {
        let endpoint = is_endpoint_topic(&name);
        let new = topics::get(t, &name)?.is_none();
        if new && user.is_none() {
            if !may_create {
                return Ok(Err(Refused::Crowded(format!(
                    "this address has created {per_hour} topics in the last hour; try again later"
                ))));
            }
            if endpoint && record_len > unclaimed.bytes {
                return Ok(Err(Refused::QueueFull(unclaimed)));
            }
            if let Some(overrun) = m.check_budget(t, None, 0, stored, &budget)? {
                return Ok(Err(Refused::NoRoom(overrun)));
            }
        }
        let opened = topics::open(t, m, &name, user, Access::Write, &rules, now)?;
        Ok(opened.map(|record| {
            created.store(new, Ordering::Relaxed);
            Destination {
                queue: record.queue,
                registration_id: String::new(),
                limit: if record.owner == 0 && endpoint {
                    unclaimed
                } else {
                    limit
                },
            }
        }))
    }
}
