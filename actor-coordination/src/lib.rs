//! Coordination primitives for clustered actors: leases, file-based owner election, and
//! runner / shard-lock storage. Independent of `actor-core`: a lease is useful without actors.
//!
//! - [`lease`]: a [`Lease`](lease::Lease) gives one owner at a time a name, with fencing tokens
//!   and self-fencing by a local deadline; in memory ([`InMemoryLease`](lease::InMemoryLease))
//!   or in PostgreSQL (feature `postgres`).
//! - [`owner`]: one owner per lease file across the processes of one host.
//! - [`runner_storage`]: runner registration and shard locks for cluster sharding.
//!
//! # Examples
//!
//! Two nodes compete for a singleton lease in one registry; the loser gets it once the holder
//! releases, with a larger fencing token:
//!
//! ```
//! use std::sync::Arc;
//! use actor_coordination::lease::{InMemoryLease, InMemoryLeaseRegistry, Lease, LeaseOwner, LeaseSettings};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let registry = Arc::new(InMemoryLeaseRegistry::new());
//! let lease_for = |node: &str| -> Result<Arc<dyn Lease>, Box<dyn std::error::Error>> {
//!     let owner = LeaseOwner::for_node(node, 1);
//!     let settings = LeaseSettings::builder("singleton", owner).build()?;
//!     Ok(Arc::new(InMemoryLease::with_registry(settings, registry.clone())))
//! };
//! let (a, b) = (lease_for("10.0.0.1:2552")?, lease_for("10.0.0.2:2552")?);
//!
//! let first = a.acquire().await?.token().expect("a free lease");
//! assert!(!b.acquire().await?.is_held());
//! a.release().await?;
//! let second = b.acquire().await?.token().expect("released by a");
//! assert!(second > first);
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

pub mod lease;
pub mod owner;
pub mod runner_storage;
