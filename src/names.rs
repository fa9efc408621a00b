//! The naming rules every front door shares: account names, topic names, endpoint topics.
//!
//! One rule, one place: a user or client name never reads as an id, a topic name is what
//! ntfy allows and never shadows a route of the server.

use std::fmt;

/// A name that breaks a rule; its text says which, for a 400's detail or the CLI.
#[derive(Debug, PartialEq, Eq)]
pub struct Invalid(pub String);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Invalid {}

/// A user, client, registration or collapse name: 1..=max bytes, no control characters.
pub fn check_name(what: &str, name: &str, max: usize) -> Result<(), Invalid> {
    if name.is_empty() || name.len() > max || name.chars().any(char::is_control) {
        return Err(Invalid(format!(
            "{what} must be 1 to {max} bytes without control characters"
        )));
    }
    Ok(())
}

/// A user or client name: as [`check_name`], without spaces at either end or invisible
/// and direction-changing characters (names are compared by eye in listings), and nothing
/// that reads as a number (digits,
/// with or without a sign or surrounding spaces: `7`, `+1`, `01`, ` 2 `), because paths
/// name users and clients by id or by name. [`parse_id`] would not take most of these for
/// an id, but a listing would show them as one.
pub fn check_account_name(what: &str, name: &str, max: usize) -> Result<(), Invalid> {
    check_name(what, name, max)?;
    if name.trim() != name || name.chars().any(is_invisible) {
        return Err(Invalid(format!(
            "{what} must not start or end with a space, nor hold invisible or \
             direction-changing characters (they make one name look like another)"
        )));
    }
    let unsigned = name.trim().trim_start_matches(['+', '-']).trim_start();
    if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Invalid(format!(
            "{what} must not read as a number (paths would take it for an id)"
        )));
    }
    Ok(())
}

/// A user name: an account name that HTTP Basic can carry, so without `:` (RFC 7617).
pub fn check_user_name(name: &str, max: usize) -> Result<(), Invalid> {
    check_account_name("name", name, max)?;
    if name.contains(':') {
        return Err(Invalid(
            "a user name must not contain ':' (HTTP Basic auth could not carry it)".into(),
        ));
    }
    Ok(())
}

/// Characters that show as nothing or reorder the text around them: zero-width spaces and
/// joiners, the soft hyphen, word joiners and bidirectional embeddings, overrides and
/// isolates.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

/// An id in a path or a CLI argument: canonical decimal digits only (`1`, never `+1`,
/// `01` or ` 1`), so that no name, which [`check_account_name`] keeps from being digits,
/// is ever read as an id. Every "id or name" lookup asks this first, and only this.
pub fn parse_id(ident: &str) -> Option<u64> {
    let canonical = !ident.is_empty()
        && ident.bytes().all(|b| b.is_ascii_digit())
        && (ident == "0" || !ident.starts_with('0'));
    canonical.then(|| ident.parse().ok()).flatten()
}

/// Single path segments the server routes itself; no topic may take one of these names.
/// `admin` is not one: the admin page's paths are `GET /admin` and paths that no topic
/// route has (`/admin/admin.js`, `/admin/api/…`), so a topic named `admin`, which earlier
/// releases allowed, keeps its publish and subscribe paths.
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
    fn ids_are_canonical_digits_and_names_never_read_as_numbers() {
        assert_eq!(parse_id("1"), Some(1));
        assert_eq!(parse_id("0"), Some(0));
        assert_eq!(parse_id("18446744073709551615"), Some(u64::MAX));
        for not_an_id in [
            "",
            "+1",
            "-1",
            "01",
            "00",
            " 1",
            "1 ",
            "1.0",
            "0x1",
            "١",
            "18446744073709551616",
        ] {
            assert_eq!(parse_id(not_an_id), None, "{not_an_id:?}");
        }
        for refused in ["1", "007", "+1", "-1", "+01", " 1", "1 ", " + 2 ", "+-3"] {
            assert!(
                check_account_name("name", refused, 64).is_err(),
                "{refused:?}"
            );
        }
        for fine in ["+", "phone 1", "+49 170 1234", "1a", "a1", "1.0", "x"] {
            assert!(check_account_name("name", fine, 64).is_ok(), "{fine:?}");
        }
    }

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
