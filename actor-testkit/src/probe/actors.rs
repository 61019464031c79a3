//! The two actors behind a [`TestProbe`](crate::TestProbe): the probe actor, which takes the
//! probe's messages and forwards them into a channel, and its `watcher` child, which runs
//! watch commands from the test and forwards the `Terminated` signals it receives.

use actor_core::{Actor, ActorResult, Context, Props, Terminated};

/// A watch or unwatch, run inside the watcher actor's context.
pub(crate) type Command = Box<dyn FnOnce(&mut Context<Watcher>) + Send>;

/// The actor behind a probe: every message goes into the probe's channel.
pub(crate) struct ProbeActor<M> {
    pub(crate) messages: flume::Sender<M>,
    pub(crate) commands: flume::Receiver<Command>,
    pub(crate) terminations: flume::Sender<Terminated>,
}

impl<M: Send + 'static> Actor for ProbeActor<M> {
    type Msg = M;

    async fn started(&mut self, ctx: &mut Context<Self>) -> ActorResult {
        let commands = self.commands.clone();
        let terminations = self.terminations.clone();
        ctx.spawn(
            Props::new(move || Watcher {
                commands: commands.clone(),
                terminations: terminations.clone(),
            }),
            "watcher",
        )?;
        Ok(())
    }

    async fn handle(&mut self, msg: M, ctx: &mut Context<Self>) -> ActorResult {
        // the probe handle is gone: nobody will read, so stop taking messages
        if self.messages.send(msg).is_err() {
            ctx.stop();
        }
        Ok(())
    }
}

/// What the watcher actor takes: the next command, or `None` once the probe handle is gone.
pub(crate) struct NextCommand(Option<Command>);

/// The probe's child that watches other actors on the probe's behalf.
pub(crate) struct Watcher {
    commands: flume::Receiver<Command>,
    terminations: flume::Sender<Terminated>,
}

impl Watcher {
    /// Waits (outside the actor) for the next command and delivers it as a message.
    fn await_next(&self, ctx: &Context<Self>) {
        let commands = self.commands.clone();
        ctx.pipe_to_self(async move { commands.recv_async().await.ok() }, NextCommand);
    }
}

impl Actor for Watcher {
    type Msg = NextCommand;

    async fn started(&mut self, ctx: &mut Context<Self>) -> ActorResult {
        self.await_next(ctx);
        Ok(())
    }

    async fn handle(&mut self, msg: NextCommand, ctx: &mut Context<Self>) -> ActorResult {
        match msg.0 {
            Some(command) => {
                command(ctx);
                self.await_next(ctx);
            }
            None => ctx.stop(),
        }
        Ok(())
    }

    async fn terminated(&mut self, terminated: Terminated, _: &mut Context<Self>) -> ActorResult {
        let _ = self.terminations.send(terminated);
        Ok(())
    }
}
