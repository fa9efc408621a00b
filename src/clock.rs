//! The wall clock, in the units the store keeps: Unix milliseconds.
//!
//! A leaf: it imports nothing of the crate, so every layer may ask it the time.

use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock time in Unix milliseconds: message expiry survives restarts, so it cannot
/// use a monotonic clock.
pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
