//! Errors: what a handler returns on failure ([`ActorError`]) and the typed errors of the API.

use std::fmt;
use std::time::Duration;

use thiserror::Error;

use crate::path::{ActorPath, PathError};

/// What a failing handler returns: any error, boxed. Like `anyhow::Error`, it is built with
/// `?` from any `std::error::Error`, or with [`ActorError::msg`].
///
/// A supervisor's decider can look inside with [`ActorError::downcast_ref`].
pub struct ActorError(Box<dyn std::error::Error + Send + Sync + 'static>);

impl ActorError {
    /// An error carrying just a message.
    pub fn msg(message: impl Into<String>) -> Self {
        ActorError(message.into().into())
    }

    /// The inner error, if it is an `E`.
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.0.downcast_ref::<E>()
    }

    /// The inner error.
    pub fn inner(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for ActorError {
    fn from(e: E) -> Self {
        ActorError(Box::new(e))
    }
}

impl fmt::Display for ActorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for ActorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// The result type of actor hooks.
pub type ActorResult = Result<(), ActorError>;

/// Why an actor system could not be created.
#[derive(Debug, Error)]
pub enum SystemError {
    /// The name is not `[a-zA-Z0-9-_]+`.
    #[error(transparent)]
    InvalidName(#[from] PathError),
    /// Created outside a tokio runtime.
    #[error(
        "an ActorSystem must be created inside a tokio runtime (call it from async code or runtime.enter())"
    )]
    NoRuntime,
}

/// Why a spawn failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SpawnError {
    /// The requested name is not a valid actor name.
    #[error(transparent)]
    InvalidName(#[from] PathError),
    /// A sibling with this name exists (or has stopped but its parent has not yet seen it go).
    #[error("an actor named {name:?} already exists under {parent}")]
    DuplicateName {
        /// The parent's path.
        parent: ActorPath,
        /// The taken name.
        name: String,
    },
    /// The parent is stopping (or the system terminating, or its runtime was dropped): no
    /// new children.
    #[error("cannot spawn {name:?} under {parent}: the parent is stopping")]
    ParentStopping {
        /// The parent's path.
        parent: ActorPath,
        /// The requested name.
        name: String,
    },
}

/// Why an `ask` produced no answer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AskError {
    /// No reply within the timeout.
    #[error("ask to {recipient} timed out after {after:?}")]
    Timeout {
        /// Who was asked.
        recipient: ActorPath,
        /// The timeout that passed.
        after: Duration,
    },
    /// The recipient is dead (or died before replying).
    #[error("ask to {recipient} failed: the recipient is dead")]
    RecipientDead {
        /// Who was asked.
        recipient: ActorPath,
    },
    /// The recipient dropped the reply handle without replying.
    #[error("ask to {recipient} failed: the request was dropped without a reply")]
    NoReply {
        /// Who was asked.
        recipient: ActorPath,
    },
    /// The recipient's mailbox was full and its policy fails the sender.
    #[error("ask to {recipient} failed: its mailbox is full")]
    MailboxFull {
        /// Who was asked.
        recipient: ActorPath,
    },
}

/// Why [`ActorRef::try_tell`](crate::ActorRef::try_tell) did not enqueue; carries the message
/// back.
#[derive(Error)]
pub enum TellError<M> {
    /// The recipient has stopped.
    #[error("recipient is dead")]
    Dead(M),
    /// The recipient's bounded mailbox is full and its policy is to fail the sender.
    #[error("recipient's mailbox is full")]
    MailboxFull(M),
}

impl<M> TellError<M> {
    /// The message that was not delivered.
    pub fn into_inner(self) -> M {
        match self {
            TellError::Dead(m) | TellError::MailboxFull(m) => m,
        }
    }
}

impl<M> fmt::Debug for TellError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TellError::Dead(_) => f.write_str("TellError::Dead(..)"),
            TellError::MailboxFull(_) => f.write_str("TellError::MailboxFull(..)"),
        }
    }
}

/// Why a path lookup found no usable actor.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LookupError {
    /// No live actor at that path.
    #[error("no actor at {path}")]
    NotFound {
        /// The path looked up.
        path: ActorPath,
    },
    /// The path belongs to another system or a remote node.
    #[error("{path} is not a path of this actor system ({system})")]
    ForeignPath {
        /// The path looked up.
        path: ActorPath,
        /// This system's name.
        system: String,
    },
    /// An actor lives there, but its message type is not the one asked for.
    #[error("the actor at {path} does not take messages of type {expected}")]
    WrongMessageType {
        /// The path looked up.
        path: ActorPath,
        /// The message type the caller asked for.
        expected: &'static str,
    },
    /// The string was not a valid path.
    #[error(transparent)]
    InvalidPath(#[from] PathError),
}

/// Why a message could not be stashed.
#[derive(Error)]
#[error("stash is full ({capacity} messages)")]
pub struct StashFull<M> {
    /// The stash's capacity.
    pub capacity: usize,
    /// The message that did not fit.
    pub message: M,
}

impl<M> fmt::Debug for StashFull<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StashFull {{ capacity: {} }}", self.capacity)
    }
}
