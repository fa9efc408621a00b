//! The administration commands behind `openpush user …`, `openpush client …` and
//! `openpush topic …`.
//!
//! They run against a [`Store`], either in the CLI process (server stopped) or inside the
//! server on behalf of the control socket (server running), so both paths behave the same.
//! Password hashes are computed by the CLI; no password crosses the control socket.

use miniserde::{Deserialize, Serialize};

use crate::config::Limits;
use crate::store::Store;
use crate::store::accounts::{self, Refusal};
use crate::store::{Grant, queue, topics};

#[derive(Serialize, Deserialize, Debug, Default)]
pub struct Command {
    /// One of `user_add`, `user_list`, `user_passwd`, `user_del`, `client_add`,
    /// `client_list`, `client_del`, `topic_list`, `topic_grant`, `topic_del`.
    pub op: String,
    pub name: Option<String>,
    pub user: Option<String>,
    pub password_hash: Option<String>,
    pub admin: Option<bool>,
    pub read: Option<bool>,
    pub write: Option<bool>,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct Reply {
    pub ok: bool,
    pub output: String,
}

/// What the running server must do after a command: close streams, forget logins.
#[derive(Default)]
pub struct Effects {
    /// Queues (clients' or topics') that are gone: their streams end.
    pub revoked_queues: Vec<u64>,
    pub users_changed: bool,
}

fn refusal(what: &str, r: Refusal) -> String {
    match r {
        Refusal::NotFound => format!("no such {what}"),
        Refusal::Conflict(d) | Refusal::Invalid(d) | Refusal::Limit(d) => d,
    }
}

fn required(value: Option<String>, what: &str) -> Result<String, String> {
    value.ok_or_else(|| format!("missing {what}"))
}

pub async fn execute(
    store: &Store,
    cmd: Command,
    limits: &Limits,
) -> Result<(String, Effects), String> {
    let mut effects = Effects::default();
    let output = match cmd.op.as_str() {
        "user_add" => {
            let name = required(cmd.name, "user name")?;
            check(&name, limits)?;
            if name.contains(':') {
                return Err(
                    "a user name must not contain ':' (HTTP Basic auth could not carry it)".into(),
                );
            }
            let hash = required(cmd.password_hash, "password")?;
            let admin = cmd.admin.unwrap_or(false);
            let (id, user) = store
                .write(move |t, _| accounts::create_user(t, &name, hash, admin))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|r| refusal("user", r))?;
            effects.users_changed = true;
            let role = if user.admin { ", administrator" } else { "" };
            format!("created user {} (id {id}{role})", user.name)
        }
        "user_list" => {
            let users = store
                .read(|t| {
                    accounts::list_users(t)?
                        .into_iter()
                        .map(|(id, u)| Ok((id, u, accounts::client_ids_of(t, id)?.len())))
                        .collect::<crate::store::Result<Vec<_>>>()
                })
                .await
                .map_err(|e| e.to_string())?;
            let mut out = String::from("ID\tNAME\tROLE\tCLIENTS");
            for (id, user, clients) in users {
                let role = if user.admin { "admin" } else { "user" };
                out.push_str(&format!("\n{id}\t{}\t{role}\t{clients}", user.name));
            }
            out
        }
        "user_passwd" => {
            let name = required(cmd.name, "user name")?;
            let hash = required(cmd.password_hash, "password")?;
            store
                .write(move |t, _| {
                    let Some((id, _)) = accounts::find_user_by_name(t, &name)? else {
                        return Ok(Err(Refusal::NotFound));
                    };
                    accounts::update_user(t, id, None, Some(hash))
                })
                .await
                .map_err(|e| e.to_string())?
                .map_err(|r| refusal("user", r))?;
            effects.users_changed = true;
            "password changed".into()
        }
        "user_del" => {
            let name = required(cmd.name, "user name")?;
            let clients = store
                .write(move |t, m| {
                    let Some((id, _)) = accounts::find_user_by_name(t, &name)? else {
                        return Ok(Err(Refusal::NotFound));
                    };
                    accounts::delete_user(t, m, id)
                })
                .await
                .map_err(|e| e.to_string())?
                .map_err(|r| refusal("user", r))?;
            let out = format!("deleted the user and its {} clients", clients.len());
            effects.revoked_queues = clients;
            effects.users_changed = true;
            out
        }
        "client_add" => {
            let user = required(cmd.user, "--user")?;
            let name = required(cmd.name, "client name")?;
            check(&name, limits)?;
            let max = limits.max_clients_per_user;
            let (_, client) = store
                .write(move |t, _| {
                    let Some((user_id, _)) = accounts::find_user_by_name(t, &user)? else {
                        return Ok(Err(Refusal::NotFound));
                    };
                    accounts::create_client(t, user_id, &name, max)
                })
                .await
                .map_err(|e| e.to_string())?
                .map_err(|r| refusal("user", r))?;
            client.key
        }
        "client_list" => {
            let user = cmd.user;
            let rows = store
                .read(move |t| {
                    let users = match &user {
                        Some(name) => accounts::find_user_by_name(t, name)?.into_iter().collect(),
                        None => accounts::list_users(t)?,
                    };
                    let mut rows = Vec::new();
                    for (user_id, u) in users {
                        for (id, c, apps) in accounts::clients_of(t, user_id)? {
                            rows.push(format!(
                                "{id}\t{}\t{}\t{}\t{}",
                                u.name,
                                c.name,
                                apps.len(),
                                c.key
                            ));
                        }
                    }
                    Ok(rows)
                })
                .await
                .map_err(|e| e.to_string())?;
            let mut out = String::from("ID\tUSER\tNAME\tAPPS\tKEY");
            for row in rows {
                out.push('\n');
                out.push_str(&row);
            }
            out
        }
        "client_del" => {
            let user = required(cmd.user, "--user")?;
            let name = required(cmd.name, "client name")?;
            let id = store
                .write(move |t, m| {
                    let Some((user_id, _)) = accounts::find_user_by_name(t, &user)? else {
                        return Ok(Err(Refusal::NotFound));
                    };
                    let Some((id, _)) = accounts::find_client_of(t, user_id, &name)? else {
                        return Ok(Err(Refusal::NotFound));
                    };
                    Ok(accounts::delete_client_by_id(t, m, id)?.map(|()| id))
                })
                .await
                .map_err(|e| e.to_string())?
                .map_err(|r| refusal("user or client", r))?;
            effects.revoked_queues.push(id);
            format!("deleted client {id}")
        }
        "topic_list" => topic_list(store, cmd.user).await?,
        "topic_grant" => {
            let topic = required(cmd.name, "topic")?;
            let user = required(cmd.user, "user")?;
            let (read, write) = (cmd.read.unwrap_or(false), cmd.write.unwrap_or(false));
            let shown = topic.clone();
            store
                .write(move |t, _| {
                    let Some((user_id, _)) = accounts::find_user_by_name(t, &user)? else {
                        return Ok(Err("no such user"));
                    };
                    let grant = Grant {
                        user_id,
                        read,
                        write,
                    };
                    Ok(topics::grant(t, &topic, grant)?
                        .map(drop)
                        .ok_or("no such topic"))
                })
                .await
                .map_err(|e| e.to_string())??;
            match (read, write) {
                (false, false) => format!("took back every grant on {shown}"),
                _ => format!("granted {shown}: read {read}, write {write}"),
            }
        }
        "topic_del" => {
            let topic = required(cmd.name, "topic")?;
            let shown = topic.clone();
            let queue = store
                .write(move |t, m| topics::delete(t, m, &topic))
                .await
                .map_err(|e| e.to_string())?
                .ok_or("no such topic")?;
            effects.revoked_queues.push(queue);
            format!("deleted topic {shown}")
        }
        other => return Err(format!("unknown command {other:?}")),
    };
    Ok((output, effects))
}

async fn topic_list(store: &Store, user: Option<String>) -> Result<String, String> {
    let rows = store
        .read(move |t| {
            let names: Vec<(u64, String)> = accounts::list_users(t)?
                .into_iter()
                .map(|(id, u)| (id, u.name))
                .collect();
            let name_of = |id: u64| {
                names
                    .iter()
                    .find(|(i, _)| *i == id)
                    .map_or_else(|| "-".to_owned(), |(_, n)| n.clone())
            };
            let only = match &user {
                Some(u) => match names.iter().find(|(_, n)| n == u) {
                    Some((id, _)) => Some(*id),
                    None => return Ok(Err("no such user")),
                },
                None => None,
            };
            let mut rows = Vec::new();
            for (topic, record) in topics::list(t)? {
                if only.is_some_and(|id| id != record.owner) {
                    continue;
                }
                let grants: Vec<String> = record
                    .grants
                    .iter()
                    .map(|g| {
                        let mode = match (g.read, g.write) {
                            (true, true) => "rw",
                            (true, false) => "r",
                            _ => "w",
                        };
                        format!("{}:{mode}", name_of(g.user_id))
                    })
                    .collect();
                let queued = queue::backlog(
                    t,
                    &[record.queue],
                    &queue::Cursor {
                        after: 0,
                        posted_since: 0,
                    },
                    usize::MAX,
                    crate::state::now_millis(),
                )?
                .messages
                .len();
                let owner = match record.owner {
                    0 => "(nobody yet)".to_owned(),
                    id => name_of(id),
                };
                rows.push(format!(
                    "{topic}\t{owner}\t{}\t{queued}",
                    if grants.is_empty() {
                        "-".into()
                    } else {
                        grants.join(",")
                    }
                ));
            }
            Ok(Ok(rows))
        })
        .await
        .map_err(|e| e.to_string())??;
    let mut out = String::from("TOPIC\tOWNER\tGRANTS\tQUEUED");
    for row in rows {
        out.push('\n');
        out.push_str(&row);
    }
    Ok(out)
}

fn check(name: &str, limits: &Limits) -> Result<(), String> {
    crate::names::check_account_name("name", name, limits.max_name_bytes).map_err(|e| e.detail())
}
