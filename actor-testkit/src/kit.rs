//! [`TestKit`]: an actor system for one test, with quiet logging, probes and spawn helpers.

use std::panic::Location;

use actor_core::{Actor, ActorRef, ActorSystem, Props, SystemError, SystemSettings};

use crate::logging::init_logging;
use crate::probe::TestProbe;
use crate::time::default_timeout;

/// An actor system for one test.
///
/// [`TestKit::new`] installs a quiet `tracing` subscriber once per process (level `warn`
/// unless `RUST_LOG` says otherwise, written through the test harness's capture) and creates
/// the system. [`TestKit::shutdown`] terminates it and checks that it did; dropping the kit
/// without `shutdown` starts termination in the background (a destructor cannot wait), which
/// the end of a `#[tokio::test]` may cut short: call `shutdown` when `stopped` hooks matter.
///
/// # Examples
/// ```
/// use actor_core::{Actor, ActorResult, Context, Props};
/// use actor_testkit::TestKit;
///
/// struct Echo;
/// impl Actor for Echo {
///     type Msg = (String, actor_core::ActorRef<String>);
///     async fn handle(&mut self, (text, to): Self::Msg, _: &mut Context<Self>) -> ActorResult {
///         to.tell(text);
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let kit = TestKit::new("kit-doc");
/// let probe = kit.probe::<String>();
/// let echo = kit.spawn(Props::new(|| Echo), "echo");
/// echo.tell(("hi".to_string(), probe.actor_ref().clone()));
/// probe.expect_msg("hi".to_string()).await;
/// kit.shutdown().await;
/// # }
/// ```
pub struct TestKit {
    system: ActorSystem,
}

impl TestKit {
    /// A kit with a fresh system named `name`.
    ///
    /// # Panics
    /// When the name is invalid or there is no tokio runtime (see [`TestKit::try_new`]).
    #[track_caller]
    pub fn new(name: &str) -> Self {
        match TestKit::try_new(name) {
            Ok(kit) => kit,
            Err(e) => panic!("TestKit::new({name:?}) failed: {e}"),
        }
    }

    /// A kit with a fresh system named `name`.
    ///
    /// # Errors
    /// As [`ActorSystem::new`]: an invalid name, or no tokio runtime.
    pub fn try_new(name: &str) -> Result<Self, SystemError> {
        TestKit::with_settings(name, SystemSettings::default())
    }

    /// A kit whose system has the given settings (a seed, a guardian strategy).
    ///
    /// # Errors
    /// As [`ActorSystem::with_settings`].
    pub fn with_settings(name: &str, settings: SystemSettings) -> Result<Self, SystemError> {
        init_logging();
        Ok(TestKit {
            system: ActorSystem::with_settings(name, settings)?,
        })
    }

    /// A kit around an existing system (logging is installed too).
    pub fn from_system(system: ActorSystem) -> Self {
        init_logging();
        TestKit { system }
    }

    /// The system under test.
    pub fn system(&self) -> &ActorSystem {
        &self.system
    }

    /// A new probe in this system.
    ///
    /// # Panics
    /// When the system is terminating.
    #[track_caller]
    pub fn probe<M: Send + 'static>(&self) -> TestProbe<M> {
        TestProbe::new(&self.system)
    }

    /// Spawns a top-level actor named `name`.
    ///
    /// # Panics
    /// When the spawn fails (a bad or duplicate name, a terminating system); use
    /// [`ActorSystem::spawn`] through [`TestKit::system`] to test those errors.
    #[track_caller]
    pub fn spawn<A: Actor>(&self, props: Props<A>, name: &str) -> ActorRef<A::Msg> {
        match self.system.spawn(props, name) {
            Ok(r) => r,
            Err(e) => panic!("TestKit::spawn({name:?}) failed: {e}"),
        }
    }

    /// Spawns a top-level actor with a generated name.
    ///
    /// # Panics
    /// When the system is terminating.
    #[track_caller]
    pub fn spawn_anonymous<A: Actor>(&self, props: Props<A>) -> ActorRef<A::Msg> {
        match self.system.spawn_anonymous(props) {
            Ok(r) => r,
            Err(e) => panic!("TestKit::spawn_anonymous failed: {e}"),
        }
    }

    /// Terminates the system, running every `stopped` hook, and checks that it finished
    /// within the dilated default timeout.
    ///
    /// # Panics
    /// When the system has not terminated in time (an actor's hook hangs).
    #[track_caller]
    pub fn shutdown(self) -> impl Future<Output = ()> {
        let caller = Location::caller();
        async move {
            let timeout = default_timeout();
            let system = self.system.clone();
            let done = tokio::time::timeout(timeout, system.terminate()).await;
            if done.is_err() {
                panic!(
                    "TestKit::shutdown at {caller}: actor system {} did not terminate within {timeout:?}",
                    system.name()
                );
            }
        }
    }
}

impl Drop for TestKit {
    fn drop(&mut self) {
        if !self.system.is_terminated() {
            let system = self.system.clone();
            // a destructor cannot await: terminate in the background on the system's runtime
            drop(
                self.system
                    .runtime()
                    .spawn(async move { system.terminate().await }),
            );
        }
    }
}

impl std::fmt::Debug for TestKit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestKit")
            .field("system", &self.system)
            .finish()
    }
}
