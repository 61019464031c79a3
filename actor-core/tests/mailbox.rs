//! Mailboxes and the event stream: bounded mailboxes under each overflow policy, dead letters
//! on the event stream, typed publish/subscribe, and subscribers removed when they stop.

mod common;

use std::num::NonZeroUsize;
use std::time::Duration;

use actor_core::{
    Actor, ActorRef, ActorResult, AskError, Context, DeadLetter, DeadLetterReason, MailboxConfig,
    OverflowPolicy, Props, TellError,
};
use actor_testkit::{TestKit, TestProbe, await_assert};
use common::{Cmd, Ev, Worker};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn dead_letters(kit: &TestKit) -> TestProbe<DeadLetter> {
    let probe = kit.probe::<DeadLetter>();
    kit.system().event_stream().subscribe(probe.actor_ref());
    probe
}

/// Expects the next dead letter to carry `Cmd::Add(n)` for `reason`.
async fn expect_dead_add(probe: &TestProbe<DeadLetter>, n: u32, reason: DeadLetterReason) {
    let d = probe.receive_one(secs(3)).await.expect("a dead letter");
    assert_eq!(d.reason, reason, "dead letter for {}", d.recipient);
    assert_eq!(d.message.type_name(), std::any::type_name::<Cmd>());
    match d.message.take::<Cmd>() {
        Some(Cmd::Add(got)) => assert_eq!(got, n),
        other => panic!("expected Add({n}) in the dead letter, got {other:?}"),
    }
    // the message can be taken only once
    assert!(d.message.take::<Cmd>().is_none());
}

fn bounded_worker(kit: &TestKit, ev: &TestProbe<Ev>, policy: OverflowPolicy) -> ActorRef<Cmd> {
    let capacity = NonZeroUsize::new(2).expect("non-zero");
    kit.spawn(
        Worker::props("w", ev.actor_ref()).with_mailbox(MailboxConfig::bounded(capacity, policy)),
        "w",
    )
}

#[tokio::test(start_paused = true)]
async fn a_bounded_mailbox_can_drop_the_newest_message() {
    let kit = TestKit::new("drop-newest");
    let ev = kit.probe::<Ev>();
    let dead = dead_letters(&kit);
    let w = bounded_worker(&kit, &ev, OverflowPolicy::DropNewest);
    // the actor has not run yet: two fit, three overflow
    for n in 1..=5 {
        w.tell(Cmd::Add(n));
    }
    for n in 3..=5 {
        expect_dead_add(&dead, n, DeadLetterReason::MailboxFull).await;
    }
    ev.expect_msg(Ev::started("w", 1)).await;
    ev.expect_msg(Ev::handled("w", 1, 1)).await;
    ev.expect_msg(Ev::handled("w", 1, 2)).await;
    ev.expect_no_msg(secs(1)).await;
    dead.expect_no_msg(secs(1)).await;
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_bounded_mailbox_can_drop_the_oldest_message() {
    let kit = TestKit::new("drop-oldest");
    let ev = kit.probe::<Ev>();
    let dead = dead_letters(&kit);
    let w = bounded_worker(&kit, &ev, OverflowPolicy::DropOldest);
    for n in 1..=5 {
        w.tell(Cmd::Add(n));
    }
    for n in 1..=3 {
        expect_dead_add(&dead, n, DeadLetterReason::MailboxFull).await;
    }
    ev.expect_msg(Ev::started("w", 1)).await;
    ev.expect_msg(Ev::handled("w", 1, 4)).await;
    ev.expect_msg(Ev::handled("w", 1, 5)).await;
    ev.expect_no_msg(secs(1)).await;
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_bounded_mailbox_can_fail_the_sender() {
    let kit = TestKit::new("fail-sender");
    let ev = kit.probe::<Ev>();
    let dead = dead_letters(&kit);
    let w = bounded_worker(&kit, &ev, OverflowPolicy::FailSender);
    assert!(w.try_tell(Cmd::Add(1)).is_ok());
    assert!(w.try_tell(Cmd::Add(2)).is_ok());
    match w.try_tell(Cmd::Add(3)) {
        Err(TellError::MailboxFull(Cmd::Add(3))) => {}
        other => panic!("expected MailboxFull(Add(3)), got {other:?}"),
    }
    // `tell` cannot give the message back: it becomes a dead letter
    w.tell(Cmd::Add(4));
    // (the actor has still not run: nothing above awaited)
    match w.ask(Cmd::Get, secs(1)).await {
        Err(AskError::MailboxFull { recipient }) => assert_eq!(&recipient, w.path()),
        other => panic!("expected AskError::MailboxFull, got {other:?}"),
    }
    expect_dead_add(&dead, 4, DeadLetterReason::MailboxFull).await;
    ev.expect_msg(Ev::started("w", 1)).await;
    ev.expect_msg(Ev::handled("w", 1, 1)).await;
    ev.expect_msg(Ev::handled("w", 1, 2)).await;
    // once drained, the mailbox takes messages again
    assert!(w.try_tell(Cmd::Add(5)).is_ok());
    ev.expect_msg(Ev::handled("w", 1, 5)).await;
    assert_eq!(w.ask(Cmd::Get, secs(1)).await, Ok(8));
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn an_unbounded_mailbox_takes_everything() {
    let kit = TestKit::new("unbounded");
    let ev = kit.probe::<Ev>();
    let w = kit.spawn(Worker::props("w", ev.actor_ref()), "w");
    for _ in 0..10_000 {
        w.tell(Cmd::Add(1));
    }
    assert_eq!(w.ask(Cmd::Get, secs(3)).await, Ok(10_000));
    assert_eq!(kit.system().dead_letter_count(), 0);
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_message_to_a_stopped_actor_is_a_dead_letter() {
    let kit = TestKit::new("dead-letter");
    let ev = kit.probe::<Ev>();
    let dead = dead_letters(&kit);
    let watcher = kit.probe::<()>();
    let w = kit.spawn(Worker::props("w", ev.actor_ref()), "w");
    watcher.watch(&w).await;
    w.stop();
    watcher.expect_terminated(&w).await;
    let before = kit.system().dead_letter_count();
    w.tell(Cmd::Add(9));
    let d = dead
        .expect_msg_matching(|d| d.reason == DeadLetterReason::RecipientDead)
        .await;
    assert_eq!(d.recipient.to_string(), "actor://dead-letter/user/w");
    assert!(matches!(d.message.take::<Cmd>(), Some(Cmd::Add(9))));
    assert_eq!(kit.system().dead_letter_count(), before + 1);
    // `try_tell` gives the message back instead
    match w.try_tell(Cmd::Add(10)) {
        Err(e @ TellError::Dead(_)) => assert!(matches!(e.into_inner(), Cmd::Add(10))),
        other => panic!("expected TellError::Dead, got {other:?}"),
    }
    kit.shutdown().await;
}

#[derive(Debug, Clone, PartialEq)]
struct Note(&'static str);

#[tokio::test(start_paused = true)]
async fn the_event_stream_delivers_to_every_subscriber_of_the_type() {
    let kit = TestKit::new("event-stream");
    let stream = kit.system().event_stream();
    let a = kit.probe::<Note>();
    let b = kit.probe::<Note>();
    let other_type = kit.probe::<String>();
    assert!(!stream.has_subscribers::<Note>());
    assert_eq!(stream.publish(Note("nobody")), 0);
    stream.subscribe(a.actor_ref());
    stream.subscribe(a.actor_ref()); // twice is once
    stream.subscribe(b.actor_ref());
    stream.subscribe(other_type.actor_ref());
    assert_eq!(stream.publish(Note("first")), 2);
    a.expect_msg(Note("first")).await;
    b.expect_msg(Note("first")).await;
    a.expect_no_msg(secs(1)).await;
    other_type.expect_no_msg(secs(1)).await;
    stream.unsubscribe(a.actor_ref());
    assert_eq!(stream.publish(Note("second")), 1);
    b.expect_msg(Note("second")).await;
    a.expect_no_msg(secs(1)).await;
    kit.shutdown().await;
}

/// Subscribes itself to `Note`s in `started` and forwards them.
struct Subscriber {
    forward: ActorRef<Note>,
}

impl Actor for Subscriber {
    type Msg = Note;
    async fn started(&mut self, ctx: &mut Context<Self>) -> ActorResult {
        ctx.system().event_stream().subscribe(ctx.myself());
        self.forward.tell(Note("subscribed"));
        Ok(())
    }
    async fn handle(&mut self, note: Note, _: &mut Context<Self>) -> ActorResult {
        self.forward.tell(note);
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_subscriber_is_removed_when_it_stops() {
    let kit = TestKit::new("event-stream-stop");
    let forwarded = kit.probe::<Note>();
    let to = forwarded.actor_ref().clone();
    let s = kit.spawn(
        Props::new(move || Subscriber {
            forward: to.clone(),
        }),
        "s",
    );
    forwarded.expect_msg(Note("subscribed")).await;
    let stream = kit.system().event_stream();
    assert_eq!(stream.publish(Note("hello")), 1);
    forwarded.expect_msg(Note("hello")).await;
    s.stop();
    await_assert(
        || !stream.has_subscribers::<Note>(),
        secs(3),
        Duration::from_millis(1),
    )
    .await;
    let dead = kit.system().dead_letter_count();
    assert_eq!(stream.publish(Note("after")), 0);
    // publishing never makes dead letters of its own
    assert_eq!(kit.system().dead_letter_count(), dead);
    kit.shutdown().await;
}

/// Forwards every number it gets.
struct Forward(ActorRef<u32>);

impl Actor for Forward {
    type Msg = u32;
    async fn handle(&mut self, n: u32, _: &mut Context<Self>) -> ActorResult {
        self.0.tell(n);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_from_one_sender_arrive_in_order() {
    let kit = TestKit::new("order");
    let probe = kit.probe::<u32>();
    let to = probe.actor_ref().clone();
    let f = kit.spawn(Props::new(move || Forward(to.clone())), "f");
    let sender = tokio::spawn(async move {
        for n in 0..5_000 {
            f.tell(n);
        }
    });
    let got = probe.receive_n(5_000).await;
    assert!(sender.await.is_ok());
    assert!(got.iter().copied().eq(0..5_000), "out of order");
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_subscriber_with_a_full_mailbox_is_skipped_without_dead_letters() {
    let kit = TestKit::new("event-stream-full");
    let forwarded = kit.probe::<u32>();
    let open = kit.probe::<u32>();
    let capacity = NonZeroUsize::new(1).expect("non-zero");
    let to = forwarded.actor_ref().clone();
    let full = kit.spawn(
        Props::new(move || Forward(to.clone()))
            .with_mailbox(MailboxConfig::bounded(capacity, OverflowPolicy::FailSender)),
        "full",
    );
    let stream = kit.system().event_stream();
    stream.subscribe(&full);
    stream.subscribe(open.actor_ref());
    // nothing awaited yet: `full` has not run, and its one slot takes the first event
    assert_eq!(stream.publish(1u32), 2);
    assert_eq!(stream.publish(2u32), 1);
    assert_eq!(kit.system().dead_letter_count(), 0);
    forwarded.expect_msg(1).await;
    forwarded.expect_no_msg(secs(1)).await;
    assert_eq!(open.receive_n(2).await, vec![1, 2]);
    kit.shutdown().await;
}

/// Spawns a worker with a one-slot mailbox and `policy`, fills the slot, sends a poison pill
/// and expects the worker to stop.
async fn poison_pill_on_a_full_mailbox(name: &str, policy: OverflowPolicy) {
    let kit = TestKit::new(name);
    let ev = kit.probe::<Ev>();
    let watcher = kit.probe::<()>();
    let one = NonZeroUsize::new(1).expect("non-zero");
    let w = kit.spawn(
        Worker::props("w", ev.actor_ref()).with_mailbox(MailboxConfig::bounded(one, policy)),
        "w",
    );
    watcher.watch(&w).await;
    ev.expect_msg(Ev::started("w", 1)).await;
    // nothing awaited from here on: the worker cannot take the message out meanwhile
    w.tell(Cmd::Add(1));
    w.poison_pill();
    watcher.expect_terminated(&w).await;
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_poison_pill_to_a_full_drop_newest_mailbox_still_stops_the_actor() {
    poison_pill_on_a_full_mailbox("pill-drop-newest", OverflowPolicy::DropNewest).await;
}

#[tokio::test(start_paused = true)]
async fn a_poison_pill_to_a_full_drop_oldest_mailbox_still_stops_the_actor() {
    poison_pill_on_a_full_mailbox("pill-drop-oldest", OverflowPolicy::DropOldest).await;
}

#[tokio::test(start_paused = true)]
async fn a_poison_pill_to_a_full_fail_sender_mailbox_still_stops_the_actor() {
    poison_pill_on_a_full_mailbox("pill-fail-sender", OverflowPolicy::FailSender).await;
}

#[tokio::test(start_paused = true)]
async fn a_poison_pill_is_not_evicted_by_later_messages() {
    let kit = TestKit::new("pill-evicted");
    let ev = kit.probe::<Ev>();
    let watcher = kit.probe::<()>();
    let one = NonZeroUsize::new(1).expect("non-zero");
    let w = kit.spawn(
        Worker::props("w", ev.actor_ref())
            .with_mailbox(MailboxConfig::bounded(one, OverflowPolicy::DropOldest)),
        "w",
    );
    watcher.watch(&w).await;
    ev.expect_msg(Ev::started("w", 1)).await;
    w.poison_pill();
    // a drop-oldest mailbox makes room for this one: it must not do so by dropping the pill
    w.tell(Cmd::Add(1));
    watcher.expect_terminated(&w).await;
    kit.shutdown().await;
}

/// Subscribes to `Note`s through a message adapter onto its own `u32` messages.
struct AdaptedSubscriber {
    forward: ActorRef<u32>,
}

impl Actor for AdaptedSubscriber {
    type Msg = u32;
    async fn started(&mut self, ctx: &mut Context<Self>) -> ActorResult {
        let adapter = ctx.myself().adapt(|n: Note| n.0.len() as u32);
        ctx.system().event_stream().subscribe(&adapter);
        self.forward.tell(0);
        Ok(())
    }
    async fn handle(&mut self, n: u32, _: &mut Context<Self>) -> ActorResult {
        self.forward.tell(n);
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_subscription_through_an_adapter_is_removed_when_the_actor_stops() {
    let kit = TestKit::new("adapter-subscriber");
    let forwarded = kit.probe::<u32>();
    let to = forwarded.actor_ref().clone();
    let s = kit.spawn(
        Props::new(move || AdaptedSubscriber {
            forward: to.clone(),
        }),
        "s",
    );
    forwarded.expect_msg(0).await;
    let stream = kit.system().event_stream();
    assert_eq!(stream.publish(Note("four")), 1);
    forwarded.expect_msg(4).await;
    let watcher = kit.probe::<()>();
    watcher.watch(&s).await;
    s.stop();
    watcher.expect_terminated(&s).await;
    let dead = kit.system().dead_letter_count();
    stream.publish(Note("after"));
    // the event stream never makes dead letters of its own, nor keeps dead subscribers
    assert_eq!(kit.system().dead_letter_count(), dead);
    await_assert(
        || !stream.has_subscribers::<Note>(),
        secs(3),
        Duration::from_millis(1),
    )
    .await;
    kit.shutdown().await;
}
