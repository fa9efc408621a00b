//! Server-Sent Events framing (`retry:`, `id:`, `data:`, comments).
//!
//! A `data` payload may contain line breaks only as separate `data:` lines, which the
//! client joins with `\n`; a CR or CRLF inside a payload would be read as a line break, so
//! each is written as its own line too and comes back as `\n`. Compact JSON has none.

use std::time::Duration;

/// The response head of a stream and its `retry:` hint; the body ends with the connection.
pub fn head(retry: Duration) -> Vec<u8> {
    let mut out = response_head(false);
    push_retry(&mut out, retry);
    out
}

/// The response head of a stream, never buffered by nginx (`X-Accel-Buffering`) nor
/// cached: its body ends with the connection, or, `chunked`, with the last chunk.
pub fn response_head(chunked: bool) -> Vec<u8> {
    let coding = if chunked {
        "Transfer-Encoding: chunked\r\n"
    } else {
        ""
    };
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
         X-Accel-Buffering: no\r\n{coding}Connection: close\r\n\r\n"
    )
    .into_bytes()
}

/// Appends the `retry:` hint for reconnecting clients.
pub fn push_retry(out: &mut Vec<u8>, retry: Duration) {
    out.extend_from_slice(format!("retry: {}\n\n", retry.as_millis()).as_bytes());
}

/// A comment line that keeps an idle stream open through proxies.
pub const KEEPALIVE: &[u8] = b": keepalive\n\n";

/// Appends one event to `out`; an event without an id leaves the client's last event id
/// as it was.
pub fn push_event(out: &mut Vec<u8>, id: Option<u64>, data: &[u8]) {
    if let Some(id) = id {
        out.extend_from_slice(b"id: ");
        out.extend_from_slice(id.to_string().as_bytes());
        out.push(b'\n');
    }
    let mut lines = data.split(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        // A CR is half of a CRLF only when an LF follows it; a final CR is a break of its own.
        let line = match lines.peek() {
            Some(_) => line.strip_suffix(b"\r").unwrap_or(line),
            None => line,
        };
        for part in line.split(|&b| b == b'\r') {
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(part);
            out.push(b'\n');
        }
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_frame_lines() {
        let mut out = Vec::new();
        push_event(&mut out, Some(7), b"{\"a\":1}");
        assert_eq!(out, b"id: 7\ndata: {\"a\":1}\n\n");
        let mut out = Vec::new();
        push_event(&mut out, Some(8), b"a\nb\r\nc");
        assert_eq!(out, b"id: 8\ndata: a\ndata: b\ndata: c\n\n");
        let mut out = Vec::new();
        push_event(&mut out, None, b"{}");
        assert_eq!(out, b"data: {}\n\n");
    }

    // Regression: a CR at the very end of a payload was dropped instead of read as a break.
    #[test]
    fn final_cr_is_a_line_break() {
        let mut out = Vec::new();
        push_event(&mut out, None, b"a\r");
        assert_eq!(out, b"data: a\ndata: \n\n");
    }

    #[test]
    fn head_disables_buffering_and_sets_retry() {
        let h = String::from_utf8(head(Duration::from_secs(5))).unwrap();
        assert!(h.contains("X-Accel-Buffering: no\r\n"));
        assert!(h.ends_with("\r\n\r\nretry: 5000\n\n"));
        let h = String::from_utf8(response_head(true)).unwrap();
        assert!(h.contains("Transfer-Encoding: chunked\r\n"));
    }
}
