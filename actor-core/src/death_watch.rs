//! Death-watch: the [`Terminated`] signal an actor gets, exactly once, for each actor it
//! watches (and each child) that stops.

use crate::actor_ref::ActorRef;
use crate::path::{ActorId, ActorPath};

/// A watched actor (or a child) has terminated. Delivered once per watched actor, also when
/// it was already dead at watch time.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Terminated {
    actor: ActorId,
}

impl Terminated {
    pub(crate) fn new(actor: ActorId) -> Self {
        Terminated { actor }
    }

    /// The actor that terminated.
    pub fn actor(&self) -> &ActorId {
        &self.actor
    }

    /// Its path.
    pub fn path(&self) -> &ActorPath {
        self.actor.path()
    }

    /// Whether this is the termination of `actor_ref`'s incarnation.
    pub fn is<M: Send + 'static>(&self, actor_ref: &ActorRef<M>) -> bool {
        &self.actor == actor_ref.id()
    }
}

/// One watch this actor holds: how it delivers, and how to cancel it at the target.
pub(crate) struct Watching<M> {
    pub(crate) mode: WatchMode<M>,
    /// Removes this actor from the target's watchers (called with this actor's id).
    pub(crate) unwatch: Box<dyn Fn(&ActorId) + Send>,
}

/// How a watch delivers its signal.
pub(crate) enum WatchMode<M> {
    /// Through [`Actor::terminated`](crate::Actor::terminated).
    Signal,
    /// As this message, through [`Actor::handle`](crate::Actor::handle).
    Message(M),
}
