//! Which peers a node monitors: its successors on a hash ring, a bounded number of them.

use std::collections::BTreeSet;

use crate::Address;

/// Default number of peers each node sends heartbeats to and monitors: 5.
///
/// Each node is then watched by about as many observers; more observers detect a failure
/// more robustly (one slow observer does not decide) at the cost of more heartbeats per node.
/// Akka's `monitored-by-nr-of-members` default.
pub const DEFAULT_MONITORED_PEERS: usize = 5;

/// A stable 64-bit FNV-1a hash of an address's `system@host:port` form.
///
/// Stable across processes and Rust versions (unlike `std`'s hasher), so every node builds
/// the same ring from the same member set.
pub fn ring_hash(address: &Address) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in address.to_string().bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// The monitoring ring: every node monitors the next `monitored` nodes after itself on a ring
/// ordered by [`ring_hash`] (ties by address).
///
/// Hashing spreads neighbours so that the nodes of one host or rack do not all watch each
/// other. Unreachable peers stay monitored (so their return is noticed) but do not count
/// towards the bound: the ring skips past them to keep `monitored` reachable peers watched.
///
/// # Examples
///
/// ```
/// use std::collections::BTreeSet;
/// use actor_cluster::Address;
/// use actor_cluster::failure_detector::HeartbeatTargets;
///
/// let nodes: Vec<Address> = (0..10)
///     .map(|i| Address::logical("sys", format!("n{i}")).unwrap())
///     .collect();
/// let ring = HeartbeatTargets::new(nodes.iter().cloned(), 3);
/// let targets = ring.targets(&nodes[0], &BTreeSet::new());
/// assert_eq!(targets.len(), 3);
/// assert!(!targets.contains(&nodes[0]));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatTargets {
    ring: Vec<(u64, Address)>,
    monitored: usize,
}

impl HeartbeatTargets {
    /// Builds the ring over `members` (duplicates ignored), each node monitoring `monitored`
    /// peers.
    pub fn new(members: impl IntoIterator<Item = Address>, monitored: usize) -> Self {
        let set: BTreeSet<(u64, Address)> = members
            .into_iter()
            .map(|address| (ring_hash(&address), address))
            .collect();
        Self {
            ring: set.into_iter().collect(),
            monitored,
        }
    }

    /// The nodes on the ring, in ring order.
    pub fn nodes(&self) -> impl Iterator<Item = &Address> {
        self.ring.iter().map(|(_, address)| address)
    }

    /// The peers `node` monitors: the next reachable ones after it, up to the bound, plus the
    /// unreachable ones met on the way.
    ///
    /// `node` need not be on the ring (a joining node monitors its would-be successors).
    pub fn targets(&self, node: &Address, unreachable: &BTreeSet<Address>) -> BTreeSet<Address> {
        let key = (ring_hash(node), node.clone());
        let start = self.ring.partition_point(|entry| entry <= &key);
        let mut chosen = BTreeSet::new();
        let mut reachable = 0;
        for offset in 0..self.ring.len() {
            if reachable >= self.monitored {
                break;
            }
            let (_, peer) = &self.ring[(start + offset) % self.ring.len()];
            if peer == node {
                continue;
            }
            if !unreachable.contains(peer) {
                reachable += 1;
            }
            chosen.insert(peer.clone());
        }
        chosen
    }

    /// The peers that monitor `node` (those whose targets include it).
    pub fn observers(&self, node: &Address, unreachable: &BTreeSet<Address>) -> BTreeSet<Address> {
        self.nodes()
            .filter(|peer| *peer != node && self.targets(peer, unreachable).contains(node))
            .cloned()
            .collect()
    }
}
