//! The OpenPush v0.1 door: devices (clients) with applications; senders `POST /message`
//! with a routing token, post Web Push bodies to `/push/<token>` and Matrix notifications
//! naming that endpoint; each device reads `GET /subscribe` (SSE, its key in
//! `X-Openpush-Key`) and reconnects with `Last-Event-ID:` the highest id it has read (which
//! confirms everything up to it), sometimes with none (everything unconfirmed comes again).
//!
//! Device 0 takes the eight "hot" senders (the known-bad case: a device that reconnects
//! while a group commit is open), devices 1 and 2 two more senders, device 3 is away most
//! of the time and gets short-TTL messages.

use super::history::{Ctx, Via};
use super::json;
use super::net::{base64_any, take_sse, Client, StreamConn};
use super::post::{basic, tiny_body, PostReq};
use super::session::{Item, Msg, Proto};
use super::workload::{ascii_pad, body_len, digest, matrix_body, opaque_body, Door, Tag};
use crate::soak::Rng;

pub struct App {
    pub reg: String,
    pub token: String,
}

pub struct Device {
    pub key: String,
    pub apps: Vec<App>,
}

pub const HOT: usize = 0;
pub const TTL_DEVICE: usize = 3;

pub fn expect(
    c: &mut Client,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
    status: u16,
) -> Result<json::Value, String> {
    let r = c
        .request(method, path, headers, body.as_bytes())
        .map_err(|e| format!("{method} {path}: {e}"))?;
    if r.status != status {
        return Err(format!(
            "{method} {path}: {} {} (expected {status})",
            r.status,
            r.text()
        ));
    }
    json::parse(&r.body).ok_or_else(|| format!("{method} {path}: not JSON: {}", r.text()))
}

/// Devices 0–3 of `user`, with 3, 2, 2 and 1 applications.
pub fn setup(ctx: &Ctx, user: &str, password: &str) -> Result<Vec<Device>, String> {
    let mut c = ctx.client(ctx.seed ^ 0x0C11, std::time::Duration::from_secs(30));
    let auth = basic(user, password);
    let mut devices = Vec::new();
    for (d, apps) in [3, 2, 2, 1].into_iter().enumerate() {
        let v = expect(
            &mut c,
            "POST",
            "/client",
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            &format!("{{\"name\":\"ck-phone-{d}\"}}"),
            201,
        )?;
        let key = v.field("token").ok_or("no client token")?.to_owned();
        let mut list = Vec::new();
        for a in 0..apps {
            let reg = format!("ck-app-{a}");
            let v = expect(
                &mut c,
                "POST",
                "/application",
                &[
                    ("X-Openpush-Key", &key),
                    ("Content-Type", "application/json"),
                ],
                &format!("{{\"registration_id\":\"{reg}\"}}"),
                201,
            )?;
            let token = v
                .field("routing_token")
                .ok_or("no routing token")?
                .to_owned();
            list.push(App { reg, token });
        }
        devices.push(Device { key, apps: list });
    }
    Ok(devices)
}

/// A `POST /message` with `data` `{"ck":<tag>,"pad":…}`.
pub fn message(
    tag: Tag,
    token: &str,
    target: usize,
    app: usize,
    ttl: Option<u64>,
    rng: &mut Rng,
) -> PostReq {
    let pad = ascii_pad(&tag, body_len(rng, 1, 3000));
    let data = format!("{{\"ck\":\"{tag}\",\"pad\":\"{pad}\"}}");
    let mut body = format!("{{\"token\":\"{token}\",\"data\":{data}");
    if let Some(t) = ttl {
        body.push_str(&format!(",\"time_to_live\":{t}"));
    }
    if rng.chance(0.1) {
        body.push_str(",\"priority\":\"high\"");
    }
    body.push('}');
    PostReq {
        via: Via::Message,
        method: "POST",
        path: "/message".into(),
        headers: vec![("Content-Type", "application/json".into())],
        body: body.into_bytes(),
        target: target as u16,
        app: app as u16,
        ttl_secs: ttl,
        digest: digest(data.as_bytes()),
        tiny: false,
    }
}

/// A Web Push body (opaque, 1–4096 bytes; a few too short for a tag) to `path`.
pub fn web_push(
    tag: Tag,
    path: String,
    target: usize,
    app: usize,
    tiny: bool,
    rng: &mut Rng,
) -> PostReq {
    let body = if tiny {
        tiny_body(rng)
    } else {
        let min = tag.to_string().len() + 1;
        opaque_body(&tag, body_len(rng, min, 4096))
    };
    let mut req = PostReq::web_push(path, body, target as u16, app as u16);
    req.tiny = tiny;
    if rng.chance(0.2) {
        let u = ["very-low", "low", "normal", "high"][rng.below(4) as usize];
        req.headers.push(("Urgency", u.into()));
    }
    req
}

/// What a sender posts: to device 0 (`hot`) or to device 1 or 2.
pub fn plan(devices: &[Device], host: &str, hot: bool) -> impl FnMut(&mut Rng, Tag) -> PostReq {
    let tokens: Vec<Vec<String>> = devices
        .iter()
        .map(|d| d.apps.iter().map(|a| a.token.clone()).collect())
        .collect();
    let host = host.to_owned();
    move |rng, tag| {
        let target = if hot { HOT } else { 1 + rng.below(2) as usize };
        let app = rng.below(tokens[target].len() as u64) as usize;
        let token = &tokens[target][app];
        let ttl = match rng.below(100) {
            0..=2 => Some(0),
            3..=5 => Some(1 + rng.below(3)),
            _ => None,
        };
        match rng.below(100) {
            0..=59 => message(tag, token, target, app, ttl, rng),
            60..=84 => {
                // A body too short for a tag is matched by its bytes: not with a short TTL,
                // which may or may not deliver it.
                let tiny = ttl.is_none() && rng.chance(0.03);
                let req = web_push(tag, format!("/push/{token}"), target, app, tiny, rng);
                match ttl {
                    Some(t) => req.ttl(t),
                    None => req,
                }
            }
            _ => {
                let pushkey = format!("http://{host}/push/{token}");
                let body = matrix_body(&tag, &pushkey, body_len(rng, 1, 300));
                PostReq::matrix("/_matrix/push/v1/notify", body, target as u16, app as u16)
            }
        }
    }
}

/// What the TTL driver posts to device 3 while it is away.
pub fn ttl_plan(devices: &[Device]) -> impl FnMut(&mut Rng, Tag, Option<u64>) -> PostReq {
    let token = devices[TTL_DEVICE].apps[0].token.clone();
    move |rng, tag, ttl| {
        if rng.chance(0.5) {
            message(tag, &token, TTL_DEVICE, 0, ttl, rng)
        } else {
            let req = web_push(tag, format!("/push/{token}"), TTL_DEVICE, 0, false, rng);
            match ttl {
                Some(t) => req.ttl(t),
                None => req,
            }
        }
    }
}

/// A device's `GET /subscribe` stream.
pub struct Sub {
    pub sub: u16,
    pub key: String,
    /// The highest id read: what `Last-Event-ID` confirms.
    pub max_seen: u64,
    /// How often a reconnect sends `Last-Event-ID`.
    pub lei: f64,
}

impl Proto for Sub {
    fn door(&self) -> Door {
        Door::OpenPush
    }
    fn sub(&self) -> u16 {
        self.sub
    }
    fn request(&mut self, host: &str, rng: &mut Rng, drain: bool) -> (Vec<u8>, Option<u64>) {
        let lei = (!drain && self.max_seen > 0 && rng.chance(self.lei)).then_some(self.max_seen);
        let line = lei.map_or(String::new(), |n| format!("Last-Event-ID: {n}\r\n"));
        let req = format!(
            "GET /subscribe HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\nX-Openpush-Key: {}\r\n{line}\r\n",
            self.key
        );
        (req.into_bytes(), lei)
    }
    fn take(&mut self, _ctx: &Ctx, conn: &mut StreamConn) -> Option<Item> {
        let ev = take_sse(&mut conn.buf)?;
        if ev.empty {
            return Some(Item::Other);
        }
        Some(event(&ev.data, ev.id.as_deref()))
    }
    fn read(&mut self, _: &Ctx, _: &mut StreamConn, msg: &Msg, _: &mut Rng, _: bool) {
        if let Some(id) = msg.id {
            self.max_seen = self.max_seen.max(id);
        }
    }
}

/// An OpenPush event: `{"data":…,"registration_id":…}`.
pub fn event(data: &[u8], id: Option<&str>) -> Item {
    let Some(v) = json::parse(data) else {
        return Item::Bad(format!(
            "an event is not JSON: {}",
            String::from_utf8_lossy(data)
        ));
    };
    let id = match id.map(str::trim) {
        None => None,
        Some(s) => match s.parse() {
            Ok(n) => Some(n),
            Err(_) => return Item::Bad(format!("an event id is not a number: {s}")),
        },
    };
    let payload = if v.field("encoding") == Some("base64") {
        match v.field("data").and_then(base64_any) {
            Some(p) => p,
            None => return Item::Bad("an event's base64 data does not decode".into()),
        }
    } else {
        match v.get("data") {
            Some(d) => d.to_json().into_bytes(),
            None => return Item::Bad("an event has no data".into()),
        }
    };
    Item::Msg(Msg {
        id,
        route: v.field("registration_id").unwrap_or("").to_owned(),
        payload,
    })
}
