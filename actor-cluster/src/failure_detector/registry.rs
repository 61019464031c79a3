//! One failure detector per monitored peer.

use std::collections::{BTreeMap, BTreeSet};

use tokio::time::Instant;

use super::{FailureDetectorError, PhiAccrualFailureDetector, PhiAccrualSettings};
use crate::Address;

/// The failure detectors of one node, keyed by monitored peer.
///
/// A peer is registered by its first heartbeat, or by [`FailureDetectorRegistry::expect`]
/// when we start monitoring it: a peer that never answers at all must still become
/// unreachable, so expecting it counts as a first heartbeat at that instant (Akka's
/// "expected response after" behaviour).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use actor_cluster::Address;
/// use actor_cluster::failure_detector::{FailureDetectorRegistry, PhiAccrualSettings};
/// use tokio::time::Instant;
///
/// let peer = Address::logical("sys", "b")?;
/// let mut registry = FailureDetectorRegistry::new(PhiAccrualSettings::default())?;
/// let t0 = Instant::now();
/// registry.expect(&peer, t0); // we started monitoring b; it never answers
/// assert!(registry.is_available(&peer, t0 + Duration::from_secs(1)));
/// assert_eq!(registry.unavailable(t0 + Duration::from_secs(10)), [peer].into());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct FailureDetectorRegistry {
    settings: PhiAccrualSettings,
    detectors: BTreeMap<Address, PhiAccrualFailureDetector>,
}

impl FailureDetectorRegistry {
    /// An empty registry whose detectors use `settings`.
    ///
    /// # Errors
    ///
    /// The [`FailureDetectorError`] of [`PhiAccrualSettings::validate`].
    pub fn new(settings: PhiAccrualSettings) -> Result<Self, FailureDetectorError> {
        settings.validate()?;
        Ok(Self {
            settings,
            detectors: BTreeMap::new(),
        })
    }

    fn detector(&mut self, peer: &Address) -> &mut PhiAccrualFailureDetector {
        let settings = &self.settings;
        self.detectors.entry(peer.clone()).or_insert_with(|| {
            // Settings were validated in `new`, so this is the plain constructor.
            PhiAccrualFailureDetector::unchecked(settings.clone())
        })
    }

    /// Records a heartbeat (or heartbeat response) from `peer` at `at`.
    pub fn heartbeat(&mut self, peer: &Address, at: Instant) {
        self.detector(peer).heartbeat(at);
    }

    /// Starts monitoring `peer` at `at` if it is not monitored yet (counts as a first
    /// heartbeat, so silence from then on raises phi).
    pub fn expect(&mut self, peer: &Address, at: Instant) {
        let detector = self.detector(peer);
        if !detector.is_monitoring() {
            detector.heartbeat(at);
        }
    }

    /// Whether `peer` is available at `at` (unknown peers are).
    pub fn is_available(&self, peer: &Address, at: Instant) -> bool {
        self.detectors
            .get(peer)
            .is_none_or(|detector| detector.is_available(at))
    }

    /// The phi of `peer` at `at` (0 for unknown peers).
    pub fn phi(&self, peer: &Address, at: Instant) -> f64 {
        self.detectors.get(peer).map_or(0.0, |d| d.phi(at))
    }

    /// The monitored peers that are unavailable at `at`.
    pub fn unavailable(&self, at: Instant) -> BTreeSet<Address> {
        self.detectors
            .iter()
            .filter(|(_, detector)| !detector.is_available(at))
            .map(|(peer, _)| peer.clone())
            .collect()
    }

    /// The monitored peers.
    pub fn peers(&self) -> impl Iterator<Item = &Address> {
        self.detectors.keys()
    }

    /// Stops monitoring `peer` (it left the ring or the cluster); its history is dropped.
    pub fn remove(&mut self, peer: &Address) {
        self.detectors.remove(peer);
    }

    /// Keeps only the peers in `targets` (call when the heartbeat ring changes).
    pub fn retain(&mut self, targets: &BTreeSet<Address>) {
        self.detectors.retain(|peer, _| targets.contains(peer));
    }
}
