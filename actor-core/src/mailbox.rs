//! Mailboxes: the queue of user messages in front of an actor.
//!
//! User messages travel in a flume channel (unbounded by default). System messages (stop,
//! supervision directives, death-watch signals) go into a separate queue that the actor drains
//! before every user message, so they never wait behind user messages; a `Wake` token in the
//! user channel rouses an idle actor when a system message arrives.

use std::num::NonZeroUsize;

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

    pub(crate) fn channel<M>(&self) -> (flume::Sender<Envelope<M>>, flume::Receiver<Envelope<M>>) {
        match self {
            MailboxConfig::Unbounded => flume::unbounded(),
            MailboxConfig::Bounded { capacity, .. } => flume::bounded(capacity.get()),
        }
    }
}

/// What travels in an actor's user channel.
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
    /// A system message is waiting; no payload.
    Wake,
}

impl<M> Envelope<M> {
    pub(crate) fn into_message(self) -> Option<M> {
        match self {
            Envelope::User(m) | Envelope::Timer { msg: m, .. } => Some(m),
            Envelope::PoisonPill | Envelope::Wake => None,
        }
    }
}
