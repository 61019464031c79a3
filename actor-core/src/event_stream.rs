//! The event stream: typed publish/subscribe inside one actor system, and the dead letters
//! published on it.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::{Mutex, RwLock};

use crate::actor_ref::ActorRef;
use crate::path::{ActorId, ActorPath};

/// Why a message became a dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLetterReason {
    /// The recipient had stopped (or stopped before processing it).
    RecipientDead,
    /// The recipient's bounded mailbox was full.
    MailboxFull,
    /// No actor lives at the recipient's path (e.g. an unknown remote path).
    UnknownRecipient,
    /// The stash was full.
    StashFull,
}

/// The undelivered message of a [`DeadLetter`], which the first taker can take back.
#[derive(Clone)]
pub struct DeadLetterMessage {
    type_name: &'static str,
    slot: Arc<Mutex<Option<Box<dyn Any + Send>>>>,
}

impl DeadLetterMessage {
    /// The message's Rust type name.
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }

    /// Takes the message out if it is a `T` and nobody took it before.
    pub fn take<T: 'static>(&self) -> Option<T> {
        let mut slot = self.slot.lock();
        if slot.as_ref().is_some_and(|b| b.is::<T>()) {
            slot.take().and_then(|b| b.downcast::<T>().ok()).map(|b| *b)
        } else {
            None
        }
    }
}

impl fmt::Debug for DeadLetterMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}>", self.type_name)
    }
}

/// A message that could not be delivered, published on the event stream.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// Where it was going.
    pub recipient: ActorPath,
    /// Why it was not delivered.
    pub reason: DeadLetterReason,
    /// The message itself.
    pub message: DeadLetterMessage,
}

type Subscriber = (ActorId, Box<dyn Any + Send + Sync>);

/// Typed publish/subscribe for one actor system. Subscribers are actors; one that stops is
/// removed.
#[derive(Default)]
pub struct EventStream {
    subscribers: RwLock<HashMap<TypeId, Vec<Subscriber>>>,
    /// How many subscriptions exist, so a stopping actor skips the write lock when none do.
    subscriptions: AtomicUsize,
    dead_letters: AtomicU64,
}

impl EventStream {
    /// Subscribes `subscriber` to every published `E`. Subscribing twice has no effect.
    pub fn subscribe<E: Clone + Send + 'static>(&self, subscriber: &ActorRef<E>) {
        let mut subs = self.subscribers.write();
        let list = subs.entry(TypeId::of::<E>()).or_default();
        if !list.iter().any(|(id, _)| id == subscriber.id()) {
            list.push((subscriber.id().clone(), Box::new(subscriber.clone())));
            self.subscriptions.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Removes `subscriber`'s subscription to `E`.
    pub fn unsubscribe<E: Clone + Send + 'static>(&self, subscriber: &ActorRef<E>) {
        if let Some(list) = self.subscribers.write().get_mut(&TypeId::of::<E>()) {
            let before = list.len();
            list.retain(|(id, _)| id != subscriber.id());
            self.subscriptions
                .fetch_sub(before - list.len(), Ordering::Relaxed);
        }
    }

    /// Removes every subscription of one actor (done when it stops).
    pub fn unsubscribe_all(&self, subscriber: &ActorId) {
        if self.subscriptions.load(Ordering::Relaxed) == 0 {
            return;
        }
        for list in self.subscribers.write().values_mut() {
            let before = list.len();
            list.retain(|(id, _)| id != subscriber);
            self.subscriptions
                .fetch_sub(before - list.len(), Ordering::Relaxed);
        }
    }

    /// Whether anyone listens for `E` (publishing can skip building the event otherwise).
    pub fn has_subscribers<E: 'static>(&self) -> bool {
        self.subscribers
            .read()
            .get(&TypeId::of::<E>())
            .is_some_and(|l| !l.is_empty())
    }

    /// Delivers `event` to every subscriber of `E`; returns how many took it. A subscriber
    /// that cannot take it (dead, or its bounded mailbox full, whatever its overflow policy)
    /// is skipped: the event stream never produces dead letters of its own.
    pub fn publish<E: Clone + Send + 'static>(&self, event: E) -> usize {
        // take the refs and release the lock before delivering: delivery may publish again
        let targets: Vec<ActorRef<E>> = match self.subscribers.read().get(&TypeId::of::<E>()) {
            Some(list) => list
                .iter()
                .filter_map(|(_, r)| r.downcast_ref::<ActorRef<E>>().cloned())
                .collect(),
            None => return 0,
        };
        targets
            .into_iter()
            .filter(|r| !r.is_terminated() && r.offer(event.clone()))
            .count()
    }

    /// How many dead letters this system has recorded.
    pub fn dead_letter_count(&self) -> u64 {
        self.dead_letters.load(Ordering::Relaxed)
    }

    pub(crate) fn record_dead_letter<M: Send + 'static>(
        &self,
        recipient: ActorPath,
        message: M,
        reason: DeadLetterReason,
    ) {
        let n = self.dead_letters.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%recipient, ?reason, message_type = std::any::type_name::<M>(), count = n + 1, "dead letter");
        // a dead letter about a dead letter is counted and logged, never published again
        if TypeId::of::<M>() != TypeId::of::<DeadLetter>() && self.has_subscribers::<DeadLetter>() {
            self.publish(DeadLetter {
                recipient,
                reason,
                message: DeadLetterMessage {
                    type_name: std::any::type_name::<M>(),
                    slot: Arc::new(Mutex::new(Some(Box::new(message)))),
                },
            });
        }
    }
}

impl fmt::Debug for EventStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventStream")
            .field("dead_letters", &self.dead_letter_count())
            .finish_non_exhaustive()
    }
}
