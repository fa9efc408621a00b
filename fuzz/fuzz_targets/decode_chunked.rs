//! Chunked bodies: a body never exceeds the limit, what it took is within the input, one
//! byte less still asks for more, and an unfinished body never holds an unbounded buffer.
#![no_main]
use libfuzzer_sys::fuzz_target;
use openpush::http::parse::{decode_chunked, max_chunked_bytes};

fuzz_target!(|data: &[u8]| {
    let max = 64;
    match decode_chunked(data, max) {
        Ok(Some((body, used))) => {
            assert!(body.len() <= max && used <= data.len() && used <= max_chunked_bytes(max));
            assert_eq!(decode_chunked(&data[..used], max), Ok(Some((body, used))));
            assert_eq!(decode_chunked(&data[..used - 1], max), Ok(None));
        }
        Ok(None) => assert!(data.len() <= max_chunked_bytes(max)),
        Err(_) => {}
    }
});
