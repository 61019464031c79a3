//! The routing table publishers read: for each topic (or registered path) and message type,
//! the local target and the remote nodes' endpoint paths. The mediator writes it as its
//! registry changes; publishing only takes a read lock.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, OnceLock};

use actor_core::{ActorPath, ActorRef};

use super::registry::{Key, KeyKind};
use crate::membership::UniqueAddress;
use crate::remote::Remoting;
use crate::wire::RemoteMessage;

/// A remote node's endpoint (or registered actor) for one key.
pub(crate) struct RemoteTarget {
    path: ActorPath,
    /// The typed remote ref (`Option<ActorRef<M>>`), made on first use.
    cached: OnceLock<Box<dyn Any + Send + Sync>>,
}

impl RemoteTarget {
    fn new(path: ActorPath) -> Self {
        RemoteTarget {
            path,
            cached: OnceLock::new(),
        }
    }

    /// The typed ref to the remote endpoint.
    pub(crate) fn get<M: RemoteMessage>(&self, remoting: &Remoting) -> Option<&ActorRef<M>> {
        self.cached
            .get_or_init(|| {
                let r = remoting.remote_ref::<M>(&self.path);
                if let Err(error) = &r {
                    tracing::warn!(path = %self.path, %error, "no route to a remote pub-sub target");
                }
                Box::new(r.ok())
            })
            .downcast_ref::<Option<ActorRef<M>>>()
            .and_then(Option::as_ref)
    }
}

/// Where messages for one key go.
#[derive(Default)]
pub(crate) struct Targets {
    /// This node's endpoint state (`Arc<EndpointState<M>>`) or registered actor
    /// (`ActorRef<M>`).
    pub(crate) local: Option<Arc<dyn Any + Send + Sync>>,
    /// Other nodes' endpoints, by node.
    pub(crate) remote: BTreeMap<UniqueAddress, RemoteTarget>,
    /// Turn counter when one node of several is chosen (groups, `send`).
    pub(crate) turn: AtomicUsize,
}

impl Targets {
    fn is_empty(&self) -> bool {
        self.local.is_none() && self.remote.is_empty()
    }
}

/// A topic's targets for one message type.
#[derive(Default)]
pub(crate) struct TypeRoutes {
    /// Subscribers without a group.
    pub(crate) all: Targets,
    /// Subscribers by group.
    pub(crate) groups: BTreeMap<String, Targets>,
}

/// Everything publishers need, by topic / path, then by manifest.
#[derive(Default)]
pub(crate) struct Table {
    topics: BTreeMap<String, BTreeMap<String, TypeRoutes>>,
    paths: BTreeMap<String, BTreeMap<String, Targets>>,
    /// Members this node's failure detection (or another member's) suspects: a choice of
    /// one node avoids them while another node is available.
    unreachable: BTreeSet<UniqueAddress>,
}

impl Table {
    /// Marks `node` as unreachable or reachable again.
    pub(crate) fn set_reachable(&mut self, node: &UniqueAddress, reachable: bool) {
        if reachable {
            self.unreachable.remove(node);
        } else {
            self.unreachable.insert(node.clone());
        }
    }

    /// Whether `node` is currently suspected.
    pub(crate) fn is_unreachable(&self, node: &UniqueAddress) -> bool {
        !self.unreachable.is_empty() && self.unreachable.contains(node)
    }

    /// The routes of `topic` for messages with `manifest`.
    pub(crate) fn topic(&self, topic: &str, manifest: &str) -> Option<&TypeRoutes> {
        self.topics.get(topic)?.get(manifest)
    }

    /// The targets registered at `path` for messages with `manifest`.
    pub(crate) fn path(&self, path: &str, manifest: &str) -> Option<&Targets> {
        self.paths.get(path)?.get(manifest)
    }

    /// The nodes (self as `local`) holding any subscriber of `topic`.
    pub(crate) fn topic_nodes(&self, topic: &str) -> (bool, Vec<UniqueAddress>) {
        let mut local = false;
        let mut nodes = Vec::new();
        for routes in self.topics.get(topic).into_iter().flat_map(|m| m.values()) {
            for targets in std::iter::once(&routes.all).chain(routes.groups.values()) {
                local |= targets.local.is_some();
                nodes.extend(targets.remote.keys().cloned());
            }
        }
        nodes.sort();
        nodes.dedup();
        (local, nodes)
    }

    fn targets_mut(&mut self, key: &Key) -> &mut Targets {
        let name = key.name.clone();
        let manifest = key.manifest.clone();
        match key.kind {
            KeyKind::Topic => {
                let routes = self
                    .topics
                    .entry(name)
                    .or_default()
                    .entry(manifest)
                    .or_default();
                match &key.group {
                    Some(group) => routes.groups.entry(group.clone()).or_default(),
                    None => &mut routes.all,
                }
            }
            KeyKind::Path => self
                .paths
                .entry(name)
                .or_default()
                .entry(manifest)
                .or_default(),
        }
    }

    /// Drops the maps left empty under `key`.
    fn clean(&mut self, key: &Key) {
        match key.kind {
            KeyKind::Topic => {
                let Some(by_manifest) = self.topics.get_mut(&key.name) else {
                    return;
                };
                if let Some(routes) = by_manifest.get_mut(&key.manifest) {
                    if let Some(group) = &key.group
                        && routes.groups.get(group).is_some_and(Targets::is_empty)
                    {
                        routes.groups.remove(group);
                    }
                    if routes.all.is_empty() && routes.groups.is_empty() {
                        by_manifest.remove(&key.manifest);
                    }
                }
                if by_manifest.is_empty() {
                    self.topics.remove(&key.name);
                }
            }
            KeyKind::Path => {
                let Some(by_manifest) = self.paths.get_mut(&key.name) else {
                    return;
                };
                if by_manifest
                    .get(&key.manifest)
                    .is_some_and(Targets::is_empty)
                {
                    by_manifest.remove(&key.manifest);
                }
                if by_manifest.is_empty() {
                    self.paths.remove(&key.name);
                }
            }
        }
    }

    /// Sets (or clears) this node's target for `key`.
    pub(crate) fn set_local(&mut self, key: &Key, local: Option<Arc<dyn Any + Send + Sync>>) {
        self.targets_mut(key).local = local;
        self.clean(key);
    }

    /// Sets (or clears) `owner`'s target for `key`.
    pub(crate) fn set_remote(&mut self, owner: &UniqueAddress, key: &Key, path: Option<ActorPath>) {
        let targets = self.targets_mut(key);
        match path {
            Some(path) => {
                if targets.remote.get(owner).is_none_or(|t| t.path != path) {
                    targets
                        .remote
                        .insert(owner.clone(), RemoteTarget::new(path));
                }
            }
            None => {
                targets.remote.remove(owner);
            }
        }
        self.clean(key);
    }
}
