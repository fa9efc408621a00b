//! What one node tells the others of each commit, over Redis pub/sub: the queues that got
//! messages and the access that was taken away. The message is published inside the
//! commit's `MULTI`/`EXEC`, so it goes out exactly when the commit is visible.
//!
//! Each node follows the channel on a connection and a thread of its own and hands what
//! it hears to its event loop as the store's own [`Event`]s. Pub/sub keeps nothing for a
//! node that is not connected: after any reconnect the follower sends [`Event::Resync`], and
//! every live stream reads its queues again, so a commit heard of late or not at all is
//! still delivered (from the store, in id order).
//!
//! The text form, one field per line: the sending node, then `C <queue>…` for the queues,
//! one line per revocation: `Q <queue>`, `R <queue> <user>|-`, `U <user>`,
//! `T <user> <token>`, and one per message with a TTL of 0: `E <queue> <id> <record, hex>`.

use std::fmt::Write as _;
use std::time::Duration;

use super::resp::{Address, Connection, Reply};
use crate::store::{Event, MessageRecord, Revocation};

/// A message with a TTL of 0: (queue, id, record), as `store::memory::Staged` holds one.
pub type Passed = (u64, u64, MessageRecord);

/// What a commit tells the other nodes.
#[derive(Debug, Default, PartialEq)]
pub struct News {
    /// The queues that got messages.
    pub queues: Vec<u64>,
    /// The access it took away.
    pub revoked: Vec<Revocation>,
    /// The messages with a TTL of 0 it took: delivered now to live streams, or never.
    pub passed_on: Vec<Passed>,
}

/// Writes a commit's news; `None` if there is none to tell.
pub fn encode(node: &str, news: &News) -> Option<Vec<u8>> {
    if news == &News::default() {
        return None;
    }
    let mut text = format!("{node}\nC");
    for queue in &news.queues {
        let _ = write!(text, " {queue}");
    }
    for revocation in &news.revoked {
        let _ = match *revocation {
            Revocation::Queue(queue) => write!(text, "\nQ {queue}"),
            Revocation::Reader {
                queue,
                user: Some(user),
            } => write!(text, "\nR {queue} {user}"),
            Revocation::Reader { queue, user: None } => write!(text, "\nR {queue} -"),
            Revocation::User(user) => write!(text, "\nU {user}"),
            Revocation::Token { user, token } => write!(text, "\nT {user} {token}"),
        };
    }
    for (queue, id, record) in &news.passed_on {
        let _ = write!(text, "\nE {queue} {id} ");
        for byte in record.encode() {
            let _ = write!(text, "{byte:02x}");
        }
    }
    Some(text.into_bytes())
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A commit's news as [`encode`] wrote it, with its node; `None` if malformed.
pub fn decode(bytes: &[u8]) -> Option<(String, News)> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut lines = text.split('\n');
    let node = lines.next()?.to_owned();
    let mut news = News::default();
    for line in lines {
        let mut words = line.split(' ');
        let kind = words.next()?;
        let mut number = || -> Option<u64> { words.next()?.parse().ok() };
        match kind {
            "C" => {
                while let Some(queue) = number() {
                    news.queues.push(queue);
                }
            }
            "Q" => news.revoked.push(Revocation::Queue(number()?)),
            "R" => {
                let queue = number()?;
                let user = match words.next()? {
                    "-" => None,
                    user => Some(user.parse().ok()?),
                };
                news.revoked.push(Revocation::Reader { queue, user });
            }
            "U" => news.revoked.push(Revocation::User(number()?)),
            "T" => {
                let user = number()?;
                news.revoked.push(Revocation::Token {
                    user,
                    token: number()?,
                });
            }
            "E" => {
                let (queue, id) = (number()?, number()?);
                let record = MessageRecord::decode(&from_hex(words.next()?)?)?;
                news.passed_on.push((queue, id, record));
            }
            _ => return None,
        }
    }
    Some((node, news))
}

/// Follows the other nodes' commits until the event loop stops listening.
pub fn follow(address: Address, channel: String, node: String, to: async_channel::Sender<Event>) {
    let mut connection = Connection::new(address, None);
    let mut backoff = Duration::from_millis(50);
    let mut first = true;
    while !to.is_closed() {
        let subscribed = connection
            .send(&[b"SUBSCRIBE", channel.as_bytes()])
            .and_then(|()| connection.read());
        if !matches!(subscribed, Ok(Reply::Array(_))) {
            connection.reset();
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(2));
            continue;
        }
        if !first {
            log::info!("following the other nodes' commits again");
            if to.try_send(Event::Resync).is_err() {
                return;
            }
        }
        first = false;
        backoff = Duration::from_millis(50);
        loop {
            let Ok(reply) = connection.read() else {
                log::warn!("lost the other nodes' commits; reconnecting");
                connection.reset();
                break;
            };
            let Some((from, news)) = message(reply) else {
                continue;
            };
            if from != node && !hand_over(news, &to) {
                return;
            }
        }
    }
}

/// Hands another node's news to the event loop as the store's events, in the order its
/// own commits give them; false once the event loop stopped listening.
fn hand_over(news: News, to: &async_channel::Sender<Event>) -> bool {
    let News {
        queues,
        revoked,
        passed_on,
    } = news;
    let events = [
        (!revoked.is_empty()).then_some(Event::Revoked(revoked)),
        (!queues.is_empty()).then_some(Event::Committed(queues)),
        (!passed_on.is_empty()).then_some(Event::PassedOn(passed_on)),
    ];
    events
        .into_iter()
        .flatten()
        .all(|event| to.try_send(event).is_ok())
}

/// The news in a pub/sub `message`; `None` for anything else.
fn message(reply: Reply) -> Option<(String, News)> {
    let Reply::Array(items) = reply else {
        return None;
    };
    match items.as_slice() {
        [Reply::Bulk(kind), _, Reply::Bulk(payload)] if kind == b"message" => {
            let decoded = decode(payload);
            if decoded.is_none() {
                log::warn!("a commit notice that does not decode was ignored");
            }
            decoded
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Content;

    #[test]
    fn news_come_back_as_they_were_sent() {
        let revoked = vec![
            Revocation::Queue(3),
            Revocation::Reader {
                queue: 4,
                user: Some(9),
            },
            Revocation::Reader {
                queue: 4,
                user: None,
            },
            Revocation::User(9),
            Revocation::Token { user: 9, token: 2 },
        ];
        let record = MessageRecord {
            expires_at: 1,
            posted_at: 1,
            content: Content::Text,
            priority: None,
            registration_id: String::new(),
            collapse_key: None,
            extras: Vec::new(),
            data: b"ring \n now".to_vec(),
            sequence: None,
        };
        let news = News {
            queues: vec![1, 1 << 62],
            revoked,
            passed_on: vec![(1, 7, record)],
        };
        let (node, back) = decode(&encode("node-a", &news).unwrap()).unwrap();
        assert_eq!(node, "node-a");
        assert_eq!(back, news);
        assert_eq!(encode("n", &News::default()), None);
        assert_eq!(decode(b"n\nX 1"), None);
        assert_eq!(decode(b"n\nR 1"), None);
        assert_eq!(decode(b"n\nE 1 2 0g"), None);
    }
}
