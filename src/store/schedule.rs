//! Messages that wait for their time (ntfy's delayed delivery): kept apart from the queues
//! until they are due, then moved into their topic's queue.
//!
//! ```text
//! scheduled              (due ms, slot)               -> ScheduledRecord
//! scheduled_by_sequence  (queue, sequence id)         -> due ms ++ slot (LE, 8 bytes each)
//! scheduled_by_sender    sender key (17) ++ slot (BE) -> (empty)
//! ```
//!
//! A message enters with [`add`] and leaves in one of three ways, each removing its entry and
//! both index entries in one transaction: [`release`] moves it into its topic's queue once it
//! is due, [`cancel`] drops it (ntfy's `DELETE`, or a newer message of its sequence), and
//! [`drop_queue`] drops it with its topic. Invariants:
//! - a message is in the schedule or in its queue, never both and never neither: [`release`]
//!   removes it from the schedule and stores it in the queue in the same transaction, so it
//!   is delivered once, whether the server runs at its due time or starts after it;
//! - every entry of `scheduled` has exactly one entry in each index;
//! - its slot is a message id taken from the store's counter when it is scheduled: unique,
//!   never reused, and the id its sender is answered with. Its sequence id is the sender's,
//!   or else that id as the door names it (its `name`), so that the notification it becomes
//!   is updated, cleared and deleted by the id its sender was given;
//! - a queue has at most one scheduled message per sequence id: a newer one replaces it;
//! - what is scheduled counts in the store's budget (`store::budget`) and against its
//!   sender's limit from the moment it is scheduled; a sender's count is its range in
//!   `scheduled_by_sender`;
//! - a refusal writes nothing.
//!
//! A topic's queue may hold more than its limit once its scheduled messages are due: each was
//! checked against the queue when it was accepted, and is stored whatever the queue holds
//! when it is due, since its sender was told it is accepted.

use crate::store::kv::{ReadableTable, WriteTransaction};

use super::budget::{Budget, scheduled_bytes};
use super::memory::Memory;
use super::queue::{self, Destination, NewMessage, Refused};
use super::tables::{
    MESSAGES, SCHEDULED, SCHEDULED_BY_SENDER, SCHEDULED_BY_SEQUENCE, Tables, damaged,
};
use super::{MessageRecord, Result, ScheduledRecord, Sender, Sequence, SequenceEvent};

/// A message to schedule, as the door accepted it.
pub struct Pending {
    /// The topic's name.
    pub topic: String,
    /// Who schedules it.
    pub sender: Sender,
    /// When it is due, in Unix milliseconds.
    pub due: u64,
    /// The message; its TTL counts from its due time. Its sequence, if it has one, is a
    /// message's (`SequenceEvent::Message`).
    pub message: NewMessage,
}

/// A message the schedule took.
#[derive(Debug)]
pub struct Scheduled {
    /// Its slot: the id its sender is answered with.
    pub slot: u64,
    /// The record it is stored as when it is due.
    pub record: MessageRecord,
}

/// A scheduled message that became due and is in its queue now.
#[derive(Debug)]
pub struct Released {
    /// Its topic's name.
    pub topic: String,
    /// Its topic's queue.
    pub queue: u64,
    /// Its id in the queue.
    pub id: u64,
    /// The record as stored.
    pub record: MessageRecord,
}

/// A scheduled message as found in the tables.
struct Entry {
    due: u64,
    slot: u64,
    record: ScheduledRecord,
    len: usize,
}

/// Schedules `pending` for the queue `to`, unless its sender has `max_per_sender` messages
/// waiting already (not counting the one of the same sequence it replaces; 0: it may not
/// schedule at all), the queue is full, or the store's `budget` has no room. A message with a sequence id replaces the one
/// of its sequence scheduled for that queue. `name` names a slot as the door names message
/// ids; `name(u64::MAX)` is the longest of its names.
pub fn add(
    txn: &WriteTransaction,
    memory: &mut Memory,
    to: &Destination,
    pending: Pending,
    max_per_sender: usize,
    budget: &Budget,
    name: fn(u64) -> String,
) -> Result<std::result::Result<Scheduled, Refused>> {
    memory.usage(txn)?;
    let Pending {
        topic,
        sender,
        due,
        message,
    } = pending;
    let given = message.sequence.as_ref().map(|s| s.id.clone());
    let replaced = match &given {
        Some(id) => find(txn, to.queue, id)?,
        None => None,
    };
    if max_per_sender == 0 {
        return Ok(Err(Refused::Limit(
            "this server schedules messages for its users only".into(),
        )));
    }
    let mut waiting = count_of(txn, sender, max_per_sender.saturating_add(1))?;
    if replaced.as_ref().is_some_and(|r| r.record.sender == sender) {
        waiting -= 1;
    }
    if waiting >= max_per_sender {
        return Ok(Err(Refused::Crowded(format!(
            "{max_per_sender} messages of this sender are scheduled already; try again once \
             one of them is sent"
        ))));
    }
    let build = |sequence_id: String| ScheduledRecord {
        queue: to.queue,
        topic: topic.clone(),
        sender,
        message: MessageRecord {
            expires_at: due.saturating_add(message.ttl_secs.saturating_mul(1000)),
            posted_at: due,
            content: message.content,
            priority: message.priority,
            registration_id: to.registration_id.clone(),
            collapse_key: None,
            extras: message.extras.clone(),
            data: message.data.clone(),
            sequence: Some(Sequence {
                id: sequence_id,
                event: SequenceEvent::Message,
            }),
        },
    };
    // Checked with the longest name a slot may get, stored with the one it gets.
    let longest = build(given.clone().unwrap_or_else(|| name(u64::MAX)));
    if let Err(refused) = fits(txn, memory, to, &longest, replaced.as_ref(), budget)? {
        return Ok(Err(refused));
    }
    if let Some(old) = &replaced {
        remove(txn, memory, old)?;
    }
    let slot = memory.next_message_id(txn)?;
    let record = build(given.unwrap_or_else(|| name(slot)));
    let bytes = record.encode();
    txn.open_table(SCHEDULED)?
        .insert((due, slot), bytes.as_slice())?;
    let sequence_id = sequence_id(&record.message);
    txn.open_table(SCHEDULED_BY_SEQUENCE)?
        .insert((to.queue, sequence_id), index_value(due, slot).as_slice())?;
    txn.open_table(SCHEDULED_BY_SENDER)?
        .insert(sender_slot(sender, slot).as_slice(), [].as_slice())?;
    memory.adjust_scheduled(bytes.len(), sender, true);
    Ok(Ok(Scheduled {
        slot,
        record: record.message,
    }))
}

/// Whether `record` fits its queue now and the store's budget, in place of `replaced`.
fn fits(
    txn: &WriteTransaction,
    memory: &mut Memory,
    to: &Destination,
    record: &ScheduledRecord,
    replaced: Option<&Entry>,
    budget: &Budget,
) -> Result<std::result::Result<(), Refused>> {
    let size = memory.queue_size(&txn.open_table(MESSAGES)?, to.queue)?;
    let message_len = record.message.encode().len() as u64;
    if size.messages + 1 > to.limit.messages || size.bytes + message_len > to.limit.bytes {
        return Ok(Err(Refused::QueueFull(to.limit)));
    }
    let is_user = |s: Sender| matches!(s, Sender::User(_));
    let freed = replaced
        .filter(|old| is_user(old.record.sender) == is_user(record.sender))
        .map_or(0, |old| scheduled_bytes(old.len));
    let added = scheduled_bytes(record.encode().len());
    let usage = memory.usage(txn)?;
    Ok(
        match usage.check_scheduled(record.sender, freed, added, budget) {
            Some(overrun) => Err(Refused::NoRoom(overrun)),
            None => Ok(()),
        },
    )
}

/// Moves up to `max` messages due at `now` into their queues, earliest first, each under a
/// new message id, posted at its due time and expiring a full TTL after `now` at the
/// earliest (a server that was down at its due time sends it whole).
pub fn release(
    txn: &WriteTransaction,
    memory: &mut Memory,
    now: u64,
    max: usize,
) -> Result<Vec<Released>> {
    let mut due = Vec::new();
    for entry in txn.open_table(SCHEDULED)?.range((0, 0)..=(now, u64::MAX))? {
        if due.len() >= max {
            break;
        }
        let (key, bytes) = entry?;
        due.push((key.value(), bytes.value().to_vec()));
    }
    let mut released = Vec::with_capacity(due.len());
    for ((at, slot), bytes) in due {
        let Some(record) = ScheduledRecord::decode(&bytes) else {
            log::error!("scheduled message {slot} does not decode; removing it");
            txn.open_table(SCHEDULED)?.remove((at, slot))?;
            if let Some(sender) = ScheduledRecord::sender_of(&bytes) {
                memory.adjust_scheduled(bytes.len(), sender, false);
            }
            continue;
        };
        let entry = Entry {
            due: at,
            slot,
            len: bytes.len(),
            record,
        };
        remove(txn, memory, &entry)?;
        let mut message = entry.record.message;
        let ttl = message.expires_at.saturating_sub(message.posted_at);
        message.expires_at = message.expires_at.max(now.saturating_add(ttl));
        let id = queue::place(txn, memory, entry.record.queue, &message)?;
        released.push(Released {
            topic: entry.record.topic,
            queue: entry.record.queue,
            id,
            record: message,
        });
    }
    Ok(released)
}

/// Drops the message of sequence `sequence_id` scheduled for `queue`; false if there is none.
pub fn cancel(
    txn: &WriteTransaction,
    memory: &mut Memory,
    queue: u64,
    sequence_id: &str,
) -> Result<bool> {
    match find(txn, queue, sequence_id)? {
        Some(entry) => {
            memory.usage(txn)?;
            remove(txn, memory, &entry)?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// Drops every message scheduled for `queue` (its topic is deleted); returns how many.
pub fn drop_queue(txn: &WriteTransaction, memory: &mut Memory, queue: u64) -> Result<usize> {
    let mut ids = Vec::new();
    for entry in txn
        .open_table(SCHEDULED_BY_SEQUENCE)?
        .range((queue, "")..(queue + 1, ""))?
    {
        ids.push(entry?.0.value().1.to_owned());
    }
    memory.usage(txn)?;
    let mut dropped = 0;
    for id in ids {
        if let Some(entry) = find(txn, queue, &id)? {
            remove(txn, memory, &entry)?;
            dropped += 1;
        }
    }
    Ok(dropped)
}

/// Whether a message is scheduled for `queue`.
pub fn has_pending(txn: &impl Tables, queue: u64) -> Result<bool> {
    let index = txn.bytes(SCHEDULED_BY_SEQUENCE)?;
    Ok(index.range((queue, "")..(queue + 1, ""))?.next().is_some())
}

/// When the earliest scheduled message is due (Unix milliseconds); `None` if none is.
pub fn next_due(txn: &impl Tables) -> Result<Option<u64>> {
    let scheduled = txn.bytes(SCHEDULED)?;
    Ok(scheduled.first()?.map(|(key, _)| key.value().0))
}

/// The messages scheduled for `queues`, as (queue, slot, the record it becomes), earliest
/// due first; they end with the one that takes their weight (`MessageRecord::weight`) to
/// `max_bytes` or past. Reads the whole schedule in due order (it is small: its senders'
/// limits and the store's budget bound it), decoding only the records of `queues`.
pub fn pending(
    txn: &impl Tables,
    queues: &[u64],
    max_bytes: usize,
) -> Result<Vec<(u64, u64, MessageRecord)>> {
    let mut found = Vec::new();
    let mut weight = 0;
    for entry in txn.bytes(SCHEDULED)?.iter()? {
        if weight >= max_bytes {
            break;
        }
        let (key, bytes) = entry?;
        let slot = key.value().1;
        let bytes = bytes.value();
        if ScheduledRecord::queue_of(bytes).is_some_and(|q| !queues.contains(&q)) {
            continue;
        }
        let record =
            ScheduledRecord::decode(bytes).ok_or_else(|| damaged("scheduled message", slot))?;
        weight += record.message.weight();
        found.push((record.queue, slot, record.message));
    }
    Ok(found)
}

/// The message of sequence `sequence_id` scheduled for `queue`.
fn find(txn: &impl Tables, queue: u64, sequence_id: &str) -> Result<Option<Entry>> {
    let Some(value) = txn
        .bytes(SCHEDULED_BY_SEQUENCE)?
        .get((queue, sequence_id))?
        .map(|v| v.value().to_vec())
    else {
        return Ok(None);
    };
    let (due, slot) = parse_index(&value).ok_or_else(|| damaged("index", queue))?;
    let scheduled = txn.bytes(SCHEDULED)?;
    let Some(bytes) = scheduled.get((due, slot))? else {
        return Ok(None);
    };
    let bytes = bytes.value();
    let record =
        ScheduledRecord::decode(bytes).ok_or_else(|| damaged("scheduled message", slot))?;
    Ok(Some(Entry {
        due,
        slot,
        len: bytes.len(),
        record,
    }))
}

/// Removes `entry` and its index entries, and its bytes from the usage.
fn remove(txn: &WriteTransaction, memory: &mut Memory, entry: &Entry) -> Result<()> {
    txn.open_table(SCHEDULED)?.remove((entry.due, entry.slot))?;
    let mut by_sequence = txn.open_table(SCHEDULED_BY_SEQUENCE)?;
    let key = (entry.record.queue, sequence_id(&entry.record.message));
    let indexed = by_sequence.get(key)?.map(|v| v.value().to_vec());
    if indexed.as_deref() == Some(index_value(entry.due, entry.slot).as_slice()) {
        by_sequence.remove(key)?;
    }
    txn.open_table(SCHEDULED_BY_SENDER)?
        .remove(sender_slot(entry.record.sender, entry.slot).as_slice())?;
    memory.adjust_scheduled(entry.len, entry.record.sender, false);
    Ok(())
}

/// How many messages `sender` has scheduled, counting at most to `at_most`.
fn count_of(txn: &impl Tables, sender: Sender, at_most: usize) -> Result<usize> {
    let (first, last) = (sender_slot(sender, 0), sender_slot(sender, u64::MAX));
    let index = txn.bytes(SCHEDULED_BY_SENDER)?;
    let mut n = 0;
    for entry in index
        .range(first.as_slice()..=last.as_slice())?
        .take(at_most)
    {
        entry?;
        n += 1;
    }
    Ok(n)
}

/// The sequence id of a scheduled message (it always has one).
fn sequence_id(message: &MessageRecord) -> &str {
    message.sequence.as_ref().map_or("", |s| s.id.as_str())
}

fn index_value(due: u64, slot: u64) -> [u8; 16] {
    let mut value = [0u8; 16];
    value[..8].copy_from_slice(&due.to_le_bytes());
    value[8..].copy_from_slice(&slot.to_le_bytes());
    value
}

fn parse_index(value: &[u8]) -> Option<(u64, u64)> {
    let value: &[u8; 16] = value.try_into().ok()?;
    let due = u64::from_le_bytes(value[..8].try_into().ok()?);
    let slot = u64::from_le_bytes(value[8..].try_into().ok()?);
    Some((due, slot))
}

fn sender_slot(sender: Sender, slot: u64) -> [u8; 25] {
    let mut key = [0u8; 25];
    key[..17].copy_from_slice(&sender.key());
    key[17..].copy_from_slice(&slot.to_be_bytes());
    key
}

#[cfg(test)]
mod tests {
    use super::super::budget::Usage;
    use super::super::memory::QueueSize;
    use super::super::tables::in_memory;
    use super::super::topics::{self, Access, Anonymous, Rules};
    use super::super::{Content, accounts};
    use super::*;
    use crate::store::kv::{Database, ReadableTableMetadata};

    const RULES: Rules = Rules {
        anonymous: Anonymous::ReadWrite,
        max_topics_per_user: 8,
        max_unclaimed_topics: 8,
    };
    const LIMIT: QueueSize = QueueSize {
        messages: 10,
        bytes: 1 << 20,
    };

    fn name(slot: u64) -> String {
        format!("op{slot}")
    }

    fn message(text: &str, sequence: Option<&str>) -> NewMessage {
        NewMessage {
            content: Content::Text,
            data: text.as_bytes().to_vec(),
            priority: None,
            ttl_secs: 60,
            collapse_key: None,
            extras: Vec::new(),
            sequence: sequence.map(|id| Sequence {
                id: id.into(),
                event: SequenceEvent::Message,
            }),
        }
    }

    /// The store of a test: a user (id 1) and its topic `chores`.
    fn store() -> (Database, Memory, Destination) {
        let db = in_memory();
        let mut memory = Memory::default();
        let txn = db.begin_write().unwrap();
        let (user, _) = accounts::create_user(&txn, "ann", String::new(), false)
            .unwrap()
            .unwrap();
        let topic = topics::open(
            &txn,
            &mut memory,
            "chores",
            Some(user),
            Access::Write,
            &RULES,
            0,
        )
        .unwrap()
        .unwrap();
        txn.commit().unwrap();
        let to = Destination {
            queue: topic.queue,
            registration_id: String::new(),
            limit: LIMIT,
        };
        (db, memory, to)
    }

    /// Runs `f` in a committed write transaction.
    fn write<T>(
        db: &Database,
        memory: &mut Memory,
        f: impl FnOnce(&WriteTransaction, &mut Memory) -> T,
    ) -> T {
        let txn = db.begin_write().unwrap();
        let out = f(&txn, memory);
        txn.commit().unwrap();
        memory.committed();
        out
    }

    fn schedule(
        db: &Database,
        memory: &mut Memory,
        to: &Destination,
        sender: Sender,
        due: u64,
        msg: NewMessage,
        max: usize,
    ) -> std::result::Result<Scheduled, Refused> {
        let pending = Pending {
            topic: "chores".into(),
            sender,
            due,
            message: msg,
        };
        write(db, memory, |t, m| {
            add(t, m, to, pending, max, &Budget::UNLIMITED, name).unwrap()
        })
    }

    /// The usage in memory is what a fresh read of the store finds.
    fn assert_usage_consistent(db: &Database, memory: &mut Memory) {
        let read = db.begin_read().unwrap();
        let fresh = Usage::load(&read).unwrap();
        let kept = memory.usage(&read).unwrap();
        assert_eq!(
            (kept.total(), kept.anonymous()),
            (fresh.total(), fresh.anonymous())
        );
    }

    #[test]
    fn a_due_message_moves_into_its_queue_once_under_a_new_id() {
        let (db, mut memory, to) = store();
        let s = schedule(
            &db,
            &mut memory,
            &to,
            Sender::User(1),
            5_000,
            message("later", None),
            8,
        )
        .unwrap();
        assert_eq!(s.record.sequence.as_ref().unwrap().id, name(s.slot));
        assert_eq!(s.record.posted_at, 5_000);
        assert_usage_consistent(&db, &mut memory);
        let read = db.begin_read().unwrap();
        assert_eq!(next_due(&read).unwrap(), Some(5_000));
        assert!(has_pending(&read, to.queue).unwrap());
        assert_eq!(pending(&read, &[to.queue], usize::MAX).unwrap().len(), 1);
        drop(read);

        let early = write(&db, &mut memory, |t, m| release(t, m, 4_999, 10).unwrap());
        assert!(early.is_empty(), "nothing is due before its time");
        // The server was down for a while: the message keeps its time and a whole TTL.
        let released = write(&db, &mut memory, |t, m| release(t, m, 100_000, 10).unwrap());
        assert_eq!(released.len(), 1);
        let r = &released[0];
        assert!(r.id > s.slot, "a new id, above every id handed out before");
        assert_eq!((r.queue, r.topic.as_str()), (to.queue, "chores"));
        assert_eq!(r.record.posted_at, 5_000);
        assert_eq!(r.record.expires_at, 100_000 + 60_000);
        assert_eq!(r.record.data, b"later");
        assert_usage_consistent(&db, &mut memory);

        let again = write(&db, &mut memory, |t, m| release(t, m, 200_000, 10).unwrap());
        assert!(again.is_empty(), "released once");
        let read = db.begin_read().unwrap();
        assert_eq!(next_due(&read).unwrap(), None);
        assert!(!has_pending(&read, to.queue).unwrap());
        let stored = read.open_table(MESSAGES).unwrap();
        let bytes = stored.get((to.queue, r.id)).unwrap().unwrap();
        assert_eq!(
            MessageRecord::decode(bytes.value()).as_ref(),
            Some(&r.record)
        );
        assert_eq!(
            read.open_table(SCHEDULED_BY_SENDER).unwrap().len().unwrap(),
            0
        );
        assert_eq!(
            read.open_table(SCHEDULED_BY_SEQUENCE)
                .unwrap()
                .len()
                .unwrap(),
            0
        );
    }

    #[test]
    fn a_sequence_keeps_one_scheduled_message_and_cancel_drops_it() {
        let (db, mut memory, to) = store();
        let first = schedule(
            &db,
            &mut memory,
            &to,
            Sender::User(1),
            9_000,
            message("a", Some("beat")),
            8,
        )
        .unwrap();
        let second = schedule(
            &db,
            &mut memory,
            &to,
            Sender::User(1),
            7_000,
            message("b", Some("beat")),
            8,
        )
        .unwrap();
        assert!(second.slot > first.slot);
        let read = db.begin_read().unwrap();
        let listed = pending(&read, &[to.queue], usize::MAX).unwrap();
        assert_eq!(listed.len(), 1, "the newer one replaced the other");
        assert_eq!(
            (listed[0].1, listed[0].2.data.as_slice()),
            (second.slot, &b"b"[..])
        );
        assert_eq!(next_due(&read).unwrap(), Some(7_000));
        drop(read);
        assert_usage_consistent(&db, &mut memory);

        assert!(!write(&db, &mut memory, |t, m| cancel(
            t, m, to.queue, "other"
        )
        .unwrap()));
        assert!(write(&db, &mut memory, |t, m| cancel(
            t, m, to.queue, "beat"
        )
        .unwrap()));
        assert!(!write(&db, &mut memory, |t, m| cancel(
            t, m, to.queue, "beat"
        )
        .unwrap()));
        let read = db.begin_read().unwrap();
        assert_eq!(next_due(&read).unwrap(), None);
        assert_eq!(
            read.open_table(SCHEDULED_BY_SENDER).unwrap().len().unwrap(),
            0
        );
        drop(read);
        assert_usage_consistent(&db, &mut memory);
    }

    #[test]
    fn a_sender_has_at_most_its_limit_waiting_and_a_refusal_writes_nothing() {
        let (db, mut memory, to) = store();
        let anne = Sender::Address([1; 16]);
        for (i, seq) in [Some("x"), None].into_iter().enumerate() {
            schedule(
                &db,
                &mut memory,
                &to,
                anne,
                1_000 + i as u64,
                message("m", seq),
                2,
            )
            .unwrap();
        }
        let refused = schedule(&db, &mut memory, &to, anne, 5_000, message("m", None), 2);
        assert!(matches!(refused, Err(Refused::Crowded(_))), "{refused:?}");
        // Replacing one of its own frees its place; another sender has its own count.
        schedule(
            &db,
            &mut memory,
            &to,
            anne,
            6_000,
            message("m", Some("x")),
            2,
        )
        .unwrap();
        schedule(
            &db,
            &mut memory,
            &to,
            Sender::Host,
            6_000,
            message("m", None),
            2,
        )
        .unwrap();
        let read = db.begin_read().unwrap();
        assert_eq!(read.open_table(SCHEDULED).unwrap().len().unwrap(), 3);
        drop(read);
        assert_usage_consistent(&db, &mut memory);

        // Past the budget: refused, and the high-water mark and tables are as they were.
        let budget = Budget {
            max_bytes: 1 << 20,
            max_anonymous_bytes: 100,
            max_uaid_bytes: u64::MAX,
        };
        let txn = db.begin_write().unwrap();
        let pending = Pending {
            topic: "chores".into(),
            sender: Sender::Address([2; 16]),
            due: 9_000,
            message: message("m", None),
        };
        let out = add(&txn, &mut memory, &to, pending, 8, &budget, name).unwrap();
        assert!(matches!(out, Err(Refused::NoRoom(_))), "{out:?}");
        assert_eq!(txn.open_table(SCHEDULED).unwrap().len().unwrap(), 3);
        txn.abort().unwrap();
        memory.reset();
    }

    #[test]
    fn a_full_queue_refuses_a_scheduled_message() {
        let (db, mut memory, mut to) = store();
        to.limit = QueueSize {
            messages: 0,
            bytes: 1 << 20,
        };
        let out = schedule(
            &db,
            &mut memory,
            &to,
            Sender::User(1),
            1,
            message("m", None),
            8,
        );
        assert!(matches!(out, Err(Refused::QueueFull(_))), "{out:?}");
    }

    #[test]
    fn a_deleted_topic_takes_its_scheduled_messages_along() {
        let (db, mut memory, to) = store();
        for seq in [Some("a"), Some("b"), None] {
            schedule(
                &db,
                &mut memory,
                &to,
                Sender::User(1),
                3_000,
                message("m", seq),
                8,
            )
            .unwrap();
        }
        let gone = write(&db, &mut memory, |t, m| {
            topics::delete(t, m, "chores").unwrap()
        });
        assert_eq!(gone, Some(to.queue));
        let read = db.begin_read().unwrap();
        assert_eq!(read.open_table(SCHEDULED).unwrap().len().unwrap(), 0);
        assert_eq!(
            read.open_table(SCHEDULED_BY_SEQUENCE)
                .unwrap()
                .len()
                .unwrap(),
            0
        );
        assert_eq!(
            read.open_table(SCHEDULED_BY_SENDER).unwrap().len().unwrap(),
            0
        );
        drop(read);
        assert_usage_consistent(&db, &mut memory);
    }

    #[test]
    fn an_unclaimed_topic_with_a_scheduled_message_is_not_stale() {
        let db = in_memory();
        let mut memory = Memory::default();
        let to = write(&db, &mut memory, |t, m| {
            let topic = topics::open(t, m, "upAbcdefghijkl", None, Access::Write, &RULES, 0)
                .unwrap()
                .unwrap();
            Destination {
                queue: topic.queue,
                registration_id: String::new(),
                limit: LIMIT,
            }
        });
        schedule(
            &db,
            &mut memory,
            &to,
            Sender::Host,
            1 << 40,
            message("m", None),
            8,
        )
        .unwrap();
        let read = db.begin_read().unwrap();
        assert!(
            topics::stale_unclaimed(&read, u64::MAX / 2, 0)
                .unwrap()
                .is_empty()
        );
        drop(read);
        write(&db, &mut memory, |t, m| {
            cancel(t, m, to.queue, &name(1)).unwrap()
        });
        let read = db.begin_read().unwrap();
        let stale = topics::stale_unclaimed(&read, u64::MAX / 2, 0).unwrap();
        assert_eq!(stale, ["upAbcdefghijkl"]);
    }
}
