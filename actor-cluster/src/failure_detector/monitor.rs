//! The heartbeat side of one node: whom to send heartbeats to, and which monitored peers
//! changed between reachable and unreachable.

use std::collections::BTreeSet;

use tokio::time::Instant;

use super::{FailureDetectorError, FailureDetectorRegistry, HeartbeatTargets, PhiAccrualSettings};
use crate::Address;

/// A change of this node's own observation of a monitored peer, to record in the gossip
/// (`Gossip::mark_unreachable` / `Gossip::mark_reachable` with this node as observer).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum ReachabilityChange {
    /// The peer's phi crossed the threshold.
    Unreachable(Address),
    /// The peer answers again.
    Reachable(Address),
}

/// One node's monitoring: the ring of targets, their failure detectors, and the current
/// suspicions, as a pure state machine.
///
/// The caller sends a heartbeat to every peer of [`HeartbeatMonitor::tick`] each heartbeat
/// interval, feeds responses to [`HeartbeatMonitor::on_response`], and records the returned
/// [`ReachabilityChange`]s in its gossip.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use actor_cluster::Address;
/// use actor_cluster::failure_detector::{HeartbeatMonitor, PhiAccrualSettings, ReachabilityChange};
/// use tokio::time::Instant;
///
/// let me = Address::logical("sys", "a")?;
/// let peer = Address::logical("sys", "b")?;
/// let t0 = Instant::now();
/// let mut monitor = HeartbeatMonitor::new(me.clone(), PhiAccrualSettings::default(), 5)?;
/// monitor.set_members([me, peer.clone()], t0);
/// let (send_to, changes) = monitor.tick(t0);
/// assert_eq!(send_to, [peer.clone()].into());
/// assert!(changes.is_empty());
/// // The peer never answers.
/// let (_, changes) = monitor.tick(t0 + Duration::from_secs(10));
/// assert_eq!(changes, vec![ReachabilityChange::Unreachable(peer)]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct HeartbeatMonitor {
    self_address: Address,
    monitored: usize,
    members: BTreeSet<Address>,
    targets: BTreeSet<Address>,
    registry: FailureDetectorRegistry,
    suspected: BTreeSet<Address>,
}

impl HeartbeatMonitor {
    /// A monitor for `self_address` watching `monitored` peers with detectors built from
    /// `settings`.
    ///
    /// # Errors
    ///
    /// The [`FailureDetectorError`] of [`PhiAccrualSettings::validate`].
    pub fn new(
        self_address: Address,
        settings: PhiAccrualSettings,
        monitored: usize,
    ) -> Result<Self, FailureDetectorError> {
        Ok(Self {
            self_address,
            monitored,
            members: BTreeSet::new(),
            targets: BTreeSet::new(),
            registry: FailureDetectorRegistry::new(settings)?,
            suspected: BTreeSet::new(),
        })
    }

    /// The peers currently monitored.
    pub fn targets(&self) -> &BTreeSet<Address> {
        &self.targets
    }

    /// The monitored peers this node currently suspects.
    pub fn suspected(&self) -> &BTreeSet<Address> {
        &self.suspected
    }

    /// Sets the member addresses (self may be included) at `at`: recomputes the targets,
    /// starts expecting new targets and forgets peers no longer monitored.
    pub fn set_members(&mut self, members: impl IntoIterator<Item = Address>, at: Instant) {
        self.members = members.into_iter().collect();
        self.recompute(at);
    }

    fn recompute(&mut self, at: Instant) {
        let ring = HeartbeatTargets::new(self.members.iter().cloned(), self.monitored);
        self.targets = ring.targets(&self.self_address, &self.suspected);
        for target in &self.targets {
            self.registry.expect(target, at);
        }
        self.registry.retain(&self.targets);
        let targets = &self.targets;
        self.suspected.retain(|peer| targets.contains(peer));
    }

    /// A heartbeat response from `peer` arrived at `at`.
    pub fn on_response(&mut self, peer: &Address, at: Instant) {
        if self.targets.contains(peer) {
            self.registry.heartbeat(peer, at);
        }
    }

    /// The heartbeat round at `at`: the peers to send a heartbeat to, and the observation
    /// changes since the previous round (in address order).
    pub fn tick(&mut self, at: Instant) -> (BTreeSet<Address>, Vec<ReachabilityChange>) {
        let now_suspected: BTreeSet<Address> = self
            .targets
            .iter()
            .filter(|peer| !self.registry.is_available(peer, at))
            .cloned()
            .collect();
        let mut changes: Vec<ReachabilityChange> = now_suspected
            .difference(&self.suspected)
            .cloned()
            .map(ReachabilityChange::Unreachable)
            .chain(
                self.suspected
                    .difference(&now_suspected)
                    .cloned()
                    .map(ReachabilityChange::Reachable),
            )
            .collect();
        changes.sort();
        let ring_changed = now_suspected != self.suspected;
        self.suspected = now_suspected;
        if ring_changed {
            // Skip past suspected peers so that enough reachable ones stay monitored.
            self.recompute(at);
        }
        (self.targets.clone(), changes)
    }
}
