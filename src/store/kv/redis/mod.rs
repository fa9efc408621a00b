//! The store on a Redis/Valkey server that several openpush nodes share.
//!
//! Layout, under a prefix (`redis_prefix`, default `openpush`): each table of
//! `store::tables` is a sorted set `<prefix>:k:<table>` of its keys (score 0, ordered by
//! their bytes, see `keys`) and a hash `<prefix>:v:<table>` from those keys to the values'
//! redb bytes. `<prefix>:lease` names the node that may write, `<prefix>:commits` counts the
//! commits (`<prefix>:family-commits` those that changed which queues are a family's),
//! `<prefix>:changes` holds the queues each recent commit changed (scored by its number),
//! `<prefix>:usage` holds the store budget's counts as the last commit left them, and
//! `<prefix>:events` carries each commit's news to the other nodes (`events`).
//!
//! Invariants:
//! - one writer at a time: a write transaction begins by taking the lease (`SET NX PX`) and
//!   `WATCH`es it; its writes stay in the node's memory and go out in one `MULTI`/`EXEC`
//!   with the lease's release. If the lease ran out and another node took it, `EXEC` does
//!   nothing and the commit fails: no two nodes ever interleave writes, so the store's
//!   checks (names taken, queue limits, message ids) hold across nodes as they do in one;
//! - a commit is durable when `EXEC` answers, given `appendonly yes` and `appendfsync
//!   always`, which [`Backend::open`] checks (unless told not to);
//! - a commit bumps `<prefix>:commits` and leaves the usage counts: a node whose last commit
//!   was not the last one forgets the sizes of the queues the others changed and takes those
//!   counts before it writes (`Memory::shared_store`), so limits and the budget hold across
//!   nodes without a scan of the messages; it reads the store's usage again only when the
//!   families changed;
//! - reads see the last commit of any node, not a snapshot: each `get` and `len` is one
//!   atomic command, a range one script a page (`PAGE` entries), so a backlog cuts what
//!   it reads at the settled id (`store::Unsettled::snapshot`).

mod events;
mod keys;
pub mod resp;

pub use keys::Key;

use std::borrow::Borrow;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{AccessGuard, Range, Value};
use crate::store::{Error, Event, Result, Revocation};
use resp::{Address, Connection, Reply};

/// How long a writer's lease lasts: a node that dies holding it stops the others' writes
/// this long at most. A group commit takes milliseconds.
const LEASE: Duration = Duration::from_secs(3);
/// How long a writer waits for the lease before its writes fail with [`Error::Busy`].
const LEASE_WAIT: Duration = Duration::from_secs(5);
/// How many commits' changed queues `<prefix>:changes` keeps: a node whose last commit is
/// further back forgets every queue size it caches.
const CHANGES_KEPT: i64 = 4096;
/// How often a writer waiting for the lease tries again, at most: a group commit of
/// another node takes a few milliseconds, and each try is one short command.
const LEASE_POLL: Duration = Duration::from_millis(2);

/// The most entries one call of [`RANGE_SCRIPT`] reads.
const PAGE: usize = 2048;

/// The entries of a range, with their values, in one atomic call: ARGV is the lower and
/// upper bound in `ZRANGEBYLEX` form and the most entries. Keys and values alternate in
/// the reply.
const RANGE_SCRIPT: &str = r"
local ks = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[1], ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for i = 1, #ks, 512 do
  local chunk = {}
  for j = i, math.min(i + 511, #ks) do chunk[#chunk + 1] = ks[j] end
  local vs = redis.call('HMGET', KEYS[2], unpack(chunk))
  for j = 1, #chunk do
    if vs[j] then
      out[#out + 1] = chunk[j]
      out[#out + 1] = vs[j]
    end
  end
end
return out
";

/// Deletes the lease if it is still this writer's.
const RELEASE_SCRIPT: &str =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

/// What every reader and writer of one node shares.
struct Shared {
    connection: Mutex<Connection>,
    address: Address,
    prefix: String,
    /// This node's name in the lease and the commit news: random for each run.
    node: String,
    /// `<prefix>:commits` after this node's last commit.
    seen_commits: AtomicI64,
    /// `<prefix>:family-commits` after this node's last commit.
    seen_family_commits: AtomicI64,
    /// Write transactions begun, for each one's lease token.
    writers: AtomicI64,
}

impl Shared {
    fn connection(&self) -> MutexGuard<'_, Connection> {
        self.connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn key(&self, kind: &str, table: &str) -> Vec<u8> {
        format!("{}:{kind}:{table}", self.prefix).into_bytes()
    }

    fn name(&self, what: &str) -> Vec<u8> {
        format!("{}:{what}", self.prefix).into_bytes()
    }

    fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.connection()
            .call_again_on_failure(&[b"HGET", &self.key("v", table), key])?
            .into_bytes()
    }

    fn len(&self, table: &str) -> Result<u64> {
        let n = self
            .connection()
            .call_again_on_failure(&[b"ZCARD", &self.key("k", table)])?
            .into_int()?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Entries between the lex bounds, lowest first, in pages of [`PAGE`] entries: each
    /// page is one atomic call, so a range of any size is read in bounded replies.
    fn range(&self, table: &str, bounds: &(Vec<u8>, Vec<u8>)) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        let mut min = bounds.0.clone();
        loop {
            let page = self.page(table, (&min, &bounds.1), PAGE)?;
            let full = page.len() == PAGE;
            out.extend(page);
            match out.last() {
                Some((last, _)) if full => min = [b"(".as_slice(), last].concat(),
                _ => return Ok(out),
            }
        }
    }

    /// Up to `limit` entries between the lex bounds, lowest first: (ordered key, value),
    /// in one atomic call.
    fn page(
        &self,
        table: &str,
        (min, max): (&[u8], &[u8]),
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let limit = limit.to_string();
        let reply = self.connection().call_again_on_failure(&[
            b"EVAL",
            RANGE_SCRIPT.as_bytes(),
            b"2",
            &self.key("k", table),
            &self.key("v", table),
            min,
            max,
            limit.as_bytes(),
        ])?;
        let mut items = reply.into_array()?.into_iter();
        let mut out = Vec::new();
        while let (Some(key), Some(value)) = (items.next(), items.next()) {
            match (key.into_bytes()?, value.into_bytes()?) {
                (Some(key), Some(value)) => out.push((key, value)),
                _ => return Err(Error::Storage("redis: a malformed range".into())),
            }
        }
        Ok(out)
    }
}

/// The lex bounds of a key range, as `ZRANGEBYLEX` takes them.
fn lex_bounds<'a, K: Key, KR: Borrow<K::SelfType<'a>> + 'a>(
    range: &impl RangeBounds<KR>,
) -> (Vec<u8>, Vec<u8>) {
    let bound = |b: Bound<&KR>, unbounded: &[u8]| match b {
        Bound::Included(k) => [b"[".as_slice(), &K::ordered(k.borrow())].concat(),
        Bound::Excluded(k) => [b"(".as_slice(), &K::ordered(k.borrow())].concat(),
        Bound::Unbounded => unbounded.to_vec(),
    };
    (
        bound(range.start_bound(), b"-"),
        bound(range.end_bound(), b"+"),
    )
}

/// Whether an ordered key lies within lex bounds.
fn within((min, max): &(Vec<u8>, Vec<u8>), key: &[u8]) -> bool {
    let above = match min.split_first() {
        Some((b'[', k)) => key >= k,
        Some((b'(', k)) => key > k,
        _ => true,
    };
    let below = match max.split_first() {
        Some((b'[', k)) => key <= k,
        Some((b'(', k)) => key < k,
        _ => true,
    };
    above && below
}

/// Entries with ordered keys as ranges yield them (redb's bytes).
fn to_range<'t, K: Key, V: Value>(entries: Vec<(Vec<u8>, Vec<u8>)>) -> Result<Range<'t, K, V>> {
    let entries = entries
        .into_iter()
        .map(|(key, value)| {
            K::redb_bytes(&key)
                .map(|key| (key, value))
                .ok_or_else(|| Error::Storage("redis: a key that does not decode".into()))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Range::Owned(entries.into_iter(), PhantomData))
}

fn owned<'a, V: Value>(bytes: Option<Vec<u8>>) -> Option<AccessGuard<'a, V>> {
    bytes.map(|b| AccessGuard::Owned(b, PhantomData))
}

/// The store's connection to Redis; see the module's invariants.
pub struct Backend {
    shared: Arc<Shared>,
}

impl Backend {
    /// Connects to `url` and checks that it keeps each commit durably, unless
    /// `require_fsync` is false.
    pub fn open(
        url: &str,
        prefix: &str,
        require_fsync: bool,
    ) -> std::result::Result<Backend, String> {
        let address = Address::parse(url)?;
        let mut connection = Connection::new(address.clone(), Some(resp::IO_TIMEOUT));
        let shown = &address.host_port;
        connection
            .call(&[b"PING"])
            .and_then(Reply::ok)
            .map_err(|e| format!("cannot reach Redis at {shown}: {e}"))?;
        let durability = durability(&mut connection);
        match (&durability, require_fsync) {
            (Ok(()), _) => {}
            (Err(why), true) => {
                return Err(format!(
                    "Redis at {shown} may lose acknowledged messages ({why}); set \
                     `appendonly yes`, `appendfsync always` and `maxmemory-policy noeviction` \
                     there, or `redis_require_fsync = false` here to accept that"
                ));
            }
            (Err(why), false) => log::warn!(
                "Redis at {shown} may lose acknowledged messages ({why}); \
                 redis_require_fsync = false accepts that"
            ),
        }
        let node = hex(&crate::secret::random_bytes::<8>());
        Ok(Backend {
            shared: Arc::new(Shared {
                connection: Mutex::new(connection),
                address,
                prefix: prefix.to_owned(),
                node,
                seen_commits: AtomicI64::new(-1),
                seen_family_commits: AtomicI64::new(-1),
                writers: AtomicI64::new(0),
            }),
        })
    }

    /// Reads of the last commit.
    pub fn reader(&self) -> Reader {
        Reader {
            shared: self.shared.clone(),
        }
    }

    /// A write transaction, once this node holds the lease.
    pub fn writer(&self) -> Result<Writer> {
        Writer::begin(self.shared.clone())
    }

    /// Hands the other nodes' commits to `to` from a thread of its own.
    pub fn follow(&self, to: async_channel::Sender<Event>) -> std::io::Result<()> {
        let address = self.shared.address.clone();
        let channel = String::from_utf8_lossy(&self.shared.name("events")).into_owned();
        let node = self.shared.node.clone();
        std::thread::Builder::new()
            .name("store-events".into())
            .spawn(move || events::follow(address, channel, node, to))
            .map(drop)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why the server's settings do not keep every commit, on disk before `EXEC` answers and
/// until it is deleted (no eviction).
fn durability(connection: &mut Connection) -> std::result::Result<(), String> {
    let mut setting = |name: &str| -> std::result::Result<String, String> {
        let reply = connection
            .call(&[b"CONFIG", b"GET", name.as_bytes()])
            .and_then(Reply::into_array)
            .map_err(|e| format!("CONFIG GET {name} failed: {e}"))?;
        match reply.into_iter().nth(1) {
            Some(Reply::Bulk(value)) => Ok(String::from_utf8_lossy(&value).into_owned()),
            _ => Err(format!("CONFIG GET {name} gave nothing")),
        }
    };
    let appendonly = setting("appendonly")?;
    let appendfsync = setting("appendfsync")?;
    let maxmemory = setting("maxmemory")?;
    let policy = setting("maxmemory-policy")?;
    if appendonly != "yes" {
        return Err(format!("appendonly is {appendonly}"));
    }
    if appendfsync != "always" {
        return Err(format!("appendfsync is {appendfsync}"));
    }
    if maxmemory != "0" && policy != "noeviction" {
        return Err(format!(
            "maxmemory-policy is {policy}: at maxmemory it drops keys, queued messages among them"
        ));
    }
    Ok(())
}

/// Reads of the last commit of any node.
pub struct Reader {
    shared: Arc<Shared>,
}

impl Reader {
    /// A table.
    pub fn table<K: Key, V: Value>(&self, name: &'static str) -> Reading<K, V> {
        Reading {
            shared: self.shared.clone(),
            name,
            types: PhantomData,
        }
    }

    /// The highest message id that a finished commit handed out, as the `meta` counter
    /// (the next id) says: every id up to it is settled (see `store::Unsettled`).
    pub fn settled_through(&self, counter: &str) -> Result<u64> {
        let bytes = self.shared.get("meta", &<&str as Key>::ordered(&counter))?;
        let next = bytes
            .and_then(|b| Some(u64::from_le_bytes(b.as_slice().try_into().ok()?)))
            .unwrap_or(1);
        Ok(next.saturating_sub(1))
    }
}

/// A table in a read transaction.
pub struct Reading<K: Key, V: Value> {
    shared: Arc<Shared>,
    name: &'static str,
    types: PhantomData<(K, V)>,
}

impl<K: Key, V: Value> Reading<K, V> {
    /// The value of `key`.
    pub fn get(&self, key: &K::SelfType<'_>) -> Result<Option<AccessGuard<'_, V>>> {
        Ok(owned(self.shared.get(self.name, &K::ordered(key))?))
    }

    /// The entries in `range`.
    pub fn range<'a, KR: Borrow<K::SelfType<'a>> + 'a>(
        &self,
        range: &impl RangeBounds<KR>,
    ) -> Result<Range<'_, K, V>> {
        to_range(self.shared.range(self.name, &lex_bounds::<K, KR>(range))?)
    }

    /// The number of entries.
    pub fn count(&self) -> Result<u64> {
        self.shared.len(self.name)
    }

    /// The entry with the lowest key.
    pub fn first(&self) -> Result<Range<'_, K, V>> {
        to_range(self.shared.page(self.name, (b"-", b"+"), 1)?)
    }
}

/// Writes kept in the node until the commit.
type Writes = BTreeMap<(&'static str, Vec<u8>), Option<Vec<u8>>>;

/// A write transaction: holds the lease; see the module's invariants.
pub struct Writer {
    shared: Arc<Shared>,
    token: Vec<u8>,
    /// The connection's socket that holds the `WATCH`.
    generation: u64,
    writes: RefCell<Writes>,
    news: RefCell<Option<Vec<u8>>>,
    /// What the writer found when it took the lease.
    found: Found,
    /// `<prefix>:commits` then: this commit is the next.
    commits: i64,
    /// `<prefix>:family-commits` then.
    family_commits: i64,
    /// The usage counts to leave for the next writer, and whether the families changed.
    settled: Cell<(Option<[u64; 3]>, bool)>,
    /// The queues whose messages this commit changed.
    changed_queues: RefCell<Vec<u64>>,
    done: Cell<bool>,
}

/// Waits for the writer lease and takes it for `token`, [`LEASE_WAIT`] at most.
fn take_lease(shared: &Shared, token: &[u8]) -> Result<()> {
    let lease = shared.name("lease");
    let millis = LEASE.as_millis().to_string();
    let deadline = Instant::now() + LEASE_WAIT;
    let mut pause = Duration::from_micros(250);
    loop {
        // With GET, a lease this writer already took (its first answer was lost) names it.
        let holder = shared
            .connection()
            .call_again_on_failure(&[
                b"SET",
                &lease,
                token,
                b"NX",
                b"PX",
                millis.as_bytes(),
                b"GET",
            ])?
            .into_bytes()?;
        if holder.is_none_or(|holder| holder == token) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Error::Busy);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(LEASE_POLL);
    }
}

/// What a writer finds when it takes the lease, for the node's caches (`Memory`).
#[derive(Clone, Debug, PartialEq)]
pub struct Found {
    /// Another node committed since this node's last commit.
    pub others_committed: bool,
    /// A commit since then changed which queues are a family's (`store::budget`).
    pub families_changed: bool,
    /// The store's usage counts (total, anonymous, autopush) as the last commit left them;
    /// `None` if it left none.
    pub usage: Option<[u64; 3]>,
    /// The queues whose messages the other nodes' commits changed since this node's last
    /// one; `None` if that is not known any more.
    pub changed_queues: Option<Vec<u64>>,
}

/// The queues that the commits after `seen` changed, from `<prefix>:changes` entries
/// (`<commit> <queue>…`); `None` unless it holds every commit from `seen + 1` to `last`.
fn changed_queues(entries: Vec<Reply>, seen: i64, last: i64) -> Option<Vec<u64>> {
    let mut expected = seen + 1;
    let mut queues = Vec::new();
    for entry in entries {
        let Reply::Bulk(text) = entry else {
            return None;
        };
        let text = String::from_utf8(text).ok()?;
        let mut words = text.split(' ');
        if words.next()?.parse::<i64>().ok()? != expected {
            return None;
        }
        expected += 1;
        for queue in words {
            queues.push(queue.parse().ok()?);
        }
    }
    (seen >= 0 && expected == last + 1).then_some(queues)
}

/// A transaction's writes to `table`, in key order: (ordered key, value; `None`: removed).
fn written<'w>(
    writes: &'w Writes,
    table: &'static str,
) -> impl Iterator<Item = (&'w Vec<u8>, &'w Option<Vec<u8>>)> {
    writes
        .range((table, Vec::new())..)
        .take_while(move |((t, _), _)| *t == table)
        .map(|((_, key), value)| (key, value))
}

/// Committed `entries` with a transaction's writes laid over them.
fn lay_over<'w>(
    entries: &mut BTreeMap<Vec<u8>, Vec<u8>>,
    writes: impl Iterator<Item = (&'w Vec<u8>, &'w Option<Vec<u8>>)>,
) {
    for (key, value) in writes {
        match value {
            Some(value) => entries.insert(key.clone(), value.clone()),
            None => entries.remove(key),
        };
    }
}

/// A counter's value in a reply (0 when it is not set).
fn counter(reply: Option<Reply>) -> Result<i64> {
    let bytes = reply.map(Reply::into_bytes).transpose()?.flatten();
    Ok(bytes
        .and_then(|b| String::from_utf8(b).ok()?.parse().ok())
        .unwrap_or(0))
}

impl Writer {
    fn begin(shared: Arc<Shared>) -> Result<Writer> {
        let n = shared.writers.fetch_add(1, Ordering::Relaxed);
        let token = format!("{}-{n}", shared.node).into_bytes();
        take_lease(&shared, &token)?;
        let lease = shared.name("lease");
        let commits = shared.name("commits");
        let family_commits = shared.name("family-commits");
        let usage = shared.name("usage");
        let changes = shared.name("changes");
        let seen = shared.seen_commits.load(Ordering::Relaxed);
        let after = format!("({seen}");
        let (replies, generation) = {
            let mut connection = shared.connection();
            let replies = connection.pipeline(&[
                vec![b"WATCH", &lease],
                vec![b"GET", &lease],
                vec![b"GET", &commits],
                vec![b"GET", &family_commits],
                vec![b"HMGET", &usage, b"total", b"anonymous", b"uaids"],
                vec![b"ZRANGEBYSCORE", &changes, after.as_bytes(), b"+inf"],
            ]);
            (replies, connection.generation())
        };
        let mut writer = Writer {
            generation,
            shared,
            token,
            writes: RefCell::new(BTreeMap::new()),
            news: RefCell::new(None),
            found: Found {
                others_committed: true,
                families_changed: true,
                usage: None,
                changed_queues: None,
            },
            commits: 0,
            family_commits: 0,
            changed_queues: RefCell::new(Vec::new()),
            settled: Cell::new((None, false)),
            done: Cell::new(false),
        };
        let mut replies = replies?.into_iter().skip(1);
        let holder = replies.next().map(Reply::into_bytes).transpose()?.flatten();
        if holder.as_deref() != Some(writer.token.as_slice()) {
            return Err(Error::Storage("redis: the writer lease ran out".into()));
        }
        writer.commits = counter(replies.next())?;
        writer.family_commits = counter(replies.next())?;
        let counts = replies
            .next()
            .map(Reply::into_array)
            .transpose()?
            .unwrap_or_default()
            .into_iter()
            .map(|r| counter(Some(r)).ok().and_then(|n| u64::try_from(n).ok()))
            .collect::<Option<Vec<u64>>>();
        let changes = replies.next().map(Reply::into_array).transpose()?;
        writer.found = Found {
            others_committed: writer.commits != seen,
            families_changed: writer.family_commits
                != writer.shared.seen_family_commits.load(Ordering::Relaxed),
            usage: counts.and_then(|c| c.try_into().ok()),
            changed_queues: changes.and_then(|c| changed_queues(c, seen, writer.commits)),
        };
        Ok(writer)
    }

    /// What the writer found when it took the lease: whether what this node caches of the
    /// store may be stale.
    pub fn found(&self) -> &Found {
        &self.found
    }

    /// The usage counts this commit leaves for the next writer (`None`: unknown, the next
    /// one reads the store), and whether it changed which queues are a family's.
    pub fn settle_usage(&self, counts: Option<[u64; 3]>, families_changed: bool) {
        self.settled.set((counts, families_changed));
    }

    /// The queues whose messages this commit changed: the other nodes forget their sizes.
    pub fn settle_queues(&self, queues: Vec<u64>) {
        *self.changed_queues.borrow_mut() = queues;
    }

    /// The news the other nodes get with the commit: its queues, what it revoked, and the
    /// messages with a TTL of 0 it took.
    pub fn announce(&self, queues: &[u64], revoked: &[Revocation], passed_on: &[events::Passed]) {
        *self.news.borrow_mut() = events::encode(
            &self.shared.node,
            &events::News {
                queues: queues.to_vec(),
                revoked: revoked.to_vec(),
                passed_on: passed_on.to_vec(),
            },
        );
    }

    /// A table.
    pub fn table<K: Key, V: Value>(&self, name: &'static str) -> Writing<'_, K, V> {
        Writing {
            writer: self,
            name,
            types: PhantomData,
        }
    }

    /// Sends every write, the news and the lease's release in one `MULTI`/`EXEC`.
    pub fn commit(self) -> Result<()> {
        self.done.set(true);
        let writes = self.writes.take();
        let (counts, families_changed) = self.settled.get();
        let commands = self.transaction(&writes, counts, families_changed);
        let commands: Vec<Vec<&[u8]>> = commands
            .iter()
            .map(|args| args.iter().map(Vec::as_slice).collect())
            .collect();
        let replies = {
            let mut connection = self.shared.connection();
            if connection.generation() != self.generation {
                return Err(Error::Storage(
                    "redis: the connection was lost during the transaction; nothing was written"
                        .into(),
                ));
            }
            connection.pipeline(&commands)?
        };
        let Some(Reply::Array(results)) = replies.into_iter().last() else {
            return Err(Error::Storage(
                "redis: the writer lease ran out before the commit; nothing was written".into(),
            ));
        };
        let counters_at = 2 * writes.len();
        let (mut commits, mut family_commits) = (None, self.family_commits);
        for (i, result) in results.into_iter().enumerate() {
            let result = result.ok()?;
            if i == counters_at {
                commits = Some(result.into_int()?);
            } else if i == counters_at + 1 && families_changed {
                family_commits = result.into_int()?;
            }
        }
        if let Some(n) = commits {
            self.shared.seen_commits.store(n, Ordering::Relaxed);
            self.shared
                .seen_family_commits
                .store(family_commits, Ordering::Relaxed);
        }
        Ok(())
    }

    /// The commit's commands: `MULTI`, two for each write, the commit counters (at twice
    /// the writes), the usage counts, the news, the lease's release and `EXEC`.
    fn transaction(
        &self,
        writes: &Writes,
        counts: Option<[u64; 3]>,
        families_changed: bool,
    ) -> Vec<Vec<Vec<u8>>> {
        let shared = &self.shared;
        let command = |args: &[&[u8]]| args.iter().map(|a| a.to_vec()).collect::<Vec<_>>();
        let mut commands = vec![command(&[b"MULTI"])];
        for ((table, key), value) in writes {
            let (keys, values) = (shared.key("k", table), shared.key("v", table));
            commands.extend(match value {
                Some(value) => [
                    command(&[b"ZADD", &keys, b"0", key]),
                    command(&[b"HSET", &values, key, value]),
                ],
                None => [
                    command(&[b"ZREM", &keys, key]),
                    command(&[b"HDEL", &values, key]),
                ],
            });
        }
        commands.push(command(&[b"INCR", &shared.name("commits")]));
        if families_changed {
            commands.push(command(&[b"INCR", &shared.name("family-commits")]));
        }
        let this = self.commits + 1;
        let mut entry = this.to_string();
        for queue in self.changed_queues.take() {
            entry.push_str(&format!(" {queue}"));
        }
        let changes = shared.name("changes");
        commands.push(command(&[
            b"ZADD",
            &changes,
            this.to_string().as_bytes(),
            entry.as_bytes(),
        ]));
        let oldest = format!("({}", this - CHANGES_KEPT);
        commands.push(command(&[
            b"ZREMRANGEBYSCORE",
            &changes,
            b"-inf",
            oldest.as_bytes(),
        ]));
        let usage = shared.name("usage");
        commands.push(match counts {
            Some([total, anonymous, uaids]) => command(&[
                b"HSET",
                &usage,
                b"total",
                total.to_string().as_bytes(),
                b"anonymous",
                anonymous.to_string().as_bytes(),
                b"uaids",
                uaids.to_string().as_bytes(),
            ]),
            None => command(&[b"DEL", &usage]),
        });
        if let Some(news) = self.news.take() {
            commands.push(command(&[b"PUBLISH", &shared.name("events"), &news]));
        }
        commands.push(command(&[b"DEL", &shared.name("lease")]));
        commands.push(command(&[b"EXEC"]));
        commands
    }

    /// Drops every write and gives the lease back.
    pub fn abort(self) -> Result<()> {
        self.release()
    }

    fn release(&self) -> Result<()> {
        self.done.set(true);
        let lease = self.shared.name("lease");
        self.shared
            .connection()
            .pipeline(&[
                vec![b"UNWATCH"],
                vec![
                    b"EVAL",
                    RELEASE_SCRIPT.as_bytes(),
                    b"1",
                    &lease,
                    &self.token,
                ],
            ])?
            .into_iter()
            .try_for_each(|r| r.ok().map(drop))
    }

    fn get(&self, table: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.writes.borrow().get(&(table, key.to_vec())) {
            Some(written) => Ok(written.clone()),
            None => self.shared.get(table, key),
        }
    }

    fn set(&self, table: &'static str, key: Vec<u8>, value: Option<Vec<u8>>) {
        self.writes.borrow_mut().insert((table, key), value);
    }

    /// The committed entries in the bounds with this transaction's writes over them.
    fn range(
        &self,
        table: &'static str,
        bounds: &(Vec<u8>, Vec<u8>),
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut entries: BTreeMap<Vec<u8>, Vec<u8>> =
            self.shared.range(table, bounds)?.into_iter().collect();
        let writes = self.writes.borrow();
        lay_over(
            &mut entries,
            written(&writes, table).filter(|(key, _)| within(bounds, key)),
        );
        Ok(entries.into_iter().collect())
    }

    /// The entry with the lowest key, with this transaction's writes: among the committed
    /// entries, the first one this transaction did not remove is within the first (removals
    /// + 1).
    fn first(&self, table: &'static str) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let writes = self.writes.borrow();
        let removed = written(&writes, table)
            .filter(|(_, value)| value.is_none())
            .count();
        let mut entries: BTreeMap<Vec<u8>, Vec<u8>> = self
            .shared
            .page(table, (b"-", b"+"), removed + 1)?
            .into_iter()
            .collect();
        lay_over(&mut entries, written(&writes, table));
        Ok(entries.into_iter().take(1).collect())
    }

    fn len(&self, table: &'static str) -> Result<u64> {
        let committed = self.shared.len(table)?;
        let writes = self.writes.borrow();
        let written: Vec<(&Vec<u8>, bool)> = written(&writes, table)
            .map(|(key, value)| (key, value.is_some()))
            .collect();
        if written.is_empty() {
            return Ok(committed);
        }
        let keys = self.shared.key("k", table);
        let mut args: Vec<&[u8]> = vec![b"ZMSCORE", &keys];
        args.extend(written.iter().map(|(key, _)| key.as_slice()));
        let scores = self.shared.connection().call(&args)?.into_array()?;
        let mut len = committed;
        for ((_, present), score) in written.iter().zip(scores) {
            match (score == Reply::Nil, present) {
                (true, true) => len += 1,
                (false, false) => len -= 1,
                _ => {}
            }
        }
        Ok(len)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if !self.done.get() {
            let _ = self.release();
        }
    }
}

/// A table in a write transaction.
pub struct Writing<'t, K: Key, V: Value> {
    writer: &'t Writer,
    name: &'static str,
    types: PhantomData<(K, V)>,
}

impl<K: Key, V: Value> Writing<'_, K, V> {
    /// The value of `key`, with this transaction's writes.
    pub fn get(&self, key: &K::SelfType<'_>) -> Result<Option<AccessGuard<'_, V>>> {
        Ok(owned(self.writer.get(self.name, &K::ordered(key))?))
    }

    /// The entries in `range`, with this transaction's writes.
    pub fn range<'a, KR: Borrow<K::SelfType<'a>> + 'a>(
        &self,
        range: &impl RangeBounds<KR>,
    ) -> Result<Range<'_, K, V>> {
        to_range(self.writer.range(self.name, &lex_bounds::<K, KR>(range))?)
    }

    /// The number of entries, with this transaction's writes.
    pub fn count(&self) -> Result<u64> {
        self.writer.len(self.name)
    }

    /// The entry with the lowest key, with this transaction's writes.
    pub fn first(&self) -> Result<Range<'_, K, V>> {
        to_range(self.writer.first(self.name)?)
    }

    /// Sets `key` to `value`; gives the value it had.
    pub fn insert(
        &mut self,
        key: &K::SelfType<'_>,
        value: &V::SelfType<'_>,
    ) -> Result<Option<AccessGuard<'_, V>>> {
        let key = K::ordered(key);
        let old = self.writer.get(self.name, &key)?;
        let value = V::as_bytes(value).as_ref().to_vec();
        self.writer.set(self.name, key, Some(value));
        Ok(owned(old))
    }

    /// Removes `key`; gives the value it had.
    pub fn remove(&mut self, key: &K::SelfType<'_>) -> Result<Option<AccessGuard<'_, V>>> {
        let key = K::ordered(key);
        let old = self.writer.get(self.name, &key)?;
        if old.is_some() {
            self.writer.set(self.name, key, None);
        }
        Ok(owned(old))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_queues_are_known_only_for_an_unbroken_run_of_commits() {
        let entries = |texts: &[&str]| {
            texts
                .iter()
                .map(|t| Reply::Bulk(t.as_bytes().to_vec()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            changed_queues(entries(&["4 7 9", "5", "6 7"]), 3, 6),
            Some(vec![7, 9, 7])
        );
        assert_eq!(changed_queues(entries(&[]), 6, 6), Some(vec![]));
        assert_eq!(
            changed_queues(entries(&["5 1", "6 2"]), 3, 6),
            None,
            "4 was trimmed"
        );
        assert_eq!(
            changed_queues(entries(&["4 1"]), 3, 5),
            None,
            "5 is missing"
        );
        assert_eq!(
            changed_queues(entries(&["0 1"]), -1, 0),
            None,
            "nothing seen yet"
        );
        assert_eq!(changed_queues(entries(&["4 x"]), 3, 4), None);
    }

    #[test]
    fn lex_bounds_select_what_the_range_does() {
        let bounds = lex_bounds::<(u64, u64), (u64, u64)>(&((3, 5)..(4, 0)));
        assert!(within(&bounds, &<(u64, u64)>::ordered(&(3, 5))));
        assert!(within(&bounds, &<(u64, u64)>::ordered(&(3, u64::MAX))));
        assert!(!within(&bounds, &<(u64, u64)>::ordered(&(4, 0))));
        assert!(!within(&bounds, &<(u64, u64)>::ordered(&(3, 4))));
        let all = lex_bounds::<u64, u64>(&(..));
        assert_eq!(all, (b"-".to_vec(), b"+".to_vec()));
        assert!(within(&all, &[]));
    }
}
