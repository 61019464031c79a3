//! In-memory runner storage for tests and single-process use; expiry on the `tokio::time`
//! clock, so a paused runtime tests expiry in virtual time.

use std::collections::BTreeMap;

use parking_lot::Mutex;
use tokio::time::Instant;

use super::{
    BoxFuture, MachineId, Runner, RunnerAddress, RunnerId, RunnerStorage, RunnerStorageConfig,
    RunnerStorageError, ShardId, ShardLock, dedup_in_order,
};

/// Runner storage kept in process memory.
///
/// # Examples
///
/// ```
/// use actor_coordination::runner_storage::{MemoryRunnerStorage, RunnerStorageConfig};
/// use std::time::Duration;
///
/// let storage = MemoryRunnerStorage::new(RunnerStorageConfig::default().with_lock_ttl(Duration::from_secs(5)))
///     .expect("valid settings");
/// # let _ = storage;
/// ```
#[derive(Debug)]
pub struct MemoryRunnerStorage {
    config: RunnerStorageConfig,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    runners: BTreeMap<RunnerAddress, Registration>,
    locks: BTreeMap<ShardId, (RunnerId, Instant)>,
}

#[derive(Debug)]
struct Registration {
    runner: Runner,
    healthy: bool,
    machine_id: MachineId,
}

impl Default for MemoryRunnerStorage {
    fn default() -> Self {
        Self {
            config: RunnerStorageConfig::default(),
            state: Mutex::new(State::default()),
        }
    }
}

impl MemoryRunnerStorage {
    /// Creates an empty storage.
    ///
    /// # Errors
    ///
    /// [`RunnerStorageError::InvalidConfig`] for invalid settings.
    pub fn new(config: RunnerStorageConfig) -> Result<Self, RunnerStorageError> {
        config.validate()?;
        Ok(Self {
            config,
            state: Mutex::new(State::default()),
        })
    }
}

impl State {
    fn register(
        &mut self,
        runner: &Runner,
        healthy: bool,
    ) -> Result<MachineId, RunnerStorageError> {
        let address = runner.address().clone();
        let machine_id =
            match self.runners.get(&address) {
                Some(existing) => existing.machine_id,
                None => {
                    let highest = self
                        .runners
                        .values()
                        .map(|r| r.machine_id.0)
                        .max()
                        .unwrap_or(0);
                    MachineId(highest.checked_add(1).ok_or_else(|| {
                        RunnerStorageError::Backend {
                            backend: "memory",
                            message: "machine ids exhausted".to_owned(),
                        }
                    })?)
                }
            };
        self.runners.insert(
            address,
            Registration {
                runner: runner.clone(),
                healthy,
                machine_id,
            },
        );
        Ok(machine_id)
    }

    fn acquire(
        &mut self,
        runner: &RunnerId,
        shards: &[ShardId],
        now: Instant,
        expires: Instant,
    ) -> Vec<ShardId> {
        let mut got = Vec::new();
        for shard in dedup_in_order(shards) {
            let free = match self.locks.get(&shard) {
                None => true,
                Some((holder, until)) => holder == runner || *until <= now,
            };
            if free {
                self.locks.insert(shard.clone(), (runner.clone(), expires));
                got.push(shard);
            }
        }
        got
    }

    fn refresh(&mut self, runner: &RunnerId, shards: &[ShardId], expires: Instant) -> Vec<ShardId> {
        let mut held = Vec::new();
        for shard in dedup_in_order(shards) {
            if let Some((holder, until)) = self.locks.get_mut(&shard)
                && holder == runner
            {
                *until = expires;
                held.push(shard);
            }
        }
        held
    }
}

impl RunnerStorage for MemoryRunnerStorage {
    fn register<'a>(
        &'a self,
        runner: &'a Runner,
        healthy: bool,
    ) -> BoxFuture<'a, Result<MachineId, RunnerStorageError>> {
        Box::pin(async move { self.state.lock().register(runner, healthy) })
    }

    fn unregister<'a>(
        &'a self,
        address: &'a RunnerAddress,
    ) -> BoxFuture<'a, Result<(), RunnerStorageError>> {
        Box::pin(async move {
            self.state.lock().runners.remove(address);
            Ok(())
        })
    }

    fn get_runners(&self) -> BoxFuture<'_, Result<Vec<(Runner, bool)>, RunnerStorageError>> {
        Box::pin(async move {
            Ok(self
                .state
                .lock()
                .runners
                .values()
                .map(|r| (r.runner.clone(), r.healthy))
                .collect())
        })
    }

    fn set_runner_health<'a>(
        &'a self,
        address: &'a RunnerAddress,
        healthy: bool,
    ) -> BoxFuture<'a, Result<(), RunnerStorageError>> {
        Box::pin(async move {
            if let Some(registration) = self.state.lock().runners.get_mut(address) {
                registration.healthy = healthy;
            }
            Ok(())
        })
    }

    fn acquire<'a>(
        &'a self,
        runner: &'a RunnerId,
        shards: &'a [ShardId],
    ) -> BoxFuture<'a, Result<Vec<ShardId>, RunnerStorageError>> {
        Box::pin(async move {
            let now = Instant::now();
            Ok(self
                .state
                .lock()
                .acquire(runner, shards, now, now + self.config.lock_ttl))
        })
    }

    fn refresh<'a>(
        &'a self,
        runner: &'a RunnerId,
        shards: &'a [ShardId],
    ) -> BoxFuture<'a, Result<Vec<ShardId>, RunnerStorageError>> {
        Box::pin(async move {
            let expires = Instant::now() + self.config.lock_ttl;
            Ok(self.state.lock().refresh(runner, shards, expires))
        })
    }

    fn release<'a>(
        &'a self,
        runner: &'a RunnerId,
        shard: &'a ShardId,
    ) -> BoxFuture<'a, Result<(), RunnerStorageError>> {
        Box::pin(async move {
            let mut state = self.state.lock();
            if state
                .locks
                .get(shard)
                .is_some_and(|(holder, _)| holder == runner)
            {
                state.locks.remove(shard);
            }
            Ok(())
        })
    }

    fn release_all<'a>(
        &'a self,
        runner: &'a RunnerId,
    ) -> BoxFuture<'a, Result<(), RunnerStorageError>> {
        Box::pin(async move {
            self.state
                .lock()
                .locks
                .retain(|_, (holder, _)| holder != runner);
            Ok(())
        })
    }

    fn list_locks(&self) -> BoxFuture<'_, Result<Vec<ShardLock>, RunnerStorageError>> {
        Box::pin(async move {
            let now = Instant::now();
            Ok(self
                .state
                .lock()
                .locks
                .iter()
                .filter(|(_, (_, until))| *until > now)
                .map(|(shard, (holder, until))| ShardLock {
                    shard: shard.clone(),
                    holder: holder.clone(),
                    expires_in: *until - now,
                })
                .collect())
        })
    }
}
