//! The `/push/<token>` endpoints of OpenPush applications, under the Web Push rules of
//! every endpoint here (`crate::delivery::webpush`).
//!
//! | method | path | guard |
//! |---|---|---|
//! | POST, PUT | `/push/<token>` | none: the routing token is the capability |
//! | GET | `/push/<token>` | none: UnifiedPush discovery, for a token that exists |
//!
//! Missing TTL: `default_ttl_secs`.

use std::rc::Rc;

use crate::delivery::{self, webpush};
use crate::error::ApiError;
use crate::http::Request;
use crate::route::Outcome;
use crate::state::ServerState;

/// `/push/<token>`: the endpoints of OpenPush applications. Missing TTL: `default_ttl_secs`.
pub async fn route(
    state: &Rc<ServerState>,
    req: &Request,
    path: &[&str],
) -> Option<Result<Outcome, ApiError>> {
    let ["push", token] = path else {
        return None;
    };
    let token = (*token).to_owned();
    Some(match req.method.as_str() {
        "POST" | "PUT" => delivery::counted(state, webpush::post_to_app(state, req, token))
            .await
            .map(Into::into),
        "GET" => app_exists(state, token)
            .await
            .map(|()| webpush::discovery().into()),
        _ => Err(ApiError::MethodNotAllowed("GET, POST, PUT")),
    })
}

async fn app_exists(state: &ServerState, token: String) -> Result<(), ApiError> {
    state
        .store
        .read(move |t| crate::store::accounts::app_by_token(t, &token))
        .await?
        .map(drop)
        .ok_or(ApiError::NotFound("no such endpoint"))
}
