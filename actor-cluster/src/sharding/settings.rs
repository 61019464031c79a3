//! [`ShardingSettings`]: the knobs of one sharded entity type, each default a named constant
//! whose doc gives its trade-off.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use actor_coordination::runner_storage::{DEFAULT_SHARD_LOCK_TTL, RunnerStorage};

use super::ShardingError;
use super::allocation::{LeastShardAllocationStrategy, ShardAllocationStrategy};

/// Default number of shards per entity type.
///
/// Fixed for the life of the cluster: changing it moves most entities to another shard, so
/// every node must use the same value. About ten times the largest expected node count lets
/// least-shards allocation balance well; many more shards mean more lock rows and more
/// coordinator traffic for no gain.
pub const DEFAULT_NUMBER_OF_SHARDS: u32 = 100;

/// Default bound on the messages a region buffers while shard homes are being resolved or
/// handed off (all shards together); overflowing messages go to dead letters.
///
/// Larger rides out longer coordinator outages without loss, at the price of memory.
pub const DEFAULT_BUFFER_SIZE: usize = 10_000;

/// Default bound on the messages a shard holds for one entity while it is passivating
/// (stopping until a fresh instance takes them); overflowing messages go to dead letters.
///
/// An entity whose stop message waits behind a long mailbox passivates slowly; larger rides
/// that out without loss, smaller caps the memory one hot entity can take.
pub const DEFAULT_ENTITY_BUFFER_SIZE: usize = 1_000;

/// Default idle time after which an entity is passivated (stopped until its next message).
///
/// Shorter frees memory sooner but restarts busy-then-quiet entities more often.
pub const DEFAULT_PASSIVATION_IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// Default interval of the coordinator's periodic rebalance check.
///
/// Shorter evens out load sooner after a node joins; every rebalance pauses the moved shards'
/// entities for a hand-off, so too short causes churn.
pub const DEFAULT_REBALANCE_INTERVAL: Duration = Duration::from_secs(10);

/// Default number of shards that may be moving (handed off) at the same time in a periodic
/// rebalance.
///
/// Higher rebalances faster after a membership change; lower keeps most entities available
/// while it happens. A region that leaves hands off all its shards at once regardless.
pub const DEFAULT_MAX_SIMULTANEOUS_REBALANCE: usize = 5;

/// Default time a hand-off may take (all regions acknowledging, the old home stopping the
/// shard's entities) before the coordinator gives up and leaves the shard where it was.
///
/// Longer gives slow entities time to flush on their stop message; shorter frees a shard stuck
/// on an unresponsive region sooner.
pub const DEFAULT_HAND_OFF_TIMEOUT: Duration = Duration::from_secs(60);

/// Default interval at which a region retries what did not answer: registering with the
/// coordinator, asking for a shard home, acquiring a shard lock another runner holds.
///
/// Shorter recovers faster after a coordinator move or a node failure at the cost of more
/// messages and storage queries.
pub const DEFAULT_RETRY_INTERVAL: Duration = Duration::from_secs(2);

/// Default safety margin subtracted from the lock ttl when a region computes how long its
/// shard locks stay valid: it stops (fences) its shards that long before the storage could
/// hand the lock to another runner, covering clock drift and the time a stop takes.
pub const DEFAULT_LOCK_SAFETY_MARGIN: Duration = Duration::from_secs(3);

/// Default number of regions that must have registered before the coordinator allocates the
/// first shard.
///
/// One starts serving at once. Raising it to the expected cluster size spreads the first
/// shards over every node instead of piling them on the region that asked first (and moving
/// them in later rebalances); the price is that nothing is served until that many regions
/// are there.
pub const DEFAULT_MIN_REGIONS: usize = 1;

/// Consecutive refusals of a shard's lock (each [`ShardingSettings::retry_interval`] apart)
/// after which its region reports the refusal to the coordinator, which reads the lock's
/// holder again and re-homes the shard to the holder's region (then again every that many
/// refusals while it lasts).
///
/// A refusal is normal for a while after a shard moved from a crashed node (its lock has to
/// expire), so a report there costs one storage read and changes nothing; lower repairs a
/// wrong allocation (a shard locked after a new coordinator read the lock table) sooner.
pub const REFUSALS_BEFORE_REPORT: u32 = 3;

/// Most bytes of entity ids one [`CoordinatorMsg::EntitiesChanged`] report carries when a
/// region reports the remembered entities of its shards after registering (a larger set
/// goes in several reports).
///
/// Well below the transports' 256 KiB frame limit, so a shard with very many remembered
/// entities never makes a message the transport refuses; smaller only adds messages.
///
/// [`CoordinatorMsg::EntitiesChanged`]: super::CoordinatorMsg::EntitiesChanged
pub const REMEMBER_CHUNK_BYTES: usize = 64 * 1024;

/// Builds the message sent to an entity to stop it (passivation and hand-off).
pub type StopMessage<M> = Arc<dyn Fn() -> M + Send + Sync>;

/// Settings of one sharded entity type; the storage is required, every other field has a
/// documented default.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use actor_cluster::sharding::ShardingSettings;
/// use actor_coordination::runner_storage::MemoryRunnerStorage;
///
/// let settings = ShardingSettings::<String>::new(Arc::new(MemoryRunnerStorage::default()))
///     .with_number_of_shards(32)
///     .with_passivation_idle_timeout(Duration::from_secs(30))
///     .build()
///     .expect("valid settings");
/// assert_eq!(settings.number_of_shards, 32);
/// ```
pub struct ShardingSettings<M> {
    /// The shard-lock table and runner registry shared by every node.
    pub storage: Arc<dyn RunnerStorage>,
    /// Shards per type; the same on every node for the cluster's life.
    pub number_of_shards: u32,
    /// Messages a region buffers at most while homes are resolved or handed off.
    pub buffer_size: usize,
    /// Messages a shard holds at most for one passivating entity.
    pub entity_buffer_size: usize,
    /// Idle time before an entity is passivated; `None` disables idle passivation.
    pub passivation_idle_timeout: Option<Duration>,
    /// Interval of the periodic rebalance check.
    pub rebalance_interval: Duration,
    /// Shards moving at once in a periodic rebalance.
    pub max_simultaneous_rebalance: usize,
    /// Longest a hand-off may take.
    pub hand_off_timeout: Duration,
    /// Interval of retries (registration, shard homes, refused locks).
    pub retry_interval: Duration,
    /// The storage's lock ttl (set it to the storage's: every region checks at start, against
    /// the storage, that `lock_ttl - lock_safety_margin` is below the storage's ttl).
    pub lock_ttl: Duration,
    /// Margin below the ttl at which a region fences its shards.
    pub lock_safety_margin: Duration,
    /// Interval of lock refreshes (default: a third of the ttl).
    pub lock_refresh_interval: Duration,
    /// Restart a shard's entities after it moved (the entity ids travel with the hand-off).
    pub remember_entities: bool,
    /// Stop message for passivation and hand-off; `None` stops entities after the messages
    /// already in their mailbox (a poison pill).
    pub stop_message: Option<StopMessage<M>>,
    /// The cluster role whose members host this type; `None` is every member.
    pub role: Option<String>,
    /// Regions that must be registered before the first allocation.
    pub min_regions: usize,
    /// Where shards go; `None` is least-shards with `max_simultaneous_rebalance`.
    pub allocation_strategy: Option<Arc<dyn ShardAllocationStrategy>>,
}

impl<M> Clone for ShardingSettings<M> {
    fn clone(&self) -> Self {
        Self {
            storage: self.storage.clone(),
            number_of_shards: self.number_of_shards,
            buffer_size: self.buffer_size,
            entity_buffer_size: self.entity_buffer_size,
            passivation_idle_timeout: self.passivation_idle_timeout,
            rebalance_interval: self.rebalance_interval,
            max_simultaneous_rebalance: self.max_simultaneous_rebalance,
            hand_off_timeout: self.hand_off_timeout,
            retry_interval: self.retry_interval,
            lock_ttl: self.lock_ttl,
            lock_safety_margin: self.lock_safety_margin,
            lock_refresh_interval: self.lock_refresh_interval,
            remember_entities: self.remember_entities,
            stop_message: self.stop_message.clone(),
            role: self.role.clone(),
            min_regions: self.min_regions,
            allocation_strategy: self.allocation_strategy.clone(),
        }
    }
}

impl<M> fmt::Debug for ShardingSettings<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShardingSettings")
            .field("number_of_shards", &self.number_of_shards)
            .field("buffer_size", &self.buffer_size)
            .field("entity_buffer_size", &self.entity_buffer_size)
            .field("passivation_idle_timeout", &self.passivation_idle_timeout)
            .field("rebalance_interval", &self.rebalance_interval)
            .field(
                "max_simultaneous_rebalance",
                &self.max_simultaneous_rebalance,
            )
            .field("hand_off_timeout", &self.hand_off_timeout)
            .field("retry_interval", &self.retry_interval)
            .field("lock_ttl", &self.lock_ttl)
            .field("lock_safety_margin", &self.lock_safety_margin)
            .field("lock_refresh_interval", &self.lock_refresh_interval)
            .field("remember_entities", &self.remember_entities)
            .field("stop_message", &self.stop_message.is_some())
            .field("role", &self.role)
            .field("min_regions", &self.min_regions)
            .field("custom_allocation", &self.allocation_strategy.is_some())
            .finish_non_exhaustive()
    }
}

impl<M> ShardingSettings<M> {
    /// Default settings over `storage`.
    pub fn new(storage: Arc<dyn RunnerStorage>) -> Self {
        Self {
            storage,
            number_of_shards: DEFAULT_NUMBER_OF_SHARDS,
            buffer_size: DEFAULT_BUFFER_SIZE,
            entity_buffer_size: DEFAULT_ENTITY_BUFFER_SIZE,
            passivation_idle_timeout: Some(DEFAULT_PASSIVATION_IDLE_TIMEOUT),
            rebalance_interval: DEFAULT_REBALANCE_INTERVAL,
            max_simultaneous_rebalance: DEFAULT_MAX_SIMULTANEOUS_REBALANCE,
            hand_off_timeout: DEFAULT_HAND_OFF_TIMEOUT,
            retry_interval: DEFAULT_RETRY_INTERVAL,
            lock_ttl: DEFAULT_SHARD_LOCK_TTL,
            lock_safety_margin: DEFAULT_LOCK_SAFETY_MARGIN,
            lock_refresh_interval: DEFAULT_SHARD_LOCK_TTL / 3,
            remember_entities: false,
            stop_message: None,
            role: None,
            min_regions: DEFAULT_MIN_REGIONS,
            allocation_strategy: None,
        }
    }

    /// Sets the number of shards.
    pub fn with_number_of_shards(mut self, shards: u32) -> Self {
        self.number_of_shards = shards;
        self
    }

    /// Sets the region buffer bound.
    pub fn with_buffer_size(mut self, size: usize) -> Self {
        self.buffer_size = size;
        self
    }

    /// Sets the bound on the messages held for one passivating entity.
    pub fn with_entity_buffer_size(mut self, size: usize) -> Self {
        self.entity_buffer_size = size;
        self
    }

    /// Sets the idle passivation timeout.
    pub fn with_passivation_idle_timeout(mut self, after: Duration) -> Self {
        self.passivation_idle_timeout = Some(after);
        self
    }

    /// Turns idle passivation off.
    pub fn without_idle_passivation(mut self) -> Self {
        self.passivation_idle_timeout = None;
        self
    }

    /// Sets the periodic rebalance interval.
    pub fn with_rebalance_interval(mut self, interval: Duration) -> Self {
        self.rebalance_interval = interval;
        self
    }

    /// Sets how many shards a periodic rebalance moves at once.
    pub fn with_max_simultaneous_rebalance(mut self, shards: usize) -> Self {
        self.max_simultaneous_rebalance = shards;
        self
    }

    /// Sets the hand-off timeout.
    pub fn with_hand_off_timeout(mut self, timeout: Duration) -> Self {
        self.hand_off_timeout = timeout;
        self
    }

    /// Sets the retry interval.
    pub fn with_retry_interval(mut self, interval: Duration) -> Self {
        self.retry_interval = interval;
        self
    }

    /// Sets the lock ttl (use the storage's), the refresh interval to a third of it and the
    /// safety margin to a tenth of it unless that is larger than the current margin.
    pub fn with_lock_ttl(mut self, ttl: Duration) -> Self {
        self.lock_ttl = ttl;
        self.lock_refresh_interval = ttl / 3;
        self.lock_safety_margin = self.lock_safety_margin.min(ttl / 10);
        self
    }

    /// Sets the lock safety margin.
    pub fn with_lock_safety_margin(mut self, margin: Duration) -> Self {
        self.lock_safety_margin = margin;
        self
    }

    /// Sets the lock refresh interval.
    pub fn with_lock_refresh_interval(mut self, interval: Duration) -> Self {
        self.lock_refresh_interval = interval;
        self
    }

    /// Turns remember-entities on or off.
    pub fn with_remember_entities(mut self, on: bool) -> Self {
        self.remember_entities = on;
        self
    }

    /// Sets the stop message used for passivation and hand-off.
    pub fn with_stop_message(mut self, make: impl Fn() -> M + Send + Sync + 'static) -> Self {
        self.stop_message = Some(Arc::new(make));
        self
    }

    /// Restricts hosting to members with `role`.
    pub fn with_role(mut self, role: impl Into<String>) -> Self {
        self.role = Some(role.into());
        self
    }

    /// Sets how many regions must be registered before the first allocation.
    pub fn with_min_regions(mut self, regions: usize) -> Self {
        self.min_regions = regions;
        self
    }

    /// Replaces the least-shards allocation strategy.
    pub fn with_allocation_strategy(mut self, strategy: Arc<dyn ShardAllocationStrategy>) -> Self {
        self.allocation_strategy = Some(strategy);
        self
    }

    /// How long a shard lock stays valid locally after the start of the acquire or refresh
    /// that extended it: `lock_ttl - lock_safety_margin`. Regions check at start that this is
    /// strictly below the storage's ttl
    /// ([`ClusterSharding::check_lock_ttl`](super::ClusterSharding::check_lock_ttl)).
    pub fn local_lock_validity(&self) -> Duration {
        self.lock_ttl.saturating_sub(self.lock_safety_margin)
    }

    /// The allocation strategy in effect.
    pub fn strategy(&self) -> Arc<dyn ShardAllocationStrategy> {
        self.allocation_strategy.clone().unwrap_or_else(|| {
            Arc::new(LeastShardAllocationStrategy::new(
                self.max_simultaneous_rebalance,
            ))
        })
    }

    /// Validates the settings.
    ///
    /// # Errors
    ///
    /// [`ShardingError::InvalidSettings`] naming the field: zero shards or buffer, zero
    /// intervals or timeouts, or a lock refresh interval plus safety margin that does not fit
    /// in the lock ttl (the region would fence its own shards between refreshes).
    pub fn build(self) -> Result<Self, ShardingError> {
        let invalid =
            |field: &'static str, reason: String| ShardingError::InvalidSettings { field, reason };
        if self.number_of_shards == 0 {
            return Err(invalid("number_of_shards", "must be at least 1".into()));
        }
        if self.buffer_size == 0 {
            return Err(invalid("buffer_size", "must be at least 1".into()));
        }
        if self.entity_buffer_size == 0 {
            return Err(invalid("entity_buffer_size", "must be at least 1".into()));
        }
        if self.max_simultaneous_rebalance == 0 {
            return Err(invalid(
                "max_simultaneous_rebalance",
                "must be at least 1".into(),
            ));
        }
        for (field, value) in [
            ("rebalance_interval", self.rebalance_interval),
            ("hand_off_timeout", self.hand_off_timeout),
            ("retry_interval", self.retry_interval),
            ("lock_ttl", self.lock_ttl),
            ("lock_refresh_interval", self.lock_refresh_interval),
        ] {
            if value.is_zero() {
                return Err(invalid(field, "must be above zero".into()));
            }
        }
        if self.passivation_idle_timeout.is_some_and(|d| d.is_zero()) {
            return Err(invalid(
                "passivation_idle_timeout",
                "must be above zero (use without_idle_passivation to turn it off)".into(),
            ));
        }
        if self.lock_refresh_interval + self.lock_safety_margin >= self.lock_ttl {
            return Err(invalid(
                "lock_refresh_interval",
                format!(
                    "{:?} plus the safety margin {:?} must stay below the lock ttl {:?}",
                    self.lock_refresh_interval, self.lock_safety_margin, self.lock_ttl
                ),
            ));
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actor_coordination::runner_storage::MemoryRunnerStorage;

    fn settings() -> ShardingSettings<u32> {
        ShardingSettings::new(Arc::new(MemoryRunnerStorage::default()))
    }

    #[test]
    fn defaults_are_valid() {
        let s = settings().build().expect("defaults");
        assert_eq!(s.number_of_shards, DEFAULT_NUMBER_OF_SHARDS);
        assert_eq!(s.buffer_size, DEFAULT_BUFFER_SIZE);
        assert_eq!(s.entity_buffer_size, DEFAULT_ENTITY_BUFFER_SIZE);
        assert_eq!(
            s.passivation_idle_timeout,
            Some(DEFAULT_PASSIVATION_IDLE_TIMEOUT)
        );
    }

    #[test]
    fn invalid_fields_are_named() {
        let field = |s: ShardingSettings<u32>| match s.build() {
            Err(ShardingError::InvalidSettings { field, .. }) => field,
            other => panic!("expected invalid settings, got {other:?}"),
        };
        assert_eq!(
            field(settings().with_number_of_shards(0)),
            "number_of_shards"
        );
        assert_eq!(field(settings().with_buffer_size(0)), "buffer_size");
        assert_eq!(
            field(settings().with_entity_buffer_size(0)),
            "entity_buffer_size"
        );
        assert_eq!(
            field(settings().with_retry_interval(Duration::ZERO)),
            "retry_interval"
        );
        assert_eq!(
            field(settings().with_lock_refresh_interval(Duration::from_secs(29))),
            "lock_refresh_interval"
        );
        assert_eq!(
            field(settings().with_passivation_idle_timeout(Duration::ZERO)),
            "passivation_idle_timeout"
        );
    }
}
