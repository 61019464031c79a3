//! The lease that the lease-majority downing strategy takes: a small pluggable trait, and
//! its adapter from the coordination crate's [`Lease`].

use std::sync::Arc;

use actor_coordination::lease::{Lease, LeaseOwner};

use crate::Address;
use crate::transport::BoxFuture;

/// A lease shared by all nodes of a cluster: the side of a partition that acquires it
/// survives under [`DowningStrategy::LeaseMajority`](crate::downing::DowningStrategy).
///
/// [`CoordinationLease`] adapts the coordination crate's [`Lease`]
/// ([`Cluster::join_with_coordination_lease`](super::Cluster::join_with_coordination_lease)
/// does it for you); implement this trait for any other lease, counting every error as not
/// acquired.
pub trait DowningLease: Send + Sync + 'static {
    /// Tries to acquire the lease for `owner`; resolves to whether it is now held.
    ///
    /// # Cancel safety
    ///
    /// The daemon never drops the future before it completes.
    fn acquire(&self, owner: &Address) -> BoxFuture<'static, bool>;
}

/// A [`DowningLease`] backed by an `actor_coordination` [`Lease`] (in memory, Postgres, ...).
///
/// Each node has its own lease handle: the same lease name and backend on every node, and
/// this node as the owner, [`LeaseOwner::for_node`]`(address, uid)` (see
/// [`CoordinationLease::owner_for`]). The handle renews in the background once acquired, so
/// the winning side keeps it while it lives and a crashed holder's lease expires after its
/// TTL. An acquire error counts as not acquired (and is logged): a side that cannot reach
/// the lease backend downs itself, which is the safe choice.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use actor_cluster::cluster::{CoordinationLease, DowningLease};
/// use actor_cluster::Address;
/// use actor_coordination::lease::{InMemoryLease, InMemoryLeaseRegistry, LeaseSettings};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let registry = Arc::new(InMemoryLeaseRegistry::new());
/// let lease_of = |address: &Address, uid| -> Result<_, Box<dyn std::error::Error>> {
///     let owner = CoordinationLease::owner_for(address, uid);
///     let settings = LeaseSettings::builder("sbr", owner).build()?;
///     Ok(CoordinationLease::new(Arc::new(InMemoryLease::with_registry(settings, registry.clone()))))
/// };
/// let (a, b) = (Address::logical("doc", "a")?, Address::logical("doc", "b")?);
/// let (lease_a, lease_b) = (lease_of(&a, 1)?, lease_of(&b, 2)?);
/// assert!(lease_a.acquire(&a).await);
/// assert!(!lease_b.acquire(&b).await, "a holds it");
/// assert!(lease_a.acquire(&a).await, "acquiring again while holding");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct CoordinationLease {
    lease: Arc<dyn Lease>,
}

impl CoordinationLease {
    /// Wraps `lease`, whose owner should be this node ([`CoordinationLease::owner_for`]).
    pub fn new(lease: Arc<dyn Lease>) -> Self {
        CoordinationLease { lease }
    }

    /// The lease owner identity of the node at `address` with incarnation `uid`.
    pub fn owner_for(address: &Address, uid: u64) -> LeaseOwner {
        LeaseOwner::for_node(address, uid)
    }

    /// The wrapped lease.
    pub fn lease(&self) -> &Arc<dyn Lease> {
        &self.lease
    }
}

impl DowningLease for CoordinationLease {
    fn acquire(&self, owner: &Address) -> BoxFuture<'static, bool> {
        let lease = self.lease.clone();
        let owner = owner.clone();
        Box::pin(async move {
            match lease.acquire().await {
                Ok(acquired) => acquired.is_held(),
                Err(error) => {
                    tracing::warn!(%owner, %error, "the downing lease could not be acquired; counted as not acquired");
                    false
                }
            }
        })
    }
}
