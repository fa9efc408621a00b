//! The nodes a client connects to, and the choice of one per connection ([`Picker`]).
//! One server is node 0, and its clients draw nothing to choose it.

use std::net::SocketAddr;

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

#[cfg(test)]
mod tests {
    use super::*;

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
