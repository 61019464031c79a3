//! Supervision: restart keeps the mailbox, resume keeps state, escalation, all-for-one,
//! restart limits, backoff, start failures, and isolation of a panicking actor under load.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actor_core::{
    Actor, ActorError, ActorResult, Context, Directive, FailurePhase, Props, SupervisorStrategy,
    SystemSettings,
};
use actor_testkit::{TestKit, await_assert};
use common::{Cmd, Ev, Parent, Worker, lookup, parent_child, worker_child};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn kit_with_guardian(name: &str, strategy: SupervisorStrategy) -> TestKit {
    match TestKit::with_settings(name, SystemSettings::default().guardian_strategy(strategy)) {
        Ok(kit) => kit,
        Err(e) => panic!("cannot create the test system: {e}"),
    }
}

#[tokio::test(start_paused = true)]
async fn restart_keeps_the_mailbox() {
    let kit = TestKit::new("restart-mailbox");
    let ev = kit.probe::<Ev>();
    let w = kit.spawn(Worker::props("w", ev.actor_ref()), "w");
    w.tell(Cmd::Fail);
    for n in 1..=3 {
        w.tell(Cmd::Add(n));
    }
    ev.expect_msg(Ev::started("w", 1)).await;
    ev.expect_msg(Ev::pre_restart("w", 1)).await;
    ev.expect_msg(Ev::started("w", 2)).await;
    // the messages queued behind the failing one are handled by the new instance
    for n in 1..=3 {
        ev.expect_msg(Ev::handled("w", 2, n)).await;
    }
    ev.expect_no_msg(secs(1)).await;
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn resume_keeps_the_state_after_an_error() {
    let kit = kit_with_guardian(
        "resume-state",
        SupervisorStrategy::one_for_one().with_decider(|_| Directive::Resume),
    );
    let ev = kit.probe::<Ev>();
    let w = kit.spawn(Worker::props("w", ev.actor_ref()), "w");
    w.tell(Cmd::Add(5));
    w.tell(Cmd::Fail);
    w.tell(Cmd::Add(2));
    assert_eq!(w.ask(Cmd::Get, secs(1)).await, Ok(7));
    ev.expect_msg(Ev::started("w", 1)).await;
    ev.expect_msg(Ev::handled("w", 1, 5)).await;
    ev.expect_msg(Ev::handled("w", 1, 2)).await;
    ev.expect_no_msg(secs(1)).await;
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_panic_under_a_resume_decider_restarts() {
    let kit = kit_with_guardian(
        "resume-panic",
        SupervisorStrategy::one_for_one().with_decider(|_| Directive::Resume),
    );
    let ev = kit.probe::<Ev>();
    let w = kit.spawn(Worker::props("w", ev.actor_ref()), "w");
    w.tell(Cmd::Add(5));
    w.tell(Cmd::Panic);
    w.tell(Cmd::Add(2));
    // the state was torn by the panic: a fresh instance has only the later message
    assert_eq!(w.ask(Cmd::Get, secs(1)).await, Ok(2));
    ev.expect_msg(Ev::started("w", 1)).await;
    ev.expect_msg(Ev::handled("w", 1, 5)).await;
    ev.expect_msg(Ev::pre_restart("w", 1)).await;
    ev.expect_msg(Ev::started("w", 2)).await;
    ev.expect_msg(Ev::handled("w", 2, 2)).await;
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn escalate_reaches_the_grandparent() {
    let kit = TestKit::new("escalate");
    let ev = kit.probe::<Ev>();
    let seen = kit.probe::<(String, FailurePhase, String)>();
    let report = seen.actor_ref().clone();
    let gp_strategy = SupervisorStrategy::one_for_one().with_decider(move |f| {
        report.tell((f.actor().to_string(), f.phase(), f.to_string()));
        Directive::Restart
    });
    let p_props = Parent::props("p", ev.actor_ref(), vec![worker_child("w", ev.actor_ref())])
        .supervisor(SupervisorStrategy::one_for_one().with_decider(|_| Directive::Escalate));
    kit.spawn(
        Parent::props("gp", ev.actor_ref(), vec![parent_child("p", p_props)])
            .supervisor(gp_strategy),
        "gp",
    );
    ev.expect_msg_all_of(vec![
        Ev::started("gp", 1),
        Ev::started("p", 1),
        Ev::started("w", 1),
    ])
    .await;
    let w = lookup::<Cmd>(&kit, "actor://escalate/user/gp/p/w").await;
    w.tell(Cmd::Fail);
    // the grandparent's decider sees the parent fail with the child's failure
    let (actor, phase, text) = seen.receive_one(secs(3)).await.expect("a failure decision");
    assert_eq!(actor, "actor://escalate/user/gp/p");
    assert_eq!(phase, FailurePhase::Escalated);
    assert!(
        text.contains("actor://escalate/user/gp/p/w") && text.contains("w fails"),
        "{text}"
    );
    // its directive restarts the parent, which stops and re-creates its child
    ev.expect_msg_all_of(vec![
        Ev::stopped("w", 1),
        Ev::started("p", 2),
        Ev::started("w", 2),
    ])
    .await;
    seen.expect_no_msg(secs(1)).await;
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn all_for_one_restarts_the_siblings() {
    let kit = TestKit::new("all-for-one");
    let ev = kit.probe::<Ev>();
    let children = ["a", "b", "c"]
        .iter()
        .map(|n| worker_child(n, ev.actor_ref()))
        .collect();
    kit.spawn(
        Parent::props("p", ev.actor_ref(), children).supervisor(SupervisorStrategy::all_for_one()),
        "p",
    );
    ev.expect_msg_all_of(vec![
        Ev::started("a", 1),
        Ev::started("b", 1),
        Ev::started("c", 1),
        Ev::started("p", 1),
    ])
    .await;
    let b = lookup::<Cmd>(&kit, "actor://all-for-one/user/p/b").await;
    b.tell(Cmd::Fail);
    let mut after = ev.receive_n(6).await;
    after.sort_by_key(|e| format!("{e:?}"));
    let mut expected = vec![
        Ev::pre_restart("a", 1),
        Ev::pre_restart("b", 1),
        Ev::pre_restart("c", 1),
        Ev::started("a", 2),
        Ev::started("b", 2),
        Ev::started("c", 2),
    ];
    expected.sort_by_key(|e| format!("{e:?}"));
    assert_eq!(after, expected);
    // the parent itself was not restarted
    ev.expect_no_msg(secs(1)).await;
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn one_for_one_restarts_only_the_failing_child() {
    let kit = TestKit::new("one-for-one");
    let ev = kit.probe::<Ev>();
    let children = ["a", "b"]
        .iter()
        .map(|n| worker_child(n, ev.actor_ref()))
        .collect();
    kit.spawn(Parent::props("p", ev.actor_ref(), children), "p");
    ev.expect_msg_all_of(vec![
        Ev::started("a", 1),
        Ev::started("b", 1),
        Ev::started("p", 1),
    ])
    .await;
    let b = lookup::<Cmd>(&kit, "actor://one-for-one/user/p/b").await;
    b.tell(Cmd::Fail);
    ev.expect_msg(Ev::pre_restart("b", 1)).await;
    ev.expect_msg(Ev::started("b", 2)).await;
    ev.expect_no_msg(secs(1)).await;
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn exceeding_max_restarts_stops_the_child_and_the_parent_sees_it() {
    let kit = TestKit::new("max-restarts");
    let ev = kit.probe::<Ev>();
    let watcher = kit.probe::<()>();
    kit.spawn(
        Parent::props("p", ev.actor_ref(), vec![worker_child("w", ev.actor_ref())])
            .supervisor(SupervisorStrategy::one_for_one().with_max_restarts(2, secs(60))),
        "p",
    );
    ev.expect_msg_all_of(vec![Ev::started("p", 1), Ev::started("w", 1)])
        .await;
    let w = lookup::<Cmd>(&kit, "actor://max-restarts/user/p/w").await;
    watcher.watch(&w).await;
    for _ in 0..3 {
        w.tell(Cmd::Fail);
    }
    for expected in [
        Ev::pre_restart("w", 1),
        Ev::started("w", 2),
        Ev::pre_restart("w", 2),
        Ev::started("w", 3),
        // the third failure exceeds the limit of two restarts: stopped, not restarted
        Ev::stopped("w", 3),
        Ev::child_terminated("p", "w"),
    ] {
        ev.expect_msg(expected).await;
    }
    watcher.expect_terminated(&w).await;
    assert!(w.is_terminated());
    ev.expect_no_msg(secs(1)).await;
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn restarts_within_the_window_count_and_older_ones_expire() {
    let kit = TestKit::new("restart-window");
    let ev = kit.probe::<Ev>();
    kit.spawn(
        Parent::props("p", ev.actor_ref(), vec![worker_child("w", ev.actor_ref())])
            .supervisor(SupervisorStrategy::one_for_one().with_max_restarts(1, secs(10))),
        "p",
    );
    ev.expect_msg_all_of(vec![Ev::started("p", 1), Ev::started("w", 1)])
        .await;
    let w = lookup::<Cmd>(&kit, "actor://restart-window/user/p/w").await;
    w.tell(Cmd::Fail);
    ev.expect_msg(Ev::pre_restart("w", 1)).await;
    ev.expect_msg(Ev::started("w", 2)).await;
    // after the window, the count starts over: one more restart is allowed
    tokio::time::advance(secs(11)).await;
    w.tell(Cmd::Fail);
    ev.expect_msg(Ev::pre_restart("w", 2)).await;
    ev.expect_msg(Ev::started("w", 3)).await;
    kit.shutdown().await;
}

/// Spawns a backoff-supervised worker, fails it `failures` times in a row, and returns the
/// virtual time between consecutive starts.
async fn backoff_gaps(name: &str, failures: u32) -> Vec<Duration> {
    backoff_gaps_with(name, failures, 0.0, None).await
}

/// [`backoff_gaps`] with jitter (`random_factor`) and an optional system seed.
async fn backoff_gaps_with(
    name: &str,
    failures: u32,
    random_factor: f64,
    seed: Option<u64>,
) -> Vec<Duration> {
    let mut settings = SystemSettings::default();
    if let Some(seed) = seed {
        settings = settings.seed(seed);
    }
    let kit = TestKit::with_settings(name, settings).expect("a valid system");
    let ev = kit.probe::<Ev>();
    let strategy = SupervisorStrategy::restart_with_backoff(
        Duration::from_millis(100),
        secs(10),
        random_factor,
    );
    kit.spawn(
        Parent::props("p", ev.actor_ref(), vec![worker_child("w", ev.actor_ref())])
            .supervisor(strategy),
        "p",
    );
    ev.expect_msg_all_of(vec![Ev::started("p", 1), Ev::started("w", 1)])
        .await;
    let w = lookup::<Cmd>(&kit, &format!("actor://{name}/user/p/w")).await;
    for _ in 0..failures {
        w.tell(Cmd::Fail);
    }
    let mut last = tokio::time::Instant::now();
    let mut gaps = Vec::new();
    for instance in 1..=failures {
        // a restart (and so `pre_restart`) happens once the backoff delay has passed
        ev.within(Duration::ZERO, secs(30), async {
            ev.expect_msg(Ev::pre_restart("w", instance)).await;
            ev.expect_msg(Ev::started("w", instance + 1)).await;
        })
        .await;
        let now = tokio::time::Instant::now();
        gaps.push(now - last);
        last = now;
    }
    kit.shutdown().await;
    gaps
}

#[tokio::test(start_paused = true)]
async fn backoff_restart_delays_grow() {
    let gaps = backoff_gaps("backoff-grow", 4).await;
    assert!(gaps[0] >= Duration::from_millis(100), "{gaps:?}");
    for pair in gaps.windows(2) {
        assert!(pair[1] > pair[0], "delays do not grow: {gaps:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn backoff_restart_delays_double_from_min() {
    let gaps = backoff_gaps("backoff-double", 4).await;
    let ms = |n| Duration::from_millis(n);
    let expected = [ms(100), ms(200), ms(400), ms(800)];
    for (gap, want) in gaps.iter().zip(expected) {
        assert!(
            *gap >= want && *gap < want + ms(20),
            "restart delays {gaps:?}, expected about {expected:?}"
        );
    }
}

/// Fails in `started`.
struct FailsToStart;

impl Actor for FailsToStart {
    type Msg = ();
    async fn started(&mut self, _: &mut Context<Self>) -> ActorResult {
        Err(ActorError::msg("cannot start"))
    }
    async fn handle(&mut self, _: (), _: &mut Context<Self>) -> ActorResult {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_start_failure_stops_the_actor_by_default() {
    let kit = TestKit::new("start-failure");
    let watcher = kit.probe::<()>();
    let a = kit.spawn(Props::new(|| FailsToStart), "a");
    watcher.watch(&a).await;
    watcher.expect_terminated(&a).await;
    // a panicking factory is a start failure too
    let b = kit.spawn(
        Props::new(|| -> FailsToStart { panic!("factory panics") }),
        "b",
    );
    watcher.watch(&b).await;
    watcher.expect_terminated(&b).await;
    kit.shutdown().await;
}

/// Counts the messages it handled; panics on every `panic_every`-th if set.
struct Counter {
    handled: Arc<AtomicU64>,
    panic_every: Option<u64>,
}

impl Actor for Counter {
    type Msg = u64;
    async fn handle(&mut self, n: u64, _: &mut Context<Self>) -> ActorResult {
        if self.panic_every.is_some_and(|k| n.is_multiple_of(k)) {
            panic!("message {n} is poison");
        }
        self.handled.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_actor_under_load_does_not_lose_other_actors_messages() {
    const N: u64 = 2_000;
    const PANIC_EVERY: u64 = 50;
    let kit = TestKit::new("panic-load");
    let counts: Vec<Arc<AtomicU64>> = (0..5).map(|_| Arc::new(AtomicU64::new(0))).collect();
    let refs: Vec<_> = counts
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let handled = c.clone();
            // actor 0 panics on every 50th message and is restarted each time
            let panic_every = (i == 0).then_some(PANIC_EVERY);
            kit.spawn(
                Props::new(move || Counter {
                    handled: handled.clone(),
                    panic_every,
                }),
                &format!("c{i}"),
            )
        })
        .collect();
    for n in 1..=N {
        for r in &refs {
            r.tell(n);
        }
    }
    await_assert(
        || {
            let seen: Vec<u64> = counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
            let want = [N - N / PANIC_EVERY, N, N, N, N];
            if seen == want {
                Ok(())
            } else {
                Err(format!("handled {seen:?}, want {want:?}"))
            }
        },
        secs(30),
        Duration::from_millis(5),
    )
    .await;
    kit.shutdown().await;
}

/// Reports what its restart hooks see.
struct Hooks {
    report: actor_core::ActorRef<String>,
}

impl Actor for Hooks {
    type Msg = &'static str;
    async fn handle(&mut self, msg: &'static str, _: &mut Context<Self>) -> ActorResult {
        match msg {
            "panic" => panic!("hooks panics"),
            other => Err(ActorError::msg(format!("failed on {other}"))),
        }
    }
    async fn pre_restart(&mut self, failure: &actor_core::Failure, _: &mut Context<Self>) {
        self.report.tell(format!("pre_restart: {failure}"));
    }
    async fn post_restart(
        &mut self,
        failure: &actor_core::Failure,
        _: &mut Context<Self>,
    ) -> ActorResult {
        let cause = match failure.error() {
            Some(e) => format!("error {e}"),
            None => format!("panic: {}", failure.is_panic()),
        };
        self.report.tell(format!(
            "post_restart: {cause}, phase {:?}",
            failure.phase()
        ));
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn restart_hooks_see_the_failure() {
    let kit = TestKit::new("restart-hooks");
    let report = kit.probe::<String>();
    let to = report.actor_ref().clone();
    let a = kit.spawn(Props::new(move || Hooks { report: to.clone() }), "a");
    a.tell("x");
    report
        .expect_msg("pre_restart: actor://restart-hooks/user/a failed: failed on x".into())
        .await;
    report
        .expect_msg("post_restart: error failed on x, phase Message".into())
        .await;
    a.tell("panic");
    report
        .expect_msg("pre_restart: actor://restart-hooks/user/a panicked: hooks panics".into())
        .await;
    report
        .expect_msg("post_restart: panic: true, phase Message".into())
        .await;
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn failures_are_logged_with_the_actor_and_the_cause() {
    let logs = actor_testkit::LogCapture::start(tracing::Level::ERROR);
    let kit = TestKit::new("failure-logs");
    let ev = kit.probe::<Ev>();
    let w = kit.spawn(Worker::props("w", ev.actor_ref()), "w");
    w.tell(Cmd::Fail);
    w.tell(Cmd::Panic);
    ev.expect_msg(Ev::started("w", 1)).await;
    ev.expect_msg(Ev::pre_restart("w", 1)).await;
    ev.expect_msg(Ev::started("w", 2)).await;
    ev.expect_msg(Ev::pre_restart("w", 2)).await;
    ev.expect_msg(Ev::started("w", 3)).await;
    let failed = logs
        .lines()
        .into_iter()
        .filter(|l| l.contains("actor://failure-logs/user/w"))
        .collect::<Vec<_>>();
    assert!(
        failed.iter().any(|l| l.contains("w fails")),
        "the error is not logged: {failed:?}"
    );
    assert!(
        failed.iter().any(|l| l.contains("w panics")),
        "the panic is not logged: {failed:?}"
    );
    kit.shutdown().await;
}

/// An error type a decider can recognise.
#[derive(Debug, thiserror::Error)]
#[error("fatal: {0}")]
struct Fatal(&'static str);

/// Fails with `Fatal` on "fatal" and with a plain error otherwise.
struct Picky {
    events: actor_core::ActorRef<Ev>,
}

impl Actor for Picky {
    type Msg = &'static str;
    async fn started(&mut self, _: &mut Context<Self>) -> ActorResult {
        self.events.tell(Ev::started("picky", 0));
        Ok(())
    }
    async fn handle(&mut self, msg: &'static str, _: &mut Context<Self>) -> ActorResult {
        match msg {
            "fatal" => Err(Fatal("cannot go on").into()),
            _ => Err(ActorError::msg("transient")),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_decider_can_look_inside_the_error() {
    let decider = |f: &actor_core::Failure| match f.error().and_then(|e| e.downcast_ref::<Fatal>())
    {
        Some(_) => Directive::Stop,
        None => Directive::Restart,
    };
    let kit = kit_with_guardian(
        "decider-downcast",
        SupervisorStrategy::one_for_one().with_decider(decider),
    );
    let ev = kit.probe::<Ev>();
    let watcher = kit.probe::<()>();
    let to = ev.actor_ref().clone();
    let a = kit.spawn(Props::new(move || Picky { events: to.clone() }), "a");
    watcher.watch(&a).await;
    a.tell("transient");
    ev.expect_msg(Ev::started("picky", 0)).await;
    // restarted
    ev.expect_msg(Ev::started("picky", 0)).await;
    watcher.expect_no_terminated(secs(1)).await;
    a.tell("fatal");
    watcher.expect_terminated(&a).await;
    ev.expect_no_msg(secs(1)).await;
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn all_for_one_stop_stops_every_sibling() {
    let kit = TestKit::new("all-for-one-stop");
    let ev = kit.probe::<Ev>();
    let children = ["a", "b", "c"]
        .iter()
        .map(|n| worker_child(n, ev.actor_ref()))
        .collect();
    kit.spawn(
        Parent::props("p", ev.actor_ref(), children)
            .supervisor(SupervisorStrategy::all_for_one().with_decider(|_| Directive::Stop)),
        "p",
    );
    ev.expect_msg_all_of(vec![
        Ev::started("a", 1),
        Ev::started("b", 1),
        Ev::started("c", 1),
        Ev::started("p", 1),
    ])
    .await;
    let b = lookup::<Cmd>(&kit, "actor://all-for-one-stop/user/p/b").await;
    b.tell(Cmd::Fail);
    let mut after = ev.receive_n(6).await;
    after.sort_by_key(|e| format!("{e:?}"));
    let mut expected = vec![
        Ev::stopped("a", 1),
        Ev::stopped("b", 1),
        Ev::stopped("c", 1),
        Ev::child_terminated("p", "a"),
        Ev::child_terminated("p", "b"),
        Ev::child_terminated("p", "c"),
    ];
    expected.sort_by_key(|e| format!("{e:?}"));
    assert_eq!(after, expected);
    ev.expect_no_msg(secs(1)).await;
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_resume_from_the_grandparent_resumes_the_escalating_child() {
    let kit = TestKit::new("escalate-resume");
    let ev = kit.probe::<Ev>();
    let p_props = Parent::props("p", ev.actor_ref(), vec![worker_child("w", ev.actor_ref())])
        .supervisor(SupervisorStrategy::one_for_one().with_decider(|_| Directive::Escalate));
    kit.spawn(
        Parent::props("gp", ev.actor_ref(), vec![parent_child("p", p_props)])
            .supervisor(SupervisorStrategy::one_for_one().with_decider(|_| Directive::Resume)),
        "gp",
    );
    ev.expect_msg_all_of(vec![
        Ev::started("gp", 1),
        Ev::started("p", 1),
        Ev::started("w", 1),
    ])
    .await;
    let w = lookup::<Cmd>(&kit, "actor://escalate-resume/user/gp/p/w").await;
    w.tell(Cmd::Add(5));
    w.tell(Cmd::Fail);
    w.tell(Cmd::Add(1));
    // neither the parent nor the child restarted: the child kept its state
    assert_eq!(w.ask(Cmd::Get, secs(3)).await, Ok(6));
    ev.expect_msg(Ev::handled("w", 1, 5)).await;
    ev.expect_msg(Ev::handled("w", 1, 1)).await;
    ev.expect_no_msg(secs(1)).await;
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn messages_sent_during_a_backoff_wait_are_kept() {
    let kit = TestKit::new("backoff-mailbox");
    let ev = kit.probe::<Ev>();
    kit.spawn(
        Parent::props("p", ev.actor_ref(), vec![worker_child("w", ev.actor_ref())]).supervisor(
            SupervisorStrategy::restart_with_backoff(secs(1), secs(10), 0.0),
        ),
        "p",
    );
    ev.expect_msg_all_of(vec![Ev::started("p", 1), Ev::started("w", 1)])
        .await;
    let w = lookup::<Cmd>(&kit, "actor://backoff-mailbox/user/p/w").await;
    let failed_at = tokio::time::Instant::now();
    w.tell(Cmd::Fail);
    w.tell(Cmd::Add(1));
    tokio::time::advance(Duration::from_millis(500)).await;
    w.tell(Cmd::Add(2));
    ev.expect_msg(Ev::pre_restart("w", 1)).await;
    assert!(failed_at.elapsed() >= secs(1));
    ev.expect_msg(Ev::started("w", 2)).await;
    ev.expect_msg(Ev::handled("w", 2, 1)).await;
    ev.expect_msg(Ev::handled("w", 2, 2)).await;
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn backoff_jitter_is_bounded_and_replays_with_the_same_seed() {
    let a = backoff_gaps_with("jitter-a", 4, 0.5, Some(7)).await;
    let b = backoff_gaps_with("jitter-b", 4, 0.5, Some(7)).await;
    assert_eq!(a, b, "the same seed must give the same delays");
    let ms = |n| Duration::from_millis(n);
    for (gap, base) in a.iter().zip([ms(100), ms(200), ms(400), ms(800)]) {
        // between the base delay and base * (1 + random_factor), plus scheduling slack
        assert!(
            *gap >= base && *gap <= base.mul_f64(1.5) + ms(20),
            "delays {a:?}"
        );
    }
    let mut differs = false;
    for seed in [8, 9, 10] {
        let c = backoff_gaps_with(&format!("jitter-{seed}"), 4, 0.5, Some(seed)).await;
        differs |= c != a;
    }
    assert!(differs, "three other seeds all gave {a:?}");
}

#[tokio::test(start_paused = true)]
async fn an_escalation_past_the_user_guardian_terminates_the_system() {
    let kit = kit_with_guardian(
        "guardian-escalates",
        SupervisorStrategy::one_for_one().with_decider(|_| Directive::Escalate),
    );
    let ev = kit.probe::<Ev>();
    let w = kit.spawn(Worker::props("w", ev.actor_ref()), "w");
    w.tell(Cmd::Fail);
    assert!(kit.system().await_termination(secs(3)).await);
    ev.expect_msg(Ev::started("w", 1)).await;
    ev.expect_msg(Ev::stopped("w", 1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_failures_under_all_for_one_settle_and_the_system_terminates() {
    let kit = TestKit::new("all-for-one-storm");
    let ev = kit.probe::<Ev>();
    let names = ["a", "b", "c", "d", "e"];
    let children = names
        .iter()
        .map(|n| worker_child(n, ev.actor_ref()))
        .collect();
    kit.spawn(
        Parent::props("p", ev.actor_ref(), children).supervisor(SupervisorStrategy::all_for_one()),
        "p",
    );
    let mut refs = Vec::new();
    for n in names {
        refs.push(lookup::<Cmd>(&kit, &format!("actor://all-for-one-storm/user/p/{n}")).await);
    }
    // every child fails repeatedly while the others are being restarted because of it
    let senders: Vec<_> = refs
        .iter()
        .cloned()
        .map(|r| {
            tokio::spawn(async move {
                for i in 0..50 {
                    r.tell(if i % 5 == 0 { Cmd::Fail } else { Cmd::Add(1) });
                }
            })
        })
        .collect();
    for s in senders {
        assert!(s.await.is_ok());
    }
    // afterwards every child answers again
    for r in &refs {
        assert!(!r.is_terminated(), "{r} was stopped");
        assert!(
            r.ask(Cmd::Get, secs(10)).await.is_ok(),
            "{r} does not answer"
        );
    }
    kit.shutdown().await;
}
