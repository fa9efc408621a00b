//! The store thread: the only owner of the redb `Database`.
//!
//! The event loop never touches redb. It sends jobs over a bounded channel and awaits a
//! reply. The thread takes every job that is waiting, runs the reads on one snapshot, then
//! the writes in one write transaction, commits once (one fsync for the whole group), and
//! only then answers each writer. So a caller that got `Ok` from [`Store::write`] holds a
//! durable result, and a job refused for business reasons must leave the transaction
//! untouched (ops validate before they mutate).
//!
//! A job that fails with a storage error aborts the whole group; every writer in it gets
//! that error and nothing of the group is on disk.

pub mod accounts;
mod codec;
pub mod tables;

pub use codec::{AppRecord, ClientRecord, MessageRecord, UserRecord};

use std::fmt;
use std::path::Path;
use std::sync::{Arc, mpsc};
use std::time::Instant;

use crate::metrics::CommitStats;

use redb::{Database, ReadTransaction, ReadableDatabase, WriteTransaction};

/// Writes grouped into one commit at most; bounds a commit's latency under a flood.
const MAX_GROUP: usize = 512;

#[derive(Clone, Debug)]
pub enum Error {
    /// The disk is full; nothing of the request was stored.
    Full,
    /// Too many jobs are waiting for the store.
    Busy,
    /// The store thread is gone (shutting down).
    Closed,
    /// Any other storage failure; the text is for the log, not for clients.
    Storage(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Full => f.write_str("the disk is full"),
            Error::Busy => f.write_str("the store is overloaded"),
            Error::Closed => f.write_str("the store is closed"),
            Error::Storage(e) => write!(f, "storage error: {e}"),
        }
    }
}

fn is_disk_full(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(28) || e.kind() == std::io::ErrorKind::StorageFull
}

impl From<redb::StorageError> for Error {
    fn from(e: redb::StorageError) -> Error {
        match &e {
            redb::StorageError::Io(io) if is_disk_full(io) => Error::Full,
            _ => Error::Storage(e.to_string()),
        }
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Error {
                match e.into() {
                    redb::Error::Io(io) if is_disk_full(&io) => Error::Full,
                    other => Error::Storage(other.to_string()),
                }
            }
        }
    )*};
}
from_redb!(
    redb::Error,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError,
    redb::DatabaseError
);

pub type Result<T> = std::result::Result<T, Error>;

type Reply<T> = async_channel::Sender<Result<T>>;
type ReadJob = Box<dyn FnOnce(Result<&ReadTransaction>) + Send>;
/// Runs a write; returns whether it failed (which aborts the group) and what to do once the
/// group's outcome is known.
type WriteJob = Box<dyn FnOnce(Result<&WriteTransaction>) -> (bool, Completion) + Send>;
type Completion = Box<dyn FnOnce(Result<()>) + Send>;

enum Job {
    Read(ReadJob),
    Write(WriteJob),
}

/// A handle to the store thread. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    jobs: mpsc::SyncSender<Job>,
    commits: Arc<CommitStats>,
}

/// Why the database could not be opened; each has its own exit message.
#[derive(Debug)]
pub enum OpenError {
    /// Another process (normally a running server) holds the file.
    Locked,
    /// The file was written by another schema version of openpush.
    Schema(String),
    Other(String),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Locked => f.write_str("the database is in use by another process"),
            OpenError::Schema(e) | OpenError::Other(e) => f.write_str(e),
        }
    }
}

/// Opens (or creates) the database and starts the store thread.
pub fn open(
    path: &Path,
    cache_bytes: usize,
    queue: usize,
) -> std::result::Result<Store, OpenError> {
    let db = open_database(path, cache_bytes)?;
    let (jobs, inbox) = mpsc::sync_channel(queue);
    let commits = Arc::new(CommitStats::default());
    let stats = commits.clone();
    std::thread::Builder::new()
        .name("store".into())
        .spawn(move || run(db, inbox, &stats))
        .map_err(|e| OpenError::Other(format!("cannot start the store thread: {e}")))?;
    Ok(Store { jobs, commits })
}

fn open_database(path: &Path, cache_bytes: usize) -> std::result::Result<Database, OpenError> {
    let shown = path.display();
    if path.is_dir() {
        return Err(OpenError::Other(format!(
            "{shown} is a directory, not a database file"
        )));
    }
    let existed = path.exists();
    let db = redb::Builder::new()
        .set_cache_size(cache_bytes)
        .create(path)
        .map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => OpenError::Locked,
            redb::DatabaseError::UpgradeRequired(v) => OpenError::Schema(format!(
                "{shown} uses redb file format {v}, which this openpush cannot read"
            )),
            redb::DatabaseError::Storage(redb::StorageError::Io(io)) => {
                OpenError::Other(format!("cannot open {shown}: {io}"))
            }
            other => OpenError::Other(format!(
                "{shown} is not an openpush database or is damaged: {other}"
            )),
        })?;
    tables::init_or_check(&db, existed).map_err(|e| match e {
        tables::SchemaError::Version(found) => OpenError::Schema(format!(
            "{shown} has schema version {found}; this openpush reads version {}",
            tables::SCHEMA_VERSION
        )),
        tables::SchemaError::Foreign => OpenError::Schema(format!(
            "{shown} is a redb file but not an openpush database; refusing to touch it"
        )),
        tables::SchemaError::Store(e) => {
            OpenError::Other(format!("cannot initialise {shown}: {e}"))
        }
    })?;
    Ok(db)
}

fn run(db: Database, inbox: mpsc::Receiver<Job>, stats: &CommitStats) {
    let mut reads: Vec<ReadJob> = Vec::new();
    let mut writes: Vec<WriteJob> = Vec::new();
    while let Ok(first) = inbox.recv() {
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                Job::Read(r) => reads.push(r),
                Job::Write(w) => writes.push(w),
            }
            if writes.len() < MAX_GROUP {
                next = inbox.try_recv().ok();
            }
        }
        if !reads.is_empty() {
            match db.begin_read() {
                Ok(snapshot) => reads.drain(..).for_each(|job| job(Ok(&snapshot))),
                Err(e) => {
                    let e = Error::from(e);
                    reads.drain(..).for_each(|job| job(Err(e.clone())));
                }
            }
        }
        if !writes.is_empty() {
            let started = Instant::now();
            let n = writes.len();
            commit_group(&db, &mut writes);
            stats.record(started.elapsed(), n);
        }
    }
    log::debug!("store thread stopped");
}

fn commit_group(db: &Database, writes: &mut Vec<WriteJob>) {
    let txn = db.begin_write().map_err(Error::from);
    let mut failed = false;
    let completions: Vec<Completion> = writes
        .drain(..)
        .map(|job| {
            let (job_failed, done) = job(txn.as_ref().map_err(Clone::clone));
            failed |= job_failed;
            done
        })
        .collect();
    let outcome = match txn {
        Ok(txn) if failed => {
            let _ = txn.abort();
            Err(Error::Storage(
                "a write in this group failed; the group was rolled back".into(),
            ))
        }
        Ok(txn) => txn.commit().map_err(Error::from),
        Err(e) => Err(e),
    };
    if let Err(e) = &outcome {
        log::error!("commit failed, {} writes refused: {e}", completions.len());
    }
    for done in completions {
        done(outcome.clone());
    }
}

impl Store {
    pub fn commit_stats(&self) -> &CommitStats {
        &self.commits
    }

    fn submit(&self, job: Job) -> Result<()> {
        self.jobs.try_send(job).map_err(|e| match e {
            mpsc::TrySendError::Full(_) => Error::Busy,
            mpsc::TrySendError::Disconnected(_) => Error::Closed,
        })
    }

    /// Runs `f` on a consistent snapshot off the event loop.
    pub async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&ReadTransaction) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = async_channel::bounded(1);
        self.submit(Job::Read(Box::new(move |snapshot| {
            let _ = reply.try_send(snapshot.and_then(f));
        })))?;
        answer.recv().await.unwrap_or(Err(Error::Closed))
    }

    /// Runs `f` in the next group commit; resolves once the group is durable on disk.
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction) -> Result<T> + Send + 'static,
    {
        let (reply, answer): (Reply<T>, _) = async_channel::bounded(1);
        self.submit(Job::Write(Box::new(move |txn| {
            let result = txn.and_then(f);
            let failed = result.is_err();
            let done: Completion = Box::new(move |outcome| {
                let _ = reply.try_send(outcome.and(result));
            });
            (failed, done)
        })))?;
        answer.recv().await.unwrap_or(Err(Error::Closed))
    }
}
