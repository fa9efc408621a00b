//! A user agent's `register` and `unregister` requests that arrived together, answered in
//! order with at most one store write, so that a burst of them costs the flash one commit.
//!
//! Invariants:
//! - a request that changes nothing (a channel registered again with the same key, a
//!   channel unregistered that the user agent does not have) is answered from a read and
//!   writes nothing;
//! - each request that changes something costs the user agent a token of
//!   `channel_changes_per_sec_per_uaid`; past it the request is answered 429 and changes
//!   nothing, so one WebSocket cannot wear out the flash;
//! - the others run in one write transaction, in the order they came, each checked again
//!   there (the channel limit, the user agent still known).

use std::collections::HashMap;
use std::time::Instant;

use super::protocol;
use crate::delivery::endpoints::channel_endpoint;
use crate::state::ServerState;
use crate::store::queue::Refused;
use crate::store::{self, EndpointRecord, autopush};

/// One request of the batch.
pub enum Change {
    Register {
        channel_id: String,
        /// The app server's VAPID public key (raw P-256 point), if the request bound one.
        key: Option<Vec<u8>>,
    },
    /// A `register` whose key is not a VAPID public key: answered 400, changes nothing.
    BadKey {
        channel_id: String,
    },
    Unregister {
        channel_id: String,
    },
}

impl Change {
    fn channel_id(&self) -> &str {
        match self {
            Change::Register { channel_id, .. }
            | Change::BadKey { channel_id }
            | Change::Unregister { channel_id } => channel_id,
        }
    }
}

/// What a channel is as the batch goes on: as stored, or as an earlier request of the
/// batch leaves it.
enum Seen {
    Absent,
    Stored(EndpointRecord),
    Registered(Option<Vec<u8>>),
}

/// How one request is answered.
enum Plan {
    Reply(String),
    /// The `n`th operation of the batch's write.
    Write(usize),
}

/// What the batch's write does, in order.
enum Op {
    Register(String, Option<Vec<u8>>),
    Unregister(String),
}

enum Done {
    Registered(Result<EndpointRecord, Refused>),
    Unregistered,
}

/// Answers `changes` of user agent `queue` in order: one reply text each.
pub async fn apply(
    state: &ServerState,
    queue: u64,
    base: &str,
    changes: Vec<Change>,
) -> store::Result<Vec<String>> {
    let named: Vec<String> = changes.iter().map(|c| c.channel_id().to_owned()).collect();
    let stored = state
        .store
        .read(move |t| {
            named
                .into_iter()
                .map(|id| Ok((autopush::channel(t, queue, &id)?, id)))
                .collect::<store::Result<Vec<_>>>()
        })
        .await?;
    let mut seen: HashMap<String, Seen> = stored
        .into_iter()
        .map(|(record, id)| (id, record.map_or(Seen::Absent, Seen::Stored)))
        .collect();
    let now = Instant::now();
    let charge = || state.channel_changes.take(queue, now).is_ok();
    let (plans, ops) = plan(changes, &mut seen, charge, base);
    let names: Vec<String> = ops
        .iter()
        .map(|op| match op {
            Op::Register(id, _) | Op::Unregister(id) => id.clone(),
        })
        .collect();
    let done = write(state, queue, ops).await?;
    Ok(plans
        .into_iter()
        .map(|plan| match plan {
            Plan::Reply(text) => text,
            Plan::Write(n) => reply(queue, base, &names[n], &done[n]),
        })
        .collect())
}

/// What to answer to each change: a reply now, or the outcome of one of the returned
/// operations of the batch's write. `charge` takes a change from the user agent's rate.
fn plan(
    changes: Vec<Change>,
    seen: &mut HashMap<String, Seen>,
    charge: impl Fn() -> bool,
    base: &str,
) -> (Vec<Plan>, Vec<Op>) {
    let mut ops = Vec::new();
    let mut plans = Vec::with_capacity(changes.len());
    for change in changes {
        let plan = match change {
            Change::BadKey { channel_id } => {
                Plan::Reply(protocol::register(&channel_id, 400, None))
            }
            Change::Register { channel_id, key } => {
                match seen.get(&channel_id) {
                    Some(Seen::Stored(record)) if record.key == key => Plan::Reply(
                        protocol::register(&channel_id, 200, Some(&channel_endpoint(base, record))),
                    ),
                    Some(Seen::Registered(k)) if *k == key => {
                        ops.push(Op::Register(channel_id, key));
                        Plan::Write(ops.len() - 1)
                    }
                    _ if !charge() => Plan::Reply(protocol::register(&channel_id, 429, None)),
                    _ => {
                        seen.insert(channel_id.clone(), Seen::Registered(key.clone()));
                        ops.push(Op::Register(channel_id, key));
                        Plan::Write(ops.len() - 1)
                    }
                }
            }
            Change::Unregister { channel_id } => match seen.get(&channel_id) {
                None | Some(Seen::Absent) => Plan::Reply(protocol::unregister(&channel_id, 200)),
                Some(_) if !charge() => Plan::Reply(protocol::unregister(&channel_id, 429)),
                Some(_) => {
                    seen.insert(channel_id.clone(), Seen::Absent);
                    ops.push(Op::Unregister(channel_id));
                    Plan::Write(ops.len() - 1)
                }
            },
        };
        plans.push(plan);
    }
    (plans, ops)
}

/// Runs the batch's operations in one write.
async fn write(state: &ServerState, queue: u64, ops: Vec<Op>) -> store::Result<Vec<Done>> {
    if ops.is_empty() {
        return Ok(Vec::new());
    }
    let max = state.config().limits.max_channels_per_uaid;
    state
        .store
        .write(move |t, m| {
            let mut done = Vec::with_capacity(ops.len());
            for op in ops {
                done.push(match op {
                    Op::Register(id, key) => {
                        Done::Registered(autopush::register(t, queue, &id, key, max)?)
                    }
                    Op::Unregister(id) => {
                        autopush::unregister(t, m, queue, &id)?;
                        Done::Unregistered
                    }
                });
            }
            Ok(done)
        })
        .await
}

fn reply(queue: u64, base: &str, channel_id: &str, done: &Done) -> String {
    match done {
        Done::Registered(Ok(record)) => {
            protocol::register(channel_id, 200, Some(&channel_endpoint(base, record)))
        }
        Done::Registered(Err(refused)) => {
            log::info!("autopush register refused for user agent {queue}: {refused:?}");
            let status = match refused {
                Refused::NotFound => 410,
                _ => 413,
            };
            protocol::register(channel_id, status, None)
        }
        Done::Unregistered => protocol::unregister(channel_id, 200),
    }
}
