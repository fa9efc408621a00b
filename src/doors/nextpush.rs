//! The NextPush front door: the API of the Nextcloud app `uppush`, which the NextPush
//! Android distributor speaks, under `/index.php/apps/uppush/`.
//!
//! It is mapped onto what exists: a NextPush *device* is an OpenPush client of the
//! Basic-auth user, and its `deviceId` is the client's key; an *app* is an OpenPush
//! application on that client whose registration id is its routing token, the `token` of
//! NextPush, so that every message names its app. Routes and guards: [`ROUTES`]
//! (`/gateway/matrix` is the Matrix door's).
//!
//! An unknown or foreign device or app is 401, as in NextPush; an unknown push token 404.
//! Every 401 carries `WWW-Authenticate: Basic` (the app sends its credentials only after
//! that challenge). Bodies are JSON, as the app's Retrofit/Gson client sends them.
//! `appName` is not stored: apps are known by their token.
//!
//! The stream (`GET /device/<deviceId>`) is Server-Sent Events with named events whose data
//! is JSON: `start`, then `keepalive` (`{"type":"keepalive","keepalive":<keepalive_secs>}`),
//! `message` (`{"type":"message","token":…,"message":<standard base64 of the body>}`),
//! `deleteApp` (`{"type":"deleteApp","token":…}`, queued by `DELETE /app/<token>`), `ping`
//! at each keepalive tick, and `close` to a stream that a newer one of the same device
//! replaced (a device has one stream). A device whose stream was opened more than
//! `nextpush_warning_connects` times within 12 hours gets `warning` (`{"type":"warning",
//! "message":"Connected <n> times in 12 hours"}`) right after `start`, as NextPush sends it
//! (`crate::reconnects` counts).
//!
//! Delivery: NextPush has no acknowledgement and its app sends no `Last-Event-ID`, so a
//! stored message counts as delivered once its event is written to the socket; the stream
//! then removes it from the queue (`crate::stream`, `Encoder::confirms_on_write`). Until
//! then it is on disk: a restart or a broken connection before the write loses nothing, it
//! is sent again on the next connection. What a connection breaks with after the write (in
//! the kernel's buffers) is lost, as in NextPush itself.

use std::rc::Rc;

use base64ct::{Base64, Encoding};
use miniserde::Deserialize;

use crate::auth::User;
use crate::csrf;
use crate::delivery;
use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::hub::Reader;
use crate::json;
use crate::names::check_account_name;
use crate::route::Guard::{self, Capability, UserChanging};
use crate::route::Segment::{self, Secret, Word};
use crate::route::{Outcome, Route, body};
use crate::sse;
use crate::state::ServerState;
use crate::store::queue::{Destination, NewMessage};
use crate::store::tables::Tables;
use crate::store::{Content, accounts};
use crate::stream::{Encoder, Event, Subscription};

/// The `extras` of the event that tells a device one of its apps is gone.
/// (A JSON member, as `extras` are.)
const DELETE_APP: &[u8] = br#""nextpush":"deleteApp""#;

const SUCCESS: &str = r#"{"success":true}"#;

/// The routes under `/index.php/apps/uppush`, in the order they are tried.
/// The door: its routes, with errors in the OpenPush form.
pub const DOOR: crate::route::Door = crate::route::Door {
    routes: ROUTES,
    errors: crate::error::ErrorForm::OpenPush,
    headers: &[],
    task: None,
};

pub const ROUTES: &[Route] = &[
    // The app's login check: `{"success":true}`.
    Route::new(&["GET"], PREFIX, Guard::User, |s, r, _| {
        Box::pin(health(s, r))
    }),
    // JSON `deviceName`.
    Route::new(
        &["PUT"],
        &[P0, P1, P2, Word("device")],
        UserChanging,
        |s, r, _| Box::pin(create_device(s, r)),
    ),
    // The device id is the capability: the app sends no credentials here.
    Route::new(
        &["GET"],
        &[P0, P1, P2, Word("device"), Secret],
        Capability,
        |s, _, p| Box::pin(stream(s, p[4])),
    ),
    // The device must be the user's.
    Route::new(
        &["DELETE"],
        &[P0, P1, P2, Word("device"), Secret],
        UserChanging,
        |s, r, p| Box::pin(delete_device(s, r, p[4])),
    ),
    // JSON `deviceId`, `appName`; the device must be the user's.
    Route::new(
        &["PUT"],
        &[P0, P1, P2, Word("app")],
        UserChanging,
        |s, r, _| Box::pin(create_app(s, r)),
    ),
    // The app's device must be the user's.
    Route::new(
        &["DELETE"],
        &[P0, P1, P2, Word("app"), Secret],
        UserChanging,
        |s, r, p| Box::pin(delete_app(s, r, p[4])),
    ),
    // UnifiedPush discovery.
    Route::new(
        &["GET"],
        &[P0, P1, P2, Word("push"), Secret],
        Guard::None,
        |s, _, p| Box::pin(discovery(s, p[4])),
    ),
    // The token is the capability (Web Push rules, `crate::delivery::webpush`).
    Route::new(
        &["POST"],
        &[P0, P1, P2, Word("push"), Secret],
        Capability,
        |s, r, p| Box::pin(push(s, r, p[4])),
    )
    .posts(),
    // `/gateway/matrix` is the Matrix door's.
];

const PREFIX: &[Segment] = &[P0, P1, P2];
const P0: Segment = Word("index.php");
const P1: Segment = Word("apps");
const P2: Segment = Word("uppush");

async fn health(state: &Rc<ServerState>, req: &Request) -> Result<Outcome, ApiError> {
    state.auth.user(&state.store, req).await?;
    Ok(Response::json(200, SUCCESS).into())
}

#[derive(Deserialize)]
struct NewDevice {
    #[serde(rename = "deviceName")]
    device_name: String,
}

#[derive(Deserialize)]
struct NewApp {
    #[serde(rename = "deviceId")]
    device_id: String,
    #[serde(rename = "appName")]
    app_name: String,
}

/// `PUT /device/`: a new client of the user, named `deviceName` (with `-2`, `-3`, … when
/// the user has a client of that name already: a phone that registers again).
async fn create_device(state: &Rc<ServerState>, req: &Request) -> Result<Outcome, ApiError> {
    let me = csrf::user_for_change(state, req).await?;
    let new: NewDevice = body(req, "a JSON object with a string field `deviceName`")?;
    let limits = &state.config().limits;
    check_account_name("deviceName", &new.device_name, limits.max_name_bytes)?;
    let (max, max_bytes) = (limits.max_clients_per_user, limits.max_name_bytes);
    let (id, client) = state
        .store
        .write(move |t, _| {
            let mut outcome = accounts::create_client(t, me.id, &new.device_name, max)?;
            for n in 2..=20 {
                let Err(accounts::Refusal::Conflict(_)) = outcome else {
                    break;
                };
                let name = format!("{}-{n}", new.device_name);
                if name.len() > max_bytes {
                    break;
                }
                outcome = accounts::create_client(t, me.id, &name, max)?;
            }
            Ok(outcome)
        })
        .await??;
    log::info!("client {id} created (NextPush device)");
    let mut out = String::from(r#"{"success":true,"deviceId":"#);
    json::push_string(&mut out, &client.key);
    out.push('}');
    Ok(Response::json(200, out).into())
}

/// The user's client whose key is `device`; 401 for any other.
async fn device_of(state: &ServerState, me: &User, device: &str) -> Result<u64, ApiError> {
    let key = device.to_owned();
    let user = me.id;
    state
        .store
        .read(move |t| accounts::client_by_key(t, &key))
        .await?
        .filter(|(_, client)| client.user_id == user)
        .map(|(id, _)| id)
        .ok_or(ApiError::Unauthorized)
}

async fn delete_device(
    state: &Rc<ServerState>,
    req: &Request,
    device: &str,
) -> Result<Outcome, ApiError> {
    let me = csrf::user_for_change(state, req).await?;
    let id = device_of(state, &me, device).await?;
    state
        .store
        .write(move |t, m| accounts::delete_client_by_id(t, m, id))
        .await?
        .map_err(|_| ApiError::Unauthorized)?;
    log::info!("client {id} deleted (NextPush device)");
    Ok(Response::json(200, SUCCESS).into())
}

async fn create_app(state: &Rc<ServerState>, req: &Request) -> Result<Outcome, ApiError> {
    let me = csrf::user_for_change(state, req).await?;
    let new: NewApp = body(
        req,
        "a JSON object with string fields `deviceId` and `appName`",
    )?;
    // Required, as NextPush requires it, but not stored: apps are known by their token.
    let _ = new.app_name;
    let client = device_of(state, &me, &new.device_id).await?;
    let max = state.config().limits.max_apps_per_client;
    let app = state
        .store
        .write(move |t, _| accounts::register_app_named_by_token(t, client, max))
        .await??;
    let mut out = String::from(r#"{"success":true,"token":"#);
    json::push_string(&mut out, &app.routing_token);
    out.push('}');
    Ok(Response::json(200, out).into())
}

/// `DELETE /app/<token>`: the app goes with its queued messages, and its device is told
/// with a `deleteApp` event (queued like a message, under the default TTL).
async fn delete_app(
    state: &Rc<ServerState>,
    req: &Request,
    token: &str,
) -> Result<Outcome, ApiError> {
    let me = csrf::user_for_change(state, req).await?;
    let lookup = token.to_owned();
    let app = state
        .store
        .read(move |t| accounts::app_by_token(t, &lookup))
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let user = me.id;
    let client = app.client_id;
    let ident = app.routing_token.clone();
    state
        .store
        .write(move |t, m| {
            match accounts::get_client(&t.clients()?, client)? {
                Some(c) if c.user_id == user => {}
                _ => return Ok(Err(ApiError::Unauthorized)),
            }
            Ok(accounts::delete_app(t, m, client, &ident)?.map_err(|_| ApiError::Unauthorized))
        })
        .await??;
    let limit = delivery::client_limit(state);
    let registration_id = app.registration_id;
    let resolve = move |_: &crate::store::kv::WriteTransaction,
                        _: &mut crate::store::memory::Memory| {
        Ok(Ok(Destination {
            queue: client,
            registration_id,
            limit,
        }))
    };
    let event = NewMessage {
        content: Content::Opaque,
        data: Vec::new(),
        priority: None,
        ttl_secs: state.config().default_ttl.as_secs(),
        collapse_key: None,
        extras: DELETE_APP.to_vec(),
        sequence: None,
    };
    if let Err(e) = delivery::publish(state, resolve, event).await {
        log::info!(
            "the deleteApp event for client {client} was not queued: {}",
            e.detail()
        );
    }
    Ok(Response::json(200, SUCCESS).into())
}

/// `POST /push/<token>`: a Web Push endpoint (`crate::delivery::webpush` rules), answered as NextPush
/// does, with 201 `{"success":true}` and the applied `TTL`.
async fn push(state: &Rc<ServerState>, req: &Request, token: &str) -> Result<Outcome, ApiError> {
    let created = crate::delivery::webpush::post_to_app(state, req, token.to_owned()).await?;
    Ok(created.with_body("application/json", SUCCESS).into())
}

async fn discovery(state: &ServerState, token: &str) -> Result<Outcome, ApiError> {
    let token = token.to_owned();
    state
        .store
        .read(move |t| accounts::app_by_token(t, &token))
        .await?
        .ok_or(ApiError::NotFound("no such endpoint"))?;
    Ok(crate::delivery::webpush::discovery().into())
}

/// `GET /device/<deviceId>`: the device's stream, the only one of its queue.
async fn stream(state: &Rc<ServerState>, device: &str) -> Result<Outcome, ApiError> {
    let key = device.to_owned();
    let (client_id, _) = state
        .store
        .read(move |t| accounts::client_by_key(t, &key))
        .await?
        .ok_or(ApiError::Unauthorized)?;
    crate::route::recheck_after_attach(state, move |t| crate::route::client_gone(t, client_id));
    let config = state.config();
    let mut head = sse::head(config.retry);
    push_event(&mut head, "start", br#"{"type":"start"}"#);
    let opens = state
        .nextpush_opens
        .record(client_id, crate::clock::now_millis() / 1000);
    let warn_past = config.limits.nextpush_warning_connects;
    if warn_past > 0 && opens > warn_past {
        let warning = format!(
            r#"{{"type":"warning","message":"Connected {opens} times in {} hours"}}"#,
            crate::reconnects::WINDOW_HOURS
        );
        push_event(&mut head, "warning", warning.as_bytes());
    }
    let keepalive = format!(
        r#"{{"type":"keepalive","keepalive":{}}}"#,
        config.keepalive.as_secs()
    );
    push_event(&mut head, "keepalive", keepalive.as_bytes());
    Ok(Outcome::Stream(
        head,
        Subscription::device(client_id, 0, &NextPushSse),
        Reader::KEY,
    ))
}

fn push_event(out: &mut Vec<u8>, name: &str, data: &[u8]) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.push(b'\n');
    sse::push_event(out, None, data);
}

/// The event data of a message for a NextPush device: the body in standard base64 (JSON
/// from the Matrix gateway or `POST /message` too, as NextPush does), named by its app's
/// token.
pub fn event_data(token: &str, data: &[u8]) -> Vec<u8> {
    let mut out = String::with_capacity(data.len() * 4 / 3 + 96);
    out.push_str(r#"{"type":"message","token":"#);
    json::push_string(&mut out, token);
    out.push_str(r#","message":""#);
    out.push_str(&Base64::encode_string(data));
    out.push_str("\"}");
    out.into_bytes()
}

/// NextPush Server-Sent Events.
pub struct NextPushSse;

impl Encoder for NextPushSse {
    fn protocol(&self) -> crate::hub::Protocol {
        crate::hub::Protocol::NextPush
    }

    fn open(&self, _: &mut Vec<u8>, _: &Subscription) {}

    fn message(&self, out: &mut Vec<u8>, _: &Subscription, event: Event<'_>) {
        let token = &event.record.registration_id;
        if event.record.extras == DELETE_APP {
            let mut data = String::from(r#"{"type":"deleteApp","token":"#);
            json::push_string(&mut data, token);
            data.push('}');
            push_event(out, "deleteApp", data.as_bytes());
        } else {
            push_event(out, "message", &event_data(token, &event.record.data));
        }
    }

    fn keepalive(&self, out: &mut Vec<u8>, _: &Subscription) {
        push_event(out, "ping", br#"{"type":"ping"}"#);
    }

    fn confirms_on_write(&self) -> bool {
        true
    }

    fn replaced(&self, out: &mut Vec<u8>) {
        push_event(out, "close", br#"{"type":"close"}"#);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_events_carry_the_token_and_base64() {
        let data = event_data("tok", b"\x00\xffhi");
        assert_eq!(
            data,
            br#"{"type":"message","token":"tok","message":"AP9oaQ=="}"#
        );
        let mut out = Vec::new();
        push_event(&mut out, "ping", br#"{"type":"ping"}"#);
        assert_eq!(out, b"event: ping\ndata: {\"type\":\"ping\"}\n\n");
    }
}
