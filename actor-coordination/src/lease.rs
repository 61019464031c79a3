//! Leases: time-bounded, exclusive ownership of a name, with fencing tokens.
//!
//! A [`Lease`] lets at most one [`LeaseOwner`] at a time believe it holds a name (a singleton, a
//! shard, a job). The holder renews in the background; if it cannot renew in time it *fences
//! itself*: [`Lease::check_lease`] turns false and the lost-callback fires, before any other owner
//! could have acquired the lease.
//!
//! # What a lease promises
//!
//! - **Exclusion.** Two leases with the same name on the same backend never both report
//!   [`Acquired::Held`] for different owners at overlapping times, as long as the holder obeys
//!   [`Lease::check_lease`] (or stops when the lost-callback fires).
//! - **Self-fencing by a local deadline.** The holder's deadline is the *start* of its last
//!   successful renewal (or acquire) plus the TTL minus the safety margin. The backend's expiry is
//!   at least the same start plus the full TTL, so the holder gives up at least `safety_margin`
//!   before any other owner could take over, even if the backend stops answering.
//! - **Loss is reported once**, at the earliest of: the local deadline, a take-over the holder
//!   observes, or the backend revoking the holding (a registry clear, a forced expiry). The
//!   lost-callback never fires before the acquire that registered it has completed, and never
//!   for an acquire that did not succeed.
//! - **Fencing tokens** ([`FencingToken`]) grow every time the lease changes hands and survive
//!   release, so a resource guarded by the lease can reject writes carrying an older token.
//! - **Idempotent acquire.** Acquiring again while holding returns the same token.
//!
//! # What a lease does not promise
//!
//! - It cannot stop a holder that ignores `check_lease`: guard shared resources with the fencing
//!   token as well.
//! - Safety assumes the holder's and the backend's clocks run at about the same *rate* (the safety
//!   margin absorbs the drift); their absolute values never matter, since every expiry is computed
//!   by the backend's own clock.
//! - A lease that is dropped without [`Lease::release`] is not released: it stops renewing and
//!   the backend frees it after the TTL (the same as a crashed process).
//!
//! # Backends
//!
//! - [`InMemoryLease`] with an [`InMemoryLeaseRegistry`]: one process, for tests and single-node
//!   use; works on a paused tokio clock.
//! - `PostgresLease` (feature `postgres`): one row per lease name, compare-and-set by the database
//!   server's clock.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

mod fencing;
mod handle;
mod holder;
mod identity;
pub mod in_memory;
#[cfg(feature = "postgres")]
pub mod postgres;
mod renewal;
pub mod settings;

pub use fencing::FencingToken;
pub use identity::LeaseOwner;
pub use in_memory::{InMemoryLease, InMemoryLeaseRegistry};
#[cfg(feature = "postgres")]
pub use postgres::{PostgresLease, PostgresLeaseSettings};
pub use settings::{LeaseSettings, LeaseSettingsBuilder, LeaseSettingsError};

/// A boxed, sendable future, as returned by the methods of object-safe traits such as [`Lease`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A callback run once when a held lease is lost; it receives the reason.
///
/// It runs on whichever task detects the loss (the renewal task, or the task that cleared or took
/// over the lease), so it must be quick and must not block: send a message or set a flag.
pub type LostCallback = Box<dyn FnOnce(LossReason) + Send + 'static>;

/// The result of an acquire attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Acquired {
    /// The caller holds the lease; the token orders this holding after every earlier one.
    Held(FencingToken),
    /// Another owner holds the lease (or the holding was revoked before the acquire completed).
    NotHeld,
}

impl Acquired {
    /// Returns `true` if the lease was acquired.
    pub fn is_held(self) -> bool {
        matches!(self, Acquired::Held(_))
    }

    /// Returns the fencing token of the holding, if the lease was acquired.
    pub fn token(self) -> Option<FencingToken> {
        match self {
            Acquired::Held(token) => Some(token),
            Acquired::NotHeld => None,
        }
    }
}

/// Why a held lease was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossReason {
    /// The holder's local deadline passed without a successful renewal (the backend did not answer
    /// in time, or renewals were paused).
    DeadlinePassed,
    /// Another owner holds the lease now.
    TakenOver,
    /// The backend no longer records this holding: the registry was cleared, the lease was
    /// force-expired, or another handle of the same owner released it.
    Revoked,
}

impl fmt::Display for LossReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LossReason::DeadlinePassed => "the renewal deadline passed",
            LossReason::TakenOver => "another owner took the lease over",
            LossReason::Revoked => "the backend revoked the holding",
        })
    }
}

/// A lease operation, named in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseOperation {
    /// Connecting to the backend (and creating its schema).
    Connect,
    /// Acquiring the lease.
    Acquire,
    /// Renewing a held lease.
    Renew,
    /// Releasing the lease.
    Release,
}

impl fmt::Display for LeaseOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LeaseOperation::Connect => "connect",
            LeaseOperation::Acquire => "acquire",
            LeaseOperation::Renew => "renew",
            LeaseOperation::Release => "release",
        })
    }
}

/// Errors of lease operations.
///
/// An error never means the lease is held: after an error from acquire the caller does not hold
/// it (the backend may still record a grant whose answer was lost; it expires after the TTL).
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// The backend did not answer within the operation timeout.
    #[error("lease `{name}`: {operation} did not complete within {timeout:?}")]
    Timeout {
        /// The lease name.
        name: String,
        /// The operation that timed out.
        operation: LeaseOperation,
        /// The operation timeout that was exceeded.
        timeout: Duration,
    },
    /// The backend failed (connection refused or closed, query error).
    #[error("lease `{name}`: {operation} failed: {source}")]
    Backend {
        /// The lease name.
        name: String,
        /// The operation that failed.
        operation: LeaseOperation,
        /// The backend's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

/// A lease: exclusive, time-bounded ownership of a name by one [`LeaseOwner`].
///
/// Used as an object (`Arc<dyn Lease>`), so its async methods return [`BoxFuture`]s. Operations
/// on one lease handle run one at a time (a second acquire waits for the first).
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use actor_coordination::lease::{InMemoryLease, InMemoryLeaseRegistry, Lease, LeaseOwner, LeaseSettings};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let registry = Arc::new(InMemoryLeaseRegistry::new());
/// let settings = |owner| LeaseSettings::builder("singleton", owner).build();
/// let a: Arc<dyn Lease> = Arc::new(InMemoryLease::with_registry(
///     settings(LeaseOwner::new("node-a", 1))?,
///     registry.clone(),
/// ));
/// let b: Arc<dyn Lease> = Arc::new(InMemoryLease::with_registry(
///     settings(LeaseOwner::new("node-b", 1))?,
///     registry,
/// ));
///
/// assert!(a.acquire().await?.is_held());
/// assert!(!b.acquire().await?.is_held());
/// assert!(a.release().await?);
/// assert!(b.acquire().await?.is_held());
/// # Ok(())
/// # }
/// ```
pub trait Lease: Send + Sync + fmt::Debug {
    /// Returns the settings this lease was created with.
    fn settings(&self) -> &LeaseSettings;

    /// Tries to acquire the lease; returns [`Acquired::Held`] with the fencing token on success.
    ///
    /// Acquiring again while holding returns the same token without asking the backend.
    ///
    /// # Errors
    ///
    /// [`LeaseError::Timeout`] if the backend does not answer within the operation timeout,
    /// [`LeaseError::Backend`] if it fails.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: if the future is dropped after the backend granted the lease, the grant
    /// is not installed locally and expires after the TTL.
    fn acquire(&self) -> BoxFuture<'_, Result<Acquired, LeaseError>>;

    /// Like [`acquire`](Lease::acquire), and if the lease is acquired, runs `on_lost` once when
    /// it is lost.
    ///
    /// The callback never runs before this acquire has completed (a revocation seen while the
    /// acquire is in flight makes it return [`Acquired::NotHeld`] instead), never runs if it
    /// returned [`Acquired::NotHeld`] or an error, and never runs after a
    /// [`release`](Lease::release).
    /// Each callback registered on one holding (by re-acquiring) runs once.
    ///
    /// # Errors
    ///
    /// As for [`acquire`](Lease::acquire).
    ///
    /// # Cancel safety
    ///
    /// As for [`acquire`](Lease::acquire).
    fn acquire_with_lost_callback(
        &self,
        on_lost: LostCallback,
    ) -> BoxFuture<'_, Result<Acquired, LeaseError>>;

    /// Releases the lease; returns `true` if this handle held it until now.
    ///
    /// Stops the background renewal. The lost-callbacks of the holding are dropped without
    /// running (releasing is not losing), unless the holding had already passed its deadline
    /// unreported: then that loss is reported first.
    ///
    /// # Errors
    ///
    /// [`LeaseError::Timeout`] or [`LeaseError::Backend`] if the backend could not be told; the
    /// handle no longer holds the lease either way, and the backend frees it after the TTL.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe in the sense that the handle stops holding as soon as the future is first
    /// polled; dropping it only skips telling the backend.
    fn release(&self) -> BoxFuture<'_, Result<bool, LeaseError>>;

    /// Returns `true` if this handle can be sure it holds the lease now; no I/O.
    ///
    /// False once the local deadline (start of the last successful renewal + ttl - safety
    /// margin) has passed, after a loss, and before any acquire.
    fn check_lease(&self) -> bool;

    /// Returns the fencing token of the current holding, if [`check_lease`](Lease::check_lease)
    /// holds.
    fn fencing_token(&self) -> Option<FencingToken>;
}
