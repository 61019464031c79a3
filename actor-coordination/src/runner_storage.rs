//! Runner registration and shard-lock storage for cluster sharding.
//!
//! A [`RunnerStorage`] records which runners are registered (each gets a [`MachineId`]),
//! whether they are healthy, and which runner incarnation holds the lock on which shard.
//! Sharding treats the lock table ([`RunnerStorage::list_locks`]) as the truth of where a shard
//! runs: a shard is only active on the runner that holds its lock.
//!
//! Lock rules, the same in every backend:
//! * Locks belong to a [`RunnerId`] (address **and** incarnation): a runner restarted at the
//!   same address is a new incarnation and does not inherit its old locks; they stay with the
//!   old incarnation until they expire or are released.
//! * A lock expires [`RunnerStorageConfig::lock_ttl`] after its last acquire or refresh, on the
//!   storage's clock (the database's clock for SQL backends). Any runner may take an expired
//!   lock; the holder may refresh its lock even after expiry as long as nobody took it.
//! * [`RunnerStorage::acquire`] returns exactly the shards this call holds afterwards (those it
//!   already held are refreshed and returned too), never others.
//! * Each operation is atomic per call, so an acquire racing a refresh by the same runner never
//!   drops a shard.
//!
//! Backends: [`MemoryRunnerStorage`] (one process, `tokio::time` clock), and behind features the
//! SQLite (`sqlite`, the embedded default, safe across processes on one host) and PostgreSQL
//! (`postgres`) backends. The SQL backends implement the string-encoded
//! [`EncodedRunnerStorage`] and become a `RunnerStorage` through [`EncodedAdapter`].
//!
//! # Examples
//!
//! ```
//! use std::sync::Arc;
//! use actor_coordination::runner_storage::{
//!     MemoryRunnerStorage, Runner, RunnerAddress, RunnerStorage, ShardId,
//! };
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), actor_coordination::runner_storage::RunnerStorageError> {
//! let storage: Arc<dyn RunnerStorage> = Arc::new(MemoryRunnerStorage::default());
//! let runner = Runner::new(RunnerAddress::new("127.0.0.1", 9000)?, 42);
//! let machine_id = storage.register(&runner, true).await?;
//!
//! let shards = [ShardId::default_group(1), ShardId::default_group(2)];
//! let got = storage.acquire(&runner.id, &shards).await?;
//! assert_eq!(got, shards);
//!
//! // A restarted runner at the same address is a new incarnation: it gets nothing.
//! let restarted = Runner::new(runner.address().clone(), 43);
//! assert_eq!(storage.register(&restarted, true).await?, machine_id);
//! assert!(storage.acquire(&restarted.id, &shards).await?.is_empty());
//! # Ok(())
//! # }
//! ```

mod encoded;
mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;
mod types;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub use encoded::{EncodedAdapter, EncodedLock, EncodedRunnerStorage};
pub use memory::MemoryRunnerStorage;
pub use types::{
    DEFAULT_SHARD_GROUP, MAX_NAME_LEN, MachineId, Runner, RunnerAddress, RunnerId, ShardId,
    ShardLock,
};

/// A boxed, sendable future: what the object-safe storage traits return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Default time a shard lock stays valid after its last acquire or refresh.
///
/// A runner refreshes its locks well within this (a third is a good interval). Longer rides out
/// longer storage or network stalls; shorter moves shards of a crashed runner sooner.
pub const DEFAULT_SHARD_LOCK_TTL: Duration = Duration::from_secs(30);

/// Errors of runner storage.
#[derive(Debug, thiserror::Error)]
pub enum RunnerStorageError {
    /// A value is invalid or a stored string does not decode.
    #[error("invalid {what} {value:?}: {reason}")]
    Invalid {
        /// What kind of value.
        what: &'static str,
        /// The value (cut to 80 characters).
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A setting is invalid.
    #[error("invalid runner storage setting {field}: {reason}")]
    InvalidConfig {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A database operation did not finish within the operation timeout.
    #[error("{backend} runner storage: {operation} did not finish within {after:?}")]
    Timeout {
        /// Which backend.
        backend: &'static str,
        /// Which operation.
        operation: &'static str,
        /// The timeout that passed.
        after: Duration,
    },
    /// The backend failed in a way that has no more specific variant.
    #[error("{backend} runner storage: {message}")]
    Backend {
        /// Which backend.
        backend: &'static str,
        /// What happened.
        message: String,
    },
    /// SQLite reported an error.
    #[cfg(feature = "sqlite")]
    #[error("sqlite runner storage: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL reported an error.
    #[cfg(feature = "postgres")]
    #[error("postgres runner storage: {0}")]
    Postgres(#[from] tokio_postgres::Error),
}

/// Settings shared by all backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunnerStorageConfig {
    /// How long a shard lock stays valid after its last acquire or refresh.
    pub lock_ttl: Duration,
    /// Longest a single operation may take in a database backend (connecting included), after
    /// which it fails with [`RunnerStorageError::Timeout`]. The in-memory store ignores it.
    pub operation_timeout: Duration,
}

/// Default bound on one database operation (SQLite: how long a busy database is waited for).
///
/// Operations touch a handful of rows, so taking long means the database is unreachable,
/// stalled or contended; failing lets the caller retry or fence. Too short turns ordinary
/// contention into errors. Keep it well below the lock ttl, so a runner learns of trouble
/// while its locks are still valid.
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(5);

impl Default for RunnerStorageConfig {
    fn default() -> Self {
        Self {
            lock_ttl: DEFAULT_SHARD_LOCK_TTL,
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
        }
    }
}

impl RunnerStorageConfig {
    /// Sets the lock ttl.
    pub fn with_lock_ttl(mut self, ttl: Duration) -> Self {
        self.lock_ttl = ttl;
        self
    }

    /// Sets the bound on one database operation.
    pub fn with_operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// [`RunnerStorageError::InvalidConfig`] when the lock ttl is below a millisecond (the SQL
    /// backends count in milliseconds) or above a year, or the operation timeout is zero.
    pub fn validate(&self) -> Result<(), RunnerStorageError> {
        if self.operation_timeout.is_zero() {
            return Err(RunnerStorageError::InvalidConfig {
                field: "operation_timeout",
                reason: "must be above zero".to_owned(),
            });
        }
        if self.lock_ttl < Duration::from_millis(1)
            || self.lock_ttl > Duration::from_secs(365 * 86_400)
        {
            return Err(RunnerStorageError::InvalidConfig {
                field: "lock_ttl",
                reason: format!("{:?} is outside 1 ms ..= 365 days", self.lock_ttl),
            });
        }
        Ok(())
    }

    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn lock_ttl_ms(&self) -> i64 {
        i64::try_from(self.lock_ttl.as_millis()).unwrap_or(i64::MAX)
    }
}

/// Storage of runner registrations and shard locks, used as `Arc<dyn RunnerStorage>`.
///
/// Every method is one atomic step in the backend. Results are in a stable order: runners by
/// address, locks by shard, acquired and refreshed shards in the order asked (duplicates
/// removed).
///
/// A call whose future the caller dropped (it timed out) must never take effect after a
/// later call of the same caller: a given-up `release` that ran after the same runner's next
/// `acquire` of the shard would delete the new lock. The SQLite backend skips such a call
/// unless it had already begun (then it finishes before any later call); the Postgres backend
/// sends every call over one connection, which the server runs in order.
pub trait RunnerStorage: Send + Sync + 'static {
    /// Registers (or re-registers) a runner and returns its machine id.
    ///
    /// Registration is per address: a new incarnation replaces the old one's entry and keeps
    /// the address's machine id. Locks are not affected.
    ///
    /// # Errors
    ///
    /// Backend errors, or [`RunnerStorageError::Invalid`] for a runner that cannot be encoded.
    fn register<'a>(
        &'a self,
        runner: &'a Runner,
        healthy: bool,
    ) -> BoxFuture<'a, Result<MachineId, RunnerStorageError>>;

    /// Removes the registration at `address` (whatever its incarnation). Locks are not affected.
    ///
    /// # Errors
    ///
    /// Backend errors.
    fn unregister<'a>(
        &'a self,
        address: &'a RunnerAddress,
    ) -> BoxFuture<'a, Result<(), RunnerStorageError>>;

    /// Lists registered runners with their health, by address.
    ///
    /// # Errors
    ///
    /// Backend errors, or [`RunnerStorageError::Invalid`] when a stored runner does not decode.
    fn get_runners(&self) -> BoxFuture<'_, Result<Vec<(Runner, bool)>, RunnerStorageError>>;

    /// Sets the health flag of the runner registered at `address` (no-op if none).
    ///
    /// # Errors
    ///
    /// Backend errors.
    fn set_runner_health<'a>(
        &'a self,
        address: &'a RunnerAddress,
        healthy: bool,
    ) -> BoxFuture<'a, Result<(), RunnerStorageError>>;

    /// Takes the locks on `shards` that are free, expired or already held by `runner`, and
    /// returns exactly those (all now valid for a full ttl).
    ///
    /// # Errors
    ///
    /// Backend errors.
    fn acquire<'a>(
        &'a self,
        runner: &'a RunnerId,
        shards: &'a [ShardId],
    ) -> BoxFuture<'a, Result<Vec<ShardId>, RunnerStorageError>>;

    /// Extends the locks on `shards` that `runner` still holds and returns those.
    ///
    /// # Errors
    ///
    /// Backend errors.
    fn refresh<'a>(
        &'a self,
        runner: &'a RunnerId,
        shards: &'a [ShardId],
    ) -> BoxFuture<'a, Result<Vec<ShardId>, RunnerStorageError>>;

    /// Releases the lock on `shard` if `runner` holds it.
    ///
    /// # Errors
    ///
    /// Backend errors.
    fn release<'a>(
        &'a self,
        runner: &'a RunnerId,
        shard: &'a ShardId,
    ) -> BoxFuture<'a, Result<(), RunnerStorageError>>;

    /// Releases every lock `runner` holds.
    ///
    /// # Errors
    ///
    /// Backend errors.
    fn release_all<'a>(
        &'a self,
        runner: &'a RunnerId,
    ) -> BoxFuture<'a, Result<(), RunnerStorageError>>;

    /// Lists the live (unexpired) locks, by shard.
    ///
    /// # Errors
    ///
    /// Backend errors, or [`RunnerStorageError::Invalid`] when a stored lock does not decode.
    fn list_locks(&self) -> BoxFuture<'_, Result<Vec<ShardLock>, RunnerStorageError>>;
}

/// Removes duplicates while keeping the first occurrence's position.
pub(crate) fn dedup_in_order<T: Clone + Ord>(items: &[T]) -> Vec<T> {
    let mut seen = std::collections::BTreeSet::new();
    items
        .iter()
        .filter(|item| seen.insert((*item).clone()))
        .cloned()
        .collect()
}
