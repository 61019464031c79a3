//! The watch proxy: one system actor per node that watches local actors on behalf of remote
//! watchers and reports each termination to the remoting task, which sends `Terminated` to
//! every peer that watches the actor.

use actor_core::{Actor, ActorPath, ActorResult, ActorSystem, Context, LookupError, Terminated};

use super::remoting::Command;
use crate::wire::RemoteMessage;

/// The name of the proxy under `/system`.
pub(crate) const WATCH_PROXY_NAME: &str = "remote-watch-proxy";

/// Makes the proxy watch one local actor (built where its message type is known).
pub(crate) struct WatchRequest(Box<WatchFn>);

/// Watches one actor from the proxy's context.
type WatchFn = dyn FnOnce(&mut Context<WatchProxy>) + Send;

/// Finds a local actor taking `M` at `path` and builds the request to watch it.
pub(crate) fn lookup<M: RemoteMessage>(
    system: &ActorSystem,
    path: &ActorPath,
) -> Result<WatchRequest, LookupError> {
    let target = system.lookup::<M>(path)?;
    Ok(WatchRequest(Box::new(move |ctx| ctx.watch(&target))))
}

/// Watches local actors for remote watchers.
pub(crate) struct WatchProxy {
    pub(crate) commands: flume::Sender<Command>,
}

impl Actor for WatchProxy {
    type Msg = WatchRequest;

    async fn handle(&mut self, request: WatchRequest, ctx: &mut Context<Self>) -> ActorResult {
        (request.0)(ctx);
        Ok(())
    }

    async fn terminated(&mut self, terminated: Terminated, _: &mut Context<Self>) -> ActorResult {
        let _ = self
            .commands
            .send(Command::LocalTerminated(terminated.path().clone()));
        Ok(())
    }
}
