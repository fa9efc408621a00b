//! The one way in for every front door: [`publish`] stores a message in the queue its door
//! resolved, wakes the streams of that queue, and counts it.
//!
//! A door validates its own wire format, then hands a resolver (which runs in the store
//! thread's write transaction, so a token, endpoint or topic cannot vanish between lookup
//! and insert) and a [`NewMessage`] to [`publish`]. The sender's 2xx is due only once
//! `publish` returns: the message is then on disk (or, with a TTL of 0, handed to the live
//! streams or dropped). Refusals map to one status each, the same for every door
//! (`crate::error`).
//!
//! Every message that enters a queue is bounded: each door checks its data against
//! `max_data_bytes`, and [`publish`] refuses (413) one whose other fields (`extras`: ntfy's
//! title, tags, click, icon and actions, autopush's encryption headers) are over
//! `max_fields_bytes` as stored. With the names (registration id, collapse key) a stored
//! record is at most the sum of those limits and two `max_name_bytes`.
//!
//! A message of an ntfy sequence that shows or deletes its notification replaces the
//! message of that sequence scheduled for the same queue (`store::schedule`), in the
//! transaction that stores it: ntfy's way to update or cancel a delayed message. A message
//! stored without passing here (a scheduled one, once due) is announced to the event loop
//! by [`announce`], as [`publish`] announces its own.

pub mod endpoints;
pub mod topics;
pub mod webpush;

use std::future::Future;
use std::rc::Rc;
use std::time::Instant;

use crate::store::kv::WriteTransaction;

use crate::clock::now_millis;
use crate::error::ApiError;
use crate::metrics::bump;
use crate::state::ServerState;
use crate::store::budget::Budget;
use crate::store::memory::{Memory, QueueSize};
use crate::store::queue::{self, Destination, NewMessage, Refused};
use crate::store::{self, MessageRecord, SequenceEvent, schedule};

/// What a publish did.
pub struct Published {
    /// The queue it went to.
    pub queue: u64,
    /// Its id: the queue's cursor, never shown to a sender (`crate::locations`).
    pub id: u64,
    /// The record as stored.
    pub record: Rc<MessageRecord>,
    /// False for a TTL of 0 (never stored).
    pub stored: bool,
    /// A live stream was told.
    pub live: bool,
}

/// Resolves the destination inside the write transaction.
pub trait Resolve:
    FnOnce(&WriteTransaction, &mut Memory) -> store::Result<Result<Destination, Refused>>
    + Send
    + 'static
{
}

impl<F> Resolve for F where
    F: FnOnce(&WriteTransaction, &mut Memory) -> store::Result<Result<Destination, Refused>>
        + Send
        + 'static
{
}

/// Stores `message` in the queue `resolve` names (in the write transaction), wakes that
/// queue's streams and counts it; returns once it is durable (or, with a TTL of 0,
/// handed to the live streams or dropped). A refusal stores nothing.
pub async fn publish(
    state: &ServerState,
    resolve: impl Resolve,
    message: NewMessage,
) -> Result<Published, ApiError> {
    let max_fields = state.config().limits.max_fields_bytes;
    if message.extras.len() > max_fields {
        return Err(ApiError::TooLarge(format!(
            "a message's fields (title, tags, click, icon and actions; Web Push encryption \
             headers) are at most {max_fields} bytes together as stored, not {}",
            message.extras.len()
        )));
    }
    let now = now_millis();
    let budget = store_budget(state);
    let replaces = message
        .sequence
        .as_ref()
        .filter(|s| matches!(s.event, SequenceEvent::Message | SequenceEvent::Delete))
        .map(|s| s.id.clone());
    let outcome = state
        .store
        .write(move |t, m| match resolve(t, m)? {
            Ok(to) => {
                let queue = to.queue;
                let accepted = queue::enqueue(t, m, to, message, &budget, now)?;
                if let (Ok(_), Some(sequence_id)) = (&accepted, &replaces) {
                    schedule::cancel(t, m, queue, sequence_id)?;
                }
                Ok(accepted)
            }
            Err(refused) => Ok(Err(refused)),
        })
        .await?;
    let accepted = outcome.map_err(ApiError::from)?;
    Ok(announce(
        state,
        accepted.queue,
        accepted.id,
        accepted.record,
        accepted.stored,
    ))
}

/// Tells the event loop of a message the store took (committed, or with a TTL of 0 not
/// stored): the live streams get one of a TTL of 0 here (stored ones reach them through the
/// store's events, `hub`), and it is counted and logged.
pub fn announce(
    state: &ServerState,
    queue: u64,
    id: u64,
    record: MessageRecord,
    stored: bool,
) -> Published {
    let record = Rc::new(record);
    let live = if stored {
        state.hub.has_streams(queue)
    } else {
        state.hub.deliver_now(queue, id, record.clone())
    };
    if live {
        bump(&state.counters.delivered_live);
    }
    log::debug!(
        "message {id} for queue {queue}: {}",
        match (stored, live) {
            (true, true) => "stored, streamed",
            (true, false) => "stored",
            (false, true) => "streamed only (ttl 0)",
            (false, false) => "dropped (ttl 0, nobody listening)",
        }
    );
    Published {
        queue,
        id,
        record,
        stored,
        live,
    }
}

/// Runs a door's whole post handler and counts its outcome: accepted, refused (4xx) or
/// failed (5xx).
pub async fn counted<T>(
    state: &ServerState,
    post: impl Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    let outcome = post.await;
    let c = &state.counters;
    bump(match &outcome {
        Ok(_) => &c.posts_accepted,
        Err(e) if e.status() < 500 => &c.posts_refused,
        Err(_) => &c.posts_failed,
    });
    outcome
}

/// Charges one post to the sender's rate (keyed by a digest of the token, endpoint or
/// topic it posts to), so one noisy app server cannot flood a device.
pub fn charge(state: &ServerState, address: &[u8]) -> Result<(), ApiError> {
    let key: [u8; 16] = crate::secret::digest(address)[..16]
        .try_into()
        .expect("a digest is 32 bytes");
    state
        .post_rate
        .take(key, Instant::now())
        .map_err(|wait| ApiError::TooMany {
            detail: "too many messages for this address; slow down".into(),
            retry_after_secs: wait.as_secs() + 1,
        })
}

/// The store's budget as configured now.
pub fn store_budget(state: &ServerState) -> Budget {
    let limits = &state.config().limits;
    Budget {
        max_bytes: limits.max_store_bytes,
        max_anonymous_bytes: limits.max_store_bytes / 100 * limits.anonymous_store_share_percent,
        max_uaid_bytes: limits.max_queued_bytes_all_uaids,
    }
}

/// The queue limit of a device's queue.
pub fn client_limit(state: &ServerState) -> QueueSize {
    let limits = &state.config().limits;
    QueueSize {
        messages: limits.max_queued_per_client,
        bytes: limits.max_queued_bytes_per_client,
    }
}
