//! Senders: each posts back to back over one keep-alive connection, and records every
//! post with its tag, target, answer, times and node. A post is *acknowledged* by a 2xx
//! answer, *refused* by any other, *unknown* when the connection broke after it was sent
//! (the server may or may not have it), *not sent* when no connection could be made (a
//! node that is down); after either, the next post goes out on a new connection to another
//! node.

use std::time::Duration;

use super::history::{Ctx, Outcome, Post, Via};
use super::json;
use super::net::{Client, Failed};
use super::workload::{digest, Door, Tag};
use crate::soak::Rng;

/// One request to make, and what it is for.
pub struct PostReq {
    pub via: Via,
    pub method: &'static str,
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    pub target: u16,
    pub app: u16,
    pub ttl_secs: Option<u64>,
    /// Digest of the payload a subscriber must get.
    pub digest: u64,
    pub tiny: bool,
}

impl PostReq {
    /// A Web Push post of `body` to `path`.
    pub fn web_push(path: String, body: Vec<u8>, target: u16, app: u16) -> PostReq {
        PostReq {
            via: Via::WebPush,
            method: "POST",
            path,
            headers: vec![("Content-Type", "application/octet-stream".into())],
            digest: digest(&body),
            body,
            target,
            app,
            ttl_secs: None,
            tiny: false,
        }
    }

    /// A Matrix gateway notification (the payload delivered is the JSON as posted).
    pub fn matrix(path: &str, body: String, target: u16, app: u16) -> PostReq {
        PostReq {
            via: Via::Matrix,
            method: "POST",
            path: path.into(),
            headers: vec![("Content-Type", "application/json".into())],
            digest: digest(body.as_bytes()),
            body: body.into_bytes(),
            target,
            app,
            ttl_secs: None,
            tiny: false,
        }
    }

    pub fn ttl(mut self, secs: u64) -> PostReq {
        self.ttl_secs = Some(secs);
        if self.via == Via::WebPush {
            self.headers.push(("TTL", secs.to_string()));
        }
        self
    }
}

pub fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        crate::wire::base64(format!("{user}:{password}").as_bytes())
    )
}

/// Sends one post and records it.
pub fn send(ctx: &Ctx, client: &mut Client, tag: Tag, req: PostReq) -> Post {
    let headers: Vec<(&str, &str)> = req.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let start = ctx.now();
    let answer = client.request(req.method, &req.path, &headers, &req.body);
    let end = ctx.now();
    let (outcome, id) = match answer {
        Ok(r) if (200..300).contains(&r.status) => {
            let v = json::parse(&r.body);
            let id = match req.via {
                Via::Message => v.as_ref().and_then(|v| v.get("id")).and_then(|v| v.u64()),
                Via::Publish | Via::PublishJson => v
                    .as_ref()
                    .and_then(|v| v.field("id"))
                    .and_then(|s| s.strip_prefix("op"))
                    .and_then(|s| s.parse().ok()),
                // A Web Push answer's Location names the message without its id (the
                // counter is not shown to senders), and so does an anonymous publish to an
                // endpoint topic (`m<name>`): those deliveries are matched by their bodies.
                Via::WebPush | Via::Matrix => None,
            };
            if req.via == Via::WebPush && r.header("location").is_none() {
                ctx.anomaly(
                    tag.door,
                    format!("{tag}: a Web Push answer {} without a Location", r.status),
                );
            }
            let rejected = req.via == Via::Matrix
                && v.as_ref()
                    .and_then(|v| v.get("rejected"))
                    .is_none_or(|r| !matches!(r, json::Value::Arr(a) if a.is_empty()));
            if rejected {
                ctx.anomaly(
                    tag.door,
                    format!(
                        "{tag}: the Matrix gateway rejected its pushkey: {}",
                        r.text()
                    ),
                );
                (Outcome::Refused(r.status), None)
            } else {
                (Outcome::Acked, id)
            }
        }
        Ok(r) => (Outcome::Refused(r.status), None),
        Err(Failed::NotSent(_)) => (Outcome::NotSent, None),
        Err(Failed::Unknown(_)) => (Outcome::Unknown, None),
    };
    Post {
        tag,
        via: req.via,
        target: req.target,
        app: req.app,
        node: client.node(),
        ttl_secs: req.ttl_secs,
        start,
        end,
        outcome,
        id,
        digest: req.digest,
        tiny: req.tiny,
    }
}

/// Posts what `plan` makes until posting stops; returns the posts.
pub fn sender(
    ctx: &Ctx,
    door: Door,
    sender: u16,
    mut plan: impl FnMut(&mut Rng, Tag) -> PostReq,
    think_ms: (u64, u64),
) -> Vec<Post> {
    let seed = ctx.seed ^ (0x1000 * (door as u64 + 1) + sender as u64);
    let mut rng = Rng::new(seed);
    let mut client = ctx.client(seed, Duration::from_secs(20));
    let mut posts = Vec::new();
    let mut seq = 0u32;
    while ctx.posting() {
        let tag = Tag { door, sender, seq };
        seq += 1;
        let req = plan(&mut rng, tag);
        let post = send(ctx, &mut client, tag, req);
        let pause = match post.outcome {
            Outcome::NotSent | Outcome::Unknown => rng.below(150) + 50,
            Outcome::Refused(_) => rng.below(40) + 10,
            Outcome::Acked => think_ms.0 + rng.below(think_ms.1 - think_ms.0 + 1),
        };
        posts.push(post);
        if pause > 0 {
            ctx.nap(Duration::from_millis(pause), Ctx::posting);
        }
    }
    posts
}

/// 1–12 random bytes: a body too short for a tag.
pub fn tiny_body(rng: &mut Rng) -> Vec<u8> {
    let n = 1 + rng.below(12) as usize;
    (0..n).map(|_| rng.next() as u8).collect()
}
