//! [`TestProbe`]: a real actor that records what it receives, with expectations that wait
//! for messages and fail with a precise message.

mod actors;

use std::fmt::Debug;
use std::future::Future;
use std::panic::Location;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actor_core::{ActorRef, ActorSystem, Props, ReplyTo, SpawnError, Terminated};
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::await_assert::{AssertOutcome, poll_until};
use crate::time::{DEFAULT_NO_MSG_DURATION, default_timeout, dilated};
use actors::{Command, ProbeActor};

/// Why waiting for the next item ended without one.
enum Missing {
    /// The time ran out.
    TimedOut,
    /// The probe actor has stopped and everything it received was read.
    Closed,
}

/// Makes probe names unique across all systems of the process.
static NEXT_PROBE: AtomicU64 = AtomicU64::new(1);

/// A probe: an actor (spawned under `/system`, so it outlives every `/user` actor during
/// termination) whose messages a test inspects with expectations.
///
/// Give [`TestProbe::actor_ref`] to the actors under test; then `expect_*` what they send.
/// Each expectation without an explicit timeout waits up to the dilated
/// [`DEFAULT_TIMEOUT`](crate::DEFAULT_TIMEOUT), or until the end of the enclosing
/// [`TestProbe::within`] block. A failed expectation panics with the caller's location, what
/// was expected, what arrived instead (or that nothing did) and after how long.
///
/// The probe can watch other actors ([`TestProbe::watch`], [`TestProbe::expect_terminated`]):
/// its child `watcher` does the watching, so the signals come from the real death-watch.
/// Dropping the probe stops its actor.
///
/// # Examples
/// ```
/// use actor_testkit::TestKit;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let kit = TestKit::new("probe-doc");
/// let probe = kit.probe::<u32>();
/// probe.actor_ref().tell(7);
/// assert_eq!(probe.expect_msg(7).await, 7);
/// kit.shutdown().await;
/// # }
/// ```
pub struct TestProbe<M: Send + 'static> {
    name: String,
    actor: ActorRef<M>,
    messages: flume::Receiver<M>,
    terminations: flume::Receiver<Terminated>,
    commands: flume::Sender<Command>,
    /// The end of the innermost `within` block, if any.
    deadline: Mutex<Option<Instant>>,
}

impl<M: Send + 'static> TestProbe<M> {
    /// Spawns a probe in `system`.
    ///
    /// # Panics
    /// When the system is terminating (see [`TestProbe::try_new`]).
    #[track_caller]
    pub fn new(system: &ActorSystem) -> Self {
        match TestProbe::try_new(system) {
            Ok(p) => p,
            Err(e) => panic!("cannot create a TestProbe: {e}"),
        }
    }

    /// Spawns a probe in `system`.
    ///
    /// # Errors
    /// [`SpawnError::ParentStopping`] when the system is terminating.
    pub fn try_new(system: &ActorSystem) -> Result<Self, SpawnError> {
        let name = format!("probe-{}", NEXT_PROBE.fetch_add(1, Ordering::Relaxed));
        let (msg_tx, messages) = flume::unbounded();
        let (term_tx, terminations) = flume::unbounded();
        let (commands, cmd_rx) = flume::unbounded::<Command>();
        let actor = system.spawn_system_actor(
            Props::new(move || ProbeActor {
                messages: msg_tx.clone(),
                commands: cmd_rx.clone(),
                terminations: term_tx.clone(),
            }),
            &name,
        )?;
        Ok(TestProbe {
            name,
            actor,
            messages,
            terminations,
            commands,
            deadline: Mutex::new(None),
        })
    }

    /// The ref that others send to; it has a path and can be watched.
    pub fn actor_ref(&self) -> &ActorRef<M> {
        &self.actor
    }

    /// A reply handle that delivers the answer to this probe (for requests that carry a
    /// [`ReplyTo`]).
    pub fn reply_to(&self) -> ReplyTo<M> {
        ReplyTo::to_actor(self.actor.clone())
    }

    /// The probe's actor name (`probe-<n>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many received messages wait to be read.
    pub fn pending(&self) -> usize {
        self.messages.len()
    }

    /// The time an expectation without an explicit timeout may wait now: until the end of
    /// the enclosing [`TestProbe::within`] block, or the dilated default timeout.
    pub fn remaining(&self) -> Duration {
        match *self.deadline.lock() {
            Some(d) => d.saturating_duration_since(Instant::now()),
            None => default_timeout(),
        }
    }

    /// `explicit`, but never past the end of the enclosing `within` block.
    fn remaining_or(&self, explicit: Duration) -> Duration {
        match *self.deadline.lock() {
            Some(d) => explicit.min(d.saturating_duration_since(Instant::now())),
            None => explicit,
        }
    }

    async fn next_message(&self, timeout: Duration) -> Result<M, Missing> {
        match tokio::time::timeout(timeout, self.messages.recv_async()).await {
            Ok(Ok(m)) => Ok(m),
            Ok(Err(_)) => Err(Missing::Closed),
            Err(_) => Err(Missing::TimedOut),
        }
    }

    async fn next_termination(&self, timeout: Duration) -> Result<Terminated, Missing> {
        match tokio::time::timeout(timeout, self.terminations.recv_async()).await {
            Ok(Ok(t)) => Ok(t),
            Ok(Err(_)) => Err(Missing::Closed),
            Err(_) => Err(Missing::TimedOut),
        }
    }

    fn fail(&self, what: &str, caller: &Location<'_>, detail: std::fmt::Arguments<'_>) -> ! {
        panic!("{} {what} at {caller}: {detail}", self.name)
    }

    fn nothing(missing: &Missing, waited: Duration) -> String {
        match missing {
            Missing::TimedOut => format!("no message arrived within {waited:?}"),
            Missing::Closed => {
                format!("no message arrived: the probe actor has stopped (after {waited:?})")
            }
        }
    }

    /// Receives the next message within `timeout` (bounded by an enclosing `within`), or
    /// `None` if none came. Never panics.
    ///
    /// # Cancel safety
    /// Cancel safe: a message is either returned or left in the probe.
    pub async fn receive_one(&self, timeout: Duration) -> Option<M> {
        self.next_message(self.remaining_or(timeout)).await.ok()
    }

    /// Expects the next message to equal `expected` and returns it.
    ///
    /// # Panics
    /// When another message arrives first, or none within the remaining time.
    ///
    /// # Cancel safety
    /// Cancel safe: until a message is taken, dropping the future leaves the probe as it was.
    #[track_caller]
    pub fn expect_msg(&self, expected: M) -> impl Future<Output = M> + '_
    where
        M: PartialEq + Debug,
    {
        let caller = Location::caller();
        async move {
            let start = Instant::now();
            let timeout = self.remaining();
            match self.next_message(timeout).await {
                Ok(m) if m == expected => m,
                Ok(m) => self.fail(
                    "expect_msg",
                    caller,
                    format_args!(
                        "expected {expected:?}, but received {m:?} after {:?}",
                        start.elapsed()
                    ),
                ),
                Err(missing) => self.fail(
                    "expect_msg",
                    caller,
                    format_args!(
                        "expected {expected:?}, but {}",
                        Self::nothing(&missing, timeout)
                    ),
                ),
            }
        }
    }

    /// Expects the next message to satisfy `predicate` and returns it.
    ///
    /// # Panics
    /// When the next message does not match, or none arrives within the remaining time.
    #[track_caller]
    pub fn expect_msg_matching<'a>(
        &'a self,
        predicate: impl FnOnce(&M) -> bool + 'a,
    ) -> impl Future<Output = M> + 'a
    where
        M: Debug,
    {
        let caller = Location::caller();
        async move {
            let start = Instant::now();
            let timeout = self.remaining();
            match self.next_message(timeout).await {
                Ok(m) if predicate(&m) => m,
                Ok(m) => self.fail(
                    "expect_msg_matching",
                    caller,
                    format_args!(
                        "expected a message matching the predicate, but received {m:?} after {:?}",
                        start.elapsed()
                    ),
                ),
                Err(missing) => self.fail(
                    "expect_msg_matching",
                    caller,
                    format_args!(
                        "expected a message matching the predicate, but {}",
                        Self::nothing(&missing, timeout)
                    ),
                ),
            }
        }
    }

    /// Expects the next message to be one `extract` accepts (returns `Some`), and returns
    /// what it extracted: the way to take a [`ReplyTo`] out of a request.
    ///
    /// # Panics
    /// When `extract` returns `None` for the next message, or none arrives in time.
    #[track_caller]
    pub fn expect_msg_map<'a, T>(
        &'a self,
        extract: impl FnOnce(M) -> Option<T> + 'a,
    ) -> impl Future<Output = T> + 'a
    where
        M: Debug,
    {
        let caller = Location::caller();
        async move {
            let start = Instant::now();
            let timeout = self.remaining();
            match self.next_message(timeout).await {
                Ok(m) => {
                    let shown = format!("{m:?}");
                    match extract(m) {
                        Some(t) => t,
                        None => self.fail(
                            "expect_msg_map",
                            caller,
                            format_args!(
                                "expected a message the extractor accepts, but received {shown} after {:?}",
                                start.elapsed()
                            ),
                        ),
                    }
                }
                Err(missing) => self.fail(
                    "expect_msg_map",
                    caller,
                    format_args!(
                        "expected a message the extractor accepts, but {}",
                        Self::nothing(&missing, timeout)
                    ),
                ),
            }
        }
    }

    /// Expects no message for `duration` (bounded by an enclosing `within`).
    ///
    /// # Panics
    /// When a message arrives meanwhile.
    #[track_caller]
    pub fn expect_no_msg(&self, duration: Duration) -> impl Future<Output = ()> + '_
    where
        M: Debug,
    {
        let caller = Location::caller();
        async move {
            let start = Instant::now();
            if let Ok(m) = self.next_message(self.remaining_or(duration)).await {
                self.fail(
                    "expect_no_msg",
                    caller,
                    format_args!(
                        "expected no message for {duration:?}, but received {m:?} after {:?}",
                        start.elapsed()
                    ),
                )
            }
        }
    }

    /// [`TestProbe::expect_no_msg`] for the dilated
    /// [`DEFAULT_NO_MSG_DURATION`](crate::DEFAULT_NO_MSG_DURATION).
    ///
    /// # Panics
    /// When a message arrives meanwhile.
    #[track_caller]
    pub fn expect_no_msg_default(&self) -> impl Future<Output = ()> + '_
    where
        M: Debug,
    {
        self.expect_no_msg(dilated(DEFAULT_NO_MSG_DURATION))
    }

    /// Receives exactly `n` messages within the remaining time and returns them in arrival
    /// order.
    ///
    /// # Panics
    /// When fewer than `n` arrive in time; the message lists those that did.
    ///
    /// # Cancel safety
    /// Not cancel safe: messages already taken when the future is dropped are lost.
    #[track_caller]
    pub fn receive_n(&self, n: usize) -> impl Future<Output = Vec<M>> + '_
    where
        M: Debug,
    {
        let caller = Location::caller();
        async move {
            let timeout = self.remaining();
            let deadline = Instant::now() + timeout;
            let mut got = Vec::with_capacity(n);
            while got.len() < n {
                let left = deadline.saturating_duration_since(Instant::now());
                match self.next_message(left).await {
                    Ok(m) => got.push(m),
                    Err(missing) => self.fail(
                        "receive_n",
                        caller,
                        format_args!(
                            "expected {n} messages, but received only {} ({}): {got:?}",
                            got.len(),
                            Self::nothing(&missing, timeout)
                        ),
                    ),
                }
            }
            got
        }
    }

    /// Expects the next `expected.len()` messages to be `expected` in any order (as a
    /// multiset), and returns them in arrival order. For messages from several senders,
    /// whose interleaving is not fixed.
    ///
    /// # Panics
    /// When a message arrives that is not (or no longer) expected, or not all arrive within
    /// the remaining time; the message lists what is missing.
    ///
    /// # Cancel safety
    /// Not cancel safe: messages already taken when the future is dropped are lost.
    #[track_caller]
    pub fn expect_msg_all_of(&self, expected: Vec<M>) -> impl Future<Output = Vec<M>> + '_
    where
        M: PartialEq + Debug,
    {
        let caller = Location::caller();
        async move {
            let start = Instant::now();
            let timeout = self.remaining();
            let deadline = start + timeout;
            let mut missing = expected;
            let mut got = Vec::with_capacity(missing.len());
            while !missing.is_empty() {
                let left = deadline.saturating_duration_since(Instant::now());
                match self.next_message(left).await {
                    Ok(m) => match missing.iter().position(|e| *e == m) {
                        Some(i) => {
                            missing.swap_remove(i);
                            got.push(m);
                        }
                        None => self.fail(
                            "expect_msg_all_of",
                            caller,
                            format_args!(
                                "expected one of {missing:?}, but received {m:?} after {:?} (already received {got:?})",
                                start.elapsed()
                            ),
                        ),
                    },
                    Err(gone) => self.fail(
                        "expect_msg_all_of",
                        caller,
                        format_args!(
                            "still expected {missing:?}, but {} (received {got:?})",
                            Self::nothing(&gone, timeout)
                        ),
                    ),
                }
            }
            got
        }
    }

    /// Receives messages until one satisfies `predicate`, discarding the others, and returns
    /// the matching one.
    ///
    /// # Panics
    /// When none matches within the remaining time; the message lists the discarded ones.
    ///
    /// # Cancel safety
    /// Not cancel safe: messages already taken when the future is dropped are lost.
    #[track_caller]
    pub fn fish_for_message<'a>(
        &'a self,
        mut predicate: impl FnMut(&M) -> bool + 'a,
    ) -> impl Future<Output = M> + 'a
    where
        M: Debug,
    {
        let caller = Location::caller();
        async move {
            let timeout = self.remaining();
            let deadline = Instant::now() + timeout;
            let mut skipped = Vec::new();
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match self.next_message(left).await {
                    Ok(m) if predicate(&m) => return m,
                    Ok(m) => skipped.push(m),
                    Err(missing) => self.fail(
                        "fish_for_message",
                        caller,
                        format_args!(
                            "expected a message matching the predicate, but {}; discarded {skipped:?}",
                            Self::nothing(&missing, timeout)
                        ),
                    ),
                }
            }
        }
    }

    /// Runs `block` and checks that it took at least `min` and at most `max`. Inside the
    /// block, expectations without an explicit timeout wait at most until `max` has passed
    /// since the block started.
    ///
    /// # Panics
    /// When the block finishes sooner than `min` or later than `max` (and when the block
    /// itself panics).
    #[track_caller]
    pub fn within<'a, T>(
        &'a self,
        min: Duration,
        max: Duration,
        block: impl Future<Output = T> + 'a,
    ) -> impl Future<Output = T> + 'a {
        let caller = Location::caller();
        async move {
            let start = Instant::now();
            let end = start + max;
            let _restore = {
                let mut d = self.deadline.lock();
                let previous = *d;
                *d = Some(previous.map_or(end, |p| p.min(end)));
                RestoreDeadline {
                    slot: &self.deadline,
                    previous,
                }
            };
            let out = block.await;
            let took = start.elapsed();
            if took < min {
                self.fail(
                    "within",
                    caller,
                    format_args!("the block finished after {took:?}, sooner than min {min:?}"),
                );
            }
            if took > max {
                self.fail(
                    "within",
                    caller,
                    format_args!("the block took {took:?}, longer than max {max:?}"),
                );
            }
            out
        }
    }

    /// [`await_assert`](crate::await_assert), bounded by an enclosing `within` block.
    ///
    /// # Panics
    /// When `check` has not passed within `max`.
    #[track_caller]
    pub fn await_assert<F, R>(
        &self,
        check: F,
        max: Duration,
        interval: Duration,
    ) -> impl Future<Output = R::Output>
    where
        F: FnMut() -> R,
        R: AssertOutcome,
    {
        let caller = Location::caller();
        poll_until(check, self.remaining_or(max), interval, caller)
    }

    /// Sends a command to the watcher child and waits until it ran.
    async fn command(
        &self,
        what: &str,
        caller: &Location<'_>,
        run: impl FnOnce(&mut actor_core::Context<actors::Watcher>) + Send + 'static,
    ) {
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let command: Command = Box::new(move |ctx| {
            run(ctx);
            let _ = done_tx.send(());
        });
        let timeout = default_timeout();
        let sent = self.commands.send(command).is_ok();
        if !sent || !matches!(tokio::time::timeout(timeout, done_rx).await, Ok(Ok(()))) {
            self.fail(
                what,
                caller,
                format_args!(
                    "the probe actor did not run the command within {timeout:?}: it has stopped"
                ),
            );
        }
    }

    /// Watches `target`: [`TestProbe::expect_terminated`] then sees it stop. Returns once the
    /// watch is registered. Watching twice is one watch.
    ///
    /// # Panics
    /// When the probe actor has stopped.
    #[track_caller]
    pub fn watch<N: Send + 'static>(&self, target: &ActorRef<N>) -> impl Future<Output = ()> + '_ {
        let caller = Location::caller();
        let target = target.clone();
        async move {
            self.command("watch", caller, move |ctx| ctx.watch(&target))
                .await
        }
    }

    /// Stops watching `target`; returns once no signal can arrive for it any more.
    ///
    /// # Panics
    /// When the probe actor has stopped.
    #[track_caller]
    pub fn unwatch<N: Send + 'static>(
        &self,
        target: &ActorRef<N>,
    ) -> impl Future<Output = ()> + '_ {
        let caller = Location::caller();
        let target = target.clone();
        async move {
            self.command("unwatch", caller, move |ctx| ctx.unwatch(&target))
                .await
        }
    }

    /// Expects the next termination signal to be `target`'s, and returns it.
    ///
    /// # Panics
    /// When another watched actor's signal comes first, or none within the remaining time.
    #[track_caller]
    pub fn expect_terminated<N: Send + 'static>(
        &self,
        target: &ActorRef<N>,
    ) -> impl Future<Output = Terminated> + '_ {
        let caller = Location::caller();
        let expected = target.id().clone();
        async move {
            let start = Instant::now();
            let timeout = self.remaining();
            match self.next_termination(timeout).await {
                Ok(t) if *t.actor() == expected => t,
                Ok(t) => self.fail(
                    "expect_terminated",
                    caller,
                    format_args!(
                        "expected Terminated({expected}), but received Terminated({}) after {:?}",
                        t.actor(),
                        start.elapsed()
                    ),
                ),
                Err(missing) => self.fail(
                    "expect_terminated",
                    caller,
                    format_args!(
                        "expected Terminated({expected}), but no termination arrived within {timeout:?}{}",
                        if matches!(missing, Missing::Closed) {
                            " (the probe actor has stopped)"
                        } else {
                            ""
                        }
                    ),
                ),
            }
        }
    }

    /// Expects no termination signal for `duration` (bounded by an enclosing `within`).
    ///
    /// # Panics
    /// When one arrives meanwhile.
    #[track_caller]
    pub fn expect_no_terminated(&self, duration: Duration) -> impl Future<Output = ()> + '_ {
        let caller = Location::caller();
        async move {
            let start = Instant::now();
            if let Ok(t) = self.next_termination(self.remaining_or(duration)).await {
                self.fail(
                    "expect_no_terminated",
                    caller,
                    format_args!(
                        "expected no termination for {duration:?}, but received Terminated({}) after {:?}",
                        t.actor(),
                        start.elapsed()
                    ),
                )
            }
        }
    }
}

impl<M: Send + 'static> Drop for TestProbe<M> {
    fn drop(&mut self) {
        self.actor.stop();
    }
}

impl<M: Send + 'static> std::fmt::Debug for TestProbe<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestProbe")
            .field("actor", &self.actor)
            .field("pending", &self.messages.len())
            .finish_non_exhaustive()
    }
}

/// Puts the outer `within` deadline back when a block ends (also by panic).
struct RestoreDeadline<'a> {
    slot: &'a Mutex<Option<Instant>>,
    previous: Option<Instant>,
}

impl Drop for RestoreDeadline<'_> {
    fn drop(&mut self) {
        *self.slot.lock() = self.previous;
    }
}
