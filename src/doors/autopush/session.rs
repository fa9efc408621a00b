//! One autopush WebSocket connection: the upgrade, the hello, then a stream of the user
//! agent's queue that also answers its requests.
//!
//! Order: the 101 answer; the client's first text message must be a `hello` within
//! `hello_timeout_secs` (pings are answered meanwhile); the hello resumes or creates the
//! uaid in one store write; the `hello` answer goes out first on the stream, then the
//! stored messages not yet acknowledged, then live ones. A second connection that says
//! hello with the same uaid replaces this one (close 4000). Requests (`register`, `ack`,
//! …) are answered in order by [`Autopush::requests`]; a message the protocol does not know,
//! or that does not parse, closes the connection with 1002 and the reason. When the
//! connection ends, the uaid's last-seen time is set (idle uaids expire).

use std::rc::Rc;
use std::time::Instant;

use async_io::Timer;
use futures_lite::{AsyncReadExt, future};

use super::channels::{self, Change};
use super::protocol::{self, ClientMessage};
use crate::clock::now_millis;
use crate::config::Limits;
use crate::error::ApiError;
use crate::http::Request;
use crate::http::write_all;
use crate::hub::Reader;
use crate::limits::AddrKey;
use crate::route::Outcome;
use crate::state::{ConnectionGuard, ServerState};
use crate::store::autopush;
use crate::store::queue::Refused;
use crate::stream::{self, Answer, Encoder, Event, Frames, Reply, Requester, Subscription};
use crate::transport::Conn;
use crate::vapid;
use crate::ws;

/// Closes the connection of a uaid that said hello elsewhere (autopush's code for it).
const REPLACED: u16 = 4000;

/// `GET <autopush_path>` with `Upgrade: websocket`.
pub fn upgrade(state: &Rc<ServerState>, req: &Request) -> Result<Outcome, ApiError> {
    let accept = ws::accept_request(req)?;
    let head = response_head(&accept, req.header("sec-websocket-protocol"));
    let base = crate::delivery::endpoints::base_url(state, req);
    let client = req.client_addr.map(AddrKey::of);
    Ok(Outcome::Upgrade(Box::new(move |conn, guard| {
        Box::pin(session(conn, head, guard, base, client))
    })))
}

/// The 101 answer; Firefox asks for the `push-notification` subprotocol and gets it.
fn response_head(accept: &str, protocols: Option<&str>) -> Vec<u8> {
    let mut head = ws::response_head(accept);
    let asked = protocols.is_some_and(|p| p.split(',').any(|p| p.trim() == "push-notification"));
    if asked {
        head.truncate(head.len() - 2);
        head.extend_from_slice(b"Sec-WebSocket-Protocol: push-notification\r\n\r\n");
    }
    head
}

async fn session(
    mut conn: Conn,
    head: Vec<u8>,
    guard: ConnectionGuard,
    base: String,
    client: Option<AddrKey>,
) {
    let state = guard.state().clone();
    let config = state.config();
    let limits = &config.limits;
    if !write_all(&mut conn, &head, limits.write_timeout).await {
        return;
    }
    let mut frames = Box::new(Frames::new(ws::FrameReader::with_text(
        limits.max_ws_message_bytes as u64,
    )));
    let Some(hello) = read_hello(&mut conn, &mut frames, &state).await else {
        return;
    };
    let uaid = match protocol::parse(&hello) {
        Ok(ClientMessage::Hello { uaid }) => uaid,
        Ok(_) => return close(&mut conn, &state, 1002, "the first message must be a hello").await,
        Err(why) => return close(&mut conn, &state, 1002, why).await,
    };
    let said = resume_or_create(&state, uaid, client, limits).await;
    let hello = match said {
        Ok(Ok(hello)) => hello,
        Ok(Err(refused)) => {
            if let Refused::Crowded(why) = refused {
                log::info!("autopush hello refused: {why}");
            }
            return close(&mut conn, &state, 1013, "too many uaids; try again later").await;
        }
        Err(e) => {
            log::warn!("autopush hello failed: {e}");
            return close(
                &mut conn,
                &state,
                1011,
                "the server could not store the hello",
            )
            .await;
        }
    };
    if hello.new {
        log::info!("autopush user agent {} created", hello.queue);
    }
    let mut out = Vec::new();
    ws::push_text(&mut out, protocol::hello(&hello.uaid).as_bytes());
    let sub = Subscription {
        requester: Some(Box::new(Requester {
            endpoint_base: base,
            address: client,
        })),
        ..Subscription::device(hello.queue, 0, &Autopush)
    };
    // The stream is a task of its own: this hello's future (over a kilobyte) ends here.
    let stream = stream::start_with_frames(conn, out, sub, Reader::KEY, guard, Some(frames));
    state.executor.spawn(stream).detach();
}

/// Resumes a known uaid with a read (its last-seen time waits for the next commit, as an
/// ack does), or makes a new one in a write of its own: a reconnecting user agent costs
/// the flash no commit. A new one costs its address one of `new_uaids_per_hour_per_addr`
/// (the host itself is not limited) and must fit `max_uaids_per_addr` and `max_uaids`.
async fn resume_or_create(
    state: &ServerState,
    uaid: Option<String>,
    client: Option<AddrKey>,
    limits: &Limits,
) -> crate::store::Result<Result<autopush::Hello, Refused>> {
    let now = now_millis();
    if let Some(asked) = uaid.clone() {
        let known = state.store.read(move |t| autopush::find(t, &asked)).await?;
        if let Some(queue) = known {
            if let Err(e) = state
                .store
                .write_later(move |t, _| autopush::touch(t, queue, now))
            {
                log::warn!("recording when user agent {queue} was last seen failed: {e}");
            }
            return Ok(Ok(autopush::Hello {
                uaid: uaid.unwrap_or_default().to_ascii_lowercase(),
                queue,
                new: false,
            }));
        }
    }
    if let Some(addr) = client
        && state.new_uaids.take(addr, Instant::now()).is_err()
    {
        return Ok(Err(Refused::Crowded(format!(
            "this address has created {} uaids in the last hour",
            limits.new_uaids_per_hour_per_addr
        ))));
    }
    let address = client.map_or([0; 16], AddrKey::octets);
    let (per_address, total) = (limits.max_uaids_per_addr, limits.max_uaids);
    let said = state
        .store
        .write(move |t, _| autopush::hello(t, uaid.as_deref(), address, now, per_address, total))
        .await;
    if let Some(addr) = client
        && !matches!(&said, Ok(Ok(hello)) if hello.new)
    {
        state.new_uaids.give_back(addr);
    }
    said
}

/// Reads until the client's first text message; `None` if it closed, broke the protocol
/// or was silent past the hello timeout (each answered as it should be).
async fn read_hello(
    conn: &mut Conn,
    frames: &mut Frames,
    state: &ServerState,
) -> Option<Box<[u8]>> {
    let deadline = Instant::now() + state.config().limits.hello_timeout;
    loop {
        if let Some(text) = frames.next_request() {
            return Some(text);
        }
        let mut buf = [0u8; 512];
        let read = async { Some(conn.read(&mut buf).await.unwrap_or(0)) };
        let timeout = async {
            Timer::at(deadline).await;
            None
        };
        let n = match future::or(read, timeout).await {
            Some(0) => return None,
            Some(n) => n,
            None => {
                close(conn, state, 1008, "no hello in time").await;
                return None;
            }
        };
        let mut out = Vec::new();
        let mut ended = false;
        frames.feed(&buf[..n], &mut |frame| match frame {
            ws::Incoming::Ping(payload) => ws::push_pong(&mut out, payload),
            ws::Incoming::Close(code) => {
                ws::push_close(&mut out, code.unwrap_or(1000), "");
                ended = true;
            }
            ws::Incoming::Error(why) => {
                ws::push_close(&mut out, 1002, why);
                ended = true;
            }
            ws::Incoming::Pong | ws::Incoming::Data(_) | ws::Incoming::Text(_) => {}
        });
        let timeout = state.config().limits.write_timeout;
        if !out.is_empty() && !write_all(conn, &out, timeout).await || ended {
            return None;
        }
    }
}

async fn close(conn: &mut Conn, state: &ServerState, code: u16, why: &str) {
    log::debug!("autopush connection closed: {why}");
    let mut out = Vec::new();
    ws::push_close(&mut out, code, why);
    write_all(conn, &out, state.config().limits.write_timeout).await;
}

/// The autopush wire format of a user agent's stream.
pub struct Autopush;

impl Encoder for Autopush {
    fn protocol(&self) -> crate::hub::Protocol {
        crate::hub::Protocol::Autopush
    }

    fn open(&self, _: &mut Vec<u8>, _: &Subscription) {}

    fn message(&self, out: &mut Vec<u8>, _: &Subscription, event: Event<'_>) {
        let text = protocol::notification(event.id, event.record, now_millis());
        ws::push_text(out, text.as_bytes());
    }

    fn keepalive(&self, out: &mut Vec<u8>, _: &Subscription) {
        ws::push_ping(out, b"");
    }

    fn websocket(&self) -> bool {
        true
    }

    fn replaced(&self, out: &mut Vec<u8>) {
        ws::push_close(
            out,
            REPLACED,
            "another connection said hello with this uaid",
        );
    }

    fn max_request(&self, state: &ServerState) -> Option<u64> {
        Some(state.config().limits.max_ws_message_bytes as u64)
    }

    fn requests(
        &self,
        state: &Rc<ServerState>,
        sub: &Subscription,
        texts: Vec<Box<[u8]>>,
    ) -> Option<Reply> {
        let queue = sub.queues[0];
        let state = state.clone();
        let base = sub
            .requester
            .as_ref()
            .map_or_else(String::new, |r| r.endpoint_base.clone());
        Some(Box::pin(async move {
            answer_all(&state, queue, &base, texts).await
        }))
    }

    fn ended(&self, state: &Rc<ServerState>, sub: &Subscription) {
        let queue = sub.queues[0];
        let now = now_millis();
        let touch = state
            .store
            .write_later(move |t, _| autopush::touch(t, queue, now));
        if let Err(e) = touch {
            log::warn!("recording when user agent {queue} was last seen failed: {e}");
        }
    }
}

/// Answers requests that came together, in order: runs of `register` and `unregister`
/// share one store write ([`channels`]); a request that ends the connection ends the batch.
async fn answer_all(state: &ServerState, queue: u64, base: &str, texts: Vec<Box<[u8]>>) -> Answer {
    let mut out = Vec::new();
    let mut changes = Vec::new();
    for text in texts {
        let change = match protocol::parse(&text) {
            Ok(ClientMessage::Register { channel_id, key }) => {
                match key.as_deref().map(vapid::parse_key) {
                    None => Change::Register {
                        channel_id,
                        key: None,
                    },
                    Some(Some(key)) => Change::Register {
                        channel_id,
                        key: Some(key.to_vec()),
                    },
                    Some(None) => Change::BadKey { channel_id },
                }
            }
            Ok(ClientMessage::Unregister { channel_id }) => Change::Unregister { channel_id },
            other => {
                if let Some(end) = apply_changes(state, queue, base, &mut changes, &mut out).await {
                    return Answer {
                        out,
                        end: Some(end),
                    };
                }
                let end = match other {
                    Ok(message) => answer(state, queue, message, &mut out),
                    Err(why) => protocol_error(why, &mut out),
                };
                if end.is_some() {
                    return Answer { out, end };
                }
                continue;
            }
        };
        changes.push(change);
    }
    let end = apply_changes(state, queue, base, &mut changes, &mut out).await;
    Answer { out, end }
}

/// Runs and answers the channel changes gathered so far; `Some` if the connection ends.
async fn apply_changes(
    state: &ServerState,
    queue: u64,
    base: &str,
    changes: &mut Vec<Change>,
    out: &mut Vec<u8>,
) -> Option<&'static str> {
    if changes.is_empty() {
        return None;
    }
    match channels::apply(state, queue, base, std::mem::take(changes)).await {
        Ok(replies) => {
            for reply in replies {
                ws::push_text(out, reply.as_bytes());
            }
            None
        }
        Err(e) => {
            log::warn!("an autopush request failed: {e}");
            ws::push_close(out, 1011, "the server could not store the request");
            Some("store error")
        }
    }
}

fn protocol_error(why: &'static str, out: &mut Vec<u8>) -> Option<&'static str> {
    ws::push_close(out, 1002, why);
    Some("autopush protocol error")
}

/// Answers a request that is not a channel change; `Some` if the connection ends.
fn answer(
    state: &ServerState,
    queue: u64,
    message: ClientMessage,
    out: &mut Vec<u8>,
) -> Option<&'static str> {
    match message {
        ClientMessage::Ping => ws::push_text(out, b"{}"),
        ClientMessage::Hello { .. } => return protocol_error("a second hello", out),
        ClientMessage::Nack | ClientMessage::BroadcastSubscribe => {}
        ClientMessage::Register { .. } | ClientMessage::Unregister { .. } => {
            unreachable!("channel changes go to `channels`")
        }
        ClientMessage::Ack(updates) => {
            if let Err(e) = state.store.ack_later(queue, updates) {
                log::warn!("an autopush ack failed: {e}");
                ws::push_close(out, 1011, "the server could not store the request");
                return Some("store error");
            }
        }
    }
    None
}
