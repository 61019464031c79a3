//! Settings of the phi-accrual failure detector, with Akka's defaults, validated when built.

use std::time::Duration;

/// Default phi above which a peer is suspected: 8.0.
///
/// Lower reacts faster to a crash but raises false suspicions on a jittery network or a
/// paused process; higher is more tolerant and slower. Akka's cluster default.
pub const DEFAULT_THRESHOLD: f64 = 8.0;

/// Default interval between heartbeats a monitored peer sends: 1 s.
///
/// It is also the first-heartbeat estimate that seeds the history. Shorter detects faster
/// at the cost of more heartbeat traffic per monitored peer.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);

/// Default pause tolerated on top of the mean interval before phi climbs: 3 s.
///
/// Covers garbage-collection-like stalls and brief network hiccups; the detection time of a
/// crash is roughly this plus a few heartbeat intervals.
pub const DEFAULT_ACCEPTABLE_HEARTBEAT_PAUSE: Duration = Duration::from_secs(3);

/// Default floor of the standard deviation used for phi: 100 ms.
///
/// A very regular history would otherwise give a tiny deviation and a detector that fires on
/// the first slightly late heartbeat.
pub const DEFAULT_MIN_STD_DEVIATION: Duration = Duration::from_millis(100);

/// Default number of inter-arrival samples kept: 1000.
///
/// More samples make the estimate steadier and slower to adapt to a changed network.
pub const DEFAULT_MAX_SAMPLE_SIZE: usize = 1000;

/// Errors raised when [`PhiAccrualSettings`] are invalid.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FailureDetectorError {
    /// The threshold is not a finite number above zero.
    #[error("phi threshold must be finite and > 0, got {threshold}")]
    InvalidThreshold {
        /// The rejected threshold.
        threshold: f64,
    },
    /// The history would hold no sample.
    #[error("max sample size must be > 0")]
    ZeroSampleSize,
    /// The minimum standard deviation is zero.
    #[error("min standard deviation must be > 0")]
    ZeroMinStdDeviation,
    /// The first heartbeat estimate (the heartbeat interval) is zero.
    #[error("first heartbeat estimate must be > 0")]
    ZeroFirstHeartbeatEstimate,
}

/// Settings of a [`PhiAccrualFailureDetector`](super::PhiAccrualFailureDetector).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use actor_cluster::failure_detector::PhiAccrualSettings;
///
/// let settings = PhiAccrualSettings::default()
///     .with_threshold(10.0)
///     .with_acceptable_heartbeat_pause(Duration::from_secs(5))
///     .build()?;
/// assert_eq!(settings.threshold, 10.0);
/// assert!(PhiAccrualSettings::default().with_threshold(0.0).build().is_err());
/// # Ok::<(), actor_cluster::failure_detector::FailureDetectorError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct PhiAccrualSettings {
    /// Phi at or above which the peer is unavailable ([`DEFAULT_THRESHOLD`]).
    pub threshold: f64,
    /// Samples kept in the history ([`DEFAULT_MAX_SAMPLE_SIZE`]).
    pub max_sample_size: usize,
    /// Floor of the standard deviation ([`DEFAULT_MIN_STD_DEVIATION`]).
    pub min_std_deviation: Duration,
    /// Pause added to the mean ([`DEFAULT_ACCEPTABLE_HEARTBEAT_PAUSE`]).
    pub acceptable_heartbeat_pause: Duration,
    /// Interval assumed before real samples exist: the heartbeat interval
    /// ([`DEFAULT_HEARTBEAT_INTERVAL`]).
    pub first_heartbeat_estimate: Duration,
}

impl Default for PhiAccrualSettings {
    fn default() -> Self {
        Self {
            threshold: DEFAULT_THRESHOLD,
            max_sample_size: DEFAULT_MAX_SAMPLE_SIZE,
            min_std_deviation: DEFAULT_MIN_STD_DEVIATION,
            acceptable_heartbeat_pause: DEFAULT_ACCEPTABLE_HEARTBEAT_PAUSE,
            first_heartbeat_estimate: DEFAULT_HEARTBEAT_INTERVAL,
        }
    }
}

impl PhiAccrualSettings {
    /// Sets the phi threshold.
    pub fn with_threshold(mut self, threshold: f64) -> Self {
        self.threshold = threshold;
        self
    }

    /// Sets the number of samples kept.
    pub fn with_max_sample_size(mut self, max_sample_size: usize) -> Self {
        self.max_sample_size = max_sample_size;
        self
    }

    /// Sets the floor of the standard deviation.
    pub fn with_min_std_deviation(mut self, min_std_deviation: Duration) -> Self {
        self.min_std_deviation = min_std_deviation;
        self
    }

    /// Sets the acceptable heartbeat pause.
    pub fn with_acceptable_heartbeat_pause(mut self, pause: Duration) -> Self {
        self.acceptable_heartbeat_pause = pause;
        self
    }

    /// Sets the heartbeat interval, used as the first-heartbeat estimate.
    pub fn with_heartbeat_interval(mut self, interval: Duration) -> Self {
        self.first_heartbeat_estimate = interval;
        self
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// [`FailureDetectorError::InvalidThreshold`] for a threshold that is not finite and
    /// positive, [`FailureDetectorError::ZeroSampleSize`],
    /// [`FailureDetectorError::ZeroMinStdDeviation`] or
    /// [`FailureDetectorError::ZeroFirstHeartbeatEstimate`] for a zero value.
    pub fn validate(&self) -> Result<(), FailureDetectorError> {
        if !(self.threshold.is_finite() && self.threshold > 0.0) {
            return Err(FailureDetectorError::InvalidThreshold {
                threshold: self.threshold,
            });
        }
        if self.max_sample_size == 0 {
            return Err(FailureDetectorError::ZeroSampleSize);
        }
        if self.min_std_deviation.is_zero() {
            return Err(FailureDetectorError::ZeroMinStdDeviation);
        }
        if self.first_heartbeat_estimate.is_zero() {
            return Err(FailureDetectorError::ZeroFirstHeartbeatEstimate);
        }
        Ok(())
    }

    /// Validates and returns the settings.
    ///
    /// # Errors
    ///
    /// As [`PhiAccrualSettings::validate`].
    pub fn build(self) -> Result<Self, FailureDetectorError> {
        self.validate()?;
        Ok(self)
    }
}
