//! The lease that the lease-majority downing strategy takes, as a small pluggable trait.

use crate::Address;
use crate::transport::BoxFuture;

/// A lease shared by all nodes of a cluster: the side of a partition that acquires it
/// survives under [`DowningStrategy::LeaseMajority`](crate::downing::DowningStrategy).
///
/// Adapt a coordination lease (for example `actor_coordination`'s `Lease`) by forwarding
/// `acquire` to it; any error should count as not acquired.
pub trait DowningLease: Send + Sync + 'static {
    /// Tries to acquire the lease for `owner`; resolves to whether it is now held.
    ///
    /// # Cancel safety
    ///
    /// The daemon never drops the future before it completes.
    fn acquire(&self, owner: &Address) -> BoxFuture<'static, bool>;
}
