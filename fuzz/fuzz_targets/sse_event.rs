//! SSE framing: an EventSource parser reads back exactly one event with the id and the
//! payload, CRLF and CR turned into LF.
#![no_main]
use libfuzzer_sys::fuzz_target;
use openpush::sse::push_event;

#[path = "../../tests/model/sse.rs"]
mod model;

fuzz_target!(|input: (Option<u64>, &[u8])| {
    let (id, data) = input;
    let mut out = Vec::new();
    push_event(&mut out, id, data);
    assert_eq!(model::read_event(&out), (id, model::normalize_breaks(data)));
});
