//! `GET /subscribe`: a device's OpenPush SSE stream (the stream itself is `crate::stream`).
//!
//! Before the stream starts, what `Last-Event-ID` (or `?since=`) acknowledges leaves the
//! device's queue. Events are `id: <message id>` and `data:` one JSON object:
//! - a message posted to `POST /message`: `{"data":<object>,"registration_id":"..."}`, plus
//!   `"priority"` (`normal` or `high`) when the sender gave one — as in OpenPush v0.1;
//! - a message posted to the application's Web Push endpoint: `{"data":"<standard
//!   base64>","encoding":"base64","registration_id":"...","urgency":"..."}`, the body
//!   byte for byte; `urgency` is the RFC 8030 value (`very-low`, `low`, `normal`, `high`).
//!
//! Messages with a TTL of 0 are never stored and are sent without an `id:`, so they do not
//! move the client's Last-Event-ID. Nothing leaves the store here otherwise: a message is
//! deleted only when a later connection confirms it, or when its TTL ends.

use std::rc::Rc;

use base64ct::{Base64, Encoding};

use crate::auth;
use crate::error::ApiError;
use crate::http::Request;
use crate::hub::Reader;
use crate::json;
use crate::route::{Outcome, client_gone, recheck_after_attach};
use crate::sse;
use crate::state::ServerState;
use crate::store::{Content, MessageRecord};
use crate::stream::{Encoder, Event, Subscription};

pub async fn start(state: &Rc<ServerState>, req: &Request) -> Result<Outcome, ApiError> {
    let (client_id, _) = auth::client(&state.store, req).await?;
    let since = req
        .header("last-event-id")
        .or_else(|| req.query_param("since"));
    let confirmed = match since.map(str::trim) {
        None | Some("") => 0,
        Some(id) => id.parse::<u64>().map_err(|_| {
            ApiError::BadRequest("Last-Event-ID (or ?since=) must be an event id".into())
        })?,
    };
    let confirmed = crate::stream::resumable(state, confirmed).await?;
    if confirmed > 0 {
        state.store.confirm_later(vec![client_id], confirmed)?;
        log::debug!("client {client_id} confirmed messages up to {confirmed}");
    }
    recheck_after_attach(state, move |t| client_gone(t, client_id));
    let head = sse::head(state.config().retry);
    Ok(Outcome::Stream(
        head,
        Subscription::device(client_id, confirmed, &OpenPushSse),
        Reader::KEY,
    ))
}

/// The event data of a message for an OpenPush client.
pub fn event_data(record: &MessageRecord) -> Vec<u8> {
    let mut out = String::with_capacity(record.data.len() * 4 / 3 + 96);
    out.push_str("{\"data\":");
    match record.content {
        Content::Json => out.push_str(std::str::from_utf8(&record.data).unwrap_or("{}")),
        Content::Text => json::push_string(&mut out, &String::from_utf8_lossy(&record.data)),
        Content::Opaque => {
            out.push('"');
            out.push_str(&Base64::encode_string(&record.data));
            out.push_str("\",\"encoding\":\"base64\"");
        }
    }
    out.push_str(",\"registration_id\":");
    json::push_string(&mut out, &record.registration_id);
    if let Some(priority) = record.priority {
        if record.content == Content::Opaque {
            out.push_str(",\"urgency\":\"");
            out.push_str(priority.urgency());
        } else {
            out.push_str(",\"priority\":\"");
            out.push_str(priority.openpush());
        }
        out.push('"');
    }
    out.push('}');
    out.into_bytes()
}

/// OpenPush v0.1 Server-Sent Events.
pub struct OpenPushSse;

impl Encoder for OpenPushSse {
    fn protocol(&self) -> crate::hub::Protocol {
        crate::hub::Protocol::OpenPush
    }

    fn open(&self, _: &mut Vec<u8>, _: &Subscription) {}

    fn message(&self, out: &mut Vec<u8>, _: &Subscription, event: Event<'_>) {
        let id = event.stored.then_some(event.id);
        sse::push_event(out, id, &event_data(event.record));
    }

    fn keepalive(&self, out: &mut Vec<u8>, _: &Subscription) {
        out.extend_from_slice(sse::KEEPALIVE);
    }
}
