//! The on-disk layout. Table names are part of the file format: never rename one without
//! bumping [`SCHEMA_VERSION`] and writing a migration.
//!
//! ```text
//! meta            &str                 -> u64     schema_version, next_user_id,
//!                                                 next_client_id, message_id_high_water
//! users           user id              -> UserRecord
//! user_by_name    name                 -> user id
//! clients         client id            -> ClientRecord (holds the key: the API returns it)
//! client_by_user  (user id, client id) -> ()
//! client_by_key   blake2s(key)         -> client id
//! client_by_name  (user id, name)      -> client id
//! apps            blake2s(token)       -> AppRecord (holds the routing token)
//! app_by_client   (client id, registration id) -> blake2s(token)
//! messages        (client id, message id)      -> MessageRecord (expiry first)
//! collapse        (client id, registration id, collapse key) -> message id
//! ```
//!
//! Message ids come from one counter: they increase across restarts and across clients,
//! so `Last-Event-ID` means "everything up to here" for any client. The counter itself
//! lives in the store thread's memory; `meta` holds a high-water mark above every id ever
//! handed out (see `store::memory`). Posting a message writes `messages` only (and
//! `collapse` with a collapse key): every other B-tree a commit touches costs flash pages.

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

pub const SCHEMA_VERSION: u64 = 1;

pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
pub const USERS: TableDefinition<u64, &[u8]> = TableDefinition::new("users");
pub const USER_BY_NAME: TableDefinition<&str, u64> = TableDefinition::new("user_by_name");
pub const CLIENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("clients");
pub const CLIENT_BY_USER: TableDefinition<(u64, u64), ()> = TableDefinition::new("client_by_user");
pub const CLIENT_BY_KEY: TableDefinition<&[u8], u64> = TableDefinition::new("client_by_key");
pub const CLIENT_BY_NAME: TableDefinition<(u64, &str), u64> =
    TableDefinition::new("client_by_name");
pub const APPS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("apps");
pub const APP_BY_CLIENT: TableDefinition<(u64, &str), &[u8]> =
    TableDefinition::new("app_by_client");
pub const MESSAGES: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("messages");
pub const COLLAPSE: TableDefinition<(u64, &str, &str), u64> = TableDefinition::new("collapse");

pub const NEXT_USER_ID: &str = "next_user_id";
pub const NEXT_CLIENT_ID: &str = "next_client_id";
pub const ID_HIGH_WATER: &str = "message_id_high_water";
const VERSION_KEY: &str = "schema_version";

pub enum SchemaError {
    Version(u64),
    Foreign,
    Store(super::Error),
}

impl<E: Into<super::Error>> From<E> for SchemaError {
    fn from(e: E) -> Self {
        SchemaError::Store(e.into())
    }
}

/// Creates every table in a new file, or checks the schema version of an existing one.
pub fn init_or_check(db: &Database) -> Result<(), SchemaError> {
    match check(db)? {
        Some(_) => Ok(()),
        None => {
            let txn = db.begin_write()?;
            {
                let mut meta = txn.open_table(META)?;
                meta.insert(VERSION_KEY, SCHEMA_VERSION)?;
                for key in [NEXT_USER_ID, NEXT_CLIENT_ID, ID_HIGH_WATER] {
                    meta.insert(key, 1)?;
                }
                txn.open_table(USERS)?;
                txn.open_table(USER_BY_NAME)?;
                txn.open_table(CLIENTS)?;
                txn.open_table(CLIENT_BY_USER)?;
                txn.open_table(CLIENT_BY_KEY)?;
                txn.open_table(CLIENT_BY_NAME)?;
                txn.open_table(APPS)?;
                txn.open_table(APP_BY_CLIENT)?;
                txn.open_table(MESSAGES)?;
                txn.open_table(COLLAPSE)?;
            }
            txn.commit()?;
            Ok(())
        }
    }
}

/// Reads the schema version without writing: `Some` for an openpush database of this
/// version, `None` for an empty file; an error for a newer or older version, or a redb
/// file with other tables.
pub fn check(db: &impl ReadableDatabase) -> Result<Option<u64>, SchemaError> {
    let read = db.begin_read()?;
    let found = match read.open_table(META) {
        Ok(meta) => meta.get(VERSION_KEY)?.map(|v| v.value()),
        Err(redb::TableError::TableDoesNotExist(_)) => None,
        Err(e) => return Err(e.into()),
    };
    match found {
        Some(SCHEMA_VERSION) => Ok(found),
        Some(other) => Err(SchemaError::Version(other)),
        None if read.list_tables()?.next().is_some() => Err(SchemaError::Foreign),
        None => Ok(None),
    }
}

/// Takes the next value of a counter in `meta`.
pub fn next_id(txn: &redb::WriteTransaction, counter: &str) -> super::Result<u64> {
    let mut meta = txn.open_table(META)?;
    let id = meta.get(counter)?.map(|v| v.value()).unwrap_or(1);
    meta.insert(counter, id + 1)?;
    Ok(id)
}
