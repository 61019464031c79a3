//! Lease settings: name, owner and timing, validated when built.

use std::time::Duration;

use super::LeaseOwner;

/// Default time to live of a holding: 30 s.
///
/// The backend frees a lease this long after the holder's last successful renewal. Longer means
/// fewer spurious losses when the backend is slow, but a crashed holder blocks the name longer.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30);

/// Default renewal interval as a fraction of the TTL: `ttl / 3` (10 s for the default TTL).
///
/// Leaves room for one failed renewal to be retried before the deadline; more frequent renewals
/// cost backend load, rarer ones leave no retry.
pub const DEFAULT_RENEWAL_DIVISOR: u32 = 3;

/// Default safety margin as a fraction of the TTL: `ttl / 10` (3 s for the default TTL).
///
/// The holder fences itself this long before the backend could let another owner in. It absorbs
/// clock-rate drift between holder and backend and the delay of the holder's own scheduler; a
/// larger margin is safer but shortens the useful part of every renewal period.
pub const DEFAULT_SAFETY_MARGIN_DIVISOR: u32 = 10;

/// Default upper bound on one backend operation: 5 s, or the renewal interval if shorter.
///
/// A renewal that has not answered by then counts as failed and is retried at the next interval;
/// a short timeout detects a hung backend sooner but gives up on merely slow ones.
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest lease name or owner id accepted, in bytes: 255.
///
/// Names and ids are stored as database keys; a bound keeps rows and logs small.
pub const MAX_NAME_LEN: usize = 255;

/// Invalid lease settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseSettingsError {
    /// The lease name is empty.
    #[error("the lease name is empty")]
    EmptyName,
    /// The lease name is longer than [`MAX_NAME_LEN`].
    #[error("the lease name is {len} bytes long, more than the limit of {max}")]
    NameTooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The owner id is empty: a lease without an owner would exclude no one.
    #[error("the lease owner id is empty (lease `{name}`)")]
    EmptyOwner {
        /// The lease name.
        name: String,
    },
    /// The owner id is longer than [`MAX_NAME_LEN`].
    #[error("the lease owner id is {len} bytes long, more than the limit of {max}")]
    OwnerTooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The TTL is zero.
    #[error("the lease ttl is zero (lease `{name}`)")]
    ZeroTtl {
        /// The lease name.
        name: String,
    },
    /// The renewal interval is zero.
    #[error("the renewal interval is zero (lease `{name}`)")]
    ZeroRenewalInterval {
        /// The lease name.
        name: String,
    },
    /// The renewal interval is not below half the TTL, so a failed renewal could not be retried.
    #[error("the renewal interval {renewal_interval:?} must be less than half the ttl {ttl:?}")]
    RenewalIntervalTooLong {
        /// The interval given.
        renewal_interval: Duration,
        /// The TTL.
        ttl: Duration,
    },
    /// The safety margin leaves no time to renew: `renewal_interval + safety_margin >= ttl`.
    #[error(
        "the safety margin {safety_margin:?} plus the renewal interval {renewal_interval:?} must be less than the ttl {ttl:?}"
    )]
    SafetyMarginTooLong {
        /// The margin given.
        safety_margin: Duration,
        /// The renewal interval.
        renewal_interval: Duration,
        /// The TTL.
        ttl: Duration,
    },
    /// The operation timeout is zero.
    #[error("the operation timeout is zero (lease `{name}`)")]
    ZeroOperationTimeout {
        /// The lease name.
        name: String,
    },
    /// The operation timeout is not below `ttl - safety_margin`, so an acquire could answer after
    /// the holding it granted had already passed its deadline.
    #[error(
        "the operation timeout {operation_timeout:?} must be less than {limit:?} (ttl minus safety margin)"
    )]
    OperationTimeoutTooLong {
        /// The timeout given.
        operation_timeout: Duration,
        /// The exclusive upper bound.
        limit: Duration,
    },
}

/// Settings of one lease: its name, its owner and its timing.
///
/// Built and validated by [`LeaseSettings::builder`]; the fields are read through getters so a
/// value of this type is always valid.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use actor_coordination::lease::{LeaseOwner, LeaseSettings, LeaseSettingsError};
///
/// let settings = LeaseSettings::builder("singleton", LeaseOwner::new("node-a", 1))
///     .ttl(Duration::from_secs(9))
///     .build()?;
/// assert_eq!(settings.renewal_interval(), Duration::from_secs(3));
///
/// let err = LeaseSettings::builder("", LeaseOwner::new("node-a", 1)).build();
/// assert_eq!(err, Err(LeaseSettingsError::EmptyName));
/// # Ok::<(), LeaseSettingsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseSettings {
    name: String,
    owner: LeaseOwner,
    ttl: Duration,
    renewal_interval: Duration,
    operation_timeout: Duration,
    safety_margin: Duration,
}

impl LeaseSettings {
    /// Starts settings for lease `name` held by `owner`, with the default timing.
    pub fn builder(name: impl Into<String>, owner: LeaseOwner) -> LeaseSettingsBuilder {
        LeaseSettingsBuilder {
            name: name.into(),
            owner,
            ttl: DEFAULT_TTL,
            renewal_interval: None,
            operation_timeout: None,
            safety_margin: None,
        }
    }

    /// Returns the lease name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns the owner.
    pub fn owner(&self) -> &LeaseOwner {
        &self.owner
    }

    /// Returns the time to live of a holding after its last renewal.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Returns the interval between background renewals.
    pub fn renewal_interval(&self) -> Duration {
        self.renewal_interval
    }

    /// Returns the upper bound on one backend operation.
    pub fn operation_timeout(&self) -> Duration {
        self.operation_timeout
    }

    /// Returns how long before the backend's expiry the holder fences itself.
    pub fn safety_margin(&self) -> Duration {
        self.safety_margin
    }

    /// Returns how long a holding is trusted locally after the start of a renewal:
    /// `ttl - safety_margin`.
    pub fn trusted_window(&self) -> Duration {
        self.ttl.saturating_sub(self.safety_margin)
    }
}

/// Builder of [`LeaseSettings`]; see [`LeaseSettings::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct LeaseSettingsBuilder {
    name: String,
    owner: LeaseOwner,
    ttl: Duration,
    renewal_interval: Option<Duration>,
    operation_timeout: Option<Duration>,
    safety_margin: Option<Duration>,
}

impl LeaseSettingsBuilder {
    /// Sets the TTL (default [`DEFAULT_TTL`]).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Sets the renewal interval (default `ttl / DEFAULT_RENEWAL_DIVISOR`); must be below
    /// `ttl / 2`.
    pub fn renewal_interval(mut self, interval: Duration) -> Self {
        self.renewal_interval = Some(interval);
        self
    }

    /// Sets the operation timeout (default the lesser of [`DEFAULT_OPERATION_TIMEOUT`] and the
    /// renewal interval); must be below `ttl - safety_margin`.
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = Some(timeout);
        self
    }

    /// Sets the safety margin (default `ttl / DEFAULT_SAFETY_MARGIN_DIVISOR`); the renewal
    /// interval plus the margin must be below the TTL.
    pub fn safety_margin(mut self, margin: Duration) -> Self {
        self.safety_margin = Some(margin);
        self
    }

    /// Validates and builds the settings.
    ///
    /// # Errors
    ///
    /// A [`LeaseSettingsError`] naming the first invalid value: an empty or too long name or
    /// owner id, a zero TTL, interval or timeout, an interval not below half the TTL, a margin
    /// that leaves no time to renew, a timeout not below the trusted window.
    pub fn build(self) -> Result<LeaseSettings, LeaseSettingsError> {
        let LeaseSettingsBuilder {
            name,
            owner,
            ttl,
            renewal_interval,
            operation_timeout,
            safety_margin,
        } = self;
        if name.is_empty() {
            return Err(LeaseSettingsError::EmptyName);
        }
        if name.len() > MAX_NAME_LEN {
            return Err(LeaseSettingsError::NameTooLong {
                len: name.len(),
                max: MAX_NAME_LEN,
            });
        }
        if owner.id().is_empty() {
            return Err(LeaseSettingsError::EmptyOwner { name });
        }
        if owner.id().len() > MAX_NAME_LEN {
            return Err(LeaseSettingsError::OwnerTooLong {
                len: owner.id().len(),
                max: MAX_NAME_LEN,
            });
        }
        if ttl.is_zero() {
            return Err(LeaseSettingsError::ZeroTtl { name });
        }
        let renewal_interval = renewal_interval.unwrap_or(ttl / DEFAULT_RENEWAL_DIVISOR);
        if renewal_interval.is_zero() {
            return Err(LeaseSettingsError::ZeroRenewalInterval { name });
        }
        if renewal_interval.saturating_mul(2) >= ttl {
            return Err(LeaseSettingsError::RenewalIntervalTooLong {
                renewal_interval,
                ttl,
            });
        }
        let safety_margin = safety_margin.unwrap_or(ttl / DEFAULT_SAFETY_MARGIN_DIVISOR);
        if renewal_interval.saturating_add(safety_margin) >= ttl {
            return Err(LeaseSettingsError::SafetyMarginTooLong {
                safety_margin,
                renewal_interval,
                ttl,
            });
        }
        let operation_timeout =
            operation_timeout.unwrap_or(DEFAULT_OPERATION_TIMEOUT.min(renewal_interval));
        if operation_timeout.is_zero() {
            return Err(LeaseSettingsError::ZeroOperationTimeout { name });
        }
        let limit = ttl - safety_margin;
        if operation_timeout >= limit {
            return Err(LeaseSettingsError::OperationTimeoutTooLong {
                operation_timeout,
                limit,
            });
        }
        Ok(LeaseSettings {
            name,
            owner,
            ttl,
            renewal_interval,
            operation_timeout,
            safety_margin,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> LeaseOwner {
        LeaseOwner::new("node-a", 1)
    }

    #[test]
    fn defaults_derive_from_the_ttl() {
        let s = LeaseSettings::builder("x", owner()).build().unwrap();
        assert_eq!(s.ttl(), DEFAULT_TTL);
        assert_eq!(s.renewal_interval(), DEFAULT_TTL / 3);
        assert_eq!(s.safety_margin(), DEFAULT_TTL / 10);
        assert_eq!(s.operation_timeout(), DEFAULT_OPERATION_TIMEOUT);
        assert_eq!(s.trusted_window(), DEFAULT_TTL - DEFAULT_TTL / 10);

        let short = LeaseSettings::builder("x", owner())
            .ttl(Duration::from_secs(3))
            .build()
            .unwrap();
        assert_eq!(short.operation_timeout(), Duration::from_secs(1));
    }

    #[test]
    fn renewal_interval_must_be_below_half_the_ttl() {
        let ttl = Duration::from_secs(10);
        let err = LeaseSettings::builder("x", owner())
            .ttl(ttl)
            .renewal_interval(Duration::from_secs(5))
            .build();
        assert_eq!(
            err,
            Err(LeaseSettingsError::RenewalIntervalTooLong {
                renewal_interval: Duration::from_secs(5),
                ttl
            })
        );
        assert!(
            LeaseSettings::builder("x", owner())
                .ttl(ttl)
                .renewal_interval(Duration::from_millis(4_999))
                .build()
                .is_ok()
        );
    }
}
