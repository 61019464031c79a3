//! PostgreSQL leases: one row per lease name, compare-and-set by the database server's clock.
//!
//! The table (created on connect if missing) is
//!
//! ```sql
//! CREATE TABLE actor_coordination_lease (
//!     name       text PRIMARY KEY,
//!     holder     text,                 -- LeaseOwner as `id#incarnation`; NULL when released
//!     token      bigint NOT NULL,      -- fencing token; survives release
//!     expires_at timestamptz NOT NULL  -- by the server's clock_timestamp()
//! );
//! ```
//!
//! Every statement is a single atomic `INSERT .. ON CONFLICT DO UPDATE .. WHERE` or
//! `UPDATE .. WHERE`; the row lock serialises concurrent acquirers. Expiry is computed by the
//! server's clock only, so the holders' clocks never have to agree with it or with each other.
//! The session's `statement_timeout` is the operation timeout, so a renewal the client gave up on
//! cannot be applied late by the server.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_postgres::{Client, Config, NoTls, Statement};

use super::handle::{Backend, LeaseHandle, RenewOutcome};
use super::holder::Holder;
use super::{
    Acquired, BoxFuture, FencingToken, Lease, LeaseError, LeaseOperation, LeaseSettings,
    LossReason, LostCallback,
};

/// Name of the lease table.
pub const LEASE_TABLE: &str = "actor_coordination_lease";

/// Backend settings of a [`PostgresLease`] beyond the [`LeaseSettings`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PostgresLeaseSettings {
    clock_offset: Duration,
}

impl PostgresLeaseSettings {
    /// Test only: adds `offset` to the server's clock in every statement of this lease, as if
    /// that much time had passed for it. Lets a test see a holding expire without waiting out
    /// its TTL. Default zero; never set it in production, it breaks the lease's safety.
    pub fn clock_offset(mut self, offset: Duration) -> Self {
        self.clock_offset = offset;
        self
    }
}

/// A lease stored in PostgreSQL (feature `postgres`).
///
/// One connection per handle; it is re-established on the next operation if it breaks. The
/// holder self-fences by its local deadline when the database stops answering. Take-overs are
/// observed at the next renewal (there is no push from the database); since a take-over needs
/// the holding to have expired by the server's clock, the holder's local deadline has passed by
/// then anyway. Two handles of the same owner share one holding: if one releases it, the other
/// notices at its next renewal.
///
/// # Examples
///
/// ```no_run
/// use actor_coordination::lease::{Lease, LeaseOwner, LeaseSettings, PostgresLease};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let settings = LeaseSettings::builder("singleton", LeaseOwner::for_node("10.0.0.5:2552", 42)).build()?;
/// let config: tokio_postgres::Config = "host=/run/postgresql dbname=cluster".parse()?;
/// let lease = PostgresLease::connect(settings, config).await?;
/// if lease.acquire().await?.is_held() {
///     // run the singleton while lease.check_lease() holds
/// }
/// # Ok(())
/// # }
/// ```
pub struct PostgresLease {
    core: LeaseHandle<PgBackend>,
}

/// One live connection with its prepared statements.
struct Connection {
    client: Client,
    acquire: Statement,
    renew: Statement,
    release: Statement,
    inspect: Statement,
}

/// The [`Backend`] of a PostgreSQL lease.
struct PgBackend {
    config: Config,
    name: String,
    holder_key: String,
    ttl_micros: f64,
    offset_micros: f64,
    statement_timeout_ms: u128,
    connection: tokio::sync::Mutex<Option<Arc<Connection>>>,
    paused: AtomicBool,
}

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS actor_coordination_lease (
    name text PRIMARY KEY,
    holder text,
    token bigint NOT NULL,
    expires_at timestamptz NOT NULL
)";

/// $1 name, $2 holder, $3 clock offset (µs), $4 ttl (µs). Grants if the row is missing, released,
/// expired or already this holder's; the token grows unless this holder's holding is still live.
const ACQUIRE: &str = "INSERT INTO actor_coordination_lease AS l (name, holder, token, expires_at)
VALUES ($1, $2, 1, clock_timestamp() + ($3::float8 + $4::float8) * interval '1 microsecond')
ON CONFLICT (name) DO UPDATE SET
    holder = EXCLUDED.holder,
    token = CASE
        WHEN l.holder = EXCLUDED.holder
         AND l.expires_at > clock_timestamp() + $3::float8 * interval '1 microsecond'
        THEN l.token
        ELSE l.token + 1
    END,
    expires_at = GREATEST(l.expires_at, EXCLUDED.expires_at)
WHERE l.holder IS NULL
   OR l.holder = EXCLUDED.holder
   OR l.expires_at <= clock_timestamp() + $3::float8 * interval '1 microsecond'
RETURNING token";

/// $1 name, $2 holder, $3 token, $4 clock offset (µs), $5 ttl (µs).
const RENEW: &str = "UPDATE actor_coordination_lease
SET expires_at = clock_timestamp() + ($4::float8 + $5::float8) * interval '1 microsecond'
WHERE name = $1 AND holder = $2 AND token = $3
  AND expires_at > clock_timestamp() + $4::float8 * interval '1 microsecond'
RETURNING token";

/// $1 name, $2 holder, $3 token, $4 clock offset (µs).
const RELEASE: &str = "UPDATE actor_coordination_lease
SET holder = NULL, expires_at = '-infinity'
WHERE name = $1 AND holder = $2 AND token = $3
  AND expires_at > clock_timestamp() + $4::float8 * interval '1 microsecond'
RETURNING token";

/// $1 name, $2 clock offset (µs): who holds the row, and whether that holding is live.
const INSPECT: &str = "SELECT holder,
    expires_at > clock_timestamp() + $2::float8 * interval '1 microsecond' AS live
FROM actor_coordination_lease WHERE name = $1";

impl PgBackend {
    fn error(&self, operation: LeaseOperation, source: tokio_postgres::Error) -> LeaseError {
        LeaseError::Backend {
            name: self.name.clone(),
            operation,
            source: Box::new(source),
        }
    }

    /// Returns the live connection, connecting (and creating the table) if there is none.
    async fn connection(&self, operation: LeaseOperation) -> Result<Arc<Connection>, LeaseError> {
        let mut slot = self.connection.lock().await;
        if let Some(connection) = slot.as_ref().filter(|c| !c.client.is_closed()) {
            return Ok(connection.clone());
        }
        *slot = None;
        let (mut client, driver) = self
            .config
            .connect(NoTls)
            .await
            .map_err(|e| self.error(operation, e))?;
        let name = self.name.clone();
        tokio::spawn(async move {
            if let Err(error) = driver.await {
                tracing::debug!(lease = %name, %error, "lease database connection closed");
            }
        });
        let setup = format!(
            "SET statement_timeout = {0}; SET lock_timeout = {0}",
            self.statement_timeout_ms
        );
        client
            .batch_execute(&setup)
            .await
            .map_err(|e| self.error(operation, e))?;
        // Concurrent `CREATE TABLE IF NOT EXISTS` can collide in the catalog; an advisory lock
        // makes the creation one at a time.
        let tx = client
            .transaction()
            .await
            .map_err(|e| self.error(operation, e))?;
        tx.batch_execute("SELECT pg_advisory_xact_lock(hashtext('actor_coordination_lease'))")
            .await
            .map_err(|e| self.error(operation, e))?;
        tx.batch_execute(CREATE_TABLE)
            .await
            .map_err(|e| self.error(operation, e))?;
        tx.commit().await.map_err(|e| self.error(operation, e))?;
        let prepare = |sql| client.prepare(sql);
        let acquire = prepare(ACQUIRE)
            .await
            .map_err(|e| self.error(operation, e))?;
        let renew = prepare(RENEW).await.map_err(|e| self.error(operation, e))?;
        let release = prepare(RELEASE)
            .await
            .map_err(|e| self.error(operation, e))?;
        let inspect = prepare(INSPECT)
            .await
            .map_err(|e| self.error(operation, e))?;
        let connection = Arc::new(Connection {
            client,
            acquire,
            renew,
            release,
            inspect,
        });
        *slot = Some(connection.clone());
        Ok(connection)
    }

    fn token(&self, operation: LeaseOperation, value: i64) -> Result<FencingToken, LeaseError> {
        u64::try_from(value)
            .map(FencingToken::new)
            .map_err(|_| LeaseError::Backend {
                name: self.name.clone(),
                operation,
                source: format!("negative fencing token {value} in {LEASE_TABLE}").into(),
            })
    }

    fn db_token(token: FencingToken) -> i64 {
        // Tokens come from the bigint column, so they fit.
        i64::try_from(token.value()).unwrap_or(i64::MAX)
    }

    async fn do_acquire(&self) -> Result<Option<FencingToken>, LeaseError> {
        let op = LeaseOperation::Acquire;
        let c = self.connection(op).await?;
        let row = c
            .client
            .query_opt(
                &c.acquire,
                &[
                    &self.name,
                    &self.holder_key,
                    &self.offset_micros,
                    &self.ttl_micros,
                ],
            )
            .await
            .map_err(|e| self.error(op, e))?;
        row.map(|row| self.token(op, row.get(0))).transpose()
    }

    async fn do_renew(&self, token: FencingToken) -> Result<RenewOutcome, LeaseError> {
        let op = LeaseOperation::Renew;
        let c = self.connection(op).await?;
        let renewed = c
            .client
            .query_opt(
                &c.renew,
                &[
                    &self.name,
                    &self.holder_key,
                    &Self::db_token(token),
                    &self.offset_micros,
                    &self.ttl_micros,
                ],
            )
            .await
            .map_err(|e| self.error(op, e))?;
        if renewed.is_some() {
            return Ok(RenewOutcome::Renewed);
        }
        let row = c
            .client
            .query_opt(&c.inspect, &[&self.name, &self.offset_micros])
            .await
            .map_err(|e| self.error(op, e))?;
        let taken_over = row.is_some_and(|row| {
            let holder: Option<String> = row.get(0);
            let live: bool = row.get(1);
            live && holder.is_some_and(|h| h != self.holder_key)
        });
        Ok(RenewOutcome::Lost(if taken_over {
            LossReason::TakenOver
        } else {
            LossReason::Revoked
        }))
    }

    async fn do_release(&self, token: FencingToken) -> Result<bool, LeaseError> {
        let op = LeaseOperation::Release;
        let c = self.connection(op).await?;
        let row = c
            .client
            .query_opt(
                &c.release,
                &[
                    &self.name,
                    &self.holder_key,
                    &Self::db_token(token),
                    &self.offset_micros,
                ],
            )
            .await
            .map_err(|e| self.error(op, e))?;
        Ok(row.is_some())
    }
}

impl Backend for PgBackend {
    fn try_acquire<'a>(
        &'a self,
        _holder: &'a Arc<Holder>,
        _generation: u64,
    ) -> BoxFuture<'a, Result<Option<FencingToken>, LeaseError>> {
        Box::pin(self.do_acquire())
    }

    fn renew(&self, token: FencingToken) -> BoxFuture<'_, Result<RenewOutcome, LeaseError>> {
        Box::pin(self.do_renew(token))
    }

    fn release(&self, token: FencingToken) -> BoxFuture<'_, Result<bool, LeaseError>> {
        Box::pin(self.do_release(token))
    }

    fn renewals_paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }
}

impl PostgresLease {
    /// Connects to the database at `config` and creates the lease table if missing.
    ///
    /// # Errors
    ///
    /// [`LeaseError::Backend`] if the connection or the table creation fails,
    /// [`LeaseError::Timeout`] if they take longer than the operation timeout.
    pub async fn connect(settings: LeaseSettings, config: Config) -> Result<Self, LeaseError> {
        Self::connect_with(settings, config, PostgresLeaseSettings::default()).await
    }

    /// Like [`connect`](Self::connect), with backend settings.
    ///
    /// # Errors
    ///
    /// As for [`connect`](Self::connect).
    pub async fn connect_with(
        settings: LeaseSettings,
        config: Config,
        backend_settings: PostgresLeaseSettings,
    ) -> Result<Self, LeaseError> {
        let backend = PgBackend {
            config,
            name: settings.name().to_owned(),
            holder_key: settings.owner().to_string(),
            ttl_micros: settings.ttl().as_micros() as f64,
            offset_micros: backend_settings.clock_offset.as_micros() as f64,
            statement_timeout_ms: settings.operation_timeout().as_millis().max(1),
            connection: tokio::sync::Mutex::new(None),
            paused: AtomicBool::new(false),
        };
        let timeout = settings.operation_timeout();
        let lease = PostgresLease {
            core: LeaseHandle::new(settings, backend),
        };
        match tokio::time::timeout(
            timeout,
            lease.core.backend.connection(LeaseOperation::Connect),
        )
        .await
        {
            Ok(connected) => connected.map(|_| lease),
            Err(_elapsed) => Err(LeaseError::Timeout {
                name: lease.core.settings.name().to_owned(),
                operation: LeaseOperation::Connect,
                timeout,
            }),
        }
    }

    /// Renews now, outside the background schedule; returns whether the lease is still held.
    ///
    /// # Errors
    ///
    /// [`LeaseError::Timeout`] or [`LeaseError::Backend`] if the database did not answer; the
    /// holding stays trusted until its deadline.
    pub async fn renew_now(&self) -> Result<bool, LeaseError> {
        self.core.renew_now().await
    }

    /// Test hook: stops (`true`) or resumes (`false`) the background renewals, like a process
    /// that stops being scheduled.
    pub fn pause_renewals(&self, paused: bool) {
        self.core.backend.paused.store(paused, Ordering::Relaxed);
    }
}

impl fmt::Debug for PostgresLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresLease")
            .field("name", &self.core.settings.name())
            .field("owner", &self.core.settings.owner())
            .field("held", &self.core.check_lease())
            .finish()
    }
}

impl Lease for PostgresLease {
    fn settings(&self) -> &LeaseSettings {
        &self.core.settings
    }

    fn acquire(&self) -> BoxFuture<'_, Result<Acquired, LeaseError>> {
        Box::pin(self.core.acquire(None))
    }

    fn acquire_with_lost_callback(
        &self,
        on_lost: LostCallback,
    ) -> BoxFuture<'_, Result<Acquired, LeaseError>> {
        Box::pin(self.core.acquire(Some(on_lost)))
    }

    fn release(&self) -> BoxFuture<'_, Result<bool, LeaseError>> {
        Box::pin(self.core.release())
    }

    fn check_lease(&self) -> bool {
        self.core.check_lease()
    }

    fn fencing_token(&self) -> Option<FencingToken> {
        self.core.fencing_token()
    }
}
