//! [`PubSubError`]: everything a pub-sub call can refuse.

use actor_core::{AskError, SpawnError};

use super::settings::PubSubSettingsError;
use crate::remote::RemoteError;

/// Errors of starting pub-sub, subscribing and registering.
#[derive(Debug, thiserror::Error)]
pub enum PubSubError {
    /// The actor system has not joined a cluster ([`Cluster::join`](crate::Cluster::join)
    /// first).
    #[error("actor system {system} has not joined a cluster")]
    ClusterNotJoined {
        /// The system's name.
        system: String,
    },
    /// Pub-sub was already started on this system (with other settings).
    #[error("pub-sub is already started on actor system {system}")]
    AlreadyStarted {
        /// The system's name.
        system: String,
    },
    /// The settings are invalid.
    #[error(transparent)]
    Settings(#[from] PubSubSettingsError),
    /// A topic or group name is empty or too long.
    #[error("invalid {what} name {name:?}: {reason}")]
    InvalidName {
        /// `"topic"`, `"group"` or `"path"`.
        what: &'static str,
        /// The refused name.
        name: String,
        /// Why it was refused.
        reason: String,
    },
    /// Subscribing would exceed the limit on topics with local subscribers.
    #[error(
        "cannot subscribe to topic {topic:?}: this node already has {limit} topics (the limit)"
    )]
    TooManyTopics {
        /// The refused topic.
        topic: String,
        /// The limit ([`PubSubSettings::max_topics`](super::PubSubSettings)).
        limit: usize,
    },
    /// Subscribing would exceed the limit on local subscribers of the topic.
    #[error(
        "cannot subscribe to topic {topic:?}: it already has {limit} subscribers on this node (the limit)"
    )]
    TooManySubscribers {
        /// The topic.
        topic: String,
        /// The limit ([`PubSubSettings::max_subscribers_per_topic`](super::PubSubSettings)).
        limit: usize,
    },
    /// Registering would exceed the limit on actors registered for `send`.
    #[error("cannot register {path}: this node already has {limit} registered actors (the limit)")]
    TooManyRegistered {
        /// The refused path.
        path: String,
        /// The limit ([`PubSubSettings::max_registered_paths`](super::PubSubSettings)).
        limit: usize,
    },
    /// Only actors of this node can be registered for `send`.
    #[error("cannot register {path} for send: it is not an actor of this node")]
    NotLocal {
        /// The refused actor's path.
        path: String,
    },
    /// The message type cannot be registered with remoting (another type has its manifest).
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// The mediator could not be spawned (the system is terminating).
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    /// The mediator did not answer (stopped, or slower than the ack timeout).
    #[error("the pub-sub mediator did not acknowledge: {0}")]
    NoAck(#[from] AskError),
}
