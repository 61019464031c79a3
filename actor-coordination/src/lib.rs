//! Coordination primitives for clustered actors: leases, file-based owner election, and
//! runner / shard-lock storage. Independent of `actor-core`: a lease is useful without actors.
#![deny(missing_docs)]

pub mod lease;
pub mod owner;
pub mod runner_storage;
