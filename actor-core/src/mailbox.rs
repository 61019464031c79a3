//! Mailboxes: the queue of user messages in front of an actor.
//!
//! A mailbox is a mutex-guarded `VecDeque` inside the actor's cell plus a flag saying the run
//! loop waits for it: no allocation until the first message, one short lock per `tell`, and
//! a push that finds the flag set calls the `rouse` it was given (the cell queues itself to
//! run; the run loop is always the cell's own task, so the mailbox keeps no waker, 16 bytes
//! less per actor). The run loop takes
//! every queued message in one swap (batch receive), so a busy actor locks once per batch,
//! not once per message. Closing happens under the same lock, so a message is either taken by
//! the actor, or drained to dead letters when it stops, or refused: never silently lost.
//!
//! System messages (stop, supervision directives, death-watch signals) travel in a separate
//! queue in the cell that the run loop drains before every user message, so they never wait
//! behind user messages and never take a bounded mailbox's capacity.

use std::collections::VecDeque;
use std::num::NonZeroUsize;
use std::task::Poll;

use parking_lot::Mutex;

use crate::path::ActorId;
use crate::timers::TimerKey;

/// What a bounded mailbox does with a message that does not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverflowPolicy {
    /// Drop the new message (to dead letters).
    DropNewest,
    /// Drop the oldest queued message (to dead letters) to make room.
    DropOldest,
    /// Refuse the message: `try_tell` returns `TellError::MailboxFull`, `tell` sends it to dead
    /// letters, `ask` fails with `AskError::MailboxFull`.
    FailSender,
}

/// The kind of mailbox an actor gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MailboxConfig {
    /// Unbounded (the default): `tell` always enqueues, memory is the limit.
    #[default]
    Unbounded,
    /// At most `capacity` queued user messages; `overflow` says what happens past that.
    Bounded {
        /// The capacity.
        capacity: NonZeroUsize,
        /// What to do when full.
        overflow: OverflowPolicy,
    },
}

impl MailboxConfig {
    /// A bounded mailbox.
    pub fn bounded(capacity: NonZeroUsize, overflow: OverflowPolicy) -> Self {
        MailboxConfig::Bounded { capacity, overflow }
    }
}

/// What travels in an actor's user queue.
pub(crate) enum Envelope<M> {
    /// A user message.
    User(M),
    /// A timer's message; dropped unless the timer is still current.
    Timer {
        key: TimerKey,
        generation: u64,
        msg: M,
    },
    /// Stop after the messages queued before this one.
    PoisonPill,
    /// A watched actor or a child terminated: deliver the signal in mailbox order.
    Signal { actor: ActorId, was_child: bool },
    /// A single timer's message could not be queued (full mailbox): the timer is over.
    TimerDropped { key: TimerKey, generation: u64 },
}

impl<M> Envelope<M> {
    /// Whether this carries a user message (subject to the overflow policy).
    pub(crate) fn is_message(&self) -> bool {
        matches!(self, Envelope::User(_) | Envelope::Timer { .. })
    }

    pub(crate) fn into_message(self) -> Option<M> {
        match self {
            Envelope::User(m) | Envelope::Timer { msg: m, .. } => Some(m),
            Envelope::PoisonPill | Envelope::Signal { .. } | Envelope::TimerDropped { .. } => None,
        }
    }
}

/// Why [`Mailbox::push`] did not queue an envelope; carries it back.
pub(crate) enum Refused<M> {
    /// The mailbox is closed: the actor has stopped.
    Closed(Envelope<M>),
    /// A bounded mailbox is full and the envelope may not displace anything.
    Full(Envelope<M>),
}

/// What a successful [`Mailbox::push`] displaced under the drop policies.
pub(crate) enum Pushed<M> {
    /// Queued; nothing dropped.
    Queued,
    /// The new envelope was dropped (`DropNewest`).
    DroppedNew(Envelope<M>),
    /// An older envelope was evicted to make room (`DropOldest`).
    Evicted(Envelope<M>),
}

struct State<M> {
    queue: VecDeque<Envelope<M>>,
    /// How many of the queued envelopes are the runtime's own (signals): they never count
    /// against a bounded mailbox's capacity. A `u32` keeps the state 8 bytes smaller; 2^32
    /// queued signals would take 160 GiB.
    runtime: u32,
    closed: bool,
    /// The run loop waits for a message or a system message: the next push rouses it.
    waiting: bool,
}

/// One actor's user-message queue.
pub(crate) struct Mailbox<M> {
    state: Mutex<State<M>>,
    bound: Bound,
}

/// A bounded mailbox's capacity and overflow policy in one word (8 bytes less per actor than
/// an `Option` of both): the policy in the top two bits, the capacity below, 0 for unbounded.
#[derive(Clone, Copy)]
struct Bound(usize);

impl Bound {
    const POLICY_SHIFT: u32 = usize::BITS - 2;
    const CAPACITY_MASK: usize = (1 << Self::POLICY_SHIFT) - 1;

    fn new(config: &MailboxConfig) -> Self {
        match *config {
            MailboxConfig::Unbounded => Bound(0),
            MailboxConfig::Bounded { capacity, overflow } => {
                // a capacity past 2^62 messages is as good as unbounded memory allows
                let capacity = capacity.get().min(Self::CAPACITY_MASK);
                let policy = match overflow {
                    OverflowPolicy::DropNewest => 0,
                    OverflowPolicy::DropOldest => 1,
                    OverflowPolicy::FailSender => 2,
                };
                Bound(capacity | policy << Self::POLICY_SHIFT)
            }
        }
    }

    /// The capacity and policy of a bounded mailbox.
    #[inline]
    fn get(self) -> Option<(usize, OverflowPolicy)> {
        if self.0 == 0 {
            return None;
        }
        let policy = match self.0 >> Self::POLICY_SHIFT {
            0 => OverflowPolicy::DropNewest,
            1 => OverflowPolicy::DropOldest,
            _ => OverflowPolicy::FailSender,
        };
        Some((self.0 & Self::CAPACITY_MASK, policy))
    }
}

impl<M> Mailbox<M> {
    pub(crate) fn new(config: &MailboxConfig) -> Self {
        Mailbox {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                runtime: 0,
                closed: false,
                waiting: false,
            }),
            bound: Bound::new(config),
        }
    }

    /// Queues an envelope under the overflow policy; calls `rouse` (after the lock is
    /// released) if the run loop waited for it.
    #[inline]
    pub(crate) fn push(
        &self,
        env: Envelope<M>,
        rouse: impl FnOnce(),
    ) -> Result<Pushed<M>, Refused<M>> {
        let mut st = self.state.lock();
        if st.closed {
            return Err(Refused::Closed(env));
        }
        let mut outcome = Pushed::Queued;
        if let Some((capacity, policy)) = self.bound.get()
            && st.queue.len() - st.runtime as usize >= capacity
        {
            // only messages are subject to the policy: a pill that does not fit is refused
            if !env.is_message() {
                return Err(Refused::Full(env));
            }
            match policy {
                OverflowPolicy::FailSender => return Err(Refused::Full(env)),
                OverflowPolicy::DropNewest => return Ok(Pushed::DroppedNew(env)),
                OverflowPolicy::DropOldest => {
                    // evict the oldest message, never a pill
                    let Some(i) = st.queue.iter().position(Envelope::is_message) else {
                        return Err(Refused::Full(env));
                    };
                    if let Some(old) = st.queue.remove(i) {
                        outcome = Pushed::Evicted(old);
                    }
                }
            }
        }
        st.queue.push_back(env);
        let waiting = std::mem::take(&mut st.waiting);
        drop(st);
        if waiting {
            rouse();
        }
        Ok(outcome)
    }

    /// Queues a termination signal whatever the bound: the runtime's own bookkeeping never
    /// competes with user messages for capacity. Dropped if the mailbox is closed. Calls
    /// `rouse` as [`Mailbox::push`] does.
    pub(crate) fn push_signal(&self, env: Envelope<M>, rouse: impl FnOnce()) {
        let mut st = self.state.lock();
        if st.closed {
            return;
        }
        st.queue.push_back(env);
        st.runtime = st.runtime.saturating_add(1);
        let waiting = std::mem::take(&mut st.waiting);
        drop(st);
        if waiting {
            rouse();
        }
    }

    /// True, once, if the run loop waits (a system message arrived: the caller rouses it).
    pub(crate) fn take_waiting(&self) -> bool {
        std::mem::take(&mut self.state.lock().waiting)
    }

    /// Moves every queued envelope into the empty `batch`, or marks the run loop waiting. Ready
    /// also when `interrupted()` holds (a system message is waiting); it is checked again
    /// after registering so a wake between the two checks is not lost.
    ///
    /// Only the cell's own run loop may call this (and [`Mailbox::poll_until`]), as it runs
    /// under the cell's waker: the wake a push makes queues the cell, not the waker of the
    /// task polling.
    pub(crate) fn poll_batch(
        &self,
        batch: &mut VecDeque<Envelope<M>>,
        interrupted: impl Fn() -> bool,
    ) -> Poll<()> {
        if interrupted() {
            return Poll::Ready(());
        }
        let mut st = self.state.lock();
        if !st.queue.is_empty() {
            std::mem::swap(&mut st.queue, batch);
            st.runtime = 0;
            st.waiting = false;
            return Poll::Ready(());
        }
        st.waiting = true;
        drop(st);
        if interrupted() {
            return Poll::Ready(());
        }
        Poll::Pending
    }

    /// Marks the run loop waiting until `ready()` holds; for waits that take no user message
    /// (a suspended or stopping actor waiting for system messages).
    pub(crate) fn poll_until(&self, ready: impl Fn() -> bool) -> Poll<()> {
        if ready() {
            return Poll::Ready(());
        }
        self.state.lock().waiting = true;
        if ready() {
            return Poll::Ready(());
        }
        Poll::Pending
    }

    /// Closes the mailbox and returns what was still queued.
    pub(crate) fn close(&self) -> VecDeque<Envelope<M>> {
        let mut st = self.state.lock();
        st.closed = true;
        st.runtime = 0;
        st.waiting = false;
        std::mem::take(&mut st.queue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_keeps_its_capacity_and_policy() {
        assert!(Bound::new(&MailboxConfig::Unbounded).get().is_none());
        for policy in [
            OverflowPolicy::DropNewest,
            OverflowPolicy::DropOldest,
            OverflowPolicy::FailSender,
        ] {
            for capacity in [1, 2, 1000, usize::MAX >> 2] {
                let config = MailboxConfig::bounded(NonZeroUsize::new(capacity).unwrap(), policy);
                assert_eq!(Bound::new(&config).get(), Some((capacity, policy)));
            }
            let huge = MailboxConfig::bounded(NonZeroUsize::MAX, policy);
            assert_eq!(
                Bound::new(&huge).get(),
                Some((Bound::CAPACITY_MASK, policy)),
                "a capacity past 2^62 is clamped, its policy kept"
            );
        }
    }
}
