//! `ask` across nodes: the reply channel of a request becomes a temporary path.
//!
//! When a request holding the `ReplyTo` of [`ActorRef::ask`](actor_core::ActorRef::ask) is
//! encoded, the [`Exposer`] takes its oneshot channel, files it under a fresh number and
//! gives the path `<local address>/temp/ask-<n>` in its place. The remote actor replies to
//! that path like to any actor; the inbound dispatcher finds the channel by number, decodes
//! the answer into the reply type (manifest checked) and completes the ask. Channels whose
//! asker gave up (timed out, dropped) are swept on every remoting tick.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Weak;
use std::sync::atomic::{AtomicU64, Ordering};

use actor_core::remote_support::ReplyExposer;
use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::remoting::Shared;
use crate::wire::{self, RemoteMessage, WireError};

/// The path element under which temporary reply paths live.
pub(crate) const TEMP_SEGMENT: &str = "temp";
/// The name prefix of a temporary reply path.
pub(crate) const ASK_PREFIX: &str = "ask-";

/// A reply channel waiting for its answer, with the type erased.
pub(crate) trait PendingReply: Send {
    /// Decodes the answer and completes the ask.
    fn deliver(self: Box<Self>, manifest: &str, payload: &[u8]) -> Result<(), WireError>;
    /// Whether the asker stopped waiting.
    fn is_abandoned(&self) -> bool;
}

struct Pending<R>(oneshot::Sender<R>);

impl<R: RemoteMessage> PendingReply for Pending<R> {
    fn deliver(self: Box<Self>, manifest: &str, payload: &[u8]) -> Result<(), WireError> {
        let value = wire::decode_message::<R>(manifest, payload)?;
        // The asker may have given up meanwhile; a late answer is dropped.
        let _ = self.0.send(value);
        Ok(())
    }

    fn is_abandoned(&self) -> bool {
        self.0.is_closed()
    }
}

/// Wraps a boxed `oneshot::Sender<R>`; `None` if the box holds something else.
pub(crate) fn pending<R: RemoteMessage>(
    channel: Box<dyn Any + Send>,
) -> Option<Box<dyn PendingReply>> {
    channel
        .downcast::<oneshot::Sender<R>>()
        .ok()
        .map(|tx| Box::new(Pending(*tx)) as Box<dyn PendingReply>)
}

/// The reply channels of asks in flight, by number.
#[derive(Default)]
pub(crate) struct PendingAsks {
    next: AtomicU64,
    map: Mutex<HashMap<u64, Box<dyn PendingReply>>>,
}

impl PendingAsks {
    fn insert(&self, reply: Box<dyn PendingReply>) -> u64 {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        self.map.lock().insert(n, reply);
        n
    }

    /// Takes the channel numbered `n`, if it is still there.
    pub(crate) fn take(&self, n: u64) -> Option<Box<dyn PendingReply>> {
        self.map.lock().remove(&n)
    }

    /// Drops channels whose asker gave up; returns how many are left.
    pub(crate) fn sweep(&self) -> usize {
        let mut map = self.map.lock();
        map.retain(|_, p| !p.is_abandoned());
        map.len()
    }
}

/// Installed while remoting encodes a message: turns ask channels into temporary paths.
pub(crate) struct Exposer(pub(crate) Weak<Shared>);

impl ReplyExposer for Exposer {
    fn expose(
        &self,
        channel: Box<dyn Any + Send>,
        type_id: TypeId,
        type_name: &'static str,
    ) -> Result<String, String> {
        let shared = self
            .0
            .upgrade()
            .ok_or_else(|| "remoting has shut down".to_owned())?;
        let entry = shared.registry.read().by_type(type_id).cloned();
        let entry = entry.ok_or_else(|| {
            format!(
                "cannot send an ask whose reply type {type_name} is not registered with \
                 remoting (call register::<{type_name}>())"
            )
        })?;
        let reply = (entry.pending)(channel)
            .ok_or_else(|| format!("the reply channel is not a oneshot sender of {type_name}"))?;
        let n = shared.asks.insert(reply);
        Ok(format!("{}{n}", shared.temp_prefix))
    }
}
