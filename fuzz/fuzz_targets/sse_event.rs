//! SSE framing: an EventSource parser reads back exactly one event with the id and the
//! payload, CRLF and CR turned into LF.
#![no_main]
use libfuzzer_sys::fuzz_target;
use openpush::sse::push_event;

fuzz_target!(|input: (Option<u64>, &[u8])| {
    let (id, data) = input;
    let mut out = Vec::new();
    push_event(&mut out, id, data);
    assert_eq!(read_event(&out), (id, normalize(data)));
});

/// The client's side (HTML spec "event stream interpretation"), for one event.
fn read_event(stream: &[u8]) -> (Option<u64>, Vec<u8>) {
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

fn normalize(data: &[u8]) -> Vec<u8> {
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
