//! `GET /<t1,t2,…>/json|sse|raw|ws`: an ntfy subscription to one or more topics.
//!
//! `since=` picks the cached messages sent first: `all`; `none` (nothing cached: the
//! default); `latest` (the newest one); a message id; a Unix time in seconds; a duration
//! (`30s`, `10m`, `2h`, `1d`). An id this server never gave means "everything cached", as
//! ntfy does, so a client that moved servers misses nothing. `poll=1` sends the cached
//! messages and ends; with `scheduled=1` (`sched`, `X-Scheduled`) it then lists the
//! messages still waiting for their time, as ntfy does (their `time` is when they are
//! sent; a live stream gets them when they are sent). A subscription never deletes
//! anything: topic messages stay until their TTL ends, for every subscriber.
//!
//! A live stream ends when its user, or the anonymous reader, loses access to one of its
//! topics (`crate::store::Revocation`), also when that happens while it starts: once
//! attached it checks its topics and login again ([`recheck_after_attach`]).

use std::rc::Rc;

use super::encode::{self, parse_message_id};
use super::{open_topics, user};
use crate::auth::login_stamp;
use crate::clock::now_millis;
use crate::error::ApiError;
use crate::http::Request;
use crate::hub::Reader;
use crate::route::Outcome;
use crate::route::recheck_after_attach;
use crate::state::ServerState;
use crate::store::kv::{ReadTransaction, ReadableTable};
use crate::store::queue::Cursor;

use crate::store::tables::{MESSAGES, Tables};
use crate::store::topics::{self, Access, Rules};
use crate::store::{Revocation, accounts};
use crate::stream::{Encoder, Queues, Subscription};
use crate::ws;

pub async fn start(
    state: &Rc<ServerState>,
    req: &Request,
    topic_list: &str,
    format: &str,
) -> Result<Outcome, ApiError> {
    let names: Vec<String> = topic_list.split(',').map(str::to_owned).collect();
    if let Some(bad) = names.iter().find(|n| !crate::names::is_topic_name(n)) {
        return Err(ApiError::BadRequest(format!(
            "{bad:?} is not a topic name: 1 to 64 letters, digits, - or _"
        )));
    }
    let max = state.config().limits.max_topics_per_stream;
    if names.len() > max {
        return Err(ApiError::BadRequest(format!(
            "a subscription may join at most {max} topics"
        )));
    }
    let (head, encoder, chunked) = wire_format(state, req, format)?;
    let filter = super::filter::Filter::from_request(req)?;
    let poll = matches!(req.query_param("poll"), Some("1" | "true" | "yes"));
    let scheduled = poll
        && super::fields::param(req, &["X-Scheduled", "Scheduled", "Sched"])
            .is_some_and(|v| matches!(v.as_str(), "1" | "true" | "yes"));
    let since = parse_since(req.query_param("since"), poll)?;
    let user = user(state, req).await?;
    let login = user.as_ref().map(|u| (u.id, u.login, u.token));
    let records = open_topics(state, names.clone(), user, Access::Read).await?;
    let queues: Box<[u64]> = records.iter().map(|r| r.queue).collect();
    let mut cursor = match since {
        Since::Cursor(cursor) => Cursor {
            after: crate::stream::resumable(state, cursor.after).await?,
            ..cursor
        },
        Since::Latest => {
            let queues = queues.clone();
            let newest = state.store.read(move |t| newest_id(t, &queues)).await?;
            Cursor {
                after: newest.map_or(0, |id| id - 1),
                posted_since: 0,
            }
        }
    };
    if let Some(id) = filter.as_ref().and_then(|f| f.only_id()) {
        // Nothing before the one message wanted is read.
        cursor.after = cursor.after.max(id.saturating_sub(1));
    }
    if !poll {
        let followed: Vec<(String, u64)> =
            names.iter().cloned().zip(queues.iter().copied()).collect();
        let rules = crate::delivery::topics::rules(state);
        recheck_after_attach(state, move |t| access_lost(t, &followed, login, &rules));
    }
    Ok(Outcome::Stream(
        head,
        Subscription {
            queues: match *queues {
                [one] => Queues::One([one]),
                _ => Queues::Many(queues),
            },
            topics: names.into_iter().map(String::into_boxed_str).collect(),
            exclusive: false,
            live: !poll,
            scheduled,
            cursor,
            encoder,
            chunked,
            requester: None,
            filter: filter.map(|f| Box::new(f) as Box<dyn crate::stream::Filter>),
        },
        reader_of(login),
    ))
}

/// The response head, the encoder and whether the body is chunked, of a stream in
/// `format`. Chunked as ntfy's own streams: a client that reads the body in blocks sees
/// each event at once (never to HTTP/1.0, nor on a WebSocket).
fn wire_format(
    state: &ServerState,
    req: &Request,
    format: &str,
) -> Result<(Vec<u8>, &'static dyn Encoder, bool), ApiError> {
    let chunked = format != "ws" && req.http11;
    Ok(match format {
        "ws" => {
            let accept = ws::accept_request(req)?;
            (ws::response_head(&accept), &encode::WebSocket, false)
        }
        "sse" => {
            let mut head = crate::sse::response_head(chunked);
            let body = head.len();
            crate::sse::push_retry(&mut head, state.config().retry);
            if chunked {
                crate::http::chunked::frame(&mut head, body);
            }
            (head, &encode::Sse, chunked)
        }
        "raw" => (
            stream_head("text/plain; charset=utf-8", chunked),
            &encode::Raw,
            chunked,
        ),
        _ => (
            stream_head("application/x-ndjson; charset=utf-8", chunked),
            &encode::JsonLines,
            chunked,
        ),
    })
}

/// Who a stream opened with `login` is (see [`access_lost`]), for the revocations.
fn reader_of(login: Option<(u64, u64, Option<u64>)>) -> Reader {
    match login {
        Some((id, _, Some(token))) => Reader::token(id, token),
        Some((id, _, None)) => Reader::of(Some(id)),
        None => Reader::ANONYMOUS,
    }
}

/// What a stream that started with `login` (user id, [`crate::auth::login_stamp`] and
/// access token; `None`: anonymous) on `followed` (topic names and queues) no longer has:
/// a topic deleted (or replaced by a new one of the same name), a topic it may no longer
/// read, a login that changed or whose user or token is gone.
fn access_lost(
    t: &ReadTransaction,
    followed: &[(String, u64)],
    login: Option<(u64, u64, Option<u64>)>,
    rules: &Rules,
) -> crate::store::Result<Vec<Revocation>> {
    let mut lost = Vec::new();
    if let Some((id, stamp, token)) = login {
        let user = accounts::get_user(&t.users()?, id)?;
        if user.is_none_or(|record| login_stamp(&record) != stamp) {
            lost.push(Revocation::User(id));
        }
        if let Some(token) = token
            && crate::store::tokens::is_gone(t, id, token)?
        {
            lost.push(Revocation::Token { user: id, token });
        }
    }
    let user = login.map(|(id, _, _)| id);
    for (name, queue) in followed {
        let queue = *queue;
        match topics::get(t, name)? {
            Some(topic) if topic.queue == queue => {
                if !topics::allowed(&topic, user, Access::Read, rules) {
                    lost.push(Revocation::Reader { queue, user });
                }
            }
            _ => lost.push(Revocation::Queue(queue)),
        }
    }
    Ok(lost)
}

fn stream_head(content_type: &str, chunked: bool) -> Vec<u8> {
    let coding = if chunked {
        "Transfer-Encoding: chunked\r\n"
    } else {
        ""
    };
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nCache-Control: no-cache\r\n\
         X-Accel-Buffering: no\r\n{coding}Connection: close\r\n\r\n"
    )
    .into_bytes()
}

enum Since {
    Cursor(Cursor),
    Latest,
}

fn parse_since(value: Option<&str>, poll: bool) -> Result<Since, ApiError> {
    let now = now_millis();
    let from_time = |ms: u64| {
        Since::Cursor(Cursor {
            after: 0,
            posted_since: ms,
        })
    };
    Ok(match value.map(str::trim) {
        // A poll without `since` asks for everything cached, as ntfy answers it.
        None | Some("") if poll => from_time(0),
        None | Some("") | Some("none") => from_time(now),
        Some("all") => from_time(0),
        Some("latest") => Since::Latest,
        Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
            let secs: u64 = v
                .parse()
                .map_err(|_| ApiError::BadRequest("since: not a Unix time".into()))?;
            from_time(secs.saturating_mul(1000))
        }
        Some(v) => match (parse_message_id(v), parse_duration(v)) {
            (Some(id), _) => Since::Cursor(Cursor {
                after: id,
                posted_since: 0,
            }),
            (None, Some(ms)) => from_time(now.saturating_sub(ms)),
            (None, None) => from_time(0),
        },
    })
}

/// `30s`, `10m`, `2h`, `1d` in milliseconds.
fn parse_duration(value: &str) -> Option<u64> {
    let unit = match value.as_bytes().last()? {
        b's' => 1000,
        b'm' => 60_000,
        b'h' => 3_600_000,
        b'd' => 86_400_000,
        _ => return None,
    };
    let number: u64 = value[..value.len() - 1].parse().ok()?;
    Some(number.saturating_mul(unit))
}

/// The newest stored message id of any of `queues`.
fn newest_id(t: &impl Tables, queues: &[u64]) -> crate::store::Result<Option<u64>> {
    let messages = t.bytes(MESSAGES)?;
    let mut newest = None;
    for &queue in queues {
        if let Some(entry) = messages.range((queue, 0)..=(queue, u64::MAX))?.next_back() {
            let id = entry?.0.value().1;
            newest = newest.max(Some(id));
        }
    }
    Ok(newest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor(v: &str) -> Cursor {
        match parse_since(Some(v), false).unwrap() {
            Since::Cursor(c) => c,
            Since::Latest => panic!("latest"),
        }
    }

    #[test]
    fn since_forms() {
        assert_eq!(cursor("op41").after, 41);
        assert_eq!(cursor("all").posted_since, 0);
        assert_eq!(cursor("1700000000").posted_since, 1_700_000_000_000);
        assert!(cursor("10m").posted_since > 0);
        let unknown = cursor("Xq3ZmAbc81Pd");
        assert_eq!((unknown.after, unknown.posted_since), (0, 0));
        assert!(matches!(
            parse_since(Some("latest"), false),
            Ok(Since::Latest)
        ));
    }
}
