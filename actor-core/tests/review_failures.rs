//! Review findings: tests that pin runtime guarantees found untested in review.

use std::time::Duration;

use actor_core::{
    Actor, ActorError, ActorResult, ActorSystem, Backoff, Context, DeadLetter, Directive,
    MailboxConfig, OverflowPolicy, Props, SupervisorStrategy,
};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A child that fails on every message.
struct Failing;

impl Actor for Failing {
    type Msg = ();
    async fn handle(&mut self, _: (), _: &mut Context<Self>) -> ActorResult {
        Err(ActorError::msg("boom"))
    }
}

/// Spawns one failing child in `started` and makes it fail.
struct Supervisor;

impl Actor for Supervisor {
    type Msg = ();
    async fn started(&mut self, ctx: &mut Context<Self>) -> ActorResult {
        let child = ctx.spawn(Props::new(|| Failing), "child")?;
        child.tell(());
        Ok(())
    }
    async fn handle(&mut self, _: (), _: &mut Context<Self>) -> ActorResult {
        Ok(())
    }
}

/// Regression (review finding):
/// (`runner.rs` `supervise` runs outside `guarded`), so the parent never terminates and
/// `terminate()` never returns.
#[tokio::test(start_paused = true)]
async fn a_panicking_decider_does_not_hang_termination() {
    let system = ActorSystem::new("decider").unwrap();
    let strategy = SupervisorStrategy::one_for_one().with_decider(|_| -> Directive {
        panic!("decider bug");
    });
    let _parent = system
        .spawn(Props::new(|| Supervisor).supervisor(strategy), "parent")
        .unwrap();
    tokio::task::yield_now().await;
    let done = tokio::time::timeout(secs(60), system.terminate()).await;
    assert!(done.is_ok(), "terminate() hung after a decider panicked");
}

/// Regression (review finding):
/// `max`, which `restart_with_backoff(min, Duration::MAX, f)` accepts.
#[test]
fn backoff_with_an_unbounded_max_does_not_panic() {
    let b = Backoff {
        min: secs(1),
        max: Duration::MAX,
        random_factor: 0.2,
        reset_after: Duration::MAX,
    };
    let r = std::panic::catch_unwind(|| b.delay(0, 0.5));
    assert!(r.is_ok(), "Backoff::delay panicked");
}

/// Regression (review finding):
/// termination hangs.
#[tokio::test(start_paused = true)]
async fn a_backoff_strategy_with_an_unbounded_max_restarts_the_child() {
    let system = ActorSystem::new("backoff").unwrap();
    let strategy = SupervisorStrategy::restart_with_backoff(secs(1), Duration::MAX, 0.2);
    let _parent = system
        .spawn(Props::new(|| Supervisor).supervisor(strategy), "parent")
        .unwrap();
    tokio::task::yield_now().await;
    let done = tokio::time::timeout(secs(60), system.terminate()).await;
    assert!(done.is_ok(), "terminate() hung after a backoff overflow");
}

/// Never handles anything: `started` waits forever, so its mailbox fills.
struct Stuck;

impl Actor for Stuck {
    type Msg = DeadLetter;
    async fn started(&mut self, _: &mut Context<Self>) -> ActorResult {
        std::future::pending::<()>().await;
        Ok(())
    }
    async fn handle(&mut self, _: DeadLetter, _: &mut Context<Self>) -> ActorResult {
        Ok(())
    }
}

/// Regression (review finding):
/// full `DropNewest` mailbox turns every dead letter into another dead letter, recursively.
#[tokio::test(start_paused = true)]
async fn a_full_dead_letter_subscriber_does_not_recurse() {
    let system = ActorSystem::new("dl").unwrap();
    let cap = std::num::NonZeroUsize::new(1).unwrap();
    let sub = system
        .spawn(
            Props::new(|| Stuck)
                .with_mailbox(MailboxConfig::bounded(cap, OverflowPolicy::DropNewest)),
            "sub",
        )
        .unwrap();
    system.event_stream().subscribe(&sub);
    let path = sub.path().clone();
    system.publish_dead_letter(
        path.clone(),
        1u32,
        actor_core::DeadLetterReason::UnknownRecipient,
    );
    system.publish_dead_letter(path, 2u32, actor_core::DeadLetterReason::UnknownRecipient);
    assert!(system.dead_letter_count() < 10);
}

/// Never gets past `started`, so its one-slot mailbox stays full.
struct Blocked;

impl Actor for Blocked {
    type Msg = u32;
    async fn started(&mut self, _: &mut Context<Self>) -> ActorResult {
        std::future::pending::<()>().await;
        Ok(())
    }
    async fn handle(&mut self, _: u32, _: &mut Context<Self>) -> ActorResult {
        Ok(())
    }
}

/// Regression (review finding): publishing to a subscriber whose drop-newest mailbox is full
/// counted the dropped event as taken and recorded a dead letter.
#[tokio::test(start_paused = true)]
async fn publishing_to_a_full_drop_newest_subscriber_makes_no_dead_letter() {
    let system = ActorSystem::new("publish-full").unwrap();
    let one = std::num::NonZeroUsize::new(1).unwrap();
    let sub = system
        .spawn(
            Props::new(|| Blocked)
                .with_mailbox(MailboxConfig::bounded(one, OverflowPolicy::DropNewest)),
            "sub",
        )
        .unwrap();
    let stream = system.event_stream();
    stream.subscribe(&sub);
    assert_eq!(stream.publish(1u32), 1);
    assert_eq!(
        stream.publish(2u32),
        0,
        "a dropped event was counted as taken"
    );
    assert_eq!(
        system.dead_letter_count(),
        0,
        "the event stream made a dead letter"
    );
    // no terminate: the subscriber never finishes `started`, so it would never stop
}
