//! What the store thread keeps in memory instead of writing it with every message, to
//! spare a router's flash: the next message id and each queue's size.
//!
//! Invariants:
//! - every id handed out is below the high-water mark in `meta`, written in the same
//!   transaction that first needs it, so ids are never reused after a crash, even though
//!   only one commit in [`ID_BLOCK`] writes `meta`;
//! - a queue size (messages and stored bytes), once loaded by reading the queue's
//!   messages, changes only with the insertions and removals of the transaction being built;
//! - after a failed or aborted commit, [`Memory::reset`] forgets everything, and both are
//!   read again from the last durable state.

use std::collections::HashMap;

use redb::{ReadableTable, WriteTransaction};

use super::Result;
use super::tables::{ID_HIGH_WATER, META};

/// Ids reserved by one write of the high-water mark.
pub const ID_BLOCK: u64 = 4096;
/// Queue sizes remembered at most; past it the map is cleared and reloaded on demand.
const MAX_QUEUE_SIZES: usize = 65_536;

/// The messages of one queue and their stored bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct QueueSize {
    pub messages: u64,
    pub bytes: u64,
}

#[derive(Default)]
pub struct Memory {
    /// (next id, high-water mark): `next < mark` is always true once loaded.
    ids: Option<(u64, u64)>,
    queue_sizes: HashMap<u64, QueueSize>,
}

impl Memory {
    /// Forgets what a failed commit may have left behind.
    pub fn reset(&mut self) {
        *self = Memory::default();
    }

    /// The next message id, reserving a new block in `meta` when the last one is used up.
    pub fn next_message_id(&mut self, txn: &WriteTransaction) -> Result<u64> {
        let (next, mark) = match self.ids {
            Some(ids) => ids,
            None => {
                let mark = txn
                    .open_table(META)?
                    .get(ID_HIGH_WATER)?
                    .map_or(1, |v| v.value());
                (mark, mark)
            }
        };
        let mark = if next >= mark {
            let mark = next + ID_BLOCK;
            txn.open_table(META)?.insert(ID_HIGH_WATER, mark)?;
            mark
        } else {
            mark
        };
        self.ids = Some((next + 1, mark));
        Ok(next)
    }

    /// The size of a queue, read from `messages` the first time.
    pub fn queue_size(
        &mut self,
        messages: &impl ReadableTable<(u64, u64), &'static [u8]>,
        queue: u64,
    ) -> Result<QueueSize> {
        if let Some(&size) = self.queue_sizes.get(&queue) {
            return Ok(size);
        }
        let mut size = QueueSize::default();
        for entry in messages.range((queue, 0)..=(queue, u64::MAX))? {
            size.messages += 1;
            size.bytes += entry?.1.value().len() as u64;
        }
        if self.queue_sizes.len() >= MAX_QUEUE_SIZES {
            self.queue_sizes.clear();
        }
        self.queue_sizes.insert(queue, size);
        Ok(size)
    }

    /// Records a stored record of `bytes` added to or removed from a loaded queue.
    pub fn adjust_queue_size(&mut self, queue: u64, bytes: usize, added: bool) {
        if let Some(size) = self.queue_sizes.get_mut(&queue) {
            if added {
                size.messages += 1;
                size.bytes += bytes as u64;
            } else {
                size.messages = size.messages.saturating_sub(1);
                size.bytes = size.bytes.saturating_sub(bytes as u64);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::ReadableDatabase;

    fn database() -> redb::Database {
        let db = redb::Builder::new()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .unwrap();
        super::super::tables::init_or_check(&db).unwrap_or_else(|_| panic!("tables"));
        db
    }

    #[test]
    fn ids_are_never_reused_after_a_lost_memory_or_an_aborted_commit() {
        let db = database();
        let mut memory = Memory::default();
        let txn = db.begin_write().unwrap();
        let first: Vec<u64> = (0..3)
            .map(|_| memory.next_message_id(&txn).unwrap())
            .collect();
        txn.commit().unwrap();
        assert_eq!(first, [1, 2, 3]);

        let txn = db.begin_write().unwrap();
        memory.next_message_id(&txn).unwrap();
        txn.abort().unwrap();
        memory.reset();

        let txn = db.begin_write().unwrap();
        let after = memory.next_message_id(&txn).unwrap();
        txn.commit().unwrap();
        assert!(after > 3, "{after}");

        // A process that crashed with ids handed out below the mark starts above it.
        let mut fresh = Memory::default();
        let txn = db.begin_write().unwrap();
        let restarted = fresh.next_message_id(&txn).unwrap();
        assert!(restarted > after, "{restarted} <= {after}");
    }

    #[test]
    fn the_mark_is_written_once_per_block() {
        let db = database();
        let mut memory = Memory::default();
        let txn = db.begin_write().unwrap();
        memory.next_message_id(&txn).unwrap();
        txn.commit().unwrap();
        let mark = || {
            let read = db.begin_read().unwrap();
            let meta = read.open_table(META).unwrap();
            meta.get(ID_HIGH_WATER).unwrap().unwrap().value()
        };
        let before = mark();
        let txn = db.begin_write().unwrap();
        for _ in 0..ID_BLOCK - 2 {
            memory.next_message_id(&txn).unwrap();
        }
        txn.commit().unwrap();
        assert_eq!(mark(), before, "no write within the block");
    }
}
