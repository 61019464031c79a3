//! Review of the lazily made run loop and the mailbox's wait flag: what an actor that has not
//! run yet does with messages, stops, watches, a termination and a dropped runtime; how a
//! refused spawn drops its recipe; and that a system message or a user message reaching an
//! actor that waits (for its mailbox, for its parent's directive, or for its receive timeout)
//! is never lost now that the mailbox keeps a flag instead of the run loop's waker.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

mod common;

use common::{Cmd, Ev, Parent, lookup, one_thread, two_threads, worker_child};

use actor_core::{
    Actor, ActorRef, ActorResult, ActorSystem, Context, Props, SpawnError, SupervisorStrategy,
    Terminated,
};
use actor_testkit::TestKit;
use tokio::time::Instant;

/// A failure deadline for waits on real time (the waits end as soon as the event happens).
const DEADLINE: Duration = Duration::from_secs(60);

/// Counts what happened to the actors of one test.
#[derive(Default)]
struct Tally {
    /// Instances the factory made.
    made: AtomicUsize,
    /// `started` hooks that ran.
    started: AtomicUsize,
    /// Messages handled.
    handled: AtomicUsize,
    /// `stopped` hooks that ran.
    stopped: AtomicUsize,
    /// Instances dropped.
    dropped: AtomicUsize,
    /// Guards (one per props) dropped with the last holder of their props.
    recipes_dropped: AtomicUsize,
}

impl Tally {
    fn get(field: &AtomicUsize) -> usize {
        field.load(Ordering::SeqCst)
    }
}

/// Lives in a props' factory: dropped with the recipe.
struct RecipeGuard(Arc<Tally>);

impl Drop for RecipeGuard {
    fn drop(&mut self) {
        self.0.recipes_dropped.fetch_add(1, Ordering::SeqCst);
    }
}

/// Counts its life in a [`Tally`]; reports `Ev`s to `events` when given one.
struct Counted {
    tally: Arc<Tally>,
    events: Option<ActorRef<Ev>>,
}

impl Counted {
    /// Props with a guard of their own, so the tally sees when this recipe is dropped.
    fn props(tally: &Arc<Tally>, events: Option<&ActorRef<Ev>>) -> Props<Counted> {
        let guard = RecipeGuard(tally.clone());
        let events = events.cloned();
        Props::new(move || {
            guard.0.made.fetch_add(1, Ordering::SeqCst);
            Counted {
                tally: guard.0.clone(),
                events: events.clone(),
            }
        })
    }

    fn report(&self, ev: Ev) {
        if let Some(e) = &self.events {
            e.tell(ev);
        }
    }
}

impl Actor for Counted {
    type Msg = u32;

    async fn started(&mut self, _: &mut Context<Self>) -> ActorResult {
        self.tally.started.fetch_add(1, Ordering::SeqCst);
        self.report(Ev::started("counted", 1));
        Ok(())
    }

    async fn handle(&mut self, n: u32, _: &mut Context<Self>) -> ActorResult {
        self.tally.handled.fetch_add(1, Ordering::SeqCst);
        self.report(Ev::handled("counted", 1, n));
        Ok(())
    }

    async fn stopped(&mut self, _: &mut Context<Self>) {
        self.tally.stopped.fetch_add(1, Ordering::SeqCst);
        self.report(Ev::stopped("counted", 1));
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.tally.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

/// Messages told and a stop sent before the actor's first run: the run loop is made then, the
/// actor starts, the stop comes before every queued message, and those go to dead letters.
#[tokio::test(start_paused = true)]
async fn a_stop_sent_before_the_first_run_starts_then_stops_and_dead_letters_the_mail() {
    let kit = TestKit::new("s6-early-stop");
    let events = kit.probe::<Ev>();
    let tally = Arc::new(Tally::default());
    let dead_before = kit.system().dead_letter_count();
    let target = kit.spawn(Counted::props(&tally, Some(events.actor_ref())), "target");
    target.tell(1);
    target.tell(2);
    target.stop();
    // nothing has run yet on this thread: the actor has no instance and no run loop
    assert_eq!(
        Tally::get(&tally.made),
        0,
        "the actor ran before the test yielded"
    );
    events.expect_msg(Ev::started("counted", 1)).await;
    events.expect_msg(Ev::stopped("counted", 1)).await;
    events.watch(&target).await;
    events.expect_terminated(&target).await;
    assert_eq!(
        Tally::get(&tally.handled),
        0,
        "a message was handled after the stop"
    );
    assert_eq!(
        kit.system().dead_letter_count() - dead_before,
        2,
        "both queued messages are dead letters"
    );
    assert_eq!(
        Tally::get(&tally.dropped),
        1,
        "the one instance was dropped"
    );
    assert_eq!(
        Tally::get(&tally.recipes_dropped),
        1,
        "the recipe went with the run loop"
    );
    kit.shutdown().await;
}

/// A poison pill queued before the first run: the messages before it are handled, the one
/// after it is a dead letter.
#[tokio::test(start_paused = true)]
async fn a_poison_pill_sent_before_the_first_run_handles_what_came_before_it() {
    let kit = TestKit::new("s6-early-pill");
    let events = kit.probe::<Ev>();
    let tally = Arc::new(Tally::default());
    let dead_before = kit.system().dead_letter_count();
    let target = kit.spawn(Counted::props(&tally, Some(events.actor_ref())), "target");
    target.tell(1);
    target.poison_pill();
    target.tell(2);
    assert_eq!(
        Tally::get(&tally.made),
        0,
        "the actor ran before the test yielded"
    );
    events.expect_msg(Ev::started("counted", 1)).await;
    events.expect_msg(Ev::handled("counted", 1, 1)).await;
    events.expect_msg(Ev::stopped("counted", 1)).await;
    events.watch(&target).await;
    events.expect_terminated(&target).await;
    assert_eq!(kit.system().dead_letter_count() - dead_before, 1);
    kit.shutdown().await;
}

/// Spawns a child, watches it, tells it and stops it in one handler, before the child has
/// ever run (one runtime thread: it runs after this handler), and reports the child's
/// termination.
struct EarlyWatcher {
    tally: Arc<Tally>,
    events: ActorRef<Ev>,
}

impl Actor for EarlyWatcher {
    type Msg = ();

    async fn handle(&mut self, (): (), ctx: &mut Context<Self>) -> ActorResult {
        let child = ctx.spawn(Counted::props(&self.tally, Some(&self.events)), "child")?;
        ctx.watch(&child);
        child.tell(7);
        let made = Tally::get(&self.tally.made) as u32;
        // `Handled { value }` carries how many instances existed when the watch was made
        self.events.tell(Ev::handled("watcher", 1, made));
        ctx.stop_child(&child);
        Ok(())
    }

    async fn terminated(&mut self, t: Terminated, _: &mut Context<Self>) -> ActorResult {
        self.events
            .tell(Ev::child_terminated("watcher", t.path().name()));
        Ok(())
    }
}

/// A watch made on a child that has not run, then a stop: the child starts, stops without
/// handling its message, and its watcher (also its parent) hears of it exactly once.
#[tokio::test(start_paused = true)]
async fn a_child_watched_and_stopped_before_its_first_run_is_reported_once() {
    let kit = TestKit::new("s6-early-watch");
    let events = kit.probe::<Ev>();
    let tally = Arc::new(Tally::default());
    let (t, e) = (tally.clone(), events.actor_ref().clone());
    let watcher = kit.spawn(
        Props::new(move || EarlyWatcher {
            tally: t.clone(),
            events: e.clone(),
        }),
        "watcher",
    );
    watcher.tell(());
    events.expect_msg(Ev::handled("watcher", 1, 0)).await;
    events.expect_msg(Ev::started("counted", 1)).await;
    events.expect_msg(Ev::stopped("counted", 1)).await;
    events
        .expect_msg(Ev::child_terminated("watcher", "child"))
        .await;
    events.expect_no_msg(Duration::from_secs(1)).await;
    assert_eq!(Tally::get(&tally.handled), 0);
    kit.shutdown().await;
}

/// Terminating a system right after spawning many actors that have not run: each is made,
/// started and stopped, and termination waits for all of them.
#[tokio::test(start_paused = true)]
async fn terminating_with_many_unstarted_actors_starts_and_stops_each() {
    const ACTORS: usize = 2_000;
    let system = ActorSystem::new("s6-early-terminate").unwrap();
    let tally = Arc::new(Tally::default());
    for _ in 0..ACTORS {
        let r = system
            .spawn_anonymous(Counted::props(&tally, None))
            .unwrap();
        r.tell(1);
    }
    assert_eq!(
        Tally::get(&tally.made),
        0,
        "an actor ran before the test yielded"
    );
    system.terminate().await;
    assert_eq!(Tally::get(&tally.made), ACTORS);
    assert_eq!(Tally::get(&tally.started), ACTORS);
    assert_eq!(Tally::get(&tally.stopped), ACTORS);
    assert_eq!(Tally::get(&tally.dropped), ACTORS);
    assert_eq!(Tally::get(&tally.recipes_dropped), ACTORS);
    // the stop is a system message: it comes before the queued message
    assert_eq!(Tally::get(&tally.handled), 0);
}

/// The runtime is dropped while every actor spawned on it is still unstarted (one thread,
/// never yielded to): each cell's recipe is dropped, and no instance was ever made.
#[test]
fn a_runtime_dropped_before_any_actor_ran_drops_every_recipe() {
    const ACTORS: usize = 5_000;
    let tally = Arc::new(Tally::default());
    let rt = one_thread();
    let system = rt.block_on(async {
        let system = ActorSystem::new("s6-drop-unstarted").unwrap();
        for i in 0..ACTORS {
            let r = system
                .spawn_anonymous(Counted::props(&tally, None))
                .unwrap();
            r.tell(i as u32);
            if i % 2 == 0 {
                // a system message queued on an unstarted actor too
                r.stop();
            }
        }
        system
    });
    assert_eq!(Tally::get(&tally.recipes_dropped), 0);
    drop(rt);
    assert_eq!(
        Tally::get(&tally.recipes_dropped),
        ACTORS,
        "a recipe was kept after the runtime went away"
    );
    assert_eq!(
        Tally::get(&tally.made),
        0,
        "an actor was made after the runtime went away"
    );
    drop(system);
}

/// Spawns `count` actors from a task on two runtime threads and drops the runtime as soon as
/// the task returns: some actors ran, some are being made, some never ran. Every recipe is
/// dropped once and every instance made is dropped once.
#[test]
fn a_runtime_dropped_while_actors_are_being_made_keeps_no_recipe_nor_instance() {
    const ACTORS: usize = 2_000;
    for _ in 0..10 {
        let tally = Arc::new(Tally::default());
        let rt = two_threads();
        let system = rt.block_on(async {
            let system = ActorSystem::new("s6-drop-racing").unwrap();
            for i in 0..ACTORS {
                let r = system
                    .spawn_anonymous(Counted::props(&tally, None))
                    .unwrap();
                r.tell(i as u32);
                if i % 64 == 0 {
                    // let the other thread start some of them
                    tokio::task::yield_now().await;
                }
            }
            system
        });
        drop(rt);
        assert_eq!(
            Tally::get(&tally.recipes_dropped),
            ACTORS,
            "a recipe was kept"
        );
        assert_eq!(
            Tally::get(&tally.made),
            Tally::get(&tally.dropped),
            "an instance was kept or dropped twice"
        );
        drop(system);
    }
}

/// Sits in a props' factory; when the props are dropped, it spawns an actor under `/user`
/// (which takes the user guardian's children lock) and reports whether that worked.
struct SpawnOnDrop {
    system: ActorSystem,
    done: mpsc::Sender<bool>,
}

impl Drop for SpawnOnDrop {
    fn drop(&mut self) {
        let spawned = self.system.spawn_anonymous(Props::new(|| common::Idle));
        let _ = self.done.send(spawned.is_ok());
    }
}

/// A spawn refused for a taken name drops the cell, and with it the recipe the cell kept:
/// the recipe's `Drop` (user code) runs after the parent's children lock is released, so it
/// may spawn into the same parent.
#[test]
fn a_refused_spawn_drops_its_recipe_after_releasing_the_parent_lock() {
    let rt = two_threads();
    let system = rt.block_on(async { ActorSystem::new("s6-refused").unwrap() });
    system.spawn(Props::new(|| common::Idle), "taken").unwrap();
    let (done, spawned) = mpsc::channel();
    let worker = {
        let system = system.clone();
        std::thread::spawn(move || {
            let hook = SpawnOnDrop {
                system: system.clone(),
                done,
            };
            let refused = system.spawn(
                Props::new(move || {
                    let _keep = &hook;
                    common::Idle
                }),
                "taken",
            );
            assert!(matches!(refused, Err(SpawnError::DuplicateName { .. })));
        })
    };
    // a deadlock (the lock held while the recipe drops) leaves this waiting until the deadline
    let spawned = spawned.recv_timeout(DEADLINE);
    assert_eq!(
        spawned,
        Ok(true),
        "the refused recipe's Drop could not spawn into the parent"
    );
    worker.join().unwrap();
    rt.block_on(system.terminate());
}

/// Watches every actor it is told about and reports each termination.
struct Counter {
    terminated: tokio::sync::mpsc::UnboundedSender<()>,
}

impl Actor for Counter {
    type Msg = ActorRef<u32>;

    async fn handle(&mut self, target: ActorRef<u32>, ctx: &mut Context<Self>) -> ActorResult {
        ctx.watch(&target);
        Ok(())
    }

    async fn terminated(&mut self, _: Terminated, _: &mut Context<Self>) -> ActorResult {
        let _ = self.terminated.send(());
        Ok(())
    }
}

/// Stops (system messages) sent from a thread outside the runtime race actors that are
/// handling a message or just going back to wait on the other threads: the wait flag and the
/// re-check of pending system messages must let every stop through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stops_racing_actors_going_idle_are_never_lost() {
    const ACTORS: usize = 64;
    const ROUNDS: usize = 30;
    let system = ActorSystem::new("s6-stop-race").unwrap();
    let (tx, mut terminated) = tokio::sync::mpsc::unbounded_channel();
    let counter = system
        .spawn(
            Props::new(move || Counter {
                terminated: tx.clone(),
            }),
            "counter",
        )
        .unwrap();
    let tally = Arc::new(Tally::default());
    for round in 0..ROUNDS {
        let targets: Vec<ActorRef<u32>> = (0..ACTORS)
            .map(|_| {
                system
                    .spawn_anonymous(Counted::props(&tally, None))
                    .unwrap()
            })
            .collect();
        for t in &targets {
            counter.tell(t.clone());
        }
        let stopper = {
            let targets = targets.clone();
            std::thread::spawn(move || {
                for (i, t) in targets.iter().enumerate() {
                    t.tell(i as u32);
                    t.tell(i as u32);
                    t.stop();
                }
            })
        };
        for i in 0..ACTORS {
            let got = tokio::time::timeout(DEADLINE, terminated.recv()).await;
            assert!(
                matches!(got, Ok(Some(()))),
                "round {round}: only {i} of {ACTORS} actors terminated"
            );
        }
        stopper.join().unwrap();
    }
    system.terminate().await;
    assert_eq!(Tally::get(&tally.stopped), ACTORS * ROUNDS);
}

/// A child that failed waits for its parent's directive (`poll_until` sets the wait flag);
/// the restart comes from a timer task after the backoff and must wake it then, not later.
#[tokio::test(start_paused = true)]
async fn a_restart_after_a_backoff_wakes_the_child_waiting_for_it_at_once() {
    const BACKOFF: Duration = Duration::from_secs(5);
    let kit = TestKit::new("s6-backoff");
    let events = kit.probe::<Ev>();
    let strategy = SupervisorStrategy::restart_with_backoff(BACKOFF, BACKOFF, 0.0);
    let parent = kit.spawn(
        Parent::props(
            "p",
            events.actor_ref(),
            vec![worker_child("c", events.actor_ref())],
        )
        .supervisor(strategy),
        "p",
    );
    events
        .expect_msg_all_of(vec![Ev::started("p", 1), Ev::started("c", 1)])
        .await;
    let child = lookup::<Cmd>(&kit, "actor://s6-backoff/user/p/c").await;
    let failed_at = Instant::now();
    child.tell(Cmd::Fail);
    child.tell(Cmd::Add(3));
    // longer than the probe's default wait: the backoff is 5 s
    let restarting = events.receive_one(BACKOFF * 2).await;
    assert_eq!(restarting, Some(Ev::pre_restart("c", 1)));
    let waited = failed_at.elapsed();
    assert!(
        waited >= BACKOFF && waited < BACKOFF + Duration::from_millis(100),
        "the restart reached the waiting child after {waited:?}, not after {BACKOFF:?}"
    );
    events.expect_msg(Ev::started("c", 2)).await;
    events.expect_msg(Ev::handled("c", 2, 3)).await;
    drop(parent);
    kit.shutdown().await;
}

/// What [`Patient`] takes.
#[derive(Clone)]
enum PatientMsg {
    /// Handled at once, reported as `Handled { value }`.
    Add(u32),
    /// The receive timeout fired: the handler waits for the gate before it reports.
    Timeout,
}

/// Uses a receive timeout (its run loop waits in the timed `select!`); on the timeout message
/// it waits for a gate the test opens, while the mailbox's wait flag is stale.
struct Patient {
    events: ActorRef<Ev>,
    gate: Option<tokio::sync::oneshot::Receiver<()>>,
}

/// What [`Patient`] reports when its timeout handler begins and when it ends.
const TIMEOUT_BEGAN: Ev = Ev::Handled {
    name: String::new(),
    instance: 0,
    value: 0,
};
const TIMEOUT_ENDED: Ev = Ev::Handled {
    name: String::new(),
    instance: 0,
    value: 1,
};

/// The receive timeout [`Patient`] sets.
const IDLE_AFTER: Duration = Duration::from_secs(10);

impl Actor for Patient {
    type Msg = PatientMsg;

    async fn started(&mut self, ctx: &mut Context<Self>) -> ActorResult {
        ctx.set_receive_timeout(IDLE_AFTER, PatientMsg::Timeout);
        self.events.tell(Ev::started("patient", 1));
        Ok(())
    }

    async fn handle(&mut self, msg: PatientMsg, _: &mut Context<Self>) -> ActorResult {
        match msg {
            PatientMsg::Add(n) => self.events.tell(Ev::handled("patient", 1, n)),
            PatientMsg::Timeout => {
                self.events.tell(TIMEOUT_BEGAN);
                if let Some(gate) = self.gate.take() {
                    let _ = gate.await;
                }
                self.events.tell(TIMEOUT_ENDED);
            }
        }
        Ok(())
    }

    async fn stopped(&mut self, _: &mut Context<Self>) {
        self.events.tell(Ev::stopped("patient", 1));
    }
}

/// An actor waiting with a receive timeout is woken by a message and by a stop at once (in
/// virtual time: a lost wake would show as the timeout's 10 s passing first).
#[tokio::test(start_paused = true)]
async fn a_timed_wait_is_ended_at_once_by_a_message_and_by_a_stop() {
    let kit = TestKit::new("s6-timed-wait");
    let events = kit.probe::<Ev>();
    let e = events.actor_ref().clone();
    let patient = kit.spawn(
        Props::new(move || Patient {
            events: e.clone(),
            gate: None,
        }),
        "patient",
    );
    events.expect_msg(Ev::started("patient", 1)).await;
    let t0 = Instant::now();
    patient.tell(PatientMsg::Add(1));
    events.expect_msg(Ev::handled("patient", 1, 1)).await;
    assert!(
        t0.elapsed() < IDLE_AFTER,
        "the message waited for the timeout"
    );
    let t1 = Instant::now();
    patient.stop();
    events.expect_msg(Ev::stopped("patient", 1)).await;
    assert!(
        t1.elapsed() < IDLE_AFTER,
        "the stop waited {:?}, for the receive timeout",
        t1.elapsed()
    );
    kit.shutdown().await;
}

/// After the receive timeout fired the wait flag is left set while the handler awaits its
/// gate: a message arriving then rouses the run loop spuriously, and must neither run before
/// the handler ends nor be lost; a stop arriving then waits for the handler too.
#[tokio::test(start_paused = true)]
async fn a_message_during_a_handler_after_a_receive_timeout_waits_for_the_handler() {
    let kit = TestKit::new("s6-stale-flag");
    let events = kit.probe::<Ev>();
    let e = events.actor_ref().clone();
    let (open, gate) = tokio::sync::oneshot::channel();
    let gate = std::sync::Mutex::new(Some(gate));
    let patient = kit.spawn(
        Props::new(move || Patient {
            events: e.clone(),
            gate: gate.lock().unwrap().take(),
        }),
        "patient",
    );
    events.expect_msg(Ev::started("patient", 1)).await;
    let t0 = Instant::now();
    // longer than the probe's default wait: the timeout is 10 s
    let began = events.receive_one(IDLE_AFTER * 2).await;
    assert_eq!(began, Some(TIMEOUT_BEGAN));
    assert!(t0.elapsed() >= IDLE_AFTER, "the timeout fired early");
    patient.tell(PatientMsg::Add(5));
    patient.tell(PatientMsg::Add(6));
    events.expect_no_msg(Duration::from_secs(1)).await;
    open.send(()).unwrap();
    events.expect_msg(TIMEOUT_ENDED).await;
    events.expect_msg(Ev::handled("patient", 1, 5)).await;
    events.expect_msg(Ev::handled("patient", 1, 6)).await;
    patient.stop();
    events.expect_msg(Ev::stopped("patient", 1)).await;
    kit.shutdown().await;
}

/// Idle actors told from a thread outside the runtime while each also has a receive timeout
/// (its run loop waits in the timed `select!`): every message is handled.
struct TimedAck;

impl Actor for TimedAck {
    type Msg = Option<mpsc::Sender<()>>;

    async fn started(&mut self, ctx: &mut Context<Self>) -> ActorResult {
        ctx.set_receive_timeout(Duration::from_secs(3600), None);
        Ok(())
    }

    async fn handle(
        &mut self,
        ack: Option<mpsc::Sender<()>>,
        _: &mut Context<Self>,
    ) -> ActorResult {
        if let Some(ack) = ack {
            let _ = ack.send(());
        }
        Ok(())
    }
}

/// Rounds of tells from an outside thread to actors waiting with a receive timeout, on two
/// runtime threads: a wake through the wait flag set inside the timed `select!` is never lost.
#[test]
fn tells_to_actors_waiting_with_a_receive_timeout_are_all_handled() {
    const ACTORS: usize = 32;
    const ROUNDS: usize = 200;
    let rt = two_threads();
    let system = rt.block_on(async { ActorSystem::new("s6-timed-acks").unwrap() });
    let actors: Vec<_> = (0..ACTORS)
        .map(|_| system.spawn_anonymous(Props::new(|| TimedAck)).unwrap())
        .collect();
    let (tx, rx) = mpsc::channel();
    for round in 0..ROUNDS {
        for a in &actors {
            a.tell(Some(tx.clone()));
        }
        for i in 0..ACTORS {
            assert!(
                rx.recv_timeout(DEADLINE).is_ok(),
                "round {round}: only {i} of {ACTORS} acks"
            );
        }
    }
    rt.block_on(system.terminate());
}
