//! Users, their devices and their access tokens, as the admin page lists and changes them.
//!
//! A user is named in a path by id or name (never a secret); a device and a token by their
//! numbers only. A device's key and a token are secrets: listings never show them, and a
//! device's key is shown once, in the answer that made it (what `openpush client add`
//! prints). A device's apps are shown by their registration ids, except NextPush's, whose
//! registration id is their routing token. The changes are the CLI's, with its effects: a
//! new password or a deleted user ends the streams opened with the old login, a revoked
//! token those opened with it, a deleted device its own; cached logins of the user are
//! forgotten.

use std::rc::Rc;

use miniserde::{Deserialize, Serialize};

use super::{administrator, body, json};
use crate::auth::MAX_PASSWORD_BYTES;
use crate::error::ApiError;
use crate::http::Request;
use crate::names::{check_account_name, check_user_name, parse_id};
use crate::route::Outcome;
use crate::secret;
use crate::state::ServerState;
use crate::store::accounts::{self, Refusal};
use crate::store::tables::Tables;
use crate::store::{self, AppRecord, queue, tokens, topics};

/// What a NextPush app's registration id is shown as: it is the app's routing token.
const NEXTPUSH_APP: &str = "(a NextPush app)";

#[derive(Serialize)]
struct UserView {
    id: u64,
    name: String,
    admin: bool,
    devices: Vec<DeviceView>,
    /// The topics it owns.
    topics: Vec<String>,
    /// How many access tokens it has.
    tokens: usize,
}

#[derive(Serialize)]
struct DeviceView {
    id: u64,
    name: String,
    apps: Vec<String>,
    /// A stream of it is open now.
    live: bool,
    queued: usize,
}

#[derive(Serialize)]
struct TokenView {
    user_id: u64,
    user: String,
    id: u64,
    label: String,
    last_access: u64,
    last_origin: String,
    /// Unix seconds; 0: never.
    expires: u64,
}

#[derive(Deserialize)]
struct NewUser {
    name: String,
    password: String,
    admin: Option<bool>,
}

#[derive(Deserialize)]
struct NewPassword {
    password: String,
}

#[derive(Deserialize)]
struct NewDevice {
    name: String,
}

#[derive(Serialize)]
struct CreatedDevice {
    id: u64,
    name: String,
    /// The device's key (`X-Openpush-Key`), shown this once.
    key: String,
}

fn app_name(app: AppRecord) -> String {
    if secret::constant_time_eq(app.registration_id.as_bytes(), app.routing_token.as_bytes()) {
        NEXTPUSH_APP.to_owned()
    } else {
        app.registration_id
    }
}

/// `GET /admin/api/users`: every user with its devices, topics and how many tokens.
pub async fn list(state: &Rc<ServerState>, req: &Request) -> Result<Outcome, ApiError> {
    administrator(state, req).await?;
    let max_queued =
        usize::try_from(state.config().limits.max_queued_per_client).unwrap_or(usize::MAX);
    let users = state
        .store
        .read(move |t| {
            let mut out = Vec::new();
            for (id, user) in accounts::list_users(t)? {
                let mut devices = Vec::new();
                for (device, client, apps) in accounts::clients_of(t, id)? {
                    devices.push((
                        device,
                        client.name,
                        apps,
                        queue::stored(t, device, max_queued)?,
                    ));
                }
                let topics = topics::owned_by(t, id)?;
                out.push((id, user, devices, topics, tokens::of_user(t, id)?.len()));
            }
            Ok(out)
        })
        .await?;
    let views: Vec<UserView> = users
        .into_iter()
        .map(|(id, user, devices, topics, tokens)| UserView {
            id,
            name: user.name,
            admin: user.admin,
            devices: devices
                .into_iter()
                .map(|(device, name, apps, queued)| DeviceView {
                    id: device,
                    name,
                    apps: apps.into_iter().map(app_name).collect(),
                    live: state.hub.has_streams(device),
                    queued,
                })
                .collect(),
            topics,
            tokens,
        })
        .collect();
    json(200, miniserde::json::to_string(&views))
}

fn check_password(password: &str) -> Result<(), ApiError> {
    if password.is_empty() || password.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::BadRequest(format!(
            "a password must be 1 to {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    Ok(())
}

async fn hash(state: &ServerState, password: String) -> Result<String, ApiError> {
    check_password(&password)?;
    Ok(state
        .auth
        .hasher()
        .run(move || secret::hash_password(&password))
        .await?)
}

/// `POST /admin/api/users`: `{"name","password","admin"}`.
pub async fn create(state: &Rc<ServerState>, req: &Request) -> Result<Outcome, ApiError> {
    let me = administrator(state, req).await?;
    let new: NewUser = body(
        req,
        "a JSON object with string fields `name` and `password`, and an optional boolean `admin`",
    )?;
    check_user_name(&new.name, state.config().limits.max_name_bytes)?;
    let hash = hash(state, new.password).await?;
    let (name, admin) = (new.name, new.admin.unwrap_or(false));
    let (id, user) = state
        .store
        .write(move |t, _| accounts::create_user(t, &name, hash, admin))
        .await??;
    log::info!("admin page: user {id} created by user {}", me.id);
    let body = format!(
        "{{\"id\":{id},\"name\":{},\"admin\":{}}}",
        crate::json::string(&user.name),
        user.admin
    );
    json(201, body)
}

/// The id of the user `ident` names (id or name); 404 if none.
async fn user_id(state: &ServerState, ident: &str) -> Result<u64, ApiError> {
    let ident = ident.to_owned();
    state
        .store
        .read(move |t| accounts::find_user(t, &ident))
        .await?
        .map(|(id, _)| id)
        .ok_or(ApiError::NotFound("no such user"))
}

/// `DELETE /admin/api/users/<user>`: the user, its devices, topics, tokens and messages;
/// its streams end. Not oneself (the page would lose its login), nor the last
/// administrator.
pub async fn delete(
    state: &Rc<ServerState>,
    req: &Request,
    ident: &str,
) -> Result<Outcome, ApiError> {
    let me = administrator(state, req).await?;
    let id = user_id(state, ident).await?;
    if id == me.id {
        return Err(ApiError::Conflict(
            "you cannot delete yourself here: log in as another administrator, or use the CLI"
                .into(),
        ));
    }
    let devices = state
        .store
        .write(move |t, m| accounts::delete_user(t, m, id))
        .await??;
    state.auth.forget_user(id);
    log::info!("admin page: user {id} deleted by user {}", me.id);
    json(200, format!("{{\"deleted_devices\":{}}}", devices.len()))
}

/// `PUT /admin/api/users/<user>/password`: `{"password"}`. The streams opened with the old
/// one end; access tokens stay.
pub async fn password(
    state: &Rc<ServerState>,
    req: &Request,
    ident: &str,
) -> Result<Outcome, ApiError> {
    let me = administrator(state, req).await?;
    let new: NewPassword = body(req, "a JSON object with a string field `password`")?;
    let id = user_id(state, ident).await?;
    let hash = hash(state, new.password).await?;
    state
        .store
        .write(move |t, m| accounts::update_user(t, m, id, None, Some(hash)))
        .await??;
    state.auth.forget_user(id);
    log::info!(
        "admin page: password of user {id} changed by user {}",
        me.id
    );
    json(200, "{\"changed\":true}".into())
}

/// `POST /admin/api/users/<user>/devices`: `{"name"}`, a new OpenPush client of the user;
/// the answer holds its key, this once.
pub async fn add_device(
    state: &Rc<ServerState>,
    req: &Request,
    ident: &str,
) -> Result<Outcome, ApiError> {
    let me = administrator(state, req).await?;
    let new: NewDevice = body(req, "a JSON object with a string field `name`")?;
    let limits = &state.config().limits;
    check_account_name("name", &new.name, limits.max_name_bytes)?;
    let user = user_id(state, ident).await?;
    let (max, name) = (limits.max_clients_per_user, new.name);
    let (id, client) = state
        .store
        .write(move |t, _| accounts::create_client(t, user, &name, max))
        .await??;
    log::info!(
        "admin page: client {id} of user {user} created by user {}",
        me.id
    );
    let created = CreatedDevice {
        id,
        name: client.name,
        key: client.key,
    };
    json(201, miniserde::json::to_string(&created))
}

/// `DELETE /admin/api/users/<user>/devices/<id>`: the device, its apps and its queue; its
/// stream ends.
pub async fn delete_device(
    state: &Rc<ServerState>,
    req: &Request,
    ident: &str,
    device: &str,
) -> Result<Outcome, ApiError> {
    let me = administrator(state, req).await?;
    let device = parse_id(device).ok_or(ApiError::NotFound("no such device"))?;
    let user = user_id(state, ident).await?;
    state
        .store
        .write(move |t, m| {
            match accounts::get_client(&t.clients()?, device)? {
                Some(client) if client.user_id == user => {}
                _ => return Ok(Err(Refusal::NotFound)),
            }
            accounts::delete_client_by_id(t, m, device)
        })
        .await?
        .map_err(|_| ApiError::NotFound("no such device"))?;
    log::info!(
        "admin page: client {device} of user {user} deleted by user {}",
        me.id
    );
    json(200, "{\"deleted\":true}".into())
}

/// `GET /admin/api/tokens`: every user's access tokens, by number, without the tokens.
pub async fn tokens(state: &Rc<ServerState>, req: &Request) -> Result<Outcome, ApiError> {
    administrator(state, req).await?;
    let views = state
        .store
        .read(|t| {
            let mut views = Vec::new();
            for (user_id, user) in accounts::list_users(t)? {
                for (_, r) in tokens::of_user(t, user_id)? {
                    views.push(TokenView {
                        user_id,
                        user: user.name.clone(),
                        id: r.id,
                        label: r.label,
                        last_access: r.last_access,
                        last_origin: r.last_origin,
                        expires: r.expires,
                    });
                }
            }
            Ok::<_, store::Error>(views)
        })
        .await?;
    json(200, miniserde::json::to_string(&views))
}

/// `DELETE /admin/api/users/<user>/tokens/<number>`: the token is revoked; the streams
/// opened with it end.
pub async fn revoke_token(
    state: &Rc<ServerState>,
    req: &Request,
    ident: &str,
    number: &str,
) -> Result<Outcome, ApiError> {
    let me = administrator(state, req).await?;
    let number = parse_id(number)
        .ok_or(ApiError::NotFound("no such token (name it by its number)"))?
        .to_string();
    let user = user_id(state, ident).await?;
    let record = state
        .store
        .write(move |t, m| tokens::delete(t, m, user, &number))
        .await?
        .map_err(|_| ApiError::NotFound("no such token"))?;
    log::info!(
        "admin page: token {} of user {user} revoked by user {}",
        record.id,
        me.id
    );
    json(200, "{\"revoked\":true}".into())
}
