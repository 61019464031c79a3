//! [`Props`]: the recipe an actor is made from, at spawn and at every restart.

use std::fmt;
use std::sync::Arc;

use crate::actor::Actor;
use crate::mailbox::MailboxConfig;
use crate::supervision::SupervisorStrategy;

/// How many messages an actor may stash by default. A bound keeps a stuck actor from
/// growing without limit; raise it for actors that stash long bursts.
pub const DEFAULT_STASH_CAPACITY: usize = 10_000;

/// The recipe for an actor: a factory (called at spawn and at each restart), the mailbox,
/// and the strategy this actor uses to supervise its own children.
pub struct Props<A: Actor> {
    pub(crate) recipe: Recipe<A>,
    pub(crate) mailbox: MailboxConfig,
}

/// The part of [`Props`] a running actor keeps (the mailbox is built once, at spawn). Shared
/// by every actor spawned from the same props: one pointer in each actor's run loop.
pub(crate) struct Recipe<A: Actor>(pub(crate) Arc<RecipeParts<A>>);

/// What a [`Recipe`] holds.
pub(crate) struct RecipeParts<A: Actor> {
    factory: Arc<dyn Fn() -> A + Send + Sync>,
    pub(crate) supervisor: SupervisorStrategy,
    pub(crate) stash_capacity: usize,
}

impl<A: Actor> Recipe<A> {
    pub(crate) fn create(&self) -> A {
        (self.0.factory)()
    }

    /// The parts, copied first if other props share them.
    fn parts_mut(&mut self) -> &mut RecipeParts<A> {
        Arc::make_mut(&mut self.0)
    }
}

impl<A: Actor> std::ops::Deref for Recipe<A> {
    type Target = RecipeParts<A>;

    fn deref(&self) -> &RecipeParts<A> {
        &self.0
    }
}

impl<A: Actor> Clone for Recipe<A> {
    fn clone(&self) -> Self {
        Recipe(self.0.clone())
    }
}

impl<A: Actor> Clone for RecipeParts<A> {
    fn clone(&self) -> Self {
        RecipeParts {
            factory: self.factory.clone(),
            supervisor: self.supervisor.clone(),
            stash_capacity: self.stash_capacity,
        }
    }
}

impl<A: Actor> Props<A> {
    /// Props that build each instance with `factory`.
    pub fn new(factory: impl Fn() -> A + Send + Sync + 'static) -> Self {
        Props {
            recipe: Recipe(Arc::new(RecipeParts {
                factory: Arc::new(factory),
                supervisor: SupervisorStrategy::default(),
                stash_capacity: DEFAULT_STASH_CAPACITY,
            })),
            mailbox: MailboxConfig::default(),
        }
    }

    /// Props that clone `prototype` for each instance.
    pub fn from_clone(prototype: A) -> Self
    where
        A: Clone + Sync,
    {
        Props::new(move || prototype.clone())
    }

    /// Uses this mailbox instead of the unbounded default.
    pub fn with_mailbox(mut self, mailbox: MailboxConfig) -> Self {
        self.mailbox = mailbox;
        self
    }

    /// How this actor supervises its children (the default restarts them).
    pub fn supervisor(mut self, strategy: SupervisorStrategy) -> Self {
        self.recipe.parts_mut().supervisor = strategy;
        self
    }

    /// How many messages [`Context::stash`](crate::Context::stash) keeps.
    pub fn with_stash_capacity(mut self, capacity: usize) -> Self {
        self.recipe.parts_mut().stash_capacity = capacity;
        self
    }
}

impl<A: Actor> Clone for Props<A> {
    fn clone(&self) -> Self {
        Props {
            recipe: self.recipe.clone(),
            mailbox: self.mailbox,
        }
    }
}

impl<A: Actor> fmt::Debug for Props<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Props")
            .field("actor", &std::any::type_name::<A>())
            .field("mailbox", &self.mailbox)
            .field("supervisor", &self.recipe.supervisor)
            .field("stash_capacity", &self.recipe.stash_capacity)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ActorResult, Context};

    struct Quiet;
    impl Actor for Quiet {
        type Msg = ();
        async fn handle(&mut self, (): (), _: &mut Context<Self>) -> ActorResult {
            Ok(())
        }
    }

    /// Clones share their recipe until one is changed.
    #[test]
    fn changing_a_clone_of_props_leaves_the_original_alone() {
        let original = Props::new(|| Quiet);
        let changed = original
            .clone()
            .with_stash_capacity(5)
            .supervisor(SupervisorStrategy::stopping());
        assert_eq!(original.recipe.stash_capacity, DEFAULT_STASH_CAPACITY);
        assert_eq!(changed.recipe.stash_capacity, 5);
        assert_eq!(
            format!("{:?}", original.recipe.supervisor),
            format!("{:?}", SupervisorStrategy::default())
        );
        assert_eq!(
            format!("{:?}", changed.recipe.supervisor),
            format!("{:?}", SupervisorStrategy::stopping())
        );
    }
}
