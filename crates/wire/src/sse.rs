//! Server-Sent Events (the WHATWG `text/event-stream` format) decoded from bytes as they come.
//!
//! [`Decoder`] is a push parser: [`Decoder::feed`] takes whatever a read returned, however it
//! splits lines, and [`Decoder::next_event`] hands out each complete event. It owns no I/O,
//! so a read timeout never loses a byte. Lines end with LF or CRLF (a lone CR, which the spec
//! also allows and no server here sends, is not a line end). A line longer than the limit is
//! an error rather than unbounded memory.

/// One dispatched event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The `id:` given in this event's own lines, if any. (The spec's "last event ID" carries
    /// over from earlier events; [`Decoder::last_event_id`] has that.)
    pub id: Option<String>,
    /// `event:`, if given.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Error {
    /// A line, or an event's data, past the decoder's limit.
    TooLong,
    /// Not UTF-8.
    Encoding,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Error::TooLong => "an event of the stream is too long",
            Error::Encoding => "an event of the stream is not UTF-8",
        })
    }
}

impl std::error::Error for Error {}

pub struct Decoder {
    max_bytes: usize,
    /// Bytes fed and not yet split into lines.
    pending: Vec<u8>,
    id: Option<String>,
    event: Option<String>,
    data: String,
    has_data: bool,
    last_event_id: String,
    retry_ms: Option<u64>,
}

impl Decoder {
    /// A decoder that refuses a line or an event's data longer than `max_bytes`.
    pub fn new(max_bytes: usize) -> Decoder {
        Decoder {
            max_bytes,
            pending: Vec::new(),
            id: None,
            event: None,
            data: String::new(),
            has_data: false,
            last_event_id: String::new(),
            retry_ms: None,
        }
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
    }

    /// The next complete event, `Ok(None)` when more bytes are needed.
    pub fn next_event(&mut self) -> Result<Option<Event>, Error> {
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let mut line: Vec<u8> = self.pending.drain(..=end).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let line = String::from_utf8(line).map_err(|_| Error::Encoding)?;
            if let Some(event) = self.line(&line)? {
                return Ok(Some(event));
            }
        }
        if self.pending.len() > self.max_bytes {
            return Err(Error::TooLong);
        }
        Ok(None)
    }

    fn line(&mut self, line: &str) -> Result<Option<Event>, Error> {
        if line.is_empty() {
            let id = self.id.take();
            let event = self.event.take();
            if !std::mem::take(&mut self.has_data) {
                return Ok(None);
            }
            let data = std::mem::take(&mut self.data);
            return Ok(Some(Event { id, event, data }));
        }
        if line.starts_with(':') {
            return Ok(None);
        }
        let (name, value) = match line.split_once(':') {
            Some((name, value)) => (name, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match name {
            "data" => {
                if self.data.len() + value.len() + 1 > self.max_bytes {
                    return Err(Error::TooLong);
                }
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "id" if !value.contains('\0') => {
                self.id = Some(value.to_owned());
                value.clone_into(&mut self.last_event_id);
            }
            "event" => self.event = Some(value.to_owned()),
            "retry" => {
                if let Ok(ms) = value.parse() {
                    self.retry_ms = Some(ms);
                }
            }
            _ => {}
        }
        Ok(None)
    }

    /// The spec's last event ID: the latest `id:` seen, whichever event it came with.
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// The latest `retry:` the server sent, in milliseconds.
    pub fn retry_ms(&self) -> Option<u64> {
        self.retry_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &[u8] = b"retry: 5000\n\n: keepalive\n\nid: 7\ndata: {\"a\":1}\n\n\
        data: no id\r\n\r\nid: 9\nevent: x\ndata: a\ndata:b\n\n";

    fn all(decoder: &mut Decoder) -> Vec<Event> {
        std::iter::from_fn(|| decoder.next_event().unwrap()).collect()
    }

    #[test]
    fn decodes_at_every_split_point() {
        for split in 0..=STREAM.len() {
            let mut d = Decoder::new(1024);
            d.feed(&STREAM[..split]);
            let mut events = all(&mut d);
            d.feed(&STREAM[split..]);
            events.extend(all(&mut d));
            let ids: Vec<_> = events.iter().map(|e| e.id.as_deref()).collect();
            assert_eq!(ids, [Some("7"), None, Some("9")], "split at {split}");
            assert_eq!(events[0].data, "{\"a\":1}");
            assert_eq!(events[1].data, "no id");
            assert_eq!(events[2].data, "a\nb");
            assert_eq!(events[2].event.as_deref(), Some("x"));
            assert_eq!(d.last_event_id(), "9");
            assert_eq!(d.retry_ms(), Some(5000));
        }
    }

    #[test]
    fn bounds_lines_and_data() {
        let mut d = Decoder::new(8);
        d.feed(b"data: 123456789");
        assert_eq!(d.next_event(), Err(Error::TooLong));
        let mut d = Decoder::new(8);
        d.feed(b"data: 12345\ndata: 12345\n");
        assert_eq!(d.next_event(), Err(Error::TooLong));
    }
}
