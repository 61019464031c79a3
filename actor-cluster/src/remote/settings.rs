//! [`RemoteSettings`]: timeouts and sizes of the remoting layer, validated on start.

use std::time::Duration;

use crate::system_delivery::{DEFAULT_RESEND_INTERVAL, SenderSettings};

use super::remoting::RemoteError;

/// Default time an association may stay lost (disconnected, or failing to connect) before
/// its peer incarnation is quarantined and everything watched there is reported terminated:
/// 10 s.
///
/// Shorter reports a dead node sooner but also quarantines a peer behind a brief network
/// blip for good; longer keeps watchers waiting. Membership's failure detector replaces this
/// once clustering runs.
pub const DEFAULT_ASSOCIATION_LOSS_TIMEOUT: Duration = Duration::from_secs(10);

/// Default interval of the remoting tick (system-message resend, loss timeout check, cleanup
/// of abandoned asks): the system-delivery resend interval, 1 s.
///
/// Shorter repairs lost system messages and notices a lost association sooner at the cost of
/// more resends on a slow link.
pub const DEFAULT_TICK_INTERVAL: Duration = DEFAULT_RESEND_INTERVAL;

/// Default number of resolved local recipients kept by the inbound dispatcher: 10 000.
///
/// A hit skips path parsing and the actor-tree walk; the cache is cleared when full, so a
/// larger one uses more memory, a smaller one walks the tree more often.
pub const DEFAULT_REF_CACHE_CAPACITY: usize = 10_000;

/// Default number of inbound frames handled before events, commands and ticks get a turn:
/// 512.
///
/// Larger batches dispatch faster under load; smaller ones react to events sooner.
pub const DEFAULT_INBOUND_BATCH: usize = 512;

/// Settings of [`super::Remoting`]; `Default` gives the documented defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSettings {
    /// How long an association may stay lost before quarantine.
    pub loss_timeout: Duration,
    /// Interval of the remoting tick.
    pub tick_interval: Duration,
    /// Buffer size and give-up limit of each association's system-message sender.
    pub system_delivery: SenderSettings,
    /// Capacity of the inbound recipient cache.
    pub ref_cache_capacity: usize,
    /// Inbound frames per batch.
    pub inbound_batch: usize,
}

impl Default for RemoteSettings {
    fn default() -> Self {
        RemoteSettings {
            loss_timeout: DEFAULT_ASSOCIATION_LOSS_TIMEOUT,
            tick_interval: DEFAULT_TICK_INTERVAL,
            system_delivery: SenderSettings::default(),
            ref_cache_capacity: DEFAULT_REF_CACHE_CAPACITY,
            inbound_batch: DEFAULT_INBOUND_BATCH,
        }
    }
}

impl RemoteSettings {
    /// Sets the association loss timeout.
    pub fn loss_timeout(mut self, timeout: Duration) -> Self {
        self.loss_timeout = timeout;
        self
    }

    /// Sets the tick interval.
    pub fn tick_interval(mut self, interval: Duration) -> Self {
        self.tick_interval = interval;
        self
    }

    /// Sets the system-message sender's settings.
    pub fn system_delivery(mut self, settings: SenderSettings) -> Self {
        self.system_delivery = settings;
        self
    }

    /// Checks every value.
    ///
    /// # Errors
    /// [`RemoteError::InvalidSettings`] naming the first zero duration or size.
    pub fn validate(&self) -> Result<(), RemoteError> {
        let zero = [
            ("loss_timeout", self.loss_timeout.is_zero()),
            ("tick_interval", self.tick_interval.is_zero()),
            (
                "system_delivery.buffer_size",
                self.system_delivery.buffer_size == 0,
            ),
            ("ref_cache_capacity", self.ref_cache_capacity == 0),
            ("inbound_batch", self.inbound_batch == 0),
        ];
        match zero.into_iter().find(|(_, is_zero)| *is_zero) {
            Some((what, _)) => Err(RemoteError::InvalidSettings { what }),
            None => Ok(()),
        }
    }
}
