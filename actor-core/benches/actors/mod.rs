//! The actors the actor-core benches and probes share (each bench is its own crate and uses
//! what it needs of these).
use actor_core::{Actor, ActorResult, Context, Props, ReplyTo};
use std::time::{Duration, Instant};

/// Does nothing with its messages: an idle actor.
pub struct Idle;

impl Actor for Idle {
    type Msg = ();
    async fn handle(&mut self, _: (), _: &mut Context<Self>) -> ActorResult {
        Ok(())
    }
}

/// Answers every ask.
pub struct Echo;

impl Actor for Echo {
    type Msg = ReplyTo<()>;
    async fn handle(&mut self, r: ReplyTo<()>, _: &mut Context<Self>) -> ActorResult {
        r.reply(());
        Ok(())
    }
}

/// Spawns the asked number of idle children from its handler and answers with the time it
/// took: spawning as an application's parent actor does.
pub struct Parent;

impl Actor for Parent {
    type Msg = (usize, ReplyTo<Duration>);
    async fn handle(&mut self, (n, reply): Self::Msg, ctx: &mut Context<Self>) -> ActorResult {
        let props = Props::new(|| Idle);
        let start = Instant::now();
        for _ in 0..n {
            ctx.spawn_anonymous(props.clone())?;
        }
        reply.reply(start.elapsed());
        Ok(())
    }
}
