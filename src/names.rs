//! The naming rules every front door shares: account names, topic names, endpoint topics.
//!
//! One rule, one place: a user or client name never reads as an id, a topic name is what
//! ntfy allows and never shadows a route of the server.

use crate::error::ApiError;

/// A user, client, registration or collapse name: 1..=max bytes, no control characters.
pub fn check_name(what: &str, name: &str, max: usize) -> Result<(), ApiError> {
    if name.is_empty() || name.len() > max || name.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(format!(
            "{what} must be 1 to {max} bytes without control characters"
        )));
    }
    Ok(())
}

/// A user or client name: as [`check_name`], and not all digits, because paths name
/// users and clients by id or by name and an all-digit name would read as an id.
pub fn check_account_name(what: &str, name: &str, max: usize) -> Result<(), ApiError> {
    check_name(what, name, max)?;
    if name.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::BadRequest(format!(
            "{what} must not be all digits (paths would read it as an id)"
        )));
    }
    Ok(())
}

/// Single path segments the server routes itself; no topic may take one of these names.
pub const RESERVED_TOPICS: &[&str] = &[
    "application",
    "client",
    "docs",
    "health",
    "message",
    "metrics",
    "push",
    "static",
    "subscribe",
    "user",
    "v1",
    "version",
    "_matrix",
    "index.php",
    "json",
    "sse",
    "raw",
    "ws",
    "auth",
    "publish",
    "send",
    "trigger",
];

/// An ntfy topic name: `[-_A-Za-z0-9]{1,64}`, not reserved.
pub fn is_topic_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !RESERVED_TOPICS.contains(&name)
}

/// Characters after `up` that make a topic an endpoint topic: the ntfy app's random
/// UnifiedPush topics are `up` and 12 letters or digits.
pub const ENDPOINT_TOPIC_RANDOM_CHARS: usize = 12;

/// An endpoint topic: `up` and at least 12 more topic characters. Its unguessable name is
/// the capability, so app servers may post to it without an account.
pub fn is_endpoint_topic(name: &str) -> bool {
    is_topic_name(name) && name.starts_with("up") && name.len() >= 2 + ENDPOINT_TOPIC_RANDOM_CHARS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        assert!(is_topic_name("alerts_2-b"));
        assert!(!is_topic_name(""));
        assert!(!is_topic_name(&"a".repeat(65)));
        assert!(!is_topic_name("a.b"));
        assert!(!is_topic_name("user"));
        assert!(is_endpoint_topic("upAbCdEf123456"));
        assert!(!is_endpoint_topic("updates"));
        assert!(!is_endpoint_topic("xpAbCdEf123456"));
    }
}
