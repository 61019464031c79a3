//! Hooks for a remoting layer: how [`ActorRef`](crate::ActorRef) and
//! [`ReplyTo`](crate::ReplyTo) cross the wire.
//!
//! An `ActorRef<M>` serializes (serde) as its path string. Deserializing one needs the
//! receiving node's help: the remoting layer installs a [`RefResolver`] on the decoding
//! thread with [`with_ref_resolver`] for the duration of decoding one message (the way Akka
//! resolves refs during deserialization), and `Deserialize for ActorRef<M>` asks it for a
//! working ref of that path and message type. A `ReplyTo` made by
//! [`ActorRef::ask`](crate::ActorRef::ask) holds a local channel; serializing it hands the
//! channel to the installed [`ReplyExposer`] (see [`with_reply_exposer`]), which gives back a
//! path that answers arrive at. Outside these scopes serialization of a channel reply handle
//! and deserialization of any ref fail with a serde error saying why.
//!
//! Local actors never go through any of this: no serialization happens between actors of one
//! process.

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::sync::Arc;

/// Resolves actor paths found in inbound messages to refs of a given message type.
pub trait RefResolver: Send + Sync {
    /// A boxed `ActorRef<M>` for `path`, where `type_id` is `TypeId::of::<M>()`.
    ///
    /// # Errors
    /// A message for the serde error when the path is malformed or `M` is not a type the
    /// remoting layer knows (`type_name` names it).
    fn resolve(
        &self,
        path: &str,
        type_id: TypeId,
        type_name: &'static str,
    ) -> Result<Box<dyn Any + Send>, String>;
}

/// Turns a local reply channel into a path that answers can be sent to from other nodes.
pub trait ReplyExposer: Send + Sync {
    /// Takes `channel` (a boxed `tokio::sync::oneshot::Sender<R>`, `type_id` being
    /// `TypeId::of::<R>()`) and returns the path a reply is sent to.
    ///
    /// # Errors
    /// A message for the serde error when `R` is not a type the remoting layer knows.
    fn expose(
        &self,
        channel: Box<dyn Any + Send>,
        type_id: TypeId,
        type_name: &'static str,
    ) -> Result<String, String>;
}

thread_local! {
    static RESOLVER: RefCell<Option<Arc<dyn RefResolver>>> = const { RefCell::new(None) };
    static EXPOSER: RefCell<Option<Arc<dyn ReplyExposer>>> = const { RefCell::new(None) };
}

/// Restores the previous hook when a scope ends, also on unwind.
struct Restore<T: 'static> {
    key: &'static std::thread::LocalKey<RefCell<Option<T>>>,
    previous: Option<T>,
}

impl<T: 'static> Drop for Restore<T> {
    fn drop(&mut self) {
        let previous = self.previous.take();
        self.key.with(|slot| *slot.borrow_mut() = previous);
    }
}

/// Runs `f` with `resolver` installed for `ActorRef`/`ReplyTo` deserialization on this
/// thread; the previous resolver (if any) is restored afterwards.
pub fn with_ref_resolver<R>(resolver: Arc<dyn RefResolver>, f: impl FnOnce() -> R) -> R {
    let previous = RESOLVER.with(|slot| slot.borrow_mut().replace(resolver));
    let _restore = Restore {
        key: &RESOLVER,
        previous,
    };
    f()
}

/// Runs `f` with `exposer` installed for `ReplyTo` serialization on this thread; the
/// previous exposer (if any) is restored afterwards.
pub fn with_reply_exposer<R>(exposer: Arc<dyn ReplyExposer>, f: impl FnOnce() -> R) -> R {
    let previous = EXPOSER.with(|slot| slot.borrow_mut().replace(exposer));
    let _restore = Restore {
        key: &EXPOSER,
        previous,
    };
    f()
}

pub(crate) fn resolve_ref(
    path: &str,
    type_id: TypeId,
    type_name: &'static str,
) -> Result<Box<dyn Any + Send>, String> {
    let resolver = RESOLVER.with(|slot| slot.borrow().clone());
    match resolver {
        Some(r) => r.resolve(path, type_id, type_name),
        None => Err(format!(
            "cannot deserialize ActorRef<{type_name}> for {path:?}: no remoting resolver is \
             installed on this thread (refs resolve only while remoting decodes a message)"
        )),
    }
}

pub(crate) fn expose_reply(
    channel: Box<dyn Any + Send>,
    type_id: TypeId,
    type_name: &'static str,
) -> Result<String, String> {
    let exposer = EXPOSER.with(|slot| slot.borrow().clone());
    match exposer {
        Some(e) => e.expose(channel, type_id, type_name),
        None => Err(format!(
            "cannot serialize the ReplyTo<{type_name}> of an ask: no remoting layer is encoding \
             this message"
        )),
    }
}
