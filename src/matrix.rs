//! The Matrix push gateway (`/_matrix/push/v1/notify`) that UnifiedPush Matrix clients
//! (Element, FluffyChat, SchildiChat) find at the root of their endpoint's host.
//!
//! `GET` answers `{"unifiedpush":{"gateway":"matrix"}}`. `POST` takes the Matrix Push
//! Gateway API body: for every device whose `pushkey` is an endpoint of this server — an
//! endpoint topic (`/<topic>`, with or without `?up=1`), an application's `/push/<token>`,
//! or an autopush channel's `/wpush/v1/<token>` (Sunup), on this server's host — the JSON the homeserver sent is delivered to that endpoint, as
//! it is (what Element's UnifiedPush receiver parses), under the Web Push rules of that
//! endpoint (its TTL default, its queue limit, its post rate: past it the whole request
//! gets 429 with `Retry-After`, and the homeserver retries it). The answer is 200
//! `{"rejected":[…]}` with the pushkeys that are not endpoints here, so the homeserver
//! drops those pushers. A `/wpush/v2/` endpoint is bound to an app server's VAPID key,
//! which a homeserver cannot sign with: it is rejected too.

use std::rc::Rc;

use miniserde::Deserialize;

use crate::api::Outcome;
use crate::delivery;
use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::json;
use crate::names::is_endpoint_topic;
use crate::state::ServerState;
use crate::store::Content;
use crate::store::queue::NewMessage;

pub async fn route(
    state: &Rc<ServerState>,
    req: &Request,
    path: &[&str],
) -> Option<Result<Outcome, ApiError>> {
    if path != ["_matrix", "push", "v1", "notify"] {
        return None;
    }
    Some(match req.method.as_str() {
        "GET" => Ok(Response::json(200, r#"{"unifiedpush":{"gateway":"matrix"}}"#).into()),
        "POST" => notify(state, req).await,
        _ => Err(ApiError::MethodNotAllowed("GET, POST")),
    })
}

#[derive(Deserialize)]
struct Body {
    notification: Notification,
}

#[derive(Deserialize)]
struct Notification {
    devices: Vec<Device>,
}

#[derive(Deserialize)]
struct Device {
    pushkey: String,
}

/// Where a pushkey points on this server.
enum Endpoint {
    Topic(String),
    App(String),
    /// An autopush channel without a VAPID key.
    Channel(String),
}

pub async fn notify(state: &Rc<ServerState>, req: &Request) -> Result<Outcome, ApiError> {
    let compact = json::compact(&req.body)
        .map_err(|e| ApiError::BadRequest(format!("the request body is not valid JSON: {e}")))?;
    let body: Body = miniserde::json::from_str(std::str::from_utf8(&compact).unwrap_or(""))
        .map_err(|_| {
            ApiError::BadRequest(
                "the body must be a Matrix push notification: {\"notification\":{\"devices\":[{\"pushkey\":…}]}}"
                    .into(),
            )
        })?;
    let config = state.config();
    if compact.len() > config.limits.max_data_bytes {
        return Err(ApiError::TooLarge(format!(
            "a notification is at most {} bytes as compact JSON",
            config.limits.max_data_bytes
        )));
    }
    let base = crate::webpush::base_url(state, req);
    let mut rejected = Vec::new();
    for device in body.notification.devices {
        let Some(endpoint) = endpoint_of(&device.pushkey, &base) else {
            rejected.push(device.pushkey);
            continue;
        };
        let message = |ttl_secs| NewMessage {
            content: Content::Json,
            data: compact.clone(),
            priority: None,
            ttl_secs,
            collapse_key: None,
            extras: Vec::new(),
        };
        let address = match &endpoint {
            Endpoint::Topic(topic) => topic,
            Endpoint::App(token) | Endpoint::Channel(token) => token,
        };
        delivery::charge(state, address.as_bytes())?;
        let outcome = match endpoint {
            Endpoint::Topic(topic) => {
                let from = req.client_addr.map(crate::limits::AddrKey::of);
                let message = message(config.topic_default_ttl.as_secs());
                crate::ntfy::post_to_topic(state, topic, None, from, message).await
            }
            Endpoint::App(token) => {
                let resolve = crate::api::message::app_queue(token, delivery::client_limit(state));
                delivery::publish(state, resolve, message(config.default_ttl.as_secs())).await
            }
            Endpoint::Channel(token) => {
                let limit = crate::autopush::endpoint::uaid_limit(state);
                let resolve = crate::autopush::endpoint::channel_queue(token, limit, false);
                delivery::publish(state, resolve, message(config.default_ttl.as_secs())).await
            }
        };
        match outcome {
            Ok(_) => {}
            Err(e) if matches!(e.status(), 403 | 404) => rejected.push(device.pushkey),
            Err(e) => return Err(e),
        }
    }
    let mut out = String::from("{\"rejected\":[");
    for (i, key) in rejected.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json::push_string(&mut out, key);
    }
    out.push_str("]}");
    Ok(Response::json(200, out).into())
}

/// The endpoint a pushkey names, if it is one of this server's: same host as `base` (the
/// scheme may differ behind a TLS proxy), path `/<endpoint topic>`, `/push/<token>`, a
/// NextPush endpoint `/index.php/apps/uppush/push/<token>` (`crate::nextpush`) or an
/// autopush channel's `/wpush/v1/<token>`.
fn endpoint_of(pushkey: &str, base: &str) -> Option<Endpoint> {
    let strip_scheme = |url: &str| -> Option<String> {
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))?;
        Some(rest.to_owned())
    };
    let key = strip_scheme(pushkey)?;
    let base = strip_scheme(base)?;
    let path = key.strip_prefix(base.as_str())?;
    let path = path.strip_prefix('/')?;
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    if !query.is_empty() && query != "up=1" {
        return None;
    }
    match path.split('/').collect::<Vec<_>>().as_slice() {
        [topic] if is_endpoint_topic(topic) => Some(Endpoint::Topic((*topic).to_owned())),
        ["push", token] | ["index.php", "apps", "uppush", "push", token] if !token.is_empty() => {
            Some(Endpoint::App((*token).to_owned()))
        }
        ["wpush", "v1", token] if !token.is_empty() => Some(Endpoint::Channel((*token).to_owned())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushkeys_match_by_host_and_path() {
        let base = "https://push.example.org";
        let topic = |k| matches!(endpoint_of(k, base), Some(Endpoint::Topic(_)));
        assert!(topic("https://push.example.org/upAbCdEf123456?up=1"));
        assert!(topic("http://push.example.org/upAbCdEf123456"));
        assert!(!topic("https://push.example.org.evil/upAbCdEf123456"));
        assert!(!topic("https://other.org/upAbCdEf123456"));
        assert!(!topic("https://push.example.org/updates"));
        assert!(matches!(
            endpoint_of("https://push.example.org/push/tok", base),
            Some(Endpoint::App(_))
        ));
        assert!(matches!(
            endpoint_of("https://push.example.org/wpush/v1/tok", base),
            Some(Endpoint::Channel(_))
        ));
        assert!(endpoint_of("https://push.example.org/wpush/v2/tok", base).is_none());
        assert!(matches!(
            endpoint_of(
                "https://push.example.org/index.php/apps/uppush/push/tok",
                base
            ),
            Some(Endpoint::App(_))
        ));
    }
}
