//! Review of the lock-free run loop, the lazy wakes from plain tasks and the children set:
//! the paths where a run loop could be lost, dropped twice or left in a cycle with its cell,
//! and where a wake from outside any worker could be lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

mod common;

use common::{Ack, Idle, one_thread, two_threads};

use actor_core::{Actor, ActorRef, ActorResult, ActorSystem, Context, Props, SpawnError};

/// A failure deadline for waits on real time (the waits end as soon as the event happens).
const DEADLINE: Duration = Duration::from_secs(60);

/// Counts made and dropped guards: one guard sits in each props' factory, so it is dropped
/// with the last run loop (or refused spawn) holding those props.
#[derive(Default)]
struct Ledger {
    made: AtomicUsize,
    dropped: AtomicUsize,
}

struct Guard(Arc<Ledger>);

impl Guard {
    fn new(ledger: &Arc<Ledger>) -> Self {
        ledger.made.fetch_add(1, Ordering::SeqCst);
        Guard(ledger.clone())
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

/// Props of an idle actor whose factory holds a fresh guard.
fn guarded_idle(ledger: &Arc<Ledger>) -> Props<Idle> {
    let guard = Guard::new(ledger);
    Props::new(move || {
        let _keep = &guard;
        Idle
    })
}

/// [`common::ack_rounds`] with this file's deadline.
fn ack_rounds(actors: &[ActorRef<mpsc::Sender<()>>], rounds: usize, who: &str) {
    common::ack_rounds(actors, rounds, who, DEADLINE);
}

/// A thread outside the runtime wakes idle actors of two systems in turn (so its last woken
/// worker changes system at every tell), while a plain task on the runtime does the same:
/// every tell is handled.
#[test]
fn wakes_from_an_outside_thread_and_a_plain_task_across_two_systems_are_all_handled() {
    const ACTORS: usize = 32;
    const ROUNDS: usize = 200;
    let rt = two_threads();
    let (a, b) = rt.block_on(async {
        (
            ActorSystem::new("outside-a").unwrap(),
            ActorSystem::new("outside-b").unwrap(),
        )
    });
    let spawn = |s: &ActorSystem| -> Vec<_> {
        (0..ACTORS)
            .map(|_| s.spawn_anonymous(Props::new(|| Ack)).unwrap())
            .collect()
    };
    // interleaved: a tell to system a, then one to system b, and so on
    let mixed: Vec<_> = spawn(&a)
        .into_iter()
        .zip(spawn(&b))
        .flat_map(|(x, y)| [x, y])
        .collect();
    let inside: Vec<_> = spawn(&a).into_iter().chain(spawn(&b)).collect();
    let outside = std::thread::spawn(move || ack_rounds(&mixed, ROUNDS, "outside thread"));
    let plain = rt.spawn(async move {
        tokio::task::spawn_blocking(move || ack_rounds(&inside, ROUNDS, "blocking thread"))
            .await
            .unwrap();
    });
    outside.join().unwrap();
    rt.block_on(async {
        plain.await.unwrap();
        a.terminate().await;
        b.terminate().await;
    });
}

/// On a current-thread runtime a plain task wakes far more actors than a batch, of two
/// systems in turn, before it yields: every one is handled once it does.
#[test]
fn a_plain_task_on_a_current_thread_runtime_past_a_batch_across_two_systems() {
    const ACTORS: usize = 600;
    let rt = one_thread();
    rt.block_on(async {
        let a = ActorSystem::new("single-a").unwrap();
        let b = ActorSystem::new("single-b").unwrap();
        let mut refs = Vec::new();
        for i in 0..ACTORS {
            let s = if i % 3 == 0 { &b } else { &a };
            refs.push(s.spawn_anonymous(Props::new(|| Ack)).unwrap());
        }
        let (tx, rx) = mpsc::channel();
        for r in &refs {
            r.tell(tx.clone());
        }
        // no ack can have come yet: the only thread is still in this poll
        assert!(rx.try_recv().is_err());
        let all = tokio::time::timeout(DEADLINE, async {
            let mut got = 0;
            while got < ACTORS {
                while rx.try_recv().is_ok() {
                    got += 1;
                }
                tokio::task::yield_now().await;
            }
        })
        .await;
        assert!(all.is_ok(), "not every actor handled its message");
        a.terminate().await;
        b.terminate().await;
    });
}

/// Plain tasks on both threads race to spawn the same names: exactly one spawn of each name
/// succeeds, the others are refused with `DuplicateName`, and every refused spawn drops what
/// it made (its run loop held its cell: a cycle if it were kept).
#[test]
fn racing_spawns_of_one_name_leave_one_child_and_drop_the_rest() {
    const NAMES: usize = 300;
    const RACERS: usize = 4;
    let ledger = Arc::new(Ledger::default());
    let rt = two_threads();
    rt.block_on(async {
        let system = ActorSystem::new("dup-race").unwrap();
        let mut racers = Vec::new();
        for _ in 0..RACERS {
            let system = system.clone();
            let ledger = ledger.clone();
            racers.push(tokio::spawn(async move {
                let mut won = Vec::new();
                for n in 0..NAMES {
                    match system.spawn(guarded_idle(&ledger), &format!("n{n}")) {
                        Ok(r) => won.push(r.path().name().to_owned()),
                        Err(SpawnError::DuplicateName { name, .. }) => {
                            assert_eq!(name, format!("n{n}"));
                        }
                        Err(e) => panic!("unexpected {e}"),
                    }
                    if n.is_multiple_of(16) {
                        tokio::task::yield_now().await;
                    }
                }
                won
            }));
        }
        let mut won = Vec::new();
        for r in racers {
            won.extend(r.await.unwrap());
        }
        won.sort();
        let mut expected: Vec<_> = (0..NAMES).map(|n| format!("n{n}")).collect();
        expected.sort();
        assert_eq!(won, expected, "each name is won exactly once");
        let refused = NAMES * (RACERS - 1);
        assert!(
            ledger.dropped.load(Ordering::SeqCst) >= refused,
            "every refused spawn dropped its props at once"
        );
        for n in 0..NAMES {
            let path = format!("actor://dup-race/user/n{n}");
            assert!(system.lookup_str::<()>(&path).is_ok(), "{path} is alive");
        }
        system.terminate().await;
    });
    drop(rt);
    assert_eq!(
        ledger.made.load(Ordering::SeqCst),
        ledger.dropped.load(Ordering::SeqCst),
        "every run loop and every refused spawn was dropped"
    );
}

/// Plain tasks keep spawning under `/user` while the system terminates: each spawn either
/// succeeds (and the actor is stopped with the rest) or is refused, and nothing is kept.
#[test]
fn spawns_racing_termination_are_run_or_refused_and_never_kept() {
    const SPAWNERS: usize = 2;
    for _ in 0..20 {
        let ledger = Arc::new(Ledger::default());
        let rt = two_threads();
        rt.block_on(async {
            let system = ActorSystem::new("term-race").unwrap();
            let (first, mut started) = tokio::sync::mpsc::channel(SPAWNERS);
            let mut spawners = Vec::new();
            for _ in 0..SPAWNERS {
                let system = system.clone();
                let ledger = ledger.clone();
                let first = first.clone();
                spawners.push(tokio::spawn(async move {
                    let mut i = 0u64;
                    loop {
                        match system.spawn_anonymous(guarded_idle(&ledger)) {
                            Ok(_) => {}
                            Err(SpawnError::ParentStopping { .. }) => return i,
                            Err(e) => panic!("unexpected {e}"),
                        }
                        i += 1;
                        if i == 50 {
                            first.send(()).await.unwrap();
                        }
                        if i.is_multiple_of(8) {
                            tokio::task::yield_now().await;
                        }
                    }
                }));
            }
            for _ in 0..SPAWNERS {
                started.recv().await.unwrap();
            }
            assert!(!system.is_terminated());
            tokio::time::timeout(DEADLINE, system.terminate())
                .await
                .expect("the system terminates while spawns race it");
            for s in spawners {
                assert!(tokio::time::timeout(DEADLINE, s).await.unwrap().unwrap() >= 50);
            }
        });
        drop(rt);
        assert_eq!(
            ledger.made.load(Ordering::SeqCst),
            ledger.dropped.load(Ordering::SeqCst),
            "a spawn racing termination kept its run loop"
        );
    }
}

/// The runtime is dropped while a thread outside it keeps spawning and telling actors: the
/// first dropped worker drops every run loop in the tree and lets go of the tree, so spawns
/// after that are refused (`ParentStopping`), and a spawn or wake racing it drops its run loop
/// at once. Nothing is kept and nothing is dropped twice.
#[test]
fn a_runtime_dropped_while_an_outside_thread_spawns_keeps_no_run_loop() {
    const BEFORE: usize = 200;
    const AFTER: usize = 200;
    for _ in 0..10 {
        let ledger = Arc::new(Ledger::default());
        let rt = two_threads();
        let system = rt.block_on(async { ActorSystem::new("rt-drop").unwrap() });
        let (go, ready) = mpsc::channel();
        let (dropped_tx, dropped_rx) = mpsc::channel::<()>();
        let spawner = {
            let ledger = ledger.clone();
            std::thread::spawn(move || {
                let mut refs = Vec::new();
                for i in 0..BEFORE + AFTER {
                    if i == BEFORE {
                        go.send(()).unwrap();
                    }
                    if i == BEFORE + AFTER / 2 {
                        // the rest are spawned once the runtime is surely gone
                        dropped_rx.recv_timeout(DEADLINE).unwrap();
                    }
                    match system.spawn_anonymous(guarded_idle(&ledger)) {
                        Ok(r) => {
                            assert!(
                                i < BEFORE + AFTER / 2,
                                "spawn {i} accepted after the runtime was dropped"
                            );
                            r.tell(());
                            refs.push(r);
                        }
                        Err(SpawnError::ParentStopping { .. }) => {
                            assert!(i >= BEFORE, "spawn {i} refused while the runtime ran");
                        }
                        Err(e) => panic!("spawn {i}: {e}"),
                    }
                    for r in refs.iter().rev().take(4) {
                        r.tell(());
                    }
                }
                drop(refs);
                drop(system);
            })
        };
        ready.recv_timeout(DEADLINE).unwrap();
        drop(rt);
        dropped_tx.send(()).unwrap();
        spawner.join().unwrap();
        assert_eq!(
            ledger.made.load(Ordering::SeqCst),
            BEFORE + AFTER,
            "every spawn made its props"
        );
        assert_eq!(
            ledger.dropped.load(Ordering::SeqCst),
            BEFORE + AFTER,
            "every run loop was dropped once"
        );
    }
}

/// Spawns a guarded child for every message and tells itself again, for good.
struct Breeder {
    ledger: Arc<Ledger>,
    bred: mpsc::Sender<()>,
}

impl Actor for Breeder {
    type Msg = ();
    async fn handle(&mut self, (): (), ctx: &mut Context<Self>) -> ActorResult {
        let child = ctx.spawn_anonymous(guarded_idle(&self.ledger))?;
        child.tell(());
        // the receiver is gone once the runtime is dropped
        let _ = self.bred.send(());
        ctx.myself().tell(());
        Ok(())
    }
}

/// The runtime is dropped while actors on both threads keep spawning children from their
/// handlers: every run loop (of the spawners and of every child) is dropped exactly once.
#[test]
fn a_runtime_dropped_while_actors_spawn_children_keeps_no_run_loop() {
    const BREEDERS: usize = 4;
    for _ in 0..10 {
        let ledger = Arc::new(Ledger::default());
        let rt = two_threads();
        let (bred, rx) = mpsc::channel();
        let system = rt.block_on(async {
            let system = ActorSystem::new("rt-drop-breed").unwrap();
            for _ in 0..BREEDERS {
                let guard = Guard::new(&ledger);
                let ledger = ledger.clone();
                let bred = bred.clone();
                let breeder = system
                    .spawn_anonymous(Props::new(move || {
                        let _keep = &guard;
                        Breeder {
                            ledger: ledger.clone(),
                            bred: bred.clone(),
                        }
                    }))
                    .unwrap();
                breeder.tell(());
            }
            system
        });
        drop(bred);
        for _ in 0..200 {
            rx.recv_timeout(DEADLINE).unwrap();
        }
        drop(rt);
        drop(system);
        drop(rx);
        assert_eq!(
            ledger.made.load(Ordering::SeqCst),
            ledger.dropped.load(Ordering::SeqCst),
            "a run loop was kept after the runtime went away"
        );
    }
}
