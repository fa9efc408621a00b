//! Queue rules: random enqueue/confirm/sweep/backlog steps on redb agree with a BTreeMap model.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../../tests/model/queue.rs"]
mod model;

fuzz_target!(|data: &[u8]| model::check(&model::Op::decode(data)));
