//! Review: races between an actor dying and watches or spawns arriving, on a multi-thread
//! runtime, in bounded loops. Each pins a guarantee of `docs/semantics.md` that the suite only
//! checked on a single thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actor_core::{
    Actor, ActorRef, ActorResult, ActorSystem, Context, Props, SpawnError, Terminated,
};
use actor_testkit::await_assert;

/// Does nothing; counts its `stopped` hook.
struct Idle(Arc<AtomicUsize>);

impl Actor for Idle {
    type Msg = ();
    async fn handle(&mut self, _: (), _: &mut Context<Self>) -> ActorResult {
        Ok(())
    }
    async fn stopped(&mut self, _: &mut Context<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Watches every ref it is sent and counts the `Terminated` signals it gets.
struct Counter(Arc<AtomicUsize>);

impl Actor for Counter {
    type Msg = ActorRef<()>;
    async fn handle(&mut self, target: ActorRef<()>, ctx: &mut Context<Self>) -> ActorResult {
        ctx.watch(&target);
        // a second watch of the same actor is the same watch
        ctx.watch(&target);
        Ok(())
    }
    async fn terminated(&mut self, _: Terminated, _: &mut Context<Self>) -> ActorResult {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// A watch racing with the target's stop yields exactly one `Terminated`, whether the watch
/// lands before the target dies or after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_racing_with_a_stop_gives_exactly_one_terminated() {
    const ROUNDS: usize = 300;
    let system = ActorSystem::new("watch-race").unwrap();
    let signals = Arc::new(AtomicUsize::new(0));
    let stopped = Arc::new(AtomicUsize::new(0));
    let s = signals.clone();
    let watcher = system
        .spawn(Props::new(move || Counter(s.clone())), "watcher")
        .unwrap();
    for _ in 0..ROUNDS {
        let st = stopped.clone();
        let target = system
            .spawn_anonymous(Props::new(move || Idle(st.clone())))
            .unwrap();
        let t = target.clone();
        let stopper = tokio::spawn(async move { t.stop() });
        watcher.tell(target);
        stopper.await.unwrap();
    }
    await_assert(
        || {
            let n = signals.load(Ordering::SeqCst);
            if n == ROUNDS { Ok(()) } else { Err(n) }
        },
        Duration::from_secs(10),
        Duration::from_millis(5),
    )
    .await;
    system.terminate().await;
    assert_eq!(
        signals.load(Ordering::SeqCst),
        ROUNDS,
        "a duplicate Terminated arrived"
    );
    assert_eq!(stopped.load(Ordering::SeqCst), ROUNDS);
}

/// Spawns racing with `terminate`: every spawn either fails with `ParentStopping` or its actor
/// is stopped (its `stopped` hook runs) before `terminate` returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawns_racing_with_terminate_are_refused_or_stopped() {
    let mut total = 0;
    for round in 0..20 {
        let system = ActorSystem::new("spawn-race").unwrap();
        let stopped = Arc::new(AtomicUsize::new(0));
        let (sys, st) = (system.clone(), stopped.clone());
        let (warm_tx, warm_rx) = tokio::sync::oneshot::channel();
        let spawner = tokio::spawn(async move {
            let mut ok = 0usize;
            let mut warm = Some(warm_tx);
            loop {
                if ok == 8
                    && let Some(tx) = warm.take()
                {
                    let _ = tx.send(());
                }
                let st = st.clone();
                match sys.spawn_anonymous(Props::new(move || Idle(st.clone()))) {
                    Ok(_) => ok += 1,
                    Err(SpawnError::ParentStopping { .. }) => return ok,
                    Err(e) => panic!("unexpected spawn error {e}"),
                }
                if ok.is_multiple_of(16) {
                    tokio::task::yield_now().await;
                }
            }
        });
        // terminate while the spawner is running
        warm_rx.await.unwrap();
        system.terminate().await;
        let spawned = spawner.await.unwrap();
        assert_eq!(
            stopped.load(Ordering::SeqCst),
            spawned,
            "round {round}: an actor spawned during termination was not stopped"
        );
        total += spawned;
    }
    assert!(total >= 20 * 8, "only {total} spawns succeeded");
}

enum TM {
    Arm,
    Block(tokio::sync::oneshot::Receiver<()>),
    Fill,
    Tick,
    Active(actor_core::ReplyTo<bool>),
}

struct Timed;
impl Actor for Timed {
    type Msg = TM;
    async fn handle(&mut self, m: TM, ctx: &mut Context<Self>) -> ActorResult {
        match m {
            TM::Arm => ctx.start_single_timer("t", Duration::from_secs(1), TM::Tick),
            TM::Block(rx) => {
                let _ = rx.await;
            }
            TM::Fill | TM::Tick => {}
            TM::Active(r) => {
                r.reply(ctx.is_timer_active("t"));
            }
        }
        Ok(())
    }
}

/// Regression (review finding):
/// without a dead letter and stays "active" forever (`timers.rs` `start_single` ignores the
/// enqueue result).
#[tokio::test(start_paused = true)]
async fn a_single_timer_refused_by_a_full_mailbox_does_not_stay_active() {
    use actor_core::{MailboxConfig, OverflowPolicy};
    let system = ActorSystem::new("timer-full").unwrap();
    let one = std::num::NonZeroUsize::new(1).unwrap();
    let a = system
        .spawn(
            Props::new(|| Timed)
                .with_mailbox(MailboxConfig::bounded(one, OverflowPolicy::FailSender)),
            "a",
        )
        .unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    a.tell(TM::Arm);
    tokio::task::yield_now().await;
    a.tell(TM::Block(rx));
    tokio::task::yield_now().await;
    a.tell(TM::Fill); // the one slot is taken while the handler blocks
    tokio::time::sleep(Duration::from_secs(2)).await; // the timer fires into the full mailbox
    tx.send(()).unwrap();
    for _ in 0..8 {
        tokio::task::yield_now().await;
    }
    let active = a.ask(TM::Active, Duration::from_secs(1)).await.unwrap();
    assert!(
        system.dead_letter_count() > 0 || !active,
        "timer message lost silently, timer still active: {active}"
    );
    assert!(
        !active,
        "the timer whose message was refused still counts as active"
    );
}

/// An extension that looks at another extension when it is dropped.
struct Ext(ActorSystem);
impl Drop for Ext {
    fn drop(&mut self) {
        let _ = self.0.try_extension::<u64>();
    }
}

/// Regression (review finding):
/// lock (`system.rs` `system.extensions.lock().clear()`), so an extension whose `Drop` touches
/// the system's extensions deadlocks termination.
#[test]
fn an_extension_dropped_at_termination_can_use_the_system() {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let system = ActorSystem::new("ext-drop").unwrap();
            system.extension(|s| Ext(s.clone()));
            system.terminate().await;
        });
        let _ = tx.send(());
    });
    assert!(
        rx.recv_timeout(Duration::from_secs(10)).is_ok(),
        "terminate() deadlocked dropping an extension"
    );
}

struct StopThenFail;
impl Actor for StopThenFail {
    type Msg = ();
    async fn handle(&mut self, _: (), ctx: &mut Context<Self>) -> ActorResult {
        ctx.stop();
        Err(actor_core::ActorError::msg("failing after ctx.stop()"))
    }
}

/// Regression (review finding):
/// default strategy restarts the actor and `restart()` clears `stop_requested`
/// (`runner.rs` restart), so the actor lives on.
#[tokio::test(start_paused = true)]
async fn ctx_stop_then_a_failure_still_stops() {
    let system = ActorSystem::new("stop-fail").unwrap();
    let probe = actor_testkit::TestProbe::<()>::new(&system);
    let a = system.spawn(Props::new(|| StopThenFail), "a").unwrap();
    probe.watch(&a).await;
    a.tell(());
    probe.expect_terminated(&a).await;
}
