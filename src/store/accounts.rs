//! Users, clients (devices) and applications: the account side of the store.
//!
//! Every function runs inside a store-thread transaction. Functions that may refuse a
//! request check everything first and mutate only once the request is known to succeed,
//! because a refusal does not roll back the group it shares a commit with.
//! A client key or routing token is found through its digest, then compared in constant
//! time; no lookup answers for a secret it was not given in full.
//! Every change that takes a stream's access away records it ([`Memory::revoke`]): a
//! client deleted (its queue), a user deleted or given a new name or password (every
//! stream it opened, with its name and password or a token). A user's access tokens are in
//! `super::tokens`; they go with the user.

use crate::store::kv::{ReadableTable, ReadableTableMetadata, WriteTransaction};

use super::memory::Memory;
use super::tables::*;
use super::{AppRecord, ClientRecord, Result, Revocation, UserRecord};
use crate::names;
use crate::secret;

pub use super::{Outcome, Refusal};

/// The user `id`, if there is one.
pub fn get_user<T: ReadableTable<u64, &'static [u8]>>(
    users: &T,
    id: u64,
) -> Result<Option<UserRecord>> {
    match users.get(id)? {
        Some(bytes) => UserRecord::decode(bytes.value())
            .map(Some)
            .ok_or_else(|| damaged("user", id)),
        None => Ok(None),
    }
}

/// The client `id`, if there is one.
pub fn get_client<T: ReadableTable<u64, &'static [u8]>>(
    clients: &T,
    id: u64,
) -> Result<Option<ClientRecord>> {
    match clients.get(id)? {
        Some(bytes) => ClientRecord::decode(bytes.value())
            .map(Some)
            .ok_or_else(|| damaged("client", id)),
        None => Ok(None),
    }
}

/// A user by id or by name: an id is canonical digits ([`names::parse_id`]), and
/// nothing else is, so a name such as `+1` is never taken for user 1.
pub fn find_user(txn: &impl Tables, ident: &str) -> Result<Option<(u64, UserRecord)>> {
    let users = txn.users()?;
    if let Some(id) = names::parse_id(ident) {
        return Ok(get_user(&users, id)?.map(|user| (id, user)));
    }
    let by_name = txn.user_by_name()?;
    let Some(id) = by_name.get(ident)?.map(|v| v.value()) else {
        return Ok(None);
    };
    Ok(get_user(&users, id)?.map(|u| (id, u)))
}

/// Every user's id and name, in id order: what a listing of topics, grants or streams needs
/// to name their users.
pub fn user_names(txn: &impl Tables) -> Result<UserNames> {
    Ok(UserNames(
        list_users(txn)?
            .into_iter()
            .map(|(id, user)| (id, user.name))
            .collect(),
    ))
}

/// Users' ids and names, from [`user_names`].
pub struct UserNames(Vec<(u64, String)>);

impl UserNames {
    /// The name of user `id`, if it exists.
    pub fn name(&self, id: u64) -> Option<&str> {
        self.0
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, n)| n.as_str())
    }

    /// The id of the user named `name`, if it exists.
    pub fn id(&self, name: &str) -> Option<u64> {
        self.0.iter().find(|(_, n)| n == name).map(|(id, _)| *id)
    }
}

/// Every user, in id order.
pub fn list_users(txn: &impl Tables) -> Result<Vec<(u64, UserRecord)>> {
    let users = txn.users()?;
    let mut out = Vec::new();
    for entry in users.iter()? {
        let (id, bytes) = entry?;
        let id = id.value();
        out.push((
            id,
            UserRecord::decode(bytes.value()).ok_or_else(|| damaged("user", id))?,
        ));
    }
    Ok(out)
}

/// Creates a user. The first user of a database is always an administrator.
pub fn create_user(
    txn: &WriteTransaction,
    name: &str,
    password_hash: String,
    admin: bool,
) -> Result<Outcome<(u64, UserRecord)>> {
    let mut by_name = txn.open_table(USER_BY_NAME)?;
    if by_name.get(name)?.is_some() {
        return Ok(Err(Refusal::Conflict(format!(
            "a user named {name:?} exists"
        ))));
    }
    let mut users = txn.open_table(USERS)?;
    let first = users.is_empty()?;
    let id = next_id(txn, NEXT_USER_ID)?;
    let user = UserRecord {
        name: name.to_owned(),
        password_hash,
        admin: admin || first,
    };
    users.insert(id, user.encode().as_slice())?;
    by_name.insert(name, id)?;
    Ok(Ok((id, user)))
}

/// Renames a user and/or sets a new password hash.
pub fn update_user(
    txn: &WriteTransaction,
    memory: &mut Memory,
    id: u64,
    name: Option<&str>,
    password_hash: Option<String>,
) -> Result<Outcome<UserRecord>> {
    let mut users = txn.open_table(USERS)?;
    let Some(mut user) = get_user(&users, id)? else {
        return Ok(Err(Refusal::NotFound));
    };
    let renamed = name.is_some_and(|name| name != user.name);
    let mut by_name = txn.open_table(USER_BY_NAME)?;
    if let Some(name) = name
        && renamed
    {
        if by_name.get(name)?.is_some() {
            return Ok(Err(Refusal::Conflict(format!(
                "a user named {name:?} exists"
            ))));
        }
        by_name.remove(user.name.as_str())?;
        by_name.insert(name, id)?;
        user.name = name.to_owned();
    }
    if renamed || password_hash.is_some() {
        memory.revoke(Revocation::User(id));
    }
    if let Some(hash) = password_hash {
        user.password_hash = hash;
    }
    users.insert(id, user.encode().as_slice())?;
    Ok(Ok(user))
}

/// Deletes a user with all its clients, apps, topics and queued messages, and its grants
/// on other users' topics; returns the ids of its clients that are gone.
pub fn delete_user(
    txn: &WriteTransaction,
    memory: &mut Memory,
    id: u64,
) -> Result<Outcome<Vec<u64>>> {
    let mut users = txn.open_table(USERS)?;
    let Some(user) = get_user(&users, id)? else {
        return Ok(Err(Refusal::NotFound));
    };
    if user.admin && !other_admin_exists(&users, id)? {
        return Ok(Err(Refusal::Conflict(
            "the last administrator cannot be deleted; make another administrator first".into(),
        )));
    }
    memory.revoke(Revocation::User(id));
    let clients = client_ids_of(txn, id)?;
    for &client in &clients {
        delete_client_by_id(txn, memory, client)?.expect("the client was just listed");
    }
    super::topics::forget_user(txn, memory, id)?;
    super::tokens::delete_all_of(txn, id)?;
    users.remove(id)?;
    txn.open_table(USER_BY_NAME)?.remove(user.name.as_str())?;
    Ok(Ok(clients))
}

fn other_admin_exists(users: &impl ReadableTable<u64, &'static [u8]>, id: u64) -> Result<bool> {
    for entry in users.iter()? {
        let (other, bytes) = entry?;
        let other = other.value();
        let record = UserRecord::decode(bytes.value()).ok_or_else(|| damaged("user", other))?;
        if other != id && record.admin {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The ids of a user's clients.
pub fn client_ids_of(txn: &impl Tables, user_id: u64) -> Result<Vec<u64>> {
    let by_user = txn.client_by_user()?;
    let mut ids = Vec::new();
    for entry in by_user.range((user_id, 0)..=(user_id, u64::MAX))? {
        ids.push(entry?.0.value().1);
    }
    Ok(ids)
}

/// A user's clients with their applications, in creation order.
pub fn clients_of(
    txn: &impl Tables,
    user_id: u64,
) -> Result<Vec<(u64, ClientRecord, Vec<AppRecord>)>> {
    let clients = txn.clients()?;
    let mut out = Vec::new();
    for id in client_ids_of(txn, user_id)? {
        if let Some(client) = get_client(&clients, id)? {
            out.push((id, client, apps_of(txn, id)?));
        }
    }
    Ok(out)
}

/// One of a user's clients by id, name or key; an id is canonical digits
/// ([`names::parse_id`]) and is never looked up as a name or key.
pub fn find_client_of(
    txn: &impl Tables,
    user_id: u64,
    ident: &str,
) -> Result<Option<(u64, ClientRecord)>> {
    // Each lookup opens the table itself: a write transaction allows one handle at a time.
    let owned = |id: u64| -> Result<Option<(u64, ClientRecord)>> {
        Ok(get_client(&txn.clients()?, id)?
            .filter(|c| c.user_id == user_id)
            .map(|c| (id, c)))
    };
    if let Some(id) = names::parse_id(ident) {
        return owned(id);
    }
    let by_name = match txn.bytes(CLIENT_BY_NAME)?.get((user_id, ident))? {
        Some(v) => Some(id_from_bytes(v.value()).ok_or_else(|| damaged("client name", ident))?),
        None => None,
    };
    if let Some(id) = by_name {
        return owned(id);
    }
    match client_by_key(txn, ident)? {
        Some((id, client)) if client.user_id == user_id => Ok(Some((id, client))),
        _ => Ok(None),
    }
}

fn name_taken(txn: &WriteTransaction, user_id: u64, name: &str) -> Result<bool> {
    Ok(txn
        .open_table(CLIENT_BY_NAME)?
        .get((user_id, name))?
        .is_some())
}

/// The client a key belongs to.
pub fn client_by_key(txn: &impl Tables, key: &str) -> Result<Option<(u64, ClientRecord)>> {
    let digest = secret::digest(key.as_bytes());
    let Some(id) = txn
        .client_by_key()?
        .get(digest.as_slice())?
        .map(|v| id_from_bytes(v.value()).ok_or_else(|| damaged("client key index", "entry")))
        .transpose()?
    else {
        return Ok(None);
    };
    match get_client(&txn.clients()?, id)? {
        Some(client) if secret::constant_time_eq(client.key.as_bytes(), key.as_bytes()) => {
            Ok(Some((id, client)))
        }
        _ => Ok(None),
    }
}

/// A new client of `user_id` named `name`, with a new key; refused past `max_clients`
/// or when the user has a client of that name.
pub fn create_client(
    txn: &WriteTransaction,
    user_id: u64,
    name: &str,
    max_clients: usize,
) -> Result<Outcome<(u64, ClientRecord)>> {
    if get_user(&txn.open_table(USERS)?, user_id)?.is_none() {
        return Ok(Err(Refusal::NotFound));
    }
    if name_taken(txn, user_id, name)? {
        return Ok(Err(Refusal::Conflict(format!(
            "a client named {name:?} exists"
        ))));
    }
    if client_ids_of(txn, user_id)?.len() >= max_clients {
        return Ok(Err(Refusal::Limit(format!(
            "a user may have at most {max_clients} clients"
        ))));
    }
    let id = next_id(txn, NEXT_CLIENT_ID)?;
    let client = ClientRecord {
        user_id,
        name: name.to_owned(),
        key: secret::new_token(),
    };
    txn.open_table(CLIENTS)?
        .insert(id, client.encode().as_slice())?;
    txn.open_table(CLIENT_BY_USER)?
        .insert((user_id, id), [].as_slice())?;
    txn.open_table(CLIENT_BY_NAME)?
        .insert((user_id, name), id_bytes(id).as_slice())?;
    txn.open_table(CLIENT_BY_KEY)?.insert(
        secret::digest(client.key.as_bytes()).as_slice(),
        id_bytes(id).as_slice(),
    )?;
    Ok(Ok((id, client)))
}

/// Renames the user's client `ident` (id, name or key) to `name`.
pub fn rename_client(
    txn: &WriteTransaction,
    user_id: u64,
    ident: &str,
    name: &str,
) -> Result<Outcome<(u64, ClientRecord)>> {
    let Some((id, mut client)) = find_client_of(txn, user_id, ident)? else {
        return Ok(Err(Refusal::NotFound));
    };
    if client.name != name && name_taken(txn, user_id, name)? {
        return Ok(Err(Refusal::Conflict(format!(
            "a client named {name:?} exists"
        ))));
    }
    let mut by_name = txn.open_table(CLIENT_BY_NAME)?;
    by_name.remove((user_id, client.name.as_str()))?;
    by_name.insert((user_id, name), id_bytes(id).as_slice())?;
    drop(by_name);
    client.name = name.to_owned();
    txn.open_table(CLIENTS)?
        .insert(id, client.encode().as_slice())?;
    Ok(Ok((id, client)))
}

/// Deletes a client: its key, its apps' routing tokens and its queued messages.
pub fn delete_client_by_id(
    txn: &WriteTransaction,
    memory: &mut Memory,
    id: u64,
) -> Result<Outcome<()>> {
    let mut clients = txn.open_table(CLIENTS)?;
    let Some(client) = get_client(&clients, id)? else {
        return Ok(Err(Refusal::NotFound));
    };
    memory.revoke(Revocation::Queue(id));
    for app in apps_of(txn, id)? {
        remove_app(txn, id, &app)?;
    }
    super::queue::drop_messages(txn, memory, id, None)?;
    clients.remove(id)?;
    txn.open_table(CLIENT_BY_USER)?
        .remove((client.user_id, id))?;
    txn.open_table(CLIENT_BY_NAME)?
        .remove((client.user_id, client.name.as_str()))?;
    txn.open_table(CLIENT_BY_KEY)?
        .remove(secret::digest(client.key.as_bytes()).as_slice())?;
    Ok(Ok(()))
}

/// A client's applications.
pub fn apps_of(txn: &impl Tables, client_id: u64) -> Result<Vec<AppRecord>> {
    let by_client = txn.app_by_client()?;
    let apps = txn.apps()?;
    let mut out = Vec::new();
    for entry in by_client.range((client_id, "")..)? {
        let (key, digest) = entry?;
        if key.value().0 != client_id {
            break;
        }
        if let Some(bytes) = apps.get(digest.value())? {
            out.push(
                AppRecord::decode(bytes.value())
                    .ok_or_else(|| damaged("app of client", client_id))?,
            );
        }
    }
    Ok(out)
}

/// The application a routing token belongs to.
pub fn app_by_token(txn: &impl Tables, token: &str) -> Result<Option<AppRecord>> {
    let digest = secret::digest(token.as_bytes());
    let apps = txn.apps()?;
    let Some(bytes) = apps.get(digest.as_slice())? else {
        return Ok(None);
    };
    let app = AppRecord::decode(bytes.value()).ok_or_else(|| damaged("app", "by token"))?;
    Ok(secret::constant_time_eq(app.routing_token.as_bytes(), token.as_bytes()).then_some(app))
}

/// A new application `registration_id` of a client, with a new routing token; refused
/// past `max_apps` or when the client has an application of that id.
pub fn register_app(
    txn: &WriteTransaction,
    client_id: u64,
    registration_id: &str,
    max_apps: usize,
) -> Result<Outcome<AppRecord>> {
    let existing = apps_of(txn, client_id)?;
    if existing
        .iter()
        .any(|a| a.registration_id == registration_id)
    {
        return Ok(Err(Refusal::Invalid(format!(
            "registration_id {registration_id:?} is already registered on this client"
        ))));
    }
    if existing.len() >= max_apps {
        return Ok(Err(Refusal::Limit(format!(
            "a client may have at most {max_apps} applications"
        ))));
    }
    let app = AppRecord {
        client_id,
        registration_id: registration_id.to_owned(),
        routing_token: secret::new_token(),
    };
    insert_app(txn, app)
}

/// Registers an app whose registration id is its routing token (a NextPush app, which
/// knows its app only by the token): the token is in every message's record.
pub fn register_app_named_by_token(
    txn: &WriteTransaction,
    client_id: u64,
    max_apps: usize,
) -> Result<Outcome<AppRecord>> {
    if apps_of(txn, client_id)?.len() >= max_apps {
        return Ok(Err(Refusal::Limit(format!(
            "a client may have at most {max_apps} applications"
        ))));
    }
    let token = secret::new_token();
    insert_app(
        txn,
        AppRecord {
            client_id,
            registration_id: token.clone(),
            routing_token: token,
        },
    )
}

fn insert_app(txn: &WriteTransaction, app: AppRecord) -> Result<Outcome<AppRecord>> {
    let client_id = app.client_id;
    let registration_id = app.registration_id.as_str();
    let digest = secret::digest(app.routing_token.as_bytes());
    txn.open_table(APPS)?
        .insert(digest.as_slice(), app.encode().as_slice())?;
    txn.open_table(APP_BY_CLIENT)?
        .insert((client_id, registration_id), digest.as_slice())?;
    Ok(Ok(app))
}

/// Deletes one of a client's applications, named by registration id or routing token, with
/// its queued messages.
pub fn delete_app(
    txn: &WriteTransaction,
    memory: &mut Memory,
    client_id: u64,
    ident: &str,
) -> Result<Outcome<AppRecord>> {
    let app = apps_of(txn, client_id)?.into_iter().find(|a| {
        a.registration_id == ident
            || secret::constant_time_eq(a.routing_token.as_bytes(), ident.as_bytes())
    });
    let Some(app) = app else {
        return Ok(Err(Refusal::NotFound));
    };
    remove_app(txn, client_id, &app)?;
    super::queue::drop_messages(txn, memory, client_id, Some(&app.registration_id))?;
    Ok(Ok(app))
}

fn remove_app(txn: &WriteTransaction, client_id: u64, app: &AppRecord) -> Result<()> {
    let digest = secret::digest(app.routing_token.as_bytes());
    txn.open_table(APPS)?.remove(digest.as_slice())?;
    txn.open_table(APP_BY_CLIENT)?
        .remove((client_id, app.registration_id.as_str()))?;
    Ok(())
}

/// A user by exact name (logins never match numeric ids).
pub fn find_user_by_name(txn: &impl Tables, name: &str) -> Result<Option<(u64, UserRecord)>> {
    let Some(id) = txn.user_by_name()?.get(name)?.map(|v| v.value()) else {
        return Ok(None);
    };
    Ok(get_user(&txn.users()?, id)?.map(|u| (id, u)))
}

#[cfg(test)]
mod tests {
    use super::super::tables::in_memory;
    use super::*;

    #[test]
    fn a_new_login_a_deleted_user_or_client_takes_their_streams_access_away() {
        let db = in_memory();
        let t = db.begin_write().unwrap();
        let mut m = Memory::default();
        create_user(&t, "admin", "hash".into(), true)
            .unwrap()
            .unwrap();
        let (ann, _) = create_user(&t, "ann", "hash".into(), false)
            .unwrap()
            .unwrap();
        let (phone, _) = create_client(&t, ann, "phone", 4).unwrap().unwrap();
        update_user(&t, &mut m, ann, Some("ann"), None)
            .unwrap()
            .unwrap();
        assert!(m.take_revoked().is_empty(), "nothing changed");
        update_user(&t, &mut m, ann, Some("anna"), None)
            .unwrap()
            .unwrap();
        update_user(&t, &mut m, ann, None, Some("new".into()))
            .unwrap()
            .unwrap();
        assert_eq!(m.take_revoked(), [Revocation::User(ann); 2]);
        delete_user(&t, &mut m, ann).unwrap().unwrap();
        assert_eq!(
            m.take_revoked(),
            [Revocation::User(ann), Revocation::Queue(phone)]
        );
    }
}
