//! Timers and receive timeouts, in virtual time: single and periodic timers, cancel by key
//! (also a message already queued), replacement by key, cancellation on restart and stop.

mod common;

use std::sync::Arc;
use std::time::Duration;

use actor_core::{Actor, ActorError, ActorRef, ActorResult, Context, Props};
use actor_testkit::{TestKit, TestProbe, await_assert};
use tokio::time::Instant;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[derive(Debug, Clone)]
enum TMsg {
    Single(&'static str, Duration, u32),
    FixedDelay(&'static str, Duration, u32),
    FixedRate(&'static str, Duration, u32),
    Cancel(&'static str),
    /// Starts a 10 ms timer, waits 50 ms inside the handler (so its message is queued), then
    /// cancels it.
    CancelQueued,
    /// Starts a one-hour timer whose message holds the token.
    HoldToken(Arc<()>),
    Token(Arc<()>),
    Tick(u32),
    ReceiveTimeout(Duration),
    CancelReceiveTimeout,
    TimedOut,
    Ping,
    Fail,
}

/// Runs timer commands and reports ticks, timeouts and starts as text.
struct Timed {
    report: ActorRef<String>,
}

impl Actor for Timed {
    type Msg = TMsg;

    async fn started(&mut self, _: &mut Context<Self>) -> ActorResult {
        self.report.tell("started".into());
        Ok(())
    }

    async fn handle(&mut self, msg: TMsg, ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            TMsg::Single(key, d, n) => ctx.start_single_timer(key, d, TMsg::Tick(n)),
            TMsg::FixedDelay(key, d, n) => ctx.start_timer_with_fixed_delay(key, d, TMsg::Tick(n)),
            TMsg::FixedRate(key, d, n) => ctx.start_timer_at_fixed_rate(key, d, TMsg::Tick(n)),
            TMsg::Cancel(key) => {
                let was_active = ctx.cancel_timer(key);
                self.report.tell(format!("cancelled {key} {was_active}"));
            }
            TMsg::CancelQueued => {
                ctx.start_single_timer("q", ms(10), TMsg::Tick(99));
                // virtual time: the timer fires and queues its message meanwhile
                tokio::time::sleep(ms(50)).await;
                let was_active = ctx.cancel_timer("q");
                self.report.tell(format!("cancelled q {was_active}"));
            }
            TMsg::HoldToken(token) => {
                ctx.start_single_timer("token", Duration::from_secs(3600), TMsg::Token(token))
            }
            TMsg::Token(token) => {
                drop(token);
                self.report.tell("token".into())
            }
            TMsg::Tick(n) => self.report.tell(format!("tick {n}")),
            TMsg::ReceiveTimeout(d) => ctx.set_receive_timeout(d, TMsg::TimedOut),
            TMsg::CancelReceiveTimeout => ctx.cancel_receive_timeout(),
            TMsg::TimedOut => self.report.tell("timed out".into()),
            TMsg::Ping => self.report.tell("ping".into()),
            TMsg::Fail => return Err(ActorError::msg("fail on command")),
        }
        Ok(())
    }
}

fn spawn_timed(kit: &TestKit) -> (ActorRef<TMsg>, TestProbe<String>) {
    let report = kit.probe::<String>();
    let to = report.actor_ref().clone();
    let a = kit.spawn(Props::new(move || Timed { report: to.clone() }), "timed");
    (a, report)
}

/// Expects `text` and returns the virtual time it arrived at.
async fn expect_at(probe: &TestProbe<String>, text: &str) -> Instant {
    probe.expect_msg(text.to_string()).await;
    Instant::now()
}

fn assert_about(got: Duration, want: Duration) {
    assert!(
        got >= want && got < want + ms(5),
        "expected about {want:?}, got {got:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_single_timer_fires_once_after_its_delay() {
    let kit = TestKit::new("single-timer");
    let (a, report) = spawn_timed(&kit);
    expect_at(&report, "started").await;
    let t0 = Instant::now();
    a.tell(TMsg::Single("once", Duration::from_secs(1), 1));
    let at = expect_at(&report, "tick 1").await;
    assert_about(at - t0, Duration::from_secs(1));
    report.expect_no_msg(Duration::from_secs(5)).await;
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_periodic_timer_repeats_until_cancelled() {
    let kit = TestKit::new("periodic-timer");
    let (a, report) = spawn_timed(&kit);
    expect_at(&report, "started").await;
    let mut last = Instant::now();
    a.tell(TMsg::FixedDelay("every", ms(100), 2));
    for _ in 0..3 {
        let at = expect_at(&report, "tick 2").await;
        assert_about(at - last, ms(100));
        last = at;
    }
    a.tell(TMsg::Cancel("every"));
    report.expect_msg("cancelled every true".into()).await;
    report.expect_no_msg(Duration::from_secs(1)).await;
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_fixed_rate_timer_ticks_at_its_rate() {
    let kit = TestKit::new("fixed-rate-timer");
    let (a, report) = spawn_timed(&kit);
    expect_at(&report, "started").await;
    let t0 = Instant::now();
    a.tell(TMsg::FixedRate("rate", ms(250), 3));
    for i in 1..=4 {
        let at = expect_at(&report, "tick 3").await;
        assert_about(at - t0, ms(250) * i);
    }
    a.tell(TMsg::Cancel("rate"));
    report.expect_msg("cancelled rate true".into()).await;
    report.expect_no_msg(Duration::from_secs(1)).await;
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_timers_message_never_arrives() {
    let kit = TestKit::new("cancel-timer");
    let (a, report) = spawn_timed(&kit);
    expect_at(&report, "started").await;
    a.tell(TMsg::Single("later", Duration::from_secs(1), 4));
    a.tell(TMsg::Cancel("later"));
    report.expect_msg("cancelled later true".into()).await;
    a.tell(TMsg::Cancel("later"));
    report.expect_msg("cancelled later false".into()).await;
    // also when its message was already queued in the mailbox
    a.tell(TMsg::CancelQueued);
    report.expect_msg("cancelled q true".into()).await;
    report.expect_no_msg(Duration::from_secs(2)).await;
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_timer_with_the_same_key_replaces_the_old_one() {
    let kit = TestKit::new("replace-timer");
    let (a, report) = spawn_timed(&kit);
    expect_at(&report, "started").await;
    let t0 = Instant::now();
    a.tell(TMsg::Single("k", Duration::from_secs(1), 1));
    a.tell(TMsg::Single("k", Duration::from_secs(2), 2));
    let at = expect_at(&report, "tick 2").await;
    assert_about(at - t0, Duration::from_secs(2));
    report.expect_no_msg(Duration::from_secs(3)).await;
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn timers_are_cancelled_on_restart() {
    let kit = TestKit::new("timers-restart");
    let (a, report) = spawn_timed(&kit);
    expect_at(&report, "started").await;
    a.tell(TMsg::FixedDelay("every", ms(100), 5));
    report.expect_msg("tick 5".into()).await;
    let token = Arc::new(());
    a.tell(TMsg::HoldToken(token.clone()));
    a.tell(TMsg::Fail);
    report.expect_msg("started".into()).await;
    // the new instance gets no tick of the old instance's timers
    report.expect_no_msg(Duration::from_secs(1)).await;
    // and the pending one-hour timer was dropped with its message
    await_assert(
        || Arc::strong_count(&token) == 1,
        Duration::from_secs(1),
        ms(1),
    )
    .await;
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn timers_are_cancelled_on_stop() {
    let kit = TestKit::new("timers-stop");
    let (a, report) = spawn_timed(&kit);
    expect_at(&report, "started").await;
    let token = Arc::new(());
    a.tell(TMsg::HoldToken(token.clone()));
    a.tell(TMsg::FixedDelay("every", ms(100), 6));
    report.expect_msg("tick 6".into()).await;
    let watcher = kit.probe::<()>();
    watcher.watch(&a).await;
    a.stop();
    watcher.expect_terminated(&a).await;
    await_assert(
        || Arc::strong_count(&token) == 1,
        Duration::from_secs(1),
        ms(1),
    )
    .await;
    let dead_before = kit.system().dead_letter_count();
    report.expect_no_msg(Duration::from_secs(1)).await;
    // no tick was even attempted after the stop
    assert_eq!(kit.system().dead_letter_count(), dead_before);
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_receive_timeout_fires_when_idle_and_any_message_resets_it() {
    let kit = TestKit::new("receive-timeout");
    let (a, report) = spawn_timed(&kit);
    expect_at(&report, "started").await;
    let t0 = Instant::now();
    a.tell(TMsg::ReceiveTimeout(Duration::from_secs(1)));
    let fired = expect_at(&report, "timed out").await;
    assert_about(fired - t0, Duration::from_secs(1));
    // messages keep it from firing
    for _ in 0..3 {
        tokio::time::advance(ms(600)).await;
        a.tell(TMsg::Ping);
        report.expect_msg("ping".into()).await;
    }
    let last_ping = Instant::now();
    let fired = expect_at(&report, "timed out").await;
    assert_about(fired - last_ping, Duration::from_secs(1));
    a.tell(TMsg::CancelReceiveTimeout);
    report.expect_no_msg(Duration::from_secs(5)).await;
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_receive_timeout_is_cancelled_on_restart() {
    let kit = TestKit::new("receive-timeout-restart");
    let (a, report) = spawn_timed(&kit);
    expect_at(&report, "started").await;
    a.tell(TMsg::ReceiveTimeout(Duration::from_secs(1)));
    report.expect_msg("timed out".into()).await;
    a.tell(TMsg::Fail);
    report.expect_msg("started".into()).await;
    report.expect_no_msg(Duration::from_secs(5)).await;
    kit.shutdown().await;
}
