//! Publishing to a topic, as ntfy's clients do it, and Web Push to endpoint topics.
//!
//! `PUT|POST /<topic>` takes the body as the message, with the presentation fields as
//! headers (`X-Title`, `Title`, `ti`, `t` …) or query parameters; `PUT|POST /` take a JSON
//! object `{topic, message, title, priority, tags, click, icon, actions, markdown}`, and
//! the same headers and query parameters, whose fields the JSON's override. The
//! answer is 200 with the message object, as ntfy answers. A body that is not UTF-8 is kept
//! byte for byte and delivered as base64. `Cache: no` publishes with a TTL of 0 (live
//! subscribers only). Features this server does not have (attachments, e-mail, phone
//! calls, delayed delivery) are refused with 400 naming the feature, never dropped
//! silently; `Firebase: no` is accepted (there is no Firebase here).
//!
//! A publish to an endpoint topic, or with `?up=1`, `X-UnifiedPush`/`UnifiedPush: 1` or
//! `Content-Encoding: aes128gcm`, is a Web Push request instead (`crate::webpush`): opaque
//! body, 201, `TTL` (default `topic_default_ttl_secs`), `Urgency`, `Topic`.

use std::rc::Rc;

use miniserde::Deserialize;

use super::{anonymous_needs_login, topic_queue, user};
use crate::api::Outcome;
use crate::delivery::{self, Published};
use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::json;
use crate::names::{is_endpoint_topic, is_topic_name};
use crate::state::ServerState;
use crate::store::queue::NewMessage;
use crate::store::{Content, Priority};
use crate::webpush;

/// ntfy's message when a publish has no text.
const TRIGGERED: &str = "triggered";

pub async fn to_topic(
    state: &Rc<ServerState>,
    req: &Request,
    topic: &str,
) -> Result<Outcome, ApiError> {
    delivery::counted(state, async {
        if is_web_push(req, topic) {
            return web_push(state, req, topic).await;
        }
        let fields = Fields::from_request(req)?;
        let body_text = std::str::from_utf8(&req.body).ok();
        let (content, data) = match (fields.message.as_deref(), body_text) {
            (Some(m), _) if req.body.is_empty() => (Content::Text, m.as_bytes().to_vec()),
            (_, Some("")) => (Content::Text, TRIGGERED.as_bytes().to_vec()),
            (_, Some(_)) => (Content::Text, req.body.clone()),
            (_, None) => (Content::Opaque, req.body.clone()),
        };
        publish(state, req, topic, fields, content, data).await
    })
    .await
}

pub async fn json(state: &Rc<ServerState>, req: &Request) -> Result<Outcome, ApiError> {
    delivery::counted(state, async {
        let compact = json::compact(&req.body).map_err(|e| {
            ApiError::BadRequest(format!("the request body is not valid JSON: {e}"))
        })?;
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
            ("delay", body.delay.is_some()),
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
        let priority = match body.priority {
            None | Some(0) => None,
            Some(level) => Some(
                u8::try_from(level)
                    .ok()
                    .and_then(Priority::from_level)
                    .ok_or_else(|| ApiError::BadRequest("`priority` must be 1 to 5".into()))?,
            ),
        };
        let actions = match json::object_field(&compact, "actions") {
            Some(raw) if raw.first() == Some(&b'[') => Some(String::from_utf8_lossy(raw).into_owned()),
            Some(b"null") | None => None,
            Some(_) => return Err(ApiError::BadRequest("`actions` must be an array".into())),
        };
        // As ntfy does, the headers and query parameters count too (apprise sends the JSON
        // with `X-Priority` and `X-Tags`); a field the JSON gives wins.
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
        };
        let message = body
            .message
            .filter(|m| !m.is_empty())
            .or(given.message)
            .unwrap_or_default();
        let data = if message.is_empty() { TRIGGERED.into() } else { message };
        publish(state, req, &body.topic, fields, Content::Text, data.into_bytes()).await
    })
    .await
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
}

fn unsupported(feature: &str) -> ApiError {
    ApiError::BadRequest(format!(
        "`{feature}` is an ntfy feature this server does not have (no attachments, e-mail, \
         phone calls or delayed delivery)"
    ))
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
    let resolve = topic_queue(state, topic.to_owned(), user);
    let published = delivery::publish(state, resolve, push.into_message())
        .await
        .map_err(|e| anonymous_needs_login(e, user))?;
    Ok(webpush::created(&published, ttl).into())
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
    };
    let resolve = topic_queue(state, topic.to_owned(), user);
    let published: Published = delivery::publish(state, resolve, message)
        .await
        .map_err(|e| anonymous_needs_login(e, user))?;
    let body = super::message_json(topic, published.id, &published.record);
    Ok(Response::json(200, body).into())
}

/// The presentation fields of a publish.
struct Fields {
    title: Option<String>,
    priority: Option<Priority>,
    tags: Vec<String>,
    click: Option<String>,
    icon: Option<String>,
    /// A JSON array.
    actions: Option<String>,
    markdown: bool,
    message: Option<String>,
    cache: bool,
}

impl Fields {
    fn from_request(req: &Request) -> Result<Fields, ApiError> {
        let get = |names: &[&str]| -> Option<String> {
            for name in names {
                // Header names are case-insensitive; query parameters are matched in
                // lower case, as ntfy does (`?title=`, `?cache=no`).
                let name = name.to_ascii_lowercase();
                if let Some(v) = req.header(&name) {
                    return Some(v.trim().to_owned());
                }
                if let Some(v) = req.query_param(&name) {
                    return Some(query_decode(v));
                }
            }
            None
        };
        for (feature, names) in [
            ("attach", &["X-Attach", "Attach", "a"][..]),
            ("filename", &["X-Filename", "Filename", "file", "f"]),
            (
                "email",
                &["X-Email", "X-E-Mail", "Email", "E-Mail", "mail", "e"],
            ),
            ("call", &["X-Call", "Call"]),
            ("delay", &["X-Delay", "Delay", "X-At", "At", "X-In", "In"]),
        ] {
            if get(names).is_some_and(|v| !v.is_empty()) {
                return Err(unsupported(feature));
            }
        }
        let priority = match get(&["X-Priority", "Priority", "prio", "p"]) {
            None => None,
            Some(p) => parse_priority(&p)?,
        };
        let tags = get(&["X-Tags", "Tags", "Tag", "ta"])
            .map(|t| {
                t.split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let actions = match get(&["X-Actions", "Actions", "Action"]) {
            None => None,
            Some(a) if a.trim().is_empty() => None,
            Some(a) => Some(parse_actions(&a)?),
        };
        Ok(Fields {
            title: get(&["X-Title", "Title", "ti", "t"]),
            priority,
            tags,
            click: get(&["X-Click", "Click"]),
            icon: get(&["X-Icon", "Icon"]),
            actions,
            markdown: get(&["X-Markdown", "Markdown", "md"])
                .is_some_and(|v| matches!(v.as_str(), "1" | "yes" | "true")),
            message: get(&["X-Message", "Message", "m"]),
            cache: get(&["X-Cache", "Cache"]).is_none_or(|v| v != "no"),
        })
    }

    /// The members of the message object these fields add.
    fn extras(&self) -> String {
        let mut out = String::new();
        let mut member = |name: &str, value: &str, raw: bool| {
            if !out.is_empty() {
                out.push(',');
            }
            json::push_string(&mut out, name);
            out.push(':');
            if raw {
                out.push_str(value);
            } else {
                json::push_string(&mut out, value);
            }
        };
        if let Some(title) = &self.title {
            member("title", title, false);
        }
        if !self.tags.is_empty() {
            let mut list = String::from("[");
            for (i, tag) in self.tags.iter().enumerate() {
                if i > 0 {
                    list.push(',');
                }
                json::push_string(&mut list, tag);
            }
            list.push(']');
            member("tags", &list, true);
        }
        if let Some(click) = &self.click {
            member("click", click, false);
        }
        if let Some(icon) = &self.icon {
            member("icon", icon, false);
        }
        if let Some(actions) = &self.actions {
            member("actions", actions, true);
        }
        if self.markdown {
            member("content_type", "text/markdown", false);
        }
        out
    }
}

/// ntfy priorities: 1-5 or their names.
fn parse_priority(value: &str) -> Result<Option<Priority>, ApiError> {
    let level = match value.trim().to_ascii_lowercase().as_str() {
        "" => return Ok(None),
        "1" | "min" => 1,
        "2" | "low" => 2,
        "3" | "default" => 3,
        "4" | "high" => 4,
        "5" | "max" | "urgent" => 5,
        _ => {
            return Err(ApiError::BadRequest(
                "priority must be 1-5, min, low, default, high, max or urgent".into(),
            ));
        }
    };
    Ok(Priority::from_level(level))
}

/// `+` and percent escapes of a query value.
fn query_decode(value: &str) -> String {
    let spaced = value.replace('+', " ");
    crate::api::percent_decode(&spaced).unwrap_or(spaced)
}

/// ntfy's action buttons, as a JSON array: either JSON already, or the simple form
/// `view, Open, https://…, clear=true; http, Close door, https://…, method=PUT, body=…`.
fn parse_actions(value: &str) -> Result<String, ApiError> {
    let value = value.trim();
    if value.starts_with('[') {
        let compact = json::compact(value.as_bytes())
            .map_err(|e| ApiError::BadRequest(format!("actions: not valid JSON: {e}")))?;
        return Ok(String::from_utf8_lossy(&compact).into_owned());
    }
    let bad = |why: &str| ApiError::BadRequest(format!("actions: {why}"));
    let mut out = String::from("[");
    for (n, action) in split_unquoted(value, ';').into_iter().enumerate() {
        let parts = split_unquoted(&action, ',');
        let kind = parts
            .first()
            .map(|s| s.trim().to_ascii_lowercase())
            .unwrap_or_default();
        if !matches!(kind.as_str(), "view" | "http" | "broadcast") {
            return Err(bad("each action starts with view, http or broadcast"));
        }
        let label = parts.get(1).map(|s| s.trim()).filter(|s| !s.is_empty());
        let label = label.ok_or_else(|| bad("each action needs a label"))?;
        if n > 0 {
            out.push(',');
        }
        out.push_str("{\"action\":");
        json::push_string(&mut out, &kind);
        out.push_str(",\"label\":");
        json::push_string(&mut out, &unquote(label));
        let mut rest = parts.iter().skip(2).map(|s| s.trim());
        if kind != "broadcast" {
            let url = rest
                .next()
                .ok_or_else(|| bad("view and http actions need a URL"))?;
            out.push_str(",\"url\":");
            json::push_string(&mut out, &unquote(url));
        }
        for option in rest {
            let (key, val) = option
                .split_once('=')
                .ok_or_else(|| bad("options are key=value"))?;
            let (key, val) = (key.trim(), unquote(val.trim()));
            out.push(',');
            match key {
                "clear" => {
                    out.push_str("\"clear\":");
                    out.push_str(if val == "true" { "true" } else { "false" });
                }
                "method" | "body" | "intent" | "url" => {
                    json::push_string(&mut out, key);
                    out.push(':');
                    json::push_string(&mut out, &val);
                }
                _ => {
                    let (group, name) = key
                        .split_once('.')
                        .filter(|(g, _)| matches!(*g, "headers" | "extras"))
                        .ok_or_else(|| bad("unknown action option"))?;
                    json::push_string(&mut out, group);
                    out.push_str(":{");
                    json::push_string(&mut out, name);
                    out.push(':');
                    json::push_string(&mut out, &val);
                    out.push('}');
                }
            }
        }
        out.push('}');
    }
    out.push(']');
    Ok(out)
}

fn split_unquoted(value: &str, sep: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut part = String::new();
    let mut quote = None;
    for c in value.chars() {
        match (c, quote) {
            ('"' | '\'', None) => quote = Some(c),
            (c, Some(q)) if c == q => quote = None,
            (c, None) if c == sep => {
                parts.push(std::mem::take(&mut part));
                continue;
            }
            _ => {}
        }
        part.push(c);
    }
    parts.push(part);
    parts.retain(|p| !p.trim().is_empty());
    parts
}

fn unquote(value: &str) -> String {
    let v = value.trim();
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|v| v.strip_suffix(q)) {
            return inner.to_owned();
        }
    }
    v.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_actions_become_json() {
        let json = parse_actions(
            "view, Open portal, https://home.nest.com/, clear=true; http, \"Turn down\", https://api.nest.com/, method=PUT, body='{\"temp\":65}'",
        )
        .unwrap();
        assert_eq!(
            json,
            r#"[{"action":"view","label":"Open portal","url":"https://home.nest.com/","clear":true},{"action":"http","label":"Turn down","url":"https://api.nest.com/","method":"PUT","body":"{\"temp\":65}"}]"#
        );
        assert!(parse_actions("jump, x").is_err());
    }

    #[test]
    fn priorities_by_number_or_name() {
        assert_eq!(parse_priority("urgent").unwrap(), Some(Priority::Urgent));
        assert_eq!(parse_priority("2").unwrap(), Some(Priority::Low));
        assert!(parse_priority("6").is_err());
    }
}
