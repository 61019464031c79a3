//! The [`Actor`] trait: state plus async hooks, run one message at a time.

use std::future::Future;

use crate::context::Context;
use crate::death_watch::Terminated;
use crate::error::ActorResult;
use crate::supervision::Failure;

/// An actor: state that handles messages of one type, one at a time.
///
/// Implement the hooks with `async fn`; the futures must be `Send` (the runtime moves actors
/// between threads). Returning `Err` from a hook, or panicking in one, is a failure that the
/// parent's [`SupervisorStrategy`](crate::SupervisorStrategy) handles.
///
/// # Examples
/// ```
/// use actor_core::{Actor, ActorResult, ActorSystem, Context, Props, ReplyTo};
/// use std::time::Duration;
///
/// enum CounterMsg { Add(u64), Get(ReplyTo<u64>) }
///
/// struct Counter { total: u64 }
///
/// impl Actor for Counter {
///     type Msg = CounterMsg;
///     async fn handle(&mut self, msg: CounterMsg, _ctx: &mut Context<Self>) -> ActorResult {
///         match msg {
///             CounterMsg::Add(n) => self.total += n,
///             CounterMsg::Get(reply) => { reply.reply(self.total); }
///         }
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let system = ActorSystem::new("demo").unwrap();
/// let counter = system.spawn(Props::new(|| Counter { total: 0 }), "counter").unwrap();
/// counter.tell(CounterMsg::Add(2));
/// counter.tell(CounterMsg::Add(3));
/// let total = counter.ask(CounterMsg::Get, Duration::from_secs(1)).await.unwrap();
/// assert_eq!(total, 5);
/// system.terminate().await;
/// # }
/// ```
pub trait Actor: Send + Sized + 'static {
    /// The messages this actor takes.
    type Msg: Send + 'static;

    /// Runs once before the first message (and, by default, after each restart). A failure
    /// here is a start failure, which the default strategy answers with `Stop`.
    fn started(&mut self, ctx: &mut Context<Self>) -> impl Future<Output = ActorResult> + Send {
        let _ = ctx;
        async { Ok(()) }
    }

    /// Handles one message.
    fn handle(
        &mut self,
        msg: Self::Msg,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = ActorResult> + Send;

    /// Runs once after the actor stopped taking messages and all its children have stopped.
    fn stopped(&mut self, ctx: &mut Context<Self>) -> impl Future<Output = ()> + Send {
        let _ = ctx;
        async {}
    }

    /// Called for each watched actor that terminates (see [`Context::watch`]) and for each
    /// child that stops, exactly once per actor. Ignored by default.
    fn terminated(
        &mut self,
        terminated: Terminated,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = ActorResult> + Send {
        let _ = (terminated, ctx);
        async { Ok(()) }
    }

    /// Runs on the failed instance before it is replaced. Children are stopped after this
    /// hook, timers cancelled, and stashed messages put back in front of the mailbox.
    fn pre_restart(
        &mut self,
        failure: &Failure,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = ()> + Send {
        let _ = (failure, ctx);
        async {}
    }

    /// Runs on the fresh instance after a restart; calls [`Actor::started`] by default.
    fn post_restart(
        &mut self,
        failure: &Failure,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = ActorResult> + Send {
        let _ = failure;
        self.started(ctx)
    }
}
