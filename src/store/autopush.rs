//! Autopush user agents (`uaid`s), their channels, and the channels' push endpoints.
//!
//! A uaid is its queue id in 16 hex digits followed by 160 random bits in 40 hex digits;
//! the record holds the random half, compared in constant time, so the uaid is the
//! capability to read the queue. A channel is named by the user agent (a UUID) and has one
//! endpoint token (192 random bits, indexed by its digest as client keys are), bound or
//! not to an app server's VAPID key. A channel's messages carry its id as their
//! registration id, so an unregister drops them and an ack names them.
//!
//! Invariants: `channels` and `endpoints` name each other (a channel's entry holds the
//! digest under which its endpoint is stored, and the endpoint its channel); every uaid is
//! listed once in `uaid_by_address`, under the address it was created from; deleting a
//! uaid deletes its channels, endpoints and messages; a refusal writes nothing.

use crate::store::kv::{ReadableTable, ReadableTableMetadata, WriteTransaction};

use super::memory::Memory;
use super::queue::{self, Refused};
use super::tables::{
    CHANNELS, ENDPOINTS, NEXT_UAID_ID, Tables, UAID_BY_ADDRESS, UAID_QUEUES, UAIDS, damaged,
    next_id,
};
use super::{EndpointRecord, Result, UaidRecord};
use crate::secret;

const SECRET_BYTES: usize = 20;
const UAID_LEN: usize = 16 + 2 * SECRET_BYTES;

/// A user agent after its hello.
#[derive(Debug)]
pub struct Hello {
    /// The user agent's id: its capability, given in the first hello.
    pub uaid: String,
    /// Its queue.
    pub queue: u64,
    /// A new uaid: the one asked for (if any) is unknown here.
    pub new: bool,
}

/// The `uaid_by_address` key of a user agent.
fn address_key(address: &[u8; 16], queue: u64) -> [u8; 24] {
    let mut key = [0; 24];
    key[..16].copy_from_slice(address);
    key[16..].copy_from_slice(&queue.to_be_bytes());
    key
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The queue id and secret half of a uaid as we give them out.
fn parse_uaid(text: &str) -> Option<(u64, Vec<u8>)> {
    if text.len() != UAID_LEN || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let queue = u64::from_str_radix(&text[..16], 16).ok()?;
    let secret = (16..UAID_LEN)
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    (queue >= UAID_QUEUES).then_some((queue, secret))
}

fn get_uaid(txn: &impl Tables, queue: u64) -> Result<Option<UaidRecord>> {
    match txn.bytes(UAIDS)?.get(queue)? {
        Some(bytes) => UaidRecord::decode(bytes.value())
            .map(Some)
            .ok_or_else(|| damaged("uaid", queue)),
        None => Ok(None),
    }
}

/// The queue of a uaid, if it is one of ours and still known.
pub fn find(txn: &impl Tables, uaid: &str) -> Result<Option<u64>> {
    let Some((queue, secret)) = parse_uaid(uaid) else {
        return Ok(None);
    };
    Ok(get_uaid(txn, queue)?
        .filter(|record| secret::constant_time_eq(&record.secret, &secret))
        .map(|_| queue))
}

/// A hello: resumes `uaid` if it is known (its last-seen time is now), else makes a new
/// one for `address`, unless that address has `max_per_address` already or the store
/// has `max_total` from all addresses.
pub fn hello(
    txn: &WriteTransaction,
    uaid: Option<&str>,
    address: [u8; 16],
    now: u64,
    max_per_address: usize,
    max_total: usize,
) -> Result<std::result::Result<Hello, Refused>> {
    if let Some(uaid) = uaid
        && let Some(queue) = find(txn, uaid)?
    {
        touch(txn, queue, now)?;
        return Ok(Ok(Hello {
            uaid: uaid.to_ascii_lowercase(),
            queue,
            new: false,
        }));
    }
    if txn.open_table(UAIDS)?.len()? >= max_total as u64 {
        return Ok(Err(Refused::Crowded(format!(
            "the server has {max_total} push registrations (uaids) already"
        ))));
    }
    let mut by_address = txn.open_table(UAID_BY_ADDRESS)?;
    let (first, last) = (address_key(&address, 0), address_key(&address, u64::MAX));
    let known = by_address
        .range(first.as_slice()..=last.as_slice())?
        .take(max_per_address)
        .count();
    if known >= max_per_address {
        return Ok(Err(Refused::Crowded(format!(
            "this address has {max_per_address} push registrations (uaids) already"
        ))));
    }
    let queue = UAID_QUEUES + next_id(txn, NEXT_UAID_ID)?;
    let secret = secret::random_bytes::<SECRET_BYTES>();
    let record = UaidRecord {
        secret: secret.to_vec(),
        last_seen: now,
        address,
    };
    txn.open_table(UAIDS)?
        .insert(queue, record.encode().as_slice())?;
    by_address.insert(address_key(&address, queue).as_slice(), [].as_slice())?;
    Ok(Ok(Hello {
        uaid: format!("{queue:016x}{}", hex(&secret)),
        queue,
        new: true,
    }))
}

/// Records that the user agent of `queue` was seen now (a hello, a disconnect).
pub fn touch(txn: &WriteTransaction, queue: u64, now: u64) -> Result<()> {
    if let Some(mut record) = get_uaid(txn, queue)? {
        record.last_seen = now;
        txn.open_table(UAIDS)?
            .insert(queue, record.encode().as_slice())?;
    }
    Ok(())
}

fn get_endpoint(txn: &impl Tables, digest: &[u8]) -> Result<Option<EndpointRecord>> {
    match txn.bytes(ENDPOINTS)?.get(digest)? {
        Some(bytes) => EndpointRecord::decode(bytes.value())
            .map(Some)
            .ok_or_else(|| damaged("endpoint", "record")),
        None => Ok(None),
    }
}

/// The endpoint of a user agent's channel, if it has that channel.
pub fn channel(txn: &impl Tables, queue: u64, channel_id: &str) -> Result<Option<EndpointRecord>> {
    let digest = txn
        .bytes(CHANNELS)?
        .get((queue, channel_id))?
        .map(|d| d.value().to_vec());
    match digest {
        Some(digest) => get_endpoint(txn, &digest),
        None => Ok(None),
    }
}

/// The endpoint whose token this is.
pub fn endpoint(txn: &impl Tables, token: &str) -> Result<Option<EndpointRecord>> {
    let digest = secret::digest(token.as_bytes());
    Ok(get_endpoint(txn, &digest)?
        .filter(|record| secret::constant_time_eq(record.token.as_bytes(), token.as_bytes())))
}

/// Registers channel `channel_id` of the user agent of `queue`; its endpoint token. The
/// same channel with the same key keeps its endpoint; with another key it gets a new one
/// (the old endpoint ends). A new channel is refused past `max_channels`.
pub fn register(
    txn: &WriteTransaction,
    queue: u64,
    channel_id: &str,
    key: Option<Vec<u8>>,
    max_channels: usize,
) -> Result<std::result::Result<EndpointRecord, Refused>> {
    if get_uaid(txn, queue)?.is_none() {
        return Ok(Err(Refused::NotFound));
    }
    let mut channels = txn.open_table(CHANNELS)?;
    let old = channels
        .get((queue, channel_id))?
        .map(|digest| digest.value().to_vec());
    let old = match old {
        Some(digest) => Some((get_endpoint(txn, &digest)?, digest)),
        None => None,
    };
    let mut endpoints = txn.open_table(ENDPOINTS)?;
    match old {
        Some((record, digest)) => {
            if let Some(record) = record.filter(|r| r.key == key) {
                return Ok(Ok(record));
            }
            endpoints.remove(digest.as_slice())?;
        }
        None => {
            let count = channels
                .range((queue, "")..(queue + 1, ""))?
                .take(max_channels)
                .count();
            if count >= max_channels {
                return Ok(Err(Refused::Limit(format!(
                    "a user agent may have at most {max_channels} channels"
                ))));
            }
        }
    }
    let record = EndpointRecord {
        queue,
        channel_id: channel_id.to_owned(),
        token: secret::new_token(),
        key,
    };
    let digest = secret::digest(record.token.as_bytes());
    endpoints.insert(digest.as_slice(), record.encode().as_slice())?;
    channels.insert((queue, channel_id), digest.as_slice())?;
    Ok(Ok(record))
}

/// Unregisters a channel: its endpoint ends and its queued messages go. False if the user
/// agent has no such channel.
pub fn unregister(
    txn: &WriteTransaction,
    memory: &mut Memory,
    queue: u64,
    channel_id: &str,
) -> Result<bool> {
    let Some(digest) = txn
        .open_table(CHANNELS)?
        .remove((queue, channel_id))?
        .map(|d| d.value().to_vec())
    else {
        return Ok(false);
    };
    txn.open_table(ENDPOINTS)?.remove(digest.as_slice())?;
    queue::drop_messages(txn, memory, queue, Some(channel_id))?;
    Ok(true)
}

/// Deletes a user agent with its channels, endpoints and messages.
fn delete(
    txn: &WriteTransaction,
    memory: &mut Memory,
    queue: u64,
    record: &UaidRecord,
) -> Result<()> {
    let mut channels = txn.open_table(CHANNELS)?;
    let mut endpoints = txn.open_table(ENDPOINTS)?;
    let mut gone = Vec::new();
    for entry in channels.range((queue, "")..(queue + 1, ""))? {
        let (key, digest) = entry?;
        gone.push((key.value().1.to_owned(), digest.value().to_vec()));
    }
    for (channel, digest) in &gone {
        channels.remove((queue, channel.as_str()))?;
        endpoints.remove(digest.as_slice())?;
    }
    queue::drop_messages(txn, memory, queue, None)?;
    txn.open_table(UAID_BY_ADDRESS)?
        .remove(address_key(&record.address, queue).as_slice())?;
    txn.open_table(UAIDS)?.remove(queue)?;
    Ok(())
}

/// Up to `max` user agents not seen for `idle_ms` and not connected now (`is_live`).
pub fn idle(
    txn: &impl Tables,
    now: u64,
    idle_ms: u64,
    is_live: impl Fn(u64) -> bool,
    max: usize,
) -> Result<Vec<(u64, UaidRecord)>> {
    let mut due = Vec::new();
    for entry in txn.bytes(UAIDS)?.iter()? {
        let (key, bytes) = entry?;
        let queue = key.value();
        let record = UaidRecord::decode(bytes.value()).ok_or_else(|| damaged("uaid", queue))?;
        if record.last_seen.saturating_add(idle_ms) <= now && !is_live(queue) {
            due.push((queue, record));
            if due.len() >= max {
                break;
            }
        }
    }
    Ok(due)
}

/// Deletes the [`idle`] user agents; how many.
pub fn sweep_idle(
    txn: &WriteTransaction,
    memory: &mut Memory,
    now: u64,
    idle_ms: u64,
    is_live: impl Fn(u64) -> bool,
    max: usize,
) -> Result<usize> {
    let due = idle(txn, now, idle_ms, is_live, max)?;
    for (queue, record) in &due {
        delete(txn, memory, *queue, record)?;
    }
    Ok(due.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::budget::Budget;
    use crate::store::memory::QueueSize;
    use crate::store::queue::{Destination, NewMessage};
    use crate::store::{Content, tables};

    const DAY: u64 = 24 * 3600 * 1000;

    /// A user agent seen at `now` with one channel and one queued message; its uaid and
    /// endpoint token.
    fn agent(db: &crate::store::kv::Database, memory: &mut Memory, now: u64) -> (String, String) {
        let txn = db.begin_write().unwrap();
        let hello = hello(&txn, None, [7; 16], now, 10, 10).unwrap().unwrap();
        let endpoint = register(&txn, hello.queue, "c1", None, 10)
            .unwrap()
            .unwrap();
        let to = Destination {
            queue: hello.queue,
            registration_id: "c1".into(),
            limit: QueueSize {
                messages: 10,
                bytes: 1 << 20,
            },
        };
        let message = NewMessage {
            content: Content::Opaque,
            data: b"x".to_vec(),
            priority: None,
            ttl_secs: 100 * 24 * 3600,
            collapse_key: None,
            extras: Vec::new(),
            sequence: None,
        };
        queue::enqueue(&txn, memory, to, message, &Budget::UNLIMITED, now)
            .unwrap()
            .unwrap();
        txn.commit().unwrap();
        (hello.uaid, endpoint.token)
    }

    #[test]
    fn idle_user_agents_go_with_their_channels_and_messages_unless_connected() {
        let db = super::super::tables::in_memory();
        let mut memory = Memory::default();
        let (idle, idle_token) = agent(&db, &mut memory, 0);
        let (live, live_token) = agent(&db, &mut memory, 0);
        let (recent, _) = agent(&db, &mut memory, 50 * DAY);
        let live_queue = find(&db.begin_read().unwrap(), &live).unwrap().unwrap();

        let txn = db.begin_write().unwrap();
        let is_live = |q| q == live_queue;
        let swept = sweep_idle(&txn, &mut memory, 60 * DAY, 60 * DAY, is_live, 100).unwrap();
        txn.commit().unwrap();
        assert_eq!(swept, 1);

        let read = db.begin_read().unwrap();
        assert_eq!(find(&read, &idle).unwrap(), None);
        assert!(endpoint(&read, &idle_token).unwrap().is_none());
        assert!(find(&read, &live).unwrap().is_some());
        assert!(endpoint(&read, &live_token).unwrap().is_some());
        assert!(find(&read, &recent).unwrap().is_some());
        let messages = read.open_table(tables::MESSAGES).unwrap();
        assert_eq!(
            messages.len().unwrap(),
            2,
            "the idle one's message went with it"
        );
        let by_address = read.open_table(tables::UAID_BY_ADDRESS).unwrap();
        assert_eq!(by_address.len().unwrap(), 2);
    }

    #[test]
    fn uaids_name_their_queue() {
        let secret = [0xab; SECRET_BYTES];
        let uaid = format!("{:016x}{}", UAID_QUEUES + 5, hex(&secret));
        assert_eq!(uaid.len(), UAID_LEN);
        assert_eq!(parse_uaid(&uaid), Some((UAID_QUEUES + 5, secret.to_vec())));
        assert_eq!(
            parse_uaid(&uaid.to_ascii_uppercase()).unwrap().0,
            UAID_QUEUES + 5
        );
        assert_eq!(parse_uaid(&uaid[1..]), None);
        let topic_queue = format!("{:016x}{}", 1u64 << 62, hex(&secret));
        assert_eq!(parse_uaid(&topic_queue), None);
        assert_eq!(parse_uaid("9d0e5f0c-6b2a-4c6e-9a55-0f7b3c1d2e4f"), None);
    }
}
