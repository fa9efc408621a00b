//! Publishing to a topic, as ntfy's clients do it, and Web Push to endpoint topics.
//!
//! `PUT|POST /<topic>` takes the body as the message, with the presentation fields as
//! headers (`X-Title`, `Title`, `ti`, `t` …) or query parameters; `PUT|POST /` take a JSON
//! object `{topic, message, title, priority, tags, click, icon, actions, markdown}`, and
//! the same headers and query parameters, whose fields the JSON's override. The
//! answer is 200 with the message object, as ntfy answers; a publish without a user to an
//! endpoint topic (which it may not read) gets the message's name as its `id`
//! (`crate::locations`), not the id its readers see. A body that is not UTF-8 is kept
//! byte for byte and delivered as base64. `Cache: no` publishes with a TTL of 0 (live
//! subscribers only). Features this server does not have (attachments, e-mail, phone
//! calls) are refused with 400 naming the feature, never dropped silently; `Firebase: no`
//! is accepted (there is no Firebase here). The message is at
//! most `max_data_bytes` and each field within its limit (`super::fields`), whatever form
//! it came in, checked before the post is charged to the topic's rate; the fields together
//! are bounded in `crate::delivery`. A refusal stores nothing.
//!
//! A sequence id (`X-Sequence-ID`, `Sequence-ID`, `SID`, JSON `sequence_id`, or the path
//! `/<topic>/<sequence id>`, which wins) makes the message an update of the notification of
//! that sequence; it replaces a message of the sequence still waiting for its time. A delay
//! (`X-Delay`, `In`, `At` …, JSON `delay`) sends it later (`super::delayed`).
//!
//! A publish to an endpoint topic, or with `?up=1`, `X-UnifiedPush`/`UnifiedPush: 1` or
//! `Content-Encoding: aes128gcm`, is a Web Push request instead (`crate::delivery::webpush`): opaque
//! body, 201, `TTL` (default `topic_default_ttl_secs`), `Urgency`, `Topic`. As in ntfy's
//! UnifiedPush mode, a body that is valid UTF-8 is delivered as text (untrimmed), any other
//! as base64 with `"encoding":"base64"`.

use std::rc::Rc;

use miniserde::Deserialize;

use super::delayed;
use super::encode::message_id;
use super::fields::{Fields, sequence_id, unsupported};
use super::{anonymous_needs_login, user};
use crate::delivery::topics::post_to_topic;
use crate::delivery::webpush;
use crate::delivery::{self, Published};
use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::json;
use crate::limits::AddrKey;
use crate::names::{is_endpoint_topic, is_topic_name};
use crate::route::Outcome;
use crate::state::ServerState;
use crate::store::queue::NewMessage;
use crate::store::{Content, MessageRecord, Priority, Sequence, SequenceEvent};

/// ntfy's message when a publish has no text.
const TRIGGERED: &str = "triggered";

/// `PUT|POST /<topic>`, and `/<topic>/<sequence id>` with `sequence`.
pub async fn to_topic(
    state: &Rc<ServerState>,
    req: &Request,
    topic: &str,
    sequence: Option<&str>,
) -> Result<Outcome, ApiError> {
    if is_web_push(req, topic) {
        return web_push(state, req, topic).await;
    }
    let mut fields = Fields::from_request(req)?;
    if let Some(id) = sequence {
        fields.sequence_id = Some(sequence_id(id)?);
    }
    let body_text = std::str::from_utf8(&req.body).ok();
    let (content, data) = match (fields.message.as_deref(), body_text) {
        (Some(m), _) if req.body.is_empty() => (Content::Text, m.as_bytes().to_vec()),
        (_, Some("")) => (Content::Text, TRIGGERED.as_bytes().to_vec()),
        (_, Some(_)) => (Content::Text, req.body.clone()),
        (_, None) => (Content::Opaque, req.body.clone()),
    };
    publish(state, req, topic, fields, content, data).await
}

pub async fn json(state: &Rc<ServerState>, req: &Request) -> Result<Outcome, ApiError> {
    let (body, compact) = read_json(req)?;
    let topic = body.topic.clone();
    let (fields, data) = json_fields(req, body, &compact)?;
    publish(state, req, &topic, fields, Content::Text, data.into_bytes()).await
}

/// The JSON body of `PUT|POST /`, as compact JSON too; refused when it asks for a feature
/// this server does not have or names no topic.
fn read_json(req: &Request) -> Result<(JsonPublish, Vec<u8>), ApiError> {
    let compact = json::compact(&req.body)
        .map_err(|e| ApiError::BadRequest(format!("the request body is not valid JSON: {e}")))?;
    let text = std::str::from_utf8(&compact).unwrap_or("");
    let body: JsonPublish = miniserde::json::from_str(text).map_err(|_| {
        ApiError::BadRequest(
            "the body must be a JSON object with a string `topic` and optionally `message`, \
             `title`, `priority` (1-5), `tags` (strings), `click`, `icon`, `actions`, `markdown`"
                .into(),
        )
    })?;
    for (field, given) in [
        ("attach", body.attach.is_some()),
        ("filename", body.filename.is_some()),
        ("email", body.email.is_some()),
        ("call", body.call.is_some()),
    ] {
        if given {
            return Err(unsupported(field));
        }
    }
    if !is_topic_name(&body.topic) {
        return Err(ApiError::BadRequest(
            "`topic` must be 1 to 64 letters, digits, - or _".into(),
        ));
    }
    Ok((body, compact))
}

/// The message's fields and text: the JSON's, and the headers' and query's where the JSON
/// gives none (as ntfy does: apprise sends the JSON with `X-Priority` and `X-Tags`).
fn json_fields(
    req: &Request,
    body: JsonPublish,
    compact: &[u8],
) -> Result<(Fields, String), ApiError> {
    let priority = match body.priority {
        None | Some(0) => None,
        Some(level) => Some(
            u8::try_from(level)
                .ok()
                .and_then(Priority::from_level)
                .ok_or_else(|| ApiError::BadRequest("`priority` must be 1 to 5".into()))?,
        ),
    };
    let actions = match json::object_field(compact, "actions") {
        Some(raw) if raw.first() == Some(&b'[') => Some(String::from_utf8_lossy(raw).into_owned()),
        Some(b"null") | None => None,
        Some(_) => return Err(ApiError::BadRequest("`actions` must be an array".into())),
    };
    // A field the JSON gives wins.
    let given = Fields::from_request(req)?;
    let fields = Fields {
        title: body.title.or(given.title),
        priority: priority.or(given.priority),
        tags: body.tags.filter(|t| !t.is_empty()).unwrap_or(given.tags),
        click: body.click.or(given.click),
        icon: body.icon.or(given.icon),
        actions: actions.or(given.actions),
        markdown: body.markdown.unwrap_or(given.markdown),
        message: None,
        cache: given.cache,
        sequence_id: match body.sequence_id.filter(|id| !id.is_empty()) {
            Some(id) => Some(sequence_id(&id)?),
            None => given.sequence_id,
        },
        delay: body.delay.filter(|d| !d.is_empty()).or(given.delay),
    };
    let message = body
        .message
        .filter(|m| !m.is_empty())
        .or(given.message)
        .unwrap_or_default();
    let data = if message.is_empty() {
        TRIGGERED.into()
    } else {
        message
    };
    Ok((fields, data))
}

#[derive(Deserialize)]
struct JsonPublish {
    topic: String,
    message: Option<String>,
    title: Option<String>,
    priority: Option<u64>,
    tags: Option<Vec<String>>,
    click: Option<String>,
    icon: Option<String>,
    markdown: Option<bool>,
    attach: Option<String>,
    filename: Option<String>,
    email: Option<String>,
    call: Option<String>,
    delay: Option<String>,
    sequence_id: Option<String>,
}

fn is_web_push(req: &Request, topic: &str) -> bool {
    is_endpoint_topic(topic)
        || matches!(req.query_param("up"), Some("1"))
        || ["x-unifiedpush", "unifiedpush"]
            .iter()
            .any(|h| matches!(req.header(h), Some("1" | "true" | "yes")))
        || req
            .header("content-encoding")
            .is_some_and(|e| e.trim().eq_ignore_ascii_case("aes128gcm"))
}

async fn web_push(
    state: &Rc<ServerState>,
    req: &Request,
    topic: &str,
) -> Result<Outcome, ApiError> {
    let config = state.config();
    let push = webpush::parse(
        req,
        config.topic_default_ttl.as_secs(),
        config.topic_max_ttl.as_secs(),
        config.limits.max_data_bytes,
    )?;
    delivery::charge(state, topic.as_bytes())?;
    let user = user(state, req).await?.map(|u| u.id);
    let ttl = push.ttl_secs;
    let from = req.client_addr.map(AddrKey::of);
    let mut message = push.into_message();
    // As ntfy does with a UnifiedPush body: text when it is UTF-8, base64 otherwise; either
    // way the phone gets the same bytes.
    if std::str::from_utf8(&message.data).is_ok() {
        message.content = Content::Text;
    }
    let published = post_to_topic(state, topic.to_owned(), user, from, message)
        .await
        .map_err(|e| anonymous_needs_login(e, user))?;
    Ok(webpush::created(state, &published, ttl).into())
}

async fn publish(
    state: &Rc<ServerState>,
    req: &Request,
    topic: &str,
    fields: Fields,
    content: Content,
    data: Vec<u8>,
) -> Result<Outcome, ApiError> {
    let config = state.config();
    if data.len() > config.limits.max_data_bytes {
        return Err(ApiError::TooLarge(format!(
            "a message is at most {} bytes; this one is {} (attachments are not supported)",
            config.limits.max_data_bytes,
            data.len()
        )));
    }
    fields.check(&config.limits)?;
    let due = match &fields.delay {
        Some(delay) => Some(delayed::due_time(state, delay, fields.cache)?),
        None => None,
    };
    delivery::charge(state, topic.as_bytes())?;
    let user = user(state, req).await?.map(|u| u.id);
    let message = NewMessage {
        content,
        data,
        priority: fields.priority,
        ttl_secs: if fields.cache {
            config.topic_default_ttl.as_secs()
        } else {
            0
        },
        collapse_key: None,
        extras: fields.extras().into_bytes(),
        sequence: fields.sequence_id.map(|id| Sequence {
            id,
            event: SequenceEvent::Message,
        }),
    };
    let from = req.client_addr.map(AddrKey::of);
    let (id, record) = match due {
        Some(due) => {
            let scheduled = delayed::schedule(state, topic, user, from, message, due)
                .await
                .map_err(|e| anonymous_needs_login(e, user))?;
            (scheduled.slot, Rc::new(scheduled.record))
        }
        None => {
            let published: Published = post_to_topic(state, topic.to_owned(), user, from, message)
                .await
                .map_err(|e| anonymous_needs_login(e, user))?;
            super::wake_iphones(state, req, topic, published.id);
            (published.id, published.record)
        }
    };
    Ok(Response::json(200, answer(state, topic, user, id, &record)).into())
}

/// The message object a publish (or a clear or delete) is answered with. A sender without
/// a user to an endpoint topic gets the message's name as its `id` (`crate::locations`),
/// and never the id its readers know, not even as the sequence id a delayed message got
/// from it.
pub(super) fn answer(
    state: &ServerState,
    topic: &str,
    user: Option<u64>,
    id: u64,
    record: &MessageRecord,
) -> String {
    match user {
        None if is_endpoint_topic(topic) => {
            let name = format!("m{}", state.locations.name(id));
            let mut shown = record.clone();
            if shown
                .sequence
                .as_ref()
                .is_some_and(|s| s.id == message_id(id))
            {
                shown.sequence = None;
            }
            super::message_json_as(topic, &name, &shown)
        }
        _ => super::message_json(topic, id, record),
    }
}
