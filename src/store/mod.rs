//! The store thread: the only owner of the redb `Database`.
//!
//! The event loop never touches redb. It sends jobs over a bounded channel and awaits a
//! reply. The thread runs each write as it takes it in the open group's write transaction,
//! and the reads that wait on a snapshot of the last commit; the group commits once (one
//! fsync for all its writes, see `group` for how long it stays open), and only then answers
//! each writer. So a caller that got `Ok` from [`Store::write`] holds a durable result, and
//! a job refused for business reasons must leave the transaction untouched (ops validate
//! before they mutate).
//!
//! Confirmations, acks and last-seen times are not writes of their own: they wait in
//! [`Deferred`] for the next group's transaction, or for a commit of their own once they are
//! [`Config::confirm_delay`](crate::config::Config) old, and are committed when the thread
//! stops. A confirmation is in force for reads as soon as it arrives (see `deferred`). That
//! spares the flash a commit per delivered message: at one poster, a message's
//! confirmation rides in the commit of the next one.
//!
//! A read sees the last commit, and beside it ([`Unsettled`]) the confirmations not yet
//! committed and how far message ids are settled: every id up to `settled_through` was
//! handed out by a group that is over, and the open group's ids are all above it. A stream
//! that has read everything up to that id has every message below the ones the open group
//! stages (see `stream::position`).
//!
//! A job that fails with a storage error aborts the whole group; every writer in it gets
//! that error and nothing of the group is on disk. When the disk fails a write (full, or
//! an I/O error), redb refuses further writes until it is reopened: the thread keeps
//! serving reads from the handle it has, refuses writes with the same error, and reopens
//! the file once its directory has room again.

pub mod accounts;
pub mod autopush;
pub mod budget;
mod codec;
pub mod deferred;
pub(crate) mod group;
pub mod kv;
pub mod memory;
pub mod queue;
pub mod schedule;
pub mod tables;
pub mod tokens;
pub mod topics;

pub use codec::{
    AppRecord, ClientRecord, Content, EndpointRecord, Grant, MessageRecord, Priority,
    ScheduledRecord, Sender, Sequence, SequenceEvent, TokenRecord, TopicRecord, UaidRecord,
    UserRecord,
};

use std::fmt;
use std::path::Path;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use crate::metrics::CommitStats;
use deferred::{Deferred, DeferredJob};
use group::Group;
use memory::Memory;

use kv::{Database, ReadTransaction, WriteTransaction};

/// After a failed write, how often reopening the database is tried.
const REOPEN_INTERVAL: Duration = Duration::from_secs(1);
/// Free bytes the database's directory must have before a reopen is tried, so a reopen
/// does not give up the working read handle while the disk is still full.
const REOPEN_PROBE_BYTES: usize = 64 * 1024;

/// Why the store could not do what was asked.
#[derive(Clone, Debug)]
pub enum Error {
    /// The disk is full; nothing of the request was stored.
    Full,
    /// Too many jobs are waiting for the store.
    Busy,
    /// The store thread is gone (shutting down).
    Closed,
    /// The disk failed a write; writes are refused until the database is reopened.
    Io(String),
    /// Any other storage failure; the text is for the log, not for clients.
    Storage(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Full => f.write_str("the disk is full"),
            Error::Busy => f.write_str("the store is overloaded"),
            Error::Closed => f.write_str("the store is closed"),
            Error::Io(e) => write!(f, "storage I/O error: {e}"),
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
            redb::StorageError::Io(_) | redb::StorageError::PreviousIo => Error::Io(e.to_string()),
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
                    redb::Error::Io(io) => Error::Io(io.to_string()),
                    redb::Error::PreviousIo => Error::Io("a previous write failed".into()),
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

/// A store result.
pub type Result<T> = std::result::Result<T, Error>;

/// Why an account operation (`accounts`, `tokens`) was refused. Nothing was written.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// No such user, client, app or token.
    NotFound,
    /// The name is taken (the reason).
    Conflict(String),
    /// The request breaks a rule (the reason).
    Invalid(String),
    /// A count limit is reached (which).
    Limit(String),
}

/// What an account operation gives: its result, or why it was refused.
pub type Outcome<T> = std::result::Result<T, Refusal>;

type Reply<T> = async_channel::Sender<Result<T>>;
type ReadJob = Box<dyn FnOnce(Result<(&ReadTransaction, &Unsettled)>) + Send>;
/// Runs a write; returns whether it failed (which aborts the group) and what to do once the
/// group's outcome is known.
pub(crate) type WriteJob =
    Box<dyn FnOnce(Result<(&WriteTransaction, &mut Memory)>) -> (bool, Completion) + Send>;
pub(crate) type Completion = Box<dyn FnOnce(Result<()>) + Send>;

enum Job {
    Read(ReadJob),
    Write(WriteJob),
    /// A write for the next group (see [`Deferred`]).
    Defer(DeferredJob),
    /// The device of these queues has every message up to this id.
    Confirm(Vec<u64>, u64),
    /// The user agent of this queue has these messages: (channel, id).
    Ack(u64, Vec<(String, u64)>),
    /// From now on, send [`Event`]s for every commit to this channel.
    Subscribe(async_channel::Sender<Event>),
}

/// What the store thread tells the event loop about each group commit, in commit order,
/// so that live streams get messages before the fsync and learn of each commit in turn.
#[derive(Debug)]
pub enum Event {
    /// Messages the group being committed has stored, in id order; the commit may yet fail.
    Staged(Vec<memory::Staged>),
    /// Access that a write of the group took away, whose streams must end. Sent when the
    /// write has run, before the messages staged after it, so that none of those reaches
    /// such a stream; and again once the group is on disk, so that a stream that attached
    /// in between, and checked its access on the snapshot before the commit, ends too. The
    /// first may come for a group whose commit then fails: a stream ended for nothing
    /// reconnects.
    Revoked(Vec<Revocation>),
    /// That group is on disk: the queues that got messages in it.
    Committed(Vec<u64>),
    /// Messages with a TTL of 0 (never stored) that another node took: for the live streams
    /// of their queues now, or for nobody.
    PassedOn(Vec<memory::Staged>),
    /// News of other nodes' commits may have been missed (the connection that brings them
    /// was lost): every live stream reads its queues again.
    Resync,
}

/// Access a write took away from the live streams, as [`Event::Revoked`] reports it. Every
/// write that narrows who may read a queue records one ([`Memory::revoke`]), so that no
/// caller has to remember to end the streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revocation {
    /// The queue is gone (its client or topic was deleted): all its streams end.
    Queue(u64),
    /// Who may no longer read the queue: a user, or (`None`) requests without one.
    Reader {
        /// The queue.
        queue: u64,
        /// The user; `None`: requests without one.
        user: Option<u64>,
    },
    /// The user is gone, or its name or password changed: every stream it opened ends
    /// (with its name and password or with one of its tokens), wherever it reads.
    User(u64),
    /// One of the user's access tokens is gone: every stream opened with it ends.
    Token {
        /// The token's user.
        user: u64,
        /// The token's number.
        token: u64,
    },
}

/// What a read sees beside its snapshot of the last commit: what the store thread holds
/// that is not on disk yet.
pub struct Unsettled<'a> {
    /// Confirmations not committed yet.
    pub deferred: &'a Deferred,
    /// Every message id up to this one was handed out by a group that is over: its message
    /// is in the snapshot, or was removed since, or never existed (its group failed). Ids
    /// above it belong to the open group or to later ones.
    pub settled_through: u64,
    /// Whether the read is a snapshot (redb). On Redis each call sees the last commit of
    /// its time, so a backlog of several queues could see a later commit in one queue and
    /// not in another: backlogs there leave out the ids above `settled_through` (read before
    /// the read's calls), whose commits' news brings them.
    pub snapshot: bool,
    /// The highest message id handed out so far (by the open group, too). A cursor above it
    /// comes from a history the store no longer has (a restored backup, a lost Redis): it
    /// confirms nothing (see [`Store::highest_id`]).
    pub handed_out_through: u64,
}

/// A handle to the store thread. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    jobs: mpsc::SyncSender<Job>,
    commits: Arc<CommitStats>,
    /// The database's key for the names senders see (`tables::names_key`).
    names_key: [u8; 32],
}

/// Why the database could not be opened; each has its own exit message.
#[derive(Debug)]
pub enum OpenError {
    /// Another process (normally a running server) holds the file.
    Locked,
    /// The file was written by another schema version of openpush.
    Schema(String),
    /// Anything else: the reason, for the exit message.
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

/// Where the Redis backend is (`store = redis://…`).
#[derive(Clone, Debug)]
pub struct RedisOptions {
    /// `redis://[[user]:password@]host[:port][/db]`.
    pub url: String,
    /// The prefix of every key.
    pub prefix: String,
    /// Refuse a server that does not fsync each write before it answers.
    pub require_fsync: bool,
}

/// How the store thread runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// The Redis server, instead of the redb file.
    pub redis: Option<RedisOptions>,
    /// Redb's page cache.
    pub cache_bytes: usize,
    /// Jobs waiting for the thread at most; more are refused with [`Error::Busy`].
    pub queue: usize,
    /// How long confirmations and acks may wait for another commit (see [`Deferred`]).
    pub confirm_delay: Duration,
    /// How long a group commit stays open for more writes after its first (see `group`).
    pub commit_window: Duration,
}

/// Opens (or creates) the database and starts the store thread.
pub fn open(path: &Path, options: &Options) -> std::result::Result<Store, OpenError> {
    let db = match &options.redis {
        Some(redis) => open_redis(redis)?,
        None => open_database(path, options.cache_bytes)?,
    };
    let names_key = tables::names_key(&db).unwrap_or_else(|e| {
        log::warn!(
            "cannot store a key for message names ({e}); this run uses one of its own, so \
             the Location of a message differs after a restart"
        );
        crate::secret::random_bytes()
    });
    let (jobs, inbox) = mpsc::sync_channel(options.queue);
    let commits = Arc::new(CommitStats::default());
    let stats = commits.clone();
    std::thread::Builder::new()
        .name("store".into())
        .spawn({
            let path = path.to_owned();
            let options = options.clone();
            move || run(db, &path, &options, inbox, &stats)
        })
        .map_err(|e| OpenError::Other(format!("cannot start the store thread: {e}")))?;
    Ok(Store {
        jobs,
        commits,
        names_key,
    })
}

/// Connects to the Redis server and makes or checks its `meta` entries.
#[cfg(feature = "redis")]
fn open_redis(options: &RedisOptions) -> std::result::Result<Database, OpenError> {
    let backend = kv::redis::Backend::open(&options.url, &options.prefix, options.require_fsync)
        .map_err(OpenError::Other)?;
    let db = Database::Redis(backend);
    tables::init_or_check_shared(&db).map_err(|e| match e {
        tables::SchemaError::Version(found) => OpenError::Schema(format!(
            "the Redis store has schema version {found}; this openpush reads version {}",
            tables::SCHEMA_VERSION
        )),
        tables::SchemaError::Foreign => OpenError::Schema("not an openpush store".into()),
        tables::SchemaError::Store(e) => {
            OpenError::Other(format!("cannot initialise the Redis store: {e}"))
        }
    })?;
    Ok(db)
}

#[cfg(not(feature = "redis"))]
fn open_redis(_: &RedisOptions) -> std::result::Result<Database, OpenError> {
    Err(OpenError::Other(
        "store names a Redis server, but this openpush was built without the redis feature".into(),
    ))
}

fn open_database(path: &Path, cache_bytes: usize) -> std::result::Result<Database, OpenError> {
    let shown = path.display();
    if path.is_dir() {
        return Err(OpenError::Other(format!(
            "{shown} is a directory, not a database file"
        )));
    }
    let schema_error = |e: tables::SchemaError| match e {
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
    };
    let open_error = |e: redb::DatabaseError| match e {
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
    };
    // Look before writing: opening for writes may already change the file, and a file
    // that is not ours must stay as it is. A file that needs repair (after a crash) cannot
    // be read this way; it is repaired by the writable open below.
    if std::fs::metadata(path).is_ok_and(|m| m.len() > 0) {
        match redb::Builder::new().open_read_only(path) {
            Ok(snapshot) => {
                tables::check(&snapshot).map_err(schema_error)?;
            }
            Err(redb::DatabaseError::RepairAborted) => {}
            Err(e) => return Err(open_error(e)),
        }
    }
    create_private(path).map_err(|e| OpenError::Other(format!("cannot open {shown}: {e}")))?;
    let db = redb::Builder::new()
        .set_cache_size(cache_bytes)
        .create(path)
        .map_err(open_error)?;
    tables::init_or_check(&db).map_err(schema_error)?;
    Ok(Database::Redb(db))
}

/// Creates the database file, if there is none, readable and writable by its owner only
/// (0600, whatever the umask): it holds password hashes, client keys and routing tokens.
/// An existing file keeps its mode; one that others may read is logged.
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match created {
        // The umask may only have taken bits away; set the mode itself all the same.
        Ok(file) => file.set_permissions(std::fs::Permissions::from_mode(0o600)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            if let Ok(meta) = std::fs::metadata(path)
                && meta.permissions().mode() & 0o007 != 0
            {
                log::warn!(
                    "{} is open to every user of this host (mode {:o}), and it holds \
                     password hashes and keys: chmod 600 it",
                    path.display(),
                    meta.permissions().mode() & 0o7777
                );
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// The store thread: takes jobs until every sender is gone, reads on snapshots, writes in
/// groups, deferred writes when due.
// Over 70 lines: the loop's state is its locals (the group, the deferred writes, the broken
// database, the subscriber); splitting it takes a struct of them first.
#[allow(clippy::too_many_lines)]
fn run(
    db: Database,
    path: &Path,
    options: &Options,
    inbox: mpsc::Receiver<Job>,
    stats: &CommitStats,
) {
    use mpsc::RecvTimeoutError::{Disconnected, Timeout};
    let mut memory = Memory::default();
    if let Err(e) = memory.reserve_ids(&db) {
        log::warn!("reserving message ids failed ({e}); they are reserved with the first message");
    }
    log_usage(&db, &mut memory, stats);
    let mut db = Some(db);
    // Set when the disk failed a write: redb then refuses writes until it is reopened.
    // Reads go on from the old handle meanwhile, so stored messages are still delivered.
    let mut broken: Option<(Error, Instant)> = None;
    let mut reads: Vec<ReadJob> = Vec::new();
    let mut group: Option<Group> = None;
    // Lingering pays only under concurrent writes: a lone writer's next write cannot come
    // before its answer, which waits for the commit.
    let mut window = Duration::ZERO;
    let mut deferred = Deferred::default();
    let mut settled_through = memory.last_handed_out();
    let mut events: Option<async_channel::Sender<Event>> = None;
    loop {
        // An open group waits a little for more writes; otherwise any job is awaited, until
        // the deferred writes are due.
        let received = match &group {
            Some(open) => match open.linger(window) {
                Some(wait) => inbox.recv_timeout(wait),
                None => Err(Timeout),
            },
            None => match deferred.wait(options.confirm_delay) {
                None => inbox.recv().map_err(|_| Disconnected),
                Some(left) => inbox.recv_timeout(left),
            },
        };
        let mut next = match received {
            Ok(job) => Some(job),
            Err(Timeout) => None,
            Err(Disconnected) => break,
        };
        let quiet = next.is_none();
        while let Some(job) = next.take() {
            match job {
                Job::Read(r) => reads.push(r),
                Job::Write(w) => {
                    let open = group.get_or_insert_with(|| {
                        if let Some((_, since)) = &broken
                            && since.elapsed() >= REOPEN_INTERVAL
                        {
                            memory.reset();
                            broken = reopen(&mut db, path, options.cache_bytes)
                                .err()
                                .map(|e| (e, Instant::now()));
                        }
                        Group::begin(writable(&db, &broken), &mut memory, &mut deferred)
                    });
                    open.run(w, &mut memory, &mut deferred, events.as_ref());
                }
                Job::Defer(d) => deferred.push(d),
                Job::Confirm(queues, up_to) => {
                    for queue in queues {
                        deferred.confirm(queue, up_to);
                    }
                }
                Job::Ack(queue, acked) => {
                    for (channel, id) in acked {
                        deferred.ack(queue, id, channel);
                    }
                }
                Job::Subscribe(to) => {
                    memory.staging = true;
                    #[cfg(feature = "redis")]
                    if let Some(Database::Redis(backend)) = &db
                        && let Err(e) = backend.follow(to.clone())
                    {
                        log::error!("cannot follow the other nodes' commits: {e}");
                    }
                    events = Some(to);
                }
            }
            if group.as_ref().is_none_or(|open| !open.is_closed()) {
                next = inbox.try_recv().ok();
            }
        }
        if !reads.is_empty() {
            let unsettled = Unsettled {
                deferred: &deferred,
                settled_through,
                snapshot: true,
                handed_out_through: memory.last_handed_out().max(settled_through),
            };
            serve_reads(&mut reads, &db, &broken, &unsettled);
        }
        if group.is_none() && deferred.due(options.confirm_delay) {
            group = Some(Group::begin(
                writable(&db, &broken),
                &mut memory,
                &mut deferred,
            ));
        }
        let Some(open) = group.take_if(|open| quiet || open.linger(window).is_none()) else {
            continue;
        };
        window = if open.len() > 1 {
            options.commit_window
        } else {
            Duration::ZERO
        };
        let outcome = open.commit(&mut memory, events.as_ref(), stats);
        settled_through = memory.last_handed_out();
        deferred.settled();
        if let Err(e @ (Error::Full | Error::Io(_))) = outcome {
            log::error!("the disk failed a write ({e}); writes are refused until it recovers");
            broken.get_or_insert((e, Instant::now()));
        }
    }
    if group.is_some() || !deferred.is_empty() {
        let open = group
            .unwrap_or_else(|| Group::begin(writable(&db, &broken), &mut memory, &mut deferred));
        let _ = open.commit(&mut memory, events.as_ref(), stats);
    }
    log::debug!("store thread stopped");
}

/// Reads the store's usage at start, for `/metrics` and the log.
fn log_usage(db: &Database, memory: &mut Memory, stats: &CommitStats) {
    match db.begin_read() {
        Ok(snapshot) => match memory.usage(&snapshot) {
            Ok(usage) => {
                stats.set_usage(usage.total(), usage.anonymous(), usage.uaids());
                log::info!(
                    "the store's messages take {} bytes, {} of them in queues open to senders without an account",
                    usage.total(),
                    usage.anonymous()
                );
            }
            Err(e) => {
                log::warn!(
                    "reading the store's usage failed ({e}); it is read with the first post"
                );
            }
        },
        Err(e) => {
            log::warn!("reading the store's usage failed ({e}); it is read with the first post")
        }
    }
}

/// Runs the waiting reads on one snapshot (or hands each the error of the database).
fn serve_reads(
    reads: &mut Vec<ReadJob>,
    db: &Option<Database>,
    broken: &Option<(Error, Instant)>,
    unsettled: &Unsettled<'_>,
) {
    let snapshot = match db {
        Some(db) => db.begin_read(),
        None => Err(broken.as_ref().map_or(Error::Closed, |b| b.0.clone())),
    };
    let settled = snapshot
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|s| settled_through(s, unsettled));
    match snapshot.and_then(|s| settled.map(|settled| (s, settled))) {
        Ok((snapshot, settled_through)) => {
            let unsettled = Unsettled {
                deferred: unsettled.deferred,
                settled_through,
                snapshot: matches!(snapshot, ReadTransaction::Redb(_)),
                handed_out_through: unsettled.handed_out_through.max(settled_through),
            };
            reads
                .drain(..)
                .for_each(|job| job(Ok((&snapshot, &unsettled))));
        }
        Err(e) => reads.drain(..).for_each(|job| job(Err(e.clone()))),
    }
}

/// How far message ids are settled for reads of `snapshot`: this thread's count, or on a
/// store that other nodes write too, the store's (every commit leaves its counter at the
/// next id, see `Memory::settle_ids`).
fn settled_through(snapshot: &ReadTransaction, unsettled: &Unsettled<'_>) -> Result<u64> {
    match snapshot {
        #[cfg(feature = "redis")]
        ReadTransaction::Redis(reader) => reader.settled_through(tables::ID_HIGH_WATER),
        _ => Ok(unsettled.settled_through),
    }
}

/// The database to write to, or why there is none.
fn writable<'d>(
    db: &'d Option<Database>,
    broken: &Option<(Error, Instant)>,
) -> Result<&'d Database> {
    match (db, broken) {
        (Some(db), None) => Ok(db),
        (_, Some((e, _))) => Err(e.clone()),
        (None, None) => Err(Error::Closed),
    }
}

/// Reopens the database after a failed write, once its directory has room again.
fn reopen(db: &mut Option<Database>, path: &Path, cache_bytes: usize) -> Result<()> {
    let probe = path.with_extension("probe");
    let room = std::fs::write(&probe, vec![0u8; REOPEN_PROBE_BYTES]);
    let _ = std::fs::remove_file(&probe);
    if let Err(e) = room {
        return Err(if is_disk_full(&e) {
            Error::Full
        } else {
            Error::Io(e.to_string())
        });
    }
    drop(db.take());
    match open_database(path, cache_bytes) {
        Ok(reopened) => {
            log::info!("database reopened; writes resume");
            *db = Some(reopened);
            Ok(())
        }
        Err(e) => {
            log::error!("cannot reopen the database: {e}");
            Err(Error::Io(e.to_string()))
        }
    }
}

impl Store {
    /// The commit figures `/metrics` shows.
    pub fn commit_stats(&self) -> &CommitStats {
        &self.commits
    }

    /// The key of the names senders see for messages (`crate::locations`).
    pub fn names_key(&self) -> [u8; 32] {
        self.names_key
    }

    fn submit(&self, job: Job) -> Result<()> {
        self.jobs.try_send(job).map_err(|e| match e {
            mpsc::TrySendError::Full(_) => Error::Busy,
            mpsc::TrySendError::Disconnected(_) => Error::Closed,
        })
    }

    /// The events of every later commit (see [`Event`]); for the one consumer that streams.
    pub fn events(&self) -> Result<async_channel::Receiver<Event>> {
        let (to, from) = async_channel::unbounded();
        self.jobs
            .send(Job::Subscribe(to))
            .map_err(|_| Error::Closed)?;
        Ok(from)
    }

    /// Runs `f` on a consistent snapshot off the event loop.
    pub async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&ReadTransaction) -> Result<T> + Send + 'static,
    {
        self.read_unsettled(move |t, _| f(t)).await
    }

    /// [`Store::read`] that also sees what is not on disk yet (for backlogs).
    pub async fn read_unsettled<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&ReadTransaction, &Unsettled) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = async_channel::bounded(1);
        self.submit(Job::Read(Box::new(move |snapshot| {
            let _ = reply.try_send(snapshot.and_then(|(t, unsettled)| f(t, unsettled)));
        })))?;
        answer.recv().await.unwrap_or(Err(Error::Closed))
    }

    /// The highest message id the store has handed out. A client's cursor above it comes
    /// from a history the store no longer has (a restored backup, a Redis that lost its
    /// data): it must confirm nothing, and the client reads its queues from the start.
    pub async fn highest_id(&self) -> Result<u64> {
        self.read_unsettled(|_, unsettled| Ok(unsettled.handed_out_through))
            .await
    }

    /// Runs `f` in the next group commit; resolves once the group is durable on disk.
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction, &mut Memory) -> Result<T> + Send + 'static,
    {
        let (reply, answer): (Reply<T>, _) = async_channel::bounded(1);
        let job: WriteJob = Box::new(move |txn| {
            let result = txn.and_then(|(txn, memory)| f(txn, memory));
            let failed = result.is_err();
            let done: Completion = Box::new(move |outcome| {
                let _ = reply.try_send(outcome.and(result));
            });
            (failed, done)
        });
        self.submit(Job::Write(job))?;
        answer.recv().await.unwrap_or(Err(Error::Closed))
    }

    /// Runs `f` in a later commit (see [`Deferred`]), for a write whose loss only means
    /// that a message is delivered again; nobody waits for it. `Err` only when the store
    /// cannot take it; `f` logs its own outcome.
    pub fn write_later<F>(&self, f: F) -> Result<()>
    where
        F: FnOnce(&WriteTransaction, &mut Memory) -> Result<()> + Send + 'static,
    {
        self.submit(Job::Defer(Box::new(f)))
    }

    /// The user agent of `queue` has these messages (channel, id), if they are of those
    /// channels: they leave the store with a later commit, and backlogs read from now on
    /// leave them out.
    pub fn ack_later(&self, queue: u64, acked: Vec<(String, u64)>) -> Result<()> {
        self.submit(Job::Ack(queue, acked))
    }

    /// The device of `queues` has every message up to `up_to`: they leave the store with a
    /// later commit, and backlogs read from now on start after them.
    pub fn confirm_later(&self, queues: Vec<u64>, up_to: u64) -> Result<()> {
        self.submit(Job::Confirm(queues, up_to))
    }
}
