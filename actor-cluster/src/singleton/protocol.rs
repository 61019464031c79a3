//! The manager's messages: the public queries, the hand-over exchange between managers on
//! different nodes, and the manager's own internal inputs (which never cross the wire).

use actor_coordination::lease::{FencingToken, LossReason};
use actor_core::{ActorId, ReplyTo};
use serde::{Deserialize, Serialize};

use crate::Address;
use crate::membership::UniqueAddress;
use crate::wire::RemoteMessage;

/// A message to a [`ClusterSingletonManager`](super::ClusterSingletonManager).
///
/// Build one with [`ManagerMsg::status`] (a query) or [`ManagerMsg::locate`] (what proxies
/// send). The hand-over exchange between managers and the manager's internal inputs are
/// private; internal ones cannot be sent from another node.
#[derive(Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ManagerMsg(pub(super) Inner);

/// What a [`ManagerMsg`] carries.
#[derive(Debug, Serialize, Deserialize)]
pub(super) enum Inner {
    /// Status query.
    Status(ReplyTo<ManagerStatus>),
    /// Where is the singleton? (from proxies)
    Locate(ReplyTo<SingletonLocation>),
    /// A successor asks this node to hand over.
    HandOverToMe(UniqueAddress),
    /// The previous host is still stopping its singleton.
    HandOverInProgress(UniqueAddress),
    /// The previous host has stopped its singleton and released its lease.
    HandOverDone(UniqueAddress),
    /// A membership change (internal).
    #[serde(skip)]
    Cluster,
    /// A lease acquire returned (internal).
    #[serde(skip)]
    Acquired {
        attempt: u64,
        result: Result<Option<FencingToken>, String>,
    },
    /// A holding was lost (internal).
    #[serde(skip)]
    LeaseLost { attempt: u64, reason: LossReason },
    /// A release finished (internal), issued by the manager incarnation given. Every
    /// incarnation counts the releases of earlier ones still in flight, so each answer
    /// counts, whichever incarnation handles it.
    #[serde(skip)]
    Released {
        incarnation: u32,
        result: Result<bool, String>,
    },
    /// The acquire retry timer (internal).
    #[serde(skip)]
    AcquireRetry,
    /// The hand-over retry timer (internal).
    #[serde(skip)]
    HandOverRetry,
    /// The removal margin timer (internal).
    #[serde(skip)]
    RemovalMarginElapsed,
    /// The spawn retry timer (internal).
    #[serde(skip)]
    SpawnRetry,
    /// The timer after a failed release (internal): release a holding the lease object
    /// still reports, if nothing is in flight.
    #[serde(skip)]
    ReleaseRetry,
    /// The singleton child terminated (internal); its identity.
    #[serde(skip)]
    ChildTerminated(ActorId),
}

impl ManagerMsg {
    /// A status query: the manager answers with its [`ManagerStatus`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo(manager: actor_core::ActorRef<actor_cluster::singleton::ManagerMsg>) {
    /// use actor_cluster::singleton::ManagerMsg;
    /// let status = manager.ask(ManagerMsg::status, std::time::Duration::from_secs(3)).await;
    /// # }
    /// ```
    pub fn status(reply: ReplyTo<ManagerStatus>) -> Self {
        ManagerMsg(Inner::Status(reply))
    }

    /// A location query (what proxies send): the manager answers with a
    /// [`SingletonLocation`].
    pub fn locate(reply: ReplyTo<SingletonLocation>) -> Self {
        ManagerMsg(Inner::Locate(reply))
    }

    pub(super) fn internal(inner: Inner) -> Self {
        ManagerMsg(inner)
    }
}

impl RemoteMessage for ManagerMsg {
    const MANIFEST: &'static str = "actor_cluster.singleton.ManagerMsg";
}

/// A manager's answer to [`ManagerMsg::status`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagerStatus {
    /// Whether the singleton runs under this manager now.
    pub active: bool,
    /// The state of the manager (`standby`, `taking-over`, `acquiring-lease`, `active`, ...).
    pub phase: String,
    /// The host as this node sees it (the oldest member with the role that is Up, Leaving or
    /// Exiting).
    pub host: Option<Address>,
    /// The fencing token the running singleton was given, if a lease gates it.
    pub fencing_token: Option<u64>,
    /// Whether this manager holds the lease.
    pub holds_lease: bool,
}

impl RemoteMessage for ManagerStatus {
    const MANIFEST: &'static str = "actor_cluster.singleton.ManagerStatus";
}

/// A manager's answer to [`ManagerMsg::locate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SingletonLocation {
    /// The singleton runs here, at this path.
    Here(String),
    /// This node handed the singleton over to the node at this address.
    MovedTo(Address),
    /// No singleton runs here now (not yet started, or stopping).
    NotHere,
}

impl RemoteMessage for SingletonLocation {
    const MANIFEST: &'static str = "actor_cluster.singleton.SingletonLocation";
}
