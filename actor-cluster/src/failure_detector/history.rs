//! A bounded window of heartbeat inter-arrival times with running sums.

use std::collections::VecDeque;

/// The last `max_sample_size` inter-arrival times (milliseconds), with running sums so the
/// mean and variance cost O(1).
///
/// # Examples
///
/// ```
/// use actor_cluster::failure_detector::HeartbeatHistory;
///
/// let mut history = HeartbeatHistory::new(2);
/// history.push(100.0);
/// history.push(200.0);
/// history.push(300.0); // evicts 100
/// assert_eq!(history.len(), 2);
/// assert_eq!(history.mean(), 250.0);
/// assert_eq!(history.variance(), 2500.0);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct HeartbeatHistory {
    max_sample_size: usize,
    intervals: VecDeque<f64>,
    sum: f64,
    squared_sum: f64,
}

impl HeartbeatHistory {
    /// An empty history keeping at most `max_sample_size` samples (at least one).
    pub fn new(max_sample_size: usize) -> Self {
        let max_sample_size = max_sample_size.max(1);
        Self {
            max_sample_size,
            intervals: VecDeque::with_capacity(max_sample_size.min(1024)),
            sum: 0.0,
            squared_sum: 0.0,
        }
    }

    /// Appends a sample, evicting the oldest when full.
    pub fn push(&mut self, interval_ms: f64) {
        if self.intervals.len() == self.max_sample_size
            && let Some(old) = self.intervals.pop_front()
        {
            self.sum -= old;
            self.squared_sum -= old * old;
        }
        self.intervals.push_back(interval_ms);
        self.sum += interval_ms;
        self.squared_sum += interval_ms * interval_ms;
    }

    /// Number of samples held.
    pub fn len(&self) -> usize {
        self.intervals.len()
    }

    /// Whether no sample is held.
    pub fn is_empty(&self) -> bool {
        self.intervals.is_empty()
    }

    /// The samples, oldest first.
    pub fn intervals(&self) -> impl Iterator<Item = f64> + '_ {
        self.intervals.iter().copied()
    }

    /// Mean of the samples (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.intervals.is_empty() {
            0.0
        } else {
            self.sum / self.intervals.len() as f64
        }
    }

    /// Population variance of the samples (0 when empty; never negative).
    pub fn variance(&self) -> f64 {
        if self.intervals.is_empty() {
            return 0.0;
        }
        let mean = self.mean();
        (self.squared_sum / self.intervals.len() as f64 - mean * mean).max(0.0)
    }

    /// Population standard deviation of the samples.
    pub fn std_deviation(&self) -> f64 {
        self.variance().sqrt()
    }
}
