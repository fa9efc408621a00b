//! A subscriber's connections, for every door: connect, read events one at a time, record
//! each, and end the connection as its mode says: after a budget of events or time (then
//! the socket is dropped with whatever is still unread, as a phone losing its network), or
//! once the stream has been quiet for a while (a drain). What differs per door (the request,
//! the framing, a handshake, acknowledgements) is a [`Proto`]. Each connection goes to the
//! node the subscriber's picker chooses; one to a node that is down is `NotSent` (the next
//! one goes to another node), and one that the node's death ends is closed by the server
//! (the next one goes to a node chosen again).

use std::time::{Duration, Instant};

use super::cluster::Picker;
use super::history::{Conn, Ctx, Delivery};
use super::net::{Failed, Fill, StreamConn};
use super::workload::{digest, Budget, Door, Tag};
use crate::soak::Rng;

/// A message event as read.
pub struct Msg {
    pub id: Option<u64>,
    pub route: String,
    pub payload: Vec<u8>,
}

impl Msg {
    /// This message as subscriber `sub` of `door` received it on connection `conn` at `at`.
    fn delivery(&self, door: Door, sub: u16, conn: u32, at: u64, drain: bool) -> Delivery {
        Delivery {
            door,
            sub,
            conn,
            at,
            id: self.id,
            route: self.route.clone(),
            tag: Tag::find(&self.payload),
            digest: digest(&self.payload),
            drain,
        }
    }
}

pub enum Item {
    Msg(Msg),
    /// Anything else the stream sends (open, keepalive, pings, answers).
    Other,
    /// Something that does not parse.
    Bad(String),
    /// The server ended the stream (a close frame or event).
    End(String),
}

pub trait Proto {
    fn door(&self) -> Door;
    fn sub(&self) -> u16;
    /// The next connection's request bytes and the id it resumes after (if any).
    fn request(&mut self, host: &str, rng: &mut Rng, drain: bool) -> (Vec<u8>, Option<u64>);
    fn status_ok(&self, status: u16) -> bool {
        status == 200
    }
    /// After the response head: a handshake, if the door has one.
    fn start(&mut self, _ctx: &Ctx, _conn: &mut StreamConn) -> Result<(), String> {
        Ok(())
    }
    /// Takes one item off the connection's buffer (answering pings on the way).
    fn take(&mut self, ctx: &Ctx, conn: &mut StreamConn) -> Option<Item>;
    /// A message was read and recorded.
    fn read(
        &mut self,
        _ctx: &Ctx,
        _conn: &mut StreamConn,
        _msg: &Msg,
        _rng: &mut Rng,
        _drain: bool,
    ) {
    }
    /// The subscriber drops the connection, whatever it holds unread: by default the socket
    /// is closed (a reset when bytes are unread).
    fn dropped(&mut self, _ctx: &Ctx, _conn: u32, stream: StreamConn) {
        drop(stream);
    }
}

pub enum Mode {
    /// Follow the stream until the budget is spent (or the run moves to its drain).
    Budget(Budget),
    /// Read until nothing came for `quiet`, at most `max`.
    Quiet { quiet: Duration, max: Duration },
}

#[derive(PartialEq, Debug)]
pub enum Ended {
    /// No connection could be made.
    NotSent,
    /// Answered with another status.
    Refused(u16),
    /// Broke before it was accepted.
    Broken,
    /// The connection ran and ended (by the subscriber or the server).
    Ran { messages: u32, server_closed: bool },
}

/// One connection of a subscriber, to the node `nodes` chooses.
pub fn session(
    ctx: &Ctx,
    p: &mut dyn Proto,
    rng: &mut Rng,
    nodes: &mut Picker,
    mode: Mode,
    drain: bool,
) -> Ended {
    let conn_id = ctx.conn_id();
    let (door, sub) = (p.door(), p.sub());
    let node = nodes.pick();
    let (req, since) = p.request(&ctx.host, rng, drain);
    let sent = ctx.now();
    let record = |ok: Option<u64>, server_closed: bool| Conn {
        door,
        sub,
        conn: conn_id,
        node: node.index,
        sent,
        ok,
        end: ctx.now(),
        since,
        drain,
        server_closed,
    };
    let (mut conn, head) = match StreamConn::open(node, &req, Duration::from_secs(15)) {
        Ok(x) => x,
        Err(Failed::NotSent(_)) => {
            nodes.shun(node);
            return Ended::NotSent;
        }
        Err(Failed::Unknown(_)) => {
            nodes.shun(node);
            ctx.conn(record(None, true));
            return Ended::Broken;
        }
    };
    if !p.status_ok(head.status) {
        ctx.hist
            .refused_streams
            .lock()
            .expect("lock")
            .push((p.door(), head.status));
        ctx.conn(record(None, true));
        return Ended::Refused(head.status);
    }
    if let Err(why) = p.start(ctx, &mut conn) {
        if !why.is_empty() {
            ctx.anomaly(p.door(), format!("subscriber {}: {why}", p.sub()));
        }
        ctx.conn(Conn {
            end: ctx.now(),
            ..record(None, true)
        });
        return Ended::Broken;
    }
    let ok = ctx.now();
    let started = Instant::now();
    let mut last_msg = Instant::now();
    let mut messages = 0u32;
    let mut server_closed = false;
    'conn: loop {
        while let Some(item) = p.take(ctx, &mut conn) {
            match item {
                Item::Msg(m) => {
                    ctx.delivered(m.delivery(door, sub, conn_id, ctx.now(), drain));
                    p.read(ctx, &mut conn, &m, rng, drain);
                    messages += 1;
                    last_msg = Instant::now();
                    if let Mode::Budget(b) = &mode {
                        if messages >= b.events {
                            break 'conn;
                        }
                    }
                }
                Item::Other => {}
                Item::Bad(why) => ctx.anomaly(p.door(), format!("subscriber {}: {why}", p.sub())),
                Item::End(why) => {
                    if !why.is_empty() {
                        ctx.anomaly(p.door(), format!("subscriber {}: {why}", p.sub()));
                    }
                    server_closed = true;
                    break 'conn;
                }
            }
        }
        let done = match &mode {
            Mode::Budget(b) => Instant::now() > b.until || !ctx.live(),
            Mode::Quiet { quiet, max } => {
                last_msg.elapsed() > *quiet
                    || started.elapsed() > *max
                    || Instant::now() > ctx.hard_deadline
            }
        };
        if done {
            break;
        }
        match conn.fill() {
            Fill::Data | Fill::Idle => {}
            Fill::Closed => {
                // What arrived before the close is still read.
                while let Some(item) = p.take(ctx, &mut conn) {
                    if let Item::Msg(m) = item {
                        ctx.delivered(m.delivery(door, sub, conn_id, ctx.now(), drain));
                        p.read(ctx, &mut conn, &m, rng, drain);
                        messages += 1;
                    }
                }
                server_closed = true;
                break;
            }
        }
    }
    if server_closed {
        drop(conn);
    } else {
        p.dropped(ctx, conn_id, conn);
    }
    ctx.conn(Conn {
        end: ctx.now(),
        ..record(Some(ok), server_closed)
    });
    Ended::Ran {
        messages,
        server_closed,
    }
}

/// A subscriber's life: connections with random budgets and pauses while the run is live,
/// then its drain. `drain` is what the final drain does (by default one quiet read).
pub fn follow(ctx: &Ctx, p: &mut dyn Proto, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut nodes = ctx.picker(seed);
    while ctx.live() {
        let budget = Budget::draw(&mut rng);
        let ended = session(ctx, p, &mut rng, &mut nodes, Mode::Budget(budget), false);
        let pause = match ended {
            Ended::NotSent | Ended::Broken | Ended::Refused(_) => 50 + rng.below(250),
            // A phone whose connection broke mostly reconnects at once.
            Ended::Ran { .. } if rng.chance(0.5) => 0,
            Ended::Ran { .. } => rng.below(100),
        };
        ctx.nap(Duration::from_millis(pause), Ctx::live);
    }
    ctx.wait_for_drain();
    drain(ctx, p, &mut rng, &mut nodes);
}

/// The final drain: one connection read until quiet; again (to a node chosen again) if it
/// could not connect.
pub fn drain(ctx: &Ctx, p: &mut dyn Proto, rng: &mut Rng, nodes: &mut Picker) {
    for _ in 0..20 {
        let ended = session(
            ctx,
            p,
            rng,
            nodes,
            Mode::Quiet {
                quiet: Duration::from_secs(2),
                max: Duration::from_secs(120),
            },
            true,
        );
        match ended {
            Ended::Ran {
                server_closed: false,
                ..
            } => return,
            _ if Instant::now() > ctx.hard_deadline => return,
            _ => std::thread::sleep(Duration::from_millis(300)),
        }
    }
    ctx.anomaly(
        p.door(),
        format!("subscriber {}: no complete drain", p.sub()),
    );
}

/// A subscriber that is away most of the time, for the TTL check: while away, its sender
/// posts messages with TTLs of 1 and 2 s (and 0 where `zero`) and one with the door's long
/// default; after the longest TTL and a margin it comes back, reads until quiet and goes
/// away again. What expired must not come; the long one must.
pub fn away_and_back(
    ctx: &Ctx,
    p: &mut dyn Proto,
    sender: u16,
    zero: bool,
    mut plan: impl FnMut(&mut Rng, Tag, Option<u64>) -> super::post::PostReq,
) -> Vec<super::history::Post> {
    let door = p.door();
    let seed = ctx.seed ^ (0xA11A + 0x100 * door as u64);
    let mut rng = Rng::new(seed);
    let mut client = ctx.client(seed, Duration::from_secs(20));
    let mut nodes = ctx.picker(!seed);
    let mut posts = Vec::new();
    let mut seq = 0u32;
    while ctx.posting() {
        let ttls: &[Option<u64>] = if zero {
            &[Some(0), Some(1), Some(2), None]
        } else {
            &[Some(1), Some(2), None]
        };
        for &ttl in ttls {
            let tag = Tag { door, sender, seq };
            seq += 1;
            let req = plan(&mut rng, tag, ttl);
            posts.push(super::post::send(ctx, &mut client, tag, req));
        }
        ctx.nap(Duration::from_millis(3500), Ctx::posting);
        if !ctx.posting() {
            break;
        }
        session(
            ctx,
            p,
            &mut rng,
            &mut nodes,
            Mode::Quiet {
                quiet: Duration::from_millis(700),
                max: Duration::from_secs(5),
            },
            false,
        );
        ctx.nap(Duration::from_millis(200 + rng.below(800)), Ctx::posting);
    }
    ctx.wait_for_drain();
    drain(ctx, p, &mut rng, &mut nodes);
    posts
}
