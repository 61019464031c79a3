//! [`MediatorMsg`]: what a mediator receives, from its node's handle (local requests that
//! never cross the wire) and from the mediators of other nodes (registry gossip).

use std::collections::BTreeMap;
use std::fmt;

use actor_core::{ActorId, ReplyTo};
use serde::{Deserialize, Serialize};

use super::endpoint::AnySubscriber;
use super::error::PubSubError;
use super::registry::{Bucket, Key};
use crate::membership::{ClusterEvent, UniqueAddress};
use crate::wire::RemoteMessage;

/// A message to a pub-sub mediator. Opaque: use the methods of
/// [`DistributedPubSub`](super::DistributedPubSub), which build these; between nodes only
/// the registry gossip crosses the wire (published messages go straight to the topic
/// endpoints of the receiving nodes).
#[derive(Serialize, Deserialize)]
pub struct MediatorMsg(pub(crate) Inner);

impl RemoteMessage for MediatorMsg {
    const MANIFEST: &'static str = "actor_cluster.pubsub.MediatorMsg";
}

impl fmt::Debug for MediatorMsg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Inner::Status { from, is_reply, .. } => f
                .debug_struct("Status")
                .field("from", from)
                .field("is_reply", is_reply)
                .finish_non_exhaustive(),
            Inner::Delta { from, buckets } => f
                .debug_struct("Delta")
                .field("from", from)
                .field("buckets", &buckets.len())
                .finish(),
            Inner::Local(_) => f.write_str("Local(..)"),
        }
    }
}

/// The mediator's messages.
#[derive(Serialize, Deserialize)]
pub(crate) enum Inner {
    /// A peer's bucket versions: answer with what it lacks (and with our own status when
    /// it has something we lack, unless this is already such an answer).
    Status {
        from: UniqueAddress,
        versions: BTreeMap<UniqueAddress, u64>,
        is_reply: bool,
    },
    /// Entries a peer found we lack.
    Delta {
        from: UniqueAddress,
        buckets: Vec<Bucket>,
    },
    /// A request from this node (never serialized: refusing to encode it is serde's job).
    #[serde(skip)]
    Local(Command),
}

/// The answer to a subscribe, unsubscribe, register or unregister.
pub(crate) type Ack = ReplyTo<Result<bool, PubSubError>>;

/// Requests from this node.
pub(crate) enum Command {
    /// Adds a subscriber (topics) or registers an actor (paths) under `key`.
    Add {
        key: Key,
        subscriber: Box<dyn AnySubscriber>,
        reply: Ack,
    },
    /// Removes the actor `id` from `key`.
    Remove { key: Key, id: ActorId, reply: Ack },
    /// A watched subscriber or registered actor stopped.
    Terminated(ActorId),
    /// A membership change.
    Cluster(ClusterEvent),
    /// Time for a gossip round.
    GossipTick,
    /// Test-only: fail, so that supervision restarts the mediator
    /// ([`DistributedPubSub::inject_mediator_failure`](super::DistributedPubSub)).
    Fail,
}

impl MediatorMsg {
    pub(crate) fn local(command: Command) -> Self {
        MediatorMsg(Inner::Local(command))
    }
}
