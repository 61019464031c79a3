//! The mediator actor: owns this node's subscriptions and topic endpoints, keeps the
//! registry (its own bucket and the buckets gossiped by peers), and mirrors every change
//! into the routing table publishers read.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use std::sync::atomic::Ordering;

use actor_core::{ActorError, ActorId, ActorPath, ActorRef, ActorResult, Context, Failure};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::time::Instant;

use super::endpoint::{AnySubscriber, LocalEndpoint};
use super::error::PubSubError;
use super::protocol::{Ack, Command, Inner, MediatorMsg};
use super::registry::{Change, Key, KeyKind, Registry};
use super::{Shared, mediator_path_of};
use crate::Cluster;
use crate::membership::{ClusterEvent, UniqueAddress};

const GOSSIP_TIMER: &str = "pubsub-gossip";

/// One subscriber (or registered actor) and the keys it is under.
struct Subscription {
    subscriber: Box<dyn AnySubscriber>,
    keys: BTreeSet<Key>,
}

/// What the mediator knows, kept across a restart (see [`Mediator`]).
pub(crate) struct State {
    pub(crate) registry: Registry,
    /// This node's topic endpoints (children of the mediator), by key.
    endpoints: BTreeMap<Key, Box<dyn LocalEndpoint>>,
    /// Actors registered for `send`, by key.
    registered: BTreeMap<Key, ActorId>,
    subscriptions: BTreeMap<ActorId, Subscription>,
    /// Local subscribers per topic (all groups and types): the limits' count.
    topic_counts: BTreeMap<String, usize>,
    /// Members whose registry is accepted and who are gossiped with (Up and later).
    members: BTreeSet<UniqueAddress>,
    peers: BTreeMap<UniqueAddress, ActorRef<MediatorMsg>>,
    next_endpoint: u64,
    rng: Option<ChaCha8Rng>,
    /// The adapter subscribed to cluster events (it outlives a restart: it tells the
    /// mediator's ref, not one instance).
    adapter: Option<ActorRef<ClusterEvent>>,
}

impl State {
    fn new(self_node: UniqueAddress) -> Self {
        State {
            registry: Registry::new(self_node),
            endpoints: BTreeMap::new(),
            registered: BTreeMap::new(),
            subscriptions: BTreeMap::new(),
            topic_counts: BTreeMap::new(),
            members: BTreeSet::new(),
            peers: BTreeMap::new(),
            next_endpoint: 0,
            rng: None,
            adapter: None,
        }
    }
}

/// The mediator actor.
///
/// A supervision restart does not lose what it knows: `pre_restart` parks its [`State`]
/// in [`Shared`] and the fresh instance takes it back in `started`, so the registry keeps
/// its version (peers would otherwise ignore this node's changes until the version caught
/// up with the one they hold), subscribers stay subscribed and watched, and the topic
/// endpoints, which the restart stopped as children, are spawned again under the same
/// names with the same subscriber lists, so the paths other nodes hold stay valid and the
/// routing table needs no change. Messages that were queued in the old endpoints are lost
/// (delivery is at most once).
pub(crate) struct Mediator {
    pub(crate) shared: Arc<Shared>,
    pub(crate) seed: u64,
    pub(crate) state: State,
}

impl Mediator {
    pub(crate) fn new(shared: Arc<Shared>, seed: u64) -> Self {
        Mediator {
            state: State::new(shared.self_node.clone()),
            shared,
            seed,
        }
    }

    fn self_node(&self) -> &UniqueAddress {
        &self.shared.self_node
    }

    fn put(&mut self, key: &Key, path: Option<String>) {
        self.state
            .registry
            .put_local(key.clone(), path, Instant::now());
    }

    fn add(
        &mut self,
        key: Key,
        subscriber: Box<dyn AnySubscriber>,
        ctx: &mut Context<Self>,
    ) -> Result<bool, PubSubError> {
        let id = subscriber.id().clone();
        if self
            .state
            .subscriptions
            .get(&id)
            .is_some_and(|s| s.keys.contains(&key))
        {
            return Ok(false);
        }
        match key.kind {
            KeyKind::Topic => self.add_subscriber(&key, subscriber.as_ref(), ctx)?,
            KeyKind::Path => self.add_registered(&key, subscriber.as_ref())?,
        }
        match self.state.subscriptions.get_mut(&id) {
            Some(subscription) => {
                subscription.keys.insert(key);
            }
            None => {
                subscriber.watch(ctx, MediatorMsg::local(Command::Terminated(id.clone())));
                self.state.subscriptions.insert(
                    id,
                    Subscription {
                        subscriber,
                        keys: BTreeSet::from([key]),
                    },
                );
            }
        }
        Ok(true)
    }

    fn add_subscriber(
        &mut self,
        key: &Key,
        subscriber: &dyn AnySubscriber,
        ctx: &mut Context<Self>,
    ) -> Result<(), PubSubError> {
        let settings = &self.shared.settings;
        match self.state.topic_counts.get(&key.name) {
            None if self.state.topic_counts.len() >= settings.max_topics => {
                return Err(PubSubError::TooManyTopics {
                    topic: key.name.clone(),
                    limit: settings.max_topics,
                });
            }
            Some(&n) if n >= settings.max_subscribers_per_topic => {
                return Err(PubSubError::TooManySubscribers {
                    topic: key.name.clone(),
                    limit: settings.max_subscribers_per_topic,
                });
            }
            _ => {}
        }
        if !self.state.endpoints.contains_key(key) {
            self.state.next_endpoint += 1;
            let name = format!("topic-{}", self.state.next_endpoint);
            let endpoint = subscriber.spawn_endpoint(ctx, &name, key.group.is_some())?;
            self.shared
                .table
                .write()
                .set_local(key, Some(endpoint.shared()));
            self.put(key, Some(endpoint.path().to_string()));
            self.state.endpoints.insert(key.clone(), endpoint);
        }
        if let Some(endpoint) = self.state.endpoints.get(key)
            && subscriber.add_to(endpoint.as_ref())
        {
            *self.state.topic_counts.entry(key.name.clone()).or_default() += 1;
        }
        Ok(())
    }

    fn add_registered(&mut self, key: &Key, actor: &dyn AnySubscriber) -> Result<(), PubSubError> {
        let limit = self.shared.settings.max_registered_paths;
        if !self.state.registered.contains_key(key) && self.state.registered.len() >= limit {
            return Err(PubSubError::TooManyRegistered {
                path: key.name.clone(),
                limit,
            });
        }
        // a new incarnation at the same path replaces the old one
        if let Some(old) = self
            .state
            .registered
            .insert(key.clone(), actor.id().clone())
            && let Some(subscription) = self.state.subscriptions.get_mut(&old)
        {
            subscription.keys.remove(key);
        }
        self.shared
            .table
            .write()
            .set_local(key, Some(actor.as_target()));
        self.put(key, Some(actor.path().to_string()));
        Ok(())
    }

    /// Removes `id` from `key`; false if it was not there.
    fn remove(&mut self, key: &Key, id: &ActorId, ctx: &mut Context<Self>) -> bool {
        let Some(subscription) = self.state.subscriptions.get_mut(id) else {
            return false;
        };
        if !subscription.keys.remove(key) {
            return false;
        }
        if subscription.keys.is_empty()
            && let Some(subscription) = self.state.subscriptions.remove(id)
        {
            subscription.subscriber.unwatch(ctx);
        }
        self.detach(key, id);
        true
    }

    /// Takes `id` out of what `key` routes to.
    fn detach(&mut self, key: &Key, id: &ActorId) {
        match key.kind {
            KeyKind::Topic => {
                let Some(endpoint) = self.state.endpoints.get(key) else {
                    return;
                };
                if endpoint.remove(id)
                    && let Some(n) = self.state.topic_counts.get_mut(&key.name)
                {
                    *n -= 1;
                    if *n == 0 {
                        self.state.topic_counts.remove(&key.name);
                    }
                }
                if endpoint.len() == 0
                    && let Some(endpoint) = self.state.endpoints.remove(key)
                {
                    endpoint.stop();
                    self.shared.table.write().set_local(key, None);
                    self.put(key, None);
                }
            }
            KeyKind::Path => {
                if self.state.registered.get(key) == Some(id) {
                    self.state.registered.remove(key);
                    self.shared.table.write().set_local(key, None);
                    self.put(key, None);
                }
            }
        }
    }

    fn terminated(&mut self, id: &ActorId) {
        let Some(subscription) = self.state.subscriptions.remove(id) else {
            return;
        };
        for key in &subscription.keys {
            self.detach(key, id);
        }
    }

    fn apply(&self, changes: Vec<Change>) {
        if changes.is_empty() {
            return;
        }
        let mut table = self.shared.table.write();
        for change in changes {
            let path = match change.path.as_deref().map(ActorPath::parse) {
                None => None,
                Some(Ok(path)) => Some(path),
                Some(Err(error)) => {
                    tracing::warn!(owner = ?change.owner, %error, "malformed path in the pub-sub registry ignored");
                    continue;
                }
            };
            table.set_remote(&change.owner, &change.key, path);
        }
    }

    fn cluster_event(&mut self, event: ClusterEvent) {
        let (member, joined) = match event {
            ClusterEvent::MemberUp(m)
            | ClusterEvent::MemberWeaklyUp(m)
            | ClusterEvent::MemberLeft(m)
            | ClusterEvent::MemberExited(m) => (m, true),
            ClusterEvent::MemberDowned(m) | ClusterEvent::MemberRemoved { member: m, .. } => {
                (m, false)
            }
            ClusterEvent::UnreachableMember(m) => {
                let node = m.unique_address();
                self.shared.table.write().set_reachable(&node, false);
                return;
            }
            ClusterEvent::ReachableMember(m) => {
                let node = m.unique_address();
                self.shared.table.write().set_reachable(&node, true);
                return;
            }
            _ => return,
        };
        let node = member.unique_address();
        if &node == self.self_node() {
            return;
        }
        if joined {
            self.state.members.insert(node);
        } else {
            self.state.members.remove(&node);
            self.state.peers.remove(&node);
            let changes = self.state.registry.remove_node(&node);
            self.apply(changes);
            self.shared.table.write().set_reachable(&node, true);
        }
    }

    fn peer(&mut self, node: &UniqueAddress) -> Option<ActorRef<MediatorMsg>> {
        if let Some(peer) = self.state.peers.get(node) {
            return Some(peer.clone());
        }
        let path = mediator_path_of(&node.address);
        match self.shared.remoting.remote_ref_str::<MediatorMsg>(&path) {
            Ok(peer) => {
                self.state.peers.insert(node.clone(), peer.clone());
                Some(peer)
            }
            Err(error) => {
                tracing::warn!(peer = %node.address, %error, "no route to a peer's pub-sub mediator");
                None
            }
        }
    }

    fn send_status(&mut self, to: &UniqueAddress, is_reply: bool) {
        let msg = MediatorMsg(Inner::Status {
            from: self.self_node().clone(),
            versions: self.state.registry.versions(),
            is_reply,
        });
        if let Some(peer) = self.peer(to) {
            peer.tell(msg);
        }
    }

    fn gossip(&mut self, ctx: &mut Context<Self>) {
        self.state
            .registry
            .prune(Instant::now(), self.shared.settings.removed_ttl);
        if !self.state.members.is_empty() {
            let seed = self.seed;
            let rng = self
                .state
                .rng
                .get_or_insert_with(|| ChaCha8Rng::seed_from_u64(seed));
            let i = rng.random_range(0..self.state.members.len());
            if let Some(target) = self.state.members.iter().nth(i).cloned() {
                self.send_status(&target, false);
            }
        }
        ctx.start_single_timer(
            GOSSIP_TIMER,
            self.shared.settings.gossip_interval,
            MediatorMsg::local(Command::GossipTick),
        );
    }

    /// After a restart: spawns every endpoint again (the restart stopped them). An
    /// endpoint that cannot be spawned (the system is terminating) is dropped with its
    /// subscriptions.
    fn respawn_endpoints(&mut self, ctx: &mut Context<Self>) {
        for (key, old) in std::mem::take(&mut self.state.endpoints) {
            match old.respawn(ctx) {
                Ok(endpoint) => {
                    self.state.endpoints.insert(key, endpoint);
                }
                Err(error) => {
                    tracing::warn!(topic = %key.name, %error, "pub-sub endpoint not respawned; its subscriptions are dropped");
                    self.shared.table.write().set_local(&key, None);
                    self.put(&key, None);
                    if let Some(n) = self.state.topic_counts.get_mut(&key.name) {
                        *n = n.saturating_sub(old.len());
                        if *n == 0 {
                            self.state.topic_counts.remove(&key.name);
                        }
                    }
                    self.state.subscriptions.retain(|_, s| {
                        s.keys.remove(&key);
                        if s.keys.is_empty() {
                            s.subscriber.unwatch(ctx);
                        }
                        !s.keys.is_empty()
                    });
                }
            }
        }
    }

    fn reply(reply: Ack, result: Result<bool, PubSubError>) {
        reply.reply(result);
    }
}

impl actor_core::Actor for Mediator {
    type Msg = MediatorMsg;

    async fn started(&mut self, ctx: &mut Context<Self>) -> ActorResult {
        let carried = self.shared.carried.lock().take();
        if let Some(state) = carried {
            self.state = state;
            self.respawn_endpoints(ctx);
        }
        if self.state.adapter.is_none()
            && let Some(cluster) = Cluster::get(ctx.system())
        {
            let adapter = ctx
                .myself()
                .adapt(|event| MediatorMsg::local(Command::Cluster(event)));
            cluster.subscribe(&adapter);
            self.state.adapter = Some(adapter);
        }
        ctx.start_single_timer(
            GOSSIP_TIMER,
            self.shared.settings.gossip_interval,
            MediatorMsg::local(Command::GossipTick),
        );
        Ok(())
    }

    async fn pre_restart(&mut self, failure: &Failure, _: &mut Context<Self>) {
        tracing::warn!(
            ?failure,
            "pub-sub mediator restarting; its subscriptions are kept"
        );
        self.shared.restarts.fetch_add(1, Ordering::Relaxed);
        let state = std::mem::replace(&mut self.state, State::new(self.shared.self_node.clone()));
        *self.shared.carried.lock() = Some(state);
    }

    async fn handle(&mut self, msg: MediatorMsg, ctx: &mut Context<Self>) -> ActorResult {
        match msg.0 {
            Inner::Status {
                from,
                versions,
                is_reply,
            } => {
                if !self.state.members.contains(&from) {
                    return Ok(());
                }
                let buckets = self
                    .state
                    .registry
                    .delta_for(&versions, self.shared.settings.max_delta_entries);
                if !buckets.is_empty() {
                    let delta = MediatorMsg(Inner::Delta {
                        from: self.self_node().clone(),
                        buckets,
                    });
                    if let Some(peer) = self.peer(&from) {
                        peer.tell(delta);
                    }
                }
                let members = &self.state.members;
                if !is_reply
                    && self
                        .state
                        .registry
                        .other_has_newer(&versions, |n| members.contains(n))
                {
                    self.send_status(&from, true);
                }
            }
            Inner::Delta { from, buckets } => {
                if !self.state.members.contains(&from) {
                    return Ok(());
                }
                let members = &self.state.members;
                let limit = self.shared.settings.max_received_entries;
                let merged = self.state.registry.merge_bounded(
                    buckets,
                    limit,
                    |n| members.contains(n),
                    Instant::now(),
                );
                if merged.dropped > 0 {
                    tracing::warn!(
                        peer = %from.address,
                        dropped = merged.dropped,
                        limit,
                        "pub-sub gossip from a peer had more entries than max_received_entries; the rest is asked for in later rounds"
                    );
                }
                self.apply(merged.changes);
            }
            Inner::Local(Command::Add {
                key,
                subscriber,
                reply,
            }) => {
                let result = self.add(key, subscriber, ctx);
                Self::reply(reply, result);
            }
            Inner::Local(Command::Remove { key, id, reply }) => {
                let removed = self.remove(&key, &id, ctx);
                Self::reply(reply, Ok(removed));
            }
            Inner::Local(Command::Terminated(id)) => self.terminated(&id),
            Inner::Local(Command::Cluster(event)) => self.cluster_event(event),
            Inner::Local(Command::GossipTick) => self.gossip(ctx),
            Inner::Local(Command::Fail) => {
                return Err(ActorError::msg(
                    "pub-sub mediator failure injected by a test",
                ));
            }
        }
        Ok(())
    }

    async fn stopped(&mut self, ctx: &mut Context<Self>) {
        if let (Some(cluster), Some(adapter)) = (Cluster::get(ctx.system()), &self.state.adapter) {
            cluster.unsubscribe(adapter);
        }
    }
}
