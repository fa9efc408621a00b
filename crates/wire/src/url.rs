//! `http://host[:port][/path][?query]`, split for a socket (`host`, `port`), a `Host` header
//! (`authority`) and a request target (`path`). `https://` is recognised only to say that it
//! is not spoken here.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    /// Host name or address as written; an IPv6 address without its brackets.
    pub host: String,
    pub port: u16,
    /// `host[:port]` as written in the URL, for the `Host` header.
    pub authority: String,
    /// The request target: starts with `/`, keeps the query.
    pub path: String,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Error {
    /// `https://`: needs TLS, which this crate leaves out.
    Https,
    /// Not `http://…`, or no host, or a bad port.
    Malformed,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::Https => {
                "https:// is not spoken here: use http:// (on the LAN or through a TLS-terminating proxy)"
            }
            Error::Malformed => "not an http://host[:port]/path URL",
        })
    }
}

impl Url {
    pub fn parse(text: &str) -> Result<Url, Error> {
        let text = text.trim();
        let lower = text.to_ascii_lowercase();
        if lower.starts_with("https://") {
            return Err(Error::Https);
        }
        let rest = text.get(7..).filter(|_| lower.starts_with("http://"));
        let rest = rest.ok_or(Error::Malformed)?;
        let (authority, path) = match rest.find(['/', '?', '#']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let path = path.split('#').next().unwrap_or("/");
        let path = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(Error::Malformed);
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or(Error::Malformed)?;
            match after {
                "" => (host, 80),
                p => (
                    host,
                    parse_port(p.strip_prefix(':').ok_or(Error::Malformed)?)?,
                ),
            }
        } else {
            match authority.split_once(':') {
                Some((host, port)) => (host, parse_port(port)?),
                None => (authority, 80),
            }
        };
        if host.is_empty() {
            return Err(Error::Malformed);
        }
        Ok(Url {
            host: host.to_owned(),
            port,
            authority: authority.to_owned(),
            path,
        })
    }

    /// `http://authority`: the origin, as a VAPID `aud` names it.
    pub fn origin(&self) -> String {
        format!("http://{}", self.authority)
    }

    /// This URL with another path (and no query).
    pub fn join(&self, path: &str) -> Url {
        let base = self
            .path
            .split('?')
            .next()
            .unwrap_or("")
            .trim_end_matches('/');
        Url {
            path: format!("{base}{path}"),
            ..self.clone()
        }
    }
}

fn parse_port(text: &str) -> Result<u16, Error> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::Malformed);
    }
    text.parse().map_err(|_| Error::Malformed)
}

/// The scheme and authority of an `https://` or `http://` URL, as VAPID's `aud` wants it;
/// `None` for anything else.
pub fn origin_of(text: &str) -> Option<String> {
    let (scheme, rest) = text.trim().split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    (!authority.is_empty()).then(|| format!("{scheme}://{authority}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_host_port_path() {
        let u = Url::parse("http://127.0.0.1:8080/push/abc?x=1").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("127.0.0.1", 8080));
        assert_eq!(u.authority, "127.0.0.1:8080");
        assert_eq!(u.path, "/push/abc?x=1");
        let u = Url::parse("HTTP://[::1]/").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.path.as_str()), ("::1", 80, "/"));
        assert_eq!(Url::parse("http://router").unwrap().path, "/");
        assert_eq!(
            Url::parse("http://h:1/base/")
                .unwrap()
                .join("/subscribe")
                .path,
            "/base/subscribe"
        );
    }

    #[test]
    fn refuses_what_it_cannot_speak() {
        assert_eq!(Url::parse("https://push.example.org"), Err(Error::Https));
        for bad in [
            "ftp://x",
            "http://",
            "http://h:x/",
            "http://h:99999/",
            "http://u@h/",
        ] {
            assert_eq!(Url::parse(bad), Err(Error::Malformed), "{bad}");
        }
    }

    #[test]
    fn origins() {
        assert_eq!(
            origin_of("https://fcm.googleapis.com/fcm/send/x").as_deref(),
            Some("https://fcm.googleapis.com")
        );
        assert_eq!(origin_of("http://h:8080").as_deref(), Some("http://h:8080"));
        assert_eq!(origin_of("mailto:x"), None);
    }
}
