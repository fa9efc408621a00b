//! The delivery rules, in one place: enqueue, collapse, confirm, expire, replay.
//!
//! Every front door turns a push into [`enqueue`]; every stream replays with [`backlog`]
//! and confirms with [`confirm`]. Invariants kept here:
//! - a message is stored with its collapse entry when it has a key; the two are removed
//!   together, and the store's in-memory queue length follows both (see `store::memory`);
//! - an expired message is never returned by [`backlog`], even before the sweep removes it;
//! - a full queue refuses the new message: nothing already acknowledged is dropped to make
//!   room, and a collapse replacement never counts against the limit;
//! - a refusal writes nothing.
//!
//! `now` is always Unix milliseconds; expiry is kept to the millisecond so that a short
//! TTL is not cut short by rounding. A post writes one B-tree (`messages`), two with a
//! collapse key: expiry is found by the sweep reading the queue, not through an index that
//! every post would have to write.

use redb::{ReadableTable, Table, WriteTransaction};

use crate::store::accounts::{self, Tables};
use crate::store::memory::{Memory, QueueSize};
use crate::store::tables::{COLLAPSE, MESSAGES};
use crate::store::{MessageRecord, Result};

pub struct NewMessage {
    pub token: String,
    /// Compact JSON (or raw bytes for other front doors), already checked against the limit.
    pub data: Vec<u8>,
    pub priority: Option<String>,
    pub ttl_secs: u64,
    pub collapse_key: Option<String>,
}

#[derive(Debug)]
pub struct Enqueued {
    pub client_id: u64,
    pub id: u64,
    pub record: MessageRecord,
    /// False for a TTL of 0: delivered now to a live stream or not at all.
    pub stored: bool,
}

#[derive(Debug, PartialEq)]
pub enum Refused {
    UnknownToken,
    QueueFull,
}

struct QueueTables<'t, 'm> {
    memory: &'m mut Memory,
    messages: Table<'t, (u64, u64), &'static [u8]>,
    collapse: Table<'t, (u64, &'static str, &'static str), u64>,
}

impl<'t, 'm> QueueTables<'t, 'm> {
    fn open(txn: &'t WriteTransaction, memory: &'m mut Memory) -> Result<Self> {
        Ok(QueueTables {
            memory,
            messages: txn.open_table(MESSAGES)?,
            collapse: txn.open_table(COLLAPSE)?,
        })
    }

    fn get(&self, client: u64, id: u64) -> Result<Option<MessageRecord>> {
        match self.messages.get((client, id))? {
            Some(bytes) => MessageRecord::decode(bytes.value())
                .map(Some)
                .ok_or_else(|| accounts::damaged("message", id)),
            None => Ok(None),
        }
    }

    fn insert(&mut self, client: u64, id: u64, record: &MessageRecord) -> Result<()> {
        self.size(client)?;
        let encoded = record.encode();
        self.messages.insert((client, id), encoded.as_slice())?;
        self.memory.adjust_queue_size(client, encoded.len(), true);
        if let Some(key) = &record.collapse_key {
            self.collapse
                .insert((client, record.registration_id.as_str(), key.as_str()), id)?;
        }
        Ok(())
    }

    fn remove(&mut self, client: u64, id: u64, record: &MessageRecord) -> Result<()> {
        self.size(client)?;
        if let Some(old) = self.messages.remove((client, id))? {
            self.memory
                .adjust_queue_size(client, old.value().len(), false);
        }
        if let Some(key) = &record.collapse_key {
            let slot = (client, record.registration_id.as_str(), key.as_str());
            if self.collapse.get(slot)?.map(|v| v.value()) == Some(id) {
                self.collapse.remove(slot)?;
            }
        }
        Ok(())
    }

    fn ids_of(&self, client: u64, up_to: u64) -> Result<Vec<(u64, MessageRecord)>> {
        let mut out = Vec::new();
        for entry in self.messages.range((client, 0)..=(client, up_to))? {
            let (key, bytes) = entry?;
            let id = key.value().1;
            let record = MessageRecord::decode(bytes.value())
                .ok_or_else(|| accounts::damaged("message", id))?;
            out.push((id, record));
        }
        Ok(out)
    }

    /// The size of `client`'s queue, loaded once per client (read before any change of
    /// this transaction touches the queue).
    fn size(&mut self, client: u64) -> Result<QueueSize> {
        self.memory.queue_size(&self.messages, client)
    }
}

/// Accepts a message for the app that owns `msg.token`.
pub fn enqueue(
    txn: &WriteTransaction,
    memory: &mut Memory,
    msg: NewMessage,
    now: u64,
    limit: QueueSize,
) -> Result<std::result::Result<Enqueued, Refused>> {
    let Some(app) = accounts::app_by_token(txn, &msg.token)? else {
        return Ok(Err(Refused::UnknownToken));
    };
    let client_id = app.client_id;
    let record = MessageRecord {
        expires_at: now.saturating_add(msg.ttl_secs.saturating_mul(1000)),
        priority: msg.priority,
        registration_id: app.registration_id,
        collapse_key: msg.collapse_key,
        data: msg.data,
    };
    if msg.ttl_secs == 0 {
        let id = memory.next_message_id(txn)?;
        return Ok(Ok(Enqueued {
            client_id,
            id,
            record,
            stored: false,
        }));
    }
    let mut tables = QueueTables::open(txn, memory)?;
    let replaced = match &record.collapse_key {
        Some(key) => tables
            .collapse
            .get((client_id, record.registration_id.as_str(), key.as_str()))?
            .map(|v| v.value()),
        None => None,
    };
    let replaced = match replaced {
        Some(old) => tables.get(client_id, old)?.map(|r| (old, r)),
        None => None,
    };
    let size = tables.size(client_id)?;
    let freed = match &replaced {
        Some((_, old)) => QueueSize {
            messages: 1,
            bytes: old.encode().len() as u64,
        },
        None => QueueSize::default(),
    };
    let messages = size.messages - freed.messages + 1;
    let bytes = size.bytes - freed.bytes + record.encode().len() as u64;
    if messages > limit.messages || bytes > limit.bytes {
        return Ok(Err(Refused::QueueFull));
    }
    if let Some((old, old_record)) = replaced {
        tables.remove(client_id, old, &old_record)?;
    }
    let id = tables.memory.next_message_id(txn)?;
    tables.insert(client_id, id, &record)?;
    Ok(Ok(Enqueued {
        client_id,
        id,
        record,
        stored: true,
    }))
}

/// The client has everything up to `up_to`: those messages leave the queue.
pub fn confirm(
    txn: &WriteTransaction,
    memory: &mut Memory,
    client_id: u64,
    up_to: u64,
) -> Result<usize> {
    let mut tables = QueueTables::open(txn, memory)?;
    let done = tables.ids_of(client_id, up_to)?;
    for (id, record) in &done {
        tables.remove(client_id, *id, record)?;
    }
    Ok(done.len())
}

/// Removes a client's messages, or only those of one application.
pub fn drop_messages(
    txn: &WriteTransaction,
    memory: &mut Memory,
    client_id: u64,
    registration_id: Option<&str>,
) -> Result<usize> {
    let mut tables = QueueTables::open(txn, memory)?;
    let mut n = 0;
    for (id, record) in tables.ids_of(client_id, u64::MAX)? {
        if registration_id.is_none_or(|r| r == record.registration_id) {
            tables.remove(client_id, id, &record)?;
            n += 1;
        }
    }
    Ok(n)
}

/// Removes up to `max` messages whose TTL has ended; returns how many. Reads the whole
/// queue (the expiry time leads each record, so only a few bytes of each are decoded).
pub fn sweep(txn: &WriteTransaction, memory: &mut Memory, now: u64, max: usize) -> Result<usize> {
    let mut tables = QueueTables::open(txn, memory)?;
    let mut due = Vec::new();
    for entry in tables.messages.iter()? {
        let (key, bytes) = entry?;
        let (client, id) = key.value();
        match MessageRecord::expires_at(bytes.value()) {
            Some(at) if at > now => {}
            _ => due.push((client, id)),
        }
        if due.len() >= max {
            break;
        }
    }
    for &(client, id) in &due {
        match tables.get(client, id) {
            Ok(Some(record)) => tables.remove(client, id, &record)?,
            Ok(None) => {}
            Err(_) => {
                log::error!("message {id} does not decode; removing it");
                tables.size(client)?;
                if let Some(old) = tables.messages.remove((client, id))? {
                    let len = old.value().len();
                    drop(old);
                    tables.memory.adjust_queue_size(client, len, false);
                }
            }
        }
    }
    Ok(due.len())
}

/// Up to `limit` live messages of a client with ids above `after`, oldest first.
pub fn backlog(
    txn: &impl Tables,
    client_id: u64,
    after: u64,
    limit: usize,
    now: u64,
) -> Result<Vec<(u64, MessageRecord)>> {
    let messages = txn.bytes(MESSAGES)?;
    let mut out = Vec::new();
    if after == u64::MAX {
        return Ok(out);
    }
    for entry in messages.range((client_id, after + 1)..=(client_id, u64::MAX))? {
        let (key, bytes) = entry?;
        let id = key.value().1;
        let record =
            MessageRecord::decode(bytes.value()).ok_or_else(|| accounts::damaged("message", id))?;
        if record.expires_at > now {
            out.push((id, record));
            if out.len() >= limit {
                break;
            }
        }
    }
    Ok(out)
}
