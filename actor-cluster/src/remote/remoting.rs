//! [`Remoting`]: the extension that connects an actor system to a transport, and the task
//! that runs inbound dispatch, associations, remote death-watch and quarantine.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use actor_core::remote_support::{RefResolver, ReplyExposer, with_ref_resolver};
use actor_core::{
    ActorId, ActorPath, ActorRef, ActorSystem, Address as PathAddress, LookupError, PathError,
    Props, SpawnError, SystemSettings, Watcher,
};
use parking_lot::{Mutex, RwLock};
use tokio::time::Instant;

use super::ask::{ASK_PREFIX, Exposer, PendingAsks, TEMP_SEGMENT};
use super::association::{
    AssocAction, Association, Incarnation, Quarantined, RemoteQuarantineReason,
};
use super::inbound::{self, RefCache};
use super::ref_serde::{Resolver, node_address, path_address};
use super::registry::Registry;
use super::remote_ref::{DeadRef, RemoteRef};
use super::settings::RemoteSettings;
use super::watch_proxy::{WATCH_PROXY_NAME, WatchProxy, WatchRequest};
use crate::address::Address;
use crate::transport::{InboundFrame, Transport, TransportEvent};
use crate::wire::{self, Envelope, EnvelopeRef, RemoteMessage, SystemMessage};

/// Errors of starting remoting, registering types and making remote refs.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The actor system's address is not the transport's (build the system's settings with
    /// [`Remoting::system_settings`]).
    #[error("the actor system's address {system} is not the transport's {transport}")]
    AddressMismatch {
        /// The system's address.
        system: PathAddress,
        /// The transport's address as a path address.
        transport: PathAddress,
    },
    /// Remoting was already started for this actor system.
    #[error("remoting is already started for actor system {system}")]
    AlreadyStarted {
        /// The system's name.
        system: String,
    },
    /// A setting is zero.
    #[error("invalid remote settings: {what} must be non-zero")]
    InvalidSettings {
        /// Which setting.
        what: &'static str,
    },
    /// Two types claim one manifest.
    #[error("manifest {manifest:?} is registered for {registered}; cannot register {rejected}")]
    DuplicateManifest {
        /// The manifest.
        manifest: &'static str,
        /// The type registered first.
        registered: &'static str,
        /// The type refused.
        rejected: &'static str,
    },
    /// The path string is malformed.
    #[error(transparent)]
    InvalidPath(#[from] PathError),
    /// The path names no host and port, and is not this system's.
    #[error("{path} is neither a path of this node nor of a remote node (no host:port)")]
    NotRemote {
        /// The path.
        path: ActorPath,
    },
    /// A path of this node with no actor of the type there.
    #[error(transparent)]
    Lookup(#[from] LookupError),
    /// The watch proxy could not be spawned.
    #[error(transparent)]
    Spawn(#[from] SpawnError),
}

/// Requests to the remoting task.
pub(crate) enum Command {
    /// A local actor watches a remote one.
    Watch {
        inc: Arc<Incarnation>,
        watchee: ActorId,
        watcher: Watcher,
    },
    /// A local actor stops watching a remote one.
    Unwatch {
        inc: Arc<Incarnation>,
        watchee: ActorPath,
        watcher: ActorId,
    },
    /// A local actor watched by peers terminated (from the watch proxy).
    LocalTerminated(ActorPath),
    /// Quarantine one peer incarnation ([`Remoting::quarantine`]).
    Quarantine {
        node: Address,
        uid: u64,
        reason: String,
    },
}

/// What remote refs, the resolver and the task share.
pub(crate) struct Shared {
    pub(crate) system: ActorSystem,
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) local_path_address: PathAddress,
    pub(crate) local_uid: u64,
    pub(crate) settings: RemoteSettings,
    pub(crate) registry: RwLock<Registry>,
    incarnations: Mutex<HashMap<Address, Arc<Incarnation>>>,
    pub(crate) commands: flume::Sender<Command>,
    pub(crate) asks: PendingAsks,
    pub(crate) resolver: Arc<dyn RefResolver>,
    pub(crate) exposer: Arc<dyn ReplyExposer>,
    /// `<local address>/temp/ask-`: the prefix of temporary reply paths.
    pub(crate) temp_prefix: Box<str>,
    proxy: OnceLock<ActorRef<WatchRequest>>,
}

impl Shared {
    /// The current incarnation of `node` (a fresh, unbound one the first time).
    fn incarnation(&self, node: &Address) -> Arc<Incarnation> {
        self.incarnations
            .lock()
            .entry(node.clone())
            .or_insert_with(|| Arc::new(Incarnation::new(node.clone())))
            .clone()
    }

    fn replace_incarnation(&self, node: &Address) {
        self.incarnations
            .lock()
            .insert(node.clone(), Arc::new(Incarnation::new(node.clone())));
    }

    /// A ref to `path` on another node (the current incarnation of `node`).
    fn remote<M: RemoteMessage>(self: &Arc<Self>, path: ActorPath, node: &Address) -> ActorRef<M> {
        let inc = self.incarnation(node);
        ActorRef::from_backend(Arc::new(RemoteRef::<M>::new(
            ActorId::new(path, 0),
            inc,
            self.clone(),
        )))
    }

    /// A working ref for a path found in a message: local, remote or dead.
    pub(crate) fn ref_for<M: RemoteMessage>(self: &Arc<Self>, path: &ActorPath) -> ActorRef<M> {
        if path.address() == &self.local_path_address {
            return match self.system.lookup::<M>(path) {
                Ok(r) => r,
                Err(_) => ActorRef::from_backend(Arc::new(DeadRef::<M>::new(
                    ActorId::new(path.clone(), 0),
                    self.clone(),
                ))),
            };
        }
        match node_address(path.address()) {
            Some(node) => self.remote(path.clone(), &node),
            None => ActorRef::from_backend(Arc::new(DeadRef::<M>::new(
                ActorId::new(path.clone(), 0),
                self.clone(),
            ))),
        }
    }
}

/// Remoting for one actor system: registered message types, remote refs, and the task that
/// dispatches inbound frames and runs remote death-watch. See the [module docs](super).
pub struct Remoting {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Remoting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remoting")
            .field("address", self.shared.transport.local_address())
            .field("uid", &self.shared.local_uid)
            .finish()
    }
}

impl Remoting {
    /// Settings for an actor system reachable through `transport`: its paths carry the
    /// transport's `system@host:port`.
    pub fn system_settings(transport: &dyn Transport) -> SystemSettings {
        SystemSettings::default().address(path_address(transport.local_address()))
    }

    /// Starts remoting for `system` over `transport` with default settings.
    ///
    /// # Errors
    /// As [`Remoting::start_with`].
    pub fn start(
        system: &ActorSystem,
        transport: Arc<dyn Transport>,
    ) -> Result<Arc<Remoting>, RemoteError> {
        Remoting::start_with(system, transport, RemoteSettings::default())
    }

    /// Starts remoting: installs it as the system's extension, spawns the watch proxy under
    /// `/system` and the remoting task on the system's runtime. The task takes the
    /// transport's inbound frames and events (one consumer each) and ends when the system
    /// terminates.
    ///
    /// # Errors
    /// [`RemoteError::AddressMismatch`] unless the system's address is the transport's,
    /// [`RemoteError::AlreadyStarted`], [`RemoteError::InvalidSettings`],
    /// [`RemoteError::Spawn`] when the system is terminating.
    pub fn start_with(
        system: &ActorSystem,
        transport: Arc<dyn Transport>,
        settings: RemoteSettings,
    ) -> Result<Arc<Remoting>, RemoteError> {
        settings.validate()?;
        let local_path_address = path_address(transport.local_address());
        if system.address() != &local_path_address {
            return Err(RemoteError::AddressMismatch {
                system: system.address().clone(),
                transport: local_path_address,
            });
        }
        if system.try_extension::<Remoting>().is_some() {
            return Err(RemoteError::AlreadyStarted {
                system: system.name().to_owned(),
            });
        }
        let (commands, commands_rx) = flume::unbounded();
        let temp_prefix = format!("{local_path_address}/{TEMP_SEGMENT}/{ASK_PREFIX}").into();
        let shared = Arc::new_cyclic(|weak| Shared {
            system: system.clone(),
            local_uid: transport.local_uid(),
            transport,
            local_path_address,
            settings,
            registry: RwLock::new(Registry::default()),
            incarnations: Mutex::new(HashMap::new()),
            commands: commands.clone(),
            asks: PendingAsks::default(),
            resolver: Arc::new(Resolver(weak.clone())),
            exposer: Arc::new(Exposer(weak.clone())),
            temp_prefix,
            proxy: OnceLock::new(),
        });
        let proxy = system.spawn_system_actor(
            Props::new(move || WatchProxy {
                commands: commands.clone(),
            }),
            WATCH_PROXY_NAME,
        )?;
        let _ = shared.proxy.set(proxy);
        let remoting = system.extension(|_| Remoting {
            shared: shared.clone(),
        });
        let task = Task::new(shared);
        system.runtime().spawn(task.run(commands_rx));
        Ok(remoting)
    }

    /// The remoting of `system`, if started.
    pub fn get(system: &ActorSystem) -> Option<Arc<Remoting>> {
        system.try_extension::<Remoting>()
    }

    /// Makes `M` receivable on this node, and usable as the type of refs and reply handles
    /// inside inbound messages. Registering a type twice is a no-op.
    ///
    /// # Errors
    /// [`RemoteError::DuplicateManifest`] when another type has `M::MANIFEST`.
    pub fn register<M: RemoteMessage>(&self) -> Result<(), RemoteError> {
        self.shared.registry.write().register::<M>()
    }

    /// A ref to the actor at `path`: a remote ref for another node's path, a local one (by
    /// lookup) for this node's. No message is sent until the first `tell`.
    ///
    /// # Errors
    /// [`RemoteError::NotRemote`] for a path without host and port that is not this
    /// system's, [`RemoteError::Lookup`] for a path of this node where no such actor lives.
    pub fn remote_ref<M: RemoteMessage>(
        &self,
        path: &ActorPath,
    ) -> Result<ActorRef<M>, RemoteError> {
        if path.address() == &self.shared.local_path_address
            || path.address().is_local() && path.address().system() == self.shared.system.name()
        {
            return Ok(self.shared.system.lookup::<M>(path)?);
        }
        let node = node_address(path.address())
            .ok_or_else(|| RemoteError::NotRemote { path: path.clone() })?;
        Ok(self.shared.remote(path.clone(), &node))
    }

    /// [`Remoting::remote_ref`] from a path string.
    ///
    /// # Errors
    /// [`RemoteError::InvalidPath`], else as `remote_ref`.
    pub fn remote_ref_str<M: RemoteMessage>(&self, path: &str) -> Result<ActorRef<M>, RemoteError> {
        self.remote_ref(&ActorPath::parse(path)?)
    }

    /// Closes the association with incarnation `uid` of `node` for good: refs bound to it
    /// stop sending, its frames are dropped from now on, and every local watcher of an
    /// actor there receives `Terminated` (once). A [`Quarantined`] event with
    /// [`RemoteQuarantineReason::Requested`] is published.
    ///
    /// The cluster daemon calls this for a member that was downed or removed. Another
    /// incarnation at the same address (a restarted node) is not affected; an association
    /// whose incarnation was never learnt is taken to be `uid`. Quarantining this node itself
    /// is ignored, and so is a call after the actor system terminated. Asynchronous: the
    /// remoting task performs it, in order with the inbound frames it handles.
    pub fn quarantine(&self, node: &Address, uid: u64, reason: impl Into<String>) {
        let _ = self.shared.commands.send(Command::Quarantine {
            node: node.clone(),
            uid,
            reason: reason.into(),
        });
    }

    /// This node's transport address.
    pub fn local_address(&self) -> &Address {
        self.shared.transport.local_address()
    }

    /// This node's incarnation uid (the transport's).
    pub fn local_uid(&self) -> u64 {
        self.shared.local_uid
    }

    /// The transport remoting runs on.
    pub fn transport(&self) -> &Arc<dyn Transport> {
        &self.shared.transport
    }

    /// The settings remoting runs with.
    pub fn settings(&self) -> &RemoteSettings {
        &self.shared.settings
    }
}

/// The remoting task's state.
struct Task {
    shared: Arc<Shared>,
    associations: BTreeMap<Address, Association>,
    quarantined: HashSet<(Address, u64)>,
    cache: RefCache,
    /// The last frame origin seen healthy (skips the association check for a stream of
    /// frames from one peer); cleared on any association change.
    last_ok: Option<(Address, u64)>,
}

impl Task {
    fn new(shared: Arc<Shared>) -> Self {
        Task {
            cache: RefCache::new(shared.settings.ref_cache_capacity),
            shared,
            associations: BTreeMap::new(),
            quarantined: HashSet::new(),
            last_ok: None,
        }
    }

    async fn run(mut self, commands: flume::Receiver<Command>) {
        let inbound = self.shared.transport.inbound();
        let events = self.shared.transport.events();
        let system = self.shared.system.clone();
        let terminated = system.when_terminated();
        tokio::pin!(terminated);
        let mut tick = tokio::time::interval(self.shared.settings.tick_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (mut inbound_open, mut events_open) = (true, true);
        let batch = self.shared.settings.inbound_batch;
        loop {
            tokio::select! {
                biased;
                _ = &mut terminated => break,
                command = commands.recv_async() => match command {
                    Ok(command) => self.command(command),
                    Err(_) => break,
                },
                event = events.recv_async(), if events_open => match event {
                    Ok(event) => self.event(event),
                    Err(_) => events_open = false,
                },
                _ = tick.tick() => self.tick(),
                frame = inbound.recv_async(), if inbound_open => match frame {
                    Ok(frame) => {
                        let resolver = self.shared.resolver.clone();
                        with_ref_resolver(resolver, || {
                            self.frame(frame);
                            for frame in inbound.try_iter().take(batch - 1) {
                                self.frame(frame);
                            }
                        });
                    }
                    Err(_) => inbound_open = false,
                },
            }
        }
        tracing::debug!(address = %self.shared.transport.local_address(), "remoting task ended");
    }

    /// The association with `node`'s current incarnation.
    fn association(&mut self, node: &Address) -> &mut Association {
        let shared = &self.shared;
        self.associations.entry(node.clone()).or_insert_with(|| {
            Association::new(shared.incarnation(node), shared.settings.system_delivery)
        })
    }

    /// Notes that `node` is alive as incarnation `uid`; false if that incarnation is
    /// quarantined (its frames are dropped).
    fn observe(&mut self, node: &Address, uid: u64) -> bool {
        if self
            .last_ok
            .as_ref()
            .is_some_and(|(a, u)| *u == uid && a == node)
        {
            return true;
        }
        if self.quarantined.contains(&(node.clone(), uid)) {
            return false;
        }
        let known = self.association(node).inc.uid();
        match known {
            None => self.association(node).inc.bind(uid),
            Some(old) if old == uid => {}
            Some(_) => {
                self.quarantine(node, RemoteQuarantineReason::Restarted { new_uid: uid });
                self.association(node).inc.bind(uid);
            }
        }
        self.association(node).lost_since = None;
        self.last_ok = Some((node.clone(), uid));
        true
    }

    fn frame(&mut self, frame: InboundFrame) {
        let InboundFrame {
            from,
            from_uid,
            frame,
        } = frame;
        if !self.observe(&from, from_uid) {
            tracing::debug!(peer = %from, uid = from_uid, "frame from a quarantined incarnation dropped");
            return;
        }
        let envelope = match wire::decode_ref(&frame) {
            Ok(envelope) => envelope,
            Err(error) => return self.malformed(&from, from_uid, error.to_string()),
        };
        match envelope {
            EnvelopeRef::User {
                recipient,
                manifest,
                payload,
                ..
            } => {
                inbound::dispatch_user(&self.shared, &mut self.cache, recipient, manifest, payload)
            }
            EnvelopeRef::System {
                seq,
                first_unacked,
                msg,
            } => {
                let actions = self.association(&from).on_system(seq, first_unacked, msg);
                self.perform(&from, actions);
            }
            EnvelopeRef::SystemAck { up_to } => {
                let actions = self.association(&from).on_ack(up_to);
                self.perform(&from, actions);
            }
            EnvelopeRef::Membership(_) => {
                tracing::debug!(peer = %from, "membership frame ignored (no membership running)");
            }
        }
    }

    fn perform(&mut self, node: &Address, actions: Vec<AssocAction>) {
        for action in actions {
            match action {
                AssocAction::Send(envelope) => self.send(node, &envelope),
                AssocAction::Deliver(msg) => self.system_message(node, msg),
                AssocAction::Quarantine(reason) => self.quarantine(node, reason),
            }
        }
    }

    fn send(&mut self, node: &Address, envelope: &Envelope) {
        let frame = match wire::encode(envelope) {
            Ok(frame) => frame,
            Err(error) => {
                tracing::error!(peer = %node, %error, "cannot encode a system envelope");
                return;
            }
        };
        if let Err(error) = self.shared.transport.send(node, frame) {
            tracing::debug!(peer = %node, %error, "system envelope not sent; resent on the next tick");
            if let Some(assoc) = self.associations.get_mut(node) {
                assoc.lost_since.get_or_insert_with(Instant::now);
                self.last_ok = None;
            }
        }
    }

    /// A system message from `node`, in order, exactly once.
    fn system_message(&mut self, node: &Address, msg: SystemMessage) {
        match msg {
            SystemMessage::Watch { watchee, watcher } => self.remote_watch(node, watchee, watcher),
            SystemMessage::Unwatch { watchee, watcher } => {
                if let Ok(path) = ActorPath::parse(&watchee) {
                    let assoc = self.association(node);
                    if let Some(keys) = assoc.watched_by.get_mut(&path) {
                        keys.remove(&watcher);
                        if keys.is_empty() {
                            assoc.watched_by.remove(&path);
                        }
                    }
                }
            }
            SystemMessage::Terminated { actor, .. } => {
                let Ok(path) = ActorPath::parse(&actor) else {
                    tracing::warn!(peer = %node, %actor, "Terminated for a malformed path ignored");
                    return;
                };
                for (watcher, id) in self.association(node).remote_terminated(&path) {
                    watcher.notify_terminated(id);
                }
            }
        }
    }

    /// A peer watches a local actor: the proxy watches it, or it is reported gone at once.
    fn remote_watch(&mut self, node: &Address, watchee: String, watcher: String) {
        let path = ActorPath::parse(&watchee)
            .ok()
            .filter(|p| p.address() == &self.shared.local_path_address);
        let mut request = None;
        let mut other_type = false;
        if let Some(path) = &path {
            let entries = self.shared.registry.read().ordered().to_vec();
            for entry in entries {
                match (entry.watch_lookup)(&self.shared.system, path) {
                    Ok(r) => {
                        request = Some(r);
                        break;
                    }
                    Err(LookupError::WrongMessageType { .. }) => other_type = true,
                    Err(_) => break,
                }
            }
        }
        match (path, request) {
            (Some(path), Some(request)) => {
                self.association(node)
                    .watched_by
                    .entry(path)
                    .or_default()
                    .insert(watcher);
                if let Some(proxy) = self.shared.proxy.get() {
                    proxy.tell(request);
                }
            }
            (Some(path), None) if other_type => {
                tracing::warn!(peer = %node, watchee = %path, "cannot watch an actor whose message type is not registered with remoting");
            }
            _ => {
                let actions = self
                    .association(node)
                    .send_system(SystemMessage::Terminated {
                        actor: watchee,
                        existence_confirmed: false,
                        address_terminated: false,
                    });
                self.perform(node, actions);
            }
        }
    }

    fn quarantine(&mut self, node: &Address, reason: RemoteQuarantineReason) {
        self.last_ok = None;
        let Some(mut assoc) = self.associations.remove(node) else {
            return;
        };
        let uid = assoc.inc.uid();
        if let Some(uid) = uid {
            self.quarantined.insert((node.clone(), uid));
        }
        self.shared.replace_incarnation(node);
        if matches!(reason, RemoteQuarantineReason::Requested { .. }) {
            tracing::info!(peer = %node, ?uid, ?reason, "association quarantined; watched actors there are reported terminated");
        } else {
            tracing::warn!(peer = %node, ?uid, ?reason, "association quarantined; watched actors there are reported terminated");
        }
        for (watcher, id) in assoc.quarantine() {
            watcher.notify_terminated(id);
        }
        self.shared.system.event_stream().publish(Quarantined {
            address: node.clone(),
            uid,
            reason,
        });
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Watch {
                inc,
                watchee,
                watcher,
            } => {
                let node = inc.address.clone();
                let assoc = self.association(&node);
                if inc.is_quarantined() || !Arc::ptr_eq(&assoc.inc, &inc) {
                    watcher.notify_terminated(watchee);
                    return;
                }
                let actions = assoc.watch(watchee, watcher);
                self.perform(&node, actions);
            }
            Command::Unwatch {
                inc,
                watchee,
                watcher,
            } => {
                let node = inc.address.clone();
                if let Some(assoc) = self.associations.get_mut(&node)
                    && Arc::ptr_eq(&assoc.inc, &inc)
                {
                    let actions = assoc.unwatch(&watchee, &watcher);
                    self.perform(&node, actions);
                }
            }
            Command::Quarantine { node, uid, reason } => {
                let reason = RemoteQuarantineReason::Requested { reason };
                self.quarantine_incarnation(&node, uid, reason);
            }
            Command::LocalTerminated(path) => {
                let mut todo = Vec::new();
                for (node, assoc) in &mut self.associations {
                    if assoc.watched_by.remove(&path).is_some() {
                        let actions = assoc.send_system(SystemMessage::Terminated {
                            actor: path.to_string(),
                            existence_confirmed: true,
                            address_terminated: false,
                        });
                        todo.push((node.clone(), actions));
                    }
                }
                for (node, actions) in todo {
                    self.perform(&node, actions);
                }
            }
        }
    }

    /// Quarantines incarnation `uid` of `node`: its association if it is the current one
    /// (or not yet bound), and its frames from now on. False if it already was, or if
    /// `node` is this node.
    fn quarantine_incarnation(
        &mut self,
        node: &Address,
        uid: u64,
        reason: RemoteQuarantineReason,
    ) -> bool {
        if node == self.shared.transport.local_address() || uid == 0 {
            return false;
        }
        if !self.quarantined.insert((node.clone(), uid)) {
            return false;
        }
        self.last_ok = None;
        let inc = self.shared.incarnation(node);
        match inc.uid() {
            Some(bound) if bound != uid => {
                tracing::debug!(peer = %node, uid, current = bound, ?reason, "quarantined an incarnation that is no longer associated");
            }
            bound => {
                if bound.is_none() {
                    inc.bind(uid);
                }
                // The task's association shares the current incarnation (or is made now).
                self.association(node);
                self.quarantine(node, reason);
            }
        }
        true
    }

    /// A frame from `node` (incarnation `uid`) is not a valid envelope: the association is
    /// closed for good, at the transport too, and the node goes on serving everyone else.
    fn malformed(&mut self, node: &Address, uid: u64, error: String) {
        tracing::warn!(peer = %node, uid, %error, "malformed frame: closing the association with this peer incarnation");
        let reason = RemoteQuarantineReason::MalformedFrame { error };
        if self.quarantine_incarnation(node, uid, reason) {
            let (transport, peer) = (self.shared.transport.clone(), node.clone());
            self.shared
                .system
                .runtime()
                .spawn(async move { transport.disconnect(&peer).await });
        }
    }

    fn event(&mut self, event: TransportEvent) {
        match event {
            TransportEvent::Connected { peer, uid } => {
                if !self.quarantined.contains(&(peer.clone(), uid)) {
                    self.observe(&peer, uid);
                }
            }
            TransportEvent::Disconnected { peer, .. }
            | TransportEvent::AssociationFailed { peer, .. } => {
                if let Some(assoc) = self.associations.get_mut(&peer) {
                    assoc.lost_since.get_or_insert_with(Instant::now);
                    self.last_ok = None;
                }
            }
            TransportEvent::FramesDropped { .. } | TransportEvent::ConnectionRejected { .. } => {}
        }
    }

    fn tick(&mut self) {
        let now = Instant::now();
        let loss_timeout = self.shared.settings.loss_timeout;
        let mut todo = Vec::new();
        for (node, assoc) in &mut self.associations {
            if assoc.lost_since.is_some() && !assoc.has_watches() && !assoc.has_unacked() {
                // nothing depends on this peer: no reason to quarantine it
                continue;
            }
            todo.push((node.clone(), assoc.tick(now, loss_timeout)));
        }
        for (node, actions) in todo {
            self.perform(&node, actions);
        }
        self.shared.asks.sweep();
    }
}
