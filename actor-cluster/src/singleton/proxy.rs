//! The proxy: an `ActorRef<M>` that forwards to wherever the singleton runs, buffering while
//! that is unknown.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use actor_core::{
    Actor, ActorRef, ActorResult, ActorSystem, AskError, Context, DeadLetterReason, Props,
    SpawnError,
};
use tracing::debug;

use super::host::singleton_host;
use super::protocol::{ManagerMsg, ManagerStatus, SingletonLocation};
use super::{ProxySettings, SingletonError, singleton_manager_path_at};
use crate::Address;
use crate::cluster::Cluster;
use crate::membership::ClusterEvent;
use crate::remote::Remoting;
use crate::wire::RemoteMessage;

const IDENTIFY_TIMER: &str = "singleton-proxy-identify";

/// Redirects (`MovedTo`) followed within one identify round, so two managers that point at
/// each other cannot make the proxy spin.
const MAX_REDIRECTS: u32 = 3;

/// Spawns proxies to a cluster singleton. See the [module docs](super).
#[derive(Debug, Clone, Copy)]
pub struct ClusterSingletonProxy;

impl ClusterSingletonProxy {
    /// Spawns a proxy to the singleton `settings.type_name` on this node and returns a ref
    /// that takes the singleton's messages. The proxy actor is named
    /// `singleton-proxy-<type_name>` (a generated name if that is taken).
    ///
    /// # Errors
    /// [`SingletonError::ClusterNotJoined`], invalid settings,
    /// [`SingletonError::Remote`] when `M`'s manifest clashes with another type's,
    /// [`SingletonError::Spawn`] when the system is terminating.
    pub fn spawn<M: RemoteMessage>(
        system: &ActorSystem,
        settings: ProxySettings,
    ) -> Result<ActorRef<M>, SingletonError> {
        settings.validate()?;
        let cluster = Cluster::get(system).ok_or_else(|| SingletonError::ClusterNotJoined {
            system: system.name().to_owned(),
        })?;
        let remoting = Remoting::get(system).ok_or_else(|| SingletonError::ClusterNotJoined {
            system: system.name().to_owned(),
        })?;
        remoting.register::<ManagerMsg>()?;
        remoting.register::<ManagerStatus>()?;
        remoting.register::<SingletonLocation>()?;
        remoting.register::<M>()?;
        let name = format!("singleton-proxy-{}", settings.type_name);
        let props = Props::new(move || Proxy::<M> {
            settings: settings.clone(),
            cluster: cluster.clone(),
            remoting: remoting.clone(),
            buffer: VecDeque::new(),
            host: None,
            ask_at: None,
            redirects: 0,
            singleton: None,
            singleton_node: None,
            unreachable: BTreeSet::new(),
            generation: 0,
            events: None,
        });
        let proxy = match system.spawn(props.clone(), &name) {
            Err(SpawnError::DuplicateName { .. }) => system.spawn_anonymous(props)?,
            other => other?,
        };
        Ok(proxy.adapt(ProxyMsg::User))
    }
}

enum ProxyMsg<M> {
    User(M),
    Cluster,
    Identify,
    Located {
        generation: u64,
        result: Result<SingletonLocation, AskError>,
    },
    SingletonTerminated {
        generation: u64,
    },
}

struct Proxy<M: RemoteMessage> {
    settings: ProxySettings,
    cluster: Arc<Cluster>,
    remoting: Arc<Remoting>,
    buffer: VecDeque<M>,
    host: Option<Address>,
    /// The node whose manager is asked next (the host, or where it redirected).
    ask_at: Option<Address>,
    redirects: u32,
    singleton: Option<ActorRef<M>>,
    /// The node the singleton runs on.
    singleton_node: Option<Address>,
    /// The members this node sees as unreachable.
    unreachable: BTreeSet<Address>,
    /// Bumped whenever the target is forgotten, so stale answers are ignored.
    generation: u64,
    events: Option<ActorRef<ClusterEvent>>,
}

impl<M: RemoteMessage> Proxy<M> {
    fn on_membership(&mut self, ctx: &mut Context<Self>) {
        let state = self.cluster.state();
        let host = singleton_host(&state.members, self.settings.role.as_deref())
            .map(|m| m.address.clone());
        let was_held = self.holding_back();
        self.unreachable = state
            .unreachable
            .iter()
            .map(|m| m.address.clone())
            .collect();
        if was_held && !self.holding_back() {
            self.flush();
        }
        if host != self.host {
            debug!(singleton = %self.settings.type_name, ?host, "proxy: host changed");
            self.host = host;
            self.forget(ctx);
            self.identify(ctx);
        }
    }

    /// Forgets the current singleton; messages are buffered until it is found again.
    fn forget(&mut self, ctx: &mut Context<Self>) {
        self.generation += 1;
        if let Some(old) = self.singleton.take() {
            ctx.unwatch(&old);
        }
        self.singleton_node = None;
        self.ask_at = self.host.clone();
        self.redirects = 0;
    }

    fn identify(&mut self, ctx: &mut Context<Self>) {
        if self.singleton.is_some() {
            return;
        }
        ctx.start_single_timer(
            IDENTIFY_TIMER,
            self.settings.identify_interval,
            ProxyMsg::Identify,
        );
        let Some(at) = self.ask_at.clone() else {
            return;
        };
        let path = singleton_manager_path_at(&at, &self.settings.type_name);
        let Ok(manager) = self.remoting.remote_ref_str::<ManagerMsg>(&path) else {
            // a local manager not spawned yet: try again on the next round
            return;
        };
        let generation = self.generation;
        let timeout = self.settings.identify_interval;
        ctx.pipe_to_self(
            async move { manager.ask(ManagerMsg::locate, timeout).await },
            move |result| ProxyMsg::Located { generation, result },
        );
    }

    fn located(&mut self, location: SingletonLocation, ctx: &mut Context<Self>) {
        match location {
            SingletonLocation::Here(path) => match self.remoting.remote_ref_str::<M>(&path) {
                Ok(singleton) => {
                    debug!(singleton = %self.settings.type_name, %path, buffered = self.buffer.len(), "proxy: singleton located");
                    ctx.cancel_timer(IDENTIFY_TIMER);
                    ctx.watch_with(
                        &singleton,
                        ProxyMsg::SingletonTerminated {
                            generation: self.generation,
                        },
                    );
                    self.singleton = Some(singleton);
                    self.singleton_node = self.ask_at.clone();
                    if !self.holding_back() {
                        self.flush();
                    }
                }
                Err(e) => {
                    debug!(singleton = %self.settings.type_name, %path, error = %e, "proxy: singleton not resolvable yet")
                }
            },
            SingletonLocation::MovedTo(address) => {
                if self.redirects < MAX_REDIRECTS {
                    self.redirects += 1;
                    self.ask_at = Some(address);
                    self.identify(ctx);
                }
            }
            SingletonLocation::NotHere => {}
        }
    }

    /// Whether messages wait in the buffer although the singleton is known: its node is
    /// unreachable, so sending would most likely lose them.
    fn holding_back(&self) -> bool {
        self.singleton_node
            .as_ref()
            .is_some_and(|n| self.unreachable.contains(n))
    }

    fn flush(&mut self) {
        if let Some(singleton) = &self.singleton {
            for msg in self.buffer.drain(..) {
                singleton.tell(msg);
            }
        }
    }

    fn buffer(&mut self, msg: M, ctx: &mut Context<Self>) {
        self.buffer.push_back(msg);
        if self.buffer.len() > self.settings.buffer_size
            && let Some(oldest) = self.buffer.pop_front()
        {
            debug!(singleton = %self.settings.type_name, size = self.settings.buffer_size, "proxy: buffer full, oldest message dropped");
            ctx.system().publish_dead_letter(
                ctx.path().clone(),
                oldest,
                DeadLetterReason::MailboxFull,
            );
        }
    }
}

impl<M: RemoteMessage> Actor for Proxy<M> {
    type Msg = ProxyMsg<M>;

    async fn started(&mut self, ctx: &mut Context<Self>) -> ActorResult {
        let events = ctx.myself().adapt(|_: ClusterEvent| ProxyMsg::Cluster);
        self.cluster.unsubscribe(&events);
        self.cluster.subscribe(&events);
        self.events = Some(events);
        self.on_membership(ctx);
        Ok(())
    }

    async fn handle(&mut self, msg: ProxyMsg<M>, ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            ProxyMsg::User(msg) => match &self.singleton {
                Some(singleton) if !self.holding_back() => singleton.tell(msg),
                _ => self.buffer(msg, ctx),
            },
            ProxyMsg::Cluster => self.on_membership(ctx),
            ProxyMsg::Identify => {
                self.ask_at = self.host.clone();
                self.redirects = 0;
                self.identify(ctx);
            }
            ProxyMsg::Located { generation, result } => {
                if generation == self.generation && self.singleton.is_none() {
                    match result {
                        Ok(location) => self.located(location, ctx),
                        Err(e) => {
                            debug!(singleton = %self.settings.type_name, error = %e, "proxy: locate failed")
                        }
                    }
                }
            }
            ProxyMsg::SingletonTerminated { generation } => {
                if generation == self.generation {
                    debug!(singleton = %self.settings.type_name, "proxy: singleton terminated");
                    self.forget(ctx);
                    self.identify(ctx);
                }
            }
        }
        Ok(())
    }

    async fn stopped(&mut self, _ctx: &mut Context<Self>) {
        if let Some(events) = self.events.take() {
            self.cluster.unsubscribe(&events);
        }
    }
}
