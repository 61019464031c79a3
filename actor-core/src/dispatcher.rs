//! The dispatcher: actors are tasks of their own, run by a few tokio tasks per system.
//!
//! An actor's run loop is an ordinary future, but it is not spawned as a tokio task. Its
//! cell holds it ([`Task`]) and is its own waker: waking an idle actor puts its cell on the
//! system's ready queue, and one of the system's *workers* (one tokio task per runtime
//! worker thread) polls it. This is Akka's dispatcher model on top of tokio, and it is what
//! makes spawning cheap: a spawn allocates the cell, registers nowhere but in the parent's
//! children, and wakes no runtime thread while the workers are busy. The boxed run loop
//! (8-byte aligned, where a tokio task is 128-byte aligned) is made from the recipe the cell
//! keeps by the worker that first runs the actor, as Akka makes the actor instance on its
//! dispatcher: a task spawning many actors hands that work to the other worker threads
//! (measured in alternating runs on two cores: 1.28-1.51 against 0.85-1.21 M spawns/s from
//! a plain task on the multi-thread runtime, every actor started when the spawning loop
//! ended). Against one tokio task per actor, measured on
//! two cores in alternating runs when this model came in: spawns 1.07-1.43 against
//! 0.87-1.14 M/s on a current-thread runtime and 0.68-1.04 against 0.50-0.70 M/s on a
//! multi-thread one, 750 against 933 bytes per idle actor (the README has the current
//! figures, which later work on the cell and the run loop improved).
//!
//! Wakes from inside a worker: an actor woken by an actor the worker runs goes to the ready
//! queue, not straight to a parked worker, and at most one parked worker is woken per poll
//! of the running worker (more when that poll ends). tokio puts a task woken from one of
//! its worker threads in that thread's LIFO slot, which no other thread may steal from, so a
//! no-op task is spawned behind the woken worker to push it out where an idle thread can
//! steal it (see `Dispatcher::unpark_from_worker`): a handler that wakes an actor and then
//! blocks its thread does not hold up the rest of the system, nor that actor when it blocks
//! in `block_in_place`. Blocking plainly, the woken worker sits in the blocked thread's run
//! queue, which tokio drains only when another thread happens to look: nearly always, not
//! guaranteed.
//!
//! Wakes from plain tasks: a tokio task (not an actor) that wakes idle actors, by spawning
//! or telling them, wakes one parked worker and queues the next actors behind it while that
//! worker has not run yet, up to [`LAZY_BATCH`] of them. Woken from a runtime thread, the
//! worker waits in that thread's LIFO slot until the task's poll ends, as any tokio task
//! woken there does; a worker woken per actor instead would push the previous one out and
//! wake an idle runtime thread every time, a system call that took a fifth of a spawning
//! task's time. Past the batch, the next wake pushes the first worker out to where an idle
//! thread steals it, so a long poll holds up at most a batch of actors. The first
//! [`EAGER_WAKES`] wakes after a worker's still wake another worker each, so a task that wakes
//! a few actors and then keeps its thread still gets them run.
//!
//! Fairness: an actor gives up its turn after [`crate::runner::THROUGHPUT`] messages in a
//! row (Akka's dispatcher throughput), and a worker hands control back to tokio after
//! [`YIELD_AFTER`] actor runs or [`MESSAGES_PER_POLL`] messages, or sooner when tokio's
//! cooperative budget is spent (actors awaiting tokio resources use it), so other tokio tasks
//! on the same thread keep running. A worker takes a few ready actors
//! at a time ([`TAKE_AT_MOST`]), so one that blocks its thread holds back only those few
//! (and a cell handed to it in the moment it found work instead of parking).
//!
//! Shutdown: when the system terminates, the workers finish what is queued and end. When the
//! runtime is dropped first, the first worker dropped walks the actor tree and drops every
//! actor's run loop, as tokio does with its tasks, so each actor's `Drop` still runs; a run
//! loop being polled on another thread meanwhile is dropped by its worker when the poll
//! returns, and one woken or spawned afterwards is dropped at once.

use std::cell::{Cell, UnsafeCell};
use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context as TaskContext, Poll, Waker};

use parking_lot::Mutex;

use crate::cell::CellHandle;
use crate::system::SystemInner;

/// A worker gives tokio a turn after this many actor runs in one poll...
pub(crate) const YIELD_AFTER: usize = 64;

/// ...or after its actors handled this many messages, whichever comes first, so that one poll
/// of a worker stays as short as a well-behaved tokio task's.
pub(crate) const MESSAGES_PER_POLL: u32 = 256;

thread_local! {
    /// Messages handled on this thread since the running worker's poll began.
    static HANDLED: Cell<u32> = const { Cell::new(0) };
    /// The address of the dispatcher whose worker this thread is polling (0: none).
    static POLLING: Cell<usize> = const { Cell::new(0) };
    /// That worker has woken a parked one during this poll.
    static UNPARKED: Cell<bool> = const { Cell::new(false) };
    /// The dispatcher (address) and worker this thread last woke from outside any worker,
    /// and how many wakes this thread has made since without waking another worker.
    static WOKEN: Cell<(usize, usize, usize)> = const { Cell::new((0, 0, 0)) };
}

/// Marks this thread as polling a worker of `dispatcher` until dropped.
struct PollingGuard {
    before: usize,
    unparked_before: bool,
}

impl PollingGuard {
    fn enter(dispatcher: &Dispatcher) -> Self {
        PollingGuard {
            before: POLLING.with(|p| p.replace(dispatcher.addr())),
            unparked_before: UNPARKED.with(|u| u.replace(false)),
        }
    }
}

impl Drop for PollingGuard {
    fn drop(&mut self) {
        POLLING.with(|p| p.set(self.before));
        UNPARKED.with(|u| u.set(self.unparked_before));
    }
}

/// Counts one handled message against the running worker's poll (called by the run loop).
#[inline]
pub(crate) fn note_handled() {
    HANDLED.with(|h| h.set(h.get().wrapping_add(1)));
}

/// A plain task queues at most this many ready actors behind a worker it woke that has not
/// run yet before it wakes another (see `Dispatcher::schedule_from_task`).
pub(crate) const LAZY_BATCH: usize = 256;

/// The first this many wakes a plain task makes after waking a worker still wake a parked
/// worker each (see `Dispatcher::schedule_from_task`).
pub(crate) const EAGER_WAKES: usize = 8;

/// A worker takes at most this many ready actors from the shared queue at once.
pub(crate) const TAKE_AT_MOST: usize = 8;

/// An actor's run loop, boxed.
pub(crate) type RunLoop = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

// Task states. Only a worker moves a task out of SCHEDULED (to RUNNING) and out of RUNNING,
// except `discard`, which moves any state to DONE (the runtime is going away).
/// Waiting for a wake.
const IDLE: u8 = 0;
/// On the ready queue (or about to be queued by the spawner); further wakes are no-ops.
const SCHEDULED: u8 = 1;
/// Being polled.
const RUNNING: u8 = 2;
/// Woken while being polled: queued again when the poll returns.
const NOTIFIED: u8 = 3;
/// The run loop finished (or was dropped); wakes are ignored.
const DONE: u8 = 4;

/// What a run of a task asks of the worker.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RunOutcome {
    /// It waits for a wake.
    Idle,
    /// It was woken while running: queue it again.
    Requeue,
    /// It finished.
    Done,
}

/// An actor's run loop and its scheduling state, kept in the actor's cell. The run loop is
/// made on the actor's first run, by the worker that runs it, from what the spawner left
/// (`S`, the actor's recipe): a spawn allocates no run loop and does not build one.
pub(crate) struct Task<S> {
    state: AtomicU8,
    /// What runs. Only its current owner touches it, and the state says who that is: the
    /// worker that moved the state from SCHEDULED to RUNNING, until it moves it out of
    /// RUNNING or NOTIFIED; and whoever moved the state from IDLE or SCHEDULED to DONE
    /// ([`Task::discard`]). Each move is an acquire-release operation on `state`, so every
    /// owner sees what the one before it wrote. (A mutex here cost 8 bytes per actor and a
    /// lock per run.)
    body: UnsafeCell<Body<S>>,
}

/// A task's body: the recipe until the first run, then the run loop.
enum Body<S> {
    /// Not run yet: what the run loop is made from.
    Unstarted(S),
    /// Made on the first run.
    Started(RunLoop),
    /// Finished or dropped.
    Gone,
}

// SAFETY: `body` is only touched by the owner the state designates (see the field), and
// ownership passes only through acquire-release operations on `state`; `S` is `Send`, so it
// may be dropped or used on whichever thread owns the body.
unsafe impl<S: Send> Sync for Task<S> {}

impl<S: Send> Task<S> {
    /// A task to be made from `start` on its first run; the spawner queues it (it is
    /// SCHEDULED, so wakes before that are no-ops).
    pub(crate) fn new(start: S) -> Self {
        Task {
            state: AtomicU8::new(SCHEDULED),
            body: UnsafeCell::new(Body::Unstarted(start)),
        }
    }

    /// Records a wake; true when the caller must put the cell on the ready queue.
    #[inline]
    pub(crate) fn notify(&self) -> bool {
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            let next = match state {
                IDLE => SCHEDULED,
                RUNNING => NOTIFIED,
                _ => return false,
            };
            match self
                .state
                .compare_exchange_weak(state, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return next == SCHEDULED,
                Err(now) => state = now,
            }
        }
    }

    /// Takes the body out. The caller must own it (see the `body` field).
    fn take_owned(&self) -> Body<S> {
        // SAFETY: the callers own the body: a worker that moved the state to RUNNING and
        // has not moved it on, or `discard` after moving the state from IDLE or SCHEDULED
        unsafe { std::mem::replace(&mut *self.body.get(), Body::Gone) }
    }

    /// Polls the run loop once with `waker`, making it with `start` on the first run. Called
    /// only by a worker, for a queued task.
    pub(crate) fn run(&self, waker: &Waker, start: impl FnOnce(S) -> RunLoop) -> RunOutcome {
        if self
            .state
            .compare_exchange(SCHEDULED, RUNNING, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            // discarded while it was queued (the runtime is going away)
            return RunOutcome::Done;
        }
        // SAFETY: this worker moved the state to RUNNING, so it owns the body until it
        // moves the state on; the borrow ends before that (each arm below)
        let body = unsafe { &mut *self.body.get() };
        let mut cx = TaskContext::from_waker(waker);
        // the run loop catches panics in hooks itself; this guards the worker against one
        // anywhere else, as tokio guards its worker threads against a panicking task
        let polled = std::panic::catch_unwind(AssertUnwindSafe(|| {
            if let Body::Unstarted(_) = body {
                let Body::Unstarted(recipe) = std::mem::replace(body, Body::Gone) else {
                    unreachable!("matched just above")
                };
                *body = Body::Started(start(recipe));
            }
            match body {
                Body::Started(run_loop) => run_loop.as_mut().poll(&mut cx),
                _ => Poll::Ready(()),
            }
        }));
        match polled {
            Ok(Poll::Pending) => {
                match self.state.compare_exchange(
                    RUNNING,
                    IDLE,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => RunOutcome::Idle,
                    Err(NOTIFIED)
                        if self
                            .state
                            .compare_exchange(
                                NOTIFIED,
                                SCHEDULED,
                                Ordering::AcqRel,
                                Ordering::Acquire,
                            )
                            .is_ok() =>
                    {
                        RunOutcome::Requeue
                    }
                    Err(_) => {
                        // discarded while it ran: `discard` left the body to us
                        drop_quietly(self.take_owned(), "an actor's run loop");
                        RunOutcome::Done
                    }
                }
            }
            Ok(Poll::Ready(())) => {
                // taken before DONE is published: `discard` leaves a DONE task alone
                let finished = std::mem::replace(body, Body::Gone);
                self.state.store(DONE, Ordering::Release);
                drop_quietly(finished, "an actor's run loop");
                RunOutcome::Done
            }
            Err(panic) => {
                let finished = std::mem::replace(body, Body::Gone);
                self.state.store(DONE, Ordering::Release);
                tracing::error!(
                    panic = %crate::runner::panic_message(panic),
                    "an actor's run loop panicked outside its hooks; it is stopped"
                );
                drop_quietly(finished, "an actor's run loop");
                RunOutcome::Done
            }
        }
    }

    /// Drops the body without running it further (the runtime is going away). A run loop being polled is dropped by its worker when the poll returns:
    /// waiting for the poll could wait for good (a handler blocking its thread until another
    /// actor is dropped).
    pub(crate) fn discard(&self) {
        match self.state.swap(DONE, Ordering::AcqRel) {
            // no worker can take it from here: the body is ours
            IDLE | SCHEDULED => drop_quietly(self.take_owned(), "an actor's run loop"),
            // RUNNING or NOTIFIED: its worker drops it; DONE: already taken by whoever set it
            _ => {}
        }
    }
}

/// Drops `value` (`what` names it); a panic in a `Drop` on the way is logged, not
/// propagated.
pub(crate) fn drop_quietly<T>(value: T, what: &str) {
    if let Err(p) = std::panic::catch_unwind(AssertUnwindSafe(move || drop(value))) {
        tracing::error!(panic = %crate::runner::panic_message(p), "dropping {what} panicked");
    }
}

/// The most workers a system starts (one bit each in the parked mask).
const MAX_WORKERS: usize = 64;

/// The system's ready queue and its workers' parking places.
pub(crate) struct Dispatcher {
    ready: Mutex<VecDeque<Arc<dyn CellHandle>>>,
    /// How many cells are queued; read without the lock to skip an empty queue.
    queued: AtomicUsize,
    /// One bit per parked worker.
    parked: AtomicU64,
    /// One bit per worker woken from outside a worker and not polled since.
    waking: AtomicU64,
    /// Each worker's seat: its waker while parked, and a cell handed to it directly.
    seats: Box<[Mutex<Seat>]>,
    /// The system has terminated: workers end once the queue is empty.
    terminated: AtomicBool,
    /// The runtime went away: nothing is queued or handed over any more (a queued cell
    /// would keep its run loop, and the run loop the cell, alive for good).
    shut: AtomicBool,
}

/// Where a parked worker waits.
#[derive(Default)]
struct Seat {
    /// Kept across parks (woken by reference), so a worker that parks again from the same
    /// tokio task clones nothing.
    waker: Option<Waker>,
    /// A cell given to this worker as it was unparked: it skips the queue.
    handed: Option<Arc<dyn CellHandle>>,
}

/// What [`Dispatcher::park`] found.
enum Parked {
    /// Parked: wait for an unpark.
    Waiting,
    /// Work is queued (or the system terminated): not parked.
    Queued,
    /// A cell was handed over: not parked, run it.
    Handed(Arc<dyn CellHandle>),
}

impl Dispatcher {
    /// A dispatcher for `workers` workers (one per runtime worker thread, at most 64).
    pub(crate) fn new(workers: usize) -> Self {
        let workers = workers.clamp(1, MAX_WORKERS);
        Dispatcher {
            ready: Mutex::new(VecDeque::new()),
            queued: AtomicUsize::new(0),
            parked: AtomicU64::new(0),
            waking: AtomicU64::new(0),
            seats: (0..workers).map(|_| Mutex::new(Seat::default())).collect(),
            terminated: AtomicBool::new(false),
            shut: AtomicBool::new(false),
        }
    }

    /// How many workers a dispatcher on `runtime` has.
    pub(crate) fn workers_for(runtime: &tokio::runtime::Handle) -> usize {
        runtime.metrics().num_workers().clamp(1, MAX_WORKERS)
    }

    /// Starts the workers on `runtime`.
    pub(crate) fn start(system: &Arc<SystemInner>, runtime: &tokio::runtime::Handle) {
        for index in 0..system.dispatcher.seats.len() {
            runtime.spawn(Worker::start(system.clone(), index));
        }
    }

    /// This dispatcher's address, which [`POLLING`] holds while one of its workers runs.
    fn addr(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }

    /// Runs a woken (SCHEDULED) cell soon: hands it to a parked worker, or queues it.
    #[inline]
    pub(crate) fn schedule(&self, cell: Arc<dyn CellHandle>) {
        let polling = POLLING.with(Cell::get);
        if polling == self.addr() {
            // Woken by an actor that a worker of ours runs on this thread: queue it (this
            // worker runs it next unless another takes it first), and have one parked worker
            // join in (see `unpark_from_worker`).
            if let Some(cell) = self.enqueue(cell) {
                cell.discard_task();
                return;
            }
            if !UNPARKED.with(Cell::get) {
                self.unpark_from_worker();
            }
            return;
        }
        if polling == 0 {
            self.schedule_from_task(cell);
            return;
        }
        // Woken by an actor of another system that a worker runs on this thread: the worker
        // woken here must not stay in this thread's LIFO slot either.
        let Err(cell) = self.hand_over(cell) else {
            self.push_out_of_lifo();
            return;
        };
        if let Some(cell) = self.enqueue(cell) {
            cell.discard_task();
            return;
        }
        // pairs with `park`: a worker sets its bit, then reads `queued`
        if let Some(index) = self.claim_parked() {
            self.wake_seat(index, None);
            self.push_out_of_lifo();
        }
    }

    /// [`Dispatcher::schedule`] outside any worker's poll (a plain task or thread).
    ///
    /// A worker this thread woke that has not run yet takes the cell along, until
    /// [`LAZY_BATCH`] cells are queued. On a tokio worker thread that worker waits in the
    /// thread's LIFO slot until the current task's poll ends (tokio's own order for a task
    /// woken there); waking a second one for every further actor would push the first out
    /// and wake an idle runtime thread each time, a system call that cost a spawning task
    /// a fifth of its time. The batch bound keeps a long poll from holding up more than that.
    ///
    /// The first [`EAGER_WAKES`] wakes after that worker's still wake a parked worker: the
    /// second one pushes the first out of the LIFO slot to where an idle thread steals it, so
    /// a task that wakes a few actors and then keeps its thread (a mistake, but one that
    /// worked with one tokio task per actor) still gets them run.
    fn schedule_from_task(&self, cell: Arc<dyn CellHandle>) {
        let (addr, last, since) = WOKEN.with(Cell::get);
        let mut cell = Some(cell);
        if addr == self.addr() {
            WOKEN.with(|w| w.set((addr, last, since.saturating_add(1))));
        }
        if addr == self.addr()
            && since >= EAGER_WAKES
            && self.is_waking(last)
            && self.queued.load(Ordering::Relaxed) < LAZY_BATCH
        {
            if let Some(gone) = cell.take().and_then(|c| self.enqueue(c)) {
                gone.discard_task();
                return;
            }
            // read after the store of `queued`: a worker that cleared its bit before this
            // read parks only after reading `queued`, so it sees the cell
            if self.is_waking(last) {
                return;
            }
        }
        if let Some(c) = cell.take() {
            if let Some(index) = self.claim_parked() {
                self.wake_from_task(index, Some(c));
                return;
            }
            if let Some(gone) = self.enqueue(c) {
                gone.discard_task();
                return;
            }
        }
        // pairs with `park`: a worker sets its bit, then reads `queued`
        if let Some(index) = self.claim_parked() {
            self.wake_from_task(index, None);
        }
    }

    /// Wakes worker `index` (claimed) from outside any worker, handing it `cell`, and
    /// remembers it as this thread's worker in flight.
    fn wake_from_task(&self, index: usize, cell: Option<Arc<dyn CellHandle>>) {
        // set before the wake, so the worker's first poll clears it
        self.waking.fetch_or(1 << index, Ordering::SeqCst);
        WOKEN.with(|w| w.set((self.addr(), index, 0)));
        self.wake_seat(index, cell);
    }

    /// Whether worker `index` was woken from outside a worker and has not been polled since.
    fn is_waking(&self, index: usize) -> bool {
        self.waking.load(Ordering::SeqCst) & (1 << index) != 0
    }

    /// Puts `cell` at the back of the ready queue; gives it back once the runtime is gone
    /// (the caller then discards its run loop, outside any lock of ours: a run loop kept
    /// would keep its cell, and the cell the run loop, alive for good).
    #[must_use]
    fn enqueue(&self, cell: Arc<dyn CellHandle>) -> Option<Arc<dyn CellHandle>> {
        let mut ready = self.ready.lock();
        if self.shut.load(Ordering::Acquire) {
            return Some(cell);
        }
        ready.push_back(cell);
        self.queued.store(ready.len(), Ordering::SeqCst);
        None
    }

    /// Gives `cell` to a parked worker and wakes it; gives the cell back if none is parked.
    #[inline]
    fn hand_over(&self, cell: Arc<dyn CellHandle>) -> Result<(), Arc<dyn CellHandle>> {
        match self.claim_parked() {
            Some(index) => {
                self.wake_seat(index, Some(cell));
                Ok(())
            }
            None => Err(cell),
        }
    }

    /// Claims a parked worker, if any (see [`Dispatcher::claim`]). Pairs with `park`: a
    /// worker sets its bit and then reads `queued`; a caller stores `queued` and then reads the
    /// bits, so one of the two sees the other.
    fn claim_parked(&self) -> Option<usize> {
        let parked = self.parked.load(Ordering::SeqCst);
        if parked == 0 {
            return None;
        }
        self.claim(parked)
    }

    /// Clears one parked worker's bit; the index of the worker whose bit this call cleared.
    fn claim(&self, mut parked: u64) -> Option<usize> {
        while parked != 0 {
            let bit = 1u64 << parked.trailing_zeros();
            let before = self.parked.fetch_and(!bit, Ordering::SeqCst);
            if before & bit != 0 {
                return Some(bit.trailing_zeros() as usize);
            }
            parked = before & !bit;
        }
        None
    }

    /// Wakes the worker at `index`, handing it `cell` if given.
    fn wake_seat(&self, index: usize, cell: Option<Arc<dyn CellHandle>>) {
        let mut seat = self.seats[index].lock();
        let mut gone = None;
        if let Some(cell) = cell {
            if self.shut.load(Ordering::Acquire) {
                gone = Some(cell);
            } else if seat.handed.is_none() {
                seat.handed = Some(cell);
            } else {
                // the worker was unparked, polled before the first hand-over arrived, and
                // parked again: the seat is still taken, so this cell goes to the queue
                // (before the wake below, which makes the worker look at the queue)
                gone = self.enqueue(cell);
            }
        }
        if let Some(w) = &seat.waker {
            w.wake_by_ref();
        }
        drop(seat);
        if let Some(cell) = gone {
            cell.discard_task();
        }
    }

    /// Wakes one parked worker from inside a worker's poll, once per poll (the worker wakes
    /// more when its poll ends, [`Dispatcher::unpark_for_queued`]).
    ///
    /// tokio puts a task woken from one of its worker threads in that thread's LIFO slot,
    /// which no other thread may steal from: the woken worker would run only after this
    /// poll, and not at all while a handler blocks the thread, and it no longer counts as
    /// parked, so nobody else would be woken for the queue. A no-op task spawned right after
    /// takes the slot and pushes the woken worker to the thread's run queue, waking an idle
    /// thread to steal it. (A handler blocking in `block_in_place` would be fine without it,
    /// tokio hands the slot on; one blocking plainly, a mistake, would stall the system.)
    fn unpark_from_worker(&self) {
        if self.seats.len() < 2 {
            // a current-thread runtime, or one thread: nothing to run in parallel
            return;
        }
        let Some(index) = self.claim_parked() else {
            return;
        };
        UNPARKED.with(|u| u.set(true));
        self.wake_seat(index, None);
        self.push_out_of_lifo();
    }

    /// Spawns a no-op task right after a worker was woken from a tokio worker thread, so
    /// that it takes the thread's LIFO slot and pushes the woken worker to the run queue,
    /// where an idle thread steals it (see [`Dispatcher::unpark_from_worker`]).
    fn push_out_of_lifo(&self) {
        if self.seats.len() < 2 {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            drop(runtime.spawn(std::future::ready(())));
        }
    }

    /// Wakes parked workers for the queued cells (one per [`TAKE_AT_MOST`]): called by a
    /// worker whose poll ends while cells it queued are waiting.
    fn unpark_for_queued(&self) {
        let mut wanted = self.queued.load(Ordering::SeqCst).div_ceil(TAKE_AT_MOST);
        while wanted > 0 {
            let Some(index) = self.claim_parked() else {
                return;
            };
            self.wake_seat(index, None);
            wanted -= 1;
        }
    }

    /// The system has terminated: workers end when nothing is left to run.
    pub(crate) fn terminate(&self) {
        self.terminated.store(true, Ordering::SeqCst);
        let parked = self.parked.swap(0, Ordering::SeqCst);
        for index in 0..self.seats.len() {
            if parked & (1 << index) != 0 {
                self.wake_seat(index, None);
            }
        }
    }

    /// Takes the next ready cell, and up to [`TAKE_AT_MOST`] - 1 more into `local`.
    #[inline]
    fn take(&self, local: &mut VecDeque<Arc<dyn CellHandle>>) -> Option<Arc<dyn CellHandle>> {
        if self.queued.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut ready = self.ready.lock();
        let first = ready.pop_front()?;
        for _ in 1..TAKE_AT_MOST {
            match ready.pop_front() {
                Some(cell) => local.push_back(cell),
                None => break,
            }
        }
        self.queued.store(ready.len(), Ordering::SeqCst);
        Some(first)
    }

    /// A cell handed to worker `index`, if any.
    fn take_handed(&self, index: usize) -> Option<Arc<dyn CellHandle>> {
        self.seats[index].lock().handed.take()
    }

    /// Parks worker `index` unless there is work.
    fn park(&self, index: usize, waker: &Waker) -> Parked {
        {
            let mut seat = self.seats[index].lock();
            if let Some(cell) = seat.handed.take() {
                return Parked::Handed(cell);
            }
            match &mut seat.waker {
                Some(w) => w.clone_from(waker),
                None => seat.waker = Some(waker.clone()),
            }
        }
        let bit = 1u64 << index;
        self.parked.fetch_or(bit, Ordering::SeqCst);
        // read after the bit is set: a cell queued before this point is seen here, one
        // queued after it sees the bit and unparks us
        if self.queued.load(Ordering::SeqCst) != 0 || self.terminated.load(Ordering::SeqCst) {
            self.parked.fetch_and(!bit, Ordering::SeqCst);
            return Parked::Queued;
        }
        Parked::Waiting
    }

    /// Whether worker `index` is still marked parked (nobody unparked it).
    fn is_parked(&self, index: usize) -> bool {
        self.parked.load(Ordering::SeqCst) & (1u64 << index) != 0
    }

    /// The runtime is going away: queue nothing more, drop every actor's run loop, then
    /// undo the links that would keep the tree alive without the runtime (see
    /// [`CellHandle::abandon`]), so the actors are freed with the last ref to them.
    fn clean_up(&self, system: &SystemInner) {
        if self.shut.swap(true, Ordering::SeqCst) {
            return;
        }
        let mut dropped: Vec<Arc<dyn CellHandle>> = {
            let mut ready = self.ready.lock();
            self.queued.store(0, Ordering::SeqCst);
            ready.drain(..).collect()
        };
        for seat in self.seats.iter() {
            dropped.extend(seat.lock().handed.take());
        }
        // queued cells are in the tree below too, unless spawned while this walks it
        for cell in dropped {
            cell.discard_task();
        }
        let mut cells: Vec<Arc<dyn CellHandle>> = system.root_children();
        let mut i = 0;
        while i < cells.len() {
            let children = cells[i].core().child_list();
            cells.extend(children);
            i += 1;
        }
        for cell in &cells {
            cell.discard_task();
        }
        for cell in &cells {
            cell.abandon();
        }
        system.abandon();
    }
}

/// One worker: a tokio task that runs ready actors until the system terminates. Written as
/// a plain future (not an `async fn`) to keep the hand-off between actors short.
struct Worker {
    system: Arc<SystemInner>,
    index: usize,
    /// Cells taken from the queue with the last one, run next.
    local: VecDeque<Arc<dyn CellHandle>>,
    /// Parked: waiting for an unpark.
    parked: bool,
    /// Ended normally (the system terminated), so dropping it cleans nothing up.
    ended: bool,
}

impl Worker {
    fn start(system: Arc<SystemInner>, index: usize) -> Self {
        Worker {
            system,
            index,
            local: VecDeque::with_capacity(TAKE_AT_MOST),
            parked: false,
            ended: false,
        }
    }
}

impl Future for Worker {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        let this = self.get_mut();
        let dispatcher = &this.system.dispatcher;
        let index = this.index;
        if dispatcher.waking.load(Ordering::Relaxed) & (1 << index) != 0 {
            dispatcher.waking.fetch_and(!(1 << index), Ordering::SeqCst);
        }
        let mut next = None;
        if this.parked {
            next = dispatcher.take_handed(index);
            if next.is_none() && dispatcher.is_parked(index) {
                // polled without an unpark: look again
                match dispatcher.park(index, cx.waker()) {
                    Parked::Waiting => return Poll::Pending,
                    Parked::Queued => {}
                    Parked::Handed(cell) => next = Some(cell),
                }
            }
            this.parked = false;
        }
        let mut runs = 0;
        HANDLED.with(|h| h.set(0));
        let polling = PollingGuard::enter(dispatcher);
        loop {
            let cell = match next.take() {
                Some(cell) => cell,
                None => match this.local.pop_front() {
                    Some(cell) => cell,
                    None => match dispatcher.take(&mut this.local) {
                        Some(cell) => cell,
                        None => {
                            if dispatcher.terminated.load(Ordering::SeqCst) {
                                this.ended = true;
                                return Poll::Ready(());
                            }
                            match dispatcher.park(index, cx.waker()) {
                                Parked::Waiting => {
                                    this.parked = true;
                                    return Poll::Pending;
                                }
                                Parked::Queued => continue,
                                Parked::Handed(cell) => cell,
                            }
                        }
                    },
                },
            };
            cell.run_task();
            runs += 1;
            if runs >= YIELD_AFTER
                || HANDLED.with(Cell::get) >= MESSAGES_PER_POLL
                || !tokio::task::coop::has_budget_remaining()
            {
                // give tokio a turn; the self-wake queues this worker again. A cell handed
                // over through a stale parked bit waits in the seat: take it along.
                if let Some(cell) = dispatcher.take_handed(index) {
                    this.local.push_back(cell);
                }
                // Cells woken during this poll were queued (see `schedule`); a parked worker
                // woken now lands in this thread's LIFO slot and runs next here, while this
                // worker, yielding, goes to the run queue that idle threads steal from.
                drop(polling);
                dispatcher.unpark_for_queued();
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // the waker is a reference to this tokio task, and through it to the runtime's
        // handle: a system kept after its runtime is gone would keep both
        let waker = self.system.dispatcher.seats[self.index].lock().waker.take();
        drop(waker);
        if !self.ended {
            // the runtime dropped the worker before the system terminated
            self.system.dispatcher.clean_up(&self.system);
        }
    }
}
