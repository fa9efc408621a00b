//! `/user`, `/user/{id}`: accounts, with HTTP Basic auth.
//!
//! A user sees itself and changes its own password; an administrator (the first user, or
//! one made with `openpush user add --admin`) may list, create, rename, change and delete
//! any user, and sees other users' clients by id and name only, never their keys or
//! routing tokens. Only administrators rename users: a rename that fails because the name
//! is taken would tell anyone else which names exist.
//! Passwords are never returned.

use std::rc::Rc;

use miniserde::{Deserialize, Serialize};

use super::client::ClientView;
use crate::auth::{MAX_PASSWORD_BYTES, User};
use crate::csrf;
use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::names::check_user_name;
use crate::route::{Outcome, body};
use crate::secret;
use crate::state::ServerState;
use crate::store::accounts;
use crate::store::tables::Tables;
use crate::store::{self, UserRecord};

#[derive(Deserialize)]
struct NewUser {
    name: String,
    password: String,
}

#[derive(Deserialize)]
struct UserUpdate {
    name: Option<String>,
    password: Option<String>,
}

#[derive(Serialize)]
struct UserView {
    id: u64,
    name: String,
    admin: bool,
    clients: Vec<ClientView>,
}

#[derive(Serialize)]
struct ClientSummary {
    id: u64,
    name: String,
}

#[derive(Serialize)]
struct UserSummary {
    id: u64,
    name: String,
    admin: bool,
    clients: Vec<ClientSummary>,
}

/// A user as `viewer` may see it.
fn render(t: &impl Tables, id: u64, user: UserRecord, viewer: u64) -> store::Result<String> {
    let clients = accounts::clients_of(t, id)?;
    Ok(if id == viewer {
        miniserde::json::to_string(&UserView {
            id,
            name: user.name,
            admin: user.admin,
            clients: clients.into_iter().map(ClientView::from).collect(),
        })
    } else {
        miniserde::json::to_string(&UserSummary {
            id,
            name: user.name,
            admin: user.admin,
            clients: clients
                .into_iter()
                .map(|(id, c, _)| ClientSummary { id, name: c.name })
                .collect(),
        })
    })
}

/// Resolves `ident` to a user `me` may act on; others' existence is not revealed.
fn target(
    t: &impl Tables,
    me: &User,
    ident: &str,
) -> store::Result<Result<(u64, UserRecord), ApiError>> {
    Ok(match accounts::find_user(t, ident)? {
        Some((id, user)) if id == me.id || me.admin => Ok((id, user)),
        _ => Err(ApiError::NotFound("no such user")),
    })
}

fn check_password(password: &str) -> Result<(), ApiError> {
    if password.is_empty() || password.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::BadRequest(format!(
            "password must be 1 to {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    Ok(())
}

pub async fn list(state: &Rc<ServerState>, req: &Request) -> Result<Outcome, ApiError> {
    let me = state.auth.user(&state.store, req).await?;
    let json = state
        .store
        .read(move |t| {
            let users = if me.admin {
                accounts::list_users(t)?
            } else {
                accounts::find_user(t, &me.id.to_string())?
                    .into_iter()
                    .collect()
            };
            let rendered = users
                .into_iter()
                .map(|(id, user)| render(t, id, user, me.id))
                .collect::<store::Result<Vec<_>>>()?;
            Ok(format!("[{}]", rendered.join(",")))
        })
        .await?;
    Ok(Response::json(200, json).into())
}

pub async fn create(state: &Rc<ServerState>, req: &Request) -> Result<Outcome, ApiError> {
    let me = csrf::user_for_change(state, req).await?;
    if !me.admin {
        return Err(ApiError::Forbidden(
            "only administrators may create users".into(),
        ));
    }
    let new: NewUser = body(
        req,
        "a JSON object with string fields `name` and `password`",
    )?;
    check_user_name(&new.name, state.config().limits.max_name_bytes)?;
    check_password(&new.password)?;
    let password = new.password;
    let hash = state
        .auth
        .hasher()
        .run(move || secret::hash_password(&password))
        .await?;
    let name = new.name;
    let json = state
        .store
        .write(move |t, _| {
            Ok(match accounts::create_user(t, &name, hash, false)? {
                Ok((id, user)) => Ok(render(t, id, user, id)?),
                Err(refusal) => Err(ApiError::from(refusal)),
            })
        })
        .await??;
    log::info!("user created through the API");
    Ok(Response::json(201, json).into())
}

pub async fn get(state: &Rc<ServerState>, req: &Request, ident: &str) -> Result<Outcome, ApiError> {
    let me = state.auth.user(&state.store, req).await?;
    let ident = ident.to_owned();
    let json = state
        .store
        .read(move |t| {
            Ok(match target(t, &me, &ident)? {
                Ok((id, user)) => Ok(render(t, id, user, me.id)?),
                Err(e) => Err(e),
            })
        })
        .await??;
    Ok(Response::json(200, json).into())
}

pub async fn update(
    state: &Rc<ServerState>,
    req: &Request,
    ident: &str,
) -> Result<Outcome, ApiError> {
    let me = csrf::user_for_change(state, req).await?;
    let change: UserUpdate = body(req, "a JSON object with `name` and/or `password`")?;
    if let Some(name) = &change.name {
        check_user_name(name, state.config().limits.max_name_bytes)?;
    }
    let hash = match change.password {
        Some(password) => {
            check_password(&password)?;
            Some(
                state
                    .auth
                    .hasher()
                    .run(move || secret::hash_password(&password))
                    .await?,
            )
        }
        None => None,
    };
    let ident = ident.to_owned();
    let name = change.name;
    let (id, json) = state
        .store
        .write(move |t, m| {
            let (id, user) = match target(t, &me, &ident)? {
                Ok(found) => found,
                Err(e) => return Ok(Err(e)),
            };
            // Whether a rename succeeds tells whether the name is taken; only an
            // administrator may learn that (SECURITY.md: names cannot be enumerated).
            if !me.admin && name.as_ref().is_some_and(|n| *n != user.name) {
                return Ok(Err(ApiError::Forbidden(
                    "only administrators may rename users".into(),
                )));
            }
            Ok(
                match accounts::update_user(t, m, id, name.as_deref(), hash)? {
                    Ok(user) => Ok((id, render(t, id, user, me.id)?)),
                    Err(refusal) => Err(ApiError::from(refusal)),
                },
            )
        })
        .await??;
    state.auth.forget_user(id);
    Ok(Response::json(200, json).into())
}

pub async fn delete(
    state: &Rc<ServerState>,
    req: &Request,
    ident: &str,
) -> Result<Outcome, ApiError> {
    let me = csrf::user_for_change(state, req).await?;
    let ident = ident.to_owned();
    let id = state
        .store
        .write(move |t, m| {
            let id = match target(t, &me, &ident)? {
                Ok((id, _)) => id,
                Err(e) => return Ok(Err(e)),
            };
            Ok(accounts::delete_user(t, m, id)?
                .map(|_| id)
                .map_err(ApiError::from))
        })
        .await??;
    state.auth.forget_user(id);
    log::info!("user deleted through the API");
    Ok(Response::new(204).into())
}
