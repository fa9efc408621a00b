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
//! and one line per revocation: `Q <queue>`, `R <queue> <user>|-`, `U <user>`,
//! `T <user> <token>`.

use std::fmt::Write as _;
use std::time::Duration;

use super::resp::{Address, Connection, Reply};
use crate::store::{Event, Revocation};

/// Writes a commit's news; `None` if there is none to tell.
pub fn encode(node: &str, queues: &[u64], revoked: &[Revocation]) -> Option<Vec<u8>> {
    if queues.is_empty() && revoked.is_empty() {
        return None;
    }
    let mut text = format!("{node}\nC");
    for queue in queues {
        let _ = write!(text, " {queue}");
    }
    for revocation in revoked {
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
    Some(text.into_bytes())
}

/// A commit's news as [`encode`] wrote it: (node, queues, revocations); `None` if malformed.
pub fn decode(bytes: &[u8]) -> Option<(String, Vec<u64>, Vec<Revocation>)> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut lines = text.split('\n');
    let node = lines.next()?.to_owned();
    let mut queues = Vec::new();
    let mut revoked = Vec::new();
    for line in lines {
        let mut words = line.split(' ');
        let kind = words.next()?;
        let mut number = || -> Option<u64> { words.next()?.parse().ok() };
        match kind {
            "C" => {
                while let Some(queue) = number() {
                    queues.push(queue);
                }
            }
            "Q" => revoked.push(Revocation::Queue(number()?)),
            "R" => {
                let queue = number()?;
                let user = match words.next()? {
                    "-" => None,
                    user => Some(user.parse().ok()?),
                };
                revoked.push(Revocation::Reader { queue, user });
            }
            "U" => revoked.push(Revocation::User(number()?)),
            "T" => {
                let user = number()?;
                revoked.push(Revocation::Token {
                    user,
                    token: number()?,
                });
            }
            _ => return None,
        }
    }
    Some((node, queues, revoked))
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
            let Some((from, queues, revoked)) = message(reply) else {
                continue;
            };
            if from == node {
                continue;
            }
            if !revoked.is_empty() && to.try_send(Event::Revoked(revoked)).is_err() {
                return;
            }
            if !queues.is_empty() && to.try_send(Event::Committed(queues)).is_err() {
                return;
            }
        }
    }
}

/// The news in a pub/sub `message`; `None` for anything else.
fn message(reply: Reply) -> Option<(String, Vec<u64>, Vec<Revocation>)> {
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
        let bytes = encode("node-a", &[1, 1 << 62], &revoked).unwrap();
        let (node, queues, back) = decode(&bytes).unwrap();
        assert_eq!(node, "node-a");
        assert_eq!(queues, vec![1, 1 << 62]);
        assert_eq!(back, revoked);
        assert_eq!(encode("n", &[], &[]), None);
        assert_eq!(decode(b"n\nX 1"), None);
        assert_eq!(decode(b"n\nR 1"), None);
    }
}
