//! The cluster daemon: gossip membership, failure detection, leader actions and downing,
//! wired to remoting and timers.
//!
//! [`Cluster::join`] starts one daemon actor per node at [`DAEMON_PATH`] (`/system/cluster`);
//! it talks to the daemons of the other nodes at the same path through
//! [`Remoting::remote_ref`](crate::remote::Remoting::remote_ref), with [`ClusterMsg`] as its
//! wire message. Its decisions are the pure functions of [`protocol`] and the state
//! machines of [`membership`](crate::membership), [`failure_detector`](crate::failure_detector)
//! and [`downing`](crate::downing); the actor only does the I/O:
//!
//! - **Join**: the [`SeedJoin`](crate::membership::SeedJoin) process over
//!   `InitJoin` / `InitJoinAck` / `Join` / `Welcome`; a node whose seed list is only itself
//!   (or empty) forms a cluster of one at once.
//! - **Gossip**: every [`ClusterSettings::gossip_interval`] the node runs the leader's duties
//!   ([`leader_actions`](crate::membership::leader_actions), which act only on a converged
//!   state) and sends its state to one peer chosen by
//!   [`select_gossip_target`](crate::membership::select_gossip_target) with an RNG seeded
//!   from the system's seeded generator. A receiver that had a newer or concurrent state, or
//!   had not yet seen the sender's, answers with its merged state.
//! - **Failure detection**: every [`ClusterSettings::heartbeat_interval`] the node sends
//!   heartbeats to its ring neighbours ([`HeartbeatMonitor`])
//!   and records its own reachability observations in the gossip.
//! - **Downing**: the [`SplitBrainResolver`] sees every
//!   state change; when it decides, the leader marks members Down.
//!   Lease-majority takes the [`DowningLease`] given to [`Cluster::join_with_lease`], or a
//!   coordination crate lease given to [`Cluster::join_with_coordination_lease`].
//!
//! **A downed or removed node shuts itself down**: when its daemon sees itself Down (or
//! tombstoned), it terminates the whole actor system. A node that left gracefully shuts
//! down a few gossip rounds after it sees itself Exiting (time to spread that state).
//!
//! **A graceful leave waits for its exit blockers**: local components (the cluster
//! singleton managers) register an [`ExitBlocker`] with [`Cluster::register_exit_blocker`];
//! while this node is Leaving and one of them is pending, the daemon does not mark the
//! states it adopts as seen, so no state converges and the node stays Leaving (it is not
//! moved to Exiting nor removed, and does not shut down), for at most
//! [`ClusterSettings::exit_blocker_timeout`]. See [`ExitBlocker`] for the details.
//!
//! **Watchers of actors on a downed or removed node receive `Terminated`**: the daemon
//! [quarantines](crate::remote::Remoting::quarantine) the remoting association of every
//! member it sees Down (after sending it the state that downs it) or removed (after
//! [`ClusterSettings::quarantine_removed_after`] when it left gracefully).
//!
//! Events: [`Cluster::subscribe`] gives an actor (and [`Cluster::subscribe_fn`] a callback)
//! the current state as events, then every change as this node sees it; the same changes
//! are also published on the system's event stream as [`ClusterEvent`]s.

mod daemon;
mod exit_blocker;
mod lease;
pub mod protocol;
mod settings;

use std::sync::Arc;

use actor_core::{ActorRef, ActorSystem, Props, SpawnError};
use parking_lot::Mutex;
use tokio::time::Instant;

pub use exit_blocker::ExitBlocker;
pub use lease::{CoordinationLease, DowningLease};
pub use protocol::ClusterMsg;
pub use settings::{
    ClusterSettings, ClusterSettingsError, DEFAULT_EXIT_BLOCKER_TIMEOUT, DEFAULT_GOSSIP_INTERVAL,
    DEFAULT_QUARANTINE_REMOVED_AFTER, EXITING_SHUTDOWN_ROUNDS, FAST_ACCEPTABLE_HEARTBEAT_PAUSE,
    FAST_GOSSIP_INTERVAL, FAST_HEARTBEAT_INTERVAL, FAST_INIT_JOIN_RESEND_INTERVAL,
    FAST_QUARANTINE_REMOVED_AFTER, FAST_RETRY_UNSUCCESSFUL_JOIN_AFTER, FAST_SEED_NODE_TIMEOUT,
    FAST_STABLE_AFTER,
};

use crate::Address;
use crate::downing::{DowningError, DowningStrategy, SplitBrainResolver};
use crate::failure_detector::{FailureDetectorError, HeartbeatMonitor};
use crate::membership::{ClusterEvent, CurrentClusterState, Gossip, Member, UniqueAddress, diff};
use crate::remote::{RemoteError, Remoting};
use daemon::Daemon;

/// Name of the daemon actor under `/system`.
pub const DAEMON_NAME: &str = "cluster";

/// Path of the daemon actor on every node.
pub const DAEMON_PATH: &str = "/system/cluster";

/// The full path of the daemon on the node at `address`.
pub(crate) fn daemon_path(address: &Address) -> String {
    format!("{}{address}{DAEMON_PATH}", actor_core::PATH_SCHEME)
}

/// Errors of [`Cluster::join`].
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Remoting must be started on the system first ([`Remoting::start`]).
    #[error("remoting is not started on actor system {system}")]
    RemotingNotStarted {
        /// The system's name.
        system: String,
    },
    /// This system already joined a cluster.
    #[error("actor system {system} already joined a cluster")]
    AlreadyJoined {
        /// The system's name.
        system: String,
    },
    /// The settings are invalid.
    #[error(transparent)]
    Settings(#[from] ClusterSettingsError),
    /// Registering the daemon's message with remoting failed.
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// The lease-majority strategy needs a lease ([`Cluster::join_with_lease`]).
    #[error("the lease-majority downing strategy needs a lease: use Cluster::join_with_lease")]
    LeaseRequired,
    /// The coordination lease given to [`Cluster::join_with_coordination_lease`] is owned by
    /// someone else than this node.
    #[error("the downing lease's owner is {actual}, not this node ({expected})")]
    LeaseOwnerMismatch {
        /// This node's owner identity ([`CoordinationLease::owner_for`]).
        expected: String,
        /// The lease's owner.
        actual: String,
    },
    /// The daemon could not be spawned (the system is terminating).
    #[error(transparent)]
    Spawn(#[from] SpawnError),
}

impl From<FailureDetectorError> for ClusterError {
    fn from(error: FailureDetectorError) -> Self {
        ClusterError::Settings(error.into())
    }
}

impl From<DowningError> for ClusterError {
    fn from(error: DowningError) -> Self {
        ClusterError::Settings(error.into())
    }
}

/// What the daemon shares with the [`Cluster`] handle: the adopted state and subscribers.
#[derive(Default)]
pub(crate) struct Shared {
    state: Mutex<SharedState>,
    /// Taken while the state lock is held, then held alone while callbacks run: callbacks
    /// see events in order and may read the state.
    callbacks: Mutex<Callbacks>,
    /// The exit blockers registered on this node ([`Cluster::register_exit_blocker`]).
    exit_blockers: exit_blocker::ExitBlockers,
}

/// A membership event callback ([`Cluster::subscribe_fn`]).
type EventCallback = Box<dyn FnMut(&ClusterEvent) + Send>;

#[derive(Default)]
struct Callbacks {
    next_id: u64,
    list: Vec<(u64, EventCallback)>,
}

/// Identifies a callback registered with [`Cluster::subscribe_fn`], to unsubscribe it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallbackId(u64);

/// Runs `callback` on `event`; false if it panicked (it is then dropped, and logged).
fn run_callback(id: u64, callback: &mut EventCallback, event: &ClusterEvent) -> bool {
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| callback(event)));
    if ran.is_err() {
        tracing::error!(
            callback = id,
            ?event,
            "a cluster event callback panicked; it is unsubscribed"
        );
    }
    ran.is_ok()
}

#[derive(Default)]
struct SharedState {
    gossip: Gossip,
    subscribers: Vec<ActorRef<ClusterEvent>>,
}

impl Shared {
    /// Stores the adopted state and sends `events` to every subscriber and the event stream.
    /// Under one lock with [`Cluster::subscribe`], so a subscriber sees each event once.
    pub(crate) fn publish(
        &self,
        gossip: &Gossip,
        _viewer: &UniqueAddress,
        events: &[ClusterEvent],
        system: &ActorSystem,
    ) {
        let mut callbacks = {
            let mut state = self.state.lock();
            state.gossip = gossip.clone();
            for subscriber in &state.subscribers {
                for event in events {
                    subscriber.tell(event.clone());
                }
            }
            self.callbacks.lock()
        };
        for event in events {
            callbacks
                .list
                .retain_mut(|(id, callback)| run_callback(*id, callback, event));
        }
        drop(callbacks);
        for event in events {
            system.event_stream().publish(event.clone());
        }
    }
}

#[derive(Default)]
struct ClusterSlot(Mutex<Option<Arc<Cluster>>>);

/// One node's membership in a cluster; a system extension ([`Cluster::get`]).
///
/// # Examples
///
/// A node whose seed list is only itself forms a cluster of one:
///
/// ```
/// use actor_cluster::cluster::{Cluster, ClusterSettings};
/// use actor_cluster::membership::MemberStatus;
/// use actor_cluster::remote::Remoting;
/// use actor_cluster::{Address, InMemoryHub};
/// use actor_core::ActorSystem;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let hub = InMemoryHub::new();
/// let address = Address::logical("doc", "a")?;
/// let transport = hub.bind(address.clone())?;
/// let system = ActorSystem::with_settings("doc", Remoting::system_settings(&*transport))?;
/// Remoting::start(&system, transport)?;
/// let settings = ClusterSettings::fast().with_seed_nodes(vec![address.clone()]);
/// let cluster = Cluster::join(&system, settings)?;
/// while cluster.self_member().status != MemberStatus::Up {
///     tokio::time::sleep(std::time::Duration::from_millis(50)).await;
/// }
/// assert_eq!(cluster.state().leader, Some(address));
/// system.terminate().await;
/// # Ok(())
/// # }
/// ```
pub struct Cluster {
    self_member: Member,
    daemon: ActorRef<ClusterMsg>,
    shared: Arc<Shared>,
}

impl Cluster {
    /// Joins (or forms) a cluster: spawns the daemon at [`DAEMON_PATH`], which contacts
    /// `settings.seed_nodes` until it is welcomed.
    ///
    /// # Errors
    ///
    /// [`ClusterError::RemotingNotStarted`] without remoting, [`ClusterError::AlreadyJoined`]
    /// when called twice, [`ClusterError::Settings`] for invalid settings,
    /// [`ClusterError::LeaseRequired`] for lease-majority without a lease.
    pub fn join(
        system: &ActorSystem,
        settings: ClusterSettings,
    ) -> Result<Arc<Cluster>, ClusterError> {
        Self::start(system, settings, None)
    }

    /// [`Cluster::join`] with the lease the lease-majority strategy takes.
    ///
    /// # Errors
    ///
    /// As [`Cluster::join`].
    pub fn join_with_lease(
        system: &ActorSystem,
        settings: ClusterSettings,
        lease: Arc<dyn DowningLease>,
    ) -> Result<Arc<Cluster>, ClusterError> {
        Self::start(system, settings, Some(lease))
    }

    /// [`Cluster::join`] for the lease-majority strategy with a lease of the coordination
    /// crate (through [`CoordinationLease`]). The lease's owner must be this node,
    /// [`CoordinationLease::owner_for`] its transport address and uid, so that the nodes of a
    /// cluster are distinct owners.
    ///
    /// # Errors
    ///
    /// [`ClusterError::LeaseOwnerMismatch`] when the lease's owner is not this node, else as
    /// [`Cluster::join`].
    pub fn join_with_coordination_lease(
        system: &ActorSystem,
        settings: ClusterSettings,
        lease: Arc<dyn actor_coordination::lease::Lease>,
    ) -> Result<Arc<Cluster>, ClusterError> {
        let remoting = Remoting::get(system).ok_or_else(|| ClusterError::RemotingNotStarted {
            system: system.name().to_owned(),
        })?;
        let expected = CoordinationLease::owner_for(remoting.local_address(), remoting.local_uid());
        let actual = lease.settings().owner();
        if actual != &expected {
            return Err(ClusterError::LeaseOwnerMismatch {
                expected: expected.to_string(),
                actual: actual.to_string(),
            });
        }
        Self::start(
            system,
            settings,
            Some(Arc::new(CoordinationLease::new(lease))),
        )
    }

    fn start(
        system: &ActorSystem,
        settings: ClusterSettings,
        lease: Option<Arc<dyn DowningLease>>,
    ) -> Result<Arc<Cluster>, ClusterError> {
        settings.validate()?;
        if lease.is_none()
            && matches!(
                settings.downing.strategy,
                DowningStrategy::LeaseMajority { .. }
            )
        {
            return Err(ClusterError::LeaseRequired);
        }
        let remoting = Remoting::get(system).ok_or_else(|| ClusterError::RemotingNotStarted {
            system: system.name().to_owned(),
        })?;
        let slot = system.extension(|_| ClusterSlot::default());
        let mut guard = slot.0.lock();
        if guard.is_some() {
            return Err(ClusterError::AlreadyJoined {
                system: system.name().to_owned(),
            });
        }
        remoting.register::<ClusterMsg>()?;
        let self_member = Member::joining(
            remoting.local_address().clone(),
            remoting.local_uid(),
            settings.roles.clone(),
        );
        let detector = settings
            .failure_detector
            .clone()
            .with_heartbeat_interval(settings.heartbeat_interval)
            .build()?;
        let monitor = HeartbeatMonitor::new(
            self_member.address.clone(),
            detector,
            settings.monitored_peers,
        )?;
        let resolver = SplitBrainResolver::new(settings.downing.clone(), Instant::now())?;
        let shared = Arc::new(Shared::default());
        let seed = system.random_u64();
        let props = {
            let (member, shared, remoting) = (self_member.clone(), shared.clone(), remoting);
            Props::new(move || Daemon {
                self_member: member.clone(),
                settings: settings.clone(),
                remoting: remoting.clone(),
                shared: shared.clone(),
                seed,
                gossip: Gossip::new(),
                seed_join: None,
                monitor: monitor.clone(),
                resolver: resolver.clone(),
                peers: Default::default(),
                rng: None,
                shutting_down: false,
                lease: lease.clone(),
                exit_gate: exit_blocker::ExitGate::NotLeaving,
            })
        };
        let daemon = system.spawn_system_actor(props, DAEMON_NAME)?;
        let cluster = Arc::new(Cluster {
            self_member,
            daemon,
            shared,
        });
        *guard = Some(cluster.clone());
        Ok(cluster)
    }

    /// The cluster membership of `system`, if it joined one.
    pub fn get(system: &ActorSystem) -> Option<Arc<Cluster>> {
        system
            .try_extension::<ClusterSlot>()
            .and_then(|slot| slot.0.lock().clone())
    }

    fn self_node(&self) -> UniqueAddress {
        self.self_member.unique_address()
    }

    /// The membership as this node currently sees it.
    pub fn state(&self) -> CurrentClusterState {
        CurrentClusterState::of(&self.shared.state.lock().gossip, &self.self_node())
    }

    /// This node as a member, with its current status (Joining until it is welcomed).
    pub fn self_member(&self) -> Member {
        self.shared
            .state
            .lock()
            .gossip
            .member(&self.self_node())
            .cloned()
            .unwrap_or_else(|| self.self_member.clone())
    }

    /// This node's address.
    pub fn self_address(&self) -> &Address {
        &self.self_member.address
    }

    /// Sends `subscriber` the current state as events (as [`diff`] from an empty state),
    /// then every change this node sees, in order.
    pub fn subscribe(&self, subscriber: &ActorRef<ClusterEvent>) {
        let mut state = self.shared.state.lock();
        for event in diff(&Gossip::new(), &state.gossip, &self.self_node()) {
            subscriber.tell(event);
        }
        state.subscribers.push(subscriber.clone());
    }

    /// Calls `callback` with the current state as events (as [`diff`] from an empty state),
    /// at once on this thread, then with every change this node sees, in order: the callback
    /// form of [`Cluster::subscribe`].
    ///
    /// Changes are delivered on the cluster daemon's task, one callback after the other, so
    /// a callback must be quick and must not block (send a message, set a flag). It may read
    /// [`Cluster::state`] or call [`Cluster::leave`]; it must not call
    /// [`Cluster::subscribe_fn`] or [`Cluster::unsubscribe_fn`] (that would deadlock). A
    /// callback that panics is logged and unsubscribed; the daemon goes on.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use actor_cluster::cluster::{Cluster, ClusterSettings};
    /// use actor_cluster::membership::ClusterEvent;
    /// use actor_cluster::remote::Remoting;
    /// use actor_cluster::{Address, InMemoryHub};
    /// use actor_core::ActorSystem;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let hub = InMemoryHub::new();
    /// let address = Address::logical("doc", "a")?;
    /// let transport = hub.bind(address.clone())?;
    /// let system = ActorSystem::with_settings("doc", Remoting::system_settings(&*transport))?;
    /// Remoting::start(&system, transport)?;
    /// let cluster = Cluster::join(&system, ClusterSettings::fast().with_seed_nodes(vec![address]))?;
    /// let ups = Arc::new(Mutex::new(0));
    /// let counter = ups.clone();
    /// let id = cluster.subscribe_fn(move |event| {
    ///     if let ClusterEvent::MemberUp(_) = event {
    ///         *counter.lock().unwrap() += 1;
    ///     }
    /// });
    /// while *ups.lock().unwrap() == 0 {
    ///     tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    /// }
    /// assert!(cluster.unsubscribe_fn(id));
    /// system.terminate().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn subscribe_fn(&self, callback: impl FnMut(&ClusterEvent) + Send + 'static) -> CallbackId {
        let (mut callbacks, replay) = {
            let state = self.shared.state.lock();
            let replay = diff(&Gossip::new(), &state.gossip, &self.self_node());
            (self.shared.callbacks.lock(), replay)
        };
        let id = callbacks.next_id;
        callbacks.next_id += 1;
        let mut callback: EventCallback = Box::new(callback);
        if replay
            .iter()
            .all(|event| run_callback(id, &mut callback, event))
        {
            callbacks.list.push((id, callback));
        }
        CallbackId(id)
    }

    /// Stops calling a callback registered with [`Cluster::subscribe_fn`]; false if it was
    /// not registered (or was dropped after a panic).
    pub fn unsubscribe_fn(&self, id: CallbackId) -> bool {
        let mut callbacks = self.shared.callbacks.lock();
        let before = callbacks.list.len();
        callbacks.list.retain(|(n, _)| *n != id.0);
        callbacks.list.len() != before
    }

    /// Stops sending events to `subscriber`.
    pub fn unsubscribe(&self, subscriber: &ActorRef<ClusterEvent>) {
        self.shared
            .state
            .lock()
            .subscribers
            .retain(|s| s.id() != subscriber.id());
    }

    /// Registers a local component that must finish its exit work (a singleton hand-over)
    /// before this node's graceful leave goes on past Leaving; `name` names it in logs.
    ///
    /// The leave waits until the returned blocker is [done](ExitBlocker::done) or dropped,
    /// for at most [`ClusterSettings::exit_blocker_timeout`] (then it goes on, logged at
    /// warn). Register before the leave begins: a blocker registered once this node is
    /// Leaving holds it only if another blocker is still holding it then.
    pub fn register_exit_blocker(&self, name: impl Into<String>) -> ExitBlocker {
        ExitBlocker::register(self.shared.clone(), self.daemon.clone(), name.into())
    }

    /// Leaves the cluster gracefully: this node becomes Leaving, then Exiting, is removed
    /// by the leader, and shuts its actor system down once it has spread the Exiting state.
    ///
    /// It stays Leaving while an [`ExitBlocker`] registered on this node is pending (at
    /// most [`ClusterSettings::exit_blocker_timeout`]), so its singletons hand over first.
    pub fn leave(&self) {
        self.daemon.tell(ClusterMsg::Leave {
            address: self.self_member.address.clone(),
        });
    }

    /// Marks the member at `address` Down (the downed node shuts itself down once it
    /// learns it; the leader then removes it).
    pub fn down(&self, address: Address) {
        self.daemon.tell(ClusterMsg::Down { address });
    }
}
