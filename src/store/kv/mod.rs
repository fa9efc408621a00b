//! The tables the store's operations read and write, over either backend: redb (the
//! embedded default, one file) or, with the `redis` feature, a Redis/Valkey server shared
//! by several nodes (`kv::redis`).
//!
//! The types mirror redb's typed API (`open_table`, `get`, `range`, `insert`, `remove`,
//! guards with `value()`), so that every operation in `store` is written once for both.
//! Invariants both backends keep:
//! - a table is an ordered map; `range` and `iter` yield its entries in the key type's order;
//! - a write transaction sees its own writes, and nothing of it is visible to readers or
//!   durable before `commit` returns `Ok`; `abort`, or dropping it, leaves no trace;
//! - a read transaction sees committed data only. On redb it is a snapshot; on Redis each
//!   call sees the last commit of any node, and one call (one `get`, one `range`) is atomic.
//!
//! Without the `redis` feature every enum here has its redb variant only, so the router
//! build's code is redb's own.

#[cfg(feature = "redis")]
pub mod redis;

use std::borrow::Borrow;
use std::marker::PhantomData;
use std::ops::RangeBounds;

use redb::{ReadableDatabase, ReadableTableMetadata as _};

use super::Result;

/// A key type of a table: one of redb's, which the Redis backend also orders.
#[cfg(feature = "redis")]
pub use redis::Key;

/// A key type of a table: one of redb's.
#[cfg(not(feature = "redis"))]
pub trait Key: redb::Key + 'static {}
#[cfg(not(feature = "redis"))]
impl<T: redb::Key + 'static> Key for T {}

/// A value type of a table: one of redb's, stored as its redb bytes by both backends.
pub trait Value: redb::Value + 'static {}
impl<T: redb::Value + 'static> Value for T {}

/// A table's name and types. The name is part of the file format (see `store::tables`).
pub struct TableDefinition<K: Key, V: Value> {
    name: &'static str,
    types: PhantomData<(K, V)>,
}

impl<K: Key, V: Value> Clone for TableDefinition<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K: Key, V: Value> Copy for TableDefinition<K, V> {}

impl<K: Key, V: Value> TableDefinition<K, V> {
    /// The table called `name`.
    pub const fn new(name: &'static str) -> Self {
        TableDefinition {
            name,
            types: PhantomData,
        }
    }

    /// Its name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The same table as redb names it.
    pub fn redb(self) -> redb::TableDefinition<'static, K, V> {
        redb::TableDefinition::new(self.name)
    }
}

/// A store: the redb database, or the Redis server.
pub enum Database {
    /// The embedded file.
    Redb(redb::Database),
    /// A Redis/Valkey server, possibly shared with other nodes.
    #[cfg(feature = "redis")]
    Redis(redis::Backend),
}

impl Database {
    /// A read transaction on the last commit.
    pub fn begin_read(&self) -> Result<ReadTransaction> {
        match self {
            Database::Redb(db) => Ok(ReadTransaction::Redb(db.begin_read()?)),
            #[cfg(feature = "redis")]
            Database::Redis(backend) => Ok(ReadTransaction::Redis(backend.reader())),
        }
    }

    /// A write transaction; on Redis it holds the writer lease until it ends.
    pub fn begin_write(&self) -> Result<WriteTransaction> {
        match self {
            Database::Redb(db) => Ok(WriteTransaction::Redb(db.begin_write()?)),
            #[cfg(feature = "redis")]
            Database::Redis(backend) => Ok(WriteTransaction::Redis(backend.writer()?)),
        }
    }

    /// The redb database, if that is the backend.
    pub fn as_redb(&self) -> Option<&redb::Database> {
        match self {
            Database::Redb(db) => Some(db),
            #[cfg(feature = "redis")]
            Database::Redis(_) => None,
        }
    }
}

/// A read transaction.
pub enum ReadTransaction {
    /// A redb snapshot.
    Redb(redb::ReadTransaction),
    /// Reads of the Redis server's last commit.
    #[cfg(feature = "redis")]
    Redis(redis::Reader),
}

impl ReadTransaction {
    /// Opens a table for reading.
    pub fn open_table<K: Key, V: Value>(
        &self,
        def: TableDefinition<K, V>,
    ) -> Result<ReadOnlyTable<K, V>> {
        match self {
            ReadTransaction::Redb(t) => Ok(ReadOnlyTable::Redb(t.open_table(def.redb())?)),
            #[cfg(feature = "redis")]
            ReadTransaction::Redis(r) => Ok(ReadOnlyTable::Redis(r.table(def.name))),
        }
    }
}

/// A write transaction.
// The redb variant is the router build's only one: boxing it would cost every
// transaction an allocation there.
#[allow(clippy::large_enum_variant)]
pub enum WriteTransaction {
    /// A redb write transaction.
    Redb(redb::WriteTransaction),
    /// Writes kept until the commit, under the writer lease.
    #[cfg(feature = "redis")]
    Redis(redis::Writer),
}

impl WriteTransaction {
    /// Opens a table for reading and writing.
    pub fn open_table<K: Key, V: Value>(
        &self,
        def: TableDefinition<K, V>,
    ) -> Result<Table<'_, K, V>> {
        match self {
            WriteTransaction::Redb(t) => Ok(Table::Redb(t.open_table(def.redb())?)),
            #[cfg(feature = "redis")]
            WriteTransaction::Redis(w) => Ok(Table::Redis(w.table(def.name))),
        }
    }

    /// Makes every write durable, or none of them.
    pub fn commit(self) -> Result<()> {
        match self {
            WriteTransaction::Redb(t) => Ok(t.commit()?),
            #[cfg(feature = "redis")]
            WriteTransaction::Redis(w) => w.commit(),
        }
    }

    /// Drops every write.
    pub fn abort(self) -> Result<()> {
        match self {
            WriteTransaction::Redb(t) => Ok(t.abort()?),
            #[cfg(feature = "redis")]
            WriteTransaction::Redis(w) => w.abort(),
        }
    }

    /// The Redis writer, if that is the backend.
    #[cfg(feature = "redis")]
    pub fn as_redis(&self) -> Option<&redis::Writer> {
        match self {
            WriteTransaction::Redb(_) => None,
            WriteTransaction::Redis(w) => Some(w),
        }
    }
}

/// A value read from a table.
pub enum AccessGuard<'a, V: Value> {
    /// In redb's pages.
    Redb(redb::AccessGuard<'a, V>),
    /// Read from Redis: the value's redb bytes.
    #[cfg(feature = "redis")]
    Owned(Vec<u8>, PhantomData<V>),
}

impl<V: Value> AccessGuard<'_, V> {
    /// The value.
    pub fn value(&self) -> V::SelfType<'_> {
        match self {
            AccessGuard::Redb(g) => g.value(),
            #[cfg(feature = "redis")]
            AccessGuard::Owned(bytes, _) => V::from_bytes(bytes),
        }
    }
}

/// An entry of a table, as ranges yield it.
pub type Entry<'a, K, V> = (AccessGuard<'a, K>, AccessGuard<'a, V>);

/// Entries of a table in key order (either end first).
// The redb variant is the router build's only one: boxing it would cost every
// transaction an allocation there.
#[allow(clippy::large_enum_variant)]
pub enum Range<'a, K: Key, V: Value> {
    /// redb's range.
    Redb(redb::Range<'a, K, V>),
    /// Read from Redis: the keys' and values' redb bytes.
    #[cfg(feature = "redis")]
    Owned(std::vec::IntoIter<(Vec<u8>, Vec<u8>)>, PhantomData<(K, V)>),
}

impl<'a, K: Key, V: Value> Iterator for Range<'a, K, V> {
    type Item = Result<Entry<'a, K, V>>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Range::Redb(r) => r.next().map(|entry| {
                entry
                    .map(|(k, v)| (AccessGuard::Redb(k), AccessGuard::Redb(v)))
                    .map_err(Into::into)
            }),
            #[cfg(feature = "redis")]
            Range::Owned(r, _) => r.next().map(owned),
        }
    }
}

impl<K: Key, V: Value> DoubleEndedIterator for Range<'_, K, V> {
    fn next_back(&mut self) -> Option<Self::Item> {
        match self {
            Range::Redb(r) => r.next_back().map(|entry| {
                entry
                    .map(|(k, v)| (AccessGuard::Redb(k), AccessGuard::Redb(v)))
                    .map_err(Into::into)
            }),
            #[cfg(feature = "redis")]
            Range::Owned(r, _) => r.next_back().map(owned),
        }
    }
}

#[cfg(feature = "redis")]
#[allow(clippy::unnecessary_wraps)]
fn owned<'a, K: Key, V: Value>((k, v): (Vec<u8>, Vec<u8>)) -> Result<Entry<'a, K, V>> {
    Ok((
        AccessGuard::Owned(k, PhantomData),
        AccessGuard::Owned(v, PhantomData),
    ))
}

/// How many entries a table has.
pub trait ReadableTableMetadata {
    /// The number of entries.
    fn len(&self) -> Result<u64>;
    /// Whether it has none.
    fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }
}

/// Reads of a table, in a read or a write transaction.
pub trait ReadableTable<K: Key, V: Value>: ReadableTableMetadata {
    /// The value of `key`.
    fn get<'a>(&self, key: impl Borrow<K::SelfType<'a>>) -> Result<Option<AccessGuard<'_, V>>>;
    /// The entries whose keys are in `range`, in order.
    fn range<'a, KR>(&self, range: impl RangeBounds<KR> + 'a) -> Result<Range<'_, K, V>>
    where
        KR: Borrow<K::SelfType<'a>> + 'a;
    /// Every entry, in order.
    fn iter(&self) -> Result<Range<'_, K, V>> {
        self.range::<K::SelfType<'_>>(..)
    }
    /// The entry with the lowest key.
    fn first(&self) -> Result<Option<Entry<'_, K, V>>> {
        self.iter()?.next().transpose()
    }
    /// The entry with the highest key.
    fn last(&self) -> Result<Option<Entry<'_, K, V>>> {
        self.iter()?.next_back().transpose()
    }
}

/// A table opened for reading.
pub enum ReadOnlyTable<K: Key, V: Value> {
    /// redb's.
    Redb(redb::ReadOnlyTable<K, V>),
    /// Redis's.
    #[cfg(feature = "redis")]
    Redis(redis::Reading<K, V>),
}

impl<K: Key, V: Value> ReadableTableMetadata for ReadOnlyTable<K, V> {
    fn len(&self) -> Result<u64> {
        match self {
            ReadOnlyTable::Redb(t) => Ok(t.len()?),
            #[cfg(feature = "redis")]
            ReadOnlyTable::Redis(t) => t.count(),
        }
    }
}

impl<K: Key, V: Value> ReadableTable<K, V> for ReadOnlyTable<K, V> {
    fn get<'a>(&self, key: impl Borrow<K::SelfType<'a>>) -> Result<Option<AccessGuard<'_, V>>> {
        match self {
            ReadOnlyTable::Redb(t) => Ok(redb::ReadableTable::get(t, key)?.map(AccessGuard::Redb)),
            #[cfg(feature = "redis")]
            ReadOnlyTable::Redis(t) => t.get(key.borrow()),
        }
    }

    fn range<'a, KR>(&self, range: impl RangeBounds<KR> + 'a) -> Result<Range<'_, K, V>>
    where
        KR: Borrow<K::SelfType<'a>> + 'a,
    {
        match self {
            ReadOnlyTable::Redb(t) => Ok(Range::Redb(redb::ReadableTable::range(t, range)?)),
            #[cfg(feature = "redis")]
            ReadOnlyTable::Redis(t) => t.range(&range),
        }
    }

    fn first(&self) -> Result<Option<Entry<'_, K, V>>> {
        match self {
            ReadOnlyTable::Redb(t) => Ok(redb::ReadableTable::first(t)?
                .map(|(k, v)| (AccessGuard::Redb(k), AccessGuard::Redb(v)))),
            #[cfg(feature = "redis")]
            ReadOnlyTable::Redis(t) => t.first()?.next().transpose(),
        }
    }
}

/// A table opened for writing, in a write transaction.
pub enum Table<'t, K: Key, V: Value> {
    /// redb's.
    Redb(redb::Table<'t, K, V>),
    /// Redis's.
    #[cfg(feature = "redis")]
    Redis(redis::Writing<'t, K, V>),
}

impl<K: Key, V: Value> Table<'_, K, V> {
    /// Sets `key` to `value`; gives the value it had.
    pub fn insert<'k, 'v>(
        &mut self,
        key: impl Borrow<K::SelfType<'k>>,
        value: impl Borrow<V::SelfType<'v>>,
    ) -> Result<Option<AccessGuard<'_, V>>> {
        match self {
            Table::Redb(t) => Ok(t.insert(key, value)?.map(AccessGuard::Redb)),
            #[cfg(feature = "redis")]
            Table::Redis(t) => t.insert(key.borrow(), value.borrow()),
        }
    }

    /// Removes `key`; gives the value it had.
    pub fn remove<'a>(
        &mut self,
        key: impl Borrow<K::SelfType<'a>>,
    ) -> Result<Option<AccessGuard<'_, V>>> {
        match self {
            Table::Redb(t) => Ok(t.remove(key)?.map(AccessGuard::Redb)),
            #[cfg(feature = "redis")]
            Table::Redis(t) => t.remove(key.borrow()),
        }
    }
}

impl<K: Key, V: Value> ReadableTableMetadata for Table<'_, K, V> {
    fn len(&self) -> Result<u64> {
        match self {
            Table::Redb(t) => Ok(t.len()?),
            #[cfg(feature = "redis")]
            Table::Redis(t) => t.count(),
        }
    }
}

impl<K: Key, V: Value> ReadableTable<K, V> for Table<'_, K, V> {
    fn get<'a>(&self, key: impl Borrow<K::SelfType<'a>>) -> Result<Option<AccessGuard<'_, V>>> {
        match self {
            Table::Redb(t) => Ok(redb::ReadableTable::get(t, key)?.map(AccessGuard::Redb)),
            #[cfg(feature = "redis")]
            Table::Redis(t) => t.get(key.borrow()),
        }
    }

    fn range<'a, KR>(&self, range: impl RangeBounds<KR> + 'a) -> Result<Range<'_, K, V>>
    where
        KR: Borrow<K::SelfType<'a>> + 'a,
    {
        match self {
            Table::Redb(t) => Ok(Range::Redb(redb::ReadableTable::range(t, range)?)),
            #[cfg(feature = "redis")]
            Table::Redis(t) => t.range(&range),
        }
    }

    fn first(&self) -> Result<Option<Entry<'_, K, V>>> {
        match self {
            Table::Redb(t) => Ok(redb::ReadableTable::first(t)?
                .map(|(k, v)| (AccessGuard::Redb(k), AccessGuard::Redb(v)))),
            #[cfg(feature = "redis")]
            Table::Redis(t) => t.first()?.next().transpose(),
        }
    }
}
