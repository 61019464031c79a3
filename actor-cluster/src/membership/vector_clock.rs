//! Vector clocks: which gossip version came before which, and which ones are concurrent.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::UniqueAddress;

/// How two vector clocks relate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ClockOrdering {
    /// Equal clocks.
    Same,
    /// The left clock happened before the right one.
    Before,
    /// The left clock happened after the right one.
    After,
    /// Neither precedes the other: changes were made concurrently.
    Concurrent,
}

/// A vector clock: one counter per node that changed the state (absent counts as 0).
///
/// # Examples
///
/// ```
/// use actor_cluster::Address;
/// use actor_cluster::membership::{ClockOrdering, UniqueAddress, VectorClock};
///
/// let a = UniqueAddress::new(Address::logical("sys", "a").unwrap(), 1);
/// let b = UniqueAddress::new(Address::logical("sys", "b").unwrap(), 2);
/// let base = VectorClock::new();
/// let left = base.incremented(&a);
/// let right = base.incremented(&b);
/// assert_eq!(base.compare(&left), ClockOrdering::Before);
/// assert_eq!(left.compare(&right), ClockOrdering::Concurrent);
/// assert_eq!(left.merged(&right).compare(&left), ClockOrdering::After);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "RawVectorClock")]
pub struct VectorClock {
    versions: BTreeMap<UniqueAddress, u64>,
}

/// The wire shape of a [`VectorClock`]; decoding drops zero entries so that equal clocks
/// compare equal whatever a peer sent.
#[derive(Deserialize)]
struct RawVectorClock {
    versions: BTreeMap<UniqueAddress, u64>,
}

impl From<RawVectorClock> for VectorClock {
    fn from(raw: RawVectorClock) -> Self {
        raw.versions.into_iter().collect()
    }
}

impl VectorClock {
    /// The empty clock.
    pub fn new() -> Self {
        Self::default()
    }

    /// The counter of `node` (0 when absent).
    pub fn get(&self, node: &UniqueAddress) -> u64 {
        self.versions.get(node).copied().unwrap_or(0)
    }

    /// The entries, ordered by node.
    pub fn entries(&self) -> impl Iterator<Item = (&UniqueAddress, u64)> {
        self.versions.iter().map(|(node, v)| (node, *v))
    }

    /// This clock with `node`'s counter raised by one (saturating).
    pub fn incremented(&self, node: &UniqueAddress) -> Self {
        let mut next = self.clone();
        let entry = next.versions.entry(node.clone()).or_insert(0);
        *entry = entry.saturating_add(1);
        next
    }

    /// The entry-wise maximum of both clocks.
    pub fn merged(&self, other: &VectorClock) -> Self {
        let mut versions = self.versions.clone();
        for (node, version) in &other.versions {
            let entry = versions.entry(node.clone()).or_insert(0);
            *entry = (*entry).max(*version);
        }
        versions.retain(|_, v| *v > 0);
        Self { versions }
    }

    /// How `self` relates to `other`.
    pub fn compare(&self, other: &VectorClock) -> ClockOrdering {
        let mut less = false;
        let mut greater = false;
        let nodes = self.versions.keys().chain(other.versions.keys());
        for node in nodes {
            match self.get(node).cmp(&other.get(node)) {
                Ordering::Less => less = true,
                Ordering::Greater => greater = true,
                Ordering::Equal => {}
            }
        }
        match (less, greater) {
            (false, false) => ClockOrdering::Same,
            (true, false) => ClockOrdering::Before,
            (false, true) => ClockOrdering::After,
            (true, true) => ClockOrdering::Concurrent,
        }
    }
}

impl FromIterator<(UniqueAddress, u64)> for VectorClock {
    fn from_iter<T: IntoIterator<Item = (UniqueAddress, u64)>>(iter: T) -> Self {
        let mut clock = VectorClock::new();
        for (node, version) in iter {
            if version > 0 {
                let entry = clock.versions.entry(node).or_insert(0);
                *entry = (*entry).max(version);
            }
        }
        clock
    }
}
