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

use super::{Body, Json, Work, array, need, strings};
use crate::auth::{MAX_PASSWORD_BYTES, User};
use crate::error::ApiError;
use crate::names::{check_account_name, check_user_name, parse_id};
use crate::secret;
use crate::state::ServerState;
use crate::store::accounts::{self, Refusal};
use crate::store::tables::Tables;
use crate::store::{self, AppRecord, queue, tokens, topics};

/// What a NextPush app's registration id is shown as: it is the app's routing token.
const NEXTPUSH_APP: &str = "(a NextPush app)";

fn app_name(app: &AppRecord) -> String {
    if secret::constant_time_eq(app.registration_id.as_bytes(), app.routing_token.as_bytes()) {
        NEXTPUSH_APP.to_owned()
    } else {
        app.registration_id.clone()
    }
}

/// The devices with a stream open now, sorted.
fn live_devices(state: &ServerState) -> Vec<u64> {
    let mut live: Vec<u64> = state
        .hub
        .census()
        .into_iter()
        .filter(|c| c.reader == crate::hub::Reader::KEY)
        .map(|c| c.queue)
        .collect();
    live.sort_unstable();
    live
}

/// `GET /admin/api/users`: every user with its devices (apps, connected, queued), the
/// topics it owns and how many tokens it has.
pub fn list(state: &Rc<ServerState>) -> Work {
    let max_queued =
        usize::try_from(state.config().limits.max_queued_per_client).unwrap_or(usize::MAX);
    let live = live_devices(state);
    Work::Read(Box::new(move |t| {
        let mut users = Vec::new();
        for (id, user) in accounts::list_users(t)? {
            let mut devices = Vec::new();
            for (device, client, apps) in accounts::clients_of(t, id)? {
                let apps: Vec<String> = apps.iter().map(app_name).collect();
                devices.push(
                    Json::new()
                        .num("id", device)
                        .str("name", &client.name)
                        .raw("apps", &strings(&apps))
                        .bool("live", live.binary_search(&device).is_ok())
                        .num("queued", queue::stored(t, device, max_queued)? as u64)
                        .end(),
                );
            }
            users.push(
                Json::new()
                    .num("id", id)
                    .str("name", &user.name)
                    .bool("admin", user.admin)
                    .raw("devices", &array(&devices))
                    .raw("topics", &strings(&topics::owned_by(t, id)?))
                    .num("tokens", tokens::of_user(t, id)?.len() as u64)
                    .end(),
            );
        }
        Ok(Ok(array(&users)))
    }))
}

/// Hashes a new password on the hasher thread, after checking its length.
pub async fn hash(state: &ServerState, password: String) -> Result<String, ApiError> {
    if password.is_empty() || password.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::BadRequest(format!(
            "a password must be 1 to {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    Ok(state
        .auth
        .hasher()
        .run(move || secret::hash_password(&password))
        .await?)
}

/// The id of the user `ident` names (id or name).
fn user_id(t: &impl Tables, ident: &str) -> store::Result<Result<u64, ApiError>> {
    Ok(accounts::find_user(t, ident)?
        .map(|(id, _)| id)
        .ok_or(ApiError::NotFound("no such user")))
}

/// A refusal of the store as the API answers it (a missing thing is `what`).
fn refused(refusal: Refusal, what: &'static str) -> ApiError {
    match refusal {
        Refusal::NotFound => ApiError::NotFound(what),
        other => other.into(),
    }
}

/// `POST /admin/api/users`: `{"name","password","admin"}`, `hash` the password's.
pub fn create(state: &ServerState, body: Body, hash: String) -> Result<Work, ApiError> {
    let name = need(body.name, "name")?;
    check_user_name(&name, state.config().limits.max_name_bytes)?;
    let admin = body.admin.unwrap_or(false);
    Ok(Work::Write(Box::new(move |t, _| {
        Ok(match accounts::create_user(t, &name, hash, admin)? {
            Ok((id, user)) => Ok(Json::new()
                .num("id", id)
                .str("name", &user.name)
                .bool("admin", user.admin)
                .end()),
            Err(refusal) => Err(refusal.into()),
        })
    })))
}

/// `DELETE /admin/api/users/<user>`: the user, its devices, topics, tokens and messages;
/// its streams end. Not oneself (the page would lose its login), nor the last
/// administrator.
pub fn delete(me: &User, ident: &str) -> Work {
    let (me, ident) = (me.id, ident.to_owned());
    Work::Write(Box::new(move |t, m| {
        let id = match user_id(t, &ident)? {
            Ok(id) if id == me => {
                return Ok(Err(ApiError::Conflict(
                    "you cannot delete yourself here: log in as another administrator, or \
                     use the CLI"
                        .into(),
                )));
            }
            Ok(id) => id,
            Err(e) => return Ok(Err(e)),
        };
        Ok(match accounts::delete_user(t, m, id)? {
            Ok(devices) => Ok(Json::new()
                .num("deleted_devices", devices.len() as u64)
                .end()),
            Err(refusal) => Err(refused(refusal, "no such user")),
        })
    }))
}

/// `PUT /admin/api/users/<user>/password`: `{"password"}`, `hash` its hash. The streams
/// opened with the old one end; access tokens stay.
pub fn password(ident: &str, hash: String) -> Work {
    let ident = ident.to_owned();
    Work::Write(Box::new(move |t, m| {
        let id = match user_id(t, &ident)? {
            Ok(id) => id,
            Err(e) => return Ok(Err(e)),
        };
        Ok(match accounts::update_user(t, m, id, None, Some(hash))? {
            Ok(_) => Ok("{\"changed\":true}".into()),
            Err(refusal) => Err(refused(refusal, "no such user")),
        })
    }))
}

/// `POST /admin/api/users/<user>/devices`: `{"name"}`, a new OpenPush client of the user;
/// the answer holds its key, this once.
pub fn add_device(state: &ServerState, ident: &str, body: Body) -> Result<Work, ApiError> {
    let name = need(body.name, "name")?;
    let limits = &state.config().limits;
    check_account_name("name", &name, limits.max_name_bytes)?;
    let (max, ident) = (limits.max_clients_per_user, ident.to_owned());
    Ok(Work::Write(Box::new(move |t, _| {
        let user = match user_id(t, &ident)? {
            Ok(id) => id,
            Err(e) => return Ok(Err(e)),
        };
        Ok(match accounts::create_client(t, user, &name, max)? {
            Ok((id, client)) => Ok(Json::new()
                .num("id", id)
                .str("name", &client.name)
                .str("key", &client.key)
                .end()),
            Err(refusal) => Err(refused(refusal, "no such user")),
        })
    })))
}

/// `DELETE /admin/api/users/<user>/devices/<id>`: the device, its apps and its queue; its
/// stream ends.
pub fn delete_device(ident: &str, device: &str) -> Result<Work, ApiError> {
    let device = parse_id(device).ok_or(ApiError::NotFound("no such device"))?;
    let ident = ident.to_owned();
    Ok(Work::Write(Box::new(move |t, m| {
        let user = match user_id(t, &ident)? {
            Ok(id) => id,
            Err(e) => return Ok(Err(e)),
        };
        match accounts::get_client(&t.clients()?, device)? {
            Some(client) if client.user_id == user => {}
            _ => return Ok(Err(ApiError::NotFound("no such device"))),
        }
        Ok(match accounts::delete_client_by_id(t, m, device)? {
            Ok(()) => Ok("{\"deleted\":true}".into()),
            Err(refusal) => Err(refused(refusal, "no such device")),
        })
    })))
}

/// `GET /admin/api/tokens`: every user's access tokens, by number, without the tokens.
pub fn tokens() -> Work {
    Work::Read(Box::new(|t| {
        let mut listed = Vec::new();
        for (user_id, user) in accounts::list_users(t)? {
            for (_, r) in tokens::of_user(t, user_id)? {
                listed.push(
                    Json::new()
                        .num("user_id", user_id)
                        .str("user", &user.name)
                        .num("id", r.id)
                        .str("label", &r.label)
                        .num("last_access", r.last_access)
                        .str("last_origin", &r.last_origin)
                        .num("expires", r.expires)
                        .end(),
                );
            }
        }
        Ok(Ok(array(&listed)))
    }))
}

/// `DELETE /admin/api/users/<user>/tokens/<number>`: the token is revoked; the streams
/// opened with it end.
pub fn revoke_token(ident: &str, number: &str) -> Result<Work, ApiError> {
    let number = parse_id(number)
        .ok_or(ApiError::NotFound("no such token (name it by its number)"))?
        .to_string();
    let ident = ident.to_owned();
    Ok(Work::Write(Box::new(move |t, m| {
        let user = match user_id(t, &ident)? {
            Ok(id) => id,
            Err(e) => return Ok(Err(e)),
        };
        Ok(match tokens::delete(t, m, user, &number)? {
            Ok(_) => Ok("{\"revoked\":true}".into()),
            Err(refusal) => Err(refused(refusal, "no such token")),
        })
    })))
}
