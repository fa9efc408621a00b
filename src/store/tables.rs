//! The on-disk layout. Table names are part of the file format: never rename one without
//! bumping [`SCHEMA_VERSION`] and writing a migration.
//!
//! ```text
//! meta            &str                 -> u64     schema_version, next_user_id,
//!                                                 next_client_id, message_id_high_water,
//!                                                 names_key_0 … names_key_3,
//!                                                 next_token_id
//! users           user id              -> UserRecord
//! user_by_name    name                 -> user id
//! clients         client id            -> ClientRecord (holds the key: the API returns it)
//! client_by_user  (user id, client id) -> (empty)
//! client_by_key   blake2s(key)         -> client id (8 bytes, LE)
//! client_by_name  (user id, name)      -> client id (8 bytes, LE)
//! apps            blake2s(token)       -> AppRecord (holds the routing token)
//! app_by_client   (client id, registration id) -> blake2s(token)
//! messages        (queue id, message id)       -> MessageRecord (expiry first)
//! collapse        (queue id, registration id, collapse key) -> message id
//! topics          topic name (UTF-8)           -> TopicRecord (its queue id, owner, grants)
//! topic_by_owner  (user id, topic name)        -> (empty)
//! uaids           queue id                     -> UaidRecord (an autopush user agent)
//! uaid_by_address address ++ queue id (BE)     -> (empty)
//! channels        (queue id, channel id)       -> blake2s(endpoint token)
//! endpoints       blake2s(endpoint token)      -> EndpointRecord
//! tokens          blake2s(access token)[..16]  -> TokenRecord (the digest's other half, no token)
//! token_by_user   (user id, token number)      -> blake2s(access token)[..16]
//! scheduled       (due time ms, slot)          -> ScheduledRecord (a message waiting for its time)
//! scheduled_by_sequence (queue id, sequence id) -> due time ms ++ slot (LE)
//! scheduled_by_sender   sender (17) ++ slot (BE) -> (empty)
//! ```
//!
//! A queue id is a client id (the OpenPush queue of a device), from [`TOPIC_QUEUES`] up a
//! topic's queue, from [`UAID_QUEUES`] up an autopush user agent's: they never meet. Message ids come from one counter: they increase
//! across restarts and across queues, so `Last-Event-ID` or ntfy's `since=<id>` means
//! "everything after this one" for any queue or set of queues. The counter itself lives in
//! the store thread's memory; `meta` holds a high-water mark above every id ever handed
//! out (see `store::memory`). The `names_key_*` entries are the 256-bit key of the names
//! that senders see instead of ids (`crate::locations`), eight bytes each (little-endian),
//! made from the OS random generator the first time a database is opened by a version
//! that has them; an older version leaves them alone. Posting a message writes `messages`
//! only (and `collapse` with a collapse key): every other B-tree a commit touches costs
//! flash pages.
//!
//! Index tables hold empty byte slices rather than `()`, and every table uses one of a few
//! key/value type pairs: redb's B-tree code is built once per pair, and each pair costs
//! tens of kilobytes of a router's flash.
//!
//! Schema history: 1 (0.1.0) had no topics and version-1 message records; 2 had no
//! autopush tables, `()` values in `client_by_user` and `topic_by_owner`, `u64` values in
//! `client_by_key` and `client_by_name`, and `&str` keys in `topics`; 3 had no `tokens`
//! and `token_by_user`; 4 had no `scheduled` tables and no version-3 message records (ntfy
//! sequences; its version-2 records are read as they are). [`init_or_check`] brings such a
//! file to the current schema in place, in one transaction.

use redb::{Database, ReadableDatabase, ReadableTable as _, WriteTransaction};

use super::kv::{Key, ReadableTable, TableDefinition};

use super::{Error, Result as StoreResult};

/// The schema this version writes; an older file is upgraded in place, a newer one refused.
pub const SCHEMA_VERSION: u64 = 5;

/// The first queue id of a topic; client ids stay far below it.
pub const TOPIC_QUEUES: u64 = 1 << 62;
/// The first queue id of an autopush user agent; topic queues stay below it.
pub const UAID_QUEUES: u64 = 1 << 63;

/// Counters and keys by name (see the layout above).
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// user id → `UserRecord`.
pub const USERS: TableDefinition<u64, &[u8]> = TableDefinition::new("users");
/// name → user id.
pub const USER_BY_NAME: TableDefinition<&str, u64> = TableDefinition::new("user_by_name");
/// client id → `ClientRecord`.
pub const CLIENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("clients");
/// (user id, client id) → nothing.
pub const CLIENT_BY_USER: TableDefinition<(u64, u64), &[u8]> =
    TableDefinition::new("client_by_user");
/// blake2s(key) → client id.
pub const CLIENT_BY_KEY: TableDefinition<&[u8], &[u8]> = TableDefinition::new("client_by_key");
/// (user id, name) → client id.
pub const CLIENT_BY_NAME: TableDefinition<(u64, &str), &[u8]> =
    TableDefinition::new("client_by_name");
/// blake2s(routing token) → `AppRecord`.
pub const APPS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("apps");
/// (client id, registration id) → blake2s(routing token).
pub const APP_BY_CLIENT: TableDefinition<(u64, &str), &[u8]> =
    TableDefinition::new("app_by_client");
/// (queue id, message id) → `MessageRecord`.
pub const MESSAGES: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("messages");
/// (queue id, registration id, collapse key) → message id.
pub const COLLAPSE: TableDefinition<(u64, &str, &str), u64> = TableDefinition::new("collapse");
/// topic name → `TopicRecord`.
pub const TOPICS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("topics");
/// (owner id, topic name) → nothing.
pub const TOPIC_BY_OWNER: TableDefinition<(u64, &str), &[u8]> =
    TableDefinition::new("topic_by_owner");
/// queue id → `UaidRecord`.
pub const UAIDS: TableDefinition<u64, &[u8]> = TableDefinition::new("uaids");
/// Keyed by the address (16 bytes) and the queue id (8, big-endian), valued by nothing: a
/// byte-slice table like `apps`, so that redb's code is not built for one more key type.
pub const UAID_BY_ADDRESS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("uaid_by_address");
/// (queue id, channel id) → blake2s(endpoint token).
pub const CHANNELS: TableDefinition<(u64, &str), &[u8]> = TableDefinition::new("channels");
/// blake2s(endpoint token) → `EndpointRecord`.
pub const ENDPOINTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("endpoints");
/// blake2s(access token)[..16] → `TokenRecord`.
pub const TOKENS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("tokens");
/// (user id, token number) → blake2s(access token)[..16].
pub const TOKEN_BY_USER: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("token_by_user");
/// (due time in Unix ms, slot) → `ScheduledRecord`.
pub const SCHEDULED: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("scheduled");
/// (queue id, sequence id) → due time and slot, 8 bytes each (little-endian).
pub const SCHEDULED_BY_SEQUENCE: TableDefinition<(u64, &str), &[u8]> =
    TableDefinition::new("scheduled_by_sequence");
/// The sender's 17 bytes (`Sender::key`) and the slot (8, big-endian) → nothing.
pub const SCHEDULED_BY_SENDER: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("scheduled_by_sender");

/// `meta`: the next user id.
pub const NEXT_USER_ID: &str = "next_user_id";
/// `meta`: the next client id.
pub const NEXT_CLIENT_ID: &str = "next_client_id";
/// `meta`: above every message id ever handed out.
pub const ID_HIGH_WATER: &str = "message_id_high_water";
/// `meta`: the next topic's id.
pub const NEXT_TOPIC_ID: &str = "next_topic_id";
/// `meta`: the next user agent's id.
pub const NEXT_UAID_ID: &str = "next_uaid_id";
/// `meta`: the next access token's number.
pub const NEXT_TOKEN_ID: &str = "next_token_id";
const VERSION_KEY: &str = "schema_version";

/// Why a database file is not one this version can use.
pub enum SchemaError {
    /// Written by another schema version (the one found).
    Version(u64),
    /// Not an openpush database.
    Foreign,
    /// The store failed while checking or upgrading.
    Store(super::Error),
}

impl<E: Into<super::Error>> From<E> for SchemaError {
    fn from(e: E) -> Self {
        SchemaError::Store(e.into())
    }
}

/// A new database in memory with every table, for the store's unit tests.
#[cfg(test)]
pub fn in_memory() -> super::kv::Database {
    let db = redb::Builder::new()
        .create_with_backend(redb::backends::InMemoryBackend::new())
        .unwrap();
    init_or_check(&db).unwrap_or_else(|_| panic!("tables"));
    super::kv::Database::Redb(db)
}

/// Creates every table in a new file, upgrades a file of an earlier schema in place, or
/// checks the schema version of an existing one.
pub fn init_or_check(db: &Database) -> Result<(), SchemaError> {
    match check(db)? {
        Some(SCHEMA_VERSION) => Ok(()),
        Some(old) => upgrade(db, old),
        None => {
            let txn = db.begin_write()?;
            {
                let mut meta = txn.open_table(META.redb())?;
                meta.insert(VERSION_KEY, SCHEMA_VERSION)?;
                for key in COUNTERS {
                    meta.insert(key, 1)?;
                }
                txn.open_table(USERS.redb())?;
                txn.open_table(USER_BY_NAME.redb())?;
                txn.open_table(CLIENTS.redb())?;
                txn.open_table(CLIENT_BY_USER.redb())?;
                txn.open_table(CLIENT_BY_KEY.redb())?;
                txn.open_table(CLIENT_BY_NAME.redb())?;
                txn.open_table(APPS.redb())?;
                txn.open_table(APP_BY_CLIENT.redb())?;
                txn.open_table(MESSAGES.redb())?;
                txn.open_table(COLLAPSE.redb())?;
                txn.open_table(TOPICS.redb())?;
                txn.open_table(TOPIC_BY_OWNER.redb())?;
                create_autopush_tables(&txn)?;
                create_token_tables(&txn)?;
                create_schedule_tables(&txn)?;
            }
            txn.commit()?;
            Ok(())
        }
    }
}

/// The counters in `meta`, each 1 in a new store.
const COUNTERS: [&str; 6] = [
    NEXT_USER_ID,
    NEXT_CLIENT_ID,
    ID_HIGH_WATER,
    NEXT_TOPIC_ID,
    NEXT_UAID_ID,
    NEXT_TOKEN_ID,
];

/// Makes the `meta` entries of a new store other than the redb file (Redis, whose tables
/// need no creating), with ids from [`fresh_id_base`], or checks the schema version of an
/// existing one. Schema 5 is the first such a store has; a later schema brings its own
/// upgrade here.
pub fn init_or_check_shared(db: &super::kv::Database) -> Result<(), SchemaError> {
    let txn = db.begin_write()?;
    let found = txn.open_table(META)?.get(VERSION_KEY)?.map(|v| v.value());
    match found {
        Some(SCHEMA_VERSION) => Ok(txn.abort()?),
        Some(other) => {
            txn.abort()?;
            Err(SchemaError::Version(other))
        }
        None => {
            {
                let mut meta = txn.open_table(META)?;
                meta.insert(VERSION_KEY, SCHEMA_VERSION)?;
                for key in COUNTERS {
                    // Writes since a loss of the store's data may have made some already.
                    if meta.get(key)?.is_none() {
                        let first = if key == ID_HIGH_WATER {
                            fresh_id_base()
                        } else {
                            1
                        };
                        meta.insert(key, first)?;
                    }
                }
            }
            txn.commit()?;
            Ok(())
        }
    }
}

/// Where the message ids of a new shared store (Redis) start: at random in [2^40, 2^41).
/// Each history of the store gets its own span of ids, an epoch: a client's cursor from a
/// history that was lost is then either above every id of the new one (and confirms
/// nothing, see `Store::highest_id`) or below all of them (and skips none), but for a
/// chance of about one in 2^40 per message. Far below 2^53, so JavaScript clients read the
/// ids exactly.
pub fn fresh_id_base() -> u64 {
    let random = u64::from_le_bytes(crate::secret::random_bytes::<8>());
    (1 << 40) + random % (1 << 40)
}

/// Brings a file of an earlier schema to the current one in one transaction. From 1: every
/// queued message is rewritten as a version-2 record and the topic tables are created.
/// From 2 (and 1): the autopush tables are created, and the tables whose types changed are
/// rewritten entry by entry: `client_by_user`, `client_by_key`, `client_by_name` and, from
/// 2, `topic_by_owner` and `topics`. From 3 (and earlier): the token tables are created.
/// From 4 (and earlier): the schedule tables are created. Users, clients, apps, topics and
/// messages keep their records. A crash before the commit leaves the file as it was.
fn upgrade(db: &Database, from: u64) -> Result<(), SchemaError> {
    let txn = db.begin_write()?;
    {
        if from < 2 {
            upgrade_messages_from_1(&txn)?;
        }
        if from < 3 {
            rewrite_client_tables(&txn)?;
        }
        if from == 2 {
            rewrite_topic_tables_from_2(&txn)?;
        }
        if from < 3 {
            create_autopush_tables(&txn)?;
            txn.open_table(META.redb())?.insert(NEXT_UAID_ID, 1)?;
        }
        if from < 4 {
            create_token_tables(&txn)?;
            txn.open_table(META.redb())?.insert(NEXT_TOKEN_ID, 1)?;
        }
        create_schedule_tables(&txn)?;
        txn.open_table(META.redb())?
            .insert(VERSION_KEY, SCHEMA_VERSION)?;
    }
    txn.commit()?;
    log::info!("database upgraded from schema {from} to {SCHEMA_VERSION}");
    Ok(())
}

/// From schema 1: every queued message as a version-2 record, and the topic tables.
fn upgrade_messages_from_1(txn: &WriteTransaction) -> Result<(), SchemaError> {
    let mut messages = txn.open_table(MESSAGES.redb())?;
    let mut old = Vec::new();
    for entry in messages.iter()? {
        let (key, bytes) = entry?;
        old.push((key.value(), bytes.value().to_vec()));
    }
    for (key, bytes) in old {
        let record = super::MessageRecord::decode_v1(&bytes)
            .ok_or_else(|| SchemaError::Store(damaged("schema-1 message", key.1)))?;
        messages.insert(key, record.encode().as_slice())?;
    }
    txn.open_table(TOPICS.redb())?;
    txn.open_table(TOPIC_BY_OWNER.redb())?;
    txn.open_table(META.redb())?.insert(NEXT_TOPIC_ID, 1)?;
    Ok(())
}

/// `client_by_user`, `client_by_key` and `client_by_name`, whose value types changed,
/// rewritten entry by entry.
fn rewrite_client_tables(txn: &WriteTransaction) -> Result<(), SchemaError> {
    let old_client_by_user: redb::TableDefinition<(u64, u64), ()> =
        redb::TableDefinition::new("client_by_user");
    let keys = txn
        .open_table(old_client_by_user)?
        .iter()?
        .map(|entry| entry.map(|(key, _)| key.value()))
        .collect::<Result<Vec<_>, _>>()?;
    txn.delete_table(old_client_by_user)?;
    let mut new = txn.open_table(CLIENT_BY_USER.redb())?;
    for key in keys {
        new.insert(key, [].as_slice())?;
    }
    drop(new);
    let old_client_by_key: redb::TableDefinition<&[u8], u64> =
        redb::TableDefinition::new("client_by_key");
    let entries = txn
        .open_table(old_client_by_key)?
        .iter()?
        .map(|entry| entry.map(|(key, id)| (key.value().to_vec(), id.value())))
        .collect::<Result<Vec<_>, _>>()?;
    txn.delete_table(old_client_by_key)?;
    let mut new = txn.open_table(CLIENT_BY_KEY.redb())?;
    for (key, id) in &entries {
        new.insert(key.as_slice(), id.to_le_bytes().as_slice())?;
    }
    drop(new);
    let old_client_by_name: redb::TableDefinition<(u64, &str), u64> =
        redb::TableDefinition::new("client_by_name");
    let entries = txn
        .open_table(old_client_by_name)?
        .iter()?
        .map(|entry| {
            entry.map(|(key, id)| {
                let (user, name) = key.value();
                (user, name.to_owned(), id.value())
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    txn.delete_table(old_client_by_name)?;
    let mut new = txn.open_table(CLIENT_BY_NAME.redb())?;
    for (user, name, id) in &entries {
        new.insert((*user, name.as_str()), id.to_le_bytes().as_slice())?;
    }
    drop(new);
    Ok(())
}

/// From schema 2: `topics` and `topic_by_owner`, whose key types changed, rewritten
/// entry by entry.
fn rewrite_topic_tables_from_2(txn: &WriteTransaction) -> Result<(), SchemaError> {
    {
        let old_topics: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("topics");
        let entries = txn
            .open_table(old_topics)?
            .iter()?
            .map(|entry| {
                entry.map(|(name, record)| (name.value().to_owned(), record.value().to_vec()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        txn.delete_table(old_topics)?;
        let mut new = txn.open_table(TOPICS.redb())?;
        for (name, record) in &entries {
            new.insert(name.as_bytes(), record.as_slice())?;
        }
    }
    {
        let old_topic_by_owner: redb::TableDefinition<(u64, &str), ()> =
            redb::TableDefinition::new("topic_by_owner");
        let keys = txn
            .open_table(old_topic_by_owner)?
            .iter()?
            .map(|entry| {
                entry.map(|(key, _)| {
                    let (owner, name) = key.value();
                    (owner, name.to_owned())
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        txn.delete_table(old_topic_by_owner)?;
        let mut new = txn.open_table(TOPIC_BY_OWNER.redb())?;
        for (owner, name) in &keys {
            new.insert((*owner, name.as_str()), [].as_slice())?;
        }
    }
    Ok(())
}

fn create_token_tables(txn: &WriteTransaction) -> Result<(), SchemaError> {
    txn.open_table(TOKENS.redb())?;
    txn.open_table(TOKEN_BY_USER.redb())?;
    Ok(())
}

fn create_schedule_tables(txn: &WriteTransaction) -> Result<(), SchemaError> {
    txn.open_table(SCHEDULED.redb())?;
    txn.open_table(SCHEDULED_BY_SEQUENCE.redb())?;
    txn.open_table(SCHEDULED_BY_SENDER.redb())?;
    Ok(())
}

fn create_autopush_tables(txn: &WriteTransaction) -> Result<(), SchemaError> {
    txn.open_table(UAIDS.redb())?;
    txn.open_table(UAID_BY_ADDRESS.redb())?;
    txn.open_table(CHANNELS.redb())?;
    txn.open_table(ENDPOINTS.redb())?;
    Ok(())
}

/// Reads the schema version without writing: `Some` for an openpush database of this or an
/// earlier (upgradable) version, `None` for an empty file; an error for a newer version,
/// or a redb file with other tables.
pub fn check(db: &impl ReadableDatabase) -> Result<Option<u64>, SchemaError> {
    let read = db.begin_read()?;
    let found = match read.open_table(META.redb()) {
        Ok(meta) => meta.get(VERSION_KEY)?.map(|v| v.value()),
        Err(redb::TableError::TableDoesNotExist(_)) => None,
        Err(e) => return Err(e.into()),
    };
    match found {
        Some(1..=SCHEMA_VERSION) => Ok(found),
        Some(other) => Err(SchemaError::Version(other)),
        None if read.list_tables()?.next().is_some() => Err(SchemaError::Foreign),
        None => Ok(None),
    }
}

/// The `meta` entries of the names key, in byte order.
const NAMES_KEY: [&str; 4] = ["names_key_0", "names_key_1", "names_key_2", "names_key_3"];

/// The key of the names senders see for messages (`crate::locations`); made, and stored
/// in one commit, if the database has none yet.
pub fn names_key(db: &super::kv::Database) -> StoreResult<[u8; 32]> {
    if let Some(key) = read_names_key(&db.begin_read()?.open_table(META)?)? {
        return Ok(key);
    }
    let txn = db.begin_write()?;
    let key = {
        let mut meta = txn.open_table(META)?;
        match read_names_key(&meta)? {
            Some(key) => key,
            None => {
                let key = crate::secret::random_bytes::<32>();
                for (name, part) in NAMES_KEY.iter().zip(key.chunks_exact(8)) {
                    let part = u64::from_le_bytes(part.try_into().expect("chunks of 8 bytes"));
                    meta.insert(*name, part)?;
                }
                key
            }
        }
    };
    txn.commit()?;
    Ok(key)
}

fn read_names_key(meta: &impl ReadableTable<&'static str, u64>) -> StoreResult<Option<[u8; 32]>> {
    let mut key = [0u8; 32];
    for (name, part) in NAMES_KEY.iter().zip(key.chunks_exact_mut(8)) {
        let Some(value) = meta.get(*name)? else {
            return Ok(None);
        };
        part.copy_from_slice(&value.value().to_le_bytes());
    }
    Ok(Some(key))
}

/// A client id as the index tables hold it.
pub fn id_bytes(id: u64) -> [u8; 8] {
    id.to_le_bytes()
}

/// A client id read from an index table; `None` if the value is not 8 bytes.
pub fn id_from_bytes(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

/// Takes the next value of a counter in `meta`.
pub fn next_id(txn: &super::kv::WriteTransaction, counter: &str) -> super::Result<u64> {
    let mut meta = txn.open_table(META)?;
    let id = meta.get(counter)?.map(|v| v.value()).unwrap_or(1);
    meta.insert(counter, id + 1)?;
    Ok(id)
}

/// The error for a record that does not decode.
pub fn damaged(what: &str, id: impl std::fmt::Display) -> Error {
    Error::Storage(format!(
        "{what} {id} does not decode; the database is damaged"
    ))
}

/// Opens tables the same way in read and write transactions, so lookups serve both.
pub trait Tables {
    /// A table of byte-slice values.
    type Bytes<'a, K: Key>: ReadableTable<K, &'static [u8]>
    where
        Self: 'a;
    /// A table of id values.
    type Id<'a, K: Key>: ReadableTable<K, u64>
    where
        Self: 'a;
    /// Opens a table of byte-slice values.
    fn bytes<K: Key>(
        &self,
        def: TableDefinition<K, &'static [u8]>,
    ) -> StoreResult<Self::Bytes<'_, K>>;
    /// Opens a table of id values.
    fn ids<K: Key>(&self, def: TableDefinition<K, u64>) -> StoreResult<Self::Id<'_, K>>;

    /// `users`.
    fn users(&self) -> StoreResult<Self::Bytes<'_, u64>> {
        self.bytes(USERS)
    }
    /// `user_by_name`.
    fn user_by_name(&self) -> StoreResult<Self::Id<'_, &'static str>> {
        self.ids(USER_BY_NAME)
    }
    /// `clients`.
    fn clients(&self) -> StoreResult<Self::Bytes<'_, u64>> {
        self.bytes(CLIENTS)
    }
    /// `client_by_user`.
    fn client_by_user(&self) -> StoreResult<Self::Bytes<'_, (u64, u64)>> {
        self.bytes(CLIENT_BY_USER)
    }
    /// `client_by_key`.
    fn client_by_key(&self) -> StoreResult<Self::Bytes<'_, &'static [u8]>> {
        self.bytes(CLIENT_BY_KEY)
    }
    /// `apps`.
    fn apps(&self) -> StoreResult<Self::Bytes<'_, &'static [u8]>> {
        self.bytes(APPS)
    }
    /// `app_by_client`.
    fn app_by_client(&self) -> StoreResult<Self::Bytes<'_, (u64, &'static str)>> {
        self.bytes(APP_BY_CLIENT)
    }
}

impl Tables for super::kv::ReadTransaction {
    type Bytes<'a, K: Key> = super::kv::ReadOnlyTable<K, &'static [u8]>;
    type Id<'a, K: Key> = super::kv::ReadOnlyTable<K, u64>;
    fn bytes<K: Key>(
        &self,
        def: TableDefinition<K, &'static [u8]>,
    ) -> StoreResult<Self::Bytes<'_, K>> {
        self.open_table(def)
    }
    fn ids<K: Key>(&self, def: TableDefinition<K, u64>) -> StoreResult<Self::Id<'_, K>> {
        self.open_table(def)
    }
}

impl Tables for super::kv::WriteTransaction {
    type Bytes<'a, K: Key> = super::kv::Table<'a, K, &'static [u8]>;
    type Id<'a, K: Key> = super::kv::Table<'a, K, u64>;
    fn bytes<K: Key>(
        &self,
        def: TableDefinition<K, &'static [u8]>,
    ) -> StoreResult<Self::Bytes<'_, K>> {
        self.open_table(def)
    }
    fn ids<K: Key>(&self, def: TableDefinition<K, u64>) -> StoreResult<Self::Id<'_, K>> {
        self.open_table(def)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schema_3_file_gets_the_token_tables_in_place() {
        let path = std::env::temp_dir().join(format!("schema-3-{}.redb", std::process::id()));
        let _ = std::fs::remove_file(&path);
        {
            // A file as schema 3 left it: no token tables, no token counter.
            let db = Database::create(&path).unwrap();
            init_or_check(&db).unwrap_or_else(|_| panic!("tables"));
            let txn = db.begin_write().unwrap();
            txn.delete_table(TOKENS.redb()).unwrap();
            txn.delete_table(TOKEN_BY_USER.redb()).unwrap();
            {
                let mut meta = txn.open_table(META.redb()).unwrap();
                meta.remove(NEXT_TOKEN_ID).unwrap();
                meta.insert(VERSION_KEY, 3).unwrap();
                meta.insert(NEXT_USER_ID, 7).unwrap();
            }
            txn.commit().unwrap();
        }
        let db = Database::open(&path).unwrap();
        assert_eq!(check(&db).ok().flatten(), Some(3));
        init_or_check(&db).unwrap_or_else(|_| panic!("upgrade"));
        assert_eq!(check(&db).ok().flatten(), Some(SCHEMA_VERSION));
        let read = db.begin_read().unwrap();
        read.open_table(TOKENS.redb()).unwrap();
        read.open_table(TOKEN_BY_USER.redb()).unwrap();
        let meta = read.open_table(META.redb()).unwrap();
        assert_eq!(meta.get(NEXT_TOKEN_ID).unwrap().unwrap().value(), 1);
        assert_eq!(meta.get(NEXT_USER_ID).unwrap().unwrap().value(), 7, "kept");
        drop((meta, read, db));
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_schema_4_file_gets_the_schedule_tables_and_keeps_its_token_counter() {
        let path = std::env::temp_dir().join(format!("schema-4-{}.redb", std::process::id()));
        let _ = std::fs::remove_file(&path);
        {
            // A file as schema 4 left it: no schedule tables, tokens handed out.
            let db = Database::create(&path).unwrap();
            init_or_check(&db).unwrap_or_else(|_| panic!("tables"));
            let txn = db.begin_write().unwrap();
            txn.delete_table(SCHEDULED.redb()).unwrap();
            txn.delete_table(SCHEDULED_BY_SEQUENCE.redb()).unwrap();
            txn.delete_table(SCHEDULED_BY_SENDER.redb()).unwrap();
            {
                let mut meta = txn.open_table(META.redb()).unwrap();
                meta.insert(VERSION_KEY, 4).unwrap();
                meta.insert(NEXT_TOKEN_ID, 5).unwrap();
            }
            txn.commit().unwrap();
        }
        let db = Database::open(&path).unwrap();
        assert_eq!(check(&db).ok().flatten(), Some(4));
        init_or_check(&db).unwrap_or_else(|_| panic!("upgrade"));
        assert_eq!(check(&db).ok().flatten(), Some(SCHEMA_VERSION));
        let read = db.begin_read().unwrap();
        read.open_table(SCHEDULED.redb()).unwrap();
        read.open_table(SCHEDULED_BY_SEQUENCE.redb()).unwrap();
        read.open_table(SCHEDULED_BY_SENDER.redb()).unwrap();
        let meta = read.open_table(META.redb()).unwrap();
        assert_eq!(meta.get(NEXT_TOKEN_ID).unwrap().unwrap().value(), 5, "kept");
        drop((meta, read, db));
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn the_names_key_is_made_once_and_kept_in_the_file() {
        let path = std::env::temp_dir().join(format!("names-key-{}.redb", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let key = {
            let db = Database::create(&path).unwrap();
            init_or_check(&db).unwrap_or_else(|_| panic!("tables"));
            let db = super::super::kv::Database::Redb(db);
            let key = names_key(&db).unwrap();
            assert_eq!(names_key(&db).unwrap(), key);
            key
        };
        let db = super::super::kv::Database::Redb(Database::open(&path).unwrap());
        assert_eq!(names_key(&db).unwrap(), key, "after a reopen");
        drop(db);
        std::fs::remove_file(&path).unwrap();
        assert_ne!(
            names_key(&in_memory()).unwrap(),
            key,
            "each database has its own"
        );
    }
}
