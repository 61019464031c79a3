//! Checks, against the storage itself, that a region's local lock validity (the sharding
//! [`lock_ttl`](super::ShardingSettings::lock_ttl) minus the
//! [`lock_safety_margin`](super::ShardingSettings::lock_safety_margin)) ends strictly before
//! the storage lets a lock expire.
//!
//! The storage does not expose its ttl, so it is measured: the region takes a lock on a probe
//! shard of its own (group [`TTL_PROBE_GROUP`], so no coordinator ever sees it), reads the
//! time the storage says that lock has left ([`ShardLock::expires_in`]), and releases it. The
//! time left is at most the storage's ttl (time passed since the grant only lowers it), so
//! a validity strictly below it is safe. Without this check a storage configured with a
//! shorter ttl than the sharding settings would hand a partitioned holder's lock to another
//! runner while the holder still serves.
//!
//! [`ShardLock::expires_in`]: actor_coordination::runner_storage::ShardLock::expires_in

use std::time::Duration;

use actor_coordination::runner_storage::{RunnerId, RunnerStorage, ShardId};

use super::ShardingError;
use super::extractor::fnv1a_32;

/// The shard group of the probe locks (never an entity type's group: type names and this
/// group share the lock table, and coordinators only read their own type's group).
pub const TTL_PROBE_GROUP: &str = "sharding.ttl-probe";

/// Probe shard numbers tried when another runner holds the first one (numbers are a hash of
/// the runner and the type, so a collision is rare and eight in a row practically never).
const PROBE_ATTEMPTS: u32 = 8;

/// Measures a lower bound of `storage`'s lock ttl with a probe lock taken by `runner` for
/// `type_name`, and checks that `local_validity` is strictly shorter.
///
/// Returns the measured lower bound.
///
/// # Errors
///
/// [`ShardingError::LockTtlMismatch`] when `local_validity` is not strictly shorter than the
/// storage's ttl as measured; [`ShardingError::Storage`] when the storage fails;
/// [`ShardingError::LockTtlUnverified`] when no probe lock could be taken.
pub(crate) async fn check(
    storage: &dyn RunnerStorage,
    runner: &RunnerId,
    type_name: &str,
    local_validity: Duration,
) -> Result<Duration, ShardingError> {
    let storage_ttl = measure(storage, runner, type_name).await?;
    if local_validity >= storage_ttl {
        return Err(ShardingError::LockTtlMismatch {
            local_validity,
            storage_ttl,
        });
    }
    Ok(storage_ttl)
}

async fn measure(
    storage: &dyn RunnerStorage,
    runner: &RunnerId,
    type_name: &str,
) -> Result<Duration, ShardingError> {
    let seed = fnv1a_32(format!("{runner}/{type_name}").as_bytes());
    for attempt in 0..PROBE_ATTEMPTS {
        let probe = ShardId::new(TTL_PROBE_GROUP, seed.wrapping_add(attempt))?;
        let got = storage
            .acquire(runner, std::slice::from_ref(&probe))
            .await?;
        if !got.contains(&probe) {
            continue;
        }
        let listed = storage.list_locks().await;
        if let Err(error) = storage.release(runner, &probe).await {
            tracing::warn!(%error, shard = %probe, "could not release the ttl probe lock");
        }
        let left = listed?
            .into_iter()
            .find(|l| l.shard == probe && &l.holder == runner)
            .map(|l| l.expires_in);
        return left.ok_or_else(|| ShardingError::LockTtlUnverified {
            reason: format!("the probe lock {probe} was not listed right after its acquire"),
        });
    }
    Err(ShardingError::LockTtlUnverified {
        reason: format!("{PROBE_ATTEMPTS} probe locks were all held by other runners"),
    })
}
