//! `/application`, `/application/{id}`: the apps registered on the calling client
//! (`X-Openpush-Key`). Each gets a routing token, the capability to post to it, and a Web
//! Push endpoint (`endpoint`, an addition to v0.1 that its clients ignore) where any Web
//! Push app server can post to it (`crate::delivery::webpush`).

use std::rc::Rc;

use miniserde::{Deserialize, Serialize};

use crate::auth;
use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::names::check_name;
use crate::route::{Outcome, body};
use crate::state::ServerState;
use crate::store::AppRecord;
use crate::store::accounts;

#[derive(Deserialize)]
struct AppRegistration {
    registration_id: String,
}

/// An app as a client's listing shows it.
#[derive(Serialize)]
pub struct AppView {
    registration_id: String,
    routing_token: String,
}

/// An app as `/application` answers it: with its Web Push endpoint.
#[derive(Serialize)]
struct AppWithEndpoint {
    registration_id: String,
    routing_token: String,
    endpoint: String,
}

impl AppWithEndpoint {
    fn new(app: AppRecord, base: &str) -> Self {
        AppWithEndpoint {
            endpoint: crate::delivery::endpoints::app_endpoint(base, &app.routing_token),
            registration_id: app.registration_id,
            routing_token: app.routing_token,
        }
    }
}

impl From<AppRecord> for AppView {
    fn from(app: AppRecord) -> Self {
        AppView {
            registration_id: app.registration_id,
            routing_token: app.routing_token,
        }
    }
}

pub async fn list(state: &Rc<ServerState>, req: &Request) -> Result<Outcome, ApiError> {
    let (client, _) = auth::client(&state.store, req).await?;
    let apps = state
        .store
        .read(move |t| accounts::apps_of(t, client))
        .await?;
    let base = crate::delivery::endpoints::base_url(state, req);
    let views: Vec<AppWithEndpoint> = apps
        .into_iter()
        .map(|app| AppWithEndpoint::new(app, &base))
        .collect();
    Ok(Response::json(200, miniserde::json::to_string(&views)).into())
}

pub async fn register(state: &Rc<ServerState>, req: &Request) -> Result<Outcome, ApiError> {
    let (client, _) = auth::client(&state.store, req).await?;
    let new: AppRegistration = body(req, "a JSON object with a string field `registration_id`")?;
    check_name(
        "registration_id",
        &new.registration_id,
        state.config().limits.max_name_bytes,
    )?;
    let max = state.config().limits.max_apps_per_client;
    let app = state
        .store
        .write(move |t, _| accounts::register_app(t, client, &new.registration_id, max))
        .await??;
    let view = AppWithEndpoint::new(app, &crate::delivery::endpoints::base_url(state, req));
    Ok(Response::json(201, miniserde::json::to_string(&view)).into())
}

pub async fn delete(
    state: &Rc<ServerState>,
    req: &Request,
    ident: &str,
) -> Result<Outcome, ApiError> {
    let (client, _) = auth::client(&state.store, req).await?;
    let ident = ident.to_owned();
    state
        .store
        .write(move |t, m| accounts::delete_app(t, m, client, &ident))
        .await??;
    Ok(Response::new(204).into())
}
