//! Timed auto-down: down a member once it has been unreachable for a fixed time.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::time::Instant;

use crate::membership::UniqueAddress;

/// Tracks since when each member is unreachable and reports those past the delay.
///
/// **Unsafe for production**: during a partition every side downs the other and both keep
/// running, a split brain. Use it for tests and single-process clusters, where a member that
/// is unreachable really is gone. Only the leader should act on it (as in Akka).
///
/// # Examples
///
/// ```
/// use std::collections::BTreeSet;
/// use std::time::Duration;
/// use actor_cluster::Address;
/// use actor_cluster::downing::AutoDownTracker;
/// use actor_cluster::membership::UniqueAddress;
/// use tokio::time::Instant;
///
/// let b = UniqueAddress::new(Address::logical("sys", "b").unwrap(), 2);
/// let t0 = Instant::now();
/// let mut auto_down = AutoDownTracker::new(Duration::from_secs(5));
/// auto_down.observe(t0, &BTreeSet::from([b.clone()]));
/// assert!(auto_down.due(t0 + Duration::from_secs(4)).is_empty());
/// assert_eq!(auto_down.due(t0 + Duration::from_secs(5)), BTreeSet::from([b]));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoDownTracker {
    after: Duration,
    since: BTreeMap<UniqueAddress, Instant>,
}

impl AutoDownTracker {
    /// A tracker downing members unreachable for `after`.
    pub fn new(after: Duration) -> Self {
        Self {
            after,
            since: BTreeMap::new(),
        }
    }

    /// Feeds the current unreachable set: new members start their clock at `at`, members
    /// no longer unreachable are forgotten.
    pub fn observe(&mut self, at: Instant, unreachable: &BTreeSet<UniqueAddress>) {
        self.since.retain(|node, _| unreachable.contains(node));
        for node in unreachable {
            self.since.entry(node.clone()).or_insert(at);
        }
    }

    /// The members unreachable for at least the delay at `at`.
    pub fn due(&self, at: Instant) -> BTreeSet<UniqueAddress> {
        self.since
            .iter()
            .filter(|(_, since)| at >= **since + self.after)
            .map(|(node, _)| node.clone())
            .collect()
    }

    /// The earliest instant a member becomes due, for the caller's timer.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.since.values().min().map(|since| *since + self.after)
    }
}
