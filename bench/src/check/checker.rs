//! The checks, over the whole history once everything has stopped.
//!
//! Each delivery is mapped to its post by the tag in its payload. A body too short for a
//! tag is only matched, by its bytes, to a short post for that subscriber and route (and
//! counted, not checked further: several may share the bytes). Then, per door:
//! - **lost**: an acknowledged (2xx) message that one of its subscribers never got; a
//!   message with a short TTL may expire instead and is not counted; on NextPush, one that
//!   was in the socket unread when its subscriber dropped it is "in flight, by design". On
//!   OpenPush and autopush a message must also come again in the final drain unless the
//!   subscriber confirmed it (a `Last-Event-ID` at or above its id, an ack): delivered once
//!   and then gone without a confirmation is lost too.
//! - **misrouted** (to a subscriber or app/topic/channel not its own), **never posted** (a
//!   tag that no post has, or one whose post never reached the server), **corrupt** (bytes
//!   that differ from the post's, or ids that differ between deliveries);
//! - **refused but delivered**: a post answered 4xx/5xx that a subscriber got;
//! - **order**: within one connection ids strictly increase (and, for ntfy, exceed `since`);
//! - **expired but delivered**: a connection opened more than 1 s after a message's TTL
//!   ended got it;
//! - **resent after confirm**: a connection opened after the server accepted a confirmation
//!   (OpenPush `Last-Event-ID`; an autopush ack followed by an answered ping) got a message
//!   it confirmed, with no `kill -9` between the confirmation and that connection that could
//!   have undone it (a clean stop commits confirmations). In a cluster, a confirmation
//!   binds the node that accepted it at once, and the other nodes only from that node's
//!   next clean stop (until its commit, which `confirm_delay_secs` may put off, it is in that
//!   node's memory alone); only a stop of that node undoes it, and a Redis drop counts as a
//!   kill of every node (a confirmation whose write was in flight may be gone).
//!
//! Duplicates are counted, never failed (delivery is at least once). In a cluster, examples
//! name the node a post went to and the node a connection read from.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use super::history::{Ack, Conn, Delivery, Fault, FaultAt, InFlight, Outcome, Post};
use super::workload::{Door, PhaseCfg, Tag};

/// Where each door's messages go.
#[derive(Default)]
pub struct Topology {
    /// What a delivery of target t, app a must say it is for: `routes[door][t][a]`.
    pub routes: HashMap<Door, Vec<Vec<String>>>,
    /// The subscribers of target t: `recipients[door][t]`.
    pub recipients: HashMap<Door, Vec<Vec<u16>>>,
}

pub struct PhaseRec {
    pub start: u64,
    pub cfg: PhaseCfg,
}

pub struct Input<'a> {
    pub seed: u64,
    pub secs: f64,
    /// How many nodes (1: one server; node numbers are then left out of the examples).
    pub nodes: usize,
    pub doors: &'a [Door],
    pub posts: &'a [Post],
    pub deliveries: &'a [Delivery],
    pub conns: &'a [Conn],
    pub acks: &'a [Ack],
    pub acks_sent: &'a [(u16, u64)],
    pub in_flight: &'a [InFlight],
    pub faults: &'a [FaultAt],
    pub anomalies: &'a [(&'static str, String)],
    pub refused_streams: &'a [(Door, u16)],
    pub phases: &'a [PhaseRec],
    pub topo: &'a Topology,
    /// ntfy: the ids a `since=all` poll still found, per subscriber (asked only when lost).
    pub ntfy_stored: &'a HashMap<u16, HashSet<u64>>,
}

#[derive(Default)]
struct Stats {
    posts: usize,
    acked: usize,
    refused: usize,
    unknown: usize,
    not_sent: usize,
    pairs: usize,
    delivered: usize,
    lost: usize,
    dup: usize,
    misrouted: usize,
    phantom: usize,
    corrupt: usize,
    refused_delivered: usize,
    unknown_delivered: usize,
    order: usize,
    expired: usize,
    resent: usize,
    in_flight: usize,
    ttl_undelivered: usize,
    /// Deliveries of bodies too short for a tag, matched to a short post by their bytes.
    short_bodies: usize,
    deliveries: usize,
    refused_by: std::collections::BTreeMap<u16, usize>,
    /// Confirmations the resent check holds the server to (OpenPush Last-Event-IDs
    /// accepted, autopush acks whose ping was answered).
    confirmations: usize,
    examples: HashMap<&'static str, Vec<String>>,
}

impl Stats {
    fn example(&mut self, kind: &'static str, text: String) {
        let v = self.examples.entry(kind).or_default();
        if v.len() < EXAMPLES {
            v.push(text);
        }
    }

    fn wants(&self, kind: &'static str) -> bool {
        self.examples.get(kind).map_or(0, Vec::len) < EXAMPLES
    }
}

/// An OpenPush confirmation.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Confirmation {
    /// When the node accepted it.
    at: u64,
    id: u64,
    /// The connection that carried it, and its node.
    conn: u32,
    node: u16,
    /// When a kill -9 undid it (one that came before a clean stop of its node).
    void: Option<u64>,
    /// When the other nodes must know it: its node's next stop, if a clean one.
    shared: Option<u64>,
}

impl Confirmation {
    /// Whether a connection to `node` opened at `sent` is bound by it.
    fn binds(&self, node: u16, sent: u64) -> bool {
        let known = node == self.node || self.shared.is_some_and(|t| t < sent);
        self.at < sent && known && self.void.is_none_or(|t| t > sent)
    }
}

/// A delivery as the evidence for a lost message shows it: connection, id, drain.
type Seen = (u32, Option<u64>, bool);

/// Examples shown per kind of failure.
const EXAMPLES: usize = 12;

fn s(ms: u64) -> String {
    format!("{:.3}s", ms as f64 / 1000.0)
}

/// The result: lines to print and the counts of checks.
pub struct Report {
    pub text: String,
    pub passed: usize,
    pub failed: usize,
}

/// The subscribers a lost-pair computation considers: a post's recipients.
fn recipients(topo: &Topology, door: Door, target: u16) -> &[u16] {
    topo.recipients
        .get(&door)
        .and_then(|r| r.get(target as usize))
        .map_or(&[], |v| v.as_slice())
}

fn route(topo: &Topology, door: Door, target: u16, app: u16) -> Option<&str> {
    topo.routes
        .get(&door)?
        .get(target as usize)?
        .get(app as usize)
        .map(String::as_str)
}

/// Subscribers that miss acknowledged ntfy messages (those without a short TTL), each with
/// the lowest id it misses (None when one of them has no known id): what the caller asks the
/// store about (`since=`) before the checks run.
pub fn ntfy_missing(
    posts: &[Post],
    deliveries: &[Delivery],
    topo: &Topology,
) -> HashMap<u16, Option<u64>> {
    let got: HashSet<(Tag, u16)> = deliveries
        .iter()
        .filter(|d| d.door == Door::Ntfy)
        .filter_map(|d| d.tag.map(|t| (t, d.sub)))
        .collect();
    let mut subs: HashMap<u16, Option<u64>> = HashMap::new();
    for p in posts.iter().filter(|p| {
        p.tag.door == Door::Ntfy && p.outcome == Outcome::Acked && !p.tiny && p.ttl_secs.is_none()
    }) {
        for &r in recipients(topo, Door::Ntfy, p.target) {
            if !got.contains(&(p.tag, r)) {
                let lowest = subs.entry(r).or_insert(p.id);
                *lowest = match (*lowest, p.id) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    _ => None,
                };
            }
        }
    }
    subs
}

pub fn check(inp: &Input) -> Report {
    let mut out = String::new();
    // " on node k" in a cluster; nothing on one server.
    let on = |node: u16| -> String {
        if inp.nodes > 1 {
            format!(" on node {node}")
        } else {
            String::new()
        }
    };
    let context = |ms: u64| -> String {
        let phase = inp
            .phases
            .iter()
            .enumerate()
            .rev()
            .find(|(_, p)| p.start <= ms);
        let mut text = match phase {
            Some((i, p)) => format!("phase {i} [{}]", p.cfg),
            None => "before the first phase".into(),
        };
        if let Some((t, f, node)) = inp
            .faults
            .iter()
            .rev()
            .find(|(t, f, _)| *t <= ms && *f != Fault::Start)
        {
            let _ = write!(
                text,
                ", {} after {f:?}{}",
                s(ms - t),
                node.map_or(String::new(), on)
            );
        }
        text
    };

    // ---- indexes
    let by_tag: HashMap<Tag, usize> = inp
        .posts
        .iter()
        .enumerate()
        .map(|(i, p)| (p.tag, i))
        .collect();
    let conns: HashMap<u32, &Conn> = inp.conns.iter().map(|c| (c.conn, c)).collect();
    // Bodies too short for a tag, by door and digest.
    let mut tiny: HashMap<(Door, u64), Vec<usize>> = HashMap::new();
    for (i, p) in inp.posts.iter().enumerate().filter(|(_, p)| p.tiny) {
        tiny.entry((p.tag.door, p.digest)).or_default().push(i);
    }
    let mut stats: HashMap<Door, Stats> =
        inp.doors.iter().map(|&d| (d, Stats::default())).collect();
    for p in inp.posts {
        let st = stats.entry(p.tag.door).or_default();
        st.posts += 1;
        match p.outcome {
            Outcome::Acked => st.acked += 1,
            Outcome::Refused(status) => {
                st.refused += 1;
                *st.refused_by.entry(status).or_default() += 1;
            }
            Outcome::Unknown => st.unknown += 1,
            Outcome::NotSent => st.not_sent += 1,
        }
    }
    // Kills (and deaths, and Redis drops: of every node) and clean stops, in time order.
    let stops: Vec<(u64, bool, Option<u16>)> = inp
        .faults
        .iter()
        .filter_map(|&(t, f, node)| match f {
            Fault::Kill9 | Fault::Died | Fault::RedisDrop => Some((t, true, node)),
            Fault::Term => Some((t, false, node)),
            _ => None,
        })
        .collect();
    // A confirmation that node `node` accepted at t is undone from the first stop of that
    // node after it, if that is a kill, and committed (for every node) by it if that is a
    // clean one. A stop is recorded just before the signal is sent: one up to 100 ms before
    // t may still have come after the node accepted the confirmation.
    let first_stop = |t: u64, node: u16| -> Option<(u64, bool)> {
        stops
            .iter()
            .filter(|(_, _, n)| n.is_none_or(|n| n == node))
            .find(|(at, _, _)| *at + 100 > t)
            .map(|&(at, kill, _)| (at, kill))
    };
    let void_at = |t: u64, node: u16| first_stop(t, node).and_then(|(at, kill)| kill.then_some(at));
    let shared_at = |t: u64, node: u16| {
        first_stop(t, node).and_then(|(at, kill)| (!kill && at > t).then_some(at))
    };

    // ---- deliveries
    let mut count: HashMap<(usize, u16), u32> = HashMap::new();
    let mut drained: HashSet<(usize, u16)> = HashSet::new();
    let mut first_id: HashMap<usize, u64> = HashMap::new();
    let mut last_in_conn: HashMap<u32, u64> = HashMap::new();
    // Per subscriber, its deliveries as (connection, id, drain), the id from the event or
    // (NextPush) from the post's answer: to show what a stream sent around a lost message.
    let mut by_sub: HashMap<(Door, u16), Vec<Seen>> = HashMap::new();
    for d in inp.deliveries {
        let st = stats.entry(d.door).or_default();
        st.deliveries += 1;
        let conn = conns.get(&d.conn);
        let read_on = conn.map_or(String::new(), |c| on(c.node));
        // Order within the connection.
        if let Some(id) = d.id {
            let since = conn.and_then(|c| c.since).filter(|_| d.door == Door::Ntfy);
            let prev = last_in_conn.insert(d.conn, id);
            let bad = prev.is_some_and(|p| id <= p) || since.is_some_and(|s| id <= s);
            if bad {
                st.order += 1;
                st.example(
                    "order",
                    format!(
                        "subscriber {} connection {}{read_on} (since {:?}): id {id} after {prev:?} at {}",
                        d.sub,
                        d.conn,
                        since,
                        s(d.at)
                    ),
                );
            }
        }
        // Which post: by its tag. A body too short for a tag (Web Push answers do not show
        // ids) is only matched to a short post of the same bytes for this subscriber and
        // route; several may share the bytes, so it is counted and checked no further.
        let Some(tag) = d.tag else {
            let candidate = tiny.get(&(d.door, d.digest)).is_some_and(|list| {
                list.iter().any(|&i| {
                    let p = &inp.posts[i];
                    recipients(inp.topo, p.tag.door, p.target).contains(&d.sub)
                        && route(inp.topo, p.tag.door, p.target, p.app) == Some(d.route.as_str())
                        && matches!(p.outcome, Outcome::Acked | Outcome::Unknown)
                })
            });
            if candidate {
                st.short_bodies += 1;
            } else {
                st.phantom += 1;
                st.example(
                    "never-posted",
                    format!(
                        "subscriber {}{read_on} got a body too short for a tag (id {:?}, route {:?}) at {} that no short post for it has",
                        d.sub,
                        d.id,
                        d.route,
                        s(d.at)
                    ),
                );
            }
            continue;
        };
        let Some(pi) = by_tag.get(&tag).copied() else {
            st.phantom += 1;
            st.example(
                "never-posted",
                format!(
                    "subscriber {}{read_on} got {tag} (id {:?}, route {:?}) at {} that no post has",
                    d.sub,
                    d.id,
                    d.route,
                    s(d.at)
                ),
            );
            continue;
        };
        let p = &inp.posts[pi];
        let mine = recipients(inp.topo, p.tag.door, p.target).contains(&d.sub)
            && p.tag.door == d.door
            && route(inp.topo, p.tag.door, p.target, p.app) == Some(d.route.as_str());
        if !mine {
            st.misrouted += 1;
            st.example(
                "misrouted",
                format!(
                    "{} (for target {} app {}, route {:?}, posted{}) reached subscriber {} of {}{read_on} as {:?} at {}",
                    p.tag,
                    p.target,
                    p.app,
                    route(inp.topo, p.tag.door, p.target, p.app),
                    on(p.node),
                    d.sub,
                    d.door.name(),
                    d.route,
                    s(d.at)
                ),
            );
            continue;
        }
        if d.digest != p.digest {
            st.corrupt += 1;
            st.example(
                "corrupt",
                format!(
                    "{} (posted{}) reached subscriber {}{read_on} with other bytes at {}",
                    p.tag,
                    on(p.node),
                    d.sub,
                    s(d.at)
                ),
            );
        }
        if let Some(id) = d.id {
            let known = p.id.or_else(|| first_id.get(&pi).copied());
            match known {
                Some(k) if k != id => {
                    st.corrupt += 1;
                    st.example(
                        "corrupt",
                        format!(
                            "{} (posted{}) has id {k} but came as id {id}{read_on} at {}",
                            p.tag,
                            on(p.node),
                            s(d.at)
                        ),
                    );
                }
                Some(_) => {}
                None => {
                    first_id.insert(pi, id);
                }
            }
        }
        match p.outcome {
            Outcome::Refused(status) => {
                st.refused_delivered += 1;
                st.example(
                    "refused-but-delivered",
                    format!(
                        "{} ({} answered {status}{} at {}) reached subscriber {}{read_on} at {}",
                        p.tag,
                        p.via.name(),
                        on(p.node),
                        s(p.end),
                        d.sub,
                        s(d.at)
                    ),
                );
            }
            Outcome::NotSent => {
                st.phantom += 1;
                st.example(
                    "never-posted",
                    format!(
                        "{} was never sent but reached subscriber {}{read_on}",
                        p.tag, d.sub
                    ),
                );
            }
            Outcome::Unknown => st.unknown_delivered += 1,
            Outcome::Acked => {}
        }
        if let (Some(ttl), Some(c)) = (p.ttl_secs, conn) {
            let expiry = p.end + ttl * 1000;
            if c.sent > expiry + 1000 {
                st.expired += 1;
                st.example(
                    "expired-but-delivered",
                    format!(
                        "{} (TTL {ttl} s, posted {}–{}{}) came on connection {}{read_on} opened at {}, {} after it expired",
                        p.tag,
                        s(p.start),
                        s(p.end),
                        on(p.node),
                        d.conn,
                        s(c.sent),
                        s(c.sent - expiry)
                    ),
                );
            }
        }
        by_sub
            .entry((d.door, d.sub))
            .or_default()
            .push((d.conn, d.id.or(p.id), d.drain));
        *count.entry((pi, d.sub)).or_default() += 1;
        if d.drain {
            drained.insert((pi, d.sub));
        }
    }

    // ---- resent after a confirmation
    // OpenPush: confirmations per subscriber, in time order.
    let mut confirms: HashMap<u16, Vec<Confirmation>> = HashMap::new();
    let mut max_lei: HashMap<u16, u64> = HashMap::new();
    for c in inp.conns.iter().filter(|c| c.door == Door::OpenPush) {
        if let Some(n) = c.since {
            let m = max_lei.entry(c.sub).or_default();
            *m = (*m).max(n);
            if let Some(t) = c.ok {
                confirms.entry(c.sub).or_default().push(Confirmation {
                    at: t,
                    id: n,
                    conn: c.conn,
                    node: c.node,
                    void: void_at(t, c.node),
                    shared: shared_at(t, c.node),
                });
            }
        }
    }
    for v in confirms.values_mut() {
        v.sort_unstable();
    }
    stats.entry(Door::OpenPush).or_default().confirmations = confirms.values().map(Vec::len).sum();
    // Per connection: the highest id it is bound by, and the confirmation that set it
    // (None: its own Last-Event-ID).
    let mut level: HashMap<u32, (u64, Option<Confirmation>)> = HashMap::new();
    for c in inp.conns.iter().filter(|c| c.door == Door::OpenPush) {
        let own = if c.ok.is_some() {
            c.since.unwrap_or(0)
        } else {
            0
        };
        let mut n = (own, None);
        for k in confirms.get(&c.sub).map_or(&[][..], |v| v.as_slice()) {
            if k.binds(c.node, c.sent) && k.id > n.0 {
                n = (k.id, Some(*k));
            }
        }
        level.insert(c.conn, n);
    }
    // autopush: the first answered ack of each (subscriber, id), and its node.
    let mut acked: HashMap<(u16, u64), (u64, u16)> = HashMap::new();
    for a in inp.acks {
        let e = acked.entry((a.sub, a.id)).or_insert((a.at, a.node));
        *e = (*e).min((a.at, a.node));
    }
    stats.entry(Door::Autopush).or_default().confirmations = acked.len();
    let acks_sent: HashSet<(u16, u64)> = inp.acks_sent.iter().copied().collect();
    for d in inp.deliveries {
        let (Some(id), Some(c)) = (d.id, conns.get(&d.conn)) else {
            continue;
        };
        let bad = match d.door {
            Door::OpenPush => level
                .get(&d.conn)
                .filter(|(n, _)| id <= *n)
                .map(|&(n, by)| {
                    format!(
                        "subscriber {} got id {id} on connection {}{} (opened {}, Last-Event-ID {:?}) after confirming up to {n}{}",
                        d.sub,
                        d.conn,
                        on(c.node),
                        s(c.sent),
                        c.since,
                        by.map_or(String::new(), |k| format!(
                            " on connection {}{} at {}",
                            k.conn,
                            on(k.node),
                            s(k.at)
                        ))
                    )
                }),
            Door::Autopush => acked.get(&(d.sub, id)).and_then(|&(t, node)| {
                let undone = void_at(t, node).is_some_and(|k| k < c.sent);
                let known = node == c.node || shared_at(t, node).is_some_and(|k| k < c.sent);
                (t < c.sent && known && !undone).then(|| {
                    format!(
                        "user agent {} got id {id} on connection {}{} (opened {}) after its ack was read at {}{}",
                        d.sub,
                        d.conn,
                        on(c.node),
                        s(c.sent),
                        s(t),
                        on(node)
                    )
                })
            }),
            _ => None,
        };
        if let Some(text) = bad {
            let st = stats.entry(d.door).or_default();
            st.resent += 1;
            st.example(
                "resent-after-confirm",
                format!("{text} ({})", context(c.sent)),
            );
        }
    }

    // ---- lost
    let in_flight: HashSet<(Tag, u16)> = inp
        .in_flight
        .iter()
        .filter_map(|f| f.tag.map(|t| (t, f.sub)))
        .collect();
    for (pi, p) in inp.posts.iter().enumerate() {
        if p.outcome != Outcome::Acked {
            continue;
        }
        // Short bodies are matched by their bytes only (above): not checked here.
        if p.tiny {
            continue;
        }
        let door = p.tag.door;
        let st = stats.entry(door).or_default();
        for &r in recipients(inp.topo, door, p.target) {
            st.pairs += 1;
            let n = count.get(&(pi, r)).copied().unwrap_or(0);
            if n > 0 {
                st.delivered += 1;
                st.dup += (n - 1) as usize;
            }
            if p.ttl_secs.is_some() {
                if n == 0 {
                    st.ttl_undelivered += 1;
                }
                continue;
            }
            let id = p.id.or_else(|| first_id.get(&pi).copied());
            let why = if n == 0 {
                if door == Door::NextPush && in_flight.contains(&(p.tag, r)) {
                    st.in_flight += 1;
                    continue;
                }
                "never delivered".to_owned()
            } else if drained.contains(&(pi, r)) {
                continue;
            } else {
                match (door, id) {
                    (Door::OpenPush, Some(id)) if id > max_lei.get(&r).copied().unwrap_or(0) => {
                        "delivered, never confirmed, and not delivered again in the final drain"
                            .to_owned()
                    }
                    (Door::Autopush, Some(id)) if !acks_sent.contains(&(r, id)) => {
                        "delivered, never acked, and not delivered again in the final drain"
                            .to_owned()
                    }
                    _ => continue,
                }
            };
            st.lost += 1;
            if !st.wants("lost") {
                continue;
            }
            let mut text = format!(
                "{} id {} via {}{} to target {} app {} (subscriber {r}), posted {}–{} in {}: {why}",
                p.tag,
                id.map_or("?".into(), |i| i.to_string()),
                p.via.name(),
                on(p.node),
                p.target,
                p.app,
                s(p.start),
                s(p.end),
                context(p.start)
            );
            if let (Some(id), Some(list)) = (id, by_sub.get(&(door, r))) {
                // A connection that sent a later id but not this one: the stream skipped it.
                if let Some(&(cid, _, _)) = list.iter().find(|(cid, x, drain)| {
                    x.is_some_and(|x| x > id)
                        && !drain
                        && conns.get(cid).is_some_and(|c| c.sent <= p.end)
                }) {
                    let c = conns[&cid];
                    let ids: Vec<String> = list
                        .iter()
                        .filter(|e| e.0 == cid)
                        .filter_map(|e| e.1)
                        .filter(|&x| x + 5 >= id && x <= id + 5)
                        .map(|x| x.to_string())
                        .collect();
                    let _ = write!(
                        text,
                        "; connection {cid}{} (opened {}, since {:?}) sent ids [{}] around it",
                        on(c.node),
                        s(c.sent),
                        c.since,
                        ids.join(", ")
                    );
                }
                if door == Door::OpenPush {
                    if let Some(k) = confirms.get(&r).and_then(|v| v.iter().find(|k| k.id >= id)) {
                        let _ = write!(
                            text,
                            "; confirmed by Last-Event-ID {} on connection {}{} at {}",
                            k.id,
                            k.conn,
                            on(k.node),
                            s(k.at)
                        );
                    }
                }
                if door == Door::Ntfy {
                    if let Some(ids) = inp.ntfy_stored.get(&r) {
                        let _ = write!(
                            text,
                            "; since=all {}",
                            if ids.contains(&id) {
                                "still has it (the stream skipped it)"
                            } else {
                                "does not have it either"
                            }
                        );
                    }
                }
            }
            st.example("lost", text);
        }
    }

    // ---- report
    let (mut passed, mut failed) = (0, 0);
    let seed = inp.seed;
    let mut verdicts = String::new();
    let mut verdict = |ok: bool, name: String, examples: &[String]| {
        if ok {
            passed += 1;
            let _ = writeln!(verdicts, "PASS {name}");
        } else {
            failed += 1;
            let _ = writeln!(verdicts, "FAIL {name} [seed {seed}]");
            for e in examples {
                let _ = writeln!(verdicts, "     {e}");
            }
        }
    };
    let _ = writeln!(out, "== per door (seed {seed}, {:.0} s of load)", inp.secs);
    for &door in inp.doors {
        let st = stats.entry(door).or_default();
        let ordered = matches!(door, Door::OpenPush | Door::Ntfy);
        let confirms = matches!(door, Door::OpenPush | Door::Autopush);
        let _ = writeln!(
            out,
            "{:<9} acknowledged {} (refused {}{}, unknown {}, not sent {}), pairs {}, delivered {}, lost {}, duplicated {}, misrouted {}, never-posted {}, corrupt {}, refused-but-delivered {}, order-violations {}{}, expired-but-delivered {}, resent-after-confirm {}, in-flight-by-design {}, unknown-delivered {}, short-TTL-undelivered {}, short-bodies-delivered {}, events {}",
            door.name(),
            st.acked,
            st.refused,
            if st.refused_by.is_empty() {
                String::new()
            } else {
                let v: Vec<String> = st.refused_by.iter().map(|(k, n)| format!("{k}: {n}")).collect();
                format!(" [{}]", v.join(", "))
            },
            st.unknown,
            st.not_sent,
            st.pairs,
            st.delivered,
            st.lost,
            st.dup,
            st.misrouted,
            st.phantom,
            st.corrupt,
            st.refused_delivered,
            st.order,
            if ordered { "" } else { " (not promised)" },
            st.expired,
            if confirms {
                format!("{} of {} confirmations", st.resent, st.confirmations)
            } else {
                "-".into()
            },
            if door == Door::NextPush { st.in_flight.to_string() } else { "-".into() },
            st.unknown_delivered,
            st.ttl_undelivered,
            st.short_bodies,
            st.deliveries,
        );
        let ex = |k: &str| st.examples.get(k).cloned().unwrap_or_default();
        let name = door.name();
        verdict(
            st.acked > 0 && st.delivered > 0,
            format!(
                "{name}: messages were acknowledged and delivered ({} / {})",
                st.acked, st.delivered
            ),
            &[],
        );
        verdict(
            st.lost == 0,
            format!("{name}: no acknowledged message lost ({} lost)", st.lost),
            &ex("lost"),
        );
        verdict(
            st.misrouted == 0,
            format!("{name}: nothing misrouted ({})", st.misrouted),
            &ex("misrouted"),
        );
        let mut integrity = ex("never-posted");
        integrity.extend(ex("corrupt"));
        verdict(
            st.phantom == 0 && st.corrupt == 0,
            format!(
                "{name}: nothing delivered that was never posted ({}) or changed ({})",
                st.phantom, st.corrupt
            ),
            &integrity,
        );
        verdict(
            st.refused_delivered == 0,
            format!(
                "{name}: nothing refused was delivered ({})",
                st.refused_delivered
            ),
            &ex("refused-but-delivered"),
        );
        if ordered {
            verdict(
                st.order == 0,
                format!(
                    "{name}: ids strictly increase within a connection ({} violations)",
                    st.order
                ),
                &ex("order"),
            );
        }
        verdict(
            st.expired == 0,
            format!("{name}: nothing delivered after its TTL ({})", st.expired),
            &ex("expired-but-delivered"),
        );
        if confirms {
            verdict(
                st.resent == 0,
                format!("{name}: nothing confirmed is sent again ({})", st.resent),
                &ex("resent-after-confirm"),
            );
        }
    }
    let died: Vec<String> = inp
        .faults
        .iter()
        .filter(|(_, f, _)| *f == Fault::Died)
        .map(|&(t, _, node)| match node {
            Some(n) if inp.nodes > 1 => format!("node {n} exited by itself at {}", s(t)),
            _ => format!("the server exited by itself at {}", s(t)),
        })
        .collect();
    verdict(
        died.is_empty(),
        format!("server: never exited by itself ({} times)", died.len()),
        &died,
    );
    if !inp.anomalies.is_empty() {
        let _ = writeln!(out, "== anomalies ({}; first 20)", inp.anomalies.len());
        for (what, a) in inp.anomalies.iter().take(20) {
            let _ = writeln!(out, "   {what}: {a}");
        }
    }
    if !inp.refused_streams.is_empty() {
        let mut by: HashMap<(Door, u16), usize> = HashMap::new();
        for &k in inp.refused_streams {
            *by.entry(k).or_default() += 1;
        }
        let mut v: Vec<_> = by.into_iter().collect();
        v.sort();
        let list: Vec<String> = v
            .iter()
            .map(|((d, st), n)| format!("{} {st}: {n}", d.name()))
            .collect();
        let _ = writeln!(out, "== streams refused: {}", list.join(", "));
    }
    out.push_str(&verdicts);
    Report {
        text: out,
        passed,
        failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::history::Via;

    fn topo() -> Topology {
        let mut t = Topology::default();
        t.routes
            .insert(Door::OpenPush, vec![vec!["a0".into(), "a1".into()]]);
        t.recipients.insert(Door::OpenPush, vec![vec![0]]);
        t.routes.insert(Door::NextPush, vec![vec!["tok".into()]]);
        t.recipients.insert(Door::NextPush, vec![vec![0]]);
        t
    }

    fn post(door: Door, seq: u32, id: u64, outcome: Outcome) -> Post {
        Post {
            tag: Tag {
                door,
                sender: 0,
                seq,
            },
            via: Via::Message,
            target: 0,
            app: 0,
            node: 0,
            ttl_secs: None,
            start: 100 * seq as u64,
            end: 100 * seq as u64 + 10,
            outcome,
            id: Some(id),
            digest: 7,
            tiny: false,
        }
    }

    fn delivery(door: Door, conn: u32, seq: u32, id: u64, at: u64) -> Delivery {
        Delivery {
            door,
            sub: 0,
            conn,
            at,
            id: Some(id),
            route: if door == Door::NextPush { "tok" } else { "a0" }.into(),
            tag: Some(Tag {
                door,
                sender: 0,
                seq,
            }),
            digest: 7,
            drain: false,
        }
    }

    fn conn(door: Door, conn: u32, sent: u64, since: Option<u64>, drain: bool) -> Conn {
        Conn {
            door,
            sub: 0,
            conn,
            node: 0,
            sent,
            ok: Some(sent + 1),
            end: sent + 50,
            since,
            drain,
            server_closed: false,
        }
    }

    fn run(posts: &[Post], deliveries: &[Delivery], conns: &[Conn], faults: &[FaultAt]) -> Report {
        run_with(posts, deliveries, conns, faults, &[])
    }

    fn run_with(
        posts: &[Post],
        deliveries: &[Delivery],
        conns: &[Conn],
        faults: &[FaultAt],
        in_flight: &[InFlight],
    ) -> Report {
        let topo = topo();
        let stored = HashMap::new();
        check(&Input {
            seed: 1,
            secs: 1.0,
            nodes: 1,
            doors: &[Door::OpenPush],
            posts,
            deliveries,
            conns,
            acks: &[],
            acks_sent: &[],
            in_flight,
            faults,
            anomalies: &[],
            refused_streams: &[],
            phases: &[],
            topo: &topo,
            ntfy_stored: &stored,
        })
    }

    const O: Door = Door::OpenPush;

    #[test]
    fn a_clean_history_passes() {
        let posts = [
            post(O, 1, 11, Outcome::Acked),
            post(O, 2, 12, Outcome::Acked),
        ];
        let conns = [conn(O, 1, 0, None, false), conn(O, 2, 500, None, true)];
        let d = [
            delivery(O, 1, 1, 11, 150),
            delivery(O, 1, 2, 12, 250),
            // The drain gets both again (nothing was confirmed): duplicates, no failure.
            Delivery {
                drain: true,
                ..delivery(O, 2, 1, 11, 600)
            },
            Delivery {
                drain: true,
                ..delivery(O, 2, 2, 12, 600)
            },
        ];
        let r = run(&posts, &d, &conns, &[]);
        assert_eq!(r.failed, 0, "{}", r.text);
        assert!(r.text.contains("duplicated 2,"), "{}", r.text);
    }

    #[test]
    fn a_skipped_and_confirmed_message_is_lost() {
        let posts = [
            post(O, 1, 11, Outcome::Acked),
            post(O, 2, 12, Outcome::Acked),
            post(O, 3, 13, Outcome::Acked),
        ];
        // Connection 1 skips id 12; connection 2 confirms 13 and so 12.
        let conns = [
            conn(O, 1, 0, None, false),
            conn(O, 2, 500, Some(13), false),
            conn(O, 3, 900, None, true),
        ];
        let d = [delivery(O, 1, 1, 11, 150), delivery(O, 1, 3, 13, 350)];
        let r = run(&posts, &d, &conns, &[]);
        assert_eq!(r.failed, 1, "{}", r.text);
        assert!(r.text.contains("lost 1,"), "{}", r.text);
        assert!(r.text.contains("ck~O0~2~ id 12"), "{}", r.text);
        assert!(
            r.text.contains("confirmed by Last-Event-ID 13"),
            "{}",
            r.text
        );
    }

    #[test]
    fn delivered_once_then_gone_without_a_confirmation_is_lost() {
        let posts = [post(O, 1, 11, Outcome::Acked)];
        let conns = [conn(O, 1, 0, None, false), conn(O, 2, 500, None, true)];
        let d = [delivery(O, 1, 1, 11, 150)];
        let r = run(&posts, &d, &conns, &[]);
        assert!(
            r.text.contains("not delivered again in the final drain"),
            "{}",
            r.text
        );
        assert_eq!(r.failed, 1);
    }

    #[test]
    fn resent_after_a_confirmation_fails_unless_a_kill_undid_it() {
        let posts = [post(O, 1, 11, Outcome::Acked)];
        let conns = [
            conn(O, 1, 0, None, false),
            conn(O, 2, 200, Some(11), false),
            conn(O, 3, 400, None, false),
        ];
        let d = [delivery(O, 1, 1, 11, 150), delivery(O, 3, 1, 11, 450)];
        let r = run(&posts, &d, &conns, &[]);
        assert!(r.text.contains("resent-after-confirm 1 of 1"), "{}", r.text);
        assert_eq!(r.failed, 1);
        // A kill -9 between the confirmation and the connection: allowed.
        let r = run(&posts, &d, &conns, &[(300, Fault::Kill9, Some(0))]);
        assert_eq!(r.failed, 0, "{}", r.text);
        // A clean stop first makes it durable: the kill after it undoes nothing.
        let r = run(
            &posts,
            &d,
            &conns,
            &[(250, Fault::Term, Some(0)), (300, Fault::Kill9, Some(0))],
        );
        assert_eq!(r.failed, 1, "{}", r.text);
    }

    #[test]
    fn in_a_cluster_a_confirmation_binds_its_node_then_every_node_once_committed() {
        let posts = [post(O, 1, 11, Outcome::Acked)];
        let on = |node, c: Conn| Conn { node, ..c };
        let d = [delivery(O, 1, 1, 11, 150), delivery(O, 3, 1, 11, 450)];
        let topo = topo();
        let stored = HashMap::new();
        // Node 0 accepts Last-Event-ID 11 at 201; connection 3 (at 400) is on `node`.
        let cluster = |node: u16, faults: &[FaultAt]| {
            let conns = [
                on(1, conn(O, 1, 0, None, false)),
                on(0, conn(O, 2, 200, Some(11), false)),
                on(node, conn(O, 3, 400, None, false)),
            ];
            check(&Input {
                seed: 1,
                secs: 1.0,
                nodes: 2,
                doors: &[O],
                posts: &posts,
                deliveries: &d,
                conns: &conns,
                acks: &[],
                acks_sent: &[],
                in_flight: &[],
                faults,
                anomalies: &[],
                refused_streams: &[],
                phases: &[],
                topo: &topo,
                ntfy_stored: &stored,
            })
        };
        // Node 0 knows it at once; node 1 not before node 0 commits it.
        let r = cluster(0, &[]);
        assert_eq!(r.failed, 1, "{}", r.text);
        assert!(
            r.text.contains("on connection 3 on node 0 (opened"),
            "{}",
            r.text
        );
        let r = cluster(1, &[]);
        assert_eq!(r.failed, 0, "{}", r.text);
        // Node 0's clean stop commits it for every node; node 1's kill changes nothing.
        let r = cluster(
            1,
            &[(250, Fault::Term, Some(0)), (300, Fault::Kill9, Some(1))],
        );
        assert_eq!(r.failed, 1, "{}", r.text);
        assert!(r.text.contains("after Kill9 on node 1"), "{}", r.text);
        assert!(
            r.text
                .contains("up to 11 on connection 2 on node 0 at 0.201s"),
            "{}",
            r.text
        );
        // Node 1's clean stop commits nothing of node 0's; node 0's kill undoes it.
        let r = cluster(
            0,
            &[(250, Fault::Term, Some(1)), (300, Fault::Kill9, Some(0))],
        );
        assert_eq!(r.failed, 0, "{}", r.text);
        // A Redis drop may take a confirmation in flight with it, on every node.
        let r = cluster(
            1,
            &[(230, Fault::RedisDrop, None), (250, Fault::Term, Some(0))],
        );
        assert_eq!(r.failed, 0, "{}", r.text);
        let r = cluster(1, &[(300, Fault::Died, Some(0))]);
        assert!(
            r.text.contains("node 0 exited by itself at 0.300s"),
            "{}",
            r.text
        );
    }

    #[test]
    fn refused_misrouted_out_of_order_expired_and_unposted_fail() {
        let mut short = post(O, 4, 14, Outcome::Acked);
        short.ttl_secs = Some(1);
        let posts = [
            post(O, 1, 11, Outcome::Refused(429)),
            Post {
                app: 1,
                ..post(O, 2, 12, Outcome::Acked)
            },
            post(O, 3, 13, Outcome::Acked),
            short,
        ];
        let conns = [conn(O, 1, 0, None, false), conn(O, 2, 3000, None, true)];
        let d = [
            delivery(O, 1, 1, 11, 150),
            // For app a1, delivered as a0.
            delivery(O, 1, 2, 12, 250),
            delivery(O, 1, 3, 13, 350),
            delivery(O, 1, 3, 13, 360),
            // The TTL ended at 410 + 1000; this connection opened at 3000.
            Delivery {
                drain: true,
                ..delivery(O, 2, 4, 14, 3100)
            },
            Delivery {
                drain: true,
                ..delivery(O, 2, 9, 19, 3100)
            },
            Delivery {
                drain: true,
                ..delivery(O, 2, 3, 13, 3100)
            },
        ];
        let r = run(&posts, &d, &conns, &[]);
        for want in [
            "refused-but-delivered 1,",
            "misrouted 1,",
            "order-violations 2,",
            "expired-but-delivered 1,",
            "never-posted 1,",
            // The misrouted one never reached its own app.
            "lost 1,",
        ] {
            assert!(r.text.contains(want), "{want}: {}", r.text);
        }
        assert_eq!(r.failed, 6, "{}", r.text);
    }

    #[test]
    fn nextpush_in_flight_is_by_design() {
        let x = Door::NextPush;
        let posts = [
            post(x, 1, 11, Outcome::Acked),
            post(x, 2, 12, Outcome::Acked),
        ];
        let conns = [conn(x, 1, 0, None, false)];
        let flight = [InFlight {
            sub: 0,
            conn: 1,
            at: 200,
            tag: Some(Tag {
                door: x,
                sender: 0,
                seq: 1,
            }),
        }];
        let topo = topo();
        let stored = HashMap::new();
        let r = check(&Input {
            seed: 1,
            secs: 1.0,
            nodes: 1,
            doors: &[x],
            posts: &posts,
            deliveries: &[],
            conns: &conns,
            acks: &[],
            acks_sent: &[],
            in_flight: &flight,
            faults: &[],
            anomalies: &[],
            refused_streams: &[],
            phases: &[],
            topo: &topo,
            ntfy_stored: &stored,
        });
        assert!(r.text.contains("lost 1,"), "{}", r.text);
        assert!(r.text.contains("in-flight-by-design 1,"), "{}", r.text);
        let _ = run_with;
    }
}
