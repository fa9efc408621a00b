//! Endpoints: the URLs this server hands out for app servers to push to, built and parsed
//! in this one module, and which queue each names.
//!
//! | endpoint | queue | built by |
//! |---|---|---|
//! | `/push/<routing token>` (and NextPush's `/index.php/apps/uppush/push/<token>`) | the device (client) of the OpenPush application | [`app_endpoint`] |
//! | `/wpush/v1/<token>`, `/wpush/v2/<token>` | the autopush user agent of the channel | [`channel_endpoint`] |
//! | `/<endpoint topic>` | the ntfy topic (`crate::delivery::topics`) | the ntfy app itself |
//!
//! A door that accepts a push for an endpoint hands [`publish`](super::publish) the
//! resolver of that endpoint's queue ([`app_queue`], [`channel_queue`],
//! `topics::topic_queue`); the Matrix gateway asks [`endpoint_of`] which endpoint a
//! pushkey is, instead of asking the doors.

use crate::delivery::Resolve;
use crate::http::Request;
use crate::names::is_endpoint_topic;
use crate::state::ServerState;
use crate::store::memory::QueueSize;
use crate::store::queue::{Destination, Refused};
use crate::store::{EndpointRecord, accounts, autopush};

/// The base URL endpoints are built on: `public_url`, or what the request says it reached
/// (over TLS, or through a trusted proxy that says it was).
pub fn base_url(state: &ServerState, req: &Request) -> String {
    if let Some(url) = &state.config().public_url {
        return url.clone();
    }
    let proxy = |name| req.header(name).filter(|_| req.via_trusted_proxy);
    let scheme = match proxy("x-forwarded-proto") {
        _ if req.tls => "https",
        Some(p) if p.trim().eq_ignore_ascii_case("https") => "https",
        _ => "http",
    };
    let host = proxy("x-forwarded-host")
        .or_else(|| req.header("host"))
        .unwrap_or("localhost");
    format!("{scheme}://{}", host.trim())
}

/// The Web Push endpoint of an OpenPush application.
pub fn app_endpoint(base: &str, routing_token: &str) -> String {
    format!("{base}/push/{routing_token}")
}

/// The URL of a channel's endpoint under `base`.
pub fn channel_endpoint(base: &str, endpoint: &EndpointRecord) -> String {
    let version = if endpoint.key.is_some() { "v2" } else { "v1" };
    format!("{base}/wpush/{version}/{}", endpoint.token)
}

/// Where a pushkey points on this server.
pub enum Endpoint {
    /// An ntfy endpoint topic (`/<topic>`).
    Topic(String),
    /// An OpenPush application's routing token (`/push/<token>`, NextPush's too).
    App(String),
    /// An autopush channel without a VAPID key.
    Channel(String),
}

/// The endpoint a pushkey names, if it is one of this server's: same host as `base` (the
/// scheme may differ behind a TLS proxy), path `/<endpoint topic>`, `/push/<token>`, a
/// NextPush endpoint `/index.php/apps/uppush/push/<token>` (the NextPush door) or an
/// autopush channel's `/wpush/v1/<token>`.
pub fn endpoint_of(pushkey: &str, base: &str) -> Option<Endpoint> {
    let strip_scheme = |url: &str| -> Option<String> {
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))?;
        Some(rest.to_owned())
    };
    let key = strip_scheme(pushkey)?;
    let base = strip_scheme(base)?;
    let path = key.strip_prefix(base.as_str())?;
    let path = path.strip_prefix('/')?;
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    if !query.is_empty() && query != "up=1" {
        return None;
    }
    match path.split('/').collect::<Vec<_>>().as_slice() {
        [topic] if is_endpoint_topic(topic) => Some(Endpoint::Topic((*topic).to_owned())),
        ["push", token] | ["index.php", "apps", "uppush", "push", token] if !token.is_empty() => {
            Some(Endpoint::App((*token).to_owned()))
        }
        ["wpush", "v1", token] if !token.is_empty() => Some(Endpoint::Channel((*token).to_owned())),
        _ => None,
    }
}

/// Resolves a routing token to its application's queue: the device's, for that app.
pub fn app_queue(token: String, limit: QueueSize) -> impl Resolve {
    move |t, _| {
        Ok(match accounts::app_by_token(t, &token)? {
            Some(app) => Ok(Destination {
                queue: app.client_id,
                registration_id: app.registration_id,
                limit,
            }),
            None => Err(Refused::NotFound),
        })
    }
}

/// The queue limit of an autopush user agent.
pub fn uaid_limit(state: &ServerState) -> QueueSize {
    let limits = &state.config().limits;
    QueueSize {
        messages: limits.max_queued_per_uaid,
        bytes: limits.max_queued_bytes_per_uaid,
    }
}

/// Resolves a channel's endpoint token (of a keyed channel or not) to its user agent's
/// queue, in the write transaction.
pub fn channel_queue(token: String, limit: QueueSize, keyed: bool) -> impl Resolve {
    move |t, _| {
        Ok(match autopush::endpoint(t, &token)? {
            Some(found) if found.key.is_some() == keyed => Ok(Destination {
                queue: found.queue,
                registration_id: found.channel_id,
                limit,
            }),
            _ => Err(Refused::NotFound),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushkeys_match_by_host_and_path() {
        let base = "https://push.example.org";
        let topic = |k| matches!(endpoint_of(k, base), Some(Endpoint::Topic(_)));
        assert!(topic("https://push.example.org/upAbCdEf123456?up=1"));
        assert!(topic("http://push.example.org/upAbCdEf123456"));
        assert!(!topic("https://push.example.org.evil/upAbCdEf123456"));
        assert!(!topic("https://other.org/upAbCdEf123456"));
        assert!(!topic("https://push.example.org/updates"));
        assert!(matches!(
            endpoint_of("https://push.example.org/push/tok", base),
            Some(Endpoint::App(_))
        ));
        assert!(matches!(
            endpoint_of("https://push.example.org/wpush/v1/tok", base),
            Some(Endpoint::Channel(_))
        ));
        assert!(endpoint_of("https://push.example.org/wpush/v2/tok", base).is_none());
        assert!(matches!(
            endpoint_of(
                "https://push.example.org/index.php/apps/uppush/push/tok",
                base
            ),
            Some(Endpoint::App(_))
        ));
    }
}
