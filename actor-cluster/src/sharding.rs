//! Cluster sharding: entities spread over the nodes by shard, moved when nodes join or leave,
//! never running on two nodes at once.
//!
//! [`ClusterSharding::start`] runs a **shard region** for an entity type on this node and
//! returns a [`ShardRegion`] handle; send it the entity messages from anywhere. A
//! [`MessageExtractor`] names each message's entity; the entity's shard is a stable hash
//! ([`default_shard_id`], FNV-1a) of its id modulo [`ShardingSettings::number_of_shards`]
//! (default [`DEFAULT_NUMBER_OF_SHARDS`], fixed for the life of the cluster).
//!
//! # Parts
//!
//! - **Region** (one per node per type, `/user/sharding-<type>`): asks the coordinator once
//!   where a shard lives and caches the answer; buffers messages for shards whose home is
//!   being resolved or moving (bounded by [`ShardingSettings::buffer_size`], overflow to dead
//!   letters); forwards messages for remote shards to the home region; hosts local shards.
//! - **Coordinator** ([`ShardCoordinator`], an ordinary actor run as a cluster singleton):
//!   allocates shards with a pluggable [`ShardAllocationStrategy`] (default
//!   [`LeastShardAllocationStrategy`]), rebalances every
//!   [`ShardingSettings::rebalance_interval`] and when regions join or leave (at most
//!   [`ShardingSettings::max_simultaneous_rebalance`] shards at once), and reallocates the
//!   shards of a region whose node died. It keeps no state of its own worth saving: a new
//!   coordinator rebuilds the allocation from the lock table
//!   ([`RunnerStorage::list_locks`]) and the regions that register, each reporting the
//!   shards it hosts (also those still acquiring their lock, which the table read may have
//!   missed). A region whose shard is refused its lock [`REFUSALS_BEFORE_REPORT`] times in a
//!   row reports it; the coordinator reads the holder again and re-homes the shard to the
//!   holder's region, so a shard never keeps two homes.
//! - **Shard** (a child of the region): starts entities on their first message (the
//!   entity's [`EntityContext`] lets it ask for passivation), passivates idle ones after
//!   [`ShardingSettings::passivation_idle_timeout`], buffers the messages of an entity
//!   that is passivating and delivers them to a fresh instance.
//!
//! # Shard locks
//!
//! The lock table in [`RunnerStorage`] is the truth of where a shard runs. A shard serves
//! only once `acquire` returned its lock (buffering until then, retrying every
//! [`ShardingSettings::retry_interval`] while another runner holds it); the region refreshes
//! its locks every [`ShardingSettings::lock_refresh_interval`] in one call; a shard whose
//! refresh did not return it, or whose local deadline (start of the last successful
//! acquire/refresh + ttl − [`ShardingSettings::lock_safety_margin`]) passed, **fences itself**:
//! it stops at once. So a shard is never active on two nodes, even across a partition: the
//! new home's acquire succeeds only once the old holder released the lock or the lock
//! expired, and the old holder stopped before that. Runners register in the storage with
//! their incarnation (the node's uid), so a restarted node never inherits its old locks.
//!
//! Every storage call is bounded in time (`acquire`, `refresh` and `release` by the local
//! lock validity, `ttl - margin`; lock-table reads and the ttl probe by the lock ttl; the
//! error is [`ShardingError::StorageTimeout`]): a storage that hangs is treated as one that
//! fails, so shards fence at their deadline and acquires and reads are retried, and work
//! resumes when the storage answers again.
//!
//! # Hand-off
//!
//! Moving shard `s` from region A (a [`HandOff`] state machine at the coordinator):
//! 1. the coordinator tells every region `BeginHandOff(s)`: each stops routing to `s`,
//!    buffers its messages, and acknowledges;
//! 2. then it tells A `HandOff(s)`: A's shard delivers what it already queued, sends every
//!    entity the stop message ([`ShardingSettings::with_stop_message`], a poison pill by
//!    default, so entities can flush), waits for all to stop, releases the lock and reports;
//! 3. only then the shard is allocated again and started at its new home, and the buffered
//!    messages flow there. A hand-off that takes longer than
//!    [`ShardingSettings::hand_off_timeout`] is aborted and the shard stays at A.
//!
//! Messages for `s` that were in flight to A when it stopped the shard are sent back through
//! A's region to the new home, so none is lost and none reaches an entity on two nodes.
//!
//! # Failure
//!
//! When a node is downed, its region's death (remote death-watch) makes the coordinator
//! reallocate its shards at once; the new homes acquire the locks once the dead runner's
//! locks expired (at most one lock ttl), and entities start on their first message.
//! Messages sent to the dead node before that are lost (delivery is at most once).
//!
//! # Remember-entities
//!
//! With [`ShardingSettings::remember_entities`] an entity, once started, is restarted
//! wherever its shard goes next, without a message, until it passivates. The remembered
//! sets live in two places, so that they outlive any one region:
//! - the region hosting the shard (the shard tells it of every start and passivation), which
//!   reports them again after every registration (in chunks of at most
//!   [`REMEMBER_CHUNK_BYTES`] of ids), so a new coordinator learns them again;
//! - the coordinator, which the region tells of every change
//!   ([`CoordinatorMsg::EntitiesChanged`], also while the shard hands off, so the set is
//!   exact when the hand-off completes).
//!
//! The coordinator hands a shard's set to its next home ([`RegionCtl::HostShard`], the rest
//! of a long list in [`RegionCtl::RememberEntities`]): after a hand-off, after its region's
//! node crashed, after a lost lock re-homed it, and back to the old home after an aborted
//! hand-off. A region told to host a shard it already runs reports that shard's set again
//! (the coordinator ignores reports from a region it does not see as the home). A shard
//! restarted in the same region after a fence restarts them too. What is lost: changes
//! still under way to the coordinator when a region crashes (an entity started just before
//! the crash may not restart), and the sets of the crashed node's own shards when that node
//! also ran the coordinator (both copies were there). A stored copy next to the shard locks
//! would close that gap; the runner storage has no place for it yet.
//!
//! # Introspection
//!
//! [`ShardRegion::state`] (local shards and entity counts), [`ClusterSharding::distribution`]
//! (the coordinator's allocation) and [`ShardMapChanged`] on the coordinator node's event
//! stream.
//!
//! # Examples
//!
//! One node, in-memory lock table, a coordinator spawned directly:
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use actor_cluster::sharding::{ClusterSharding, EntityContext, ShardingSettings};
//! use actor_cluster::wire::RemoteMessage;
//! use actor_coordination::runner_storage::MemoryRunnerStorage;
//! use actor_core::{Actor, ActorResult, ActorSystem, Context, Props, ReplyTo};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Add { counter: String, by: u64, reply: ReplyTo<u64> }
//! impl RemoteMessage for Add { const MANIFEST: &'static str = "doc.Add"; }
//!
//! struct Counter(u64);
//! impl Actor for Counter {
//!     type Msg = Add;
//!     async fn handle(&mut self, msg: Add, _: &mut Context<Self>) -> ActorResult {
//!         self.0 += msg.by;
//!         msg.reply.reply(self.0);
//!         Ok(())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let system = ActorSystem::new("doc")?;
//! let settings = ShardingSettings::new(Arc::new(MemoryRunnerStorage::default())).build()?;
//! let sharding = ClusterSharding::get(&system);
//! let coordinator = sharding.spawn_coordinator("counter", &settings)?;
//! let region = sharding.start_with_coordinator(
//!     "counter",
//!     |_: EntityContext<Add>| Props::new(|| Counter(0)),
//!     settings,
//!     |msg: &Add| msg.counter.clone(),
//!     coordinator,
//! )?;
//! let add = |by| move |reply| Add { counter: "c-1".into(), by, reply };
//! region.actor_ref().ask(add(2), Duration::from_secs(5)).await?;
//! assert_eq!(region.actor_ref().ask(add(3), Duration::from_secs(5)).await?, 5);
//! system.terminate().await;
//! # Ok(())
//! # }
//! ```
//!
//! [`RunnerStorage`]: actor_coordination::runner_storage::RunnerStorage
//! [`RunnerStorage::list_locks`]: actor_coordination::runner_storage::RunnerStorage::list_locks

mod allocation;
mod coordinator;
mod extractor;
mod hand_off;
mod lock;
mod protocol;
mod region;
mod settings;
mod shard;
mod storage_call;
mod ttl_check;

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use actor_coordination::runner_storage::{Runner, RunnerAddress, RunnerId, ShardId};
use actor_core::{Actor, ActorRef, ActorSystem, AskError, Props, SpawnError};
use parking_lot::Mutex;

pub use allocation::{Allocation, LeastShardAllocationStrategy, ShardAllocationStrategy};
pub use coordinator::{CoordinatorSettings, ShardCoordinator};
pub use extractor::{MessageExtractor, default_shard_id, fnv1a_32};
pub use hand_off::{HandOff, HandOffAction, HandOffEvent, HandOffState};
pub use lock::{LockAction, LockEvent, LockState, LockTiming};
pub use protocol::{CoordinatorMsg, RegionCtl, RegionState, ShardDistribution, ShardMapChanged};
pub use settings::{
    DEFAULT_BUFFER_SIZE, DEFAULT_ENTITY_BUFFER_SIZE, DEFAULT_HAND_OFF_TIMEOUT,
    DEFAULT_LOCK_SAFETY_MARGIN, DEFAULT_MAX_SIMULTANEOUS_REBALANCE, DEFAULT_MIN_REGIONS,
    DEFAULT_NUMBER_OF_SHARDS, DEFAULT_PASSIVATION_IDLE_TIMEOUT, DEFAULT_REBALANCE_INTERVAL,
    DEFAULT_RETRY_INTERVAL, REFUSALS_BEFORE_REPORT, REMEMBER_CHUNK_BYTES, ShardingSettings,
    StopMessage,
};
pub use shard::EntityContext;
pub use ttl_check::TTL_PROBE_GROUP;

/// Runner registration and the shard-lock table sharding relies on (re-exported from
/// `actor-coordination`, so users of sharding need no direct dependency on it).
pub use actor_coordination::runner_storage;

use crate::cluster::Cluster;
use crate::remote::{RemoteError, Remoting};
use crate::singleton::{
    ClusterSingletonManager, ClusterSingletonProxy, ProxySettings, SingletonError,
    SingletonSettings,
};
use crate::wire::RemoteMessage;
use region::{Region, RegionMsg, RegionSetup};

/// Errors of the sharding API.
#[derive(Debug, thiserror::Error)]
pub enum ShardingError {
    /// A setting is invalid.
    #[error("invalid sharding setting {field}: {reason}")]
    InvalidSettings {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The entity type name is not `[A-Za-z0-9_.-]+` of at most 255 bytes.
    #[error("invalid entity type name {name:?}: must be 1 to 255 of [A-Za-z0-9_.-]")]
    InvalidTypeName {
        /// The rejected name.
        name: String,
    },
    /// A region for this type already runs on this node.
    #[error("sharding for entity type {type_name:?} is already started on this node")]
    AlreadyStarted {
        /// The type.
        type_name: String,
    },
    /// No region for this type runs on this node (or it takes another message type).
    #[error("no shard region for entity type {type_name:?} on this node")]
    NotStarted {
        /// The type.
        type_name: String,
    },
    /// An actor could not be spawned.
    #[error("could not spawn a sharding actor: {0}")]
    Spawn(#[from] SpawnError),
    /// A message type could not be registered with remoting.
    #[error("remoting: {0}")]
    Remote(#[from] RemoteError),
    /// A question to a region or the coordinator was not answered.
    #[error("no answer: {0}")]
    Ask(#[from] AskError),
    /// The coordinator singleton (manager or proxy) could not be started.
    #[error("coordinator singleton: {0}")]
    Singleton(#[from] SingletonError),
    /// The local lock validity (`lock_ttl - lock_safety_margin`) is not strictly shorter
    /// than the storage's lock ttl: a partitioned region would still serve a shard after the
    /// storage gave its lock to another runner. Configure the sharding `lock_ttl` as the
    /// storage's.
    #[error(
        "shard lock validity {local_validity:?} (lock_ttl - lock_safety_margin) is not below \
         the storage's lock ttl (at least {storage_ttl:?} as measured)"
    )]
    LockTtlMismatch {
        /// The sharding settings' `lock_ttl - lock_safety_margin`.
        local_validity: Duration,
        /// The storage's ttl as measured (a lower bound).
        storage_ttl: Duration,
    },
    /// The storage's lock ttl could not be measured.
    #[error("the storage's lock ttl could not be measured: {reason}")]
    LockTtlUnverified {
        /// Why.
        reason: String,
    },
    /// The runner storage failed.
    #[error("runner storage: {0}")]
    Storage(#[from] runner_storage::RunnerStorageError),
    /// A runner storage call did not finish within its bound (see the lock ttl settings):
    /// the storage hangs or is unreachable; the call is treated as failed.
    #[error("runner storage {operation} did not finish within {after:?}")]
    StorageTimeout {
        /// The storage operation (`acquire`, `refresh`, `release`, `list_locks`, ...).
        operation: &'static str,
        /// The bound that passed.
        after: Duration,
    },
}

/// How often [`ShardRegion::graceful_shutdown_and_wait`] checks whether the region stopped:
/// short against the time a hand-off takes, long enough to cost nothing.
const SHUTDOWN_POLL_INTERVAL: Duration = Duration::from_millis(10);

/// The name of the region actor of `type_name` (under `/user`).
pub fn region_name(type_name: &str) -> String {
    format!("sharding-{type_name}")
}

/// The name of a directly spawned coordinator of `type_name` (under `/user`), and the
/// singleton type name of the coordinator.
pub fn coordinator_name(type_name: &str) -> String {
    format!("sharding-coordinator-{type_name}")
}

/// A handle to this node's shard region of one entity type.
pub struct ShardRegion<M: Send + 'static> {
    type_name: String,
    region: ActorRef<RegionMsg<M>>,
    entry: ActorRef<M>,
}

impl<M: Send + 'static> Clone for ShardRegion<M> {
    fn clone(&self) -> Self {
        Self {
            type_name: self.type_name.clone(),
            region: self.region.clone(),
            entry: self.entry.clone(),
        }
    }
}

impl<M: Send + 'static> std::fmt::Debug for ShardRegion<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardRegion")
            .field("type_name", &self.type_name)
            .field("region", self.region.path())
            .finish()
    }
}

impl<M: Send + 'static> ShardRegion<M> {
    /// The entity type.
    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    /// Sends `msg` to its entity, wherever it lives.
    pub fn tell(&self, msg: M) {
        self.entry.tell(msg);
    }

    /// A ref that routes every message it is told to its entity (`ask` works through it).
    pub fn actor_ref(&self) -> ActorRef<M> {
        self.entry.clone()
    }

    /// The shards running in this region and their entity counts.
    ///
    /// # Errors
    ///
    /// [`ShardingError::Ask`] when the region does not answer within `timeout`.
    pub async fn state(&self, timeout: Duration) -> Result<RegionState, ShardingError> {
        Ok(self.region.ask(RegionMsg::GetState, timeout).await?)
    }

    /// Hands off every shard of this region to other regions, then stops the region; returns
    /// at once (watch [`ShardRegion::is_terminated`] or use
    /// [`ShardRegion::graceful_shutdown_and_wait`]). Call it before leaving the cluster.
    pub fn graceful_shutdown(&self) {
        self.region.tell(RegionMsg::GracefulShutdown);
    }

    /// [`ShardRegion::graceful_shutdown`], then waits until the region stopped.
    ///
    /// # Errors
    ///
    /// [`ShardingError::Ask`] with a timeout when the region still runs after `timeout`.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future does not cancel the shutdown.
    pub async fn graceful_shutdown_and_wait(&self, timeout: Duration) -> Result<(), ShardingError> {
        self.graceful_shutdown();
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.region.is_terminated() {
            if tokio::time::Instant::now() >= deadline {
                return Err(ShardingError::Ask(AskError::Timeout {
                    recipient: self.region.path().clone(),
                    after: timeout,
                }));
            }
            tokio::time::sleep(SHUTDOWN_POLL_INTERVAL).await;
        }
        Ok(())
    }

    /// Whether the region has stopped.
    pub fn is_terminated(&self) -> bool {
        self.region.is_terminated()
    }
}

/// The sharding extension of one actor system: starts and finds its regions.
pub struct ClusterSharding {
    system: ActorSystem,
    regions: Mutex<BTreeMap<String, Box<dyn Any + Send + Sync>>>,
    coordinators: Mutex<BTreeMap<String, ActorRef<CoordinatorMsg>>>,
}

impl std::fmt::Debug for ClusterSharding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterSharding")
            .field("system", &self.system.name())
            .field("types", &self.regions.lock().keys().collect::<Vec<_>>())
            .finish()
    }
}

fn check_type_name(type_name: &str) -> Result<(), ShardingError> {
    ShardId::new(type_name, 0)
        .map(|_| ())
        .map_err(|_| ShardingError::InvalidTypeName {
            name: type_name.chars().take(80).collect(),
        })
}

/// This node's runner: its transport address and uid (remoting), or the system's name and
/// uid without remoting.
fn runner_of(system: &ActorSystem) -> Result<Runner, ShardingError> {
    let (host, port, incarnation) = match Remoting::get(system) {
        Some(remoting) => {
            let address = remoting.local_address();
            (
                format!("{}@{}", address.system(), address.host()),
                address.port(),
                remoting.local_uid(),
            )
        }
        None => (format!("{}@local", system.name()), 0, system.uid()),
    };
    let address = RunnerAddress::new(host, port).map_err(|e| ShardingError::InvalidSettings {
        field: "runner address",
        reason: e.to_string(),
    })?;
    Ok(Runner::new(address, incarnation))
}

fn register_types<M: RemoteMessage>(system: &ActorSystem) -> Result<(), ShardingError> {
    if let Some(remoting) = Remoting::get(system) {
        remoting.register::<CoordinatorMsg>()?;
        remoting.register::<RegionCtl>()?;
        remoting.register::<ShardDistribution>()?;
        remoting.register::<M>()?;
    }
    Ok(())
}

impl ClusterSharding {
    /// The sharding extension of `system` (created on first use).
    pub fn get(system: &ActorSystem) -> Arc<ClusterSharding> {
        system.extension(|system| ClusterSharding {
            system: system.clone(),
            regions: Mutex::new(BTreeMap::new()),
            coordinators: Mutex::new(BTreeMap::new()),
        })
    }

    /// The coordinator settings derived from `settings`.
    pub fn coordinator_settings<M>(
        type_name: &str,
        settings: &ShardingSettings<M>,
    ) -> CoordinatorSettings {
        CoordinatorSettings {
            type_name: type_name.to_owned(),
            storage: settings.storage.clone(),
            strategy: settings.strategy(),
            rebalance_interval: settings.rebalance_interval,
            hand_off_timeout: settings.hand_off_timeout,
            retry_interval: settings.retry_interval,
            lock_ttl: settings.lock_ttl,
            min_regions: settings.min_regions,
            number_of_shards: settings.number_of_shards,
        }
    }

    /// Spawns the coordinator of `type_name` directly on this node, at
    /// `/user/sharding-coordinator-<type_name>` (for single-node use and tests; clusters run
    /// it as a singleton through [`ClusterSharding::start`]).
    ///
    /// # Errors
    ///
    /// [`ShardingError::InvalidTypeName`], [`ShardingError::Spawn`] (also when one runs here
    /// already), [`ShardingError::Remote`].
    pub fn spawn_coordinator<M: RemoteMessage>(
        &self,
        type_name: &str,
        settings: &ShardingSettings<M>,
    ) -> Result<ActorRef<CoordinatorMsg>, ShardingError> {
        check_type_name(type_name)?;
        register_types::<M>(&self.system)?;
        let props = ShardCoordinator::props(Self::coordinator_settings(type_name, settings));
        Ok(self.system.spawn(props, &coordinator_name(type_name))?)
    }

    /// Starts this node's region of `type_name` in a cluster, with the coordinator as a
    /// cluster singleton: spawns the coordinator's singleton manager here (named after
    /// [`coordinator_name`]), a singleton proxy, and the region. Call it on every node that
    /// hosts entities of this type; a node without [`ShardingSettings::role`] gets a proxy
    /// region instead (as [`ClusterSharding::start_proxy`]). `entity_props` builds an entity
    /// from its [`EntityContext`].
    ///
    /// # Errors
    ///
    /// [`ShardingError::Singleton`] when this node has not joined a cluster (or the manager
    /// exists already), else as [`ClusterSharding::start_with_coordinator`].
    pub fn start<E, F, X>(
        &self,
        type_name: &str,
        entity_props: F,
        settings: ShardingSettings<E::Msg>,
        extractor: X,
    ) -> Result<ShardRegion<E::Msg>, ShardingError>
    where
        E: Actor,
        E::Msg: RemoteMessage,
        F: Fn(EntityContext<E::Msg>) -> Props<E> + Send + Sync + 'static,
        X: MessageExtractor<E::Msg>,
    {
        check_type_name(type_name)?;
        let settings = settings.build()?;
        if self.regions.lock().contains_key(type_name) {
            return Err(ShardingError::AlreadyStarted {
                type_name: type_name.to_owned(),
            });
        }
        let hosts = match (&settings.role, Cluster::get(&self.system)) {
            (Some(role), Some(cluster)) => cluster.self_member().has_role(role),
            _ => true,
        };
        if !hosts {
            return self.start_proxy(type_name, settings, extractor);
        }
        register_types::<E::Msg>(&self.system)?;
        let mut singleton = SingletonSettings::new(coordinator_name(type_name));
        if let Some(role) = &settings.role {
            singleton = singleton.with_role(role.clone());
        }
        ClusterSingletonManager::spawn(
            &self.system,
            ShardCoordinator::props(Self::coordinator_settings(type_name, &settings)),
            singleton,
        )?;
        let coordinator = self.coordinator_proxy(type_name, &settings)?;
        self.start_with_coordinator(type_name, entity_props, settings, extractor, coordinator)
    }

    /// Starts a proxy region of `type_name` in a cluster: it routes messages to the entities
    /// on the nodes that host them (through the coordinator singleton) and hosts none.
    ///
    /// # Errors
    ///
    /// As [`ClusterSharding::start`].
    pub fn start_proxy<M, X>(
        &self,
        type_name: &str,
        settings: ShardingSettings<M>,
        extractor: X,
    ) -> Result<ShardRegion<M>, ShardingError>
    where
        M: RemoteMessage,
        X: MessageExtractor<M>,
    {
        check_type_name(type_name)?;
        register_types::<M>(&self.system)?;
        let coordinator = self.coordinator_proxy(type_name, &settings)?;
        self.start_proxy_with_coordinator(type_name, settings, extractor, coordinator)
    }

    /// A singleton proxy to the coordinator of `type_name`.
    fn coordinator_proxy<M>(
        &self,
        type_name: &str,
        settings: &ShardingSettings<M>,
    ) -> Result<ActorRef<CoordinatorMsg>, ShardingError> {
        if let Some(existing) = self.coordinators.lock().get(type_name) {
            return Ok(existing.clone());
        }
        let mut proxy =
            ProxySettings::new(coordinator_name(type_name)).with_buffer_size(settings.buffer_size);
        if let Some(role) = &settings.role {
            proxy = proxy.with_role(role.clone());
        }
        let proxy = ClusterSingletonProxy::spawn::<CoordinatorMsg>(&self.system, proxy)?;
        self.coordinators
            .lock()
            .insert(type_name.to_owned(), proxy.clone());
        Ok(proxy)
    }

    /// The coordinator of `type_name` as this node reaches it: a singleton proxy if
    /// [`ClusterSharding::start`] ran here, for [`ClusterSharding::distribution`].
    ///
    /// # Errors
    ///
    /// As [`ClusterSharding::start_proxy`].
    pub fn coordinator<M>(
        &self,
        type_name: &str,
        settings: &ShardingSettings<M>,
    ) -> Result<ActorRef<CoordinatorMsg>, ShardingError> {
        check_type_name(type_name)?;
        self.coordinator_proxy(type_name, settings)
    }

    /// Starts this node's region of `type_name`, talking to `coordinator` (a direct ref or
    /// a singleton proxy). `entity_props` builds an entity from its [`EntityContext`].
    ///
    /// # Errors
    ///
    /// [`ShardingError::InvalidTypeName`], [`ShardingError::InvalidSettings`],
    /// [`ShardingError::AlreadyStarted`], [`ShardingError::Spawn`],
    /// [`ShardingError::Remote`] when a message type clashes with another's manifest.
    pub fn start_with_coordinator<E, F, X>(
        &self,
        type_name: &str,
        entity_props: F,
        settings: ShardingSettings<E::Msg>,
        extractor: X,
        coordinator: ActorRef<CoordinatorMsg>,
    ) -> Result<ShardRegion<E::Msg>, ShardingError>
    where
        E: Actor,
        E::Msg: RemoteMessage,
        F: Fn(EntityContext<E::Msg>) -> Props<E> + Send + Sync + 'static,
        X: MessageExtractor<E::Msg>,
    {
        self.start_region::<E>(
            type_name,
            Some(Arc::new(entity_props)),
            settings,
            Arc::new(extractor),
            coordinator,
        )
    }

    /// Starts a proxy region of `type_name`: it routes messages to the entities on other
    /// nodes and hosts none itself.
    ///
    /// # Errors
    ///
    /// As [`ClusterSharding::start_with_coordinator`].
    pub fn start_proxy_with_coordinator<M, X>(
        &self,
        type_name: &str,
        settings: ShardingSettings<M>,
        extractor: X,
        coordinator: ActorRef<CoordinatorMsg>,
    ) -> Result<ShardRegion<M>, ShardingError>
    where
        M: RemoteMessage,
        X: MessageExtractor<M>,
    {
        self.start_region::<NoEntity<M>>(
            type_name,
            None,
            settings,
            Arc::new(extractor),
            coordinator,
        )
    }

    fn start_region<E>(
        &self,
        type_name: &str,
        factory: Option<shard::EntityFactory<E>>,
        settings: ShardingSettings<E::Msg>,
        extractor: Arc<dyn MessageExtractor<E::Msg>>,
        coordinator: ActorRef<CoordinatorMsg>,
    ) -> Result<ShardRegion<E::Msg>, ShardingError>
    where
        E: Actor,
        E::Msg: RemoteMessage,
    {
        check_type_name(type_name)?;
        let settings = settings.build()?;
        register_types::<E::Msg>(&self.system)?;
        let mut regions = self.regions.lock();
        if regions.contains_key(type_name) {
            return Err(ShardingError::AlreadyStarted {
                type_name: type_name.to_owned(),
            });
        }
        let runner = runner_of(&self.system)?;
        let storage = settings.storage.clone();
        let settings_ttl = settings.lock_ttl;
        let setup = RegionSetup::<E> {
            type_name: type_name.to_owned(),
            settings,
            extractor,
            factory,
            coordinator,
            runner: runner.id.clone(),
        };
        let region = self
            .system
            .spawn(Region::props(setup), &region_name(type_name))?;
        // Register the runner with its incarnation (diagnostics, machine ids); locks do not
        // depend on it, so a failure is only logged.
        let bound = settings_ttl;
        self.system.runtime().spawn(async move {
            let registered =
                storage_call::bounded("register", bound, storage.register(&runner, true)).await;
            if let Err(error) = registered {
                tracing::warn!(%error, runner = %runner.id, "runner registration failed");
            }
        });
        let handle = ShardRegion {
            type_name: type_name.to_owned(),
            entry: region.adapt(RegionMsg::Deliver),
            region,
        };
        regions.insert(type_name.to_owned(), Box::new(handle.clone()));
        Ok(handle)
    }

    /// Checks that `settings`' local lock validity (`lock_ttl - lock_safety_margin`) is
    /// strictly shorter than the storage's lock ttl, measured with a probe lock of this node
    /// (group [`TTL_PROBE_GROUP`], released at once); returns the measured storage ttl (a
    /// lower bound). Every region runs this check before it registers: a region whose check
    /// fails logs the error and stops without hosting any shard.
    ///
    /// # Errors
    ///
    /// [`ShardingError::LockTtlMismatch`] with both durations,
    /// [`ShardingError::InvalidTypeName`], [`ShardingError::InvalidSettings`],
    /// [`ShardingError::Storage`], [`ShardingError::LockTtlUnverified`],
    /// [`ShardingError::StorageTimeout`] when the storage did not answer within the lock ttl.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future may leave the probe lock held until it expires (it is never an
    /// entity type's shard).
    pub async fn check_lock_ttl<M>(
        &self,
        type_name: &str,
        settings: &ShardingSettings<M>,
    ) -> Result<Duration, ShardingError> {
        check_type_name(type_name)?;
        let runner = runner_of(&self.system)?;
        storage_call::bounded_check(
            settings.lock_ttl,
            ttl_check::check(
                settings.storage.as_ref(),
                &runner.id,
                type_name,
                settings.local_lock_validity(),
            ),
        )
        .await
    }

    /// The region of `type_name` started on this node, if it takes `M`.
    pub fn region<M: Send + 'static>(&self, type_name: &str) -> Option<ShardRegion<M>> {
        self.regions
            .lock()
            .get(type_name)
            .and_then(|any| any.downcast_ref::<ShardRegion<M>>())
            .cloned()
    }

    /// Asks `coordinator` for the current allocation.
    ///
    /// # Errors
    ///
    /// [`ShardingError::Ask`] when it does not answer within `timeout`.
    pub async fn distribution(
        coordinator: &ActorRef<CoordinatorMsg>,
        timeout: Duration,
    ) -> Result<ShardDistribution, ShardingError> {
        Ok(coordinator
            .ask(|reply| CoordinatorMsg::GetDistribution { reply }, timeout)
            .await?)
    }
}

/// The entity type of a proxy region: never instantiated.
struct NoEntity<M>(std::marker::PhantomData<fn(M)>);

impl<M: Send + 'static> Actor for NoEntity<M> {
    type Msg = M;
    async fn handle(&mut self, _: M, _: &mut actor_core::Context<Self>) -> actor_core::ActorResult {
        Ok(())
    }
}

/// The runner id of this node as sharding registers it (for diagnostics and tests).
///
/// # Errors
///
/// [`ShardingError::InvalidSettings`] when the node's address is not a valid runner address.
pub fn runner_id(system: &ActorSystem) -> Result<RunnerId, ShardingError> {
    runner_of(system).map(|r| r.id)
}
