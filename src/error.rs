//! `ApiError`: every way a request can fail, its status, and its one rendering.
//!
//! The layers below keep their own errors and know nothing of statuses: the store's
//! `store::Error`, `accounts::Refusal` and `queue::Refused`, the name rules' `names::Invalid`,
//! the WebSocket handshake's `ws::NotAnUpgrade`, logins' `auth::Refusal`, VAPID's `vapid::Refusal` (mapped by the
//! autopush door, which alone checks VAPID). Each becomes a status here, in its `From`, and
//! nowhere else.
//!
//! The body follows the OpenPush v0.1 `Error` schema (`status`, `title`, `detail`, `type`).
//! A 401 always carries `WWW-Authenticate`; a 405 names the allowed methods; a 429 or 503
//! tells when to retry. Details never contain a secret.

use std::time::Instant;

use crate::http::Response;
use crate::http::response::reason;
use crate::json;
use crate::limits::REFUSAL_LOG_PERIOD;
use crate::logger::Tally;
use crate::store;
use crate::store::budget::Overrun;
use crate::store::queue::Refused;

/// Every way a request can fail; [`ApiError::status`] is its HTTP status.
#[derive(Debug)]
pub enum ApiError {
    /// 400: the request is malformed (the reason).
    BadRequest(String),
    /// 401: credentials are missing or wrong.
    Unauthorized,
    /// A push to a VAPID-bound endpoint without a valid VAPID token (the reason).
    VapidRequired(&'static str),
    /// 403: allowed to no one who asks like this (the reason).
    Forbidden(String),
    /// 404: no such resource (what).
    NotFound(&'static str),
    /// The methods the path allows, as `Allow` lists them.
    MethodNotAllowed(String),
    /// 409: it exists already (the reason).
    Conflict(String),
    /// 413: over a size limit (which).
    TooLarge(String),
    /// 415: a body type the route does not take (the reason).
    UnsupportedMediaType(String),
    /// 429: over a rate or a queue limit; `Retry-After` tells when to try again.
    TooMany {
        /// What is over its limit.
        detail: String,
        /// The seconds `Retry-After` says.
        retry_after_secs: u64,
    },
    /// 503: the store is busy or gone for now (the reason).
    Unavailable(String),
    /// 507: the disk is full.
    InsufficientStorage,
    /// The store's budget for messages is used up (the reason).
    NoRoom(String),
    /// 500: a bug or a damaged store; logged where it happened.
    Internal,
    /// A parse error with its own status.
    Http(u16, &'static str),
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::BadRequest(_) => 400,
            ApiError::Unauthorized | ApiError::VapidRequired(_) => 401,
            ApiError::Forbidden(_) => 403,
            ApiError::NotFound(_) => 404,
            ApiError::MethodNotAllowed(_) => 405,
            ApiError::Conflict(_) => 409,
            ApiError::TooLarge(_) => 413,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::TooMany { .. } => 429,
            ApiError::Unavailable(_) => 503,
            ApiError::InsufficientStorage | ApiError::NoRoom(_) => 507,
            ApiError::Internal => 500,
            ApiError::Http(status, _) => *status,
        }
    }

    /// The `detail` of the body: what went wrong, never a secret.
    pub fn detail(&self) -> String {
        match self {
            ApiError::BadRequest(d) | ApiError::Conflict(d) | ApiError::TooLarge(d) => d.clone(),
            ApiError::UnsupportedMediaType(d) => d.clone(),
            ApiError::Unavailable(d) | ApiError::NoRoom(d) => d.clone(),
            ApiError::TooMany { detail, .. } => detail.clone(),
            ApiError::Unauthorized => "valid credentials are required".into(),
            ApiError::VapidRequired(why) => {
                format!("this endpoint requires VAPID (RFC 8292): {why}")
            }
            ApiError::Forbidden(d) => d.clone(),
            ApiError::NotFound(d) | ApiError::Http(_, d) => (*d).into(),
            ApiError::MethodNotAllowed(allow) => format!("allowed methods: {allow}"),
            ApiError::InsufficientStorage => {
                "the server's disk is full; nothing was stored, try again later".into()
            }
            ApiError::Internal => "internal error; it has been logged".into(),
        }
    }

    /// The response: a problem+json body and the headers its status needs.
    pub fn to_response(&self) -> Response {
        let status = self.status();
        let body = format!(
            "{{\"status\":{status},\"title\":{},\"detail\":{},\"type\":\"about:blank\"}}",
            json::string(reason(status)),
            json::string(&self.detail())
        );
        let mut response = Response::new(status).with_body("application/problem+json", body);
        match self {
            ApiError::Unauthorized => {
                response = response.header("WWW-Authenticate", "Basic realm=\"openpush\"");
            }
            ApiError::VapidRequired(_) => response = response.header("WWW-Authenticate", "vapid"),
            ApiError::MethodNotAllowed(allow) => response = response.header("Allow", allow.clone()),
            ApiError::TooMany {
                retry_after_secs, ..
            } => {
                response = response.header("Retry-After", retry_after_secs.to_string());
            }
            ApiError::Unavailable(_) | ApiError::InsufficientStorage | ApiError::NoRoom(_) => {
                response = response.header("Retry-After", "30");
            }
            _ => {}
        }
        response
    }
}

impl From<store::Error> for ApiError {
    fn from(e: store::Error) -> ApiError {
        match e {
            store::Error::Full => {
                log::error!("store: {e}");
                ApiError::InsufficientStorage
            }
            store::Error::Busy | store::Error::Closed | store::Error::Io(_) => {
                log::warn!("store: {e}");
                ApiError::Unavailable(format!("{e}; try again later"))
            }
            store::Error::Storage(_) => {
                log::error!("store: {e}");
                ApiError::Internal
            }
        }
    }
}

impl From<store::accounts::Refusal> for ApiError {
    fn from(r: store::accounts::Refusal) -> ApiError {
        use store::accounts::Refusal;
        match r {
            Refusal::NotFound => ApiError::NotFound("no such resource"),
            Refusal::Conflict(d) => ApiError::Conflict(d),
            Refusal::Invalid(d) => ApiError::BadRequest(d),
            Refusal::Limit(d) => ApiError::Forbidden(d),
        }
    }
}

impl From<crate::auth::Refusal> for ApiError {
    fn from(refusal: crate::auth::Refusal) -> ApiError {
        use crate::auth::Refusal;
        match refusal {
            Refusal::Unauthorized => ApiError::Unauthorized,
            Refusal::Backoff(wait) => ApiError::TooMany {
                detail: "too many failed logins; wait before trying again".into(),
                retry_after_secs: wait.as_secs().max(1),
            },
            Refusal::Busy => {
                ApiError::Unavailable("too many logins at once; try again later".into())
            }
            Refusal::HasherGone => ApiError::Internal,
            Refusal::Store(e) => e.into(),
        }
    }
}

impl From<crate::ws::NotAnUpgrade> for ApiError {
    fn from(e: crate::ws::NotAnUpgrade) -> ApiError {
        ApiError::BadRequest(format!("not a WebSocket upgrade: {}", e.0))
    }
}

impl From<crate::names::Invalid> for ApiError {
    fn from(invalid: crate::names::Invalid) -> ApiError {
        ApiError::BadRequest(invalid.0)
    }
}

/// The status of a refusal to queue a message, the same for every door.
impl From<Refused> for ApiError {
    fn from(refused: Refused) -> ApiError {
        match refused {
            Refused::NotFound => ApiError::NotFound("no such endpoint, token or topic"),
            Refused::Forbidden(why) | Refused::Limit(why) => ApiError::Forbidden(why),
            Refused::Crowded(why) => ApiError::TooMany {
                detail: why,
                retry_after_secs: 60,
            },
            Refused::NoRoom(overrun) => no_room(overrun),
            Refused::QueueFull(limit) => {
                if let Some(unlogged) = QUEUE_FULL_LOG.with(|tally| tally.count(Instant::now())) {
                    log::warn!("queue full, message refused{unlogged}");
                }
                ApiError::TooMany {
                    detail: format!(
                        "the queue is full ({} messages or {} bytes); try again when the device has caught up",
                        limit.messages, limit.bytes
                    ),
                    retry_after_secs: 60,
                }
            }
        }
    }
}

/// A post past the store's budget: 507, logged at most once a minute with how many were
/// refused meanwhile.
fn no_room(overrun: Overrun) -> ApiError {
    let detail = match overrun {
        Overrun::AnonymousShare(bytes) => format!(
            "the share of the store for messages from senders without an account ({bytes} bytes) \
             is full; nothing was stored, try again once devices have caught up"
        ),
        Overrun::UserAgents(bytes) => format!(
            "the share of the store for autopush user agents ({bytes} bytes) is full; nothing \
             was stored, try again once they have caught up"
        ),
        Overrun::Total(bytes) => format!(
            "the store's budget ({bytes} bytes of messages) is full; nothing was stored, try \
             again once devices have caught up"
        ),
    };
    if let Some(unlogged) = NO_ROOM_LOG.with(|tally| tally.count(Instant::now())) {
        log::warn!("post refused with 507: {detail}{unlogged}");
    }
    ApiError::NoRoom(detail)
}

thread_local! {
    static NO_ROOM_LOG: Tally = const { Tally::new(REFUSAL_LOG_PERIOD) };
    static QUEUE_FULL_LOG: Tally = const { Tally::new(REFUSAL_LOG_PERIOD) };
}
