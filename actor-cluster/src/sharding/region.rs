//! The shard region: one per node per entity type. It routes each message to its shard's
//! home (asking the coordinator once per shard and caching the answer), buffers messages
//! whose home is unknown or moving (bounded; overflow to dead letters), hosts the local
//! shards as children, refreshes their locks in one storage call, and takes part in
//! hand-offs.
//!
//! Each shard actor the region starts gets an incarnation number; the one lock refresh call
//! that covers every local shard records the incarnation it asked for, so an answer that
//! comes back after a shard was released and started again here is not applied to the new
//! actor (which would fence it needlessly).
//!
//! Children: `ctl` (takes [`RegionCtl`] from the coordinator; its path is the region's key),
//! `in` (takes entity messages forwarded by other regions) and one `shard-<n>` per local
//! shard.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use actor_coordination::runner_storage::{RunnerId, ShardId};
use actor_core::{
    Actor, ActorRef, ActorResult, ActorSystem, Context, DeadLetterReason, Props, ReplyTo,
    Terminated,
};
use tokio::time::Instant;

use super::ShardingError;
use super::extractor::MessageExtractor;
use super::lock::{LockEvent, LockTiming};
use super::protocol::{CoordinatorMsg, RegionCtl, RegionState, chunk_ids};
use super::settings::REMEMBER_CHUNK_BYTES;
use super::settings::ShardingSettings;
use super::shard::{EntityFactory, Shard, ShardMsg, ShardSetup};
use super::storage_call;
use super::ttl_check;
use crate::cluster::Cluster;
use crate::membership::ClusterEvent;
use crate::remote::Remoting;
use crate::wire::RemoteMessage;

/// Name of a region's control child.
pub(crate) const CTL_NAME: &str = "ctl";
/// Name of a region's ingress child (entity messages from other regions).
pub(crate) const INGRESS_NAME: &str = "in";

/// Messages of a region actor (local only).
pub enum RegionMsg<M> {
    /// An entity message to route.
    Deliver(M),
    /// A message from the coordinator (through the `ctl` child).
    Ctl(RegionCtl),
    /// A local shard holds its lock now.
    LockHeld {
        /// The shard.
        shard: u32,
    },
    /// A local shard's lock was refused
    /// [`REFUSALS_BEFORE_REPORT`](super::REFUSALS_BEFORE_REPORT) times in a row.
    LockRefused {
        /// The shard.
        shard: u32,
    },
    /// A local shard started (`remembered`) or passivated a remembered entity.
    RememberChanged {
        /// The shard.
        shard: u32,
        /// The entity.
        entity_id: String,
        /// Whether it is remembered now.
        remembered: bool,
    },
    /// A local shard fenced itself (its lock was lost or expired) and is stopping.
    Fenced {
        /// The shard.
        shard: u32,
    },
    /// A local shard finished its hand-off.
    HandedOff {
        /// The shard.
        shard: u32,
    },
    /// The retry timer: register, ask for missing homes.
    Retry,
    /// Refresh the locks of the local shards.
    RefreshLocks,
    /// A refresh call finished.
    Refreshed {
        /// When it started.
        started: Instant,
        /// The shards asked for, each with the incarnation of its actor at the time.
        asked: Vec<(u32, u64)>,
        /// The shards still held, or `None` on a storage error.
        held: Option<Vec<u32>>,
    },
    /// The watched coordinator terminated.
    CoordinatorTerminated,
    /// A watched remote region (a shard home) terminated.
    HomeTerminated(String),
    /// Leave: hand off every shard, then stop.
    GracefulShutdown,
    /// A membership event (this node leaving starts a graceful shutdown).
    Cluster(ClusterEvent),
    /// Local shards and their entity counts.
    GetState(ReplyTo<RegionState>),
    /// Internal: the answer to a [`RegionMsg::GetState`] is ready.
    StateReady(RegionState, ReplyTo<RegionState>),
    /// Internal: the check of the storage's lock ttl finished (the measured ttl, or why not).
    TtlChecked(Result<std::time::Duration, ShardingError>),
}

/// Where a shard lives, as this region knows it.
enum Home<M> {
    Local,
    Remote { key: String, ingress: ActorRef<M> },
}

/// The region actor.
pub(crate) struct Region<E: Actor>
where
    E::Msg: RemoteMessage,
{
    type_name: String,
    settings: ShardingSettings<E::Msg>,
    extractor: Arc<dyn MessageExtractor<E::Msg>>,
    factory: Option<EntityFactory<E>>,
    coordinator: ActorRef<CoordinatorMsg>,
    runner: RunnerId,
    ctl: Option<ActorRef<RegionCtl>>,
    key: String,
    registered: bool,
    /// The storage's lock ttl was checked against the settings (proxies skip the check).
    ttl_checked: bool,
    ttl_check_in_flight: bool,
    homes: BTreeMap<u32, Home<E::Msg>>,
    pending: BTreeMap<u32, VecDeque<E::Msg>>,
    buffered: usize,
    shards: BTreeMap<u32, ActorRef<ShardMsg<E::Msg>>>,
    /// Shard actors that are stopping (handing off, handed off or fenced) until their
    /// `Terminated`: never given messages again; a new actor for the shard starts only after.
    stopping: BTreeMap<u32, ActorRef<ShardMsg<E::Msg>>>,
    /// Remembered entities of the shards hosted here (remember-entities), also of a shard
    /// waiting for its stopping actor or restarting after a fence; reported to the
    /// coordinator as they change and again after every registration.
    remembered: BTreeMap<u32, BTreeSet<String>>,
    /// Shards the coordinator told to hand off whose stop it has not been told of yet: told
    /// when their actor reports the hand-off done, fences, or (whatever stopped it: a fence
    /// before the hand-off came, a failure) terminates. A shard given up because the
    /// coordinator named another home stops without a hand-off and is not in here.
    stop_owed: BTreeSet<u32>,
    /// Shards whose lock is held (refreshed every interval).
    locked: BTreeSet<u32>,
    /// The incarnation of each shard's current (or stopping) actor: a refresh answer is
    /// applied only to the actor it asked for.
    incarnations: BTreeMap<u32, u64>,
    /// The next shard actor's incarnation.
    next_incarnation: u64,
    /// When the latest refresh call started, while it is in flight.
    refresh_since: Option<Instant>,
    shutting_down: bool,
    /// Remote regions watched because they are the home of some shard.
    watched: BTreeSet<String>,
}

/// Forwards what it receives to its parent region.
struct Forward<T: Send + 'static, M: Send + 'static> {
    parent: ActorRef<RegionMsg<M>>,
    wrap: fn(T) -> RegionMsg<M>,
}

impl<T: Send + 'static, M: Send + 'static> Actor for Forward<T, M> {
    type Msg = T;
    async fn handle(&mut self, msg: T, _: &mut Context<Self>) -> ActorResult {
        self.parent.tell((self.wrap)(msg));
        Ok(())
    }
}

/// Everything a region is built from.
pub(crate) struct RegionSetup<E: Actor> {
    pub(crate) type_name: String,
    pub(crate) settings: ShardingSettings<E::Msg>,
    pub(crate) extractor: Arc<dyn MessageExtractor<E::Msg>>,
    pub(crate) factory: Option<EntityFactory<E>>,
    pub(crate) coordinator: ActorRef<CoordinatorMsg>,
    pub(crate) runner: RunnerId,
}

impl<E: Actor> Region<E>
where
    E::Msg: RemoteMessage,
{
    pub(crate) fn props(setup: RegionSetup<E>) -> Props<Self> {
        let setup = Arc::new(setup);
        Props::new(move || Region {
            type_name: setup.type_name.clone(),
            settings: setup.settings.clone(),
            extractor: setup.extractor.clone(),
            factory: setup.factory.clone(),
            coordinator: setup.coordinator.clone(),
            runner: setup.runner.clone(),
            ctl: None,
            key: String::new(),
            registered: false,
            ttl_checked: setup.factory.is_none(),
            ttl_check_in_flight: false,
            homes: BTreeMap::new(),
            pending: BTreeMap::new(),
            buffered: 0,
            shards: BTreeMap::new(),
            stopping: BTreeMap::new(),
            remembered: BTreeMap::new(),
            stop_owed: BTreeSet::new(),
            incarnations: BTreeMap::new(),
            next_incarnation: 0,
            locked: BTreeSet::new(),
            refresh_since: None,
            shutting_down: false,
            watched: BTreeSet::new(),
        })
    }

    fn register(&self) {
        if !self.ttl_checked {
            return;
        }
        if let Some(ctl) = &self.ctl {
            let hosted = self.shards.keys().copied().collect();
            self.coordinator.tell(CoordinatorMsg::Register {
                region: ctl.clone(),
                runner: self.runner.to_string(),
                proxy: self.factory.is_none(),
                hosted,
            });
        }
    }

    /// Reports the remembered entities of the local shards to the (maybe new) coordinator,
    /// in chunks of at most [`REMEMBER_CHUNK_BYTES`] of ids.
    fn report_remembered(&self) {
        for &shard in self.remembered.keys() {
            self.report_remembered_of(shard);
        }
    }

    /// Reports the remembered entities of local shard `shard` to the coordinator, in chunks
    /// of at most [`REMEMBER_CHUNK_BYTES`] of ids.
    fn report_remembered_of(&self, shard: u32) {
        if !self.shards.contains_key(&shard) {
            return;
        }
        let Some(ids) = self.remembered.get(&shard) else {
            return;
        };
        for chunk in chunk_ids(ids, REMEMBER_CHUNK_BYTES) {
            self.coordinator.tell(CoordinatorMsg::EntitiesChanged {
                shard,
                region: self.key.clone(),
                started: chunk,
                stopped: Vec::new(),
            });
        }
    }

    /// Measures the storage's lock ttl and checks the settings against it; the region
    /// registers (and so hosts shards) only once this passed.
    fn check_ttl(&mut self, ctx: &mut Context<Self>) {
        if self.ttl_checked || self.ttl_check_in_flight {
            return;
        }
        self.ttl_check_in_flight = true;
        let storage = self.settings.storage.clone();
        let runner = self.runner.clone();
        let type_name = self.type_name.clone();
        let validity = self.settings.local_lock_validity();
        let bound = self.settings.lock_ttl;
        ctx.pipe_to_self(
            async move {
                let check = ttl_check::check(storage.as_ref(), &runner, &type_name, validity);
                storage_call::bounded_check(bound, check).await
            },
            RegionMsg::TtlChecked,
        );
    }

    fn request_home(&self, shard: u32) {
        if let Some(ctl) = &self.ctl
            && self.registered
        {
            self.coordinator.tell(CoordinatorMsg::GetShardHome {
                shard,
                region: ctl.clone(),
            });
        }
    }

    fn dead_letter(&self, ctx: &Context<Self>, msg: E::Msg) {
        ctx.system().publish_dead_letter(
            ctx.path().clone(),
            msg,
            DeadLetterReason::UnknownRecipient,
        );
    }

    fn route(&mut self, msg: E::Msg, ctx: &mut Context<Self>) {
        let entity_id = self.extractor.entity_id(&msg);
        let shard = self
            .extractor
            .shard_id(&entity_id, self.settings.number_of_shards);
        if shard >= self.settings.number_of_shards {
            // The extractor broke its contract: the coordinator would refuse the shard.
            tracing::warn!(
                type_name = %self.type_name,
                entity_id,
                shard,
                number_of_shards = self.settings.number_of_shards,
                "extractor returned a shard out of range: message dropped to dead letters"
            );
            return self.dead_letter(ctx, msg);
        }
        match self.homes.get(&shard) {
            Some(Home::Local) => match self.shards.get(&shard) {
                Some(actor) => actor.tell(ShardMsg::Deliver { entity_id, msg }),
                // The previous actor is still stopping: hold until it terminated.
                None if self.stopping.contains_key(&shard) => self.buffer(shard, msg, ctx),
                None => {
                    let actor = self.start_shard(shard, Vec::new(), ctx);
                    match actor {
                        Some(actor) => actor.tell(ShardMsg::Deliver { entity_id, msg }),
                        None => self.dead_letter(ctx, msg),
                    }
                }
            },
            Some(Home::Remote { ingress, .. }) => ingress.tell(msg),
            None => self.buffer(shard, msg, ctx),
        }
    }

    fn buffer(&mut self, shard: u32, msg: E::Msg, ctx: &mut Context<Self>) {
        if self.buffered >= self.settings.buffer_size {
            tracing::warn!(
                type_name = %self.type_name,
                shard,
                limit = self.settings.buffer_size,
                "region buffer full: message dropped to dead letters"
            );
            return self.dead_letter(ctx, msg);
        }
        let queue = self.pending.entry(shard).or_default();
        let first = queue.is_empty();
        queue.push_back(msg);
        self.buffered += 1;
        if first && !self.homes.contains_key(&shard) {
            self.request_home(shard);
        }
    }

    fn flush(&mut self, shard: u32, ctx: &mut Context<Self>) {
        if let Some(queue) = self.pending.remove(&shard) {
            self.buffered -= queue.len();
            for msg in queue {
                self.route(msg, ctx);
            }
        }
    }

    fn start_shard(
        &mut self,
        shard: u32,
        remembered: Vec<String>,
        ctx: &mut Context<Self>,
    ) -> Option<ActorRef<ShardMsg<E::Msg>>> {
        if let Some(existing) = self.shards.get(&shard) {
            return Some(existing.clone());
        }
        if self.settings.remember_entities && !remembered.is_empty() {
            self.remembered.entry(shard).or_default().extend(remembered);
        }
        if self.stopping.contains_key(&shard) {
            // Same name as the stopping actor: start it once that one terminated (with the
            // remembered entities kept above).
            return None;
        }
        let remembered: Vec<String> = self
            .remembered
            .get(&shard)
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default();
        let factory = self.factory.clone()?;
        let lock_id = match ShardId::new(self.type_name.clone(), shard) {
            Ok(id) => id,
            Err(error) => {
                tracing::error!(%error, "invalid shard id");
                return None;
            }
        };
        let setup = ShardSetup {
            shard,
            lock_id,
            runner: self.runner.clone(),
            storage: self.settings.storage.clone(),
            timing: LockTiming {
                ttl: self.settings.lock_ttl,
                safety_margin: self.settings.lock_safety_margin,
            },
            retry_interval: self.settings.retry_interval,
            idle_timeout: self.settings.passivation_idle_timeout,
            hand_off_timeout: self.settings.hand_off_timeout,
            buffer_size: self.settings.buffer_size,
            entity_buffer_size: self.settings.entity_buffer_size,
            remember: self.settings.remember_entities,
            stop_message: self.settings.stop_message.clone(),
            region: ctx.myself().clone(),
            factory,
        };
        match ctx.spawn(Shard::props(setup, remembered), &format!("shard-{shard}")) {
            Ok(actor) => {
                self.shards.insert(shard, actor.clone());
                self.incarnations.insert(shard, self.next_incarnation);
                self.next_incarnation += 1;
                Some(actor)
            }
            Err(error) => {
                tracing::warn!(shard, %error, "could not start shard");
                None
            }
        }
    }

    fn ingress_of(
        &self,
        ctx: &Context<Self>,
        home: &ActorRef<RegionCtl>,
    ) -> Option<ActorRef<E::Msg>> {
        let path = home.path().parent()?.child(INGRESS_NAME);
        let system: &ActorSystem = ctx.system();
        match Remoting::get(system) {
            Some(remoting) => remoting.remote_ref::<E::Msg>(&path).ok(),
            None => system.lookup::<E::Msg>(&path).ok(),
        }
    }

    fn on_ctl(&mut self, msg: RegionCtl, ctx: &mut Context<Self>) {
        match msg {
            RegionCtl::Registered { coordinator } => {
                if !self.registered {
                    self.registered = true;
                    ctx.watch_with(&coordinator, RegionMsg::CoordinatorTerminated);
                    self.report_remembered();
                    let waiting: Vec<u32> = self.pending.keys().copied().collect();
                    for shard in waiting {
                        self.request_home(shard);
                    }
                    if self.shutting_down {
                        self.request_shutdown();
                    }
                }
            }
            RegionCtl::ShardHome { shard, home } => {
                let key = home.path().to_string();
                if key == self.key {
                    if self.factory.is_some() {
                        self.homes.insert(shard, Home::Local);
                        self.start_shard(shard, Vec::new(), ctx);
                    }
                } else if let Some(ingress) = self.ingress_of(ctx, &home) {
                    // Its remembered entities are the new home's business.
                    self.remembered.remove(&shard);
                    if let Some(actor) = self.shards.remove(&shard) {
                        // Started here, but its lock is held at `home`: give it up (what it
                        // buffered comes back and goes there).
                        tracing::info!(shard, home = %key, "shard lives elsewhere: giving it up");
                        self.locked.remove(&shard);
                        actor.tell(ShardMsg::HandOff);
                        self.stopping.insert(shard, actor);
                    }
                    // Forget its shards when it dies, also when no coordinator tells us
                    // (the coordinator may have died with it).
                    if self.watched.insert(key.clone()) {
                        ctx.watch_with(&home, RegionMsg::HomeTerminated(key.clone()));
                    }
                    self.homes.insert(shard, Home::Remote { key, ingress });
                }
                self.flush(shard, ctx);
            }
            RegionCtl::HostShard { shard, entities } => {
                if self.factory.is_some() {
                    let running = self.shards.contains_key(&shard);
                    self.homes.insert(shard, Home::Local);
                    self.start_shard(shard, entities, ctx);
                    if running {
                        // Re-homed here while it ran here (the coordinator had it elsewhere
                        // and ignored this region's reports meanwhile): report the set again.
                        self.report_remembered_of(shard);
                    }
                    self.flush(shard, ctx);
                }
            }
            RegionCtl::RememberEntities { shard, entities } => {
                if self.factory.is_some() && self.settings.remember_entities {
                    self.remembered
                        .entry(shard)
                        .or_default()
                        .extend(entities.iter().cloned());
                    if let Some(actor) = self.shards.get(&shard) {
                        actor.tell(ShardMsg::Remember(entities));
                    }
                }
            }
            RegionCtl::BeginHandOff { shard } => {
                self.homes.remove(&shard);
                self.coordinator.tell(CoordinatorMsg::BeginHandOffAck {
                    shard,
                    region: self.key.clone(),
                });
            }
            RegionCtl::HandOff { shard } => {
                self.homes.remove(&shard);
                match self.shards.remove(&shard) {
                    Some(actor) => {
                        // It never serves again: messages routed meanwhile wait here for
                        // the shard's next home (this region included, once it stopped).
                        // Its remembered entities travel with the hand-off.
                        self.remembered.remove(&shard);
                        self.stop_owed.insert(shard);
                        actor.tell(ShardMsg::HandOff);
                        self.stopping.insert(shard, actor);
                    }
                    // Stopping already (handing off, given up, or fenced): reported once it
                    // is done.
                    None if self.stopping.contains_key(&shard) => {
                        self.remembered.remove(&shard);
                        self.stop_owed.insert(shard);
                    }
                    None => self
                        .coordinator
                        .tell(CoordinatorMsg::ShardStopped { shard }),
                }
            }
            RegionCtl::RegionTerminated { region } => self.forget_region(&region),
            RegionCtl::ShutdownDone => {
                if self.shutting_down {
                    ctx.stop();
                }
            }
        }
    }

    /// Tells the coordinator that `shard` stopped here, if it asked for that (a hand-off).
    fn report_stop(&mut self, shard: u32) {
        if self.stop_owed.remove(&shard) {
            self.coordinator
                .tell(CoordinatorMsg::ShardStopped { shard });
        }
    }

    fn forget_region(&mut self, region: &str) {
        let gone: Vec<u32> = self
            .homes
            .iter()
            .filter(|(_, home)| matches!(home, Home::Remote { key, .. } if key == region))
            .map(|(shard, _)| *shard)
            .collect();
        for shard in gone {
            self.homes.remove(&shard);
        }
    }

    fn request_shutdown(&self) {
        if let Some(ctl) = &self.ctl {
            self.coordinator.tell(CoordinatorMsg::GracefulShutdown {
                region: ctl.clone(),
            });
        }
    }

    fn refresh(&mut self, ctx: &mut Context<Self>) {
        if self.locked.is_empty() {
            return;
        }
        // One call at a time, unless the one in flight has taken a whole interval (a hung or
        // slow storage): the next goes out then, rather than once the hung one is given up
        // (a lock validity later, by which time every local shard has fenced). Calls in
        // flight are bounded (at most validity / interval); an older answer never shortens
        // a deadline.
        if self
            .refresh_since
            .is_some_and(|since| since.elapsed() < self.settings.lock_refresh_interval)
        {
            return;
        }
        let asked: Vec<(u32, u64)> = self
            .locked
            .iter()
            .filter_map(|n| Some((*n, *self.incarnations.get(n)?)))
            .collect();
        let ids: Vec<ShardId> = asked
            .iter()
            .filter_map(|(n, _)| ShardId::new(self.type_name.clone(), *n).ok())
            .collect();
        let storage = self.settings.storage.clone();
        let runner = self.runner.clone();
        let started = Instant::now();
        self.refresh_since = Some(started);
        let bound = self.settings.local_lock_validity();
        ctx.pipe_to_self(
            async move {
                storage_call::bounded("refresh", bound, storage.refresh(&runner, &ids)).await
            },
            move |result| RegionMsg::Refreshed {
                started,
                asked,
                held: match result {
                    Ok(held) => Some(held.iter().map(ShardId::number).collect()),
                    Err(error) => {
                        tracing::warn!(%error, "shard lock refresh failed");
                        None
                    }
                },
            },
        );
    }
}

/// Asks each shard for its entity count (`timeout` each; a shard that does not answer counts
/// zero).
async fn shard_counts<M: Send + 'static>(
    shards: Vec<(u32, ActorRef<ShardMsg<M>>)>,
    timeout: std::time::Duration,
) -> RegionState {
    let mut state = RegionState::default();
    for (shard, actor) in shards {
        let count = actor.ask(ShardMsg::Count, timeout).await.unwrap_or(0);
        state.shards.insert(shard, count);
    }
    state
}

impl<E: Actor> Actor for Region<E>
where
    E::Msg: RemoteMessage,
{
    type Msg = RegionMsg<E::Msg>;

    async fn started(&mut self, ctx: &mut Context<Self>) -> ActorResult {
        let me = ctx.myself().clone();
        let ctl = ctx.spawn(
            Props::new(move || Forward {
                parent: me.clone(),
                wrap: RegionMsg::Ctl,
            }),
            CTL_NAME,
        )?;
        let me = ctx.myself().clone();
        ctx.spawn(
            Props::new(move || Forward {
                parent: me.clone(),
                wrap: RegionMsg::Deliver,
            }),
            INGRESS_NAME,
        )?;
        self.key = ctl.path().to_string();
        self.ctl = Some(ctl);
        self.check_ttl(ctx);
        self.register();
        if let Some(cluster) = Cluster::get(ctx.system()) {
            // Leaving the cluster hands this region's shards off first.
            cluster.subscribe(&ctx.myself().adapt(RegionMsg::Cluster));
        }
        ctx.start_single_timer("retry", self.settings.retry_interval, RegionMsg::Retry);
        ctx.start_single_timer(
            "refresh",
            self.settings.lock_refresh_interval,
            RegionMsg::RefreshLocks,
        );
        Ok(())
    }

    async fn handle(&mut self, msg: Self::Msg, ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            RegionMsg::Deliver(msg) => self.route(msg, ctx),
            RegionMsg::Ctl(ctl) => self.on_ctl(ctl, ctx),
            RegionMsg::LockHeld { shard } => {
                if self.shards.contains_key(&shard) {
                    self.locked.insert(shard);
                }
            }
            RegionMsg::Fenced { shard } => {
                if self.stopping.contains_key(&shard) {
                    // Fenced while handing off: it will not report; its lock is gone, so the
                    // coordinator may move it now.
                    self.locked.remove(&shard);
                    self.report_stop(shard);
                } else if let Some(actor) = self.shards.remove(&shard) {
                    self.locked.remove(&shard);
                    self.stopping.insert(shard, actor);
                    if matches!(self.homes.get(&shard), Some(Home::Local)) {
                        // Ask again where it lives once messages come.
                        self.homes.remove(&shard);
                    }
                }
            }
            RegionMsg::HandedOff { shard } => {
                self.locked.remove(&shard);
                self.report_stop(shard);
            }
            RegionMsg::RememberChanged {
                shard,
                entity_id,
                remembered,
            } => {
                // From a handing-off actor too (the coordinator's set must be exact when the
                // hand-off completes); only a current actor's set is kept here.
                let changed = if self.shards.contains_key(&shard) {
                    let set = self.remembered.entry(shard).or_default();
                    if remembered {
                        set.insert(entity_id.clone())
                    } else {
                        set.remove(&entity_id)
                    }
                } else {
                    self.stopping.contains_key(&shard)
                };
                if changed {
                    let (started, stopped) = if remembered {
                        (vec![entity_id], Vec::new())
                    } else {
                        (Vec::new(), vec![entity_id])
                    };
                    self.coordinator.tell(CoordinatorMsg::EntitiesChanged {
                        shard,
                        region: self.key.clone(),
                        started,
                        stopped,
                    });
                }
            }
            RegionMsg::LockRefused { shard } => {
                if let Some(ctl) = &self.ctl
                    && self.registered
                    && self.shards.contains_key(&shard)
                {
                    self.coordinator.tell(CoordinatorMsg::ShardLockRefused {
                        shard,
                        region: ctl.clone(),
                    });
                }
            }
            RegionMsg::Retry => {
                if self.registered {
                    let waiting: Vec<u32> = self
                        .pending
                        .keys()
                        .filter(|s| !self.homes.contains_key(s))
                        .copied()
                        .collect();
                    for shard in waiting {
                        self.request_home(shard);
                    }
                    if self.shutting_down {
                        self.request_shutdown();
                    }
                } else if self.ttl_checked {
                    self.register();
                } else {
                    self.check_ttl(ctx);
                }
                ctx.start_single_timer("retry", self.settings.retry_interval, RegionMsg::Retry);
            }
            RegionMsg::RefreshLocks => {
                self.refresh(ctx);
                ctx.start_single_timer(
                    "refresh",
                    self.settings.lock_refresh_interval,
                    RegionMsg::RefreshLocks,
                );
            }
            RegionMsg::Refreshed {
                started,
                asked,
                held,
            } => {
                if self.refresh_since == Some(started) {
                    self.refresh_since = None;
                }
                if let Some(held) = held {
                    for (shard, incarnation) in asked {
                        if self.incarnations.get(&shard) != Some(&incarnation) {
                            // Asked for an actor that has been replaced since (released and
                            // started again here): the answer is not about the new one.
                            continue;
                        }
                        let Some(actor) = self
                            .shards
                            .get(&shard)
                            .or_else(|| self.stopping.get(&shard))
                        else {
                            continue;
                        };
                        if held.contains(&shard) {
                            actor.tell(ShardMsg::Lock(LockEvent::Refreshed { started }));
                        } else {
                            self.locked.remove(&shard);
                            actor.tell(ShardMsg::Lock(LockEvent::RefreshLost));
                        }
                    }
                }
            }
            RegionMsg::HomeTerminated(key) => {
                self.watched.remove(&key);
                self.forget_region(&key);
            }
            RegionMsg::CoordinatorTerminated => {
                self.registered = false;
                self.register();
            }
            RegionMsg::Cluster(event) => {
                let leaving = match &event {
                    ClusterEvent::MemberLeft(member) | ClusterEvent::MemberExited(member) => {
                        Cluster::get(ctx.system())
                            .is_some_and(|c| c.self_address() == &member.address)
                    }
                    _ => false,
                };
                if leaving && !self.shutting_down {
                    tracing::info!(
                        type_name = %self.type_name,
                        "this node leaves the cluster: handing off its shards"
                    );
                    self.shutting_down = true;
                    if self.registered {
                        self.request_shutdown();
                    }
                }
            }
            RegionMsg::GracefulShutdown => {
                self.shutting_down = true;
                if self.registered {
                    self.request_shutdown();
                }
            }
            RegionMsg::TtlChecked(result) => {
                self.ttl_check_in_flight = false;
                match result {
                    Ok(storage_ttl) => {
                        tracing::debug!(
                            type_name = %self.type_name,
                            ?storage_ttl,
                            "storage lock ttl checked"
                        );
                        self.ttl_checked = true;
                        self.register();
                    }
                    Err(error @ ShardingError::LockTtlMismatch { .. }) => {
                        tracing::error!(
                            type_name = %self.type_name,
                            %error,
                            "shard region stops: it could serve shards whose lock expired"
                        );
                        ctx.stop();
                    }
                    // Storage trouble: the retry timer checks again.
                    Err(error) => {
                        tracing::warn!(type_name = %self.type_name, %error, "lock ttl check failed");
                    }
                }
            }
            RegionMsg::StateReady(state, reply) => {
                reply.reply(state);
            }
            RegionMsg::GetState(reply) => {
                let shards: Vec<_> = self.shards.iter().map(|(s, a)| (*s, a.clone())).collect();
                let timeout = self.settings.retry_interval;
                ctx.pipe_to_self(shard_counts(shards, timeout), |state| {
                    RegionMsg::StateReady(state, reply)
                });
            }
        }
        Ok(())
    }

    async fn stopped(&mut self, ctx: &mut Context<Self>) {
        if let Some(cluster) = Cluster::get(ctx.system()) {
            cluster.unsubscribe(&ctx.myself().adapt(RegionMsg::Cluster));
        }
    }

    async fn terminated(&mut self, terminated: Terminated, ctx: &mut Context<Self>) -> ActorResult {
        let Some(shard) = terminated
            .path()
            .name()
            .strip_prefix("shard-")
            .and_then(|n| n.parse::<u32>().ok())
        else {
            return Ok(());
        };
        if self
            .stopping
            .get(&shard)
            .is_some_and(|actor| terminated.is(actor))
        {
            self.stopping.remove(&shard);
            self.locked.remove(&shard);
            self.report_stop(shard);
            self.incarnations.remove(&shard);
            if matches!(self.homes.get(&shard), Some(Home::Local)) {
                // Given back to this region while the old actor stopped: start afresh.
                self.start_shard(shard, Vec::new(), ctx);
                self.flush(shard, ctx);
            } else if self.pending.contains_key(&shard) || self.remembered.contains_key(&shard) {
                // Messages wait for it, or remembered entities must run again (after a
                // fence): ask where it lives now.
                self.request_home(shard);
            }
            return Ok(());
        }
        if self
            .shards
            .get(&shard)
            .is_some_and(|actor| terminated.is(actor))
        {
            self.shards.remove(&shard);
            self.locked.remove(&shard);
            self.incarnations.remove(&shard);
            if matches!(self.homes.get(&shard), Some(Home::Local)) {
                // Fenced or failed: ask again where it lives now.
                self.homes.remove(&shard);
            }
            if self.pending.contains_key(&shard) || self.remembered.contains_key(&shard) {
                self.request_home(shard);
            }
        }
        Ok(())
    }
}
