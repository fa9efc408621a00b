//! `/application`, `/application/{id}`: the apps registered on the calling client
//! (`X-Openpush-Key`). Each gets a routing token, the capability to post to it.

use std::rc::Rc;

use miniserde::{Deserialize, Serialize};

use super::{Outcome, body};
use crate::auth;
use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::names::check_name;
use crate::state::ServerState;
use crate::store::AppRecord;
use crate::store::accounts;

#[derive(Deserialize)]
struct AppRegistration {
    registration_id: String,
}

#[derive(Serialize)]
pub struct AppView {
    registration_id: String,
    routing_token: String,
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
    let views: Vec<AppView> = apps.into_iter().map(AppView::from).collect();
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
    Ok(Response::json(201, miniserde::json::to_string(&AppView::from(app))).into())
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
