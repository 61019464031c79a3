//! The run loop of one actor, written as an explicit state machine:
//!
//! ```text
//!   start ──ok──> Running ──failure──> Suspended ──Resume──> Running
//!     │             │  ▲                  │ Restart
//!   failure         │  └──ok── Restarting <┘ (also on an all-for-one sibling restart)
//!     ▼             │            │ failure -> Suspended
//!  Suspended      stop ──────> Stopping ──> children stopped, `stopped` hook, Terminated out
//! ```
//!
//! System messages are drained before every user message. While suspended, an actor processes
//! only system messages, so the parent's directive decides what happens to the rest of the
//! mailbox.

use std::any::Any;
use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures_util::FutureExt;
use futures_util::future::Either;
use tokio::time::Instant;

use crate::actor::Actor;
use crate::cell::{CellHandle, LocalCell, SystemMsg};
use crate::context::Context;
use crate::death_watch::{Terminated, WatchMode};
use crate::dispatcher::RunLoop;
use crate::error::ActorResult;
use crate::event_stream::DeadLetterReason;
use crate::mailbox::Envelope;
use crate::path::ActorId;
use crate::props::{Recipe, RecipeParts};
use crate::supervision::{
    Directive, Failure, FailureCause, FailurePhase, RestartStats, StrategyKind,
};

/// What an actor's run loop is made from on its first run (see [`crate::dispatcher::Task`]):
/// its recipe, seen without the actor's type.
pub(crate) trait MakeRunLoop<M>: Send + Sync + 'static {
    /// The run loop of the actor in `cell`.
    fn run_loop(self: Arc<Self>, cell: Arc<LocalCell<M>>) -> RunLoop;
}

impl<A: Actor> MakeRunLoop<A::Msg> for RecipeParts<A> {
    fn run_loop(self: Arc<Self>, cell: Arc<LocalCell<A::Msg>>) -> RunLoop {
        Box::pin(Runner::new(Context::new(cell, Recipe(self))).run())
    }
}

/// Where the run loop is.
enum State {
    Running,
    Suspended(Failure),
    Restarting(Failure),
    Stopping,
}

/// How many messages an actor handles in a row before it lets other actors run (Akka's
/// dispatcher *throughput*): an actor that always has mail (one that tells itself, say) would
/// otherwise keep its worker for good.
pub(crate) const THROUGHPUT: u32 = 64;

/// Lets the actors queued behind this one run: wakes itself and is ready on the next poll.
struct YieldTurn(bool);

impl Future for YieldTurn {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

pub(crate) struct Runner<A: Actor> {
    ctx: Context<A>,
    /// Messages handled since this actor last gave up its turn.
    in_a_row: u32,
    /// Envelopes taken from the mailbox in one swap, processed before the next swap.
    batch: VecDeque<Envelope<A::Msg>>,
    actor: Option<A>,
    /// Bookkeeping for failures and system messages, allocated on first use.
    cold: Option<Box<Cold>>,
}

/// Runner state that only failures and system messages need.
#[derive(Default)]
struct Cold {
    /// System messages taken from the queue but left for the next state to handle.
    deferred: VecDeque<SystemMsg>,
    /// Children whose failure this actor escalated; resumed if this actor is resumed.
    escalated: Vec<Arc<dyn CellHandle>>,
    /// A stop that arrived while restarting.
    stop_pending: bool,
}

pub(crate) fn panic_message(payload: Box<dyn Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// Waits until a system message is queued (the mailbox's wait flag is shared with
/// `next_batch`; the run loop always runs with its cell's waker).
async fn system_pending<M: Send + 'static>(cell: &LocalCell<M>) {
    std::future::poll_fn(|_| cell.mailbox.poll_until(|| cell.core.has_system())).await
}

impl<A: Actor> Runner<A> {
    pub(crate) fn new(ctx: Context<A>) -> Self {
        Runner {
            ctx,
            in_a_row: 0,
            batch: VecDeque::new(),
            actor: None,
            cold: None,
        }
    }

    /// Runs the actor to its end. Only `process` is awaited inline: the cold states are
    /// boxed so that an idle actor's task stays small.
    ///
    /// Not an `async fn`: the generator of an `async fn` keeps a by-value argument twice (the
    /// argument and the local it is moved into), which for the 120-byte runner would push
    /// every actor's task past tokio's 512-byte size class. An `async move` block that uses
    /// its capture in place keeps one copy.
    pub(crate) fn run(self) -> impl Future<Output = ()> + Send + 'static {
        let mut runner = self;
        async move {
            // Hooks are guarded one by one; this catches a panic anywhere else (user code the
            // runtime calls outside a hook, or a runtime bug) so the actor still stops cleanly
            // and its watchers and parent hear of it.
            if let Err(p) = AssertUnwindSafe(runner.states()).catch_unwind().await {
                tracing::error!(
                    actor = %runner.ctx.id(),
                    panic = %panic_message(p),
                    "panic outside a hook; stopping the actor"
                );
            }
            Box::pin(runner.finish()).await;
        }
    }

    /// Moves the actor from state to state until it stops. Not an `async fn`, as `run` is
    /// not: an `async fn` keeps two copies of `self` in its future, this block one.
    #[allow(clippy::manual_async_fn)] // an `async fn` would keep `self` twice
    fn states(&mut self) -> impl Future<Output = ()> + Send + '_ {
        async move {
            let mut state = Box::pin(self.start()).await;
            loop {
                // `state` is moved whole before every await: a value kept across one, even a
                // partly moved one, would sit in every idle actor's run loop
                match state {
                    State::Running => {
                        drop(state);
                        state = self.process().await;
                    }
                    State::Stopping => break,
                    cold => state = Box::pin(self.cold_state(cold)).await,
                }
            }
        }
    }

    /// A suspended or restarting actor's way back (or out), boxed by the caller.
    async fn cold_state(&mut self, state: State) -> State {
        match state {
            State::Suspended(f) => self.suspended(f).await,
            State::Restarting(f) => self.restart(f).await,
            other => other,
        }
    }

    /// Drops the instance; a panicking `Drop` is logged, not propagated.
    fn drop_actor(&mut self) {
        let actor = self.actor.take();
        if let Err(p) = std::panic::catch_unwind(AssertUnwindSafe(move || drop(actor))) {
            tracing::error!(actor = %self.ctx.id(), panic = %panic_message(p), "actor's Drop panicked");
        }
    }

    fn cold(&mut self) -> &mut Cold {
        self.cold.get_or_insert_with(Default::default)
    }

    fn failure(&self, cause: FailureCause, phase: FailurePhase) -> Failure {
        Failure::new(self.ctx.path().clone(), cause, phase)
    }

    /// Awaits a hook, turning an `Err` or a panic into a [`FailureCause`].
    ///
    /// A combinator rather than an `async fn`, which would store the hook's future twice.
    fn guarded(
        fut: impl Future<Output = ActorResult>,
    ) -> impl Future<Output = Result<(), FailureCause>> {
        AssertUnwindSafe(fut).catch_unwind().map(|r| match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(FailureCause::Error(e)),
            Err(p) => Err(FailureCause::Panic(panic_message(p))),
        })
    }

    /// Makes a fresh instance from the props.
    fn create(&mut self) -> Result<(), Failure> {
        let props = &self.ctx.props;
        match std::panic::catch_unwind(AssertUnwindSafe(|| props.create())) {
            Ok(a) => {
                self.actor = Some(a);
                Ok(())
            }
            Err(p) => Err(self.failure(FailureCause::Panic(panic_message(p)), FailurePhase::Start)),
        }
    }

    async fn start(&mut self) -> State {
        if let Err(f) = self.create() {
            return State::Suspended(f);
        }
        let Some(actor) = self.actor.as_mut() else {
            return State::Stopping;
        };
        match Self::guarded(actor.started(&mut self.ctx)).await {
            Ok(()) => State::Running,
            Err(c) => State::Suspended(self.failure(c, FailurePhase::Start)),
        }
    }

    /// Runs the `handle` hook on one message; the caller turns a cause into a [`Failure`].
    ///
    /// A combinator rather than an `async fn`, which would store the message twice.
    fn handle(
        &mut self,
        msg: A::Msg,
    ) -> impl Future<Output = Result<(), FailureCause>> + Send + '_ {
        match self.actor.as_mut() {
            Some(actor) => Either::Left(Self::guarded(actor.handle(msg, &mut self.ctx))),
            None => Either::Right(std::future::ready(Ok(()))),
        }
    }

    /// Delivers a termination signal according to the watch mode.
    async fn signal(&mut self, id: ActorId, was_child: bool) -> Result<(), Failure> {
        let mode = self
            .ctx
            .rare
            .as_mut()
            .and_then(|r| r.watching.remove(&id))
            .map(|w| w.mode);
        match mode {
            Some(WatchMode::Message(m)) => self
                .handle(m)
                .await
                .map_err(|c| self.failure(c, FailurePhase::Message)),
            Some(WatchMode::Signal) => self.terminated_hook(id).await,
            None if was_child => self.terminated_hook(id).await,
            None => Ok(()),
        }
    }

    async fn terminated_hook(&mut self, id: ActorId) -> Result<(), Failure> {
        let Some(actor) = self.actor.as_mut() else {
            return Ok(());
        };
        Self::guarded(actor.terminated(Terminated::new(id), &mut self.ctx))
            .await
            .map_err(|c| self.failure(c, FailurePhase::Message))
    }

    /// Removes a terminated child from the children; true if it was one.
    fn child_terminated(&mut self, id: &ActorId) -> bool {
        let mut children = self.ctx.cell().core.children.lock();
        let name = id.path().name_bytes();
        let is_child = id.path().parent() == Some(self.ctx.path())
            && children.get(name).is_some_and(|c| c.core().id == *id);
        if is_child {
            children.remove(name);
            drop(children);
            if let Some(r) = self.ctx.rare.as_mut() {
                r.restart_stats.remove(id);
            }
            if let Some(c) = self.cold.as_mut() {
                c.escalated.retain(|c| c.core().id != *id);
            }
        }
        is_child
    }

    /// Books a terminated actor (a child leaves the children at once) and queues its signal
    /// behind the messages already in the mailbox: the dead actor's last messages to us
    /// arrive before its `Terminated`.
    fn queue_signal(&mut self, actor: ActorId) {
        let was_child = self.child_terminated(&actor);
        self.ctx
            .cell()
            .push_signal(Envelope::Signal { actor, was_child });
    }

    /// Deferred messages first, then the queue.
    fn take_system(&mut self) -> VecDeque<SystemMsg> {
        let mut msgs = self
            .cold
            .as_mut()
            .map(|c| std::mem::take(&mut c.deferred))
            .unwrap_or_default();
        if self.ctx.cell().core.has_system() {
            msgs.extend(self.ctx.cell().core.take_system());
        }
        msgs
    }

    /// Handles system messages while running; `Some` on a change of state.
    fn system_while_running(&mut self) -> Option<State> {
        let mut msgs = self.take_system();
        while let Some(msg) = msgs.pop_front() {
            let next = match msg {
                SystemMsg::Stop => Some(State::Stopping),
                SystemMsg::Restart(f) => Some(State::Restarting(f)),
                SystemMsg::Resume => None,
                SystemMsg::Failed { child, failure } => self.supervise(child, failure),
                SystemMsg::Terminated(id) => {
                    self.queue_signal(id);
                    None
                }
            };
            if next.is_some() {
                self.cold().deferred.extend(msgs);
                return next;
            }
        }
        None
    }

    /// Handles messages while the actor runs; returns the state it leaves running for. Not
    /// an `async fn`: one copy of `self` in the future (see [`Runner::states`]).
    #[allow(clippy::manual_async_fn)] // an `async fn` would keep `self` twice
    fn process(&mut self) -> impl Future<Output = State> + Send + '_ {
        async move {
            'messages: loop {
                if (self.ctx.cell().core.has_system()
                    || self.cold.as_ref().is_some_and(|c| !c.deferred.is_empty()))
                    && let Some(next) = self.system_while_running()
                {
                    return next;
                }
                if self.ctx.cell().core.stop_requested.load(Ordering::Relaxed) {
                    return State::Stopping;
                }
                let front = self.ctx.rare.as_mut().and_then(|r| r.front.pop_front());
                let msg = 'msg: {
                    if let Some(m) = front {
                        break 'msg m;
                    }
                    // A termination signal is awaited after the envelope's scope ends: an await
                    // in its scope would keep the envelope in every idle actor's run loop.
                    let (actor, was_child) = {
                        // not a `match` on `pop_front()`: its scrutinee would live across the
                        // await below, 40 bytes in every idle actor (an `if let`'s is dropped
                        // before its `else`)
                        let env = if let Some(env) = self.batch.pop_front() {
                            env
                        } else {
                            self.next_batch().await;
                            match self.batch.pop_front() {
                                Some(env) => env,
                                // woken for a system message
                                None => continue 'messages,
                            }
                        };
                        match env {
                            Envelope::User(m) => break 'msg m,
                            Envelope::Timer {
                                key,
                                generation,
                                msg,
                            } => {
                                let current = self
                                    .ctx
                                    .rare
                                    .as_mut()
                                    .is_some_and(|r| r.timers.accept(&key, generation));
                                if !current {
                                    continue 'messages;
                                }
                                break 'msg msg;
                            }
                            Envelope::PoisonPill => return State::Stopping,
                            Envelope::TimerDropped { key, generation } => {
                                if let Some(r) = self.ctx.rare.as_mut() {
                                    r.timers.accept(&key, generation);
                                }
                                continue 'messages;
                            }
                            Envelope::Signal { actor, was_child } => (actor, was_child),
                        }
                    };
                    if let Err(f) = Box::pin(self.signal(actor, was_child)).await {
                        return State::Suspended(f);
                    }
                    continue 'messages;
                };
                if let Some(rt) = self
                    .ctx
                    .rare
                    .as_mut()
                    .and_then(|r| r.receive_timeout.as_mut())
                {
                    rt.deadline = Instant::now() + rt.after;
                }
                if let Err(c) = self.handle(msg).await {
                    return State::Suspended(self.failure(c, FailurePhase::Message));
                }
                crate::dispatcher::note_handled();
                self.in_a_row += 1;
                if self.in_a_row >= THROUGHPUT {
                    self.in_a_row = 0;
                    YieldTurn(false).await;
                }
            }
        }
    }

    /// Waits until the mailbox has envelopes (moved into `batch`), a system message is
    /// waiting, or the receive timeout fires (its message is then put in `batch`).
    ///
    /// Not an `async fn`: without a receive timeout the wait is a bare poll of the mailbox, so
    /// the run loop of an idle actor, which waits here, holds two pointers for it.
    fn next_batch(&mut self) -> impl Future<Output = ()> + Send + '_ {
        let timed = self
            .ctx
            .rare
            .as_ref()
            .is_some_and(|r| r.receive_timeout.is_some());
        if timed {
            // boxed: the timer is only in the task of an actor that uses a receive timeout
            return Either::Right(Box::pin(self.next_batch_timed()));
        }
        let Runner { ctx, batch, .. } = self;
        Either::Left(std::future::poll_fn(move |_| {
            let cell = ctx.cell();
            cell.mailbox.poll_batch(batch, || cell.core.has_system())
        }))
    }

    /// [`Runner::next_batch`] with a receive timeout.
    async fn next_batch_timed(&mut self) {
        let Runner { ctx, batch, .. } = self;
        let Some(deadline) = ctx
            .rare
            .as_ref()
            .and_then(|r| r.receive_timeout.as_ref())
            .map(|rt| rt.deadline)
        else {
            return;
        };
        let cell = ctx.cell();
        let poll =
            std::future::poll_fn(|_| cell.mailbox.poll_batch(batch, || cell.core.has_system()));
        let timed_out = tokio::select! {
            biased;
            () = poll => false,
            () = tokio::time::sleep_until(deadline) => true,
        };
        if timed_out
            && let Some(rt) = self
                .ctx
                .rare
                .as_ref()
                .and_then(|r| r.receive_timeout.as_ref())
        {
            self.batch.push_back(Envelope::User((rt.make)()));
        }
    }

    /// Decides a child's failure with this actor's strategy; `Some` when this actor must fail
    /// itself (escalation).
    fn supervise(&mut self, child_id: ActorId, failure: Failure) -> Option<State> {
        let cell = self.ctx.cell().clone();
        let core = &cell.core;
        let child = core
            .children
            .lock()
            .get(child_id.path().name_bytes())
            .filter(|c| c.core().id == child_id)
            .cloned()?;
        let strategy = self.ctx.props.supervisor.clone();
        let strategy = &strategy;
        let mut directive = strategy.decide(&failure);
        let now = Instant::now();
        let mut delay = None;
        if directive == Directive::Restart {
            let stats = self
                .ctx
                .rare()
                .restart_stats
                .entry(child_id.clone())
                .or_insert_with(RestartStats::new);
            if !stats.request_restart(strategy, now) {
                tracing::warn!(child = %child_id, "restart limit exceeded; stopping the child");
                directive = Directive::Stop;
            } else if let Some(b) = strategy.backoff() {
                let attempt = stats.backoff_attempt(b, now);
                delay = Some(b.delay(attempt, core.system.inner.random_f64()));
            }
        }
        tracing::debug!(child = %child_id, ?directive, %failure, "supervisor decided");
        let targets = match (strategy.kind(), directive) {
            (StrategyKind::AllForOne, Directive::Restart | Directive::Stop) => core.child_list(),
            _ => vec![child.clone()],
        };
        match directive {
            Directive::Resume => child.send_system(SystemMsg::Resume),
            Directive::Restart => {
                for t in targets {
                    let msg = SystemMsg::Restart(failure.clone());
                    match delay {
                        None => t.send_system(msg),
                        Some(d) => {
                            tokio::spawn(async move {
                                tokio::time::sleep(d).await;
                                t.send_system(msg);
                            });
                        }
                    }
                }
            }
            Directive::Stop => {
                for t in targets {
                    t.send_system(SystemMsg::Stop);
                }
            }
            Directive::Escalate => {
                self.cold().escalated.push(child);
                return Some(State::Suspended(
                    failure.escalated_by(self.ctx.path().clone()),
                ));
            }
        }
        None
    }

    /// Reports the failure to the parent and waits for its directive.
    async fn suspended(&mut self, failure: Failure) -> State {
        if failure.is_panic() || failure.phase() != FailurePhase::Escalated {
            tracing::error!(actor = %self.ctx.id(), %failure, "actor failed");
        }
        let core = &self.ctx.cell().core;
        match &core.parent {
            Some(p) => p.send_system(SystemMsg::Failed {
                child: core.id.clone(),
                failure,
            }),
            None => return State::Stopping,
        }
        let mut keep = VecDeque::new();
        loop {
            let mut msgs = self.take_system();
            while let Some(msg) = msgs.pop_front() {
                let next = match msg {
                    SystemMsg::Resume => {
                        for c in std::mem::take(&mut self.cold().escalated) {
                            c.send_system(SystemMsg::Resume);
                        }
                        Some(State::Running)
                    }
                    SystemMsg::Restart(f) => Some(State::Restarting(f)),
                    SystemMsg::Stop => Some(State::Stopping),
                    SystemMsg::Terminated(id) => {
                        self.queue_signal(id);
                        None
                    }
                    m @ SystemMsg::Failed { .. } => {
                        keep.push_back(m);
                        None
                    }
                };
                if let Some(next) = next {
                    keep.extend(msgs);
                    self.cold().deferred = keep;
                    return next;
                }
            }
            system_pending(self.ctx.cell()).await;
        }
    }

    /// Stops every child and waits until all have terminated. A stop requested meanwhile is
    /// remembered in `stop_pending`.
    async fn stop_children(&mut self) {
        for c in self.ctx.cell().core.child_list() {
            c.send_system(SystemMsg::Stop);
        }
        while !self.ctx.cell().core.children.lock().is_empty() {
            let mut msgs = self.take_system();
            while let Some(msg) = msgs.pop_front() {
                match msg {
                    // children stopped here are not reported to the (next) instance;
                    // other watched actors are, after the restart
                    SystemMsg::Terminated(id) => {
                        if !self.child_terminated(&id) {
                            self.ctx.cell().push_signal(Envelope::Signal {
                                actor: id,
                                was_child: false,
                            });
                        }
                    }
                    SystemMsg::Stop => self.cold().stop_pending = true,
                    SystemMsg::Failed { .. } | SystemMsg::Resume | SystemMsg::Restart(_) => {}
                }
            }
            if self.ctx.cell().core.children.lock().is_empty() {
                break;
            }
            system_pending(self.ctx.cell()).await;
        }
    }

    async fn restart(&mut self, failure: Failure) -> State {
        if self.ctx.cell().core.stop_requested.load(Ordering::Relaxed) {
            // `ctx.stop()` was called before the failure: stop rather than restart
            return State::Stopping;
        }
        tracing::info!(actor = %self.ctx.id(), "restarting");
        if let Some(actor) = self.actor.as_mut() {
            let fut = actor.pre_restart(&failure, &mut self.ctx);
            if let Err(c) = Self::guarded(fut.map(|()| Ok(()))).await {
                tracing::error!(actor = %self.ctx.id(), cause = ?c, "pre_restart failed");
            }
        }
        self.stop_children().await;
        self.ctx.cancel_all_timers();
        self.ctx.cancel_receive_timeout();
        self.ctx
            .cell()
            .core
            .stop_requested
            .store(false, Ordering::Relaxed);
        self.ctx.unstash_all();
        self.drop_actor();
        if self.cold.as_ref().is_some_and(|c| c.stop_pending) {
            return State::Stopping;
        }
        if let Err(f) = self.create() {
            return State::Suspended(f);
        }
        let Some(actor) = self.actor.as_mut() else {
            return State::Stopping;
        };
        match Self::guarded(actor.post_restart(&failure, &mut self.ctx)).await {
            Ok(()) => State::Running,
            Err(c) => State::Suspended(self.failure(c, FailurePhase::Start)),
        }
    }

    /// Stops children, runs `stopped`, and tells watchers and the parent.
    async fn finish(mut self) {
        let core = &self.ctx.cell().core;
        core.stopping
            .store(true, std::sync::atomic::Ordering::Release);
        {
            let children = core.children.lock();
            core.close_children(&children);
        }
        self.stop_children().await;
        if let Some(actor) = self.actor.as_mut() {
            let fut = actor.stopped(&mut self.ctx).map(|()| Ok(()));
            if let Err(c) = Self::guarded(fut).await {
                tracing::error!(actor = %self.ctx.id(), cause = ?c, "stopped hook failed");
            }
        }
        self.drop_actor();
        self.ctx.cancel_all_timers();
        // leave no registration behind at the actors this one watched
        let cell = self.ctx.cell().clone();
        let core = &cell.core;
        let id = core.id.clone();
        if let Some(r) = self.ctx.rare.as_mut() {
            for (_, watch) in std::mem::take(&mut r.watching) {
                (watch.unwatch)(&id);
            }
        }

        let watchers = core.mark_dead();
        // a message's `Drop` is user code: a panic in one must neither keep the other messages
        // from dead letters nor the watchers and the parent from hearing of this stop (the
        // parent would wait for it for good)
        let dead_letter = |env: Envelope<A::Msg>| {
            let published = std::panic::catch_unwind(AssertUnwindSafe(|| {
                cell.dead_letter(env, DeadLetterReason::RecipientDead)
            }));
            if let Err(p) = published {
                tracing::error!(actor = %cell.core.id, panic = %panic_message(p), "dropping a message left in the mailbox panicked");
            }
        };
        if let Some(mut r) = self.ctx.rare.take() {
            for m in r.front.drain(..).chain(r.stash.drain(..)) {
                dead_letter(Envelope::User(m));
            }
        }
        for env in std::mem::take(&mut self.batch)
            .into_iter()
            .chain(cell.mailbox.close())
        {
            dead_letter(env);
        }
        core.system.inner.event_stream.unsubscribe_all(&id);
        tracing::debug!(actor = %id, "stopped");
        for w in watchers {
            w.send_system(SystemMsg::Terminated(id.clone()));
        }
        if let Some(p) = &core.parent {
            p.send_system(SystemMsg::Terminated(id));
        }
    }
}
