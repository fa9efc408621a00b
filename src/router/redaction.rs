//! Request paths fit for the log: every position of a route that holds, or may hold, a
//! capability is cut to its first four characters, whatever that segment holds.
//!
//! A segment is judged by where it stands in the doors' route tables
//! ([`super::DOORS`]), never by its shape, because a
//! capability followed by anything else in its segment (`<token>%0A`, `<token>.`,
//! `<key>%2F`) no longer looks like one. Positions count the non-empty segments, and a
//! segment is matched percent-decoded, as the router reads them. Three kinds:
//!
//! - a fixed word of a route (`user`, `wpush`, `json` …) is logged as sent;
//! - a user's id or name is logged, unless it is shaped like a key (a user may be named by
//!   mistake with one) or does not percent-decode;
//! - everything else is cut: routing tokens, client keys (also where a client is named by
//!   id or name), NextPush device ids and app tokens, autopush endpoint tokens, topic
//!   names (an endpoint topic is a capability, and under `anonymous_access = read-write` so
//!   is any topic that belongs to nobody; an unguessable `autopush_path` sits there too),
//!   and every segment no route knows. A route with a capability that is missing from the
//!   table is therefore cut whole: forgetting one hides too much, never too little.
//!
//! The query (ntfy's `?auth=` carries credentials) is never part of a logged path. The
//! result holds only bytes of the raw path, so no decoded control character reaches the
//! log.

use super::DOORS;
use crate::http::percent_decode;
use crate::route::{Route, Segment};

/// What one position of a route is.
#[derive(Clone, Copy)]
enum Part {
    /// A fixed word: the route goes on only with one of these.
    Word(&'static [&'static str]),
    /// An id or name that is not a capability (users).
    Name,
    /// A capability, or what may hold one.
    Secret,
}

use Part::{Name, Secret, Word};

impl Part {
    fn of(segment: &'static Segment) -> Part {
        match segment {
            Segment::Word(word) => Word(std::slice::from_ref(word)),
            Segment::OneOf(words) => Word(words),
            Segment::Name => Name,
            Segment::Secret | Segment::Topic => Secret,
        }
    }
}

/// Every route of every door with a fixed path; a route also stands for each of its
/// prefixes. The ntfy topic routes take any first segment that no fixed word claims.
fn routes() -> Vec<&'static [Segment]> {
    DOORS
        .iter()
        .flat_map(|door| door.routes.iter())
        .filter(|route: &&Route| route.claims.is_none())
        .map(|route| route.path)
        .collect()
}

/// How a segment is logged.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    AsSent,
    Name,
    Cut,
}

/// `path` (without its query) as the log may show it.
pub fn loggable(path: &str) -> String {
    let mut routes = routes();
    let mut position = 0;
    let segments: Vec<String> = path
        .split('/')
        .map(|raw| {
            if raw.is_empty() {
                return String::new();
            }
            let decoded = percent_decode(raw);
            let kind = classify(&mut routes, position, decoded.as_deref());
            position += 1;
            let keep = match kind {
                Kind::AsSent => true,
                Kind::Name => decoded.as_deref().is_some_and(|s| !shaped_like_a_key(s)),
                Kind::Cut => false,
            };
            if keep || raw.chars().nth(4).is_none() {
                raw.to_owned()
            } else {
                format!("{}…", raw.chars().take(4).collect::<String>())
            }
        })
        .collect();
    segments.join("/")
}

/// The kind of the segment at `position` among the `routes` its predecessors matched,
/// and those of them that it matches too. A fixed word wins over a parameter; a segment
/// past every route is cut, and so is everything after it.
fn classify(routes: &mut Vec<&'static [Segment]>, position: usize, segment: Option<&str>) -> Kind {
    let is_word =
        |part: &Part| matches!(part, Word(words) if segment.is_some_and(|s| words.contains(&s)));
    let parts = || {
        routes
            .iter()
            .filter_map(|route| route.get(position))
            .map(Part::of)
    };
    let kind = if parts().any(|part| is_word(&part)) {
        Kind::AsSent
    } else if parts().any(|part| matches!(part, Name)) {
        Kind::Name
    } else {
        Kind::Cut
    };
    routes.retain(|route| match (route.get(position).map(Part::of), kind) {
        (Some(part @ Word(_)), Kind::AsSent) => is_word(&part),
        (Some(Name), Kind::Name) | (Some(Secret), Kind::Cut) => true,
        _ => false,
    });
    kind
}

/// Long and all URL-safe base64, as client keys and routing tokens are (32 characters).
fn shaped_like_a_key(segment: &str) -> bool {
    segment.len() >= 20
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "vi53x7OxFykdIc7vGLHy5zYK_YFIGZ1Y";

    #[test]
    fn capabilities_are_cut_from_logged_paths() {
        assert_eq!(loggable("/push/abcdefghijklmnop"), "/push/abcd…");
        assert_eq!(loggable("/upAbCdEf123456/json"), "/upAb…/json");
        assert_eq!(loggable("/user/ann"), "/user/ann");
        // Regression (issue 10): keys and tokens were logged whole.
        assert_eq!(loggable(&format!("/client/{KEY}")), "/client/vi53…");
        assert_eq!(loggable(&format!("/%63lient/{KEY}")), "/%63lient/vi53…");
        assert_eq!(
            loggable(&format!("/application/{KEY}")),
            "/application/vi53…"
        );
        assert_eq!(loggable(&format!("/user/{KEY}")), "/user/vi53…");
        assert_eq!(loggable(&format!("/client/{KEY}%zz")), "/client/vi53…");
        assert_eq!(loggable("/client/12"), "/client/12");
        assert_eq!(loggable("/client/Phone%201"), "/client/Phon…");
        assert_eq!(loggable("/user/ann/é%zzzzz"), "/user/ann/é%zz…");
    }

    // Regression: a capability with more in its segment no longer looked like a key.
    #[test]
    fn capability_positions_are_cut_whatever_they_hold() {
        for junk in ["%0A", "%20", ".", "%00", "%2F", "%3B", "%C3%A9", "%zz"] {
            for (path, logged) in [
                (format!("/wpush/v1/{KEY}{junk}"), "/wpush/v1/vi53…"),
                (format!("/wpush/v2/{junk}{KEY}"), ""),
                (
                    format!("/index.php/apps/uppush/device/{KEY}{junk}"),
                    "/index.php/apps/uppush/device/vi53…",
                ),
                (
                    format!("/index.php/apps/uppush/app/{KEY}{junk}"),
                    "/index.php/apps/uppush/app/vi53…",
                ),
                (
                    format!("/index.php/apps/uppush/push/{KEY}{junk}"),
                    "/index.php/apps/uppush/push/vi53…",
                ),
                (format!("/upAbCdEf123456{junk}"), "/upAb…"),
                (format!("/upAbCdEf123456{junk}/json"), "/upAb…/json"),
                (format!("/push/{KEY}{junk}"), "/push/vi53…"),
                (format!("/client/{KEY}{junk}"), "/client/vi53…"),
            ] {
                let got = loggable(&path);
                assert!(!got.contains(&KEY[..5]), "{path}: {got}");
                if !logged.is_empty() {
                    assert_eq!(got, logged, "{path}");
                }
            }
        }
    }

    #[test]
    fn fixed_words_and_user_names_stay_and_unknown_paths_are_cut() {
        for path in [
            "/",
            "/version",
            "/v1/health",
            "/_matrix/push/v1/notify",
            "/index.php/apps/uppush/gateway/matrix",
            "/index.php/apps/uppush/device/",
            "/user/ann",
            "/user/12",
            "/wpush/v2",
        ] {
            assert_eq!(loggable(path), path);
        }
        assert_eq!(loggable("//push//abcdefgh"), "//push//abcd…");
        assert_eq!(loggable("/wpush/v3/abcdefgh"), "/wpush/v3/abcd…");
        assert_eq!(loggable("/backups/json"), "/back…/json");
        assert_eq!(loggable("/backups/unknown"), "/back…/unkn…");
        assert_eq!(loggable("/version/secretive"), "/version/secr…");
        assert_eq!(loggable("/autopush-8f2c1e/x"), "/auto…/x");
    }
}
