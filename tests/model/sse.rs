//! The client's side of SSE framing (HTML "event stream interpretation") for one event:
//! the reference the property test and the fuzz target check `push_event` against.

/// What an EventSource reads back from one framed event.
pub fn read_event(stream: &[u8]) -> (Option<u64>, Vec<u8>) {
    assert!(stream.ends_with(b"\n\n") && !stream.contains(&b'\r'));
    let (mut id, mut data) = (None, Vec::new());
    for line in stream[..stream.len() - 2].split(|&b| b == b'\n') {
        if let Some(v) = line.strip_prefix(b"id: ") {
            id = Some(std::str::from_utf8(v).unwrap().parse().unwrap());
        } else {
            data.extend_from_slice(line.strip_prefix(b"data: ").expect("a data line"));
            data.push(b'\n');
        }
    }
    data.pop();
    (id, data)
}

/// CRLF and lone CR as LF, as an EventSource reads line breaks.
pub fn normalize_breaks(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut bytes = data.iter().peekable();
    while let Some(&b) = bytes.next() {
        if b == b'\r' {
            bytes.next_if_eq(&&b'\n');
            out.push(b'\n');
        } else {
            out.push(b);
        }
    }
    out
}
