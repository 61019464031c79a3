//! Self-tests of `LogCapture`.

use actor_core::{Actor, ActorError, ActorResult, Context, Props};
use actor_testkit::{LogCapture, TestKit};

struct Failing;

impl Actor for Failing {
    type Msg = ();
    async fn handle(&mut self, _: (), _: &mut Context<Self>) -> ActorResult {
        Err(ActorError::msg("broken on purpose"))
    }
}

#[test]
fn records_events_at_the_level_and_above() {
    let logs = LogCapture::start(tracing::Level::INFO);
    tracing::info!(n = 1, "first");
    tracing::error!("second");
    tracing::debug!("third");
    assert_eq!(logs.lines().len(), 2, "{:?}", logs.lines());
    assert!(logs.contains("first") && logs.contains("n=1"));
    assert_eq!(logs.count("second"), 1);
    assert!(!logs.contains("third"));
}

#[test]
fn stops_recording_when_dropped() {
    let logs = LogCapture::start(tracing::Level::INFO);
    tracing::info!("kept");
    let kept = logs.lines();
    drop(logs);
    tracing::info!("not kept");
    assert_eq!(kept.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn captures_what_actors_log_on_a_current_thread_runtime() {
    let logs = LogCapture::start(tracing::Level::ERROR);
    let kit = TestKit::new("log-capture");
    let a = kit.spawn(Props::new(|| Failing), "a");
    a.tell(());
    actor_testkit::await_assert_default(|| logs.contains("broken on purpose")).await;
    assert!(
        logs.contains("actor://log-capture/user/a"),
        "{:?}",
        logs.lines()
    );
    kit.shutdown().await;
}
