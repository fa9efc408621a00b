//! Server-sent events as a client reads them: a raw connection, its head, and its events
//! decoded by the wire's SSE decoder, with the comments (keepalives) and `retry:` counted
//! apart.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use openpush_wire::http::Head;
use openpush_wire::sse;

use super::TIMEOUT;
use super::http::{open_get, read_more};

/// One SSE event as a client sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: Option<u64>,
    pub data: String,
}

/// The longest SSE line or event data read: far above any event the server sends (a
/// message's data is a few KiB), a bound only against a runaway stream.
const MAX_EVENT_BYTES: usize = 16 << 20;

/// A raw SSE connection to `/subscribe`, its events decoded by the wire's SSE decoder.
pub struct Sse {
    pub conn: TcpStream,
    pub status: u16,
    pub head: String,
    parsed_head: Head,
    events: sse::Decoder,
    /// Comment lines (keepalives) read so far; the decoder drops them, so they are counted
    /// here as the bytes come.
    pub comments: usize,
    at_line_start: bool,
    /// The latest `retry:`, in milliseconds.
    pub retry: Option<u64>,
}

impl Sse {
    pub fn open(addr: SocketAddr, key: &str, last_event_id: Option<u64>) -> Sse {
        let id = last_event_id.map(|id| id.to_string());
        let headers: Vec<(&str, &str)> =
            id.iter().map(|id| ("Last-Event-ID", id.as_str())).collect();
        Sse::open_with(addr, key, "/subscribe", &headers)
    }

    /// Reads more bytes into the decoder; false at the deadline or when the server closed.
    fn fill(&mut self, deadline: Instant) -> bool {
        let mut bytes = Vec::new();
        let more = read_more(&mut self.conn, &mut bytes, deadline);
        self.take(&bytes);
        more
    }

    fn take(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.at_line_start && b == b':' {
                self.comments += 1;
            }
            self.at_line_start = b == b'\n';
        }
        self.events.feed(bytes);
    }

    /// The next event, skipping comments and `retry:`; `None` if the server closed or
    /// nothing came within `wait`.
    pub fn next_within(&mut self, wait: Duration) -> Option<Event> {
        let deadline = Instant::now() + wait;
        loop {
            let event = self.events.next_event();
            self.retry = self.events.retry_ms();
            match event {
                Ok(Some(event)) => {
                    return Some(Event {
                        id: event.id.and_then(|id| id.parse().ok()),
                        data: event.data,
                    });
                }
                Ok(None) => {}
                Err(e) => panic!("{e}"),
            }
            if !self.fill(deadline) {
                return None;
            }
        }
    }

    pub fn next(&mut self) -> Event {
        self.next_within(TIMEOUT).expect("an event")
    }

    /// True once the server has closed the stream (within `wait`).
    pub fn closed_within(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        while self.fill(deadline) {}
        Instant::now() < deadline
    }

    /// Like [`Sse::open`], with any path and extra headers.
    pub fn open_with(addr: SocketAddr, key: &str, path: &str, headers: &[(&str, &str)]) -> Sse {
        let mut all = vec![("Accept", "text/event-stream"), ("X-Openpush-Key", key)];
        all.extend_from_slice(headers);
        let opened = open_get(addr, path, &all, Duration::from_millis(100))
            .unwrap_or_else(|what| panic!("no response head: {what}"));
        let mut sse = Sse {
            conn: opened.conn,
            status: opened.head.status,
            head: opened.head_text,
            parsed_head: opened.head,
            events: sse::Decoder::new(MAX_EVENT_BYTES),
            comments: 0,
            at_line_start: true,
            retry: None,
        };
        sse.take(&opened.rest);
        sse
    }

    /// A header of the stream's response head.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.parsed_head.header(name)
    }
}
