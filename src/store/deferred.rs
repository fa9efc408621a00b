//! Writes that wait for the next durable commit instead of making one of their own:
//! confirmations (a device has every message of a queue up to an id), acks and last-seen
//! times. Losing one only means that a message is delivered again, so they need not cost
//! the flash a commit each: at one poster, a message's confirmation rides in the commit of
//! the next message.
//!
//! Invariants:
//! - what is kept here is applied in the open group's transaction before the next write
//!   that comes after it (an autopush `hello` after an `ack` sees the ack), or at the start
//!   of the next group; a group made of nothing else is committed once the oldest entry is
//!   [`Deferred::due`] (its age or the count), and when the store thread stops;
//! - a confirmation or an ack is in force for reads from when it arrives until the commit
//!   that applies it is over ([`Deferred::settled`]): [`Deferred::confirmed`] is where a
//!   stream's backlog starts in that queue and [`Deferred::is_acked`] leaves a message out
//!   of it, so a reconnect is not sent what its device confirmed or acked, also while the
//!   group that deletes those messages is still open;
//! - once applied, everything is dropped when that commit is over, whether it succeeded or
//!   not: a failed commit costs a redelivery, and an entry that keeps failing cannot poison
//!   every later commit.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::store::kv::WriteTransaction;

use super::Result;
use super::memory::Memory;

/// A deferred write: runs in a later group's transaction; an `Err` aborts that group.
pub type DeferredJob = Box<dyn FnOnce(&WriteTransaction, &mut Memory) -> Result<()> + Send>;

/// Entries kept at most (queues with a confirmation plus jobs) before they are committed.
pub const MAX_DEFERRED: usize = 1024;

/// What [`Deferred::take`] hands to the open group, to run in this order: the jobs, the
/// acks, the confirmations.
pub struct Taken {
    /// Deferred writes of any kind.
    pub jobs: Vec<DeferredJob>,
    /// (queue, message id) → the channel an autopush ack named.
    pub acks: HashMap<(u64, u64), String>,
    /// Queue → every message up to this id is confirmed.
    pub confirms: HashMap<u64, u64>,
}

/// The writes waiting for the next commit, and the confirmations and acks in force for
/// reads meanwhile.
#[derive(Default)]
pub struct Deferred {
    /// Queue → every message up to this id is confirmed.
    confirms: HashMap<u64, u64>,
    /// The confirmations that the open group has applied, until its commit is over.
    committing: HashMap<u64, u64>,
    /// (queue, message id) → the channel an autopush ack named.
    acks: HashMap<(u64, u64), String>,
    /// The acks that the open group has applied, until its commit is over.
    acks_committing: HashMap<(u64, u64), String>,
    jobs: Vec<DeferredJob>,
    /// When the oldest entry came.
    since: Option<Instant>,
}

impl Deferred {
    /// The id up to which `queue` is confirmed here (0: nothing).
    pub fn confirmed(&self, queue: u64) -> u64 {
        let pending = self.confirms.get(&queue).copied().unwrap_or(0);
        let applied = self.committing.get(&queue).copied().unwrap_or(0);
        pending.max(applied)
    }

    /// Every message of `queue` up to `up_to` is confirmed.
    pub fn confirm(&mut self, queue: u64, up_to: u64) {
        let at = self.confirms.entry(queue).or_default();
        *at = (*at).max(up_to);
        self.since.get_or_insert_with(Instant::now);
    }

    /// An autopush ack: message `id` of `queue`, if it belongs to `channel`, is delivered.
    pub fn ack(&mut self, queue: u64, id: u64, channel: String) {
        self.acks.insert((queue, id), channel);
        self.since.get_or_insert_with(Instant::now);
    }

    /// Whether message `id` of `queue` (of channel `registration_id`) is acked here.
    pub fn is_acked(&self, queue: u64, id: u64, registration_id: &str) -> bool {
        [&self.acks, &self.acks_committing]
            .iter()
            .any(|acks| acks.get(&(queue, id)).is_some_and(|c| c == registration_id))
    }

    /// A deferred write of any kind.
    pub fn push(&mut self, job: DeferredJob) {
        self.jobs.push(job);
        self.since.get_or_insert_with(Instant::now);
    }

    /// Whether nothing waits.
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
        self.confirms.len() + self.acks.len() + self.jobs.len() >= MAX_DEFERRED
            || self.wait(max_age).is_some_and(|left| left.is_zero())
    }

    /// Hands every entry over to be run in the open group's transaction (see
    /// `group::apply_deferred`); the confirmations stay in force for reads until
    /// [`Deferred::settled`], the acks once the caller hands them back with
    /// [`Deferred::applied_acks`].
    pub fn take(&mut self) -> Taken {
        self.since = None;
        let confirms = std::mem::take(&mut self.confirms);
        for (&queue, &up_to) in &confirms {
            let at = self.committing.entry(queue).or_default();
            *at = (*at).max(up_to);
        }
        Taken {
            jobs: std::mem::take(&mut self.jobs),
            acks: std::mem::take(&mut self.acks),
            confirms,
        }
    }

    /// The acks that the open group has applied: in force for reads until
    /// [`Deferred::settled`].
    pub fn applied_acks(&mut self, acks: HashMap<(u64, u64), String>) {
        self.acks_committing.extend(acks);
    }

    /// The commit of what [`Deferred::take`] handed over is over (done or failed).
    pub fn settled(&mut self) {
        self.committing = HashMap::new();
        self.acks_committing = HashMap::new();
    }
}
