//! SQLite runner storage: one database file, safe across the processes of one host.
//!
//! Every operation is one transaction; those that write start with `BEGIN IMMEDIATE`, so they
//! take SQLite's write lock up front and never fail half-way on a lock upgrade. A busy
//! database is waited for up to the operation timeout
//! ([`RunnerStorageConfig::operation_timeout`], SQLite's busy timeout). The journal runs in WAL mode so
//! readers do not block the writer. Blocking calls run on tokio's blocking pool.
//!
//! A call whose future is dropped before its work began (the caller timed out, for instance
//! while the database was busy) does nothing afterwards: it cannot run after a later call of
//! the same process and undo it, such as a given-up lock release deleting the lock a newer
//! acquire of the same runner took.
//!
//! Lock expiry uses the database's clock: SQLite's `julianday('now')`, which is the host's
//! wall clock, the same for every process on the host. A test-only offset
//! ([`SqliteRunnerStorage::advance_clock`]) shifts it so expiry can be tested without waiting.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{
    BoxFuture, EncodedAdapter, EncodedLock, EncodedRunnerStorage, RunnerStorageConfig,
    RunnerStorageError,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS actor_runners (
    address     TEXT PRIMARY KEY,
    runner      TEXT NOT NULL,
    healthy     INTEGER NOT NULL,
    machine_id  INTEGER NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS actor_shard_locks (
    shard_id       TEXT PRIMARY KEY,
    holder         TEXT NOT NULL,
    expires_at_ms  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS actor_shard_locks_holder ON actor_shard_locks (holder);
";

/// The database clock in Unix milliseconds.
const NOW_MS: &str = "SELECT CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER)";

/// Marks a call abandoned when its future is dropped (set after completion too, when nobody
/// reads it any more).
struct AbandonOnDrop(Arc<AtomicBool>);

impl Drop for AbandonOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// SQLite-backed [`EncodedRunnerStorage`]; wrap it with [`SqliteRunnerStorage::into_typed`].
///
/// Cloning shares the connection.
#[derive(Debug, Clone)]
pub struct SqliteRunnerStorage {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    connection: Mutex<Connection>,
    lock_ttl_ms: i64,
    operation_timeout: Duration,
    clock_offset_ms: AtomicI64,
}

impl SqliteRunnerStorage {
    /// Opens (creating if needed) the database at `path` and its tables.
    ///
    /// # Errors
    ///
    /// [`RunnerStorageError::InvalidConfig`] for invalid settings, [`RunnerStorageError::Sqlite`]
    /// when the file cannot be opened or the schema not created.
    pub async fn open(
        path: impl AsRef<Path>,
        config: RunnerStorageConfig,
    ) -> Result<Self, RunnerStorageError> {
        config.validate()?;
        let path = path.as_ref().to_owned();
        let opened = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || -> Result<Connection, rusqlite::Error> {
                let mut connection = Connection::open(&path)?;
                connection.busy_timeout(config.operation_timeout)?;
                // WAL lets readers run beside the one writer; NORMAL sync is durable across
                // process crashes (not power loss), which is what a lock table needs.
                connection.pragma_update(None, "journal_mode", "WAL")?;
                connection.pragma_update(None, "synchronous", "NORMAL")?;
                let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
                tx.execute_batch(SCHEMA)?;
                tx.commit()?;
                Ok(connection)
            })
            .await
        };
        let connection = opened.map_err(join_error)??;
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                connection: Mutex::new(connection),
                lock_ttl_ms: config.lock_ttl_ms(),
                operation_timeout: config.operation_timeout,
                clock_offset_ms: AtomicI64::new(0),
            }),
        })
    }

    /// Wraps this backend into a typed [`RunnerStorage`](super::RunnerStorage).
    pub fn into_typed(self) -> EncodedAdapter<Self> {
        EncodedAdapter::new(self)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Test hook: moves this handle's view of the database clock forward by `by`, so locks
    /// expire without waiting. Only this handle (and its clones) sees the shift.
    pub fn advance_clock(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.inner.clock_offset_ms.fetch_add(ms, Ordering::SeqCst);
    }

    /// Runs `work` in one transaction on the blocking pool, with the database time in ms.
    async fn run<T, F>(
        &self,
        operation: &'static str,
        write: bool,
        work: F,
    ) -> Result<T, RunnerStorageError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>, i64, i64) -> Result<T, rusqlite::Error>
            + Send
            + 'static,
    {
        let inner = Arc::clone(&self.inner);
        // Set if the caller stops waiting (drops this future) before the work ran. The
        // blocking task then does nothing: without this, a call the caller gave up on (a
        // lock release cut short by the caller's timeout) could run later, after a newer call
        // of the same caller (its acquire of the same shard), and undo it. The flag is read
        // under the connection mutex with the transaction begun, so a call that passed it
        // holds the mutex until it commits and every later call of this process runs after it.
        let abandoned = Arc::new(AtomicBool::new(false));
        let _abandon_on_drop = AbandonOnDrop(Arc::clone(&abandoned));
        let done = tokio::task::spawn_blocking(move || -> Result<T, rusqlite::Error> {
            let mut connection = inner.connection.lock();
            let behavior = if write {
                TransactionBehavior::Immediate
            } else {
                TransactionBehavior::Deferred
            };
            let tx = connection.transaction_with_behavior(behavior)?;
            if abandoned.load(Ordering::SeqCst) {
                // dropping `tx` rolls it back; nobody waits for the result
                return Err(rusqlite::Error::QueryReturnedNoRows);
            }
            let now: i64 = tx.query_row(NOW_MS, [], |row| row.get(0))?;
            let now = now.saturating_add(inner.clock_offset_ms.load(Ordering::SeqCst));
            let value = work(&tx, now, inner.lock_ttl_ms)?;
            tx.commit()?;
            Ok(value)
        })
        .await;
        match done.map_err(join_error)? {
            Ok(value) => Ok(value),
            // SQLite gave up waiting for another connection's write lock.
            Err(rusqlite::Error::SqliteFailure(error, _))
                if error.code == rusqlite::ErrorCode::DatabaseBusy =>
            {
                Err(RunnerStorageError::Timeout {
                    backend: "sqlite",
                    operation,
                    after: self.inner.operation_timeout,
                })
            }
            Err(error) => Err(error.into()),
        }
    }
}

fn join_error(error: tokio::task::JoinError) -> RunnerStorageError {
    RunnerStorageError::Backend {
        backend: "sqlite",
        message: format!("blocking task failed: {error}"),
    }
}

impl EncodedRunnerStorage for SqliteRunnerStorage {
    fn get_runners(&self) -> BoxFuture<'_, Result<Vec<(String, bool)>, RunnerStorageError>> {
        Box::pin(self.run("get_runners", false, |tx, _, _| {
            let mut statement =
                tx.prepare_cached("SELECT runner, healthy FROM actor_runners ORDER BY address")?;
            let rows = statement.query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, bool>(1)?))
            })?;
            rows.collect()
        }))
    }

    fn register<'a>(
        &'a self,
        address: &'a str,
        runner: &'a str,
        healthy: bool,
    ) -> BoxFuture<'a, Result<i64, RunnerStorageError>> {
        let (address, runner) = (address.to_owned(), runner.to_owned());
        Box::pin(self.run("register", true, move |tx, _, _| {
            let existing: Option<i64> = tx
                .query_row("SELECT machine_id FROM actor_runners WHERE address = ?1", [&address], |row| row.get(0))
                .optional()?;
            let machine_id = match existing {
                Some(id) => id,
                None => tx.query_row("SELECT COALESCE(MAX(machine_id), 0) + 1 FROM actor_runners", [], |row| row.get(0))?,
            };
            tx.execute(
                "INSERT INTO actor_runners (address, runner, healthy, machine_id) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (address) DO UPDATE SET runner = excluded.runner, healthy = excluded.healthy",
                params![address, runner, healthy, machine_id],
            )?;
            Ok(machine_id)
        }))
    }

    fn unregister<'a>(&'a self, address: &'a str) -> BoxFuture<'a, Result<(), RunnerStorageError>> {
        let address = address.to_owned();
        Box::pin(self.run("unregister", true, move |tx, _, _| {
            tx.execute("DELETE FROM actor_runners WHERE address = ?1", [&address])?;
            Ok(())
        }))
    }

    fn set_runner_health<'a>(
        &'a self,
        address: &'a str,
        healthy: bool,
    ) -> BoxFuture<'a, Result<(), RunnerStorageError>> {
        let address = address.to_owned();
        Box::pin(self.run("set_runner_health", true, move |tx, _, _| {
            tx.execute(
                "UPDATE actor_runners SET healthy = ?2 WHERE address = ?1",
                params![address, healthy],
            )?;
            Ok(())
        }))
    }

    fn acquire<'a>(
        &'a self,
        runner_id: &'a str,
        shard_ids: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<String>, RunnerStorageError>> {
        let (holder, shards) = (runner_id.to_owned(), shard_ids.to_vec());
        Box::pin(self.run("acquire", true, move |tx, now, ttl| {
            let mut statement = tx.prepare_cached(
                "INSERT INTO actor_shard_locks (shard_id, holder, expires_at_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (shard_id) DO UPDATE
                     SET holder = excluded.holder, expires_at_ms = excluded.expires_at_ms
                     WHERE actor_shard_locks.holder = excluded.holder OR actor_shard_locks.expires_at_ms <= ?4
                 RETURNING shard_id",
            )?;
            let mut got = Vec::new();
            for shard in shards {
                let taken: Option<String> =
                    statement.query_row(params![shard, holder, now.saturating_add(ttl), now], |row| row.get(0)).optional()?;
                got.extend(taken);
            }
            Ok(got)
        }))
    }

    fn refresh<'a>(
        &'a self,
        runner_id: &'a str,
        shard_ids: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<String>, RunnerStorageError>> {
        let (holder, shards) = (runner_id.to_owned(), shard_ids.to_vec());
        Box::pin(self.run("refresh", true, move |tx, now, ttl| {
            let mut statement =
                tx.prepare_cached("UPDATE actor_shard_locks SET expires_at_ms = ?3 WHERE shard_id = ?1 AND holder = ?2")?;
            let mut held = Vec::new();
            for shard in shards {
                if statement.execute(params![shard, holder, now.saturating_add(ttl)])? == 1 {
                    held.push(shard);
                }
            }
            Ok(held)
        }))
    }

    fn release<'a>(
        &'a self,
        runner_id: &'a str,
        shard_id: &'a str,
    ) -> BoxFuture<'a, Result<(), RunnerStorageError>> {
        let (holder, shard) = (runner_id.to_owned(), shard_id.to_owned());
        Box::pin(self.run("release", true, move |tx, _, _| {
            tx.execute(
                "DELETE FROM actor_shard_locks WHERE shard_id = ?1 AND holder = ?2",
                params![shard, holder],
            )?;
            Ok(())
        }))
    }

    fn release_all<'a>(
        &'a self,
        runner_id: &'a str,
    ) -> BoxFuture<'a, Result<(), RunnerStorageError>> {
        let holder = runner_id.to_owned();
        Box::pin(self.run("release_all", true, move |tx, _, _| {
            tx.execute("DELETE FROM actor_shard_locks WHERE holder = ?1", [&holder])?;
            Ok(())
        }))
    }

    fn list_locks(&self) -> BoxFuture<'_, Result<Vec<EncodedLock>, RunnerStorageError>> {
        Box::pin(self.run("list_locks", false, |tx, now, _| {
            let mut statement = tx.prepare_cached(
                "SELECT shard_id, holder, expires_at_ms - ?1 FROM actor_shard_locks
                 WHERE expires_at_ms > ?1 ORDER BY shard_id",
            )?;
            let rows = statement.query_map([now], |row| {
                let left: i64 = row.get(2)?;
                Ok(EncodedLock {
                    shard_id: row.get(0)?,
                    holder: row.get(1)?,
                    expires_in: Duration::from_millis(u64::try_from(left).unwrap_or(0)),
                })
            })?;
            rows.collect()
        }))
    }
}
