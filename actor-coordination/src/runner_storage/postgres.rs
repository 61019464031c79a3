//! PostgreSQL runner storage (tokio-postgres): every operation is a single statement, atomic on
//! the server, with lock expiry on the server's clock (`clock_timestamp()`).
//!
//! Acquire is one `INSERT .. ON CONFLICT DO UPDATE .. WHERE` over all asked shards: a row is
//! taken only if it is free, expired, or already this runner incarnation's, so two runners
//! racing for a shard cannot both win and a refresh racing an acquire cannot drop a shard. A
//! statement that loses a deadlock or serialization race is retried; every operation (and
//! connecting) is bounded by [`RunnerStorageConfig::operation_timeout`]. A test-only offset
//! ([`PostgresRunnerStorage::advance_clock`]) shifts this handle's view of the server clock.
//!
//! Every call goes over the one connection of this handle, and the server runs a
//! connection's statements in the order they were sent: a call the caller gave up on (its
//! future dropped) either reached the server before any later call of this handle, and ran
//! first, or never runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

use super::{
    BoxFuture, EncodedAdapter, EncodedLock, EncodedRunnerStorage, RunnerStorageConfig,
    RunnerStorageError,
};

/// How many times a statement that lost a deadlock, serialization or unique-key race is retried.
///
/// Such races resolve on the next attempt (the other statement has committed by then); a
/// handful of retries covers heavy contention without hiding a real, persistent error.
pub const MAX_RACE_RETRIES: usize = 8;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS actor_runners (
    address     TEXT PRIMARY KEY,
    runner      TEXT NOT NULL,
    healthy     BOOLEAN NOT NULL,
    machine_id  BIGINT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS actor_shard_locks (
    shard_id       TEXT PRIMARY KEY,
    holder         TEXT NOT NULL,
    expires_at_ms  BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS actor_shard_locks_holder ON actor_shard_locks (holder);
";

/// Key of the advisory lock that serializes schema creation between processes.
const SCHEMA_LOCK_KEY: i64 = 0x6163_746f_725f_7273; // "actor_rs"

/// The server clock in Unix milliseconds, shifted by the test offset (`$1`).
macro_rules! now_ms {
    () => {
        "(SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::bigint + $1::bigint AS ms)"
    };
}

/// PostgreSQL-backed [`EncodedRunnerStorage`]; wrap it with
/// [`PostgresRunnerStorage::into_typed`].
///
/// Cloning shares the connection (tokio-postgres pipelines concurrent statements on it).
#[derive(Debug, Clone)]
pub struct PostgresRunnerStorage {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: Client,
    connection: JoinHandle<()>,
    lock_ttl_ms: i64,
    operation_timeout: Duration,
    clock_offset_ms: AtomicI64,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl PostgresRunnerStorage {
    /// Connects to `url` (a libpq-style connection string or `postgres://` URL, no TLS) and
    /// creates the tables if missing.
    ///
    /// # Errors
    ///
    /// [`RunnerStorageError::InvalidConfig`] for invalid settings, [`RunnerStorageError::Postgres`]
    /// when the server refuses or the schema cannot be created, [`RunnerStorageError::Timeout`]
    /// when connecting and creating the schema take longer than the operation timeout.
    pub async fn connect(
        url: &str,
        config: RunnerStorageConfig,
    ) -> Result<Self, RunnerStorageError> {
        config.validate()?;
        let timeout = config.operation_timeout;
        let connected = tokio::time::timeout(timeout, async {
            let (mut client, connection) = tokio_postgres::connect(url, NoTls).await?;
            let connection = tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::warn!(%error, "postgres runner storage connection ended");
                }
            });
            let schema = async {
                let tx = client.transaction().await?;
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK_KEY])
                    .await?;
                tx.batch_execute(SCHEMA).await?;
                tx.commit().await
            };
            match schema.await {
                Ok(()) => Ok((client, connection)),
                Err(error) => {
                    connection.abort();
                    Err(error)
                }
            }
        })
        .await;
        let (client, connection) = match connected {
            Ok(result) => result?,
            Err(_) => {
                return Err(RunnerStorageError::Timeout {
                    backend: "postgres",
                    operation: "connect",
                    after: timeout,
                });
            }
        };
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                connection,
                lock_ttl_ms: config.lock_ttl_ms(),
                operation_timeout: timeout,
                clock_offset_ms: AtomicI64::new(0),
            }),
        })
    }

    /// Wraps this backend into a typed [`RunnerStorage`](super::RunnerStorage).
    pub fn into_typed(self) -> EncodedAdapter<Self> {
        EncodedAdapter::new(self)
    }

    /// Test hook: moves this handle's view of the server clock forward by `by`, so locks
    /// expire without waiting. Only this handle (and its clones) sees the shift.
    pub fn advance_clock(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.inner.clock_offset_ms.fetch_add(ms, Ordering::SeqCst);
    }

    /// Bounds `operation` by the operation timeout.
    ///
    /// A statement cut short may still complete on the server; for an acquire that leaves a
    /// lock the caller does not know it holds, which expires after the lock ttl.
    fn bounded<'a, T: Send + 'a>(
        &'a self,
        operation: &'static str,
        work: impl std::future::Future<Output = Result<T, RunnerStorageError>> + Send + 'a,
    ) -> BoxFuture<'a, Result<T, RunnerStorageError>> {
        let after = self.inner.operation_timeout;
        Box::pin(async move {
            match tokio::time::timeout(after, work).await {
                Ok(result) => result,
                Err(_) => Err(RunnerStorageError::Timeout {
                    backend: "postgres",
                    operation,
                    after,
                }),
            }
        })
    }

    fn offset(&self) -> i64 {
        self.inner.clock_offset_ms.load(Ordering::SeqCst)
    }
}

/// Whether an error is a lost race that a retry resolves.
fn is_race(error: &tokio_postgres::Error) -> bool {
    matches!(
        error.code(),
        Some(code) if *code == SqlState::T_R_DEADLOCK_DETECTED
            || *code == SqlState::T_R_SERIALIZATION_FAILURE
            || *code == SqlState::UNIQUE_VIOLATION
    )
}

/// Runs `attempt` until it succeeds, fails with something other than a lost race, or
/// [`MAX_RACE_RETRIES`] is used up.
async fn retrying<T, F, Fut>(mut attempt: F) -> Result<T, RunnerStorageError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, tokio_postgres::Error>>,
{
    let mut tries = 0;
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(error) if is_race(&error) && tries < MAX_RACE_RETRIES => {
                tries += 1;
                tokio::task::yield_now().await;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

impl EncodedRunnerStorage for PostgresRunnerStorage {
    fn get_runners(&self) -> BoxFuture<'_, Result<Vec<(String, bool)>, RunnerStorageError>> {
        self.bounded("get_runners", async move {
            let rows = self
                .inner
                .client
                .query(
                    "SELECT runner, healthy FROM actor_runners ORDER BY address",
                    &[],
                )
                .await?;
            rows.iter()
                .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
                .collect()
        })
    }

    fn register<'a>(
        &'a self,
        address: &'a str,
        runner: &'a str,
        healthy: bool,
    ) -> BoxFuture<'a, Result<i64, RunnerStorageError>> {
        self.bounded("register", async move {
            // Two new runners may compute the same next id; the loser hits the UNIQUE
            // constraint and retries with the winner's row visible.
            let row = retrying(|| async {
                self.inner.client.query_one(
                    "INSERT INTO actor_runners (address, runner, healthy, machine_id)
                     VALUES ($1, $2, $3, (SELECT COALESCE(MAX(machine_id), 0) + 1 FROM actor_runners))
                     ON CONFLICT (address) DO UPDATE SET runner = EXCLUDED.runner, healthy = EXCLUDED.healthy
                     RETURNING machine_id",
                    &[&address, &runner, &healthy],
                ).await
            })
            .await?;
            Ok(row.try_get(0)?)
        })
    }

    fn unregister<'a>(&'a self, address: &'a str) -> BoxFuture<'a, Result<(), RunnerStorageError>> {
        self.bounded("unregister", async move {
            self.inner
                .client
                .execute("DELETE FROM actor_runners WHERE address = $1", &[&address])
                .await?;
            Ok(())
        })
    }

    fn set_runner_health<'a>(
        &'a self,
        address: &'a str,
        healthy: bool,
    ) -> BoxFuture<'a, Result<(), RunnerStorageError>> {
        self.bounded("set_runner_health", async move {
            self.inner
                .client
                .execute(
                    "UPDATE actor_runners SET healthy = $2 WHERE address = $1",
                    &[&address, &healthy],
                )
                .await?;
            Ok(())
        })
    }

    fn acquire<'a>(
        &'a self,
        runner_id: &'a str,
        shard_ids: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<String>, RunnerStorageError>> {
        self.bounded("acquire", async move {
            // Rows are locked in shard order, so concurrent acquires cannot deadlock each other.
            let mut shards = shard_ids.to_vec();
            shards.sort();
            let offset = self.offset();
            let rows = retrying(|| async {
                self.inner.client.query(
                    concat!(
                        "WITH now AS ",
                        now_ms!(),
                        " INSERT INTO actor_shard_locks AS l (shard_id, holder, expires_at_ms)
                          SELECT s, $2, (SELECT ms FROM now) + $3::bigint
                          FROM unnest($4::text[]) WITH ORDINALITY AS t(s, i) ORDER BY i
                          ON CONFLICT (shard_id) DO UPDATE
                              SET holder = EXCLUDED.holder, expires_at_ms = EXCLUDED.expires_at_ms
                              WHERE l.holder = EXCLUDED.holder OR l.expires_at_ms <= (SELECT ms FROM now)
                          RETURNING shard_id"
                    ),
                    &[&offset, &runner_id, &self.inner.lock_ttl_ms, &shards],
                ).await
            })
            .await?;
            rows.iter().map(|row| Ok(row.try_get(0)?)).collect()
        })
    }

    fn refresh<'a>(
        &'a self,
        runner_id: &'a str,
        shard_ids: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<String>, RunnerStorageError>> {
        self.bounded("refresh", async move {
            let offset = self.offset();
            let rows = retrying(|| async {
                self.inner.client.query(
                    concat!(
                        "WITH now AS ",
                        now_ms!(),
                        " UPDATE actor_shard_locks SET expires_at_ms = (SELECT ms FROM now) + $3::bigint
                          WHERE holder = $2 AND shard_id = ANY($4::text[])
                          RETURNING shard_id"
                    ),
                    &[&offset, &runner_id, &self.inner.lock_ttl_ms, &shard_ids],
                ).await
            })
            .await?;
            rows.iter().map(|row| Ok(row.try_get(0)?)).collect()
        })
    }

    fn release<'a>(
        &'a self,
        runner_id: &'a str,
        shard_id: &'a str,
    ) -> BoxFuture<'a, Result<(), RunnerStorageError>> {
        self.bounded("release", async move {
            self.inner
                .client
                .execute(
                    "DELETE FROM actor_shard_locks WHERE shard_id = $1 AND holder = $2",
                    &[&shard_id, &runner_id],
                )
                .await?;
            Ok(())
        })
    }

    fn release_all<'a>(
        &'a self,
        runner_id: &'a str,
    ) -> BoxFuture<'a, Result<(), RunnerStorageError>> {
        self.bounded("release_all", async move {
            self.inner
                .client
                .execute(
                    "DELETE FROM actor_shard_locks WHERE holder = $1",
                    &[&runner_id],
                )
                .await?;
            Ok(())
        })
    }

    fn list_locks(&self) -> BoxFuture<'_, Result<Vec<EncodedLock>, RunnerStorageError>> {
        self.bounded("list_locks", async move {
            let offset = self.offset();
            let rows = self
                .inner
                .client
                .query(
                    concat!(
                        "WITH now AS ",
                        now_ms!(),
                        " SELECT shard_id, holder, expires_at_ms - (SELECT ms FROM now) FROM actor_shard_locks
                          WHERE expires_at_ms > (SELECT ms FROM now) ORDER BY shard_id"
                    ),
                    &[&offset],
                )
                .await?;
            rows.iter()
                .map(|row| {
                    let left: i64 = row.try_get(2)?;
                    Ok(EncodedLock {
                        shard_id: row.try_get(0)?,
                        holder: row.try_get(1)?,
                        expires_in: Duration::from_millis(u64::try_from(left).unwrap_or(0)),
                    })
                })
                .collect()
        })
    }
}
