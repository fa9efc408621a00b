//! ntfy's account routes, as Home Assistant's ntfy integration and ntfy's web app use them:
//! `GET /v1/account`, access tokens at `/v1/account/token` (`POST` makes one, `GET` lists
//! them, `PATCH` changes a label or expiry, `DELETE` revokes one) and `GET /v1/version`.
//!
//! The JSON is ntfy's (`server/server_account.go`, `server/types.go`). What this server has
//! no notion of (daily message quotas, e-mails, calls, attachments, tiers, billing) is 0 or
//! left out, as ntfy reports an absent limit; `reservations` are the topics a user owns,
//! out of `max_topics_per_user`. A token is shown whole
//! only once, in the answer that made it: listings name it `#<number>` (the store keeps
//! its digest only), a name `PATCH` and `DELETE` take too. A token made without `expires`
//! lasts 72 hours, as in ntfy; `expires: 0` never ends. Any token of a user, or its
//! password, may manage all of that user's tokens, as in ntfy.

use std::rc::Rc;

use miniserde::Deserialize;

use super::user;
use crate::auth::User;
use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::json;
use crate::route::Outcome;
use crate::state::ServerState;
use crate::store::TokenRecord;
use crate::store::tokens::{self, NewToken};

/// How long a token made without `expires` lasts: ntfy's `tokenExpiryDuration`.
const DEFAULT_TOKEN_SECS: u64 = 72 * 3600;

fn now_secs() -> u64 {
    crate::clock::now_millis() / 1000
}

/// The body of `POST` and `PATCH /v1/account/token`; every field may be absent or null,
/// and so may the body.
#[derive(Deserialize, Default)]
struct TokenRequest {
    token: Option<String>,
    label: Option<String>,
    expires: Option<i64>,
}

fn token_request(req: &Request) -> Result<TokenRequest, ApiError> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(<TokenRequest as Default>::default());
    }
    crate::route::body(
        req,
        "a JSON object with optional `token`, `label` and `expires` (Unix seconds; 0: never)",
    )
}

/// A token as ntfy lists it; `token` is its whole value only when it was just made.
fn token_json(shown: &str, record: &TokenRecord) -> String {
    let mut out = format!("{{\"id\":{},\"token\":{}", record.id, json::string(shown));
    if !record.label.is_empty() {
        out.push_str(",\"label\":");
        out.push_str(&json::string(&record.label));
    }
    out.push_str(&format!(",\"last_access\":{}", record.last_access));
    if !record.last_origin.is_empty() {
        out.push_str(",\"last_origin\":");
        out.push_str(&json::string(&record.last_origin));
    }
    if record.expires != 0 {
        out.push_str(&format!(",\"expires\":{}", record.expires));
    }
    out.push('}');
    out
}

/// The name of a token in listings.
fn shown(record: &TokenRecord) -> String {
    format!("#{}", record.id)
}

/// The request's user; 401 without one.
async fn required_user(state: &ServerState, req: &Request) -> Result<User, ApiError> {
    user(state, req).await?.ok_or(ApiError::Unauthorized)
}

/// `GET /v1/account`: the user, its role, tokens, limits and stats; `"*"` without a user.
pub async fn get(state: &Rc<ServerState>, req: &Request) -> Result<Outcome, ApiError> {
    let user = user(state, req).await?;
    let config = state.config();
    let max_topics = config.limits.max_topics_per_user;
    let expiry = config.topic_default_ttl.as_secs();
    let (name, role, owned, tokens) = match user {
        None => ("*".to_owned(), "anonymous", 0, Vec::new()),
        Some(u) => {
            let id = u.id;
            let (name, owned, tokens) = state
                .store
                .read(move |t| {
                    let name = crate::store::accounts::get_user(
                        &crate::store::tables::Tables::users(t)?,
                        id,
                    )?
                    .map(|r| r.name)
                    .unwrap_or_default();
                    let owned = crate::store::topics::owned_by(t, id)?.len();
                    Ok((name, owned, tokens::of_user(t, id)?))
                })
                .await?;
            let role = if u.admin { "admin" } else { "user" };
            (name, role, owned, tokens)
        }
    };
    let tokens: Vec<String> = tokens
        .iter()
        .map(|(_, r)| token_json(&shown(r), r))
        .collect();
    let mut body = format!("{{\"username\":{},\"role\":\"{role}\"", json::string(&name));
    if !tokens.is_empty() {
        body.push_str(&format!(",\"tokens\":[{}]", tokens.join(",")));
    }
    body.push_str(&format!(
        ",\"limits\":{{\"basis\":\"ip\",\"messages\":0,\"messages_expiry_duration\":{expiry},\
         \"emails\":0,\"calls\":0,\"reservations\":{max_topics},\"attachment_total_size\":0,\
         \"attachment_file_size\":0,\"attachment_expiry_duration\":0,\"attachment_bandwidth\":0}},\
         \"stats\":{{\"messages\":0,\"messages_remaining\":0,\"emails\":0,\"emails_remaining\":0,\
         \"calls\":0,\"calls_remaining\":0,\"reservations\":{owned},\"reservations_remaining\":{},\
         \"attachment_total_size\":0,\"attachment_total_size_remaining\":0}}}}",
        max_topics.saturating_sub(owned)
    ));
    Ok(Response::json(200, body).into())
}

/// `POST /v1/account/token`: a new token for the request's user.
pub async fn create(state: &Rc<ServerState>, req: &Request) -> Result<Outcome, ApiError> {
    let user = required_user(state, req).await?;
    let body = token_request(req)?;
    let limits = &state.config().limits;
    let label = body.label.unwrap_or_default();
    check_label(&label, limits.max_token_label_bytes)?;
    let now = now_secs();
    let expires = match body.expires {
        None => now + DEFAULT_TOKEN_SECS,
        Some(at) => expiry(at, now)?,
    };
    let max = limits.max_tokens_per_user;
    let origin = req.client_addr.map_or(String::new(), |a| a.to_string());
    let (token, record) = state
        .store
        .write(move |t, _| {
            let new = NewToken {
                user_id: user.id,
                label: &label,
                expires,
                origin: &origin,
                now,
            };
            tokens::create(t, &new, max)
        })
        .await??;
    Ok(Response::json(200, token_json(&token, &record)).into())
}

/// `GET /v1/account/token`: the user's tokens.
pub async fn list(state: &Rc<ServerState>, req: &Request) -> Result<Outcome, ApiError> {
    let user = required_user(state, req).await?;
    let listed = state
        .store
        .read(move |t| tokens::of_user(t, user.id))
        .await?;
    let items: Vec<String> = listed
        .iter()
        .map(|(_, r)| token_json(&shown(r), r))
        .collect();
    Ok(Response::json(200, format!("[{}]", items.join(","))).into())
}

/// `PATCH /v1/account/token`: a new label and/or expiry for the token named in the body, or
/// for the request's own; neither given extends it by 72 hours, as in ntfy.
pub async fn update(state: &Rc<ServerState>, req: &Request) -> Result<Outcome, ApiError> {
    let user = required_user(state, req).await?;
    let body = token_request(req)?;
    let ident = named_or_own(body.token, &user)?;
    if let Some(label) = &body.label {
        check_label(label, state.config().limits.max_token_label_bytes)?;
    }
    let now = now_secs();
    let expires = match (body.expires, &body.label) {
        (Some(at), _) => Some(expiry(at, now)?),
        (None, None) => Some(now + DEFAULT_TOKEN_SECS),
        (None, Some(_)) => None,
    };
    let label = body.label;
    let record = state
        .store
        .write(move |t, _| tokens::update(t, user.id, &ident, label.as_deref(), expires))
        .await??;
    Ok(Response::json(200, token_json(&shown(&record), &record)).into())
}

/// `DELETE /v1/account/token`: revokes the token named in `X-Token` (or `Token`), or the
/// request's own; the streams opened with it end.
pub async fn delete(state: &Rc<ServerState>, req: &Request) -> Result<Outcome, ApiError> {
    let user = required_user(state, req).await?;
    let named = req
        .header("x-token")
        .or_else(|| req.header("token"))
        .map(str::to_owned);
    let ident = named_or_own(named, &user)?;
    state
        .store
        .write(move |t, m| tokens::delete(t, m, user.id, &ident))
        .await??;
    Ok(Response::json(200, r#"{"success":true}"#).into())
}

/// `GET /v1/version`, for administrators (401 without a user, 403 for others, as in ntfy).
pub async fn version(state: &Rc<ServerState>, req: &Request) -> Result<Outcome, ApiError> {
    let user = required_user(state, req).await?;
    if !user.admin {
        return Err(ApiError::Forbidden(
            "the version is for administrators".into(),
        ));
    }
    let body = format!(
        "{{\"version\":{},\"commit\":\"\",\"date\":\"\"}}",
        json::string(env!("CARGO_PKG_VERSION"))
    );
    Ok(Response::json(200, body).into())
}

/// The token a request names, or the one it came with; 400 with neither.
fn named_or_own(named: Option<String>, user: &User) -> Result<String, ApiError> {
    match (named.filter(|n| !n.is_empty()), user.token) {
        (Some(named), _) => Ok(named),
        (None, Some(own)) => Ok(own.to_string()),
        (None, None) => Err(ApiError::BadRequest(
            "no token provided: name one (`token`, `X-Token`) or send the request with it".into(),
        )),
    }
}

fn check_label(label: &str, max: usize) -> Result<(), ApiError> {
    if label.len() > max {
        return Err(ApiError::BadRequest(format!(
            "a token's label is at most {max} bytes, not {}",
            label.len()
        )));
    }
    Ok(())
}

/// An `expires` as stored: 0 (never), or a Unix time to come.
fn expiry(at: i64, now: u64) -> Result<u64, ApiError> {
    match u64::try_from(at) {
        Ok(0) => Ok(0),
        Ok(at) if at > now => Ok(at),
        _ => Err(ApiError::BadRequest(
            "`expires` must be a Unix time to come, or 0 for never".into(),
        )),
    }
}
