//! A live stream to a device, for every wire format: the cursor/paging/wake state machine
//! and the write pump are here once; an [`Encoder`] per wire format (OpenPush SSE, ntfy
//! JSON lines, ntfy SSE, ntfy raw, WebSocket frames) turns events into bytes.
//!
//! Order of a stream's life: the door confirms what it must and builds a [`Subscription`];
//! the stream attaches to the hub (so no commit from now on goes unnoticed), sends the
//! stored messages after the cursor page by page, then waits: messages that a group
//! commit is writing arrive from the hub before the commit's fsync and are sent at once
//! when the stream has sent everything stored before them; each commit's notification
//! sends what the stream has not sent yet, from the store. [`Position`] keeps that order:
//! events leave in id order, and a confirmation of id N never covers an unsent message. A
//! device may receive a message whose commit then fails (its sender got no 2xx and sends
//! it again). The stream ends when the client goes away, a newer exclusive stream replaces
//! it, its queue is revoked or its reader loses access to one of its queues, a write
//! stalls, or (a poll) once the stored messages are sent.
//! A replacement or a revocation ends it at once, even while a write to a client that does
//! not read is pending.
//!
//! A WebSocket client's text messages (autopush's `register`, `ack`, …) go to the
//! encoder's [`Encoder::requests`] one at a time, in order, each answered before the next
//! is read; store reads of messages wait while one runs, so answers and events never
//! interleave within a frame.
//!
//! Memory: an idle stream holds only the fields of [`Stream`]; its write buffer is empty
//! and unallocated between writes, its stall timer exists only while a write waits, its
//! WebSocket frame reader only while a client frame is half read or requests wait.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use async_io::Timer;
use futures_lite::{AsyncRead, AsyncWrite};

use crate::clock::now_millis;
use crate::hub::{Closed, Reader, Slot, Wake};
use crate::limits::AddrKey;
use crate::state::{ConnectionGuard, ServerState};
use crate::store::MessageRecord;
use crate::store::queue::{self, Cursor, Page};
use crate::transport::Conn;
use crate::ws;

#[cfg(test)]
mod interleavings;
mod position;
pub use position::Position;

/// Stored messages read per backlog page at most (and at most `max_stream_buffer_bytes` of
/// them); bounds a reconnect's or a poll's memory.
pub const BACKLOG_PAGE: usize = 64;
/// Largest WebSocket data frame a client may send to a stream that takes no requests.
const MAX_CLIENT_FRAME: u64 = 4096;
/// Client requests read ahead of their answers; more in one read close the stream.
const MAX_WAITING_REQUESTS: usize = 32;

/// One message on its way to a stream.
pub struct Event<'a> {
    /// The queue it was read from.
    pub queue: u64,
    /// Its id in that queue: the stream's cursor once it is written.
    pub id: u64,
    /// The stored message.
    pub record: &'a MessageRecord,
    /// False for a message with a TTL of 0, which was never stored.
    pub stored: bool,
}

/// How one wire format writes a stream.
pub trait Encoder {
    /// The protocol it speaks, which the live status counts by.
    fn protocol(&self) -> crate::hub::Protocol;
    /// What a live stream sends after its response head, before the first message.
    fn open(&self, out: &mut Vec<u8>, sub: &Subscription);
    /// A message, in the wire format's framing.
    fn message(&self, out: &mut Vec<u8>, sub: &Subscription, event: Event<'_>);
    /// What keeps an idle connection open through proxies and NAT (a comment, a ping).
    fn keepalive(&self, out: &mut Vec<u8>, sub: &Subscription);
    /// The client speaks WebSocket frames that the stream must read and answer.
    fn websocket(&self) -> bool {
        false
    }
    /// The wire format has no acknowledgement (NextPush): a stored message leaves the queue
    /// once its event is written to the socket (the stream confirms it in the store then).
    fn confirms_on_write(&self) -> bool {
        false
    }
    /// What a stream that a newer one replaced sends before it ends (NextPush `close`).
    fn replaced(&self, _out: &mut Vec<u8>) {}
    /// The answer to the text messages a WebSocket client sent together (at most
    /// `MAX_WAITING_REQUESTS`, in order), so that a burst can share one store write;
    /// `None`: the wire format takes no requests (they are ignored).
    fn requests(
        &self,
        _state: &Rc<ServerState>,
        _sub: &Subscription,
        _texts: Vec<Box<[u8]>>,
    ) -> Option<Reply> {
        None
    }
    /// The largest text message a client may send, for encoders that take requests.
    fn max_request(&self, _state: &ServerState) -> Option<u64> {
        None
    }
    /// The stream has ended, for whatever reason.
    fn ended(&self, _state: &Rc<ServerState>, _sub: &Subscription) {}
}

/// The bytes that answer a client's request, and whether the stream ends after them.
pub struct Answer {
    /// The bytes to write, already framed.
    pub out: Vec<u8>,
    /// Why the stream ends after them, for the log; `None`: it goes on.
    pub end: Option<&'static str>,
}

/// An [`Answer`] still being worked out (it may wait for the store).
pub type Reply = Pin<Box<dyn Future<Output = Answer>>>;

/// A WebSocket client's frames: the reader, and the text messages read but not answered.
pub struct Frames {
    reader: ws::FrameReader,
    waiting: VecDeque<Box<[u8]>>,
}

impl Frames {
    /// Frames read by `reader`, none waiting yet.
    pub fn new(reader: ws::FrameReader) -> Frames {
        Frames {
            reader,
            waiting: VecDeque::new(),
        }
    }

    /// Feeds client bytes to the reader, keeping text messages for later; the other
    /// frames go to `on_frame`.
    pub fn feed(&mut self, bytes: &[u8], on_frame: &mut impl FnMut(ws::Incoming)) {
        let waiting = &mut self.waiting;
        self.reader.feed(bytes, &mut |frame| match frame {
            ws::Incoming::Text(text) => waiting.push_back(text.into()),
            other => on_frame(other),
        });
    }

    /// The oldest text message not yet answered.
    pub fn next_request(&mut self) -> Option<Box<[u8]>> {
        self.waiting.pop_front()
    }

    /// Every request read and not yet answered, oldest first.
    fn take_requests(&mut self) -> Vec<Box<[u8]>> {
        self.waiting.drain(..).collect()
    }

    fn is_idle(&self) -> bool {
        self.reader.is_idle() && self.waiting.is_empty()
    }
}

/// The queues a stream follows: one (a device's own, the common case) without an
/// allocation of its own, or several (an ntfy subscription to `a,b`).
#[derive(Clone, Debug)]
pub enum Queues {
    /// One queue.
    One([u64; 1]),
    /// Several queues, in the order the client named them.
    Many(Box<[u64]>),
}

impl std::ops::Deref for Queues {
    type Target = [u64];

    fn deref(&self) -> &[u64] {
        match self {
            Queues::One(one) => one,
            Queues::Many(many) => many,
        }
    }
}

/// What a stream follows and how it writes it.
pub struct Subscription {
    /// The queues followed.
    pub queues: Queues,
    /// Topic names, one per queue; empty for a device's own queue.
    pub topics: Box<[Box<str>]>,
    /// The only stream of its queue (an OpenPush device): a newer one replaces it.
    pub exclusive: bool,
    /// Stay open for new messages; false: send what is stored, then end (ntfy `poll=1`).
    pub live: bool,
    /// A poll that lists, after what is stored, the messages scheduled for its queues and
    /// not yet due (ntfy `scheduled=1`), with their slots as ids.
    pub scheduled: bool,
    /// Where the stream stands in its queues: what it has sent.
    pub cursor: Cursor,
    /// The wire format.
    pub encoder: &'static dyn Encoder,
    /// The body is chunked (each event a chunk, the last chunk when a poll ends); else it
    /// ends with the connection.
    pub chunked: bool,
    /// For a stream whose client sends requests (autopush): who it is; `None` for others.
    pub requester: Option<Box<Requester>>,
    /// Which messages the client wants (ntfy's subscriber filters); `None`: all of them.
    pub filter: Option<Box<dyn Filter>>,
}

/// A subscriber's choice of messages: the others are skipped (their stream moves past them
/// all the same).
pub trait Filter {
    /// Whether the client wants this message (`id` is its queue's cursor).
    fn passes(&self, id: u64, record: &MessageRecord) -> bool;
}

/// The client of a stream that takes requests.
pub struct Requester {
    /// Where the endpoints that this stream hands out live (`https://host`).
    pub endpoint_base: String,
    /// The client's address (behind a trusted proxy, the one it forwarded): each request
    /// costs it a token of the per-address request budget. `None`: the host itself.
    pub address: Option<AddrKey>,
}

/// The id a client resumes after (`Last-Event-ID`, ntfy's `since=<id>`), unless it is above
/// every id the store has handed out: such a cursor comes from a history the store no
/// longer has (a restored backup, a Redis that lost its data), so it confirms nothing and
/// the client reads its queues from the start (0).
pub async fn resumable(state: &ServerState, after: u64) -> Result<u64, crate::store::Error> {
    if after == 0 || after == u64::MAX {
        return Ok(after);
    }
    let highest = state.store.highest_id().await?;
    if after <= highest {
        return Ok(after);
    }
    log::warn!(
        "a client resumed after message {after}, above every id this store has handed out \
         ({highest}): its cursor is from a history the store no longer has, so it confirms \
         nothing and the client reads from the start"
    );
    Ok(0)
}

impl Subscription {
    /// The live stream of a device's own queue (the only one: a newer one replaces it),
    /// from the message after `after`.
    pub fn device(queue: u64, after: u64, encoder: &'static dyn Encoder) -> Subscription {
        Subscription {
            queues: Queues::One([queue]),
            topics: Box::new([]),
            exclusive: true,
            live: true,
            scheduled: false,
            cursor: Cursor {
                after,
                posted_since: 0,
            },
            encoder,
            chunked: false,
            requester: None,
            filter: None,
        }
    }

    /// Whether the client wants this message.
    fn wants(&self, id: u64, record: &MessageRecord) -> bool {
        self.filter.as_ref().is_none_or(|f| f.passes(id, record))
    }

    /// Appends what `encode` writes to the body: as a chunk of its own if it is chunked.
    pub fn emit(&self, out: &mut Vec<u8>, encode: impl FnOnce(&mut Vec<u8>)) {
        let start = out.len();
        encode(out);
        if self.chunked {
            crate::http::chunked::frame(out, start);
        }
    }

    /// The topic name of a queue of this subscription ("" for a device's own queue).
    pub fn topic_of(&self, queue: u64) -> &str {
        self.queues
            .iter()
            .position(|&q| q == queue)
            .and_then(|i| self.topics.get(i))
            .map_or("", |t| t)
    }

    /// The subscription's topics joined by commas, as ntfy names a multi-topic stream.
    pub fn topic_list(&self) -> String {
        self.topics.join(",")
    }
}

/// What a turn of reading the client found.
/// What one of [`Stream::run`]'s steps decided.
enum Step {
    /// It made progress: the round starts again from the first step.
    Again,
    /// It had nothing to do: the next step runs.
    Next,
    /// The poll ends here: pending, or the stream ends for this reason.
    Return(Poll<&'static str>),
}

impl Step {
    /// This step's decision, or the next step's if this one had nothing to do.
    fn or(self, next: impl FnOnce() -> Step) -> Step {
        match self {
            Step::Next => next(),
            decided => decided,
        }
    }
}

enum Heard {
    /// Nothing yet: the socket will wake the stream.
    Nothing,
    /// Some bytes, and the socket has no more now.
    Some,
    /// The turn's budget of bytes: the stream yields to the others.
    Enough,
}

/// What a stream waits for: a page of stored messages, the scheduled ones a poll lists
/// last, or the answer to a request.
enum Done {
    Page(crate::store::Result<Page>),
    Scheduled(crate::store::Result<Vec<(u64, u64, MessageRecord)>>),
    Answer(Answer),
}

type Pending = Pin<Box<dyn Future<Output = Done>>>;

/// One live stream, written as a state machine by hand so that an idle stream holds only
/// these fields. Dropping it detaches it from the hub and releases its connection.
pub struct Stream {
    conn: Conn,
    sub: Subscription,
    slot: Option<Rc<Slot>>,
    /// Bytes to write; `written` of them are on the socket.
    out: Vec<u8>,
    written: usize,
    /// Fires when the socket has accepted nothing for the configured write timeout.
    stall: Option<Pin<Box<Timer>>>,
    /// The store read of the next page of messages, or a request's answer, while one is
    /// in flight.
    read: Option<Pending>,
    position: Position,
    /// A WebSocket client frame that arrived in part, or requests not yet answered.
    frames: Option<Box<Frames>>,
    /// End once `out` is written (a WebSocket close was sent).
    closing: Option<&'static str>,
    /// The last stored id confirmed in the store (encoders that confirm on write only).
    confirmed: u64,
    /// Keepalives since a WebSocket client last sent anything (`ws_idle_timeout_secs`).
    unheard: u8,
    guard: ConnectionGuard,
}

/// The task of a stream of `reader` that starts now; `head` is its response head.
pub fn start(
    conn: Conn,
    head: Vec<u8>,
    sub: Subscription,
    reader: Reader,
    guard: ConnectionGuard,
) -> Stream {
    start_with_frames(conn, head, sub, reader, guard, None)
}

/// [`start`] for a WebSocket stream whose client has sent frames already.
pub fn start_with_frames(
    conn: Conn,
    head: Vec<u8>,
    sub: Subscription,
    reader: Reader,
    guard: ConnectionGuard,
    frames: Option<Box<Frames>>,
) -> Stream {
    let state = guard.state();
    let slot = sub.live.then(|| {
        state.hub.attach(
            &sub.queues,
            sub.exclusive,
            reader,
            sub.encoder.protocol(),
            state.config().limits.max_stream_buffer_bytes,
        )
    });
    let position = Position::new(sub.cursor.clone(), state.hub.staged_through());
    crate::metrics::bump(&state.counters.streams_opened);
    log::debug!(
        "stream on queues {:?} opened ({} streams)",
        sub.queues,
        state.hub.len()
    );
    let mut out = head;
    let confirmed = sub.cursor.after;
    if sub.live {
        sub.emit(&mut out, |out| sub.encoder.open(out, &sub));
    }
    Stream {
        conn,
        sub,
        slot,
        out,
        written: 0,
        stall: None,
        read: None,
        position,
        frames,
        closing: None,
        confirmed,
        unheard: 0,
        guard,
    }
}

/// Why a stream that the hub closed ends, for the log.
fn ended(why: Closed) -> &'static str {
    match why {
        Closed::Replaced => "replaced by a newer stream",
        Closed::Overflow => "client too slow",
        Closed::Revoked => "revoked",
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let state = self.guard.state();
        if let Some(slot) = &self.slot {
            state.hub.detach(&self.sub.queues, slot);
        }
        self.sub.encoder.ended(state, &self.sub);
    }
}

impl Future for Stream {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let end = this.run(cx);
        if let Poll::Ready(why) = end {
            log::debug!("stream ended (queues {:?}): {why}", this.sub.queues);
        }
        end.map(drop)
    }
}

impl Stream {
    fn start_read(&mut self) {
        let store = self.guard.state().store.clone();
        let queues = self.sub.queues.clone();
        let cursor = self.position.cursor.clone();
        let limit = queue::PageLimit {
            messages: BACKLOG_PAGE,
            bytes: self.guard.state().config().limits.max_stream_buffer_bytes,
        };
        let now = now_millis();
        self.read = Some(Box::pin(async move {
            Done::Page(
                store
                    .read_unsettled(move |t, unsettled| {
                        queue::backlog(t, unsettled, &queues, &cursor, limit, now)
                    })
                    .await,
            )
        }));
    }

    /// Starts reading the messages scheduled for the stream's queues (a poll's last read).
    fn start_scheduled_read(&mut self) {
        let store = self.guard.state().store.clone();
        let queues = self.sub.queues.clone();
        let max_bytes = self.guard.state().config().limits.max_stream_buffer_bytes;
        self.read = Some(Box::pin(async move {
            Done::Scheduled(
                store
                    .read(move |t| crate::store::schedule::pending(t, &queues, max_bytes))
                    .await,
            )
        }));
    }

    /// Starts answering the requests a client sent, if any; true if an answer started.
    /// Each request costs its address a token of the same budget as an HTTP request; past
    /// it the connection is closed (1013, try again later).
    fn start_request(&mut self) -> bool {
        let Some(frames) = &mut self.frames else {
            return false;
        };
        let texts = frames.take_requests();
        if texts.is_empty() {
            return false;
        }
        let state = self.guard.state();
        let address = self.sub.requester.as_ref().and_then(|r| r.address);
        if let Some(addr) = address {
            let now = std::time::Instant::now();
            let over = (0..texts.len()).any(|_| state.request_rate.take(addr, now).is_err());
            if over {
                if let Some(unlogged) = state.request_rate.refusal_to_log(addr, now) {
                    log::info!("WebSocket request rate limit of an address{unlogged}");
                }
                ws::push_close(&mut self.out, 1013, "too many requests from your address");
                self.closing = Some("WebSocket request rate limit");
                return true;
            }
        }
        match self.sub.encoder.requests(state, &self.sub, texts) {
            Some(reply) => {
                self.read = Some(Box::pin(async move { Done::Answer(reply.await) }));
                true
            }
            None => false,
        }
    }

    /// Polls the steps in order until one returns: the step that made progress starts the
    /// round again, so writing what is buffered always comes first, then the page or answer
    /// in flight, then new work, then the hub's wakes, and last what the client says.
    fn run(&mut self, cx: &mut Context<'_>) -> Poll<&'static str> {
        // Bytes a client may send in one turn before the stream yields to the others.
        let mut unread_budget = 16 * 1024usize;
        loop {
            let step = self
                .send(cx)
                .or(|| self.receive(cx))
                .or(|| self.start_work())
                .or(|| self.follow_hub(cx))
                .or(|| self.listen(cx, &mut unread_budget));
            if let Step::Return(poll) = step {
                return poll;
            }
        }
    }

    /// Writes what is buffered; a write that waits longer than `write_timeout`, or a
    /// stream that the hub closed meanwhile, ends the stream.
    fn send(&mut self, cx: &mut Context<'_>) -> Step {
        if !self.out.is_empty() {
            match self.poll_send(cx) {
                Poll::Ready(Err(_)) => return Step::Return(Poll::Ready("client gone")),
                Poll::Ready(Ok(())) => {}
                Poll::Pending => {
                    // The slot is polled too (and wakes this task), so a stream that is
                    // replaced or revoked while the client does not read ends now, not
                    // when the write times out; its page and socket go with it.
                    if let Poll::Ready(why) = self.end_if_closed(cx) {
                        return Step::Return(Poll::Ready(why));
                    }
                    let timeout = self.guard.state().config().limits.write_timeout;
                    let stall = self
                        .stall
                        .get_or_insert_with(|| Box::pin(Timer::after(timeout)));
                    if stall.as_mut().poll(cx).is_ready() {
                        return Step::Return(Poll::Ready("client too slow"));
                    }
                    return Step::Return(Poll::Pending);
                }
            }
            self.out = Vec::new();
            self.written = 0;
            self.stall = None;
            self.confirm_written();
        }
        match self.closing {
            Some(why) => Step::Return(Poll::Ready(why)),
            None => Step::Next,
        }
    }

    /// Encodes the stored page or the answer to the client's requests once it is read.
    fn receive(&mut self, cx: &mut Context<'_>) -> Step {
        let Some(read) = &mut self.read else {
            return Step::Next;
        };
        let page = match read.as_mut().poll(cx) {
            // A stream replaced or revoked meanwhile ends now: the page it waits for would
            // only be encoded to be dropped.
            Poll::Pending => return Step::Return(self.end_if_closed(cx)),
            Poll::Ready(Done::Page(Ok(page))) => page,
            Poll::Ready(Done::Page(Err(e))) => {
                log::warn!("reading stored messages failed: {e}");
                return Step::Return(Poll::Ready("store error"));
            }
            Poll::Ready(Done::Answer(answer)) => {
                self.read = None;
                self.out.extend_from_slice(&answer.out);
                if answer.end.is_some() {
                    self.closing = answer.end;
                }
                return Step::Again;
            }
            Poll::Ready(Done::Scheduled(found)) => {
                self.read = None;
                return match found {
                    Ok(found) => {
                        self.emit_stored(&found);
                        Step::Again
                    }
                    Err(e) => {
                        log::warn!("reading scheduled messages failed: {e}");
                        Step::Return(Poll::Ready("store error"))
                    }
                };
            }
        };
        self.read = None;
        self.emit_stored(&page.messages);
        self.position.page_read(&page);
        Step::Again
    }

    /// Starts the next store read the position asks for, else the answer to waiting client
    /// requests; drops the frame reader once it holds nothing.
    fn start_work(&mut self) -> Step {
        if self.position.take_read() {
            self.start_read();
            return Step::Again;
        }
        if self.start_request() {
            return Step::Again;
        }
        if self.frames.as_ref().is_some_and(|f| f.is_idle()) {
            self.frames = None;
        }
        Step::Next
    }

    /// Takes the hub's wake: new messages, a commit, a keepalive, or the end of the stream.
    /// A poll (no slot) ends here, its stored messages sent and, with `scheduled`, the
    /// scheduled ones listed.
    fn follow_hub(&mut self, cx: &mut Context<'_>) -> Step {
        let Some(slot) = &self.slot else {
            if std::mem::take(&mut self.sub.scheduled) {
                self.start_scheduled_read();
                return Step::Again;
            }
            if self.sub.chunked {
                self.out.extend_from_slice(crate::http::chunked::LAST_CHUNK);
                self.closing = Some("poll answered");
                return Step::Again;
            }
            return Step::Return(Poll::Ready("poll answered"));
        };
        match slot.poll_next(cx) {
            Poll::Ready(Wake::Stored) => self.position.stored(),
            Poll::Ready(Wake::Messages {
                handed,
                dropped_up_to,
            }) => {
                self.position.dropped(dropped_up_to);
                let taken = handed.iter().filter(|m| self.position.take(m));
                for message in taken.filter(|m| self.sub.wants(m.id, &m.record)) {
                    let event = Event {
                        queue: message.queue,
                        id: message.id,
                        record: &message.record,
                        stored: message.stored,
                    };
                    let sub = &self.sub;
                    sub.emit(&mut self.out, |out| sub.encoder.message(out, sub, event));
                }
            }
            Poll::Ready(Wake::Keepalive) => {
                if self.silent_too_long() {
                    ws::push_close(&mut self.out, 1001, "idle");
                    self.closing = Some("WebSocket client silent too long");
                } else {
                    let sub = &self.sub;
                    sub.emit(&mut self.out, |out| sub.encoder.keepalive(out, sub));
                }
            }
            Poll::Ready(Wake::Closed(why)) => {
                if why == Closed::Replaced {
                    self.sub.encoder.replaced(&mut self.out);
                    if !self.out.is_empty() {
                        self.closing = Some(ended(why));
                        return Step::Again;
                    }
                }
                return Step::Return(Poll::Ready(ended(why)));
            }
            Poll::Pending => return Step::Next,
        }
        Step::Again
    }

    /// Writes the stored messages read, as (queue, id, record), those its client wants; for
    /// the scheduled messages a poll lists, the id is their slot in the schedule.
    fn emit_stored(&mut self, found: &[(u64, u64, MessageRecord)]) {
        let wanted = found.iter().filter(|(_, slot, r)| self.sub.wants(*slot, r));
        for (queue, slot, record) in wanted {
            let event = Event {
                queue: *queue,
                id: *slot,
                record,
                stored: true,
            };
            let sub = &self.sub;
            sub.emit(&mut self.out, |out| sub.encoder.message(out, sub, event));
        }
    }

    /// With nothing to send, reads what the client says (WebSocket frames; otherwise
    /// nothing but its closing), at most `budget` bytes in one turn.
    fn listen(&mut self, cx: &mut Context<'_>, budget: &mut usize) -> Step {
        match self.read_client(cx, budget) {
            Err(why) => Step::Return(Poll::Ready(why)),
            Ok(Heard::Nothing) => Step::Return(Poll::Pending),
            Ok(Heard::Enough) => {
                cx.waker().wake_by_ref();
                Step::Return(Poll::Pending)
            }
            Ok(Heard::Some) => Step::Again,
        }
    }

    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        while self.written < self.out.len() {
            match Pin::new(&mut self.conn).poll_write(cx, &self.out[self.written..]) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => {
                    self.written += n;
                    self.stall = None;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Pin::new(&mut self.conn).poll_flush(cx)
    }

    /// Reads what the client has sent until the socket has no more, so that requests that
    /// came together are answered together; [`Heard::Enough`] once `budget` bytes were read
    /// (the stream yields to the others), `Err` when the client is gone.
    fn read_client(
        &mut self,
        cx: &mut Context<'_>,
        budget: &mut usize,
    ) -> Result<Heard, &'static str> {
        let mut buf = [0u8; 512];
        let mut heard = Heard::Nothing;
        loop {
            match Pin::new(&mut self.conn).poll_read(cx, &mut buf) {
                Poll::Pending => return Ok(heard),
                Poll::Ready(Ok(0)) => return Err("client closed"),
                Poll::Ready(Ok(n)) => {
                    heard = Heard::Some;
                    if self.sub.encoder.websocket() {
                        self.unheard = 0;
                        self.read_frames(&buf[..n]);
                    }
                    *budget = budget.saturating_sub(n);
                    if *budget == 0 {
                        return Ok(Heard::Enough);
                    }
                    let batch_full = self
                        .frames
                        .as_ref()
                        .is_some_and(|f| f.waiting.len() >= MAX_WAITING_REQUESTS / 2);
                    if self.closing.is_some() || batch_full {
                        return Ok(Heard::Some);
                    }
                }
                Poll::Ready(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(_)) => return Err("client gone"),
            }
        }
    }

    /// `Ready` (why) if the hub has closed this stream, else `Pending` with a wake-up when
    /// it does.
    fn end_if_closed(&self, cx: &mut Context<'_>) -> Poll<&'static str> {
        match &self.slot {
            Some(slot) => slot.poll_closed(cx).map(ended),
            None => Poll::Pending,
        }
    }

    /// Counts a keepalive for a WebSocket client; true once it has been silent for
    /// `ws_idle_timeout_secs` (it answers every keepalive ping with a pong while alive).
    fn silent_too_long(&mut self) -> bool {
        if !self.sub.encoder.websocket() {
            return false;
        }
        self.unheard = self.unheard.saturating_add(1);
        let config = self.guard.state().config();
        let silent = config.keepalive * u32::from(self.unheard - 1);
        silent >= config.limits.ws_idle_timeout
    }

    /// For an encoder that confirms on write: everything up to the cursor is on the socket
    /// now, so it leaves the queue (confirming is idempotent). Unless the client has closed
    /// its side already: the kernel takes a write to a connection whose peer sent its FIN,
    /// and the device would never read it; the stream ends without confirming instead.
    fn confirm_written(&mut self) {
        let up_to = self.position.cursor.after;
        if !self.sub.encoder.confirms_on_write() || up_to <= self.confirmed {
            return;
        }
        if self.conn.peer_closed() {
            self.closing = Some("client closed");
            return;
        }
        self.confirmed = up_to;
        let queues = self.sub.queues.to_vec();
        if let Err(e) = self.guard.state().store.confirm_later(queues, up_to) {
            log::warn!("confirming messages written to a stream failed: {e}");
        }
    }

    /// Answers a WebSocket client's frames: pings get pongs, a close gets a close.
    fn read_frames(&mut self, bytes: &[u8]) {
        let max_request = self.sub.encoder.max_request(self.guard.state());
        let frames = self.frames.get_or_insert_with(|| {
            Box::new(Frames::new(match max_request {
                Some(max) => ws::FrameReader::with_text(max),
                None => ws::FrameReader::new(MAX_CLIENT_FRAME),
            }))
        });
        let (out, closing) = (&mut self.out, &mut self.closing);
        frames.feed(bytes, &mut |frame| match frame {
            ws::Incoming::Ping(payload) => ws::push_pong(out, payload),
            ws::Incoming::Close(code) if closing.is_none() => {
                ws::push_close(out, code.unwrap_or(1000), "");
                *closing = Some("client closed the WebSocket");
            }
            ws::Incoming::Error(why) if closing.is_none() => {
                log::debug!("WebSocket protocol error: {why}");
                ws::push_close(out, 1002, why);
                *closing = Some("WebSocket protocol error");
            }
            _ => {}
        });
        if frames.waiting.len() > MAX_WAITING_REQUESTS && self.closing.is_none() {
            ws::push_close(&mut self.out, 1008, "too many requests at once");
            self.closing = Some("too many requests at once");
        }
        if frames.is_idle() {
            self.frames = None;
        }
    }
}
