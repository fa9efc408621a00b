//! The autopush door (Firefox, Sunup): user agents say `hello` (with their uaid on every
//! reconnect), register channels once, and get `notification`s of what app servers post to
//! the channels' `/wpush/v1/<token>` endpoints (and Matrix notifications naming them). The
//! user agent acks most messages, leaves some unacked (they must come again on the next
//! connection) and nacks some. An ack followed by a ping (`{}`) whose answer came back was
//! read by the server: that message must not come again, unless a `kill -9` came before
//! the ack's commit.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::cluster::Node;
use super::history::{Ack, Ctx};
use super::json;
use super::net::{base64_any, take_frame, Fill, StreamConn, WS_UPGRADE};
use super::openpush::web_push;
use super::post::PostReq;
use super::session::{Item, Msg, Proto};
use super::workload::{body_len, matrix_body, Door, Tag};
use crate::soak::Rng;
use crate::wire::ws_frame;

pub struct Agent {
    pub uaid: String,
    pub channels: Vec<String>,
    /// Endpoint paths (`/wpush/v1/<token>`), per channel.
    pub paths: Vec<String>,
}

pub const TTL_AGENT: usize = 3;

fn uuid(rng: &mut Rng) -> String {
    format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        rng.next() as u32,
        rng.next() as u16,
        rng.next() & 0xFFF,
        rng.next() & 0xFFF,
        rng.next() & 0xFFFF_FFFF_FFFF
    )
}

fn open(ctx: &Ctx, node: Node) -> Result<StreamConn, String> {
    let req = format!("GET / HTTP/1.1\r\nHost: {}\r\n{WS_UPGRADE}\r\n", ctx.host);
    let (conn, head) = StreamConn::open(node, req.as_bytes(), Duration::from_secs(15))
        .map_err(|e| format!("autopush upgrade: {e}"))?;
    if head.status != 101 {
        return Err(format!("autopush upgrade: status {}", head.status));
    }
    Ok(conn)
}

fn send_text(conn: &mut StreamConn, text: &str) -> bool {
    conn.send(&ws_frame(0x1, text.as_bytes()))
}

/// The next text message (pings answered on the way), within `timeout`.
fn next_text(conn: &mut StreamConn, timeout: Duration) -> Result<json::Value, String> {
    let until = Instant::now() + timeout;
    loop {
        while let Some((op, _, payload)) = take_frame(&mut conn.buf) {
            match op {
                0x1 => {
                    return json::parse(&payload)
                        .ok_or_else(|| format!("not JSON: {}", String::from_utf8_lossy(&payload)))
                }
                0x9 => {
                    conn.send(&ws_frame(0xA, &payload));
                }
                0x8 => return Err(format!("closed: {}", close_text(&payload))),
                _ => {}
            }
        }
        if Instant::now() > until {
            return Err("no answer in time".into());
        }
        if let Fill::Closed = conn.fill() {
            return Err("the connection closed".into());
        }
    }
}

fn close_text(payload: &[u8]) -> String {
    match payload {
        [a, b, rest @ ..] => format!(
            "{} {}",
            u16::from_be_bytes([*a, *b]),
            String::from_utf8_lossy(rest)
        ),
        _ => "no code".into(),
    }
}

/// User agents 0–3 with 3, 3, 3 and 1 channels.
pub fn setup(ctx: &Ctx) -> Result<Vec<Agent>, String> {
    let mut rng = Rng::new(ctx.seed ^ 0xA070);
    let mut nodes = ctx.picker(ctx.seed ^ 0xA070);
    let mut agents = Vec::new();
    for n in [3, 3, 3, 1] {
        let mut conn = open(ctx, nodes.pick())?;
        send_text(
            &mut conn,
            r#"{"messageType":"hello","uaid":"","channelIDs":[],"use_webpush":true,"broadcasts":{}}"#,
        );
        let v = next_text(&mut conn, Duration::from_secs(15))?;
        let uaid = v
            .field("uaid")
            .filter(|_| v.field("messageType") == Some("hello"))
            .ok_or_else(|| format!("hello answer: {}", v.to_json()))?
            .to_owned();
        let mut channels = Vec::new();
        let mut paths = Vec::new();
        for _ in 0..n {
            let ch = uuid(&mut rng);
            send_text(
                &mut conn,
                &format!(r#"{{"messageType":"register","channelID":"{ch}"}}"#),
            );
            let v = next_text(&mut conn, Duration::from_secs(15))?;
            let endpoint = v
                .field("pushEndpoint")
                .filter(|_| v.get("status").and_then(json::Value::u64) == Some(200))
                .ok_or_else(|| format!("register answer: {}", v.to_json()))?;
            let path = endpoint
                .strip_prefix(&format!("http://{}", ctx.host))
                .ok_or_else(|| format!("an endpoint elsewhere: {endpoint}"))?;
            channels.push(ch);
            paths.push(path.to_owned());
        }
        agents.push(Agent {
            uaid,
            channels,
            paths,
        });
    }
    Ok(agents)
}

fn aes128gcm(mut req: PostReq) -> PostReq {
    req.headers.push(("Content-Encoding", "aes128gcm".into()));
    req
}

pub fn plan(agents: &[Agent], host: &str) -> impl FnMut(&mut Rng, Tag) -> PostReq {
    let paths: Vec<Vec<String>> = agents.iter().map(|a| a.paths.clone()).collect();
    let host = host.to_owned();
    move |rng, tag| {
        let u = rng.below(3) as usize;
        let ch = rng.below(paths[u].len() as u64) as usize;
        let path = &paths[u][ch];
        if rng.chance(0.85) {
            let tiny = rng.chance(0.03);
            let req = aes128gcm(web_push(tag, path.clone(), u, ch, tiny, rng));
            if !tiny && rng.chance(0.03) {
                req.ttl(1 + rng.below(3))
            } else {
                req
            }
        } else {
            let pushkey = format!("http://{host}{path}");
            let body = matrix_body(&tag, &pushkey, body_len(rng, 1, 300));
            PostReq::matrix("/_matrix/push/v1/notify", body, u as u16, ch as u16)
        }
    }
}

pub fn ttl_plan(agents: &[Agent]) -> impl FnMut(&mut Rng, Tag, Option<u64>) -> PostReq {
    let path = agents[TTL_AGENT].paths[0].clone();
    move |rng, tag, ttl| {
        let req = aes128gcm(web_push(tag, path.clone(), TTL_AGENT, 0, false, rng));
        match ttl {
            Some(t) => req.ttl(t),
            None => req,
        }
    }
}

pub struct Sub {
    pub sub: u16,
    pub uaid: String,
    pub channels: Vec<String>,
    /// Acks sent since the last ping.
    unpinged: Vec<u64>,
    /// Acks sent before each ping not answered yet.
    pings: VecDeque<Vec<u64>>,
    /// Acks everything (the TTL driver's agent).
    pub ack_all: bool,
}

impl Sub {
    pub fn new(sub: usize, agent: &Agent) -> Sub {
        Sub {
            sub: sub as u16,
            uaid: agent.uaid.clone(),
            channels: agent.channels.clone(),
            unpinged: Vec::new(),
            pings: VecDeque::new(),
            ack_all: false,
        }
    }
}

impl Proto for Sub {
    fn door(&self) -> Door {
        Door::Autopush
    }
    fn sub(&self) -> u16 {
        self.sub
    }
    fn request(&mut self, host: &str, _: &mut Rng, _: bool) -> (Vec<u8>, Option<u64>) {
        let req = format!("GET / HTTP/1.1\r\nHost: {host}\r\n{WS_UPGRADE}\r\n");
        (req.into_bytes(), None)
    }
    fn status_ok(&self, status: u16) -> bool {
        status == 101
    }
    fn start(&mut self, _ctx: &Ctx, conn: &mut StreamConn) -> Result<(), String> {
        self.unpinged.clear();
        self.pings.clear();
        let channels: Vec<String> = self.channels.iter().map(|c| format!("\"{c}\"")).collect();
        let hello = format!(
            r#"{{"messageType":"hello","uaid":"{}","channelIDs":[{}],"use_webpush":true,"broadcasts":{{}}}}"#,
            self.uaid,
            channels.join(",")
        );
        if !send_text(conn, &hello) {
            return Err(String::new());
        }
        let v = match next_text(conn, Duration::from_secs(15)) {
            Ok(v) => v,
            // The server went away meanwhile (a restart): not a finding.
            Err(e) if e.starts_with("closed: 1001") || !e.starts_with("closed") => {
                return Err(String::new())
            }
            Err(e) => return Err(format!("the hello was answered by a close: {e}")),
        };
        let ok = v.field("messageType") == Some("hello")
            && v.get("status").and_then(json::Value::u64) == Some(200);
        let same = v
            .field("uaid")
            .is_some_and(|u| u.eq_ignore_ascii_case(&self.uaid));
        if !ok || !same {
            return Err(format!(
                "hello with uaid {} answered {}",
                self.uaid,
                v.to_json()
            ));
        }
        Ok(())
    }
    fn take(&mut self, ctx: &Ctx, conn: &mut StreamConn) -> Option<Item> {
        let (op, fin, payload) = take_frame(&mut conn.buf)?;
        if !fin {
            return Some(Item::Bad("a fragmented frame".into()));
        }
        Some(match op {
            0x1 => {
                let Some(v) = json::parse(&payload) else {
                    return Some(Item::Bad(format!(
                        "not JSON: {}",
                        String::from_utf8_lossy(&payload)
                    )));
                };
                if v == json::Value::Obj(Vec::new()) {
                    // The answer to a ping: every ack before it was read.
                    if let Some(ids) = self.pings.pop_front() {
                        let at = ctx.now();
                        let mut acks = ctx.hist.acks.lock().expect("lock");
                        acks.extend(ids.into_iter().map(|id| Ack {
                            sub: self.sub,
                            id,
                            at,
                            node: conn.node,
                        }));
                    }
                    return Some(Item::Other);
                }
                match v.field("messageType") {
                    Some("notification") => {
                        let id = v.field("version").and_then(|s| s.parse().ok());
                        let payload = match v.field("data") {
                            None => Vec::new(),
                            Some(d) => match base64_any(d) {
                                Some(p) => p,
                                None => return Some(Item::Bad("data that does not decode".into())),
                            },
                        };
                        Item::Msg(Msg {
                            id,
                            route: v.field("channelID").unwrap_or("").to_owned(),
                            payload,
                        })
                    }
                    _ => Item::Bad(format!("unexpected: {}", v.to_json())),
                }
            }
            0x9 => {
                conn.send(&ws_frame(0xA, &payload));
                Item::Other
            }
            0x8 => {
                let text = close_text(&payload);
                // 1001: the server stops (SIGTERM); anything else is worth a look.
                if text.starts_with("1001") || text.starts_with("1000") {
                    Item::End(String::new())
                } else {
                    Item::End(format!("closed with {text}"))
                }
            }
            _ => Item::Other,
        })
    }
    fn read(&mut self, ctx: &Ctx, conn: &mut StreamConn, msg: &Msg, rng: &mut Rng, drain: bool) {
        let Some(id) = msg.id else { return };
        if drain {
            return;
        }
        let roll = if self.ack_all { 0 } else { rng.below(100) };
        if roll < 80 {
            let ack = format!(
                r#"{{"messageType":"ack","updates":[{{"channelID":"{}","version":"{id}","code":100}}]}}"#,
                msg.route
            );
            // Recorded first: an ack that may have gone out counts as sent.
            ctx.hist
                .acks_sent
                .lock()
                .expect("lock")
                .push((self.sub, id));
            if send_text(conn, &ack) {
                self.unpinged.push(id);
                if rng.chance(0.4) && send_text(conn, "{}") {
                    self.pings.push_back(std::mem::take(&mut self.unpinged));
                }
            }
        } else if roll >= 90 {
            send_text(
                conn,
                &format!(r#"{{"messageType":"nack","version":"{id}","code":301}}"#),
            );
        }
    }
}
