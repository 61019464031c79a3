//! Topic endpoints: the typed actor (one per topic, group and message type on a node) that
//! remote publishers address, and the subscriber list it shares with local publishers.
//!
//! A remote publish arrives through remoting as an ordinary user message of type `M`
//! addressed to the endpoint's path, so it is decoded (refs inside resolved) by the type
//! registered with remoting and handed to [`EndpointActor::handle`], which fans it out. A
//! local publish skips the actor and fans out directly from [`EndpointState`].

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use actor_core::{
    Actor, ActorId, ActorPath, ActorRef, ActorResult, Context, DeadLetterReason, Props, SpawnError,
};
use parking_lot::RwLock;

use super::mediator::Mediator;
use super::protocol::MediatorMsg;
use crate::wire::RemoteMessage;

/// The local subscribers of one endpoint.
pub(crate) struct EndpointState<M> {
    subscribers: RwLock<Vec<ActorRef<M>>>,
    /// A group endpoint gives each message to one subscriber, in turn.
    round_robin: bool,
    next: AtomicUsize,
}

impl<M: Clone + Send + 'static> EndpointState<M> {
    fn new(round_robin: bool) -> Self {
        EndpointState {
            subscribers: RwLock::new(Vec::new()),
            round_robin,
            next: AtomicUsize::new(0),
        }
    }

    /// Tells `msg` to every subscriber (one, in turn, for a group); gives it back when
    /// there is none. Returns how many were told.
    pub(crate) fn deliver(&self, msg: M) -> Result<usize, M> {
        let subscribers = self.subscribers.read();
        let Some((last, rest)) = subscribers.split_last() else {
            return Err(msg);
        };
        if self.round_robin {
            let i = self.next.fetch_add(1, Ordering::Relaxed) % subscribers.len();
            subscribers[i].tell(msg);
            return Ok(1);
        }
        for subscriber in rest {
            subscriber.tell(msg.clone());
        }
        last.tell(msg);
        Ok(subscribers.len())
    }
}

/// The actor remote publishers address: delivers each message to the local subscribers.
struct EndpointActor<M> {
    state: Arc<EndpointState<M>>,
}

impl<M: RemoteMessage + Clone> Actor for EndpointActor<M> {
    type Msg = M;

    async fn handle(&mut self, msg: M, ctx: &mut Context<Self>) -> ActorResult {
        if let Err(msg) = self.state.deliver(msg) {
            tracing::debug!(endpoint = %ctx.path(), "published message without local subscribers; dead letter");
            ctx.system().publish_dead_letter(
                ctx.path().clone(),
                msg,
                DeadLetterReason::UnknownRecipient,
            );
        }
        Ok(())
    }
}

/// The mediator's untyped view of one endpoint.
pub(crate) trait LocalEndpoint: Send + Sync {
    /// The typed state, for [`AnySubscriber::add_to`].
    fn as_any(&self) -> &dyn Any;
    /// The typed state as the routing table holds it (`Arc<EndpointState<M>>`).
    fn shared(&self) -> Arc<dyn Any + Send + Sync>;
    /// Removes the subscriber with this id; false if it was not there.
    fn remove(&self, id: &ActorId) -> bool;
    /// How many subscribers are left.
    fn len(&self) -> usize;
    /// The endpoint actor's path.
    fn path(&self) -> &ActorPath;
    /// Stops the endpoint actor (messages still queued become dead letters).
    fn stop(&self);
    /// Spawns the endpoint actor again, under the same name and with the same subscribers,
    /// after a restart of the mediator stopped it.
    fn respawn(&self, ctx: &mut Context<Mediator>) -> Result<Box<dyn LocalEndpoint>, SpawnError>;
}

struct TypedEndpoint<M> {
    state: Arc<EndpointState<M>>,
    actor: ActorRef<M>,
}

impl<M: RemoteMessage + Clone> LocalEndpoint for TypedEndpoint<M> {
    fn as_any(&self) -> &dyn Any {
        &*self.state
    }

    fn shared(&self) -> Arc<dyn Any + Send + Sync> {
        self.state.clone()
    }

    fn remove(&self, id: &ActorId) -> bool {
        let mut subscribers = self.state.subscribers.write();
        let before = subscribers.len();
        subscribers.retain(|s| s.id() != id);
        subscribers.len() != before
    }

    fn len(&self) -> usize {
        self.state.subscribers.read().len()
    }

    fn path(&self) -> &ActorPath {
        self.actor.path()
    }

    fn stop(&self) {
        self.actor.stop();
    }

    fn respawn(&self, ctx: &mut Context<Mediator>) -> Result<Box<dyn LocalEndpoint>, SpawnError> {
        let actor = spawn_endpoint_actor(ctx, self.actor.path().name(), self.state.clone())?;
        Ok(Box::new(TypedEndpoint {
            state: self.state.clone(),
            actor,
        }))
    }
}

/// Spawns the endpoint actor `name` (a child of the mediator) over `state`.
fn spawn_endpoint_actor<M: RemoteMessage + Clone>(
    ctx: &mut Context<Mediator>,
    name: &str,
    state: Arc<EndpointState<M>>,
) -> Result<ActorRef<M>, SpawnError> {
    ctx.spawn(
        Props::new(move || EndpointActor {
            state: state.clone(),
        }),
        name,
    )
}

/// A typed subscriber (or actor registered for `send`) as the mediator holds it.
pub(crate) trait AnySubscriber: Send + Sync {
    /// The actor's id.
    fn id(&self) -> &ActorId;
    /// The actor's path.
    fn path(&self) -> &ActorPath;
    /// Watches the actor; `msg` arrives when it stops.
    fn watch(&self, ctx: &mut Context<Mediator>, msg: MediatorMsg);
    /// Stops watching the actor.
    fn unwatch(&self, ctx: &mut Context<Mediator>);
    /// Spawns an endpoint of this subscriber's message type as a child of the mediator.
    fn spawn_endpoint(
        &self,
        ctx: &mut Context<Mediator>,
        name: &str,
        round_robin: bool,
    ) -> Result<Box<dyn LocalEndpoint>, SpawnError>;
    /// Adds this subscriber to `endpoint`; false if the endpoint takes another type.
    fn add_to(&self, endpoint: &dyn LocalEndpoint) -> bool;
    /// The ref as the routing table holds a registered actor (`ActorRef<M>`).
    fn as_target(&self) -> Arc<dyn Any + Send + Sync>;
}

/// An `ActorRef<M>` behind [`AnySubscriber`].
pub(crate) struct Typed<M>(pub(crate) ActorRef<M>);

impl<M: RemoteMessage + Clone> AnySubscriber for Typed<M> {
    fn id(&self) -> &ActorId {
        self.0.id()
    }

    fn path(&self) -> &ActorPath {
        self.0.path()
    }

    fn watch(&self, ctx: &mut Context<Mediator>, msg: MediatorMsg) {
        ctx.watch_with(&self.0, msg);
    }

    fn unwatch(&self, ctx: &mut Context<Mediator>) {
        ctx.unwatch(&self.0);
    }

    fn spawn_endpoint(
        &self,
        ctx: &mut Context<Mediator>,
        name: &str,
        round_robin: bool,
    ) -> Result<Box<dyn LocalEndpoint>, SpawnError> {
        let state = Arc::new(EndpointState::<M>::new(round_robin));
        let actor = spawn_endpoint_actor(ctx, name, state.clone())?;
        Ok(Box::new(TypedEndpoint { state, actor }))
    }

    fn add_to(&self, endpoint: &dyn LocalEndpoint) -> bool {
        let Some(state) = endpoint.as_any().downcast_ref::<EndpointState<M>>() else {
            return false;
        };
        let mut subscribers = state.subscribers.write();
        if !subscribers.iter().any(|s| s.id() == self.0.id()) {
            subscribers.push(self.0.clone());
        }
        true
    }

    fn as_target(&self) -> Arc<dyn Any + Send + Sync> {
        Arc::new(self.0.clone())
    }
}
