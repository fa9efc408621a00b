//! The servers under test and the choice of one per connection. `--nodes 1` (the default)
//! is one `openpush serve` on its own redb file, as the checker always ran it; `--nodes N`
//! (N ≥ 2) is N nodes on one Redis (`store = redis://…`, [`super::redis`]), each with its
//! own port, config, database path, log and pid file, any of which takes any post and any
//! stream.
//!
//! Invariants: node 0's config is the one the CLI runs with (users are added once, through
//! it); every node is written the same phase configuration; a node that is down has no
//! process. Every port is outside the kernel's ephemeral range, so that no client socket
//! can take the port of a node that is down (nor connect to itself through it).

use std::net::{SocketAddr, TcpListener};
use std::path::Path;

use super::redis::Redis;
use super::server::Server;
use super::workload::PhaseCfg;
use crate::soak::Rng;

/// A node as a client connects to it.
#[derive(Clone, Copy, Debug)]
pub struct Node {
    pub index: u16,
    pub addr: SocketAddr,
}

/// Which node a client's next connection goes to: one of them at random, drawn from the
/// client's own seed (a replay makes the same choices; the client's other draws do not
/// change with the number of nodes), and another one than a node that just failed it. One
/// node: always it, with no draw.
pub struct Picker {
    nodes: Vec<SocketAddr>,
    rng: Rng,
    /// The node the last connection failed on: not the next one.
    shunned: Option<usize>,
}

impl Picker {
    pub fn new(nodes: &[SocketAddr], seed: u64) -> Picker {
        Picker {
            nodes: nodes.to_vec(),
            rng: Rng::new(seed ^ 0x90DE_5A17),
            shunned: None,
        }
    }

    pub fn pick(&mut self) -> Node {
        let n = self.nodes.len();
        let i = match self.shunned.take() {
            _ if n == 1 => 0,
            Some(bad) => (bad + 1 + self.rng.below(n as u64 - 1) as usize) % n,
            None => self.rng.below(n as u64) as usize,
        };
        Node {
            index: i as u16,
            addr: self.nodes[i],
        }
    }

    /// A connection to `node` could not be made or broke: the next goes to another node.
    pub fn shun(&mut self, node: Node) {
        self.shunned = Some(node.index as usize);
    }

    /// Whether a kept-alive connection is given up before its next request (in a cluster,
    /// one request in 16), so that a sender's posts go to every node.
    pub fn leave(&mut self) -> bool {
        self.nodes.len() > 1 && self.rng.below(16) == 0
    }
}

/// The kernel's ephemeral ports (`ip_local_port_range`), where connect(2) takes its ports.
fn ephemeral_ports() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|p| p.parse().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32768, 60999))
}

/// `n` distinct free ports of 127.0.0.1 below the ephemeral range (from 10000 on, at a
/// random place), or any free ones if that range is too small.
pub fn free_ports(n: usize) -> Vec<u16> {
    const LOW: u16 = 10_000;
    let (eph_lo, _) = ephemeral_ports();
    let span = eph_lo.saturating_sub(LOW);
    let mut held = Vec::new();
    if span >= 1000 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() as u64);
        let mut rng = Rng::new(nanos ^ std::process::id() as u64);
        let start = rng.below(span as u64) as u16;
        for k in 0..span {
            if held.len() == n {
                break;
            }
            let port = LOW + ((u32::from(start) + u32::from(k)) % u32::from(span)) as u16;
            if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
                held.push(l);
            }
        }
    }
    while held.len() < n {
        held.push(TcpListener::bind("127.0.0.1:0").expect("a free port on 127.0.0.1"));
    }
    held.iter()
        .map(|l| l.local_addr().expect("a bound port").port())
        .collect()
}

pub struct Cluster {
    pub nodes: Vec<Server>,
    pub redis: Option<Redis>,
}

impl Cluster {
    /// One server (n = 1), or a Redis from `redis_bin` (started here) and n nodes on it
    /// (not started).
    pub fn new(bin: &Path, dir: &Path, n: usize, redis_bin: &Path) -> Result<Cluster, String> {
        let ports = free_ports(n + usize::from(n > 1));
        if n == 1 {
            return Ok(Cluster {
                nodes: vec![Server::single(bin, dir, ports[0])],
                redis: None,
            });
        }
        let redis = Redis::start(redis_bin, dir, ports[n])?;
        let nodes = (0..n)
            .map(|i| Server::node(bin, dir, ports[i], i, &redis.url()))
            .collect();
        Ok(Cluster {
            nodes,
            redis: Some(redis),
        })
    }

    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.nodes.iter().map(|s| s.addr).collect()
    }

    pub fn write_config(&self, cfg: PhaseCfg) {
        for s in &self.nodes {
            s.write_config(cfg);
        }
    }

    /// `openpush user add` through node 0's config (the store is the same for all).
    pub fn add_user(&self, name: &str, password: &str) -> Result<(), String> {
        self.nodes[0].add_user(name, password)
    }

    /// The nodes that are not running.
    pub fn down(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| !self.nodes[i].running())
            .collect()
    }

    /// Ends everything at once (kill -9), for a run that cannot go on.
    pub fn abort(&mut self) {
        for s in &mut self.nodes {
            s.kill9();
        }
        if let Some(r) = &mut self.redis {
            r.kill9();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_and_outside_the_ephemeral_range() {
        let ports = free_ports(5);
        let mut sorted = ports.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 5, "{ports:?}");
        let (lo, hi) = ephemeral_ports();
        if lo >= 11_000 {
            assert!(ports.iter().all(|&p| p < lo || p > hi), "{ports:?}");
        }
    }

    #[test]
    fn one_node_is_always_node_0_and_a_cluster_uses_every_node() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let mut one = Picker::new(&[a], 7);
        assert!((0..100).all(|_| one.pick().index == 0 && !one.leave()));
        let mut two = Picker::new(&[a, b], 7);
        let picks: Vec<u16> = (0..100).map(|_| two.pick().index).collect();
        assert!(picks.contains(&0) && picks.contains(&1));
        let mut again = Picker::new(&[a, b], 7);
        assert_eq!(
            picks,
            (0..100).map(|_| again.pick().index).collect::<Vec<_>>()
        );
        let c: SocketAddr = "127.0.0.1:3".parse().unwrap();
        let mut three = Picker::new(&[a, b, c], 7);
        for _ in 0..100 {
            let bad = three.pick();
            three.shun(bad);
            assert_ne!(three.pick().index, bad.index);
        }
        let first = one.pick();
        one.shun(first);
        assert_eq!(one.pick().index, 0);
        assert!((0..200).any(|_| two.leave()));
    }
}
