//! The [`RefBackend`] of a remote actor: `tell` encodes and sends at once; `watch` and
//! `unwatch` go to the remoting task, which runs the reliable system-message channel.

use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};

use actor_core::remote_support::with_reply_exposer;
use actor_core::{ActorId, DeadLetterReason, RefBackend, TellError, Watcher};

use super::association::Incarnation;
use super::codec;
use super::remoting::{Command, Shared};
use crate::wire::{self, RemoteMessage};

/// A ref to an actor on another node.
pub(crate) struct RemoteRef<M> {
    id: ActorId,
    path: String,
    /// `<path>#<uid>` once the peer's uid is known.
    recipient: OnceLock<String>,
    inc: Arc<Incarnation>,
    shared: Arc<Shared>,
    _msg: PhantomData<fn(M)>,
}

impl<M: RemoteMessage> RemoteRef<M> {
    pub(crate) fn new(id: ActorId, inc: Arc<Incarnation>, shared: Arc<Shared>) -> Self {
        RemoteRef {
            path: id.path().to_string(),
            id,
            recipient: OnceLock::new(),
            inc,
            shared,
            _msg: PhantomData,
        }
    }

    fn recipient(&self) -> &str {
        if let Some(r) = self.recipient.get() {
            return r;
        }
        match self.inc.uid() {
            Some(uid) => self
                .recipient
                .get_or_init(|| format!("{}#{uid}", self.path)),
            None => &self.path,
        }
    }

    fn encode(&self, msg: &M) -> Result<bytes::Bytes, wire::WireError> {
        with_reply_exposer(self.shared.exposer.clone(), || {
            codec::encode_user(self.recipient(), msg)
        })
    }
}

impl<M: RemoteMessage> RefBackend<M> for RemoteRef<M> {
    fn id(&self) -> &ActorId {
        &self.id
    }

    fn tell(&self, msg: M) -> Result<(), TellError<M>> {
        if self.inc.is_quarantined() {
            tracing::debug!(recipient = %self.path, "not sent: its node incarnation is quarantined");
            return Err(TellError::Dead(msg));
        }
        let frame = match self.encode(&msg) {
            Ok(frame) => frame,
            Err(error) => {
                tracing::warn!(recipient = %self.path, %error, "cannot encode a remote message; dead letter");
                self.shared.system.publish_dead_letter(
                    self.id.path().clone(),
                    msg,
                    DeadLetterReason::UnknownRecipient,
                );
                return Ok(());
            }
        };
        if let Err(error) = self.shared.transport.send(&self.inc.address, frame) {
            tracing::debug!(recipient = %self.path, %error, "transport refused a remote message; dead letter");
            self.shared.system.publish_dead_letter(
                self.id.path().clone(),
                msg,
                DeadLetterReason::UnknownRecipient,
            );
        }
        Ok(())
    }

    fn stop(&self, graceful: bool) {
        tracing::warn!(
            recipient = %self.path,
            graceful,
            "a remote actor cannot be stopped through its ref; send it a message instead"
        );
    }

    fn watch(&self, watcher: Watcher) {
        let command = Command::Watch {
            inc: self.inc.clone(),
            watchee: self.id.clone(),
            watcher,
        };
        if let Err(flume::SendError(Command::Watch {
            watchee, watcher, ..
        })) = self.shared.commands.send(command)
        {
            // remoting is gone: nothing will ever report this actor again
            watcher.notify_terminated(watchee);
        }
    }

    fn unwatch(&self, watcher: &ActorId) {
        let _ = self.shared.commands.send(Command::Unwatch {
            inc: self.inc.clone(),
            watchee: self.id.path().clone(),
            watcher: watcher.clone(),
        });
    }

    fn is_terminated(&self) -> bool {
        self.inc.is_quarantined()
    }
}

/// A ref to a local path where no actor of the type lives: messages go to dead letters and a
/// watch reports termination at once.
pub(crate) struct DeadRef<M> {
    id: ActorId,
    shared: Arc<Shared>,
    _msg: PhantomData<fn(M)>,
}

impl<M: Send + 'static> DeadRef<M> {
    pub(crate) fn new(id: ActorId, shared: Arc<Shared>) -> Self {
        DeadRef {
            id,
            shared,
            _msg: PhantomData,
        }
    }
}

impl<M: Send + 'static> RefBackend<M> for DeadRef<M> {
    fn id(&self) -> &ActorId {
        &self.id
    }

    fn tell(&self, msg: M) -> Result<(), TellError<M>> {
        self.shared.system.publish_dead_letter(
            self.id.path().clone(),
            msg,
            DeadLetterReason::UnknownRecipient,
        );
        Ok(())
    }

    fn stop(&self, _graceful: bool) {}

    fn watch(&self, watcher: Watcher) {
        watcher.notify_terminated(self.id.clone());
    }

    fn unwatch(&self, _watcher: &ActorId) {}

    fn is_terminated(&self) -> bool {
        true
    }
}
