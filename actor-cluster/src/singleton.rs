//! Cluster singleton: exactly one instance of an actor across the cluster, on the oldest node.
//!
//! Spawn a [`ClusterSingletonManager`] for the singleton on **every** node (it lives at
//! [`singleton_manager_path`], `/user/singleton-manager-<type_name>`), and talk to the
//! singleton through a [`ClusterSingletonProxy`] from any node.
//!
//! # Where it runs
//!
//! The host is [`singleton_host`]: the oldest member (lowest up-number, ties by address)
//! carrying the configured role whose status is Up, Leaving or Exiting, **reachable or not**.
//! Manager and proxy use this one function. Reachability is deliberately not an input: a
//! host that merely became unreachable stays the host until the downing decision marks it
//! Down, and its successor starts only once it is removed. (Moving on unreachability is how
//! other implementations ended up with two singletons during a partition.) In a healthy
//! cluster without roles the host is the oldest node, which the leader also is.
//!
//! # What holds without a lease, and what a lease adds
//!
//! Without a lease, "never two instances at once" rests on three assumptions:
//! - the downing decision is safe (a strategy that lets both sides of a partition go on,
//!   such as auto-down, gives each side a host and a singleton);
//! - a member that confirmed the hand-over has stopped its instance (it only confirms once
//!   its child has terminated, and a leaving member never hosts again);
//! - a member removed **without** confirming has stopped its instance within
//!   [`SingletonSettings::removal_margin`] (default [`DEFAULT_REMOVAL_MARGIN`]) of its
//!   removal. That is a downed member, or one whose graceful leave outlasted the exit
//!   blocker timeout: a graceful leave **waits for the hand-over**, since every manager
//!   registers an [`ExitBlocker`](crate::cluster::ExitBlocker) and reports it done only once
//!   its node is leaving and nothing runs, is held or is in flight there (the singleton's
//!   `stopped` hook has returned, the lease is released, the successor was told). Until
//!   then the leaving node stays Leaving: it is neither moved to Exiting nor removed, for
//!   at most [`ClusterSettings::exit_blocker_timeout`](crate::cluster::ClusterSettings)
//!   (default [`DEFAULT_EXIT_BLOCKER_TIMEOUT`](crate::cluster::DEFAULT_EXIT_BLOCKER_TIMEOUT),
//!   30 s). The new host waits the margin after an unconfirmed removal (a late
//!   confirmation from a member that left ends the wait early: the removed member keeps its
//!   hand-over duty and confirms once its singleton stopped, which gets through if that is
//!   within [`ClusterSettings::quarantine_removed_after`](crate::cluster::ClusterSettings)
//!   of its removal). A singleton whose stop takes longer than the exit blocker timeout
//!   plus the margin, or a downed node that learns of its downing later than the margin,
//!   can overlap.
//!
//! A lease ([`SingletonSettings::with_lease`]) removes all three: an instance runs only while
//! its node holds the lease, a node whose holding is lost (released, expired at its local
//! deadline, taken over, cleared) stops its instance at once, and a lease is released only
//! after the child terminated. Two instances then never overlap (within the lease's own
//! promise, which depends on its ttl and safety margin against clock drift), whatever the
//! downing strategy or the stop time; the removal margin may then be set to zero. The lease
//! also gives each instance a fencing token for the resources it writes.
//!
//! # When it starts and stops
//!
//! The manager turns the membership into a [`Duty`] ([`duty`]) and runs a pure state machine
//! ([`state_machine`]) that the actor only executes:
//!
//! - A new host starts its singleton only after **every older member with the role that may
//!   still run one** (leaving, exiting or downed, not yet removed) **confirmed the hand-over**
//!   or was **removed** (a crashed host counts once the downing decision marked it Down and
//!   the leader removed it; a downed member is never asked, only its removal counts, unless
//!   it confirmed before it was downed: that confirmation keeps counting, so a finished
//!   hand-over is not undone when the old host is downed before its removal). Never
//!   on a timeout alone. All of them, not only the oldest: after a hand-over the old host
//!   lingers as Leaving/Exiting while its successor runs the singleton, and that successor
//!   may leave or be downed in turn before the old host is removed.
//! - Graceful leave: the leaving host stops its singleton, releases its lease, then sends
//!   `HandOverDone` to the oldest Up member with the role (so does any leaving member older
//!   than it), and only then lets its node's leave go on past Leaving (its exit blocker). That member asks each of them with `HandOverToMe` (every [`SingletonSettings::hand_over_retry_interval`], at most
//!   [`SingletonSettings::max_hand_over_retries`] times, then it waits for the removal) and is
//!   answered `HandOverInProgress` until the old instance is gone. Every step is logged
//!   (`tracing`, debug; a give-up at warn).
//! - Without a lease: host → spawn the child (named `type_name`); not host → stop it.
//! - With a lease ([`SingletonSettings::with_lease`]): host → acquire; held → spawn the child,
//!   giving it the lease's fencing token through [`SingletonContext`]; not held → retry after
//!   [`SingletonSettings::acquire_retry_interval`]. Lease lost → the child is stopped at once;
//!   the lease is acquired again only after the child has terminated and only while this node
//!   is still the host. An acquire result that arrives after this node stopped being the host
//!   is released. Lease results, timers and cluster events are all messages to the manager,
//!   which never awaits inline, so nothing interleaves with an acquire in flight. The lease's
//!   owner must be this node's address plus uid ([`lease_owner`]); the manager checks it. A
//!   manager that stops for good first waits for its release calls still running (so none runs
//!   after it is gone), then releases the lease in its stop hook, and an acquire still
//!   in flight then releases its own grant when it arrives (nobody is left to handle it).
//!   Every lease call is given up on after [`LEASE_CALL_TIMEOUT_FACTOR`] times the lease's
//!   operation timeout and handled as failed (a refusal, or a failed release). A release
//!   that failed while the lease object still holds is tried once more at once, before the
//!   manager counts the lease let go (and, leaving, confirms the hand-over), then once per
//!   acquire interval. So a lease implementation that hangs cannot stop acquires or hold a
//!   graceful leave for ever, and one whose release keeps failing is not called in a loop.
//! - The child is death-watched. A failure goes through normal supervision (the manager's
//!   default strategy restarts it). **A child that stops itself** makes the manager release
//!   the lease; it is **not spawned again until the next host change** (this node stops being
//!   the host and becomes it again). Put a supervisor or watchdog in the singleton if it must
//!   come back by itself.
//! - A manager that is restarted re-subscribes to the membership and reconciles from scratch,
//!   except for what its incarnations share: each numbers its lease attempts in its own
//!   range (results piped to an earlier one are not taken for its own), a removal margin an
//!   earlier one was waiting out is waited out to its end, and lease releases an earlier one
//!   issued are waited for before acquiring (the lease object is shared, and a release lets
//!   go of whatever it holds, so a late one would drop the new holding). A holding the lease
//!   object has but the manager does not track (left over from before the restart, or by a
//!   failed release) is released once nothing is in flight.
//!
//! # Proxy
//!
//! [`ClusterSingletonProxy::spawn`] gives an `ActorRef<M>` that forwards every message to the
//! running singleton. It asks the host's manager where the singleton is (every
//! [`ProxySettings::identify_interval`] until it learns it), follows a hand-over to the new
//! host, and death-watches the singleton. While no singleton is known, or its node is
//! unreachable, it buffers messages (at most [`ProxySettings::buffer_size`], default
//! [`DEFAULT_BUFFER_SIZE`]; when full, the oldest goes to dead letters) and sends them in
//! order once the singleton is found (or its node reachable again). `ask` through the proxy
//! works (register the reply type with [`Remoting::register`] on every node). Delivery is at
//! most once: a message sent to a node that died before anyone noticed is lost.
//!
//! # Diagnostics
//!
//! [`ManagerMsg::status`] asks a manager for its [`ManagerStatus`] (active? host? token?).
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use actor_cluster::cluster::{Cluster, ClusterSettings};
//! use actor_cluster::remote::Remoting;
//! use actor_cluster::singleton::{ClusterSingletonManager, ClusterSingletonProxy, ProxySettings, SingletonSettings};
//! use actor_cluster::wire::RemoteMessage;
//! use actor_cluster::{Address, InMemoryHub};
//! use actor_core::{Actor, ActorResult, ActorSystem, Context, Props, ReplyTo};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Next(ReplyTo<u64>);
//! impl RemoteMessage for Next { const MANIFEST: &'static str = "doc.Next"; }
//!
//! #[derive(Default)]
//! struct Counter(u64);
//! impl Actor for Counter {
//!     type Msg = Next;
//!     async fn handle(&mut self, Next(reply): Next, _: &mut Context<Self>) -> ActorResult {
//!         self.0 += 1;
//!         reply.reply(self.0);
//!         Ok(())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let hub = InMemoryHub::new();
//! let address = Address::logical("doc", "a")?;
//! let transport = hub.bind(address.clone())?;
//! let system = ActorSystem::with_settings("doc", Remoting::system_settings(&*transport))?;
//! Remoting::start(&system, transport)?;
//! Cluster::join(&system, ClusterSettings::fast().with_seed_nodes(vec![address]))?;
//!
//! ClusterSingletonManager::spawn(&system, Props::new(Counter::default), SingletonSettings::new("counter"))?;
//! let proxy = ClusterSingletonProxy::spawn::<Next>(&system, ProxySettings::new("counter"))?;
//! let n = proxy.ask(Next, Duration::from_secs(30)).await?;
//! assert_eq!(n, 1);
//! system.terminate().await;
//! # Ok(())
//! # }
//! ```

mod host;
mod lineage;
mod manager;
mod protocol;
mod proxy;
mod settings;
pub mod state_machine;

use actor_coordination::lease::LeaseOwner;
use actor_core::{ActorSystem, SpawnError};

use crate::remote::{RemoteError, Remoting};

pub use host::{Duty, can_host, duty, singleton_host};
pub use manager::{ClusterSingletonManager, SingletonContext};
pub use protocol::{ManagerMsg, ManagerStatus, SingletonLocation};
pub use proxy::ClusterSingletonProxy;
pub use settings::{
    DEFAULT_ACQUIRE_RETRY_INTERVAL, DEFAULT_BUFFER_SIZE, DEFAULT_HAND_OVER_RETRY_INTERVAL,
    DEFAULT_IDENTIFY_INTERVAL, DEFAULT_MAX_HAND_OVER_RETRIES, DEFAULT_REMOVAL_MARGIN,
    DEFAULT_SPAWN_RETRY_INTERVAL, LEASE_CALL_TIMEOUT_FACTOR, MAX_BUFFER_SIZE, ProxySettings,
    SingletonSettings,
};

/// Prefix of a manager's actor name; the type name follows.
pub const MANAGER_NAME_PREFIX: &str = "singleton-manager-";

/// The actor name of the manager of `type_name`: `singleton-manager-<type_name>`.
pub fn manager_name(type_name: &str) -> String {
    format!("{MANAGER_NAME_PREFIX}{type_name}")
}

/// The path of the manager of `type_name` in system `system_name`:
/// `actor://<system>/user/singleton-manager-<type_name>`.
///
/// # Examples
///
/// ```
/// use actor_cluster::singleton::singleton_manager_path;
///
/// assert_eq!(
///     singleton_manager_path("prod", "job-scheduler"),
///     "actor://prod/user/singleton-manager-job-scheduler",
/// );
/// ```
pub fn singleton_manager_path(system_name: &str, type_name: &str) -> String {
    format!(
        "{}{system_name}/user/{}",
        actor_core::PATH_SCHEME,
        manager_name(type_name)
    )
}

/// The path of the manager of `type_name` on the node at `address`
/// (`actor://<system>@host:port/user/singleton-manager-<type_name>`).
pub fn singleton_manager_path_at(address: &crate::Address, type_name: &str) -> String {
    format!(
        "{}{address}/user/{}",
        actor_core::PATH_SCHEME,
        manager_name(type_name)
    )
}

/// The lease owner a singleton lease on this node must have: the node's address plus its
/// uid, so a restarted node is a new owner. `None` until remoting is started.
///
/// # Examples
///
/// ```
/// use actor_cluster::remote::Remoting;
/// use actor_cluster::singleton::lease_owner;
/// use actor_cluster::{Address, InMemoryHub};
/// use actor_core::ActorSystem;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let hub = InMemoryHub::new();
/// let transport = hub.bind(Address::logical("doc", "a")?)?;
/// let system = ActorSystem::with_settings("doc", Remoting::system_settings(&*transport))?;
/// assert!(lease_owner(&system).is_none());
/// Remoting::start(&system, transport)?;
/// let owner = lease_owner(&system).unwrap();
/// assert_eq!(owner.id(), "doc@a:0");
/// # system.terminate().await;
/// # Ok(())
/// # }
/// ```
pub fn lease_owner(system: &ActorSystem) -> Option<LeaseOwner> {
    let remoting = Remoting::get(system)?;
    Some(LeaseOwner::for_node(
        remoting.local_address(),
        remoting.local_uid(),
    ))
}

/// Errors of the singleton's constructors and settings.
#[derive(Debug, thiserror::Error)]
pub enum SingletonError {
    /// The type name is not a valid actor name.
    #[error("invalid singleton type name `{type_name}`: {reason}")]
    InvalidTypeName {
        /// The rejected name.
        type_name: String,
        /// Why.
        reason: String,
    },
    /// A setting is out of range.
    #[error("invalid singleton setting `{setting}`: {reason}")]
    InvalidSetting {
        /// The setting's name.
        setting: &'static str,
        /// Why.
        reason: String,
    },
    /// A manager must be named `singleton-manager-<type_name>`, or proxies cannot find it.
    #[error("a singleton manager for `{type_name}` must be named `{expected}`, not `{given}`")]
    MisnamedManager {
        /// The singleton's type name.
        type_name: String,
        /// The name that routing needs.
        expected: String,
        /// The name that was asked for.
        given: String,
    },
    /// The system has not joined a cluster ([`Cluster::join`](crate::Cluster::join)).
    #[error("actor system `{system}` has not joined a cluster")]
    ClusterNotJoined {
        /// The system's name.
        system: String,
    },
    /// The lease's owner is not this node (address plus uid).
    #[error("the singleton lease belongs to `{found}`, but this node is `{expected}`")]
    LeaseOwnerMismatch {
        /// This node's owner identity.
        expected: String,
        /// The lease's configured owner.
        found: String,
    },
    /// Registering a message type with remoting failed.
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// The actor could not be spawned.
    #[error(transparent)]
    Spawn(#[from] SpawnError),
}
