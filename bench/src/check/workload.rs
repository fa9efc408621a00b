//! What the checker sends and when: message tags and bodies (every body names its post,
//! so that each delivery maps back to it), and the run's schedule of server phases and
//! faults, all drawn from the seed. A cluster's schedule is the one-server schedule of the
//! same seed (the same phases, configurations and transitions) with, drawn apart from it,
//! the node each transition hits and the Redis drops.

use std::fmt;
use std::time::Duration;

use crate::soak::Rng;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum Door {
    OpenPush,
    Ntfy,
    Autopush,
    NextPush,
}

pub const DOORS: [Door; 4] = [Door::OpenPush, Door::Ntfy, Door::Autopush, Door::NextPush];

impl Door {
    pub fn letter(self) -> char {
        match self {
            Door::OpenPush => 'O',
            Door::Ntfy => 'N',
            Door::Autopush => 'A',
            Door::NextPush => 'X',
        }
    }
    pub fn from_letter(c: u8) -> Option<Door> {
        Some(match c {
            b'O' => Door::OpenPush,
            b'N' => Door::Ntfy,
            b'A' => Door::Autopush,
            b'X' => Door::NextPush,
            _ => return None,
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            Door::OpenPush => "openpush",
            Door::Ntfy => "ntfy",
            Door::Autopush => "autopush",
            Door::NextPush => "nextpush",
        }
    }
}

/// A post's identity: door, sender, sequence number.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct Tag {
    pub door: Door,
    pub sender: u16,
    pub seq: u32,
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ck~{}{}~{}~", self.door.letter(), self.sender, self.seq)
    }
}

impl Tag {
    /// The first tag in `bytes` (bodies start with it, JSON carries it in a string).
    pub fn find(bytes: &[u8]) -> Option<Tag> {
        let mut from = 0;
        while let Some(i) = bytes[from..].windows(3).position(|w| w == b"ck~") {
            let at = from + i + 3;
            if let Some(tag) = Tag::parse_at(&bytes[at..]) {
                return Some(tag);
            }
            from = at;
        }
        None
    }

    fn parse_at(b: &[u8]) -> Option<Tag> {
        let door = Door::from_letter(*b.first()?)?;
        let digits = |s: &[u8]| -> Option<(u64, usize)> {
            let n = s.iter().take_while(|c| c.is_ascii_digit()).count();
            if n == 0 || n > 10 || s.get(n) != Some(&b'~') {
                return None;
            }
            Some((std::str::from_utf8(&s[..n]).ok()?.parse().ok()?, n + 1))
        };
        let (sender, used) = digits(&b[1..])?;
        let (seq, _) = digits(&b[1 + used..])?;
        Some(Tag {
            door,
            sender: u16::try_from(sender).ok()?,
            seq: u32::try_from(seq).ok()?,
        })
    }
}

/// FNV-1a, 64 bits: a delivered payload is compared with the posted one by this digest.
pub fn digest(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    h
}

/// Padding that depends only on the tag: `len` letters and digits.
pub fn ascii_pad(tag: &Tag, len: usize) -> String {
    const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut r = Rng::new(digest(tag.to_string().as_bytes()));
    (0..len)
        .map(|_| ALNUM[r.below(ALNUM.len() as u64) as usize] as char)
        .collect()
}

/// An opaque Web Push body of `len` bytes (at least the tag's length + 1): the tag, `|`,
/// then bytes of every value.
pub fn opaque_body(tag: &Tag, len: usize) -> Vec<u8> {
    let mut out = tag.to_string().into_bytes();
    out.push(b'|');
    let mut r = Rng::new(digest(&out) ^ 0x5555);
    while out.len() < len {
        out.push(r.next() as u8);
    }
    out
}

/// A body length between `lo` and `hi`, mostly short (log-uniform).
pub fn body_len(rng: &mut Rng, lo: usize, hi: usize) -> usize {
    let (l, h) = ((lo.max(1)) as f64, hi as f64);
    let x = (l.ln() + (h.ln() - l.ln()) * (rng.next() >> 11) as f64 / (1u64 << 53) as f64).exp();
    (x as usize).clamp(lo, hi)
}

/// A Matrix push gateway notification for one pushkey, the tag in its event id.
pub fn matrix_body(tag: &Tag, pushkey: &str, pad: usize) -> String {
    let mut out = String::from("{\"notification\":{\"event_id\":");
    crate::check::json::push_string(&mut out, &format!("${tag}"));
    out.push_str(",\"room_id\":\"!ck:127.0.0.1\",\"type\":\"m.room.message\",\"sender\":\"@ck:127.0.0.1\",\"sender_display_name\":");
    crate::check::json::push_string(&mut out, &ascii_pad(tag, pad));
    out.push_str(",\"counts\":{\"unread\":1},\"prio\":\"high\",\"devices\":[{\"app_id\":\"org.ck\",\"pushkey\":");
    crate::check::json::push_string(&mut out, pushkey);
    out.push_str(",\"pushkey_ts\":0,\"data\":{},\"tweaks\":{}}]}}");
    out
}

// ---------------------------------------------------------------- the schedule

/// The server's configuration during one phase.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct PhaseCfg {
    pub commit_window_ms: u32,
    pub confirm_delay_secs: u32,
    /// Small queue limits: posts get 429.
    pub small_queues: bool,
}

impl PhaseCfg {
    pub const DEFAULT: PhaseCfg = PhaseCfg {
        commit_window_ms: 4,
        confirm_delay_secs: 300,
        small_queues: false,
    };
}

impl fmt::Display for PhaseCfg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "commit_window_ms={} confirm_delay_secs={}{}",
            self.commit_window_ms,
            self.confirm_delay_secs,
            if self.small_queues {
                " small-queues"
            } else {
                ""
            }
        )
    }
}

/// How a phase ends (the next phase's configuration takes effect with it). In a cluster
/// it hits one node, and every other running node reloads (SIGHUP) for the configuration.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Transition {
    /// `kill -9`, then a start on the same database (in a cluster: the node stays down
    /// through the next phase and starts when it ends).
    Kill9,
    /// SIGTERM (a clean stop), then a start.
    Term,
    /// SIGHUP: the configuration is read again, the server keeps running.
    Hup,
}

impl Transition {
    /// What it does to node `node` of `nodes` (one: as the Display says).
    pub fn text(self, node: usize, nodes: usize) -> String {
        if nodes == 1 {
            return self.to_string();
        }
        match self {
            Transition::Kill9 => {
                format!("kill -9 of node {node} (down for the next phase), the others reload")
            }
            Transition::Term => format!("SIGTERM + restart of node {node}, the others reload"),
            Transition::Hup => "SIGHUP reload of every node".into(),
        }
    }
}

impl fmt::Display for Transition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transition::Kill9 => "kill -9 + restart",
            Transition::Term => "SIGTERM + restart",
            Transition::Hup => "SIGHUP reload",
        })
    }
}

#[derive(Clone, Debug)]
pub struct Phase {
    pub secs: f64,
    pub cfg: PhaseCfg,
    /// None for the last phase: the run ends with a clean restart and the drain.
    pub then: Option<Transition>,
    /// The node the transition hits (0 on one server).
    pub node: usize,
    /// A cluster only: when in the phase (seconds from its start) every connection of the
    /// nodes to Redis is dropped.
    pub redis_drop: Option<f64>,
}

/// Phases covering `total` seconds on `nodes` nodes. The first ones cover every edge: commit
/// windows of 0 and 1000 ms, confirmation delays of 0 and 3600 s, a full queue, two kills, a
/// clean restart and a reload; later ones are drawn at random. A cluster adds a Redis drop
/// to the first phase and to about a third of the others.
pub fn schedule(seed: u64, total: f64, nodes: usize) -> Vec<Phase> {
    let mut phases = base_schedule(seed, total);
    if nodes > 1 {
        spread(&mut phases, seed, nodes);
    }
    phases
}

/// The cluster's draws, from a generator of their own: the node of each transition, and
/// the Redis drops (somewhere in the middle three fifths of their phase).
fn spread(phases: &mut [Phase], seed: u64, nodes: usize) {
    let mut rng = Rng::new(seed ^ 0xC1A5_7E25);
    for (i, p) in phases.iter_mut().enumerate() {
        p.node = rng.below(nodes as u64) as usize;
        let at = p.secs * rng.secs(0.2, 0.8).as_secs_f64();
        if rng.chance(0.3) || i == 0 {
            p.redis_drop = Some(at);
        }
    }
}

/// The one-server schedule (a cluster's without its own draws).
fn base_schedule(seed: u64, total: f64) -> Vec<Phase> {
    let mut rng = Rng::new(seed ^ 0x5CED_01E5);
    let mut cfgs = vec![
        PhaseCfg {
            commit_window_ms: 1000,
            ..PhaseCfg::DEFAULT
        },
        PhaseCfg {
            commit_window_ms: 0,
            confirm_delay_secs: 3600,
            small_queues: false,
        },
        PhaseCfg {
            confirm_delay_secs: 0,
            ..PhaseCfg::DEFAULT
        },
        PhaseCfg {
            small_queues: true,
            ..PhaseCfg::DEFAULT
        },
        PhaseCfg {
            commit_window_ms: 1000,
            confirm_delay_secs: 3600,
            small_queues: false,
        },
    ];
    shuffle(&mut rng, &mut cfgs);
    // The run starts on the defaults; the edges follow.
    cfgs.insert(0, PhaseCfg::DEFAULT);
    let mut moves = vec![Transition::Kill9, Transition::Term, Transition::Hup];
    shuffle(&mut rng, &mut moves);
    moves.extend([Transition::Kill9, Transition::Kill9]);
    let mut phases = Vec::new();
    let mut t = 0.0;
    let mut i = 0;
    while t < total - 0.5 {
        let cfg = cfgs.get(i).copied().unwrap_or_else(|| PhaseCfg {
            commit_window_ms: [0, 4, 4, 50, 1000][rng.below(5) as usize],
            confirm_delay_secs: [0, 5, 300, 3600][rng.below(4) as usize],
            small_queues: rng.chance(0.15),
        });
        let base = if cfg.small_queues { 4.0 } else { 6.0 };
        let mut secs = base + rng.secs(0.0, 5.0).as_secs_f64();
        if t + secs > total - 3.0 {
            secs = total - t;
        }
        let then = moves.get(i).copied().unwrap_or(match rng.below(10) {
            0..=3 => Transition::Kill9,
            4..=5 => Transition::Term,
            _ => Transition::Hup,
        });
        phases.push(Phase {
            secs,
            cfg,
            then: Some(then),
            node: 0,
            redis_drop: None,
        });
        t += secs;
        i += 1;
    }
    if let Some(last) = phases.last_mut() {
        last.then = None;
    }
    phases
}

fn shuffle<T>(rng: &mut Rng, v: &mut [T]) {
    for i in (1..v.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        v.swap(i, j);
    }
}

/// Durations of a subscriber's connection: after 1–10 events, or a random short time.
pub struct Budget {
    pub events: u32,
    pub until: std::time::Instant,
}

impl Budget {
    pub fn draw(rng: &mut Rng) -> Budget {
        let events = if rng.chance(0.85) {
            1 + rng.below(10) as u32
        } else {
            u32::MAX
        };
        let secs = if events == u32::MAX {
            rng.secs(0.02, 0.5)
        } else {
            Duration::from_secs(5)
        };
        Budget {
            events,
            until: std::time::Instant::now() + secs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip_in_bodies() {
        let tag = Tag {
            door: Door::Autopush,
            sender: 12,
            seq: 345,
        };
        assert_eq!(tag.to_string(), "ck~A12~345~");
        let body = opaque_body(&tag, 4096);
        assert_eq!(body.len(), 4096);
        assert_eq!(Tag::find(&body), Some(tag));
        assert_eq!(opaque_body(&tag, 4096), body);
        let m = matrix_body(&tag, "http://127.0.0.1:1/push/x", 10);
        assert_eq!(Tag::find(m.as_bytes()), Some(tag));
        assert!(crate::check::json::parse(m.as_bytes()).is_some());
        assert_eq!(
            Tag::find(b"xxck~Q1~2~ck~O1~2~"),
            Some(Tag {
                door: Door::OpenPush,
                sender: 1,
                seq: 2
            })
        );
        assert_eq!(Tag::find(b"ck~O1~"), None);
    }

    #[test]
    fn schedules_cover_the_edges_and_replay() {
        let a = schedule(42, 60.0, 1);
        let b = schedule(42, 60.0, 1);
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        let total: f64 = a.iter().map(|p| p.secs).sum();
        assert!((total - 60.0).abs() < 1e-6, "{total}");
        assert!(a.last().unwrap().then.is_none());
        assert!(a.iter().any(|p| p.then == Some(Transition::Kill9)));
        assert!(a.iter().all(|p| p.node == 0 && p.redis_drop.is_none()));
        let long = schedule(7, 1200.0, 1);
        assert!(long.len() > 100);
    }

    #[test]
    fn a_cluster_schedule_is_the_single_one_with_nodes_and_redis_drops() {
        for seed in [1, 42, 777] {
            let one = schedule(seed, 300.0, 1);
            let three = schedule(seed, 300.0, 3);
            assert_eq!(one.len(), three.len());
            for (a, b) in one.iter().zip(&three) {
                assert_eq!((a.secs, a.cfg, a.then), (b.secs, b.cfg, b.then));
                assert!(b.node < 3);
                assert!(b.redis_drop.is_none_or(|t| t > 0.0 && t < b.secs));
            }
            assert!(three[0].redis_drop.is_some());
            assert!(three.iter().filter(|p| p.redis_drop.is_some()).count() > 3);
            assert!((0..3).all(|n| three.iter().any(|p| p.node == n)));
            assert_eq!(
                format!("{three:?}"),
                format!("{:?}", schedule(seed, 300.0, 3))
            );
        }
    }
}
