//! The registry of message types that cross nodes: one entry per
//! [`RemoteMessage`](crate::wire::RemoteMessage) type, found by manifest (inbound frames) or
//! by `TypeId` (refs inside messages, reply channels), holding the type's monomorphic
//! functions so the rest of remoting needs no `dyn Any` juggling.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

use actor_core::{ActorPath, ActorSystem, LookupError};

use super::ask::{self, PendingReply};
use super::codec::FastHashBuild;
use super::inbound::{self, Deliver};
use super::ref_serde;
use super::remoting::{RemoteError, Shared};
use super::watch_proxy::{self, WatchRequest};
use crate::wire::RemoteMessage;

/// Decodes a payload and delivers it to a local actor (see [`inbound::deliver`]).
pub(crate) type DeliverFn = fn(&Arc<Shared>, &mut inbound::RefCache, Deliver<'_>);
/// Resolves a path to a boxed `ActorRef<M>`.
pub(crate) type ResolveFn = fn(&Arc<Shared>, &ActorPath) -> Box<dyn Any + Send>;
/// Wraps a boxed `oneshot::Sender<M>` as a pending reply.
pub(crate) type PendingFn = fn(Box<dyn Any + Send>) -> Option<Box<dyn PendingReply>>;
/// Finds a local actor taking `M` and builds the request that makes the proxy watch it.
pub(crate) type WatchLookupFn = fn(&ActorSystem, &ActorPath) -> Result<WatchRequest, LookupError>;

/// The functions of one registered message type.
pub(crate) struct TypeEntry {
    pub(crate) type_name: &'static str,
    pub(crate) deliver: DeliverFn,
    pub(crate) resolve: ResolveFn,
    pub(crate) pending: PendingFn,
    pub(crate) watch_lookup: WatchLookupFn,
}

/// All registered types.
#[derive(Default)]
pub(crate) struct Registry {
    by_manifest: HashMap<&'static str, Arc<TypeEntry>, FastHashBuild>,
    by_type: HashMap<TypeId, Arc<TypeEntry>>,
    /// In registration order (deterministic iteration).
    ordered: Vec<Arc<TypeEntry>>,
}

impl Registry {
    /// Registers `M`; registering the same type again is a no-op.
    pub(crate) fn register<M: RemoteMessage>(&mut self) -> Result<(), RemoteError> {
        if let Some(existing) = self.by_manifest.get(M::MANIFEST) {
            if self.by_type.contains_key(&TypeId::of::<M>()) {
                return Ok(());
            }
            return Err(RemoteError::DuplicateManifest {
                manifest: M::MANIFEST,
                registered: existing.type_name,
                rejected: std::any::type_name::<M>(),
            });
        }
        let entry = Arc::new(TypeEntry {
            type_name: std::any::type_name::<M>(),
            deliver: inbound::deliver::<M>,
            resolve: ref_serde::resolve::<M>,
            pending: ask::pending::<M>,
            watch_lookup: watch_proxy::lookup::<M>,
        });
        self.by_manifest.insert(M::MANIFEST, entry.clone());
        self.by_type.insert(TypeId::of::<M>(), entry.clone());
        self.ordered.push(entry);
        Ok(())
    }

    pub(crate) fn by_manifest(&self, manifest: &str) -> Option<&Arc<TypeEntry>> {
        self.by_manifest.get(manifest)
    }

    pub(crate) fn by_type(&self, type_id: TypeId) -> Option<&Arc<TypeEntry>> {
        self.by_type.get(&type_id)
    }

    pub(crate) fn ordered(&self) -> &[Arc<TypeEntry>] {
        &self.ordered
    }
}
