//! The state one run shares between its roles: the barrier coordinator and its waiters, the
//! network (mesh or hub), each role's stop signal and phase, the trace and the shared refs.
//! Everything here is `Send + Sync`: in thread mode each role's thread holds the same `Run`.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actor_cluster::cluster::ClusterSettings;
use actor_cluster::{Address, BindError, ChannelMesh, FaultInjector, InMemoryHub, Transport};
use parking_lot::Mutex;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use super::barrier::{BarrierError, Coordinator, Participants, Position, Release, RoleEnd};
use super::report::{ConductorError, TraceEntry, UnknownRole};

/// Makes the cluster settings of one role.
pub(crate) type SettingsFn = Arc<dyn Fn(&str) -> ClusterSettings + Send + Sync>;

/// The settings of a run, fixed when it starts.
pub(crate) struct Config {
    pub(crate) system_name: String,
    pub(crate) seed: u64,
    pub(crate) barrier_timeout: Duration,
    pub(crate) run_timeout: Duration,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) convergence_timeout: Duration,
    /// `Some`: every node joins the cluster with these settings before its body starts.
    pub(crate) cluster: Option<SettingsFn>,
}

/// The network the nodes are bound to.
pub(crate) enum Network {
    /// Thread mode: a channel mesh between the roles' threads.
    Threads(ChannelMesh),
    /// Simulated mode: an in-memory hub on the one runtime.
    Simulated(InMemoryHub),
}

impl Network {
    pub(crate) fn faults(&self) -> &dyn FaultInjector {
        match self {
            Network::Threads(mesh) => mesh,
            Network::Simulated(hub) => hub,
        }
    }

    pub(crate) fn bind(&self, address: Address) -> Result<Arc<dyn Transport>, BindError> {
        Ok(match self {
            Network::Threads(mesh) => mesh.bind(address)?,
            Network::Simulated(hub) => hub.bind(address)?,
        })
    }

    pub(crate) fn is_simulated(&self) -> bool {
        matches!(self, Network::Simulated(_))
    }
}

/// What the conductor asked a role to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    Crash,
    Shutdown,
}

/// How far a role's run has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    /// Bootstrapping or running its body.
    Running,
    /// Its body ended (returned, failed, or was dropped by a crash or shutdown).
    BodyEnded,
    /// Its actor system is gone.
    Stopped,
}

/// One role's signals.
pub(crate) struct Control {
    pub(crate) stop: watch::Sender<Option<Stop>>,
    pub(crate) phase: watch::Sender<Phase>,
}

struct BarrierState {
    coordinator: Coordinator,
    waiters: BTreeMap<(usize, String), oneshot::Sender<Result<(), BarrierError>>>,
    /// The barrier error a role's body is panicking with (set just before the panic).
    failing: BTreeMap<usize, BarrierError>,
}

impl BarrierState {
    fn deliver(&mut self, releases: Vec<Release>) {
        for release in releases {
            if let Some(tx) = self.waiters.remove(&(release.role, release.barrier)) {
                // the waiter may be gone (its body was dropped by a crash)
                let _ = tx.send(release.result);
            }
        }
    }
}

/// The state of one run. See the [module docs](self).
pub(crate) struct Run {
    pub(crate) roles: Vec<String>,
    pub(crate) addresses: Vec<Address>,
    pub(crate) config: Config,
    pub(crate) network: Network,
    pub(crate) controls: Vec<Control>,
    barriers: Mutex<BarrierState>,
    start: OnceLock<Instant>,
    trace: Mutex<Vec<TraceEntry>>,
    refs: watch::Sender<BTreeMap<String, String>>,
    ended: watch::Sender<usize>,
}

impl Run {
    pub(crate) fn new(
        roles: Vec<String>,
        addresses: Vec<Address>,
        config: Config,
        network: Network,
    ) -> Self {
        let controls = roles
            .iter()
            .map(|_| Control {
                stop: watch::Sender::new(None),
                phase: watch::Sender::new(Phase::Running),
            })
            .collect();
        Run {
            barriers: Mutex::new(BarrierState {
                coordinator: Coordinator::new(roles.clone()),
                waiters: BTreeMap::new(),
                failing: BTreeMap::new(),
            }),
            roles,
            addresses,
            config,
            network,
            controls,
            start: OnceLock::new(),
            trace: Mutex::new(Vec::new()),
            refs: watch::Sender::new(BTreeMap::new()),
            ended: watch::Sender::new(0),
        }
    }

    /// Marks the start of the run (the zero of the trace's clock); call it on the runtime
    /// whose clock the trace uses.
    pub(crate) fn mark_start(&self) {
        let _ = self.start.set(Instant::now());
    }

    pub(crate) fn index_of(&self, role: &str) -> Result<usize, UnknownRole> {
        self.roles
            .iter()
            .position(|r| r == role)
            .ok_or_else(|| UnknownRole {
                role: role.to_owned(),
                known: self.roles.clone(),
            })
    }

    /// The role bound at `address`, if any.
    pub(crate) fn role_at(&self, address: &Address) -> Option<&str> {
        self.addresses
            .iter()
            .position(|a| a == address)
            .map(|i| self.roles[i].as_str())
    }

    /// The RNG seed of role `index`'s actor system, derived from the run's seed.
    pub(crate) fn node_seed(&self, index: usize) -> u64 {
        splitmix64(self.config.seed ^ splitmix64(index as u64 + 1))
    }

    /// Appends a trace entry for role `index`.
    pub(crate) fn trace(&self, index: usize, event: impl Into<String>) {
        let at = self
            .start
            .get()
            .map(|s| Instant::now().saturating_duration_since(*s))
            .unwrap_or_default();
        self.trace.lock().push(TraceEntry {
            at,
            role: self.roles[index].clone(),
            event: event.into(),
        });
    }

    pub(crate) fn take_trace(&self) -> Vec<TraceEntry> {
        std::mem::take(&mut *self.trace.lock())
    }

    /// Where role `index` is, as barriers tell.
    pub(crate) fn position(&self, index: usize) -> Position {
        self.barriers.lock().coordinator.position(index)
    }

    /// The roles not crashed or shut down.
    pub(crate) fn live_roles(&self) -> Vec<usize> {
        self.barriers.lock().coordinator.live_roles()
    }

    /// Resolves a barrier's role names.
    pub(crate) fn participants(
        &self,
        barrier: &str,
        names: &[&str],
    ) -> Result<Participants, BarrierError> {
        self.barriers
            .lock()
            .coordinator
            .participants(barrier, names)
    }

    /// Role `index` enters `barrier` and waits until it completes or fails.
    ///
    /// # Cancel safety
    /// Not cancel safe: a dropped wait leaves the role counted as arrived.
    pub(crate) async fn enter_barrier(
        &self,
        index: usize,
        barrier: &str,
        participants: Participants,
        timeout: Duration,
    ) -> Result<(), BarrierError> {
        let (tx, mut rx) = oneshot::channel();
        {
            let mut state = self.barriers.lock();
            state.waiters.insert((index, barrier.to_owned()), tx);
            let releases = state.coordinator.enter(index, barrier, participants);
            state.deliver(releases);
        }
        let result = match tokio::time::timeout(timeout, &mut rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(self.ended_error(barrier)),
            Err(_) => {
                {
                    let mut state = self.barriers.lock();
                    let releases = state.coordinator.time_out(barrier, timeout);
                    state.deliver(releases);
                }
                // released just now (or completed in the same instant)
                rx.try_recv()
                    .unwrap_or_else(|_| Err(self.ended_error(barrier)))
            }
        };
        match &result {
            Ok(()) => self.trace(index, format!("passed barrier {barrier:?}")),
            Err(e) => self.trace(index, format!("barrier failed: {e}")),
        }
        result
    }

    fn ended_error(&self, barrier: &str) -> BarrierError {
        BarrierError::RunEnded {
            barrier: barrier.to_owned(),
            reason: "the waiter was released without a result".to_owned(),
        }
    }

    /// Notes that role `index`'s body is about to panic with `error`.
    pub(crate) fn set_failing_barrier(&self, index: usize, error: BarrierError) {
        self.barriers.lock().failing.insert(index, error);
    }

    /// The barrier error role `index` panicked with, if any.
    pub(crate) fn failing_barrier(&self, index: usize) -> Option<BarrierError> {
        self.barriers.lock().failing.get(&index).cloned()
    }

    /// Records how role `index`'s body ended; pending barriers complete or abort.
    pub(crate) fn role_ended(&self, index: usize, end: RoleEnd) {
        let mut state = self.barriers.lock();
        let releases = state.coordinator.role_ended(index, end);
        state.deliver(releases);
    }

    /// Marks role `index` gone by `stop` (crash or shutdown), unless it is gone already.
    pub(crate) fn mark_gone(&self, index: usize, stop: Stop) -> Result<(), ConductorError> {
        let mut state = self.barriers.lock();
        if state.coordinator.is_gone(index) {
            return Err(ConductorError::Gone {
                role: self.roles[index].clone(),
            });
        }
        let end = match stop {
            Stop::Crash => RoleEnd::Crashed,
            Stop::Shutdown => RoleEnd::ShutDown,
        };
        let releases = state.coordinator.role_ended(index, end);
        state.deliver(releases);
        Ok(())
    }

    /// Moves role `index` to `phase`; the first move past `Running` counts its body ended.
    pub(crate) fn set_phase(&self, index: usize, phase: Phase) {
        let previous = self.controls[index].phase.send_replace(phase);
        if previous == Phase::Running && phase > Phase::Running {
            self.ended.send_modify(|n| *n += 1);
        }
    }

    /// Waits until role `index` reached `phase`.
    pub(crate) async fn await_phase(&self, index: usize, phase: Phase) {
        let mut rx = self.controls[index].phase.subscribe();
        let _ = rx.wait_for(|p| *p >= phase).await;
    }

    /// Waits until every role's body has ended.
    pub(crate) async fn await_all_bodies_ended(&self) {
        let n = self.roles.len();
        let mut rx = self.ended.subscribe();
        let _ = rx.wait_for(|ended| *ended >= n).await;
    }

    /// Publishes `path` under `key`.
    pub(crate) fn share(&self, key: &str, path: String) {
        self.refs.send_modify(|refs| {
            refs.insert(key.to_owned(), path);
        });
    }

    /// Waits up to `timeout` for a path published under `key`.
    pub(crate) async fn shared(&self, key: &str, timeout: Duration) -> Option<String> {
        let mut rx = self.refs.subscribe();
        let refs = tokio::time::timeout(timeout, rx.wait_for(|refs| refs.contains_key(key)))
            .await
            .ok()?
            .ok()?;
        refs.get(key).cloned()
    }
}

/// SplitMix64: spreads one seed into independent per-node seeds.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
