//! What an actor can reach through its `Context`: itself, its children by name, and futures
//! piped back to it as messages.

mod common;

use std::time::Duration;

use actor_core::{Actor, ActorRef, ActorResult, Context, Props, ReplyTo};
use actor_testkit::TestKit;
use common::{Cmd, Ev, Worker};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[derive(Debug)]
enum Msg {
    /// Spawn two workers and report what the context sees.
    Inspect(ReplyTo<Vec<String>>),
    /// Run a slow computation outside the actor.
    Compute(u64),
    /// The computation's result, piped back.
    Computed(u64),
}

struct Inspector {
    events: ActorRef<Ev>,
    report: ActorRef<String>,
}

impl Actor for Inspector {
    type Msg = Msg;

    async fn handle(&mut self, msg: Msg, ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            Msg::Inspect(reply) => {
                ctx.spawn(Worker::props("a", &self.events), "a")?;
                ctx.spawn_anonymous(Worker::props("anon", &self.events))?;
                let mut seen = vec![
                    format!("myself {}", ctx.myself().path()),
                    format!("same id {}", ctx.myself().id() == ctx.id()),
                    format!("path {}", ctx.path()),
                ];
                let mut children: Vec<String> =
                    ctx.children().iter().map(|p| p.to_string()).collect();
                children.sort();
                seen.extend(children.into_iter().map(|c| format!("child {c}")));
                seen.push(format!("typed child a {}", ctx.child::<Cmd>("a").is_some()));
                seen.push(format!(
                    "child a as String {}",
                    ctx.child::<String>("a").is_some()
                ));
                seen.push(format!("child b {}", ctx.child::<Cmd>("b").is_some()));
                reply.reply(seen);
            }
            Msg::Compute(n) => {
                ctx.pipe_to_self(
                    async move {
                        // virtual time: a slow computation that the actor does not wait for
                        tokio::time::sleep(secs(1)).await;
                        n * n
                    },
                    Msg::Computed,
                );
                self.report.tell(format!("computing {n}"));
            }
            Msg::Computed(v) => self.report.tell(format!("computed {v}")),
        }
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn the_context_knows_the_actor_and_its_children() {
    let kit = TestKit::new("context");
    let ev = kit.probe::<Ev>();
    let report = kit.probe::<String>();
    let (e, r) = (ev.actor_ref().clone(), report.actor_ref().clone());
    let a = kit.spawn(
        Props::new(move || Inspector {
            events: e.clone(),
            report: r.clone(),
        }),
        "inspector",
    );
    let seen = a.ask(Msg::Inspect, secs(1)).await.expect("an answer");
    assert_eq!(
        seen,
        vec![
            "myself actor://context/user/inspector",
            "same id true",
            "path actor://context/user/inspector",
            "child actor://context/user/inspector/$zz",
            "child actor://context/user/inspector/a",
            "typed child a true",
            "child a as String false",
            "child b false",
        ]
    );
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn pipe_to_self_delivers_a_future_result_without_blocking_the_actor() {
    let kit = TestKit::new("pipe-to-self");
    let ev = kit.probe::<Ev>();
    let report = kit.probe::<String>();
    let (e, r) = (ev.actor_ref().clone(), report.actor_ref().clone());
    let a = kit.spawn(
        Props::new(move || Inspector {
            events: e.clone(),
            report: r.clone(),
        }),
        "inspector",
    );
    a.tell(Msg::Compute(3));
    a.tell(Msg::Compute(4));
    // both start at once: the actor does not wait for the first computation
    report.expect_msg("computing 3".into()).await;
    report.expect_msg("computing 4".into()).await;
    let started = tokio::time::Instant::now();
    report
        .expect_msg_all_of(vec!["computed 9".into(), "computed 16".into()])
        .await;
    assert_eq!(started.elapsed(), secs(1));
    kit.shutdown().await;
}
