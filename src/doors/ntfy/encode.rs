//! ntfy's message objects and its four stream formats.
//!
//! A message object is `{"id","time","expires","event","topic","message"}` plus what the
//! sender gave (`title`, `priority`, `tags`, `click`, `icon`, `actions`, `content_type`),
//! and `sequence_id` when the message belongs to a sequence other than its own id (ntfy
//! leaves it out when it is the id). A `message_clear` or `message_delete` event is
//! `{"id","sequence_id","time","expires","event","topic"}`:
//! ids are strings (`"op<message id>"`, never all digits, so `since=` can tell them from
//! Unix times; an anonymous publish to an endpoint topic is answered with the message's
//! name, `"m<name>"`, instead: see `crate::locations`), times are Unix seconds. Opaque
//! bytes (Web Push bodies) and text that is not UTF-8 travel as standard base64 with
//! `"encoding":"base64"`; the JSON of the Matrix gateway travels as the message text.
//!
//! Formats: `/json` one object per line and nothing else (no blank lines: each line goes
//! to a JSON parser); `/sse` the same objects as SSE `data:` (with `event:` for every event
//! but `message`, and `id:` for the stored ones); `/raw` the message text alone per line,
//! and for a clear or delete an empty line, as ntfy writes it; `/ws` one object per
//! WebSocket text frame, plus a ping at every keepalive.

use base64ct::{Base64, Encoding};

use crate::clock::now_millis;
use crate::json;
use crate::sse;
use crate::store::{Content, MessageRecord, SequenceEvent};
use crate::stream::{Encoder, Event, Subscription};
use crate::ws;

/// The ntfy id of a message.
pub fn message_id(id: u64) -> String {
    format!("op{id}")
}

/// A message id given back in `since=`, if it is one of ours.
pub fn parse_message_id(text: &str) -> Option<u64> {
    text.strip_prefix("op")?.parse().ok()
}

/// The JSON object of a message event.
pub fn message_json(topic: &str, id: u64, record: &MessageRecord) -> String {
    message_json_as(topic, &message_id(id), record)
}

/// [`message_json`] with another `id`: the name an anonymous sender gets instead
/// (`crate::locations`).
pub fn message_json_as(topic: &str, id: &str, record: &MessageRecord) -> String {
    let mut out = String::with_capacity(record.data.len() * 4 / 3 + record.extras.len() + 160);
    out.push_str("{\"id\":\"");
    out.push_str(id);
    out.push('"');
    let event = match &record.sequence {
        Some(sequence) => {
            if sequence.id != id {
                out.push_str(",\"sequence_id\":");
                json::push_string(&mut out, &sequence.id);
            }
            sequence.event
        }
        None => SequenceEvent::Message,
    };
    out.push_str(",\"time\":");
    out.push_str(&(record.posted_at / 1000).to_string());
    out.push_str(",\"expires\":");
    out.push_str(&(record.expires_at / 1000).to_string());
    out.push_str(",\"event\":\"");
    out.push_str(event.name());
    out.push_str("\",\"topic\":");
    json::push_string(&mut out, topic);
    if event == SequenceEvent::Message {
        push_message(&mut out, record);
    }
    out.push('}');
    out
}

/// The members of a message's object after its topic: its text (or base64), priority and
/// the sender's fields.
fn push_message(out: &mut String, record: &MessageRecord) {
    out.push_str(",\"message\":");
    match (record.content, std::str::from_utf8(&record.data)) {
        (Content::Text | Content::Json, Ok(text)) => json::push_string(out, text),
        _ => {
            out.push('"');
            out.push_str(&Base64::encode_string(&record.data));
            out.push_str("\",\"encoding\":\"base64\"");
        }
    }
    if let Some(priority) = record.priority {
        out.push_str(",\"priority\":");
        out.push_str(&priority.level().to_string());
    }
    if !record.extras.is_empty() {
        out.push(',');
        out.push_str(std::str::from_utf8(&record.extras).unwrap_or("\"extras\":null"));
    }
}

/// The ntfy event a message is (`message`, `message_clear`, `message_delete`).
fn event_of(record: &MessageRecord) -> SequenceEvent {
    record
        .sequence
        .as_ref()
        .map_or(SequenceEvent::Message, |s| s.event)
}

/// An event without a message: `open` or `keepalive`.
fn control_json(event: &str, sub: &Subscription) -> String {
    let now = now_millis();
    let mut out = format!(
        "{{\"id\":\"{event}{now}\",\"time\":{},\"event\":\"{event}\",\"topic\":",
        now / 1000
    );
    json::push_string(&mut out, &sub.topic_list());
    out.push('}');
    out
}

fn event_json(sub: &Subscription, event: &Event<'_>) -> String {
    message_json(sub.topic_of(event.queue), event.id, event.record)
}

/// `/json`: newline-delimited JSON.
pub struct JsonLines;

impl Encoder for JsonLines {
    fn protocol(&self) -> crate::hub::Protocol {
        crate::hub::Protocol::Ntfy
    }

    fn open(&self, out: &mut Vec<u8>, sub: &Subscription) {
        out.extend_from_slice(control_json("open", sub).as_bytes());
        out.push(b'\n');
    }
    fn message(&self, out: &mut Vec<u8>, sub: &Subscription, event: Event<'_>) {
        out.extend_from_slice(event_json(sub, &event).as_bytes());
        out.push(b'\n');
    }
    fn keepalive(&self, out: &mut Vec<u8>, sub: &Subscription) {
        out.extend_from_slice(control_json("keepalive", sub).as_bytes());
        out.push(b'\n');
    }
}

/// `/sse`: Server-Sent Events carrying the same objects.
pub struct Sse;

fn push_named(out: &mut Vec<u8>, event: &str, data: &str) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(event.as_bytes());
    out.push(b'\n');
    sse::push_event(out, None, data.as_bytes());
}

impl Encoder for Sse {
    fn protocol(&self) -> crate::hub::Protocol {
        crate::hub::Protocol::Ntfy
    }

    fn open(&self, out: &mut Vec<u8>, sub: &Subscription) {
        push_named(out, "open", &control_json("open", sub));
    }
    fn message(&self, out: &mut Vec<u8>, sub: &Subscription, event: Event<'_>) {
        out.extend_from_slice(b"id: ");
        out.extend_from_slice(message_id(event.id).as_bytes());
        out.push(b'\n');
        match event_of(event.record) {
            SequenceEvent::Message => {
                sse::push_event(out, None, event_json(sub, &event).as_bytes());
            }
            other => push_named(out, other.name(), &event_json(sub, &event)),
        }
    }
    fn keepalive(&self, out: &mut Vec<u8>, sub: &Subscription) {
        push_named(out, "keepalive", &control_json("keepalive", sub));
    }
}

/// `/raw`: the message text alone, one per line; an empty line as keepalive.
pub struct Raw;

impl Encoder for Raw {
    fn protocol(&self) -> crate::hub::Protocol {
        crate::hub::Protocol::Ntfy
    }

    fn open(&self, _: &mut Vec<u8>, _: &Subscription) {}
    fn message(&self, out: &mut Vec<u8>, _: &Subscription, event: Event<'_>) {
        let record = event.record;
        if event_of(record) != SequenceEvent::Message {
            out.push(b'\n');
            return;
        }
        match (record.content, std::str::from_utf8(&record.data)) {
            (Content::Text | Content::Json, Ok(text)) => {
                out.extend(text.bytes().map(|b| if b == b'\n' { b' ' } else { b }))
            }
            _ => out.extend_from_slice(Base64::encode_string(&record.data).as_bytes()),
        }
        out.push(b'\n');
    }
    fn keepalive(&self, out: &mut Vec<u8>, _: &Subscription) {
        out.push(b'\n');
    }
}

/// `/ws`: one object per WebSocket text frame.
pub struct WebSocket;

impl Encoder for WebSocket {
    fn protocol(&self) -> crate::hub::Protocol {
        crate::hub::Protocol::Ntfy
    }

    fn open(&self, out: &mut Vec<u8>, sub: &Subscription) {
        ws::push_text(out, control_json("open", sub).as_bytes());
    }
    fn message(&self, out: &mut Vec<u8>, sub: &Subscription, event: Event<'_>) {
        ws::push_text(out, event_json(sub, &event).as_bytes());
    }
    fn keepalive(&self, out: &mut Vec<u8>, sub: &Subscription) {
        ws::push_text(out, control_json("keepalive", sub).as_bytes());
        ws::push_ping(out, b"");
    }
    fn websocket(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Priority;

    #[test]
    fn opaque_bytes_are_base64_and_ids_never_look_like_times() {
        let record = MessageRecord {
            expires_at: 5_000,
            posted_at: 2_000,
            content: Content::Opaque,
            priority: Some(Priority::High),
            registration_id: String::new(),
            collapse_key: None,
            extras: br#""title":"t""#.to_vec(),
            sequence: None,
            data: vec![0xff, 0, b'a'],
        };
        assert_eq!(
            message_json("up1", 7, &record),
            r#"{"id":"op7","time":2,"expires":5,"event":"message","topic":"up1","message":"/wBh","encoding":"base64","priority":4,"title":"t"}"#
        );
        assert_eq!(parse_message_id("op7"), Some(7));
        assert_eq!(parse_message_id("1700000000"), None);
    }

    #[test]
    fn a_sequence_id_shows_unless_it_is_the_id_and_events_carry_no_message() {
        let record = |sequence| MessageRecord {
            expires_at: 5_000,
            posted_at: 2_000,
            content: Content::Text,
            priority: None,
            registration_id: String::new(),
            collapse_key: None,
            extras: Vec::new(),
            data: b"hi".to_vec(),
            sequence,
        };
        let of = |id: &str, event| {
            Some(crate::store::Sequence {
                id: id.into(),
                event,
            })
        };
        assert_eq!(
            message_json("t", 7, &record(of("op7", SequenceEvent::Message))),
            r#"{"id":"op7","time":2,"expires":5,"event":"message","topic":"t","message":"hi"}"#
        );
        assert_eq!(
            message_json("t", 9, &record(of("job-1", SequenceEvent::Message))),
            r#"{"id":"op9","sequence_id":"job-1","time":2,"expires":5,"event":"message","topic":"t","message":"hi"}"#
        );
        assert_eq!(
            message_json("t", 10, &record(of("job-1", SequenceEvent::Delete))),
            r#"{"id":"op10","sequence_id":"job-1","time":2,"expires":5,"event":"message_delete","topic":"t"}"#
        );
    }
}
