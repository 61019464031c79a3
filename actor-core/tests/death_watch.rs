//! Death-watch: exactly one `Terminated` per watched actor (also when already dead or watched
//! twice), `watch_with`, `unwatch`, incarnations, and parents seeing their children go.

mod common;

use std::time::Duration;

use actor_core::{
    Actor, ActorRef, ActorResult, Context, Props, ReplyTo, SupervisorStrategy, Terminated,
};
use actor_testkit::{TestKit, TestProbe, await_assert};
use common::{Cmd, Ev, Worker};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Commands for the [`Watcher`] actor.
#[derive(Debug)]
enum WCmd {
    Watch(ActorRef<Cmd>),
    WatchWith(ActorRef<Cmd>, &'static str),
    Unwatch(ActorRef<Cmd>),
    /// Delivered through `watch_with`.
    Mapped(&'static str),
    /// Answers once every earlier command has been handled.
    Sync(ReplyTo<()>),
    /// Fails (and is restarted by the default strategy).
    Fail,
}

/// Watches on command and reports each signal as text.
struct Watcher {
    report: ActorRef<String>,
}

impl Actor for Watcher {
    type Msg = WCmd;

    async fn handle(&mut self, msg: WCmd, ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            WCmd::Watch(t) => ctx.watch(&t),
            WCmd::WatchWith(t, tag) => ctx.watch_with(&t, WCmd::Mapped(tag)),
            WCmd::Unwatch(t) => ctx.unwatch(&t),
            WCmd::Mapped(tag) => self.report.tell(format!("mapped {tag}")),
            WCmd::Sync(r) => {
                r.reply(());
            }
            WCmd::Fail => return Err(actor_core::ActorError::msg("watcher fails")),
        }
        Ok(())
    }

    async fn terminated(&mut self, t: Terminated, _: &mut Context<Self>) -> ActorResult {
        self.report.tell(format!(
            "terminated {}#{}",
            t.path().name(),
            t.actor().uid()
        ));
        Ok(())
    }
}

struct Setup {
    kit: TestKit,
    report: TestProbe<String>,
    watcher: ActorRef<WCmd>,
    events: TestProbe<Ev>,
}

fn setup(name: &str) -> Setup {
    let kit = TestKit::new(name);
    let report = kit.probe::<String>();
    let to = report.actor_ref().clone();
    let watcher = kit.spawn(
        Props::new(move || Watcher { report: to.clone() }),
        "watcher",
    );
    let events = kit.probe::<Ev>();
    Setup {
        kit,
        report,
        watcher,
        events,
    }
}

impl Setup {
    fn target(&self, name: &str) -> ActorRef<Cmd> {
        self.kit
            .spawn(Worker::props(name, self.events.actor_ref()), name)
    }

    /// Waits until the watcher has handled every command sent so far.
    async fn sync(&self) {
        assert_eq!(self.watcher.ask(WCmd::Sync, secs(3)).await, Ok(()));
    }

    /// Stops `target` and waits until it is dead (seen by an independent probe).
    async fn stop_and_await(&self, target: &ActorRef<Cmd>) {
        let control = self.kit.probe::<()>();
        control.watch(target).await;
        target.stop();
        control.expect_terminated(target).await;
    }
}

fn signal(target: &ActorRef<Cmd>) -> String {
    format!("terminated {}#{}", target.path().name(), target.id().uid())
}

#[tokio::test(start_paused = true)]
async fn watch_gives_exactly_one_terminated_even_when_watched_twice() {
    let s = setup("watch-twice");
    let t = s.target("t");
    s.watcher.tell(WCmd::Watch(t.clone()));
    s.watcher.tell(WCmd::Watch(t.clone()));
    s.sync().await;
    t.stop();
    s.report.expect_msg(signal(&t)).await;
    s.report.expect_no_msg(secs(1)).await;
    s.kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn watching_an_already_dead_actor_gives_exactly_one_terminated() {
    let s = setup("watch-dead");
    let t = s.target("t");
    s.stop_and_await(&t).await;
    s.watcher.tell(WCmd::Watch(t.clone()));
    s.report.expect_msg(signal(&t)).await;
    s.report.expect_no_msg(secs(1)).await;
    s.kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn watch_with_maps_the_signal_into_the_watchers_message() {
    let s = setup("watch-with");
    let t = s.target("t");
    s.watcher.tell(WCmd::WatchWith(t.clone(), "t-gone"));
    s.sync().await;
    t.stop();
    s.report.expect_msg("mapped t-gone".to_string()).await;
    // the mapped message replaces the `terminated` hook
    s.report.expect_no_msg(secs(1)).await;
    s.kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn watch_with_on_a_dead_actor_delivers_the_message_once() {
    let s = setup("watch-with-dead");
    let t = s.target("t");
    s.stop_and_await(&t).await;
    s.watcher.tell(WCmd::WatchWith(t.clone(), "late"));
    s.report.expect_msg("mapped late".to_string()).await;
    s.report.expect_no_msg(secs(1)).await;
    s.kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn unwatch_means_no_signal() {
    let s = setup("unwatch");
    let t = s.target("t");
    s.watcher.tell(WCmd::Watch(t.clone()));
    s.watcher.tell(WCmd::Unwatch(t.clone()));
    s.sync().await;
    s.stop_and_await(&t).await;
    s.report.expect_no_msg(secs(1)).await;
    s.kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn every_watcher_gets_its_own_signal() {
    let s = setup("many-watchers");
    let t = s.target("t");
    let probes: Vec<TestProbe<()>> = (0..3).map(|_| s.kit.probe()).collect();
    for p in &probes {
        p.watch(&t).await;
    }
    s.watcher.tell(WCmd::Watch(t.clone()));
    s.sync().await;
    t.tell(Cmd::StopSelf);
    for p in &probes {
        p.expect_terminated(&t).await;
        p.expect_no_terminated(Duration::from_millis(100)).await;
    }
    s.report.expect_msg(signal(&t)).await;
    s.kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_signal_names_the_incarnation_not_just_the_path() {
    let s = setup("incarnation");
    let old = s.target("t");
    s.stop_and_await(&old).await;
    // the name is free again once the parent has seen the old actor go
    let new = await_assert(
        || {
            s.kit
                .system()
                .spawn(Worker::props("t", s.events.actor_ref()), "t")
        },
        secs(3),
        Duration::from_millis(1),
    )
    .await;
    assert_eq!(old.path(), new.path());
    assert_ne!(old, new);
    let probe = s.kit.probe::<()>();
    probe.watch(&old).await;
    let t = probe.expect_terminated(&old).await;
    assert!(t.is(&old));
    assert!(!t.is(&new));
    // the successor lives on
    assert_eq!(new.ask(Cmd::Get, secs(1)).await, Ok(0));
    probe.expect_no_terminated(secs(1)).await;
    s.kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn an_actor_stopped_by_its_supervisor_signals_its_watchers() {
    let kit = TestKit::with_settings(
        "watch-stopped-by-supervisor",
        actor_core::SystemSettings::default().guardian_strategy(SupervisorStrategy::stopping()),
    )
    .expect("a valid system");
    let events = kit.probe::<Ev>();
    let probe = kit.probe::<()>();
    let t = kit.spawn(Worker::props("t", events.actor_ref()), "t");
    probe.watch(&t).await;
    t.tell(Cmd::Panic);
    probe.expect_terminated(&t).await;
    events.expect_msg(Ev::started("t", 1)).await;
    events.expect_msg(Ev::stopped("t", 1)).await;
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_parent_watching_its_own_child_gets_one_signal() {
    let kit = TestKit::new("watch-own-child");
    let ev = kit.probe::<Ev>();
    let p = kit.spawn(
        common::Parent::props(
            "p",
            ev.actor_ref(),
            vec![common::worker_child("c", ev.actor_ref())],
        ),
        "p",
    );
    ev.expect_msg_all_of(vec![Ev::started("p", 1), Ev::started("c", 1)])
        .await;
    assert_eq!(
        p.ask(|r| common::ParentCmd::WatchChild("c".into(), r), secs(1))
            .await,
        Ok(true)
    );
    assert_eq!(
        p.ask(|r| common::ParentCmd::StopChild("c".into(), r), secs(1))
            .await,
        Ok(true)
    );
    ev.expect_msg(Ev::stopped("c", 1)).await;
    ev.expect_msg(Ev::child_terminated("p", "c")).await;
    ev.expect_no_msg(secs(1)).await;
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn watches_are_kept_over_a_restart_of_the_watcher() {
    let s = setup("watch-restart");
    let t = s.target("t");
    s.watcher.tell(WCmd::Watch(t.clone()));
    s.watcher.tell(WCmd::Fail);
    // answered by the new instance: the restart is done
    s.sync().await;
    t.stop();
    s.report.expect_msg(signal(&t)).await;
    s.report.expect_no_msg(secs(1)).await;
    s.kit.shutdown().await;
}

/// What the ordering test's watcher reports.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Message(u32),
    Terminated,
}

enum WatcherMsg {
    Watch(ActorRef<u32>),
    FromWatched(u32),
}

struct OrderedWatcher {
    report: ActorRef<Seen>,
}

impl Actor for OrderedWatcher {
    type Msg = WatcherMsg;
    async fn handle(&mut self, msg: WatcherMsg, ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            WatcherMsg::Watch(target) => ctx.watch(&target),
            WatcherMsg::FromWatched(n) => self.report.tell(Seen::Message(n)),
        }
        Ok(())
    }
    async fn terminated(&mut self, _: Terminated, _: &mut Context<Self>) -> ActorResult {
        self.report.tell(Seen::Terminated);
        Ok(())
    }
}

/// Sends `count` messages to `to`, then stops itself, all in one handler.
struct SendThenStop {
    to: ActorRef<WatcherMsg>,
    count: u32,
}

impl Actor for SendThenStop {
    type Msg = u32;
    async fn handle(&mut self, _: u32, ctx: &mut Context<Self>) -> ActorResult {
        for n in 0..self.count {
            self.to.tell(WatcherMsg::FromWatched(n));
        }
        ctx.stop();
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_dead_actors_last_messages_arrive_before_its_terminated() {
    let kit = TestKit::new("watch-order");
    let report = kit.probe::<Seen>();
    let r = report.actor_ref().clone();
    let watcher = kit.spawn(
        Props::new(move || OrderedWatcher { report: r.clone() }),
        "watcher",
    );
    let w = watcher.clone();
    let sender = kit.spawn(
        Props::new(move || SendThenStop {
            to: w.clone(),
            count: 100,
        }),
        "sender",
    );
    watcher.tell(WatcherMsg::Watch(sender.clone()));
    // the watch is registered before the sender is triggered: a round-trip through the watcher
    watcher.tell(WatcherMsg::FromWatched(u32::MAX));
    report.expect_msg(Seen::Message(u32::MAX)).await;
    sender.tell(0);
    for n in 0..100 {
        report.expect_msg(Seen::Message(n)).await;
    }
    report.expect_msg(Seen::Terminated).await;
    kit.shutdown().await;
}
