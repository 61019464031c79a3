//! [`MultiNodeSpec`]: the roles, the mode (threads or simulated) and the time limits of a
//! run; [`MultiNodeSpec::run`] runs a body once per role.

use std::future::Future;
use std::panic::Location;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actor_cluster::cluster::ClusterSettings;
use actor_cluster::{Address, ChannelMesh, DEFAULT_FAULT_SEED, InMemoryHub};

use super::node::Node;
use super::report::{FailedRun, MultiNodeError, RoleOutcome, RunReport, Trace};
use super::run::{Config, Network, Run, SettingsFn};
use super::runner::{self, RoleResult};
use super::{
    DEFAULT_BARRIER_TIMEOUT, DEFAULT_CONVERGENCE_TIMEOUT, DEFAULT_RUN_TIMEOUT,
    DEFAULT_SHUTDOWN_TIMEOUT, DEFAULT_SYSTEM_NAME,
};
use crate::time::dilated;

/// Where the nodes run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One thread, tokio runtime and actor system per role, over a
    /// [`ChannelMesh`]: real concurrency, real clock.
    Threads,
    /// Every node on one current-thread runtime with a paused clock, over an
    /// [`InMemoryHub`]: the seed replays the run exactly.
    Simulated,
}

/// A multi-node run: roles, mode and settings. See the [module docs](super).
///
/// # Examples
/// ```
/// use actor_testkit::multi_node::MultiNodeSpec;
///
/// let report = MultiNodeSpec::new(&["a", "b"])
///     .expect("valid roles")
///     .simulated(7)
///     .without_cluster()
///     .run(|node| async move {
///         node.trace(format!("hello from {}", node.role()));
///         node.enter_barrier("done").await;
///     })
///     .expect("the run passes");
/// assert!(report.trace.contains("b", "hello from b"));
/// ```
#[derive(Clone)]
pub struct MultiNodeSpec {
    roles: Vec<String>,
    mode: Mode,
    seed: u64,
    system_name: String,
    cluster: Option<SettingsFn>,
    barrier_timeout: Duration,
    run_timeout: Duration,
    shutdown_timeout: Duration,
    convergence_timeout: Duration,
}

impl std::fmt::Debug for MultiNodeSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiNodeSpec")
            .field("roles", &self.roles)
            .field("mode", &self.mode)
            .field("seed", &self.seed)
            .field("system_name", &self.system_name)
            .field("joins_cluster", &self.cluster.is_some())
            .field("barrier_timeout", &self.barrier_timeout)
            .field("run_timeout", &self.run_timeout)
            .finish_non_exhaustive()
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl MultiNodeSpec {
    /// A spec for `roles` in thread mode, every node joining a cluster with
    /// [`ClusterSettings::fast`] (every role's address a seed, so the first role forms it),
    /// default time limits scaled by the time factor.
    ///
    /// # Errors
    /// [`MultiNodeError::NoRoles`], [`MultiNodeError::InvalidRole`] for a name outside
    /// `[a-zA-Z0-9-_]+`, [`MultiNodeError::DuplicateRole`].
    pub fn new<R: AsRef<str>>(roles: &[R]) -> Result<Self, MultiNodeError> {
        if roles.is_empty() {
            return Err(MultiNodeError::NoRoles);
        }
        let mut names: Vec<String> = Vec::with_capacity(roles.len());
        for role in roles {
            let role = role.as_ref();
            if !valid_name(role) {
                return Err(MultiNodeError::InvalidRole {
                    role: role.to_owned(),
                });
            }
            if names.iter().any(|r| r == role) {
                return Err(MultiNodeError::DuplicateRole {
                    role: role.to_owned(),
                });
            }
            names.push(role.to_owned());
        }
        Ok(MultiNodeSpec {
            roles: names,
            mode: Mode::Threads,
            seed: DEFAULT_FAULT_SEED,
            system_name: DEFAULT_SYSTEM_NAME.to_owned(),
            cluster: Some(Arc::new(|_| ClusterSettings::fast())),
            barrier_timeout: dilated(DEFAULT_BARRIER_TIMEOUT),
            run_timeout: dilated(DEFAULT_RUN_TIMEOUT),
            shutdown_timeout: dilated(DEFAULT_SHUTDOWN_TIMEOUT),
            convergence_timeout: dilated(DEFAULT_CONVERGENCE_TIMEOUT),
        })
    }

    /// Thread mode (the default): one thread and runtime per role.
    pub fn threads(mut self) -> Self {
        self.mode = Mode::Threads;
        self
    }

    /// Simulated mode with `seed`: one paused current-thread runtime, an in-memory hub, and
    /// every node's RNG derived from the seed.
    pub fn simulated(mut self, seed: u64) -> Self {
        self.mode = Mode::Simulated;
        self.seed = seed;
        self
    }

    /// Sets the mode, keeping the seed.
    pub fn with_mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets the seed (of the mesh or hub and of every node's RNG) without changing mode.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The actor system name every node uses ([`DEFAULT_SYSTEM_NAME`]).
    pub fn with_system_name(mut self, name: impl Into<String>) -> Self {
        self.system_name = name.into();
        self
    }

    /// Every node joins the cluster with `settings(role)` before its body starts (seed
    /// nodes left empty become every role's address).
    pub fn with_cluster_settings(
        mut self,
        settings: impl Fn(&str) -> ClusterSettings + Send + Sync + 'static,
    ) -> Self {
        self.cluster = Some(Arc::new(settings));
        self
    }

    /// Nodes start with remoting but join no cluster ([`Node::join_cluster`] joins later).
    pub fn without_cluster(mut self) -> Self {
        self.cluster = None;
        self
    }

    /// How long a barrier waits ([`DEFAULT_BARRIER_TIMEOUT`], scaled); used as given.
    pub fn with_barrier_timeout(mut self, timeout: Duration) -> Self {
        self.barrier_timeout = timeout;
        self
    }

    /// How long a body may run ([`DEFAULT_RUN_TIMEOUT`], scaled); used as given.
    pub fn with_run_timeout(mut self, timeout: Duration) -> Self {
        self.run_timeout = timeout;
        self
    }

    /// How long a node's system may take to terminate, or to leave the cluster on a
    /// graceful shutdown ([`DEFAULT_SHUTDOWN_TIMEOUT`], scaled); used as given.
    pub fn with_shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// How long [`Node::await_members_up`] waits ([`DEFAULT_CONVERGENCE_TIMEOUT`], scaled);
    /// used as given.
    pub fn with_convergence_timeout(mut self, timeout: Duration) -> Self {
        self.convergence_timeout = timeout;
        self
    }

    /// The roles.
    pub fn roles(&self) -> &[String] {
        &self.roles
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// [`MultiNodeError::InvalidSystemName`], [`MultiNodeError::ZeroDuration`].
    pub fn validate(&self) -> Result<(), MultiNodeError> {
        if actor_core::validate_system_name(&self.system_name).is_err() {
            return Err(MultiNodeError::InvalidSystemName {
                name: self.system_name.clone(),
            });
        }
        for (what, d) in [
            ("barrier time-out", self.barrier_timeout),
            ("run time-out", self.run_timeout),
            ("shutdown time-out", self.shutdown_timeout),
            ("convergence time-out", self.convergence_timeout),
        ] {
            if d.is_zero() {
                return Err(MultiNodeError::ZeroDuration { what });
            }
        }
        Ok(())
    }

    fn addresses(&self) -> Result<Vec<Address>, MultiNodeError> {
        self.roles
            .iter()
            .map(|role| {
                Address::logical(self.system_name.clone(), role.clone()).map_err(|_| {
                    MultiNodeError::InvalidSystemName {
                        name: self.system_name.clone(),
                    }
                })
            })
            .collect()
    }

    /// Runs `body` once per role and waits for all of them; every node stays up until every
    /// body has ended, then terminates.
    ///
    /// # Errors
    /// [`MultiNodeError::Failed`] when any role failed (panicked, returned an error, failed
    /// at a barrier, could not start, or ran past the run time-out): its message names each
    /// failed role, where it was (at / after which barrier) and why, the causes first. The
    /// settings errors of [`MultiNodeSpec::validate`], [`MultiNodeError::InsideRuntime`] when
    /// called on a thread that runs a tokio runtime, and [`MultiNodeError::Runtime`].
    pub fn run<F, Fut>(&self, body: F) -> Result<RunReport, MultiNodeError>
    where
        F: Fn(Node) -> Fut + Sync,
        Fut: Future,
        Fut::Output: RoleResult,
    {
        self.validate()?;
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(MultiNodeError::InsideRuntime);
        }
        crate::logging::init_logging();
        let addresses = self.addresses()?;
        let config = Config {
            system_name: self.system_name.clone(),
            seed: self.seed,
            barrier_timeout: self.barrier_timeout,
            run_timeout: self.run_timeout,
            shutdown_timeout: self.shutdown_timeout,
            convergence_timeout: self.convergence_timeout,
            cluster: self.cluster.clone(),
        };
        let network = match self.mode {
            Mode::Threads => Network::Threads(ChannelMesh::new(self.seed)),
            Mode::Simulated => Network::Simulated(InMemoryHub::with_options(
                self.seed,
                actor_cluster::DEFAULT_MAX_FRAME_SIZE,
            )),
        };
        let run = Arc::new(Run::new(self.roles.clone(), addresses, config, network));
        let started = Instant::now();
        let outcomes = match self.mode {
            Mode::Threads => runner::run_threads(&run, &body),
            Mode::Simulated => {
                runner::run_simulated(&run, &body).map_err(|e| MultiNodeError::Runtime {
                    message: e.to_string(),
                })?
            }
        };
        let report = RunReport {
            outcomes: self.roles.iter().cloned().zip(outcomes).collect(),
            trace: Trace {
                entries: run.take_trace(),
            },
            seed: (self.mode == Mode::Simulated).then_some(self.seed),
            wall: started.elapsed(),
        };
        if report
            .outcomes
            .iter()
            .any(|(_, o)| matches!(o, RoleOutcome::Failed(_)))
        {
            return Err(MultiNodeError::Failed(Box::new(FailedRun { report })));
        }
        Ok(report)
    }

    /// [`MultiNodeSpec::run`], panicking when the run fails.
    ///
    /// # Panics
    /// With the run's failure message (every failed role, where, and why).
    #[track_caller]
    pub fn run_or_panic<F, Fut>(&self, body: F) -> RunReport
    where
        F: Fn(Node) -> Fut + Sync,
        Fut: Future,
        Fut::Output: RoleResult,
    {
        let caller = Location::caller();
        match self.run(body) {
            Ok(report) => report,
            Err(e) => panic!("multi-node run at {caller}: {e}"),
        }
    }
}

/// Runs `body` once per role in thread mode with the default spec (cluster joined with
/// [`ClusterSettings::fast`]); see [`MultiNodeSpec`].
///
/// # Panics
/// When the roles are invalid or the run fails; the message names every failed role, the
/// barrier it was at, and why.
#[track_caller]
pub fn run_multi_node<R, F, Fut>(roles: &[R], body: F) -> RunReport
where
    R: AsRef<str>,
    F: Fn(Node) -> Fut + Sync,
    Fut: Future,
    Fut::Output: RoleResult,
{
    let caller = Location::caller();
    match MultiNodeSpec::new(roles).and_then(|spec| spec.run(body)) {
        Ok(report) => report,
        Err(e) => panic!("run_multi_node at {caller}: {e}"),
    }
}

/// [`run_multi_node`] in simulated mode with `seed`.
///
/// # Panics
/// As [`run_multi_node`].
#[track_caller]
pub fn run_multi_node_simulated<R, F, Fut>(seed: u64, roles: &[R], body: F) -> RunReport
where
    R: AsRef<str>,
    F: Fn(Node) -> Fut + Sync,
    Fut: Future,
    Fut::Output: RoleResult,
{
    let caller = Location::caller();
    match MultiNodeSpec::new(roles).and_then(|spec| spec.simulated(seed).run(body)) {
        Ok(report) => report,
        Err(e) => panic!("run_multi_node_simulated at {caller}: {e}"),
    }
}
