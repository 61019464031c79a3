//! The stable-after window as a small state machine over explicit instants.

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::time::Instant;

use super::DowningSettings;
use crate::membership::UniqueAddress;

/// What the resolver should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StabilityAction {
    /// Nothing yet (all reachable, or the window has not elapsed).
    Wait,
    /// The unreachable set has been stable for `stable_after`: apply the strategy.
    Decide,
    /// The unreachable set has kept changing for too long: down every member.
    DownAll,
}

/// Tracks how long the unreachable set has been unchanged, and how long the cluster has
/// been unstable.
///
/// Every change of the unreachable set (or an explicit [`StabilityTracker::reset`], e.g. on
/// a membership change) restarts the stable-after window. Instability starts with the first
/// change away from "all reachable" and ends when everything is reachable again; if it lasts
/// longer than `stable_after` plus the down-all limit, the answer is [`StabilityAction::DownAll`].
///
/// # Examples
///
/// ```
/// use std::collections::BTreeSet;
/// use std::time::Duration;
/// use actor_cluster::Address;
/// use actor_cluster::downing::{DowningSettings, StabilityAction, StabilityTracker};
/// use actor_cluster::membership::UniqueAddress;
/// use tokio::time::Instant;
///
/// let t0 = Instant::now();
/// let mut tracker = StabilityTracker::new(&DowningSettings::default(), t0);
/// let b = UniqueAddress::new(Address::logical("sys", "b").unwrap(), 2);
/// tracker.observe(t0, &BTreeSet::from([b]));
/// assert_eq!(tracker.poll(t0 + Duration::from_secs(6)), StabilityAction::Wait);
/// assert_eq!(tracker.poll(t0 + Duration::from_secs(7)), StabilityAction::Decide);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StabilityTracker {
    stable_after: Duration,
    down_all_limit: Option<Duration>,
    unreachable: BTreeSet<UniqueAddress>,
    stable_since: Instant,
    unstable_since: Option<Instant>,
}

impl StabilityTracker {
    /// A tracker that starts, at `at`, with everything reachable.
    pub fn new(settings: &DowningSettings, at: Instant) -> Self {
        Self {
            stable_after: settings.stable_after,
            down_all_limit: settings.down_all_limit(),
            unreachable: BTreeSet::new(),
            stable_since: at,
            unstable_since: None,
        }
    }

    /// The unreachable set last observed.
    pub fn unreachable(&self) -> &BTreeSet<UniqueAddress> {
        &self.unreachable
    }

    /// Feeds the current unreachable set; a change restarts the window.
    pub fn observe(&mut self, at: Instant, unreachable: &BTreeSet<UniqueAddress>) {
        if &self.unreachable == unreachable {
            return;
        }
        self.unreachable = unreachable.clone();
        self.stable_since = at;
        if unreachable.is_empty() {
            self.unstable_since = None;
        } else if self.unstable_since.is_none() {
            self.unstable_since = Some(at);
        }
    }

    /// Restarts the window (call on membership changes that affect the decision).
    pub fn reset(&mut self, at: Instant) {
        self.stable_since = at;
    }

    /// Call after acting on a decision: the instability episode is over.
    pub fn decided(&mut self, at: Instant) {
        self.stable_since = at;
        self.unstable_since = None;
    }

    /// What to do at `at`.
    pub fn poll(&self, at: Instant) -> StabilityAction {
        if self.unreachable.is_empty() {
            return StabilityAction::Wait;
        }
        if let (Some(since), Some(limit)) = (self.unstable_since, self.down_all_limit)
            && at >= since + self.stable_after + limit
        {
            return StabilityAction::DownAll;
        }
        if at >= self.stable_since + self.stable_after {
            StabilityAction::Decide
        } else {
            StabilityAction::Wait
        }
    }

    /// The next instant at which [`StabilityTracker::poll`] may change its answer, for the
    /// caller's timer; `None` while everything is reachable.
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.unreachable.is_empty() {
            return None;
        }
        let decide = self.stable_since + self.stable_after;
        let down_all = self
            .unstable_since
            .zip(self.down_all_limit)
            .map(|(since, limit)| since + self.stable_after + limit);
        Some(down_all.map_or(decide, |d| d.min(decide)))
    }
}
