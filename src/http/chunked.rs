//! The chunked transfer coding of a streamed response body (RFC 9112 7.1): every event goes
//! out as a chunk of its own, so that a client reading the body in blocks gets each event
//! as it comes, and the last chunk tells it the body ended rather than the connection broke.

/// The chunk that ends a chunked body (no trailers).
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Frames `out[from..]` as one chunk: its size in hexadecimal and CRLF before it, CRLF
/// after it. An empty tail stays empty: a chunk of size 0 would end the body.
pub fn frame(out: &mut Vec<u8>, from: usize) {
    let len = out.len() - from;
    if len == 0 {
        return;
    }
    let size = format!("{len:x}\r\n");
    out.splice(from..from, size.bytes());
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_the_tail_only() {
        let mut out = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        let head = out.len();
        out.extend_from_slice(&[b'x'; 26]);
        frame(&mut out, head);
        assert_eq!(&out[head..], b"1a\r\nxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n");
        let before = out.len();
        frame(&mut out, before);
        assert_eq!(out.len(), before);
    }
}
