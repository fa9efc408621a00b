//! `POST /message`: a webservice pushes `data` to the app behind a routing token.
//!
//! No auth: the routing token is the capability. The answer is 200 only after the
//! message is committed to disk (or, with `time_to_live: 0`, handed to the live stream or
//! dropped, as FCM does). `data` must be a JSON object of at most `max_data_bytes` as
//! compact JSON; it is delivered with its bytes as sent, minus insignificant whitespace.

use std::rc::Rc;

use miniserde::Deserialize;

use crate::config::Config;
use crate::delivery;
use crate::delivery::endpoints::app_queue;
use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::json;
use crate::names::check_name;
use crate::route::Outcome;
use crate::state::ServerState;
use crate::store::queue::NewMessage;
use crate::store::{Content, Priority};

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
    let (token, message) = read_message(req, &state.config())?;
    delivery::charge(state, token.as_bytes())?;
    let resolve = app_queue(token, delivery::client_limit(state));
    let published = delivery::publish(state, resolve, message).await?;
    Ok(Response::json(200, format!("{{\"id\":{}}}", published.id)).into())
}

/// The routing token and the message of a `POST /message` body, checked against the limits.
fn read_message(req: &Request, config: &Config) -> Result<(String, NewMessage), ApiError> {
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
    let priority = match fields.priority.as_deref() {
        None => None,
        Some("normal") => Some(Priority::Normal),
        Some("high") => Some(Priority::High),
        Some(_) => {
            return Err(ApiError::BadRequest(
                "`priority` must be \"normal\" or \"high\"".into(),
            ));
        }
    };
    if let Some(key) = &fields.collapse_key {
        check_name("collapse_key", key, limits.max_name_bytes)?;
    }
    let ttl_secs = fields
        .time_to_live
        .map_or(config.default_ttl.as_secs(), |t| {
            t.min(config.max_ttl.as_secs())
        });
    let message = NewMessage {
        content: Content::Json,
        data: data.to_vec(),
        priority,
        ttl_secs,
        collapse_key: fields.collapse_key,
        extras: Vec::new(),
        sequence: None,
    };
    Ok((fields.token, message))
}
