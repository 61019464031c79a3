//! Settings of the pub-sub mediator: gossip timing, tombstone lifetime and the limits that
//! bound its registry.

use std::time::Duration;

/// Default interval between two registry gossip rounds of a mediator: 1 s.
///
/// Each round sends one small status message (a version per node) to one random peer, so a
/// change reaches every node in a few rounds. Shorter spreads subscriptions faster at the
/// cost of more background traffic; longer delays when remote publishers see a new
/// subscriber.
pub const DEFAULT_GOSSIP_INTERVAL: Duration = Duration::from_secs(1);

/// Default time a removed registry entry (a tombstone) is kept before it is pruned: 120 s.
///
/// The tombstone is what tells other nodes that a subscription is gone; it must outlive the
/// time gossip needs to reach every node. Longer is safer on large or slow clusters, shorter
/// frees memory sooner when topics churn a lot.
pub const DEFAULT_REMOVED_TTL: Duration = Duration::from_secs(120);

/// Default upper bound on registry entries in one delta message: 3000.
///
/// A node far behind catches up over several rounds instead of in one huge frame; keep one
/// delta well under the transport's frame limit (entries are roughly 50–150 bytes).
pub const DEFAULT_MAX_DELTA_ENTRIES: usize = 3000;

/// Default upper bound on registry entries accepted from one gossip message: 3000.
///
/// Protects a node from a peer that sends (by a bug or a different configuration) more
/// than it should: entries beyond the bound are dropped and logged, and a bucket cut short
/// is completed in later rounds. Keep it at least as large as the peers'
/// [`DEFAULT_MAX_DELTA_ENTRIES`] (their `max_delta_entries`), or catching up takes more
/// rounds than needed.
pub const DEFAULT_MAX_RECEIVED_ENTRIES: usize = 3000;

/// Default limit on distinct topics with local subscribers on one node: 10 000.
///
/// Each topic costs a registry entry gossiped to every node; past the limit a subscribe to a
/// new topic is refused with [`PubSubError::TooManyTopics`](super::PubSubError).
pub const DEFAULT_MAX_TOPICS: usize = 10_000;

/// Default limit on local subscribers of one topic on one node: 10 000.
///
/// A publish fans out to every one of them on the receiving node; past the limit a subscribe
/// is refused with [`PubSubError::TooManySubscribers`](super::PubSubError).
pub const DEFAULT_MAX_SUBSCRIBERS_PER_TOPIC: usize = 10_000;

/// Default limit on actors registered for `send` on one node: 10 000.
pub const DEFAULT_MAX_REGISTERED_PATHS: usize = 10_000;

/// Default limit on the length of a topic or group name, in bytes: 256.
///
/// Names travel in every registry entry; a bound keeps a careless name from bloating gossip.
pub const DEFAULT_MAX_NAME_LENGTH: usize = 256;

/// Default time a subscribe, unsubscribe or register waits for the mediator's
/// acknowledgement: 5 s.
///
/// The mediator answers as soon as it has processed the request; the timeout only matters
/// when the node is overloaded or shutting down.
pub const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// An invalid [`PubSubSettings`] value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PubSubSettingsError {
    /// A duration setting is zero.
    #[error("the pub-sub setting {name} must be greater than zero")]
    ZeroDuration {
        /// The setting's name.
        name: &'static str,
    },
    /// A limit is zero.
    #[error("the pub-sub limit {name} must be greater than zero")]
    ZeroLimit {
        /// The setting's name.
        name: &'static str,
    },
}

/// Settings of a node's pub-sub mediator; validated by [`PubSubSettings::validate`] when
/// the mediator starts.
///
/// # Examples
///
/// ```
/// use actor_cluster::pubsub::PubSubSettings;
/// use std::time::Duration;
///
/// let settings = PubSubSettings::default()
///     .with_gossip_interval(Duration::from_millis(100))
///     .with_max_topics(100);
/// assert!(settings.validate().is_ok());
/// assert!(PubSubSettings::default().with_max_topics(0).validate().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PubSubSettings {
    /// Interval between registry gossip rounds ([`DEFAULT_GOSSIP_INTERVAL`]).
    pub gossip_interval: Duration,
    /// How long tombstones are kept ([`DEFAULT_REMOVED_TTL`]).
    pub removed_ttl: Duration,
    /// Upper bound on entries per delta message ([`DEFAULT_MAX_DELTA_ENTRIES`]).
    pub max_delta_entries: usize,
    /// Upper bound on entries accepted from one gossip message
    /// ([`DEFAULT_MAX_RECEIVED_ENTRIES`]).
    pub max_received_entries: usize,
    /// Limit on topics with local subscribers ([`DEFAULT_MAX_TOPICS`]).
    pub max_topics: usize,
    /// Limit on local subscribers per topic ([`DEFAULT_MAX_SUBSCRIBERS_PER_TOPIC`]).
    pub max_subscribers_per_topic: usize,
    /// Limit on actors registered for `send` ([`DEFAULT_MAX_REGISTERED_PATHS`]).
    pub max_registered_paths: usize,
    /// Limit on topic and group name length ([`DEFAULT_MAX_NAME_LENGTH`]).
    pub max_name_length: usize,
    /// How long requests wait for the mediator's answer ([`DEFAULT_ACK_TIMEOUT`]).
    pub ack_timeout: Duration,
}

impl Default for PubSubSettings {
    fn default() -> Self {
        PubSubSettings {
            gossip_interval: DEFAULT_GOSSIP_INTERVAL,
            removed_ttl: DEFAULT_REMOVED_TTL,
            max_delta_entries: DEFAULT_MAX_DELTA_ENTRIES,
            max_received_entries: DEFAULT_MAX_RECEIVED_ENTRIES,
            max_topics: DEFAULT_MAX_TOPICS,
            max_subscribers_per_topic: DEFAULT_MAX_SUBSCRIBERS_PER_TOPIC,
            max_registered_paths: DEFAULT_MAX_REGISTERED_PATHS,
            max_name_length: DEFAULT_MAX_NAME_LENGTH,
            ack_timeout: DEFAULT_ACK_TIMEOUT,
        }
    }
}

impl PubSubSettings {
    /// Sets the gossip interval.
    pub fn with_gossip_interval(mut self, interval: Duration) -> Self {
        self.gossip_interval = interval;
        self
    }

    /// Sets how long tombstones are kept.
    pub fn with_removed_ttl(mut self, ttl: Duration) -> Self {
        self.removed_ttl = ttl;
        self
    }

    /// Sets the bound on entries per delta message.
    pub fn with_max_delta_entries(mut self, max: usize) -> Self {
        self.max_delta_entries = max;
        self
    }

    /// Sets the bound on entries accepted from one gossip message.
    pub fn with_max_received_entries(mut self, max: usize) -> Self {
        self.max_received_entries = max;
        self
    }

    /// Sets the limit on topics with local subscribers.
    pub fn with_max_topics(mut self, max: usize) -> Self {
        self.max_topics = max;
        self
    }

    /// Sets the limit on local subscribers per topic.
    pub fn with_max_subscribers_per_topic(mut self, max: usize) -> Self {
        self.max_subscribers_per_topic = max;
        self
    }

    /// Sets the limit on actors registered for `send`.
    pub fn with_max_registered_paths(mut self, max: usize) -> Self {
        self.max_registered_paths = max;
        self
    }

    /// Sets the limit on topic and group name length.
    pub fn with_max_name_length(mut self, max: usize) -> Self {
        self.max_name_length = max;
        self
    }

    /// Sets how long requests wait for the mediator's answer.
    pub fn with_ack_timeout(mut self, timeout: Duration) -> Self {
        self.ack_timeout = timeout;
        self
    }

    /// Checks every value.
    ///
    /// # Errors
    ///
    /// [`PubSubSettingsError::ZeroDuration`] or [`PubSubSettingsError::ZeroLimit`] naming the
    /// first setting that is zero.
    pub fn validate(&self) -> Result<(), PubSubSettingsError> {
        for (name, value) in [
            ("gossip_interval", self.gossip_interval),
            ("removed_ttl", self.removed_ttl),
            ("ack_timeout", self.ack_timeout),
        ] {
            if value.is_zero() {
                return Err(PubSubSettingsError::ZeroDuration { name });
            }
        }
        for (name, value) in [
            ("max_delta_entries", self.max_delta_entries),
            ("max_received_entries", self.max_received_entries),
            ("max_topics", self.max_topics),
            ("max_subscribers_per_topic", self.max_subscribers_per_topic),
            ("max_registered_paths", self.max_registered_paths),
            ("max_name_length", self.max_name_length),
        ] {
            if value == 0 {
                return Err(PubSubSettingsError::ZeroLimit { name });
            }
        }
        Ok(())
    }
}
