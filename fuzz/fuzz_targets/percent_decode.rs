//! Router path segments: percent-decoding accepts only `%` and two hex digits, and undoes
//! percent-encoding exactly.
#![no_main]
use libfuzzer_sys::fuzz_target;
use openpush::http::percent_decode;

fuzz_target!(|s: &str| {
    if let Some(decoded) = percent_decode(s) {
        let strict = s
            .split('%')
            .skip(1)
            .all(|r| r.len() >= 2 && r.as_bytes()[..2].iter().all(u8::is_ascii_hexdigit));
        assert!(strict, "{s:?} decoded to {decoded:?}");
    }
    let encoded: String = s.bytes().map(|b| format!("%{b:02X}")).collect();
    assert_eq!(percent_decode(&encoded).as_deref(), Some(s));
});
