//! Phi-accrual failure detection: how suspicious is the silence of a peer?
//!
//! A node sends heartbeats to a few peers; each receiver keeps one
//! [`PhiAccrualFailureDetector`] per monitored peer and feeds it the arrival instant of every
//! heartbeat. Instead of a yes/no timeout the detector reports a suspicion level `phi`
//! (Hayashibara et al., "The φ Accrual Failure Detector", 2004): from the history of
//! inter-arrival times it estimates a normal distribution, and
//! `phi = -log10(1 - F(now - last_heartbeat))`, where `F` is that distribution's cumulative
//! distribution function. A phi of 1 means roughly a 10% chance that the next heartbeat is
//! still coming, 2 means 1%, 8 (the default threshold) means 10⁻⁸.
//!
//! The method follows Akka's documented behaviour:
//! - the mean of the history is widened by an *acceptable heartbeat pause*, so a GC pause or a
//!   brief network hiccup of that length is tolerated;
//! - the standard deviation never falls below a minimum, so a very regular history does not
//!   make the detector hair-trigger;
//! - `F` is the logistic approximation of the normal CDF
//!   (`1 / (1 + e^(-y (1.5976 + 0.070566 y²)))`, accurate to about 10⁻⁴), computed on the side
//!   that avoids cancellation, so large values stay finite;
//! - the history is seeded on the first heartbeat with two samples, `estimate ± estimate / 4`,
//!   so a fresh detector has a sensible mean and deviation before real samples arrive;
//! - an interval is only recorded while the peer is considered available, so the first
//!   heartbeat after a long outage does not skew the statistics.
//!
//! Time is always passed in ([`Instant`] arguments), so the detector is a pure value that a
//! test can drive to exact, published phi values; the membership actor passes
//! `tokio::time::Instant::now()`, which a paused test runtime controls.
//!
//! [`FailureDetectorRegistry`] keeps one detector per monitored peer, and
//! [`HeartbeatMonitor`] ties ring, detectors and suspicions together for one node. [`HeartbeatTargets`]
//! chooses which peers a node monitors: its successors on a ring ordered
//! by a stable hash of the address, a bounded number of them, so the heartbeat cost per node
//! stays flat as the cluster grows.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use actor_cluster::failure_detector::{PhiAccrualFailureDetector, PhiAccrualSettings};
//! use tokio::time::Instant;
//!
//! let mut detector = PhiAccrualFailureDetector::new(PhiAccrualSettings::default())?;
//! let start = Instant::now();
//! for second in 0..10 {
//!     detector.heartbeat(start + Duration::from_secs(second));
//! }
//! let last = start + Duration::from_secs(9);
//! assert!(detector.is_available(last + Duration::from_secs(1)));
//! // Silence well past the acceptable pause: the peer is suspected.
//! assert!(!detector.is_available(last + Duration::from_secs(10)));
//! # Ok::<(), actor_cluster::failure_detector::FailureDetectorError>(())
//! ```

mod history;
mod monitor;
mod registry;
mod ring;
mod settings;

pub use history::HeartbeatHistory;
pub use monitor::{HeartbeatMonitor, ReachabilityChange};
pub use registry::FailureDetectorRegistry;
pub use ring::{DEFAULT_MONITORED_PEERS, HeartbeatTargets, ring_hash};
pub use settings::{
    DEFAULT_ACCEPTABLE_HEARTBEAT_PAUSE, DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_MAX_SAMPLE_SIZE,
    DEFAULT_MIN_STD_DEVIATION, DEFAULT_THRESHOLD, FailureDetectorError, PhiAccrualSettings,
};

use tokio::time::Instant;

/// Phi for an elapsed time given the mean and standard deviation of the expected interval.
///
/// All three arguments share one unit (the detector uses milliseconds). This is the logistic
/// approximation of the normal distribution that Akka uses: with `y = (elapsed - mean) / std`
/// and `e = exp(-y (1.5976 + 0.070566 y²))`, phi is `-log10(e / (1 + e))` past the mean and
/// `-log10(1 - 1 / (1 + e))` before it, which keeps both tails free of cancellation.
///
/// # Examples
///
/// ```
/// use actor_cluster::failure_detector::phi;
///
/// // At the mean the CDF is one half: phi = -log10(0.5).
/// assert!((phi(1000.0, 1000.0, 100.0) - 0.5f64.log10().abs()).abs() < 1e-12);
/// ```
pub fn phi(elapsed: f64, mean: f64, std_deviation: f64) -> f64 {
    let y = (elapsed - mean) / std_deviation;
    let e = (-y * (1.5976 + 0.070566 * y * y)).exp();
    if elapsed > mean {
        -(e / (1.0 + e)).log10()
    } else {
        -(1.0 - 1.0 / (1.0 + e)).log10()
    }
}

/// A phi-accrual failure detector for one monitored peer, driven by explicit instants.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use actor_cluster::failure_detector::{PhiAccrualFailureDetector, PhiAccrualSettings};
/// use tokio::time::Instant;
///
/// let mut detector = PhiAccrualFailureDetector::new(PhiAccrualSettings::default())?;
/// let t0 = Instant::now();
/// assert!(!detector.is_monitoring());
/// assert_eq!(detector.phi(t0), 0.0); // unknown peers are not suspected
/// detector.heartbeat(t0);
/// assert!(detector.is_monitoring());
/// # Ok::<(), actor_cluster::failure_detector::FailureDetectorError>(())
/// ```
#[derive(Debug, Clone)]
pub struct PhiAccrualFailureDetector {
    settings: PhiAccrualSettings,
    history: HeartbeatHistory,
    last_heartbeat: Option<Instant>,
}

impl PhiAccrualFailureDetector {
    /// Creates a detector that has not received any heartbeat yet.
    ///
    /// # Errors
    ///
    /// The [`FailureDetectorError`] of [`PhiAccrualSettings::validate`].
    pub fn new(settings: PhiAccrualSettings) -> Result<Self, FailureDetectorError> {
        settings.validate()?;
        Ok(Self {
            history: HeartbeatHistory::new(settings.max_sample_size),
            settings,
            last_heartbeat: None,
        })
    }

    /// A detector from settings already validated.
    pub(crate) fn unchecked(settings: PhiAccrualSettings) -> Self {
        Self {
            history: HeartbeatHistory::new(settings.max_sample_size),
            settings,
            last_heartbeat: None,
        }
    }

    /// The settings this detector was built with.
    pub fn settings(&self) -> &PhiAccrualSettings {
        &self.settings
    }

    /// The inter-arrival history (in milliseconds), including the two seed samples.
    pub fn history(&self) -> &HeartbeatHistory {
        &self.history
    }

    /// Whether at least one heartbeat has arrived.
    pub fn is_monitoring(&self) -> bool {
        self.last_heartbeat.is_some()
    }

    /// Records a heartbeat that arrived at `at`.
    ///
    /// The first heartbeat seeds the history with `estimate ± estimate / 4`. Later ones append
    /// the interval since the previous heartbeat, unless the peer was already suspected at
    /// `at` (the first heartbeat after an outage is not a representative sample). An instant
    /// earlier than the previous heartbeat counts as an interval of zero.
    pub fn heartbeat(&mut self, at: Instant) {
        match self.last_heartbeat {
            None => {
                let estimate = millis(self.settings.first_heartbeat_estimate);
                let deviation = estimate / 4.0;
                self.history.push(estimate - deviation);
                self.history.push(estimate + deviation);
            }
            Some(last) => {
                if self.is_available(at) {
                    self.history
                        .push(millis(at.saturating_duration_since(last)));
                }
            }
        }
        self.last_heartbeat = Some(at);
    }

    /// The suspicion level at `at`; `0.0` while no heartbeat has arrived.
    pub fn phi(&self, at: Instant) -> f64 {
        let Some(last) = self.last_heartbeat else {
            return 0.0;
        };
        let elapsed = millis(at.saturating_duration_since(last));
        let mean = self.history.mean() + millis(self.settings.acceptable_heartbeat_pause);
        let std_deviation = self
            .history
            .std_deviation()
            .max(millis(self.settings.min_std_deviation));
        phi(elapsed, mean, std_deviation)
    }

    /// Whether the peer is considered alive at `at`: `phi(at) < threshold`.
    pub fn is_available(&self, at: Instant) -> bool {
        self.phi(at) < self.settings.threshold
    }
}

fn millis(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
