//! The administration commands behind `openpush user …`, `openpush client …`,
//! `openpush topic …` and `openpush token …`.
//!
//! They run against a [`Store`], either in the CLI process (server stopped) or inside the
//! server on behalf of the control socket (server running), so both paths behave the same.
//! Password hashes are computed by the CLI; no password crosses the control socket.
//!
//! A [`Command`] crosses the control socket as a [`Wire`] JSON line, the format of the
//! first release, so that a CLI and a server of different releases understand each other.

use miniserde::{Deserialize, Serialize};

use crate::config::Limits;
use crate::store::Store;
use crate::store::accounts::{self, Refusal};
use crate::store::{Grant, queue, tokens, topics};

/// One administration command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// A new user.
    UserAdd {
        /// Its name.
        name: String,
        /// Its password's Argon2 hash (the CLI hashed it).
        password_hash: String,
        /// Whether it administers the others.
        admin: bool,
    },
    /// Every user.
    UserList,
    /// A user's new password.
    UserPasswd {
        /// The user, by id or name.
        name: String,
        /// The new password's Argon2 hash.
        password_hash: String,
    },
    /// A user goes, with its clients, their queues and its topics.
    UserDel {
        /// The user, by id or name.
        name: String,
    },
    /// A new client (device) of a user.
    ClientAdd {
        /// The user, by id or name.
        user: String,
        /// The client's name.
        name: String,
    },
    /// Every user's clients, or one user's.
    ClientList {
        /// The user, by id or name; `None`: every user.
        user: Option<String>,
    },
    /// A client goes, with its applications and its queue.
    ClientDel {
        /// The user, by id or name.
        user: String,
        /// The client, by id, name or key.
        name: String,
    },
    /// Every topic, or those one user owns.
    TopicList {
        /// The owner, by id or name; `None`: every topic.
        user: Option<String>,
    },
    /// Neither `read` nor `write` takes the user's grant back.
    TopicGrant {
        /// The topic's name.
        topic: String,
        /// The user, by id or name.
        user: String,
        /// The user may read the topic.
        read: bool,
        /// The user may publish to the topic.
        write: bool,
    },
    /// A topic goes, with its queue.
    TopicDel {
        /// The topic's name.
        topic: String,
    },
    /// One user's access tokens.
    TokenList {
        /// The user, by name.
        user: String,
    },
    /// One of a user's access tokens goes; the streams opened with it end.
    TokenDel {
        /// The user, by name.
        user: String,
        /// The token, by number or by itself.
        name: String,
    },
}

/// A [`Command`] as it crosses the control socket: one JSON object, `op` naming the
/// command. Its fields and op names must not change (miniserde cannot derive an enum with
/// data, hence this flat form); only [`Command`]'s conversions use it.
#[derive(Serialize, Deserialize, Debug, Default, PartialEq, Eq)]
pub struct Wire {
    /// One of `user_add`, `user_list`, `user_passwd`, `user_del`, `client_add`,
    /// `client_list`, `client_del`, `topic_list`, `topic_grant`, `topic_del`, `token_list`,
    /// `token_del`.
    pub op: String,
    /// `name` of a user or client command, `topic` of a topic command.
    pub name: Option<String>,
    /// `user` of a client or topic command.
    pub user: Option<String>,
    /// `password_hash` of `user_add` and `user_passwd`.
    pub password_hash: Option<String>,
    /// `admin` of `user_add`.
    pub admin: Option<bool>,
    /// `read` of `topic_grant`.
    pub read: Option<bool>,
    /// `write` of `topic_grant`.
    pub write: Option<bool>,
}

impl Command {
    /// The command's name on the wire (and in the server's log).
    pub fn op(&self) -> &'static str {
        match self {
            Command::UserAdd { .. } => "user_add",
            Command::UserList => "user_list",
            Command::UserPasswd { .. } => "user_passwd",
            Command::UserDel { .. } => "user_del",
            Command::ClientAdd { .. } => "client_add",
            Command::ClientList { .. } => "client_list",
            Command::ClientDel { .. } => "client_del",
            Command::TopicList { .. } => "topic_list",
            Command::TopicGrant { .. } => "topic_grant",
            Command::TopicDel { .. } => "topic_del",
            Command::TokenList { .. } => "token_list",
            Command::TokenDel { .. } => "token_del",
        }
    }
}

impl From<Command> for Wire {
    fn from(cmd: Command) -> Wire {
        let op = cmd.op().to_owned();
        let wire = Wire {
            op,
            ..Default::default()
        };
        match cmd {
            Command::UserAdd {
                name,
                password_hash,
                admin,
            } => Wire {
                name: Some(name),
                password_hash: Some(password_hash),
                admin: Some(admin),
                ..wire
            },
            Command::UserList => wire,
            Command::UserPasswd {
                name,
                password_hash,
            } => Wire {
                name: Some(name),
                password_hash: Some(password_hash),
                ..wire
            },
            Command::UserDel { name } => Wire {
                name: Some(name),
                ..wire
            },
            Command::ClientAdd { user, name }
            | Command::ClientDel { user, name }
            | Command::TokenDel { user, name } => Wire {
                user: Some(user),
                name: Some(name),
                ..wire
            },
            Command::ClientList { user } | Command::TopicList { user } => Wire { user, ..wire },
            Command::TokenList { user } => Wire {
                user: Some(user),
                ..wire
            },
            Command::TopicGrant {
                topic,
                user,
                read,
                write,
            } => Wire {
                name: Some(topic),
                user: Some(user),
                read: Some(read),
                write: Some(write),
                ..wire
            },
            Command::TopicDel { topic } => Wire {
                name: Some(topic),
                ..wire
            },
        }
    }
}

impl TryFrom<Wire> for Command {
    /// What the CLI prints: a field the command needs is missing, or the op is unknown.
    type Error = String;

    fn try_from(wire: Wire) -> Result<Command, String> {
        let required =
            |value: Option<String>, what: &str| value.ok_or_else(|| format!("missing {what}"));
        Ok(match wire.op.as_str() {
            "user_add" => Command::UserAdd {
                name: required(wire.name, "user name")?,
                password_hash: required(wire.password_hash, "password")?,
                admin: wire.admin.unwrap_or(false),
            },
            "user_list" => Command::UserList,
            "user_passwd" => Command::UserPasswd {
                name: required(wire.name, "user name")?,
                password_hash: required(wire.password_hash, "password")?,
            },
            "user_del" => Command::UserDel {
                name: required(wire.name, "user name")?,
            },
            "client_add" => Command::ClientAdd {
                user: required(wire.user, "--user")?,
                name: required(wire.name, "client name")?,
            },
            "client_list" => Command::ClientList { user: wire.user },
            "client_del" => Command::ClientDel {
                user: required(wire.user, "--user")?,
                name: required(wire.name, "client name")?,
            },
            "topic_list" => Command::TopicList { user: wire.user },
            "topic_grant" => Command::TopicGrant {
                topic: required(wire.name, "topic")?,
                user: required(wire.user, "user")?,
                read: wire.read.unwrap_or(false),
                write: wire.write.unwrap_or(false),
            },
            "topic_del" => Command::TopicDel {
                topic: required(wire.name, "topic")?,
            },
            "token_list" => Command::TokenList {
                user: required(wire.user, "--user")?,
            },
            "token_del" => Command::TokenDel {
                user: required(wire.user, "--user")?,
                name: required(wire.name, "token")?,
            },
            other => return Err(format!("unknown command {other:?}")),
        })
    }
}

/// A command's answer, as the CLI prints it.
#[derive(Serialize, Deserialize, Debug)]
pub struct Reply {
    /// Whether the command was done (the CLI's exit status).
    pub ok: bool,
    /// What the CLI prints: the listing, or why the command was refused.
    pub output: String,
}

/// What the running server must do after a command: forget cached logins. (Streams that
/// lose their access end with the command's commit: see [`crate::store::Event::Revoked`].)
#[derive(Default)]
pub struct Effects {
    /// A user changed or went: the server forgets its cached logins.
    pub users_changed: bool,
}

impl Effects {
    fn users_changed() -> Effects {
        Effects {
            users_changed: true,
        }
    }
}

/// Runs one command; returns what to print and what the running server must do.
pub async fn execute(
    store: &Store,
    cmd: Command,
    limits: &Limits,
) -> Result<(String, Effects), String> {
    let no_effects = |output| (output, Effects::default());
    match cmd {
        Command::UserAdd {
            name,
            password_hash,
            admin,
        } => user_add(store, limits, name, password_hash, admin).await,
        Command::UserList => user_list(store).await.map(no_effects),
        Command::UserPasswd {
            name,
            password_hash,
        } => user_passwd(store, name, password_hash).await,
        Command::UserDel { name } => user_del(store, name).await,
        Command::ClientAdd { user, name } => {
            client_add(store, limits, user, name).await.map(no_effects)
        }
        Command::ClientList { user } => client_list(store, user).await.map(no_effects),
        Command::ClientDel { user, name } => client_del(store, user, name).await.map(no_effects),
        Command::TopicList { user } => topic_list(store, user).await.map(no_effects),
        Command::TopicGrant {
            topic,
            user,
            read,
            write,
        } => topic_grant(store, topic, user, read, write)
            .await
            .map(no_effects),
        Command::TopicDel { topic } => topic_del(store, topic).await.map(no_effects),
        Command::TokenList { user } => token_list(store, user).await.map(no_effects),
        Command::TokenDel { user, name } => token_del(store, user, name).await.map(no_effects),
    }
}

fn refusal(what: &str, r: Refusal) -> String {
    match r {
        Refusal::NotFound => format!("no such {what}"),
        Refusal::Conflict(d) | Refusal::Invalid(d) | Refusal::Limit(d) => d,
    }
}

fn store_error(e: crate::store::Error) -> String {
    e.to_string()
}

fn check(name: &str, limits: &Limits) -> Result<(), String> {
    crate::names::check_account_name("name", name, limits.max_name_bytes).map_err(|e| e.0)
}

async fn user_add(
    store: &Store,
    limits: &Limits,
    name: String,
    hash: String,
    admin: bool,
) -> Result<(String, Effects), String> {
    crate::names::check_user_name(&name, limits.max_name_bytes).map_err(|e| e.0)?;
    let (id, user) = store
        .write(move |t, _| accounts::create_user(t, &name, hash, admin))
        .await
        .map_err(store_error)?
        .map_err(|r| refusal("user", r))?;
    let role = if user.admin { ", administrator" } else { "" };
    Ok((
        format!("created user {} (id {id}{role})", user.name),
        Effects::users_changed(),
    ))
}

async fn user_list(store: &Store) -> Result<String, String> {
    let users = store
        .read(|t| {
            accounts::list_users(t)?
                .into_iter()
                .map(|(id, u)| Ok((id, u, accounts::client_ids_of(t, id)?.len())))
                .collect::<crate::store::Result<Vec<_>>>()
        })
        .await
        .map_err(store_error)?;
    let mut out = String::from("ID\tNAME\tROLE\tCLIENTS");
    for (id, user, clients) in users {
        let role = if user.admin { "admin" } else { "user" };
        out.push_str(&format!("\n{id}\t{}\t{role}\t{clients}", user.name));
    }
    Ok(out)
}

async fn user_passwd(
    store: &Store,
    name: String,
    hash: String,
) -> Result<(String, Effects), String> {
    store
        .write(move |t, m| {
            let Some((id, _)) = accounts::find_user_by_name(t, &name)? else {
                return Ok(Err(Refusal::NotFound));
            };
            accounts::update_user(t, m, id, None, Some(hash))
        })
        .await
        .map_err(store_error)?
        .map_err(|r| refusal("user", r))?;
    Ok(("password changed".into(), Effects::users_changed()))
}

async fn user_del(store: &Store, name: String) -> Result<(String, Effects), String> {
    let clients = store
        .write(move |t, m| {
            let Some((id, _)) = accounts::find_user_by_name(t, &name)? else {
                return Ok(Err(Refusal::NotFound));
            };
            accounts::delete_user(t, m, id)
        })
        .await
        .map_err(store_error)?
        .map_err(|r| refusal("user", r))?;
    let output = format!("deleted the user and its {} clients", clients.len());
    Ok((output, Effects::users_changed()))
}

/// Prints the new client's key, bare: the CLI labels it for a person.
async fn client_add(
    store: &Store,
    limits: &Limits,
    user: String,
    name: String,
) -> Result<String, String> {
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
        .map_err(store_error)?
        .map_err(|r| refusal("user", r))?;
    Ok(client.key)
}

async fn client_list(store: &Store, user: Option<String>) -> Result<String, String> {
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
        .map_err(store_error)?;
    Ok(table("ID\tUSER\tNAME\tAPPS\tKEY", rows))
}

async fn client_del(store: &Store, user: String, name: String) -> Result<String, String> {
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
        .map_err(store_error)?
        .map_err(|r| refusal("user or client", r))?;
    Ok(format!("deleted client {id}"))
}

async fn topic_list(store: &Store, user: Option<String>) -> Result<String, String> {
    let rows = store
        .read_unsettled(move |t, unsettled| {
            let names = accounts::user_names(t)?;
            let name_of = |id: u64| names.name(id).unwrap_or("-");
            let only = match &user {
                Some(u) => match names.id(u) {
                    Some(id) => Some(id),
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
                    unsettled,
                    &[record.queue],
                    &queue::Cursor {
                        after: 0,
                        posted_since: 0,
                    },
                    queue::PageLimit::ALL,
                    crate::clock::now_millis(),
                )?
                .messages
                .len();
                let owner = match record.owner {
                    0 => "(nobody yet)",
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
        .map_err(store_error)??;
    Ok(table("TOPIC\tOWNER\tGRANTS\tQUEUED", rows))
}

async fn topic_grant(
    store: &Store,
    topic: String,
    user: String,
    read: bool,
    write: bool,
) -> Result<String, String> {
    let shown = topic.clone();
    store
        .write(move |t, m| {
            let Some((user_id, _)) = accounts::find_user_by_name(t, &user)? else {
                return Ok(Err("no such user"));
            };
            let grant = Grant {
                user_id,
                read,
                write,
            };
            Ok(topics::grant(t, m, &topic, grant)?
                .map(drop)
                .ok_or("no such topic"))
        })
        .await
        .map_err(store_error)??;
    Ok(match (read, write) {
        (false, false) => format!("took back every grant on {shown}"),
        _ => format!("granted {shown}: read {read}, write {write}"),
    })
}

async fn topic_del(store: &Store, topic: String) -> Result<String, String> {
    let shown = topic.clone();
    store
        .write(move |t, m| topics::delete(t, m, &topic))
        .await
        .map_err(store_error)?
        .ok_or("no such topic")?;
    Ok(format!("deleted topic {shown}"))
}

/// A header line and one line per row.
async fn token_list(store: &Store, user: String) -> Result<String, String> {
    let rows = store
        .read(move |t| {
            let Some((user_id, _)) = accounts::find_user_by_name(t, &user)? else {
                return Ok(None);
            };
            let rows = tokens::of_user(t, user_id)?
                .into_iter()
                .map(|(_, r)| {
                    let expires = match r.expires {
                        0 => "never".to_owned(),
                        at => at.to_string(),
                    };
                    format!(
                        "{}\t{}\t{}\t{}\t{expires}",
                        r.id, r.label, r.last_access, r.last_origin
                    )
                })
                .collect();
            Ok(Some(rows))
        })
        .await
        .map_err(store_error)?
        .ok_or_else(|| "no such user".to_owned())?;
    Ok(table("ID\tLABEL\tLAST_ACCESS\tLAST_ORIGIN\tEXPIRES", rows))
}

async fn token_del(store: &Store, user: String, name: String) -> Result<String, String> {
    let record = store
        .write(move |t, m| {
            let Some((user_id, _)) = accounts::find_user_by_name(t, &user)? else {
                return Ok(Err(Refusal::NotFound));
            };
            tokens::delete(t, m, user_id, &name)
        })
        .await
        .map_err(store_error)?
        .map_err(|r| refusal("user or token", r))?;
    Ok(format!("deleted token {}", record.id))
}

fn table(header: &str, rows: Vec<String>) -> String {
    let mut out = String::from(header);
    for row in rows {
        out.push('\n');
        out.push_str(&row);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_command() -> Vec<Command> {
        let s = |v: &str| v.to_owned();
        vec![
            Command::UserAdd {
                name: s("anna"),
                password_hash: s("$argon2id$x"),
                admin: true,
            },
            Command::UserList,
            Command::UserPasswd {
                name: s("anna"),
                password_hash: s("$argon2id$y"),
            },
            Command::UserDel { name: s("anna") },
            Command::ClientAdd {
                user: s("anna"),
                name: s("phone"),
            },
            Command::ClientList { user: None },
            Command::ClientList {
                user: Some(s("anna")),
            },
            Command::ClientDel {
                user: s("anna"),
                name: s("phone"),
            },
            Command::TopicList { user: None },
            Command::TopicGrant {
                topic: s("news"),
                user: s("ben"),
                read: true,
                write: false,
            },
            Command::TopicDel { topic: s("news") },
            Command::TokenList { user: s("anna") },
            Command::TokenDel {
                user: s("anna"),
                name: s("3"),
            },
        ]
    }

    #[test]
    fn every_command_crosses_the_wire_unchanged() {
        for cmd in every_command() {
            let line = miniserde::json::to_string(&Wire::from(cmd.clone()));
            let wire: Wire = miniserde::json::from_str(&line).unwrap();
            assert_eq!(Command::try_from(wire), Ok(cmd), "{line}");
        }
    }

    /// Lines as the first release's CLI sends them (its `Command` struct, serialized): a
    /// server must still understand them, and a CLI must still send them.
    #[test]
    fn the_wire_format_is_the_first_releases() {
        let lines = [
            (
                r#"{"op":"user_add","name":"anna","user":null,"password_hash":"$argon2id$x","admin":true,"read":null,"write":null}"#,
                Command::UserAdd {
                    name: "anna".into(),
                    password_hash: "$argon2id$x".into(),
                    admin: true,
                },
            ),
            (
                r#"{"op":"user_list","name":null,"user":null,"password_hash":null,"admin":null,"read":null,"write":null}"#,
                Command::UserList,
            ),
            (
                r#"{"op":"client_del","name":"phone","user":"anna","password_hash":null,"admin":null,"read":null,"write":null}"#,
                Command::ClientDel {
                    user: "anna".into(),
                    name: "phone".into(),
                },
            ),
            (
                r#"{"op":"topic_grant","name":"news","user":"ben","password_hash":null,"admin":null,"read":false,"write":true}"#,
                Command::TopicGrant {
                    topic: "news".into(),
                    user: "ben".into(),
                    read: false,
                    write: true,
                },
            ),
        ];
        for (line, cmd) in lines {
            let wire: Wire = miniserde::json::from_str(line).unwrap();
            assert_eq!(Command::try_from(wire), Ok(cmd.clone()), "{line}");
            assert_eq!(miniserde::json::to_string(&Wire::from(cmd)), line);
        }
        // Fields left out read as absent; absent flags as false.
        let wire: Wire = miniserde::json::from_str(r#"{"op":"topic_list"}"#).unwrap();
        assert_eq!(
            Command::try_from(wire),
            Ok(Command::TopicList { user: None })
        );
    }

    #[test]
    fn a_malformed_command_is_refused_in_words() {
        for (line, want) in [
            (r#"{"op":"user_del"}"#, "missing user name"),
            (r#"{"op":"user_add","name":"anna"}"#, "missing password"),
            (r#"{"op":"client_add","name":"phone"}"#, "missing --user"),
            (r#"{"op":"topic_grant","name":"news"}"#, "missing user"),
            (r#"{"op":"reboot"}"#, "unknown command \"reboot\""),
        ] {
            let wire: Wire = miniserde::json::from_str(line).unwrap();
            assert_eq!(Command::try_from(wire), Err(want.to_owned()), "{line}");
        }
    }
}
