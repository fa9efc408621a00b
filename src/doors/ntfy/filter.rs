//! Subscriber filters, as ntfy applies them: a stream or poll with `id`, `message`,
//! `title`, `priority` or `tags` (headers `X-ID`, `X-Message` … or query parameters, with
//! ntfy's short names) gets only the messages that match every filter given; the `open`
//! and `keepalive` events always pass, and so do `message_clear` and `message_delete`
//! (ntfy filters messages only: a phone that got a notification learns that it is cleared
//! or deleted), unless an `id` names another message.
//!
//! - `id`: the one message of that id (the ntfy iOS app polls `?poll=1&id=<id>` for the
//!   message a poll request named); an id this server never gave matches nothing;
//! - `message`, `title`: the exact text;
//! - `priority`: one of a comma-separated list of levels or names (a message without one
//!   has the default, 3);
//! - `tags`: every tag of a comma-separated list (a message may have more).

use miniserde::json::{self, Value};

use super::encode::parse_message_id;
use super::fields::{param, parse_priority};
use crate::error::ApiError;
use crate::http::Request;
use crate::store::{MessageRecord, SequenceEvent};

/// The filters of one subscription; only built when the request gives one.
pub struct Filter {
    /// `Some(None)`: an id that is not one of ours, which no message has.
    id: Option<Option<u64>>,
    message: Option<String>,
    title: Option<String>,
    priorities: Vec<u8>,
    tags: Vec<String>,
}

impl Filter {
    /// The request's filters; `None` when it gives none (every message passes).
    pub fn from_request(req: &Request) -> Result<Option<Filter>, ApiError> {
        let get = |names: &[&str]| param(req, names).filter(|v| !v.is_empty());
        let list = |names: &[&str]| -> Vec<String> {
            get(names).map_or_else(Vec::new, |v| {
                v.split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
        };
        let mut priorities = Vec::new();
        for p in list(&["X-Priority", "Priority", "prio", "p"]) {
            priorities.extend(parse_priority(&p)?.map(|p| p.level()));
        }
        let filter = Filter {
            id: get(&["X-ID", "ID"]).map(|id| parse_message_id(&id)),
            message: get(&["X-Message", "Message", "m"]),
            title: get(&["X-Title", "Title", "t"]),
            priorities,
            tags: list(&["X-Tags", "Tags", "Tag", "ta"]),
        };
        let none = filter.id.is_none()
            && filter.message.is_none()
            && filter.title.is_none()
            && filter.priorities.is_empty()
            && filter.tags.is_empty();
        Ok((!none).then_some(filter))
    }

    /// The id of the one message this filter lets through, if it names one of ours.
    pub fn only_id(&self) -> Option<u64> {
        self.id.flatten()
    }
}

impl crate::stream::Filter for Filter {
    fn passes(&self, id: u64, record: &MessageRecord) -> bool {
        if self.id.is_some_and(|wanted| wanted != Some(id)) {
            return false;
        }
        if record
            .sequence
            .as_ref()
            .is_some_and(|s| s.event != SequenceEvent::Message)
        {
            return true;
        }
        if let Some(message) = &self.message
            && std::str::from_utf8(&record.data) != Ok(message.as_str())
        {
            return false;
        }
        let level = record.priority.map_or(3, |p| p.level());
        if !self.priorities.is_empty() && !self.priorities.contains(&level) {
            return false;
        }
        if self.title.is_none() && self.tags.is_empty() {
            return true;
        }
        let extras = String::from_utf8_lossy(&record.extras);
        let fields = match json::from_str::<Value>(&format!("{{{extras}}}")) {
            Ok(Value::Object(fields)) => fields,
            _ => return false,
        };
        if let Some(title) = &self.title
            && !matches!(fields.get("title"), Some(Value::String(t)) if t == title)
        {
            return false;
        }
        let tags: Vec<&str> = match fields.get("tags") {
            Some(Value::Array(tags)) => tags
                .iter()
                .filter_map(|t| match t {
                    Value::String(t) => Some(t.as_str()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        self.tags
            .iter()
            .all(|wanted| tags.contains(&wanted.as_str()))
    }
}
