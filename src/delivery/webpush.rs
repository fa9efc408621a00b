//! The Web Push rules (RFC 8030, RFC 8291 bodies) every endpoint of this server applies,
//! whichever door it belongs to: an OpenPush application's `/push/<token>` (and its
//! NextPush twin), an autopush channel's `/wpush/…`, an ntfy endpoint topic.
//!
//! Every endpoint answers the same way, whatever queue it feeds:
//! - `POST`/`PUT` with a body of 1 to `max_data_bytes` (4096) bytes → **201** with
//!   `TTL: <applied>` and `Location: /message/<name>`, a name of the message that does not
//!   reveal its id (`crate::locations`); the body is opaque and delivered byte for byte;
//! - `TTL` missing → the door's default TTL (documented per door), longer → shortened to
//!   its maximum and the applied value returned; `Urgency` travels to the device as a
//!   field; `Topic` (≤ 32 base64url characters) replaces an undelivered message with the
//!   same topic; any of the three with an empty value counts as not given;
//! - over the size limit → 413, unknown endpoint → 404, too many → 429 with `Retry-After`;
//!   never a redirect, and no other 4xx for a request that passes these checks (app
//!   servers such as Mastodon drop a subscription on most 4xx);
//! - `GET` → `{"unifiedpush":{"version":1}}`.
//!
//! `Content-Encoding: aesgcm` (the pre-RFC draft) is refused with 400: its keys travel in
//! headers that no distributor passes on, so the phone could never decrypt it. An
//! `Authorization: vapid …` or `WebPush …` header is not checked and never causes a 401.

use crate::delivery::{self, Published, endpoints};
use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::state::ServerState;
use crate::store::queue::NewMessage;
use crate::store::{Content, Priority};

/// What RFC 8030 lets a push request carry besides its body.
pub struct PushRequest {
    /// The body, opaque, byte for byte.
    pub body: Vec<u8>,
    /// The TTL applied: the sender's, shortened to the door's maximum, or its default.
    pub ttl_secs: u64,
    /// `Urgency`, if given.
    pub urgency: Option<Priority>,
    /// `Topic`, if given: replaces an undelivered message with the same topic.
    pub topic: Option<String>,
    /// `Content-Encoding`, as sent.
    pub encoding: Option<String>,
}

/// Reads a push request for a UnifiedPush endpoint: its headers and body, checked against
/// the limits; the body must be there and must not be `aesgcm`.
pub fn parse(
    req: &Request,
    default_ttl: u64,
    max_ttl: u64,
    max_bytes: usize,
) -> Result<PushRequest, ApiError> {
    let push = parse_fields(req, default_ttl, max_ttl, max_bytes)?;
    if push.body.is_empty() {
        return Err(ApiError::BadRequest("a push message needs a body".into()));
    }
    if push
        .encoding()
        .is_some_and(|e| e.eq_ignore_ascii_case("aesgcm"))
    {
        return Err(ApiError::BadRequest(
            "Content-Encoding aesgcm is not supported: encrypt with aes128gcm (RFC 8291)".into(),
        ));
    }
    Ok(push)
}

/// Reads a push request's body size, `TTL`, `Urgency` and `Topic`; nothing else.
pub fn parse_fields(
    req: &Request,
    default_ttl: u64,
    max_ttl: u64,
    max_bytes: usize,
) -> Result<PushRequest, ApiError> {
    if req.body.len() > max_bytes {
        return Err(ApiError::TooLarge(format!(
            "a push message is at most {max_bytes} bytes; this one is {}",
            req.body.len()
        )));
    }
    let ttl_secs = match req.header("ttl").map(str::trim) {
        None | Some("") => default_ttl,
        Some(ttl) => ttl
            .parse::<u64>()
            .map_err(|_| ApiError::BadRequest("TTL must be a number of seconds".into()))?
            .min(max_ttl),
    };
    let urgency = match req.header("urgency").map(str::trim) {
        None | Some("") => None,
        Some(u) => Some(Priority::from_urgency(u).ok_or_else(|| {
            ApiError::BadRequest("Urgency must be very-low, low, normal or high".into())
        })?),
    };
    let topic = match req.header("topic").map(str::trim) {
        None | Some("") => None,
        Some(t)
            if t.len() <= 32
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            Some(t.to_owned())
        }
        Some(_) => {
            return Err(ApiError::BadRequest(
                "Topic must be at most 32 base64url characters".into(),
            ));
        }
    };
    Ok(PushRequest {
        body: req.body.clone(),
        ttl_secs,
        urgency,
        topic,
        encoding: req.header("content-encoding").map(|e| e.trim().to_owned()),
    })
}

impl PushRequest {
    /// The `Content-Encoding`, unless empty.
    pub fn encoding(&self) -> Option<&str> {
        self.encoding.as_deref().filter(|e| !e.is_empty())
    }

    /// The message to queue: opaque, with `Urgency` as its priority and `Topic` as its
    /// collapse key.
    pub fn into_message(self) -> NewMessage {
        NewMessage {
            content: Content::Opaque,
            data: self.body,
            priority: self.urgency,
            ttl_secs: self.ttl_secs,
            collapse_key: self.topic,
            extras: Vec::new(),
            sequence: None,
        }
    }
}

/// The answer to an accepted push: 201, the applied TTL, and the message's resource under
/// a name that does not reveal its id (`crate::locations`).
pub fn created(state: &ServerState, published: &Published, ttl_secs: u64) -> Response {
    Response::new(201)
        .header("TTL", ttl_secs.to_string())
        .header("Location", state.locations.location(published.id))
}

/// `GET` on an endpoint: the UnifiedPush discovery answer.
pub fn discovery() -> Response {
    Response::json(200, r#"{"unifiedpush":{"version":1}}"#)
}

/// A push to an OpenPush application's endpoint (its routing token): 201 with `TTL` and
/// `Location`, or the error; the NextPush door answers the same pushes with a body added.
pub async fn post_to_app(
    state: &ServerState,
    req: &Request,
    token: String,
) -> Result<Response, ApiError> {
    let config = state.config();
    let push = parse(
        req,
        config.default_ttl.as_secs(),
        config.max_ttl.as_secs(),
        config.limits.max_data_bytes,
    )?;
    delivery::charge(state, token.as_bytes())?;
    let ttl = push.ttl_secs;
    let resolve = endpoints::app_queue(token, delivery::client_limit(state));
    let published = delivery::publish(state, resolve, push.into_message()).await?;
    Ok(created(state, &published, ttl))
}
