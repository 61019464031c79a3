//! Self-tests of `TestProbe`: every expectation, passing and failing, under a paused clock.

use std::time::Duration;

use actor_core::{Actor, ActorResult, Context, Props, ReplyTo};
use actor_testkit::{DEFAULT_TIMEOUT, TestKit, TestProbe, default_timeout};

/// Runs `fut` in its own task and returns its panic message (panics if it did not panic).
async fn panic_message(fut: impl Future<Output = ()> + Send + 'static) -> String {
    match tokio::spawn(fut).await {
        Ok(()) => panic!("the expectation passed, but it should have failed"),
        Err(e) => match e.try_into_panic() {
            Ok(p) => match p.downcast::<String>() {
                Ok(s) => *s,
                Err(p) => p
                    .downcast::<&str>()
                    .map(|s| s.to_string())
                    .unwrap_or_default(),
            },
            Err(e) => panic!("task failed without a panic: {e}"),
        },
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[tokio::test(start_paused = true)]
async fn expect_msg_returns_the_expected_message() {
    let kit = TestKit::new("expect-msg");
    let probe = kit.probe::<u32>();
    probe.actor_ref().tell(1);
    probe.actor_ref().tell(2);
    assert_eq!(probe.expect_msg(1).await, 1);
    assert_eq!(probe.expect_msg(2).await, 2);
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "expect_msg at ")]
async fn expect_msg_names_the_method_on_failure() {
    let kit = TestKit::new("expect-msg-name");
    let probe = kit.probe::<u32>();
    probe.actor_ref().tell(2);
    probe.expect_msg(1).await;
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "expected 1, but received 2 after")]
async fn expect_msg_fails_on_another_message() {
    let kit = TestKit::new("expect-msg-other");
    let probe = kit.probe::<u32>();
    probe.actor_ref().tell(2);
    probe.expect_msg(1).await;
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "expected 1, but no message arrived within ")]
async fn expect_msg_fails_when_nothing_arrives() {
    let kit = TestKit::new("expect-msg-nothing");
    let probe = kit.probe::<u32>();
    probe.expect_msg(1).await;
}

#[tokio::test(start_paused = true)]
async fn a_failure_names_the_caller_location_and_the_time_waited() {
    let kit = TestKit::new("failure-location");
    let probe = kit.probe::<&'static str>();
    let line = line!() + 2;
    let msg = panic_message(async move {
        probe.expect_msg("ping").await;
    })
    .await;
    assert!(
        msg.contains(&format!("{}:{line}:", file!())),
        "no caller location in {msg:?}"
    );
    assert!(msg.contains("expected \"ping\""), "{msg}");
    // the default timeout, scaled by ACTOR_TEST_TIME_FACTOR
    let waited = format!("no message arrived within {:?}", default_timeout());
    assert!(msg.contains(&waited), "{msg}");
    assert!(
        msg.starts_with("probe-"),
        "the probe is not named in {msg:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failure_after_a_wait_reports_the_elapsed_time() {
    let kit = TestKit::new("failure-elapsed");
    let probe = kit.probe::<u32>();
    let sender = probe.actor_ref().clone();
    tokio::spawn(async move {
        // virtual time: the probe sees the message 250 ms after it started waiting
        tokio::time::sleep(ms(250)).await;
        sender.tell(9);
    });
    let msg = panic_message(async move {
        probe.expect_msg(1).await;
    })
    .await;
    assert!(
        msg.contains("expected 1, but received 9 after 250"),
        "{msg}"
    );
}

#[tokio::test(start_paused = true)]
async fn expect_msg_matching_returns_the_message() {
    let kit = TestKit::new("matching");
    let probe = kit.probe::<(u32, String)>();
    probe.actor_ref().tell((4, "four".into()));
    let (n, s) = probe.expect_msg_matching(|(n, _)| n % 2 == 0).await;
    assert_eq!((n, s.as_str()), (4, "four"));
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "expected a message matching the predicate, but received 3 after")]
async fn expect_msg_matching_fails_on_a_mismatch() {
    let kit = TestKit::new("matching-fail");
    let probe = kit.probe::<u32>();
    probe.actor_ref().tell(3);
    probe.expect_msg_matching(|n| n % 2 == 0).await;
}

#[tokio::test(start_paused = true)]
#[should_panic(
    expected = "expected a message matching the predicate, but no message arrived within "
)]
async fn expect_msg_matching_fails_when_nothing_arrives() {
    let kit = TestKit::new("matching-nothing");
    let probe = kit.probe::<u32>();
    probe.expect_msg_matching(|_| true).await;
}

#[derive(Debug)]
enum Request {
    Get(String, ReplyTo<u32>),
    Forget(#[allow(dead_code)] String),
}

#[tokio::test(start_paused = true)]
async fn expect_msg_map_extracts_a_reply_handle_and_the_probe_answers_an_ask() {
    let kit = TestKit::new("reply");
    let probe = kit.probe::<Request>();
    let target = probe.actor_ref().clone();
    let asker = tokio::spawn(async move {
        target
            .ask(|r| Request::Get("answer".into(), r), ms(500))
            .await
    });
    let (key, reply) = probe
        .expect_msg_map(|m| match m {
            Request::Get(k, r) => Some((k, r)),
            Request::Forget(_) => None,
        })
        .await;
    assert_eq!(key, "answer");
    assert!(reply.reply(42));
    assert_eq!(asker.await.ok().and_then(Result::ok), Some(42));
}

#[tokio::test(start_paused = true)]
#[should_panic(
    expected = "expected a message the extractor accepts, but received Forget(\"x\") after"
)]
async fn expect_msg_map_fails_when_the_extractor_refuses() {
    let kit = TestKit::new("map-fail");
    let probe = kit.probe::<Request>();
    probe.actor_ref().tell(Request::Forget("x".into()));
    probe
        .expect_msg_map(|m| match m {
            Request::Get(_, r) => Some(r),
            Request::Forget(_) => None,
        })
        .await;
}

/// Answers `Double` requests through their reply handle.
struct Doubler;

#[derive(Debug)]
struct Double(u32, ReplyTo<u32>);

impl Actor for Doubler {
    type Msg = Double;
    async fn handle(&mut self, Double(n, reply): Double, _: &mut Context<Self>) -> ActorResult {
        reply.reply(n * 2);
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn reply_to_delivers_an_answer_to_the_probe() {
    let kit = TestKit::new("reply-to");
    let probe = kit.probe::<u32>();
    let doubler = kit.spawn(Props::new(|| Doubler), "doubler");
    doubler.tell(Double(21, probe.reply_to()));
    probe.expect_msg(42).await;
}

#[tokio::test(start_paused = true)]
async fn expect_no_msg_passes_in_silence() {
    let kit = TestKit::new("no-msg");
    let probe = kit.probe::<u32>();
    let started = tokio::time::Instant::now();
    probe.expect_no_msg(ms(500)).await;
    assert!(started.elapsed() >= ms(500));
    probe.expect_no_msg_default().await;
    probe.actor_ref().tell(1);
    probe.expect_msg(1).await;
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "expected no message for 1s, but received 5 after")]
async fn expect_no_msg_fails_when_a_message_arrives() {
    let kit = TestKit::new("no-msg-fail");
    let probe = kit.probe::<u32>();
    probe.actor_ref().tell(5);
    probe.expect_no_msg(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn receive_one_returns_a_message_or_none() {
    let kit = TestKit::new("receive-one");
    let probe = kit.probe::<u32>();
    assert_eq!(probe.receive_one(ms(100)).await, None);
    probe.actor_ref().tell(3);
    assert_eq!(probe.receive_one(ms(100)).await, Some(3));
    assert_eq!(probe.pending(), 0);
}

#[tokio::test(start_paused = true)]
async fn receive_n_returns_messages_in_arrival_order() {
    let kit = TestKit::new("receive-n");
    let probe = kit.probe::<u32>();
    for i in 0..5 {
        probe.actor_ref().tell(i);
    }
    assert_eq!(probe.receive_n(3).await, vec![0, 1, 2]);
    assert_eq!(probe.receive_n(2).await, vec![3, 4]);
}

#[tokio::test(start_paused = true)]
async fn receive_n_fails_when_too_few_arrive() {
    let kit = TestKit::new("receive-n-fail");
    let probe = kit.probe::<u32>();
    probe.actor_ref().tell(7);
    probe.actor_ref().tell(8);
    let msg = panic_message(async move {
        probe.receive_n(3).await;
    })
    .await;
    let want = format!(
        "expected 3 messages, but received only 2 (no message arrived within {:?}): [7, 8]",
        default_timeout()
    );
    assert!(msg.contains(&want), "{msg}");
}

#[tokio::test(start_paused = true)]
async fn fish_for_message_skips_until_a_match() {
    let kit = TestKit::new("fish");
    let probe = kit.probe::<u32>();
    for i in [1, 3, 5, 6, 7] {
        probe.actor_ref().tell(i);
    }
    assert_eq!(probe.fish_for_message(|n| n % 2 == 0).await, 6);
    probe.expect_msg(7).await;
}

#[tokio::test(start_paused = true)]
async fn fish_for_message_fails_and_lists_what_it_discarded() {
    let kit = TestKit::new("fish-fail");
    let probe = kit.probe::<u32>();
    probe.actor_ref().tell(1);
    probe.actor_ref().tell(3);
    let msg = panic_message(async move {
        probe.fish_for_message(|n| n % 2 == 0).await;
    })
    .await;
    let want = format!(
        "but no message arrived within {:?}; discarded [1, 3]",
        default_timeout()
    );
    assert!(msg.contains(&want), "{msg}");
}

#[tokio::test(start_paused = true)]
async fn within_checks_the_duration_and_bounds_inner_expectations() {
    let kit = TestKit::new("within");
    let probe = kit.probe::<u32>();
    let sender = probe.actor_ref().clone();
    tokio::spawn(async move {
        tokio::time::sleep(ms(200)).await;
        sender.tell(1);
    });
    let got = probe
        .within(ms(100), ms(300), async {
            assert!(probe.remaining() <= ms(300));
            probe.expect_msg(1).await
        })
        .await;
    assert_eq!(got, 1);
    // the deadline is gone after the block
    assert_eq!(probe.remaining(), actor_testkit::default_timeout());
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "expected 1, but no message arrived within 1s")]
async fn an_expectation_inside_within_waits_only_until_max() {
    let kit = TestKit::new("within-bound");
    let probe = kit.probe::<u32>();
    probe
        .within(Duration::ZERO, Duration::from_secs(1), async {
            probe.expect_msg(1).await;
        })
        .await;
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "sooner than min 100ms")]
async fn within_fails_when_the_block_is_too_fast() {
    let kit = TestKit::new("within-fast");
    let probe = kit.probe::<u32>();
    probe.actor_ref().tell(1);
    probe
        .within(ms(100), ms(300), async {
            probe.expect_msg(1).await;
        })
        .await;
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "longer than max 300ms")]
async fn within_fails_when_the_block_is_too_slow() {
    let kit = TestKit::new("within-slow");
    let probe = kit.probe::<u32>();
    probe
        .within(ms(100), ms(300), async {
            // explicit durations are not cut by `within`; only the defaults are
            tokio::time::sleep(ms(400)).await;
        })
        .await;
}

#[tokio::test(start_paused = true)]
async fn nested_within_uses_the_nearer_deadline() {
    let kit = TestKit::new("within-nested");
    let probe = kit.probe::<u32>();
    probe
        .within(Duration::ZERO, Duration::from_secs(2), async {
            probe
                .within(Duration::ZERO, Duration::from_secs(5), async {
                    assert!(probe.remaining() <= Duration::from_secs(2));
                })
                .await;
            assert!(probe.remaining() <= Duration::from_secs(2));
        })
        .await;
}

#[tokio::test(start_paused = true)]
async fn a_paused_clock_waits_three_seconds_of_virtual_time_at_once() {
    let kit = TestKit::new("virtual-time");
    let probe = kit.probe::<u32>();
    let wall = std::time::Instant::now();
    let virtual_start = tokio::time::Instant::now();
    assert_eq!(probe.receive_one(DEFAULT_TIMEOUT).await, None);
    probe.expect_no_msg(DEFAULT_TIMEOUT).await;
    assert!(virtual_start.elapsed() >= 2 * DEFAULT_TIMEOUT);
    assert!(
        wall.elapsed() < Duration::from_secs(1),
        "6 s of virtual time took {:?} of wall time",
        wall.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn watch_and_expect_terminated() {
    let kit = TestKit::new("watch");
    let probe = kit.probe::<()>();
    let target = kit.probe::<u32>();
    probe.watch(target.actor_ref()).await;
    // watching twice is one watch: exactly one signal
    probe.watch(target.actor_ref()).await;
    target.actor_ref().stop();
    let t = probe.expect_terminated(target.actor_ref()).await;
    assert!(t.is(target.actor_ref()));
    probe.expect_no_terminated(ms(500)).await;
}

#[tokio::test(start_paused = true)]
async fn watching_a_dead_actor_gives_one_terminated() {
    let kit = TestKit::new("watch-dead");
    let probe = kit.probe::<()>();
    let target = kit.probe::<u32>();
    let watcher = kit.probe::<()>();
    watcher.watch(target.actor_ref()).await;
    target.actor_ref().stop();
    watcher.expect_terminated(target.actor_ref()).await;
    probe.watch(target.actor_ref()).await;
    probe.expect_terminated(target.actor_ref()).await;
    probe.expect_no_terminated(ms(500)).await;
}

#[tokio::test(start_paused = true)]
async fn unwatch_means_no_signal() {
    let kit = TestKit::new("unwatch");
    let probe = kit.probe::<()>();
    let target = kit.probe::<u32>();
    let control = kit.probe::<()>();
    probe.watch(target.actor_ref()).await;
    control.watch(target.actor_ref()).await;
    probe.unwatch(target.actor_ref()).await;
    target.actor_ref().stop();
    control.expect_terminated(target.actor_ref()).await;
    probe.expect_no_terminated(ms(500)).await;
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "but received Terminated(actor://expect-terminated-other/system/probe-")]
async fn expect_terminated_fails_on_another_actor() {
    let kit = TestKit::new("expect-terminated-other");
    let probe = kit.probe::<()>();
    let a = kit.probe::<u32>();
    let b = kit.probe::<u32>();
    probe.watch(a.actor_ref()).await;
    probe.watch(b.actor_ref()).await;
    a.actor_ref().stop();
    probe.expect_terminated(b.actor_ref()).await;
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "but no termination arrived within ")]
async fn expect_terminated_fails_when_the_actor_lives_on() {
    let kit = TestKit::new("expect-terminated-none");
    let probe = kit.probe::<()>();
    let a = kit.probe::<u32>();
    probe.watch(a.actor_ref()).await;
    probe.expect_terminated(a.actor_ref()).await;
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "expected no termination for 1s, but received Terminated(")]
async fn expect_no_terminated_fails_on_a_signal() {
    let kit = TestKit::new("no-terminated-fail");
    let probe = kit.probe::<()>();
    let a = kit.probe::<u32>();
    probe.watch(a.actor_ref()).await;
    a.actor_ref().stop();
    probe.expect_no_terminated(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn a_probe_is_a_real_actor_with_a_path() {
    let kit = TestKit::new("probe-path");
    let probe = kit.probe::<u32>();
    let path = probe.actor_ref().path().to_string();
    assert_eq!(path, format!("actor://probe-path/system/{}", probe.name()));
    let found = kit
        .system()
        .lookup_str::<u32>(&path)
        .expect("the probe is found by its path");
    assert_eq!(&found, probe.actor_ref());
    found.tell(11);
    probe.expect_msg(11).await;
}

#[tokio::test(start_paused = true)]
async fn dropping_a_probe_stops_its_actor() {
    let kit = TestKit::new("probe-drop");
    let watcher = kit.probe::<()>();
    let probe: TestProbe<u32> = kit.probe();
    let r = probe.actor_ref().clone();
    watcher.watch(&r).await;
    drop(probe);
    watcher.expect_terminated(&r).await;
    assert!(r.is_terminated());
}

#[tokio::test(start_paused = true)]
async fn await_assert_method_polls_until_the_condition_holds() {
    let kit = TestKit::new("probe-await");
    let probe = kit.probe::<u32>();
    let target = kit.probe::<u32>();
    for i in 0..3 {
        target.actor_ref().tell(i);
    }
    probe
        .await_assert(|| target.pending() == 3, Duration::from_secs(1), ms(10))
        .await;
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "await_assert at ")]
async fn await_assert_method_is_bounded_by_within() {
    let kit = TestKit::new("probe-await-within");
    let probe = kit.probe::<u32>();
    probe
        .within(Duration::ZERO, ms(100), async {
            // would wait 10 s, but the block ends after 100 ms
            probe
                .await_assert(|| false, Duration::from_secs(10), ms(10))
                .await;
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_work_on_a_multi_thread_runtime() {
    let kit = TestKit::new("probe-multi-thread");
    let probe = kit.probe::<u32>();
    let watcher = kit.probe::<()>();
    let sender = probe.actor_ref().clone();
    let task = tokio::spawn(async move {
        for n in 0..1_000 {
            sender.tell(n);
        }
    });
    assert_eq!(probe.receive_n(1_000).await, (0..1_000).collect::<Vec<_>>());
    assert!(task.await.is_ok());
    watcher.watch(probe.actor_ref()).await;
    probe.actor_ref().stop();
    watcher.expect_terminated(probe.actor_ref()).await;
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn expect_msg_all_of_accepts_any_order() {
    let kit = TestKit::new("all-of");
    let probe = kit.probe::<u32>();
    for n in [3, 1, 2, 1] {
        probe.actor_ref().tell(n);
    }
    assert_eq!(
        probe.expect_msg_all_of(vec![1, 1, 2, 3]).await,
        vec![3, 1, 2, 1]
    );
    probe.expect_no_msg(ms(100)).await;
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "expected one of [2], but received 1 after")]
async fn expect_msg_all_of_fails_on_an_extra_duplicate() {
    let kit = TestKit::new("all-of-extra");
    let probe = kit.probe::<u32>();
    for n in [1, 1] {
        probe.actor_ref().tell(n);
    }
    probe.expect_msg_all_of(vec![1, 2]).await;
}

#[tokio::test(start_paused = true)]
async fn expect_msg_all_of_fails_when_one_is_missing() {
    let kit = TestKit::new("all-of-missing");
    let probe = kit.probe::<u32>();
    probe.actor_ref().tell(1);
    let msg = panic_message(async move {
        probe.expect_msg_all_of(vec![1, 3]).await;
    })
    .await;
    let want = format!(
        "still expected [3], but no message arrived within {:?} (received [1])",
        default_timeout()
    );
    assert!(msg.contains(&want), "{msg}");
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "no message arrived: the probe actor has stopped")]
async fn expect_msg_on_a_stopped_probe_says_so() {
    let kit = TestKit::new("stopped-probe");
    let probe = kit.probe::<u32>();
    let watcher = kit.probe::<()>();
    watcher.watch(probe.actor_ref()).await;
    probe.actor_ref().stop();
    watcher.expect_terminated(probe.actor_ref()).await;
    probe.expect_msg(1).await;
}

#[tokio::test(start_paused = true)]
async fn watch_from_a_stopped_probe_fails() {
    let kit = TestKit::new("stopped-probe-watch");
    let probe = kit.probe::<u32>();
    let target = kit.probe::<u32>();
    let watcher = kit.probe::<()>();
    watcher.watch(probe.actor_ref()).await;
    probe.actor_ref().stop();
    watcher.expect_terminated(probe.actor_ref()).await;
    let target_ref = target.actor_ref().clone();
    let msg = panic_message(async move {
        probe.watch(&target_ref).await;
    })
    .await;
    assert!(msg.contains(" watch at "), "{msg}");
    assert!(msg.contains("it has stopped"), "{msg}");
}
