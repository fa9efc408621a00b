//! The settings of the poll requests sent to ntfy's upstream server for iPhones
//! (`upstream_*` keys; the forwarder is `crate::upstream`).
//!
//! Invariants once [`Upstream::validate`] passed: `base_url` is `https://` with a host and
//! no trailing slash, and differs from `public_url`, which is set (the iPhone finds its
//! topic by the hash of the public URL); the access token is one header value's worth of
//! visible ASCII.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::ConfigError;

/// The CA bundle of Debian and of OpenWrt's `ca-bundle` package.
pub const DEFAULT_CA_FILE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The longest access token taken: ntfy's are 32 characters.
const MAX_TOKEN_BYTES: usize = 256;

/// Where and how poll requests go upstream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upstream {
    /// `upstream_base_url`: ntfy's server that wakes iPhones (`https://ntfy.sh`); `None`:
    /// no poll request leaves the house.
    pub base_url: Option<String>,
    /// `upstream_access_token`: sent as `Authorization: Bearer` (an account upstream has
    /// higher limits). Never logged.
    pub access_token: Option<AccessToken>,
    /// The CA certificates (PEM) the upstream's certificate must chain to.
    pub ca_file: PathBuf,
    /// Poll requests waiting for the forwarder; past it new ones are dropped (the message
    /// itself stays stored). Each is about 100 bytes.
    pub queue: usize,
    /// Connecting, and each read or write, may take this long before the try fails.
    pub timeout: Duration,
    /// Tries after a failed one (no answer, or a 5xx), each after twice the pause of the
    /// last (1 s first).
    pub retries: u32,
}

impl Default for Upstream {
    fn default() -> Self {
        Upstream {
            base_url: None,
            access_token: None,
            ca_file: PathBuf::from(DEFAULT_CA_FILE),
            queue: 256,
            // ntfy's own timeout for a poll request.
            timeout: Duration::from_secs(10),
            retries: 2,
        }
    }
}

impl Upstream {
    /// Checks what the single keys cannot: the feature, `public_url`, and that the two
    /// differ.
    pub fn validate(&self, public_url: Option<&str>) -> Result<(), ConfigError> {
        let Some(base) = &self.base_url else {
            return Ok(());
        };
        if !cfg!(feature = "upstream") {
            return Err(ConfigError(
                "upstream_base_url: this build has no upstream forwarder (Cargo feature `upstream`)"
                    .into(),
            ));
        }
        match public_url {
            None => Err(ConfigError(
                "upstream_base_url needs public_url: the iPhone app finds its topics by the \
                 address it subscribed to, which must be public_url exactly"
                    .into(),
            )),
            Some(public) if public.eq_ignore_ascii_case(base) => Err(ConfigError(
                "upstream_base_url is public_url: it names ntfy's server that wakes iPhones, \
                 such as https://ntfy.sh"
                    .into(),
            )),
            Some(_) => Ok(()),
        }
    }
}

/// A token to authenticate with upstream; its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(pub String);

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(..)")
    }
}

/// `https://host[:port][/path]` without a trailing slash; empty: off.
pub(super) fn upstream_url(value: &str) -> Result<Option<String>, ConfigError> {
    let value = value.trim_end_matches('/');
    if value.is_empty() {
        return Ok(None);
    }
    if value.starts_with("http://") {
        return Err(ConfigError(
            "poll requests go over HTTPS only: use https:// (https://ntfy.sh)".into(),
        ));
    }
    match value.strip_prefix("https://") {
        Some(rest)
            if !rest.is_empty()
                && !rest.starts_with(['/', ':'])
                && rest.bytes().all(|b| b.is_ascii_graphic())
                && !rest.contains(['?', '#', '@']) =>
        {
            Ok(Some(value.to_owned()))
        }
        _ => Err(ConfigError(format!(
            "{value:?} is not an address like https://ntfy.sh"
        ))),
    }
}

/// Visible ASCII, at most [`MAX_TOKEN_BYTES`]; empty: none.
pub(super) fn access_token(value: &str) -> Result<Option<AccessToken>, ConfigError> {
    if value.is_empty() {
        return Ok(None);
    }
    if value.len() > MAX_TOKEN_BYTES || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ConfigError(format!(
            "an access token is at most {MAX_TOKEN_BYTES} visible ASCII characters (tk_…)"
        )));
    }
    Ok(Some(AccessToken(value.to_owned())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_https_origins_with_an_optional_path() {
        assert_eq!(upstream_url("").unwrap(), None);
        assert_eq!(
            upstream_url("https://ntfy.sh/").unwrap().as_deref(),
            Some("https://ntfy.sh")
        );
        assert!(upstream_url("https://example.org:8443/ntfy").is_ok());
        for bad in [
            "http://ntfy.sh",
            "ntfy.sh",
            "https://",
            "https://a b",
            "https://u@h",
        ] {
            assert!(upstream_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_token_never_shows_in_debug() {
        let token = access_token("tk_secret").unwrap().unwrap();
        assert!(!format!("{token:?}").contains("secret"));
        assert!(access_token("tk secret").is_err());
    }

    #[test]
    fn a_base_url_needs_a_public_url_other_than_itself() {
        let upstream = Upstream {
            base_url: Some("https://ntfy.sh".into()),
            ..Upstream::default()
        };
        if cfg!(feature = "upstream") {
            assert!(upstream.validate(None).is_err());
            assert!(upstream.validate(Some("https://NTFY.sh")).is_err());
            assert!(upstream.validate(Some("https://push.example.org")).is_ok());
        } else {
            assert!(upstream.validate(Some("https://push.example.org")).is_err());
        }
        assert!(Upstream::default().validate(None).is_ok());
    }
}
