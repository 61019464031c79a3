//! The shared, type-erased part of a running actor: identity, system-message queue, children,
//! watchers. The run loop ([`crate::runner`]) owns the instance; refs and other actors reach it
//! only through this cell.

use std::any::Any;
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::task::{ArcWake, waker_ref};
use parking_lot::Mutex;

use crate::dispatcher::{RunOutcome, Task, drop_quietly};
use crate::error::TellError;
use crate::event_stream::DeadLetterReason;
use crate::mailbox::{Envelope, Mailbox, MailboxConfig, Pushed, Refused};
use crate::path::{ActorId, ActorPath};
use crate::runner::MakeRunLoop;
use crate::supervision::Failure;
use crate::system::ActorSystem;

/// Messages between the runtime and an actor's cell; handled before any user message.
pub(crate) enum SystemMsg {
    /// Stop now (after the handler in progress).
    Stop,
    /// A child failed and is suspended, waiting for a directive.
    Failed { child: ActorId, failure: Failure },
    /// Directive: continue with the next message.
    Resume,
    /// Directive: make a fresh instance.
    Restart(Failure),
    /// A watched actor (or a child) has terminated.
    Terminated(ActorId),
}

/// A child in its parent's ordered set of children, ordered by the child's name (the name
/// lives in the child's path, so the set holds no second copy of it, nor of the path). The
/// name's first eight bytes are kept in the entry, so that comparisons while spawning rarely
/// follow the pointer to the child.
#[derive(Clone)]
struct ChildEntry {
    prefix: u64,
    cell: Arc<dyn CellHandle>,
}

impl ChildEntry {
    fn new(cell: Arc<dyn CellHandle>) -> Self {
        let mut buf = [0u8; 8];
        let bytes = cell.core().id.path().name_bytes();
        let n = bytes.len().min(8);
        buf[..n].copy_from_slice(&bytes[..n]);
        // big-endian: integer order is the order of the bytes (names hold no NUL bytes, so
        // the zero padding sorts a name before its extensions, as byte order does)
        ChildEntry {
            prefix: u64::from_be_bytes(buf),
            cell,
        }
    }

    #[inline]
    fn name(&self) -> &[u8] {
        self.cell.core().id.path().name_bytes()
    }
}

impl std::borrow::Borrow<[u8]> for ChildEntry {
    fn borrow(&self) -> &[u8] {
        self.name()
    }
}

impl PartialEq for ChildEntry {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.prefix == other.prefix && self.name() == other.name()
    }
}

impl Eq for ChildEntry {}

impl PartialOrd for ChildEntry {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ChildEntry {
    // inlined into the B-tree's search loop, which compares a new generated name against
    // every key on the rightmost path
    #[inline]
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // UTF-8 byte order is code point order, the same as `str`'s
        self.prefix
            .cmp(&other.prefix)
            .then_with(|| self.name().cmp(other.name()))
    }
}

/// The children of a cell by name, and the count of generated names, allocated with the first
/// child: most actors never spawn one, and keeping both in every cell would cost each actor
/// 24 more bytes. A name stays taken until the parent has processed the child's termination.
#[derive(Default)]
pub(crate) struct Children(Option<Box<ChildrenInner>>);

#[derive(Default)]
struct ChildrenInner {
    by_name: BTreeSet<ChildEntry>,
    /// How many names have been generated (see [`CellCore::generated_child_path`]).
    generated: u64,
}

impl Children {
    /// The child named `name`.
    pub(crate) fn get(&self, name: &[u8]) -> Option<&Arc<dyn CellHandle>> {
        self.0.as_ref()?.by_name.get(name).map(|e| &e.cell)
    }

    /// Removes the child named `name`.
    pub(crate) fn remove(&mut self, name: &[u8]) -> Option<Arc<dyn CellHandle>> {
        self.0.as_mut()?.by_name.take(name).map(|e| e.cell)
    }

    /// Whether there is no child.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|m| m.by_name.is_empty())
    }

    /// The children, by name.
    pub(crate) fn values(&self) -> impl Iterator<Item = &Arc<dyn CellHandle>> {
        self.0
            .iter()
            .flat_map(|m| m.by_name.iter().map(|e| &e.cell))
    }

    /// Adds a child; false (and `cell` dropped) when its name is taken.
    pub(crate) fn insert(&mut self, cell: Arc<dyn CellHandle>) -> bool {
        self.0
            .get_or_insert_default()
            .by_name
            .insert(ChildEntry::new(cell))
    }

    /// The number of the next generated name (the map is allocated here).
    fn next_generated(&mut self) -> u64 {
        let inner = self.0.get_or_insert_default();
        let n = inner.generated;
        inner.generated += 1;
        n
    }
}

/// System messages and watchers share one lock: a message to a dead cell and a watcher
/// registered after death are both decided under it, against [`CellCore::dead`].
#[derive(Default)]
struct SystemState {
    /// Taken all at once, so a `Vec` keeps the order (and is smaller than a `VecDeque`).
    queue: Vec<SystemMsg>,
    /// Allocated with the first watcher: most actors are watched by their parent only,
    /// which hears of their end by other means.
    #[allow(clippy::box_collection)] // the point: 8 bytes per cell instead of 24
    watchers: Option<Box<Vec<Arc<dyn CellHandle>>>>,
}

/// Identity and shared state of one actor incarnation.
pub(crate) struct CellCore {
    pub(crate) id: ActorId,
    pub(crate) system: ActorSystem,
    pub(crate) parent: Option<Arc<dyn CellHandle>>,
    sys: Mutex<SystemState>,
    sys_pending: AtomicBool,
    /// The actor has stopped for good. Set under the `sys` lock, so a system message or a
    /// watcher is decided against it there; it sits outside the lock's state only because
    /// there it would cost 8 bytes of padding per actor.
    dead: AtomicBool,
    pub(crate) children: Mutex<Children>,
    /// No more children: the actor is stopping. Set and read under the `children` lock (it
    /// sits outside the lock's state only because there it would cost 8 bytes per actor).
    children_closed: AtomicBool,
    /// Set when the actor starts its final stop; it takes no more messages.
    pub(crate) stopping: AtomicBool,
    /// `Context::stop` was called: stop after the current hook (only the actor's task
    /// touches it; an atomic keeps it out of the task's future).
    pub(crate) stop_requested: AtomicBool,
}

impl CellCore {
    pub(crate) fn new(
        id: ActorId,
        system: ActorSystem,
        parent: Option<Arc<dyn CellHandle>>,
    ) -> Self {
        CellCore {
            id,
            system,
            parent,
            sys: Mutex::new(SystemState::default()),
            sys_pending: AtomicBool::new(false),
            dead: AtomicBool::new(false),
            children: Mutex::new(Children::default()),
            children_closed: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            stop_requested: AtomicBool::new(false),
        }
    }

    /// Whether system messages are waiting (one relaxed load: the hot-path check).
    #[inline]
    pub(crate) fn has_system(&self) -> bool {
        self.sys_pending.load(Ordering::Acquire)
    }

    /// Takes every queued system message.
    pub(crate) fn take_system(&self) -> VecDeque<SystemMsg> {
        let mut st = self.sys.lock();
        self.sys_pending.store(false, Ordering::Release);
        VecDeque::from(std::mem::take(&mut st.queue))
    }

    /// Queues a system message; true when the queue was empty (the actor may need waking).
    fn push_system(&self, msg: SystemMsg) -> bool {
        let mut st = self.sys.lock();
        if self.dead.load(Ordering::Relaxed) {
            return false;
        }
        st.queue.push(msg);
        self.sys_pending.store(true, Ordering::Release);
        st.queue.len() == 1
    }

    /// A fresh generated child name. Names count *down* in byte order, so the newest child
    /// is always the first key of the parent's ordered children map: finding its place costs
    /// one comparison per tree level even with a million siblings (counting up, every
    /// insertion compared against every key on the tree's rightmost path).
    ///
    /// The name is `$`, a letter for the number of base-26 digits that follow (`z` = one,
    /// `y` = two, ...), then the digits written from `z` down (`z` = 0): `$zz`, `$zy`, ...
    /// `$za`, `$yyz`, ... Shorter names sort after longer ones because their length letter is
    /// greater, and names of one length sort by their digits, reversed.
    pub(crate) fn generated_child_path(&self) -> ActorPath {
        let mut n = self.children.lock().next_generated();
        // u64::MAX has 14 base-26 digits; two more bytes for `$` and the length letter
        let mut buf = [0u8; 16];
        let mut i = buf.len();
        loop {
            i -= 1;
            buf[i] = b'z' - (n % 26) as u8;
            n /= 26;
            if n == 0 {
                break;
            }
        }
        let digits = buf.len() - i;
        i -= 1;
        buf[i] = b'z' - (digits - 1) as u8;
        i -= 1;
        buf[i] = b'$';
        // only ASCII letters and '$' were written
        self.id.path().generated_child(&buf[i..])
    }

    /// Registers `watcher`; false when this actor is already dead (the caller signals at once).
    pub(crate) fn add_watcher(&self, watcher: Arc<dyn CellHandle>) -> bool {
        let mut w = self.sys.lock();
        if self.dead.load(Ordering::Relaxed) {
            return false;
        }
        let watchers = w.watchers.get_or_insert_default();
        if !watchers.iter().any(|x| x.core().id == watcher.core().id) {
            watchers.push(watcher);
        }
        true
    }

    pub(crate) fn remove_watcher(&self, watcher: &crate::path::ActorId) {
        if let Some(watchers) = self.sys.lock().watchers.as_mut() {
            watchers.retain(|x| x.core().id != *watcher);
        }
    }

    /// Marks the cell dead and returns the watchers to notify. Idempotent.
    pub(crate) fn mark_dead(&self) -> Vec<Arc<dyn CellHandle>> {
        let mut st = self.sys.lock();
        self.dead.store(true, Ordering::Release);
        st.queue.clear();
        st.watchers.take().map(|w| *w).unwrap_or_default()
    }

    pub(crate) fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Acquire)
    }

    /// Refuses children from now on (the caller holds the `children` lock).
    pub(crate) fn close_children(&self, _held: &Children) {
        self.children_closed.store(true, Ordering::Relaxed);
    }

    /// Whether children are refused (the caller holds the `children` lock).
    pub(crate) fn children_closed(&self, _held: &Children) -> bool {
        self.children_closed.load(Ordering::Relaxed)
    }

    pub(crate) fn child_list(&self) -> Vec<Arc<dyn CellHandle>> {
        self.children.lock().values().cloned().collect()
    }

    /// The runtime went away: refuses new children and drops the children, the watchers
    /// and the queued system messages. Each holds other cells, and every cell holds the
    /// system, whose root holds the tree: left alone, they would keep every actor alive.
    pub(crate) fn abandon(&self) {
        let children = {
            let mut children = self.children.lock();
            self.close_children(&children);
            std::mem::take(&mut *children)
        };
        let (queue, watchers) = {
            let mut st = self.sys.lock();
            (std::mem::take(&mut st.queue), st.watchers.take())
        };
        // outside the locks: the last ref to a cell drops its messages and recipe
        drop_quietly((children, queue, watchers), "an abandoned actor's links");
    }
}

/// A cell seen without its message type.
pub(crate) trait CellHandle: Send + Sync + 'static {
    /// The shared state.
    fn core(&self) -> &CellCore;
    /// Ends the run loop's wait for messages, if it waits: true when the caller must put
    /// the cell on the ready queue (see `send_system` on `dyn CellHandle`).
    fn rouse(&self) -> bool;
    /// The concrete cell, for a typed downcast.
    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;

    /// Queues a system message: true when the caller must put the cell on the ready queue.
    /// Use `send_system` on `dyn CellHandle`, which does.
    fn accept_system(&self, msg: SystemMsg) -> bool {
        self.core().push_system(msg) && self.rouse()
    }

    /// Polls the actor's run loop once (a dispatcher worker took the cell from the ready
    /// queue). Cells without a run loop (the root) do nothing.
    fn run_task(self: Arc<Self>) {}

    /// Drops the actor's run loop without running it further (the runtime is going away).
    fn discard_task(&self) {}

    /// The runtime went away and the run loop is dropped: lets go of every other actor this
    /// cell links to (see [`CellCore::abandon`]) and of its queued messages.
    fn abandon(&self) {
        self.core().abandon();
    }
}

impl dyn CellHandle {
    /// Queues a system message and wakes the actor.
    pub(crate) fn send_system(self: &Arc<Self>, msg: SystemMsg) {
        if self.accept_system(msg) {
            self.core().system.inner.dispatcher.schedule(self.clone());
        }
    }
}

/// A cell that takes messages of type `M`. It is also the actor's task: it holds the run
/// loop (the recipe it is made from, until the first run) and is the waker the run loop
/// runs with; its mailbox wakes it by queueing the cell (see [`crate::dispatcher`]).
pub(crate) struct LocalCell<M> {
    pub(crate) core: CellCore,
    pub(crate) mailbox: Mailbox<M>,
    pub(crate) task: Task<Arc<dyn MakeRunLoop<M>>>,
}

impl<M: Send + 'static> LocalCell<M> {
    /// A cell whose run loop `start` makes on the actor's first run.
    pub(crate) fn new(
        core: CellCore,
        mailbox: &MailboxConfig,
        start: Arc<dyn MakeRunLoop<M>>,
    ) -> Arc<Self> {
        Arc::new(LocalCell {
            core,
            mailbox: Mailbox::new(mailbox),
            task: Task::new(start),
        })
    }

    /// Puts the cell on the ready queue unless it is queued or running already.
    #[inline]
    pub(crate) fn schedule(self: &Arc<Self>) {
        if self.task.notify() {
            self.core.system.inner.dispatcher.schedule(self.clone());
        }
    }

    /// Queues an envelope under the mailbox's overflow policy, rousing the run loop if it
    /// waits for it (see [`Mailbox::push`]).
    #[inline]
    pub(crate) fn push(self: &Arc<Self>, env: Envelope<M>) -> Result<Pushed<M>, Refused<M>> {
        self.mailbox.push(env, || self.schedule())
    }

    /// Queues a signal whatever the bound (see [`Mailbox::push_signal`]).
    pub(crate) fn push_signal(self: &Arc<Self>, env: Envelope<M>) {
        self.mailbox.push_signal(env, || self.schedule());
    }

    /// Queues a system message and wakes the actor.
    pub(crate) fn send_system(self: &Arc<Self>, msg: SystemMsg) {
        if self.accept_system(msg) {
            self.core.system.inner.dispatcher.schedule(self.clone());
        }
    }

    /// Enqueues an envelope following the mailbox's overflow policy. Messages the policy
    /// drops go to dead letters here (pills and signals are never dropped by a policy). The
    /// error carries an envelope that was not taken.
    #[inline]
    pub(crate) fn enqueue(
        self: &Arc<Self>,
        env: Envelope<M>,
    ) -> Result<(), TellError<Envelope<M>>> {
        match self.push(env) {
            Ok(Pushed::Queued) => Ok(()),
            Ok(Pushed::DroppedNew(env)) | Ok(Pushed::Evicted(env)) => {
                self.dead_letter(env, DeadLetterReason::MailboxFull);
                Ok(())
            }
            Err(Refused::Closed(env)) => Err(TellError::Dead(env)),
            Err(Refused::Full(env)) => Err(TellError::MailboxFull(env)),
        }
    }

    /// Queues an envelope if it fits; drops it (and anything the policy evicts) silently
    /// otherwise. True when it was queued.
    pub(crate) fn offer(self: &Arc<Self>, env: Envelope<M>) -> bool {
        matches!(self.push(env), Ok(Pushed::Queued | Pushed::Evicted(_)))
    }

    /// Publishes an envelope's message (if any) as a dead letter.
    pub(crate) fn dead_letter(&self, env: Envelope<M>, reason: DeadLetterReason) {
        if let Some(m) = env.into_message() {
            self.core
                .system
                .inner
                .dead_letter(self.core.id.path().clone(), m, reason);
        }
    }
}

impl<M: Send + 'static> CellHandle for LocalCell<M> {
    fn core(&self) -> &CellCore {
        &self.core
    }

    fn rouse(&self) -> bool {
        self.mailbox.take_waiting() && self.task.notify()
    }

    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }

    fn run_task(self: Arc<Self>) {
        let waker = waker_ref(&self);
        let outcome = self.task.run(&waker, |start| start.run_loop(self.clone()));
        if outcome == RunOutcome::Requeue {
            self.core.system.inner.dispatcher.schedule(self.clone());
        }
    }

    fn discard_task(&self) {
        self.task.discard();
    }

    fn abandon(&self) {
        self.core.abandon();
        // closed: a tell from here on is refused as to a dead actor
        drop_quietly(self.mailbox.close(), "an abandoned actor's messages");
    }
}

/// The run loop's waker: a wake puts the cell on the system's ready queue once.
impl<M: Send + 'static> ArcWake for LocalCell<M> {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.schedule();
    }
}
