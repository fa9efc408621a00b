//! The run's history: every post with its answer, every connection, every delivery, every
//! confirmation and every fault, with times in milliseconds since the run's start, and the
//! node that each post went to, each connection read from and each fault hit (always 0 on
//! one server). The threads append; the checker reads it all once they have stopped.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::cluster::Picker;
use super::net::Client;
use super::workload::{Door, Tag};

/// How a message went in.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum Via {
    /// OpenPush `POST /message`.
    Message,
    /// ntfy `PUT`/`POST /<topic>`.
    Publish,
    /// ntfy `POST /` with a JSON body.
    PublishJson,
    /// A Web Push endpoint (`/push/<token>`, `/<up topic>`, `/wpush/v1/<token>`, NextPush's).
    WebPush,
    /// The Matrix gateway (`/_matrix/push/v1/notify`, NextPush's `/gateway/matrix`).
    Matrix,
}

impl Via {
    pub fn name(self) -> &'static str {
        match self {
            Via::Message => "POST /message",
            Via::Publish => "ntfy publish",
            Via::PublishJson => "ntfy JSON publish",
            Via::WebPush => "Web Push",
            Via::Matrix => "Matrix gateway",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// 2xx.
    Acked,
    /// A 4xx or 5xx answer (or a Matrix answer that rejected the pushkey).
    Refused(u16),
    /// The request may have reached the server; no answer came.
    Unknown,
    /// It never reached the server.
    NotSent,
}

#[derive(Clone, Debug)]
pub struct Post {
    pub tag: Tag,
    pub via: Via,
    /// The queue it is for: device/user agent/topic index, and app/channel index.
    pub target: u16,
    pub app: u16,
    /// The node it went to (or would have: `NotSent`).
    pub node: u16,
    /// None: the door's long default.
    pub ttl_secs: Option<u64>,
    pub start: u64,
    pub end: u64,
    pub outcome: Outcome,
    /// The server's message id, when the answer says it.
    pub id: Option<u64>,
    /// Digest of the payload as a subscriber must see it.
    pub digest: u64,
    /// A body too short for a tag (1–12 bytes): matched by its bytes only.
    pub tiny: bool,
}

/// One message event read by a subscriber.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub door: Door,
    pub sub: u16,
    pub conn: u32,
    pub at: u64,
    pub id: Option<u64>,
    /// What the event says it is for: registration id, topic, channel or token.
    pub route: String,
    pub tag: Option<Tag>,
    pub digest: u64,
    pub drain: bool,
}

#[derive(Clone, Debug)]
pub struct Conn {
    pub door: Door,
    pub sub: u16,
    pub conn: u32,
    /// The node it was made to.
    pub node: u16,
    /// When the request was sent.
    pub sent: u64,
    /// When the server accepted it (response head; autopush: the hello answer).
    pub ok: Option<u64>,
    pub end: u64,
    /// OpenPush `Last-Event-ID` / ntfy `since=` id sent, if any.
    pub since: Option<u64>,
    pub drain: bool,
    /// The server ended it (or it broke), rather than the subscriber.
    pub server_closed: bool,
}

/// An autopush `ack` the server answered a later ping for: it was read before the ping.
#[derive(Clone, Debug)]
pub struct Ack {
    pub sub: u16,
    pub id: u64,
    pub at: u64,
    /// The node the ack went to.
    pub node: u16,
}

/// A NextPush message that the server wrote to a connection its subscriber had dropped
/// (unread in the client's buffer, or sent after the drop until the server replaced or
/// closed that stream): lost by design.
#[derive(Clone, Debug)]
pub struct InFlight {
    pub sub: u16,
    pub conn: u32,
    pub at: u64,
    pub tag: Option<Tag>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fault {
    Start,
    Kill9,
    Term,
    Hup,
    /// The server exited without being told to.
    Died,
    /// Every connection of the nodes to their Redis dropped (a cluster only).
    RedisDrop,
}

/// A fault (or start), when, and the node it hit; None: every node (a Redis drop).
pub type FaultAt = (u64, Fault, Option<u16>);

#[derive(Default)]
pub struct History {
    pub deliveries: Mutex<Vec<Delivery>>,
    pub conns: Mutex<Vec<Conn>>,
    pub acks: Mutex<Vec<Ack>>,
    /// Every ack sent (door autopush): (sub, id), confirmed or not.
    pub acks_sent: Mutex<Vec<(u16, u64)>>,
    pub in_flight: Mutex<Vec<InFlight>>,
    /// NextPush connections a subscriber dropped, still read until the server ends them.
    pub zombies: Mutex<Vec<std::thread::JoinHandle<()>>>,
    pub faults: Mutex<Vec<FaultAt>>,
    /// Things that are wrong but are none of the counted kinds (text for the report).
    pub anomalies: Mutex<Vec<(&'static str, String)>>,
    /// Connection attempts refused with an HTTP status (per door), for the report.
    pub refused_streams: Mutex<Vec<(Door, u16)>>,
}

/// What every thread shares.
pub struct Ctx {
    /// The nodes (one: the server).
    pub nodes: Vec<SocketAddr>,
    /// What every request names in `Host:` (and so every URL the server makes): node 0's
    /// address, whichever node the request goes to, as a cluster's public name would be.
    pub host: String,
    pub epoch: Instant,
    pub seed: u64,
    /// Senders post while set.
    pub posting: AtomicBool,
    /// Subscribers follow their streams while set, then drain.
    pub live: AtomicBool,
    /// Set once the drain may start (posting has stopped, the server was restarted).
    pub drain: AtomicBool,
    /// Everything stops at this instant at the latest.
    pub hard_deadline: Instant,
    pub hist: History,
    next_conn: AtomicU32,
}

impl Ctx {
    pub fn new(nodes: Vec<SocketAddr>, seed: u64, hard_deadline: Instant) -> Ctx {
        Ctx {
            host: nodes[0].to_string(),
            nodes,
            epoch: Instant::now(),
            seed,
            posting: AtomicBool::new(true),
            live: AtomicBool::new(true),
            drain: AtomicBool::new(false),
            hard_deadline,
            hist: History::default(),
            next_conn: AtomicU32::new(1),
        }
    }

    pub fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// The node choices of a client seeded with `seed`.
    pub fn picker(&self, seed: u64) -> Picker {
        Picker::new(&self.nodes, seed)
    }

    /// A keep-alive client whose connections go to nodes chosen by `ctx.picker(seed)`.
    pub fn client(&self, seed: u64, timeout: Duration) -> Client {
        Client::new(&self.host, self.picker(seed), timeout)
    }

    /// Records a fault (or start) of `node` (None: every node) now.
    pub fn fault(&self, f: Fault, node: Option<usize>) {
        let at = self.now();
        let node = node.map(|n| n as u16);
        self.hist.faults.lock().expect("lock").push((at, f, node));
    }

    pub fn conn_id(&self) -> u32 {
        self.next_conn.fetch_add(1, Relaxed)
    }

    pub fn posting(&self) -> bool {
        self.posting.load(Relaxed) && Instant::now() < self.hard_deadline
    }

    pub fn live(&self) -> bool {
        self.live.load(Relaxed) && Instant::now() < self.hard_deadline
    }

    /// Sleeps up to `d`, in short steps, while `keep` holds.
    pub fn nap(&self, d: Duration, keep: impl Fn(&Ctx) -> bool) {
        let until = Instant::now() + d;
        while Instant::now() < until && keep(self) {
            std::thread::sleep((until - Instant::now()).min(Duration::from_millis(20)));
        }
    }

    /// Waits until the drain may start (or the hard deadline).
    pub fn wait_for_drain(&self) {
        while !self.drain.load(Relaxed) && Instant::now() < self.hard_deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn anomaly(&self, door: Door, text: String) {
        self.note(door.name(), text);
    }

    /// An anomaly of `what` (a door's name, or "server").
    pub fn note(&self, what: &'static str, text: String) {
        let mut a = self.hist.anomalies.lock().expect("lock");
        if a.len() < 1000 {
            a.push((what, text));
        }
    }

    pub fn delivered(&self, d: Delivery) {
        self.hist.deliveries.lock().expect("lock").push(d);
    }

    pub fn conn(&self, c: Conn) {
        self.hist.conns.lock().expect("lock").push(c);
    }
}
