//! `/client`, `/client/{id}`: a user's devices. Users see and touch only their own.
//! `DELETE /client` with `X-Openpush-Key` deletes the calling client itself.
//! Deleting a client revokes its key, its apps' routing tokens and its live stream.

use std::rc::Rc;

use miniserde::{Deserialize, Serialize};

use super::application::AppView;
use crate::auth;
use crate::csrf;
use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::names::check_account_name;
use crate::route::{Outcome, body};
use crate::state::ServerState;
use crate::store::accounts;
use crate::store::{AppRecord, ClientRecord};

#[derive(Deserialize)]
struct ClientName {
    name: String,
}

#[derive(Serialize)]
pub struct ClientView {
    id: u64,
    name: String,
    token: String,
    applications: Vec<AppView>,
}

impl From<(u64, ClientRecord, Vec<AppRecord>)> for ClientView {
    fn from((id, client, apps): (u64, ClientRecord, Vec<AppRecord>)) -> Self {
        ClientView {
            id,
            name: client.name,
            token: client.key,
            applications: apps.into_iter().map(AppView::from).collect(),
        }
    }
}

fn json(view: ClientView) -> String {
    miniserde::json::to_string(&view)
}

pub async fn list(state: &Rc<ServerState>, req: &Request) -> Result<Outcome, ApiError> {
    let me = state.auth.user(&state.store, req).await?;
    let views = state
        .store
        .read(move |t| {
            let clients = accounts::clients_of(t, me.id)?;
            Ok(clients
                .into_iter()
                .map(ClientView::from)
                .collect::<Vec<_>>())
        })
        .await?;
    Ok(Response::json(200, miniserde::json::to_string(&views)).into())
}

pub async fn create(state: &Rc<ServerState>, req: &Request) -> Result<Outcome, ApiError> {
    let me = csrf::user_for_change(state, req).await?;
    let new: ClientName = body(req, "a JSON object with a string field `name`")?;
    check_account_name("name", &new.name, state.config().limits.max_name_bytes)?;
    let max = state.config().limits.max_clients_per_user;
    let (id, client) = state
        .store
        .write(move |t, _| accounts::create_client(t, me.id, &new.name, max))
        .await??;
    log::info!("client {id} created");
    Ok(Response::json(201, json((id, client, Vec::new()).into())).into())
}

pub async fn get(state: &Rc<ServerState>, req: &Request, ident: &str) -> Result<Outcome, ApiError> {
    let me = state.auth.user(&state.store, req).await?;
    let ident = ident.to_owned();
    let view = state
        .store
        .read(move |t| {
            Ok(match accounts::find_client_of(t, me.id, &ident)? {
                Some((id, client)) => {
                    Some(ClientView::from((id, client, accounts::apps_of(t, id)?)))
                }
                None => None,
            })
        })
        .await?
        .ok_or(ApiError::NotFound("no such client"))?;
    Ok(Response::json(200, json(view)).into())
}

pub async fn rename(
    state: &Rc<ServerState>,
    req: &Request,
    ident: &str,
) -> Result<Outcome, ApiError> {
    let me = csrf::user_for_change(state, req).await?;
    let new: ClientName = body(req, "a JSON object with a string field `name`")?;
    check_account_name("name", &new.name, state.config().limits.max_name_bytes)?;
    let ident = ident.to_owned();
    let view = state
        .store
        .write(move |t, _| {
            Ok(
                match accounts::rename_client(t, me.id, &ident, &new.name)? {
                    Ok((id, client)) => {
                        Ok(ClientView::from((id, client, accounts::apps_of(t, id)?)))
                    }
                    Err(refusal) => Err(ApiError::from(refusal)),
                },
            )
        })
        .await??;
    Ok(Response::json(200, json(view)).into())
}

pub async fn delete(
    state: &Rc<ServerState>,
    req: &Request,
    ident: &str,
) -> Result<Outcome, ApiError> {
    let me = csrf::user_for_change(state, req).await?;
    let ident = ident.to_owned();
    let view = state
        .store
        .write(move |t, m| {
            let Some((id, client)) = accounts::find_client_of(t, me.id, &ident)? else {
                return Ok(Err(ApiError::NotFound("no such client")));
            };
            let apps = accounts::apps_of(t, id)?;
            Ok(accounts::delete_client_by_id(t, m, id)?
                .map(|()| (id, client, apps))
                .map_err(ApiError::from))
        })
        .await??;
    log::info!("client {} deleted", view.0);
    Ok(Response::json(200, json(view.into())).into())
}

pub async fn delete_self(state: &Rc<ServerState>, req: &Request) -> Result<Outcome, ApiError> {
    let (id, client) = auth::client(&state.store, req).await?;
    let apps = state
        .store
        .write(move |t, m| {
            let apps = accounts::apps_of(t, id)?;
            Ok(accounts::delete_client_by_id(t, m, id)?
                .map(|()| apps)
                .map_err(ApiError::from))
        })
        .await??;
    log::info!("client {id} deleted itself");
    Ok(Response::json(200, json((id, client, apps).into())).into())
}
