//! Self-tests of `TestKit`: creation, spawn helpers, shutdown, drop, time factor.

use std::sync::Arc;
use std::time::Duration;

use actor_core::{Actor, ActorResult, Context, Props, SpawnError, SystemError};
use actor_testkit::{DEFAULT_TIMEOUT, TestKit, default_timeout, dilated, time_factor};
use parking_lot::Mutex;

/// Records its name into a shared log when it stops.
struct Recorder {
    name: &'static str,
    log: Arc<Mutex<Vec<&'static str>>>,
}

impl Actor for Recorder {
    type Msg = ();
    async fn handle(&mut self, _: (), _: &mut Context<Self>) -> ActorResult {
        Ok(())
    }
    async fn stopped(&mut self, _: &mut Context<Self>) {
        self.log.lock().push(self.name);
    }
}

fn recorder(name: &'static str, log: &Arc<Mutex<Vec<&'static str>>>) -> Props<Recorder> {
    let log = log.clone();
    Props::new(move || Recorder {
        name,
        log: log.clone(),
    })
}

#[tokio::test]
async fn try_new_rejects_an_invalid_name_with_a_typed_error() {
    match TestKit::try_new("not a name") {
        Err(SystemError::InvalidName(_)) => {}
        other => panic!("expected InvalidName, got {other:?}"),
    }
}

#[tokio::test]
#[should_panic(
    expected = "TestKit::new(\"bad/name\") failed: invalid actor system name \"bad/name\""
)]
async fn new_panics_with_the_reason() {
    let _kit = TestKit::new("bad/name");
}

#[tokio::test(start_paused = true)]
async fn spawn_helpers_name_and_generate_names() {
    let kit = TestKit::new("kit-spawn");
    let log = Arc::new(Mutex::new(Vec::new()));
    let a = kit.spawn(recorder("a", &log), "a");
    assert_eq!(a.path().to_string(), "actor://kit-spawn/user/a");
    let anon = kit.spawn_anonymous(recorder("anon", &log));
    assert!(anon.path().name().starts_with('$'), "{}", anon.path());
    match kit.system().spawn(recorder("dup", &log), "a") {
        Err(SpawnError::DuplicateName { name, .. }) => assert_eq!(name, "a"),
        other => panic!("expected DuplicateName, got {other:?}"),
    }
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "TestKit::spawn(\"a\") failed: an actor named \"a\" already exists")]
async fn spawn_helper_panics_on_a_duplicate_name() {
    let kit = TestKit::new("kit-spawn-dup");
    let log = Arc::new(Mutex::new(Vec::new()));
    kit.spawn(recorder("a", &log), "a");
    kit.spawn(recorder("a", &log), "a");
}

#[tokio::test(start_paused = true)]
async fn shutdown_runs_every_stopped_hook() {
    let kit = TestKit::new("kit-shutdown");
    let log = Arc::new(Mutex::new(Vec::new()));
    kit.spawn(recorder("a", &log), "a");
    kit.spawn(recorder("b", &log), "b");
    let system = kit.system().clone();
    kit.shutdown().await;
    assert!(system.is_terminated());
    let mut stopped = log.lock().clone();
    stopped.sort();
    assert_eq!(stopped, vec!["a", "b"]);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_kit_terminates_the_system() {
    let kit = TestKit::new("kit-drop");
    let log = Arc::new(Mutex::new(Vec::new()));
    kit.spawn(recorder("a", &log), "a");
    let system = kit.system().clone();
    drop(kit);
    assert!(system.await_termination(DEFAULT_TIMEOUT).await);
    assert_eq!(*log.lock(), vec!["a"]);
}

#[tokio::test(start_paused = true)]
async fn a_probe_outlives_user_actors_during_shutdown() {
    /// Reports to a probe from its `stopped` hook.
    struct Reporter(actor_core::ActorRef<&'static str>);
    impl Actor for Reporter {
        type Msg = ();
        async fn handle(&mut self, _: (), _: &mut Context<Self>) -> ActorResult {
            Ok(())
        }
        async fn stopped(&mut self, _: &mut Context<Self>) {
            self.0.tell("stopped");
        }
    }
    let kit = TestKit::new("kit-probe-outlives");
    let probe = kit.probe::<&'static str>();
    let to = probe.actor_ref().clone();
    kit.spawn(Props::new(move || Reporter(to.clone())), "reporter");
    kit.shutdown().await;
    // the probe lives under /system, stopped after every /user actor
    probe.expect_msg("stopped").await;
}

#[test]
fn defaults_are_scaled_by_the_time_factor() {
    let f = time_factor();
    assert!(f > 0.0);
    assert_eq!(default_timeout(), DEFAULT_TIMEOUT.mul_f64(f));
    assert_eq!(
        dilated(Duration::from_millis(200)),
        Duration::from_millis(200).mul_f64(f)
    );
}
