//! Downing settings: the strategy and its timing, validated when built.

use std::time::Duration;

/// Default time the unreachable set must stay unchanged before the resolver decides: 7 s.
///
/// Suits clusters under about 10 nodes. Larger clusters need longer, because failure
/// detection and the gossip of unreachability take longer to settle everywhere and a
/// decision on a half-known picture is unsafe. Rule of thumb (after Akka's guidance): about
/// 10 s for up to 100 nodes, 15 s for a few hundred, 20 s or more for 1000. Shorter reacts
/// faster and risks deciding while observations are still arriving; the total time to
/// remove a crashed node is roughly failure detection (about 5 s with the default detector)
/// plus this window.
pub const DEFAULT_STABLE_AFTER: Duration = Duration::from_secs(7);

/// Default wait of the minority side before it tries to take the lease: 2 s.
///
/// Gives the majority side a head start so it normally wins; longer makes that more certain
/// and delays recovery when the majority side really died.
pub const DEFAULT_ACQUIRE_LEASE_DELAY_FOR_MINORITY: Duration = Duration::from_secs(2);

/// Floor of the derived down-all-when-unstable limit ([`DownAllWhenUnstable::On`]): 4 s.
pub const MIN_DOWN_ALL_WHEN_UNSTABLE: Duration = Duration::from_secs(4);

/// Errors raised when [`DowningSettings`] are invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DowningError {
    /// The stable-after window is zero.
    #[error("stable-after must be > 0")]
    ZeroStableAfter,
    /// A static quorum of zero members.
    #[error("static-quorum size must be > 0")]
    ZeroQuorumSize,
    /// A role filter that is the empty string.
    #[error("the role filter of strategy {strategy} is empty; use None for all members")]
    EmptyRole {
        /// The strategy's name.
        strategy: &'static str,
    },
    /// Auto-down after zero time.
    #[error("auto-down delay must be > 0")]
    ZeroAutoDownAfter,
    /// An explicit down-all-when-unstable limit of zero.
    #[error("down-all-when-unstable limit must be > 0 (use Off to disable)")]
    ZeroDownAllWhenUnstable,
}

/// Which downing decision to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DowningStrategy {
    /// The bigger side survives; an even split keeps the side with the lowest address.
    KeepMajority {
        /// Count only members with this role (all members when `None`).
        role: Option<String>,
    },
    /// The side holding the oldest member survives.
    KeepOldest {
        /// When the oldest is alone on its side (and the other side is not empty), down it
        /// and keep the others.
        down_if_alone: bool,
        /// Consider only members with this role (all members when `None`).
        role: Option<String>,
    },
    /// A side with at least `quorum_size` members survives.
    StaticQuorum {
        /// Minimum members a side needs to survive.
        quorum_size: usize,
        /// Count only members with this role (all members when `None`).
        role: Option<String>,
    },
    /// The side that takes the lease survives.
    LeaseMajority {
        /// Count only members with this role (all members when `None`).
        role: Option<String>,
        /// How long the minority side waits before trying the lease
        /// ([`DEFAULT_ACQUIRE_LEASE_DELAY_FOR_MINORITY`]).
        acquire_lease_delay_for_minority: Duration,
    },
    /// Down any member unreachable for `after`. **Unsafe in production**: both sides of a
    /// partition down each other and keep running as two clusters. For tests and
    /// single-process use only.
    AutoDown {
        /// How long a member must stay unreachable.
        after: Duration,
    },
}

impl Default for DowningStrategy {
    fn default() -> Self {
        DowningStrategy::KeepMajority { role: None }
    }
}

impl DowningStrategy {
    /// The strategy's name, as in configuration.
    pub fn name(&self) -> &'static str {
        match self {
            DowningStrategy::KeepMajority { .. } => "keep-majority",
            DowningStrategy::KeepOldest { .. } => "keep-oldest",
            DowningStrategy::StaticQuorum { .. } => "static-quorum",
            DowningStrategy::LeaseMajority { .. } => "lease-majority",
            DowningStrategy::AutoDown { .. } => "auto-down",
        }
    }

    /// The role filter, if any.
    pub fn role(&self) -> Option<&str> {
        match self {
            DowningStrategy::KeepMajority { role }
            | DowningStrategy::KeepOldest { role, .. }
            | DowningStrategy::StaticQuorum { role, .. }
            | DowningStrategy::LeaseMajority { role, .. } => role.as_deref(),
            DowningStrategy::AutoDown { .. } => None,
        }
    }
}

/// When to give up and down every member because the unreachable set never settles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DownAllWhenUnstable {
    /// Never.
    Off,
    /// After `stable_after` plus three quarters of it, but at least
    /// [`MIN_DOWN_ALL_WHEN_UNSTABLE`] (Akka's `on`).
    #[default]
    On,
    /// After `stable_after` plus this limit.
    After(Duration),
}

/// Settings of the downing provider.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use actor_cluster::downing::{DowningSettings, DowningStrategy};
///
/// let settings = DowningSettings::default()
///     .with_strategy(DowningStrategy::StaticQuorum { quorum_size: 3, role: None })
///     .with_stable_after(Duration::from_secs(10))
///     .build()?;
/// assert_eq!(settings.down_all_limit(), Some(Duration::from_millis(7500)));
/// assert!(DowningSettings::default().with_stable_after(Duration::ZERO).build().is_err());
/// # Ok::<(), actor_cluster::downing::DowningError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DowningSettings {
    /// The decision to apply (keep-majority by default).
    pub strategy: DowningStrategy,
    /// How long the unreachable set must stay unchanged before deciding
    /// ([`DEFAULT_STABLE_AFTER`]).
    pub stable_after: Duration,
    /// When to down everything because the unreachable set never settles.
    pub down_all_when_unstable: DownAllWhenUnstable,
}

impl Default for DowningSettings {
    fn default() -> Self {
        Self {
            strategy: DowningStrategy::default(),
            stable_after: DEFAULT_STABLE_AFTER,
            down_all_when_unstable: DownAllWhenUnstable::default(),
        }
    }
}

impl DowningSettings {
    /// Sets the strategy.
    pub fn with_strategy(mut self, strategy: DowningStrategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Sets the stable-after window.
    pub fn with_stable_after(mut self, stable_after: Duration) -> Self {
        self.stable_after = stable_after;
        self
    }

    /// Sets the down-all-when-unstable rule.
    pub fn with_down_all_when_unstable(mut self, rule: DownAllWhenUnstable) -> Self {
        self.down_all_when_unstable = rule;
        self
    }

    /// The extra time past `stable_after` after which an unstable cluster is downed entirely.
    pub fn down_all_limit(&self) -> Option<Duration> {
        match self.down_all_when_unstable {
            DownAllWhenUnstable::Off => None,
            DownAllWhenUnstable::On => {
                Some((self.stable_after * 3 / 4).max(MIN_DOWN_ALL_WHEN_UNSTABLE))
            }
            DownAllWhenUnstable::After(limit) => Some(limit),
        }
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// A [`DowningError`] naming the invalid value.
    pub fn validate(&self) -> Result<(), DowningError> {
        if self.stable_after.is_zero() {
            return Err(DowningError::ZeroStableAfter);
        }
        if self.strategy.role() == Some("") {
            return Err(DowningError::EmptyRole {
                strategy: self.strategy.name(),
            });
        }
        match &self.strategy {
            DowningStrategy::StaticQuorum { quorum_size: 0, .. } => {
                return Err(DowningError::ZeroQuorumSize);
            }
            DowningStrategy::AutoDown { after } if after.is_zero() => {
                return Err(DowningError::ZeroAutoDownAfter);
            }
            _ => {}
        }
        if self.down_all_when_unstable == DownAllWhenUnstable::After(Duration::ZERO) {
            return Err(DowningError::ZeroDownAllWhenUnstable);
        }
        Ok(())
    }

    /// Validates and returns the settings.
    ///
    /// # Errors
    ///
    /// As [`DowningSettings::validate`].
    pub fn build(self) -> Result<Self, DowningError> {
        self.validate()?;
        Ok(self)
    }
}
