//! Writes that wait for the next durable commit instead of making one of their own:
//! confirmations (a device has every message of a queue up to an id), acks and last-seen
//! times. Losing one only means that a message is delivered again, so they need not cost
//! the flash a commit each: at one poster, a message's confirmation rides in the commit of
//! the next message.
//!
//! Invariants:
//! - what is kept here is applied at the start of the next group's transaction, before the
//!   group's own writes, in the order it came; a group made of nothing else is committed
//!   once the oldest entry is [`Deferred::due`] (its age or the count), and when the store
//!   thread stops;
//! - a confirmation kept here is already in force for reads: [`Deferred::confirmed`] is
//!   where a stream's backlog starts in that queue, so a reconnect is not sent what its
//!   device confirmed before;
//! - once applied, everything is dropped, whether the commit then succeeds or not: a
//!   failed commit costs a redelivery, and an entry that keeps failing cannot poison every
//!   later commit.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use redb::WriteTransaction;

use super::Result;
use super::memory::Memory;
use super::queue;

/// A deferred write: runs in a later group's transaction; an `Err` aborts that group.
pub type DeferredJob = Box<dyn FnOnce(&WriteTransaction, &mut Memory) -> Result<()> + Send>;

/// Entries kept at most (queues with a confirmation plus jobs) before they are committed.
pub const MAX_DEFERRED: usize = 1024;

#[derive(Default)]
pub struct Deferred {
    /// Queue → every message up to this id is confirmed.
    confirms: HashMap<u64, u64>,
    jobs: Vec<DeferredJob>,
    /// When the oldest entry came.
    since: Option<Instant>,
}

impl Deferred {
    /// The id up to which `queue` is confirmed here (0: nothing).
    pub fn confirmed(&self, queue: u64) -> u64 {
        self.confirms.get(&queue).copied().unwrap_or(0)
    }

    pub fn confirm(&mut self, queue: u64, up_to: u64) {
        let at = self.confirms.entry(queue).or_default();
        *at = (*at).max(up_to);
        self.since.get_or_insert_with(Instant::now);
    }

    pub fn push(&mut self, job: DeferredJob) {
        self.jobs.push(job);
        self.since.get_or_insert_with(Instant::now);
    }

    pub fn is_empty(&self) -> bool {
        self.since.is_none()
    }

    /// How long until the oldest entry is `max_age` old; `None` when nothing waits.
    pub fn wait(&self, max_age: Duration) -> Option<Duration> {
        self.since
            .map(|since| max_age.saturating_sub(since.elapsed()))
    }

    /// Whether the entries must be committed now, with or without other writes.
    pub fn due(&self, max_age: Duration) -> bool {
        self.confirms.len() + self.jobs.len() >= MAX_DEFERRED
            || self.wait(max_age).is_some_and(|left| left.is_zero())
    }

    /// Runs every entry in `txn` and forgets them all.
    pub fn apply(&mut self, txn: &WriteTransaction, memory: &mut Memory) -> Result<()> {
        let Deferred { confirms, jobs, .. } = std::mem::take(self);
        for job in jobs {
            job(txn, memory)?;
        }
        let mut removed = 0;
        for (queue, up_to) in confirms {
            removed += queue::confirm(txn, memory, queue, up_to)?;
        }
        if removed > 0 {
            log::debug!("{removed} confirmed messages leave the store");
        }
        Ok(())
    }
}
