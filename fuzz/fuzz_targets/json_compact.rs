//! JSON: compact output is a fixed point, never longer than the input, and every field
//! `object_field` finds in it is itself compact JSON.
#![no_main]
use libfuzzer_sys::fuzz_target;
use openpush::json::{compact, object_field};

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = compact(data) {
        assert_eq!(compact(&c).as_deref(), Ok(&c[..]));
        assert!(c.len() <= data.len());
        for key in ["data", "token", "a", ""] {
            if let Some(v) = object_field(&c, key) {
                assert_eq!(compact(v).as_deref(), Ok(v));
            }
        }
    }
});
