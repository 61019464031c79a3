//! Actors woken from plain tokio tasks (not from other actors) on a multi-thread runtime. Such
//! a task wakes one dispatcher worker and queues further actors behind it, up to a batch,
//! instead of waking a worker per actor: these tests hold the dispatcher to what that may and
//! may not hold up.

use std::sync::mpsc;
use std::time::Duration;

mod common;

use common::{Ack, Echo, ack_rounds, two_threads};

use actor_core::{Actor, ActorResult, ActorSystem, Context, Props};

/// A failure deadline for waits on real time (the waits end as soon as the event happens).
const DEADLINE: Duration = Duration::from_secs(60);

/// The most actors a plain task's long poll may hold up (the dispatcher's batch).
const BATCH: usize = 256;

/// Says so when it has started.
struct Starter {
    started: mpsc::Sender<()>,
}

impl Actor for Starter {
    type Msg = ();
    async fn started(&mut self, _: &mut Context<Self>) -> ActorResult {
        // the receiver may be gone once the test has what it waited for
        let _ = self.started.send(());
        Ok(())
    }
    async fn handle(&mut self, (): (), _: &mut Context<Self>) -> ActorResult {
        Ok(())
    }
}

/// Spawns `n` starters from the current (plain) task.
fn spawn_starters(system: &ActorSystem, n: usize, started: &mpsc::Sender<()>) {
    for _ in 0..n {
        let started = started.clone();
        system
            .spawn_anonymous(Props::new(move || Starter {
                started: started.clone(),
            }))
            .unwrap();
    }
}

/// Receives `n` start notices, failing after [`DEADLINE`].
fn receive(started: &mpsc::Receiver<()>, n: usize, what: &str) {
    for i in 0..n {
        assert!(
            started.recv_timeout(DEADLINE).is_ok(),
            "{what}: only {i} of {n} actors started"
        );
    }
}

/// A plain task that spawns many actors and then keeps its thread without yielding holds up
/// at most a batch of them: once a batch is queued, another worker is woken, which pushes the
/// first out of the thread's LIFO slot to where the idle thread steals it. (Keeping a
/// runtime thread like this is a mistake in real code; it stands for a long poll here.)
#[test]
fn a_long_poll_of_a_plain_task_holds_up_at_most_a_batch_of_actors() {
    const SPAWNS: usize = 1_000;
    let rt = two_threads();
    let (tx, rx) = mpsc::channel();
    rt.block_on(async {
        let system = ActorSystem::new("long-poll").unwrap();
        let spawner = {
            let system = system.clone();
            tokio::spawn(async move {
                spawn_starters(&system, SPAWNS, &tx);
                // no await from here on: the rest must start while this poll goes on
                receive(&rx, SPAWNS - BATCH, "during the spawner's poll");
                rx
            })
        };
        let rx = spawner.await.unwrap();
        let rest = tokio::task::spawn_blocking(move || receive(&rx, BATCH, "after the poll"));
        rest.await.unwrap();
        system.terminate().await;
    });
}

/// A plain task that spawns many actors and then waits for them in `block_in_place` (the
/// right way to block a runtime thread) sees every one of them start: the worker it woke
/// first runs on while the task blocks.
#[test]
fn a_plain_task_waiting_in_block_in_place_sees_every_actor_start() {
    const SPAWNS: usize = 1_000;
    let rt = two_threads();
    rt.block_on(async {
        let system = ActorSystem::new("block-in-place").unwrap();
        let spawner = {
            let system = system.clone();
            tokio::spawn(async move {
                let (tx, rx) = mpsc::channel();
                spawn_starters(&system, SPAWNS, &tx);
                tokio::task::block_in_place(|| receive(&rx, SPAWNS, "in block_in_place"));
            })
        };
        spawner.await.unwrap();
        system.terminate().await;
    });
}

/// Plain tasks on both threads ask many idle actors at once, round after round: each round
/// wakes actors behind a worker that may be starting or parking at that moment. A lost wake
/// would leave an ask unanswered until its timeout.
#[test]
fn asks_from_plain_tasks_on_both_threads_are_all_answered() {
    const TASKS: usize = 2;
    const ACTORS: usize = 64;
    const ROUNDS: usize = 300;
    let rt = two_threads();
    rt.block_on(async {
        let system = ActorSystem::new("plain-asks").unwrap();
        let mut tasks = Vec::new();
        for _ in 0..TASKS {
            let system = system.clone();
            tasks.push(tokio::spawn(async move {
                let echoes: Vec<_> = (0..ACTORS)
                    .map(|_| system.spawn_anonymous(Props::new(|| Echo)).unwrap())
                    .collect();
                for round in 0..ROUNDS {
                    let asks = echoes.iter().map(|e| e.ask(|r| r, DEADLINE));
                    for answer in futures_util::future::join_all(asks).await {
                        assert_eq!(answer.ok(), Some(7), "round {round}");
                    }
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        system.terminate().await;
    });
}

/// A plain task that tells two idle actors and then keeps its thread (here: waits plainly for
/// a reply) gets an answer from the other thread: the second wake still wakes a second worker,
/// which pushes the first out of the thread's LIFO slot to where the idle thread steals it.
/// Only the first few wakes after a worker's do so; later ones queue behind it (see
/// `a_long_poll_of_a_plain_task_holds_up_at_most_a_batch_of_actors`). Found by review:
/// queueing the second actor behind the first worker held both until the task's poll ended.
#[test]
fn a_plain_task_that_tells_two_actors_and_keeps_its_thread_gets_an_answer() {
    const ROUNDS: usize = 20;
    let rt = two_threads();
    rt.block_on(async {
        let system = ActorSystem::new("two-tells").unwrap();
        let a = system.spawn_anonymous(Props::new(|| Ack)).unwrap();
        let b = system.spawn_anonymous(Props::new(|| Ack)).unwrap();
        for round in 0..ROUNDS {
            // both idle again: answered from outside any poll of a plain task
            let both = vec![a.clone(), b.clone()];
            let idle =
                tokio::task::spawn_blocking(move || ack_rounds(&both, 1, "settling", DEADLINE));
            idle.await.unwrap();
            let (a, b) = (a.clone(), b.clone());
            let answered = tokio::spawn(async move {
                let (tx, rx) = mpsc::channel();
                a.tell(tx.clone());
                b.tell(tx);
                // no await: this poll keeps the thread until an answer comes
                rx.recv_timeout(DEADLINE).is_ok()
            })
            .await
            .unwrap();
            assert!(
                answered,
                "round {round}: no answer while the task kept its thread"
            );
        }
        system.terminate().await;
    });
}
