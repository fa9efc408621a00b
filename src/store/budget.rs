//! The store's budget: how many bytes its messages may take in all, and how many of those
//! may sit in queues that a sender without an account can post to.
//!
//! A queue is *anonymous* unless it is a topic that a user owns and whose name is not an
//! endpoint topic's: OpenPush devices (fed through routing tokens: `POST /message`,
//! `/push/<token>`, NextPush, the Matrix gateway), autopush user agents, endpoint topics
//! and topics that belong to nobody all take posts from anyone who knows their address.
//! Only a user's own topics take only that user's (and their grantees') posts: they are
//! the *family* queues, and the share keeps room for them whatever strangers post. Within
//! the share, autopush user agents' queues together have a bound of their own: anyone who
//! reaches the autopush door can make user agents and post to their endpoints, so they must
//! not take the whole share from the devices' and endpoint topics' messages.
//!
//! What is counted is what the store holds of each message: its encoded record plus
//! [`MESSAGE_OVERHEAD_BYTES`] for its key and redb's bookkeeping. A message waiting for its
//! time (`store::schedule`) counts from the moment it is scheduled: its scheduled record
//! plus [`SCHEDULED_OVERHEAD_BYTES`], in the anonymous share unless a user scheduled it
//! (the sender decides, since its topic's queue may change hands before it is due); once
//! due it counts as the message it becomes, which is smaller. Accounts, topics,
//! channels and user agents are bounded by their own count limits and are not counted.
//! The database file is larger than the total (redb keeps free pages and a copy of the
//! pages a commit changes) and never shrinks: pages freed by delivered or expired messages
//! are reused by later ones, so the file stops growing once the budget is reached.
//!
//! Invariants: [`Usage`] is read once from the messages and topics of the store (at start,
//! and again after a failed commit, see `store::memory`), then follows every insertion and
//! removal of the transaction being built; a post past the share or the budget is refused
//! before anything is written, and nothing stored is ever dropped to make room.

use std::collections::HashSet;

use crate::store::kv::ReadableTable;

use super::tables::{MESSAGES, SCHEDULED, TOPICS, Tables, UAID_QUEUES, damaged};
use super::{Result, ScheduledRecord, Sender, TopicRecord};

/// What a message costs beside its record: its 16-byte key and redb's per-entry offsets.
pub const MESSAGE_OVERHEAD_BYTES: u64 = 32;
/// What a scheduled message costs beside its record: its key (16 bytes), the keys and
/// values of its two index entries (up to 80 + 16 and 25 bytes) and redb's offsets.
pub const SCHEDULED_OVERHEAD_BYTES: u64 = 160;

/// The limits a post is checked against; from the configuration of the moment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Budget {
    /// Bytes of all stored messages.
    pub max_bytes: u64,
    /// Bytes of the messages of anonymous queues.
    pub max_anonymous_bytes: u64,
    /// Bytes of the messages of autopush user agents' queues (all anonymous).
    pub max_uaid_bytes: u64,
}

impl Budget {
    /// No budget (for tests of other rules).
    pub const UNLIMITED: Budget = Budget {
        max_bytes: u64::MAX,
        max_anonymous_bytes: u64::MAX,
        max_uaid_bytes: u64::MAX,
    };
}

/// Why a post does not fit; nothing was written.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Overrun {
    /// The share of anonymous queues is used up.
    AnonymousShare(u64),
    /// The whole budget is used up.
    Total(u64),
    /// The part of autopush user agents is used up.
    UserAgents(u64),
}

/// The bytes the store's messages take, in all and in anonymous queues.
#[derive(Debug, Default)]
pub struct Usage {
    total: u64,
    anonymous: u64,
    /// Of `anonymous`, what autopush user agents' queues take.
    uaids: u64,
    /// The queues of topics a user owns whose name is not an endpoint topic's.
    family: HashSet<u64>,
}

/// The bytes a message of `record_len` encoded bytes counts for.
pub fn message_bytes(record_len: usize) -> u64 {
    record_len as u64 + MESSAGE_OVERHEAD_BYTES
}

/// The bytes a scheduled message of `record_len` encoded bytes counts for.
pub fn scheduled_bytes(record_len: usize) -> u64 {
    record_len as u64 + SCHEDULED_OVERHEAD_BYTES
}

fn is_uaid(queue: u64) -> bool {
    queue >= UAID_QUEUES
}

/// Whether a topic's queue is a family queue: a user owns it and strangers cannot post.
pub fn is_family_topic(name: &str, record: &TopicRecord) -> bool {
    record.owner != 0 && !crate::names::is_endpoint_topic(name)
}

impl Usage {
    /// Reads the usage of the whole store: every message's length and every topic.
    pub fn load(txn: &impl Tables) -> Result<Usage> {
        let mut usage = Usage::default();
        for entry in txn.bytes(TOPICS)?.iter()? {
            let (name, bytes) = entry?;
            let name = String::from_utf8_lossy(name.value()).into_owned();
            let record =
                TopicRecord::decode(bytes.value()).ok_or_else(|| damaged("topic", &name))?;
            if is_family_topic(&name, &record) {
                usage.family.insert(record.queue);
            }
        }
        for entry in txn.bytes(MESSAGES)?.iter()? {
            let (key, bytes) = entry?;
            usage.adjust(key.value().0, bytes.value().len(), true);
        }
        for entry in txn.bytes(SCHEDULED)?.iter()? {
            let (key, bytes) = entry?;
            let sender = ScheduledRecord::sender_of(bytes.value())
                .ok_or_else(|| damaged("scheduled message", key.value().1))?;
            usage.adjust_scheduled(bytes.value().len(), sender, true);
        }
        Ok(usage)
    }

    /// The counts (total, anonymous, autopush), as a shared store keeps them between the
    /// nodes' commits.
    pub fn counts(&self) -> [u64; 3] {
        [self.total, self.anonymous, self.uaids]
    }

    /// This usage with the counts another node's commit left; the family queues are this
    /// one's (the caller knows they did not change).
    pub fn with_counts(self, [total, anonymous, uaids]: [u64; 3]) -> Usage {
        Usage {
            total,
            anonymous,
            uaids,
            ..self
        }
    }

    /// Bytes of every stored message, as the budget counts them.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Bytes of the messages in queues open to senders without an account.
    pub fn anonymous(&self) -> u64 {
        self.anonymous
    }

    /// Bytes of the messages in autopush user agents' queues.
    pub fn uaids(&self) -> u64 {
        self.uaids
    }

    /// Whether `queue` is in the anonymous share: every queue but a family topic's (one a
    /// user owns and strangers cannot post to).
    pub fn is_anonymous(&self, queue: u64) -> bool {
        !self.family.contains(&queue)
    }

    /// Records a stored record of `record_len` bytes added to or removed from `queue`.
    pub fn adjust(&mut self, queue: u64, record_len: usize, added: bool) {
        let bytes = message_bytes(record_len);
        let anonymous = self.is_anonymous(queue);
        let change = |v: &mut u64| {
            *v = if added {
                v.saturating_add(bytes)
            } else {
                v.saturating_sub(bytes)
            }
        };
        change(&mut self.total);
        if anonymous {
            change(&mut self.anonymous);
        }
        if is_uaid(queue) {
            change(&mut self.uaids);
        }
    }

    /// Records a scheduled record of `record_len` bytes from `sender` added or removed.
    pub fn adjust_scheduled(&mut self, record_len: usize, sender: Sender, added: bool) {
        let bytes = scheduled_bytes(record_len);
        let change = |v: &mut u64| {
            *v = if added {
                v.saturating_add(bytes)
            } else {
                v.saturating_sub(bytes)
            }
        };
        change(&mut self.total);
        if !matches!(sender, Sender::User(_)) {
            change(&mut self.anonymous);
        }
    }

    /// A new topic's queue (empty) that a user owns and strangers cannot post to.
    pub fn add_family(&mut self, queue: u64) {
        self.family.insert(queue);
    }

    /// A topic's queue, holding `messages` records of `record_bytes` in all, that a user
    /// claimed and strangers can no longer post to.
    pub fn make_family(&mut self, queue: u64, messages: u64, record_bytes: u64) {
        if self.family.insert(queue) {
            let bytes = record_bytes + messages * MESSAGE_OVERHEAD_BYTES;
            self.anonymous = self.anonymous.saturating_sub(bytes);
        }
    }

    /// A deleted topic's queue (its messages are gone already).
    pub fn forget_queue(&mut self, queue: u64) {
        self.family.remove(&queue);
    }

    /// Whether `queue` (or, for `None`, a queue yet to be made for an anonymous post) may
    /// grow from `freed` to `added` bytes (as [`message_bytes`] counts them) within `budget`.
    pub fn check(
        &self,
        queue: Option<u64>,
        freed: u64,
        added: u64,
        budget: &Budget,
    ) -> Option<Overrun> {
        if added <= freed {
            return None;
        }
        let grows = added - freed;
        if queue.is_some_and(is_uaid) && self.uaids.saturating_add(grows) > budget.max_uaid_bytes {
            return Some(Overrun::UserAgents(budget.max_uaid_bytes));
        }
        let anonymous = queue.is_none_or(|q| self.is_anonymous(q));
        self.check_share(anonymous, grows, budget)
    }

    /// Whether a scheduled message of `sender` may grow from `freed` to `added` bytes (as
    /// [`scheduled_bytes`] counts them) within `budget`.
    pub fn check_scheduled(
        &self,
        sender: Sender,
        freed: u64,
        added: u64,
        budget: &Budget,
    ) -> Option<Overrun> {
        if added <= freed {
            return None;
        }
        let anonymous = !matches!(sender, Sender::User(_));
        self.check_share(anonymous, added - freed, budget)
    }

    /// Whether `grows` more bytes (in the anonymous share if `anonymous`) fit `budget`.
    fn check_share(&self, anonymous: bool, grows: u64, budget: &Budget) -> Option<Overrun> {
        if anonymous && self.anonymous.saturating_add(grows) > budget.max_anonymous_bytes {
            return Some(Overrun::AnonymousShare(budget.max_anonymous_bytes));
        }
        if self.total.saturating_add(grows) > budget.max_bytes {
            return Some(Overrun::Total(budget.max_bytes));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::{Memory, QueueSize};
    use crate::store::queue::{self, Destination, NewMessage, Refused};
    use crate::store::topics::{self, Access, Anonymous, Rules};
    use crate::store::{Content, accounts, tables};

    const BUDGET: Budget = Budget {
        max_bytes: 1000,
        max_anonymous_bytes: 250,
        max_uaid_bytes: 220,
    };

    #[test]
    fn anonymous_queues_stop_at_their_share_and_family_queues_at_the_total() {
        let mut usage = Usage::default();
        usage.add_family(7);
        assert!(usage.is_anonymous(1) && !usage.is_anonymous(7));
        let record = 200 - MESSAGE_OVERHEAD_BYTES as usize;
        usage.adjust(1, record, true);
        assert_eq!(
            usage.check(Some(1), 0, 100, &BUDGET),
            Some(Overrun::AnonymousShare(250))
        );
        assert_eq!(
            usage.check(Some(1), 200, 240, &BUDGET),
            None,
            "a replacement"
        );
        assert_eq!(usage.check(Some(7), 0, 800, &BUDGET), None);
        usage.adjust(7, 800 - MESSAGE_OVERHEAD_BYTES as usize, true);
        assert_eq!(
            usage.check(Some(7), 0, 1, &BUDGET),
            Some(Overrun::Total(1000))
        );
        usage.adjust(1, record, false);
        assert_eq!((usage.total(), usage.anonymous()), (800, 0));
        assert_eq!(usage.check(Some(2), 0, 200, &BUDGET), None);
        assert_eq!(
            usage.check(None, 0, 251, &BUDGET),
            Some(Overrun::AnonymousShare(250))
        );
        let uaid = UAID_QUEUES + 1;
        assert_eq!(usage.check(Some(uaid), 0, 200, &BUDGET), None);
        usage.adjust(uaid, 200 - MESSAGE_OVERHEAD_BYTES as usize, true);
        assert_eq!((usage.uaids(), usage.anonymous()), (200, 200));
        assert_eq!(
            usage.check(Some(uaid), 0, 40, &BUDGET),
            Some(Overrun::UserAgents(220))
        );
        usage.adjust(7, 800 - MESSAGE_OVERHEAD_BYTES as usize, false);
        assert_eq!(usage.check(Some(3), 0, 40, &BUDGET), None);
    }

    const RULES: Rules = Rules {
        anonymous: Anonymous::ReadWrite,
        max_topics_per_user: 100,
        max_unclaimed_topics: 100,
    };

    fn message(len: usize, ttl_secs: u64, key: Option<&str>) -> NewMessage {
        NewMessage {
            content: Content::Opaque,
            data: vec![7; len],
            priority: None,
            ttl_secs,
            collapse_key: key.map(str::to_owned),
            extras: Vec::new(),
            sequence: None,
        }
    }

    /// Random posts, confirmations, sweeps, topic creations, claims and deletions, some in
    /// aborted transactions: after each commit the usage in memory is what a fresh read of
    /// the store finds, and no post ever took the store past its budget.
    #[test]
    #[allow(clippy::too_many_lines)] // one random walk, read step by step
    fn the_usage_in_memory_is_what_a_fresh_read_finds() {
        let db = tables::in_memory();
        let mut memory = Memory::default();
        let txn = db.begin_write().unwrap();
        let (user, _) = accounts::create_user(&txn, "ann", String::new(), false)
            .unwrap()
            .unwrap();
        txn.commit().unwrap();
        let budget = Budget {
            max_bytes: 40_000,
            max_anonymous_bytes: 15_000,
            max_uaid_bytes: u64::MAX,
        };
        let limit = QueueSize {
            messages: 50,
            bytes: 1 << 20,
        };
        let names = [
            "upAAAAAAAAAAAAAA",
            "upBBBBBBBBBBBBBB",
            "news",
            "chat",
            "logs",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut refusals = 0;
        for step in 0..600u64 {
            let now = step * 1000;
            let txn = db.begin_write().unwrap();
            let name = names[next(names.len() as u64) as usize];
            let who = if next(2) == 0 { Some(user) } else { None };
            match next(10) {
                0..=5 => {
                    let opened =
                        topics::open(&txn, &mut memory, name, who, Access::Write, &RULES, now)
                            .unwrap();
                    if let Ok(record) = opened {
                        let to = Destination {
                            queue: record.queue,
                            registration_id: String::new(),
                            limit,
                        };
                        let key = ["k", "j"].get(next(4) as usize).copied();
                        let msg = message(1 + next(3000) as usize, 1 + next(300), key);
                        match queue::enqueue(&txn, &mut memory, to, msg, &budget, now).unwrap() {
                            Ok(_) => {}
                            Err(Refused::NoRoom(_)) => refusals += 1,
                            Err(other) => panic!("{other:?}"),
                        }
                    }
                }
                6 => {
                    if let Some(record) = topics::get(&txn, name).unwrap() {
                        queue::confirm(&txn, &mut memory, record.queue, next(now + 1)).unwrap();
                    }
                }
                7 => {
                    queue::sweep(&txn, &mut memory, now, 5).unwrap();
                }
                8 => {
                    let claim = topics::open(
                        &txn,
                        &mut memory,
                        name,
                        Some(user),
                        Access::Read,
                        &RULES,
                        now,
                    );
                    claim.unwrap().ok();
                }
                _ => {
                    if next(3) == 0 {
                        topics::delete(&txn, &mut memory, name).unwrap();
                    }
                }
            }
            if next(8) == 0 {
                txn.abort().unwrap();
                memory.reset();
                continue;
            }
            txn.commit().unwrap();
            memory.committed();
            let read = db.begin_read().unwrap();
            let fresh = Usage::load(&read).unwrap();
            let kept = memory.usage(&read).unwrap();
            assert_eq!(
                (kept.total(), kept.anonymous()),
                (fresh.total(), fresh.anonymous()),
                "step {step}"
            );
            assert!(fresh.total() <= budget.max_bytes, "step {step}");
            assert!(
                fresh.anonymous() <= budget.max_anonymous_bytes,
                "step {step}"
            );
        }
        assert!(refusals >= 5, "the budget was reached: {refusals} refusals");
    }
}
