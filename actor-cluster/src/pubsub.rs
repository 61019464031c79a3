//! Distributed publish-subscribe across the cluster: a mediator per node, typed subscribers,
//! publish to every subscriber of a topic on every node, one per group, or send to actors
//! registered under a path.
//!
//! [`DistributedPubSub::get`] starts (once per node) the mediator at [`MEDIATOR_PATH`]
//! (`/system/pubsub-mediator`) and returns the handle everything goes through. Start it on
//! every node of the cluster after [`Cluster::join`](crate::Cluster::join).
//!
//! # Design: typed subscribers, one network message per node
//!
//! A subscriber is an `ActorRef<M>` for some [`RemoteMessage`] `M: Clone`; a topic may carry
//! several message types, each with its own subscribers. For every (topic, group, type) that
//! has local subscribers, the mediator spawns a child **topic endpoint**: a typed actor
//! taking `M` whose path (`/system/pubsub-mediator/topic-<n>`) is what the other nodes learn
//! from the registry. Publishing `M` on a topic:
//!
//! - reads the routing table (a read lock, no message to the mediator), finds the nodes
//!   that have an endpoint for (topic, `M::MANIFEST`), and tells each **remote endpoint once**
//!   through [`Remoting`]: one network message per node, however many subscribers it has;
//! - fans out to the local subscribers directly, cloning the message.
//!
//! On arrival, remoting decodes the message into `M` (refs inside it resolve as for any
//! remote message) and the endpoint clones it to its node's subscribers. So published
//! messages are ordinary remote user messages: no second envelope, no untyped dispatch, and
//! a receiving node only ever decodes types it has subscribers for (the registry key carries
//! the manifest, so a publisher never sends a type to a node whose subscribers take another).
//! Subscribing registers `M` with remoting on that node; the types of refs carried inside
//! `M` must be registered on the receiving nodes as for any remote message.
//!
//! # Registry and gossip
//!
//! Each node owns a bucket of entries `(kind, topic or path, group, manifest) -> actor path`,
//! versioned by a counter that grows on every local change; a removal is a tombstone kept
//! for [`PubSubSettings::removed_ttl`]. Every [`PubSubSettings::gossip_interval`] the
//! mediator sends its bucket versions to one random peer mediator, which answers with only
//! the entries newer than those versions (at most [`PubSubSettings::max_delta_entries`]), and
//! with its own versions if the sender has something newer. A receiver accepts at most
//! [`PubSubSettings::max_received_entries`] entries from one message (the rest is dropped,
//! logged, and asked for again in later rounds). Buckets are accepted only from
//! members that are Up (or later); a downed or removed member's bucket is dropped, so its
//! subscribers disappear everywhere. Subscribers are watched: one that stops is removed.
//!
//! # Semantics
//!
//! - `subscribe` / `unsubscribe` / `register` / `unregister` are acknowledged once the local
//!   mediator has applied them; a subscription reaches other nodes by gossip, so a publish on
//!   another node sees it a few gossip rounds later (and a removal likewise).
//! - [`DistributedPubSub::publish`] reaches the subscribers without a group;
//!   [`DistributedPubSub::publish_one_per_group`] reaches one subscriber of each group
//!   (nodes holding a group are taken in turn, then subscribers within the node in turn).
//! - [`DistributedPubSub::send`] reaches one actor registered under a path (this node's
//!   preferred with `local_affinity`), [`DistributedPubSub::send_to_all`] every one. `send`
//!   and `publish_one_per_group` skip nodes the cluster marks unreachable while another
//!   node holds the path or group.
//! - A message nobody takes is published as a dead letter (recipient: the mediator's path,
//!   or an endpoint's when its last subscriber left while the message was under way); that
//!   is not an error.
//! - Delivery is at most once, in order per publisher and subscriber.
//! - A supervision restart of the mediator keeps its registry, subscriptions and
//!   registrations, and spawns the topic endpoints again at the same paths; only messages
//!   queued in the old endpoints are lost.
//! - The full list of guarantees is in `docs/semantics.md` ("Distributed pub-sub").
//! - Bounded: [`PubSubSettings::max_topics`], [`PubSubSettings::max_subscribers_per_topic`]
//!   and [`PubSubSettings::max_registered_paths`] refuse with a typed [`PubSubError`].
//!
//! # Examples
//!
//! Two nodes; a subscriber on `a` receives what `b` publishes:
//!
//! ```
//! use actor_cluster::cluster::{Cluster, ClusterSettings};
//! use actor_cluster::pubsub::{DistributedPubSub, PubSubSettings};
//! use actor_cluster::remote::Remoting;
//! use actor_cluster::wire::RemoteMessage;
//! use actor_cluster::{Address, InMemoryHub};
//! use actor_core::{Actor, ActorResult, ActorSystem, Context, Props};
//! use serde::{Deserialize, Serialize};
//! use std::time::Duration;
//!
//! #[derive(Clone, Debug, Serialize, Deserialize)]
//! struct News(String);
//! impl RemoteMessage for News {
//!     const MANIFEST: &'static str = "doc.News";
//! }
//!
//! struct Reader(tokio::sync::mpsc::UnboundedSender<String>);
//! impl Actor for Reader {
//!     type Msg = News;
//!     async fn handle(&mut self, News(text): News, _: &mut Context<Self>) -> ActorResult {
//!         let _ = self.0.send(text);
//!         Ok(())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let hub = InMemoryHub::new();
//! let seeds = vec![Address::logical("doc", "a")?, Address::logical("doc", "b")?];
//! let mut nodes = Vec::new();
//! for address in &seeds {
//!     let transport = hub.bind(address.clone())?;
//!     let system = ActorSystem::with_settings("doc", Remoting::system_settings(&*transport))?;
//!     Remoting::start(&system, transport)?;
//!     Cluster::join(&system, ClusterSettings::fast().with_seed_nodes(seeds.clone()))?;
//!     let settings = PubSubSettings::default().with_gossip_interval(Duration::from_millis(100));
//!     DistributedPubSub::start(&system, settings)?;
//!     nodes.push(system);
//! }
//! let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
//! let reader = nodes[0].spawn(Props::new(move || Reader(tx.clone())), "reader")?;
//! DistributedPubSub::get(&nodes[0])?.subscribe("news", &reader).await?;
//!
//! let b = DistributedPubSub::get(&nodes[1])?;
//! while b.topic_nodes("news").is_empty() {
//!     tokio::time::sleep(Duration::from_millis(50)).await; // gossip, in virtual time
//! }
//! b.publish("news", News("hello".into()));
//! assert_eq!(rx.recv().await.as_deref(), Some("hello"));
//! for system in nodes {
//!     system.terminate().await;
//! }
//! # Ok(())
//! # }
//! ```

mod delivery;
mod endpoint;
mod error;
mod mediator;
mod protocol;
mod registry;
mod routing;
mod settings;
mod text;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use actor_core::{ActorPath, ActorRef, ActorSystem, Props};
use parking_lot::{Mutex, RwLock};

pub use error::PubSubError;
pub use protocol::MediatorMsg;
pub use settings::{
    DEFAULT_ACK_TIMEOUT, DEFAULT_GOSSIP_INTERVAL, DEFAULT_MAX_DELTA_ENTRIES,
    DEFAULT_MAX_NAME_LENGTH, DEFAULT_MAX_RECEIVED_ENTRIES, DEFAULT_MAX_REGISTERED_PATHS,
    DEFAULT_MAX_SUBSCRIBERS_PER_TOPIC, DEFAULT_MAX_TOPICS, DEFAULT_REMOVED_TTL, PubSubSettings,
    PubSubSettingsError,
};
pub use text::Text;

use crate::Address;
use crate::cluster::Cluster;
use crate::membership::UniqueAddress;
use crate::remote::Remoting;
use crate::wire::RemoteMessage;
use endpoint::Typed;
use mediator::Mediator;
use protocol::{Ack, Command};
use registry::{Key, KeyKind};
use routing::Table;

/// Name of the mediator actor under `/system`.
pub const MEDIATOR_NAME: &str = "pubsub-mediator";

/// Path of the mediator actor on every node.
pub const MEDIATOR_PATH: &str = "/system/pubsub-mediator";

/// The full path of the mediator on the node at `address`.
fn mediator_path_of(address: &Address) -> String {
    format!("{}{address}{MEDIATOR_PATH}", actor_core::PATH_SCHEME)
}

/// What the handle, the mediator and publishers share.
pub(crate) struct Shared {
    system: ActorSystem,
    remoting: Arc<Remoting>,
    self_node: UniqueAddress,
    settings: PubSubSettings,
    table: RwLock<Table>,
    /// Messages told to remote endpoints or registered actors (one per node per publish).
    remote_sends: AtomicU64,
    /// The mediator's state between its failed instance and the restarted one.
    carried: Mutex<Option<mediator::State>>,
    /// How many times supervision restarted the mediator.
    restarts: AtomicU64,
}

#[derive(Default)]
struct PubSubSlot(Mutex<Option<Arc<DistributedPubSub>>>);

/// A node's pub-sub: the mediator and the calls to subscribe, publish and send; a system
/// extension ([`DistributedPubSub::get`]). See the [module docs](self).
pub struct DistributedPubSub {
    shared: Arc<Shared>,
    mediator: ActorRef<MediatorMsg>,
}

impl std::fmt::Debug for DistributedPubSub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DistributedPubSub")
            .field("mediator", self.mediator.path())
            .finish_non_exhaustive()
    }
}

impl DistributedPubSub {
    /// The pub-sub of `system`, started with default settings on first use.
    ///
    /// # Errors
    ///
    /// As [`DistributedPubSub::start`], except that an already started pub-sub is returned.
    pub fn get(system: &ActorSystem) -> Result<Arc<DistributedPubSub>, PubSubError> {
        Self::start_inner(system, PubSubSettings::default(), true)
    }

    /// Starts pub-sub on `system` with `settings`: spawns the mediator at
    /// [`MEDIATOR_PATH`].
    ///
    /// # Errors
    ///
    /// [`PubSubError::ClusterNotJoined`] before [`Cluster::join`],
    /// [`PubSubError::AlreadyStarted`], [`PubSubError::Settings`] for invalid settings,
    /// [`PubSubError::Spawn`] when the system is terminating.
    pub fn start(
        system: &ActorSystem,
        settings: PubSubSettings,
    ) -> Result<Arc<DistributedPubSub>, PubSubError> {
        Self::start_inner(system, settings, false)
    }

    fn start_inner(
        system: &ActorSystem,
        settings: PubSubSettings,
        existing_ok: bool,
    ) -> Result<Arc<DistributedPubSub>, PubSubError> {
        let not_joined = || PubSubError::ClusterNotJoined {
            system: system.name().to_owned(),
        };
        settings.validate()?;
        let cluster = Cluster::get(system).ok_or_else(not_joined)?;
        let remoting = Remoting::get(system).ok_or_else(not_joined)?;
        let slot = system.extension(|_| PubSubSlot::default());
        let mut guard = slot.0.lock();
        if let Some(existing) = &*guard {
            return if existing_ok {
                Ok(existing.clone())
            } else {
                Err(PubSubError::AlreadyStarted {
                    system: system.name().to_owned(),
                })
            };
        }
        remoting.register::<MediatorMsg>()?;
        let shared = Arc::new(Shared {
            system: system.clone(),
            remoting,
            self_node: cluster.self_member().unique_address(),
            settings,
            table: RwLock::new(Table::default()),
            remote_sends: AtomicU64::new(0),
            carried: Mutex::new(None),
            restarts: AtomicU64::new(0),
        });
        let seed = system.random_u64();
        let mediator = {
            let shared = shared.clone();
            system.spawn_system_actor(
                Props::new(move || Mediator::new(shared.clone(), seed)),
                MEDIATOR_NAME,
            )?
        };
        let pubsub = Arc::new(DistributedPubSub { shared, mediator });
        *guard = Some(pubsub.clone());
        Ok(pubsub)
    }

    /// The mediator of this node (at [`MEDIATOR_PATH`]).
    pub fn mediator(&self) -> &ActorRef<MediatorMsg> {
        &self.mediator
    }

    /// The settings the mediator runs with.
    pub fn settings(&self) -> &PubSubSettings {
        &self.shared.settings
    }

    fn check_name(&self, what: &'static str, name: &str) -> Result<(), PubSubError> {
        let limit = self.shared.settings.max_name_length;
        let reason = if name.is_empty() {
            "it is empty".to_owned()
        } else if name.len() > limit {
            format!("{} bytes is longer than the limit of {limit}", name.len())
        } else {
            return Ok(());
        };
        Err(PubSubError::InvalidName {
            what,
            name: name.to_owned(),
            reason,
        })
    }

    fn topic_key<M: RemoteMessage>(
        &self,
        topic: &str,
        group: Option<&str>,
    ) -> Result<Key, PubSubError> {
        self.check_name("topic", topic)?;
        if let Some(group) = group {
            self.check_name("group", group)?;
        }
        Ok(Key {
            kind: KeyKind::Topic,
            name: topic.to_owned(),
            group: group.map(str::to_owned),
            manifest: M::MANIFEST.to_owned(),
        })
    }

    fn path_key<M: RemoteMessage>(path: &ActorPath) -> Key {
        Key {
            kind: KeyKind::Path,
            name: path_name(path),
            group: None,
            manifest: M::MANIFEST.to_owned(),
        }
    }

    async fn ask(&self, make: impl FnOnce(Ack) -> Command) -> Result<bool, PubSubError> {
        self.mediator
            .ask(
                |reply| MediatorMsg::local(make(reply)),
                self.shared.settings.ack_timeout,
            )
            .await?
    }

    async fn add<M: RemoteMessage + Clone>(
        &self,
        key: Key,
        actor: &ActorRef<M>,
    ) -> Result<bool, PubSubError> {
        self.shared.remoting.register::<M>()?;
        let subscriber = Box::new(Typed(actor.clone()));
        self.ask(|reply| Command::Add {
            key,
            subscriber,
            reply,
        })
        .await
    }

    async fn remove<M: RemoteMessage>(
        &self,
        key: Key,
        actor: &ActorRef<M>,
    ) -> Result<bool, PubSubError> {
        let id = actor.id().clone();
        self.ask(|reply| Command::Remove { key, id, reply }).await
    }

    /// Subscribes `subscriber` to the messages of type `M` published on `topic`; returns
    /// once this node's mediator has added it (false: it was already subscribed).
    ///
    /// # Errors
    ///
    /// [`PubSubError::InvalidName`], [`PubSubError::TooManyTopics`],
    /// [`PubSubError::TooManySubscribers`], [`PubSubError::Remote`] when another type has
    /// `M::MANIFEST`, [`PubSubError::NoAck`] when the mediator does not answer.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future after the request was sent may still subscribe.
    pub async fn subscribe<M: RemoteMessage + Clone>(
        &self,
        topic: &str,
        subscriber: &ActorRef<M>,
    ) -> Result<bool, PubSubError> {
        let key = self.topic_key::<M>(topic, None)?;
        self.add(key, subscriber).await
    }

    /// Subscribes `subscriber` to `topic` as a member of `group`: it receives messages
    /// published with [`DistributedPubSub::publish_one_per_group`], which give each group
    /// one copy.
    ///
    /// # Errors
    ///
    /// As [`DistributedPubSub::subscribe`].
    ///
    /// # Cancel safety
    ///
    /// As [`DistributedPubSub::subscribe`].
    pub async fn subscribe_group<M: RemoteMessage + Clone>(
        &self,
        topic: &str,
        group: &str,
        subscriber: &ActorRef<M>,
    ) -> Result<bool, PubSubError> {
        let key = self.topic_key::<M>(topic, Some(group))?;
        self.add(key, subscriber).await
    }

    /// Unsubscribes `subscriber` from `topic`; returns once this node's mediator removed it
    /// (false: it was not subscribed). Remote publishers stop sending to this node when
    /// gossip tells them it has no subscribers left.
    ///
    /// # Errors
    ///
    /// [`PubSubError::InvalidName`], [`PubSubError::NoAck`].
    ///
    /// # Cancel safety
    ///
    /// Dropping the future after the request was sent may still unsubscribe.
    pub async fn unsubscribe<M: RemoteMessage>(
        &self,
        topic: &str,
        subscriber: &ActorRef<M>,
    ) -> Result<bool, PubSubError> {
        let key = self.topic_key::<M>(topic, None)?;
        self.remove(key, subscriber).await
    }

    /// Takes `subscriber` out of `group` of `topic`.
    ///
    /// # Errors
    ///
    /// As [`DistributedPubSub::unsubscribe`].
    ///
    /// # Cancel safety
    ///
    /// As [`DistributedPubSub::unsubscribe`].
    pub async fn unsubscribe_group<M: RemoteMessage>(
        &self,
        topic: &str,
        group: &str,
        subscriber: &ActorRef<M>,
    ) -> Result<bool, PubSubError> {
        let key = self.topic_key::<M>(topic, Some(group))?;
        self.remove(key, subscriber).await
    }

    /// Registers a local actor for [`DistributedPubSub::send`] under its path without the
    /// address (`/user/service`); an actor registered at the same path on several nodes is
    /// one service with several instances.
    ///
    /// # Errors
    ///
    /// [`PubSubError::NotLocal`] for a remote ref or an adapter,
    /// [`PubSubError::TooManyRegistered`], [`PubSubError::Remote`], [`PubSubError::NoAck`].
    ///
    /// # Cancel safety
    ///
    /// Dropping the future after the request was sent may still register.
    pub async fn register<M: RemoteMessage + Clone>(
        &self,
        actor: &ActorRef<M>,
    ) -> Result<bool, PubSubError> {
        if !actor.is_local() {
            return Err(PubSubError::NotLocal {
                path: actor.path().to_string(),
            });
        }
        self.add(Self::path_key::<M>(actor.path()), actor).await
    }

    /// Removes a registration made by [`DistributedPubSub::register`].
    ///
    /// # Errors
    ///
    /// [`PubSubError::NoAck`].
    ///
    /// # Cancel safety
    ///
    /// Dropping the future after the request was sent may still unregister.
    pub async fn unregister<M: RemoteMessage>(
        &self,
        actor: &ActorRef<M>,
    ) -> Result<bool, PubSubError> {
        self.remove(Self::path_key::<M>(actor.path()), actor).await
    }

    /// Publishes `msg` to every subscriber of `topic` that takes `M` (not to group members),
    /// on every node: one message per remote node. Returns how many local subscribers and
    /// remote nodes it was sent to; with none, `msg` becomes a dead letter (not an error).
    pub fn publish<M: RemoteMessage + Clone>(&self, topic: &str, msg: M) -> usize {
        let undelivered = {
            let table = self.shared.table.read();
            match table.topic(topic, M::MANIFEST) {
                Some(routes) => match self.deliver_all(&routes.all, msg, false) {
                    Ok(sent) => return sent,
                    Err(msg) => msg,
                },
                None => msg,
            }
        };
        self.dead_letter(topic, undelivered);
        0
    }

    /// Publishes `msg` to one subscriber of each group of `topic` that takes `M` (nodes the
    /// cluster marks unreachable are skipped while another node has the group). Returns
    /// how many groups it was sent to; with none, `msg` becomes a dead letter.
    pub fn publish_one_per_group<M: RemoteMessage + Clone>(&self, topic: &str, msg: M) -> usize {
        let sent = {
            let table = self.shared.table.read();
            let mut sent = 0;
            for targets in table
                .topic(topic, M::MANIFEST)
                .into_iter()
                .flat_map(|routes| routes.groups.values())
            {
                if self.deliver_one(&table, targets, msg.clone(), false) {
                    sent += 1;
                }
            }
            sent
        };
        if sent == 0 {
            self.dead_letter(topic, msg);
        }
        sent
    }

    /// Sends `msg` to one actor registered under `path` (`/user/service`): this node's when
    /// `local_affinity` and there is one, else the nodes holding one in turn, skipping
    /// nodes the cluster currently marks unreachable while another node holds one. Returns
    /// false (and `msg` becomes a dead letter) when none is known.
    ///
    /// A node that stopped is only skipped once it is detected unreachable, and forgotten
    /// when it is downed or removed: until then a message sent to it is lost (delivery is
    /// at most once).
    pub fn send<M: RemoteMessage + Clone>(&self, path: &str, msg: M, local_affinity: bool) -> bool {
        let undelivered = {
            let table = self.shared.table.read();
            match table.path(path, M::MANIFEST) {
                Some(targets) if self.deliver_one(&table, targets, msg.clone(), local_affinity) => {
                    return true;
                }
                _ => msg,
            }
        };
        self.dead_letter(path, undelivered);
        false
    }

    /// Sends `msg` to every actor registered under `path` (`/user/service`), on every node
    /// (this node's excluded with `all_but_self`). Returns how many it was sent to; with
    /// none, `msg` becomes a dead letter.
    pub fn send_to_all<M: RemoteMessage + Clone>(
        &self,
        path: &str,
        msg: M,
        all_but_self: bool,
    ) -> usize {
        let undelivered = {
            let table = self.shared.table.read();
            match table.path(path, M::MANIFEST) {
                Some(targets) => match self.deliver_all(targets, msg, all_but_self) {
                    Ok(sent) => return sent,
                    Err(msg) => msg,
                },
                None => msg,
            }
        };
        self.dead_letter(path, undelivered);
        0
    }

    /// The nodes (this one included) known to have subscribers of `topic`, of any type or
    /// group, sorted by address. Remote nodes appear once gossip has brought their entries.
    pub fn topic_nodes(&self, topic: &str) -> Vec<Address> {
        let (local, remote) = self.shared.table.read().topic_nodes(topic);
        let mut nodes: Vec<Address> = remote.into_iter().map(|n| n.address).collect();
        if local {
            nodes.push(self.shared.self_node.address.clone());
        }
        nodes.sort();
        nodes.dedup();
        nodes
    }

    /// How many times supervision has restarted this node's mediator (after a failure).
    ///
    /// A restart keeps the registry, the subscriptions and the registrations; only
    /// messages queued in this node's topic endpoints at that moment are lost.
    pub fn mediator_restarts(&self) -> u64 {
        self.shared.restarts.load(Ordering::Relaxed)
    }

    /// Test-only hook: makes the mediator fail on its next message, so that supervision
    /// restarts it. Not for production use; it exists to test recovery from a restart.
    #[doc(hidden)]
    pub fn inject_mediator_failure(&self) {
        self.mediator.tell(MediatorMsg::local(Command::Fail));
    }

    /// How many messages this node has told remote endpoints or registered actors so far:
    /// one per remote node per publish, whatever the number of subscribers there.
    pub fn remote_messages_sent(&self) -> u64 {
        self.shared.remote_sends.load(Ordering::Relaxed)
    }
}

/// An actor path without its address: `/user/a/b`.
fn path_name(path: &ActorPath) -> String {
    let mut name = String::new();
    for element in path.elements() {
        name.push('/');
        name.push_str(element);
    }
    name
}
