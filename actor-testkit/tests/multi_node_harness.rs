//! Self-tests of the MultiNodeSpec harness, each in thread mode and in simulated mode:
//! barrier ordering, the barrier time-out message, a failed role reported by name,
//! blackhole -> unreachable and pass-through heals, crash and shutdown.
#![cfg(feature = "multi-node")]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use actor_cluster::Direction;
use actor_cluster::cluster::ClusterSettings;
use actor_cluster::wire::RemoteMessage;
use actor_core::{Actor, ActorResult, Context, Props};
use actor_testkit::await_assert;
use actor_testkit::multi_node::{
    BarrierError, ConductorError, FailureKind, Mode, MultiNodeError, MultiNodeSpec, Position,
    RoleOutcome,
};
use serde::{Deserialize, Serialize};

const MODES: [Mode; 2] = [Mode::Threads, Mode::Simulated];

fn spec(roles: &[&str], mode: Mode) -> MultiNodeSpec {
    MultiNodeSpec::new(roles)
        .expect("valid roles")
        .with_mode(mode)
        .with_seed(11)
}

fn failed(
    result: Result<actor_testkit::multi_node::RunReport, MultiNodeError>,
) -> Box<actor_testkit::multi_node::FailedRun> {
    match result {
        Err(MultiNodeError::Failed(run)) => run,
        other => panic!("expected a failed run, got {other:?}"),
    }
}

#[test]
fn no_role_passes_a_barrier_before_every_role_entered_it() {
    for mode in MODES {
        let entered = AtomicUsize::new(0);
        let report = spec(&["a", "b", "c"], mode)
            .without_cluster()
            .run(|node| {
                let entered = &entered;
                async move {
                    for round in 1..=5 {
                        // a different role is last each round (virtual delays in simulated mode)
                        if node.is_simulated() && node.roles()[round % 3] == node.role() {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                        node.trace(format!("before {round}"));
                        entered.fetch_add(1, Ordering::SeqCst);
                        node.enter_barrier(&format!("round-{round}")).await;
                        let seen = entered.load(Ordering::SeqCst);
                        assert!(
                            seen >= 3 * round,
                            "{} passed round {round} with only {seen} arrivals",
                            node.role()
                        );
                    }
                }
            })
            .expect("the run passes");
        // in the trace, every "before n" precedes every "passed barrier round-n"
        let entries = &report.trace.entries;
        for round in 1..=5 {
            let last_before = entries
                .iter()
                .rposition(|e| e.event == format!("before {round}"))
                .expect("recorded");
            let first_passed = entries
                .iter()
                .position(|e| e.event == format!("passed barrier \"round-{round}\""))
                .expect("recorded");
            assert!(
                last_before < first_passed,
                "{mode:?} round {round}:\n{}",
                report.trace
            );
        }
        assert_eq!(
            entries
                .iter()
                .filter(|e| e.event.starts_with("passed barrier \"round-"))
                .count(),
            15
        );
    }
}

#[test]
fn a_subset_barrier_does_not_wait_for_the_other_roles() {
    for mode in MODES {
        spec(&["a", "b", "c"], mode)
            .without_cluster()
            .run_or_panic(|node| async move {
                node.run_on(&["a", "b"], node.enter_barrier_for("pair", &["a", "b"]))
                    .await;
                // c waits for a and b at the next barrier, which they reach only after "pair"
                node.enter_barrier("all").await;
            });
    }
}

#[test]
fn a_barrier_time_out_names_the_barrier_and_the_missing_role() {
    for mode in MODES {
        let run = failed(
            spec(&["a", "b"], mode)
                .without_cluster()
                .run(|node| async move {
                    if node.is("a") {
                        let short = Duration::from_millis(300);
                        let result = node.try_enter_barrier_within("slow", None, short).await;
                        let Err(error) = result else {
                            panic!("the barrier passed without b");
                        };
                        assert_eq!(
                            error,
                            BarrierError::TimedOut {
                                barrier: "slow".into(),
                                timeout: short,
                                missing: vec!["b".into()],
                                arrived: vec!["a".into()],
                            }
                        );
                        panic!("{error}");
                    }
                    // b never enters "slow": it waits at another barrier until a fails
                    node.enter_barrier("after").await;
                }),
        );
        let failures = run.failures();
        assert_eq!(failures.len(), 2, "{run}");
        assert_eq!(failures[0].role, "a");
        assert_eq!(failures[0].position, Position::At("slow".into()));
        assert_eq!(
            failures[0].message,
            "barrier \"slow\" timed out after 300ms: b did not arrive (arrived: a)"
        );
        assert_eq!(failures[1].role, "b");
        assert!(failures[1].is_consequence());
        let text = run.to_string();
        assert!(
            text.contains(
                "role a failed at barrier \"slow\": panicked: barrier \"slow\" timed out after 300ms: b did not arrive (arrived: a)"
            ),
            "{text}"
        );
        assert!(
            text.contains("role b failed at barrier \"after\": barrier failed: barrier \"after\" aborted: role a failed"),
            "{text}"
        );
    }
}

#[test]
fn the_default_barrier_wait_fails_with_the_barrier_error() {
    // the panicking enter_barrier: the failure kind carries the barrier error
    let run = failed(
        spec(&["a", "b"], Mode::Simulated)
            .without_cluster()
            .with_barrier_timeout(Duration::from_secs(5))
            .run(|node| async move {
                if node.is("b") {
                    tokio::time::sleep(Duration::from_secs(60)).await; // virtual time
                }
                node.enter_barrier("late").await;
            }),
    );
    let a = &run.failures()[0];
    assert_eq!(a.role, "a");
    assert!(
        matches!(&a.kind, FailureKind::Barrier(BarrierError::TimedOut { missing, .. }) if missing == &["b".to_owned()]),
        "{a:?}"
    );
    // b arrives after the time-out and fails at once with the same error
    let b = run.report.outcome("b").expect("b ran");
    assert!(
        matches!(b, RoleOutcome::Failed(f) if matches!(&f.kind, FailureKind::Barrier(BarrierError::TimedOut { .. }))),
        "{b:?}"
    );
}

#[test]
fn a_failing_role_is_reported_by_name_and_aborts_the_others_barrier_at_once() {
    for mode in MODES {
        let started = std::time::Instant::now();
        let run = failed(
            spec(&["a", "b", "c"], mode)
                .without_cluster()
                .run(|node| async move {
                    node.enter_barrier("one").await;
                    if node.is("b") {
                        panic!("boom 42");
                    }
                    node.enter_barrier("two").await;
                }),
        );
        // the barrier time-out is 30 s: the others were released long before
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        let failures = run.failures();
        assert_eq!(failures[0].role, "b");
        assert_eq!(failures[0].kind, FailureKind::Panicked);
        assert_eq!(failures[0].position, Position::After("one".into()));
        assert_eq!(failures[0].message, "boom 42");
        for f in &failures[1..] {
            assert!(f.is_consequence(), "{f:?}");
            assert_eq!(f.position, Position::At("two".into()));
        }
        let text = run.to_string();
        assert!(
            text.starts_with("multi-node run failed (3 of 3 roles"),
            "{text}"
        );
        assert!(
            text.contains("\n  role b failed after barrier \"one\": panicked: boom 42\n"),
            "{text}"
        );
        assert!(
            text.contains("role a failed at barrier \"two\": barrier failed: barrier \"two\" aborted: role b failed: boom 42"),
            "{text}"
        );
    }
}

#[test]
fn a_role_returning_an_error_fails_and_one_finishing_early_aborts_barriers() {
    for mode in MODES {
        let run = failed(
            spec(&["a", "b", "c"], mode)
                .without_cluster()
                .run(|node| async move {
                    match node.role() {
                        "a" => Err("no quorum".to_owned()),
                        "b" => Ok(()),
                        _ => {
                            node.enter_barrier_for("bc", &["b", "c"]).await;
                            Ok(())
                        }
                    }
                }),
        );
        let failures = run.failures();
        assert_eq!(failures.len(), 2, "{run}");
        assert_eq!(failures[0].role, "a");
        assert_eq!(failures[0].kind, FailureKind::Error);
        assert_eq!(failures[0].message, "no quorum");
        assert_eq!(failures[1].role, "c");
        assert!(
            matches!(&failures[1].kind, FailureKind::Barrier(BarrierError::RoleFinished { role, .. }) if role == "b"),
            "{:?}",
            failures[1]
        );
        assert_eq!(run.report.outcome("b"), Some(&RoleOutcome::Finished));
    }
}

#[test]
fn bad_specs_are_refused() {
    assert_eq!(
        MultiNodeSpec::new::<&str>(&[]).err(),
        Some(MultiNodeError::NoRoles)
    );
    assert_eq!(
        MultiNodeSpec::new(&["a", "b c"]).err(),
        Some(MultiNodeError::InvalidRole { role: "b c".into() })
    );
    assert_eq!(
        MultiNodeSpec::new(&["a", "a"]).err(),
        Some(MultiNodeError::DuplicateRole { role: "a".into() })
    );
    let spec = MultiNodeSpec::new(&["a"]).expect("valid");
    assert_eq!(
        spec.clone().with_barrier_timeout(Duration::ZERO).validate(),
        Err(MultiNodeError::ZeroDuration {
            what: "barrier time-out"
        })
    );
    assert_eq!(
        spec.with_system_name("no spaces").validate(),
        Err(MultiNodeError::InvalidSystemName {
            name: "no spaces".into()
        })
    );
}

#[test]
fn the_conductor_and_addresses_refuse_unknown_roles() {
    spec(&["a", "b"], Mode::Simulated)
        .without_cluster()
        .run_or_panic(|node| async move {
            let conductor = node.conductor();
            let unknown = conductor.try_blackhole("a", "zz", Direction::Both);
            assert!(
                matches!(&unknown, Err(ConductorError::UnknownRole(e)) if e.role == "zz"),
                "{unknown:?}"
            );
            assert!(conductor.try_crash("zz").await.is_err());
            assert_eq!(
                node.try_address("zz").map_err(|e| e.to_string()),
                Err("unknown role \"zz\" (roles: a, b)".to_owned())
            );
            assert_eq!(node.address("b").to_string(), "multi-node@b:0");
            let barrier = node.try_enter_barrier("x", Some(&["a", "zz"])).await;
            assert!(
                matches!(&barrier, Err(BarrierError::UnknownRole { role, .. }) if role == "zz"),
                "{barrier:?}"
            );
            node.enter_barrier("done").await;
        });
}

#[tokio::test]
async fn a_run_inside_a_tokio_runtime_is_refused() {
    let result = spec(&["a"], Mode::Simulated).run(|_node| async {});
    assert_eq!(result.err(), Some(MultiNodeError::InsideRuntime));
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Ping(u32);
impl RemoteMessage for Ping {
    const MANIFEST: &'static str = "harness-test.Ping";
}

#[test]
fn a_probe_on_one_node_receives_from_the_others() {
    for mode in MODES {
        spec(&["a", "b", "c"], mode)
            .without_cluster()
            .run_or_panic(|node| async move {
                let probe = node.probe::<Ping>();
                node.run_on(&["a"], async {
                    node.share_ref("collector", probe.actor_ref())
                })
                .await;
                node.enter_barrier("shared").await;
                let collector = node.shared_ref::<Ping>("collector").await;
                let n = node
                    .roles()
                    .iter()
                    .position(|r| r == node.role())
                    .unwrap_or(0) as u32;
                collector.tell(Ping(n));
                if node.is("a") {
                    probe
                        .expect_msg_all_of(vec![Ping(0), Ping(1), Ping(2)])
                        .await;
                }
                node.enter_barrier("done").await;
            });
    }
}

#[test]
fn delayed_links_deliver_late_and_lossy_links_drop() {
    const DELAY: Duration = Duration::from_millis(250);
    for mode in MODES {
        let sent_at = parking_lot::Mutex::new(None);
        spec(&["a", "b"], mode)
            .without_cluster()
            .run_or_panic(|node| {
                let sent_at = &sent_at;
                async move {
                    let probe = node.probe::<Ping>();
                    node.share_ref(node.role(), probe.actor_ref());
                    node.enter_barrier("shared").await;
                    let to_b = node.shared_ref::<Ping>("b").await;
                    node.run_on(&["a"], async {
                        node.conductor().delay("a", "b", DELAY);
                        *sent_at.lock() = Some(tokio::time::Instant::now());
                        to_b.tell(Ping(1));
                    })
                    .await;
                    if node.is("b") {
                        let ping = probe.receive_one(Duration::from_secs(5)).await;
                        assert_eq!(ping, Some(Ping(1)));
                        let sent = sent_at.lock().expect("a sent before b received");
                        assert!(
                            sent.elapsed() >= DELAY,
                            "arrived after {:?}",
                            sent.elapsed()
                        );
                    }
                    node.enter_barrier("delayed").await;
                    node.run_on(&["a"], async {
                        let conductor = node.conductor();
                        let bad = conductor.try_drop_frames("a", "b", Direction::Both, 1.5);
                        assert!(
                            matches!(bad, Err(ConductorError::InvalidProbability { .. })),
                            "{bad:?}"
                        );
                        conductor
                            .try_drop_frames("a", "b", Direction::Send, 1.0)
                            .expect("valid probability");
                        to_b.tell(Ping(2));
                    })
                    .await;
                    if node.is("b") {
                        probe.expect_no_msg(Duration::from_millis(600)).await;
                    }
                    node.enter_barrier("dropped").await;
                }
            });
    }
}

/// Fast cluster settings whose downing waits long enough for a partition to heal.
fn patient() -> ClusterSettings {
    let mut settings = ClusterSettings::fast();
    settings.downing = settings.downing.with_stable_after(Duration::from_secs(60));
    settings
}

#[test]
fn blackhole_makes_a_node_unreachable_and_pass_through_heals_it() {
    for mode in MODES {
        let report = spec(&["a", "b", "c"], mode)
            .with_cluster_settings(|_| patient())
            .run_or_panic(|node| async move {
                node.await_cluster_up().await;
                node.enter_barrier("up").await;
                node.run_on(&["a"], async {
                    node.conductor().blackhole("a", "c");
                    node.conductor().blackhole("b", "c");
                })
                .await;
                let c = node.address("c");
                let cluster = node.cluster();
                let wait = Duration::from_secs(20);
                if node.is("c") {
                    await_assert(
                        || cluster.state().unreachable.len() == 2,
                        wait,
                        Duration::from_millis(20),
                    )
                    .await;
                } else {
                    await_assert(
                        || cluster.state().unreachable.iter().any(|m| m.address == c),
                        wait,
                        Duration::from_millis(20),
                    )
                    .await;
                }
                node.enter_barrier("unreachable").await;
                node.run_on(&["a"], async {
                    node.conductor().pass_through("a", "c");
                    node.conductor().pass_through("b", "c");
                })
                .await;
                node.await_cluster_up().await;
                node.enter_barrier("healed").await;
            });
        assert!(
            report.trace.contains("a", "UnreachableMember c"),
            "{}",
            report.trace
        );
        assert!(
            report.trace.contains("a", "ReachableMember c"),
            "{}",
            report.trace
        );
        assert!(
            !report.trace.contains("a", "MemberDowned c"),
            "{}",
            report.trace
        );
    }
}

#[test]
fn a_crashed_role_is_dropped_and_no_longer_expected_at_barriers() {
    for mode in MODES {
        let c_dropped = AtomicBool::new(false);
        let c_hook_ran = Arc::new(AtomicBool::new(false));
        let report = spec(&["a", "b", "c"], mode)
            .without_cluster()
            .run_or_panic(|node| {
                let c_dropped = &c_dropped;
                let c_hook_ran = c_hook_ran.clone();
                async move {
                    if node.is("c") {
                        let flag = c_hook_ran.clone();
                        node.system()
                            .spawn(Props::new(move || Hooked(flag.clone())), "hooked")
                            .expect("spawn");
                    }
                    struct OnDrop<'a>(&'a AtomicBool);
                    impl Drop for OnDrop<'_> {
                        fn drop(&mut self) {
                            self.0.store(true, Ordering::SeqCst);
                        }
                    }
                    let _guard = node.is("c").then(|| OnDrop(c_dropped));
                    node.enter_barrier("before").await;
                    if node.is("c") {
                        // c waits at a barrier nobody else enters until it is crashed
                        node.enter_barrier("never").await;
                        unreachable!("c passed a barrier the others never enter");
                    }
                    node.run_on(&["a"], node.conductor().crash("c")).await;
                    // crash returned on a: c's body is gone
                    if node.is("a") {
                        assert!(c_dropped.load(Ordering::SeqCst));
                    }
                    node.enter_barrier("after").await;
                    assert_eq!(node.live_roles(), vec!["a".to_owned(), "b".to_owned()]);
                    if node.is("b") {
                        let again = node.conductor().try_crash("c").await;
                        assert!(again.is_err(), "{again:?}");
                    }
                }
            });
        assert_eq!(report.outcome("c"), Some(&RoleOutcome::Crashed));
        assert_eq!(report.outcome("a"), Some(&RoleOutcome::Finished));
        assert!(report.trace.contains("a", "crash c"));
        // thread mode drops the crashed node's runtime: no stopped hook runs; simulated mode
        // terminates its system after the transport died (see Conductor::crash)
        assert_eq!(
            c_hook_ran.load(Ordering::SeqCst),
            mode == Mode::Simulated,
            "{mode:?}"
        );
    }
}

/// An actor that notes when its `stopped` hook runs.
struct Hooked(Arc<AtomicBool>);

impl Actor for Hooked {
    type Msg = ();

    async fn handle(&mut self, (): (), _: &mut Context<Self>) -> ActorResult {
        Ok(())
    }

    async fn stopped(&mut self, _: &mut Context<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn a_shut_down_role_leaves_the_cluster_gracefully() {
    for mode in MODES {
        let report = spec(&["a", "b", "c"], mode).run_or_panic(|node| async move {
            node.await_cluster_up().await;
            node.enter_barrier("up").await;
            node.run_on(&["a"], node.conductor().shutdown("c")).await;
            node.enter_barrier("shut-down").await;
            node.await_members_up(&["a", "b"]).await;
        });
        assert_eq!(report.outcome("c"), Some(&RoleOutcome::ShutDown));
        assert!(
            report.trace.contains("b", "MemberRemoved c (was Exiting)"),
            "{}",
            report.trace
        );
        assert!(
            !report.trace.contains("b", "MemberDowned c"),
            "{}",
            report.trace
        );
    }
}
