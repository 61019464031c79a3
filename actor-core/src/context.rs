//! [`Context`]: what an actor can do from inside its hooks: spawn and stop children, watch,
//! timers, stash, receive timeout.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use crate::actor::Actor;
use crate::actor_ref::ActorRef;
use crate::cell::{CellHandle, LocalCell, SystemMsg};
use crate::death_watch::{WatchMode, Watching};
use crate::error::{SpawnError, StashFull};
use crate::path::{ActorId, ActorPath};
use crate::props::{Props, Recipe};
use crate::supervision::RestartStats;
use crate::system::{ActorSystem, spawn_child};
use crate::timers::{TimerKey, Timers};

pub(crate) struct ReceiveTimeout<M> {
    pub(crate) after: Duration,
    pub(crate) deadline: Instant,
    pub(crate) make: Box<dyn Fn() -> M + Send>,
}

/// State an actor needs only once it uses timers, stash, watches or supervises failing
/// children: kept behind one box so that an idle actor stays small.
pub(crate) struct Rare<M> {
    pub(crate) timers: Timers,
    pub(crate) stash: VecDeque<M>,
    /// Messages to process before the mailbox (unstashed ones).
    pub(crate) front: VecDeque<M>,
    pub(crate) watching: BTreeMap<ActorId, Watching<M>>,
    pub(crate) receive_timeout: Option<ReceiveTimeout<M>>,
    pub(crate) restart_stats: BTreeMap<ActorId, RestartStats>,
}

impl<M> Default for Rare<M> {
    fn default() -> Self {
        Rare {
            timers: Timers::default(),
            stash: VecDeque::new(),
            front: VecDeque::new(),
            watching: BTreeMap::new(),
            receive_timeout: None,
            restart_stats: BTreeMap::new(),
        }
    }
}

/// The actor's view of itself and the runtime, passed to every hook.
pub struct Context<A: Actor> {
    /// A local ref: it holds the actor's cell (see [`Context::cell`]).
    myself: ActorRef<A::Msg>,
    pub(crate) props: Recipe<A>,
    pub(crate) rare: Option<Box<Rare<A::Msg>>>,
}

impl<A: Actor> Context<A> {
    pub(crate) fn new(cell: Arc<LocalCell<A::Msg>>, props: Recipe<A>) -> Self {
        Context {
            myself: ActorRef::local(cell),
            props,
            rare: None,
        }
    }

    /// This actor's cell (a context keeps it once, in its own local ref).
    #[inline]
    pub(crate) fn cell(&self) -> &Arc<LocalCell<A::Msg>> {
        match self.myself.local_cell() {
            Some(cell) => cell,
            None => unreachable!("a context's own ref is made from its cell"),
        }
    }

    /// This cell without its message type.
    fn handle(&self) -> Arc<dyn CellHandle> {
        self.cell().clone()
    }

    pub(crate) fn rare(&mut self) -> &mut Rare<A::Msg> {
        self.rare.get_or_insert_with(Default::default)
    }

    /// A ref to this actor.
    pub fn myself(&self) -> &ActorRef<A::Msg> {
        &self.myself
    }

    /// The actor system this actor runs in.
    pub fn system(&self) -> &ActorSystem {
        &self.cell().core.system
    }

    /// This actor's path.
    pub fn path(&self) -> &ActorPath {
        self.cell().core.id.path()
    }

    /// This incarnation's identity.
    pub fn id(&self) -> &ActorId {
        &self.cell().core.id
    }

    /// Spawns a child named `name`.
    ///
    /// # Errors
    /// [`SpawnError::InvalidName`], [`SpawnError::DuplicateName`] when a sibling has the name,
    /// [`SpawnError::ParentStopping`] while this actor stops.
    pub fn spawn<C: Actor>(
        &mut self,
        props: Props<C>,
        name: &str,
    ) -> Result<ActorRef<C::Msg>, SpawnError> {
        spawn_child(&self.handle(), props, Some(name))
    }

    /// Spawns a child with a generated name (`$zz`, `$zy`, ...).
    ///
    /// # Errors
    /// [`SpawnError::ParentStopping`] while this actor stops.
    pub fn spawn_anonymous<C: Actor>(
        &mut self,
        props: Props<C>,
    ) -> Result<ActorRef<C::Msg>, SpawnError> {
        spawn_child(&self.handle(), props, None)
    }

    /// A typed ref to the child named `name`, if it exists and takes `M`.
    pub fn child<M: Send + 'static>(&self, name: &str) -> Option<ActorRef<M>> {
        let child = self
            .cell()
            .core
            .children
            .lock()
            .get(name.as_bytes())
            .cloned()?;
        child
            .as_any()
            .downcast::<LocalCell<M>>()
            .ok()
            .map(ActorRef::local)
    }

    /// The paths of the current children (including ones still stopping).
    pub fn children(&self) -> Vec<ActorPath> {
        self.cell()
            .core
            .child_list()
            .iter()
            .map(|c| c.core().id.path().clone())
            .collect()
    }

    /// Stops this actor after the current hook returns.
    pub fn stop(&mut self) {
        self.cell()
            .core
            .stop_requested
            .store(true, Ordering::Relaxed);
    }

    /// Stops a child; false if `child` is not a child of this actor.
    pub fn stop_child<M: Send + 'static>(&mut self, child: &ActorRef<M>) -> bool {
        let found = self
            .cell()
            .core
            .children
            .lock()
            .get(child.path().name_bytes())
            .filter(|c| c.core().id == *child.id())
            .cloned();
        match found {
            Some(c) => {
                c.send_system(SystemMsg::Stop);
                true
            }
            None => false,
        }
    }

    /// Watches `target`: [`Actor::terminated`] runs exactly once when it stops (at once if
    /// it is already dead). Watching twice is one watch.
    pub fn watch<M: Send + 'static>(&mut self, target: &ActorRef<M>) {
        if target.id() == self.id() {
            return;
        }
        self.add_watch(target, WatchMode::Signal);
        target.watch_from(&self.handle());
    }

    /// Watches `target` and receives `msg` (through [`Actor::handle`]) when it stops,
    /// exactly once, instead of the [`Actor::terminated`] signal.
    pub fn watch_with<M: Send + 'static>(&mut self, target: &ActorRef<M>, msg: A::Msg) {
        if target.id() == self.id() {
            return;
        }
        self.add_watch(target, WatchMode::Message(msg));
        target.watch_from(&self.handle());
    }

    fn add_watch<M: Send + 'static>(&mut self, target: &ActorRef<M>, mode: WatchMode<A::Msg>) {
        let t = target.clone();
        let watch = Watching {
            mode,
            unwatch: Box::new(move |me| t.unwatch_from(me)),
        };
        self.rare().watching.insert(target.id().clone(), watch);
    }

    /// Stops watching `target`; no signal arrives for it afterwards.
    pub fn unwatch<M: Send + 'static>(&mut self, target: &ActorRef<M>) {
        let removed = self
            .rare
            .as_mut()
            .is_some_and(|r| r.watching.remove(target.id()).is_some());
        if removed {
            target.unwatch_from(self.id());
        }
    }

    /// Sends `msg` to self once after `delay`, replacing any timer with the same key.
    pub fn start_single_timer(&mut self, key: impl Into<TimerKey>, delay: Duration, msg: A::Msg) {
        let cell = self.cell().clone();
        self.rare()
            .timers
            .start_single(&cell, key.into(), delay, msg);
    }

    /// Sends `msg` to self every `interval`; a late tick delays the following ones.
    pub fn start_timer_with_fixed_delay(
        &mut self,
        key: impl Into<TimerKey>,
        interval: Duration,
        msg: A::Msg,
    ) where
        A::Msg: Clone,
    {
        let cell = self.cell().clone();
        self.rare()
            .timers
            .start_periodic(&cell, key.into(), interval, false, msg);
    }

    /// Sends `msg` to self every `interval`, catching up on missed ticks.
    pub fn start_timer_at_fixed_rate(
        &mut self,
        key: impl Into<TimerKey>,
        interval: Duration,
        msg: A::Msg,
    ) where
        A::Msg: Clone,
    {
        let cell = self.cell().clone();
        self.rare()
            .timers
            .start_periodic(&cell, key.into(), interval, true, msg);
    }

    /// Cancels a timer; a message it already queued is not delivered. False if none was
    /// active.
    pub fn cancel_timer(&mut self, key: impl Into<TimerKey>) -> bool {
        self.rare
            .as_mut()
            .is_some_and(|r| r.timers.cancel(&key.into()))
    }

    /// Whether a timer with this key is active.
    pub fn is_timer_active(&self, key: impl Into<TimerKey>) -> bool {
        self.rare
            .as_ref()
            .is_some_and(|r| r.timers.is_active(&key.into()))
    }

    /// Cancels every timer.
    pub fn cancel_all_timers(&mut self) {
        if let Some(r) = self.rare.as_mut() {
            r.timers.cancel_all();
        }
    }

    /// Sends `msg` to self whenever no message arrived for `after`; any message resets the
    /// clock.
    pub fn set_receive_timeout(&mut self, after: Duration, msg: A::Msg)
    where
        A::Msg: Clone + Sync,
    {
        self.rare().receive_timeout = Some(ReceiveTimeout {
            after,
            deadline: Instant::now() + after,
            make: Box::new(move || msg.clone()),
        });
    }

    /// Cancels the receive timeout.
    pub fn cancel_receive_timeout(&mut self) {
        if let Some(r) = self.rare.as_mut() {
            r.receive_timeout = None;
        }
    }

    /// Keeps `msg` for later ([`Context::unstash_all`]).
    ///
    /// # Errors
    /// [`StashFull`] with the message when the stash holds its capacity
    /// ([`Props::with_stash_capacity`]).
    pub fn stash(&mut self, msg: A::Msg) -> Result<(), StashFull<A::Msg>> {
        let capacity = self.props.stash_capacity;
        let stash = &mut self.rare().stash;
        if stash.len() >= capacity {
            return Err(StashFull {
                capacity,
                message: msg,
            });
        }
        stash.push_back(msg);
        Ok(())
    }

    /// Puts every stashed message in front of the mailbox, in the order they were stashed.
    pub fn unstash_all(&mut self) {
        if let Some(r) = self.rare.as_mut() {
            while let Some(m) = r.stash.pop_back() {
                r.front.push_front(m);
            }
        }
    }

    /// How many messages are stashed.
    pub fn stash_len(&self) -> usize {
        self.rare.as_ref().map_or(0, |r| r.stash.len())
    }

    /// Runs `future` outside the actor and sends `map(output)` to self when it completes, so
    /// the actor never awaits inline (if the actor has stopped, the message is a dead letter).
    pub fn pipe_to_self<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
        map: impl FnOnce(T) -> A::Msg + Send + 'static,
    ) {
        let me = self.myself.clone();
        tokio::spawn(async move {
            let out = future.await;
            me.tell(map(out));
        });
    }
}
