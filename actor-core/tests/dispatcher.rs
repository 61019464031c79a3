//! The dispatcher that runs actors: no wake is lost across worker threads, a busy actor does not
//! starve the others, a blocked actor holds up no one else, and dropping the runtime drops
//! every actor.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

mod common;

use common::{Echo, Idle, one_thread, rally, two_threads};

use actor_core::{Actor, ActorResult, ActorSystem, Context, Props};

/// A failure deadline for waits on real time (the waits end as soon as the event happens).
const DEADLINE: Duration = Duration::from_secs(60);

/// Thousands of actors wake each other across two worker threads, then all stop: every rally
/// ends and termination completes. A lost wake would leave a rally (or the termination)
/// hanging; this is how a hand-over race in the dispatcher was found.
#[test]
fn wakes_across_two_workers_are_never_lost() {
    let rt = two_threads();
    rt.block_on(async {
        let system = ActorSystem::new("rallies").unwrap();
        const PAIRS: usize = 2_000;
        rally(&system, &system, PAIRS, 101, DEADLINE).await;
        assert!(
            tokio::time::timeout(DEADLINE, system.terminate())
                .await
                .is_ok(),
            "termination of {} actors hung",
            2 * PAIRS
        );
    });
}

/// Tells itself forever.
struct Spinner {
    spins: Arc<AtomicUsize>,
}

impl Actor for Spinner {
    type Msg = ();
    async fn handle(&mut self, (): (), ctx: &mut Context<Self>) -> ActorResult {
        self.spins.fetch_add(1, Ordering::Relaxed);
        ctx.myself().tell(());
        Ok(())
    }
}

/// On a single thread, an actor that always has mail (it tells itself) gives up its turn
/// every few messages, so another actor still answers. Without a turn limit the spinner would
/// keep the only thread for good (the runtime runs on a separate thread, so that a regression
/// fails this test instead of hanging it).
#[test]
fn an_actor_that_always_has_mail_does_not_starve_the_others() {
    const ASKS: usize = 20;
    let (result, outcome) = std::sync::mpsc::channel();
    let spins = Arc::new(AtomicUsize::new(0));
    let spins_seen = spins.clone();
    std::thread::spawn(move || {
        let rt = one_thread();
        rt.block_on(async move {
            let system = ActorSystem::new("busy").unwrap();
            let spinner = system
                .spawn(
                    Props::new(move || Spinner {
                        spins: spins.clone(),
                    }),
                    "spinner",
                )
                .unwrap();
            spinner.tell(());
            let echo = system.spawn(Props::new(|| Echo), "echo").unwrap();
            for _ in 0..ASKS {
                let answer = echo.ask(|r| r, Duration::from_secs(5)).await;
                let _ = result.send(answer.is_ok());
            }
            spinner.stop();
            system.terminate().await;
        });
    });
    for i in 0..ASKS {
        assert_eq!(
            outcome.recv_timeout(DEADLINE),
            Ok(true),
            "ask {i} to the echo got no answer while the spinner ran"
        );
    }
    assert!(spins_seen.load(Ordering::Relaxed) > 0, "the spinner ran");
}

/// Blocks its thread in the handler until released.
struct Blocker {
    release: std::sync::mpsc::Receiver<()>,
    entered: std::sync::mpsc::Sender<()>,
}

impl Actor for Blocker {
    type Msg = ();
    async fn handle(&mut self, (): (), _: &mut Context<Self>) -> ActorResult {
        let _ = self.entered.send(());
        let _ = self.release.recv_timeout(DEADLINE);
        Ok(())
    }
}

/// An actor that blocks its worker thread (a mistake, but a common one) does not hold up the
/// other actors while another thread is free.
#[test]
fn a_blocked_actor_does_not_hold_up_the_others() {
    let rt = two_threads();
    rt.block_on(async {
        let system = ActorSystem::new("blocked").unwrap();
        let (release, released) = std::sync::mpsc::channel();
        let (entered, has_entered) = std::sync::mpsc::channel();
        let released = std::sync::Mutex::new(Some(released));
        let blocker = system
            .spawn(
                Props::new(move || Blocker {
                    release: released
                        .lock()
                        .ok()
                        .and_then(|mut r| r.take())
                        .unwrap_or_else(|| std::sync::mpsc::channel().1),
                    entered: entered.clone(),
                }),
                "blocker",
            )
            .unwrap();
        blocker.tell(());
        // the blocker is now inside its handler, holding a worker thread
        tokio::task::spawn_blocking(move || has_entered.recv_timeout(DEADLINE))
            .await
            .unwrap()
            .unwrap();
        let echo = system.spawn(Props::new(|| Echo), "echo").unwrap();
        for i in 0..200 {
            let answer = echo.ask(|r| r, DEADLINE).await;
            assert_eq!(answer.ok(), Some(7), "ask {i} while the blocker blocks");
        }
        release.send(()).unwrap();
        system.terminate().await;
    });
}

/// Counts drops of its instances; reports its start.
struct Dropped {
    drops: Arc<AtomicUsize>,
    started: tokio::sync::mpsc::UnboundedSender<()>,
    children: usize,
}

impl Actor for Dropped {
    type Msg = ();
    async fn started(&mut self, ctx: &mut Context<Self>) -> ActorResult {
        for _ in 0..self.children {
            let (drops, started) = (self.drops.clone(), self.started.clone());
            ctx.spawn_anonymous(Props::new(move || Dropped {
                drops: drops.clone(),
                started: started.clone(),
                children: 0,
            }))?;
        }
        let _ = self.started.send(());
        Ok(())
    }
    async fn handle(&mut self, (): (), _: &mut Context<Self>) -> ActorResult {
        Ok(())
    }
}

impl Drop for Dropped {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

/// Dropping the runtime without terminating the system drops every actor (as tokio drops its
/// tasks), children included, so their `Drop` releases what they hold.
#[test]
fn dropping_the_runtime_drops_every_actor() {
    for multi_thread in [false, true] {
        let drops = Arc::new(AtomicUsize::new(0));
        let rt = if multi_thread {
            two_threads()
        } else {
            one_thread()
        };
        rt.block_on(async {
            let system = ActorSystem::new("dropped").unwrap();
            let (started, mut has_started) = tokio::sync::mpsc::unbounded_channel();
            for _ in 0..10 {
                let (drops, started) = (drops.clone(), started.clone());
                system
                    .spawn_anonymous(Props::new(move || Dropped {
                        drops: drops.clone(),
                        started: started.clone(),
                        children: 9,
                    }))
                    .unwrap();
            }
            for n in 0..100 {
                let got = tokio::time::timeout(DEADLINE, has_started.recv()).await;
                assert!(
                    matches!(got, Ok(Some(()))),
                    "only {n} of 100 actors started"
                );
            }
        });
        assert_eq!(drops.load(Ordering::SeqCst), 0, "no actor dropped yet");
        drop(rt);
        assert_eq!(
            drops.load(Ordering::SeqCst),
            100,
            "every actor dropped with the runtime (multi-thread: {multi_thread})"
        );
    }
}

/// Terminating many idle actors on two workers: each stop wakes an actor, each termination
/// wakes the guardian, from both threads at once. A hand-over race that dropped a woken actor
/// (a second cell handed to a seat that was still taken) hung this at 1M actors.
#[test]
fn terminating_many_actors_on_two_workers_completes() {
    let rt = two_threads();
    rt.block_on(async {
        for round in 0..3 {
            let system = ActorSystem::new("many").unwrap();
            let spawner = system.clone();
            tokio::spawn(async move {
                for _ in 0..30_000 {
                    spawner.spawn_anonymous(Props::new(|| Idle)).unwrap();
                }
            })
            .await
            .unwrap();
            assert!(
                tokio::time::timeout(DEADLINE, system.terminate())
                    .await
                    .is_ok(),
                "round {round}: termination hung"
            );
        }
    });
}
