//! Review of the dispatcher: a handler that wakes an actor and then blocks its thread, a
//! handler in `block_in_place`, virtual time with every actor idle, several systems on one
//! runtime, a system used from another runtime, and a runtime dropped with actors mid-run.

use std::sync::Arc;
use std::time::Duration;

mod common;

use common::{Ball, Echo, one_thread, rally, two_threads};

use actor_core::{Actor, ActorRef, ActorResult, ActorSystem, Context, Props, ReplyTo};

/// A failure deadline for waits on real time (the waits end as soon as the event happens).
const DEADLINE: Duration = Duration::from_secs(30);

/// How long an ask may take while one thread is blocked and the other is free: far more than
/// an answer needs, short enough to keep a failing run fast.
const FREE_THREAD_ANSWER: Duration = Duration::from_millis(500);

/// What a [`Target`] takes.
enum Probe {
    Hit,
    Count(ReplyTo<usize>),
}

/// Counts the hits it gets.
#[derive(Default)]
struct Target {
    hits: usize,
}

impl Actor for Target {
    type Msg = Probe;
    async fn handle(&mut self, msg: Probe, _: &mut Context<Self>) -> ActorResult {
        match msg {
            Probe::Hit => self.hits += 1,
            Probe::Count(r) => {
                r.reply(self.hits);
            }
        }
        Ok(())
    }
}

/// On its message: hits `target` (waking it), reports that it entered, then blocks its
/// thread until released (with `block_in_place` when `in_place`).
struct WakeThenBlock {
    target: ActorRef<Probe>,
    entered: std::sync::mpsc::Sender<()>,
    release: Arc<std::sync::Mutex<std::sync::mpsc::Receiver<()>>>,
    in_place: bool,
}

impl Actor for WakeThenBlock {
    type Msg = ();
    async fn handle(&mut self, (): (), _: &mut Context<Self>) -> ActorResult {
        self.target.tell(Probe::Hit);
        let _ = self.entered.send(());
        let wait = || {
            if let Ok(r) = self.release.lock() {
                let _ = r.recv_timeout(DEADLINE);
            }
        };
        if self.in_place {
            tokio::task::block_in_place(wait);
        } else {
            wait();
        }
        Ok(())
    }
}

/// While one handler blocks its thread, the other thread keeps answering, and the actor the
/// blocked handler woke just before blocking runs too.
async fn blocked_handler_scenario(in_place: bool) {
    let system = ActorSystem::new("wake-then-block").unwrap();
    let target = system.spawn(Props::new(Target::default), "target").unwrap();
    let echo = system.spawn(Props::new(|| Echo), "echo").unwrap();
    let (entered, has_entered) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel();
    let released = Arc::new(std::sync::Mutex::new(released));
    let t = target.clone();
    let blocker = system
        .spawn(
            Props::new(move || WakeThenBlock {
                target: t.clone(),
                entered: entered.clone(),
                release: released.clone(),
                in_place,
            }),
            "blocker",
        )
        .unwrap();
    // every actor has started and is idle
    assert_eq!(echo.ask(|r| r, DEADLINE).await.ok(), Some(7));
    assert_eq!(target.ask(Probe::Count, DEADLINE).await.ok(), Some(0));
    blocker.tell(());
    tokio::task::spawn_blocking(move || has_entered.recv_timeout(DEADLINE))
        .await
        .unwrap()
        .unwrap();
    let answer = echo.ask(|r| r, FREE_THREAD_ANSWER).await;
    let hits = target.ask(Probe::Count, FREE_THREAD_ANSWER).await;
    release.send(()).unwrap();
    assert_eq!(
        answer.ok(),
        Some(7),
        "an ask while one handler blocks its thread (in_place: {in_place})"
    );
    assert_eq!(
        hits.ok(),
        Some(1),
        "the actor the blocked handler woke ran on the free thread (in_place: {in_place})"
    );
    assert!(
        tokio::time::timeout(DEADLINE, system.terminate())
            .await
            .is_ok()
    );
}

/// A handler that wakes another actor and then blocks its thread (a mistake, but a common
/// one) holds up no one else while another thread is free. A parked worker woken from a tokio
/// worker thread goes to that thread's LIFO slot, which no other thread may steal from: when
/// the hand-over happened inside the handler, the woken worker (and with it every actor the
/// system ran) waited for the blocked thread.
#[test]
fn a_handler_that_wakes_an_actor_then_blocks_holds_up_no_one_else() {
    let rt = two_threads();
    // the race (both workers parked when the handler runs) is won most of the time; three
    // rounds make a regression fail nearly always
    for _ in 0..3 {
        rt.block_on(blocked_handler_scenario(false));
    }
}

/// The same with the handler inside `block_in_place`: tokio moves the thread's other work
/// elsewhere, and the system keeps running.
#[test]
fn a_handler_in_block_in_place_holds_up_no_one_else() {
    let rt = two_threads();
    rt.block_on(blocked_handler_scenario(true));
}

/// Sleeps (virtual time) in its handler, then answers.
struct Sleeper;

impl Actor for Sleeper {
    type Msg = ReplyTo<u32>;
    async fn handle(&mut self, r: ReplyTo<u32>, _: &mut Context<Self>) -> ActorResult {
        tokio::time::sleep(Duration::from_secs(3_600)).await;
        r.reply(1);
        Ok(())
    }
}

/// Sends itself a message after an hour with a timer, then answers whoever asked.
struct Alarm {
    waiting: Option<ReplyTo<u32>>,
}

enum AlarmMsg {
    Set(ReplyTo<u32>),
    Ring,
}

impl Actor for Alarm {
    type Msg = AlarmMsg;
    async fn handle(&mut self, msg: AlarmMsg, ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            AlarmMsg::Set(r) => {
                self.waiting = Some(r);
                ctx.start_single_timer("ring", Duration::from_secs(3_600), AlarmMsg::Ring);
            }
            AlarmMsg::Ring => {
                if let Some(r) = self.waiting.take() {
                    r.reply(2);
                }
            }
        }
        Ok(())
    }
}

/// With a paused clock, virtual time still moves on when every actor waits on a timer: the
/// dispatcher's parked workers are not runnable tasks, so tokio advances the clock.
#[tokio::test(start_paused = true)]
async fn virtual_time_advances_while_every_actor_waits() {
    let system = ActorSystem::new("paused").unwrap();
    let sleeper = system.spawn(Props::new(|| Sleeper), "sleeper").unwrap();
    let alarm = system
        .spawn(Props::new(|| Alarm { waiting: None }), "alarm")
        .unwrap();
    let start = tokio::time::Instant::now();
    let (a, b) = tokio::join!(
        sleeper.ask(|r| r, Duration::from_secs(7_200)),
        alarm.ask(AlarmMsg::Set, Duration::from_secs(7_200)),
    );
    assert_eq!((a.ok(), b.ok()), (Some(1), Some(2)));
    assert!(start.elapsed() >= Duration::from_secs(3_600));
    system.terminate().await;
}

/// Rallies between actors of two systems on one runtime: every rally ends, and both systems
/// terminate.
#[test]
fn rallies_between_two_systems_on_one_runtime_end() {
    let rt = two_threads();
    rt.block_on(async {
        let left = ActorSystem::new("left").unwrap();
        let right = ActorSystem::new("right").unwrap();
        rally(&left, &right, 200, 101, DEADLINE).await;
        let both = async { tokio::join!(left.terminate(), right.terminate()) };
        assert!(tokio::time::timeout(DEADLINE, both).await.is_ok());
    });
}

/// A system made on one runtime answers asks and takes spawns from tasks of another runtime
/// (its actors run on the first).
#[test]
fn a_system_is_used_from_another_runtime() {
    let home = two_threads();
    let system = home.block_on(async { ActorSystem::new("home").unwrap() });
    let echo = home.block_on(async { system.spawn(Props::new(|| Echo), "echo").unwrap() });
    let away = one_thread();
    away.block_on(async {
        for _ in 0..50 {
            assert_eq!(echo.ask(|r| r, DEADLINE).await.ok(), Some(7));
        }
        let fresh = system.spawn_anonymous(Props::new(|| Echo)).unwrap();
        assert_eq!(fresh.ask(|r| r, DEADLINE).await.ok(), Some(7));
    });
    home.block_on(async {
        assert!(
            tokio::time::timeout(DEADLINE, system.terminate())
                .await
                .is_ok()
        );
    });
}

/// Holds the only sender of a channel another actor waits on; dropping it ends that wait.
struct Holder {
    _sender: std::sync::mpsc::Sender<()>,
    started: std::sync::mpsc::Sender<()>,
}

impl Actor for Holder {
    type Msg = ();
    async fn started(&mut self, _: &mut Context<Self>) -> ActorResult {
        let _ = self.started.send(());
        Ok(())
    }
    async fn handle(&mut self, (): (), _: &mut Context<Self>) -> ActorResult {
        Ok(())
    }
}

/// Blocks its thread on a channel until every sender is gone, and reports how the wait ended.
struct WaitsForHolder {
    receiver: Arc<std::sync::Mutex<std::sync::mpsc::Receiver<()>>>,
    entered: std::sync::mpsc::Sender<()>,
    outcome: std::sync::mpsc::Sender<Result<(), std::sync::mpsc::RecvTimeoutError>>,
}

impl Actor for WaitsForHolder {
    type Msg = ();
    async fn handle(&mut self, (): (), _: &mut Context<Self>) -> ActorResult {
        let _ = self.entered.send(());
        let got = match self.receiver.lock() {
            Ok(r) => r.recv_timeout(SHUTDOWN_WAIT),
            Err(_) => Ok(()),
        };
        let _ = self.outcome.send(got);
        Ok(())
    }
}

/// How long the blocked handler waits for the holder's drop before giving up (the failure
/// case of the shutdown test takes this long).
const SHUTDOWN_WAIT: Duration = Duration::from_millis(1_500);

/// Dropping the runtime while a handler blocks its thread until another actor is dropped
/// drops that other actor: the clean-up does not wait for the running actor's poll (it used to
/// lock every run loop in tree order, and waited for the blocked one before reaching the
/// holder, so the handler waited for good, here until its time-out).
#[test]
fn dropping_the_runtime_does_not_wait_for_a_blocked_handler() {
    let rt = two_threads();
    let (sender, receiver) = std::sync::mpsc::channel();
    let receiver = Arc::new(std::sync::Mutex::new(receiver));
    let (entered, has_entered) = std::sync::mpsc::channel();
    let (outcome, outcome_rx) = std::sync::mpsc::channel();
    let (started, has_started) = std::sync::mpsc::channel();
    rt.block_on(async {
        let system = ActorSystem::new("blocked-shutdown").unwrap();
        let sender = std::sync::Mutex::new(Some(sender));
        // named so that the tree walk meets the blocked actor first
        system
            .spawn(
                Props::new(move || Holder {
                    _sender: sender
                        .lock()
                        .ok()
                        .and_then(|mut s| s.take())
                        .unwrap_or_else(|| std::sync::mpsc::channel().0),
                    started: started.clone(),
                }),
                "b-holder",
            )
            .unwrap();
        let waiter = system
            .spawn(
                Props::new(move || WaitsForHolder {
                    receiver: receiver.clone(),
                    entered: entered.clone(),
                    outcome: outcome.clone(),
                }),
                "a-waiter",
            )
            .unwrap();
        tokio::task::spawn_blocking(move || has_started.recv_timeout(DEADLINE))
            .await
            .unwrap()
            .unwrap();
        waiter.tell(());
        tokio::task::spawn_blocking(move || has_entered.recv_timeout(DEADLINE))
            .await
            .unwrap()
            .unwrap();
    });
    drop(rt);
    assert_eq!(
        outcome_rx.recv_timeout(DEADLINE),
        Ok(Err(std::sync::mpsc::RecvTimeoutError::Disconnected)),
        "the holder was dropped while the handler still waited"
    );
}

/// Counts its instances' drops; its props keep `token` alive.
struct Tokened {
    _token: Arc<()>,
}

impl Actor for Tokened {
    type Msg = ();
    async fn handle(&mut self, (): (), _: &mut Context<Self>) -> ActorResult {
        Ok(())
    }
}

/// A spawn into a system whose runtime is gone drops the new actor's run loop at once (as
/// tokio drops a task spawned onto a shut-down runtime) instead of keeping it, and its cell,
/// alive for good through the cell's own reference.
#[test]
fn a_spawn_after_the_runtime_is_gone_keeps_nothing_alive() {
    let rt = one_thread();
    let system = rt.block_on(async { ActorSystem::new("gone").unwrap() });
    drop(rt);
    let token = Arc::new(());
    let t = token.clone();
    let spawned = system.spawn_anonymous(Props::new(move || Tokened { _token: t.clone() }));
    drop(spawned);
    assert_eq!(
        Arc::strong_count(&token),
        1,
        "the props (in the run loop) were dropped"
    );
}

/// Answers each request on the std channel it carries.
struct SyncAnswer;

impl Actor for SyncAnswer {
    type Msg = std::sync::mpsc::Sender<u32>;
    async fn handle(
        &mut self,
        to: std::sync::mpsc::Sender<u32>,
        _: &mut Context<Self>,
    ) -> ActorResult {
        let _ = to.send(9);
        Ok(())
    }
}

/// Asks `helper` through a std channel and blocks its thread for the answer (in
/// `block_in_place` when `in_place`), then reports what it got.
struct WaitsForHelper {
    helper: ActorRef<std::sync::mpsc::Sender<u32>>,
    in_place: bool,
    outcome: std::sync::mpsc::Sender<Result<u32, std::sync::mpsc::RecvTimeoutError>>,
}

impl Actor for WaitsForHelper {
    type Msg = ();
    async fn handle(&mut self, (): (), _: &mut Context<Self>) -> ActorResult {
        let (to, answer) = std::sync::mpsc::channel();
        self.helper.tell(to);
        let wait = move || answer.recv_timeout(FREE_THREAD_ANSWER);
        let got = if self.in_place {
            tokio::task::block_in_place(wait)
        } else {
            wait()
        };
        let _ = self.outcome.send(got);
        Ok(())
    }
}

/// A handler that wakes an actor and then blocks its thread in `block_in_place` (the
/// sanctioned way to block) waiting for that actor's answer gets it from the other thread,
/// with nothing else happening in the system. The woken actor must reach a worker that an
/// idle thread can run: a parked worker woken from a worker thread sits in that thread's LIFO
/// slot, which only `block_in_place` hands on.
///
/// Blocking plainly (`in_place: false`) works too in nearly every run, thanks to the no-op
/// spawn that pushes the woken worker out of the LIFO slot, but it is not guaranteed: the
/// worker then sits in the blocked thread's run queue, and tokio steals from there only if
/// another thread is awake to look (it failed once in 20 loops of the whole file on two busy
/// cores). So only the sanctioned way is asserted.
#[test]
fn a_handler_blocking_on_an_actor_it_woke_gets_the_answer() {
    let rt = two_threads();
    let in_place = true;
    for round in 0..3 {
        let got = rt.block_on(async {
            let system = ActorSystem::new("delegate").unwrap();
            let helper = system.spawn(Props::new(|| SyncAnswer), "helper").unwrap();
            let (outcome, outcome_rx) = std::sync::mpsc::channel();
            let waiter = system
                .spawn(
                    Props::new(move || WaitsForHelper {
                        helper: helper.clone(),
                        in_place,
                        outcome: outcome.clone(),
                    }),
                    "waiter",
                )
                .unwrap();
            // both actors started and idle, both workers parked (most of the time)
            let (to, answer) = std::sync::mpsc::channel();
            system
                .lookup::<std::sync::mpsc::Sender<u32>>(
                    &actor_core::ActorPath::parse("actor://delegate/user/helper").unwrap(),
                )
                .unwrap()
                .tell(to);
            let got = tokio::task::spawn_blocking(move || {
                answer.recv_timeout(DEADLINE).ok()?;
                waiter.tell(());
                outcome_rx.recv_timeout(DEADLINE).ok()
            })
            .await
            .unwrap();
            assert!(
                tokio::time::timeout(DEADLINE, system.terminate())
                    .await
                    .is_ok()
            );
            got
        });
        assert_eq!(
            got,
            Some(Ok(9)),
            "round {round}, in_place: {in_place}: the woken actor answered"
        );
    }
}

/// Bounces a ball with its partner for good; counts its drops.
struct Bouncer {
    partner: Option<ActorRef<Ball>>,
    drops: Arc<std::sync::atomic::AtomicUsize>,
    bounced: tokio::sync::mpsc::UnboundedSender<()>,
}

impl Actor for Bouncer {
    type Msg = Ball;
    async fn handle(&mut self, msg: Ball, _: &mut Context<Self>) -> ActorResult {
        match msg {
            Ball::Partner(p) => self.partner = Some(p),
            Ball::Bounce(n) => {
                if n == 1_000 {
                    let _ = self.bounced.send(());
                }
                if let Some(p) = &self.partner {
                    p.tell(Ball::Bounce(n.wrapping_add(1)));
                }
            }
        }
        Ok(())
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        self.drops.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Dropping a two-thread runtime while every actor is busy (rallies that never end, so run
/// loops are being polled, queued and woken on both threads as the workers go) drops every
/// actor exactly once.
#[test]
fn dropping_the_runtime_mid_rally_drops_every_actor_once() {
    const PAIRS: usize = 100;
    let drops = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let rt = two_threads();
    rt.block_on(async {
        let system = ActorSystem::new("mid-rally").unwrap();
        let (bounced, mut has_bounced) = tokio::sync::mpsc::unbounded_channel();
        for _ in 0..PAIRS {
            let bouncer = || {
                let (drops, bounced) = (drops.clone(), bounced.clone());
                system
                    .spawn_anonymous(Props::new(move || Bouncer {
                        partner: None,
                        drops: drops.clone(),
                        bounced: bounced.clone(),
                    }))
                    .unwrap()
            };
            let (a, b) = (bouncer(), bouncer());
            a.tell(Ball::Partner(b.clone()));
            b.tell(Ball::Partner(a.clone()));
            a.tell(Ball::Bounce(0));
        }
        // every rally is well under way
        for n in 0..PAIRS {
            let got = tokio::time::timeout(DEADLINE, has_bounced.recv()).await;
            assert!(matches!(got, Ok(Some(()))), "only {n} rallies got going");
        }
    });
    drop(rt);
    assert_eq!(
        drops.load(std::sync::atomic::Ordering::SeqCst),
        2 * PAIRS,
        "every actor dropped once with the runtime"
    );
}

/// The same across two systems on one runtime: a handler of one system tells an actor of the
/// other and blocks its thread for the answer. The other system's parked worker, woken from
/// this worker thread, must not stay in the thread's LIFO slot.
#[test]
fn a_handler_blocking_on_an_actor_of_another_system_gets_the_answer() {
    let rt = two_threads();
    for round in 0..3 {
        let got = rt.block_on(async {
            let asking = ActorSystem::new("asking").unwrap();
            let answering = ActorSystem::new("answering").unwrap();
            let helper = answering
                .spawn(Props::new(|| SyncAnswer), "helper")
                .unwrap();
            let (outcome, outcome_rx) = std::sync::mpsc::channel();
            let waiter = asking
                .spawn(
                    Props::new(move || WaitsForHelper {
                        helper: helper.clone(),
                        in_place: false,
                        outcome: outcome.clone(),
                    }),
                    "waiter",
                )
                .unwrap();
            let got = tokio::task::spawn_blocking(move || {
                waiter.tell(());
                outcome_rx.recv_timeout(DEADLINE).ok()
            })
            .await
            .unwrap();
            let both = async { tokio::join!(asking.terminate(), answering.terminate()) };
            assert!(tokio::time::timeout(DEADLINE, both).await.is_ok());
            got
        });
        assert_eq!(got, Some(Ok(9)), "round {round}: the other system answered");
    }
}
