//! `ApiError`: every way a request can fail, its status, and its one rendering.
//!
//! The layers below keep their own errors and know nothing of statuses: the store's
//! `store::Error`, `accounts::Refusal` and `queue::Refused`, the name rules' `names::Invalid`,
//! the WebSocket handshake's `ws::NotAnUpgrade`, logins' `auth::Refusal`, VAPID's `vapid::Refusal` (mapped by the
//! autopush door, which alone checks VAPID). Each becomes a status here, in its `From`, and
//! nowhere else.
//!
//! A door's errors have its wire form ([`ErrorForm`], named by the door's route table,
//! `crate::route::Door`): the OpenPush v0.1 `Error` schema (`status`, `title`, `detail`,
//! `type`), or ntfy's `{"code":40101,"http":401,"error":"…","link":"…"}` with the codes of
//! ntfy's `server/errors.go`, which ntfy's client libraries map to their exceptions. Errors
//! outside any door (a path no door knows, a malformed request) have the OpenPush form.
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

/// The wire form of a door's errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorForm {
    /// OpenPush v0.1's problem JSON (`status`, `title`, `detail`, `type`).
    OpenPush,
    /// ntfy's JSON (`code`, `http`, `error`, `link`).
    Ntfy,
}

/// ntfy's documentation of authentication, the `link` of its 401 and 403.
const NTFY_AUTH_LINK: &str = "https://ntfy.sh/docs/publish/#authentication";
/// ntfy's documentation of its limits, the `link` of its 429.
const NTFY_LIMITS_LINK: &str = "https://ntfy.sh/docs/publish/#limitations";

/// A refusal that ntfy has a code of its own for (`server/errors.go`): the code, ntfy's
/// message and the `link` of its answer.
#[derive(Debug)]
pub struct NtfyCode {
    /// ntfy's code (40004 …).
    pub code: u32,
    /// ntfy's message for it.
    pub message: &'static str,
    /// ntfy's `link`, or empty.
    pub link: &'static str,
}

/// Every way a request can fail; [`ApiError::status`] is its HTTP status.
#[derive(Debug)]
pub enum ApiError {
    /// 400: the request is malformed (the reason).
    BadRequest(String),
    /// 400 with ntfy's own code for the case (ntfy's routes show it), and the reason.
    BadRequestCoded(&'static NtfyCode, String),
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
            ApiError::BadRequest(_) | ApiError::BadRequestCoded(..) => 400,
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
            ApiError::BadRequestCoded(_, d) => d.clone(),
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

    /// ntfy's error code (`server/errors.go`), its message and its `link`. Codes ntfy has
    /// for these cases are used as they are (40101, 40301, 40401, 42901, 42909, 50701 …);
    /// a case ntfy has no code for gets its status times 100 (40500, 40900, 50300), as
    /// ntfy's own generic 40000 does. ntfy's client libraries fall back to the status for
    /// a code they do not know.
    pub fn ntfy_code(&self) -> (u32, &'static str, &'static str) {
        match self {
            ApiError::BadRequest(_) => (40000, "invalid request", ""),
            ApiError::BadRequestCoded(code, _) => (code.code, code.message, code.link),
            ApiError::Unauthorized | ApiError::VapidRequired(_) => {
                (40101, "unauthorized", NTFY_AUTH_LINK)
            }
            ApiError::Forbidden(_) => (40301, "forbidden", NTFY_AUTH_LINK),
            ApiError::NotFound(_) => (40401, "page not found", ""),
            ApiError::TooMany { detail, .. } if detail.contains("failed logins") => (
                42909,
                "limit reached: too many auth failures",
                NTFY_LIMITS_LINK,
            ),
            ApiError::TooMany { .. } => {
                (42901, "limit reached: too many requests", NTFY_LIMITS_LINK)
            }
            // The store's share for senders without an account is full: what ntfy answers
            // a UnifiedPush sender whose topic has no subscriber.
            ApiError::NoRoom(_) => (50701, "insufficient storage", ""),
            ApiError::Internal => (50001, "internal server error", ""),
            other => (u32::from(other.status()) * 100, reason(other.status()), ""),
        }
    }

    /// The response in a door's form.
    pub fn render(&self, form: ErrorForm) -> Response {
        match form {
            ErrorForm::OpenPush => self.to_response(),
            ErrorForm::Ntfy => self.to_ntfy_response(),
        }
    }

    /// The response as ntfy gives it: `{"code","http","error","link"}`, the error being
    /// ntfy's message and this server's detail.
    pub fn to_ntfy_response(&self) -> Response {
        let status = self.status();
        let (code, message, link) = self.ntfy_code();
        let detail = self.detail();
        let error = if detail.is_empty() || detail == message {
            message.to_owned()
        } else {
            format!("{message}; {detail}")
        };
        let mut body = format!(
            "{{\"code\":{code},\"http\":{status},\"error\":{}",
            json::string(&error)
        );
        if !link.is_empty() {
            body.push_str(",\"link\":");
            body.push_str(&json::string(link));
        }
        body.push('}');
        self.with_headers(Response::new(status).with_body("application/json", body))
    }

    /// The response: a problem+json body and the headers its status needs.
    pub fn to_response(&self) -> Response {
        let status = self.status();
        let body = format!(
            "{{\"status\":{status},\"title\":{},\"detail\":{},\"type\":\"about:blank\"}}",
            json::string(reason(status)),
            json::string(&self.detail())
        );
        self.with_headers(Response::new(status).with_body("application/problem+json", body))
    }

    /// The headers the status needs: `WWW-Authenticate`, `Allow`, `Retry-After`.
    fn with_headers(&self, mut response: Response) -> Response {
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
