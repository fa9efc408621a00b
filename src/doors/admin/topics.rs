//! Topics and their grants, as the admin page lists and changes them: what `openpush topic
//! list|grant|del` does, with the same effects (a grant taken back or narrowed ends the
//! grantee's subscriptions, a deleted topic all of them).
//!
//! A topic is named in the request body, never in the path: an endpoint topic's name is
//! the capability to post to it.

use std::rc::Rc;

use super::{Body, Json, Work, array, need};
use crate::error::ApiError;
use crate::names::is_endpoint_topic;
use crate::state::ServerState;
use crate::store::{Grant, accounts, queue, topics};

/// `GET /admin/api/topics`: every topic with its owner, grants, queued messages and
/// subscriptions open now.
pub fn list(state: &Rc<ServerState>) -> Work {
    let max_queued =
        usize::try_from(state.config().limits.max_queued_per_topic).unwrap_or(usize::MAX);
    let followed = state.hub.followed_queues();
    Work::Read(Box::new(move |t| {
        let names = accounts::user_names(t)?;
        let name_of = |id: u64| names.name(id).unwrap_or("");
        let mut listed = Vec::new();
        for (name, record) in topics::list(t)? {
            let grants: Vec<String> = record
                .grants
                .iter()
                .map(|g| {
                    Json::new()
                        .num("user_id", g.user_id)
                        .str("user", name_of(g.user_id))
                        .bool("read", g.read)
                        .bool("write", g.write)
                        .end()
                })
                .collect();
            let open = followed.partition_point(|&q| q <= record.queue)
                - followed.partition_point(|&q| q < record.queue);
            listed.push(
                Json::new()
                    .str("name", &name)
                    .bool("endpoint", is_endpoint_topic(&name))
                    .num("owner_id", record.owner)
                    .str("owner", name_of(record.owner))
                    .raw("grants", &array(&grants))
                    .num("queued", queue::stored(t, record.queue, max_queued)? as u64)
                    .num("streams", open as u64)
                    .end(),
            );
        }
        Ok(Ok(array(&listed)))
    }))
}

/// `PUT /admin/api/grants`: `{"topic","user","read","write"}`; neither takes the grant back.
pub fn grant(body: Body) -> Result<Work, ApiError> {
    let (topic, user) = (need(body.topic, "topic")?, need(body.user, "user")?);
    let (read, write) = (need(body.read, "read")?, need(body.write, "write")?);
    Ok(Work::Write(Box::new(move |t, m| {
        let Some((user_id, _)) = accounts::find_user(t, &user)? else {
            return Ok(Err(ApiError::NotFound("no such user")));
        };
        let grant = Grant {
            user_id,
            read,
            write,
        };
        Ok(match topics::grant(t, m, &topic, grant)? {
            Some(_) => Ok(Json::new().bool("read", read).bool("write", write).end()),
            None => Err(ApiError::NotFound("no such topic")),
        })
    })))
}

/// `DELETE /admin/api/topics`: `{"topic"}`, with its messages; its subscriptions end.
pub fn delete(body: Body) -> Result<Work, ApiError> {
    let topic = need(body.topic, "topic")?;
    Ok(Work::Write(Box::new(move |t, m| {
        Ok(match topics::delete(t, m, &topic)? {
            Some(_) => Ok("{\"deleted\":true}".into()),
            None => Err(ApiError::NotFound("no such topic")),
        })
    })))
}
