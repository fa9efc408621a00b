//! The JSON shapes on the wire, and a scanner for top-level fields.
//!
//! [`field`] finds a field of an object and returns its value's raw text, so nested JSON (an
//! OpenPush message's `data` object) is handed on byte for byte, never re-ordered or
//! re-formatted. It validates only what it walks past; it is meant for answers of a server,
//! not for hostile input that must be rejected.

use miniserde::{Deserialize, Serialize};

/// A Web Push subscription as browsers and Web Push libraries exchange it
/// (`PushSubscription.toJSON()`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    pub endpoint: String,
    pub keys: SubscriptionKeys,
}

/// `p256dh`: the subscriber's uncompressed P-256 point; `auth`: its 16-byte secret; both
/// base64url without padding.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionKeys {
    pub p256dh: String,
    pub auth: String,
}

/// A JSON string literal for `text`.
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The raw text of the value of `name` in the JSON object `json` (top level only).
pub fn field<'a>(json: &'a str, name: &str) -> Option<&'a str> {
    let b = json.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return None;
    }
    loop {
        let key_end = skip_value(b, i)?;
        let key = string(&json[i..key_end])?;
        i = skip_ws(b, key_end);
        if b.get(i) != Some(&b':') {
            return None;
        }
        let start = skip_ws(b, i + 1);
        let end = skip_value(b, start)?;
        if key == name {
            return Some(&json[start..end]);
        }
        i = skip_ws(b, end);
        match b.get(i) {
            Some(b',') => i = skip_ws(b, i + 1),
            _ => return None,
        }
    }
}

/// A string field's value, unescaped.
pub fn string_field(json: &str, name: &str) -> Option<String> {
    string(field(json, name)?)
}

/// A number field's value.
pub fn u64_field(json: &str, name: &str) -> Option<u64> {
    field(json, name)?.parse().ok()
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// The end of the value starting at `i`.
fn skip_value(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' => skip_string(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match *b.get(j)? {
                    b'"' => {
                        j = skip_string(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let mut j = i;
            while b
                .get(j)
                .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'.'))
            {
                j += 1;
            }
            (j > i).then_some(j)
        }
    }
}

fn skip_string(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    loop {
        match *b.get(j)? {
            b'"' => return Some(j + 1),
            b'\\' => j += 2,
            _ => j += 1,
        }
    }
}

/// Unescapes a JSON string literal (with its quotes); `None` if `raw` is not one.
pub fn string(raw: &str) -> Option<String> {
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            '"' => out.push('"'),
            '\\' => out.push('\\'),
            '/' => out.push('/'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'u' => {
                let hi = hex4(&mut chars)?;
                let code = if (0xd800..0xdc00).contains(&hi) {
                    if chars.next()? != '\\' || chars.next()? != 'u' {
                        return None;
                    }
                    let lo = hex4(&mut chars)?;
                    0x10000 + ((hi - 0xd800) << 10) + (lo.checked_sub(0xdc00)? & 0x3ff)
                } else {
                    hi
                };
                out.push(char::from_u32(code)?);
            }
            _ => return None,
        }
    }
    Some(out)
}

fn hex4(chars: &mut std::str::Chars<'_>) -> Option<u32> {
    let hex: String = chars.take(4).collect();
    if hex.len() != 4 {
        return None;
    }
    u32::from_str_radix(&hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_fields_and_keeps_nested_json_as_sent() {
        let event = r#"{"data":{"title":"Hi","n":[1,{"x":"}"}]} ,"registration_id":"chat","priority":"high"}"#;
        assert_eq!(
            field(event, "data"),
            Some(r#"{"title":"Hi","n":[1,{"x":"}"}]}"#)
        );
        assert_eq!(
            string_field(event, "registration_id").as_deref(),
            Some("chat")
        );
        assert_eq!(string_field(event, "priority").as_deref(), Some("high"));
        assert_eq!(field(event, "title"), None);
        assert_eq!(u64_field(r#"{"id":42}"#, "id"), Some(42));
        assert_eq!(field("{}", "x"), None);
        assert_eq!(field("[1]", "x"), None);
    }

    #[test]
    fn strings_round_trip() {
        for s in ["", "plain", "q\"b\\s", "line\nfeed\ttab\u{1}", "ünï 😀"] {
            assert_eq!(string(&quote(s)).as_deref(), Some(s));
        }
        assert_eq!(string(r#""\ud83d\ude00 \u00fc""#).as_deref(), Some("😀 ü"));
        assert_eq!(string(r#""\x""#), None);
    }

    #[test]
    fn subscription_shape() {
        let sub = Subscription {
            endpoint: "http://h/push/t".into(),
            keys: SubscriptionKeys {
                p256dh: "BP".into(),
                auth: "AU".into(),
            },
        };
        let text = miniserde::json::to_string(&sub);
        assert_eq!(
            text,
            r#"{"endpoint":"http://h/push/t","keys":{"p256dh":"BP","auth":"AU"}}"#
        );
        assert_eq!(
            miniserde::json::from_str::<Subscription>(&text).unwrap(),
            sub
        );
    }
}
