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
