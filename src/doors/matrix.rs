//! The Matrix push gateway (`/_matrix/push/v1/notify`) that UnifiedPush Matrix clients
//! (Element, FluffyChat, SchildiChat) find at the root of their endpoint's host, and the
//! NextPush app at `/index.php/apps/uppush/gateway/matrix`.
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

use crate::delivery;
use crate::delivery::endpoints::{Endpoint, endpoint_of};
use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::json;
use crate::route::Segment::{self, Word};
use crate::route::{Guard, Outcome, Route};
use crate::state::ServerState;
use crate::store::Content;
use crate::store::queue::NewMessage;

/// The gateway, at the Matrix path and under NextPush's prefix (the NextPush app's).
/// The door: its routes, with errors in the OpenPush form.
pub const DOOR: crate::route::Door = crate::route::Door {
    routes: ROUTES,
    errors: crate::error::ErrorForm::OpenPush,
    headers: &[],
    task: None,
};

pub const ROUTES: &[Route] = &[
    Route::new(&["GET"], NOTIFY, Guard::None, |_, _, _| {
        Box::pin(async { Ok(discovery()) })
    }),
    Route::new(&["POST"], NOTIFY, Guard::None, |s, r, _| {
        Box::pin(notify(s, r))
    })
    .posts(),
    Route::new(&["GET"], NEXTPUSH, Guard::None, |_, _, _| {
        Box::pin(async { Ok(discovery()) })
    }),
    Route::new(&["POST"], NEXTPUSH, Guard::None, |s, r, _| {
        Box::pin(notify(s, r))
    })
    .posts(),
];

const NOTIFY: &[Segment] = &[Word("_matrix"), Word("push"), Word("v1"), Word("notify")];
const NEXTPUSH: &[Segment] = &[
    Word("index.php"),
    Word("apps"),
    Word("uppush"),
    Word("gateway"),
    Word("matrix"),
];

fn discovery() -> Outcome {
    Response::json(200, r#"{"unifiedpush":{"gateway":"matrix"}}"#).into()
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
    let base = crate::delivery::endpoints::base_url(state, req);
    let mut rejected = Vec::new();
    for device in body.notification.devices {
        let Some(endpoint) = endpoint_of(&device.pushkey, &base) else {
            rejected.push(device.pushkey);
            continue;
        };
        let message = |ttl_secs| NewMessage::new(Content::Json, compact.clone(), ttl_secs);
        let address = match &endpoint {
            Endpoint::Topic(topic) => topic,
            Endpoint::App(token) | Endpoint::Channel(token) => token,
        };
        delivery::charge(state, address.as_bytes())?;
        let outcome = match endpoint {
            Endpoint::Topic(topic) => {
                let from = req.client_addr.map(crate::limits::AddrKey::of);
                let message = message(config.topic_default_ttl.as_secs());
                crate::delivery::topics::post_to_topic(state, topic, None, from, message).await
            }
            Endpoint::App(token) => {
                let resolve =
                    crate::delivery::endpoints::app_queue(token, delivery::client_limit(state));
                delivery::publish(state, resolve, message(config.default_ttl.as_secs())).await
            }
            Endpoint::Channel(token) => {
                let limit = crate::delivery::endpoints::uaid_limit(state);
                let resolve = crate::delivery::endpoints::channel_queue(token, limit, false);
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
