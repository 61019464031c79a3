//! In-memory leases: mutual exclusion between handles that share an [`InMemoryLeaseRegistry`].

use std::fmt;
use std::sync::Arc;

use super::handle::{Backend, LeaseHandle, RenewOutcome};
use super::holder::Holder;
use super::{Acquired, BoxFuture, FencingToken, Lease, LeaseError, LeaseSettings, LostCallback};

mod registry;

pub use registry::InMemoryLeaseRegistry;

/// A lease held in process memory, for tests and single-process use.
///
/// Handles that share a registry and a name exclude each other; a handle created with
/// [`InMemoryLease::new`] gets a private registry and so excludes no one else. Acquire is an
/// atomic compare-and-set of the registry slot. While held, a background task renews every
/// renewal interval; loss is reported once, at the earliest of the local deadline, a take-over
/// of the expired slot, or a revocation through the registry's test hooks. All time is
/// `tokio::time`, so it runs on a paused clock.
///
/// # Examples
///
/// ```
/// use actor_coordination::lease::{InMemoryLease, Lease, LeaseOwner, LeaseSettings};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let settings = LeaseSettings::builder("my-singleton", LeaseOwner::new("instance-1", 1)).build()?;
/// let lease = InMemoryLease::new(settings);
/// let token = lease.acquire().await?.token();
/// assert!(token.is_some());
/// assert!(lease.check_lease());
/// # Ok(())
/// # }
/// ```
pub struct InMemoryLease {
    core: LeaseHandle<RegistryBackend>,
}

/// The [`Backend`] of an in-memory lease: one name and owner in one registry.
struct RegistryBackend {
    registry: Arc<InMemoryLeaseRegistry>,
    settings: LeaseSettings,
}

impl Backend for RegistryBackend {
    fn try_acquire<'a>(
        &'a self,
        holder: &'a Arc<Holder>,
        generation: u64,
    ) -> BoxFuture<'a, Result<Option<FencingToken>, LeaseError>> {
        let token = self.registry.try_acquire(
            self.settings.name(),
            self.settings.owner(),
            self.settings.ttl(),
            holder,
            generation,
        );
        Box::pin(std::future::ready(Ok(token)))
    }

    fn renew(&self, token: FencingToken) -> BoxFuture<'_, Result<RenewOutcome, LeaseError>> {
        let outcome = self.registry.renew(
            self.settings.name(),
            self.settings.owner(),
            token,
            self.settings.ttl(),
        );
        Box::pin(std::future::ready(Ok(outcome)))
    }

    fn release(&self, token: FencingToken) -> BoxFuture<'_, Result<bool, LeaseError>> {
        let released = self
            .registry
            .release(self.settings.name(), self.settings.owner(), token);
        Box::pin(std::future::ready(Ok(released)))
    }

    fn renewals_paused(&self) -> bool {
        self.registry.renewals_paused(self.settings.owner())
    }
}

impl InMemoryLease {
    /// Creates a lease with its own private registry (it excludes no other handle).
    pub fn new(settings: LeaseSettings) -> Self {
        Self::with_registry(settings, Arc::new(InMemoryLeaseRegistry::new()))
    }

    /// Creates a lease in `registry`; it excludes the other handles of the same name there.
    pub fn with_registry(settings: LeaseSettings, registry: Arc<InMemoryLeaseRegistry>) -> Self {
        let backend = RegistryBackend {
            registry,
            settings: settings.clone(),
        };
        InMemoryLease {
            core: LeaseHandle::new(settings, backend),
        }
    }

    /// Returns the registry this lease lives in.
    pub fn registry(&self) -> &Arc<InMemoryLeaseRegistry> {
        &self.core.backend.registry
    }

    /// Renews now, outside the background schedule; returns whether the lease is still held.
    ///
    /// # Errors
    ///
    /// Never fails for the in-memory backend; the `Result` matches the other backends.
    pub async fn renew_now(&self) -> Result<bool, LeaseError> {
        self.core.renew_now().await
    }
}

impl fmt::Debug for InMemoryLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemoryLease")
            .field("name", &self.core.settings.name())
            .field("owner", &self.core.settings.owner())
            .field("held", &self.core.check_lease())
            .finish()
    }
}

impl Lease for InMemoryLease {
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
