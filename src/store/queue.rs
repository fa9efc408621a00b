//! The delivery rules, in one place: enqueue, collapse, confirm, expire, replay.
//!
//! A queue is addressed by its id only: the front door resolves a token, topic or endpoint
//! to a [`Destination`] inside the same write transaction, and [`enqueue`] knows nothing of
//! how it was addressed. Every stream replays with [`backlog`]; an OpenPush stream confirms
//! with [`confirm`]. Invariants kept here:
//! - a message is stored with its collapse entry when it has a key; the two are removed
//!   together, and the store's in-memory queue length follows both (see `store::memory`);
//! - an expired message is never returned by [`backlog`], even before the sweep removes it;
//! - a full queue, or a post past the store's budget or its share for anonymous queues
//!   (see `store::budget`), refuses the new message: nothing already acknowledged is
//!   dropped to make room, and a collapse replacement counts only for what it adds;
//! - a message with a collapse key (Web Push `Topic`) replaces the undelivered one with the
//!   same key, also when it has a TTL of 0 and is itself never stored;
//! - a refusal writes nothing.
//!
//! `now` is always Unix milliseconds; expiry is kept to the millisecond so that a short
//! TTL is not cut short by rounding. A post writes one B-tree (`messages`), two with a
//! collapse key: expiry is found by the sweep reading the queue, not through an index that
//! every post would have to write.

use crate::store::kv::{ReadableTable, Table, WriteTransaction};

use super::budget::{Budget, Overrun, message_bytes};
use super::memory::{Memory, QueueSize};
use super::tables::{COLLAPSE, MESSAGES, Tables, damaged};
use super::{Content, MessageRecord, Priority, Result, Sequence, Unsettled};

/// Where a message goes, as the front door resolved it.
#[derive(Clone, Debug)]
pub struct Destination {
    /// The queue.
    pub queue: u64,
    /// The OpenPush application it is for; empty for a topic.
    pub registration_id: String,
    /// The queue's limit.
    pub limit: QueueSize,
}

/// A message as a door accepted it, before it has an id.
pub struct NewMessage {
    /// How the data is delivered: JSON, text or opaque bytes.
    pub content: Content,
    /// Already checked against its size limit.
    pub data: Vec<u8>,
    /// `normal` or `high` (OpenPush), an `Urgency` (Web Push), a level (ntfy).
    pub priority: Option<Priority>,
    /// Seconds it is kept undelivered; 0: delivered now to a live stream or not at all.
    pub ttl_secs: u64,
    /// Replaces an undelivered message of the same queue and application with this key.
    pub collapse_key: Option<String>,
    /// The door's other fields, as JSON members (ntfy's title, tags …; Web Push encryption
    /// headers).
    pub extras: Vec<u8>,
    /// The ntfy sequence it belongs to, and what it does there; `None` for the others.
    pub sequence: Option<Sequence>,
}

impl NewMessage {
    /// A message of `content` with `data` kept `ttl_secs`, and nothing else: no priority,
    /// collapse key, fields or sequence.
    pub fn new(content: Content, data: Vec<u8>, ttl_secs: u64) -> NewMessage {
        NewMessage {
            content,
            data,
            priority: None,
            ttl_secs,
            collapse_key: None,
            extras: Vec::new(),
            sequence: None,
        }
    }
}

/// A message the queue took.
#[derive(Debug)]
pub struct Enqueued {
    /// Its queue.
    pub queue: u64,
    /// Its id.
    pub id: u64,
    /// The record as stored.
    pub record: MessageRecord,
    /// False for a TTL of 0: delivered now to a live stream or not at all.
    pub stored: bool,
}

/// Why a message was not accepted. Nothing was written.
#[derive(Debug, PartialEq)]
pub enum Refused {
    /// No such token, endpoint or topic.
    NotFound,
    /// The sender may not post there.
    Forbidden(String),
    /// A count limit of the sender's own (topics per user): retrying will not help.
    Limit(String),
    /// A server-wide count limit (unclaimed topics): retrying later may help.
    Crowded(String),
    /// The queue is at its limit.
    QueueFull(QueueSize),
    /// The store's budget, or its share for anonymous queues, is used up.
    NoRoom(Overrun),
}

struct QueueTables<'t, 'm> {
    memory: &'m mut Memory,
    messages: Table<'t, (u64, u64), &'static [u8]>,
    collapse: Table<'t, (u64, &'static str, &'static str), u64>,
}

impl<'t, 'm> QueueTables<'t, 'm> {
    /// The undelivered message `record` replaces: the one of its queue and application with
    /// its collapse key.
    fn replaced_by(
        &mut self,
        queue: u64,
        record: &MessageRecord,
    ) -> Result<Option<(u64, MessageRecord)>> {
        let Some(key) = &record.collapse_key else {
            return Ok(None);
        };
        let old = self
            .collapse
            .get((queue, record.registration_id.as_str(), key.as_str()))?
            .map(|v| v.value());
        match old {
            Some(old) => Ok(self.get(queue, old)?.map(|r| (old, r))),
            None => Ok(None),
        }
    }

    /// Whether `record` fits its queue's `limit` and the store's `budget`, in place of
    /// `old` if it replaces one.
    fn fits(
        &mut self,
        txn: &WriteTransaction,
        queue: u64,
        record: &MessageRecord,
        old: Option<&MessageRecord>,
        limit: QueueSize,
        budget: &Budget,
    ) -> Result<std::result::Result<(), Refused>> {
        let size = self.size(queue)?;
        let freed = match old {
            Some(old) => QueueSize {
                messages: 1,
                bytes: old.encode().len() as u64,
            },
            None => QueueSize::default(),
        };
        let encoded_len = record.encode().len();
        let messages = size.messages - freed.messages + 1;
        let bytes = size.bytes - freed.bytes + encoded_len as u64;
        if messages > limit.messages || bytes > limit.bytes {
            return Ok(Err(Refused::QueueFull(limit)));
        }
        let freed_bytes = match freed.messages {
            0 => 0,
            _ => message_bytes(freed.bytes as usize),
        };
        let usage = self.memory.usage(txn)?;
        match usage.check(Some(queue), freed_bytes, message_bytes(encoded_len), budget) {
            Some(overrun) => Ok(Err(Refused::NoRoom(overrun))),
            None => Ok(Ok(())),
        }
    }

    fn open(txn: &'t WriteTransaction, memory: &'m mut Memory) -> Result<Self> {
        Ok(QueueTables {
            memory,
            messages: txn.open_table(MESSAGES)?,
            collapse: txn.open_table(COLLAPSE)?,
        })
    }

    fn get(&self, queue: u64, id: u64) -> Result<Option<MessageRecord>> {
        match self.messages.get((queue, id))? {
            Some(bytes) => MessageRecord::decode(bytes.value())
                .map(Some)
                .ok_or_else(|| damaged("message", id)),
            None => Ok(None),
        }
    }

    fn insert(&mut self, queue: u64, id: u64, record: &MessageRecord) -> Result<()> {
        self.size(queue)?;
        let encoded = record.encode();
        self.messages.insert((queue, id), encoded.as_slice())?;
        self.memory.adjust_queue_size(queue, encoded.len(), true);
        if let Some(key) = &record.collapse_key {
            self.collapse
                .insert((queue, record.registration_id.as_str(), key.as_str()), id)?;
        }
        Ok(())
    }

    fn remove(&mut self, queue: u64, id: u64, record: &MessageRecord) -> Result<()> {
        self.size(queue)?;
        if let Some(old) = self.messages.remove((queue, id))? {
            self.memory
                .adjust_queue_size(queue, old.value().len(), false);
        }
        if let Some(key) = &record.collapse_key {
            let slot = (queue, record.registration_id.as_str(), key.as_str());
            if self.collapse.get(slot)?.map(|v| v.value()) == Some(id) {
                self.collapse.remove(slot)?;
            }
        }
        Ok(())
    }

    fn ids_of(&self, queue: u64, up_to: u64) -> Result<Vec<(u64, MessageRecord)>> {
        let mut out = Vec::new();
        for entry in self.messages.range((queue, 0)..=(queue, up_to))? {
            let (key, bytes) = entry?;
            let id = key.value().1;
            let record =
                MessageRecord::decode(bytes.value()).ok_or_else(|| damaged("message", id))?;
            out.push((id, record));
        }
        Ok(out)
    }

    /// The size of a queue, loaded once per queue (read before any change of this
    /// transaction touches it).
    fn size(&mut self, queue: u64) -> Result<QueueSize> {
        self.memory.queue_size(&self.messages, queue)
    }
}

/// The length of the record `msg` is stored as, for an application `registration_id`.
pub fn stored_len(msg: &NewMessage, registration_id: &str) -> usize {
    let collapse = msg.collapse_key.as_ref().map_or(0, |k| 4 + k.len());
    let sequence = msg.sequence.as_ref().map_or(0, |s| 1 + 4 + s.id.len());
    sequence
        + 1
        + 8
        + 8
        + 1
        + 1
        + 4
        + registration_id.len()
        + 8
        + collapse
        + 4
        + msg.extras.len()
        + 4
        + msg.data.len()
}

/// Accepts a message for `to`, within the queue's limit and the store's `budget`.
pub fn enqueue(
    txn: &WriteTransaction,
    memory: &mut Memory,
    to: Destination,
    msg: NewMessage,
    budget: &Budget,
    now: u64,
) -> Result<std::result::Result<Enqueued, Refused>> {
    memory.usage(txn)?;
    let queue = to.queue;
    let record = MessageRecord {
        expires_at: now.saturating_add(msg.ttl_secs.saturating_mul(1000)),
        posted_at: now,
        content: msg.content,
        priority: msg.priority,
        registration_id: to.registration_id,
        collapse_key: msg.collapse_key,
        extras: msg.extras,
        data: msg.data,
        sequence: msg.sequence,
    };
    let mut tables = QueueTables::open(txn, memory)?;
    let replaced = tables.replaced_by(queue, &record)?;
    if msg.ttl_secs == 0 {
        if let Some((old, old_record)) = replaced {
            tables.remove(queue, old, &old_record)?;
        }
        let id = tables.memory.next_message_id(txn)?;
        tables.memory.pass_on(queue, id, &record);
        return Ok(Ok(Enqueued {
            queue,
            id,
            record,
            stored: false,
        }));
    }
    let old = replaced.as_ref().map(|(_, old)| old);
    if let Err(refused) = tables.fits(txn, queue, &record, old, to.limit, budget)? {
        return Ok(Err(refused));
    }
    if let Some((old, old_record)) = replaced {
        tables.remove(queue, old, &old_record)?;
    }
    let id = tables.memory.next_message_id(txn)?;
    tables.insert(queue, id, &record)?;
    tables.memory.stage(queue, id, &record);
    Ok(Ok(Enqueued {
        queue,
        id,
        record,
        stored: true,
    }))
}

/// Stores `record`, accepted earlier (a scheduled message now due, `store::schedule`), in
/// `queue` under a new id, whatever the queue's limit and the store's budget say now: it
/// was checked against them when it was accepted, and the budget counts it already. It has
/// no collapse key. Returns its id.
pub fn place(
    txn: &WriteTransaction,
    memory: &mut Memory,
    queue: u64,
    record: &MessageRecord,
) -> Result<u64> {
    debug_assert!(
        record.collapse_key.is_none(),
        "placed messages never collapse"
    );
    memory.usage(txn)?;
    let mut tables = QueueTables::open(txn, memory)?;
    let id = tables.memory.next_message_id(txn)?;
    tables.insert(queue, id, record)?;
    tables.memory.stage(queue, id, record);
    Ok(id)
}

/// The device has everything up to `up_to`: those messages leave its queue.
pub fn confirm(
    txn: &WriteTransaction,
    memory: &mut Memory,
    queue: u64,
    up_to: u64,
) -> Result<usize> {
    let mut tables = QueueTables::open(txn, memory)?;
    let done = tables.ids_of(queue, up_to)?;
    for (id, record) in &done {
        tables.remove(queue, *id, record)?;
    }
    Ok(done.len())
}

/// The device has message `id` of application `registration_id` (an autopush ack): it
/// leaves the queue. False if no such message is queued.
pub fn acknowledge(
    txn: &WriteTransaction,
    memory: &mut Memory,
    queue: u64,
    id: u64,
    registration_id: &str,
) -> Result<bool> {
    let mut tables = QueueTables::open(txn, memory)?;
    match tables.get(queue, id)? {
        Some(record) if record.registration_id == registration_id => {
            tables.remove(queue, id, &record)?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Removes a queue's messages, or only those of one application.
pub fn drop_messages(
    txn: &WriteTransaction,
    memory: &mut Memory,
    queue: u64,
    registration_id: Option<&str>,
) -> Result<usize> {
    let mut tables = QueueTables::open(txn, memory)?;
    let mut n = 0;
    for (id, record) in tables.ids_of(queue, u64::MAX)? {
        if registration_id.is_none_or(|r| r == record.registration_id) {
            tables.remove(queue, id, &record)?;
            n += 1;
        }
    }
    Ok(n)
}

/// Whether a queue holds any message (expired ones included).
pub fn is_empty(txn: &impl Tables, queue: u64) -> Result<bool> {
    let messages = txn.bytes(MESSAGES)?;
    Ok(messages
        .range((queue, 0)..=(queue, u64::MAX))?
        .next()
        .is_none())
}

/// The messages a queue holds (expired ones not yet swept included), counted up to `max`.
pub fn stored(txn: &impl Tables, queue: u64, max: usize) -> Result<usize> {
    let messages = txn.bytes(MESSAGES)?;
    let mut n = 0;
    for entry in messages.range((queue, 0)..=(queue, u64::MAX))?.take(max) {
        entry?;
        n += 1;
    }
    Ok(n)
}

/// Up to `max` messages whose TTL has ended (or whose record does not decode), as
/// (queue, id). Reads the whole store (the expiry time leads each record, so only a few
/// bytes of each are decoded).
pub fn expired(txn: &impl Tables, now: u64, max: usize) -> Result<Vec<(u64, u64)>> {
    let mut due = Vec::new();
    for entry in txn.bytes(MESSAGES)?.iter()? {
        if due.len() >= max {
            break;
        }
        let (key, bytes) = entry?;
        match MessageRecord::expires_at(bytes.value()) {
            Some(at) if at > now => {}
            _ => due.push(key.value()),
        }
    }
    Ok(due)
}

/// Removes up to `max` messages whose TTL has ended ([`expired`]); returns how many.
pub fn sweep(txn: &WriteTransaction, memory: &mut Memory, now: u64, max: usize) -> Result<usize> {
    let due = expired(txn, now, max)?;
    let mut tables = QueueTables::open(txn, memory)?;
    for &(queue, id) in &due {
        match tables.get(queue, id) {
            Ok(Some(record)) => tables.remove(queue, id, &record)?,
            Ok(None) => {}
            Err(_) => {
                log::error!("message {id} does not decode; removing it");
                tables.size(queue)?;
                if let Some(old) = tables.messages.remove((queue, id))? {
                    let len = old.value().len();
                    drop(old);
                    tables.memory.adjust_queue_size(queue, len, false);
                }
            }
        }
    }
    Ok(due.len())
}

/// What a stream asks of the store: its queues, the last id it has, and the earliest
/// posting time it wants (ntfy's `since=<time>`; 0 for all).
#[derive(Clone, Debug)]
pub struct Cursor {
    /// Messages after this id.
    pub after: u64,
    /// Messages posted at or after this time (Unix milliseconds).
    pub posted_since: u64,
}

/// A page of stored messages: (queue, id, record), oldest first.
pub struct Page {
    /// (queue, id, record), oldest first.
    pub messages: Vec<(u64, u64, MessageRecord)>,
    /// The queues may hold more after the last message of this page.
    pub more: bool,
    /// With this page and the ones before it, the reader has every message of its queues
    /// up to this id that the store holds after its cursor: the last id of a full page, or
    /// [`Unsettled::settled_through`] once nothing more is stored.
    pub complete_through: u64,
}

/// How much one page of a backlog may hold: at most `messages`, and it ends with the
/// message that takes its stored bytes to `bytes` or past (so a page always holds one).
#[derive(Clone, Copy, Debug)]
pub struct PageLimit {
    /// Messages at most.
    pub messages: usize,
    /// Stored bytes at which the page ends.
    pub bytes: usize,
}

impl PageLimit {
    /// No limit (a count of the whole backlog).
    pub const ALL: PageLimit = PageLimit {
        messages: usize::MAX,
        bytes: usize::MAX,
    };
}

/// The first page of live messages of `queues` with ids above the cursor, oldest first,
/// and above what `unsettled` holds confirmed for each queue (acked ones left out). Ids
/// are global and committed in order, so one cursor serves any set of queues: each queue
/// gives its first page, and the merged page is cut at the same limit, which never cuts
/// past a message that a queue left out.
pub fn backlog(
    txn: &impl Tables,
    unsettled: &Unsettled,
    queues: &[u64],
    cursor: &Cursor,
    limit: PageLimit,
    now: u64,
) -> Result<Page> {
    let messages = txn.bytes(MESSAGES)?;
    let mut out = Vec::new();
    if cursor.after == u64::MAX {
        return Ok(Page {
            messages: out,
            more: false,
            complete_through: u64::MAX,
        });
    }
    let mut more = false;
    for &queue in queues {
        let (mut taken, mut weight) = (0, 0);
        let after = cursor.after.max(unsettled.deferred.confirmed(queue));
        if after == u64::MAX {
            continue;
        }
        let last = match unsettled.snapshot {
            true => u64::MAX,
            false => unsettled.settled_through,
        };
        if after >= last {
            continue;
        }
        for entry in messages.range((queue, after + 1)..=(queue, last))? {
            let (key, bytes) = entry?;
            let id = key.value().1;
            let record =
                MessageRecord::decode(bytes.value()).ok_or_else(|| damaged("message", id))?;
            let acked = unsettled
                .deferred
                .is_acked(queue, id, &record.registration_id);
            if record.expires_at > now && record.posted_at >= cursor.posted_since && !acked {
                weight += record.weight();
                out.push((queue, id, record));
                taken += 1;
                if taken >= limit.messages || weight >= limit.bytes {
                    more = true;
                    break;
                }
            }
        }
    }
    if queues.len() > 1 {
        out.sort_unstable_by_key(|m| m.1);
    }
    let mut weight = 0;
    let keep = out
        .iter()
        .take(limit.messages)
        .take_while(|m| {
            let under = weight < limit.bytes;
            weight += m.2.weight();
            under
        })
        .count();
    more |= keep < out.len();
    out.truncate(keep);
    let complete_through = match out.last() {
        Some(&(_, last, _)) if more => last,
        _ => unsettled.settled_through,
    };
    Ok(Page {
        messages: out,
        more,
        complete_through,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_len_is_the_length_of_the_encoded_record() {
        let sequence = Some(Sequence {
            id: "seq-1".into(),
            event: super::super::SequenceEvent::Clear,
        });
        for (key, extras, sequence) in [
            (None, "", None),
            (Some("k1"), "\"title\":\"x\"", None),
            (None, "", sequence),
        ] {
            let msg = NewMessage {
                content: Content::Text,
                data: b"hello".to_vec(),
                priority: Some(Priority::High),
                ttl_secs: 60,
                collapse_key: key.map(str::to_owned),
                extras: extras.as_bytes().to_vec(),
                sequence,
            };
            let record = MessageRecord {
                expires_at: 1,
                posted_at: 2,
                content: msg.content,
                priority: msg.priority,
                registration_id: "app".into(),
                collapse_key: msg.collapse_key.clone(),
                extras: msg.extras.clone(),
                data: msg.data.clone(),
                sequence: msg.sequence.clone(),
            };
            assert_eq!(stored_len(&msg, "app"), record.encode().len());
        }
    }

    /// On a store whose reads are not snapshots (Redis), a backlog of several queues leaves
    /// out what is above `settled_through`: a commit after the read began may have added
    /// id 7 to the first queue (already read without it) and id 8 to the second.
    #[test]
    fn a_backlog_that_is_no_snapshot_ends_at_the_settled_id() {
        let db = super::super::tables::in_memory();
        let txn = db.begin_write().unwrap();
        let mut memory = Memory::default();
        let record = |n: u8| MessageRecord {
            expires_at: u64::MAX,
            posted_at: 0,
            content: Content::Text,
            priority: None,
            registration_id: String::new(),
            collapse_key: None,
            extras: Vec::new(),
            data: vec![n],
            sequence: None,
        };
        for (queue, id) in [(1, 5), (2, 6), (1, 7), (2, 8)] {
            let mut tables = QueueTables::open(&txn, &mut memory).unwrap();
            tables.insert(queue, id, &record(id as u8)).unwrap();
        }
        txn.commit().unwrap();
        let read = db.begin_read().unwrap();
        let deferred = super::super::Deferred::default();
        let ids = |snapshot: bool| {
            let unsettled = Unsettled {
                deferred: &deferred,
                settled_through: 6,
                snapshot,
                handed_out_through: 8,
            };
            let cursor = Cursor {
                after: 0,
                posted_since: 0,
            };
            let page = backlog(&read, &unsettled, &[1, 2], &cursor, PageLimit::ALL, 1).unwrap();
            page.messages.iter().map(|m| m.1).collect::<Vec<_>>()
        };
        assert_eq!(ids(false), [5, 6]);
        assert_eq!(ids(true), [5, 6, 7, 8], "a snapshot has only what it holds");
    }
}
