//! Topics (the ntfy front door's addresses): a name, a queue, an owner and grants.
//!
//! A topic belongs to the user who first uses it; others need a grant. An endpoint topic
//! (see [`crate::names::is_endpoint_topic`]) may be created by an anonymous app server
//! posting to it before its phone ever connected: it then belongs to nobody until the first
//! user subscribes, and counts against the cap on unclaimed topics instead of a user's.
//! Invariants: `topic_by_owner` lists exactly the topics whose record names that owner; a
//! topic's queue id is never reused (it comes from `next_topic_id`); a refusal writes
//! nothing; every change that narrows who may read a topic records it
//! ([`Memory::revoke`]): a grant taken back or narrowed to writing, a claim (anonymous
//! readers lose the topic), a deletion. A deleted user's grants go with the user's own
//! revocation (`accounts::delete_user`). A topic is deleted with its messages and the
//! messages scheduled for it (`store::schedule`); one with a scheduled message is never
//! stale.

use crate::store::kv::{ReadableTable, WriteTransaction};

use super::budget::is_family_topic;
use super::memory::Memory;
use super::queue::{self, Refused};
use super::schedule;
use super::tables::{
    NEXT_TOPIC_ID, TOPIC_BY_OWNER, TOPIC_QUEUES, TOPICS, Tables, USERS, damaged, next_id,
};
use super::{Grant, Result, Revocation, TopicRecord};
use crate::names::is_endpoint_topic;

/// Who asks for a topic, and what for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Access {
    /// Reading (subscribing to) the topic.
    Read,
    /// Publishing to the topic.
    Write,
}

/// What an anonymous request may do with topics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anonymous {
    /// Nothing: every request names a user.
    None,
    /// Publish to endpoint topics (their unguessable name is the capability).
    EndpointWrite,
    /// Also read and publish topics that belong to nobody, as on an open ntfy server.
    ReadWrite,
}

/// The configured rules for opening topics.
#[derive(Clone, Copy, Debug)]
pub struct Rules {
    /// What requests without a user may do.
    pub anonymous: Anonymous,
    /// Topics a user may own.
    pub max_topics_per_user: usize,
    /// Topics that belong to nobody, at most.
    pub max_unclaimed_topics: usize,
}

/// The topic `name`, if there is one.
pub fn get(txn: &impl Tables, name: &str) -> Result<Option<TopicRecord>> {
    match txn.bytes(TOPICS)?.get(name.as_bytes())? {
        Some(bytes) => TopicRecord::decode(bytes.value())
            .map(Some)
            .ok_or_else(|| damaged("topic", name)),
        None => Ok(None),
    }
}

/// Calls `f` with the name of every topic of `owner` (0: the unclaimed ones), in order.
fn each_owned(txn: &impl Tables, owner: u64, mut f: impl FnMut(&str)) -> Result<()> {
    let index = txn.bytes(TOPIC_BY_OWNER)?;
    for entry in index.range((owner, "")..)? {
        let (key, _) = entry?;
        let (o, name) = key.value();
        if o != owner {
            break;
        }
        f(name);
    }
    Ok(())
}

fn count_owned(txn: &impl Tables, owner: u64) -> Result<usize> {
    let mut n = 0;
    each_owned(txn, owner, |_| n += 1)?;
    Ok(n)
}

/// Topics that belong to `owner` (0: the unclaimed ones).
pub fn owned_by(txn: &impl Tables, owner: u64) -> Result<Vec<String>> {
    let mut out = Vec::new();
    each_owned(txn, owner, |name| out.push(name.to_owned()))?;
    Ok(out)
}

/// Every topic with its record, in name order.
pub fn list(txn: &impl Tables) -> Result<Vec<(String, TopicRecord)>> {
    let mut out = Vec::new();
    for entry in txn.bytes(TOPICS)?.iter()? {
        let (name, bytes) = entry?;
        let name = String::from_utf8_lossy(name.value()).into_owned();
        let record = TopicRecord::decode(bytes.value()).ok_or_else(|| damaged("topic", &name))?;
        out.push((name, record));
    }
    Ok(out)
}

fn put(txn: &WriteTransaction, name: &str, record: &TopicRecord) -> Result<()> {
    txn.open_table(TOPICS)?
        .insert(name.as_bytes(), record.encode().as_slice())?;
    Ok(())
}

/// Whether `user` (None: anonymous) may `access` a topic with this record.
pub fn allowed(record: &TopicRecord, user: Option<u64>, access: Access, rules: &Rules) -> bool {
    match user {
        Some(u) => user_may(record, u, access),
        None => record.owner == 0 && rules.anonymous == Anonymous::ReadWrite,
    }
}

/// Whether user `u` owns the topic or was granted `access` to it.
fn user_may(record: &TopicRecord, u: u64, access: Access) -> bool {
    record.owner == u
        || record.grants.iter().any(|g| {
            g.user_id == u
                && (if access == Access::Read {
                    g.read
                } else {
                    g.write
                })
        })
}

/// The topic `name` for `user` (None: anonymous), created or claimed as the rules allow.
/// The caller checked the name's syntax.
pub fn open(
    txn: &WriteTransaction,
    memory: &mut Memory,
    name: &str,
    user: Option<u64>,
    access: Access,
    rules: &Rules,
    now: u64,
) -> Result<std::result::Result<TopicRecord, Refused>> {
    if let Some(u) = user
        && txn.open_table(USERS)?.get(u)?.is_none()
    {
        // A login checked just before its user was deleted: it must not create, claim or
        // follow a topic for a user that is gone.
        return Ok(Err(Refused::Forbidden("this user no longer exists".into())));
    }
    let anonymous_endpoint_write = user.is_none()
        && is_endpoint_topic(name)
        && access == Access::Write
        && rules.anonymous != Anonymous::None;
    let existing = get(txn, name)?;
    if let Some(mut record) = existing {
        if anonymous_endpoint_write || allowed(&record, user, access, rules) {
            return Ok(Ok(record));
        }
        if let (Some(u), 0) = (user, record.owner) {
            if count_owned(txn, u)? >= rules.max_topics_per_user {
                return Ok(Err(too_many_topics(rules)));
            }
            let mut index = txn.open_table(TOPIC_BY_OWNER)?;
            index.remove((0, name))?;
            index.insert((u, name), [].as_slice())?;
            drop(index);
            record.owner = u;
            put(txn, name, &record)?;
            memory.revoke(Revocation::Reader {
                queue: record.queue,
                user: None,
            });
            memory.topic_claimed(txn, record.queue, is_family_topic(name, &record))?;
            return Ok(Ok(record));
        }
        return Ok(Err(Refused::Forbidden(match user {
            Some(_) => format!("topic {name:?} belongs to another user"),
            None => format!("topic {name:?} needs a user name and password"),
        })));
    }
    let owner = match user {
        Some(u) => {
            if count_owned(txn, u)? >= rules.max_topics_per_user {
                return Ok(Err(too_many_topics(rules)));
            }
            u
        }
        None if anonymous_endpoint_write || rules.anonymous == Anonymous::ReadWrite => {
            if count_owned(txn, 0)? >= rules.max_unclaimed_topics {
                return Ok(Err(Refused::Crowded(format!(
                    "the server holds {} topics that no user has subscribed to yet; try again later",
                    rules.max_unclaimed_topics
                ))));
            }
            0
        }
        None => {
            return Ok(Err(Refused::Forbidden(format!(
                "topic {name:?} needs a user name and password"
            ))));
        }
    };
    let record = TopicRecord {
        queue: TOPIC_QUEUES + next_id(txn, NEXT_TOPIC_ID)?,
        owner,
        created_at: now,
        grants: Vec::new(),
    };
    put(txn, name, &record)?;
    txn.open_table(TOPIC_BY_OWNER)?
        .insert((owner, name), [].as_slice())?;
    memory.topic_created(record.queue, is_family_topic(name, &record));
    Ok(Ok(record))
}

fn too_many_topics(rules: &Rules) -> Refused {
    Refused::Limit(format!(
        "a user may have at most {} topics",
        rules.max_topics_per_user
    ))
}

/// Lets `user_id` read and/or write a topic (both false: takes the grant back).
pub fn grant(
    txn: &WriteTransaction,
    memory: &mut Memory,
    name: &str,
    grant: Grant,
) -> Result<Option<TopicRecord>> {
    let Some(mut record) = get(txn, name)? else {
        return Ok(None);
    };
    let user = grant.user_id;
    record.grants.retain(|g| g.user_id != user);
    if grant.read || grant.write {
        record.grants.push(grant);
    }
    put(txn, name, &record)?;
    if !user_may(&record, user, Access::Read) {
        memory.revoke(Revocation::Reader {
            queue: record.queue,
            user: Some(user),
        });
    }
    Ok(Some(record))
}

/// Deletes a topic with its queued messages; returns its queue id.
pub fn delete(txn: &WriteTransaction, memory: &mut Memory, name: &str) -> Result<Option<u64>> {
    let Some(record) = get(txn, name)? else {
        return Ok(None);
    };
    memory.revoke(Revocation::Queue(record.queue));
    queue::drop_messages(txn, memory, record.queue, None)?;
    schedule::drop_queue(txn, memory, record.queue)?;
    txn.open_table(TOPICS)?.remove(name.as_bytes())?;
    txn.open_table(TOPIC_BY_OWNER)?
        .remove((record.owner, name))?;
    memory.topic_deleted(record.queue);
    Ok(Some(record.queue))
}

/// Deletes the topics of a user that is deleted, and takes its grants back elsewhere.
pub fn forget_user(txn: &WriteTransaction, memory: &mut Memory, user_id: u64) -> Result<()> {
    for name in owned_by(txn, user_id)? {
        delete(txn, memory, &name)?;
    }
    for (name, mut record) in list(txn)? {
        if record.grants.iter().any(|g| g.user_id == user_id) {
            record.grants.retain(|g| g.user_id != user_id);
            put(txn, &name, &record)?;
        }
    }
    Ok(())
}

/// Unclaimed topics older than `max_age_ms` whose queue is empty and that have nothing
/// scheduled.
pub fn stale_unclaimed(txn: &impl Tables, now: u64, max_age_ms: u64) -> Result<Vec<String>> {
    let mut stale = Vec::new();
    for name in owned_by(txn, 0)? {
        if let Some(record) = get(txn, &name)?
            && record.created_at.saturating_add(max_age_ms) <= now
            && queue::is_empty(txn, record.queue)?
            && !schedule::has_pending(txn, record.queue)?
        {
            stale.push(name);
        }
    }
    Ok(stale)
}

/// Removes the [`stale_unclaimed`] topics: an app server that posted to an endpoint no
/// phone ever subscribed to leaves nothing behind.
pub fn sweep_unclaimed(
    txn: &WriteTransaction,
    memory: &mut Memory,
    now: u64,
    max_age_ms: u64,
) -> Result<usize> {
    let stale = stale_unclaimed(txn, now, max_age_ms)?;
    for name in &stale {
        delete(txn, memory, name)?;
    }
    Ok(stale.len())
}

#[cfg(test)]
mod tests {
    use super::super::accounts;
    use super::super::tables::in_memory;
    use super::*;

    const RULES: Rules = Rules {
        anonymous: Anonymous::ReadWrite,
        max_topics_per_user: 8,
        max_unclaimed_topics: 8,
    };

    #[test]
    fn every_change_that_narrows_who_reads_a_topic_is_recorded() {
        let db = in_memory();
        let t = db.begin_write().unwrap();
        let mut m = Memory::default();
        let user = |name| {
            let (id, _) = accounts::create_user(&t, name, "hash".into(), false)
                .unwrap()
                .unwrap();
            id
        };
        let (alice, bob) = (user("alice"), user("bob"));
        let open = |m: &mut Memory, name, who| {
            open(&t, m, name, who, Access::Read, &RULES, 0)
                .unwrap()
                .unwrap()
                .queue
        };
        let grant = |m: &mut Memory, read, write| {
            let g = Grant {
                user_id: bob,
                read,
                write,
            };
            grant(&t, m, "shared", g).unwrap().unwrap();
        };
        let shared = open(&mut m, "shared", Some(alice));
        let public = open(&mut m, "public", None);
        assert!(m.take_revoked().is_empty(), "creating takes nothing away");

        grant(&mut m, true, false);
        grant(&mut m, true, true);
        assert!(
            m.take_revoked().is_empty(),
            "a wider grant takes nothing away"
        );
        grant(&mut m, false, true);
        grant(&mut m, false, false);
        let bob_loses = Revocation::Reader {
            queue: shared,
            user: Some(bob),
        };
        assert_eq!(m.take_revoked(), [bob_loses, bob_loses]);

        assert_eq!(open(&mut m, "public", Some(bob)), public);
        let anonymous_loses = Revocation::Reader {
            queue: public,
            user: None,
        };
        assert_eq!(m.take_revoked(), [anonymous_loses], "a claim");
        delete(&t, &mut m, "public").unwrap();
        assert_eq!(m.take_revoked(), [Revocation::Queue(public)]);
    }
}
