//! One group commit: a write transaction that writes join while it is open.
//!
//! Invariants:
//! - a write runs as soon as the store thread takes it, and the messages it stores go to the
//!   live streams ([`Event::Staged`]) at once: before later writes run, before the commit;
//! - the group stays open while writes keep coming: it waits at most [`WRITE_GAP`] for the
//!   next one, never past `commit_window` after its first one nor past [`MAX_GROUP`] writes;
//!   then it commits once (one fsync), and only then learns each writer its outcome. Under
//!   load that makes fewer, larger commits, whose cost (redb's copy-on-write pages, the fsync)
//!   is paid per commit, not per message, without holding back delivery;
//! - the deferred writes run first; when they fail, the group goes on without them in a
//!   fresh transaction: a confirmation must not cost a post. Those that come while the
//!   group is open run before its next write (so a `hello` sees the `ack` sent before it);
//!   failing there, they roll the group back like any failed write;
//! - a write that fails rolls the whole group back: every writer in it gets the error;
//! - the access a write takes away ([`Event::Revoked`]) is reported as soon as it has run,
//!   ahead of the messages staged after it, and again after a successful commit, ahead of
//!   [`Event::Committed`];
//! - on a store that other nodes write too (Redis), no stream is handed messages before the
//!   commit (see [`Group::streams_take_staged`]), the commit carries its news to them, and a
//!   group takes writes for [`SHARED_GROUP`] at most.

use std::time::{Duration, Instant};

use crate::store::kv::{Database, WriteTransaction};

use super::deferred::{Deferred, Taken};
use super::memory::Memory;
use super::queue;
use super::{Completion, Error, Event, Result, Revocation, WriteJob};
use crate::metrics::CommitStats;

/// Writes in one group at most; bounds a commit's size under a flood.
pub const MAX_GROUP: usize = 512;
/// How long an open group waits for the next write before it commits.
pub const WRITE_GAP: Duration = Duration::from_millis(1);
/// How long a group on a shared store (Redis) takes writes at most, whatever
/// `commit_window` says: well within the writer lease it holds (3 s), with room for its
/// commit, so that slow round trips to Redis do not let the lease run out under a long
/// group.
pub const SHARED_GROUP: Duration = Duration::from_secs(1);

pub struct Group {
    txn: Result<WriteTransaction>,
    began: Instant,
    completions: Vec<Completion>,
    failed: bool,
    /// The queues that got messages, for [`Event::Committed`].
    queues: Vec<u64>,
    /// The access its writes took away, for [`Event::Revoked`] once it is on disk.
    revoked: Vec<Revocation>,
}

impl Group {
    /// Begins a group on `db` (or, when the database is unusable, one whose writes all get
    /// that error), with the deferred writes applied.
    pub fn begin(db: Result<&Database>, memory: &mut Memory, deferred: &mut Deferred) -> Group {
        let txn = db.and_then(|db| begin_with_deferred(db, memory, deferred));
        if let Err(e) = &txn
            && !deferred.is_empty()
        {
            log::warn!(
                "confirmations and acks dropped ({e}); their messages may be delivered again"
            );
            *deferred = Deferred::default();
        }
        Group {
            txn,
            began: Instant::now(),
            completions: Vec::new(),
            failed: false,
            queues: Vec::new(),
            revoked: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.completions.len()
    }

    /// Runs a write in the group, after the deferred writes that came before it, and hands
    /// the messages it stored to the live streams.
    pub fn run(
        &mut self,
        job: WriteJob,
        memory: &mut Memory,
        deferred: &mut Deferred,
        events: Option<&async_channel::Sender<Event>>,
    ) {
        if let Ok(txn) = &self.txn
            && !deferred.is_empty()
            && let Err(e) = apply_deferred(deferred, txn, memory)
        {
            log::warn!(
                "confirmations and acks could not be written ({e}); the group is rolled back"
            );
            self.failed = true;
        }
        let (failed, done) = job(match &self.txn {
            Ok(txn) => Ok((txn, &mut *memory)),
            Err(e) => Err(e.clone()),
        });
        self.completions.push(done);
        let staged = memory.take_staged();
        let revoked = memory.take_revoked();
        self.failed |= failed;
        if self.failed {
            return;
        }
        if !revoked.is_empty() {
            if let Some(events) = events {
                let _ = events.try_send(Event::Revoked(revoked.clone()));
            }
            self.revoked.extend(revoked);
        }
        if staged.is_empty() {
            return;
        }
        self.queues.extend(staged.iter().map(|m| m.0));
        if let Some(events) = events.filter(|_| self.streams_take_staged()) {
            let _ = events.try_send(Event::Staged(staged));
        }
    }

    /// Whether live streams get the group's messages before its commit. Not when other
    /// nodes write the store too: a stream handed this group's messages could skip a lower
    /// id that another node committed just before and whose news has not come yet; there,
    /// every stream reads its messages from the store after the commit, in id order.
    fn streams_take_staged(&self) -> bool {
        !self.on_shared_store()
    }

    /// Whether other nodes write the store too (Redis): the group then holds their writer
    /// lease, for [`SHARED_GROUP`] at most.
    fn on_shared_store(&self) -> bool {
        #[cfg(feature = "redis")]
        if let Ok(txn) = &self.txn {
            return txn.as_redis().is_some();
        }
        false
    }

    /// Whether the group takes no more writes: it holds [`MAX_GROUP`], or a write failed
    /// (the rest would only share its rollback). A group on an unusable database takes
    /// what waits, to refuse it all at once.
    pub fn is_closed(&self) -> bool {
        self.len() >= MAX_GROUP
            || (self.failed && self.txn.is_ok())
            || (self.on_shared_store() && self.began.elapsed() >= SHARED_GROUP)
    }

    /// How long to wait for another write before committing; `None`: commit now.
    pub fn linger(&self, window: Duration) -> Option<Duration> {
        if self.is_closed() || self.failed || self.txn.is_err() {
            return None;
        }
        let left = window.saturating_sub(self.began.elapsed());
        (!left.is_zero()).then(|| left.min(WRITE_GAP))
    }

    /// Commits (or, after a failed write, rolls back) and answers every writer.
    pub fn commit(
        self,
        memory: &mut Memory,
        events: Option<&async_channel::Sender<Event>>,
        stats: &CommitStats,
    ) -> Result<()> {
        let Group {
            txn,
            completions,
            failed,
            mut queues,
            revoked,
            ..
        } = self;
        let started = Instant::now();
        let outcome = match txn {
            Ok(txn) if failed => {
                let _ = txn.abort();
                Err(Error::Storage(
                    "a write in this group failed; the group was rolled back".into(),
                ))
            }
            Ok(txn) => {
                queues.sort_unstable();
                queues.dedup();
                #[cfg(feature = "redis")]
                let txn = settle_shared(&txn, memory, &queues, &revoked).map(|()| txn);
                #[cfg(not(feature = "redis"))]
                let txn = Ok(txn);
                txn.and_then(WriteTransaction::commit)
            }
            Err(e) => Err(e),
        };
        stats.record(started.elapsed(), completions.len());
        if outcome.is_ok() {
            memory.committed();
            if let Some(usage) = memory.known_usage() {
                stats.set_usage(usage.total(), usage.anonymous(), usage.uaids());
            }
        } else {
            memory.reset();
        }
        if let Err(e) = &outcome {
            log::error!("commit failed, {} writes refused: {e}", completions.len());
        }
        if let Some(events) = events.filter(|_| outcome.is_ok() && !revoked.is_empty()) {
            let _ = events.try_send(Event::Revoked(revoked));
        }
        if let Some(events) = events.filter(|_| outcome.is_ok() && !queues.is_empty()) {
            let _ = events.try_send(Event::Committed(queues));
        }
        for done in completions {
            done(outcome.clone());
        }
        outcome
    }
}

/// Runs every deferred entry in `txn`: the jobs, then the acks, then the confirmations.
fn apply_deferred(
    deferred: &mut Deferred,
    txn: &WriteTransaction,
    memory: &mut Memory,
) -> Result<()> {
    let Taken {
        jobs,
        acks,
        confirms,
    } = deferred.take();
    for job in jobs {
        job(txn, memory)?;
    }
    let mut acked = 0;
    for (&(queue, id), channel) in &acks {
        acked += usize::from(queue::acknowledge(txn, memory, queue, id, channel)?);
    }
    if acked > 0 {
        log::debug!("{acked} acknowledged messages leave the store");
    }
    deferred.applied_acks(acks);
    let mut removed = 0;
    for (queue, up_to) in confirms {
        removed += queue::confirm(txn, memory, queue, up_to)?;
    }
    if removed > 0 {
        log::debug!("{removed} confirmed messages leave the store");
    }
    Ok(())
}

/// A write transaction with the deferred writes applied; without them, in a fresh one, when
/// they fail.
fn begin_with_deferred(
    db: &Database,
    memory: &mut Memory,
    deferred: &mut Deferred,
) -> Result<WriteTransaction> {
    let txn = begin(db, memory)?;
    if deferred.is_empty() {
        return Ok(txn);
    }
    match apply_deferred(deferred, &txn, memory) {
        Ok(()) => Ok(txn),
        Err(e) => {
            log::warn!(
                "confirmations and acks could not be written ({e}); their messages may be \
                 delivered again"
            );
            let _ = txn.abort();
            memory.reset();
            begin(db, memory)
        }
    }
}

/// A write transaction; on a store that other nodes write too, with the memory told so.
fn begin(db: &Database, memory: &mut Memory) -> Result<WriteTransaction> {
    let txn = db.begin_write()?;
    #[cfg(feature = "redis")]
    if let Some(writer) = txn.as_redis() {
        let found = writer.found();
        memory.shared_store(
            found.others_committed,
            found.families_changed,
            found.usage,
            found.changed_queues.as_deref(),
        );
        // Every commit leaves the usage counts for the next node, so they must be known.
        memory.usage(&txn)?;
    }
    #[cfg(not(feature = "redis"))]
    let _ = memory;
    Ok(txn)
}

/// On a store that other nodes write too: the id counter left at the next id, and the
/// news for the other nodes' streams (with the messages of a TTL of 0, which they deliver
/// now or never).
#[cfg(feature = "redis")]
fn settle_shared(
    txn: &WriteTransaction,
    memory: &mut Memory,
    queues: &[u64],
    revoked: &[Revocation],
) -> Result<()> {
    if let Some(writer) = txn.as_redis() {
        memory.settle_ids(txn)?;
        writer.announce(queues, revoked, &memory.take_passed_on());
        let counts = memory.known_usage().map(super::budget::Usage::counts);
        writer.settle_usage(counts, memory.take_families_changed());
        writer.settle_queues(memory.take_changed_queues());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noop() -> WriteJob {
        Box::new(|_| (false, Box::new(|_| {})))
    }

    #[test]
    fn a_group_lingers_one_write_gap_at_a_time_until_its_window_ends() {
        let db = super::super::tables::in_memory();
        let (mut memory, mut deferred) = (Memory::default(), Deferred::default());
        let mut group = Group::begin(Ok(&db), &mut memory, &mut deferred);
        group.run(noop(), &mut memory, &mut deferred, None);
        let window = Duration::from_millis(30);
        assert_eq!(group.linger(window), Some(WRITE_GAP));
        assert_eq!(
            group.linger(Duration::ZERO),
            None,
            "a window of 0 never lingers"
        );
        std::thread::sleep(window);
        assert_eq!(group.linger(window), None);
        group
            .commit(&mut memory, None, &CommitStats::default())
            .unwrap();
    }

    #[test]
    fn a_full_failed_or_unusable_group_commits_at_once() {
        let db = super::super::tables::in_memory();
        let (mut memory, mut deferred) = (Memory::default(), Deferred::default());
        let window = Duration::from_secs(60);
        let mut full = Group::begin(Ok(&db), &mut memory, &mut deferred);
        for _ in 0..MAX_GROUP {
            full.run(noop(), &mut memory, &mut deferred, None);
        }
        assert_eq!(full.linger(window), None);
        assert!(full.is_closed());
        full.commit(&mut memory, None, &CommitStats::default())
            .unwrap();

        let mut failed = Group::begin(Ok(&db), &mut memory, &mut deferred);
        failed.run(
            Box::new(|_| (true, Box::new(|_| {}))),
            &mut memory,
            &mut deferred,
            None,
        );
        assert_eq!(failed.linger(window), None);
        assert!(failed.is_closed(), "a failed group takes no more writes");
        assert!(
            failed
                .commit(&mut memory, None, &CommitStats::default())
                .is_err()
        );

        let unusable = Group::begin(Err(Error::Closed), &mut memory, &mut deferred);
        assert_eq!(unusable.linger(window), None);
        assert!(!unusable.is_closed(), "it refuses what waits at once");
    }

    #[test]
    fn deferred_writes_that_come_while_a_group_is_open_run_before_its_next_write() {
        use super::super::tables::META;
        use crate::store::kv::ReadableTable;
        let db = super::super::tables::in_memory();
        let (mut memory, mut deferred) = (Memory::default(), Deferred::default());
        let mut group = Group::begin(Ok(&db), &mut memory, &mut deferred);
        group.run(noop(), &mut memory, &mut deferred, None);
        deferred.push(Box::new(|t, _| {
            t.open_table(META)?.insert("probe", 7)?;
            Ok(())
        }));
        let (seen, saw) = std::sync::mpsc::channel();
        let reads: WriteJob = Box::new(move |txn| {
            let (t, _) = txn.unwrap();
            let got = t
                .open_table(META)
                .unwrap()
                .get("probe")
                .unwrap()
                .map(|v| v.value());
            seen.send(got).unwrap();
            (false, Box::new(|_| {}))
        });
        group.run(reads, &mut memory, &mut deferred, None);
        assert_eq!(saw.recv().unwrap(), Some(7));
        assert!(deferred.is_empty());
        group
            .commit(&mut memory, None, &CommitStats::default())
            .unwrap();
    }

    fn revoking(failed: bool) -> WriteJob {
        Box::new(move |txn| {
            let (_, memory) = txn.unwrap();
            memory.revoke(Revocation::Queue(7));
            (failed, Box::new(|_| {}))
        })
    }

    fn events_of(events: &async_channel::Receiver<Event>) -> Vec<String> {
        std::iter::from_fn(|| events.try_recv().ok())
            .map(|e| format!("{e:?}"))
            .collect()
    }

    #[test]
    fn access_taken_away_is_reported_when_the_write_runs_and_again_once_committed() {
        let db = super::super::tables::in_memory();
        let (to, events) = async_channel::unbounded();
        let (mut memory, mut deferred) = (Memory::default(), Deferred::default());
        let mut group = Group::begin(Ok(&db), &mut memory, &mut deferred);
        group.run(revoking(false), &mut memory, &mut deferred, Some(&to));
        assert_eq!(events_of(&events), ["Revoked([Queue(7)])"]);
        group
            .commit(&mut memory, Some(&to), &CommitStats::default())
            .unwrap();
        assert_eq!(events_of(&events), ["Revoked([Queue(7)])"]);

        let mut failed = Group::begin(Ok(&db), &mut memory, &mut deferred);
        failed.run(revoking(true), &mut memory, &mut deferred, Some(&to));
        assert!(
            failed
                .commit(&mut memory, Some(&to), &CommitStats::default())
                .is_err()
        );
        assert!(
            events_of(&events).is_empty(),
            "a failed write takes nothing"
        );
    }

    #[test]
    fn a_confirmation_holds_for_reads_until_its_commit_is_over() {
        let db = super::super::tables::in_memory();
        let (mut deferred, mut memory) = (Deferred::default(), Memory::default());
        deferred.confirm(7, 40);
        deferred.confirm(7, 30);
        assert_eq!((deferred.confirmed(7), deferred.confirmed(8)), (40, 0));
        assert!(!deferred.is_empty());
        let txn = db.begin_write().unwrap();
        apply_deferred(&mut deferred, &txn, &mut memory).unwrap();
        assert!(deferred.is_empty(), "nothing left to apply");
        deferred.confirm(7, 20);
        assert_eq!(
            deferred.confirmed(7),
            40,
            "still in force while the group is open"
        );
        txn.commit().unwrap();
        deferred.settled();
        assert_eq!(deferred.confirmed(7), 20);
    }
}
