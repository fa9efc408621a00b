//! The ntfy door: one user owns four topics and two endpoint topics (`up…`); publishers
//! `PUT`/`POST /<topic>` (and `POST /` with JSON), app servers post Web Push and Matrix
//! notifications to the endpoint topics; subscribers follow sets of topics over `/json`,
//! `/sse` and `/ws` and reconnect with `since=<last id>`, as the ntfy app does. A topic keeps
//! its messages for every subscriber, so each message must reach every subscriber of its
//! topic. A seventh topic, only posted to while its subscriber is away, gets short TTLs.

use super::history::{Ctx, Via};
use super::json;
use super::net::{base64_any, take_frame, take_line, take_sse, StreamConn, WS_UPGRADE};
use super::openpush::web_push;
use super::post::{basic, PostReq};
use super::session::{Item, Msg, Proto};
use super::workload::{ascii_pad, body_len, digest, matrix_body, Door, Tag};
use crate::soak::Rng;

pub const TOPICS: [&str; 7] = [
    "ck-t0",
    "ck-t1",
    "ck-t2",
    "ck-t3",
    "upckchk0000000",
    "upckchk0000001",
    "upckchkttl0000",
];
/// Topics the senders post to (the last one is the TTL driver's).
pub const POSTED: usize = 6;
pub const TTL_TOPIC: usize = 6;

#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Format {
    Json,
    Sse,
    Ws,
}

/// Each subscriber's format and topics; the last is the TTL driver's.
pub const SUBS: [(Format, &[usize]); 6] = [
    (Format::Json, &[0, 1, 4]),
    (Format::Sse, &[1, 2]),
    (Format::Ws, &[0, 2, 4, 5]),
    (Format::Json, &[3, 5]),
    (Format::Sse, &[0, 4]),
    (Format::Json, &[TTL_TOPIC]),
];

/// The subscribers of topic `t`.
pub fn recipients(t: usize) -> Vec<u16> {
    SUBS.iter()
        .enumerate()
        .filter(|(_, (_, ts))| ts.contains(&t))
        .map(|(i, _)| i as u16)
        .collect()
}

/// The user claims every topic (the first user to use a topic owns it).
pub fn setup(ctx: &Ctx, user: &str, password: &str) -> Result<(), String> {
    let mut c = ctx.client(ctx.seed ^ 0x0F7F, std::time::Duration::from_secs(30));
    let auth = basic(user, password);
    let r = c
        .request(
            "GET",
            &format!("/{}/json?poll=1", TOPICS.join(",")),
            &[("Authorization", &auth)],
            b"",
        )
        .map_err(|e| format!("ntfy poll: {e}"))?;
    if r.status != 200 {
        return Err(format!("ntfy poll: {} {}", r.status, r.text()));
    }
    Ok(())
}

pub fn plan(host: &str, auth: &str) -> impl FnMut(&mut Rng, Tag) -> PostReq {
    let (host, auth) = (host.to_owned(), auth.to_owned());
    move |rng, tag| {
        // Topic 0 is hot: the known-bad case of the OpenPush door (several senders into one
        // queue while its subscribers reconnect), here with three subscribers of it.
        let t = if rng.chance(0.4) {
            0
        } else {
            rng.below(POSTED as u64) as usize
        };
        let topic = TOPICS[t];
        if t < 4 {
            let text = format!("{tag} {}", ascii_pad(&tag, body_len(rng, 1, 2000)));
            let mut req = if rng.chance(0.7) {
                let mut headers = vec![("Authorization", auth.clone())];
                if rng.chance(0.3) {
                    headers.push(("Title", "ck".into()));
                    headers.push(("Priority", (1 + rng.below(5)).to_string()));
                    headers.push(("Tags", "ck,check".into()));
                }
                PostReq {
                    via: Via::Publish,
                    method: if rng.chance(0.5) { "PUT" } else { "POST" },
                    path: format!("/{topic}"),
                    headers,
                    body: text.clone().into_bytes(),
                    target: t as u16,
                    app: 0,
                    ttl_secs: None,
                    digest: 0,
                    tiny: false,
                }
            } else {
                let mut body = String::from("{\"topic\":");
                json::push_string(&mut body, topic);
                body.push_str(",\"message\":");
                json::push_string(&mut body, &text);
                body.push_str(",\"title\":\"ck\",\"tags\":[\"ck\"]}");
                PostReq {
                    via: Via::PublishJson,
                    method: "POST",
                    path: "/".into(),
                    headers: vec![
                        ("Authorization", auth.clone()),
                        ("Content-Type", "application/json".into()),
                    ],
                    body: body.into_bytes(),
                    target: t as u16,
                    app: 0,
                    ttl_secs: None,
                    digest: 0,
                    tiny: false,
                }
            };
            req.digest = digest(text.as_bytes());
            req
        } else if rng.chance(0.75) {
            let tiny = rng.chance(0.03);
            let req = web_push(tag, format!("/{topic}"), t, 0, tiny, rng);
            if !tiny && rng.chance(0.03) {
                req.ttl(1 + rng.below(3))
            } else {
                req
            }
        } else {
            let query = if rng.chance(0.5) { "?up=1" } else { "" };
            let pushkey = format!("http://{host}/{topic}{query}");
            let body = matrix_body(&tag, &pushkey, body_len(rng, 1, 300));
            PostReq::matrix("/_matrix/push/v1/notify", body, t as u16, 0)
        }
    }
}

pub fn ttl_plan() -> impl FnMut(&mut Rng, Tag, Option<u64>) -> PostReq {
    move |rng, tag, ttl| {
        let req = web_push(
            tag,
            format!("/{}", TOPICS[TTL_TOPIC]),
            TTL_TOPIC,
            0,
            false,
            rng,
        );
        match ttl {
            Some(t) => req.ttl(t),
            None => req,
        }
    }
}

pub struct Sub {
    pub sub: u16,
    pub format: Format,
    pub topics: Vec<String>,
    pub auth: String,
    /// The highest message id read: the next `since=`.
    pub last: Option<u64>,
}

impl Sub {
    pub fn new(sub: usize, auth: &str) -> Sub {
        let (format, topics) = SUBS[sub];
        Sub {
            sub: sub as u16,
            format,
            topics: topics.iter().map(|&t| TOPICS[t].to_owned()).collect(),
            auth: auth.to_owned(),
            last: None,
        }
    }
}

/// An ntfy message object as an item.
fn object(data: &[u8]) -> Item {
    let Some(v) = json::parse(data) else {
        return Item::Bad(format!("not JSON: {}", String::from_utf8_lossy(data)));
    };
    match v.field("event") {
        Some("message") => {}
        Some("open" | "keepalive") => return Item::Other,
        other => return Item::Bad(format!("an event {other:?}")),
    }
    let Some(id) = v
        .field("id")
        .and_then(|s| s.strip_prefix("op"))
        .and_then(|s| s.parse().ok())
    else {
        return Item::Bad(format!("a message id {:?}", v.field("id")));
    };
    let text = v.field("message").unwrap_or("");
    let payload = if v.field("encoding") == Some("base64") {
        match base64_any(text) {
            Some(p) => p,
            None => return Item::Bad("base64 that does not decode".into()),
        }
    } else {
        text.as_bytes().to_vec()
    };
    Item::Msg(Msg {
        id: Some(id),
        route: v.field("topic").unwrap_or("").to_owned(),
        payload,
    })
}

impl Proto for Sub {
    fn door(&self) -> Door {
        Door::Ntfy
    }
    fn sub(&self) -> u16 {
        self.sub
    }
    fn request(&mut self, host: &str, _rng: &mut Rng, _drain: bool) -> (Vec<u8>, Option<u64>) {
        let since = self.last.map_or("all".into(), |id| format!("op{id}"));
        let (fmt, upgrade) = match self.format {
            Format::Json => ("json", ""),
            Format::Sse => ("sse", ""),
            Format::Ws => ("ws", WS_UPGRADE),
        };
        let req = format!(
            "GET /{}/{fmt}?since={since} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {}\r\n{upgrade}\r\n",
            self.topics.join(","),
            self.auth
        );
        (req.into_bytes(), self.last)
    }
    fn status_ok(&self, status: u16) -> bool {
        status == if self.format == Format::Ws { 101 } else { 200 }
    }
    fn take(&mut self, _ctx: &Ctx, conn: &mut StreamConn) -> Option<Item> {
        match self.format {
            Format::Json => {
                let line = take_line(&mut conn.buf)?;
                Some(object(&line))
            }
            Format::Sse => {
                let ev = take_sse(&mut conn.buf)?;
                if ev.empty || ev.event == "open" || ev.event == "keepalive" {
                    return Some(Item::Other);
                }
                Some(object(&ev.data))
            }
            Format::Ws => {
                let (op, fin, payload) = take_frame(&mut conn.buf)?;
                Some(match op {
                    _ if !fin => Item::Bad("a fragmented frame".into()),
                    0x1 => object(&payload),
                    0x9 => {
                        conn.send(&crate::wire::ws_frame(0xA, &payload));
                        Item::Other
                    }
                    0x8 => Item::End(String::new()),
                    _ => Item::Other,
                })
            }
        }
    }
    fn read(&mut self, _: &Ctx, _: &mut StreamConn, msg: &Msg, _: &mut Rng, _: bool) {
        if let Some(id) = msg.id {
            self.last = Some(self.last.map_or(id, |l| l.max(id)));
        }
    }
}

/// The ids that the store still has for subscriber `sub` from id `from` on (all without
/// one), by a poll: to tell a message the stream skipped from one the store lost.
pub fn stored(
    ctx: &Ctx,
    sub: usize,
    auth: &str,
    from: Option<u64>,
) -> Result<std::collections::HashSet<u64>, String> {
    let topics: Vec<&str> = SUBS[sub].1.iter().map(|&t| TOPICS[t]).collect();
    let since = from.map_or("all".into(), |id| format!("op{}", id.saturating_sub(1)));
    let mut c = ctx.client(
        ctx.seed ^ 0x5_7F7F ^ sub as u64,
        std::time::Duration::from_secs(120),
    );
    let r = c
        .request(
            "GET",
            &format!("/{}/json?poll=1&since={since}", topics.join(",")),
            &[("Authorization", auth)],
            b"",
        )
        .map_err(|e| e.to_string())?;
    if r.status != 200 {
        return Err(format!("{} {}", r.status, r.text()));
    }
    let mut ids = std::collections::HashSet::new();
    for line in r.body.split(|&b| b == b'\n') {
        if let Item::Msg(m) = object(line) {
            ids.extend(m.id);
        }
    }
    Ok(ids)
}
