//! Settings of a cluster node: seeds, roles, gossip and heartbeat timing, downing.

use std::time::Duration;

use crate::Address;
use crate::downing::{DowningError, DowningSettings, DowningStrategy};
use crate::failure_detector::{
    DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_MONITORED_PEERS, FailureDetectorError, PhiAccrualSettings,
};
use crate::membership::{DEFAULT_PREFER_UNSEEN_PROBABILITY, SeedJoinSettings};

/// Default interval between two gossip rounds (and leader-action checks): 1 s.
///
/// Shorter spreads changes faster at the cost of more traffic (one gossip message per node
/// per round); longer lowers traffic but delays convergence and every leader action.
pub const DEFAULT_GOSSIP_INTERVAL: Duration = Duration::from_secs(1);

/// How many gossip intervals a node that left (Exiting) keeps running to spread that state
/// before terminating its actor system: 3.
///
/// More rounds make it likelier that every member saw it leave before it goes silent
/// (otherwise the failure detector has to notice); fewer let it stop sooner.
pub const EXITING_SHUTDOWN_ROUNDS: u32 = 3;

/// Default delay between the removal of a member that left gracefully and the quarantine
/// of its remoting association (which reports its watched actors terminated): 5 s.
///
/// A downed member is quarantined at once; one that left may still be finishing a
/// hand-over (a cluster singleton's) when it is removed, so its last messages get this long
/// to arrive. Shorter reports its actors terminated sooner (when the node did not report
/// them itself while shutting down); longer waits for slower hand-overs.
pub const DEFAULT_QUARANTINE_REMOVED_AFTER: Duration = Duration::from_secs(5);

/// Default longest time a leaving node waits for its exit blockers (a cluster singleton's
/// hand-over) before its leave goes on anyway: 30 s.
///
/// While a leave is held the membership cannot converge, so the leader takes no action
/// (no member joins, none is removed): longer protects singletons that take longer to stop
/// (their successor could otherwise overlap them once this node is removed), shorter
/// bounds that freeze. See [`ExitBlocker`](super::ExitBlocker).
pub const DEFAULT_EXIT_BLOCKER_TIMEOUT: Duration = Duration::from_secs(30);

/// Quarantine delay of a removed member that left, in [`ClusterSettings::fast`]: 500 ms.
pub const FAST_QUARANTINE_REMOVED_AFTER: Duration = Duration::from_millis(500);

/// Gossip interval of [`ClusterSettings::fast`]: 100 ms.
pub const FAST_GOSSIP_INTERVAL: Duration = Duration::from_millis(100);

/// Heartbeat interval of [`ClusterSettings::fast`]: 100 ms.
pub const FAST_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(100);

/// Acceptable heartbeat pause of [`ClusterSettings::fast`]: 500 ms.
pub const FAST_ACCEPTABLE_HEARTBEAT_PAUSE: Duration = Duration::from_millis(500);

/// Stable-after window of [`ClusterSettings::fast`]: 1 s.
pub const FAST_STABLE_AFTER: Duration = Duration::from_secs(1);

/// Seed-node timeout of [`ClusterSettings::fast`]: 1 s.
pub const FAST_SEED_NODE_TIMEOUT: Duration = Duration::from_secs(1);

/// InitJoin resend interval of [`ClusterSettings::fast`]: 200 ms.
pub const FAST_INIT_JOIN_RESEND_INTERVAL: Duration = Duration::from_millis(200);

/// Retry-unsuccessful-join delay of [`ClusterSettings::fast`]: 2 s.
pub const FAST_RETRY_UNSUCCESSFUL_JOIN_AFTER: Duration = Duration::from_secs(2);

/// An invalid [`ClusterSettings`] value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClusterSettingsError {
    /// The gossip interval is zero.
    #[error("the gossip interval must be greater than zero")]
    ZeroGossipInterval,
    /// The heartbeat interval is zero.
    #[error("the heartbeat interval must be greater than zero")]
    ZeroHeartbeatInterval,
    /// The number of monitored peers is zero.
    #[error("a node must monitor at least one peer")]
    ZeroMonitoredPeers,
    /// A seed-join duration is zero.
    #[error("the seed-join setting {name} must be greater than zero")]
    ZeroSeedJoinDuration {
        /// The setting's name.
        name: &'static str,
    },
    /// A role is the empty string.
    #[error("a role must not be empty")]
    EmptyRole,
    /// The prefer-unseen probability is outside 0..=1.
    #[error("the prefer-unseen probability {value} is not within 0..=1")]
    InvalidPreferUnseen {
        /// The refused value.
        value: f64,
    },
    /// The failure detector settings are invalid.
    #[error(transparent)]
    FailureDetector(#[from] FailureDetectorError),
    /// The downing settings are invalid.
    #[error(transparent)]
    Downing(#[from] DowningError),
}

/// How a node joins and runs in a cluster; validated by [`ClusterSettings::validate`].
///
/// # Examples
///
/// ```
/// use actor_cluster::Address;
/// use actor_cluster::cluster::ClusterSettings;
///
/// let seed = Address::logical("sys", "a")?;
/// let settings = ClusterSettings::default()
///     .with_seed_nodes(vec![seed])
///     .with_roles(["backend"])
///     .build()?;
/// assert_eq!(settings.roles, vec!["backend".to_owned()]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterSettings {
    /// The seed nodes, in priority order (the first may form the cluster by itself).
    pub seed_nodes: Vec<Address>,
    /// This node's roles.
    pub roles: Vec<String>,
    /// [`DEFAULT_GOSSIP_INTERVAL`].
    pub gossip_interval: Duration,
    /// Probability of gossiping to a peer that has not seen the state
    /// ([`DEFAULT_PREFER_UNSEEN_PROBABILITY`]).
    pub prefer_unseen: f64,
    /// Interval between two heartbeats to each monitored peer
    /// ([`DEFAULT_HEARTBEAT_INTERVAL`]); also the failure detector's first estimate.
    pub heartbeat_interval: Duration,
    /// The phi-accrual failure detector.
    pub failure_detector: PhiAccrualSettings,
    /// How many peers each node monitors ([`DEFAULT_MONITORED_PEERS`]).
    pub monitored_peers: usize,
    /// The downing provider's settings.
    pub downing: DowningSettings,
    /// Seed-join timing.
    pub seed_join: SeedJoinSettings,
    /// Delay before a member removed after leaving gracefully is quarantined
    /// ([`DEFAULT_QUARANTINE_REMOVED_AFTER`]); a downed member is quarantined at once.
    pub quarantine_removed_after: Duration,
    /// Longest time a leaving node holds its leave for its exit blockers
    /// ([`DEFAULT_EXIT_BLOCKER_TIMEOUT`]; zero: never hold).
    pub exit_blocker_timeout: Duration,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        Self {
            seed_nodes: Vec::new(),
            roles: Vec::new(),
            gossip_interval: DEFAULT_GOSSIP_INTERVAL,
            prefer_unseen: DEFAULT_PREFER_UNSEEN_PROBABILITY,
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
            failure_detector: PhiAccrualSettings::default(),
            monitored_peers: DEFAULT_MONITORED_PEERS,
            downing: DowningSettings::default(),
            seed_join: SeedJoinSettings::default(),
            quarantine_removed_after: DEFAULT_QUARANTINE_REMOVED_AFTER,
            exit_blocker_timeout: DEFAULT_EXIT_BLOCKER_TIMEOUT,
        }
    }
}

impl ClusterSettings {
    /// The fast profile for tests: 100 ms gossip and heartbeats, 500 ms acceptable pause,
    /// 1 s stable-after (keep-majority), 1 s seed-node timeout.
    ///
    /// Far too eager for a real network (a GC pause or a slow link downs nodes); meant for
    /// in-process clusters under a paused or real clock.
    pub fn fast() -> Self {
        Self {
            gossip_interval: FAST_GOSSIP_INTERVAL,
            heartbeat_interval: FAST_HEARTBEAT_INTERVAL,
            failure_detector: PhiAccrualSettings::default()
                .with_heartbeat_interval(FAST_HEARTBEAT_INTERVAL)
                .with_acceptable_heartbeat_pause(FAST_ACCEPTABLE_HEARTBEAT_PAUSE),
            downing: DowningSettings::default().with_stable_after(FAST_STABLE_AFTER),
            seed_join: SeedJoinSettings {
                seed_node_timeout: FAST_SEED_NODE_TIMEOUT,
                resend_interval: FAST_INIT_JOIN_RESEND_INTERVAL,
                retry_unsuccessful_join_after: FAST_RETRY_UNSUCCESSFUL_JOIN_AFTER,
            },
            quarantine_removed_after: FAST_QUARANTINE_REMOVED_AFTER,
            ..Self::default()
        }
    }

    /// Sets the seed nodes.
    pub fn with_seed_nodes(mut self, seeds: Vec<Address>) -> Self {
        self.seed_nodes = seeds;
        self
    }

    /// Sets the roles.
    pub fn with_roles<R: Into<String>>(mut self, roles: impl IntoIterator<Item = R>) -> Self {
        self.roles = roles.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the gossip interval.
    pub fn with_gossip_interval(mut self, interval: Duration) -> Self {
        self.gossip_interval = interval;
        self
    }

    /// Sets the failure detector settings.
    pub fn with_failure_detector(mut self, settings: PhiAccrualSettings) -> Self {
        self.failure_detector = settings;
        self
    }

    /// Sets the downing settings.
    pub fn with_downing(mut self, downing: DowningSettings) -> Self {
        self.downing = downing;
        self
    }

    /// Sets the downing strategy, keeping the other downing settings.
    pub fn with_downing_strategy(mut self, strategy: DowningStrategy) -> Self {
        self.downing = self.downing.with_strategy(strategy);
        self
    }

    /// Sets the delay before a member removed after a graceful leave is quarantined.
    pub fn with_quarantine_removed_after(mut self, delay: Duration) -> Self {
        self.quarantine_removed_after = delay;
        self
    }

    /// Sets how long a leaving node holds its leave for its exit blockers (zero: never).
    pub fn with_exit_blocker_timeout(mut self, timeout: Duration) -> Self {
        self.exit_blocker_timeout = timeout;
        self
    }

    /// Checks every value.
    ///
    /// # Errors
    ///
    /// A [`ClusterSettingsError`] naming the invalid value.
    pub fn validate(&self) -> Result<(), ClusterSettingsError> {
        if self.gossip_interval.is_zero() {
            return Err(ClusterSettingsError::ZeroGossipInterval);
        }
        if self.heartbeat_interval.is_zero() {
            return Err(ClusterSettingsError::ZeroHeartbeatInterval);
        }
        if self.monitored_peers == 0 {
            return Err(ClusterSettingsError::ZeroMonitoredPeers);
        }
        if !(0.0..=1.0).contains(&self.prefer_unseen) {
            return Err(ClusterSettingsError::InvalidPreferUnseen {
                value: self.prefer_unseen,
            });
        }
        if self.roles.iter().any(String::is_empty) {
            return Err(ClusterSettingsError::EmptyRole);
        }
        let join = &self.seed_join;
        for (name, value) in [
            ("seed_node_timeout", join.seed_node_timeout),
            ("resend_interval", join.resend_interval),
            (
                "retry_unsuccessful_join_after",
                join.retry_unsuccessful_join_after,
            ),
        ] {
            if value.is_zero() {
                return Err(ClusterSettingsError::ZeroSeedJoinDuration { name });
            }
        }
        self.failure_detector.validate()?;
        self.downing.validate()?;
        Ok(())
    }

    /// Validates and returns the settings.
    ///
    /// # Errors
    ///
    /// As [`ClusterSettings::validate`].
    pub fn build(self) -> Result<Self, ClusterSettingsError> {
        self.validate()?;
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_fast_profile_are_valid() {
        assert_eq!(ClusterSettings::default().validate(), Ok(()));
        let fast = ClusterSettings::fast().build().expect("valid");
        assert_eq!(fast.gossip_interval, FAST_GOSSIP_INTERVAL);
        assert_eq!(fast.downing.stable_after, FAST_STABLE_AFTER);
        assert_eq!(
            ClusterSettings::default().gossip_interval,
            DEFAULT_GOSSIP_INTERVAL
        );
        assert_eq!(fast.exit_blocker_timeout, DEFAULT_EXIT_BLOCKER_TIMEOUT);
        // zero is valid: a leave is then never held
        let never = ClusterSettings::fast().with_exit_blocker_timeout(Duration::ZERO);
        assert_eq!(never.validate(), Ok(()));
    }

    #[test]
    fn invalid_values_are_named() {
        let zero = Duration::ZERO;
        let base = ClusterSettings::fast;
        assert_eq!(
            base().with_gossip_interval(zero).validate(),
            Err(ClusterSettingsError::ZeroGossipInterval)
        );
        let mut s = base();
        s.heartbeat_interval = zero;
        assert_eq!(
            s.validate(),
            Err(ClusterSettingsError::ZeroHeartbeatInterval)
        );
        let mut s = base();
        s.monitored_peers = 0;
        assert_eq!(s.validate(), Err(ClusterSettingsError::ZeroMonitoredPeers));
        let mut s = base();
        s.prefer_unseen = 1.5;
        assert_eq!(
            s.validate(),
            Err(ClusterSettingsError::InvalidPreferUnseen { value: 1.5 })
        );
        assert_eq!(
            base().with_roles([""]).validate(),
            Err(ClusterSettingsError::EmptyRole)
        );
        let mut s = base();
        s.seed_join.seed_node_timeout = zero;
        assert_eq!(
            s.validate(),
            Err(ClusterSettingsError::ZeroSeedJoinDuration {
                name: "seed_node_timeout"
            })
        );
        let s = base().with_downing(DowningSettings::default().with_stable_after(zero));
        assert!(matches!(
            s.validate(),
            Err(ClusterSettingsError::Downing(DowningError::ZeroStableAfter))
        ));
    }
}
