//! A `BTreeMap` model of the delivery rules in `openpush::store::queue`, run step by step against
//! a real redb database (its in-memory backend). Shared by `tests/it/properties.rs` and the
//! `queue_model` fuzz target, like redb's `fuzz/fuzz_targets/fuzz_redb.rs`.
//!
//! After every step the store must equal the model: the live backlog of every client, its
//! queue length as the store thread remembers it, and each step's own answer. So a
//! confirmed or swept message never comes back, an expired one is never returned, a
//! collapse replacement leaves only the newest, a full queue refuses without dropping
//! anything, and ids increase, also across a restart (the store thread's memory lost) and
//! an aborted commit.

use std::collections::BTreeMap;

use openpush::store::accounts;
use openpush::store::budget::Budget;
use openpush::store::deferred::Deferred;
use openpush::store::kv::Database;
use openpush::store::memory::{Memory, QueueSize};
use openpush::store::queue::{self, Cursor, Destination, Enqueued, NewMessage, Refused};
use openpush::store::tables::{self, MESSAGES};
use openpush::store::{Content, Result, Unsettled};
use redb::backends::InMemoryBackend;

/// Clients in the model, each with [`APPS`] applications.
pub const CLIENTS: u8 = 2;
pub const APPS: u8 = 2;
/// Small, so that the queue limit is hit often.
pub const MAX_QUEUED: u64 = 5;
/// The queue limit the model checks: by count only (bytes are bounded far above).
const LIMIT: QueueSize = QueueSize {
    messages: MAX_QUEUED,
    bytes: u64::MAX,
};
const START: u64 = 1_000_000;

#[derive(Clone, Debug)]
pub enum Op {
    /// `app` past the registered ones posts with an unknown token.
    Enqueue {
        app: u8,
        ttl_secs: u8,
        collapse: Option<u8>,
    },
    /// Confirms up to the newest id minus `back`.
    Confirm {
        client: u8,
        back: u8,
    },
    Sweep {
        max: u8,
    },
    /// Reads the backlog after the newest id minus `back`.
    Backlog {
        client: u8,
        back: u8,
        limit: u8,
    },
    /// Moves the clock to a queued message's deadline (or one tick before it).
    Tick {
        step: u8,
    },
    /// The store thread's memory is lost, as at a restart.
    Restart,
    /// A post to `app` whose commit fails: nothing of it stays, ids still increase.
    Abort {
        app: u8,
    },
}

impl Op {
    /// Turns fuzzer bytes into steps, four bytes a step.
    pub fn decode(bytes: &[u8]) -> Vec<Op> {
        bytes
            .chunks_exact(4)
            .map(|b| match b[0] % 8 {
                0..=2 => Op::Enqueue {
                    app: b[1] % (CLIENTS * APPS + 1),
                    ttl_secs: b[2] % 12,
                    collapse: (b[3] < 128).then_some(b[3] % 3),
                },
                3 => Op::Confirm {
                    client: b[1],
                    back: b[2] % 8,
                },
                4 => Op::Sweep { max: b[1] % 6 + 1 },
                5 | 6 => Op::Backlog {
                    client: b[1],
                    back: b[2] % 12,
                    limit: b[3] % 8 + 1,
                },
                7 if b[2] < 32 => Op::Restart,
                7 if b[2] < 64 => Op::Abort {
                    app: b[1] % (CLIENTS * APPS),
                },
                _ => Op::Tick { step: b[1] },
            })
            .collect()
    }
}

/// What `POST /message` does: resolve the token to its app's queue, then enqueue.
fn enqueue_to_token(
    txn: &openpush::store::kv::WriteTransaction,
    memory: &mut Memory,
    token: &str,
    msg: NewMessage,
    now: u64,
) -> Result<std::result::Result<Enqueued, Refused>> {
    let Some(app) = accounts::app_by_token(txn, token)? else {
        return Ok(Err(Refused::NotFound));
    };
    let to = Destination {
        queue: app.client_id,
        registration_id: app.registration_id,
        limit: LIMIT,
    };
    queue::enqueue(txn, memory, to, msg, &Budget::UNLIMITED, now)
}

fn json_message(data: Vec<u8>, ttl_secs: u64, collapse_key: Option<String>) -> NewMessage {
    NewMessage {
        content: Content::Json,
        data,
        priority: None,
        ttl_secs,
        collapse_key,
        extras: Vec::new(),
        sequence: None,
    }
}

/// The ids of a queue's live messages after `after`, at most `limit`.
fn backlog_ids(
    t: &impl openpush::store::tables::Tables,
    client: u64,
    after: u64,
    limit: usize,
    now: u64,
) -> Vec<(u64, openpush::store::MessageRecord)> {
    let cursor = Cursor {
        after,
        posted_since: 0,
    };
    let unsettled = Unsettled {
        deferred: &Deferred::default(),
        settled_through: 0,
        snapshot: true,
        handed_out_through: 0,
    };
    let limit = queue::PageLimit {
        messages: limit,
        bytes: usize::MAX,
    };
    queue::backlog(t, &unsettled, &[client], &cursor, limit, now)
        .expect("backlog")
        .messages
        .into_iter()
        .map(|(_, id, record)| (id, record))
        .collect()
}

#[derive(Clone, Debug)]
struct Message {
    expires_at: u64,
    registration_id: String,
    collapse_key: Option<String>,
    data: Vec<u8>,
}

struct App {
    client_id: u64,
    registration_id: String,
    token: String,
}

/// Runs `ops` on a fresh database and panics at the first step where store and model differ.
pub fn check(ops: &[Op]) {
    let db = redb::Builder::new()
        .create_with_backend(InMemoryBackend::new())
        .expect("in-memory database");
    assert!(tables::init_or_check(&db).is_ok(), "tables");
    let db = Database::Redb(db);
    let (clients, apps) = register(&db);

    let mut memory = Memory::default();
    let mut now = START;
    let mut model: BTreeMap<(u64, u64), Message> = BTreeMap::new();
    let mut last_id = 0;
    let mut posted = 0u64;
    for op in ops {
        let txn = db.begin_write().expect("write");
        match *op {
            Op::Enqueue {
                app,
                ttl_secs,
                collapse,
            } => {
                posted += 1;
                let data = format!("{{\"n\":{posted}}}").into_bytes();
                let known = apps.get(usize::from(app));
                let token = known.map_or("not-a-token".to_owned(), |a| a.token.clone());
                let collapse_key = collapse.map(|k| format!("k{k}"));
                let msg = json_message(data.clone(), u64::from(ttl_secs), collapse_key.clone());
                let got = enqueue_to_token(&txn, &mut memory, &token, msg, now).expect("enqueue");
                let Some(app) = known else {
                    assert_eq!(got.unwrap_err(), Refused::NotFound, "{op:?}");
                    txn.commit().expect("commit");
                    continue;
                };
                let client = app.client_id;
                let replaced = model
                    .iter()
                    .find(|((c, _), m)| {
                        *c == client
                            && collapse_key.is_some()
                            && m.collapse_key == collapse_key
                            && m.registration_id == app.registration_id
                    })
                    .map(|(&key, _)| key);
                let queued = model.keys().filter(|(c, _)| *c == client).count() as u64;
                if ttl_secs > 0 && replaced.is_none() && queued >= MAX_QUEUED {
                    assert_eq!(got.unwrap_err(), Refused::QueueFull(LIMIT), "{op:?}");
                    txn.commit().expect("commit");
                    continue;
                }
                let done = got.expect("accepted");
                assert_eq!(done.queue, client);
                assert!(
                    done.id > last_id,
                    "ids increase: {} after {last_id}",
                    done.id
                );
                last_id = done.id;
                assert_eq!(done.stored, ttl_secs > 0);
                assert_eq!(done.record.data, data);
                // The model takes the expiry the queue computed (its clock's unit is the
                // queue's business), as long as it lies at least the TTL ahead.
                let expires_at = done.record.expires_at;
                assert!(
                    expires_at >= now + u64::from(ttl_secs),
                    "{op:?} expires {expires_at}"
                );
                if let Some(old) = replaced {
                    model.remove(&old);
                }
                if ttl_secs > 0 {
                    let message = Message {
                        expires_at,
                        registration_id: app.registration_id.clone(),
                        collapse_key,
                        data,
                    };
                    model.insert((client, done.id), message);
                }
            }
            Op::Confirm { client, back } => {
                let client = clients[usize::from(client) % clients.len()];
                let up_to = last_id.saturating_sub(u64::from(back));
                let n = queue::confirm(&txn, &mut memory, client, up_to).expect("confirm");
                let gone: Vec<_> = model
                    .range((client, 0)..=(client, up_to))
                    .map(|(&k, _)| k)
                    .collect();
                assert_eq!(n, gone.len(), "{op:?}");
                for key in gone {
                    model.remove(&key);
                }
            }
            Op::Sweep { max } => {
                // The sweep reads the queue in key order and stops at `max`.
                let due: Vec<(u64, u64)> = model
                    .iter()
                    .filter(|(_, m)| m.expires_at <= now)
                    .map(|(&key, _)| key)
                    .take(usize::from(max))
                    .collect();
                let n = queue::sweep(&txn, &mut memory, now, usize::from(max)).expect("sweep");
                assert_eq!(n, due.len(), "{op:?}");
                for key in due {
                    model.remove(&key);
                }
            }
            Op::Backlog {
                client,
                back,
                limit,
            } => {
                let client = clients[usize::from(client) % clients.len()];
                let after = last_id.saturating_sub(u64::from(back));
                let got = backlog_ids(&txn, client, after, usize::from(limit), now);
                let want: Vec<u64> = model
                    .range((client, after + 1)..=(client, u64::MAX))
                    .filter(|(_, m)| m.expires_at > now)
                    .map(|(&(_, id), _)| id)
                    .take(usize::from(limit))
                    .collect();
                let got: Vec<u64> = got.iter().map(|(id, _)| *id).collect();
                assert_eq!(got, want, "{op:?}");
            }
            Op::Restart => memory = Memory::default(),
            Op::Abort { app } => {
                let token = apps[usize::from(app) % apps.len()].token.clone();
                let msg = json_message(b"{}".to_vec(), 5, Some("k0".into()));
                let got = enqueue_to_token(&txn, &mut memory, &token, msg, now).expect("enqueue");
                // Its id was never visible, so a later one may reuse it; it is still new.
                if let Ok(done) = got {
                    assert!(
                        done.id > last_id,
                        "ids increase: {} after {last_id}",
                        done.id
                    );
                }
                txn.abort().expect("abort");
                // What the store thread does after a failed commit.
                memory.reset();
                compare(&db, &mut memory, &clients, &model, now);
                continue;
            }
            Op::Tick { step } => {
                // To a message's deadline or just before it, where expiry is decided.
                let mut deadlines: Vec<u64> = model.values().map(|m| m.expires_at).collect();
                deadlines.sort_unstable();
                now = match deadlines.get(usize::from(step / 2) % deadlines.len().max(1)) {
                    Some(&d) => now.max(d - u64::from(step % 2)),
                    None => now + u64::from(step),
                };
            }
        }
        txn.commit().expect("commit");
        compare(&db, &mut memory, &clients, &model, now);
    }
}

/// The whole store against the model: every client's live messages with their bytes, and
/// its queue length (expired but unswept messages still count).
fn compare(
    db: &Database,
    memory: &mut Memory,
    clients: &[u64],
    model: &BTreeMap<(u64, u64), Message>,
    now: u64,
) {
    let read = db.begin_read().expect("read");
    let messages = read.open_table(MESSAGES).expect("messages");
    for &client in clients {
        let got = backlog_ids(&read, client, 0, usize::MAX, now);
        let want: Vec<_> = model
            .range((client, 0)..=(client, u64::MAX))
            .filter(|(_, m)| m.expires_at > now)
            .collect();
        assert_eq!(got.len(), want.len(), "client {client}: {got:?}");
        for ((id, record), (&(_, want_id), m)) in got.iter().zip(want) {
            assert_eq!(*id, want_id);
            assert_eq!(record.data, m.data);
            assert_eq!(record.expires_at, m.expires_at);
            assert_eq!(record.collapse_key, m.collapse_key);
            assert_eq!(record.registration_id, m.registration_id);
        }
        let queued = model.range((client, 0)..=(client, u64::MAX)).count() as u64;
        let counted = memory
            .queue_size(&messages, client)
            .expect("count")
            .messages;
        assert_eq!(counted, queued, "queue length of client {client}");
    }
}

/// One user with [`CLIENTS`] clients of [`APPS`] applications each.
fn register(db: &Database) -> (Vec<u64>, Vec<App>) {
    let txn = db.begin_write().expect("write");
    let (user, _) = accounts::create_user(&txn, "u", "hash".into(), true)
        .expect("store")
        .expect("user");
    let mut clients = Vec::new();
    let mut apps = Vec::new();
    for c in 0..CLIENTS {
        let (client_id, _) = accounts::create_client(&txn, user, &format!("c{c}"), 16)
            .expect("store")
            .expect("client");
        clients.push(client_id);
        for a in 0..APPS {
            let app = accounts::register_app(&txn, client_id, &format!("r{a}"), 16)
                .expect("store")
                .expect("app");
            apps.push(App {
                client_id,
                registration_id: app.registration_id,
                token: app.routing_token,
            });
        }
    }
    txn.commit().expect("commit");
    (clients, apps)
}
