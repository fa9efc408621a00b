//! Topics and their grants, as the admin page lists and changes them: what `openpush topic
//! list|grant|del` does, with the same effects (a grant taken back or narrowed ends the
//! grantee's subscriptions, a deleted topic all of them).
//!
//! A topic is named in the request body, never in the path: an endpoint topic's name is
//! the capability to post to it.

use std::rc::Rc;

use miniserde::{Deserialize, Serialize};

use super::{administrator, body, json};
use crate::error::ApiError;
use crate::http::Request;
use crate::names::is_endpoint_topic;
use crate::route::Outcome;
use crate::state::ServerState;
use crate::store::{Grant, accounts, queue, topics};

#[derive(Serialize)]
struct TopicView {
    name: String,
    /// An `up…` topic of a UnifiedPush app.
    endpoint: bool,
    owner_id: u64,
    /// Empty: nobody yet (an endpoint topic an app server posted to first).
    owner: String,
    grants: Vec<GrantView>,
    queued: usize,
    /// Subscriptions open now.
    streams: usize,
}

#[derive(Serialize)]
struct GrantView {
    user_id: u64,
    user: String,
    read: bool,
    write: bool,
}

#[derive(Deserialize)]
struct TopicName {
    topic: String,
}

#[derive(Deserialize)]
struct NewGrant {
    topic: String,
    /// The user, by id or name.
    user: String,
    read: bool,
    write: bool,
}

/// `GET /admin/api/topics`: every topic with its owner, grants, queued messages and
/// subscriptions open now.
pub async fn list(state: &Rc<ServerState>, req: &Request) -> Result<Outcome, ApiError> {
    administrator(state, req).await?;
    let max_queued =
        usize::try_from(state.config().limits.max_queued_per_topic).unwrap_or(usize::MAX);
    let (names, topics) = state
        .store
        .read(move |t| {
            let names: Vec<(u64, String)> = accounts::list_users(t)?
                .into_iter()
                .map(|(id, u)| (id, u.name))
                .collect();
            let mut out = Vec::new();
            for (name, record) in topics::list(t)? {
                let queued = queue::stored(t, record.queue, max_queued)?;
                out.push((name, record, queued));
            }
            Ok((names, out))
        })
        .await?;
    let name_of = |id: u64| {
        names
            .iter()
            .find(|(i, _)| *i == id)
            .map_or_else(String::new, |(_, n)| n.clone())
    };
    let views: Vec<TopicView> = topics
        .into_iter()
        .map(|(name, record, queued)| TopicView {
            endpoint: is_endpoint_topic(&name),
            name,
            owner_id: record.owner,
            owner: name_of(record.owner),
            grants: record
                .grants
                .iter()
                .map(|g| GrantView {
                    user_id: g.user_id,
                    user: name_of(g.user_id),
                    read: g.read,
                    write: g.write,
                })
                .collect(),
            queued,
            streams: state.hub.streams_on(record.queue),
        })
        .collect();
    json(200, miniserde::json::to_string(&views))
}

/// `PUT /admin/api/grants`: `{"topic","user","read","write"}`; neither takes the grant back.
pub async fn grant(state: &Rc<ServerState>, req: &Request) -> Result<Outcome, ApiError> {
    let me = administrator(state, req).await?;
    let new: NewGrant = body(
        req,
        "a JSON object with string fields `topic` and `user` and boolean fields `read` and `write`",
    )?;
    let NewGrant {
        topic,
        user,
        read,
        write,
    } = new;
    state
        .store
        .write(move |t, m| {
            let Some((user_id, _)) = accounts::find_user(t, &user)? else {
                return Ok(Err(ApiError::NotFound("no such user")));
            };
            let grant = Grant {
                user_id,
                read,
                write,
            };
            Ok(topics::grant(t, m, &topic, grant)?
                .map(drop)
                .ok_or(ApiError::NotFound("no such topic")))
        })
        .await??;
    log::info!("admin page: a grant changed by user {}", me.id);
    json(200, format!("{{\"read\":{read},\"write\":{write}}}"))
}

/// `DELETE /admin/api/topics`: `{"topic"}`, with its messages; its subscriptions end.
pub async fn delete(state: &Rc<ServerState>, req: &Request) -> Result<Outcome, ApiError> {
    let me = administrator(state, req).await?;
    let TopicName { topic } = body(req, "a JSON object with a string field `topic`")?;
    state
        .store
        .write(move |t, m| topics::delete(t, m, &topic))
        .await?
        .ok_or(ApiError::NotFound("no such topic"))?;
    log::info!("admin page: a topic deleted by user {}", me.id);
    json(200, "{\"deleted\":true}".into())
}
