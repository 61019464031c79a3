//! The shard actor: owns the entities of one shard in one region. It starts serving only
//! once its lock is acquired, fences itself when the lock's local deadline passes, starts
//! entities on their first message, passivates them (idle or on request) while buffering
//! their messages, and hands off by stopping every entity before releasing the lock.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use actor_coordination::runner_storage::{RunnerId, RunnerStorage, ShardId};
use actor_core::{
    Actor, ActorRef, ActorResult, Context, DeadLetterReason, Props, ReplyTo, Terminated,
};
use tokio::time::Instant;

use super::extractor::entity_actor_name;
use super::lock::{LockAction, LockEvent, LockState, LockTiming};
use super::region::RegionMsg;
use super::settings::{REFUSALS_BEFORE_REPORT, StopMessage};
use super::storage_call;

/// Builds the props of an entity from its context.
pub(crate) type EntityFactory<E> =
    Arc<dyn Fn(EntityContext<<E as Actor>::Msg>) -> Props<E> + Send + Sync>;

/// What an entity knows about itself: its id, and how to ask its shard to passivate it.
///
/// The entity-props factory given to
/// [`ClusterSharding::start`](super::ClusterSharding::start) receives one per entity start.
pub struct EntityContext<M: Send + 'static> {
    entity_id: String,
    shard: ActorRef<ShardMsg<M>>,
}

impl<M: Send + 'static> Clone for EntityContext<M> {
    fn clone(&self) -> Self {
        Self {
            entity_id: self.entity_id.clone(),
            shard: self.shard.clone(),
        }
    }
}

impl<M: Send + 'static> std::fmt::Debug for EntityContext<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntityContext")
            .field("entity_id", &self.entity_id)
            .field("shard", self.shard.path())
            .finish()
    }
}

impl<M: Send + 'static> EntityContext<M> {
    /// The entity's id.
    pub fn entity_id(&self) -> &str {
        &self.entity_id
    }

    /// Asks the shard to passivate this entity: it sends the stop message (or a poison pill)
    /// and buffers the messages that arrive meanwhile; they start a fresh instance afterwards.
    pub fn passivate(&self) {
        self.shard.tell(ShardMsg::Passivate {
            entity_id: self.entity_id.clone(),
        });
    }
}

/// Messages of a shard actor (local only).
pub enum ShardMsg<M> {
    /// A message for an entity.
    Deliver {
        /// The entity id.
        entity_id: String,
        /// The message.
        msg: M,
    },
    /// An entity asks to be passivated.
    Passivate {
        /// The entity id.
        entity_id: String,
    },
    /// The lock changed (acquire results from itself, refresh results from the region).
    Lock(LockEvent),
    /// An acquire call finished.
    AcquireDone(LockEvent),
    /// The fence timer fired.
    FenceCheck,
    /// Retry a refused acquire.
    RetryAcquire,
    /// Passivate idle entities.
    IdleCheck,
    /// Stop every entity, release the lock, report to the region.
    HandOff,
    /// Entities took too long to stop in a hand-off.
    HandOffTimeout,
    /// The hand-off's lock release finished (or failed, or timed out).
    Released,
    /// How many entities run here.
    Count(ReplyTo<usize>),
    /// More remembered entities to start (once the lock is held).
    Remember(Vec<String>),
}

/// What a shard needs from its region.
pub(crate) struct ShardSetup<E: Actor> {
    pub(crate) shard: u32,
    pub(crate) lock_id: ShardId,
    pub(crate) runner: RunnerId,
    pub(crate) storage: Arc<dyn RunnerStorage>,
    pub(crate) timing: LockTiming,
    pub(crate) retry_interval: Duration,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) hand_off_timeout: Duration,
    pub(crate) buffer_size: usize,
    pub(crate) entity_buffer_size: usize,
    pub(crate) remember: bool,
    pub(crate) stop_message: Option<StopMessage<E::Msg>>,
    pub(crate) region: ActorRef<RegionMsg<E::Msg>>,
    pub(crate) factory: EntityFactory<E>,
}

impl<E: Actor> Clone for ShardSetup<E> {
    fn clone(&self) -> Self {
        Self {
            shard: self.shard,
            lock_id: self.lock_id.clone(),
            runner: self.runner.clone(),
            storage: self.storage.clone(),
            timing: self.timing,
            retry_interval: self.retry_interval,
            idle_timeout: self.idle_timeout,
            hand_off_timeout: self.hand_off_timeout,
            buffer_size: self.buffer_size,
            entity_buffer_size: self.entity_buffer_size,
            remember: self.remember,
            stop_message: self.stop_message.clone(),
            region: self.region.clone(),
            factory: self.factory.clone(),
        }
    }
}

struct Entry<M> {
    actor: ActorRef<M>,
    last_active: Instant,
    /// `Some` while passivating: the messages that arrived meanwhile.
    passivating: Option<VecDeque<M>>,
}

/// Where a hand-off at this shard stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Serving,
    HandingOff,
    Done,
}

/// The shard actor.
pub(crate) struct Shard<E: Actor> {
    setup: ShardSetup<E>,
    lock: LockState,
    acquire_in_flight: bool,
    /// Acquires refused in a row since the last report to the region.
    refusals: u32,
    phase: Phase,
    buffer: VecDeque<(String, E::Msg)>,
    entities: BTreeMap<String, Entry<E::Msg>>,
    names: BTreeMap<String, String>,
    remembered: BTreeSet<String>,
}

impl<E: Actor> Shard<E> {
    pub(crate) fn props(setup: ShardSetup<E>, remembered: Vec<String>) -> Props<Self> {
        Props::new(move || Shard {
            setup: setup.clone(),
            lock: LockState::Acquiring,
            acquire_in_flight: false,
            refusals: 0,
            phase: Phase::Serving,
            buffer: VecDeque::new(),
            entities: BTreeMap::new(),
            names: BTreeMap::new(),
            remembered: remembered.iter().cloned().collect(),
        })
    }

    fn acquire(&mut self, ctx: &mut Context<Self>) {
        if self.acquire_in_flight {
            return;
        }
        self.acquire_in_flight = true;
        let storage = self.setup.storage.clone();
        let runner = self.setup.runner.clone();
        let id = self.setup.lock_id.clone();
        let started = Instant::now();
        let bound = self.setup.timing.validity();
        ctx.pipe_to_self(
            async move {
                let call = storage.acquire(&runner, std::slice::from_ref(&id));
                let result = storage_call::bounded("acquire", bound, call).await;
                match result {
                    // `now` is set again when the result is handled (see `handle`).
                    Ok(got) if got.contains(&id) => LockEvent::Acquired {
                        started,
                        now: Instant::now(),
                    },
                    Ok(_) => LockEvent::Refused,
                    Err(error) => {
                        tracing::warn!(shard = %id, %error, "shard lock acquire failed");
                        LockEvent::StorageFailed
                    }
                }
            },
            ShardMsg::AcquireDone,
        );
    }

    async fn on_lock(&mut self, event: LockEvent, ctx: &mut Context<Self>) {
        let (state, actions) = self.lock.on_event(event, self.setup.timing);
        self.lock = state;
        for action in actions {
            match action {
                LockAction::Activate => self.activate(ctx),
                LockAction::RetryAcquire => {
                    ctx.start_single_timer(
                        "acquire",
                        self.setup.retry_interval,
                        ShardMsg::RetryAcquire,
                    );
                }
                LockAction::ArmFence(at) => {
                    let delay = at.saturating_duration_since(Instant::now());
                    ctx.start_single_timer("fence", delay, ShardMsg::FenceCheck);
                }
                LockAction::Fence => {
                    tracing::warn!(
                        shard = %self.setup.lock_id,
                        "shard lock lost or expired: fencing the shard"
                    );
                    self.phase = Phase::Done;
                    // The region stops routing here first, then gets back what waited here
                    // (in this order, so they are not sent here again).
                    self.setup.region.tell(RegionMsg::Fenced {
                        shard: self.setup.shard,
                    });
                    for (_, msg) in std::mem::take(&mut self.buffer) {
                        self.setup.region.tell(RegionMsg::Deliver(msg));
                    }
                    // So do the messages waiting for a passivating entity: stopping this
                    // actor stops its entities without their `Terminated` reaching it.
                    for entry in self.entities.values_mut() {
                        for msg in entry.passivating.take().unwrap_or_default() {
                            self.setup.region.tell(RegionMsg::Deliver(msg));
                        }
                    }
                    ctx.stop();
                }
            }
        }
    }

    fn activate(&mut self, ctx: &mut Context<Self>) {
        self.setup.region.tell(RegionMsg::LockHeld {
            shard: self.setup.shard,
        });
        if self.phase == Phase::HandingOff {
            // Handed off before the lock came: give it back at once.
            return;
        }
        let remembered: Vec<String> = self.remembered.iter().cloned().collect();
        for entity_id in remembered {
            if !self.entities.contains_key(&entity_id) {
                self.start_entity(&entity_id, ctx);
            }
        }
        for (entity_id, msg) in std::mem::take(&mut self.buffer) {
            self.deliver(entity_id, msg, ctx);
        }
    }

    fn dead_letter(&self, ctx: &Context<Self>, msg: E::Msg) {
        ctx.system().publish_dead_letter(
            ctx.path().clone(),
            msg,
            DeadLetterReason::UnknownRecipient,
        );
    }

    fn start_entity(&mut self, entity_id: &str, ctx: &mut Context<Self>) -> bool {
        let name = entity_actor_name(entity_id);
        let entity = EntityContext {
            entity_id: entity_id.to_owned(),
            shard: ctx.myself().clone(),
        };
        let props = (self.setup.factory)(entity);
        match ctx.spawn(props, &name) {
            Ok(actor) => {
                self.entities.insert(
                    entity_id.to_owned(),
                    Entry {
                        actor,
                        last_active: Instant::now(),
                        passivating: None,
                    },
                );
                self.names.insert(name, entity_id.to_owned());
                if self.setup.remember && self.remembered.insert(entity_id.to_owned()) {
                    self.setup.region.tell(RegionMsg::RememberChanged {
                        shard: self.setup.shard,
                        entity_id: entity_id.to_owned(),
                        remembered: true,
                    });
                }
                if let Some(idle) = self.setup.idle_timeout
                    && !ctx.is_timer_active("idle")
                {
                    ctx.start_single_timer("idle", idle / 2, ShardMsg::IdleCheck);
                }
                true
            }
            Err(error) => {
                tracing::warn!(entity_id, %error, "could not start entity");
                false
            }
        }
    }

    fn deliver(&mut self, entity_id: String, msg: E::Msg, ctx: &mut Context<Self>) {
        match self.phase {
            // Routed here before the region learnt of the hand-off or the fence: back to the
            // region, which no longer routes here and buffers it until the shard's next home
            // is known.
            Phase::HandingOff | Phase::Done => {
                return self.setup.region.tell(RegionMsg::Deliver(msg));
            }
            Phase::Serving => {}
        }
        if !matches!(self.lock, LockState::Held { .. }) {
            if self.buffer.len() >= self.setup.buffer_size {
                return self.dead_letter(ctx, msg);
            }
            self.buffer.push_back((entity_id, msg));
            return;
        }
        if !self.entities.contains_key(&entity_id) && !self.start_entity(&entity_id, ctx) {
            return self.dead_letter(ctx, msg);
        }
        let bound = self.setup.entity_buffer_size;
        if let Some(entry) = self.entities.get_mut(&entity_id) {
            match &mut entry.passivating {
                Some(waiting) if waiting.len() >= bound => {
                    tracing::warn!(
                        shard = %self.setup.lock_id,
                        entity_id,
                        limit = bound,
                        "passivating entity's buffer full: message dropped to dead letters"
                    );
                    self.dead_letter(ctx, msg);
                }
                Some(waiting) => waiting.push_back(msg),
                None => {
                    entry.last_active = Instant::now();
                    entry.actor.tell(msg);
                }
            }
        }
    }

    fn stop_entity(&self, actor: &ActorRef<E::Msg>) {
        match &self.setup.stop_message {
            Some(make) => actor.tell(make()),
            None => actor.poison_pill(),
        }
    }

    fn passivate(&mut self, entity_id: &str) {
        let Some(entry) = self.entities.get_mut(entity_id) else {
            return;
        };
        if entry.passivating.is_some() {
            return;
        }
        entry.passivating = Some(VecDeque::new());
        let actor = entry.actor.clone();
        self.stop_entity(&actor);
        if self.remembered.remove(entity_id) {
            self.setup.region.tell(RegionMsg::RememberChanged {
                shard: self.setup.shard,
                entity_id: entity_id.to_owned(),
                remembered: false,
            });
        }
    }

    fn begin_hand_off(&mut self, ctx: &mut Context<Self>) {
        if self.phase != Phase::Serving {
            return;
        }
        self.phase = Phase::HandingOff;
        ctx.cancel_timer("idle");
        for (_, msg) in std::mem::take(&mut self.buffer) {
            self.setup.region.tell(RegionMsg::Deliver(msg));
        }
        let stopping: Vec<ActorRef<E::Msg>> = self
            .entities
            .values_mut()
            .filter(|e| e.passivating.is_none())
            .map(|e| {
                e.passivating = Some(VecDeque::new());
                e.actor.clone()
            })
            .collect();
        for actor in &stopping {
            self.stop_entity(actor);
        }
        ctx.start_single_timer(
            "hand-off",
            self.setup.hand_off_timeout,
            ShardMsg::HandOffTimeout,
        );
    }

    async fn try_finish_hand_off(&mut self, ctx: &mut Context<Self>) {
        if self.phase != Phase::HandingOff || !self.entities.is_empty() || self.acquire_in_flight {
            return;
        }
        self.phase = Phase::Done;
        // Also while acquiring: a grant that came too late to be used is still held in the
        // storage (releasing a lock another runner holds does nothing).
        let holds = self.lock != LockState::Fenced;
        self.lock = LockState::Fenced;
        if !holds {
            return self.handed_off(ctx);
        }
        // Released off the mailbox (bounded): messages still reaching the shard meanwhile go
        // back to the region.
        let storage = self.setup.storage.clone();
        let runner = self.setup.runner.clone();
        let id = self.setup.lock_id.clone();
        let bound = self.setup.timing.validity();
        ctx.pipe_to_self(
            async move {
                let call = storage.release(&runner, &id);
                if let Err(error) = storage_call::bounded("release", bound, call).await {
                    // The lock then expires on its own; the new home waits for that.
                    tracing::warn!(shard = %id, %error, "shard lock release failed");
                }
            },
            |()| ShardMsg::Released,
        );
    }

    /// The hand-off is over (lock released or given up): report and stop.
    fn handed_off(&mut self, ctx: &mut Context<Self>) {
        self.setup.region.tell(RegionMsg::HandedOff {
            shard: self.setup.shard,
        });
        ctx.stop();
    }

    fn idle_check(&mut self, ctx: &mut Context<Self>) {
        let Some(idle) = self.setup.idle_timeout else {
            return;
        };
        let now = Instant::now();
        let idle_ids: Vec<String> = self
            .entities
            .iter()
            .filter(|(_, e)| e.passivating.is_none() && now.duration_since(e.last_active) >= idle)
            .map(|(id, _)| id.clone())
            .collect();
        for id in idle_ids {
            self.passivate(&id);
        }
        if !self.entities.is_empty() && self.phase == Phase::Serving {
            ctx.start_single_timer("idle", idle / 2, ShardMsg::IdleCheck);
        }
    }
}

impl<E: Actor> Actor for Shard<E> {
    type Msg = ShardMsg<E::Msg>;

    async fn started(&mut self, ctx: &mut Context<Self>) -> ActorResult {
        self.acquire(ctx);
        Ok(())
    }

    async fn handle(&mut self, msg: Self::Msg, ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            ShardMsg::Deliver { entity_id, msg } => self.deliver(entity_id, msg, ctx),
            ShardMsg::Passivate { entity_id } => self.passivate(&entity_id),
            ShardMsg::AcquireDone(mut event) => {
                self.acquire_in_flight = false;
                match &mut event {
                    LockEvent::Acquired { now, .. } => {
                        // The deadline is judged when the grant is used, not when the call
                        // ended.
                        *now = Instant::now();
                        self.refusals = 0;
                    }
                    LockEvent::Refused if self.phase == Phase::Serving => {
                        self.refusals += 1;
                        if self.refusals >= REFUSALS_BEFORE_REPORT {
                            // Another runner keeps the lock: maybe the coordinator allocated
                            // the shard here after a new coordinator missed that lock.
                            self.refusals = 0;
                            self.setup.region.tell(RegionMsg::LockRefused {
                                shard: self.setup.shard,
                            });
                        }
                    }
                    _ => {}
                }
                self.on_lock(event, ctx).await;
                if self.phase == Phase::HandingOff {
                    self.try_finish_hand_off(ctx).await;
                }
            }
            ShardMsg::Lock(event) => self.on_lock(event, ctx).await,
            ShardMsg::FenceCheck => {
                let now = Instant::now();
                self.on_lock(LockEvent::Deadline { now }, ctx).await;
            }
            ShardMsg::RetryAcquire => {
                if self.lock == LockState::Acquiring && self.phase == Phase::Serving {
                    self.acquire(ctx);
                }
            }
            ShardMsg::IdleCheck => self.idle_check(ctx),
            ShardMsg::HandOff => {
                self.begin_hand_off(ctx);
                self.try_finish_hand_off(ctx).await;
            }
            ShardMsg::HandOffTimeout => {
                tracing::warn!(
                    shard = %self.setup.lock_id,
                    "entities did not stop within the hand-off timeout: stopping them"
                );
                for entry in self.entities.values() {
                    entry.actor.stop();
                }
            }
            ShardMsg::Released => self.handed_off(ctx),
            ShardMsg::Remember(ids) => {
                let serving =
                    self.phase == Phase::Serving && matches!(self.lock, LockState::Held { .. });
                for id in ids {
                    if serving && !self.entities.contains_key(&id) {
                        self.start_entity(&id, ctx);
                    } else if self.phase == Phase::Serving {
                        // Started by `activate` once the lock is held.
                        self.remembered.insert(id);
                    }
                }
            }
            ShardMsg::Count(reply) => {
                reply.reply(self.entities.len());
            }
        }
        Ok(())
    }

    async fn terminated(&mut self, terminated: Terminated, ctx: &mut Context<Self>) -> ActorResult {
        let Some(entity_id) = self.names.remove(terminated.path().name()) else {
            return Ok(());
        };
        let Some(entry) = self.entities.remove(&entity_id) else {
            return Ok(());
        };
        let waiting = entry.passivating.unwrap_or_default();
        match self.phase {
            Phase::Serving if !waiting.is_empty() => {
                // Messages arrived while it passivated: a fresh instance takes them, in order.
                for msg in waiting {
                    self.deliver(entity_id.clone(), msg, ctx);
                }
            }
            Phase::HandingOff => {
                for msg in waiting {
                    self.setup.region.tell(RegionMsg::Deliver(msg));
                }
                self.try_finish_hand_off(ctx).await;
            }
            Phase::Done => {
                for msg in waiting {
                    self.setup.region.tell(RegionMsg::Deliver(msg));
                }
            }
            Phase::Serving => {}
        }
        Ok(())
    }
}
