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

use std::future::Future;
use std::net::TcpStream;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use async_io::{Async, Timer};
use futures_lite::AsyncWrite;

use super::Outcome;
use crate::auth;
use crate::error::ApiError;
use crate::http::Request;
use crate::hub::{Closed, Slot, Wake};
use crate::json;
use crate::queue;
use crate::server::{ConnectionGuard, ServerState, now_millis};
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

/// The task of a stream that starts now.
pub fn stream(conn: Async<TcpStream>, start: StreamStart, guard: ConnectionGuard) -> Stream {
    let state = guard.state();
    let config = state.config();
    let client_id = start.client_id;
    let slot = state
        .hub
        .attach(client_id, config.limits.max_stream_buffer_bytes);
    crate::metrics::bump(&state.counters.streams_opened);
    log::debug!("client {client_id} connected ({} streams)", state.hub.len());
    Stream {
        conn,
        slot,
        client_id,
        cursor: start.after,
        out: sse::head(config.retry),
        written: 0,
        stall: None,
        read: None,
        more_stored: true,
        guard,
    }
}

type PageRead = Pin<Box<dyn Future<Output = crate::store::Result<Vec<(u64, MessageRecord)>>>>>;

/// One live stream, written as a state machine by hand so that an idle stream holds only
/// these fields: no buffer (`out` is empty and unallocated between writes), no timer
/// (`stall` exists only while a write waits), no read in flight. Dropping it detaches it
/// from the hub and releases its connection.
pub struct Stream {
    conn: Async<TcpStream>,
    slot: Rc<Slot>,
    client_id: u64,
    /// The last stored message id sent (or confirmed).
    cursor: u64,
    /// Bytes to write; `written` of them are on the socket.
    out: Vec<u8>,
    written: usize,
    /// Fires when the socket has accepted nothing for the configured write timeout.
    stall: Option<Pin<Box<Timer>>>,
    /// The store read of the next page of messages, while one is in flight.
    read: Option<PageRead>,
    /// The store may hold messages after `cursor` that were not read yet.
    more_stored: bool,
    guard: ConnectionGuard,
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.guard.state().hub.detach(self.client_id, &self.slot);
    }
}

impl Stream {
    fn start_read(&mut self) {
        let (store, client_id, after, now) = (
            self.guard.state().store.clone(),
            self.client_id,
            self.cursor,
            now_millis(),
        );
        self.read = Some(Box::pin(async move {
            store
                .read(move |t| queue::backlog(t, client_id, after, BACKLOG_PAGE, now))
                .await
        }));
    }
}

impl Future for Stream {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let end = this.run(cx);
        if let Poll::Ready(why) = end {
            log::debug!("client {} stream ended: {why}", this.client_id);
        }
        end.map(drop)
    }
}

impl Stream {
    fn run(&mut self, cx: &mut Context<'_>) -> Poll<&'static str> {
        let this = self;
        // Bytes a client may send in one turn before the stream yields to the others.
        let mut unread_budget = 16 * 1024usize;
        loop {
            if this.written < this.out.len() {
                let mut socket = &this.conn;
                match Pin::new(&mut socket).poll_write(cx, &this.out[this.written..]) {
                    Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Poll::Ready("client gone"),
                    Poll::Ready(Ok(n)) => {
                        this.written += n;
                        this.stall = None;
                        continue;
                    }
                    Poll::Pending => {
                        let timeout = this.guard.state().config().limits.write_timeout;
                        let stall = this
                            .stall
                            .get_or_insert_with(|| Box::pin(Timer::after(timeout)));
                        if stall.as_mut().poll(cx).is_ready() {
                            return Poll::Ready("client too slow");
                        }
                        return Poll::Pending;
                    }
                }
            }
            if !this.out.is_empty() {
                this.out = Vec::new();
                this.written = 0;
                this.stall = None;
            }
            if let Some(read) = &mut this.read {
                let page = match read.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(page)) => page,
                    Poll::Ready(Err(e)) => {
                        log::warn!("reading stored messages failed: {e}");
                        return Poll::Ready("store error");
                    }
                };
                this.read = None;
                this.more_stored = page.len() == BACKLOG_PAGE;
                for (id, record) in &page {
                    sse::push_event(&mut this.out, Some(*id), &event_data(record));
                    this.cursor = *id;
                }
                continue;
            }
            if std::mem::take(&mut this.more_stored) {
                this.start_read();
                continue;
            }
            match this.slot.poll_next(cx) {
                Poll::Ready(Wake::Stored) => {
                    this.more_stored = true;
                    continue;
                }
                Poll::Ready(Wake::Ephemeral(records)) => {
                    for record in &records {
                        sse::push_event(&mut this.out, None, &event_data(record));
                    }
                    continue;
                }
                Poll::Ready(Wake::Keepalive) => {
                    this.out = sse::KEEPALIVE.to_vec();
                    continue;
                }
                Poll::Ready(Wake::Closed(why)) => {
                    return Poll::Ready(match why {
                        Closed::Replaced => "replaced by a newer stream",
                        Closed::Overflow => "client too slow",
                        Closed::Revoked => "revoked",
                    });
                }
                Poll::Pending => {}
            }
            // Nothing to send: watch for the client closing (it sends nothing otherwise).
            match this.conn.poll_readable(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(_)) => return Poll::Ready("client gone"),
                Poll::Ready(Ok(())) => {
                    let mut sink = [0u8; 512];
                    match std::io::Read::read(&mut this.conn.get_ref(), &mut sink) {
                        Ok(0) => return Poll::Ready("client closed"),
                        Ok(n) => {
                            unread_budget = unread_budget.saturating_sub(n);
                            if unread_budget == 0 {
                                cx.waker().wake_by_ref();
                                return Poll::Pending;
                            }
                            continue;
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                        Err(_) => return Poll::Ready("client gone"),
                    }
                }
            }
        }
    }
}
