//! Inbound dispatch of user messages: the recipient's uid is checked, a temporary ask path
//! completes its ask, any other path is decoded into the manifest's registered type and told
//! to the local actor there. Whatever cannot be delivered is logged and becomes a dead letter.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use actor_core::{ActorPath, ActorRef, DeadLetterReason, LookupError};
use bytes::Bytes;

use super::codec::FastHashBuild;
use super::remoting::Shared;
use crate::wire::{self, RemoteMessage};

/// An inbound message that could not be decoded into any type, published as a dead letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndeliveredRemoteMessage {
    /// The recipient as sent (path, with `#<uid>` when the sender knew this node's uid).
    pub recipient: String,
    /// The payload's manifest.
    pub manifest: String,
    /// The encoded payload.
    pub payload: Bytes,
    /// Why it was not delivered.
    pub reason: String,
}

/// Decodes a payload into the cached target's type and tells it; false (nothing done)
/// when the target has terminated, so the slow path looks it up again.
type DeliverCachedFn = fn(&str, &(dyn Any + Send), &str, &[u8]) -> bool;

/// A resolved local recipient: its ref (an `ActorRef<M>`), `M`'s manifest and how to
/// deliver to it without the registry.
struct Cached {
    target: Box<dyn Any + Send>,
    manifest: &'static str,
    deliver: DeliverCachedFn,
}

/// Resolved local recipients, by recipient string as sent, so that a stream of messages to
/// one actor skips the uid split, the ask-path check, the registry and the path lookup.
pub(crate) struct RefCache {
    map: HashMap<String, Cached, FastHashBuild>,
    capacity: usize,
}

impl RefCache {
    pub(crate) fn new(capacity: usize) -> Self {
        RefCache {
            map: HashMap::default(),
            capacity,
        }
    }

    fn insert<M: RemoteMessage>(&mut self, key: &str, target: ActorRef<M>) {
        if self.map.len() >= self.capacity {
            self.map.clear();
        }
        let cached = Cached {
            target: Box::new(target),
            manifest: M::MANIFEST,
            deliver: deliver_cached::<M>,
        };
        self.map.insert(key.to_owned(), cached);
    }
}

/// One user message to deliver locally.
pub(crate) struct Deliver<'a> {
    /// The recipient string as sent (the cache key).
    pub(crate) recipient: &'a str,
    /// The recipient path without the uid suffix.
    pub(crate) path: &'a str,
    pub(crate) manifest: &'a str,
    pub(crate) payload: &'a [u8],
}

/// Splits `<path>#<uid>` into the path and the uid.
pub(crate) fn split_uid(recipient: &str) -> (&str, Option<u64>) {
    match recipient.rsplit_once('#') {
        Some((path, uid)) => (path, uid.parse().ok()),
        None => (recipient, None),
    }
}

fn undelivered(shared: &Shared, recipient: &str, manifest: &str, payload: &[u8], reason: String) {
    let (path, _) = split_uid(recipient);
    let path =
        ActorPath::parse(path).unwrap_or_else(|_| ActorPath::root(shared.system.address().clone()));
    shared.system.publish_dead_letter(
        path,
        UndeliveredRemoteMessage {
            recipient: recipient.to_owned(),
            manifest: manifest.to_owned(),
            payload: Bytes::copy_from_slice(payload),
            reason,
        },
        DeadLetterReason::UnknownRecipient,
    );
}

/// Dispatches one inbound user envelope.
pub(crate) fn dispatch_user(
    shared: &Arc<Shared>,
    cache: &mut RefCache,
    recipient: &str,
    manifest: &str,
    payload: &[u8],
) {
    // Fast path: a recipient (with its uid) already resolved for this manifest.
    if let Some(cached) = cache.map.get(recipient)
        && cached.manifest == manifest
        && (cached.deliver)(recipient, &*cached.target, manifest, payload)
    {
        return;
    }
    let (path, uid) = split_uid(recipient);
    if let Some(uid) = uid
        && uid != shared.local_uid
    {
        tracing::warn!(%recipient, local_uid = shared.local_uid, "message for another incarnation of this node; dead letter");
        let reason = format!(
            "addressed to node incarnation {uid}, this is {}",
            shared.local_uid
        );
        return undelivered(shared, recipient, manifest, payload, reason);
    }
    if let Some(n) = path
        .strip_prefix(&*shared.temp_prefix)
        .and_then(|rest| rest.parse::<u64>().ok())
    {
        return match shared.asks.take(n) {
            Some(reply) => {
                if let Err(error) = reply.deliver(manifest, payload) {
                    tracing::warn!(%recipient, %error, "undecodable answer to an ask; dropped");
                }
            }
            None => tracing::debug!(%recipient, "answer to an ask nobody waits for; dropped"),
        };
    }
    let deliver = shared
        .registry
        .read()
        .by_manifest(manifest)
        .map(|e| e.deliver);
    match deliver {
        Some(deliver) => deliver(
            shared,
            cache,
            Deliver {
                recipient,
                path,
                manifest,
                payload,
            },
        ),
        None => {
            tracing::warn!(%recipient, %manifest, "unknown manifest (not registered); dead letter");
            let reason = format!("manifest {manifest:?} is not registered");
            undelivered(shared, recipient, manifest, payload, reason);
        }
    }
}

/// Decodes into `M` and tells the local actor at the path (registered per type).
pub(crate) fn deliver<M: RemoteMessage>(
    shared: &Arc<Shared>,
    cache: &mut RefCache,
    d: Deliver<'_>,
) {
    let msg = match wire::decode_message::<M>(d.manifest, d.payload) {
        Ok(msg) => msg,
        Err(error) => {
            tracing::warn!(recipient = d.recipient, %error, "undecodable message; dropped");
            return;
        }
    };
    let path = match ActorPath::parse(d.path) {
        Ok(path) => path,
        Err(error) => {
            tracing::warn!(recipient = d.recipient, %error, "malformed recipient path; dropped");
            return;
        }
    };
    match shared.system.lookup::<M>(&path) {
        Ok(target) => {
            target.tell(msg);
            cache.insert(d.recipient, target);
        }
        Err(error @ LookupError::WrongMessageType { .. }) => {
            tracing::warn!(
                recipient = %path,
                manifest = d.manifest,
                %error,
                "the recipient rejects a manifest that is not its own; dead letter"
            );
            shared
                .system
                .publish_dead_letter(path, msg, DeadLetterReason::UnknownRecipient);
        }
        Err(error) => {
            tracing::warn!(recipient = %path, %error, "unknown recipient; dead letter");
            shared
                .system
                .publish_dead_letter(path, msg, DeadLetterReason::UnknownRecipient);
        }
    }
}

/// The fast path of [`deliver`] for a cached target of type `ActorRef<M>`.
fn deliver_cached<M: RemoteMessage>(
    recipient: &str,
    target: &(dyn Any + Send),
    manifest: &str,
    payload: &[u8],
) -> bool {
    let Some(target) = target.downcast_ref::<ActorRef<M>>() else {
        return false;
    };
    if target.is_terminated() {
        return false;
    }
    match wire::decode_message::<M>(manifest, payload) {
        Ok(msg) => target.tell(msg),
        Err(error) => tracing::warn!(recipient, %error, "undecodable message; dropped"),
    }
    true
}
