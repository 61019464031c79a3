//! Stopping: stop self, stop a child, a parent's children first, poison pill after the queued
//! messages, and system messages that never wait behind user messages.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actor_core::{Actor, ActorResult, Context, DeadLetter, DeadLetterReason, Props};
use actor_testkit::{TestKit, TestProbe};
use common::{Cmd, Ev, Parent, ParentCmd, Worker, worker_child};
use tokio::sync::oneshot;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn dead_letters(kit: &TestKit) -> TestProbe<DeadLetter> {
    let probe = kit.probe::<DeadLetter>();
    kit.system().event_stream().subscribe(probe.actor_ref());
    probe
}

/// Expects the next dead letter to be `Cmd::Add(n)` for `recipient`, for `reason`.
async fn expect_dead_add(
    probe: &TestProbe<DeadLetter>,
    recipient: &str,
    n: u32,
    reason: DeadLetterReason,
) {
    let d = probe
        .expect_msg_matching(|d| d.recipient.to_string() == recipient)
        .await;
    assert_eq!(d.reason, reason);
    match d.message.take::<Cmd>() {
        Some(Cmd::Add(got)) => assert_eq!(got, n),
        other => panic!("expected Add({n}) in the dead letter, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn an_actor_can_stop_itself() {
    let kit = TestKit::new("stop-self");
    let ev = kit.probe::<Ev>();
    let dead = dead_letters(&kit);
    let watcher = kit.probe::<()>();
    let w = kit.spawn(Worker::props("w", ev.actor_ref()), "w");
    watcher.watch(&w).await;
    w.tell(Cmd::StopSelf);
    watcher.expect_terminated(&w).await;
    ev.expect_msg(Ev::started("w", 1)).await;
    ev.expect_msg(Ev::stopped("w", 1)).await;
    assert!(w.is_terminated());
    w.tell(Cmd::Add(7));
    expect_dead_add(
        &dead,
        "actor://stop-self/user/w",
        7,
        DeadLetterReason::RecipientDead,
    )
    .await;
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_parent_can_stop_a_child_and_sees_it_terminate() {
    let kit = TestKit::new("stop-child");
    let ev = kit.probe::<Ev>();
    let p = kit.spawn(
        Parent::props("p", ev.actor_ref(), vec![worker_child("c", ev.actor_ref())]),
        "p",
    );
    ev.expect_msg_all_of(vec![Ev::started("p", 1), Ev::started("c", 1)])
        .await;
    assert_eq!(
        p.ask(|r| ParentCmd::StopChild("c".into(), r), secs(1))
            .await,
        Ok(true)
    );
    ev.expect_msg(Ev::stopped("c", 1)).await;
    ev.expect_msg(Ev::child_terminated("p", "c")).await;
    // not (any more) a child
    assert_eq!(
        p.ask(|r| ParentCmd::StopChild("c".into(), r), secs(1))
            .await,
        Ok(false)
    );
    ev.expect_no_msg(secs(1)).await;
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn stopping_a_parent_stops_its_children_first() {
    let kit = TestKit::new("stop-parent");
    let ev = kit.probe::<Ev>();
    let watcher = kit.probe::<()>();
    let p = kit.spawn(
        Parent::props(
            "p",
            ev.actor_ref(),
            vec![
                worker_child("a", ev.actor_ref()),
                worker_child("b", ev.actor_ref()),
            ],
        ),
        "p",
    );
    ev.expect_msg_all_of(vec![
        Ev::started("p", 1),
        Ev::started("a", 1),
        Ev::started("b", 1),
    ])
    .await;
    watcher.watch(&p).await;
    p.stop();
    let mut stops = ev.receive_n(3).await;
    // the parent's `stopped` runs last, after both children's
    assert_eq!(stops.pop(), Some(Ev::stopped("p", 1)));
    stops.sort_by_key(|e| format!("{e:?}"));
    assert_eq!(stops, vec![Ev::stopped("a", 1), Ev::stopped("b", 1)]);
    watcher.expect_terminated(&p).await;
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_poison_pill_stops_after_the_queued_messages() {
    let kit = TestKit::new("poison-pill");
    let ev = kit.probe::<Ev>();
    let dead = dead_letters(&kit);
    let w = kit.spawn(Worker::props("w", ev.actor_ref()), "w");
    w.tell(Cmd::Add(1));
    w.tell(Cmd::Add(2));
    w.poison_pill();
    w.tell(Cmd::Add(3));
    ev.expect_msg(Ev::started("w", 1)).await;
    ev.expect_msg(Ev::handled("w", 1, 1)).await;
    ev.expect_msg(Ev::handled("w", 1, 2)).await;
    ev.expect_msg(Ev::stopped("w", 1)).await;
    // the message sent after the pill is never handled
    expect_dead_add(
        &dead,
        "actor://poison-pill/user/w",
        3,
        DeadLetterReason::RecipientDead,
    )
    .await;
    ev.expect_no_msg(secs(1)).await;
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn stop_drops_the_queued_messages_to_dead_letters() {
    let kit = TestKit::new("stop-drops");
    let ev = kit.probe::<Ev>();
    let dead = dead_letters(&kit);
    let w = kit.spawn(Worker::props("w", ev.actor_ref()), "w");
    w.tell(Cmd::Add(1));
    w.stop();
    ev.expect_msg(Ev::started("w", 1)).await;
    ev.expect_msg(Ev::stopped("w", 1)).await;
    expect_dead_add(
        &dead,
        "actor://stop-drops/user/w",
        1,
        DeadLetterReason::RecipientDead,
    )
    .await;
    kit.shutdown().await;
}

/// What `Gated` reports once it waits at the gate.
const IN_GATE: u64 = u64::MAX;

/// Holds in its first message until a gate opens, then counts the others.
struct Gated {
    handled: Arc<AtomicU64>,
    report: actor_core::ActorRef<u64>,
}

enum GatedMsg {
    Gate(oneshot::Receiver<()>),
    Work,
}

impl Actor for Gated {
    type Msg = GatedMsg;
    async fn handle(&mut self, msg: GatedMsg, _: &mut Context<Self>) -> ActorResult {
        match msg {
            GatedMsg::Gate(rx) => {
                self.report.tell(IN_GATE);
                let _ = rx.await;
            }
            GatedMsg::Work => {
                self.handled.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }
    async fn stopped(&mut self, _: &mut Context<Self>) {
        self.report.tell(self.handled.load(Ordering::Relaxed));
    }
}

#[tokio::test(start_paused = true)]
async fn a_stop_does_not_wait_behind_queued_user_messages() {
    const QUEUED: u64 = 10_000;
    let kit = TestKit::new("stop-priority");
    let report = kit.probe::<u64>();
    let handled = Arc::new(AtomicU64::new(0));
    let (h, r) = (handled.clone(), report.actor_ref().clone());
    let a = kit.spawn(
        Props::new(move || Gated {
            handled: h.clone(),
            report: r.clone(),
        }),
        "a",
    );
    let (open, gate) = oneshot::channel();
    a.tell(GatedMsg::Gate(gate));
    report.expect_msg(IN_GATE).await;
    for _ in 0..QUEUED {
        a.tell(GatedMsg::Work);
    }
    let before = kit.system().dead_letter_count();
    // the stop is sent while the actor is busy with the gate and 10 000 messages wait
    a.stop();
    let _ = open.send(());
    // system messages are taken before every user message: none of the 10 000 runs
    assert_eq!(report.receive_one(secs(3)).await, Some(0));
    assert_eq!(handled.load(Ordering::Relaxed), 0);
    let watcher = kit.probe::<()>();
    watcher.watch(&a).await;
    watcher.expect_terminated(&a).await;
    assert_eq!(kit.system().dead_letter_count() - before, QUEUED);
    kit.shutdown().await;
}

/// Panics when dropped unhandled.
struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("a queued message's Drop panicked");
    }
}

enum Leftover {
    StopNow,
    Payload(PanicsOnDrop),
}

struct StopsFirst;

impl Actor for StopsFirst {
    type Msg = Leftover;
    async fn handle(&mut self, msg: Leftover, ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            Leftover::StopNow => ctx.stop(),
            Leftover::Payload(p) => std::mem::forget(p),
        }
        Ok(())
    }
}

/// A message left in the mailbox whose `Drop` panics, dropped as the actor stops: the watchers
/// still get `Terminated` and the system still terminates (before: the panic unwound out of
/// the run loop's last step, so the parent never heard of the stop and termination hung).
#[tokio::test]
async fn a_panicking_drop_of_a_leftover_message_does_not_hide_the_stop() {
    let kit = TestKit::new("leftover");
    let actor = kit
        .system()
        .spawn(Props::new(|| StopsFirst), "stops-first")
        .unwrap();
    let watcher = kit.probe::<()>();
    watcher.watch(&actor).await;
    actor.tell(Leftover::StopNow);
    actor.tell(Leftover::Payload(PanicsOnDrop));
    watcher.expect_terminated(&actor).await;
    let system = kit.system().clone();
    assert!(
        tokio::time::timeout(secs(30), system.terminate())
            .await
            .is_ok(),
        "termination hung after the panicking drop"
    );
}
