//! Typed actor references: `tell`, `ask`, and the reply handle for request/response.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::cell::{CellHandle, LocalCell, SystemMsg};
use crate::error::{AskError, TellError};
use crate::event_stream::DeadLetterReason;
use crate::mailbox::Envelope;
use crate::path::{ActorId, ActorPath};

/// A reference that is not a local cell: a remote actor (provided by `actor-cluster`) or an
/// adapter. Implement it to make an `ActorRef<M>` reach something other than a local actor.
pub trait RefBackend<M>: Send + Sync + 'static {
    /// The target's identity.
    fn id(&self) -> &ActorId;
    /// Sends without blocking; returns the message if it cannot be sent at all.
    ///
    /// # Errors
    /// [`TellError`] with the message when the target is known to be unreachable.
    fn tell(&self, msg: M) -> Result<(), TellError<M>>;
    /// Asks the target to stop (`graceful`: after the messages already sent to it).
    fn stop(&self, graceful: bool);
    /// Registers `watcher` for exactly one [`Terminated`](crate::Terminated) of the target.
    fn watch(&self, watcher: Watcher);
    /// Cancels a registration made with [`RefBackend::watch`].
    fn unwatch(&self, watcher: &ActorId);
    /// Whether the target is known to have terminated (default: not known).
    fn is_terminated(&self) -> bool {
        false
    }
}

/// A local actor that watches another; given to [`RefBackend::watch`] so a remote layer can
/// deliver the termination signal.
#[derive(Clone)]
pub struct Watcher(pub(crate) Arc<dyn CellHandle>);

impl Watcher {
    /// The watching actor.
    pub fn id(&self) -> &ActorId {
        &self.0.core().id
    }

    /// Tells the watcher that `actor` has terminated. The watcher's runtime filters duplicates
    /// and signals the watch at most once.
    pub fn notify_terminated(&self, actor: ActorId) {
        self.0.send_system(SystemMsg::Terminated(actor));
    }
}

impl fmt::Debug for Watcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Watcher({})", self.id())
    }
}

enum RefInner<M> {
    Local(Arc<LocalCell<M>>),
    Backend(Arc<dyn RefBackend<M>>),
}

/// A typed handle to an actor that takes messages of type `M`. Cheap to clone; equal and
/// hashed by path plus incarnation uid.
pub struct ActorRef<M> {
    inner: RefInner<M>,
}

impl<M: Send + 'static> ActorRef<M> {
    pub(crate) fn local(cell: Arc<LocalCell<M>>) -> Self {
        ActorRef {
            inner: RefInner::Local(cell),
        }
    }

    /// The local cell behind this ref, if it is local.
    #[inline]
    pub(crate) fn local_cell(&self) -> Option<&Arc<LocalCell<M>>> {
        match &self.inner {
            RefInner::Local(c) => Some(c),
            RefInner::Backend(_) => None,
        }
    }

    /// A ref backed by something other than a local cell (a remote actor, an adapter).
    pub fn from_backend(backend: Arc<dyn RefBackend<M>>) -> Self {
        ActorRef {
            inner: RefInner::Backend(backend),
        }
    }

    /// The target's identity (path and incarnation uid).
    pub fn id(&self) -> &ActorId {
        match &self.inner {
            RefInner::Local(c) => &c.core.id,
            RefInner::Backend(b) => b.id(),
        }
    }

    /// The target's path.
    pub fn path(&self) -> &ActorPath {
        self.id().path()
    }

    /// Whether the target lives in this process.
    pub fn is_local(&self) -> bool {
        matches!(self.inner, RefInner::Local(_))
    }

    /// Sends a message; never blocks. A message the target cannot take (it is dead, or its
    /// bounded mailbox refuses it) goes to dead letters.
    #[inline]
    pub fn tell(&self, msg: M) {
        match &self.inner {
            RefInner::Local(c) => match c.enqueue(Envelope::User(msg)) {
                Ok(()) => {}
                Err(TellError::Dead(env)) => c.dead_letter(env, DeadLetterReason::RecipientDead),
                Err(TellError::MailboxFull(env)) => {
                    c.dead_letter(env, DeadLetterReason::MailboxFull)
                }
            },
            RefInner::Backend(b) => {
                let _ = b.tell(msg);
            }
        }
    }

    /// Sends a message, or gives it back when the target is dead or its mailbox refuses it
    /// (only a bounded mailbox with [`OverflowPolicy::FailSender`](crate::OverflowPolicy)
    /// refuses). Never blocks.
    ///
    /// # Errors
    /// [`TellError::Dead`] or [`TellError::MailboxFull`], carrying the message.
    pub fn try_tell(&self, msg: M) -> Result<(), TellError<M>> {
        match &self.inner {
            RefInner::Local(c) => match c.enqueue(Envelope::User(msg)) {
                Err(TellError::Dead(Envelope::User(m))) => Err(TellError::Dead(m)),
                Err(TellError::MailboxFull(Envelope::User(m))) => Err(TellError::MailboxFull(m)),
                // a user envelope comes back as a user envelope; nothing else can be refused
                Ok(()) | Err(_) => Ok(()),
            },
            RefInner::Backend(b) => b.tell(msg),
        }
    }

    /// Sends a request built around a fresh [`ReplyTo`] and waits up to `timeout` for the
    /// answer.
    ///
    /// # Errors
    /// [`AskError::Timeout`] when no answer came in time, [`AskError::RecipientDead`] when
    /// the target is (or became) dead, [`AskError::NoReply`] when it dropped the reply handle,
    /// [`AskError::MailboxFull`] when its mailbox refused the request.
    ///
    /// # Cancel safety
    /// Dropping the future abandons the request; a late reply is discarded.
    pub async fn ask<R: Send + 'static>(
        &self,
        make: impl FnOnce(ReplyTo<R>) -> M,
        timeout: Duration,
    ) -> Result<R, AskError> {
        let (tx, rx) = oneshot::channel();
        let request = make(ReplyTo::channel(tx));
        if let Err(e) = self.try_tell(request) {
            return Err(match e {
                TellError::Dead(_) => AskError::RecipientDead {
                    recipient: self.path().clone(),
                },
                TellError::MailboxFull(_) => AskError::MailboxFull {
                    recipient: self.path().clone(),
                },
            });
        }
        // On a multi-thread runtime, give the recipient one turn before arming the timeout:
        // the answer is often there by then, and arming a timer earlier than the one the
        // time driver sleeps on would wake the thread parked on the driver. On a
        // current-thread runtime the yield would cost a poll of the I/O driver (a system
        // call), and arming the timer wakes nobody, so the ask waits on the timeout at once.
        let mut rx = rx;
        if self.yields_before_waiting() {
            tokio::task::yield_now().await;
            match rx.try_recv() {
                Ok(v) => return Ok(v),
                Err(oneshot::error::TryRecvError::Closed) => return Err(self.reply_dropped()),
                Err(oneshot::error::TryRecvError::Empty) => {}
            }
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(_)) => Err(self.reply_dropped()),
            Err(_) => Err(AskError::Timeout {
                recipient: self.path().clone(),
                after: timeout,
            }),
        }
    }

    /// Whether an ask yields once before it arms its timeout: not for a local actor on a
    /// current-thread runtime (see [`ActorRef::ask`]).
    fn yields_before_waiting(&self) -> bool {
        match &self.inner {
            RefInner::Local(c) => c.core.system.inner.multi_thread,
            RefInner::Backend(_) => true,
        }
    }

    /// Offers a message without producing a dead letter: true only if the target queued it
    /// (the event stream's delivery, which must never feed dead letters back into itself).
    pub(crate) fn offer(&self, msg: M) -> bool {
        match &self.inner {
            RefInner::Local(c) => c.offer(Envelope::User(msg)),
            RefInner::Backend(b) => b.tell(msg).is_ok(),
        }
    }

    /// Stops the actor after the message it is handling; queued messages go to dead letters.
    pub fn stop(&self) {
        match &self.inner {
            RefInner::Local(c) => c.send_system(SystemMsg::Stop),
            RefInner::Backend(b) => b.stop(false),
        }
    }

    /// Stops the actor gracefully: after the messages already queued (a poison pill).
    pub fn poison_pill(&self) {
        match &self.inner {
            RefInner::Local(c) => {
                // a full bounded mailbox refuses the pill: stop at once rather than never
                if c.enqueue(Envelope::PoisonPill).is_err() {
                    c.send_system(SystemMsg::Stop);
                }
            }
            RefInner::Backend(b) => b.stop(true),
        }
    }

    /// Whether the target is known to have terminated (a remote target is known dead only
    /// once its node reported it).
    pub fn is_terminated(&self) -> bool {
        match &self.inner {
            RefInner::Local(c) => c.core.is_dead(),
            RefInner::Backend(b) => b.is_terminated(),
        }
    }

    /// The error for a reply handle dropped unanswered: the recipient died, or dropped it.
    fn reply_dropped(&self) -> AskError {
        let recipient = self.path().clone();
        if self.is_stopping_or_terminated() {
            AskError::RecipientDead { recipient }
        } else {
            AskError::NoReply { recipient }
        }
    }

    fn is_stopping_or_terminated(&self) -> bool {
        match &self.inner {
            RefInner::Local(c) => {
                c.core.stopping.load(std::sync::atomic::Ordering::Acquire) || c.core.is_dead()
            }
            RefInner::Backend(b) => b.is_terminated(),
        }
    }

    /// A ref that takes `N` and delivers `f(n)` to this actor (a message adapter). It shares
    /// this actor's identity: watching it watches this actor.
    pub fn adapt<N: Send + 'static>(
        &self,
        f: impl Fn(N) -> M + Send + Sync + 'static,
    ) -> ActorRef<N> {
        ActorRef::from_backend(Arc::new(Adapter {
            target: self.clone(),
            map: Box::new(f),
        }))
    }

    pub(crate) fn watch_from(&self, watcher: &Arc<dyn CellHandle>) {
        match &self.inner {
            RefInner::Local(c) => {
                if !c.core.add_watcher(watcher.clone()) {
                    watcher.send_system(SystemMsg::Terminated(c.core.id.clone()));
                }
            }
            RefInner::Backend(b) => b.watch(Watcher(watcher.clone())),
        }
    }

    pub(crate) fn unwatch_from(&self, watcher: &ActorId) {
        match &self.inner {
            RefInner::Local(c) => c.core.remove_watcher(watcher),
            RefInner::Backend(b) => b.unwatch(watcher),
        }
    }
}

struct Adapter<N, M> {
    target: ActorRef<M>,
    map: Box<dyn Fn(N) -> M + Send + Sync>,
}

impl<N: Send + 'static, M: Send + 'static> RefBackend<N> for Adapter<N, M> {
    fn id(&self) -> &ActorId {
        self.target.id()
    }
    fn tell(&self, msg: N) -> Result<(), TellError<N>> {
        if self.target.is_terminated() {
            return Err(TellError::Dead(msg));
        }
        // once mapped, a refusal cannot give an N back: it becomes a dead letter
        self.target.tell((self.map)(msg));
        Ok(())
    }
    fn stop(&self, graceful: bool) {
        if graceful {
            self.target.poison_pill()
        } else {
            self.target.stop()
        }
    }
    fn watch(&self, watcher: Watcher) {
        self.target.watch_from(&watcher.0);
    }
    fn unwatch(&self, watcher: &ActorId) {
        self.target.unwatch_from(watcher);
    }
    fn is_terminated(&self) -> bool {
        self.target.is_terminated()
    }
}

impl<M> Clone for ActorRef<M> {
    fn clone(&self) -> Self {
        ActorRef {
            inner: match &self.inner {
                RefInner::Local(c) => RefInner::Local(c.clone()),
                RefInner::Backend(b) => RefInner::Backend(b.clone()),
            },
        }
    }
}

impl<M: Send + 'static> PartialEq for ActorRef<M> {
    fn eq(&self, other: &Self) -> bool {
        self.id() == other.id()
    }
}

impl<M: Send + 'static> Eq for ActorRef<M> {}

impl<M: Send + 'static> Hash for ActorRef<M> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id().hash(state)
    }
}

impl<M: Send + 'static> fmt::Debug for ActorRef<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ActorRef({})", self.id())
    }
}

impl<M: Send + 'static> fmt::Display for ActorRef<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.path(), f)
    }
}

enum ReplyInner<R> {
    // In a mutex so that serializing (remoting) can move the sender out through `&self`.
    Channel(parking_lot::Mutex<Option<oneshot::Sender<R>>>),
    Actor(ActorRef<R>),
}

/// Where the answer to a request goes: put one in your request message and call
/// [`ReplyTo::reply`] once. Made by [`ActorRef::ask`], or from an actor's ref with
/// [`ReplyTo::to_actor`] so the answer arrives as a message.
pub struct ReplyTo<R> {
    inner: ReplyInner<R>,
}

impl<R: Send + 'static> ReplyTo<R> {
    fn channel(tx: oneshot::Sender<R>) -> Self {
        ReplyTo {
            inner: ReplyInner::Channel(parking_lot::Mutex::new(Some(tx))),
        }
    }

    /// A reply handle that sends the answer to an actor.
    pub fn to_actor(target: ActorRef<R>) -> Self {
        ReplyTo {
            inner: ReplyInner::Actor(target),
        }
    }

    /// Answers the request; false when the asker is no longer waiting.
    pub fn reply(self, value: R) -> bool {
        match self.inner {
            ReplyInner::Channel(tx) => tx.into_inner().is_some_and(|tx| tx.send(value).is_ok()),
            ReplyInner::Actor(r) => r.try_tell(value).is_ok(),
        }
    }

    /// Whether the asker has given up (timed out or dropped); a channel handle only.
    pub fn is_abandoned(&self) -> bool {
        match &self.inner {
            ReplyInner::Channel(tx) => tx.lock().as_ref().is_none_or(|tx| tx.is_closed()),
            ReplyInner::Actor(r) => r.is_terminated(),
        }
    }
}

impl<R> fmt::Debug for ReplyTo<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReplyTo(..)")
    }
}

/// Serializes as the target's path string (a remote node resolves it back to a working ref).
impl<M: Send + 'static> serde::Serialize for ActorRef<M> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self.path())
    }
}

/// Resolves a path string through the remoting layer's resolver (see
/// [`crate::remote_support`]); fails outside a remoting decode.
impl<'de, M: Send + 'static> serde::Deserialize<'de> for ActorRef<M> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let path = String::deserialize(deserializer)?;
        let resolved = crate::remote_support::resolve_ref(
            &path,
            std::any::TypeId::of::<M>(),
            std::any::type_name::<M>(),
        )
        .map_err(serde::de::Error::custom)?;
        resolved.downcast::<ActorRef<M>>().map(|r| *r).map_err(|_| {
            serde::de::Error::custom(format!(
                "the resolver returned another type than ActorRef<{}>",
                std::any::type_name::<M>()
            ))
        })
    }
}

/// Serializes as a path: an actor reply handle as its actor's path, an `ask` channel as a
/// temporary path the remoting layer answers at (see [`crate::remote_support`]).
impl<R: Send + 'static> serde::Serialize for ReplyTo<R> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.inner {
            ReplyInner::Actor(r) => r.serialize(serializer),
            ReplyInner::Channel(tx) => {
                let tx = tx.lock().take().ok_or_else(|| {
                    serde::ser::Error::custom("this ReplyTo was already sent to another node")
                })?;
                let path = crate::remote_support::expose_reply(
                    Box::new(tx),
                    std::any::TypeId::of::<R>(),
                    std::any::type_name::<R>(),
                )
                .map_err(serde::ser::Error::custom)?;
                serializer.serialize_str(&path)
            }
        }
    }
}

/// Resolves to a reply handle that sends the answer to the actor (or ask) at the path.
impl<'de, R: Send + 'static> serde::Deserialize<'de> for ReplyTo<R> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        ActorRef::<R>::deserialize(deserializer).map(ReplyTo::to_actor)
    }
}
