//! JSON helpers that miniserde does not give: a validating compactor that keeps a value's
//! bytes as sent (key order, number spelling, string escapes), a raw field lookup on
//! compact JSON, and string escaping for hand-written responses.
//!
//! Payloads are delivered byte-for-byte as sent, minus insignificant whitespace, so the
//! `data` object is never parsed into a map and re-serialized. Nesting is limited to
//! [`MAX_DEPTH`] so that hostile input cannot exhaust the stack.

/// How deep arrays and objects may nest in a body this server parses.
pub const MAX_DEPTH: usize = 64;

/// Validates `input` as one JSON value and returns it without insignificant whitespace.
pub fn compact(input: &[u8]) -> Result<Vec<u8>, &'static str> {
    let mut out = Vec::with_capacity(input.len());
    let mut pos = skip_ws(input, 0);
    pos = value(input, pos, &mut out, 0)?;
    if skip_ws(input, pos) != input.len() {
        return Err("trailing characters after the JSON value");
    }
    Ok(out)
}

fn skip_ws(s: &[u8], mut pos: usize) -> usize {
    while pos < s.len() && matches!(s[pos], b' ' | b'\t' | b'\n' | b'\r') {
        pos += 1;
    }
    pos
}

fn value(s: &[u8], pos: usize, out: &mut Vec<u8>, depth: usize) -> Result<usize, &'static str> {
    match s.get(pos) {
        Some(b'{') => container(s, pos, out, depth, b'}', true),
        Some(b'[') => container(s, pos, out, depth, b']', false),
        Some(b'"') => string_value(s, pos, out),
        Some(b't') => literal(s, pos, out, b"true"),
        Some(b'f') => literal(s, pos, out, b"false"),
        Some(b'n') => literal(s, pos, out, b"null"),
        Some(b'-' | b'0'..=b'9') => number(s, pos, out),
        Some(_) => Err("invalid JSON value"),
        None => Err("unexpected end of JSON"),
    }
}

fn container(
    s: &[u8],
    pos: usize,
    out: &mut Vec<u8>,
    depth: usize,
    close: u8,
    object: bool,
) -> Result<usize, &'static str> {
    if depth >= MAX_DEPTH {
        return Err("JSON nested too deeply");
    }
    out.push(s[pos]);
    let mut pos = skip_ws(s, pos + 1);
    if s.get(pos) == Some(&close) {
        out.push(close);
        return Ok(pos + 1);
    }
    loop {
        if object {
            if s.get(pos) != Some(&b'"') {
                return Err("object keys must be strings");
            }
            pos = skip_ws(s, string_value(s, pos, out)?);
            if s.get(pos) != Some(&b':') {
                return Err("expected ':' after an object key");
            }
            out.push(b':');
            pos = skip_ws(s, pos + 1);
        }
        pos = skip_ws(s, value(s, pos, out, depth + 1)?);
        match s.get(pos) {
            Some(b',') => {
                out.push(b',');
                pos = skip_ws(s, pos + 1);
            }
            Some(&c) if c == close => {
                out.push(close);
                return Ok(pos + 1);
            }
            _ => return Err("expected ',' or the end of a container"),
        }
    }
}

fn string_value(s: &[u8], pos: usize, out: &mut Vec<u8>) -> Result<usize, &'static str> {
    let start = pos;
    let mut pos = pos + 1;
    loop {
        match s.get(pos) {
            None => return Err("unterminated string"),
            Some(b'"') => break,
            Some(b'\\') => match s.get(pos + 1) {
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => pos += 2,
                Some(b'u') => {
                    let hex = s.get(pos + 2..pos + 6).ok_or("truncated \\u escape")?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return Err("invalid \\u escape");
                    }
                    pos += 6;
                }
                _ => return Err("invalid escape in string"),
            },
            Some(&c) if c < 0x20 => return Err("control character in string"),
            Some(_) => pos += 1,
        }
    }
    let raw = &s[start..=pos];
    std::str::from_utf8(raw).map_err(|_| "string is not valid UTF-8")?;
    out.extend_from_slice(raw);
    Ok(pos + 1)
}

fn literal(s: &[u8], pos: usize, out: &mut Vec<u8>, word: &[u8]) -> Result<usize, &'static str> {
    if s.get(pos..pos + word.len()) != Some(word) {
        return Err("invalid JSON literal");
    }
    out.extend_from_slice(word);
    Ok(pos + word.len())
}

fn number(s: &[u8], start: usize, out: &mut Vec<u8>) -> Result<usize, &'static str> {
    let digits = |mut p: usize| {
        let from = p;
        while s.get(p).is_some_and(u8::is_ascii_digit) {
            p += 1;
        }
        (p, p - from)
    };
    let mut pos = start;
    if s.get(pos) == Some(&b'-') {
        pos += 1;
    }
    let (end, n) = digits(pos);
    if n == 0 || (n > 1 && s[pos] == b'0') {
        return Err("invalid number");
    }
    pos = end;
    if s.get(pos) == Some(&b'.') {
        let (end, n) = digits(pos + 1);
        if n == 0 {
            return Err("invalid number");
        }
        pos = end;
    }
    if matches!(s.get(pos), Some(b'e' | b'E')) {
        pos += 1;
        if matches!(s.get(pos), Some(b'+' | b'-')) {
            pos += 1;
        }
        let (end, n) = digits(pos);
        if n == 0 {
            return Err("invalid number");
        }
        pos = end;
    }
    out.extend_from_slice(&s[start..pos]);
    Ok(pos)
}

/// The raw value of `key` in a compact JSON object (the last one if repeated).
pub fn object_field<'a>(compact: &'a [u8], key: &str) -> Option<&'a [u8]> {
    if compact.first() != Some(&b'{') {
        return None;
    }
    let mut found = None;
    let mut pos = 1;
    while pos < compact.len() && compact[pos] == b'"' {
        let key_end = skip_compact(compact, pos)?;
        let name = &compact[pos + 1..key_end - 1];
        let value_start = key_end + 1;
        let value_end = skip_compact(compact, value_start)?;
        if name == key.as_bytes() {
            found = Some(&compact[value_start..value_end]);
        }
        pos = value_end + 1;
    }
    found
}

/// The end of the value that starts at `pos` in compact, valid JSON.
fn skip_compact(s: &[u8], pos: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = pos;
    let mut in_string = false;
    while i < s.len() {
        let c = s[i];
        if in_string {
            match c {
                b'\\' => i += 1,
                b'"' => {
                    in_string = false;
                    if depth == 0 {
                        return Some(i + 1);
                    }
                }
                _ => {}
            }
        } else {
            match c {
                b'"' => in_string = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' if depth == 0 => return Some(i),
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(i + 1);
                    }
                }
                b',' if depth == 0 => return Some(i),
                _ => {}
            }
        }
        i += 1;
    }
    (depth == 0 && !in_string).then_some(i)
}

/// `s` as a JSON string literal.
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_string(&mut out, s);
    out
}

/// Appends `s` as a JSON string, quoted and escaped.
pub fn push_string(out: &mut String, s: &str) {
    use std::fmt::Write;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_keeps_order_numbers_and_escapes() {
        let raw = br#" { "z" : 1.50e+3 , "a" : [ true , null , "x\u00e9\"" ] , "s": "a b" } "#;
        assert_eq!(
            compact(raw).unwrap(),
            br#"{"z":1.50e+3,"a":[true,null,"x\u00e9\""],"s":"a b"}"#.to_vec()
        );
    }

    #[test]
    fn compact_rejects_invalid_json() {
        for bad in [
            &b"{"[..],
            b"{\"a\"}",
            b"[1,]",
            b"01",
            b"\"\x01\"",
            b"tru",
            b"{} {}",
            b"1.",
            b"-",
            b"\"\\x\"",
        ] {
            assert!(compact(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let deep = [vec![b'['; 100], vec![b']'; 100]].concat();
        assert!(compact(&deep).is_err());
    }

    #[test]
    fn object_field_finds_raw_values() {
        let c = compact(br#"{"token":"t","data":{"k":[1,{"x":"}"}]},"n":2}"#).unwrap();
        assert_eq!(
            object_field(&c, "data"),
            Some(&br#"{"k":[1,{"x":"}"}]}"#[..])
        );
        assert_eq!(object_field(&c, "n"), Some(&b"2"[..]));
        assert_eq!(object_field(&c, "token"), Some(&br#""t""#[..]));
        assert_eq!(object_field(&c, "missing"), None);
        assert_eq!(object_field(b"[1]", "data"), None);
    }

    #[test]
    fn strings_escape_controls() {
        assert_eq!(string("a\"b\\\n\u{1}"), r#""a\"b\\\n\u0001""#);
    }
}
