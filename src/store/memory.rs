//! What the store thread keeps in memory instead of writing it with every message, to
//! spare a router's flash: the next message id and each queue's size; and the messages
//! the transaction being built has stored, to be handed to live streams before its commit,
//! with the access its writes took away.
//!
//! Invariants:
//! - every id handed out is below the high-water mark in `meta`: the store thread raises
//!   it by a block in a commit of its own at start ([`Memory::reserve_ids`]), and then a
//!   transaction raises it by a block when half a block is left, so an id is handed out
//!   below a mark that is already on disk. Ids are never reused, after a crash or a failed
//!   commit, even for messages that live streams saw before their commit failed; only one
//!   commit in about [`ID_BLOCK`] / 2 writes `meta`;
//! - a queue size (messages and stored bytes), once loaded by reading the queue's
//!   messages, changes only with the insertions and removals of the transaction being built;
//! - the store's [`Usage`] (see `store::budget`) is read once at start and changes only
//!   with the insertions and removals of the transaction being built, and with the topics
//!   it creates, claims and deletes;
//! - after a failed or aborted commit, [`Memory::reset`] forgets the queue sizes and the
//!   usage, which are read again from the last durable state; ids go on above every id
//!   handed out before.

use std::collections::HashMap;

use crate::store::kv::{ReadableTable, WriteTransaction};

use super::budget::{Budget, Overrun, Usage};
use super::tables::{ID_HIGH_WATER, MESSAGES, META, Tables};
use super::{Result, Revocation};

/// Ids reserved by one write of the high-water mark.
pub const ID_BLOCK: u64 = 4096;
/// Queue sizes remembered at most; past it the map is cleared and reloaded on demand.
const MAX_QUEUE_SIZES: usize = 65_536;

/// The messages of one queue and their stored bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct QueueSize {
    /// Messages queued.
    pub messages: u64,
    /// Their stored bytes.
    pub bytes: u64,
}

/// Message ids: the next to hand out, the high-water mark of the transaction being built,
/// and the mark as last committed.
#[derive(Clone, Copy, Debug)]
struct Ids {
    next: u64,
    mark: u64,
    durable: u64,
}

/// What the store thread keeps in memory between transactions: message ids, queue sizes,
/// the store's usage, and the messages staged for the live streams.
#[derive(Default)]
pub struct Memory {
    ids: Option<Ids>,
    queue_sizes: HashMap<u64, QueueSize>,
    /// `None` until read from the store (at start, and after a failed commit).
    usage: Option<Usage>,
    /// Keep the messages stored by the transaction being built (someone streams them).
    pub(crate) staging: bool,
    staged: Vec<Staged>,
    /// Other nodes write the store too (Redis; see [`Memory::shared_store`]).
    shared: bool,
    /// A topic was created, claimed or deleted: which queues are a family's changed.
    families_changed: bool,
    /// On a shared store: the queues whose messages the transaction changed, which the
    /// other nodes' caches of their sizes must forget.
    changed_queues: Vec<u64>,
    /// Messages with a TTL of 0 the transaction took, for the other nodes' streams.
    passed_on: Vec<Staged>,
    /// Access the write being run took away (see [`Revocation`]).
    revoked: Vec<Revocation>,
}

/// A message stored by the transaction being built: (queue, id, record).
pub type Staged = (u64, u64, super::MessageRecord);

impl Memory {
    /// Forgets what a failed commit may have left behind. Ids go on from where they were:
    /// live streams may have seen the ids of the failed group.
    pub fn reset(&mut self) {
        let ids = self.ids.map(|ids| Ids {
            mark: ids.durable,
            ..ids
        });
        *self = Memory {
            staging: self.staging,
            ids,
            ..Memory::default()
        };
    }

    /// Begins a write on a store that other nodes write too (Redis): their commits since
    /// this node's last one make its usage and queue sizes stale, and message ids always
    /// continue from the store's counter, which every commit leaves at the next id
    /// ([`Memory::settle_ids`]).
    ///
    /// `usage`: the budget's counts (total, anonymous, autopush) that the last commit left;
    /// with them the usage follows the other nodes' commits without a scan of the store,
    /// unless a commit changed which queues are a family's (`families_changed`): then it is
    /// read again.
    ///
    /// `changed_queues`: the queues the other nodes' commits changed since this node's last
    /// one, whose sizes it forgets; `None` if that is not known (it forgets them all).
    pub fn shared_store(
        &mut self,
        others_committed: bool,
        families_changed: bool,
        usage: Option<[u64; 3]>,
        changed_queues: Option<&[u64]>,
    ) {
        self.shared = true;
        self.ids = None;
        if others_committed {
            match changed_queues {
                Some(queues) => queues.iter().for_each(|q| {
                    self.queue_sizes.remove(q);
                }),
                None => self.queue_sizes.clear(),
            }
            self.usage = match (self.usage.take(), usage) {
                (Some(known), Some(counts)) if !families_changed => Some(known.with_counts(counts)),
                _ => None,
            };
        }
    }

    /// The queues whose messages the transaction changed (on a shared store), since the
    /// last call.
    pub fn take_changed_queues(&mut self) -> Vec<u64> {
        let mut queues = std::mem::take(&mut self.changed_queues);
        queues.sort_unstable();
        queues.dedup();
        queues
    }

    /// Whether the transaction changed which queues are a family's, since the last call.
    pub fn take_families_changed(&mut self) -> bool {
        std::mem::take(&mut self.families_changed)
    }

    /// Leaves the store's id counter at the next id to hand out, not at a reserved block's
    /// end, for a store that other nodes write too ([`Memory::shared_store`]).
    pub fn settle_ids(&self, txn: &WriteTransaction) -> Result<()> {
        if let Some(ids) = self.ids {
            txn.open_table(META)?.insert(ID_HIGH_WATER, ids.next)?;
        }
        Ok(())
    }

    /// The transaction built so far is committed.
    pub fn committed(&mut self) {
        if let Some(ids) = &mut self.ids {
            ids.durable = ids.mark;
        }
    }

    /// Raises the mark by a block in a commit of its own, before any id is handed out, so
    /// that every id of this run is below a mark already on disk when it is handed out.
    pub fn reserve_ids(&mut self, db: &crate::store::kv::Database) -> Result<()> {
        if db.as_redb().is_none() {
            return Ok(());
        }
        let txn = db.begin_write()?;
        let durable = txn
            .open_table(META)?
            .get(ID_HIGH_WATER)?
            .map_or(1, |v| v.value());
        let mark = durable + ID_BLOCK;
        txn.open_table(META)?.insert(ID_HIGH_WATER, mark)?;
        txn.commit()?;
        self.ids = Some(Ids {
            next: durable,
            mark,
            durable: mark,
        });
        Ok(())
    }

    /// The store's usage, read from `txn` (a scan of every message and topic) if it is not
    /// known yet: at start, and after a failed commit.
    pub fn usage(&mut self, txn: &impl Tables) -> Result<&Usage> {
        if self.usage.is_none() {
            self.usage = Some(Usage::load(txn)?);
        }
        Ok(self.usage.as_ref().expect("loaded above"))
    }

    /// The store's usage, if it is known now.
    pub fn known_usage(&self) -> Option<&Usage> {
        self.usage.as_ref()
    }

    /// Whether `queue` (`None`: one yet to be made for an anonymous post) may grow from
    /// `freed` to `added` bytes within `budget`.
    pub fn check_budget(
        &mut self,
        txn: &impl Tables,
        queue: Option<u64>,
        freed: u64,
        added: u64,
        budget: &Budget,
    ) -> Result<Option<Overrun>> {
        Ok(self.usage(txn)?.check(queue, freed, added, budget))
    }

    /// Records a scheduled record of `record_len` bytes from `sender` added or removed, in
    /// the usage if it is known (else it is read with the change, see [`Memory::usage`]).
    pub fn adjust_scheduled(&mut self, record_len: usize, sender: super::Sender, added: bool) {
        if let Some(usage) = &mut self.usage {
            usage.adjust_scheduled(record_len, sender, added);
        }
    }

    /// A topic was created: a family queue if `family` (see `store::budget`).
    pub fn topic_created(&mut self, queue: u64, family: bool) {
        self.families_changed |= family;
        if let (Some(usage), true) = (&mut self.usage, family) {
            usage.add_family(queue);
        }
    }

    /// A topic was claimed by a user: if that makes its queue a family queue, its messages
    /// leave the anonymous share.
    pub fn topic_claimed(
        &mut self,
        txn: &WriteTransaction,
        queue: u64,
        family: bool,
    ) -> Result<()> {
        self.families_changed |= family;
        if !family || self.usage.is_none() {
            return Ok(());
        }
        let size = self.queue_size(&txn.open_table(MESSAGES)?, queue)?;
        if let Some(usage) = &mut self.usage {
            usage.make_family(queue, size.messages, size.bytes);
        }
        Ok(())
    }

    /// A topic was deleted with its messages.
    pub fn topic_deleted(&mut self, queue: u64) {
        self.families_changed = true;
        if self.shared {
            self.changed_queues.push(queue);
        }
        if let Some(usage) = &mut self.usage {
            usage.forget_queue(queue);
        }
    }

    /// The highest message id handed out so far (0: none in this run).
    pub fn last_handed_out(&self) -> u64 {
        self.ids.map_or(0, |ids| ids.next.saturating_sub(1))
    }

    /// Notes a message the transaction stored, if messages are being staged.
    pub fn stage(&mut self, queue: u64, id: u64, record: &super::MessageRecord) {
        if self.staging {
            self.staged.push((queue, id, record.clone()));
        }
    }

    /// Notes a message with a TTL of 0 (never stored) that the transaction took, when
    /// other nodes' streams must get it too (see [`Memory::shared_store`]).
    pub fn pass_on(&mut self, queue: u64, id: u64, record: &super::MessageRecord) {
        if self.shared {
            self.passed_on.push((queue, id, record.clone()));
        }
    }

    /// The messages with a TTL of 0 noted since the last call.
    pub fn take_passed_on(&mut self) -> Vec<Staged> {
        std::mem::take(&mut self.passed_on)
    }

    /// The messages staged since the last call, in id order.
    pub fn take_staged(&mut self) -> Vec<Staged> {
        std::mem::take(&mut self.staged)
    }

    /// Records access that the write being run takes away: its streams must end.
    pub fn revoke(&mut self, revocation: Revocation) {
        self.revoked.push(revocation);
    }

    /// The access taken away since the last call.
    pub fn take_revoked(&mut self) -> Vec<Revocation> {
        std::mem::take(&mut self.revoked)
    }

    /// The next message id. Half a block before the mark, the transaction raises the mark
    /// by a block, so ids are handed out below a committed mark while commits succeed.
    pub fn next_message_id(&mut self, txn: &WriteTransaction) -> Result<u64> {
        let mut ids = match self.ids {
            Some(ids) => ids,
            None => {
                let mark = txn.open_table(META)?.get(ID_HIGH_WATER)?.map(|v| v.value());
                // A shared store without a counter lost its data while this node ran: its
                // new history starts where no cursor of the old one is likely to be.
                let mark = match mark {
                    Some(mark) => mark,
                    None if self.shared => super::tables::fresh_id_base(),
                    None => 1,
                };
                Ids {
                    next: mark,
                    mark,
                    durable: mark,
                }
            }
        };
        if ids.next + ID_BLOCK / 2 >= ids.mark {
            ids.mark = ids.next.max(ids.mark) + ID_BLOCK;
            txn.open_table(META)?.insert(ID_HIGH_WATER, ids.mark)?;
        }
        let id = ids.next;
        ids.next += 1;
        self.ids = Some(ids);
        Ok(id)
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

    /// Records a stored record of `bytes` added to or removed from a loaded queue, and
    /// from the usage.
    pub fn adjust_queue_size(&mut self, queue: u64, bytes: usize, added: bool) {
        if self.shared {
            self.changed_queues.push(queue);
        }
        if let Some(usage) = &mut self.usage {
            usage.adjust(queue, bytes, added);
        }
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

    #[test]
    fn ids_are_never_reused_after_a_lost_memory_or_an_aborted_commit() {
        let db = super::super::tables::in_memory();
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

        // A failed commit that reserved a new block: its ids are not handed out again.
        let txn = db.begin_write().unwrap();
        let mut last = 0;
        for _ in 0..ID_BLOCK + 1 {
            last = memory.next_message_id(&txn).unwrap();
        }
        txn.abort().unwrap();
        memory.reset();
        let txn = db.begin_write().unwrap();
        let next = memory.next_message_id(&txn).unwrap();
        txn.commit().unwrap();
        assert!(next > last, "{next} <= {last}");

        // A process that crashed with ids handed out below the mark starts above it.
        let mut fresh = Memory::default();
        let txn = db.begin_write().unwrap();
        let restarted = fresh.next_message_id(&txn).unwrap();
        assert!(restarted > after, "{restarted} <= {after}");
    }

    #[test]
    fn the_mark_is_written_once_per_block() {
        let db = super::super::tables::in_memory();
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
        for _ in 0..ID_BLOCK / 2 - 2 {
            memory.next_message_id(&txn).unwrap();
        }
        txn.commit().unwrap();
        assert_eq!(mark(), before, "no write within half a block");
    }

    #[test]
    fn after_the_reservation_every_id_is_below_a_committed_mark() {
        let db = super::super::tables::in_memory();
        let mut memory = Memory::default();
        memory.reserve_ids(&db).unwrap();
        let mark = || {
            let read = db.begin_read().unwrap();
            let meta = read.open_table(META).unwrap();
            meta.get(ID_HIGH_WATER).unwrap().unwrap().value()
        };
        for _ in 0..3 * ID_BLOCK {
            let committed = mark();
            let txn = db.begin_write().unwrap();
            let id = memory.next_message_id(&txn).unwrap();
            assert!(id < committed, "{id} >= {committed}");
            if id % 7 == 0 {
                txn.abort().unwrap();
                memory.reset();
            } else {
                txn.commit().unwrap();
                memory.committed();
            }
        }
    }
}
