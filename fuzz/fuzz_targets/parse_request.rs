//! Request heads: a head never takes more bytes than it was given or than the limit, its
//! declared body fits the limit, and one byte less still asks for more (incremental reads agree).
#![no_main]
use libfuzzer_sys::fuzz_target;
use openpush::config::Limits;
use openpush::http::parse::{Framing, parse_head};

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_head_bytes: 1024,
        max_headers: 8,
        max_body_bytes: 4096,
        ..Limits::default()
    };
    if let Ok(Some(head)) = parse_head(data, &limits) {
        assert!(head.len <= data.len() && head.len <= limits.max_head_bytes);
        assert!(!matches!(head.framing, Framing::Length(n) if n > limits.max_body_bytes));
        assert_eq!(
            parse_head(&data[..head.len], &limits).map(|h| h.map(|h| h.len)),
            Ok(Some(head.len))
        );
        assert!(matches!(
            parse_head(&data[..head.len - 1], &limits),
            Ok(None)
        ));
    }
});
