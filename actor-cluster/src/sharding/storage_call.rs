//! Every call sharding makes to the runner storage is bounded in time: a storage that hangs
//! (a lost connection, a stalled database) must not keep a shard's acquire or the region's
//! refresh "in flight" for ever, nor block a shard's mailbox.
//!
//! The bounds come from the settings, so no new knob is needed:
//! - lock calls (`acquire`, `refresh`, `release`) get the local lock validity
//!   (`lock_ttl - lock_safety_margin`): an answer later than that is of no use, the lock it
//!   extended would already be past its local deadline;
//! - reads and bookkeeping (`list_locks`, the ttl probe, `register`) get the lock ttl: after
//!   that long the locks they describe may have changed hands anyway.
//!
//! A call that timed out is handled as a failed call: the shard's deadline stands (it fences
//! when it passes), an acquire is retried, the coordinator reads the lock table again. The
//! dropped future may still complete in the backend (a lock may be taken or extended late);
//! that is safe because nothing is served on a lock whose grant was not seen in time, and a
//! late-taken lock simply expires or is returned by the next acquire.
//!
//! A late *release* would be the exception: run in the backend after this runner acquired
//! the same shard again, it would delete the new lock. The built-in backends rule that out:
//! the SQLite storage skips a call whose caller stopped waiting before it began (checked
//! under its connection mutex once its transaction has begun, so a call that passed the
//! check finishes before any later call of the process), and the Postgres storage sends
//! every call over one connection, where the server runs them in the order sent, so a
//! given-up release either ran before the next acquire or never runs. A custom
//! [`RunnerStorage`](actor_coordination::runner_storage::RunnerStorage) must keep the same
//! promise: a call that was given up on never takes effect after a later call of the same
//! caller.

use std::future::Future;
use std::time::Duration;

use actor_coordination::runner_storage::RunnerStorageError;

use super::ShardingError;

/// Runs `call` (the storage operation `operation`) for at most `after`.
///
/// # Errors
///
/// [`ShardingError::StorageTimeout`] naming the operation and the bound when it did not
/// finish in time, [`ShardingError::Storage`] when the storage failed.
///
/// # Cancel safety
///
/// Dropping the future drops the storage call, as the timeout does.
pub(crate) async fn bounded<T>(
    operation: &'static str,
    after: Duration,
    call: impl Future<Output = Result<T, RunnerStorageError>>,
) -> Result<T, ShardingError> {
    match tokio::time::timeout(after, call).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(ShardingError::StorageTimeout { operation, after }),
    }
}

/// Runs the lock ttl check `check` (several storage calls) for at most `after`.
///
/// # Errors
///
/// [`ShardingError::StorageTimeout`] (operation `lock ttl check`) when it did not finish in
/// time, else what `check` returned.
///
/// # Cancel safety
///
/// Dropping the future drops the check; its probe lock then expires on its own.
pub(crate) async fn bounded_check<T>(
    after: Duration,
    check: impl Future<Output = Result<T, ShardingError>>,
) -> Result<T, ShardingError> {
    tokio::time::timeout(after, check)
        .await
        .unwrap_or(Err(ShardingError::StorageTimeout {
            operation: "lock ttl check",
            after,
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_hung_call_times_out_with_its_operation_and_bound() {
        let after = Duration::from_secs(5);
        let hung = std::future::pending::<Result<(), RunnerStorageError>>();
        match bounded("acquire", after, hung).await {
            Err(ShardingError::StorageTimeout {
                operation,
                after: bound,
            }) => assert_eq!((operation, bound), ("acquire", after)),
            other => panic!("expected a timeout, got {other:?}"),
        }
        let quick = async { Ok::<_, RunnerStorageError>(7) };
        assert_eq!(bounded("refresh", after, quick).await.ok(), Some(7));
    }
}
