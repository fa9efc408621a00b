//! `POST /message`: a webservice pushes `data` to the app behind a routing token.
//!
//! No auth: the routing token is the capability. The answer is 200 only after the
//! message is committed to disk (or, with `time_to_live: 0`, handed to the live stream or
//! dropped, as FCM does). `data` must be a JSON object of at most `max_data_bytes` as
//! compact JSON; it is delivered with its bytes as sent, minus insignificant whitespace.

use std::rc::Rc;

use miniserde::Deserialize;

use super::{Outcome, check_name};
use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::json;
use crate::queue::{self, NewMessage, Refused};
use crate::server::{ServerState, now_millis};
use crate::store::memory::QueueSize;

#[derive(Deserialize)]
struct MessageFields {
    token: String,
    priority: Option<String>,
    time_to_live: Option<u64>,
    collapse_key: Option<String>,
}

const SHAPE: &str = "a JSON object with a string `token`, an object `data`, and optionally \
                     `priority` (\"normal\" or \"high\"), `time_to_live` (seconds) and `collapse_key`";

pub async fn post(state: &Rc<ServerState>, req: &Request) -> Result<Outcome, ApiError> {
    let config = state.config();
    let limits = &config.limits;
    let compact = json::compact(&req.body)
        .map_err(|e| ApiError::BadRequest(format!("the request body is not valid JSON: {e}")))?;
    let text = std::str::from_utf8(&compact).map_err(|_| ApiError::BadRequest(SHAPE.into()))?;
    let fields: MessageFields =
        miniserde::json::from_str(text).map_err(|_| ApiError::BadRequest(SHAPE.into()))?;
    let data = match json::object_field(&compact, "data") {
        Some(data) if data.first() == Some(&b'{') => data,
        Some(_) => return Err(ApiError::BadRequest("`data` must be a JSON object".into())),
        None => return Err(ApiError::BadRequest(format!("`data` is required: {SHAPE}"))),
    };
    if data.len() > limits.max_data_bytes {
        return Err(ApiError::TooLarge(format!(
            "`data` is {} bytes as compact JSON; the limit is {}",
            data.len(),
            limits.max_data_bytes
        )));
    }
    if fields.token.is_empty() || fields.token.len() > 128 {
        return Err(ApiError::BadRequest(
            "`token` must be a routing token".into(),
        ));
    }
    if let Some(p) = &fields.priority
        && p != "normal"
        && p != "high"
    {
        return Err(ApiError::BadRequest(
            "`priority` must be \"normal\" or \"high\"".into(),
        ));
    }
    if let Some(key) = &fields.collapse_key {
        check_name("collapse_key", key, limits.max_name_bytes)?;
    }
    let token_key: [u8; 16] = crate::secret::digest(fields.token.as_bytes())[..16]
        .try_into()
        .expect("a digest is 32 bytes");
    if let Err(wait) = state.post_rate.take(token_key, std::time::Instant::now()) {
        return Err(ApiError::TooMany {
            detail: "too many messages for this token; slow down".into(),
            retry_after_secs: wait.as_secs() + 1,
        });
    }
    let ttl_secs = fields
        .time_to_live
        .map_or(config.default_ttl.as_secs(), |t| {
            t.min(config.max_ttl.as_secs())
        });
    let message = NewMessage {
        token: fields.token,
        data: data.to_vec(),
        priority: fields.priority,
        ttl_secs,
        collapse_key: fields.collapse_key,
    };
    let now = now_millis();
    let limit = QueueSize {
        messages: limits.max_queued_per_client,
        bytes: limits.max_queued_bytes_per_client,
    };
    let accepted = state
        .store
        .write(move |t, m| queue::enqueue(t, m, message, now, limit))
        .await?;
    let accepted = match accepted {
        Ok(accepted) => accepted,
        Err(Refused::UnknownToken) => return Err(ApiError::NotFound("unknown routing token")),
        Err(Refused::QueueFull) => {
            log::warn!("queue full, message refused");
            return Err(ApiError::TooMany {
                detail: format!(
                    "the device's queue is full ({} messages or {} bytes); try again when it has caught up",
                    limit.messages, limit.bytes
                ),
                retry_after_secs: 60,
            });
        }
    };
    let live = if accepted.stored {
        state.hub.notify(accepted.client_id)
    } else {
        state
            .hub
            .deliver_now(accepted.client_id, Rc::new(accepted.record))
    };
    if live {
        crate::metrics::bump(&state.counters.delivered_live);
    }
    log::debug!(
        "message {} for client {}: {}",
        accepted.id,
        accepted.client_id,
        match (accepted.stored, live) {
            (true, true) => "stored, streamed",
            (true, false) => "stored",
            (false, true) => "streamed only (ttl 0)",
            (false, false) => "dropped (ttl 0, device offline)",
        }
    );
    Ok(Response::json(200, format!("{{\"id\":{}}}", accepted.id)).into())
}
