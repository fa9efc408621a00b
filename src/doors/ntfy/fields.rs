//! The presentation fields of an ntfy publish (title, priority, tags, click, icon,
//! actions, markdown, cache, and the message given as a header or parameter), its sequence
//! id and its delay: read from headers and query parameters by every name ntfy takes them
//! by, and checked against their limits before anything is stored.
//!
//! Limits, each in bytes as sent (UTF-8, so `é` counts 2): `max_title_bytes` (ntfy's own
//! title limit, 1024), `max_tags_bytes` for the tags together (ntfy's, 512),
//! `max_url_bytes` for `click` and for `icon` each, and `max_actions_bytes` for the action
//! buttons as the JSON array that is stored; past one of them: 413. At most
//! [`MAX_ACTIONS`] buttons, as ntfy: 400. The fields together, as stored, are bounded once
//! more by `delivery` (`max_fields_bytes`), whatever door a message comes through.

use miniserde::json::Value;

use crate::config::Limits;
use crate::error::ApiError;
use crate::http::Request;
use crate::json;
use crate::store::Priority;

/// Action buttons per message: ntfy's `actionsMax`, the buttons an Android notification
/// shows.
pub const MAX_ACTIONS: usize = 3;

/// The refusal of an ntfy feature this server does not have.
pub(super) fn unsupported(feature: &str) -> ApiError {
    ApiError::BadRequest(format!(
        "`{feature}` is an ntfy feature this server does not have (no attachments, e-mail \
         or phone calls)"
    ))
}

/// An ntfy sequence id: 1 to 64 letters, digits, `-` or `_`, as ntfy takes them (a topic
/// name's shape; the names this server reserves for its paths are allowed).
pub(super) fn is_sequence_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `id` if it is a sequence id, else the 400 naming it.
pub(super) fn sequence_id(id: &str) -> Result<String, ApiError> {
    if is_sequence_id(id) {
        Ok(id.to_owned())
    } else {
        Err(ApiError::BadRequest(
            "a sequence id is 1 to 64 letters, digits, - or _".into(),
        ))
    }
}

/// The presentation fields of a publish.
pub(super) struct Fields {
    pub title: Option<String>,
    pub priority: Option<Priority>,
    pub tags: Vec<String>,
    pub click: Option<String>,
    pub icon: Option<String>,
    /// A JSON array, compact.
    pub actions: Option<String>,
    pub markdown: bool,
    pub message: Option<String>,
    pub cache: bool,
    /// The sequence id (`X-Sequence-ID`), checked.
    pub sequence_id: Option<String>,
    /// When to send it (`X-Delay`, `In`, `At`), as given; read by `super::delayed`.
    pub delay: Option<String>,
}

impl Fields {
    pub fn from_request(req: &Request) -> Result<Fields, ApiError> {
        let get = |names: &[&str]| param(req, names);
        for (feature, names) in [
            ("attach", &["X-Attach", "Attach", "a"][..]),
            ("filename", &["X-Filename", "Filename", "file", "f"]),
            (
                "email",
                &["X-Email", "X-E-Mail", "Email", "E-Mail", "mail", "e"],
            ),
            ("call", &["X-Call", "Call"]),
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
            sequence_id: get(&["X-Sequence-ID", "Sequence-ID", "Sequence_ID", "SID"])
                .filter(|v| !v.is_empty())
                .map(|v| sequence_id(&v))
                .transpose()?,
            delay: get(&["X-Delay", "Delay", "X-At", "At", "X-In", "In"]).filter(|v| !v.is_empty()),
        })
    }

    /// Refuses a field past its limit: 413 naming it, or 400 past [`MAX_ACTIONS`].
    pub fn check(&self, limits: &Limits) -> Result<(), ApiError> {
        let len = |field: &Option<String>| field.as_ref().map_or(0, String::len);
        let tags = self.tags.iter().map(String::len).sum();
        let actions = len(&self.actions);
        for (size, limit, what) in [
            (len(&self.title), limits.max_title_bytes, "`title` is"),
            (tags, limits.max_tags_bytes, "`tags` together are"),
            (len(&self.click), limits.max_url_bytes, "`click` is"),
            (len(&self.icon), limits.max_url_bytes, "`icon` is"),
            (actions, limits.max_actions_bytes, "`actions` as JSON are"),
        ] {
            if size > limit {
                return Err(ApiError::TooLarge(format!(
                    "{what} at most {limit} bytes, not {size}"
                )));
            }
        }
        if let Some(actions) = &self.actions {
            let count = match miniserde::json::from_str::<Value>(actions) {
                Ok(Value::Array(list)) => list.len(),
                _ => return Err(ApiError::BadRequest("`actions` must be an array".into())),
            };
            if count > MAX_ACTIONS {
                return Err(ApiError::BadRequest(format!(
                    "at most {MAX_ACTIONS} `actions`, as in ntfy; this message has {count}"
                )));
            }
        }
        Ok(())
    }

    /// The members of the message object these fields add.
    pub fn extras(&self) -> String {
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

/// The first of `names` the request has, as a header or a query parameter. Header names are
/// case-insensitive; query parameters are matched in lower case, as ntfy does (`?title=`,
/// `?cache=no`).
pub(super) fn param(req: &Request, names: &[&str]) -> Option<String> {
    for name in names {
        let name = name.to_ascii_lowercase();
        if let Some(v) = req.header(&name) {
            return Some(v.trim().to_owned());
        }
        if let Some(v) = req.query_param(&name) {
            return Some(query_decode(v));
        }
    }
    None
}

/// ntfy priorities: 1-5 or their names.
pub(super) fn parse_priority(value: &str) -> Result<Option<Priority>, ApiError> {
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
    crate::http::percent_decode(&spaced).unwrap_or(spaced)
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
