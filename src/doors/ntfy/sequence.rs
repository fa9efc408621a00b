//! Clearing and deleting the notification of an ntfy sequence (ntfy 2.16):
//! `PUT /<topic>/<sequence id>/clear` (or `/read`) publishes a `message_clear` event, and
//! `DELETE /<topic>/<sequence id>` a `message_delete` event, to the topic's readers. Each
//! is a message of the topic like any other: stored with ntfy's cache time
//! (`topic_default_ttl_secs`), sent to the live streams, found by polls and `since=`, and
//! counted in the topic's queue and the store's budget; its sender needs write access to
//! the topic, as a publish does. A message's own id (`op<id>`, as its readers and its
//! sender with a user know it) serves as its sequence id when it was published without one.
//!
//! Deleting also drops the message of that sequence still waiting for its time
//! (`crate::store::schedule`), as ntfy cancels a scheduled message; clearing leaves it.
//! The answer is the event's object, as ntfy answers.

use std::rc::Rc;

use super::fields::sequence_id;
use super::{anonymous_needs_login, user};
use crate::delivery::{self, topics::post_to_topic};
use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::limits::AddrKey;
use crate::route::Outcome;
use crate::state::ServerState;
use crate::store::queue::NewMessage;
use crate::store::{Content, Sequence, SequenceEvent};

/// `PUT /<topic>/<sequence id>/clear|read`.
pub async fn clear(
    state: &Rc<ServerState>,
    req: &Request,
    topic: &str,
    sequence: &str,
) -> Result<Outcome, ApiError> {
    publish_event(state, req, topic, sequence, SequenceEvent::Clear).await
}

/// `DELETE /<topic>/<sequence id>`.
pub async fn delete(
    state: &Rc<ServerState>,
    req: &Request,
    topic: &str,
    sequence: &str,
) -> Result<Outcome, ApiError> {
    publish_event(state, req, topic, sequence, SequenceEvent::Delete).await
}

async fn publish_event(
    state: &Rc<ServerState>,
    req: &Request,
    topic: &str,
    sequence: &str,
    event: SequenceEvent,
) -> Result<Outcome, ApiError> {
    let id = sequence_id(sequence)?;
    delivery::charge(state, topic.as_bytes())?;
    let user = user(state, req).await?.map(|u| u.id);
    let message = NewMessage {
        content: Content::Text,
        data: Vec::new(),
        priority: None,
        ttl_secs: state.config().topic_default_ttl.as_secs(),
        collapse_key: None,
        extras: Vec::new(),
        sequence: Some(Sequence { id, event }),
    };
    let from = req.client_addr.map(AddrKey::of);
    let published = post_to_topic(state, topic.to_owned(), user, from, message)
        .await
        .map_err(|e| anonymous_needs_login(e, user))?;
    let body = super::publish::answer(state, topic, user, published.id, &published.record);
    Ok(Response::json(200, body).into())
}
