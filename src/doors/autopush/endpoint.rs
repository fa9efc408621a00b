//! The push endpoints of autopush channels: `/wpush/v1/<token>` for a channel registered
//! without a key, `/wpush/v2/<token>` for one bound to an app server's VAPID key.
//!
//! They answer as every Web Push endpoint here does (`crate::delivery::webpush`: 201 with `TTL` and
//! `Location`, 413, 404, 429), with what autopush adds:
//! - a v2 endpoint requires VAPID signed by its key (`crate::vapid`): 401 without or with
//!   a bad token, 403 for another key, 429 when a token that passed the cheap checks may
//!   not spend a signature verification now (`crate::signers`); a v1 endpoint ignores
//!   VAPID headers;
//! - a token not shaped like the ones handed out is 404 before the store is asked;
//! - a body needs `Content-Encoding: aes128gcm`, or `aesgcm` with its `Encryption` and
//!   `Crypto-Key` headers, which travel to the user agent in the notification's
//!   `headers`; a push without a body is a notification without data;
//! - the path's version must be the channel's (the other one is 404).
//!
//! Missing TTL: `default_ttl_secs`; the queue is the user agent's, limited by
//! `max_queued_per_uaid` and `max_queued_bytes_per_uaid`.

use std::time::Instant;

use crate::delivery;
use crate::delivery::endpoints::{channel_queue, uaid_limit};
use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::json::push_string;
use crate::limits::AddrKey;
use crate::secret;
use crate::state::ServerState;
use crate::store::{EndpointRecord, autopush::endpoint};
use crate::vapid;

/// `GET`: UnifiedPush discovery, for an endpoint that exists.
pub async fn discovery(
    state: &ServerState,
    version: &str,
    token: &str,
) -> Result<Response, ApiError> {
    find(state, version, token).await?;
    Ok(crate::delivery::webpush::discovery())
}

async fn find(state: &ServerState, version: &str, token: &str) -> Result<EndpointRecord, ApiError> {
    if !secret::is_token_shaped(token) {
        return Err(ApiError::NotFound("no such endpoint"));
    }
    let lookup = token.to_owned();
    let keyed = keyed(version);
    state
        .store
        .read(move |t| endpoint(t, &lookup))
        .await?
        .filter(|e| e.key.is_some() == keyed)
        .ok_or(ApiError::NotFound("no such endpoint"))
}

/// A push to a channel's endpoint.
pub async fn push(
    state: &ServerState,
    req: &Request,
    version: &str,
    token: &str,
) -> Result<Response, ApiError> {
    let config = state.config();
    let record = find(state, version, token).await?;
    if let Some(key) = &record.key {
        check_vapid(state, req, token, key)?;
    }
    let push = crate::delivery::webpush::parse_fields(
        req,
        config.default_ttl.as_secs(),
        config.max_ttl.as_secs(),
        config.limits.max_data_bytes,
    )?;
    let headers = encryption_headers(req, push.encoding(), push.body.is_empty())?;
    delivery::charge(state, token.as_bytes())?;
    let ttl = push.ttl_secs;
    let resolve = channel_queue(token.to_owned(), uaid_limit(state), keyed(version));
    let mut message = push.into_message();
    message.extras = headers;
    let published = delivery::publish(state, resolve, message).await?;
    Ok(crate::delivery::webpush::created(state, &published, ttl))
}

/// VAPID on a v2 endpoint bound to `key`: the cheap checks, then the signature, if its
/// sender may spend a verification now (`crate::signers`; 429 when not).
fn check_vapid(
    state: &ServerState,
    req: &Request,
    token: &str,
    key: &[u8],
) -> Result<(), ApiError> {
    let key: &[u8; vapid::KEY_BYTES] = key.try_into().map_err(|_| ApiError::Internal)?;
    let base = crate::delivery::endpoints::base_url(state, req);
    let now = crate::clock::now_millis() / 1000;
    let signed = vapid::precheck(
        req.header("authorization"),
        req.header("crypto-key"),
        key,
        origin(&base),
        now,
    )
    .map_err(refusal)?;
    let endpoint: [u8; 16] = secret::digest(token.as_bytes())[..16]
        .try_into()
        .expect("a digest is 32 bytes");
    let addr = req.client_addr.map(AddrKey::of);
    let clock = Instant::now();
    if let Err(spent) = state.vapid_signers.admit(endpoint, addr, clock) {
        if let Some(unlogged) = spent.log {
            log::info!(
                "VAPID verification budget spent: pushes to v2 endpoints from new signers \
                 refused{unlogged}"
            );
        }
        return Err(ApiError::TooMany {
            detail: "too many VAPID signatures to check; try again later".into(),
            retry_after_secs: spent.wait.as_secs() + 1,
        });
    }
    let verified = signed.verify(key);
    state
        .vapid_signers
        .verified(endpoint, addr, verified.is_ok(), clock);
    verified.map_err(refusal)
}

fn refusal(refusal: vapid::Refusal) -> ApiError {
    match refusal {
        vapid::Refusal::OtherKey => {
            ApiError::Forbidden("this endpoint is bound to another application server's key".into())
        }
        vapid::Refusal::Unauthorized(why) => {
            log::debug!("push to a v2 endpoint refused: {why}");
            ApiError::VapidRequired(why)
        }
    }
}

fn keyed(version: &str) -> bool {
    version == "v2"
}

/// The scheme, host and port of a base URL.
fn origin(base: &str) -> &str {
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    match base[after_scheme..].find('/') {
        Some(i) => &base[..after_scheme + i],
        None => base,
    }
}

/// The notification `headers` members for a body: its encoding and, for `aesgcm`, the
/// keys that travel in headers.
fn encryption_headers(
    req: &Request,
    encoding: Option<&str>,
    empty: bool,
) -> Result<Vec<u8>, ApiError> {
    if empty {
        return Ok(Vec::new());
    }
    let mut out = String::from(r#""encoding":"#);
    match encoding.map(str::to_ascii_lowercase).as_deref() {
        Some("aes128gcm") => push_string(&mut out, "aes128gcm"),
        Some("aesgcm") => {
            let header = |name| {
                req.header(name)
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| {
                        ApiError::BadRequest(format!(
                            "Content-Encoding aesgcm needs the {name} header"
                        ))
                    })
            };
            let (encryption, crypto_key) = (header("encryption")?, header("crypto-key")?);
            push_string(&mut out, "aesgcm");
            out.push_str(r#","encryption":"#);
            push_string(&mut out, encryption);
            out.push_str(r#","crypto_key":"#);
            push_string(&mut out, crypto_key);
        }
        _ => {
            return Err(ApiError::BadRequest(
                "a push message with a body needs Content-Encoding aes128gcm (RFC 8291) or aesgcm"
                    .into(),
            ));
        }
    }
    Ok(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_of_base_urls() {
        assert_eq!(
            origin("https://push.example.net"),
            "https://push.example.net"
        );
        assert_eq!(
            origin("https://push.example.net:8443/op"),
            "https://push.example.net:8443"
        );
        assert_eq!(origin("http://10.0.0.1:8080"), "http://10.0.0.1:8080");
    }
}
