//! Record encoding: a version byte, then fields in a fixed order; integers little-endian,
//! strings and bytes prefixed by a u32 length. Decoding never panics: a record that does
//! not parse, or has bytes after its last field, is reported as damaged by the caller; so
//! bytes that decode are exactly the encoding of what they decode to.
//!
//! Users, clients and apps are version 1. Messages are version 2 (content kind, typed
//! priority, time of posting, presentation fields), or version 3 when they belong to an
//! ntfy sequence: the fields of version 2, then the sequence's event and id. A message
//! without a sequence is always written as version 2, so a schema-4 file's messages read
//! and write as they were, and version 3 never holds a message without one (each record
//! has one encoding). [`MessageRecord::decode_v1`] reads the schema-1 form once, for the
//! upgrade; [`MessageRecord::decode`] reads versions 2 and 3.

const V1: u8 = 1;
const MESSAGE_V2: u8 = 2;
const MESSAGE_V3: u8 = 3;

/// What a message's `data` holds; it decides how each wire format carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content {
    /// A compact JSON object (OpenPush `POST /message`, the Matrix gateway).
    Json,
    /// UTF-8 text (an ntfy publish).
    Text,
    /// Bytes nobody here may read or change: a Web Push body, ciphertext as a rule.
    Opaque,
}

impl Content {
    fn code(self) -> u8 {
        match self {
            Content::Json => 0,
            Content::Text => 1,
            Content::Opaque => 2,
        }
    }
    fn from_code(code: u8) -> Option<Content> {
        Some(match code {
            0 => Content::Json,
            1 => Content::Text,
            2 => Content::Opaque,
            _ => return None,
        })
    }
}

/// What a message of an ntfy sequence does to the notification its sequence id names:
/// ntfy's `event` (`message`, `message_clear`, `message_delete`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SequenceEvent {
    /// A message: it shows, or updates the notification of its sequence.
    Message,
    /// The notification of the sequence is read: phones dismiss it.
    Clear,
    /// The notification of the sequence is deleted: phones remove it.
    Delete,
}

impl SequenceEvent {
    fn code(self) -> u8 {
        match self {
            SequenceEvent::Message => 0,
            SequenceEvent::Clear => 1,
            SequenceEvent::Delete => 2,
        }
    }
    fn from_code(code: u8) -> Option<SequenceEvent> {
        Some(match code {
            0 => SequenceEvent::Message,
            1 => SequenceEvent::Clear,
            2 => SequenceEvent::Delete,
            _ => return None,
        })
    }
    /// ntfy's name of the event.
    pub fn name(self) -> &'static str {
        match self {
            SequenceEvent::Message => "message",
            SequenceEvent::Clear => "message_clear",
            SequenceEvent::Delete => "message_delete",
        }
    }
}

/// The ntfy sequence a message belongs to: messages with the same sequence id are one
/// notification, which each of them shows, updates, clears or deletes.
#[derive(Clone, Debug, PartialEq)]
pub struct Sequence {
    /// The sequence id, 1 to 64 letters, digits, `-` or `_` (checked by the door).
    pub id: String,
    /// What the message does to the notification.
    pub event: SequenceEvent,
}

/// One scale for OpenPush priority, Web Push urgency (RFC 8030 §5.3) and ntfy priority.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    /// 1: `very-low` (RFC 8030), ntfy's `min`.
    VeryLow = 1,
    /// 2: `low`.
    Low = 2,
    /// 3: `normal`, the default.
    Normal = 3,
    /// 4: `high`.
    High = 4,
    /// 5: ntfy's `max`/`urgent`; `high` on Web Push.
    Urgent = 5,
}

impl Priority {
    /// ntfy's level 1 to 5.
    pub fn from_level(level: u8) -> Option<Priority> {
        Some(match level {
            1 => Priority::VeryLow,
            2 => Priority::Low,
            3 => Priority::Normal,
            4 => Priority::High,
            5 => Priority::Urgent,
            _ => return None,
        })
    }
    /// ntfy's 1 (min) to 5 (max).
    pub fn level(self) -> u8 {
        self as u8
    }
    /// RFC 8030 `Urgency`: `very-low`, `low`, `normal` or `high`.
    pub fn from_urgency(value: &str) -> Option<Priority> {
        Some(match value.trim().to_ascii_lowercase().as_str() {
            "very-low" => Priority::VeryLow,
            "low" => Priority::Low,
            "normal" => Priority::Normal,
            "high" => Priority::High,
            _ => return None,
        })
    }
    /// The RFC 8030 `Urgency` value (`urgent` becomes `high`).
    pub fn urgency(self) -> &'static str {
        match self {
            Priority::VeryLow => "very-low",
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High | Priority::Urgent => "high",
        }
    }
    /// The OpenPush v0.1 value: `normal` or `high`.
    pub fn openpush(self) -> &'static str {
        if self >= Priority::High {
            "high"
        } else {
            "normal"
        }
    }
}

/// A user.
#[derive(Clone, Debug, PartialEq)]
pub struct UserRecord {
    /// Its name.
    pub name: String,
    /// The Argon2 hash of its password.
    pub password_hash: String,
    /// Whether it administers the others.
    pub admin: bool,
}

/// A client: a device of a user.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientRecord {
    /// Its user.
    pub user_id: u64,
    /// Its name, unique among its user's clients.
    pub name: String,
    /// Its key (`X-Openpush-Key`), the capability to read its queue.
    pub key: String,
}

/// An OpenPush application of a client.
#[derive(Clone, Debug, PartialEq)]
pub struct AppRecord {
    /// Its client: its messages go to that device's queue.
    pub client_id: u64,
    /// The id the application gave itself, unique on its client.
    pub registration_id: String,
    /// Its routing token, the capability to post to it.
    pub routing_token: String,
}

/// A topic: its queue, the user it belongs to (0: nobody yet, for an endpoint topic that an
/// app server posted to first) and the other users it is shared with.
#[derive(Clone, Debug, PartialEq)]
pub struct TopicRecord {
    /// The topic's queue.
    pub queue: u64,
    /// The user it belongs to; 0: nobody yet.
    pub owner: u64,
    /// Unix milliseconds of its creation.
    pub created_at: u64,
    /// The other users it is shared with.
    pub grants: Vec<Grant>,
}

/// What a user other than the owner may do with a topic.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Grant {
    /// The user.
    pub user_id: u64,
    /// It may read the topic.
    pub read: bool,
    /// It may publish to it.
    pub write: bool,
}

/// A stored message.
#[derive(Clone, Debug, PartialEq)]
pub struct MessageRecord {
    /// Unix milliseconds from which the message is never delivered.
    pub expires_at: u64,
    /// Unix milliseconds when the message was accepted (0 for messages of schema 1).
    pub posted_at: u64,
    /// How its data is delivered: JSON, text or opaque bytes.
    pub content: Content,
    /// `None` when the sender gave none.
    pub priority: Option<Priority>,
    /// The OpenPush application it is for; empty for a topic's messages.
    pub registration_id: String,
    /// The OpenPush collapse key or Web Push `Topic`: a newer message replaces an
    /// undelivered one with the same key.
    pub collapse_key: Option<String>,
    /// ntfy presentation fields (`title`, `tags`, …) as the members of a compact JSON
    /// object without its braces, or empty.
    pub extras: Vec<u8>,
    /// What the sender sent, as `content` says.
    pub data: Vec<u8>,
    /// The ntfy sequence it belongs to (`sequence_id`) and what it does there; `None`: a
    /// message of no sequence but its own (ntfy: its id serves as its sequence id).
    pub sequence: Option<Sequence>,
}

struct Writer(Vec<u8>);

impl Writer {
    fn new() -> Self {
        Writer(vec![V1])
    }
    fn version(version: u8) -> Self {
        Writer(vec![version])
    }
    fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }
    fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn bytes(mut self, v: &[u8]) -> Self {
        let len = u32::try_from(v.len()).expect("records are far below 4 GiB");
        self.0.extend_from_slice(&len.to_le_bytes());
        self.0.extend_from_slice(v);
        self
    }
    fn opt(self, v: Option<&str>) -> Self {
        match v {
            Some(s) => self.u64(1).bytes(s.as_bytes()),
            None => self.u64(0),
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Option<Self> {
        Self::version(bytes, V1)
    }
    fn version(bytes: &'a [u8], version: u8) -> Option<Self> {
        match bytes.split_first() {
            Some((&v, rest)) if v == version => Some(Reader(rest)),
            _ => None,
        }
    }
    fn u8(&mut self) -> Option<u8> {
        let (&v, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(v)
    }
    fn u64(&mut self) -> Option<u64> {
        let (head, rest) = self.0.split_at_checked(8)?;
        self.0 = rest;
        Some(u64::from_le_bytes(head.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(4)?;
        let len = u32::from_le_bytes(head.try_into().ok()?) as usize;
        let (value, rest) = rest.split_at_checked(len)?;
        self.0 = rest;
        Some(value)
    }
    fn string(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }
    fn bool(&mut self) -> Option<bool> {
        match self.u64()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }
    /// `value` if the record had nothing after its last field.
    fn end<T>(self, value: T) -> Option<T> {
        self.0.is_empty().then_some(value)
    }
    fn opt(&mut self) -> Option<Option<String>> {
        match self.u64()? {
            0 => Some(None),
            1 => Some(Some(self.string()?)),
            _ => None,
        }
    }
}

/// An ntfy access token of a user. The token itself is not kept: the `tokens` table is
/// keyed by the first half of its digest, and `check` is the second half, compared in
/// constant time.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenRecord {
    /// The token's number, unique in the database: how listings and the CLI name it.
    pub id: u64,
    /// Its user.
    pub user_id: u64,
    /// The second half of the token's BLAKE2s digest.
    pub check: Vec<u8>,
    /// What its user calls it (`Home Assistant`).
    pub label: String,
    /// Unix seconds after which it is refused; 0: never.
    pub expires: u64,
    /// Unix seconds of its last use, as last recorded (at most a minute behind).
    pub last_access: u64,
    /// The address it was last used from, as text.
    pub last_origin: String,
}

impl TokenRecord {
    /// The record's bytes.
    pub fn encode(&self) -> Vec<u8> {
        Writer::new()
            .u64(self.id)
            .u64(self.user_id)
            .bytes(&self.check)
            .bytes(self.label.as_bytes())
            .u64(self.expires)
            .u64(self.last_access)
            .bytes(self.last_origin.as_bytes())
            .0
    }
    /// The record of these bytes; `None` if they are not one.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader::new(bytes)?;
        let record = TokenRecord {
            id: r.u64()?,
            user_id: r.u64()?,
            check: r.bytes()?.to_vec(),
            label: r.string()?,
            expires: r.u64()?,
            last_access: r.u64()?,
            last_origin: r.string()?,
        };
        r.end(record)
    }
}

/// An autopush user agent: the secret half of its `uaid`, when it was last seen and the
/// address (IPv4, or IPv6 /64) it first said hello from.
#[derive(Clone, Debug, PartialEq)]
pub struct UaidRecord {
    /// The secret half of the `uaid`.
    pub secret: Vec<u8>,
    /// Unix milliseconds of its last hello or disconnect.
    pub last_seen: u64,
    /// The address (IPv4, or IPv6 /64) of its first hello.
    pub address: [u8; 16],
}

/// An autopush channel's push endpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct EndpointRecord {
    /// The user agent's queue.
    pub queue: u64,
    /// The channel id the user agent picked.
    pub channel_id: String,
    /// The endpoint token itself (the index holds its digest).
    pub token: String,
    /// The app server's VAPID public key (a raw P-256 point) a v2 endpoint is bound to.
    pub key: Option<Vec<u8>>,
}

/// Who scheduled a message, for the limit on what one sender may have waiting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sender {
    /// A user.
    User(u64),
    /// A request without a user, from this address (IPv4, or IPv6 /64).
    Address([u8; 16]),
    /// A request without a user from the host itself (or a trusted proxy on it).
    Host,
}

impl Sender {
    /// 17 bytes: `u` and the user id (big-endian, padded with zeros), `a` and the address,
    /// or `h` and zeros; they sort by sender, so a sender's messages are one range.
    pub fn key(self) -> [u8; 17] {
        let mut key = [0u8; 17];
        match self {
            Sender::User(id) => {
                key[0] = b'u';
                key[1..9].copy_from_slice(&id.to_be_bytes());
            }
            Sender::Address(address) => {
                key[0] = b'a';
                key[1..].copy_from_slice(&address);
            }
            Sender::Host => key[0] = b'h',
        }
        key
    }

    fn from_key(key: &[u8]) -> Option<Sender> {
        let (&tag, rest) = key.split_first()?;
        let rest: [u8; 16] = rest.try_into().ok()?;
        match tag {
            b'u' if rest[8..] == [0; 8] => {
                Some(Sender::User(u64::from_be_bytes(rest[..8].try_into().ok()?)))
            }
            b'a' => Some(Sender::Address(rest)),
            b'h' if rest == [0; 16] => Some(Sender::Host),
            _ => None,
        }
    }
}

/// A message waiting for its time (ntfy's delayed delivery): where it goes, who sent it,
/// and the record it is stored as once due.
#[derive(Clone, Debug, PartialEq)]
pub struct ScheduledRecord {
    /// The topic's queue.
    pub queue: u64,
    /// The topic's name.
    pub topic: String,
    /// Who scheduled it.
    pub sender: Sender,
    /// The message as it is stored when due: posted at its due time, expiring its TTL
    /// later, always with a sequence.
    pub message: MessageRecord,
}

impl ScheduledRecord {
    /// The record's bytes.
    pub fn encode(&self) -> Vec<u8> {
        Writer::new()
            .u64(self.queue)
            .bytes(self.topic.as_bytes())
            .bytes(&self.sender.key())
            .bytes(&self.message.encode())
            .0
    }

    /// The record of `bytes`; `None` when they do not decode.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader::new(bytes)?;
        let record = ScheduledRecord {
            queue: r.u64()?,
            topic: r.string()?,
            sender: Sender::from_key(r.bytes()?)?,
            message: MessageRecord::decode(r.bytes()?)?,
        };
        r.end(record)
    }

    /// The queue of the record of `bytes`, without decoding the rest (it is the first
    /// field).
    pub fn queue_of(bytes: &[u8]) -> Option<u64> {
        Reader::new(bytes)?.u64()
    }

    /// Who sent the record of `bytes`, without decoding the message.
    pub fn sender_of(bytes: &[u8]) -> Option<Sender> {
        let mut r = Reader::new(bytes)?;
        r.u64()?;
        r.bytes()?;
        Sender::from_key(r.bytes()?)
    }
}

impl UaidRecord {
    /// The record's bytes.
    pub fn encode(&self) -> Vec<u8> {
        Writer::new()
            .bytes(&self.secret)
            .u64(self.last_seen)
            .bytes(&self.address)
            .0
    }
    /// The record of `bytes`; `None` when they do not decode.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader::new(bytes)?;
        let record = UaidRecord {
            secret: r.bytes()?.to_vec(),
            last_seen: r.u64()?,
            address: r.bytes()?.try_into().ok()?,
        };
        r.end(record)
    }
}

impl EndpointRecord {
    /// The record's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let w = Writer::new()
            .u64(self.queue)
            .bytes(self.channel_id.as_bytes())
            .bytes(self.token.as_bytes());
        match &self.key {
            Some(key) => w.u64(1).bytes(key).0,
            None => w.u64(0).0,
        }
    }
    /// The record of `bytes`; `None` when they do not decode.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader::new(bytes)?;
        let queue = r.u64()?;
        let channel_id = r.string()?;
        let token = r.string()?;
        let key = match r.u64()? {
            0 => None,
            1 => Some(r.bytes()?.to_vec()),
            _ => return None,
        };
        r.end(EndpointRecord {
            queue,
            channel_id,
            token,
            key,
        })
    }
}

impl UserRecord {
    /// The record's bytes.
    pub fn encode(&self) -> Vec<u8> {
        Writer::new()
            .bytes(self.name.as_bytes())
            .bytes(self.password_hash.as_bytes())
            .u64(self.admin as u64)
            .0
    }
    /// The record of `bytes`; `None` when they do not decode.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader::new(bytes)?;
        let record = UserRecord {
            name: r.string()?,
            password_hash: r.string()?,
            admin: r.bool()?,
        };
        r.end(record)
    }
}

impl ClientRecord {
    /// The record's bytes.
    pub fn encode(&self) -> Vec<u8> {
        Writer::new()
            .u64(self.user_id)
            .bytes(self.name.as_bytes())
            .bytes(self.key.as_bytes())
            .0
    }
    /// The record of `bytes`; `None` when they do not decode.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader::new(bytes)?;
        let record = ClientRecord {
            user_id: r.u64()?,
            name: r.string()?,
            key: r.string()?,
        };
        r.end(record)
    }
}

impl AppRecord {
    /// The record's bytes.
    pub fn encode(&self) -> Vec<u8> {
        Writer::new()
            .u64(self.client_id)
            .bytes(self.registration_id.as_bytes())
            .bytes(self.routing_token.as_bytes())
            .0
    }
    /// The record of `bytes`; `None` when they do not decode.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader::new(bytes)?;
        let record = AppRecord {
            client_id: r.u64()?,
            registration_id: r.string()?,
            routing_token: r.string()?,
        };
        r.end(record)
    }
}

impl TopicRecord {
    /// The record's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new()
            .u64(self.queue)
            .u64(self.owner)
            .u64(self.created_at)
            .u64(self.grants.len() as u64);
        for g in &self.grants {
            w = w.u64(g.user_id).u8(g.read as u8 | (g.write as u8) << 1);
        }
        w.0
    }
    /// The record of `bytes`; `None` when they do not decode.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader::new(bytes)?;
        let queue = r.u64()?;
        let owner = r.u64()?;
        let created_at = r.u64()?;
        let n = r.u64()?;
        let mut grants = Vec::new();
        for _ in 0..n {
            let user_id = r.u64()?;
            let bits = r.u8()?;
            if bits > 3 {
                return None;
            }
            grants.push(Grant {
                user_id,
                read: bits & 1 != 0,
                write: bits & 2 != 0,
            });
        }
        r.end(TopicRecord {
            queue,
            owner,
            created_at,
            grants,
        })
    }
}

impl MessageRecord {
    /// What the message weighs in a stream's buffers and pages: its payload, the fields
    /// sent with it, and an allowance for its framing.
    pub fn weight(&self) -> usize {
        self.data.len() + self.extras.len() + 64
    }

    /// The expiry time alone, without decoding the rest (it is the first field).
    pub fn expires_at(bytes: &[u8]) -> Option<u64> {
        Reader::version(bytes, MESSAGE_V2)
            .or_else(|| Reader::version(bytes, MESSAGE_V3))?
            .u64()
    }

    /// The record's bytes: version 2 without a sequence, version 3 with one.
    pub fn encode(&self) -> Vec<u8> {
        let version = match self.sequence {
            None => MESSAGE_V2,
            Some(_) => MESSAGE_V3,
        };
        let w = Writer::version(version)
            .u64(self.expires_at)
            .u64(self.posted_at)
            .u8(self.content.code())
            .u8(self.priority.map_or(0, Priority::level))
            .bytes(self.registration_id.as_bytes())
            .opt(self.collapse_key.as_deref())
            .bytes(&self.extras)
            .bytes(&self.data);
        match &self.sequence {
            None => w.0,
            Some(sequence) => w.u8(sequence.event.code()).bytes(sequence.id.as_bytes()).0,
        }
    }

    /// The record of `bytes`; `None` when they do not decode.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let (mut r, with_sequence) = match Reader::version(bytes, MESSAGE_V2) {
            Some(r) => (r, false),
            None => (Reader::version(bytes, MESSAGE_V3)?, true),
        };
        let expires_at = r.u64()?;
        let posted_at = r.u64()?;
        let content = Content::from_code(r.u8()?)?;
        let priority = match r.u8()? {
            0 => None,
            level => Some(Priority::from_level(level)?),
        };
        let mut record = MessageRecord {
            expires_at,
            posted_at,
            content,
            priority,
            registration_id: r.string()?,
            collapse_key: r.opt()?,
            extras: r.bytes()?.to_vec(),
            data: r.bytes()?.to_vec(),
            sequence: None,
        };
        if with_sequence {
            let event = SequenceEvent::from_code(r.u8()?)?;
            record.sequence = Some(Sequence {
                event,
                id: r.string()?,
            });
        }
        r.end(record)
    }

    /// A message as schema 1 stored it: an OpenPush JSON object with an optional
    /// `"normal"`/`"high"` priority.
    pub fn decode_v1(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader::new(bytes)?;
        let expires_at = r.u64()?;
        let priority = match r.opt()?.as_deref() {
            None => None,
            Some("high") => Some(Priority::High),
            Some(_) => Some(Priority::Normal),
        };
        let record = MessageRecord {
            expires_at,
            posted_at: 0,
            content: Content::Json,
            priority,
            registration_id: r.string()?,
            collapse_key: r.opt()?,
            extras: Vec::new(),
            data: r.bytes()?.to_vec(),
            sequence: None,
        };
        r.end(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_truncation_is_refused() {
        let m = MessageRecord {
            expires_at: 42,
            posted_at: 41,
            content: Content::Opaque,
            priority: Some(Priority::High),
            registration_id: "app".into(),
            collapse_key: None,
            extras: br#""title":"t""#.to_vec(),
            data: vec![0, 255, 10],
            sequence: None,
        };
        let bytes = m.encode();
        assert_eq!(MessageRecord::decode(&bytes), Some(m));
        for cut in 0..bytes.len() {
            assert_eq!(MessageRecord::decode(&bytes[..cut]), None);
        }
        let u = UserRecord {
            name: "ann".into(),
            password_hash: "h".into(),
            admin: true,
        };
        assert_eq!(UserRecord::decode(&u.encode()), Some(u));
    }

    #[test]
    fn schema_1_messages_read_as_openpush_json() {
        let v1 = [
            &[1u8][..],
            &7u64.to_le_bytes(),
            &1u64.to_le_bytes(),
            &4u32.to_le_bytes(),
            b"high",
            &3u32.to_le_bytes(),
            b"app",
            &0u64.to_le_bytes(),
            &2u32.to_le_bytes(),
            b"{}",
        ]
        .concat();
        let m = MessageRecord::decode_v1(&v1).unwrap();
        assert_eq!(
            (m.expires_at, m.content, m.priority, m.data.as_slice()),
            (7, Content::Json, Some(Priority::High), &b"{}"[..])
        );
        assert_eq!(MessageRecord::decode(&v1), None);
        assert_eq!(MessageRecord::decode(&m.encode()), Some(m));
    }

    #[test]
    fn messages_of_a_sequence_are_version_3_and_the_others_stay_version_2() {
        let plain = MessageRecord {
            expires_at: 9,
            posted_at: 8,
            content: Content::Text,
            priority: None,
            registration_id: String::new(),
            collapse_key: None,
            extras: br#""title":"t""#.to_vec(),
            data: b"hi".to_vec(),
            sequence: None,
        };
        assert_eq!(plain.encode()[0], MESSAGE_V2);
        for event in [
            SequenceEvent::Message,
            SequenceEvent::Clear,
            SequenceEvent::Delete,
        ] {
            let m = MessageRecord {
                sequence: Some(Sequence {
                    id: "backup-42".into(),
                    event,
                }),
                ..plain.clone()
            };
            let bytes = m.encode();
            assert_eq!(bytes[0], MESSAGE_V3);
            assert_eq!(MessageRecord::expires_at(&bytes), Some(9));
            assert_eq!(MessageRecord::decode(&bytes), Some(m));
            for cut in 0..bytes.len() {
                assert_eq!(MessageRecord::decode(&bytes[..cut]), None);
            }
        }
        // A version-3 record must hold a sequence: the bytes of a plain message under
        // version 3 are no record.
        let mut v3 = plain.encode();
        v3[0] = MESSAGE_V3;
        assert_eq!(MessageRecord::decode(&v3), None);
    }

    #[test]
    fn the_fuzz_seeds_of_sequences_and_schedules_decode() {
        let seeds = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/record_codec/");
        let message = std::fs::read(format!("{seeds}message_sequence")).unwrap();
        let m = MessageRecord::decode(&message).expect("a version-3 message");
        assert_eq!(m.sequence.map(|s| s.event), Some(SequenceEvent::Delete));
        let scheduled = std::fs::read(format!("{seeds}scheduled")).unwrap();
        let s = ScheduledRecord::decode(&scheduled).expect("a scheduled record");
        assert_eq!((s.sender, s.message.encode()), (Sender::User(7), message));
    }

    #[test]
    fn scheduled_records_round_trip_with_each_kind_of_sender() {
        for sender in [Sender::User(7), Sender::Address([9; 16]), Sender::Host] {
            let s = ScheduledRecord {
                queue: 1 << 62,
                topic: "chores".into(),
                sender,
                message: MessageRecord {
                    expires_at: 2,
                    posted_at: 1,
                    content: Content::Text,
                    priority: Some(Priority::High),
                    registration_id: String::new(),
                    collapse_key: None,
                    extras: Vec::new(),
                    data: b"later".to_vec(),
                    sequence: Some(Sequence {
                        id: "op5".into(),
                        event: SequenceEvent::Message,
                    }),
                },
            };
            let bytes = s.encode();
            assert_eq!(ScheduledRecord::decode(&bytes), Some(s));
            assert_eq!(ScheduledRecord::sender_of(&bytes), Some(sender));
            assert_eq!(ScheduledRecord::queue_of(&bytes), Some(1 << 62));
            assert_eq!(ScheduledRecord::decode(&bytes[..bytes.len() - 1]), None);
        }
    }

    // Regression: trailing bytes and a boolean other than 0 or 1 were accepted, so a damaged
    // record could be half read.
    #[test]
    fn trailing_bytes_and_odd_booleans_are_refused() {
        let u = UserRecord {
            name: "ann".into(),
            password_hash: "h".into(),
            admin: false,
        };
        let mut bytes = u.encode();
        bytes.push(0);
        assert_eq!(UserRecord::decode(&bytes), None);
        let last = bytes.len() - 9;
        bytes.pop();
        bytes[last] = 2;
        assert_eq!(UserRecord::decode(&bytes), None);
    }
}
