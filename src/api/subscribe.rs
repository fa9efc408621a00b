//! `GET /subscribe`: the client's one long-lived Server-Sent-Events stream.
//!
//! Order of a stream's life: confirm what `Last-Event-ID` acknowledges, attach to the hub
//! (so no commit from now on goes unnoticed), send the stored messages after the cursor
//! page by page, then wait: each hub notification sends the next stored messages, again
//! from the store, so events always leave in id order and a confirmation of id N never
//! covers an unsent message. The stream ends when the client goes away, a newer stream of
//! the same client replaces it, or a write stalls.
//! Events are `id: <message id>` and `data: {"data":<object>,"registration_id":"..."}`
//! (plus `"priority"` when the sender gave one). Messages with a TTL of 0 are never
//! stored and are sent without an `id:`, so they do not move the client's Last-Event-ID.
//! Nothing leaves the store here: a message is deleted only when a later connection
//! confirms it, or when its TTL ends.

use std::net::TcpStream;
use std::rc::Rc;

use async_io::Async;
use futures_lite::future;

use super::Outcome;
use crate::auth;
use crate::error::ApiError;
use crate::http::Request;
use crate::hub::{Closed, Slot, Wake};
use crate::json;
use crate::queue;
use crate::server::{ConnectionGuard, ServerState, now_millis, write_all};
use crate::sse;
use crate::store::MessageRecord;

/// Stored messages read per backlog page; bounds a reconnect's memory.
const BACKLOG_PAGE: usize = 64;

pub struct StreamStart {
    client_id: u64,
    after: u64,
}

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
    if confirmed > 0 {
        let removed = state
            .store
            .write(move |t, m| queue::confirm(t, m, client_id, confirmed))
            .await?;
        log::debug!("client {client_id} confirmed {removed} messages up to {confirmed}");
    }
    Ok(Outcome::Stream(StreamStart {
        client_id,
        after: confirmed,
    }))
}

/// The event data of a message for an OpenPush client.
pub fn event_data(record: &MessageRecord) -> Vec<u8> {
    let mut out = String::with_capacity(record.data.len() + 64);
    out.push_str("{\"data\":");
    out.push_str(std::str::from_utf8(&record.data).unwrap_or("{}"));
    out.push_str(",\"registration_id\":");
    json::push_string(&mut out, &record.registration_id);
    if let Some(priority) = &record.priority {
        out.push_str(",\"priority\":");
        json::push_string(&mut out, priority);
    }
    out.push('}');
    out.into_bytes()
}

pub async fn run(
    state: Rc<ServerState>,
    conn: Async<TcpStream>,
    start: StreamStart,
    guard: ConnectionGuard,
) {
    let client_id = start.client_id;
    let slot = state
        .hub
        .attach(client_id, state.config().limits.max_stream_buffer_bytes);
    crate::metrics::bump(&state.counters.streams_opened);
    log::debug!("client {client_id} connected ({} streams)", state.hub.len());
    let end = stream(&state, &conn, &slot, client_id, start.after).await;
    state.hub.detach(client_id, &slot);
    log::debug!("client {client_id} stream ended: {end}");
    drop(guard);
}

enum Step {
    Hub(Wake),
    Readable,
}

async fn stream(
    state: &ServerState,
    conn: &Async<TcpStream>,
    slot: &Slot,
    client_id: u64,
    after: u64,
) -> &'static str {
    let timeout = state.config().limits.write_timeout;
    if !write_all(conn, &sse::head(state.config().retry), timeout).await {
        return "client gone";
    }
    let mut cursor = after;
    // Boxed: the idle part of this future stays small while no catch-up runs.
    if let Err(end) = Box::pin(send_stored(state, conn, client_id, &mut cursor)).await {
        return end;
    }
    loop {
        let hub = async { Step::Hub(slot.next().await) };
        let readable = async {
            let _ = conn.readable().await;
            Step::Readable
        };
        let out = match future::or(hub, readable).await {
            Step::Hub(Wake::Stored) => {
                match Box::pin(send_stored(state, conn, client_id, &mut cursor)).await {
                    Ok(()) => continue,
                    Err(end) => return end,
                }
            }
            Step::Hub(Wake::Ephemeral(records)) => {
                let mut out = Vec::new();
                for record in &records {
                    sse::push_event(&mut out, None, &event_data(record));
                }
                out
            }
            Step::Hub(Wake::Keepalive) => sse::KEEPALIVE.to_vec(),
            Step::Hub(Wake::Closed(why)) => {
                return match why {
                    Closed::Replaced => "replaced by a newer stream",
                    Closed::Overflow => "client too slow",
                    Closed::Revoked => "revoked",
                };
            }
            Step::Readable => {
                let mut sink = [0u8; 512];
                match std::io::Read::read(&mut conn.get_ref(), &mut sink) {
                    Ok(0) => return "client closed",
                    Ok(_) => continue,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    Err(_) => return "client gone",
                }
            }
        };
        if !write_all(conn, &out, timeout).await {
            return "client gone or too slow";
        }
    }
}

/// Sends every stored message after `cursor`, page by page, advancing it.
async fn send_stored(
    state: &ServerState,
    conn: &Async<TcpStream>,
    client_id: u64,
    cursor: &mut u64,
) -> Result<(), &'static str> {
    loop {
        let (after, now) = (*cursor, now_millis());
        let page = state
            .store
            .read(move |t| queue::backlog(t, client_id, after, BACKLOG_PAGE, now))
            .await
            .map_err(|e| {
                log::warn!("reading stored messages failed: {e}");
                "store error"
            })?;
        let mut out = Vec::new();
        for (id, record) in &page {
            sse::push_event(&mut out, Some(*id), &event_data(record));
            *cursor = *id;
        }
        if !out.is_empty() && !write_all(conn, &out, state.config().limits.write_timeout).await {
            return Err("client gone or too slow");
        }
        if page.len() < BACKLOG_PAGE {
            return Ok(());
        }
    }
}
