//! Refs inside messages: the resolver installed while inbound messages are decoded, and the
//! conversions between node addresses and actor-path addresses.
//!
//! `ActorRef<M>` serializes as its path (actor-core); on arrival [`Resolver`] turns the path
//! back into a ref of the registered type `M`: a local ref when the path is this node's, a
//! remote ref otherwise (bound to the peer's current incarnation), a dead ref (messages go
//! to dead letters) when no such local actor lives.

use std::any::{Any, TypeId};
use std::sync::{Arc, Weak};

use actor_core::remote_support::RefResolver;
use actor_core::{ActorPath, Address as PathAddress};

use super::remoting::Shared;
use crate::address::Address;
use crate::wire::RemoteMessage;

/// The actor-path address of a node: `actor://<system>@host:port`.
pub(crate) fn path_address(node: &Address) -> PathAddress {
    PathAddress::remote(node.system(), node.host(), node.port())
}

/// The node of an actor-path address, if it names a host and port.
pub(crate) fn node_address(address: &PathAddress) -> Option<Address> {
    Address::new(address.system(), address.host()?, address.port()?).ok()
}

/// Resolves a path to a boxed `ActorRef<M>` (registered as each type's resolve function).
pub(crate) fn resolve<M: RemoteMessage>(
    shared: &Arc<Shared>,
    path: &ActorPath,
) -> Box<dyn Any + Send> {
    Box::new(shared.ref_for::<M>(path))
}

/// Installed while remoting decodes inbound messages.
pub(crate) struct Resolver(pub(crate) Weak<Shared>);

impl RefResolver for Resolver {
    fn resolve(
        &self,
        path: &str,
        type_id: TypeId,
        type_name: &'static str,
    ) -> Result<Box<dyn Any + Send>, String> {
        let shared = self
            .0
            .upgrade()
            .ok_or_else(|| "remoting has shut down".to_owned())?;
        let entry = shared.registry.read().by_type(type_id).cloned();
        let entry = entry.ok_or_else(|| {
            format!(
                "cannot resolve ActorRef<{type_name}> for {path}: {type_name} is not registered \
                 with remoting (call register::<{type_name}>())"
            )
        })?;
        let path = ActorPath::parse(path).map_err(|e| e.to_string())?;
        Ok((entry.resolve)(&shared, &path))
    }
}
