//! The NextPush door: devices and apps made through `/index.php/apps/uppush/` with HTTP
//! Basic; app servers post to `…/push/<token>` (and Matrix notifications, through both
//! gateway paths); each device reads its SSE stream `…/device/<deviceId>`. NextPush has no
//! acknowledgement: a message leaves the queue once it is written to the socket, so what the
//! server writes to a connection the phone has lost is lost by design. A subscriber that
//! drops its connection here does what a phone that lost its network does to the server: it
//! goes silent (no FIN, no reset) and reconnects; the server keeps writing to the old
//! stream until the new one replaces it (it then sends `close`) or a restart closes it. A
//! helper thread reads that old socket to its end without handing anything on and records
//! each message in it as "in flight": exactly the messages lost by design.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::history::{Ctx, InFlight};
use super::json;
use super::net::{base64_any, take_sse, Fill, StreamConn};
use super::openpush::{expect, web_push};
use super::post::{basic, PostReq};
use super::session::{Item, Msg, Proto};
use super::workload::{body_len, matrix_body, Door, Tag};
use crate::soak::Rng;

const BASE: &str = "/index.php/apps/uppush";

pub struct Device {
    pub id: String,
    pub tokens: Vec<String>,
}

pub const TTL_DEVICE: usize = 2;

/// Devices 0–2 with 2, 2 and 1 apps.
pub fn setup(ctx: &Ctx, user: &str, password: &str) -> Result<Vec<Device>, String> {
    let mut c = ctx.client(ctx.seed ^ 0x0D3F, std::time::Duration::from_secs(30));
    let auth = basic(user, password);
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    let mut devices = Vec::new();
    for (d, apps) in [2, 2, 1].into_iter().enumerate() {
        let v = expect(
            &mut c,
            "PUT",
            &format!("{BASE}/device/"),
            &headers,
            &format!("{{\"deviceName\":\"ck-np-{d}\"}}"),
            200,
        )?;
        let id = v.field("deviceId").ok_or("no deviceId")?.to_owned();
        let mut tokens = Vec::new();
        for a in 0..apps {
            let v = expect(
                &mut c,
                "PUT",
                &format!("{BASE}/app/"),
                &headers,
                &format!("{{\"deviceId\":\"{id}\",\"appName\":\"ck.app{a}\"}}"),
                200,
            )?;
            tokens.push(v.field("token").ok_or("no token")?.to_owned());
        }
        devices.push(Device { id, tokens });
    }
    Ok(devices)
}

pub fn plan(devices: &[Device], host: &str) -> impl FnMut(&mut Rng, Tag) -> PostReq {
    let tokens: Vec<Vec<String>> = devices.iter().map(|d| d.tokens.clone()).collect();
    let host = host.to_owned();
    move |rng, tag| {
        let d = rng.below(2) as usize;
        let a = rng.below(tokens[d].len() as u64) as usize;
        let token = &tokens[d][a];
        match rng.below(100) {
            0..=79 => {
                let req = web_push(tag, format!("{BASE}/push/{token}"), d, a, false, rng);
                if rng.chance(0.03) {
                    req.ttl(1 + rng.below(3))
                } else {
                    req
                }
            }
            r => {
                let pushkey = format!("http://{host}{BASE}/push/{token}");
                let body = matrix_body(&tag, &pushkey, body_len(rng, 1, 300));
                let path = if r < 90 {
                    "/_matrix/push/v1/notify".to_owned()
                } else {
                    format!("{BASE}/gateway/matrix")
                };
                PostReq::matrix(&path, body, d as u16, a as u16)
            }
        }
    }
}

pub fn ttl_plan(devices: &[Device]) -> impl FnMut(&mut Rng, Tag, Option<u64>) -> PostReq {
    let token = devices[TTL_DEVICE].tokens[0].clone();
    move |rng, tag, ttl| {
        let req = web_push(
            tag,
            format!("{BASE}/push/{token}"),
            TTL_DEVICE,
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
    pub device: String,
    pub ctx: Arc<Ctx>,
    pub drops: Drop,
}

/// What a NextPush subscriber does to a connection it drops.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Drop {
    /// Goes silent, as a phone that lost its network (the default): the server writes on
    /// until the stream is replaced; what it wrote is "in flight", read by a helper thread.
    Silent,
    /// Closes with a reset: the server's next write fails. The TTL device does this, as it
    /// must be really away while its short-TTL messages wait.
    Reset,
    /// Takes what has arrived (in flight), closes its side with a FIN, and reads what the
    /// server still writes until it closes too, without counting it in flight
    /// (`--nextpush-drop fin`): a server that counts what it writes after the device's FIN
    /// as delivered loses it. (A write that lands between the last read and the FIN is
    /// lost by design but not seen as in flight: rare, so this mode is for diagnosis.)
    Fin,
}

fn message(data: &[u8]) -> Item {
    let Some(v) = json::parse(data) else {
        return Item::Bad(format!("not JSON: {}", String::from_utf8_lossy(data)));
    };
    match v.field("message").and_then(base64_any) {
        Some(payload) => Item::Msg(Msg {
            id: None,
            route: v.field("token").unwrap_or("").to_owned(),
            payload,
        }),
        None => Item::Bad(format!("a message event {}", v.to_json())),
    }
}

impl Proto for Sub {
    fn door(&self) -> Door {
        Door::NextPush
    }
    fn sub(&self) -> u16 {
        self.sub
    }
    fn request(&mut self, host: &str, _: &mut Rng, _: bool) -> (Vec<u8>, Option<u64>) {
        let req = format!(
            "GET {BASE}/device/{} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n",
            self.device
        );
        (req.into_bytes(), None)
    }
    fn take(&mut self, _: &Ctx, conn: &mut StreamConn) -> Option<Item> {
        let ev = take_sse(&mut conn.buf)?;
        Some(match ev.event.as_str() {
            "message" => message(&ev.data),
            "close" => Item::End("a newer stream replaced this one (close event)".into()),
            "deleteApp" => Item::Bad("a deleteApp event".into()),
            _ => Item::Other,
        })
    }
    fn dropped(&mut self, _: &Ctx, conn: u32, mut stream: StreamConn) {
        match self.drops {
            Drop::Silent => {}
            Drop::Reset => {
                let _ = socket2::SockRef::from(&stream.sock).set_linger(Some(Duration::ZERO));
                return;
            }
            Drop::Fin => {
                // What has arrived is in flight (written before the device closed). Then a
                // FIN, and what the server still writes is read to its end (it closes too,
                // or 5 s) but is not in flight: written after the device closed its side,
                // it must stay queued and come again.
                let _ = stream.sock.set_nonblocking(true);
                let mut chunk = vec![0u8; 65536];
                while let Ok(n @ 1..) = std::io::Read::read(&mut stream.sock, &mut chunk) {
                    stream.buf.extend_from_slice(&chunk[..n]);
                }
                let _ = stream.sock.shutdown(std::net::Shutdown::Write);
                let mut found = Vec::new();
                while let Some(ev) = take_sse(&mut stream.buf) {
                    if let ("message", Item::Msg(m)) = (ev.event.as_str(), message(&ev.data)) {
                        found.push(InFlight {
                            sub: self.sub,
                            conn,
                            at: self.ctx.now(),
                            tag: Tag::find(&m.payload),
                        });
                    }
                }
                self.ctx.hist.in_flight.lock().expect("lock").extend(found);
                let _ = stream.sock.set_nonblocking(false);
                let until = Instant::now() + Duration::from_secs(5);
                while Instant::now() < until {
                    if let Fill::Closed = stream.fill() {
                        break;
                    }
                }
                return;
            }
        }
        let (ctx, sub) = (self.ctx.clone(), self.sub);
        let zombie = std::thread::spawn(move || {
            let until = Instant::now() + Duration::from_secs(60);
            let mut found = Vec::new();
            'read: loop {
                while let Some(ev) = take_sse(&mut stream.buf) {
                    match ev.event.as_str() {
                        "message" => {
                            if let Item::Msg(m) = message(&ev.data) {
                                found.push(InFlight {
                                    sub,
                                    conn,
                                    at: ctx.now(),
                                    tag: Tag::find(&m.payload),
                                });
                            }
                        }
                        "close" => break 'read,
                        _ => {}
                    }
                }
                if Instant::now() > until {
                    ctx.anomaly(
                        Door::NextPush,
                        format!("a dropped stream of device {sub} was still open after 60 s"),
                    );
                    break;
                }
                if let Fill::Closed = stream.fill() {
                    break;
                }
            }
            ctx.hist.in_flight.lock().expect("lock").extend(found);
        });
        self.ctx.hist.zombies.lock().expect("lock").push(zombie);
    }
}
