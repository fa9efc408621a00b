//! Publishing to a topic (ntfy's topics, endpoint topics among them): the rules that open
//! or claim a topic, the resolver that creates one only when the message fits, and
//! scheduling a message for a topic (ntfy's delayed delivery, `store::schedule`), which
//! opens the topic as a publish does.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::delivery::{self, Published};
use crate::error::ApiError;
use crate::limits::AddrKey;
use crate::names::is_endpoint_topic;
use crate::state::ServerState;
use crate::store::Sender;
use crate::store::budget::message_bytes;
use crate::store::memory::QueueSize;
use crate::store::queue::{self, Destination, NewMessage, Refused};
use crate::store::schedule::{self, Pending, Scheduled};
use crate::store::topics::{self, Access, Rules};

/// The topic rules as configured now.
pub fn rules(state: &ServerState) -> Rules {
    let config = state.config();
    Rules {
        anonymous: config.anonymous,
        max_topics_per_user: config.limits.max_topics_per_user,
        max_unclaimed_topics: config.limits.max_unclaimed_topics,
    }
}

/// Publishes `message` to the topic `name` for `user` (None: anonymous, from `from`).
///
/// A topic an anonymous post creates belongs to nobody until a user subscribes: while it
/// is an endpoint topic of nobody's, its queue holds only `max_queued_per_unclaimed_topic`
/// messages; each address may create only `new_unclaimed_topics_per_hour_per_addr` of
/// them; and one is created only if the message fits the store's share for anonymous
/// queues and its queue, so that a refused post leaves no topic behind.
pub async fn post_to_topic(
    state: &ServerState,
    name: String,
    user: Option<u64>,
    from: Option<AddrKey>,
    message: NewMessage,
) -> Result<Published, ApiError> {
    let creator = Creator::take(state, user, from);
    let resolve = topic_queue(
        state,
        name,
        user,
        creator.may_create,
        &message,
        creator.created.clone(),
    );
    let outcome = delivery::publish(state, resolve, message).await;
    creator.settle(state);
    outcome
}

/// An anonymous sender's right to create a topic by posting, taken from its address's
/// budget (`new_unclaimed_topics_per_hour_per_addr`) and given back unless a topic was made.
struct Creator {
    addr: Option<AddrKey>,
    may_create: bool,
    created: Arc<AtomicBool>,
}

impl Creator {
    fn take(state: &ServerState, user: Option<u64>, from: Option<AddrKey>) -> Creator {
        let addr = from.filter(|_| user.is_none());
        let may_create = match addr {
            Some(addr) => state
                .new_unclaimed_topics
                .take(addr, std::time::Instant::now())
                .is_ok(),
            None => true,
        };
        Creator {
            addr,
            may_create,
            created: Arc::new(AtomicBool::new(false)),
        }
    }

    fn settle(self, state: &ServerState) {
        if let Some(addr) = self.addr
            && self.may_create
            && !self.created.load(Ordering::Relaxed)
        {
            state.new_unclaimed_topics.give_back(addr);
        }
    }
}

/// Schedules `message` for the topic `name`, due at `due` (Unix milliseconds), for `user`
/// (None: anonymous, from `from`): the topic is opened for writing as [`post_to_topic`]
/// opens it, and the message waits in the store (`store::schedule`) within its sender's
/// limit (`max_scheduled_per_user`, or `max_scheduled_per_addr` without a user), its
/// queue's room and the store's budget. `name_slot` names a slot as the door names message
/// ids. Wakes the task that sends scheduled messages if this one is the earliest.
pub async fn schedule_to_topic(
    state: &ServerState,
    name: String,
    user: Option<u64>,
    from: Option<AddrKey>,
    message: NewMessage,
    due: u64,
    name_slot: fn(u64) -> String,
) -> Result<Scheduled, ApiError> {
    let limits = &state.config().limits;
    let (sender, max) = match (user, from) {
        (Some(id), _) => (Sender::User(id), limits.max_scheduled_per_user),
        (None, Some(addr)) => (
            Sender::Address(addr.octets()),
            limits.max_scheduled_per_addr,
        ),
        (None, None) => (Sender::Host, limits.max_scheduled_per_addr),
    };
    let creator = Creator::take(state, user, from);
    let resolve = topic_queue(
        state,
        name.clone(),
        user,
        creator.may_create,
        &message,
        creator.created.clone(),
    );
    let budget = delivery::store_budget(state);
    let pending = Pending {
        topic: name,
        sender,
        due,
        message,
    };
    let outcome = state
        .store
        .write(move |t, m| match resolve(t, m)? {
            Ok(to) => schedule::add(t, m, &to, pending, max, &budget, name_slot),
            Err(refused) => Ok(Err(refused)),
        })
        .await;
    creator.settle(state);
    let scheduled = outcome?.map_err(ApiError::from)?;
    state.scheduled.earlier(due);
    log::debug!(
        "message scheduled for {} ms from now (slot {})",
        due.saturating_sub(crate::clock::now_millis()),
        scheduled.slot
    );
    Ok(scheduled)
}

/// The resolver of a publish to `name`: the topic's queue, opened for writing (see
/// [`post_to_topic`]); sets `created` when it creates the topic.
pub fn topic_queue(
    state: &ServerState,
    name: String,
    user: Option<u64>,
    may_create: bool,
    message: &NewMessage,
    created: Arc<AtomicBool>,
) -> impl delivery::Resolve {
    let rules = rules(state);
    let config = state.config();
    let limits = &config.limits;
    let limit = QueueSize {
        messages: limits.max_queued_per_topic,
        bytes: limits.max_queued_bytes_per_topic,
    };
    let unclaimed = QueueSize {
        messages: limits.max_queued_per_unclaimed_topic,
        bytes: limits.max_queued_bytes_per_unclaimed_topic,
    };
    let per_hour = limits.new_unclaimed_topics_per_hour_per_addr;
    let record_len = match message.ttl_secs {
        0 => 0,
        _ => queue::stored_len(message, "") as u64,
    };
    let stored = if record_len == 0 {
        0
    } else {
        message_bytes(record_len as usize)
    };
    let budget = delivery::store_budget(state);
    let now = crate::clock::now_millis();
    move |t, m| {
        let endpoint = is_endpoint_topic(&name);
        let new = topics::get(t, &name)?.is_none();
        if new && user.is_none() {
            if !may_create {
                return Ok(Err(Refused::Crowded(format!(
                    "this address has created {per_hour} topics in the last hour; try again later"
                ))));
            }
            if endpoint && record_len > unclaimed.bytes {
                return Ok(Err(Refused::QueueFull(unclaimed)));
            }
            if let Some(overrun) = m.check_budget(t, None, 0, stored, &budget)? {
                return Ok(Err(Refused::NoRoom(overrun)));
            }
        }
        let opened = topics::open(t, m, &name, user, Access::Write, &rules, now)?;
        Ok(opened.map(|record| {
            created.store(new, Ordering::Relaxed);
            Destination {
                queue: record.queue,
                registration_id: String::new(),
                limit: if record.owner == 0 && endpoint {
                    unclaimed
                } else {
                    limit
                },
            }
        }))
    }
}
